#!/usr/bin/env bash
# Tests image/rootfs/usr/lib/aisopod/firstboot offline (--root) on a directory
# tree: files dropped on a fake boot partition go in; checks that secrets moved
# with tight modes, originals are gone from the FAT, aisopod.toml is merged and
# validated, a bad aisopod.toml keeps the old config and is kept for inspection.
# The checks are strings evaluated later by ok(), hence single quotes.
# shellcheck disable=SC2016,SC2034
# shellcheck source-path=SCRIPTDIR
set -Eeuo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)
IMAGE_DIR=$(dirname "$HERE")
REPO=$(dirname "$IMAGE_DIR")
# shellcheck source=lib.sh
. "$HERE/lib.sh"
FIRSTBOOT=$IMAGE_DIR/rootfs/usr/lib/aisopod/firstboot
AISOPOD=$(find_aisopod "$REPO") || {
    echo "firstboot test: no aisopod binary (set AISOPOD_BIN or cargo build)" >&2
    exit 1
}
echo "firstboot test: validating with $AISOPOD"

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# fresh ROOT: a device root as the image has it
fresh() {
    R=$tmp/$1
    B=$R/boot/firmware
    mkdir -p "$R/etc/aisopod" "$B" "$R/usr/lib/aisopod"
    cp "$IMAGE_DIR/rootfs/etc/aisopod/config.toml" "$R/etc/aisopod/config.toml"
    cp "$IMAGE_DIR/rootfs/etc/hosts" "$IMAGE_DIR/rootfs/etc/hostname" "$R/etc/"
    printf 'root:x:0:\naisopod:x:999:\n' >"$R/etc/group"
}
run() { "$FIRSTBOOT" --root "$R" --aisopod "$AISOPOD" >"$R.log" 2>&1; }

echo "== everything dropped, all valid"
fresh good
SECRET_TOKEN=$(head -c 24 /dev/urandom | base64 | tr -d '/+=' | head -c 32)
cat >"$B/aisopod.toml" <<EOT
[server]
max_body = "2m"

[auth]
mode = "token"
token = "\${AISOPOD_TEST_TOKEN}"

[tls]
extra_names = ["gateway.lan"]
EOT
printf '# provider keys\nAISOPOD_TEST_TOKEN=%sxxxxxxxx\n' "$SECRET_TOKEN" >"$B/aisopod.env"
printf 'ssid=Home Net\npsk=correct horse battery\ncountry=de\n' >"$B/wifi.conf"
printf 'Kitchen-Pi\n' >"$B/hostname"
printf 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIB6aMbH2mYlrN2QJ6y7O0Yl2GmN0LSl7O6kVjCz0aQvG me@laptop\n' >"$B/ssh.pub"
cp "$R/etc/aisopod/config.toml" "$tmp/original.toml"
ok "firstboot exits 0" 'run'
ok "FAT: aisopod.toml removed" '[[ ! -e $B/aisopod.toml ]]'
ok "FAT: aisopod.env removed" '[[ ! -e $B/aisopod.env ]]'
ok "FAT: wifi.conf removed" '[[ ! -e $B/wifi.conf ]]'
ok "FAT: hostname removed" '[[ ! -e $B/hostname ]]'
ok "FAT: ssh.pub removed" '[[ ! -e $B/ssh.pub ]]'
ok "FAT: summary written" '[[ -f $B/aisopod-firstboot.txt ]]'
ok "FAT summary holds no secret" '! grep -q -e "$SECRET_TOKEN" -e "horse" "$B/aisopod-firstboot.txt"'
ok "config: user key applied" 'grep -qx "max_body = \"2m\"" "$R/etc/aisopod/config.toml"'
ok "config: image default kept (merge)" 'grep -qx "public_url = \"https://aisopod.local:3080\"" "$R/etc/aisopod/config.toml"'
ok "config: user table added" 'grep -qx "extra_names = \[\"gateway.lan\"\]" "$R/etc/aisopod/config.toml"'
ok "config: mode 0640" '[[ $(mode_of "$R/etc/aisopod/config.toml") == 640 ]]'
ok "config: group aisopod (999)" '[[ $(stat -c %g "$R/etc/aisopod/config.toml") == 999 ]]'
ok "config: merged file validates" 'AISOPOD_TEST_TOKEN=${SECRET_TOKEN}xxxxxxxx "$AISOPOD" gateway validate-config --config "$R/etc/aisopod/config.toml" >/dev/null'
ok "config: image default saved" 'cmp -s "$R/etc/aisopod/config.toml.image-default" "$tmp/original.toml"'
ok "status: ok" 'grep -q "^ok " "$R/etc/aisopod/boot-config.status"'
ok "env: installed 0600" '[[ $(mode_of "$R/etc/aisopod/aisopod.env") == 600 ]] && grep -q "$SECRET_TOKEN" "$R/etc/aisopod/aisopod.env"'
wpa=$R/etc/wpa_supplicant/wpa_supplicant-wlan0.conf
ok "wifi: wpa_supplicant conf 0600" '[[ $(mode_of "$wpa") == 600 ]]'
ok "wifi: ssid, psk, country" 'grep -q "ssid=\"Home Net\"" "$wpa" && grep -q "psk=\"correct horse battery\"" "$wpa" && grep -qx "country=DE" "$wpa"'
ok "hostname: set (lower case)" '[[ $(cat "$R/etc/hostname") == kitchen-pi ]]'
ok "hostname: /etc/hosts" 'grep -qP "^127\.0\.1\.1\tkitchen-pi$" "$R/etc/hosts"'
ok "ssh: key installed 0600 in 0700 dir" '[[ $(mode_of "$R/root/.ssh/authorized_keys") == 600 && $(mode_of "$R/root/.ssh") == 700 ]] && grep -q "me@laptop" "$R/root/.ssh/authorized_keys"'
ok "ssh: enabled" '[[ $(readlink "$R/etc/systemd/system/multi-user.target.wants/ssh.service") == /lib/systemd/system/ssh.service ]]'
ok "state dir 0700" '[[ $(mode_of "$R/var/lib/aisopod-firstboot") == 700 ]]'
cp -a "$R" "$tmp/good-after"
ok "second run with nothing dropped: exits 0" 'run'
ok "second run changes nothing" 'diff -r --no-dereference -x aisopod-firstboot.txt -x last-run.log "$tmp/good-after" "$R" >/dev/null'
ok "same key again is not duplicated" 'printf "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIB6aMbH2mYlrN2QJ6y7O0Yl2GmN0LSl7O6kVjCz0aQvG me@laptop\n" >"$B/authorized_keys"; run && [[ $(wc -l <"$R/root/.ssh/authorized_keys") == 1 ]]'

echo "== damaged aisopod.toml: unknown key and invalid value"
fresh bad
printf '[server]\nbindd = "0.0.0.0:1"\nmax_body = "lots"\n' >"$B/aisopod.toml"
cp "$R/etc/aisopod/config.toml" "$tmp/original.toml"
ok "firstboot exits 0 (boots with defaults)" 'run'
ok "config unchanged" 'cmp -s "$R/etc/aisopod/config.toml" "$tmp/original.toml"'
ok "bad file kept for inspection (0600)" '[[ $(mode_of "$R/var/lib/aisopod-firstboot/rejected/aisopod.toml") == 600 ]] && grep -q bindd "$R/var/lib/aisopod-firstboot/rejected/aisopod.toml"'
ok "error recorded with the key" 'grep -q "server.bindd" "$R/var/lib/aisopod-firstboot/rejected/aisopod.toml.error" && grep -q "server.max_body" "$R/etc/aisopod/boot-config.status"'
ok "status: rejected, group-readable for the gateway" 'grep -q "^rejected " "$R/etc/aisopod/boot-config.status" && [[ $(mode_of "$R/etc/aisopod/boot-config.status") == 640 ]]'
ok "console shows the error" 'grep -q "REJECTED" "$R.log" && grep -q "server.bindd" "$R.log"'
ok "FAT: report says rejected" 'grep -q "REJECTED" "$B/aisopod-firstboot.txt"'
ok "FAT: bad file removed (may hold secrets)" '[[ ! -e $B/aisopod.toml ]]'

echo "== aisopod.toml that is not TOML; \${VAR} without aisopod.env"
fresh syntax
printf '[server\nbind = \n' >"$B/aisopod.toml"
cp "$R/etc/aisopod/config.toml" "$tmp/original.toml"
ok "exits 0, config unchanged" 'run && cmp -s "$R/etc/aisopod/config.toml" "$tmp/original.toml"'
ok "syntax error recorded" 'grep -qi "line 1" "$R/var/lib/aisopod-firstboot/rejected/aisopod.toml.error"'
fresh novar
printf '[auth]\nmode = "token"\ntoken = "${NOT_SET_ANYWHERE}"\n' >"$B/aisopod.toml"
ok "missing \${VAR}: rejected" 'run && grep -q "NOT_SET_ANYWHERE" "$R/etc/aisopod/boot-config.status"'

echo "== bad Wi-Fi, hostname, SSH key"
fresh badmisc
printf 'ssid=Net\npsk=short\n' >"$B/wifi.conf"
printf 'not a valid name!\n' >"$B/hostname"
printf 'hello world\n' >"$B/ssh.pub"
ok "firstboot exits 0" 'run'
ok "wifi: short psk rejected, kept, not installed" '[[ ! -e $R/etc/wpa_supplicant/wpa_supplicant-wlan0.conf && -f $R/var/lib/aisopod-firstboot/rejected/wifi.conf && ! -e $B/wifi.conf ]]'
ok "hostname: unchanged" '[[ $(cat "$R/etc/hostname") == aisopod ]]'
ok "ssh: not enabled" '[[ ! -e $R/etc/systemd/system/multi-user.target.wants/ssh.service && ! -e $R/root/.ssh/authorized_keys ]]'
ok "report has the warnings" '[[ $(grep -c WARNING "$B/aisopod-firstboot.txt") -ge 3 ]]'

finish "firstboot test"
