#!/usr/bin/env bash
# The whole test suite: a release build and an ASan+UBSan build, each running every unit and
# integration test through ctest. Installs missing Debian packages first (a no-op when the
# README's first command already did).
set -euo pipefail
cd "$(dirname "$0")/.."
resources/install-deps.sh

cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
ninja -C build
cmake -S . -B build-asan -G Ninja -DCMAKE_BUILD_TYPE=Debug -DEMBER_SANITIZE=ON >/dev/null
ninja -C build-asan

status=0
echo "== release build =="
ctest --test-dir build --output-on-failure || status=1
echo "== ASan+UBSan build =="
ctest --test-dir build-asan --output-on-failure || status=1
exit $status
