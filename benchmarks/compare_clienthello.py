#!/usr/bin/env python3
"""Compare every TLS ClientHello tshark reads in a capture with pcapan's tls table.

    PYTHONPATH=. python benchmarks/compare_clienthello.py CAPTURE [--show N]

For each TCP connection in which tshark (``-o tcp.reassemble_out_of_order:TRUE``) finds a
ClientHello, the pcapan connection with the same 5-tuple and the same first-packet time is looked
up, and its tls row is checked: a row exists, ``server_name`` equals tshark's
``tls.handshake.extensions_server_name``, ``ts_client_hello`` is set and within 1 ms of tshark's
ClientHello frame, ``established`` is True when tshark saw the handshake complete (ServerHello,
then application data from both sides), and ``ts_first_request`` is not the ClientHello's time.
Each connection is also classed by its client port: fresh, or reused (an earlier connection
from the same client address and port, ordered by start time), with how that earlier one ended
(RST seen or not), so that a defect tied to port reuse (issue 13, 2b) shows as a difference in
the broken rates. Prints the counts, the broken rates by class, and the uid, 5-tuple and start
time of every mismatch (the first ``--show``). Exit status 1 when any row is broken.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

FIELDS = [
    "tcp.stream",
    "frame.time_epoch",
    "ip.src",
    "ipv6.src",
    "tcp.srcport",
    "ip.dst",
    "ipv6.dst",
    "tcp.dstport",
    "tcp.flags.syn",
    "tcp.flags.ack",
    "tcp.flags.reset",
    "tls.handshake.type",
    "tls.record.content_type",
    "tls.record.opaque_type",  # TLS 1.3 records carry their type here
    "tls.handshake.extensions_server_name",
]
TS_TOLERANCE_S = 0.001  # pcapan's and tshark's times of one frame: same pcap record, so ~0
START_TOLERANCE_S = 0.0001  # pcapan's ts (first packet) vs tshark's first frame of the stream


def _flag(v: str) -> bool:
    return v in ("1", "True")


@dataclass
class Stream:
    """One tshark tcp.stream, with what this comparison needs."""

    n: int
    t0: float
    first: tuple[str, int, str, int]  # src, sport, dst, dport of the first frame
    client: tuple[str, int, str, int] | None = None  # from the SYN (no ACK)
    rst: bool = False
    ch_times: list[float] = field(default_factory=list)
    sni: str = ""
    server_hello: bool = False
    app_from: set[bool] = field(default_factory=set)  # True: client sent application data
    t1: float = 0.0  # last frame
    pkts: list[int] = field(default_factory=lambda: [0, 0])  # from the client, from the server
    reused: bool = False  # an earlier connection had this client address and port
    prev_rst: bool | None = None
    prev_gap_s: float | None = None  # start to start
    same_tuple: bool = False  # ... and the same server address and port (5-tuple reuse)
    tuple_prev_rst: bool | None = None
    tuple_idle_s: float | None = None  # the earlier one's last frame to this one's first

    @property
    def tuple(self) -> tuple[str, int, str, int]:
        return self.client or self.first

    @property
    def established(self) -> bool:
        return self.server_hello and self.app_from == {True, False}


def tshark_streams(path: Path) -> dict[int, Stream]:
    cmd = [
        "tshark",
        "-r",
        str(path),
        "-n",
        "-o",
        "tcp.reassemble_out_of_order:TRUE",
        "-Y",
        "tcp",
        "-T",
        "fields",
        "-E",
        "separator=/t",
        "-E",
        "occurrence=a",
        "-E",
        "aggregator=,",
    ]
    for f in FIELDS:
        cmd += ["-e", f]
    r = subprocess.run(cmd, capture_output=True, text=True, check=True)
    streams: dict[int, Stream] = {}
    for line in r.stdout.splitlines():
        (stream, t, s4, s6, sport, d4, d6, dport, syn, ack, rst, hs, ctype, otype, sni) = (
            line.split("\t")
        )
        n = int(stream)
        src, dst = s4 or s6, d4 or d6
        st = streams.get(n)
        if st is None:
            st = streams[n] = Stream(n, float(t), (src, int(sport), dst, int(dport)))
        st.t1 = float(t)
        if _flag(syn) and not _flag(ack):
            st.client = (src, int(sport), dst, int(dport))
        st.pkts[0 if st.tuple[:2] == (src, int(sport)) else 1] += 1
        st.rst |= _flag(rst)
        types = hs.split(",") if hs else []
        if "1" in types:
            st.ch_times.append(float(t))
            if sni and not st.sni:
                st.sni = sni.split(",")[0]
        st.server_hello |= "2" in types
        if "23" in f"{ctype},{otype}".split(","):
            st.app_from.add(st.tuple[:2] == (src, int(sport)))
    # client port reuse, in start order
    last: dict[tuple[str, int], Stream] = {}
    last5: dict[tuple[str, int, str, int], Stream] = {}
    for st in sorted(streams.values(), key=lambda s: s.t0):
        key = st.tuple[:2]
        prev = last.get(key)
        if prev is not None:
            st.reused, st.prev_rst, st.prev_gap_s = True, prev.rst, st.t0 - prev.t0
        last[key] = st
        prev = last5.get(st.tuple)
        if prev is not None:
            st.same_tuple, st.tuple_prev_rst, st.tuple_idle_s = True, prev.rst, st.t0 - prev.t1
        last5[st.tuple] = st
    return streams


def _ts(v: object) -> float | None:
    if v is None or pd.isna(v):
        return None
    return pd.Timestamp(v).value / 1e9


def compare(path: Path, show: int) -> int:
    import pcapan

    streams = tshark_streams(path)
    with_ch = [s for s in streams.values() if s.ch_times]
    res = pcapan.analyze(path)
    conns, tls = res.connections, res.tls
    print(f"capture: {path}")
    print(
        f"tshark: {len(streams)} TCP streams; {sum(len(s.ch_times) for s in with_ch)} "
        f"ClientHello frames in {len(with_ch)} connections; SNI "
        f"{dict(sorted(Counter(s.sni for s in with_ch).items()))}"
    )
    sn = tls["server_name"].fillna("")
    print(
        f"pcapan: {len(conns)} connections ({conns['uid'].nunique()} distinct uids); "
        f"{len(tls)} tls rows; with ts_client_hello {int(tls['ts_client_hello'].notna().sum())}; "
        f"SNI {dict(sorted(Counter(sn).items()))}"
    )
    # index pcapan connections by 5-tuple
    by_tuple: dict[tuple[str, int, str, int], list[tuple[float, str]]] = {}
    for uid, ts, oh, op, rh, rp in zip(
        conns["uid"],
        conns["ts"],
        conns["orig_h"],
        conns["orig_p"],
        conns["resp_h"],
        conns["resp_p"],
        strict=True,
    ):
        by_tuple.setdefault((str(oh), int(op), str(rh), int(rp)), []).append((_ts(ts), str(uid)))
    conn_by_uid = {str(r.uid): r for r in conns.itertuples(index=False)}
    tls_by_uid = {
        str(u): row for u, row in zip(tls["uid"], tls.itertuples(index=False), strict=True)
    }
    rows = []
    matched_uids: set[str] = set()
    for st in sorted(with_ch, key=lambda s: s.t0):
        cands = by_tuple.get(st.tuple, [])
        uid, how = None, ""
        exact = [u for t, u in cands if t is not None and abs(t - st.t0) <= START_TOLERANCE_S]
        if exact:
            uid = exact[0]
        else:  # the nearest pcapan connection of that 5-tuple that started before the hello
            before = [
                (st.ch_times[0] - t, u)
                for t, u in cands
                if t is not None and t <= st.ch_times[0] + START_TOLERANCE_S
            ]
            if before:
                uid = min(before)[1]
                how = "start_differs"
        problems = []
        if uid is None:
            problems.append("no_connection")
        else:
            matched_uids.add(uid)
            if how:
                problems.append(how)
            row = tls_by_uid.get(uid)
            if row is None:
                problems.append("no_tls_row")
            else:
                name = "" if pd.isna(row.server_name) else str(row.server_name)
                if not name:
                    problems.append("server_name_empty")
                elif name != st.sni:
                    problems.append(f"server_name_differs({name})")
                tch = _ts(row.ts_client_hello)
                if tch is None:
                    problems.append("ts_client_hello_missing")
                elif abs(tch - st.ch_times[0]) > TS_TOLERANCE_S:
                    problems.append(f"ts_client_hello_off({tch - st.ch_times[0]:+.4f}s)")
                if st.established and (pd.isna(row.established) or not bool(row.established)):
                    problems.append(f"established_{row.established}")
                tfr = _ts(row.ts_first_request)
                if tfr is not None and tch is not None and tfr == tch:
                    problems.append("ts_first_request_eq_client_hello")
        rows.append((st, uid, problems))
    broken = [r for r in rows if r[2]]
    print(
        f"compared {len(rows)} tshark connections with a ClientHello: {len(broken)} broken "
        f"pcapan rows"
    )
    kinds = Counter(p.split("(")[0] for _, _, ps in broken for p in ps)
    print(f"  problems: {dict(kinds.most_common())}")
    classes = (
        ("fresh client port", lambda s: not s.reused),
        ("reused client port", lambda s: s.reused),
        ("  earlier conn on it had RST", lambda s: s.reused and s.prev_rst),
        ("  earlier conn on it no RST", lambda s: s.reused and not s.prev_rst),
        ("  same 5-tuple as an earlier conn", lambda s: s.same_tuple),
        ("    ... which had RST", lambda s: s.same_tuple and s.tuple_prev_rst),
        ("    ... which had no RST", lambda s: s.same_tuple and not s.tuple_prev_rst),
        ("  port reused, new 5-tuple", lambda s: s.reused and not s.same_tuple),
    )
    for label, sel in classes:
        grp = [r for r in rows if sel(r[0])]
        bad = sum(1 for r in grp if r[2])
        rate = f"{100 * bad / len(grp):.1f} %" if grp else "-"
        print(f"  {label:34s} {bad:6d} broken of {len(grp):6d} ({rate})")
    for label, want in (("broken", True), ("fine", False)):
        idle = sorted(
            r[0].tuple_idle_s
            for r in rows
            if r[0].same_tuple and bool(r[2]) == want and r[0].tuple_idle_s is not None
        )
        if idle:
            q = [idle[int(f * (len(idle) - 1))] for f in (0, 0.5, 1)]
            print(
                f"  5-tuple reuse, {label}: idle since the earlier conn's last frame "
                f"min/median/max {q[0]:.3f}/{q[1]:.3f}/{q[2]:.3f} s"
            )
    idle_buckets = ((0, 2), (2, 5), (5, 10), (10, 15), (15, 20), (20, 30), (30, 1e9))
    print("  5-tuple reuse by idle time since the earlier conn's last frame:")
    for lo, hi in idle_buckets:
        grp = [r for r in rows if r[0].same_tuple and lo <= (r[0].tuple_idle_s or 0) < hi]
        bad = sum(1 for r in grp if r[2])
        print(f"    {lo:>3}-{hi if hi < 1e9 else 'inf':>3} s  {bad:6d} broken of {len(grp):6d}")
    extra = tls[~tls["uid"].astype(str).isin(matched_uids)]
    print(f"pcapan tls rows with no tshark ClientHello connection: {len(extra)}")
    for r in extra.head(show).itertuples(index=False):
        print(
            f"  extra uid={r.uid} {r.orig_h}:{r.orig_p} -> {r.resp_h}:{r.resp_p} ts={r.ts} "
            f"server_name={r.server_name!r}"
        )
    if broken:
        print(
            f"mismatches (first {min(show, len(broken))} of {len(broken)}): "
            "uid, tcp.stream, client -> server, start (epoch), ClientHello (epoch), tshark SNI, "
            "client port reuse, problems; pcapan orig/resp pkts and history vs tshark's pkts"
        )
    for st, uid, problems in broken[:show]:
        c, cp, s, sp = st.tuple
        reuse = (
            f"port reused gap={st.prev_gap_s:.3f}s prev_rst={st.prev_rst}" if st.reused else "fresh"
        )
        if st.same_tuple:
            reuse += f" 5-tuple reused idle={st.tuple_idle_s:.3f}s prev_rst={st.tuple_prev_rst}"
        cr = conn_by_uid.get(str(uid))
        pk = f"pcapan {cr.orig_pkts}/{cr.resp_pkts} {cr.history}" if cr is not None else "-"
        print(
            f"  {uid} stream={st.n} {c}:{cp} -> {s}:{sp} start={st.t0:.6f} "
            f"ch={st.ch_times[0]:.6f} sni={st.sni} {reuse} {','.join(problems)}; "
            f"{pk} tshark {st.pkts[0]}/{st.pkts[1]}"
        )
    return 1 if broken or len(extra) else 0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("capture", type=Path)
    ap.add_argument("--show", type=int, default=200, help="mismatches to list (default 200)")
    args = ap.parse_args()
    if not args.capture.is_file():
        raise SystemExit(f"compare_clienthello: no such file: {args.capture}")
    sys.exit(compare(args.capture, args.show))


if __name__ == "__main__":
    main()
