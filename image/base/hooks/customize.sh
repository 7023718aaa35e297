#!/usr/bin/env bash
# mmdebstrap --customize-hook: runs after every package is installed.
#  1. restores update-initramfs and builds one initramfs with only the modules
#     needed to find the root filesystem on a Raspberry Pi 4 SD card
#     (sdhci-iproc, mmc) or a virtio disk (the boot test), instead of MODULES=most;
#  2. removes what must never be shared between devices: SSH host keys and the
#     machine id (made at first boot);
#  3. leaves ssh disabled (first boot enables it when the user dropped a key).
# Device configuration (units, network, the gateway) is NOT done here but in
# image/build's overlay stage, so changing it does not rebuild this cached base.
set -Eeuo pipefail
root=${1:?usage: customize.sh ROOTDIR}

# ---- 1. one small initramfs -------------------------------------------------
rm -f "$root/usr/sbin/update-initramfs"
chroot "$root" dpkg-divert --local --rename --remove /usr/sbin/update-initramfs

mkdir -p "$root/etc/initramfs-tools/conf.d"
cat >"$root/etc/initramfs-tools/conf.d/aisopod.conf" <<'CONF'
# aisopod image: only the modules listed in /etc/initramfs-tools/modules (plus
# their dependencies). MODULES=dep cannot work when the image is built on
# another machine, and MODULES=most makes a 30+ MB initramfs.
MODULES=list
COMPRESS=zstd
CONF
cat >"$root/etc/initramfs-tools/modules" <<'MODS'
# aisopod image: what it takes to mount the root filesystem.
# Raspberry Pi 4 (bcm2711): SD card on the EMMC2 controller, and the older SDHOST
mmc_block
sdhci_iproc
sdhci_pltfm
bcm2835
# qemu -M virt (image/test-boot): virtio disk and network over PCI or MMIO
virtio_pci
virtio_mmio
virtio_blk
virtio_net
# root filesystem
ext4
crc32c_generic
MODS

kver=$(basename "$(find "$root/lib/modules" -mindepth 1 -maxdepth 1 -type d | sort | tail -n1)")
start=$SECONDS
chroot "$root" update-initramfs -c -k "$kver"
echo "customize: initramfs for $kver built in $((SECONDS - start))s," \
    "$(stat -c %s "$root/boot/initrd.img-$kver") bytes" >&2

# ---- 2. nothing device-specific ---------------------------------------------
rm -f "$root"/etc/ssh/ssh_host_*
printf 'uninitialized\n' >"$root/etc/machine-id"
rm -f "$root/var/lib/dbus/machine-id"

# ---- 3. no SSH server by default ----------------------------------------------
systemctl --root="$root" disable ssh.service ssh.socket >/dev/null 2>&1 || true
rm -f "$root/etc/systemd/system/sshd.service"
