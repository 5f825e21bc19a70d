"""Decryption with a key log on the real captures of samples/tls-keys/ (issue 17), against tshark
given the same key log (``-o tls.keylog_file:...``): the http rows (method, uri, host, status,
body lengths, trans_depth) and the ALPN tshark reads from the (Encrypted)Extensions agree.

The expected values are tshark's, read at test time (the oracle), plus the facts the recording
script checked with tshark when it made the files (samples/README.md, "Keyed TLS captures"):
the requests each capture carries, all answered 200, and the served file sizes (index.html 178
bytes, small.txt 1000, medium.bin 20000: make_samples.py's docroot). Keys for only some
connections, a corrupted key and a capture with a hole check that rows stay right and anomalies
say why; a last test checks no secret reaches any output.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pandas as pd
import pytest

import pcapan

D = Path(__file__).resolve().parent.parent / "samples" / "tls-keys"
PORTS = (19443, 19444, 19445, 19446, 19447, 19448, 19449)
SIZES = {"/index.html": 178, "/small.txt": 1000, "/medium.bin": 20000}
# capture -> (URIs in order, every answer 200): samples/README.md, checked by make_tls_keys.py
KEYED = {
    "tls12-gcm": ["/index.html", "/small.txt", "/medium.bin"],
    "tls12-chacha": ["/index.html", "/small.txt"],
    "tls12-cbc": ["/index.html", "/small.txt", "/medium.bin", "/small.txt"],
    "tls12-ccm": ["/index.html", "/small.txt", "/medium.bin"],
    "tls13-aes128": ["/index.html", "/medium.bin", "/small.txt"],
    "tls13-aes256": ["/index.html", "/medium.bin", "/small.txt"],
    "tls13-chacha": ["/index.html", "/medium.bin", "/small.txt"],
    "tls13-ccm": ["/index.html", "/medium.bin", "/small.txt"],
    "tls-resume": ["/index.html", "/small.txt", "/index.html", "/small.txt"],
    "tls13-0rtt": ["/index.html", "/small.txt"],
    "tls13-keyupdate": ["/index.html", "/small.txt"],
    "tls13-hrr": ["/index.html"],
    "tls13-certreq": ["/index.html", "/small.txt"],
    # TLS 1.0 (MD5/SHA-1 PRF, CBC IV chained from the previous record) and TLS 1.1 (explicit IV)
    "tls10-cbc": ["/medium.bin", "/small.txt"],
    "tls11-cbc": ["/medium.bin", "/small.txt"],
}

needs_tshark = pytest.mark.skipif(shutil.which("tshark") is None, reason="tshark not installed")


def tshark(pcap: Path, keys: Path | None, filt: str, fields: list[str]) -> list[list[str]]:
    cmd = ["tshark", "-r", str(pcap), "-o", "tcp.reassemble_out_of_order:TRUE"]
    if keys is not None:
        cmd += ["-o", f"tls.keylog_file:{keys}"]
    for p in PORTS:
        cmd += ["-d", f"tcp.port=={p},tls"]
    cmd += ["-Y", filt, "-T", "fields", "-E", "occurrence=f"]
    for f in fields:
        cmd += ["-e", f]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=True).stdout
    return [line.split("\t") for line in out.splitlines()]


def tshark_http(pcap: Path, keys: Path | None) -> dict[tuple[int, int], dict]:
    """(client port, request number) -> method, uri, host, status, response length; from
    tshark's http.request_number / http.response_number (per TCP stream, from 1)."""
    rows: dict[tuple[int, int], dict] = {}
    fields = ["tcp.srcport", "tcp.dstport", "http.request.method", "http.request.uri"]
    fields += ["http.host", "http.request_number", "http.response.code", "http.response_number"]
    fields += ["http.content_length"]
    for sport, dport, method, uri, host, rq, code, rs, clen in tshark(pcap, keys, "http", fields):
        if method:
            rows.setdefault((int(sport), int(rq)), {}).update(method=method, uri=uri, host=host)
        if code:
            r = rows.setdefault((int(dport), int(rs)), {})
            r.update(status=int(code), length=int(clen) if clen else None)
    return rows


def pcapan_http(res: pcapan.Result) -> dict[tuple[int, int], dict]:
    out: dict[tuple[int, int], dict] = {}
    for r in res.http.itertuples():
        d: dict = {"method": r.method, "uri": r.uri, "host": r.host}
        if not pd.isna(r.status_code):
            d["status"] = int(r.status_code)
            d["length"] = int(r.response_body_len)
        out[(int(r.orig_p), int(r.trans_depth))] = d
    return out


@needs_tshark
@pytest.mark.parametrize("name", sorted(KEYED))
def test_http_rows_agree_with_tshark(name: str) -> None:
    pcap, keys = D / f"{name}.pcap", D / f"{name}.keys"
    res = pcapan.analyze(pcap, keylog=keys)
    ours = pcapan_http(res)
    theirs = tshark_http(pcap, keys)
    assert ours == theirs
    # and what the recording script checked: the requests in order, all 200, the file sizes
    http = res.http.sort_values("ts")
    assert list(http.uri) == KEYED[name]
    assert list(http.status_code) == [200] * len(KEYED[name])
    assert list(http.response_body_len) == [SIZES[u] for u in KEYED[name]]
    assert list(http.request_body_len) == [0] * len(KEYED[name])
    assert http.tls.all()
    tls = res.tls
    assert tls.decrypted.all() and tls.decrypt_error.isna().all()
    assert not len(res.anomalies), res.anomalies[["name", "addl"]]
    # without the key log: no HTTP at all, and no decryption columns set
    plain = pcapan.analyze(pcap)
    assert len(plain.http) == 0 and not plain.tls.decrypted.any()
    assert plain.tls.decrypt_error.isna().all()


@needs_tshark
@pytest.mark.parametrize("name", [*sorted(KEYED), "tls13-h2"])
def test_alpn_agrees_with_tshark(name: str) -> None:
    """next_protocol is the ALPN the server selected: in TLS 1.3 tshark reads it from the
    decrypted EncryptedExtensions (handshake type 8), in TLS 1.2 from the ServerHello (2)."""
    pcap, keys = D / f"{name}.pcap", D / f"{name}.keys"
    rows = tshark(
        pcap,
        keys,
        "tls.handshake.type == 8 || tls.handshake.type == 2",
        ["tcp.dstport", "tls.handshake.extensions_alpn_str"],
    )
    theirs: dict[int, str | None] = {}
    for port, alpn in rows:
        theirs[int(port)] = alpn or theirs.get(int(port))
    res = pcapan.analyze(pcap, keylog=keys)
    ours = {
        int(r.orig_p): (None if pd.isna(r.next_protocol) else r.next_protocol)
        for r in res.tls.itertuples()
    }
    assert ours == theirs
    # without keys, TLS 1.3's stays empty (never guessed)
    plain = pcapan.analyze(pcap)
    for r in plain.tls.itertuples():
        if r.version == "TLSv13":
            assert pd.isna(r.next_protocol)


@needs_tshark
def test_h2_by_alpn_counts_frames_never_http1() -> None:
    """tls13-h2.pcap: curl --http2, two GETs. tshark (keys) lists the HTTP/2 frame types per
    packet; their count and the stream ids are what pcapan's frame walker must count."""
    pcap, keys = D / "tls13-h2.pcap", D / "tls13-h2.keys"
    rows = tshark(pcap, keys, "http2", ["http2.type", "http2.streamid"])
    # occurrence=f gives the first only: ask again for all of them
    cmd = ["tshark", "-r", str(pcap), "-o", f"tls.keylog_file:{keys}", "-d", "tcp.port==19445,tls"]
    cmd += ["-Y", "http2", "-T", "fields", "-e", "http2.type", "-e", "http2.streamid"]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=60, check=True).stdout
    types = [t for line in out.splitlines() for t in line.split("\t")[0].split(",") if t]
    streams = {s for line in out.splitlines() for s in line.split("\t")[1].split(",") if s}
    assert rows and len(types) == 12  # (counted by hand from the tshark listing: 5 + 7)
    res = pcapan.analyze(pcap, keylog=keys)
    assert len(res.http) == 0  # h2 never reaches the HTTP/1 parser
    t = res.tls.iloc[0]
    assert t.next_protocol == "h2"
    assert t.h2_frames == len(types)
    assert t.h2_streams == len(streams - {"0"}) == 2
    assert res.connections.service.tolist() == ["tls,http2"]


def test_tls13_handshake_made_visible() -> None:
    """The server certificate (CN pcapan.test, the self-signed RSA 2048 certificate of
    make_samples.make_cert), tickets (nginx/OpenSSL: lifetime 300 s = ssl_session_timeout's
    default 5 min; max_early_data 16384 with ssl_early_data on, OpenSSL's default), the key
    update of tls13-keyupdate (s_client 'K': the client's KeyUpdate and the server's answer),
    0-RTT accepted in tls13-0rtt's second connection."""
    res = pcapan.analyze(D / "tls13-aes128.pcap", keylog=D / "tls13-aes128.keys")
    t = res.tls.iloc[0]
    assert t.version == "TLSv13" and t.cert_subject_cn == "pcapan.test"
    assert t.cert_key_type == "RSA" and t.cert_key_bits == 2048 and t.cert_self_signed
    assert t.cert_chain_len == 1 and not t.cert_requested and not t.client_cert
    assert t.ticket_issued and t.ticket_lifetime_s == 300 and t.ticket_max_early_data == 16384
    assert t.alert == "warning:close_notify"
    plain = pcapan.analyze(D / "tls13-aes128.pcap").tls.iloc[0]
    assert pd.isna(plain.cert_subject_cn) and pd.isna(plain.ticket_issued)
    ku = pcapan.analyze(D / "tls13-keyupdate.pcap", keylog=D / "tls13-keyupdate.keys").tls
    assert ku.key_updates.tolist() == [2]
    early = pcapan.analyze(D / "tls13-0rtt.pcap", keylog=D / "tls13-0rtt.keys")
    e = early.tls.sort_values("ts").iloc[1]
    assert e.resumption == "psk" and e.early_data_accepted
    # the 0-RTT request is the second connection's only one, decrypted from early data
    assert early.http.sort_values("ts").uri.tolist() == ["/index.html", "/small.txt"]


@needs_tshark
def test_tls13_certificate_request_and_client_certificate() -> None:
    """tls13-certreq.pcap: nginx asks for a client certificate (encrypted CertificateRequest);
    curl sends an empty Certificate, s_client one certificate. tshark with the keys: handshake
    type 13 from the server on both connections, the clients' Certificate with
    certificates_length 0 and 814."""
    pcap, keys = D / "tls13-certreq.pcap", D / "tls13-certreq.keys"
    rows = tshark(
        pcap,
        keys,
        "tls.handshake.type == 11 && tcp.dstport == 19447",
        ["tcp.srcport", "tls.handshake.certificates_length"],
    )
    sent = {int(p): int(n) > 0 for p, n in rows}
    res = pcapan.analyze(pcap, keylog=keys)
    t = res.tls.set_index("orig_p")
    assert t.cert_requested.tolist() == [True, True]
    assert t.client_cert.to_dict() == sent and sorted(sent.values()) == [False, True]
    plain = pcapan.analyze(pcap).tls
    assert not plain.cert_requested.any()  # encrypted in TLS 1.3: not seen without keys


def test_pcapng_decryption_secrets_used_automatically() -> None:
    dsb = pcapan.analyze(D / "tls13-dsb.pcapng")
    keyed = pcapan.analyze(D / "tls13-aes128.pcap", keylog=D / "tls13-aes128.keys")
    cols = ["method", "uri", "host", "status_code", "response_body_len", "trans_depth", "tls"]
    pd.testing.assert_frame_equal(
        dsb.http[cols].reset_index(drop=True), keyed.http[cols].reset_index(drop=True)
    )
    assert dsb.tls.decrypted.tolist() == [True]


def _keylog_without(src: Path, tmp: Path, client_random: str) -> Path:
    out = tmp / f"part-{src.name}"
    out.write_text(
        "".join(ln for ln in src.read_text().splitlines(True) if client_random not in ln)
    )
    return out


def _client_randoms(pcap: Path) -> dict[int, str]:
    res = pcapan.analyze(pcap)
    ports = res.tls.sort_values("ts").orig_p.tolist()
    # the ClientHello randoms by client port, from tshark (32 bytes, hex with colons)
    rows = tshark(pcap, None, "tls.handshake.type == 1", ["tcp.srcport", "tls.handshake.random"])
    by_port = {int(p): r.replace(":", "") for p, r in rows}
    assert sorted(by_port) == sorted(ports)
    return by_port


@needs_tshark
def test_keys_for_only_some_connections(tmp_path: Path) -> None:
    """tls12-gcm.pcap has two connections; the key log loses the second one's CLIENT_RANDOM.
    The first is decrypted as before (same rows as tshark with the same partial log), the
    second has no http rows, decrypt_error no_key and one tls_decrypt_no_key anomaly."""
    pcap = D / "tls12-gcm.pcap"
    randoms = _client_randoms(pcap)
    first, second = sorted(randoms)
    keys = _keylog_without(D / "tls12-gcm.keys", tmp_path, randoms[second])
    res = pcapan.analyze(pcap, keylog=keys)
    assert pcapan_http(res) == tshark_http(pcap, keys)
    assert sorted(res.http.orig_p.unique().tolist()) == [first]
    tls = res.tls.set_index("orig_p")
    assert tls.loc[first].decrypted and pd.isna(tls.loc[first].decrypt_error)
    assert not tls.loc[second].decrypted and tls.loc[second].decrypt_error == "no_key"
    an = res.anomalies
    assert an.name.tolist() == ["tls_decrypt_no_key"]
    uid2 = tls.loc[second].uid
    assert an.uid.tolist() == [uid2]


@needs_tshark
@pytest.mark.parametrize(
    ("name", "label", "expect_requests"),
    [
        # TLS 1.3: only the server's application secret is wrong: the requests are decrypted,
        # the responses are not (the server direction stops at its first application record)
        ("tls13-aes128", "SERVER_TRAFFIC_SECRET_0", True),
        # TLS 1.2: the master secret is wrong: the first encrypted record (Finished) fails both ways
        ("tls12-chacha", "CLIENT_RANDOM", False),
    ],
)
def test_corrupted_key(tmp_path: Path, name: str, label: str, expect_requests: bool) -> None:
    pcap = D / f"{name}.pcap"
    lines = (D / f"{name}.keys").read_text().splitlines(True)
    out = []
    for ln in lines:
        if ln.startswith(label + " "):
            head, secret = ln.rsplit(" ", 1)
            flipped = ("0" if secret[0] != "0" else "1") + secret[1:]
            ln = f"{head} {flipped}"
        out.append(ln)
    keys = tmp_path / "corrupt.keys"
    keys.write_text("".join(out))
    res = pcapan.analyze(pcap, keylog=keys)
    theirs = tshark_http(pcap, keys)
    assert pcapan_http(res) == theirs  # tshark cannot decrypt the same records either
    if expect_requests:
        assert res.http.uri.tolist() == KEYED[name] and res.http.status_code.isna().all()
    else:
        assert len(res.http) == 0
    t = res.tls.iloc[0]
    assert t.decrypt_error == "bad_key"
    kinds = res.anomalies.name.tolist()
    # one anomaly per direction that stopped, never one per record
    assert set(kinds) == {"tls_decrypt_failed"}
    assert len(kinds) == (1 if expect_requests else 2)
    assert all("tag mismatch" in a for a in res.anomalies.addl)


@needs_tshark
def test_capture_with_a_hole() -> None:
    """tls13-loss.pcap: one full-size server segment deleted inside the /medium.bin response
    (its frame number in tls13-loss.deleted). The record it cut cannot be decrypted, nor any
    after it (the TLS 1.3 nonce counts records): /index.html answered, /medium.bin and
    /small.txt requested but unanswered, the row of /medium.bin flagged gap; tshark agrees
    on what it can decrypt."""
    pcap, keys = D / "tls13-loss.pcap", D / "tls13-loss.keys"
    res = pcapan.analyze(pcap, keylog=keys)
    http = res.http.sort_values("trans_depth")
    assert http.uri.tolist() == ["/index.html", "/medium.bin", "/small.txt"]
    assert http.status_code.tolist()[0] == 200 and http.status_code.iloc[1:].isna().all()
    assert "gap" in (http["http_flags"].iloc[1] or "")
    theirs = tshark_http(pcap, keys)
    assert {k: v.get("status") for k, v in theirs.items()} == {
        k: v.get("status") for k, v in pcapan_http(res).items()
    }
    t = res.tls.iloc[0]
    assert t.decrypt_error == "gap" and t.decrypted
    assert "tls_decrypt_gap" in res.anomalies.name.tolist()


def test_no_secret_in_any_output(tmp_path: Path) -> None:
    """Every secret of the key logs (hex, either case) is absent from the tables, every export
    format, the warnings, anomalies and the CLI's output."""
    import sys

    secrets: set[str] = set()
    for k in D.glob("*.keys"):
        for ln in k.read_text().splitlines():
            parts = ln.split()
            if len(parts) == 3 and not ln.startswith("#"):
                secrets.add(parts[2].lower())
    assert len(secrets) > 20
    texts: list[str] = []
    for name in ("tls13-aes128", "tls12-cbc", "tls13-0rtt"):
        res = pcapan.analyze(D / f"{name}.pcap", keylog=D / f"{name}.keys")
        for table in res.tables().values():
            texts.append(table.to_csv())
        texts.append(repr(res.summary()))
        texts += res.warnings
        for fmt in ("csv", "jsonl", "zeek"):
            out = tmp_path / f"{name}-{fmt}"
            res.export(out, fmt)
            texts += [p.read_text(errors="replace") for p in out.rglob("*") if p.is_file()]
    cli = subprocess.run(
        [sys.executable, "-m", "pcapan.cli", "http", str(D / "tls12-cbc.pcap")]
        + ["--keylog", str(D / "tls12-cbc.keys"), "--format", "csv"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert cli.returncode == 0 and "/medium.bin" in cli.stdout
    texts += [cli.stdout, cli.stderr]
    blob = "\n".join(texts).lower()
    leaked = [s[:8] for s in secrets if s in blob or s[:32] in blob]
    assert not leaked


def test_cli_keylog_unreadable_is_one_line(tmp_path: Path) -> None:
    import sys

    r = subprocess.run(
        [sys.executable, "-m", "pcapan.cli", "tls", str(D / "tls12-gcm.pcap")]
        + ["--keylog", str(tmp_path / "missing.keys")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode != 0
    assert r.stderr.count("\n") == 1 and "cannot read key log" in r.stderr
    assert "Traceback" not in r.stderr


@pytest.mark.parametrize("name", [*sorted(KEYED), "tls13-h2", "tls13-loss"])
def test_folded_runs_and_packet_by_packet_agree(name: str) -> None:
    """After the handshake a keyed connection's runs are skimmed and decrypted in one call
    (``_Keyed.skim``); one segment at a time (the engine's fold_bulk off) must give the same
    http and tls tables, timestamps included."""
    tables = []
    for fold in (True, False):
        an = pcapan.Analyzer(keylog=D / f"{name}.keys")
        an.engine.fold_bulk = fold
        an.feed_source(D / f"{name}.pcap")
        res = an.finish()
        tables.append((res.http, res.tls, res.anomalies))
    for a, b in zip(tables[0], tables[1], strict=True):
        pd.testing.assert_frame_equal(a, b)


def test_growing_key_log_secrets_after_the_client_hello(tmp_path: Path) -> None:
    """pcapan live --keylog: a client logs its secrets once it has the ServerHello, so at the
    ClientHello they may not be in the file yet. The connection's records are held, the file is
    read again, and the connection is decrypted as with the whole file from the start."""
    from pcapan.proto.tls_keylog import KeyLogFile

    name = "tls13-aes128"
    keys = tmp_path / "growing.keys"
    keys.write_text("# SSL/TLS secrets log file\n")
    an = pcapan.Analyzer()
    an.use_keylog(keys, follow=True)
    ctx = an.engine.tls_ctx
    kf = KeyLogFile(keys, ctx.keylog)
    calls = []

    def refresh(after_ns: int | None = None) -> None:  # the client writes its lines when the
        # ServerHello is in (after_ns: see Analyzer.use_keylog; this reads at every call)
        calls.append(1)
        if ctx.keylog is not None and len(calls) == 2:
            keys.write_text(keys.read_text() + (D / f"{name}.keys").read_text())
        kf.poll()

    ctx.keylog_refresh = refresh
    an.feed_source(D / f"{name}.pcap")
    res = an.finish()
    whole = pcapan.analyze(D / f"{name}.pcap", keylog=D / f"{name}.keys")
    assert len(calls) >= 2
    cols = ["uri", "status_code", "response_body_len", "ts_request_start", "ts_response_end"]
    pd.testing.assert_frame_equal(res.http[cols], whole.http[cols])
    assert res.tls.decrypted.tolist() == [True] and not len(res.anomalies)
    # and a key that never comes: said once the handshake is over, nothing decrypted
    an = pcapan.Analyzer()
    empty = tmp_path / "empty.keys"
    empty.write_text("")
    an.use_keylog(empty, follow=True)
    an.feed_source(D / f"{name}.pcap")
    res = an.finish()
    assert res.tls.decrypt_error.tolist() == ["no_key"] and len(res.http) == 0
    assert res.anomalies.name.tolist() == ["tls_decrypt_no_key"]


def _ns(text: str) -> int:
    s, _, frac = text.partition(".")
    return int(s) * 1_000_000_000 + int((frac + "000000000")[:9])


@needs_tshark
@pytest.mark.parametrize("name", sorted(set(KEYED) - {"tls13-0rtt", "tls13-keyupdate"}))
def test_response_times_are_those_of_the_segments(name: str) -> None:
    """As on cleartext: a response starts with the first server segment after its request (a
    record spanning segments gives its first byte the time of its first segment) and ends with
    the segment that completed it (the one where tshark reassembles the response). Expected
    times from tshark's frame list (given the keys, so that it can tell a session ticket's
    segment from a response's). (0-RTT answers after the handshake, and in tls13-keyupdate
    the server's KeyUpdate record comes before its response: left out.)"""
    pcap, keys = D / f"{name}.pcap", D / f"{name}.keys"
    rows = tshark(
        pcap,
        keys,
        "tcp.len > 0",
        ["frame.time_epoch", "tcp.srcport", "tcp.dstport", "http.response.code"]
        + ["tls.handshake.type"],
    )
    # (frames that carry only a decrypted handshake message, TLS 1.3 session tickets sent
    # after the client's first request, are no part of a response)
    frames = [(_ns(t), int(sp), int(dp), code) for t, sp, dp, code, hs in rows if not hs]
    res = pcapan.analyze(pcap, keylog=keys)
    for r in res.http.itertuples():
        end_rq = r.ts_request_end.value
        server = [(t, code) for t, sp, dp, code in frames if dp == r.orig_p and t > end_rq]
        assert r.ts_response_start.value == server[0][0]
        assert r.ts_response_end.value == next(t for t, code in server if code)


# Columns that decryption fills or changes; every other column of the tls and connections
# tables is the same with and without the key log.
_DECRYPT_COLUMNS = {
    "next_protocol", "ticket_issued", "alert", "alert_from", "cert_requested", "client_cert",
    "decrypted", "decrypt_error", "decrypted_records", "ticket_lifetime_s",
    "ticket_max_early_data", "key_updates", "h2_frames", "h2_streams", "service",
    # the connections' web metrics, computed from the http table: they now cover the HTTPS
    "requests", "max_pipeline_depth", "budget_total_s", "budget_ttfb_s", "budget_think_s",
    "close_cause", "close_after_last_response_s", "idle_gap_max_s", "idle_gap_mean_s",
}  # fmt: skip


@pytest.mark.parametrize("name", [*sorted(KEYED), "tls13-h2", "tls13-loss"])
def test_everything_else_unchanged_by_the_key_log(name: str) -> None:
    """The cleartext analysis (flights, round trips, record counts, resumption, the
    HelloRetryRequest of tls13-hrr, connection states) is the same with the keys: decryption
    only adds. TLS 1.2's certificate was visible already, so only TLS 1.3 rows may gain one."""
    keyed = pcapan.analyze(D / f"{name}.pcap", keylog=D / f"{name}.keys")
    plain = pcapan.analyze(D / f"{name}.pcap")
    for table in ("tls", "connections"):
        a, b = getattr(keyed, table), getattr(plain, table)
        cols = [c for c in b.columns if c not in _DECRYPT_COLUMNS and not c.startswith("cert_")]
        pd.testing.assert_frame_equal(a[cols], b[cols])
    tls12 = keyed.tls.version == "TLSv12"
    certs = [c for c in plain.tls.columns if c.startswith("cert_")]
    pd.testing.assert_frame_equal(keyed.tls.loc[tls12, certs], plain.tls.loc[tls12, certs])
    # the requests column counts the decrypted transactions (0 without keys)
    counts = keyed.http.groupby("uid").size()
    conn = keyed.connections.set_index("uid")
    assert conn.requests.to_dict() == {u: counts.get(u, 0) for u in conn.index}
    assert (conn.service == "tls,http").all() or name == "tls13-h2"
    if name == "tls13-hrr":
        assert keyed.tls.hello_retry_request.tolist() == [True]
        assert keyed.tls.handshake_rtts.tolist() == [2]


from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    name=st.sampled_from(["tls12-cbc", "tls12-gcm", "tls13-aes128", "tls13-0rtt"]),
    flips=st.lists(st.tuples(st.floats(0.02, 1.0), st.integers(1, 255)), min_size=1, max_size=6),
)
def test_corrupt_captures_with_keys_never_crash(tmp_path_factory, name: str, flips) -> None:
    """Bytes flipped anywhere past the pcap header of a keyed capture: the analysis finishes;
    any decrypted HTTP row names one of the capture's real URIs (an AEAD tag or MAC guards each
    record: corruption stops a direction, it does not make up requests)."""
    data = bytearray((D / f"{name}.pcap").read_bytes())
    for where, x in flips:
        i = 24 + int(where * (len(data) - 25))
        data[i] ^= x
    path = tmp_path_factory.mktemp("fuzz") / f"{name}.pcap"
    path.write_bytes(bytes(data))
    res = pcapan.analyze(path, keylog=D / f"{name}.keys")
    assert set(res.http.uri.dropna()) <= set(KEYED[name])


@needs_tshark
@pytest.mark.parametrize(("name", "version"), [("tls10-cbc", "TLSv10"), ("tls11-cbc", "TLSv11")])
def test_tls10_tls11_cbc_every_record_decrypted_as_tshark(name: str, version: str) -> None:
    """TLS 1.0 / 1.1 CBC (s_server + s_client, samples/README.md): the version, suite and
    encrypt-then-MAC of each connection are tshark's (ServerHello), and pcapan decrypts every
    protected record tshark decrypts: the Finished (handshake type 20, readable only once
    decrypted), the application data and the close_notify alerts. In TLS 1.0 OpenSSL sends an
    empty record before each write (32 bytes with MAC-then-encrypt: a 20-byte MAC padded to two
    blocks; 36 with encrypt-then-MAC: one block and the MAC): the next record's IV is the last
    block of such records too, so one wrong link in the chain fails a MAC and stops the
    direction (an anomaly, decrypted_records short)."""
    pcap, keys = D / f"{name}.pcap", D / f"{name}.keys"
    hello = tshark(
        pcap,
        keys,
        "tls.handshake.type == 2",
        ["tcp.dstport", "tls.handshake.version", "tls.handshake.ciphersuite"],
    )
    ext = tshark(pcap, keys, "tls.handshake.type == 2 && tls.handshake.extension.type == 22",
                 ["tcp.dstport"])  # fmt: skip
    etm = {int(p) for (p,) in ext}
    res = pcapan.analyze(pcap, keylog=keys)
    tls = res.tls.set_index("orig_p")
    want_version = {"TLSv10": "0x0301", "TLSv11": "0x0302"}[version]
    assert len(hello) == len(tls) == 2 and len(etm) == 1  # one connection each way (the script)
    for port, v, suite in hello:
        row = tls.loc[int(port)]
        assert v == want_version and row.version == version
        assert row.cipher_code == int(suite, 16)
        assert ("encrypt_then_mac" in row.server_extensions.split(",")) == (int(port) in etm)
    # every protected record tshark decrypted, per connection: Finished, data, alerts
    cmd = ["tshark", "-r", str(pcap), "-o", f"tls.keylog_file:{keys}", "-d", "tcp.port==19449,tls"]
    cmd += ["-Y", "tls", "-T", "fields", "-E", "occurrence=a", "-E", "aggregator=|"]
    cmd += ["-e", "tcp.srcport", "-e", "tcp.dstport", "-e", "tls.record.content_type"]
    cmd += ["-e", "tls.record.length", "-e", "tls.handshake.type"]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=60, check=True).stdout
    count: dict[int, int] = {}
    empty_records = 0
    for line in out.splitlines():
        sport, dport, ctypes, lengths, htypes = line.split("\t")
        client = int(sport) if int(dport) == 19449 else int(dport)
        n = sum(t in ("21", "23") for t in ctypes.split("|") if t)
        n += sum(t == "20" for t in htypes.split("|") if t)
        count[client] = count.get(client, 0) + n
        for t, ln in zip(ctypes.split("|"), lengths.split("|"), strict=False):
            empty_records += t == "23" and ln in ("32", "36")
    assert tls.decrypted_records.to_dict() == count
    assert not len(res.anomalies)
    if version == "TLSv10":
        assert empty_records >= 4  # (each side's first write on each connection, at least)


@needs_tshark
def test_rejected_0rtt_is_no_request_and_the_rest_decrypts() -> None:
    """tls13-0rtt-rejected.pcap (samples/README.md): the resumed connection sent GET /medium.bin
    as early data, which s_server rejected (s_client said "Early data was rejected"; s_server's
    log at recording time: it served index.html and small.txt only), then GET /small.txt after
    the handshake. The rejected early data is dropped (README, *Decryption with a key log*: the
    server never read it), so it makes no http row; the rest of the connection decrypts.

    tshark, given the same key log (it has the CLIENT_EARLY_TRAFFIC_SECRET), decrypts the early
    data too and lists its request. A client sends nothing but early data before the
    ServerHello, so tshark's requests in frames before their connection's ServerHello are the
    early data: exactly that one request; without them tshark's requests and the responses
    (by client port, in order) are pcapan's rows."""
    pcap, keys = D / "tls13-0rtt-rejected.pcap", D / "tls13-0rtt-rejected.keys"
    sh = tshark(pcap, keys, "tls.handshake.type == 2", ["tcp.dstport", "frame.number"])
    server_hello = {int(p): int(f) for p, f in sh}
    fields = ["frame.number", "tcp.srcport", "tcp.dstport", "http.request.method"]
    fields += ["http.request.uri", "http.host", "http.response.code", "http.content_length"]
    early: list[tuple[int, str]] = []
    requests: dict[int, list[tuple[str, str, str]]] = {}
    responses: dict[int, list[tuple[int, int]]] = {}
    for frame, sport, dport, method, uri, host, code, clen in tshark(pcap, keys, "http", fields):
        if method:
            if int(frame) < server_hello[int(sport)]:
                early.append((int(sport), uri))
            else:
                requests.setdefault(int(sport), []).append((method, uri, host))
        if code:
            responses.setdefault(int(dport), []).append((int(code), int(clen)))
    first, second = sorted(server_hello)  # (client ports grow: the resumption is the second)
    assert early == [(second, "/medium.bin")]

    res = pcapan.analyze(pcap, keylog=keys)
    ours_req: dict[int, list[tuple[str, str, str]]] = {}
    ours_resp: dict[int, list[tuple[int, int]]] = {}
    for r in res.http.sort_values("ts").itertuples():
        ours_req.setdefault(int(r.orig_p), []).append((r.method, r.uri, r.host))
        ours_resp.setdefault(int(r.orig_p), []).append(
            (int(r.status_code), int(r.response_body_len))
        )
    assert ours_req == requests
    assert ours_resp == responses
    assert requests[second] == [("GET", "/small.txt", "pcapan.test")]
    assert responses[second] == [(200, SIZES["/small.txt"])]
    assert res.http.tls.all() and res.http.trans_depth.tolist() == [1, 1]
    tls = res.tls.set_index("orig_p")
    assert tls.decrypted.all() and tls.decrypt_error.isna().all()
    t = tls.loc[second]
    assert t.resumption == "psk" and t.early_data_offered and not pd.isna(t.early_data_accepted)
    assert not t.early_data_accepted
    assert t.handshake_rtts == 1  # early data rejected: the request waited for the handshake
    assert not len(res.anomalies)
    # the key log does hold the early secret: it is the server's rejection that drops the data
    assert "CLIENT_EARLY_TRAFFIC_SECRET" in keys.read_text()
