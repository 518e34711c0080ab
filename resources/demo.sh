#!/usr/bin/env bash
# The README's first command: installs the build dependencies (Debian 12, as root or with sudo),
# builds ember and the probe guest, and boots the bundled demo microVM from its config file.
set -euo pipefail
cd "$(dirname "$0")/.."

resources/install-deps.sh
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
ninja -C build ember probe_images

config=resources/examples/demo.json
# The demo's drive: a fresh image carrying the pattern the probe's blk scenario reads.
resources/examples/make-probe-disk.sh build/demo/disk.img
if resources/kvm-usable.sh; then
  exec build/bin/ember --no-api --boot-timer --config-file "$config"
fi
# No usable /dev/kvm (a nested machine like our CI's): boot the same demo inside the
# software-emulated test host, whose own KVM runs ember.
echo "demo: /dev/kvm cannot create a VM here; booting the demo inside the nested test host" >&2
exec resources/testhost/run-ember.sh --boot-timer --config-file "$config"
