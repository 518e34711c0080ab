#!/bin/sh
# Boots a probe image under QEMU's microvm machine, for checking the probe without the VMM.
#   run-under-qemu.sh <image> [append] [smp] [mem-mib] [accel] [qemu-args...]
# image:  probe.elf (booted through its PVH note) or probe.bzImage (QEMU's 16-bit bzImage path,
#         which the image's setup stub carries into the 64-bit entry). probe-linux64.elf has no
#         PVH note and cannot be booted by QEMU.
# append: kernel command line (default "probe=boot,smp,irq"); smp: vCPUs (default 1);
# mem-mib: RAM in MiB (default 128); accel: tcg (default) or kvm; qemu-args: passed on, e.g.
# virtio devices (virtio-mmio is switched to its modern, version-2 interface).
# The serial console is this script's stdin/stdout, so `printf 'hello\n' | run-under-qemu.sh ...`
# feeds the serial-in scenario. QEMU exits when the probe resets or triple-faults (-no-reboot).
set -eu
if [ $# -lt 1 ]; then
  sed -n '2,13p' "$0" >&2
  exit 2
fi
image=$1
append=${2:-probe=boot,smp,irq}
smp=${3:-1}
mem=${4:-128}
accel=${5:-tcg}
if [ $# -gt 5 ]; then shift 5; else shift $#; fi
cpu=max
[ "$accel" = kvm ] && cpu=host
exec qemu-system-x86_64 -M microvm,acpi=off -accel "$accel" -cpu "$cpu" -m "$mem" -smp "$smp" \
  -nodefaults -no-reboot -nographic -serial stdio -global virtio-mmio.force-legacy=false \
  -kernel "$image" -append "$append" "$@"
