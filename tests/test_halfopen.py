"""Half-open flows (pcapan.flow.halfopen): compact until the handshake goes on, bounded, flagged.

``samples/synscan.pcap`` is a real capture (``samples/make_synscan.py``, tcpdump on a veth whose
peer namespace answers nothing): a kernel connect() to 10.77.0.3:8080 that a responder answers
with a SYN-ACK 0.8 s late, a raw SYN scan of ports 1-2000 in between (nmap -sS style, one SYN
each), then 50 kernel connect()s to ports 3001-3050, each SYN retransmitted once by Linux.
Expected counts come from tshark, not from pcapan.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tracemalloc
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import pcapan
from pcapan.io import open_capture
from pcapan.io.batch import FrameBatch

SCAN = Path(__file__).resolve().parent.parent / "samples" / "synscan.pcap"
CAP = 100
LATE_PORT = 8080
needs_tshark = pytest.mark.skipif(shutil.which("tshark") is None, reason="tshark not installed")


def _tshark(*args: str) -> list[list[str]]:
    out = subprocess.run(
        ["tshark", "-r", str(SCAN), "-T", "fields", *args],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return [line.split("\t") for line in out.splitlines() if line]


def _syn_streams() -> dict[str, tuple[str, int, str, int]]:
    """tshark's streams with a bare SYN (tcp.flags.syn==1 && tcp.flags.ack==0): stream -> the
    SYN sender's (address, port, peer address, peer port)."""
    rows = _tshark(
        "-Y",
        "tcp.flags.syn==1 && tcp.flags.ack==0",
        "-e",
        "tcp.stream",
        "-e",
        "ip.src",
        "-e",
        "tcp.srcport",
        "-e",
        "ip.dst",
        "-e",
        "tcp.dstport",
    )
    return {s: (a, int(p), b, int(q)) for s, a, p, b, q in rows}


def _frames_per_stream() -> tuple[Counter[str], Counter[str]]:
    """(all frames, frames that are not bare SYNs) per tshark stream."""
    rows = _tshark("-e", "tcp.stream", "-e", "tcp.flags.syn", "-e", "tcp.flags.ack")
    frames = Counter(r[0] for r in rows)
    other = Counter(r[0] for r in rows if not (r[1] in ("1", "True") and r[2] in ("0", "False")))
    return frames, other


def _live_like(cap: int | None, window_ns: int = 500_000_000, path: Path = SCAN) -> pcapan.Result:
    """Feed the capture as pcapan live does: a batch every 0.5 s of capture time (a file is read
    in 8 MiB batches, and this one is one batch)."""
    an = pcapan.Analyzer(max_half_open=cap)
    oc = open_capture(path)
    an.start_source(oc.name)
    for b in oc:
        t = b.ts_ns
        edges = np.searchsorted(t, np.arange(t[0], t[-1] + window_ns, window_ns)).tolist() + [
            len(b)
        ]
        for lo, hi in zip(edges[:-1], edges[1:], strict=True):
            if hi > lo:
                an.feed(
                    FrameBatch(
                        b.data,
                        *(
                            getattr(b, f)[lo:hi]
                            for f in (
                                "offset",
                                "caplen",
                                "wirelen",
                                "ts_ns",
                                "linktype",
                                "frame_no",
                            )
                        ),
                    )
                )
    return an.finish()


def _tuples(df: pd.DataFrame) -> list[tuple[str, int, str, int]]:
    return list(
        zip(df.orig_h, df.orig_p.astype(int), df.resp_h, df.resp_p.astype(int), strict=True)
    )


@needs_tshark
def test_every_syn_flow_is_a_row_and_the_oldest_are_evicted() -> None:
    syn = _syn_streams()
    frames, other = _frames_per_stream()
    assert len(syn) == 2051  # 1 + 2000 + 50 (make_synscan.py), as tshark counts them
    only_syns = [s for s in syn if other[s] == 0]  # nothing but SYNs: half-open to the end
    full = pcapan.analyze(SCAN)  # default bound: nothing evicted
    res = pcapan.analyze(SCAN, max_half_open=CAP)
    for r in (full, res):
        c = r.connections
        assert len(c) == len(syn)  # every SYN's flow is a row, and only those
        assert sorted(_tuples(c)) == sorted(syn.values())
        assert c.history.str.startswith("S").all()
        # Packets per flow as tshark counts them (the kernel's retransmitted SYNs included).
        by_tuple = {t: frames[s] for s, t in syn.items()}
        assert [by_tuple[t] for t in _tuples(c)] == (c.orig_pkts + c.resp_pkts).astype(int).tolist()
    assert not full.connections.evicted.any()
    assert full.summary()["half_open_evicted"] == 0
    assert "half_open_evicted" not in set(full.anomalies.name)

    # The file is one batch, so the late handshake completes in it: only the flows that never
    # see more than SYNs are half-open, and all but the newest CAP of them are evicted.
    c = res.connections
    expected = len(only_syns) - CAP
    assert expected == 1950
    assert int(c.evicted.sum()) == expected
    ev = c[c.evicted]
    assert (
        (ev.conn_state == "S0").all()
        and (ev.close_reason == "evicted").all()
        and (ev.close_cause == "evicted").all()
    )
    kept = c[~c.evicted & (c.conn_state == "S0")]
    assert len(kept) == CAP
    assert ev.ts.max() <= kept.ts.min()  # oldest first
    assert res.summary()["half_open_evicted"] == expected
    an = res.anomalies[res.anomalies.name == "half_open_evicted"]
    assert len(an) == 1 and an.addl.iloc[0].startswith(f"{expected} half-open flows")
    # Eviction changes nothing else on the rows.
    cols = [k for k in c.columns if k not in ("evicted", "close_reason", "close_cause")]
    pd.testing.assert_frame_equal(c[cols], full.connections[cols])


@needs_tshark
def test_syn_ack_after_eviction_starts_a_new_flow() -> None:
    """Fed as pcapan live would (0.5 s batches), the late SYN-ACK comes in a later batch than
    its SYN. Below the bound the flow is one row, as from the whole file; once its SYN was
    evicted, the SYN-ACK starts a new flow, as in Suricata: a second, flipped row."""
    syn = _syn_streams()
    frames, _ = _frames_per_stream()
    late_stream = next(s for s, t in syn.items() if t[3] == LATE_PORT)
    late = syn[late_stream]
    assert frames[late_stream] == 4  # SYN, SYN-ACK, ACK, RST

    unbounded = _live_like(0)
    assert not unbounded.connections.evicted.any()
    pd.testing.assert_frame_equal(
        unbounded.connections, pcapan.analyze(SCAN, max_half_open=0).connections
    )

    res = _live_like(CAP)
    c = res.connections
    assert len(c) == len(syn) + 1
    rows = c[[t == late for t in _tuples(c)]].sort_values("ts")
    assert len(rows) == 2
    first, second = rows.iloc[0], rows.iloc[1]
    assert (first.history, first.conn_state, bool(first.evicted), int(first.orig_pkts)) == (
        "S",
        "S0",
        True,
        1,
    )
    assert second.history.startswith("^h") and bool(second.flipped) and not bool(second.evicted)
    assert int(first.orig_pkts + second.orig_pkts + second.resp_pkts) == frames[late_stream]
    # Two bursts: during the scan, and when the 50 connect()s push out as many scan flows.
    counts = [
        int(a.split()[0]) for a in res.anomalies.addl[res.anomalies.name == "half_open_evicted"]
    ]
    assert (
        len(counts) == 2
        and sum(counts) == int(c.evicted.sum()) == res.summary()["half_open_evicted"]
    )
    assert counts[1] == 50


def test_half_open_flows_are_compact() -> None:
    """The engine holds the 2,000 scan flows in well under 1 KB each (a connection: ~3.4 KB)."""
    an = pcapan.Analyzer(max_half_open=0)
    tracemalloc.start()
    try:
        an.feed_source(SCAN)
        held, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    eng = an.engine
    # (the late flow completed its handshake in the batch; its RST is still lingering)
    assert len(eng.half_open) == 2050 and len(eng.flows) == 1
    assert held / len(eng.half_open) < 1024


def test_cli_option() -> None:
    p = subprocess.run(
        [
            sys.executable,
            "-m",
            "pcapan.cli",
            "connections",
            str(SCAN),
            "--format",
            "csv",
            "--max-half-open",
            str(CAP),
            "--columns",
            "uid,conn_state,evicted",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    from io import StringIO

    df = pd.read_csv(StringIO(p.stdout))
    assert len(df) == 2051 and int(df.evicted.sum()) == 1950
    bad = subprocess.run(
        [sys.executable, "-m", "pcapan.cli", "analyze", str(SCAN), "--max-half-open", "-1"],
        capture_output=True,
        text=True,
    )
    assert bad.returncode == 2 and "--max-half-open" in bad.stderr and "Traceback" not in bad.stderr
    with pytest.raises(ValueError):
        pcapan.Analyzer(max_half_open=-1)


def test_idle_gaps_between_syns(tmp_path: Path) -> None:
    """SYNs of one flow more than the idle timeout (300 s) apart are two flows, as before the
    half-open table existed, whether they arrive in one batch (a whole file) or in many.
    Built with tcpgen; the expected rows follow from the times chosen."""
    from .tcpgen import Conv, write

    a = Conv(cport=41001)
    for dt in (
        0.0,
        400.0,
        1.0,
    ):  # a retransmission 400 s later: a new flow, then its retransmission
        a.send(True, "S", seq=5, dt=dt)
    b = Conv(cport=41002, t=a.pkts[0][0] + 0.1)
    b.send(True, "S", seq=9, dt=0.0)  # alone: idle after 300 s
    c = Conv(cport=41003, t=a.pkts[0][0] + 0.2)
    for _ in range(30):
        c.send(True, "S", seq=11, dt=20.0)  # 580 s of SYNs 20 s apart: one flow
    # 40 more SYN-only flows at the start, so that the batch takes the half-open path
    # (HALF_OPEN_MIN_BATCH) rather than the ordinary one
    filler = []
    for i in range(40):
        f = Conv(cport=42000 + i, t=a.pkts[0][0] + 0.01 * i)
        f.send(True, "S", seq=1, dt=0.0)
        filler += f.pkts
    path = tmp_path / "idle.pcap"
    write(path, sorted(a.pkts + b.pkts + c.pkts + filler, key=lambda x: x[0]))
    expected = [
        (41001, 1, "idle_timeout"),
        (41001, 2, "end_of_capture"),
        (41002, 1, "idle_timeout"),
        (41003, 30, "end_of_capture"),
    ]
    for res in (pcapan.analyze(path), _live_like(None, 1_000_000_000, path)):
        c_ = res.connections.sort_values(["orig_p", "ts"])
        assert (c_.orig_p >= 42000).sum() == 40
        c_ = c_[c_.orig_p < 42000]
        got = list(
            zip(c_.orig_p.astype(int), c_.orig_pkts.astype(int), c_.close_reason, strict=True)
        )
        assert got == expected
        assert (c_.conn_state == "S0").all() and not c_.evicted.any()


def test_half_open_flows_in_a_tunnel_keep_their_tunnel_parents(tmp_path: Path) -> None:
    """SYN-only flows kept compact and replayed later must keep the encapsulation they came in
    (the replayed batch once lost it: TcpPackets gained a tunnel column after the table was
    written). The real VXLAN sample's inner SYN (frame 3) is sent from 40 more client ports (a
    scan inside the tunnel, enough for one batch to use the half-open table); each of them must
    carry the tunnel_parents of the sample's real connection, which tests/test_encap.py checks
    against tshark's outer addresses and VNI."""
    from scapy.all import TCP, VXLAN, rdpcap, wrpcap

    src = Path(__file__).resolve().parent.parent / "samples" / "encap" / "tunnel-vxlan.pcap"
    packets = rdpcap(str(src))
    syn = packets[2]
    assert syn.haslayer(VXLAN) and syn[TCP].flags == "S"
    scan = []
    for i in range(40):
        p = syn.copy()
        p[VXLAN][TCP].sport = 50_000 + i
        del p[VXLAN][TCP].chksum
        scan.append(p)
    path = tmp_path / "vxlan-scan.pcap"
    wrpcap(str(path), scan)
    expected = pcapan.analyze(src).connections.tunnel_parents.iloc[0]
    assert expected.startswith("vxlan ")
    for cap in (0, 10):  # unbounded (replayed at the end) and evicted past a cap of 10
        c = pcapan.analyze(path, max_half_open=cap).connections
        assert len(c) == 40 and set(c.orig_p) == set(range(50_000, 50_040))
        assert (c.tunnel_parents == expected).all()
        assert int(c.evicted.sum()) == (30 if cap else 0)
