#!/usr/bin/env bash
# Runs the KVM-dependent integration tests inside the software-emulated test host
# (resources/testhost) when this machine's /dev/kvm cannot create a VM; on a machine with a
# usable /dev/kvm they already ran directly, so this exits 77 (ctest: skipped).
#   run-in-testhost.sh BUILD_DIR
set -euo pipefail
build=$(cd "$1" && pwd)
top=$(cd "$(dirname "$0")/../.." && pwd)
if "$top/resources/kvm-usable.sh"; then
  echo "/dev/kvm is usable here: the boot tests ran directly"
  exit 77
fi
tests='BootTest.*:VirtioTest.*:VirtioNetTest.*:VsockTest.*:ApiTest.*:ApiBadInputTest.BatteryWhileProbeRuns:SeccompTest.*:ApiClientsTest.Kata*'
jail_tests='JailerBootTest.*:JailerTest.CgroupV2UnifiedHierarchy'
# The sanitizer build's ember is dynamically linked: a jail needs its shared libraries, which the
# tests find with ldd, and the test host has no ldd. There the jailer runs on this machine only
# (JailerTest.*, no KVM); the release build's static ember runs the jailed boots here.
if ! grep -q '^EMBER_SANITIZE:BOOL=ON' "$build/CMakeCache.txt"; then
  tests="$tests:$jail_tests"
fi
# Build trees keep their absolute paths inside the test host, so the binaries find each other.
exec "$top/resources/testhost/run.sh" --timeout 1200 \
  --file "$build/bin/ember" --file "$build/bin/ember-jailer" \
  --file "$build/bin/ember-seccomp-selftest" --file "$build/bin/integration_tests" --file "$build/guest" \
  --file "$(command -v ip)" \
  -- "$build/bin/integration_tests" --gtest_filter="$tests" --gtest_color=no
