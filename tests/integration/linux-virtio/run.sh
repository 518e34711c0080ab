#!/usr/bin/env bash
# linux-virtio and linux-api: the stock Debian kernel of the test host boots under ember with a
# virtio block device, a network interface, vsock and an entropy device, found through ember's
# ACPI DSDT (the kernel has CONFIG_VIRTIO_MMIO=m and no command-line devices). Its busybox
# initramfs loads the modules from the same package, mounts an ext4 image made here with
# `mke2fs -d`, pings the TAP, and talks vsock both ways (guest-init.sh); check.sh verifies it
# from the host side inside L1. Mode "config" boots from a config file, mode "api" drives the same
# boot over the API socket, with a pause and a resume.
#   run.sh BUILD_DIR [config] [api]      (default: both, in one test-host run)
# Runs directly where /dev/kvm works (as root: it needs a network namespace), else inside the
# nested test host.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../../.." && pwd)
build=$(cd "$1" && pwd)
shift
modes=("$@")
((${#modes[@]})) || modes=(config api)
"$top/resources/testhost/build.sh" "$build" >/dev/null
th=$build/testhost
work=$build/linux-virtio
mkdir -p "$work"

# Static helpers: busybox has no AF_VSOCK, and the test host has no curl.
if [[ ! -x $work/lv-vsock || $here/lv-vsock.c -nt $work/lv-vsock ]]; then
  gcc -std=c11 -O2 -Wall -Wextra -Werror -static -o "$work/lv-vsock" "$here/lv-vsock.c"
fi
if [[ ! -x $work/lv-api || $here/lv-api.cc -nt $work/lv-api ||
  $top/tests/support/api_client.cc -nt $work/lv-api ]]; then
  g++ -std=c++20 -O2 -Wall -Wextra -static -I"$top" -o "$work/lv-api" "$here/lv-api.cc" \
    "$top/tests/support/api_client.cc"
fi

# The guest's initramfs: busybox, the modules in load order, lv-vsock, and the init.
rm -rf "$work/initramfs" && mkdir -p "$work/initramfs"/{bin,lib/modules,proc,sys,dev,tmp}
cp "$th/busybox" "$work/initramfs/bin/busybox"
for tool in sh mount umount cat cut nproc reboot insmod sleep ip ping grep tail tr dd od sync \
  mkdir kill; do
  ln -s busybox "$work/initramfs/bin/$tool"
done
cp "$th/guest-modules/"*.ko "$th/guest-modules/order" "$work/initramfs/lib/modules/"
cp "$work/lv-vsock" "$work/initramfs/bin/"
install -m 755 "$here/guest-init.sh" "$work/initramfs/init"
(cd "$work/initramfs" && find . | LC_ALL=C sort | cpio -o -H newc -R 0:0 --quiet) >"$work/initrd.cpio"

# The data disk: ext4 with a file whose random content the guest must print.
od -An -N 8 -t x1 /dev/urandom | tr -d ' \n' | sed 's/^/lv-token-/' >"$work/token"
rm -rf "$work/disk-root" && mkdir -p "$work/disk-root"
cp "$work/token" "$work/disk-root/from-host.txt"
rm -f "$work/disk.ext4"
mke2fs -q -t ext4 -L lvdata -d "$work/disk-root" "$work/disk.ext4" 16M

cp "$(ls "$th"/cache/linux-image-*/boot/vmlinuz-* | head -n1)" "$work/bzImage"
cp "$th/vmlinux" "$work/vmlinux"
install -m 755 "$here/check.sh" "$work/check.sh"

if "$top/resources/kvm-usable.sh"; then
  LV_IP=$(command -v ip) exec "$work/check.sh" "$work" "$build/bin/ember" "${modes[@]}"
fi
# About 15 s per mode in the test host; 120 s each leaves room for a slow, loaded machine.
exec "$top/resources/testhost/run.sh" --timeout $((60 + 120 * ${#modes[@]})) \
  --file "$build/bin/ember" --file "$work" \
  --file "$(command -v ip)" --file "$(command -v debugfs)" --file "$(command -v e2fsck)" \
  --env LV_IP="$(command -v ip)" -- /bin/sh "$work/check.sh" "$work" "$build/bin/ember" "${modes[@]}"
