#!/usr/bin/env bash
# Boots a real, stock Linux under ember: Debian 12's cloud kernel (the test host's own package),
# as a bzImage (64-bit boot protocol) and as its ELF vmlinux (which carries the PVH note), each
# with a busybox initramfs whose init prints a marker and reboots through the i8042 (reboot=k).
# Each format boots with 1 and with 2 vCPUs: this kernel is built without CONFIG_X86_MPPARSE, so
# it finds the second vCPU only in the ACPI MADT (vmm/arch/x86_64/acpi.h); its init prints nproc
# and the check requires the configured count. Runs directly where /dev/kvm works, else inside the nested test host (resources/testhost).
#   linux-in-testhost.sh BUILD_DIR
set -euo pipefail
build=$(cd "$1" && pwd)
top=$(cd "$(dirname "$0")/../.." && pwd)
"$top/resources/testhost/build.sh" "$build" >/dev/null
th=$build/testhost
bzimage=$(ls "$th"/cache/linux-image-*/boot/vmlinuz-* | head -n1)

work=$build/linux-test
rm -rf "$work" && mkdir -p "$work/initramfs/bin" "$work/initramfs/proc"
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

# The guest is quiet and has no RTC (ember has none; the CMOS probe would stall ~6 s).
args="console=ttyS0 reboot=k panic=1 quiet i8042.noaux i8042.nomux i8042.dumbkbd initcall_blacklist=cmos_init"
write_config() { # NAME KERNEL VCPUS
  cat >"$work/$1.json" <<JSON
{"boot-source": {"kernel_image_path": "$2", "initrd_path": "$work/initrd.cpio", "boot_args": "$args"},
 "machine-config": {"vcpu_count": $3, "mem_size_mib": 256}}
JSON
}
cp "$bzimage" "$work/bzImage"
cp "$th/vmlinux" "$work/vmlinux"
write_config bzimage "$work/bzImage" 1
write_config vmlinux "$work/vmlinux" 1
write_config bzimage-smp "$work/bzImage" 2
write_config vmlinux-smp "$work/vmlinux" 2

cat >"$work/check.sh" <<CHECK
#!/bin/sh
# Each boot gets 60 s (about 3 s is normal in the test host) and one retry: the emulated test
# host occasionally stalls a boot. A failed attempt prints ember's output, so a real hang shows.
failed=0
for run in bzimage:1 vmlinux:1 bzimage-smp:2 vmlinux-smp:2; do
  name=\${run%%:*}; cpus=\${run##*:}
  for attempt in 1 2; do
    timeout 60 "$build/bin/ember" --no-api --config-file "$work/\$name.json" >"$work/\$name.log" 2>&1
    rc=\$?
    echo "== \$name (\$cpus vCPUs), attempt \$attempt: ember exit \$rc"
    grep -E "LINUX-INIT|ERROR|stopped" "$work/\$name.log"
    if [ \$rc -eq 0 ] && grep -q "LINUX-INIT: nproc=\$cpus " "$work/\$name.log"; then break; fi
    echo "-- \$name attempt \$attempt failed; the end of its output:"; tail -n 20 "$work/\$name.log"
    [ \$attempt -eq 2 ] && failed=1
  done
done
exit \$failed
CHECK
chmod +x "$work/check.sh"

if "$top/resources/kvm-usable.sh"; then
  exec "$work/check.sh"
fi
exec "$top/resources/testhost/run.sh" --timeout 330 --file "$build/bin/ember" --file "$work" \
  -- /bin/sh "$work/check.sh"
