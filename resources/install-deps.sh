#!/usr/bin/env bash
# Installs the Debian 12 packages ember builds and tests with. Idempotent; run as root.
set -euo pipefail

packages=(
  build-essential cmake ninja-build pkg-config dpkg-dev
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

# cpp-httplib header-only, without TLS or compression. Linking Debian's split libcpp-httplib.so
# drags OpenSSL and brotli into every exec (~8 ms of CPU); the single header in Debian's source
# package (with Debian's security patches applied by dpkg-source) costs ~2.8 ms. Fetched here at
# setup, never committed; CMake falls back to the split library when it is absent.
httplib_dir="$(dirname "$0")/../third_party/cpp-httplib"
if [ ! -f "$httplib_dir/httplib.h" ]; then
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  src_list=/etc/apt/sources.list.d/ember-deb-src.sources
  if ! grep -rqs '^Types:.*deb-src' /etc/apt/sources.list.d/ /etc/apt/sources.list 2>/dev/null; then
    sed 's/^Types: deb$/Types: deb-src/' /etc/apt/sources.list.d/debian.sources | $SUDO tee "$src_list" >/dev/null
    $SUDO apt-get update -qq
  fi
  work="$(mktemp -d)"
  trap 'rm -rf "$work"' EXIT
  (cd "$work" && apt-get source -qq cpp-httplib 2>&1 | grep -v -e unsandboxed -e '^dpkg-source: info' || true)
  header="$(find "$work" -maxdepth 2 -name httplib.h | head -n1)"
  if [ -n "$header" ]; then
    mkdir -p "$httplib_dir"
    cp "$header" "$httplib_dir/httplib.h"
    echo "cpp-httplib header: $(grep -m1 'CPPHTTPLIB_VERSION' "$header")"
  else
    echo "warning: could not fetch cpp-httplib's source package; building against libcpp-httplib.so" >&2
  fi
fi
