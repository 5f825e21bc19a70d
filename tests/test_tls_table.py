"""The tls table through the whole engine: samples against tshark, segmentation, gaps, tunnels.

Expected values come from tshark's TLS dissector on the same captures (differential), or from
how the test captures are built (replayed real handshake bytes, re-segmented by tests/tcpgen.py),
never from pcapan's own output.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pandas as pd
import pytest

import pcapan
from pcapan.api import Analyzer
from pcapan.proto.tls_registry import cipher_name, version_name

from .tcpgen import Conv, write
from .tls_streams import segments, stream_count

SAMPLES = Path(__file__).resolve().parent.parent / "samples"
TSHARK = shutil.which("tshark")
needs_tshark = pytest.mark.skipif(TSHARK is None, reason="tshark not installed")


def tls_samples() -> list[Path]:
    return sorted(
        p
        for p in SAMPLES.glob("*.pcap*")
        if p.name.startswith("tls") or p.name == "http-connect.pcap"
    )


def _tshark_hellos(path: Path, ports: set[int]) -> dict[tuple[int, int], dict[str, str]]:
    """Per (client port, server port): what tshark reads in the hellos."""
    cmd = [
        TSHARK or "tshark",
        "-r",
        str(path),
        "-n",
        "-o",
        "tls.desegment_ssl_records:TRUE",
        "-o",
        "tcp.reassemble_out_of_order:TRUE",
    ]
    for p in sorted(ports):
        cmd += ["-d", f"tcp.port=={p},tls"]
    fields = [
        "tcp.srcport",
        "tcp.dstport",
        "tls.handshake.type",
        "tls.handshake.extensions_server_name",
        "tls.handshake.extensions_alpn_str",
        "tls.handshake.ciphersuite",
        "tls.handshake.extensions.supported_version",
        "tls.handshake.version",
        "tls.handshake.ja3",
        "tls.handshake.ja3s",
        "tls.handshake.random",
    ]
    cmd += [
        "-Y",
        "tls.handshake.type==1 || tls.handshake.type==2",
        "-T",
        "fields",
        "-E",
        "separator=|",
        "-E",
        "occurrence=a",
        "-E",
        "aggregator=;",
    ]
    for f in fields:
        cmd += ["-e", f]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    res: dict[tuple[int, int], dict[str, str]] = {}
    for line in out.splitlines():
        v = dict(zip(fields, line.split("|"), strict=True))
        sp, dp = int(v["tcp.srcport"]), int(v["tcp.dstport"])
        types = v["tls.handshake.type"].split(";")
        if "1" in types:
            d = res.setdefault((sp, dp), {})
            # After a HelloRetryRequest the second ClientHello is the one negotiated.
            d.update(
                sni=v["tls.handshake.extensions_server_name"],
                alpn=v["tls.handshake.extensions_alpn_str"],
                ja3=v["tls.handshake.ja3"],
            )
        if "2" in types:
            d = res.setdefault((dp, sp), {})
            rnd = (
                v["tls.handshake.random"].split(";")[types.index("2")]
                if v["tls.handshake.random"]
                else ""
            )
            if rnd.replace(":", "").lower().startswith("cf21ad74e59a6111be1d8c021e65b891"):
                d["hrr"] = "1"
                continue  # HelloRetryRequest: not the negotiating ServerHello
            sv = v["tls.handshake.extensions.supported_version"].split(";")
            d.update(
                cipher=v["tls.handshake.ciphersuite"].split(";")[-1],
                version=sv[-1] if sv[-1] else v["tls.handshake.version"].split(";")[-1],
                alpn_sel=v["tls.handshake.extensions_alpn_str"],
                ja3s=v["tls.handshake.ja3s"],
            )
    return res


@needs_tshark
@pytest.mark.parametrize("path", tls_samples(), ids=lambda p: p.name)
def test_tls_rows_match_tshark(path: Path) -> None:
    """Version, cipher, SNI, ALPN offered/selected, JA3/JA3S of every handshake as tshark reads them."""
    tls = pcapan.analyze(path).tls
    assert len(tls), f"{path.name}: no TLS handshake found"
    want = _tshark_hellos(path, set(tls.resp_p.astype(int)))
    assert len(want) == len(tls), (sorted(want), tls[["orig_p", "resp_p"]].values.tolist())
    for r in tls.itertuples():
        w = want[(int(r.orig_p), int(r.resp_p))]
        key = f"{path.name} {r.orig_p}->{r.resp_p}"
        assert (r.server_name if r.server_name is not pd.NA else "") == w.get("sni", ""), key
        assert (r.alpn_offered if r.alpn_offered is not pd.NA else "") == w.get("alpn", "").replace(
            ";", ","
        ), key
        assert r.ja3 == (w.get("ja3") or pd.NA) or r.ja3 == w.get("ja3"), key
        if "cipher" in w:
            assert r.cipher == cipher_name(int(w["cipher"], 16)), key
            assert r.version == version_name(int(w["version"], 16)), key
            assert r.ja3s == w["ja3s"], key
            if r.version == "TLSv13":
                assert r.next_protocol is pd.NA, key  # encrypted in 1.3: never guessed
            else:
                assert (r.next_protocol if r.next_protocol is not pd.NA else "") == w.get(
                    "alpn_sel", ""
                ), key
        else:
            assert r.version is pd.NA and r.cipher is pd.NA, key
        assert bool(r.hello_retry_request) == ("hrr" in w), key


def _replay(
    tmp_path: Path,
    src: Path,
    stream: int,
    split: int | None = None,
    drop: int | None = None,
    port: int = 4433,
) -> Path:
    """Stream ``stream`` of ``src`` (its segments as tshark follows them) replayed over a fresh
    TCP connection; ``split``: each segment cut into pieces of at most that many bytes;
    ``drop``: the index of a client-to-server piece left out (a capture hole)."""
    c = Conv(sport=port)
    c.handshake()
    i = 0
    for is_orig, payload in segments(src, stream):
        size = split or len(payload)
        for k in range(0, len(payload), size):
            piece = payload[k : k + size]
            if drop is not None and is_orig and i == drop:
                # Left out of the capture, but sent: the sequence numbers move on.
                c.cseq += len(piece)
            else:
                c.send(is_orig, "PA", piece)
            if is_orig:
                i += 1
        c.send(not is_orig, "A")
    c.close()
    return write(tmp_path / f"replay-{stream}-{split}-{drop}.pcap", [c])


def _row(path: Path) -> pd.Series:
    tls = pcapan.analyze(path).tls
    assert len(tls) == 1
    return tls.iloc[0]


STABLE = [
    "version",
    "cipher",
    "server_name",
    "alpn_offered",
    "next_protocol",
    "curve",
    "resumed",
    "resumption",
    "ticket_issued",
    "established",
    "handshake_rtts",
    "cert_chain_len",
    "cert_subject_cn",
    "ja3",
    "ja3s",
    "ja4",
    "orig_records",
    "resp_records",
    "orig_app_bytes",
    "resp_app_bytes",
    "alert",
    "tls_flags",
]


_WHOLE_ROWS: dict[int, pd.Series] = {}


@needs_tshark
@pytest.mark.parametrize("split", [1, 7, 100])
def test_segmentation_does_not_change_the_row(tmp_path: Path, split: int) -> None:
    """Every TLS stream of the sample, re-segmented (down to one byte per TCP segment), gives the
    row it gives whole: records and handshake messages are gathered across segments."""
    src = SAMPLES / "tls.pcap"
    for stream in range(stream_count(src)):
        # (the whole replay's row is the same for every split: made once per stream)
        if stream not in _WHOLE_ROWS:
            _WHOLE_ROWS[stream] = _row(_replay(tmp_path, src, stream))
        whole = _WHOLE_ROWS[stream]
        cut = _row(_replay(tmp_path, src, stream, split=split))
        assert whole[STABLE].equals(cut[STABLE]), (stream, split)


@needs_tshark
def test_replay_agrees_with_the_sample(tmp_path: Path) -> None:
    """The replay harness keeps what matters: the replayed TLS 1.2 full handshake has the values
    the tshark differential checks on the sample itself."""
    src = SAMPLES / "tls.pcap"
    orig = pcapan.analyze(src).tls.iloc[0]
    rep = _row(_replay(tmp_path, src, 0))
    for col in (
        "version",
        "cipher",
        "server_name",
        "ja3",
        "ja3s",
        "ja4",
        "handshake_rtts",
        "orig_app_bytes",
    ):
        assert orig[col] == rep[col], col


@needs_tshark
def test_hole_in_the_handshake_is_a_flag_and_an_anomaly(tmp_path: Path) -> None:
    """A client segment missing from the capture: that direction stops being parsed (record
    boundaries are lost with the bytes), the row says so, an anomaly row names it, the server's
    side is still read."""
    src = SAMPLES / "tls.pcap"
    path = _replay(tmp_path, src, 0, split=100, drop=1)  # inside the ClientHello (~ 300 bytes)
    res = pcapan.analyze(path)
    r = res.tls.iloc[0]
    assert "tls_gap_client" in r["tls_flags"]
    assert r.server_name is pd.NA  # the ClientHello was cut: not parsed
    assert r.cipher == "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384"  # the server's hello still is
    assert "tls_gap" in set(res.anomalies.name)


def test_tls_inside_connect_tunnel() -> None:
    """http-connect.pcap: CONNECT to a local TLS server through a proxy (samples/README.md)."""
    res = pcapan.analyze(SAMPLES / "http-connect.pcap")
    tun = res.tls[res.tls.in_tunnel]
    assert len(tun) == 1
    uid = tun.uid.iloc[0]
    assert res.connections.set_index("uid").loc[uid, "service"] == "http,tls"
    assert res.http.set_index("uid").loc[uid, "method"] == "CONNECT"
    assert tun.established.iloc[0]


def test_fold_and_packet_by_packet_agree_on_bulk_tls(tmp_path: Path) -> None:
    """Application data in many segments (records split across them, records skipped as opaque
    views on the batch path) counts the same as one by one: 40 records of 16 KiB + 1 byte."""
    c = Conv(sport=8443)
    c.handshake()
    rec = b"\x17\x03\x03" + (16385).to_bytes(2, "big") + b"\xaa" * 16385
    # A minimal ClientHello (RFC 5246 7.4.1.2): version, random, empty session id, one suite,
    # null compression, no extensions.
    body = b"\x03\x03" + b"\x11" * 32 + b"\x00" + b"\x00\x02\xc0\x2f" + b"\x01\x00"
    msg = b"\x01" + len(body).to_bytes(3, "big") + body
    hello = b"\x16\x03\x01" + len(msg).to_bytes(2, "big") + msg
    c.send(True, "PA", hello)
    stream = rec * 40
    for k in range(0, len(stream), 1448):
        c.send(False, "PA", stream[k : k + 1448], dt=0.0001)
        if k % (1448 * 8) == 0:
            c.send(True, "A")
    c.close()
    path = write(tmp_path / "bulk.pcap", [c])
    rows = []
    for fold in (True, False):
        an = Analyzer()
        an._engine.fold_bulk = fold
        an.feed_source(path)
        rows.append(an.finish().tls)
    pd.testing.assert_frame_equal(rows[0], rows[1])
    r = rows[0].iloc[0]
    assert r.resp_records == 40 and r.resp_app_bytes == 40 * 16385
    assert r.orig_records == 1 and r.client_ciphers == "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256"


def test_tls_sample_facts() -> None:
    """samples/README.md, `tls.pcap`, per stream 0-5 (facts checked there with tshark and the
    s_client output: New/Reused)."""
    t = pcapan.analyze(SAMPLES / "tls.pcap").tls.sort_values("orig_p")
    assert list(t.version) == ["TLSv12", "TLSv13", "TLSv12", "TLSv12", "TLSv12", "TLSv12"]
    assert list(t.resumption.fillna("-")) == ["-", "-", "-", "ticket", "-", "session_id"]
    assert list(t.ticket_issued.astype(object).fillna("enc")) == [
        False,
        "enc",
        True,
        False,
        False,
        False,
    ]
    assert list(t.cert_chain_len.fillna(0)) == [1, 0, 1, 0, 1, 0]
    assert set(t.cert_subject_cn.dropna()) == {"pcapan.test"} and t.cert_self_signed.dropna().all()
    # Round trips the client waited before it could send the request: 2 for a full TLS 1.2
    # handshake, 1 for TLS 1.3 and for both abbreviated (resumed) ones.
    assert list(t.handshake_rtts) == [2, 1, 2, 1, 2, 1]
    assert list(t.next_protocol.fillna("-")) == [
        "http/1.1",
        "-",
        "http/1.1",
        "http/1.1",
        "http/1.1",
        "http/1.1",
    ]


def _facts() -> list[dict]:
    import json

    return json.loads((SAMPLES / "tls-facts.json").read_text())["connections"]


def test_tls_feature_samples_match_their_facts() -> None:
    """samples/tls-facts.json: every connection of the tls-*.pcap feature captures, its facts read
    back with tshark (and, where the wire is encrypted, from the client's own report: TLS 1.3
    ALPN selection, 0-RTT acceptance) when make_samples.py wrote them."""
    facts = _facts()
    by_file: dict[str, pd.DataFrame] = {}
    checked = 0
    for f in facts:
        t = by_file.get(f["file"])
        if t is None:
            t = by_file[f["file"]] = pcapan.analyze(SAMPLES / f["file"]).tls.sort_values("ts")
        same_port = [
            f2 for f2 in facts if f2["file"] == f["file"] and f2["server_port"] == f["server_port"]
        ]
        rows = t[t.resp_p == f["server_port"]]
        assert len(rows) == len(same_port), f["case"]
        r = rows.iloc[sorted(f2["tcp_stream"] for f2 in same_port).index(f["tcp_stream"])]
        key = f"{f['file']} {f['case']} stream {f['tcp_stream']}"

        def val(col: str, r: pd.Series = r) -> object:
            v = r[col]
            return None if v is pd.NA or (isinstance(v, float) and pd.isna(v)) else v

        assert val("server_name") == f["sni"], key
        assert val("version") == (
            f["version"].replace("TLSv1.", "TLSv1") if f["version"] else None
        ), key
        assert val("cipher") == f["cipher"], key
        assert (val("alpn_offered") or "") == ",".join(f["alpn_offered"]), key
        # In TLS 1.3 the selection travels encrypted: the table leaves it empty, never guesses.
        assert val("next_protocol") == f["alpn_selected"], key
        assert val("resumption") == (f["resumed"] or None), key
        assert bool(r.hello_retry_request) == f["hello_retry_request"], key
        assert bool(r.early_data_offered) == f["early_data_offered"], key
        assert val("early_data_accepted") == f["early_data_accepted"], key
        assert val("dh_prime_bits") == f["dh_prime_bits"], key
        a = f["alert"]
        if a is not None:
            assert val("alert") == f"{a['level']}:{a['description']}", key
            assert val("alert_from") == a["from"], key
            assert not r.established, key
        else:
            assert val("alert") in (None, "encrypted"), key  # close_notify after the handshake
            assert r.established, key
        checked += 1
    assert checked == 22


def test_handshake_round_trips_of_the_feature_samples() -> None:
    """handshake_rtts by construction of each case (samples/README.md): full TLS 1.2 = 2,
    resumed TLS 1.2 = 1, TLS 1.3 = 1 (full or PSK), HelloRetryRequest = 2, accepted 0-RTT = 0,
    and no value for a handshake that never completed."""
    want = {
        "tls12-ecdhe": [2],
        "tls12-dhe": [2],
        "tls12-rsa": [2],
        "tls13": [1],
        "hrr": [2],
        "resume-id": [2, 1],
        "resume-ticket": [2, 1],
        "resume-psk": [1, 1],
        "early-data": [1, 0, 1],
        "alpn-h2": [2],
        "alpn-http11": [2],
        "alpn-h2-tls13": [1],
        "alert-cipher": [None],
        "alert-version": [None],
        "alert-unknown-ca": [None],
        "big-hello": [1],
        "split-hello": [1],
    }
    seen: dict[str, list[object]] = {}
    for file in sorted({f["file"] for f in _facts()}):
        t = pcapan.analyze(SAMPLES / file).tls.sort_values("ts")
        for r in t.itertuples():
            case = r.server_name.split(".")[0]
            seen.setdefault(case, []).append(
                None if r.handshake_rtts is pd.NA else int(r.handshake_rtts)
            )
    assert seen == want


@needs_tshark
@pytest.mark.parametrize("path", tls_samples(), ids=lambda p: p.name)
def test_record_counts_match_tshark(path: Path) -> None:
    """Records per content type and direction, as tshark's record layer counts them
    (tls.record.content_type of every record, desegmented across TCP segments)."""
    tls = pcapan.analyze(path).tls
    ports = set(tls.resp_p.astype(int))
    cmd = [
        TSHARK or "tshark",
        "-r",
        str(path),
        "-n",
        "-o",
        "tls.desegment_ssl_records:TRUE",
        "-o",
        "tcp.reassemble_out_of_order:TRUE",
    ]
    for p in sorted(ports):
        cmd += ["-d", f"tcp.port=={p},tls"]
    cmd += [
        "-Y",
        "tls.record",
        "-T",
        "fields",
        "-E",
        "occurrence=a",
        "-E",
        "aggregator=,",
        "-e",
        "tcp.srcport",
        "-e",
        "tcp.dstport",
        "-e",
        "tls.record.content_type",
        "-e",
        "tls.record.opaque_type",
    ]  # TLS 1.3 encrypted records carry the outer type here
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    names = {
        20: "change_cipher_spec",
        21: "alert",
        22: "handshake",
        23: "application_data",
        24: "heartbeat",
    }
    want: dict[tuple[int, int], dict[str, int]] = {}
    for line in out.splitlines():
        sp, dp, types, opaque = line.split("\t")
        for t in (types + "," + opaque).split(","):
            if t:
                d = want.setdefault((int(sp), int(dp)), {})
                d[names[int(t)]] = d.get(names[int(t)], 0) + 1
    in_tunnel = set(tls.uid[tls.in_tunnel])
    for r in tls.itertuples():
        if r.uid in in_tunnel:
            continue  # tshark does not decode TLS inside the CONNECT tunnel without help
        for col, key in (
            ("orig_record_types", (r.orig_p, r.resp_p)),
            ("resp_record_types", (r.resp_p, r.orig_p)),
        ):
            got = dict(kv.split("=") for kv in getattr(r, col).split(","))
            assert {k: int(v) for k, v in got.items()} == want[key], (path.name, col, key)
