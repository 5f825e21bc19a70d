"""The findings table (issue 18): every kind appears on a capture where it must and not on one
where it must not.

Captures: the repo's samples (samples/README.md, recorded by samples/make_samples.py from real
nginx, curl, openssl and Python clients) and the shared corpus's Zeek TLS traces (TLS 1.0/1.1,
RC4; skipped when the corpus is absent). Where no real capture shows a kind, the test says why
and crafts the least it can: a capture built with tests/tcpgen.py (what real clients will not
send: a TRACE answered 200 by a server we would have to misconfigure, Upgrade: TLS/1.2 that no
current client sends, both Content-Length and Transfer-Encoding) or one changed column of a real
capture's table (certificate dates, a DH group, an HTTP/2 suite: the findings read tables only,
so a changed cell is exactly what such a capture would give).

Expected values come from tshark fields or from the capture's construction, never from
pcapan's output; each test says how.
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import replace
from pathlib import Path

import pandas as pd
import pytest

import pcapan
from pcapan.frames import findings as fmod

from .tcpgen import Conv, write

SAMPLES = Path(__file__).resolve().parent.parent / "samples"
CORPUS = Path(__file__).resolve().parent.parent.parent / "shared" / "corpus"
ZEEK_TLS = CORPUS / "zeek" / "testing" / "btest" / "Traces" / "tls"
TSHARK = shutil.which("tshark")
needs_tshark = pytest.mark.skipif(TSHARK is None, reason="tshark is not installed")
needs_corpus = pytest.mark.skipif(not ZEEK_TLS.is_dir(), reason="shared corpus absent")

_cache: dict[str, pcapan.Result] = {}


def _res(name: str | Path) -> pcapan.Result:
    path = Path(name) if isinstance(name, Path) else SAMPLES / name
    key = str(path)
    if key not in _cache:
        _cache[key] = pcapan.analyze(path)
    return _cache[key]


def _kind(df: pd.DataFrame, kind: str) -> pd.DataFrame:
    return df[df.kind == kind]


def _tshark(path: Path, *args: str) -> list[list[str]]:
    assert TSHARK is not None
    out = subprocess.run(
        [TSHARK, "-n", "-r", str(path), *args],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    ).stdout
    return [line.split("\t") for line in out.splitlines() if line]


def _initial_rtt(path: Path) -> dict[int, float]:
    """tcp.stream -> Wireshark's tcp.analysis.initial_rtt."""
    rows = _tshark(path, "-T", "fields", "-e", "tcp.stream", "-e", "tcp.analysis.initial_rtt")
    return {int(s): float(r) for s, r in rows if r}


def _stream_of(res: pcapan.Result, path: Path) -> dict[str, int]:
    """pcapan uid -> tshark tcp.stream, joined on the client port (one client address)."""
    rows = _tshark(
        path, "-Y", "tcp.flags.syn==1 && tcp.flags.ack==0", "-T", "fields", "-e", "tcp.stream"
    )
    ports = _tshark(
        path,
        "-Y",
        "tcp.flags.syn==1 && tcp.flags.ack==0",
        "-T",
        "fields",
        "-e",
        "tcp.srcport",
    )
    by_port = {int(p[0]): int(s[0]) for s, p in zip(rows, ports, strict=True)}
    return {
        u: by_port[int(p)] for u, p in zip(res.connections.uid, res.connections.orig_p, strict=True)
    }


# --- performance ----------------------------------------------------------------------------------
@needs_tshark
def test_no_keep_alive() -> None:
    """http-close.pcap: 4 connections, one exchange each, all closing (curl -H 'Connection:
    close' x3, --http1.0 x1). Cost: connections 2-4 each paid a TCP handshake (plain HTTP:
    budget 2 RTT, 1 of them set-up) = 3 round trips, and their tcp.analysis.initial_rtt summed."""
    path = SAMPLES / "http-close.pcap"
    f = _kind(_res("http-close.pcap").findings, "no_keep_alive")
    assert len(f) == 1
    r = f.iloc[0]
    # tshark: every response closes (Connection: close, or HTTP/1.0 without keep-alive).
    resp = _tshark(
        path,
        "-Y",
        "http.response",
        "-T",
        "fields",
        "-e",
        "http.connection",
        "-e",
        "http.response.version",
    )
    assert len(resp) == 4 and all(c == "close" or v == "HTTP/1.0" for c, v in resp)
    rtt = _initial_rtt(path)
    assert r["occurrences"] == 4 and r.cost_rtts == 3
    assert r.cost_s == pytest.approx(rtt[1] + rtt[2] + rtt[3], abs=1e-6)
    assert r.severity == "medium" and r.evidence_table == "http"
    assert set(r.evidence.split(",")) == set(_res("http-close.pcap").connections.uid)
    assert "RFC 9112 section 9.3" in r.advice
    # http-keepalive.pcap: 6 requests on 2 kept-alive connections.
    assert _kind(_res("http-keepalive.pcap").findings, "no_keep_alive").empty


@needs_tshark
def test_missed_reuse_finding() -> None:
    """http-reuse.pcap (see tests/test_findings_reuse.py): one strict missed reuse, stream 10
    beside the idle stream 9. Cost: stream 10's TCP handshake, 1 round trip, its
    tcp.analysis.initial_rtt."""
    path = SAMPLES / "http-reuse.pcap"
    res = _res("http-reuse.pcap")
    f = _kind(res.findings, "missed_reuse")
    assert len(f) == 1
    r = f.iloc[0]
    stream = _stream_of(res, path)
    assert [stream[u] for u in r.evidence.split(",")] == [10] and r.uid == r.evidence
    assert r["occurrences"] == 1 and r.cost_rtts == 1
    assert r.cost_s == pytest.approx(_initial_rtt(path)[10], abs=1e-6)
    assert "idle > 2 RTT" in r.summary and r.client == "127.0.0.1"
    assert _kind(res.findings_with(missed_reuse_min=2), "missed_reuse").empty
    assert _kind(_res("http-keepalive.pcap").findings, "missed_reuse").empty


@needs_tshark
def test_pipelining_hol() -> None:
    """rtt-pipelined.pcap: 3 GETs in one segment, 50 ms to the server. Requests 2 and 3 wait
    for responses 1 and 2 to end: from tshark, response N's frame time (its last segment) minus
    the requests' frame time (all three in one segment). Both ~50 ms: under the 0.1 s default, over 0.04 s."""
    path = SAMPLES / "rtt-pipelined.pcap"
    req = [
        float(t)
        for (t,) in _tshark(path, "-Y", "http.request", "-T", "fields", "-e", "frame.time_epoch")
    ]
    resp = [
        float(t)
        for (t,) in _tshark(path, "-Y", "http.response", "-T", "fields", "-e", "frame.time_epoch")
    ]
    # tshark: the 3 requests in one frame (one segment), 3 responses.
    assert len(req) == 1 and len(resp) == 3
    waits = [resp[0] - req[0], resp[1] - req[0]]
    res = _res("rtt-pipelined.pcap")
    assert _kind(res.findings, "pipelining_hol").empty
    f = _kind(res.findings_with(hol_wait_s=0.04), "pipelining_hol")
    assert len(f) == 1 and f.iloc[0]["occurrences"] == 2
    assert f.iloc[0].cost_s == pytest.approx(sum(waits), abs=2e-5)
    assert _kind(_res("http-pipelined.pcap").findings_with(hol_wait_s=0.04), "pipelining_hol").empty


def test_slow_server(tmp_path: Path) -> None:
    """Crafted (tcpgen): no sample has a slow server (nginx serves static files in microseconds;
    recording a slow one would need a new sample). Handshake: SYN, SYN-ACK 1 ms later (rtt_syn
    1 ms), ACK; GET; the response 1.5 s later: think time 1.5 - 0.001 s. A second server answers
    in 10 ms: not slow."""
    get = b"GET / HTTP/1.1\r\nHost: slow.test\r\n\r\n"
    ok = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
    a = Conv(cport=41000)
    a.handshake()
    a.send(True, "PA", get)
    a.send(False, "PA", ok, dt=1.5)
    a.send(True, "A")
    a.close()
    b = Conv(cport=41001, server="10.0.0.3")
    b.handshake()
    b.send(True, "PA", get)
    b.send(False, "PA", ok, dt=0.010)
    b.close()
    res = pcapan.analyze(write(tmp_path / "slow.pcap", [a, b]))
    f = _kind(res.findings, "slow_server")
    assert len(f) == 1 and f.iloc[0].server == "10.0.0.2:80"
    assert f.iloc[0].cost_s == pytest.approx(1.5 - 0.001, abs=1e-6)
    assert _kind(res.findings_with(think_time_s=2.0), "slow_server").empty


@needs_tshark
def test_tls_resumption_missed() -> None:
    """tls.pcap: tshark shows a NewSessionTicket (handshake type 4) in stream 2 and a full
    handshake (a Certificate, type 11) in stream 4 afterwards, same client and server:
    resumption was possible. Cost 1 round trip, stream 4's tcp.analysis.initial_rtt.
    tls-resume.pcap: each server name's first handshake is full with no ticket before it."""
    path = SAMPLES / "tls.pcap"
    hs = _tshark(
        path, "-Y", "tls.handshake", "-T", "fields", "-e", "tcp.stream", "-e", "tls.handshake.type"
    )
    types: dict[int, set[str]] = {}
    for s, t in hs:
        types.setdefault(int(s), set()).update(t.split(","))
    tickets = [s for s in sorted(types) if "4" in types[s]]
    assert tickets == [2] and "11" in types[4]
    res = _res("tls.pcap")
    f = _kind(res.findings, "tls_resumption_missed")
    assert len(f) == 1
    r = f.iloc[0]
    assert [_stream_of(res, path)[u] for u in r.evidence.split(",")] == [4]
    assert r.cost_rtts == 1 and r.cost_s == pytest.approx(_initial_rtt(path)[4], abs=1e-6)
    assert _kind(_res("tls-resume.pcap").findings, "tls_resumption_missed").empty


@needs_tshark
def test_expect_continue_and_417() -> None:
    """http-expect.pcap: tshark shows one 100 Continue and one 417 (the two Expect requests).
    The 100 cost one round trip: tcp.analysis.initial_rtt of its stream."""
    path = SAMPLES / "http-expect.pcap"
    codes = _tshark(
        path, "-Y", "http.response", "-T", "fields", "-e", "tcp.stream", "-e", "http.response.code"
    )
    cont = [int(s) for s, c in codes if c == "100"]
    assert len(cont) == 1 and sum(c == "417" for _, c in codes) == 1
    f = _res("http-expect.pcap").findings
    c, r = _kind(f, "expect_100_continue"), _kind(f, "expect_417")
    assert (
        len(c) == 1
        and len(r) == 1
        and c.iloc[0]["occurrences"] == 1
        and r.iloc[0]["occurrences"] == 1
    )
    assert c.iloc[0].cost_rtts == 1
    assert c.iloc[0].cost_s == pytest.approx(_initial_rtt(path)[cont[0]], abs=1e-6)
    assert r.iloc[0].severity == "low" and c.iloc[0].severity == "info"
    k = _res("http-keepalive.pcap").findings
    assert _kind(k, "expect_100_continue").empty and _kind(k, "expect_417").empty


def test_parallel_connections() -> None:
    """http-reuse.pcap's most connections open at once to its server is 2 (streams 9 and 10,
    see test_findings_reuse.py's tshark times: stream 10 opens 0.5 s into stream 9): no finding
    at the default 6, one with the limit at 1."""
    res = _res("http-reuse.pcap")
    assert _kind(res.findings, "parallel_connections").empty
    f = _kind(res.findings_with(parallel_connections=1), "parallel_connections")
    assert len(f) == 1 and f.iloc[0]["occurrences"] == 2 and f.iloc[0].client == "127.0.0.1"


@needs_tshark
def test_slow_start_stall() -> None:
    """rtt-http.pcap's 200 KiB response (/big.bin, stream 0): from tshark, its first and last
    server segments after the request are 0.2836 s apart, 4.0 initial RTTs (0.0705 s); 142
    segments of 1448 bytes need 3 round trips after the first flight in slow start from 10
    segments (10+20+40+80 >= 142). 1 extra round trip: not a stall at the default 2, one at 1,
    costing 1 round trip = the initial RTT."""
    path = SAMPLES / "rtt-http.pcap"
    res = _res("rtt-http.pcap")
    assert _kind(res.findings, "slow_start_stall").empty
    f = _kind(res.findings_with(slow_start_extra_rtts=1), "slow_start_stall")
    assert len(f) == 1 and f.iloc[0]["occurrences"] == 1
    rtt = _initial_rtt(path)[0]
    assert f.iloc[0].cost_rtts == 1 and f.iloc[0].cost_s == pytest.approx(rtt, abs=1e-6)
    big = res.http[res.http.uri == "/big.bin"].iloc[0]
    seg = _tshark(
        path,
        "-Y",
        f"tcp.stream==0 && tcp.srcport==18480 && tcp.len>0 && frame.time_epoch>={big.ts_request_end.timestamp()}",
        "-T",
        "fields",
        "-e",
        "frame.time_epoch",
        "-e",
        "tcp.len",
    )
    # The body's segments (the next response, /index.html, is on the other connection).
    times = [float(t) for t, _ in seg]
    assert (times[-1] - times[0]) / rtt == pytest.approx(4.0, abs=0.1)
    # Loopback samples (RTT under 5 ms) are never judged.
    assert _kind(
        _res("http-keepalive.pcap").findings_with(slow_start_extra_rtts=0), "slow_start_stall"
    ).empty


def test_retransmissions() -> None:
    """lossy.pcap: lossy.edits.json duplicates one server segment (a retransmission by Zeek's
    definition; tshark calls the copy out-of-order) among 116 server packets (tshark:
    tcp.srcport==18080, 111 on stream 0 and 5 on stream 1): 0.86%, under the 1% default, over
    0.5%."""
    res = _res("lossy.pcap")
    assert _kind(res.findings, "retransmissions").empty
    f = _kind(res.findings_with(retransmit_rate=0.005), "retransmissions")
    assert len(f) == 1 and f.iloc[0]["occurrences"] == 1 and "1 of 116" in f.iloc[0].summary
    assert _kind(
        _res("http-keepalive.pcap").findings_with(retransmit_rate=0.0), "retransmissions"
    ).empty


# --- security -------------------------------------------------------------------------------------
def test_trace_enabled(tmp_path: Path) -> None:
    """Crafted: nginx refuses TRACE (http-methods.pcap: 405), so a server answering it 200 is
    built with tcpgen; the 200 echoes the request as message/http (RFC 9110 9.3.8)."""
    trace = b"TRACE / HTTP/1.1\r\nHost: x.test\r\nCookie: s=1\r\n\r\n"
    echo = b"HTTP/1.1 200 OK\r\nContent-Type: message/http\r\nContent-Length: %d\r\n\r\n" % len(
        trace
    )
    a = Conv(cport=41000)
    a.handshake()
    a.send(True, "PA", trace)
    a.send(False, "PA", echo + trace)
    a.close()
    f = _kind(pcapan.analyze(write(tmp_path / "trace.pcap", [a])).findings, "trace_enabled")
    assert len(f) == 1 and f.iloc[0].severity == "medium"
    m = _res("http-methods.pcap")
    assert (m.http.method == "TRACE").any()  # asked, answered 405: not a finding
    assert _kind(m.findings, "trace_enabled").empty


def test_connect_non_443() -> None:
    """http-connect.pcap: CONNECT pcapan.test:18444 answered 200 (a tunnel), and CONNECT to
    port 25 refused 403 (not a finding); plain-http-in-connect.pcap: CONNECT to 18080."""
    f = _kind(_res("http-connect.pcap").findings, "connect_non_443")
    assert (
        len(f) == 1 and f.iloc[0]["occurrences"] == 1 and "pcapan.test:18444" in f.iloc[0].summary
    )
    assert ":25" not in f.iloc[0].summary
    assert len(_kind(_res("plain-http-in-connect.pcap").findings, "connect_non_443")) == 1
    assert _kind(_res("http-keepalive.pcap").findings, "connect_non_443").empty


def test_upgrade_tls(tmp_path: Path) -> None:
    """Crafted: no current client sends RFC 2817's Upgrade: TLS/1.2 (curl and browsers do not);
    http-upgrade.pcap's websocket and h2c upgrades are not findings."""
    req = b"OPTIONS * HTTP/1.1\r\nHost: x.test\r\nUpgrade: TLS/1.2\r\nConnection: Upgrade\r\n\r\n"
    a = Conv(cport=41000)
    a.handshake()
    a.send(True, "PA", req)
    a.send(False, "PA", b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
    a.close()
    f = _kind(pcapan.analyze(write(tmp_path / "upgrade.pcap", [a])).findings, "upgrade_tls")
    assert len(f) == 1
    up = _res("http-upgrade.pcap")
    assert up.http.upgrade_requested.notna().sum() >= 2
    assert _kind(up.findings, "upgrade_tls").empty


@needs_tshark
def test_cleartext_credentials() -> None:
    """http-credentials.pcap: tshark shows http.authorization Basic (stream 0) and Digest
    (stream 1) and an http.cookie (stream 2), all on plain HTTP. http-keepalive.pcap sends none;
    tls.pcap's requests are encrypted (no http rows)."""
    path = SAMPLES / "http-credentials.pcap"
    rows = _tshark(
        path, "-Y", "http.request", "-T", "fields", "-e", "http.authorization", "-e", "http.cookie"
    )
    assert [a.split(" ")[0] for a, _ in rows] == ["Basic", "Digest", ""] and rows[2][1]
    res = _res("http-credentials.pcap")
    assert res.http["http_flags"].tolist() == ["auth_basic", "auth_digest", "cookie"]
    f = _kind(res.findings, "cleartext_credentials")
    assert len(f) == 1 and f.iloc[0]["occurrences"] == 3 and f.iloc[0].severity == "high"
    assert set(f.iloc[0].evidence.split(",")) == set(res.connections.uid)
    assert "Basic credentials, Digest credentials and cookies" in f.iloc[0].summary
    assert _kind(_res("http-keepalive.pcap").findings, "cleartext_credentials").empty
    assert _kind(_res("tls.pcap").findings, "cleartext_credentials").empty


def test_request_smuggling(tmp_path: Path) -> None:
    """Crafted: real clients do not send both Content-Length and Transfer-Encoding. One POST
    with both (te_and_cl), one response with two differing Content-Lengths (cl_mismatch).
    http-chunked.pcap's chunked requests and response are clean."""
    a = Conv(cport=41000)
    a.handshake()
    a.send(
        True,
        "PA",
        b"POST /a HTTP/1.1\r\nHost: x.test\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    )
    a.send(False, "PA", b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
    a.send(True, "PA", b"GET /b HTTP/1.1\r\nHost: x.test\r\n\r\n")
    a.send(False, "PA", b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nok")
    a.close()
    f = _kind(pcapan.analyze(write(tmp_path / "smuggle.pcap", [a])).findings, "request_smuggling")
    assert len(f) == 1 and f.iloc[0]["occurrences"] == 2 and f.iloc[0].severity == "high"
    assert "te_and_cl" in f.iloc[0].summary and "cl_mismatch" in f.iloc[0].summary
    assert _kind(_res("http-chunked.pcap").findings, "request_smuggling").empty


@needs_corpus
def test_tls_old_version_insecure_cipher_weak_offer() -> None:
    """Zeek's traces (their ssl.log baselines in the corpus): tls1_1.pcap negotiates TLS 1.1,
    signed_certificate_timestamp_tls1_0.pcap TLS 1.0, tls1.2.pcap selects TLS_RSA_WITH_RC4_128_MD5
    (insecure, no forward secrecy) after a ClientHello offering RC4/3DES/EXPORT suites."""
    v11 = _res(ZEEK_TLS / "tls1_1.pcap").findings
    assert (
        len(_kind(v11, "tls_old_version")) == 1
        and "TLSv11" in _kind(v11, "tls_old_version").iloc[0].summary
    )
    v10 = _kind(
        _res(ZEEK_TLS / "signed_certificate_timestamp_tls1_0.pcap").findings, "tls_old_version"
    )
    assert len(v10) == 1 and v10.iloc[0].severity == "medium"
    rc4 = _res(ZEEK_TLS / "tls1.2.pcap").findings
    assert "TLS_RSA_WITH_RC4_128_MD5" in _kind(rc4, "tls_insecure_cipher").iloc[0].summary
    assert len(_kind(rc4, "tls_no_forward_secrecy")) == 1
    assert len(_kind(rc4, "tls_weak_ciphers_offered")) == 1
    # Samples: openssl 3 and nginx negotiate TLS 1.2/1.3 with AEAD suites, offer nothing weak.
    for name in ("tls-versions.pcap", "tls-resume.pcap", "tls-alpn.pcap"):
        f = _res(name).findings
        for kind in ("tls_old_version", "tls_insecure_cipher", "tls_weak_ciphers_offered"):
            assert _kind(f, kind).empty, (name, kind)


def test_sslv3_is_high() -> None:
    """Crafted column: no client or server here speaks SSLv3 (OpenSSL 3 has no SSLv3) and the
    corpus's SSLv3 trace is not among its files; the tls table with version SSLv3 gives the
    high-severity row, TLSv12 none."""
    res = _res("tls-versions.pcap")
    f = _kind(fmod.findings(_tables(res, version="SSLv3")), "tls_old_version")
    assert len(f) == res.tls.server_name.nunique() and set(f.severity) == {"high"}
    assert _kind(fmod.findings(_tables(res, version="TLSv12")), "tls_old_version").empty


def test_no_forward_secrecy_sample() -> None:
    """tls-versions.pcap's third connection is TLS 1.2 with RSA key exchange (s_server
    -cipher AES128-GCM-SHA256; samples/tls-facts.json); tls-resume.pcap uses ECDHE only."""
    f = _kind(_res("tls-versions.pcap").findings, "tls_no_forward_secrecy")
    assert len(f) == 1 and "TLS_RSA_WITH_AES_128_GCM_SHA256" in f.iloc[0].summary
    assert _kind(_res("tls-resume.pcap").findings, "tls_no_forward_secrecy").empty


def _tables(res: pcapan.Result, **tls_changes: object) -> fmod.Tables:
    t = res._finding_tables()
    return replace(t, tls=t.tls.assign(**tls_changes))


def test_weak_dh() -> None:
    """tls-versions.pcap's DHE connection uses ffdhe2048 (2048 bits: not under 2048, no finding).
    Crafted column: no client of ours accepts a smaller group (OpenSSL 3 refuses DH under 2048
    at its default security level), so the same table with 1024 bits must give one."""
    res = _res("tls-versions.pcap")
    assert (res.tls.dh_prime_bits == 2048).sum() == 1
    assert _kind(res.findings, "tls_weak_dh").empty
    bits = res.tls.dh_prime_bits.where(res.tls.dh_prime_bits.isna(), 1024)
    f = _kind(fmod.findings(_tables(res, dh_prime_bits=bits)), "tls_weak_dh")
    assert len(f) == 1 and "1024-bit" in f.iloc[0].summary


def test_h2_blocklisted_cipher() -> None:
    """tls-alpn.pcap's h2 connections select ECDHE-GCM suites (not blocklisted). Crafted column:
    OpenSSL and nginx will not pair h2 with a blocklisted suite, so the same table with the
    suite marked blocklisted must give one finding per h2 server."""
    res = _res("tls-alpn.pcap")
    assert _kind(res.findings, "tls_h2_blocklisted_cipher").empty
    h2 = res.tls.next_protocol.eq("h2").fillna(False)
    assert h2.sum() >= 1
    f = _kind(
        fmod.findings(_tables(res, cipher_h2_blocklisted=h2.astype("boolean"))),
        "tls_h2_blocklisted_cipher",
    )
    assert int(f["occurrences"].sum()) == int(h2.sum())


def test_certificates() -> None:
    """tls.pcap: nginx's self-signed certificate for pcapan.test (SNI pcapan.test): self-signed
    in the 3 full handshakes (tshark: 3 Certificate messages, issuer = subject), the name
    matches. tls-versions.pcap: SNI tls12-*.pcapan.test against a certificate for pcapan.test
    only: 3 name mismatches. Crafted columns for the dates: the samples' certificates are valid
    (made for the run), so the handshake time is moved after notAfter and before notBefore."""
    res = _res("tls.pcap")
    f = res.findings
    assert _kind(f, "cert_self_signed").iloc[0]["occurrences"] == 3
    for kind in ("cert_name_mismatch", "cert_expired", "cert_not_yet_valid"):
        assert _kind(f, kind).empty, kind
    mism = _kind(_res("tls-versions.pcap").findings, "cert_name_mismatch")
    assert int(mism["occurrences"].sum()) == 3
    late = res.tls.cert_not_after + pd.Timedelta(days=1)
    exp = _kind(
        fmod.findings(_tables(res, ts=late.where(late.notna(), res.tls.ts))), "cert_expired"
    )
    assert len(exp) == 1 and exp.iloc[0]["occurrences"] == 3 and exp.iloc[0].severity == "high"
    early = res.tls.cert_not_before - pd.Timedelta(days=1)
    nyv = _kind(
        fmod.findings(_tables(res, ts=early.where(early.notna(), res.tls.ts))), "cert_not_yet_valid"
    )
    assert len(nyv) == 1 and nyv.iloc[0]["occurrences"] == 3


@needs_corpus
def test_cert_not_self_signed_on_public_site() -> None:
    """A Google certificate (tls1_1.pcap) is CA-issued: no self-signed finding."""
    assert _kind(_res(ZEEK_TLS / "tls1_1.pcap").findings, "cert_self_signed").empty


def test_name_matching() -> None:
    assert fmod._name_matches("a.example.com", "", "*.example.com")
    assert not fmod._name_matches("b.a.example.com", "", "*.example.com")
    assert fmod._name_matches("example.com", "example.com", "")
    assert not fmod._name_matches("example.com", "example.com", "other.com")  # SAN wins over CN


# --- the table itself -----------------------------------------------------------------------------
def test_schema_order_and_thresholds() -> None:
    from pcapan.frames.schema import FINDINGS

    f = _res("tls-versions.pcap").findings
    assert list(f.columns) == [c.name for c in FINDINGS]
    assert all(str(f[c.name].dtype) == c.dtype for c in FINDINGS)
    ranks = f.severity.map({s: i for i, s in enumerate(fmod.SEVERITIES)})
    assert ranks.is_monotonic_decreasing
    assert set(fmod.THRESHOLDS) >= {"think_time_s", "hol_wait_s", "dh_min_bits"}
    with pytest.raises(ValueError, match="unknown threshold"):
        _res("tls.pcap").findings_with(nope=1)
    assert fmod.parse_thresholds(["think_time_s=0.2"]) == {"think_time_s": 0.2}
    with pytest.raises(ValueError):
        fmod.parse_thresholds(["think_time_s"])


def test_findings_same_on_merged_shards() -> None:
    """Derived from the tables only: the shards of a capture, merged, give the same findings."""
    path = SAMPLES / "tls-versions.pcap"
    whole = pcapan.analyze(path).findings
    merged = pcapan.Result.merge([pcapan.analyze(path, shard=(i, 2)) for i in range(2)]).findings
    cols = ["kind", "severity", "server", "occurrences", "summary"]
    key = ["kind", "server"]
    pd.testing.assert_frame_equal(
        whole[cols].sort_values(key).reset_index(drop=True),
        merged[cols].sort_values(key).reset_index(drop=True),
    )


def test_cli_findings_and_threshold(tmp_path: Path) -> None:
    run = [
        "python",
        "-m",
        "pcapan.cli",
        "findings",
        str(SAMPLES / "rtt-pipelined.pcap"),
        "--format",
        "csv",
    ]
    env_out = subprocess.run(run, capture_output=True, text=True, timeout=300)
    assert env_out.returncode == 0 and "pipelining_hol" not in env_out.stdout
    out = subprocess.run(
        [*run, "--threshold", "hol_wait_s=0.04"], capture_output=True, text=True, timeout=300
    )
    assert out.returncode == 0 and out.stdout.count("pipelining_hol") == 1
    bad = subprocess.run(
        [*run, "--threshold", "nope=1"], capture_output=True, text=True, timeout=300
    )
    assert bad.returncode == 2 and "bad threshold" in bad.stderr and "Traceback" not in bad.stderr
    files = _res("tls.pcap").to_csv(tmp_path)
    assert (tmp_path / "findings.csv") in files
    from pcapan.export.tables import read_csv

    back = read_csv(tmp_path / "findings.csv", "findings")
    pd.testing.assert_frame_equal(back, _res("tls.pcap").findings)


def test_report_findings_first(tmp_path: Path) -> None:
    html = _res("tls-versions.pcap").report(tmp_path / "r.html", plots=False).read_text()
    assert html.index('id="findings"') < html.index('id="summary"')
    assert "tls_no_forward_secrecy" in html and "cert_name_mismatch" in html
    none = _res("http-keepalive.pcap").report(tmp_path / "k.html", plots=False).read_text()
    assert "none at the default thresholds" in none


def test_browser_shows_findings_first(tmp_path: Path) -> None:
    """Headless Chromium (as tests/test_report.py) loads a report with findings: no console
    message, and the rendered DOM's findings section comes before the summary and holds each
    finding's summary sentence as text."""
    from .test_report import CHROMIUM, chromium, console_messages

    if CHROMIUM is None:
        pytest.skip("headless Chromium not installed")
    res = _res("tls-versions.pcap")
    report = res.report(tmp_path / "r.html", plots=False)
    p = chromium(tmp_path, report.as_uri(), "--dump-dom")
    assert p.returncode == 0 and console_messages(p.stderr) == []
    dom = p.stdout
    assert 0 <= dom.index('id="findings"') < dom.index('id="summary"')
    section = dom[dom.index('id="findings"') : dom.index('id="summary"')]
    assert f"{len(res.findings)} findings" in section
    for sentence in res.findings.summary:
        assert sentence in section.replace("&amp;", "&")
