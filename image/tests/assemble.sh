#!/usr/bin/env bash
# Tests image/assemble on a small fake root filesystem, without mounts: the
# partition table (sfdisk --dump), the FAT partition's cmdline.txt (mtools), the
# ext4 partition's files, owners and modes (debugfs), and that two assemblies
# with the same SOURCE_DATE_EPOCH are byte-identical.
# The checks are strings evaluated later by ok(), hence single quotes.
# shellcheck disable=SC2016,SC2034
# shellcheck source-path=SCRIPTDIR
set -Eeuo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)
IMAGE_DIR=$(dirname "$HERE")
# shellcheck source=lib.sh
. "$HERE/lib.sh"
# shellcheck source=../lib/bootfiles.sh
. "$IMAGE_DIR/lib/bootfiles.sh"
export MTOOLS_SKIP_CHECK=1

tmp=$(mktemp -d)
trap '[[ -n ${AISOPOD_TEST_KEEP:-} ]] && cp "$img" "$AISOPOD_TEST_KEEP.2"; rm -rf "$tmp"' EXIT
boot=$tmp/boot root=$tmp/root img=$tmp/out/test.img
mkdir -p "$boot/overlays" "$root/etc/aisopod" "$root/usr/bin" "$root/var/lib/aisopod" "$tmp/out"
write_boot_config "$boot" "1234abcd-02"
printf 'firmware' >"$boot/start4.elf"
printf 'dtb' >"$boot/bcm2711-rpi-4-b.dtb"
printf 'x' >"$boot/overlays/README"
printf 'aisopod\n' >"$root/etc/hostname"
printf '[server]\n' >"$root/etc/aisopod/config.toml"
head -c 300000 /dev/urandom >"$root/usr/bin/aisopod"
ln -s aisopod "$root/usr/bin/link"
chmod 0755 "$root/usr/bin/aisopod"
chmod 0640 "$root/etc/aisopod/config.toml"
chmod 0700 "$root/var/lib/aisopod"
chown 0:999 "$root/etc/aisopod/config.toml" 2>/dev/null || true
chown 999:999 "$root/var/lib/aisopod" 2>/dev/null || true

export SOURCE_DATE_EPOCH=1700000000
ok "assemble succeeds" '"$IMAGE_DIR/assemble" --boot "$boot" --root "$root" --out "$img" --label-id 0x1234abcd 2>"$tmp/log"'
dump=$(sfdisk --dump "$img")
ok "MBR label with the given id" 'grep -qx "label: dos" <<<"$dump" && grep -qx "label-id: 0x1234abcd" <<<"$dump"'
p1=$(grep "img1 :" <<<"$dump" || true)
p2=$(grep "img2 :" <<<"$dump" || true)
ok "two partitions, no third" '[[ -n $p1 && -n $p2 ]] && ! grep -q "img3 :" <<<"$dump"'
ok "p1: FAT32 LBA (type c), bootable, at 4 MiB, 256 MiB" '[[ $p1 =~ start=\ +8192,\ size=\ +524288,\ type=c,\ bootable ]]'
ok "p2: Linux (83), right after p1" '[[ $p2 =~ start=\ +532480,\ size=\ +[0-9]+,\ type=83 ]]'
p2_size=$(sed -n 's/.*size= *\([0-9]*\).*/\1/p' <<<"$p2")
ok "image ends where p2 ends" '[[ $(stat -c %s "$img") == $(((532480 + p2_size) * 512)) ]]'
ok "FAT: label AISOPOD" 'minfo -i "$img@@4M" :: | grep -q "disk label=\"AISOPOD"'
ok "FAT: cmdline.txt enables the memory cgroup controller" 'mtype -i "$img@@4M" ::/cmdline.txt | grep -q "cgroup_enable=memory cgroup_memory=1"'
ok "FAT: cmdline.txt is one line with root=PARTUUID" '[[ $(mtype -i "$img@@4M" ::/cmdline.txt | wc -l) == 1 ]] && mtype -i "$img@@4M" ::/cmdline.txt | grep -q "root=PARTUUID=1234abcd-02"'
ok "FAT: config.txt arm_64bit, kernel, initramfs" 'cfg=$(mtype -i "$img@@4M" ::/config.txt) && grep -qx arm_64bit=1 <<<"$cfg" && grep -qx kernel=vmlinuz <<<"$cfg" && grep -qx "initramfs initrd.img followkernel" <<<"$cfg"'
ok "FAT: config.txt enables I2C on the header for the display" 'mtype -i "$img@@4M" ::/config.txt | grep -qx dtparam=i2c_arm=on'
ok "FAT: subdirectory copied" 'mtype -i "$img@@4M" ::/overlays/README | grep -qx x'
ok "FAT: file times are SOURCE_DATE_EPOCH" 'mdir -i "$img@@4M" ::/ | grep -q "cmdline  txt .* 2023-11-14"'
dd if="$img" of="$tmp/p2.ext4" bs=512 skip=532480 status=none
ok "ext4: label aisopod-root" 'dumpe2fs -h "$tmp/p2.ext4" 2>/dev/null | grep -q "volume name: *aisopod-root"'
ok "ext4: debugfs ls shows the tree" 'debugfs -R "ls /" "$tmp/p2.ext4" 2>/dev/null | grep -q etc && debugfs -R "ls /usr/bin" "$tmp/p2.ext4" 2>/dev/null | grep -q aisopod'
ok "ext4: file content intact" 'debugfs -R "dump /usr/bin/aisopod $tmp/aisopod.out" "$tmp/p2.ext4" 2>/dev/null; cmp -s "$tmp/aisopod.out" "$root/usr/bin/aisopod"'
ok "ext4: symlink kept" 'debugfs -R "stat /usr/bin/link" "$tmp/p2.ext4" 2>/dev/null | grep -q "Fast link dest: \"aisopod\""'
if [[ $(id -u) -eq 0 ]]; then
    ok "ext4: owner and mode kept (config 0640 root:999)" 'debugfs -R "stat /etc/aisopod/config.toml" "$tmp/p2.ext4" 2>/dev/null | grep -qE "Mode: +0640" && debugfs -R "stat /etc/aisopod/config.toml" "$tmp/p2.ext4" 2>/dev/null | grep -qE "User: +0 +Group: +999"'
    ok "ext4: state dir 0700 999:999" 'debugfs -R "stat /var/lib/aisopod" "$tmp/p2.ext4" 2>/dev/null | grep -qE "User: +999 +Group: +999" && debugfs -R "stat /var/lib/aisopod" "$tmp/p2.ext4" 2>/dev/null | grep -qE "Mode: +0700"'
fi
ok "ext4: fsck clean" 'e2fsck -fn "$tmp/p2.ext4" >/dev/null 2>&1'
sha1=$(sha256sum <"$img")
cp "$img" "${AISOPOD_TEST_KEEP:-/dev/null}" 2>/dev/null || true
ok "second assembly succeeds" '"$IMAGE_DIR/assemble" --boot "$boot" --root "$root" --out "$img" --label-id 0x1234abcd 2>/dev/null'
ok "same SOURCE_DATE_EPOCH, same tree: identical image" '[[ $(sha256sum <"$img") == "$sha1" ]]'
ok "no loop devices used" '! grep -q loop "$tmp/log"'
finish "assemble test"
