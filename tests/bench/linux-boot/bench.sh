#!/bin/sh
# The L1 side of run.sh: boots the same kernel and initramfs alternately under ember and under
# QEMU's microvm, RUNS times each, and prints every run and the medians of the time from exec to
# the guest init's marker (time-to-marker.c).
#   bench.sh WORK EMBER QEMU RUNS
set -u
work=$1 ember=$2 qemu=$3 runs=$4
# The same guest command line for both (quiet, no RTC probe: ember has none).
args="console=ttyS0 reboot=k panic=1 quiet pci=off i8042.noaux i8042.nomux i8042.dumbkbd"
cat >"$work/vm.json" <<JSON
{"boot-source": {"kernel_image_path": "$work/vmlinux", "initrd_path": "$work/initrd.cpio", "boot_args": "$args"},
 "machine-config": {"vcpu_count": 1, "mem_size_mib": 256}}
JSON
run() { # NAME COMMAND...
  name=$1
  shift
  r=$("$work/time-to-marker" LINUX-INIT 90 "$work/$name.log" -- "$@")
  echo "$name $r $(grep -o 'uptime=[0-9.]*' "$work/$name.log" | tr -d '\r')"
}
: >"$work/results"
i=1
while [ $i -le "$runs" ]; do
  run ember "$ember" --no-api --config-file "$work/vm.json" | tee -a "$work/results"
  run qemu "$qemu" -M microvm -accel kvm -cpu host -m 256 -smp 1 -nodefaults -no-user-config \
    -display none -serial stdio -monitor none -no-reboot \
    -kernel "$work/vmlinux" -initrd "$work/initrd.cpio" -append "$args" | tee -a "$work/results"
  i=$((i + 1))
done
median() { # NAME: median marker_ms of NAME's runs
  grep "^$1 " "$work/results" | sed -n 's/.*marker_ms=\([0-9]*\).*/\1/p' | sort -n |
    awk '{ v[NR] = $1 } END { if (NR == 0) print "none"; else if (NR % 2) print v[(NR + 1) / 2];
          else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}
e=$(median ember)
q=$(median qemu)
echo "LINUX-BOOT-BENCH: exec to init marker, median of $runs: ember ${e} ms, qemu microvm ${q} ms," \
  "ember/qemu $(awk -v e="$e" -v q="$q" 'BEGIN { if (q > 0 && e > 0) printf "%.2f", e / q; else print "n/a" }')"
