# shellcheck shell=bash
# Shared helpers for image/build, image/assemble, image/test-boot and image/ci:
# logging with elapsed time, stages, errors, and the check for missing tools that
# names the Debian package to install.

AISOPOD_IMAGE_T0=${AISOPOD_IMAGE_T0:-$SECONDS}
PROG=${PROG:-${0##*/}}

log() { printf '%s: %s\n' "$PROG" "$*" >&2; }
die() {
    printf '%s: error: %s\n' "$PROG" "$*" >&2
    exit 1
}

# stage NAME: print a banner with the seconds since the start and since the
# previous stage.
_stage_name=""
_stage_start=$SECONDS
stage() {
    local now=$SECONDS
    if [[ -n $_stage_name ]]; then
        printf '%s: == %s done in %ds\n' "$PROG" "$_stage_name" "$((now - _stage_start))" >&2
    fi
    _stage_name=$1
    _stage_start=$now
    [[ -n $1 ]] && printf '%s: == [t=%ds] %s\n' "$PROG" "$((now - AISOPOD_IMAGE_T0))" "$1" >&2
    return 0
}

# Tool -> Debian package that provides it.
declare -gA TOOL_PACKAGE=(
    [mmdebstrap]=mmdebstrap
    [arch-test]=arch-test
    [qemu-aarch64-static]=qemu-user-static
    [update-binfmts]=binfmt-support
    [mkfs.vfat]=dosfstools
    [mcopy]=mtools
    [mdir]=mtools
    [mmd]=mtools
    [mkfs.ext4]=e2fsprogs
    [debugfs]=e2fsprogs
    [sfdisk]=fdisk
    [xz]=xz-utils
    [qemu-system-aarch64]=qemu-system-arm
    [shellcheck]=shellcheck
    [curl]=curl
    [python3]=python3
    [systemctl]=systemd
    [systemd-sysusers]=systemd
    [zstd]=zstd
    [cpio]=cpio
    [sha256sum]=coreutils
)

# need TOOL...: fail with the packages to install for every missing tool.
need() {
    local tool missing=() pkgs=()
    for tool in "$@"; do
        if ! command -v "$tool" >/dev/null 2>&1 && [[ ! -x /usr/sbin/$tool && ! -x /sbin/$tool ]]; then
            missing+=("$tool")
            pkgs+=("${TOOL_PACKAGE[$tool]:-$tool}")
        fi
    done
    if ((${#missing[@]})); then
        # (bash only: this must work when the PATH itself is what is broken)
        local -A seen=()
        local list="" p
        for p in "${pkgs[@]}"; do
            [[ -n ${seen[$p]:-} ]] || list+=" $p"
            seen[$p]=1
        done
        die "missing tools: ${missing[*]}; install the Debian packages: apt-get install${list} (or run: image/setup)"
    fi
}

# Every tool the slow stages run, for image/ci's check that they are all here: the
# base build (image/lib/base.sh), the build (image/build) and the boot test
# (image/test-boot). Keep each script's own `need` line and this list in step.
# shellcheck disable=SC2034 # used by image/ci
SLOW_STAGE_TOOLS=(mmdebstrap arch-test qemu-aarch64-static update-binfmts
    sfdisk mkfs.vfat mcopy mdir mmd mkfs.ext4 debugfs xz sha256sum
    systemctl systemd-sysusers systemd-tmpfiles python3
    qemu-system-aarch64 curl)

# check_foreign_arch: what mmdebstrap needs to build an arm64 tree on another
# machine. It refuses at once without arch-test ("install arch-test for foreign
# architecture support"), and arch-test says no without qemu-user's binfmt handler.
check_foreign_arch() {
    need mmdebstrap arch-test qemu-aarch64-static
    local out
    out=$(arch-test arm64 2>&1) ||
        die "this machine cannot run arm64 binaries (arch-test arm64: ${out:-no answer}); run image/setup (qemu-user-static, binfmt handler)"
    mmdebstrap --version >/dev/null 2>&1 || die "mmdebstrap does not run: $(mmdebstrap --version 2>&1 | head -n1)"
}

# qemu_machine_args ARRAY DISK PORT: the qemu-system-aarch64 machine image/test-boot
# boots, in one place so that image/ci can start the very same machine. Devices load
# firmware files when qemu starts (virtio-net-pci loads efi-virtio.rom from
# ipxe-qemu, a Recommends that --no-install-recommends skips).
qemu_machine_args() {
    local -n _qemu=$1
    # shellcheck disable=SC2054 # commas inside option values
    _qemu=(-M virt -cpu cortex-a72 -m 1024 -smp 2
        -drive "file=$2,format=raw,if=none,id=hd0,cache=unsafe" -device virtio-blk-pci,drive=hd0
        -netdev "user,id=n0,hostfwd=tcp:127.0.0.1:$3-:3080" -device virtio-net-pci,netdev=n0
        -object rng-random,filename=/dev/urandom,id=rng0 -device virtio-rng-pci,rng=rng0
        -display none -no-reboot)
}

# check_qemu_machine: start test-boot's machine stopped (-S) and quit it from the
# monitor: qemu realizes every device, so a missing romfile or firmware fails here,
# in a second, instead of in the boot test.
check_qemu_machine() {
    need qemu-system-aarch64
    local dir out args=()
    dir=$(mktemp -d "${TMPDIR:-/var/tmp}/aisopod-qemu-check.XXXXXX")
    truncate -s 1M "$dir/disk.img"
    # Port 0 is never forwarded to: qemu only needs a valid rule to set up the device.
    qemu_machine_args args "$dir/disk.img" 0
    if ! out=$(printf 'quit\n' | timeout 60 qemu-system-aarch64 "${args[@]}" -S -monitor stdio -serial none 2>&1); then
        rm -rf "$dir"
        case $out in
        *romfile*) die "qemu-system-aarch64 cannot start image/test-boot's machine: $(grep -o -m1 'failed to find romfile.*' <<<"$out"); install the Debian package: apt-get install ipxe-qemu (or run: image/setup)" ;;
        *) die "qemu-system-aarch64 cannot start image/test-boot's machine: $(tail -n 3 <<<"$out")" ;;
        esac
    fi
    rm -rf "$dir"
}

# Everything under /usr/sbin is on root's PATH, not always on a user's.
case ":$PATH:" in
*:/usr/sbin:*) ;;
*) PATH=$PATH:/usr/sbin:/sbin ;;
esac
export PATH
