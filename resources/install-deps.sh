#!/usr/bin/env bash
# Installs the Debian 12 packages ember builds and tests with. Idempotent; run as root.
set -euo pipefail

packages=(
  build-essential cmake ninja-build pkg-config
  libseccomp-dev rapidjson-dev libcpp-httplib-dev libgtest-dev libgmock-dev clang libclang-rt-14-dev
  # Side-by-side peer for benchmarks and the independent check of the probe guest; also the
  # software-emulated test host (resources/testhost) on machines whose /dev/kvm is unusable.
  qemu-system-x86 busybox-static cpio lz4 xz-utils zstd python3 iproute2
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
