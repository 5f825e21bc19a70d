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
    assert list(m.uid) == [conns.loc[41001, "uid"]] and list(m.idle_uid) == [
        conns.loc[41000, "uid"]
    ]
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
    r = conns[
        (conns.orig_h + ":" + conns.orig_p.astype(str) == client)
        & (conns.resp_h + ":" + conns.resp_p.astype(str) == server)
    ].iloc[0]
    assert round(r.rtt_syn_s, 6) == fact["syn_to_synack_s"]
    assert round(r.rtt_synack_s, 6) == fact["synack_to_ack_s"]
    assert abs(r.initial_rtt_s - fact["initial_rtt_s"]) < 1.5e-6
    # client side: the server's data timed to the client and back (direction resp). tcptrace's
    # samples are the ack and handshake samples together; it prints 0.1 ms.
    samples = res.rtt[(res.rtt.uid == r.uid) & (res.rtt.kind != "ts")]
    for side, d in (("client_side", "resp"), ("server_side", "orig")):
        want = fact["ack_rtt"][side]
        assert (
            r[f"rtt_{d}_count"] == want["samples"] - 1
        )  # tshark's count includes the handshake ACK
        tt = fact["tcptrace"][side]
        ms = samples[samples.direction == d].rtt_s * 1e3
        assert len(ms) == tt["rtt_samples"]
        for ours, theirs in (
            (ms.min(), tt["rtt_min_ms"]),
            (ms.max(), tt["rtt_max_ms"]),
            (ms.mean(), tt["rtt_avg_ms"]),
        ):
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
        assert (
            r.budget_rtts * 0.070 - 0.020 <= r.budget_total_s < r.budget_rtts * 0.070 - 0.020 + 0.01
        )


def _tcptrace(path: Path) -> list[dict]:
    """tcptrace -l -r -n: per connection, host a/b and per direction (a2b, b2a) the RTT sample
    count, min, max and avg in ms (printed with 0.1 ms resolution)."""
    import re
    import subprocess

    out = subprocess.run(
        ["tcptrace", "-l", "-r", "-n", str(path)], capture_output=True, text=True, check=True
    ).stdout
    conns: list[dict] = []
    for block in re.split(r"TCP connection \d+:", out)[1:]:
        hosts = re.findall(r"host \w+:\s+(\S+)", block)
        c: dict = {"a": hosts[0], "b": hosts[1]}
        for key, name in (
            ("RTT samples:", "n"),
            ("RTT min:", "min"),
            ("RTT max:", "max"),
            ("RTT avg:", "avg"),
        ):
            m = re.search(
                re.escape(key) + r"\s+([\d.]+)[^\n]*?" + re.escape(key) + r"\s+([\d.]+)", block
            )
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
                assert abs(ours - t[name_][k]) <= 0.05 + 1e-9, (
                    row.uid,
                    d,
                    name_,
                    ours,
                    t[name_][k],
                )


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
    wrpcap(
        str(path),
        [] if kind == "empty" else [Ether() / IP(src="10.0.0.1", dst="10.0.0.2") / UDP() / b"x"],
    )
    res = pcapan.analyze(path)
    for name, cols in TABLES.items():
        df = res.tables()[name]
        assert len(df) == 0 and list(df.columns) == [c.name for c in cols], name
    s = res.summary()
    assert s["tcp_connections"] == 0 and s["reuse_ratio"] is None and s["missed_reuse"] == 0
    for verb in ("connections", "http", "tls", "rtt", "servers"):
        assert main([verb, str(path), "--format", "csv"]) == 0


def _pipelined_conv(cport: int, gaps: tuple[float, float]) -> Conv:
    """SYN, SYN-ACK 1 ms later (rtt_syn_s 1 ms), ACK; three requests 1 ms apart; the first
    response 30 ms after the third request (TTFB of the first 32 ms: think time 31 ms); the
    second and third responses ``gaps`` after the previous one (one segment each)."""
    c = Conv(cport=cport)
    c.handshake()
    for i in range(3):
        c.send(True, "PA", GET % i, dt=0.001)
    c.send(False, "PA", OK, dt=0.030)
    for g in gaps:
        c.send(False, "PA", OK, dt=g)
    c.send(True, "A", dt=0.001)
    c.close()
    return c


@pytest.mark.parametrize(
    ("gap", "serialised"),
    [
        (0.0001, False),  # back to back: the server had the responses ready (parallel)
        (0.010, False),  # a wait, but below half the first request's think time (31 ms / 2)
        (0.020, True),  # above it: the server took about a think time per request, after the last
        (0.031, True),  # one think time each: strictly one request at a time
    ],
)
def test_pipelining_serialised_by_construction(
    tmp_path: Path, gap: float, serialised: bool
) -> None:
    """The second and third responses start ``gap`` after the previous one ended. The rule:
    serialised when the median gap is >= 1 ms and >= half the think time of the non-pipelined
    first request (TTFB 32 ms - rtt_syn_s 1 ms = 31 ms, so the bar is 15.5 ms). A connection
    without pipelining has neither column."""
    plain = Conv(cport=42000)
    plain.handshake()
    _exchange(plain, 1, think=0.010)
    plain.close()
    res = pcapan.analyze(
        write(tmp_path / "serial.pcap", [_pipelined_conv(42001, (gap, gap)), plain])
    )
    conns = res.connections.set_index("orig_p")
    h = res.http[res.http.uid == conns.loc[42001, "uid"]].sort_values("trans_depth")
    assert pd.isna(h.resp_gap_s.iloc[0])
    # (the capture keeps microseconds and the timestamps are floats near 1.7e9: within 2 us)
    assert all(abs(x - gap) < 2e-6 for x in h.resp_gap_s.iloc[1:]), list(h.resp_gap_s)
    r = conns.loc[42001]
    assert r.pipelining_in_order == True  # noqa: E712 (a pandas boolean, not NA)
    assert r.pipelining_serialised == serialised
    p = conns.loc[42000]
    assert pd.isna(p.pipelining_in_order) and pd.isna(p.pipelining_serialised)
    assert res.http[res.http.uid == p.uid].resp_gap_s.isna().all()


def test_pipelining_serialised_needs_the_request_at_the_server(tmp_path: Path) -> None:
    """A request pipelined so late that it reached the server after the previous response had
    left it (hol_wait_s below rtt_syn_s) says nothing about serialisation: its gap includes the
    network. With rtt_syn_s 1 ms: the second request goes 0.5 ms before the first response ends,
    its response comes 40 ms later (a gap of 40 ms, far above the bar) but does not count, so
    there is no measurable pipelined response: serialised is empty, in order is still known."""
    c = Conv(cport=42002)
    c.handshake()
    c.send(True, "PA", GET % 1, dt=0.001)
    c.send(True, "PA", GET % 2, dt=0.0295)
    c.send(False, "PA", OK, dt=0.0005)  # ends 0.5 ms after the second request
    c.send(False, "PA", OK, dt=0.040)
    c.close()
    res = pcapan.analyze(write(tmp_path / "late.pcap", [c]))
    h = res.http.sort_values("trans_depth")
    assert list(h.pipelined) == [False, True] and abs(h.hol_wait_s.iloc[1] - 0.0005) < 2e-6
    assert abs(h.resp_gap_s.iloc[1] - 0.040) < 2e-6
    r = res.connections.iloc[0]
    assert r.pipelining_in_order == True and pd.isna(r.pipelining_serialised)  # noqa: E712


@pytest.mark.parametrize(
    ("name", "gaps"),
    [
        # tshark -r F -T fields -e frame.number -e frame.time_relative -e tcp.len -e http.response.code,
        # and each frame's payload searched for "HTTP/1.1 200" (tcp.payload | xxd -r -p | grep -b):
        # rtt-pipelined: response 1 is all of frame 6 (0.120940); frame 7 (0.121010) holds response 2
        # at offset 0 and response 3's status line at offset 1233: gaps 70 us and 0.
        ("rtt-pipelined.pcap", [0.000070, 0.0]),
        # http-pipelined: responses start frames 6 (0.000204, 408 bytes, all of response 1), 8
        # (0.000260, 1233 bytes, all of response 2) and 10 (0.000292): gaps 56 us and 32 us.
        ("http-pipelined.pcap", [0.000056, 0.000032]),
    ],
)
def test_pipelining_of_nginx_samples(name: str, gaps: list[float]) -> None:
    """nginx reads pipelined requests one at a time (it serialises), but serving a static file
    takes it tens of microseconds, and its first request's think time is as small (TTFB minus
    rtt_syn_s: 50.331 - 50.276 ms, 136 - 15 us): the gaps on the wire (below) stay under the
    1 ms floor, so no serialisation is visible, and the capture is read as such."""
    res = pcapan.analyze(SAMPLES / name)
    h = res.http.sort_values("trans_depth")
    assert [round(x, 6) for x in h.resp_gap_s.iloc[1:]] == gaps
    r = res.connections.iloc[0]
    assert r.pipelining_in_order == True and r.pipelining_serialised == False  # noqa: E712


# --- HTTPS: application-data exchanges and missed reuse ---------------------------------------------

# Per sample and client port: (client's first application data after the handshake, the server's
# last application data of its answer, the server's last record before the client speaks again),
# in seconds from the first frame, read with
#   tshark -r F -d tcp.port==P,tls -T fields -e frame.number -e frame.time_relative -e tcp.srcport
#          -e tcp.len -e tls.record.content_type -e tls.record.opaque_type -e tls.record.length
# Every connection has one exchange: one client flight of application data (TLS 1.3: after its
# CCS+Finished segment, in a segment of its own) and the server's answer; what follows is a
# close_notify (TLS 1.2: an alert record; TLS 1.3: a 19-byte application-data record) from
# either side. The TLS 1.3 tickets (two 250/298-byte records) come before the request: no
# exchange. The end may be the server's close_notify when the engine hands the two segments
# over in one run, hence the window.
TLS_EXCHANGES = {
    "tls.pcap": {  # port 18443
        40774: (0.006593, 0.006787, 0.006787),  # TLS 1.2: frames 10 (115) / 11 (432); client alert
        40788: (0.022821, 0.022955, 0.022955),  # TLS 1.3: 26 (107) / 27 (1250), after tickets 24-25
        40796: (0.082592, 0.082692, 0.082716),  # 41 / 42, server alert 43
        40804: (
            0.135879,
            0.135989,
            0.136021,
        ),  # resumed: client Finished 54, request 55 / 57, alert 58
        40812: (0.179971, 0.180051, 0.180072),
        40814: (0.231416, 0.231513, 0.231547),
    },
    "rtt-tls.pcap": {  # ports 18481, 18482, through the delay line
        48776: (0.216780, 0.267376, 0.267402),  # TLS 1.2: 10 (51) / 11 (89), alert 12
        35776: (
            0.550739,
            0.601256,
            0.601259,
        ),  # TLS 1.3: 26 (44) / 27-29 (250, 250, 82), close 30 (19)
    },
    "tls-resume.pcap": {  # ports 18455-18457
        39950: (0.005192, 0.005281, 0.005298),
        39960: (0.073122, 0.073204, 0.073214),
        49690: (0.140596, 0.140667, 0.140679),
        49692: (0.198471, 0.198566, 0.198575),
        46912: (0.260034, 0.261202, 0.261242),  # TLS 1.3: 77 (44) / 78-81 (250, 250, 82), close 82
        46918: (0.320498, 0.320850, 0.320930),  # TLS 1.3 PSK: 96 (44) / 97-98, close 100
    },
}


@pytest.mark.parametrize("name", sorted(TLS_EXCHANGES))
def test_tls_app_exchanges_of_the_samples(name: str) -> None:
    """Each connection's exchange count and times against the tshark record listing above."""
    res = pcapan.analyze(SAMPLES / name)
    conns = res.connections.set_index("orig_p")
    t0 = res.connections.ts.min().value  # the first frame (a SYN) in every one of these samples
    recs = {r.uid: r for r in res.tls_records}
    tls = res.tls.set_index("uid")
    want = TLS_EXCHANGES[name]
    assert sorted(conns.index) == sorted(want)
    for port, (start, end_lo, end_hi) in want.items():
        uid = conns.loc[port, "uid"]
        assert tls.loc[uid, "app_exchanges"] == 1, port
        s, e = recs[uid].app_exchange_times
        assert round((s - t0) / 1e9, 6) == start, port
        assert end_lo <= round((e - t0) / 1e9, 6) <= end_hi, port
    srv = res.servers
    assert srv.tls_exchanges.sum() == len(want) and srv.requests.sum() == 0
    assert res.clients.tls_exchanges.sum() == len(want)


def _tls_handshake(src: Path, stream: int) -> list[tuple[bool, bytes]]:
    """The segments of a sample's TLS stream up to the client's first application data."""
    from .tls_streams import segments

    out = []
    for is_orig, payload in segments(src, stream):
        if payload[0] == 0x17:
            break
        out.append((is_orig, payload))
    return out


def _app(n: int) -> bytes:
    """An application-data record with an n-byte (opaque) body."""
    return b"\x17\x03\x03" + n.to_bytes(2, "big") + b"\x5a" * n


def _tls_conv(hs: list[tuple[bool, bytes]], cport: int, t: float) -> Conv:
    """A TCP connection opened at ``t`` whose handshake replays ``hs`` (1 ms a segment)."""
    c = Conv(cport=cport, sport=8443, t=t)
    c.send(True, "S", dt=0.0)
    c.send(False, "SA")
    c.send(True, "A")
    for is_orig, payload in hs:
        c.send(is_orig, "PA", payload)
    return c


def _at(c: Conv, t: float, from_client: bool, data: bytes = b"", flags: str = "PA") -> None:
    c.send(from_client, flags, data, dt=t - c.t)


def _close(c: Conv, t: float) -> None:
    """The client's FIN at ``t``, the server's FIN, the last ACK."""
    _at(c, t, True, flags="FA")
    c.send(False, "FA")
    c.send(True, "A")


needs_tshark = pytest.mark.skipif(shutil.which("tshark") is None, reason="tshark not installed")


@needs_tshark
def test_tls_missed_reuse_while_idle(tmp_path: Path) -> None:
    """Three TLS 1.2 connections from one client to one server (tls.pcap's first handshake,
    replayed): A carries exchanges at +0.1 s and +0.2 s (answered 10 ms later) and one from +2 s
    answered at +3 s. B opens at +1 s, while A is idle: missed reuse (idle_tls). C opens at
    +2.5 s, while A's third exchange is in flight (and B is closed): not one."""
    hs = _tls_handshake(SAMPLES / "tls.pcap", 0)
    t0 = 1_700_000_000.0
    a = _tls_conv(hs, 41100, t0)
    for start, end in ((0.1, 0.11), (0.2, 0.21), (2.0, 3.0)):
        _at(a, t0 + start, True, _app(100))
        _at(a, t0 + end, False, _app(500))
        _at(a, t0 + end + 0.001, True, flags="A")
    _close(a, t0 + 5.0)
    b = _tls_conv(hs, 41101, t0 + 1.0)
    _at(b, t0 + 1.1, True, _app(100))
    _at(b, t0 + 1.2, False, _app(500))
    _close(b, t0 + 1.5)
    c = _tls_conv(hs, 41102, t0 + 2.5)
    _at(c, t0 + 2.6, True, _app(100))
    _at(c, t0 + 2.7, False, _app(500))
    _close(c, t0 + 4.0)
    res = pcapan.analyze(write(tmp_path / "tls-reuse.pcap", [a, b, c]))
    conns = res.connections.set_index("orig_p")
    uid = {p: conns.loc[p, "uid"] for p in (41100, 41101, 41102)}
    tls = res.tls.set_index("uid")
    assert [tls.loc[uid[p], "app_exchanges"] for p in (41100, 41101, 41102)] == [3, 1, 1]
    times = next(r.app_exchange_times for r in res.tls_records if r.uid == uid[41100])
    want = [t0 + x for x in (0.1, 0.11, 0.2, 0.21, 2.0, 3.0)]
    assert all(abs(x / 1e9 - w) < 2e-6 for x, w in zip(times, want, strict=True))
    m = res.missed_reuse
    assert (
        list(m.uid) == [uid[41101]]
        and list(m.idle_uid) == [uid[41100]]
        and list(m.reason) == ["idle_tls"]
    )
    s = res.servers.iloc[0]
    assert s.connections == 3 and s.missed_reuse == 1 and s.tls_exchanges == 5 and s.requests == 0


@needs_tshark
def test_tls_missed_reuse_on_http2(tmp_path: Path) -> None:
    """tls-alpn.pcap's first stream negotiates h2 by ALPN (TLS 1.2, visible in the ServerHello).
    A completes that handshake and sends a request at +0.5 s answered at +2 s. B opens at +1 s,
    while A is busy: still missed reuse (HTTP/2 multiplexes), reason h2. E opens 2 ms after A,
    before A's handshake completed (the client could not know it was h2) and closes at +0.4 s:
    not one."""
    hs = _tls_handshake(SAMPLES / "tls-alpn.pcap", 0)
    t0 = 1_700_000_000.0
    a = _tls_conv(hs, 41200, t0)
    _at(a, t0 + 0.5, True, _app(100))
    _at(a, t0 + 2.0, False, _app(500))
    _close(a, t0 + 3.0)
    e = _tls_conv(hs, 41201, t0 + 0.002)
    _close(e, t0 + 0.4)
    b = _tls_conv(hs, 41202, t0 + 1.0)
    _at(b, t0 + 1.1, True, _app(100))
    _at(b, t0 + 1.2, False, _app(500))
    _close(b, t0 + 1.5)
    res = pcapan.analyze(write(tmp_path / "h2-reuse.pcap", [a, e, b]))
    conns = res.connections.set_index("orig_p")
    assert set(res.tls.next_protocol) == {"h2"}
    m = res.missed_reuse
    assert list(m.uid) == [conns.loc[41202, "uid"]] and list(m.idle_uid) == [
        conns.loc[41200, "uid"]
    ]
    assert list(m.reason) == ["h2"]


@pytest.mark.parametrize(
    ("calls", "count", "times"),
    [
        # In capture order: one exchange per request, exactly.
        ([(True, 10, 10), (False, 11, 11), (True, 20, 20), (False, 21, 21)], 2, (10, 11, 20, 21)),
        # Both directions of a batch handed over in one run each, the server's first: its run
        # (answers at 21 and 31) stretches the first exchange, the client's (requests at 20 and 30)
        # merges into it. Fewer exchanges, busy throughout [10, 31]: never idle while a request
        # was in flight.
        (
            [
                (True, 10, 10),
                (False, 11, 11),
                (False, 21, 31),
                (True, 20, 30),
                (True, 40, 40),
                (False, 41, 41),
            ],
            2,
            (10, 31, 40, 41),
        ),
        # A client run with two requests answered only up to the first (11 < 20): the next client
        # flight (30) does not close the exchange, the request at 20 is still in flight.
        ([(True, 10, 20), (False, 11, 11), (True, 30, 30), (False, 21, 31)], 1, (10, 31)),
        # The last request never answered: kept with end -1 (in flight to the end), not counted.
        ([(True, 10, 10), (False, 11, 11), (True, 20, 20)], 1, (10, 11, 20, -1)),
    ],
)
def test_tls_exchanges_from_runs(
    calls: list[tuple[bool, int, int]], count: int, times: tuple[int, ...]
) -> None:
    """The driver's exchange bookkeeping, fed (direction, first ts, last ts) of runs carrying
    new application-data records (TLS 1.2, after the handshake)."""
    from pcapan.analysis.tls import TlsContext, TlsSession

    s = TlsSession(TlsContext(), None, True, ("a", 1, "b", 2), "", False)  # type: ignore[arg-type]
    s.done_ts = 1
    for is_client, first, last in calls:
        s.app_data(is_client, first, last, 100, 0)
    assert s._exchanges() == (count, times)


def test_tls_exchanges_kept_are_bounded() -> None:
    """Past MAX_TLS_APP_EXCHANGES the last kept exchange is stretched over the later ones (the
    connection looks busy then, never idle); the count goes on."""
    from pcapan.analysis.tls import TlsContext, TlsSession
    from pcapan.config import MAX_TLS_APP_EXCHANGES as N

    s = TlsSession(TlsContext(), None, True, ("a", 1, "b", 2), "", False)  # type: ignore[arg-type]
    s.done_ts = 1
    for k in range(N + 10):
        s.app_data(True, 100 * k, 100 * k, 100, 0)
        s.app_data(False, 100 * k + 10, 100 * k + 10, 500, 0)
    count, times = s._exchanges()
    assert count == N + 10 and len(times) == 2 * N
    assert times[-2:] == (100 * (N - 1), 100 * (N + 9) + 10)


def test_missed_reuse_many_connections_in_one_pair() -> None:
    """A pair with thousands of connections (a client that never reuses): each opens 1 s after
    the previous one, which is still open (1.5 s long) and idle (its one exchange ended 0.2 s
    after it opened). By construction every connection but the first is missed reuse of the one
    before it. (The pair's connections are swept in opening order; a quadratic scan over the
    pair took minutes here.)"""
    import numpy as np

    from pcapan.frames import webperf

    n = 3000
    s = 1_000_000_000
    t0 = np.arange(n, dtype=np.int64) * s
    uid = [f"C{i}" for i in range(n)]
    never = np.iinfo(np.int64).max
    conns = pd.DataFrame(
        {
            "uid": uid,
            "pair": 0,
            "t0": t0,
            "t1": t0 + 3 * s // 2,
            "h2_ready": never,
            "tls_exchanges": pd.array([pd.NA] * n, dtype="Int64"),
            "ts": pd.to_datetime(t0, utc=True),
            "orig_h": "10.0.0.1",
            "resp_h": "10.0.0.2",
            "resp_p": 80,
            "server_name": "example",
        }
    )
    http = pd.DataFrame(
        {
            "uid": uid,
            "ts_request_start": pd.to_datetime(t0 + s // 10, utc=True),
            "ts_response_end": pd.to_datetime(t0 + s // 5, utc=True),
        }
    )
    missed = webperf.missed_reuse(conns, http)
    assert missed.uid.tolist() == uid[1:]
    assert missed.idle_uid.tolist() == uid[:-1]
    assert set(missed.reason) == {"idle"}
