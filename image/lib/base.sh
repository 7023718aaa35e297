# shellcheck shell=bash
# The cached base root filesystem: Debian bookworm arm64 from mmdebstrap with
# the packages in image/base/packages, hooks image/base/hooks/*. Stored as one
# tar (ownership and modes preserved) under $AISOPOD_IMAGE_CACHE, keyed by a
# hash of the package list, the hooks and the mmdebstrap options, so a new
# gateway binary or a changed overlay never rebuilds it.

IMAGE_DIR=${IMAGE_DIR:?}
CACHE_DIR=${AISOPOD_IMAGE_CACHE:-/var/cache/aisopod-image}
SUITE=bookworm
MIRROR=${AISOPOD_DEBIAN_MIRROR:-http://deb.debian.org/debian}
SECURITY_MIRROR=${AISOPOD_DEBIAN_SECURITY_MIRROR:-http://deb.debian.org/debian-security}

base_packages() {
    sed -e 's/#.*//' -e 's/[[:space:]]//g' "$IMAGE_DIR/base/packages" | grep -v '^$' | sort -u
}

# The mmdebstrap options that shape the tree (part of the cache key).
base_options() {
    local -n _opts=$1
    # shellcheck disable=SC2054 # commas inside option values
    _opts=(
        --arch=arm64 --variant=apt --components=main,non-free-firmware
        --include="$(base_packages | paste -sd, -)"
        # Docs, man pages and translations: ~40 MB nobody reads on the device.
        # Copyright files stay (licences).
        --dpkgopt='path-exclude=/usr/share/man/*'
        --dpkgopt='path-exclude=/usr/share/doc/*'
        --dpkgopt='path-include=/usr/share/doc/*/copyright'
        --dpkgopt='path-exclude=/usr/share/locale/*'
        --dpkgopt='path-exclude=/usr/share/info/*'
        --dpkgopt='path-exclude=/usr/share/lintian/*'
        --aptopt='Acquire::Retries "3"'
        --essential-hook="$IMAGE_DIR/base/hooks/essential.sh"
        --customize-hook="$IMAGE_DIR/base/hooks/customize.sh"
    )
}

base_key() {
    local opts
    base_options opts
    {
        # The hooks' paths name the checkout; their content (below) is what counts, so
        # every clone of the same commit finds the same cached base.
        printf '%s\n' "$SUITE" "$MIRROR" "$SECURITY_MIRROR" "${opts[@]//"$IMAGE_DIR"/IMAGE_DIR}"
        base_packages
        cat "$IMAGE_DIR/base/hooks/essential.sh" "$IMAGE_DIR/base/hooks/customize.sh"
    } | sha256sum | cut -c1-16
}

base_tar_path() { printf '%s/base-%s.tar\n' "$CACHE_DIR" "$(base_key)"; }

# ensure_base: print the path of the cached base tar, building it if missing.
ensure_base() {
    local tar opts tmp start
    tar=$(base_tar_path)
    if [[ -s $tar ]]; then
        log "base root filesystem: cached $tar ($(du -h "$tar" | cut -f1))"
        printf '%s\n' "$tar"
        return 0
    fi
    check_foreign_arch
    [[ $(id -u) -eq 0 ]] || die "building the base root filesystem needs root (mmdebstrap runs arm64 package scripts in a chroot)"
    mkdir -p "$CACHE_DIR"
    exec 9>"$CACHE_DIR/.lock"
    flock 9
    if [[ -s $tar ]]; then # built by a concurrent run while we waited
        printf '%s\n' "$tar"
        return 0
    fi
    base_options opts
    tmp="$tar.tmp.$$"
    log "building the base root filesystem (tens of minutes: arm64 package scripts run under qemu-user) -> $tar"
    start=$SECONDS
    mmdebstrap --format=tar "${opts[@]}" "$SUITE" "$tmp" \
        "deb $MIRROR $SUITE main non-free-firmware" \
        "deb $MIRROR $SUITE-updates main non-free-firmware" \
        "deb $SECURITY_MIRROR $SUITE-security main non-free-firmware" >&2 ||
        { rm -f "$tmp"; die "mmdebstrap failed (see above)"; }
    mv "$tmp" "$tar"
    log "base root filesystem built in $((SECONDS - start))s: $tar ($(du -h "$tar" | cut -f1))"
    exec 9>&-
    printf '%s\n' "$tar"
}
