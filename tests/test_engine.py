"""Connections from hand-built TCP conversations: orientation, reuse, timeouts, link layers.

Each expected value follows from how the packets are built (tests/tcpgen.py) and Zeek's
documented semantics (conn_state/history), worked out in the comments.
"""

from __future__ import annotations

import struct
from pathlib import Path

import pandas as pd
import pytest

import pcapan
from pcapan.api import Analyzer, Result

from .tcpgen import Conv, write

REQ = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"
RESP = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello"


def simple(**kw: object) -> Conv:
    c = Conv(**kw)  # type: ignore[arg-type]
    c.handshake()
    c.send(True, "PA", REQ)
    c.send(False, "PA", RESP)
    c.send(True, "A")
    c.close()
    return c


def test_simple_connection(tmp_path: Path) -> None:
    df = pcapan.analyze(write(tmp_path / "a.pcap", [simple()])).connections
    assert len(df) == 1
    r = df.iloc[0]
    # orig: S A D(req) A F A; resp: SA d(resp) FA. The responder never sends a pure ACK, so
    # Zeek's history (each letter once per side, in order) is S h A D d F f.
    assert (r.orig_h, r.orig_p, r.resp_h, r.resp_p) == ("10.0.0.1", 40000, "10.0.0.2", 80)
    assert r.conn_state == "SF"
    assert r.history == "ShADdFf"
    assert r.orig_bytes == len(REQ) and r.resp_bytes == len(RESP)
    assert r.orig_pkts == 6 and r.resp_pkts == 3
    assert r.service == "http"
    assert r.orig_mss == 1460 and r.resp_mss == 1400 and r.orig_wscale == 7 and r.resp_wscale == 8
    assert bool(r.orig_sack_ok) and bool(r.resp_sack_ok)
    assert r.close_reason == "fin"
    assert not bool(r.partial)


def test_uid_deterministic_and_distinct(tmp_path: Path) -> None:
    p = write(tmp_path / "a.pcap", [simple(), simple(cport=40001, t=1_700_000_000.5)])
    a, b = pcapan.analyze(p).connections, pcapan.analyze(p).connections
    assert list(a.uid) == list(b.uid)
    assert a.uid.nunique() == 2
    assert a.uid.str.match(r"^C[0-9A-Za-z]{17}$").all()


def test_reuse_of_five_tuple_after_close_is_new_connection(tmp_path: Path) -> None:
    first = simple()
    second = simple(cisn=900_000, sisn=700_000, t=1_700_000_010.0)  # same ports, later, new ISNs
    df = pcapan.analyze(write(tmp_path / "a.pcap", [first, second])).connections
    assert len(df) == 2
    assert df.uid.nunique() == 2
    assert list(df.conn_state) == ["SF", "SF"]


def test_new_syn_with_other_isn_on_open_connection(tmp_path: Path) -> None:
    c = Conv()
    c.handshake()
    c.send(True, "PA", REQ)
    d = Conv(cisn=77_777, t=c.t + 1)
    d.handshake()
    d.close()
    df = pcapan.analyze(write(tmp_path / "a.pcap", [c, d])).connections
    assert len(df) == 2
    assert df.iloc[0].close_reason == "reused"
    assert df.iloc[1].conn_state == "SF"


def test_idle_timeout_splits(tmp_path: Path) -> None:
    c = Conv()
    c.handshake()
    c.send(True, "PA", REQ)
    c.send(False, "PA", RESP, dt=400.0)  # more than Zeek's 300 s inactivity timeout
    df = pcapan.analyze(write(tmp_path / "a.pcap", [c])).connections
    assert len(df) == 2
    assert df.iloc[0].close_reason == "idle_timeout"
    assert df.iloc[0].conn_state == "S1"
    # The second piece starts mid-stream from the server's data: partial, oriented by port 80.
    assert bool(df.iloc[1].partial)
    assert df.iloc[1].resp_p == 80
    df2 = pcapan.analyze(write(tmp_path / "b.pcap", [c]), idle_timeout_s=1000).connections
    assert len(df2) == 1


def test_midstream_orientation_by_port(tmp_path: Path) -> None:
    c = Conv()
    c.send(False, "PA", RESP)  # first packet seen: server (port 80) -> client
    c.send(True, "A")
    df = pcapan.analyze(write(tmp_path / "a.pcap", [c])).connections
    r = df.iloc[0]
    assert (r.orig_p, r.resp_p) == (40000, 80)
    assert bool(r.partial)
    # The first packet came from the responder: roles differ from first-packet order ('^'),
    # then the responder's data (d) and the originator's pure ACK (A).
    assert r.history == "^dA"
    assert bool(r.flipped)


def test_syn_ack_first_flips(tmp_path: Path) -> None:
    c = Conv()
    c.send(False, "SA")
    c.send(True, "A")
    df = pcapan.analyze(write(tmp_path / "a.pcap", [c])).connections
    r = df.iloc[0]
    assert (r.orig_p, r.resp_p) == (40000, 80)
    assert r.history.startswith("^h")
    assert bool(r.flipped)


def test_rejected(tmp_path: Path) -> None:
    c = Conv()
    c.send(True, "S")
    c.send(False, "RA", ack=c.cseq)
    r = pcapan.analyze(write(tmp_path / "a.pcap", [c])).connections.iloc[0]
    assert r.conn_state == "REJ" and r.history == "Sr"


@pytest.mark.parametrize("vlans", [(), (100,), (100, 200)])
def test_vlan_and_qinq(tmp_path: Path, vlans: tuple[int, ...]) -> None:
    r = pcapan.analyze(write(tmp_path / "a.pcap", [simple()], vlans=vlans)).connections
    assert len(r) == 1 and r.iloc[0].conn_state == "SF"


def test_raw_ip_and_ipv6(tmp_path: Path) -> None:
    r = pcapan.analyze(write(tmp_path / "a.pcap", [simple()], linktype="raw")).connections
    assert len(r) == 1 and r.iloc[0].history == "ShADdFf"
    r6 = pcapan.analyze(
        write(tmp_path / "b.pcap", [simple(client="fd00::1", server="fd00::2")])
    ).connections
    assert r6.iloc[0].orig_h == "fd00::1" and r6.iloc[0].ip_version == 6
    # IPv6 IP bytes = 40 + TCP header + payload; IPv4 = 20 + ... : 20 more per packet.
    assert r6.iloc[0].orig_ip_bytes - r.iloc[0].orig_ip_bytes == 20 * r.iloc[0].orig_pkts


def _relink(src: Path, dst: Path, linktype: int, prefix: bytes) -> Path:
    """Rewrite a raw-IP pcap to another link type by prefixing each record with a header."""
    data = src.read_bytes()
    out = bytearray(data[:20] + struct.pack("<I", linktype))
    pos = 24
    while pos < len(data):
        sec, usec, cap, wire = struct.unpack_from("<IIII", data, pos)
        body = data[pos + 16 : pos + 16 + cap]
        out += (
            struct.pack("<IIII", sec, usec, cap + len(prefix), wire + len(prefix)) + prefix + body
        )
        pos += 16 + cap
    dst.write_bytes(bytes(out))
    return dst


@pytest.mark.parametrize(
    ("linktype", "prefix"),
    [
        (0, struct.pack("<I", 2)),  # BSD NULL, AF_INET in host (little-endian) order
        (108, struct.pack(">I", 2)),  # OpenBSD LOOP, network order
        (113, b"\x00\x00\x00\x01\x00\x06" + b"\x00" * 8 + b"\x08\x00"),  # Linux SLL
        (
            276,
            b"\x08\x00\x00\x00" + b"\x00\x00\x00\x01" + b"\x00\x01\x00\x06" + b"\x00" * 8,
        ),  # SLL2
        (228, b""),  # LINKTYPE_IPV4
    ],
)
def test_link_types(tmp_path: Path, linktype: int, prefix: bytes) -> None:
    raw = write(tmp_path / "raw.pcap", [simple()], linktype="raw")
    p = _relink(raw, tmp_path / "x.pcap", linktype, prefix)
    df = pcapan.analyze(p).connections
    assert len(df) == 1
    assert df.iloc[0].history == "ShADdFf"


def test_non_tcp_counted(tmp_path: Path) -> None:
    from scapy.layers.inet import ICMP, IP, UDP
    from scapy.packet import Raw

    items = [
        (
            1_700_000_000.0 + i,
            IP(src="10.0.0.1", dst="10.0.0.2") / UDP(sport=5, dport=53) / Raw(b"x" * 10),
        )
        for i in range(3)
    ]
    items.append((1_700_000_009.0, IP(src="10.0.0.1", dst="10.0.0.2") / ICMP()))
    res = pcapan.analyze(write(tmp_path / "a.pcap", [*items, *simple().pkts]))
    s = res.summary()
    assert s["ip_packets"]["udp"] == 3 and s["ip_packets"]["icmp"] == 1
    assert s["ip_bytes"]["udp"] == 3 * (20 + 8 + 10)
    assert s["tcp_connections"] == 1


def test_shards_merge_to_the_whole(tmp_path: Path) -> None:
    convs = [simple(cport=40000 + i, t=1_700_000_000.0 + i * 0.01) for i in range(20)]
    p = write(tmp_path / "a.pcap", convs)
    whole = pcapan.analyze(p).connections
    parts = Result.merge([pcapan.analyze(p, shard=(i, 3)) for i in range(3)]).connections
    assert len(whole) == 20
    key = ["uid"]
    assert (
        whole.sort_values(key)
        .reset_index(drop=True)
        .equals(parts.sort_values(key).reset_index(drop=True))
    )
    assert all(len(pcapan.analyze(p, shard=(i, 3)).connections) < 20 for i in range(3))


SAMPLES = Path(__file__).resolve().parent.parent / "samples"
CORPUS = Path(__file__).resolve().parent.parent.parent / "shared" / "corpus"


def _captures() -> list[Path]:
    files = sorted(SAMPLES.glob("*.pcap*"))
    if CORPUS.is_dir():
        files += sorted(p for p in CORPUS.rglob("*.pcap*") if ".gt" not in str(p) and p.is_file())
    return files


@pytest.mark.parametrize("path", _captures(), ids=lambda p: p.name)
def test_folded_runs_equal_packet_by_packet(path: Path) -> None:
    """The batch fast path (folding in-order data runs) must not change any row."""
    out = []
    for fold in (True, False):
        an = Analyzer()
        an._engine.fold_bulk = fold
        an.feed_source(path)
        res = an.finish()
        out.append((res.connections, res.http, res.tls, res.anomalies))
    for folded, unfolded in zip(out[0], out[1], strict=True):
        pd.testing.assert_frame_equal(folded, unfolded)


@pytest.mark.parametrize("order", ["in_order", "reversed", "shuffled"])
def test_ipv4_fragments_reassembled(tmp_path: Path, order: str) -> None:
    import random

    from scapy.layers.inet import fragment

    c = Conv()
    c.handshake()
    body = b"HTTP/1.1 200 OK\r\nContent-Length: 3000\r\n\r\n" + b"z" * 3000
    c.send(True, "PA", REQ)
    c.send(False, "PA", body)  # one 3040-byte TCP segment: only fits as IP fragments
    c.close()
    t_big, big = c.pkts[4]
    frags = fragment(big, fragsize=1000)  # 4 fragments
    assert len(frags) == 4
    if order == "reversed":
        frags = frags[::-1]
    elif order == "shuffled":
        random.Random(3).shuffle(frags)
    items = [(t, p) for j, (t, p) in enumerate(c.pkts) if j != 4]
    items += [(t_big + k * 1e-6, f) for k, f in enumerate(frags)]
    res = pcapan.analyze(write(tmp_path / "f.pcap", items))
    r = res.connections.iloc[0]
    assert r.resp_bytes == len(body) and r.missed_bytes == 0 and r.conn_state == "SF"
    assert res.summary()["ip_fragments"] == 4 and res.summary()["ip_reassembled"] == 1


def test_ipv4_fragment_missing_is_anomaly(tmp_path: Path) -> None:
    from scapy.layers.inet import fragment

    c = Conv()
    c.handshake()
    c.send(False, "PA", b"y" * 3000)
    t_big, big = c.pkts[-1]
    frags = fragment(big, fragsize=1000)
    items = [*c.pkts[:-1], *[(t_big + k * 1e-6, f) for k, f in enumerate(frags) if k != 1]]
    res = pcapan.analyze(write(tmp_path / "f.pcap", items))
    assert "frag_incomplete" in set(res.anomalies.name)


def test_ipv6_fragments_reassembled(tmp_path: Path) -> None:
    from scapy.layers.inet6 import IPv6, IPv6ExtHdrFragment, fragment6

    c = Conv(client="fd00::1", server="fd00::2")
    c.handshake()
    body = b"HTTP/1.1 200 OK\r\n\r\n" + b"q" * 2500
    c.send(False, "PA", body)
    c.close()
    t_big, big = c.pkts[3]
    frags = fragment6(IPv6(src=big.src, dst=big.dst) / IPv6ExtHdrFragment() / big.payload, 1280)
    assert len(frags) >= 2
    items = [(t, p) for j, (t, p) in enumerate(c.pkts) if j != 3]
    items += [(t_big + k * 1e-6, f) for k, f in enumerate(reversed(frags))]
    res = pcapan.analyze(write(tmp_path / "f6.pcap", items))
    r = res.connections.iloc[0]
    assert r.resp_bytes == len(body) and r.missed_bytes == 0
    assert res.summary()["ip_reassembled"] == 1


def _split(batch, size: int):  # noqa: ANN001, ANN202
    from pcapan.io.batch import FrameBatch

    for s in range(0, len(batch), size):
        sl = slice(s, s + size)
        yield FrameBatch(
            batch.data,
            batch.offset[sl],
            batch.caplen[sl],
            batch.wirelen[sl],
            batch.ts_ns[sl],
            batch.linktype[sl],
            batch.frame_no[sl],
        )


def test_memory_follows_open_flows(tmp_path: Path) -> None:
    """300 sequential connections, one a second: closed ones are finalised and dropped, so the
    flow table never holds more than the last ~15 s worth (5 s linger + 10 s sweep interval)."""
    from pcapan.analysis.engine import Analyzer as Engine
    from pcapan.io import open_capture

    convs = [simple(cport=20000 + i, t=1_700_000_000.0 + i) for i in range(300)]
    p = write(tmp_path / "many.pcap", convs)
    eng = Engine()
    peak = 0
    for batch in open_capture(p):
        for small in _split(batch, 50):
            eng.feed(small)
            peak = max(peak, len(eng.flows))
    eng.finish()
    assert len(eng.connections) == 300
    assert peak <= 20


def test_new_connection_oriented_by_its_own_first_packet(tmp_path: Path) -> None:
    """The 5-tuple's first packet in the capture came from the server (an old connection seen
    mid-stream, then reset); the client's new SYN must still make the client the originator."""
    old = Conv()
    old.send(False, "PA", RESP)  # server -> client, picked up mid-stream
    old.send(True, "R", seq=old.cseq)  # client resets it
    new = Conv(cisn=424_242, t=old.t + 1)
    new.handshake()
    new.close()
    df = pcapan.analyze(write(tmp_path / "a.pcap", [old, new])).connections
    assert len(df) == 2
    r = df.iloc[1]
    assert (r.orig_h, r.orig_p, r.resp_h, r.resp_p) == ("10.0.0.1", 40000, "10.0.0.2", 80)
    assert r.history == "ShAFf" and r.conn_state == "SF"


def test_hash_collisions_fall_back_to_the_full_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every flow hashing alike must still give the same table (grouping by the key itself)."""
    import numpy as np

    from pcapan.analysis import engine

    convs = [simple(cport=41000 + i, t=1_700_000_000.0 + i * 0.01) for i in range(5)]
    p = write(tmp_path / "c.pcap", convs)
    normal = pcapan.analyze(p).connections
    monkeypatch.setattr(engine, "_flow_hash", lambda *a: np.zeros(a[0].shape[0], dtype=np.uint64))
    collided = pcapan.analyze(p).connections
    assert len(normal) == 5
    assert normal.equals(collided)


@pytest.mark.parametrize("outer", ["ipv4", "ipv6"])
def test_vxlan_inner_connection_decoded(tmp_path: Path, outer: str) -> None:
    """A TCP connection inside VXLAN (UDP 4789, RFC 7348) gives the same connection and HTTP
    rows as the same packets without the tunnel; a UDP packet to 4789 without the VXLAN I flag
    is not taken for a tunnel."""
    from scapy.layers.inet import IP, UDP
    from scapy.layers.inet6 import IPv6
    from scapy.layers.l2 import Ether
    from scapy.layers.vxlan import VXLAN

    plain = write(tmp_path / "plain.pcap", [simple()])
    ip = (
        IP(src="192.0.2.1", dst="192.0.2.2")
        if outer == "ipv4"
        else IPv6(src="2001:db8::1", dst="2001:db8::2")
    )
    wrapped = [
        (
            t,
            ip
            / UDP(sport=50000, dport=4789)
            / VXLAN(vni=42)
            / Ether(src="00:00:00:00:00:0a", dst="00:00:00:00:00:0b")
            / p,
        )
        for t, p in simple().pkts
    ]
    not_vxlan = (
        wrapped[0][0],
        ip / UDP(sport=50000, dport=4789) / (b"\x00" * 8 + bytes(wrapped[0][1][Ether])),
    )
    tunnelled = write(tmp_path / "vxlan.pcap", [*wrapped, not_vxlan])
    a, b = pcapan.analyze(plain), pcapan.analyze(tunnelled)
    cols = [
        "orig_h",
        "orig_p",
        "resp_h",
        "resp_p",
        "history",
        "conn_state",
        "orig_bytes",
        "resp_bytes",
        "orig_pkts",
        "resp_pkts",
    ]
    assert len(b.connections) == 1
    pd.testing.assert_frame_equal(a.connections[cols], b.connections[cols])
    assert list(b.http.uri) == ["/"] and list(b.http.status_code) == [200]
    # every frame of the conversation was decoded from inside the tunnel, the decoy was not
    assert b.summary()["tunnelled_packets"] == len(simple().pkts)


def test_http_side_that_ended_before_detection_still_ends(tmp_path: Path) -> None:
    """The server closes (FIN, no data) before the client's request shows the connection is
    HTTP: the parser must still hear that the server side ended, so the request is reported
    unanswered (not left pending). Worked out: one request row, no response columns."""
    c = Conv()
    c.handshake()
    c.send(False, "FA")  # server closes first, having sent nothing
    c.send(True, "PA", REQ)
    c.send(False, "R", seq=c.sseq)
    res = pcapan.analyze(write(tmp_path / "early-fin.pcap", [c]))
    h = res.http
    assert len(h) == 1
    row = h.iloc[0]
    assert row.method == "GET" and row.uri == "/" and pd.isna(row.status_code)


REPRO = Path(__file__).resolve().parent / "fuzz" / "repro"
# Reproducers of fold differences not fixed yet (strict xfails in tests/test_fuzz_repros.py).
REPRO_OPEN: set[str] = set()


@pytest.mark.parametrize("size", [5, 16])
@pytest.mark.parametrize(
    "path",
    sorted(SAMPLES.glob("*.pcap*"))
    + [
        pytest.param(
            p, marks=pytest.mark.xfail(strict=True, reason="fold difference not fixed yet")
        )
        if p.name in REPRO_OPEN
        else p
        for p in sorted(REPRO.glob("*.pcap*"))
    ],
    ids=lambda p: p.name,
)
def test_folded_runs_equal_packet_by_packet_in_small_batches(path: Path, size: int) -> None:
    """As above, with the capture cut into batches of ``size`` frames: a connection then lives
    across batches, in the states a long capture reaches (TLS past its handshake folds both
    directions without needing capture order, holes revealed in a later batch, time going back
    across a batch boundary), which one batch per sample never reaches. Every record field is
    compared (tests.fuzz.check.fold_diff)."""
    from pcapan.analysis.engine import Analyzer as Engine
    from pcapan.io import open_capture
    from tests.fuzz.check import fold_diff

    results = []
    for fold in (True, False):
        an = Analyzer()
        eng: Engine = an._engine
        eng.fold_bulk = fold
        an.start_source(str(path))
        opened = open_capture(path)
        for batch in opened:
            for small in _split(batch, size):
                eng.feed(small)
        eng.add_read_issues(opened.report.issues)
        results.append(an.finish())
    assert isinstance(results[0], Result)
    assert results[0].connection_records, "no connection: the comparison would prove nothing"
    assert fold_diff(results[0], results[1]) is None


def test_connection_source_is_its_own_file() -> None:
    """Two captures in one analysis: each connection's source is the file of its first packet,
    not the file being read when it was finalised (rtt-tls.pcap and rtt-http.pcap hold two
    connections each: samples/rtt-facts.json; every connection of the first file ends at the
    end of the analysis, while the second file is read)."""
    tls, http = SAMPLES / "rtt-tls.pcap", SAMPLES / "rtt-http.pcap"
    res = pcapan.analyze([tls, http])
    by_source = res.connections.groupby("source").uid.apply(set).to_dict()
    assert {k: len(v) for k, v in by_source.items()} == {str(tls): 2, str(http): 2}
    assert by_source[str(tls)] == set(res.tls.uid)
    assert by_source[str(http)] == set(res.http.uid)
