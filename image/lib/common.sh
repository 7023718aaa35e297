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

# Everything under /usr/sbin is on root's PATH, not always on a user's.
case ":$PATH:" in
*:/usr/sbin:*) ;;
*) PATH=$PATH:/usr/sbin:/sbin ;;
esac
export PATH
