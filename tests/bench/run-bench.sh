#!/usr/bin/env bash
# Runs a benchmark (build/bin/boot_bench, build/bin/block_bench) on this machine's KVM, or, where
# /dev/kvm cannot create a VM, inside the nested test host with QEMU shipped in beside ember so
# both monitors are measured in the same run. Figures from the test host are for the
# software-emulated machine, not for hardware: they compare ember with QEMU under the same
# emulation. api_bench is split: its parts that need no VM (startup, latency) run on this machine
# and only those that boot (boot, rate) go to the test host.
#   tests/bench/run-bench.sh boot_bench|block_bench|net_bench|api_bench|jailer_bench [BUILD_DIR] [benchmark args...]
set -euo pipefail
bench=${1:?usage: run-bench.sh boot_bench|block_bench|net_bench|api_bench|jailer_bench [BUILD_DIR] [args...]}
shift
top=$(cd "$(dirname "$0")/../.." && pwd)
build=$(cd "${1:-$top/build}" && pwd)
shift || true
ninja -C "$build" ember "$bench" probe_images >/dev/null
if [[ $bench == jailer_bench ]]; then
  exec "$build/bin/$bench" "$@"  # no VM involved: measured on this machine
fi
if "$top/resources/kvm-usable.sh"; then
  exec "$build/bin/$bench" "$@"
fi
if [[ $bench == api_bench ]]; then
  parts=startup,latency,boot,rate
  args=("$@")
  for ((i = 0; i + 1 < ${#args[@]}; i++)); do
    [[ ${args[i]} == --parts ]] && parts=${args[i + 1]}
  done
  status=0
  if [[ ,$parts, == *,startup,* || ,$parts, == *,latency,* ]]; then
    "$build/bin/$bench" "$@" || status=$?
  fi
  if [[ ,$parts, == *,boot,* || ,$parts, == *,rate,* ]]; then
    echo "$bench: no usable /dev/kvm here; boot and rate measured inside the nested test host" >&2
    "$top/resources/testhost/run.sh" --timeout 3000 --file "$build/bin/ember" \
      --file "$build/guest" -- "$build/bin/$bench" "$@" --kvm-parts-only || status=$?
  fi
  exit $status
fi
echo "$bench: no usable /dev/kvm here; measuring inside the nested test host" >&2
qemu=/usr/bin/qemu-system-x86_64
files=(--file "$build/bin/ember" --file "$build/guest" --file "$qemu" --file "$(command -v ip)")
for f in qboot.rom bios-microvm.bin pvh.bin linuxboot_dma.bin kvmvapic.bin; do
  files+=(--file "/usr/share/qemu/$f")
done
exec "$top/resources/testhost/run.sh" --timeout 3000 "${files[@]}" -- "$build/bin/$bench" "$@"
