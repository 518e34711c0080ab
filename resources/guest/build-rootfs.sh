#!/usr/bin/env bash
# Builds an ext4 root filesystem with Debian's static busybox for ember guests, without root
# (mke2fs -d): busybox and its applet links, /sbin/init (a shell script: mounts, a marker with
# the uptime, then a shell on the console, or a reboot with ember.halt_after_init), and the
# usual mount points.
#   build-rootfs.sh [OUT_IMAGE] [SIZE]      default build/guest-rootfs.ext4, 64M
# Boot it with a kernel from build-kernel.sh (see README.md): drives[0] is_root_device true,
# boot_args "console=ttyS0 reboot=k panic=1 pci=off".
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
image=$(realpath -m -- "${1:-$root/build/guest-rootfs.ext4}")
size=${2:-64M}
work=$(mktemp -d "${TMPDIR:-/tmp}/guest-rootfs.XXXXXX")
trap 'rm -rf "$work"' EXIT
log() { printf 'guest-rootfs: %s\n' "$*" >&2; }

command -v mke2fs >/dev/null || { log "mke2fs missing (e2fsprogs)"; exit 1; }
# apt-get as root warns that _apt cannot write to the temporary directory; harmless.
(cd "$work" && apt-get download -qq busybox-static 2>&1 | grep -v 'unsandboxed' >&2 || true)
ls "$work"/busybox-static_*.deb >/dev/null || { log "apt-get download busybox-static failed"; exit 1; }
dpkg-deb -x "$work"/busybox-static_*.deb "$work/pkg"

r=$work/root
mkdir -p "$r"/{bin,sbin,etc,proc,sys,dev,tmp,run,root,mnt,var/log}
cp "$work/pkg/bin/busybox" "$r/bin/busybox"
for applet in $("$r/bin/busybox" --list); do
  [[ $applet == busybox || -e $r/bin/$applet ]] || ln -s busybox "$r/bin/$applet"
done
cat >"$r/sbin/init" <<'INIT'
#!/bin/sh
# ember guest init: the kernel runs it as PID 1 from the ext4 root.
export PATH=/bin:/sbin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev 2>/dev/null
mount -t tmpfs tmpfs /tmp
mount -t tmpfs tmpfs /run
hostname ember-guest
echo "EMBER-GUEST-INIT: nproc=$(nproc) uptime=$(cut -d' ' -f1 /proc/uptime)"
if grep -qw ember.halt_after_init /proc/cmdline; then
  reboot -f
fi
# A shell on the console; leaving it reboots the guest, which ends ember (reboot=k).
setsid sh -c 'exec sh </dev/ttyS0 >/dev/ttyS0 2>&1'
reboot -f
INIT
chmod 755 "$r/sbin/init"
printf 'root:x:0:0:root:/root:/bin/sh\n' >"$r/etc/passwd"
printf 'root:x:0:\n' >"$r/etc/group"

rm -f "$image"
mkdir -p "$(dirname "$image")"
mke2fs -q -t ext4 -L rootfs -d "$r" "$image" "$size"
log "done: $image ($size)"
