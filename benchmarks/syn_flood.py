#!/usr/bin/env python3
"""Half-open flow benchmark: a SYN scan of N distinct flows, nothing answering.

Writes a classic pcap of ``--syns`` SYNs (nmap ``-sS`` shape: Ethernet, IPv4, TCP with an MSS
option, 58-byte frames, so 200,000 SYNs are a 14 MiB file) from 10.66.0.1 to 10.66.0.2, every
(source port, destination port) pair distinct, at ``--rate`` SYNs per second of capture time,
then runs ``pcapan connections --format csv`` on it under ``/usr/bin/time -v`` and prints peak RSS, wall time, the
number of connection rows and how many were evicted. The capture is generated here, at run
time, and deleted afterwards unless ``--keep`` (it is never committed).

    python benchmarks/syn_flood.py                       # 200,000 SYNs, default cap
    python benchmarks/syn_flood.py --max-half-open 0     # no cap (the old behaviour)
"""

from __future__ import annotations

import argparse
import json
import os
import re
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

EPOCH_S = 1_700_000_000
SRC = bytes([10, 66, 0, 1])
DST = bytes([10, 66, 0, 2])
SRC_MAC = bytes.fromhex("02000000aa01")
DST_MAC = bytes.fromhex("02000000aa02")


def _csum(b: bytes) -> int:
    if len(b) % 2:
        b += b"\0"
    s = sum(struct.unpack(f"!{len(b) // 2}H", b))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


def syn_frame(sport: int, dport: int, seq: int, ip_id: int) -> bytes:
    """One nmap-style SYN (window 1024, MSS 1460), both checksums correct."""
    tcp = (
        struct.pack("!HHIIBBHHH", sport, dport, seq, 0, 6 << 4, 0x02, 1024, 0, 0)
        + b"\x02\x04\x05\xb4"
    )
    pseudo = SRC + DST + struct.pack("!BBH", 0, 6, len(tcp))
    tcp = tcp[:16] + struct.pack("!H", _csum(pseudo + tcp)) + tcp[18:]
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(tcp), ip_id, 0, 64, 6, 0, SRC, DST)
    ip = ip[:10] + struct.pack("!H", _csum(ip)) + ip[12:]
    return DST_MAC + SRC_MAC + b"\x08\x00" + ip + tcp


def write_capture(path: Path, syns: int, rate: float) -> None:
    with path.open("wb") as f:
        f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))
        out = []
        for i in range(syns):
            sport = 40000 + i // 60000  # a scanner's few source ports ...
            dport = 1 + i % 60000  # ... times every destination port: all pairs distinct
            t_us = int(i * 1e6 / rate)
            fr = syn_frame(sport, dport, (i * 2654435761) & 0xFFFFFFFF, i & 0xFFFF)
            out.append(
                struct.pack(
                    "<IIII", EPOCH_S + t_us // 1_000_000, t_us % 1_000_000, len(fr), len(fr)
                )
                + fr
            )
            if len(out) >= 65536:
                f.write(b"".join(out))
                out.clear()
        f.write(b"".join(out))


def run(pcap: Path, cap: int | None) -> dict[str, object]:
    out_csv = pcap.with_suffix(".conn.csv")
    cmd = [sys.executable, "-m", "pcapan.cli", "connections", str(pcap), "--format", "csv"]
    if cap is not None:
        cmd += ["--max-half-open", str(cap)]
    t0 = time.perf_counter()
    with out_csv.open("w") as f:
        p = subprocess.run(
            ["/usr/bin/time", "-v", *cmd], stdout=f, stderr=subprocess.PIPE, text=True, check=False
        )
    wall = time.perf_counter() - t0
    if p.returncode != 0:
        sys.exit(f"pcapan failed ({p.returncode}): {p.stderr[-2000:]}")
    rss_kb = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", p.stderr).group(1))
    user = float(re.search(r"User time \(seconds\): ([\d.]+)", p.stderr).group(1))
    system = float(re.search(r"System time \(seconds\): ([\d.]+)", p.stderr).group(1))
    import pandas as pd

    conn = pd.read_csv(out_csv)
    out_csv.unlink()
    return {
        "max_half_open": cap,
        "peak_rss_mb": round(rss_kb / 1024, 1),
        "wall_s": round(wall, 2),
        "cpu_s": round(user + system, 2),
        "rows": len(conn),
        "evicted": int(conn["evicted"].sum()) if "evicted" in conn else None,
        "conn_states": conn["conn_state"].value_counts().to_dict(),
    }


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--syns", type=int, default=200_000)
    ap.add_argument("--rate", type=float, default=10_000.0, help="SYNs per second of capture time")
    ap.add_argument(
        "--max-half-open", type=int, default=None, help="passed to pcapan (default: its own)"
    )
    ap.add_argument("--keep", type=Path, default=None, help="keep the capture at this path")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="synflood"))
    pcap = args.keep or tmp / "synflood.pcap"
    if not pcap.exists():
        write_capture(pcap, args.syns, args.rate)
    size_mb = os.path.getsize(pcap) / 2**20
    res = run(pcap, args.max_half_open)
    res["syns"] = args.syns
    res["file_mib"] = round(size_mb, 1)
    print(json.dumps(res, indent=1))
    if args.keep is None:
        pcap.unlink()
    os.rmdir(tmp) if not any(tmp.iterdir()) else None


if __name__ == "__main__":
    main()
