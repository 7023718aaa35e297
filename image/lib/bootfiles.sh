# shellcheck shell=bash
# write_boot_config DIR PARTUUID: the Raspberry Pi firmware's config.txt and the
# kernel's cmdline.txt for the boot partition (used by image/build and tested by
# image/tests/assemble.sh).
write_boot_config() {
    local dir=$1 partuuid=$2
    cat >"$dir/config.txt" <<EOT
# aisopod SD-card image: Raspberry Pi firmware configuration.
[all]
arm_64bit=1
# Debian's kernel uses the upstream device trees (bcm2711-rpi-4-b.dtb, ...).
upstream_kernel=1
kernel=vmlinuz
initramfs initrd.img followkernel
enable_uart=1
disable_overscan=1
# I2C on the GPIO header, for the status display.
dtparam=i2c_arm=on
EOT
    # The memory cgroup controller: Raspberry Pi foundation kernels disable it
    # unless asked, and the tool sandbox needs it (Debian's kernel has it on; the
    # flags are harmless there). One line, as the firmware wants it.
    printf '%s\n' "console=ttyS1,115200 console=tty1 root=PARTUUID=$partuuid rootfstype=ext4 rootwait fsck.repair=yes net.ifnames=0 cgroup_enable=memory cgroup_memory=1" >"$dir/cmdline.txt"
}
