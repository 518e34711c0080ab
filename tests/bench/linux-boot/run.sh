#!/usr/bin/env bash
# Linux boot benchmark: wall time from the VMM's exec to the guest init's marker for the test
# host's stock Debian kernel (ELF vmlinux, PVH entry, 1 vCPU, 256 MiB) and a busybox initramfs,
# under ember and under QEMU's microvm, alternating in the same run. Where /dev/kvm cannot create
# a VM this runs inside the nested test host (QEMU TCG + emulated SVM): those figures are for
# the emulated machine, so compare the ratio, not the absolute times.
#   tests/bench/linux-boot/run.sh [BUILD_DIR] [RUNS]      (default build, 5 runs)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../../.." && pwd)
build=$(cd "${1:-$top/build}" && pwd)
runs=${2:-5}
ninja -C "$build" ember >/dev/null
"$top/resources/testhost/build.sh" "$build" >/dev/null
th=$build/testhost
work=$build/linux-boot-bench
rm -rf "$work" && mkdir -p "$work/initramfs/bin" "$work/initramfs/proc"
gcc -std=c11 -O2 -Wall -Wextra -Werror -static -o "$work/time-to-marker" "$here/time-to-marker.c"

# The initramfs of linux-in-testhost.sh: print a marker with the uptime, then reboot.
cp "$th/busybox" "$work/initramfs/bin/busybox"
for tool in sh mount cat cut nproc reboot; do ln -s busybox "$work/initramfs/bin/$tool"; done
cat >"$work/initramfs/init" <<'INIT'
#!/bin/sh
mount -t proc proc /proc
echo "LINUX-INIT: nproc=$(nproc) uptime=$(cut -d' ' -f1 /proc/uptime)"
reboot -f
INIT
chmod +x "$work/initramfs/init"
(cd "$work/initramfs" && find . | cpio -o -H newc 2>/dev/null) >"$work/initrd.cpio"
cp "$th/vmlinux" "$work/vmlinux"
install -m 755 "$here/bench.sh" "$work/bench.sh"

qemu=$(command -v qemu-system-x86_64)
if "$top/resources/kvm-usable.sh"; then
  exec "$work/bench.sh" "$work" "$build/bin/ember" "$qemu" "$runs"
fi
echo "linux-boot bench: no usable /dev/kvm here; measuring inside the nested test host" >&2
files=(--file "$build/bin/ember" --file "$work" --file "$qemu")
for f in qboot.rom bios-microvm.bin pvh.bin linuxboot_dma.bin kvmvapic.bin; do
  files+=(--file "/usr/share/qemu/$f")
done
exec "$top/resources/testhost/run.sh" --timing --timeout $((120 + 60 * runs)) "${files[@]}" \
  -- /bin/sh "$work/bench.sh" "$work" "$build/bin/ember" "$qemu" "$runs"
