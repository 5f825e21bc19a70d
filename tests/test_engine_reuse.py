"""Issue 13, defects 1 and 2: time going backwards (a capture read twice) and 5-tuple reuse.

The captures in tests/data are real traffic on loopback (tests/data/make_engine_captures.py):

* ``spaced.pcap``: two HTTP/1.0 connections, client ports 40131 and 40132, 12 s apart. tshark
  (``-z conv,tcp``) shows 2 connections of 6 + 6 frames each.
* ``port-reuse.pcap``: two HTTP/1.0 connections from client port 40121 in a row; the second SYN
  (frame 13, new ISN) comes 0.15 ms after the first connection's last ACK (frame 12). tshark
  marks frame 13 "TCP Port numbers reused"; each connection has 6 frames from the client and 6
  from the server.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

import pcapan
import pcapan.io.pcap
from pcapan.api import Analyzer, Result
from pcapan.errors import DuplicateSourceWarning

DATA = Path(__file__).resolve().parent / "data"
SPACED = DATA / "spaced.pcap"
REUSE = DATA / "port-reuse.pcap"
PCAP_HEADER = 24
RECORD_HEADER = 16


def _records(path: Path) -> tuple[bytes, list[bytes]]:
    """The file header and the records of a little-endian pcap."""
    raw = path.read_bytes()
    recs, off = [], PCAP_HEADER
    while off < len(raw):
        n = int.from_bytes(raw[off + 8 : off + 12], "little")
        recs.append(raw[off : off + RECORD_HEADER + n])
        off += RECORD_HEADER + n
    return raw[:PCAP_HEADER], recs


def _doubled(tmp_path: Path, path: Path) -> Path:
    """``mergecap -a -F pcap -w out F F``: the header once, then the records twice (byte for byte
    what mergecap writes for a pcap, checked on spaced.pcap)."""
    raw = path.read_bytes()
    out = tmp_path / f"{path.stem}-twice.pcap"
    out.write_bytes(raw + raw[PCAP_HEADER:])
    return out


def _every_output(r: Result) -> None:
    """Every table, the summary and the report build (the doubled capture crashed them)."""
    for name in (
        "connections",
        "http",
        "tls",
        "rtt",
        "anomalies",
        "servers",
        "clients",
        "missed_reuse",
    ):
        assert isinstance(getattr(r, name), pd.DataFrame), name
    r.summary()


def _check_twice(r: Result) -> None:
    c = r.connections.sort_values(["ts", "orig_p", "uid"]).reset_index(drop=True)
    # Read twice: the 40131 connection had ended (FIN, FIN, ACK) and was finalised (12 s > the
    # 5 s close linger) before its copy came back, so the copy is a second connection with the
    # same 5-tuple and start time: two rows, each with tshark's 6 + 6 frames, distinct uids.
    # The 40132 connection was still lingering when its copy came: tshark, reading the file
    # mergecap makes, marks the copy's segments as retransmissions (65 bytes from the client, 187
    # and 192 from the server, besides SYN/SYN-ACK/FINs): 1 and 2 retransmitted data segments.
    assert list(c.orig_p) == [40131, 40131, 40132]
    assert c.uid.is_unique
    assert list(c.orig_pkts) == [6, 6, 12] and list(c.resp_pkts) == [6, 6, 12]
    assert list(c.orig_retransmits) == [0, 0, 1] and list(c.resp_retransmits) == [0, 0, 2]
    assert c.ts[0] == c.ts[1]
    once = pcapan.analyze(SPACED).connections
    assert set(once.uid) <= set(c.uid)  # the first reading's uids are those of the file alone
    h = r.http
    assert len(h) == 3 and h.uid.is_unique and set(h.uid) == set(c.uid)
    _every_output(r)


def test_same_capture_given_twice_gets_unique_uids() -> None:
    """``pcapan.analyze([F, F])`` (``pcapan analyze F F``): failed in webperf with
    InvalidIndexError (two connection rows with one uid)."""
    with pytest.warns(DuplicateSourceWarning, match="given twice"):
        r = pcapan.analyze([SPACED, SPACED])
    _check_twice(r)
    with pytest.warns(DuplicateSourceWarning):
        again = pcapan.analyze([SPACED, SPACED])
    assert list(again.connections.uid) == list(r.connections.uid)  # deterministic


def test_capture_concatenated_with_itself(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``mergecap -a F F`` read in small batches (as a large file is: the close linger ends the
    first copy's connections between batches)."""
    monkeypatch.setattr(pcapan.io.pcap, "READ_CHUNK_BYTES", 1024)
    dbl = _doubled(tmp_path, SPACED)
    r = pcapan.analyze(dbl)
    _check_twice(r)
    # the shards of the same file merge to the whole, uids included
    key = ["uid"]
    parts = Result.merge([pcapan.analyze(dbl, shard=(i, 2)) for i in range(2)])
    for name in ("connections", "http"):
        whole_t = getattr(r, name).sort_values(key).reset_index(drop=True)
        parts_t = getattr(parts, name).sort_values(key).reset_index(drop=True)
        pd.testing.assert_frame_equal(whole_t, parts_t)


def test_cli_analyze_and_report_same_file_twice(tmp_path: Path) -> None:
    for args in (
        ["analyze", str(SPACED), str(SPACED)],
        ["report", "--no-plots", "-o", str(tmp_path / "r.html"), str(SPACED), str(SPACED)],
    ):
        p = subprocess.run(
            [sys.executable, "-m", "pcapan.cli", *args], capture_output=True, text=True, timeout=300
        )
        assert p.returncode == 0, p.stderr
        assert "Traceback" not in p.stderr
    assert (tmp_path / "r.html").stat().st_size > 0


def test_reused_five_tuple_keeps_the_first_connections_pure_acks(tmp_path: Path) -> None:
    """A connection closed (server FIN, client FIN, last ACK) and reopened on the same 5-tuple
    0.15 ms later, in one batch: its pure ACKs used to be folded in after its row was written
    (orig_pkts 3 instead of 6, resp_pkts 4 instead of 6, no ``A``/``a`` in the history)."""
    both = pcapan.analyze(REUSE).connections
    assert len(both) == 2 and both.uid.is_unique
    header, recs = _records(REUSE)
    assert len(recs) == 24
    first_only = tmp_path / "first.pcap"
    first_only.write_bytes(header + b"".join(recs[:12]))  # frames 1-12: the first connection alone
    alone = pcapan.analyze(first_only).connections
    a, b = both.iloc[0], alone.iloc[0]
    # tshark -z conv,tcp: per connection 6 frames (469 bytes) from the client, 6 (783 bytes)
    # from the server; IP bytes are those less 14 bytes of Ethernet header per frame.
    assert (a.orig_pkts, a.resp_pkts) == (6, 6)
    assert (a.orig_ip_bytes, a.resp_ip_bytes) == (469 - 6 * 14, 783 - 6 * 14)
    # Zeek's history by hand: S (SYN), h (SYN-ACK), A (client's pure ACK, frame 3), D (GET),
    # a (server's pure ACK, frame 5), d (response), f (server FIN, first), F (client FIN).
    assert a.history == "ShADadfF"
    cols = [c for c in both.columns if c not in ("source",)]
    pd.testing.assert_series_equal(a[cols], b[cols], check_names=False)
    assert both.iloc[1].history == "ShADadfF" and (
        both.iloc[1].orig_pkts,
        both.iloc[1].resp_pkts,
    ) == (6, 6)
    # the same rows packet by packet (no folding of data runs)
    an = Analyzer()
    an._engine.fold_bulk = False
    an.feed_source(REUSE)
    pd.testing.assert_frame_equal(an.finish().connections, both)


TLS_REUSE = DATA / "tls-port-reuse.pcap"
# tshark -r tests/data/tls-port-reuse.pcap -o tcp.reassemble_out_of_order:TRUE
#   -Y tls.handshake.type==1 -T fields -e frame.number -e frame.time_epoch -e tcp.srcport
#   -e tls.handshake.extensions_server_name
# (frame, ClientHello time, client port, SNI), one per connection, in capture order:
TSHARK_CLIENT_HELLOS = [
    (4, "1796665337.900123", 40634, "c.test"),
    (22, "1796665338.318069", 40764, "c.test"),
    (46, "1796665342.815161", 40634, "c.test"),
    (64, "1796665343.385831", 40764, "c.test"),
]
# tshark -Y tls.handshake.type==2: the ServerHellos' cipher suites and handshake messages. Frame 6:
# 0xc030 with Certificate, ServerKeyExchange, ServerHelloDone (a full TLS 1.2 handshake, 2
# round trips); frames 24 and 48: 0x1302 with supported_version 0x0304 (TLS 1.3, 1 round
# trip); frame 66: 0xc030 alone (an abbreviated TLS 1.2 handshake, a resumption: 1 round trip).
TSHARK_SERVER_HELLOS = [
    ("TLSv12", "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384", 2),
    ("TLSv13", "TLS_AES_256_GCM_SHA384", 1),
    ("TLSv13", "TLS_AES_256_GCM_SHA384", 1),
    ("TLSv12", "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384", 1),
]
FIRST_FILE_RECORDS = 42  # frames 1-42: the two first connections, up to their servers' RSTs


def test_tls_on_reused_client_ports_across_batches(tmp_path: Path) -> None:
    """Issue 13, 2b: two pairs of HTTPS connections from a real capture (tcp.stream 9 and 1332,
    92 and 1495 of the realcap capture, benchmarks/make_real_capture.py), each pair on one
    5-tuple: the first connection ends with the client's FIN answered by two server RSTs, and
    the port comes back 4.9 s and 5.1 s later, while the first connection still lingers in the
    flow table. Read as two files (rotated captures; in one large file the batch boundary
    does the same), the second connections' ClientHellos were lost (no SNI, JA3, ClientHello
    time, 0 round trips) or their first request dated at the ClientHello: the batch treated
    their flow as one whose parser no longer needs the two directions in capture order (the
    first connection's TLS, past its handshake), so the server's handshake reached the new
    connection's parser before the client's."""
    header, recs = _records(TLS_REUSE)
    assert len(recs) == 81
    first, second = tmp_path / "rot-1.pcap", tmp_path / "rot-2.pcap"
    first.write_bytes(header + b"".join(recs[:FIRST_FILE_RECORDS]))
    second.write_bytes(header + b"".join(recs[FIRST_FILE_RECORDS:]))
    for sources in ([first, second], [TLS_REUSE]):
        r = pcapan.analyze(sources)
        t = r.tls.sort_values("ts_client_hello").reset_index(drop=True)
        assert len(t) == 4 and t.uid.is_unique
        for row, (_, ts, port, sni), (version, cipher, rtts) in zip(
            t.itertuples(), TSHARK_CLIENT_HELLOS, TSHARK_SERVER_HELLOS, strict=True
        ):
            assert (row.orig_p, row.server_name) == (port, sni)
            assert row.ts_client_hello == pd.Timestamp(
                int(ts.replace(".", "")), unit="us", tz="UTC"
            )
            assert (row.version, row.cipher, row.handshake_rtts) == (version, cipher, rtts)
            assert row.established
            assert row.ts_first_request > row.ts_client_hello
        conns = r.connections
        assert len(conns) == 4 and (conns.service == "tls").all()
    # packet by packet (no folding of data runs): the same rows
    an = Analyzer()
    an._engine.fold_bulk = False
    for f in (first, second):
        an.feed_source(f)
    unfolded = an.finish()
    folded = pcapan.analyze([first, second])
    pd.testing.assert_frame_equal(unfolded.tls, folded.tls)
    pd.testing.assert_frame_equal(unfolded.connections, folded.connections)


def test_reuse_within_one_timestamp_gets_its_own_uid(tmp_path: Path) -> None:
    """port-reuse.pcap with every record's time set to that of the first (a capture tool with a
    coarse clock, or timestamps zeroed by an anonymiser): the two connections on one 5-tuple
    start at the same instant, without time going back; they still get two uids."""
    header, recs = _records(REUSE)
    stamp = recs[0][:8]
    flat = tmp_path / "flat.pcap"
    flat.write_bytes(header + b"".join(stamp + r[8:] for r in recs))
    r = pcapan.analyze(flat)
    c = r.connections
    assert len(c) == 2 and c.uid.is_unique and c.ts.nunique() == 1
    assert list(c.orig_pkts) == [6, 6] and list(c.resp_pkts) == [6, 6]  # tshark: 6 + 6 each
    assert len(r.http) == 2 and set(r.http.uid) == set(c.uid)
    _every_output(r)
    parts = Result.merge([pcapan.analyze(flat, shard=(i, 2)) for i in range(2)])
    assert sorted(parts.connections.uid) == sorted(c.uid)


def test_merge_of_separate_analyses_of_one_capture() -> None:
    """Result.merge of two analyses of the same capture (separate captures that overlap): the
    second part's uids were the first's, and the tables failed as with defect 1. Every row is
    kept, each uid once, and the second part's rows still join across tables on their uid."""
    sample = DATA.parent.parent / "samples" / "http-keepalive.pcap"  # 2 connections, 6 requests
    one = pcapan.analyze(sample)
    m = Result.merge([one, pcapan.analyze(sample)])
    c, h = m.connections, m.http
    assert len(c) == 2 * len(one.connections) and c.uid.is_unique
    assert len(h) == 2 * len(one.http) and set(h.uid) == set(c.uid)
    assert set(m.rtt.uid) == set(c.uid) and len(m.rtt) == 2 * len(one.rtt)
    assert (c.groupby("uid").size() == 1).all()
    # the values, uid aside, are those of the single analysis, twice
    cols = [k for k in c.columns if k != "uid"]
    single = pd.concat([one.connections, one.connections])[cols].sort_values(["ts", "orig_p"])
    pd.testing.assert_frame_equal(
        c[cols].sort_values(["ts", "orig_p"]).reset_index(drop=True), single.reset_index(drop=True)
    )
    _every_output(m)
    again = Result.merge([one, pcapan.analyze(sample)])
    assert sorted(again.connections.uid) == sorted(c.uid)  # deterministic
