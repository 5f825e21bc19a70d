#!/usr/bin/env python3
"""The floor: walk pcap record headers in pure Python and do nothing else.

Reads the file in 8 MiB chunks and steps from record to record with one ``unpack_from`` per
record. Any analyser that spends Python work per packet cannot be faster than this; one that is
faster must avoid a per-packet Python loop altogether. Prints the packet and byte counts.
"""

from __future__ import annotations

import struct
import sys

CHUNK = 8 << 20
LITTLE_MAGICS = (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1")  # microsecond, nanosecond
BIG_MAGICS = (b"\xa1\xb2\xc3\xd4", b"\xa1\xb2\x3c\x4d")


def walk(path: str) -> tuple[int, int]:
    with open(path, "rb") as f:
        magic = f.read(24)[:4]
        if magic in LITTLE_MAGICS:
            order = "<"
        elif magic in BIG_MAGICS:
            order = ">"
        else:
            raise SystemExit(f"{path}: not a classic pcap file")
        caplen_at = struct.Struct(order + "I").unpack_from
        packets = 0
        captured = 0
        carry = b""
        while chunk := f.read(CHUNK):
            buf = carry + chunk if carry else chunk
            n = len(buf)
            pos = 0
            while pos + 16 <= n:
                caplen = caplen_at(buf, pos + 8)[0]
                nxt = pos + 16 + caplen
                if nxt > n:
                    break  # record continues in the next chunk
                packets += 1
                captured += caplen
                pos = nxt
            carry = buf[pos:]
    return packets, captured


def main() -> int:
    packets, captured = walk(sys.argv[1])
    print(f"{packets} packets, {captured} captured bytes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
