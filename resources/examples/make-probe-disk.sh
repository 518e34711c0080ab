#!/usr/bin/env bash
# Writes a raw disk image filled with the pattern the probe's `blk` scenario checks
# (byte at offset o = (o/512)*31 + o%512 + 0x11, modulo 256; resources/probe/README.md).
#   make-probe-disk.sh PATH [KIB]     (default 64 KiB)
set -euo pipefail
path=${1:?usage: make-probe-disk.sh PATH [KIB]}
kib=${2:-64}
mkdir -p "$(dirname "$path")"
python3 - "$path" "$kib" <<'PY'
import sys
path, size = sys.argv[1], int(sys.argv[2]) * 1024
sector = lambda s: bytes(((s * 31 + i + 0x11) & 0xff) for i in range(512))
with open(path, "wb") as f:
    for s in range(size // 512):
        f.write(sector(s))
PY
