"""Missed reuse that can be trusted (issue 18), on samples/http-reuse.pcap (made by
samples/make_samples.py --only reuse; see samples/README.md).

The capture: stream 0 is one curl process's keep-alive connection, busy with 100 GETs one every
10 ms; streams 1-8 are other curl processes' connections, each opened during that second (the
busy connection idle only between its owner's requests: not reusable by them); stream 9 is a
keep-alive connection that answers one GET and stays open; 0.5 s later stream 10 opens to the
same server (missed reuse). Expected values come from tshark's fields (SYN, request and
response frame times per tcp.stream), not from pcapan.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pandas as pd
import pytest

import pcapan
from pcapan.config import REUSE_IDLE_FLOOR_S

SAMPLE = Path(__file__).resolve().parent.parent / "samples" / "http-reuse.pcap"
TSHARK = shutil.which("tshark")
needs_tshark = pytest.mark.skipif(TSHARK is None, reason="tshark is not installed")


def _streams() -> dict[int, dict[str, list[float]]]:
    """Per tcp.stream: client port, SYN time, request times, response times, FIN times (tshark)."""
    assert TSHARK is not None
    out = subprocess.run(
        [
            TSHARK,
            "-n",
            "-r",
            str(SAMPLE),
            "-T",
            "fields",
            "-E",
            "separator=,",
            "-e",
            "tcp.stream",
            "-e",
            "frame.time_epoch",
            "-e",
            "http.request",
            "-e",
            "http.response",
            "-e",
            "tcp.flags.syn",
            "-e",
            "tcp.flags.ack",
            "-e",
            "tcp.flags.fin",
            "-e",
            "tcp.srcport",
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    ).stdout
    st: dict[int, dict[str, list[float]]] = {}
    for line in out.splitlines():
        stream, t, req, resp, syn, ack, fin, sport = line.split(",")
        d = st.setdefault(int(stream), {"syn": [], "req": [], "resp": [], "fin": [], "port": []})
        ts = float(t)
        if syn in ("1", "True") and ack in ("0", "False"):
            d["syn"].append(ts)
            d["port"].append(float(sport))
        if req:
            d["req"].append(ts)
        if resp:
            d["resp"].append(ts)
        if fin in ("1", "True"):
            d["fin"].append(ts)
    return st


@needs_tshark
def test_busy_connection_is_not_missed_reuse_idle_one_is() -> None:
    st = _streams()
    assert len(st) == 11 and len(st[0]["req"]) == 100
    # From tshark: for each new connection, how long the other open connection (opened before
    # it, not yet sending FIN) had been idle at its SYN (no request in flight: every request
    # before the SYN answered), and whether that one sent a request before the new one's first.
    loose, strict = set(), set()
    for i in range(1, 11):
        syn, first = st[i]["syn"][0], st[i]["req"][0]
        for j in range(i):
            if not (st[j]["syn"][0] < syn < min(st[j]["fin"])):
                continue
            reqs = [r for r in st[j]["req"] if r <= syn]
            done = [r for r in st[j]["resp"] if r <= syn]
            if not done or len(reqs) != len(done):
                continue  # nothing answered yet, or a request in flight
            loose.add(i)
            idle = syn - max(done)
            used = any(syn < r <= first for r in st[j]["req"])
            if idle >= REUSE_IDLE_FLOOR_S and not used and min(st[j]["fin"]) >= first:
                strict.add(i)
            if i <= 8:
                assert idle < 0.015  # the busy connection's gaps (one request per 10 ms)
    # The 8 curl runs during the busy second and the one beside the idle connection, loosely;
    # strictly only the last one (its neighbour idle ~0.5 s; loopback RTTs are ~30 us, so the
    # 0.1 s floor is the threshold).
    assert loose == set(range(1, 9)) | {10} and strict == {10}

    res = pcapan.analyze(SAMPLE)
    port = {int(st[i]["port"][0]): i for i in st}
    conns = res.connections.assign(stream=lambda d: d.orig_p.map(port))
    by_uid = conns.set_index("uid").stream
    m = res.missed_reuse
    assert [by_uid[u] for u in m.uid] == [10] and [by_uid[u] for u in m.idle_uid] == [9]
    assert m.reason.tolist() == ["idle"] and m.threshold_s.tolist() == [REUSE_IDLE_FLOOR_S]
    idle_tshark = st[10]["syn"][0] - st[9]["resp"][-1]
    assert abs(m.idle_s.iloc[0] - idle_tshark) < 1e-5
    srv = res.servers.iloc[0]
    assert srv.missed_reuse == 1 and srv.missed_reuse_loose == len(loose) == 9
    cl = res.clients.iloc[0]
    assert cl.missed_reuse == 1 and cl.missed_reuse_loose == 9
    s = res.summary()
    assert s["missed_reuse"] == 1 and s["missed_reuse_loose"] == 9
    assert s["missed_reuse_rule"] == "idle > 2 RTT, at least 100 ms"


def test_idle_connection_used_again_before_the_new_request_is_not_strict() -> None:
    """Crafted tables (no capture needed: missed_reuse reads tables): A idle 1 s when B opens,
    but A's owner sends a request on A before B's first request: A was not available, loose
    only. C opens later while A is idle and stays idle through C's request: strict."""
    from pcapan.frames import webperf

    s = 1_000_000_000
    never = 2**63 - 1
    conns = pd.DataFrame(
        {
            "uid": ["A", "B", "C"],
            "pair": 0,
            "t0": [0, 2 * s, 5 * s],
            "t1": [10 * s, 3 * s, 6 * s],
            "h2_ready": never,
            "tls_exchanges": pd.array([pd.NA] * 3, dtype="Int64"),
            "initial_rtt_s": [0.2, 0.001, 0.001],
            "ts": pd.to_datetime([0, 2 * s, 5 * s], utc=True),
            "orig_h": "10.0.0.1",
            "resp_h": "10.0.0.2",
            "resp_p": 80,
            "server_name": "example",
        }
    )
    # A: answered at 0.5-1.0 s, then a request at 2.05 s (B opened at 2 s, its request at 2.1 s).
    http = pd.DataFrame(
        {
            "uid": ["A", "A", "B", "C"],
            "ts_request_start": pd.to_datetime(
                [s // 2, 2 * s + s // 20, 2 * s + s // 10, 5 * s + s // 10], utc=True
            ),
            "ts_response_end": pd.to_datetime(
                [s, 2 * s + s // 10, 2 * s + s // 5, 5 * s + s // 5], utc=True
            ),
        }
    )
    m = webperf.missed_reuse(conns, http).set_index("uid")
    assert list(m.index) == ["B", "C"]
    assert not m.loc["B", "strict"] and m.loc["C", "strict"]
    # A's threshold: 2 x its 200 ms RTT, above the 100 ms floor.
    assert m.loc["C", "threshold_s"] == pytest.approx(0.4)
    assert m.loc["C", "idle_s"] == pytest.approx(5 - 2.1)
    # The same with A's RTT so long that 2.9 s of idle is under 2 RTT: not strict either.
    slow = webperf.missed_reuse(conns.assign(initial_rtt_s=[1.5, 0.001, 0.001]), http)
    assert not slow.strict.any()
