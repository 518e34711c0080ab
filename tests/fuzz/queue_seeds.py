#!/usr/bin/env python3
"""Writes seed inputs for queue_fuzzer into DIR: small well-formed and nearly well-formed queues
(direct and indirect chains, EVENT_IDX, a table at a region's end, a full-size loop), so that the
fuzzer starts from structure instead of finding it byte by byte. The layout is the one described
at the top of queue_fuzzer.cc.

    tests/fuzz/queue_seeds.py DIR
"""
import os
import struct
import sys

NEXT, WRITE, INDIRECT = 1, 2, 4
F_INDIRECT, F_EVENT_IDX, F_FOLD = 0x10, 0x20, 0x40


def desc(addr, length, flags=0, nxt=0):
    return struct.pack("<QIHH", addr, length, flags, nxt)


def seed(log2_size, features, chains, table, heads, rest=b"", start=0, used_event=0):
    size = 1 << log2_size
    header = struct.pack("<BBHBHBHHI", log2_size | features, 0, start, chains, 0, 0, used_event,
                         0, 64)
    table = b"".join(table).ljust(16 * size, b"\0")
    avail = b"".join(struct.pack("<H", h) for h in heads).ljust(2 * size, b"\0")
    return header + table + avail + rest


def main():
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    seeds = {
        "direct": seed(3, 0, 1, [desc(0x2000, 16, NEXT, 1), desc(0x2100, 32, WRITE)], [0]),
        "indirect": seed(3, F_INDIRECT, 1, [desc(0x2000, 48, INDIRECT)], [0],
                         rest=desc(0x2100, 16, NEXT, 1) + desc(0x8000, 64, WRITE | NEXT, 2) +
                         desc(0x8100, 1, WRITE)),
        "event_idx": seed(3, F_INDIRECT | F_EVENT_IDX, 4,
                          [desc(0x2000 + 0x40 * i, 16, NEXT | (WRITE if i % 2 else 0), i + 1)
                           if i % 2 == 0 else desc(0x8000 + 0x40 * i, 8, WRITE) for i in range(8)],
                          [0, 2, 4, 6], start=0xfffe, used_event=1),
        # An indirect table in the last 16 bytes of region 0 whose entry names the next one.
        "table_at_region_end": seed(3, F_INDIRECT, 1, [desc(0x3ff0, 32, INDIRECT)], [0],
                                    rest=desc(0x2100, 1, NEXT, 1)),
        "buffer_across_gap": seed(3, 0, 1, [desc(0x3ff8, 16, WRITE)], [0]),
        "loop_256": seed(8, 0, 1, [desc(0x2000, 1, NEXT, (i + 1) % 256) for i in range(256)], [17]),
        "folded": seed(4, F_INDIRECT | F_FOLD, 2,
                       [desc(0xdead2000, 64, NEXT, 1), desc(0xbeef8000, 64, WRITE)], [0, 0]),
    }
    for name, data in seeds.items():
        with open(os.path.join(out, name), "wb") as f:
            f.write(data)


if __name__ == "__main__":
    main()
