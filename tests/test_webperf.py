"""Round-trip budget, reuse, missed reuse and pipelining: crafted captures (values known by
construction) and the samples made through a real user-space delay (samples/rtt-facts.json:
20 ms between the capture point and the client, 50 ms to the server, measured there with tshark
and tcptrace)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest

import pcapan

from .tcpgen import Conv, write

SAMPLES = Path(__file__).resolve().parent.parent / "samples"
GET = b"GET /%d HTTP/1.1\r\nHost: example.test\r\n\r\n"
OK = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello"


def _exchange(c: Conv, i: int, think: float, gap: float = 0.0) -> None:
    c.send(True, "PA", GET % i, dt=gap or 0.001)
    c.send(False, "PA", OK, dt=think)
    c.send(True, "A", dt=0.001)


def test_budget_reuse_and_close_by_construction(tmp_path: Path) -> None:
    """SYN, SYN-ACK after 40 ms, ACK after 10 ms (initial RTT 50 ms); request; response 80 ms
    later (TTFB 80 ms, think time 30 ms); a second request 200 ms after the first response ended,
    answered 60 ms later; the server closes 5 s after that."""
    c = Conv(sport=80)
    c.send(True, "S", dt=0.0)
    c.send(False, "SA", dt=0.040)
    c.send(True, "A", dt=0.010)
    _exchange(c, 1, think=0.080)
    # the client's ACK came 1 ms after the response: the next request 199 ms after that
    _exchange(c, 2, think=0.060, gap=0.199)
    c.send(False, "FA", dt=4.999)
    c.send(True, "FA", dt=0.001)
    c.send(False, "A", dt=0.001)
    res = pcapan.analyze(write(tmp_path / "budget.pcap", [c]))
    r = res.connections.iloc[0]
    assert r.budget_rtts == 2 and r.budget_expected_rtts == 2 and r.budget_label == "TCP: 2 RTT"
    assert round(r.budget_tcp_s, 6) == 0.050 and round(r.budget_ttfb_s, 6) == 0.080
    assert round(r.budget_think_s, 6) == 0.030
    assert round(r.budget_total_s, 6) == 0.050 + 0.001 + 0.080  # SYN .. first response byte
    assert r.requests == 2 and round(r.idle_gap_max_s, 6) == 0.200
    assert r.close_cause == "fin_server" and r.closed_by == "resp"
    assert round(r.close_after_last_response_s, 6) == 5.000
    h = res.http.sort_values("trans_depth")
    assert list(h.rtts_to_first_byte) == [2, 1]
    assert pd.isna(h.idle_before_s.iloc[0]) and round(h.idle_before_s.iloc[1], 6) == 0.200


def test_pipelining_head_of_line_wait(tmp_path: Path) -> None:
    """Three requests written at once at t, t+1ms, t+2ms; responses end at t+50, t+90, t+130 ms:
    the second waited 50-1 = 49 ms behind the first, the third 90-2 = 88 ms behind the second."""
    c = Conv(sport=80)
    c.handshake()
    for i in range(3):
        c.send(True, "PA", GET % i, dt=0.001)
    c.send(False, "PA", OK, dt=0.048)
    c.send(False, "PA", OK, dt=0.040)
    c.send(False, "PA", OK, dt=0.040)
    c.close()
    res = pcapan.analyze(write(tmp_path / "pipe.pcap", [c]))
    h = res.http.sort_values("trans_depth")
    assert list(h.pipelined) == [False, True, True] and list(h.pipeline_depth) == [1, 2, 3]
    assert pd.isna(h.hol_wait_s.iloc[0])
    assert [round(x, 6) for x in h.hol_wait_s.iloc[1:]] == [0.049, 0.088]
    r = res.connections.iloc[0]
    assert r.pipelined_requests == 2 and r.max_pipeline_depth == 3
    assert round(r.hol_wait_total_s, 6) == 0.137 and round(r.hol_wait_max_s, 6) == 0.088


def test_missed_reuse_and_pairs(tmp_path: Path) -> None:
    """Connection A answers a request and stays open, idle; 1 s later the same client opens
    connection B to the same server and uses it: a missed reuse. Connection C, opened while B is
    busy with a request, is not one (B is busy, A closed by then)."""
    t0 = 1_700_000_000.0
    a = Conv(cport=41000, t=t0)
    a.handshake()
    _exchange(a, 1, think=0.010)
    a.t = t0 + 5.0
    a.close()
    b = Conv(cport=41001, t=t0 + 1.0)
    b.handshake()
    b.send(True, "PA", GET % 2, dt=0.001)
    b.send(False, "PA", OK, dt=9.0)  # busy for 9 s
    b.send(True, "A")
    b.close()
    c = Conv(cport=41002, t=t0 + 6.0)
    c.handshake()
    _exchange(c, 3, think=0.010)
    c.close()
    res = pcapan.analyze(write(tmp_path / "reuse.pcap", [a, b, c]))
    conns = res.connections.set_index("orig_p")
    m = res.missed_reuse
    assert list(m.uid) == [conns.loc[41001, "uid"]] and list(m.idle_uid) == [conns.loc[41000, "uid"]]
    srv = res.servers
    assert len(srv) == 1
    s = srv.iloc[0]
    assert s.server_name == "example.test" and s.connections == 3 and s.requests == 3
    assert s.missed_reuse == 1 and s.max_open_connections == 2 and s.reuse_ratio == 0
    cl = res.clients.iloc[0]
    assert cl.connections == 3 and cl.missed_reuse == 1 and cl.servers == 1


def _facts() -> list[dict]:
    return json.loads((SAMPLES / "rtt-facts.json").read_text())["connections"]


@pytest.mark.parametrize("fact", _facts(), ids=lambda f: f"{f['file']}:{f['tcp_stream']}")
def test_rtt_samples_through_a_real_delay(fact: dict) -> None:
    """The halves of the handshake, the initial RTT and the ack RTT statistics per side, as
    tshark measured them on the capture (1 us), and tcptrace's per-direction figures (it prints
    0.1 ms): samples counted the same way (tcptrace counts the handshake sample too)."""
    res = pcapan.analyze(SAMPLES / fact["file"])
    client, server = fact["client"], fact["server"]
    conns = res.connections
    r = conns[(conns.orig_h + ":" + conns.orig_p.astype(str) == client)
              & (conns.resp_h + ":" + conns.resp_p.astype(str) == server)].iloc[0]
    assert round(r.rtt_syn_s, 6) == fact["syn_to_synack_s"]
    assert round(r.rtt_synack_s, 6) == fact["synack_to_ack_s"]
    assert abs(r.initial_rtt_s - fact["initial_rtt_s"]) < 1.5e-6
    # client side: the server's data timed to the client and back (direction resp). tcptrace's
    # samples are the ack and handshake samples together; it prints 0.1 ms.
    samples = res.rtt[(res.rtt.uid == r.uid) & (res.rtt.kind != "ts")]
    for side, d in (("client_side", "resp"), ("server_side", "orig")):
        want = fact["ack_rtt"][side]
        assert r[f"rtt_{d}_count"] == want["samples"] - 1  # tshark's count includes the handshake ACK
        tt = fact["tcptrace"][side]
        ms = samples[samples.direction == d].rtt_s * 1e3
        assert len(ms) == tt["rtt_samples"]
        for ours, theirs in ((ms.min(), tt["rtt_min_ms"]), (ms.max(), tt["rtt_max_ms"]), (ms.mean(), tt["rtt_avg_ms"])):
            assert abs(ours - theirs) <= 0.05 + 1e-9, (side, ours, theirs)
    # the configured delays: 20 ms to the client, 50 ms to the server (plus forwarding jitter)
    assert 0.020 <= r.rtt_synack_s < 0.0215 and 0.050 <= r.rtt_syn_s < 0.0515


def test_budget_through_a_real_delay() -> None:
    """rtt-tls.pcap: TLS 1.2 full (4 round trips to the first byte) and TLS 1.3 (3), each round
    trip ~70 ms end to end (20 ms + 50 ms). Seen from the capture point, which sits between the
    two delays, the budget runs from the SYN passing it to the first response byte passing it:
    n round trips less the client side's 20 ms (the client's last leg is not in it)."""
    res = pcapan.analyze(SAMPLES / "rtt-tls.pcap")
    c = res.connections.sort_values("ts")
    assert list(c.budget_label) == ["TCP+TLS1.2 full: 4 RTT", "TCP+TLS1.3 full: 3 RTT"]
    for r in c.itertuples():
        assert 0.070 <= r.budget_tcp_s < 0.073
        assert r.budget_rtts * 0.070 - 0.020 <= r.budget_total_s < r.budget_rtts * 0.070 - 0.020 + 0.01


def _tcptrace(path: Path) -> list[dict]:
    """tcptrace -l -r -n: per connection, host a/b and per direction (a2b, b2a) the RTT sample
    count, min, max and avg in ms (printed with 0.1 ms resolution)."""
    import re
    import subprocess

    out = subprocess.run(["tcptrace", "-l", "-r", "-n", str(path)], capture_output=True, text=True,
                         check=True).stdout
    conns: list[dict] = []
    for block in re.split(r"TCP connection \d+:", out)[1:]:
        hosts = re.findall(r"host \w+:\s+(\S+)", block)
        c: dict = {"a": hosts[0], "b": hosts[1]}
        for key, name in (("RTT samples:", "n"), ("RTT min:", "min"), ("RTT max:", "max"), ("RTT avg:", "avg")):
            m = re.search(re.escape(key) + r"\s+([\d.]+)[^\n]*?" + re.escape(key) + r"\s+([\d.]+)", block)
            c[name] = (float(m.group(1)), float(m.group(2)))
        conns.append(c)
    return conns


@pytest.mark.skipif(shutil.which("tcptrace") is None, reason="tcptrace not installed")
@pytest.mark.parametrize("name", ["rtt-http.pcap", "rtt-tls.pcap", "rtt-pipelined.pcap"])
def test_rtt_statistics_match_tcptrace(name: str) -> None:
    """Per connection and direction, tcptrace's RTT sample count, min, max and avg (its samples
    are pcapan's handshake and ack samples together; it prints 0.1 ms)."""
    res = pcapan.analyze(SAMPLES / name)
    conns = res.connections
    rtt = res.rtt[res.rtt.kind != "ts"]
    traced = _tcptrace(SAMPLES / name)
    assert len(traced) == len(conns)
    for t in traced:
        row = conns[conns.orig_h + ":" + conns.orig_p.astype(str) == t["a"]].iloc[0]
        assert t["b"] == f"{row.resp_h}:{row.resp_p}"
        for k, d in ((0, "orig"), (1, "resp")):  # a2b: the originator's data
            ms = rtt[(rtt.uid == row.uid) & (rtt.direction == d)].rtt_s * 1e3
            assert len(ms) == t["n"][k]
            for ours, name_ in ((ms.min(), "min"), (ms.max(), "max"), (ms.mean(), "avg")):
                assert abs(ours - t[name_][k]) <= 0.05 + 1e-9, (row.uid, d, name_, ours, t[name_][k])


@pytest.mark.parametrize("kind", ["empty", "udp_only"])
def test_every_table_and_the_summary_on_a_capture_without_tcp(tmp_path: Path, kind: str) -> None:
    """No TCP connection at all: every table exists, empty, with its schema; the summary and
    the CLI table verbs work (exit status 0)."""
    from scapy.layers.inet import IP, UDP
    from scapy.layers.l2 import Ether
    from scapy.utils import wrpcap

    from pcapan.cli import main
    from pcapan.frames.schema import TABLES

    path = tmp_path / f"{kind}.pcap"
    wrpcap(str(path), [] if kind == "empty" else [Ether() / IP(src="10.0.0.1", dst="10.0.0.2") / UDP() / b"x"])
    res = pcapan.analyze(path)
    for name, cols in TABLES.items():
        df = res.tables()[name]
        assert len(df) == 0 and list(df.columns) == [c.name for c in cols], name
    s = res.summary()
    assert s["tcp_connections"] == 0 and s["reuse_ratio"] is None and s["missed_reuse"] == 0
    for verb in ("connections", "http", "tls", "rtt", "servers"):
        assert main([verb, str(path), "--format", "csv"]) == 0
