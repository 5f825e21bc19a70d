"""TLS parser: handshake bytes from real traffic, checked against tshark, JA3/JA4 ground truth
and Zeek's ssl.log baselines; every split point and one byte at a time; fuzzing.

Streams come from ``tshark -q -z follow,tcp,raw,N`` (tests/tls_streams.py), i.e. the bytes
each side sent, in the segments they were captured in. Tests skip without tshark or the corpus.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pcapan.proto.tls import (
    Alert,
    Certificate,
    ChangeCipherSpec,
    ClientHello,
    Finished,
    HandshakeDone,
    Resumed,
    ServerHello,
    ServerKeyExchange,
    TlsAnomaly,
    TlsConnection,
    ja4_fingerprint,
)
from tests.tls_streams import TSHARK, segments, stream_count, tshark_fields

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "samples" / "tls.pcap"
CORPUS = ROOT.parent / "shared" / "corpus"
ZEEK_TLS = CORPUS / "zeek" / "testing" / "btest" / "Traces" / "tls"

needs_tshark = pytest.mark.skipif(TSHARK is None, reason="tshark not installed")


def need(path: Path) -> Path:
    if TSHARK is None:
        pytest.skip("tshark not installed")
    if not path.exists():
        pytest.skip(f"{path} absent")
    return path


def run(segs, whole: bool = False) -> tuple[list, TlsConnection]:
    """Feed a stream's segments (or each direction's bytes in one piece per turn) to a parser."""
    c = TlsConnection()
    out: list = []
    for i, (is_orig, b) in enumerate(segs):
        out += c.data(is_orig, b, i)
    out += c.end(True, 10**6) + c.end(False, 10**6)
    return out, c


def by_type(events: list, cls: type) -> list:
    return [e for e in events if isinstance(e, cls)]


def merge_turns(segs) -> list[tuple[bool, bytes]]:
    """Consecutive segments of one side joined: several records in one data() call."""
    out: list[tuple[bool, bytes]] = []
    for o, b in segs:
        if out and out[-1][0] == o:
            out[-1] = (o, out[-1][1] + b)
        else:
            out.append((o, b))
    return out


def observable(events: list) -> list:
    # Events minus timestamps: what must not depend on how the bytes were cut.
    return [
        (
            type(e).__name__,
            getattr(e, "ja4", None),
            getattr(e, "ja3s", None),
            getattr(e, "chain_len", None),
            getattr(e, "description", None),
        )
        for e in events
        if not isinstance(e, TlsAnomaly) or e.kind != "tls_truncated"
    ]


# --- the repo's own sample ------------------------------------------------------------------
@needs_tshark
def test_sample_tls12_full_handshake() -> None:
    # samples/tls.pcap stream 0: openssl s_client -> s_server, TLS 1.2 ECDHE-RSA, SNI and ALPN
    # http/1.1 (samples/README.md). Expected values read with
    # tshark -Y 'tcp.stream==0' -T fields -e tls.handshake.extensions_server_name
    #   -e tls.handshake.ciphersuite -e tls.handshake.extensions_alpn_str -e tls.handshake.ja3_full
    # (compared programmatically in test_against_tshark below; here the event sequence).
    ev, c = run(segments(need(SAMPLE), 0))
    names = [type(e).__name__ for e in ev]
    assert names[:4] == ["ClientHello", "ServerHello", "Certificate", "ServerKeyExchange"]
    ch, sh = by_type(ev, ClientHello)[0], by_type(ev, ServerHello)[0]
    assert ch.server_name == "pcapan.test" and ch.alpn == ("http/1.1",)
    assert sh.version == 0x0303 and sh.cipher == 0xC030 and sh.alpn == "http/1.1"
    ske = by_type(ev, ServerKeyExchange)[0]
    assert ske.kx == "ECDHE" and ske.curve == 29  # x25519 (tshark: tls.handshake.server_curve_type)
    cert = by_type(ev, Certificate)[0]
    leaf = cert.leaf()
    assert leaf is not None and leaf.subject_cn == "pcapan.test" and leaf.self_signed
    assert leaf.key_type == "RSA" and leaf.key_bits == 2048 and leaf.san == ("pcapan.test",)
    assert len(by_type(ev, Finished)) == 2 and len(by_type(ev, HandshakeDone)) == 1
    assert len(by_type(ev, ChangeCipherSpec)) == 2
    assert c.records(True)[23] >= 1 and c.app_data_bytes(False) > 0
    assert not by_type(ev, TlsAnomaly)


@needs_tshark
def test_sample_every_split_point_and_bytewise() -> None:
    segs = segments(need(SAMPLE), 0)
    ref, _ = run(segs)
    turns = merge_turns(segs)
    assert observable(run(turns)[0]) == observable(ref)
    # Every split point of every turn (two data() calls for that turn, the rest whole).
    for k, (o, b) in enumerate(turns):
        for cut in range(1, len(b)):
            t = turns[:k] + [(o, b[:cut]), (o, b[cut:])] + turns[k + 1 :]
            assert observable(run(t)[0]) == observable(ref), (k, cut)
    bytewise = [(o, b[i : i + 1]) for o, b in turns for i in range(len(b))]
    assert observable(run(bytewise)[0]) == observable(ref)


@needs_tshark
def test_sample_resumption() -> None:
    # Streams 3 and 5 of samples/tls.pcap are s_client -reconnect style resumptions: the server
    # echoes the session id (tshark: tls.handshake.session_id equal in both hellos) and sends
    # ChangeCipherSpec right after its ServerHello. Stream 3 offered a ticket (extension 35).
    ev3, c3 = run(segments(need(SAMPLE), 3))
    assert c3.resumed == "ticket" and by_type(ev3, Resumed)
    ev5, c5 = run(segments(SAMPLE, 5))
    assert c5.resumed == "session_id"
    ev0, c0 = run(segments(SAMPLE, 0))
    assert c0.resumed is None


@needs_tshark
def test_sample_tls13() -> None:
    # Stream 1: TLS 1.3 (tshark: tls.handshake.extensions.supported_version == 0x0304 in the
    # ServerHello); after the ServerHello only records are counted.
    ev, c = run(segments(need(SAMPLE), 1))
    assert c.tls13 and c.version == 0x0304
    assert not by_type(ev, Certificate)  # encrypted in TLS 1.3
    assert len(by_type(ev, HandshakeDone)) == 1


# --- differential against tshark over captures ------------------------------------------------
CAPTURES = (
    [SAMPLE]
    + [
        ZEEK_TLS / n
        for n in (
            "hrr.pcap",
            "tls13_psk_succesfull.pcap",
            "chrome-1250-tls-x25519-kyber.pcap",
            "tls-fragmented-handshake.pcap.gz",
            "tls1.2.pcap",
            "tls1_1.pcap",
            "tls13-ech.pcap",
            "chrome-34-google.pcap",
            "tls-conn-with-extensions.pcap",
            "signed_certificate_timestamp_tls1_0.pcap",
            "tls13draft23-chrome67.0.3368.0-canary.pcap",
        )
    ]
    + [CORPUS / "ja3" / "testing" / "Traces" / n for n in ("ssl-curl.pcap", "ssl-chrome.pcap")]
)


def _ints(s: str) -> list[int]:
    return [int(x, 0) for x in s.split(",") if x]


@pytest.mark.parametrize("path", CAPTURES, ids=lambda p: p.name)
def test_against_tshark(path: Path) -> None:
    """Per stream, the first ClientHello and ServerHello agree with tshark's fields:
    SNI, offered suites, ALPN offered/selected, JA3/JA3S full strings, chosen suite, version."""
    need(path)
    ch_rows = tshark_fields(
        path,
        "tls.handshake.type==1",
        [
            "tcp.stream",
            "tls.handshake.extensions_server_name",
            "tls.handshake.ciphersuite",
            "tls.handshake.extensions_alpn_str",
            "tls.handshake.ja3_full",
        ],
    )
    sh_rows = tshark_fields(
        path,
        "tls.handshake.type==2",
        [
            "tcp.stream",
            "tls.handshake.ciphersuite",
            "tls.handshake.extensions_alpn_str",
            "tls.handshake.ja3s_full",
            "tls.handshake.extensions.supported_version",
            "tls.handshake.version",
        ],
    )
    first_ch: dict[int, list[str]] = {}
    for r in ch_rows:
        first_ch.setdefault(int(r[0].split(",")[0]), r)
    first_sh: dict[int, list[str]] = {}
    for r in sh_rows:
        first_sh.setdefault(int(r[0].split(",")[0]), r)
    checked = 0
    for s in range(stream_count(path)):
        if s not in first_ch:
            continue
        ev, c = run(segments(path, s))
        chs, shs = by_type(ev, ClientHello), by_type(ev, ServerHello)
        assert chs, (path.name, s)
        ch, exp = chs[0], first_ch[s]
        assert (ch.server_name or "") == exp[1].split(",")[0]
        # tshark lists GREASE values too; the parser keeps them out.
        assert list(ch.ciphers) == [x for x in _ints(exp[2]) if (x & 0x0F0F) != 0x0A0A]
        assert ",".join(ch.alpn) == exp[3]
        assert ch.ja3 == exp[4]
        if s in first_sh and shs:
            sh, e2 = shs[0], first_sh[s]
            assert sh.cipher == _ints(e2[1])[0]
            assert (sh.alpn or "") == e2[2]
            assert sh.ja3s == e2[3]
            assert sh.version == (_ints(e2[4])[0] if e2[4] else _ints(e2[5])[0])
        checked += 1
    assert checked


@pytest.mark.parametrize("path", CAPTURES[1:6], ids=lambda p: p.name)
def test_bytewise_equals_whole(path: Path) -> None:
    need(path)
    for s in range(min(stream_count(path), 3)):
        segs = segments(path, s)
        ref = observable(run(segs)[0])
        turns = merge_turns(segs)
        assert observable(run(turns)[0]) == ref
        assert (
            observable(run([(o, b[i : i + 1]) for o, b in turns for i in range(len(b))])[0]) == ref
        )


def test_hrr_and_pq_and_psk() -> None:
    # hrr.pcap: tshark shows "Hello Retry Request" in frame 6 and a second ClientHello in frame 8.
    ev, c = run(segments(need(ZEEK_TLS / "hrr.pcap"), 0))
    shs = by_type(ev, ServerHello)
    assert shs[0].hello_retry_request and c.hello_retry and len(by_type(ev, ClientHello)) == 2
    # chrome-1250: a 1756-byte ClientHello (tshark: tls.handshake.length) offering X25519Kyber768
    # (25497) spread over two TCP segments.
    ev, c = run(segments(need(ZEEK_TLS / "chrome-1250-tls-x25519-kyber.pcap"), 0))
    ch = by_type(ev, ClientHello)[0]
    assert ch.key_share_groups[0] == 25497 and ch.encrypted_client_hello and ch.grease
    # tls13_psk_succesfull.pcap: pre_shared_key in the ServerHello (tshark:
    # tls.handshake.extensions_pre_shared_key.selected_identity == 0); Zeek's ssl.log: resumed T.
    ev, c = run(segments(need(ZEEK_TLS / "tls13_psk_succesfull.pcap"), 0))
    assert c.resumed == "psk" and by_type(ev, ServerHello)[0].psk_selected == 0


def test_fragmented_certificate() -> None:
    # Zeek's fragment test: a 332 KiB Certificate message fragmented over many records.
    ev, _ = run(segments(need(ZEEK_TLS / "tls-fragmented-handshake.pcap.gz"), 0))
    cert = by_type(ev, Certificate)[0]
    assert cert.chain_len >= 1 and not [
        a for a in by_type(ev, TlsAnomaly) if a.kind != "tls_truncated"
    ]


# --- JA3 / JA4 ground truth -------------------------------------------------------------------
def _ja4_cases() -> list[tuple[Path, dict]]:
    out = []
    for gt in sorted((CORPUS / "ja4" / "pcap").glob("*.gt/python/test/testdata/*.json")):
        cap = CORPUS / "ja4" / "pcap" / gt.name[: -len(".json")]
        for entry in json.loads(gt.read_text()):
            if "JA4.1" in entry and not entry.get("quic"):
                out.append((cap, entry))
    return out


def test_ja4_ground_truth() -> None:
    """JA4 / JA4_r of every TCP ClientHello in the FoxIO captures equal the outputs of FoxIO's
    python ja4.py shipped with them (ja4/pcap/*.gt/python/test/testdata/*.json)."""
    cases = _ja4_cases()
    if not cases or TSHARK is None:
        pytest.skip("ja4 corpus or tshark absent")
    total = agree = 0
    for cap, entry in cases:
        if entry.get("JA4.1", "").startswith("q"):
            continue  # QUIC: not a TCP stream
        ev, _ = run(segments(cap, int(entry["stream"])))
        chs = by_type(ev, ClientHello)
        for i, ch in enumerate(chs[:2], start=1):
            if f"JA4.{i}" not in entry:
                continue
            total += 1
            agree += ch.ja4 == entry[f"JA4.{i}"] and ch.ja4_r == entry[f"JA4_r.{i}"]
    print(f"JA4 agreement: {agree}/{total}")
    assert total and agree == total


def test_ja3_zeek_baselines() -> None:
    """JA3 MD5 equals the ja3 column of the salesforce/ja3 Zeek ssl.log baselines."""
    base = CORPUS / "ja3" / "testing" / "Traces"
    for name in ("ssl-curl.pcap", "ssl-chrome.pcap"):
        cap = need(base / name)
        log = next((base / (name + ".gt")).rglob("ssl.log")).read_text().splitlines()
        fields = next(line for line in log if line.startswith("#fields")).split("\t")[1:]
        rows = [
            dict(zip(fields, line.split("\t"), strict=True))
            for line in log
            if not line.startswith("#")
        ]
        ours = set()
        for s in range(stream_count(cap)):
            for ch in by_type(run(segments(cap, s))[0], ClientHello):
                ours.add(ch.ja3_hash)
        for r in rows:
            assert r["ja3"] in ours, (name, r["ja3"])


def test_ja4_alpn_rules() -> None:
    # FoxIO spec examples: no ALPN -> "00"; non-alphanumeric ALPN -> first/last hex characters.
    assert ja4_fingerprint(0x0304, True, [0x1301], [0, 16], None, [])[0].startswith("t13d010200")
    assert ja4_fingerprint(0x0303, False, [], [], b"\xab\xcd", [])[0][8:10] == "ad"
    assert (
        ja4_fingerprint(0x0303, False, [], [], b"h2", [])[0]
        == "t12i0000h2_000000000000_000000000000"
    )


# --- synthetic edge cases ---------------------------------------------------------------------
def _record(ctype: int, body: bytes, ver: bytes = b"\x03\x03") -> bytes:
    return bytes([ctype]) + ver + len(body).to_bytes(2, "big") + body


def test_alert_and_malformed() -> None:
    c = TlsConnection()
    ev = c.data(False, _record(21, b"\x02\x28"), 5)
    assert ev == [Alert(5, False, 2, 40)]  # fatal handshake_failure
    ev = c.data(True, b"\x16\x03\x03\xff\xff", 6)  # 65535 > max record: framing lost
    assert [e.kind for e in ev if isinstance(e, TlsAnomaly)] == ["tls_bad_record"]
    assert c.data(True, b"more", 7) == []
    c = TlsConnection()
    ev = c.data(True, _record(22, b"\x01\x00\x00\x05junk!"), 1)  # ClientHello too short
    assert [e.kind for e in ev] == ["tls_bad_handshake"]
    ev = c.data(True, _record(22, b"\x63\x00\x00\x00"), 2)  # unknown handshake type 99
    assert [e.kind for e in ev] == ["tls_unknown_handshake_type"]
    assert [e.kind for e in c.gap(True, 100, 3)] == ["tls_gap"]


def test_sslv2_client_hello() -> None:
    # SSLv2-format CLIENT-HELLO (RFC 5246 E.2): version 3.1, two cipher specs (one TLS suite
    # 0x002f and one SSLv2-only 0x010080), 16-byte challenge.
    specs = b"\x00\x00\x2f\x01\x00\x80"
    msg = b"\x01\x03\x01" + len(specs).to_bytes(2, "big") + b"\x00\x00\x00\x10" + specs + b"C" * 16
    c = TlsConnection()
    ev = c.data(True, bytes([0x80 | (len(msg) >> 8), len(msg) & 0xFF]) + msg, 1)
    ch = ev[0]
    assert (
        isinstance(ch, ClientHello)
        and ch.sslv2
        and ch.ciphers == (0x2F,)
        and ch.legacy_version == 0x0301
    )


def _ext(code: int, data: bytes) -> bytes:
    return code.to_bytes(2, "big") + len(data).to_bytes(2, "big") + data


def _hello(mtype: int, body: bytes) -> bytes:
    return _record(22, bytes([mtype]) + len(body).to_bytes(3, "big") + body)


@pytest.mark.parametrize("version", [0xFB1A, 0xFB17])
def test_fizz_versions_are_tls13(version: int) -> None:
    """Facebook's Fizz negotiates 0xfb17 / 0xfb1a (fizz/record/Types.h tls_1_3_23_fb and
    tls_1_3_26_fb; nDPI's tls_2_reasms.pcapng, "TLSv1.3 (Fizz)"): TLS 1.3 on the wire. The
    legacy session id is echoed as in any TLS 1.3 handshake (RFC 8446 4.1.3); that is not a
    TLS 1.2 session-id resumption. The pre_shared_key the server selected is."""
    sid = b"S" * 32
    ident = b"\x00\x06ticket" + b"\x00\x00\x00\x00"  # identity, obfuscated_ticket_age
    binders = b"\x20" + b"B" * 32
    psk = len(ident).to_bytes(2, "big") + ident + len(binders).to_bytes(2, "big") + binders
    exts = _ext(43, b"\x04\x03\x04" + version.to_bytes(2, "big")) + _ext(41, psk)
    ch_body = (
        b"\x03\x03"
        + b"R" * 32
        + b"\x20"
        + sid
        + b"\x00\x02\x13\x01"
        + b"\x01\x00"
        + len(exts).to_bytes(2, "big")
        + exts
    )
    sh_exts = (
        _ext(43, version.to_bytes(2, "big"))
        + _ext(51, b"\x00\x1d\x00\x20" + b"K" * 32)
        + _ext(41, b"\x00\x00")
    )
    sh_body = (
        b"\x03\x03"
        + b"r" * 32
        + b"\x20"
        + sid
        + b"\x13\x01\x00"
        + len(sh_exts).to_bytes(2, "big")
        + sh_exts
    )
    c = TlsConnection()
    ev = c.data(True, _hello(1, ch_body), 1)
    ev += c.data(False, _hello(2, sh_body) + _record(23, b"E" * 40), 2)  # encrypted extensions...
    ev += c.data(True, _record(23, b"F" * 53), 3)  # the client's Finished
    assert c.tls13 and c.version == version
    assert by_type(ev, Resumed) == [Resumed(2, "psk")]
    assert by_type(ev, Finished) == [Finished(3, True, False)] and by_type(ev, HandshakeDone)
    assert not by_type(ev, TlsAnomaly)


def test_fingerprints_of_the_first_client_hello_after_hrr(tmp_path: Path) -> None:
    """After a HelloRetryRequest the client sends a second ClientHello (RFC 8446 4.1.2: new
    key_share, padding may go). The tls row's ja3/ja4/ja4_r fingerprint the client's first hello,
    as FoxIO's ja4 does (tls-handshake.pcapng, stream 38: JA4.1 t13d1516h2 in the Rust
    implementation's one-per-stream output; the retry, JA4.2, drops padding: t13d1515h2); the
    negotiated fields come from the second."""
    import pcapan
    from tests.tcpgen import Conv, write

    def client_hello(group: int, padding: bool) -> bytes:
        exts = (
            _ext(0, b"\x00\x09\x00\x00\x06a.test")
            + _ext(43, b"\x02\x03\x04")
            + _ext(13, b"\x00\x02\x04\x03")
            + _ext(51, b"\x00\x06" + group.to_bytes(2, "big") + b"\x00\x02KS")
            + (_ext(21, b"\x00" * 8) if padding else b"")
        )
        body = (
            b"\x03\x03"
            + b"R" * 32
            + b"\x00"
            + b"\x00\x04\x13\x01\x13\x02"
            + b"\x01\x00"
            + len(exts).to_bytes(2, "big")
            + exts
        )
        return _hello(1, body)

    def server_hello(rnd: bytes, group: int, share: bool) -> bytes:
        ks = group.to_bytes(2, "big") + (b"\x00\x02ks" if share else b"")
        exts = _ext(43, b"\x03\x04") + _ext(51, ks)
        body = b"\x03\x03" + rnd + b"\x00" + b"\x13\x01\x00" + len(exts).to_bytes(2, "big") + exts
        return _hello(2, body)

    first, second = client_hello(0x001D, True), client_hello(0x0017, False)
    c = Conv(sport=443)
    c.handshake()
    c.send(True, "PA", first)
    c.send(
        False,
        "PA",
        server_hello(
            bytes.fromhex("CF21AD74E59A6111BE1D8C021E65B891C2A211167ABB8C5E079E09E2C8A8339C"),
            0x0017,
            False,
        ),
    )
    c.send(True, "PA", second)
    c.send(False, "PA", server_hello(b"r" * 32, 0x0017, True) + _record(23, b"E" * 60))
    c.send(True, "PA", _record(23, b"F" * 53))
    c.close()
    row = pcapan.analyze(write(tmp_path / "hrr.pcap", [c])).tls.iloc[0]
    parsed = by_type(TlsConnection().data(True, first + second, 0), ClientHello)
    assert parsed[0].ja4 != parsed[1].ja4  # the retry differs (no padding)
    assert row["hello_retry_request"] and row["version"] == "TLSv13"
    assert (row["ja4"], row["ja4_r"], row["ja3"]) == (
        parsed[0].ja4,
        parsed[0].ja4_r,
        parsed[0].ja3_hash,
    )
    assert row["key_share_groups"] == "secp256r1"  # negotiated fields: the second hello


_CH_BYTES: bytes | None = None


def _client_hello_record() -> bytes:
    global _CH_BYTES
    if _CH_BYTES is None:
        if SAMPLE.exists() and TSHARK:
            _CH_BYTES = segments(SAMPLE, 0)[0][1]
        else:  # a minimal valid ClientHello when the sample cannot be read
            body = (
                b"\x03\x03" + b"R" * 32 + b"\x00" + b"\x00\x02\x13\x01" + b"\x01\x00" + b"\x00\x00"
            )
            _CH_BYTES = _record(22, b"\x01" + len(body).to_bytes(3, "big") + body, b"\x03\x01")
    return _CH_BYTES


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_fuzz_client_hello(data: st.DataObject) -> None:
    """Truncated or mutated ClientHello at random split points: events or TlsAnomaly, never an
    exception."""
    b = bytearray(_client_hello_record())
    for _ in range(data.draw(st.integers(0, 6))):
        i = data.draw(st.integers(0, len(b) - 1))
        b[i] = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(0, len(b)))
    b = bytes(b[:cut]) if data.draw(st.booleans()) else bytes(b)
    splits = sorted(set(data.draw(st.lists(st.integers(0, len(b)), max_size=5))))
    c = TlsConnection()
    prev = 0
    for s in splits + [len(b)]:
        for e in c.data(True, b[prev:s], s):
            assert type(e).__module__ == "pcapan.proto.tls"
        prev = s
    c.gap(True, 10, 99)
    c.end(True, 100)
    c.end(False, 100)


def test_zeek_ssl_log_baselines() -> None:
    """version / cipher / server_name / resumed / next_protocol per connection agree with the
    Zeek ssl.log baselines of the zeek TLS traces (rows matched to streams by the client port of
    the stream's SYN; connections without a SYN in the capture are not matched here)."""
    import subprocess

    from pcapan.proto.tls_registry import cipher_name, version_name
    from tests.tls_streams import _readable

    if TSHARK is None or not ZEEK_TLS.exists():
        pytest.skip("tshark or corpus absent")
    tot: dict[str, int] = {}
    ok: dict[str, int] = {}
    for cap in sorted(p for p in ZEEK_TLS.glob("*.pcap*") if not p.name.endswith(".gt")):
        logs = list(Path(str(cap) + ".gt").rglob("ssl.log"))
        if not logs:
            continue
        log = logs[0].read_text().splitlines()
        fields = next(line for line in log if line.startswith("#fields")).split("\t")[1:]
        rows = [
            dict(zip(fields, line.split("\t"), strict=True))
            for line in log
            if not line.startswith("#")
        ]
        syns = subprocess.run(
            [
                TSHARK,
                "-r",
                _readable(cap),
                "-Y",
                "tcp.flags.syn==1 && tcp.flags.ack==0",
                "-T",
                "fields",
                "-e",
                "tcp.stream",
                "-e",
                "tcp.srcport",
            ],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        port2stream: dict[str, int] = {}
        for line in syns.splitlines():
            a = line.split("\t")
            if a[0]:
                port2stream.setdefault(a[1], int(a[0]))
        for r in rows:
            s = port2stream.get(r["id.orig_p"])
            if s is None:
                continue
            _, c = run(segments(cap, s))
            ch = c.client_hello
            mine = {
                "version": version_name(c.version) if c.version else "-",
                "cipher": cipher_name(c.cipher) if c.cipher is not None else "-",
                "server_name": ch.server_name if ch is not None and ch.server_name else "-",
                "resumed": "T" if c.resumed else "F",
                "next_protocol": c.alpn_selected or "-",
            }
            for k, v in mine.items():
                tot[k] = tot.get(k, 0) + 1
                ok[k] = ok.get(k, 0) + (r.get(k) == v)
    print({k: f"{ok[k]}/{tot[k]}" for k in tot})
    assert tot and all(ok[k] >= 0.98 * tot[k] for k in tot)
