#!/usr/bin/env bash
# mmdebstrap --essential-hook: runs once the Essential packages are installed and
# before the image's own packages are. Disables update-initramfs for the rest of
# the package installation: under qemu-user every mkinitramfs run of Debian's
# default MODULES=most takes ~13 minutes, and the kernel's postinst and the
# initramfs-tools trigger would each run one. customize.sh undoes the diversion
# and builds ONE small initramfs.
set -Eeuo pipefail
root=${1:?usage: essential.sh ROOTDIR}

chroot "$root" dpkg-divert --local --rename \
    --divert /usr/sbin/update-initramfs.aisopod-real --add /usr/sbin/update-initramfs
mkdir -p "$root/usr/sbin"
cat >"$root/usr/sbin/update-initramfs" <<'STUB'
#!/bin/sh
echo "update-initramfs: disabled while the aisopod image is built ($*)" >&2
exit 0
STUB
chmod 0755 "$root/usr/sbin/update-initramfs"
