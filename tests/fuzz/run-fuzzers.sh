#!/usr/bin/env bash
# Builds the libFuzzer targets in a separate clang tree and runs each for SECONDS (default 30).
#   tests/fuzz/run-fuzzers.sh [SECONDS]
# The tree is build-fuzz/ at the top of the checkout (EMBER_FUZZ_BUILD_DIR overrides it); its
# corpus/ grows from run to run, seeds/ is rewritten by tests/fuzz/*_seeds.py each run, and
# artifacts/ keeps any input that crashed. Exits 1 when a
# fuzzer fails (crash, sanitizer report, timeout, out of memory), 77 (skipped) when clang or
# its libFuzzer runtime is missing (Debian 12: apt-get install clang libclang-rt-14-dev).
set -euo pipefail

seconds="${1:-30}"
root="$(cd "$(dirname "$0")/../.." && pwd)"
build="${EMBER_FUZZ_BUILD_DIR:-$root/build-fuzz}"
fuzzers=(queue_fuzzer)

if ! command -v clang >/dev/null || ! command -v clang++ >/dev/null; then
  echo "run-fuzzers.sh: clang/clang++ not found; skipped" >&2
  exit 77
fi
probe_dir="$(mktemp -d)"
trap 'rm -rf "$probe_dir"' EXIT
printf 'extern "C" int LLVMFuzzerTestOneInput(const unsigned char*, unsigned long) { return 0; }\n' \
  >"$probe_dir/probe.cc"
if ! clang++ -fsanitize=fuzzer "$probe_dir/probe.cc" -o "$probe_dir/probe" 2>"$probe_dir/err"; then
  cat "$probe_dir/err" >&2
  echo "run-fuzzers.sh: clang++ cannot link libFuzzer (libclang_rt.fuzzer); skipped" >&2
  exit 77
fi

cmake -S "$root" -B "$build" -G Ninja -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++ \
  -DCMAKE_BUILD_TYPE=RelWithDebInfo -DEMBER_SANITIZE=ON >/dev/null
ninja -C "$build" "${fuzzers[@]}"

status=0
for f in "${fuzzers[@]}"; do
  corpus="$build/corpus/$f"
  seeds="$build/seeds/$f"
  mkdir -p "$corpus" "$seeds" "$build/artifacts"
  # tests/fuzz/<name without _fuzzer>_seeds.py, when there is one, writes structured seeds.
  seeder="$root/tests/fuzz/${f%_fuzzer}_seeds.py"
  if [ -x "$seeder" ]; then "$seeder" "$seeds"; fi
  echo "== $f for ${seconds}s =="
  # New inputs go to the first directory; the seeds are only read. -timeout: one input running
  # longer than 10 s is a hang, reported like a crash.
  if ! "$build/bin/$f" "$corpus" "$seeds" -max_total_time="$seconds" -timeout=10 \
       -print_final_stats=1 -artifact_prefix="$build/artifacts/$f-"; then
    echo "== $f FAILED: see $build/artifacts/ ==" >&2
    status=1
  fi
done
exit $status
