"""pcapan live (issue 7): real servers on 127.0.0.1, real clients, capture on ``lo``.

Every expected value comes from what the test makes happen, not from pcapan's output:
- nginx (temporary config, keep-alive on, TLS 1.2 and 1.3 with a self-signed certificate for
  ``live.pcapan.test``) serves three files of known sizes on a plain port and a TLS port;
- curl makes: one connection with three requests (three URLs on one command line: curl reuses
  the connection), one connection with one request, one TLS 1.3 and one TLS 1.2 handshake
  (``--tlsv1.3`` / ``--tls-max 1.2``) with SNI from ``--resolve`` and ALPN ``http/1.1`` offered
  (``--http1.1``: curl offers nothing else); in TLS 1.2 the server's ALPN choice is in the
  cleartext ServerHello, in TLS 1.3 it is encrypted (so not known);
- the capture written with ``write=`` is analysed again: every table must be equal.
Tests need root (a packet socket, CAP_NET_RAW) and nginx, curl, openssl; CI runs as root.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pandas.testing as pdt
import pytest

import pcapan
from pcapan.api import Analyzer
from pcapan.frames.schema import TABLES
from pcapan.io import FrameBatch, open_capture

from .tcpgen import Conv, write

ROOT = os.geteuid() == 0
TOOLS = all(shutil.which(t) for t in ("nginx", "curl", "openssl"))
needs_capture = pytest.mark.skipif(
    not ROOT, reason="live capture needs root (CAP_NET_RAW); CI runs as root"
)
needs_tools = pytest.mark.skipif(
    not TOOLS, reason="needs nginx, curl and openssl (installed by .ci/run)"
)

TLS_NAME = "live.pcapan.test"
FILES = {"a.txt": 1000, "b.txt": 2345, "c.txt": 70_000}  # c spans many segments


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_port(port: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        if time.monotonic() > deadline:
            raise RuntimeError(f"nothing listening on 127.0.0.1:{port}")
        time.sleep(0.05)


@dataclass
class Servers:
    http: int
    https: int
    tmp: Path


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Servers]:
    if not (ROOT and TOOLS):
        pytest.skip("needs root and nginx/curl/openssl")
    tmp = tmp_path_factory.mktemp("live")
    www = tmp / "www"
    www.mkdir()
    for name, size in FILES.items():
        (www / name).write_bytes(bytes(i % 251 for i in range(size)))
    key, cert = tmp / "key.pem", tmp / "cert.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-days",
            "1",
            "-keyout",
            key,
            "-out",
            cert,
            "-subj",
            f"/CN={TLS_NAME}",
            "-addext",
            f"subjectAltName=DNS:{TLS_NAME}",
        ],
        check=True,
        capture_output=True,
    )
    http, https = _free_port(), _free_port()
    conf = tmp / "nginx.conf"
    conf.write_text(f"""
daemon off;
master_process off;
worker_processes 1;
pid {tmp}/nginx.pid;
error_log {tmp}/error.log;
events {{ worker_connections 64; }}
http {{
    access_log off;
    client_body_temp_path {tmp}/body; proxy_temp_path {tmp}/proxy; fastcgi_temp_path {tmp}/fcgi;
    uwsgi_temp_path {tmp}/uwsgi; scgi_temp_path {tmp}/scgi;
    default_type text/plain;
    keepalive_timeout 30s;
    server {{ listen 127.0.0.1:{http}; root {www}; }}
    server {{
        listen 127.0.0.1:{https} ssl;
        server_name {TLS_NAME};
        root {www};
        ssl_certificate {cert};
        ssl_certificate_key {key};
        ssl_protocols TLSv1.2 TLSv1.3;
    }}
}}
""")
    proc = subprocess.Popen(["nginx", "-c", str(conf), "-p", str(tmp)], stderr=subprocess.DEVNULL)
    try:
        _wait_port(http)
        _wait_port(https)
        yield Servers(http, https, tmp)
    finally:
        proc.terminate()
        proc.wait(5)


def _curl(*args: str) -> None:
    subprocess.run(["curl", "-sS", "--max-time", "10", *args], check=True, capture_output=True)


def _filter(s: Servers) -> str:
    return f"tcp port {s.http} or tcp port {s.https}"


@needs_capture
@needs_tools
def test_live_capture_rows_and_identical_to_written_file(servers: Servers, tmp_path: Path) -> None:
    s = servers
    written = tmp_path / "live.pcapng"
    out = tmp_path / "out"
    cap = pcapan.LiveCapture("lo", bpf_filter=_filter(s), write=written, output=out, interval_s=0.2)
    snaps: list[pcapan.live.Snapshot] = []
    thread = threading.Thread(
        target=lambda: cap.run(on_snapshot=snaps.append, handle_signals=False)
    )
    thread.start()
    try:
        base = f"http://127.0.0.1:{s.http}"
        # One keep-alive connection with three requests, then one with a single request.
        _curl(
            "--http1.1",
            *(x for n in ("a.txt", "b.txt", "c.txt") for x in ("-o", os.devnull, f"{base}/{n}")),
        )
        # Snapshots show the requests while the capture runs (within an interval and a feed).
        deadline = time.monotonic() + 5
        while not any(sn.result is not None and len(sn.result.http) >= 3 for sn in snaps):
            assert time.monotonic() < deadline, "no snapshot showed the first three requests"
            time.sleep(0.05)
        _curl("--http1.1", "-o", os.devnull, f"{base}/a.txt")
        tls = [
            "--http1.1",
            "-k",
            "--resolve",
            f"{TLS_NAME}:{s.https}:127.0.0.1",
            "-o",
            os.devnull,
            f"https://{TLS_NAME}:{s.https}/b.txt",
        ]
        _curl("--tlsv1.3", *tls)
        _curl("--tls-max", "1.2", *tls)
        time.sleep(0.3)  # the last FIN/ACKs reach the socket
    finally:
        cap.stop()
        thread.join(15)
    assert not thread.is_alive()
    res = cap.result
    assert res is not None
    live = res.stats["live"]
    assert live["kernel_drops"] == 0
    assert live["stopped_by"] == "stop"
    assert snaps[-1].final and snaps[-1].result is res
    assert any(not sn.final for sn in snaps)

    conns = res.connections.sort_values("ts").reset_index(drop=True)
    assert len(conns) == 4
    assert conns.conn_state.tolist() == ["SF"] * 4
    assert conns.resp_p.tolist() == [s.http, s.http, s.https, s.https]
    assert conns.requests.tolist()[:2] == [3, 1]  # requests per plain connection
    assert (conns.source == str(written)).all()

    http = res.http.sort_values(["ts", "trans_depth"]).reset_index(drop=True)
    assert len(http) == 4
    assert http.uri.tolist() == ["/a.txt", "/b.txt", "/c.txt", "/a.txt"]
    assert http.trans_depth.tolist() == [1, 2, 3, 1]
    assert http.status_code.tolist() == [200] * 4
    assert http.response_body_len.tolist() == [
        FILES["a.txt"],
        FILES["b.txt"],
        FILES["c.txt"],
        FILES["a.txt"],
    ]
    assert http.uid.nunique() == 2

    tls_t = res.tls.sort_values("ts").reset_index(drop=True)
    assert len(tls_t) == 2
    assert tls_t.server_name.tolist() == [TLS_NAME, TLS_NAME]
    assert tls_t.version.tolist() == ["TLSv13", "TLSv12"]
    assert tls_t.alpn_offered.tolist() == ["http/1.1", "http/1.1"]
    assert pd.isna(tls_t.next_protocol[0])  # TLS 1.3: the choice is encrypted
    assert tls_t.next_protocol[1] == "http/1.1"  # TLS 1.2: in the ServerHello
    assert tls_t.established.tolist() == [True, True]
    assert tls_t.handshake_rtts.tolist() == [1, 2]

    # Every frame captured is in the file, and the file's tables are the live tables.
    again = pcapan.analyze(str(written))
    assert again.stats["frames"] == live["packets"] == res.stats["frames"]
    for name in TABLES:
        pdt.assert_frame_equal(res.tables()[name], again.tables()[name], obj=name)
    assert len(res.rtt) > 0
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["tables"]["connections"]["rows"] == 4
    assert manifest["tables"]["http"]["rows"] == 4

    # The dashboard's figures at the end are the tables' (drawn by the dashboard's renderer).
    st = snaps[-1].stats
    assert (st.packets, st.connections, st.http_requests, st.tls_handshakes) == (
        live["packets"],
        4,
        4,
        2,
    )
    assert st.kernel_drops == 0 and st.open_connections == 0
    assert dict(st.tls_versions) == {"TLSv13": 1, "TLSv12": 1}
    assert dict((h, (r, t)) for h, r, t in st.top_hosts)[TLS_NAME] == (0, 2)
    acks = res.rtt[res.rtt.kind == "ack"].rtt_s
    assert st.rtt_p50_s is not None and acks.min() <= st.rtt_p50_s <= acks.max()
    from rich.console import Console

    # Findings by severity on the final snapshot: the live result's findings table, counted
    # (the servers' self-signed certificate is one at least).
    from pcapan.frames.findings import severity_counts
    from pcapan.live.dashboard import render

    assert st.findings == tuple(severity_counts(res.findings).items()) and st.findings
    con = Console(record=True, width=120, color_system=None)
    con.print(render(st, _filter(s), final=True))
    text = con.export_text()
    assert "findings" in text and f"{st.findings[0][0]} {st.findings[0][1]:,}" in text
    for want in (
        f"{live['packets']:,}",
        "TLSv13",
        "TLSv12",
        TLS_NAME,
        "kernel drops",
        "RTT p50 / p95",
        "(stopped)",
    ):
        assert want in text, want


def _start_cli(args: list[str]) -> subprocess.Popen[str]:
    """pcapan live in a subprocess, returned once its socket is open (its first stderr line)."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "pcapan.cli", "live", "--no-dashboard", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stderr is not None
    first = proc.stderr.readline()
    assert first.startswith("pcapan: capturing on lo"), first
    return proc


@needs_capture
@needs_tools
def test_cli_count_stops_exactly_and_sigterm_writes_valid_files(
    servers: Servers, tmp_path: Path
) -> None:
    s = servers
    url = f"http://127.0.0.1:{s.http}/c.txt"
    # --count: a 70 kB download is far more than 5 packets; exactly 5 are kept.
    f5 = tmp_path / "five.pcap"
    proc = _start_cli(
        ["-i", "lo", "--filter", f"tcp port {s.http}", "--count", "5", "--write", str(f5)]
    )
    _curl("-o", os.devnull, url)
    _out, err = proc.communicate(timeout=20)
    assert proc.returncode == 0, err
    assert "stopped by count" in err and "dropped" in err
    assert pcapan.analyze(str(f5)).stats["frames"] == 5

    # SIGTERM: open flows flushed, exports written, the pcapng closed and valid.
    f = tmp_path / "term.pcapng"
    out = tmp_path / "out"
    proc = _start_cli(
        [
            "-i",
            "lo",
            "--filter",
            f"tcp port {s.http}",
            "--write",
            str(f),
            "-o",
            str(out),
            "--rotate",
            "1h",
            "--format",
            "jsonl",
        ]
    )
    _curl("-o", os.devnull, url)
    time.sleep(0.3)
    proc.send_signal(signal.SIGTERM)
    _out, err = proc.communicate(timeout=20)
    assert proc.returncode == 0, err
    assert "stopped by sigterm" in err
    assert "Traceback" not in err
    res = pcapan.analyze(str(f))
    assert len(res.connections) == 1 and res.http.uri.tolist() == ["/c.txt"]
    part = out / "part-000001"
    manifest = json.loads((part / "manifest.json").read_text())
    assert manifest["format"] == "jsonl"
    assert manifest["tables"]["connections"]["rows"] == 1
    # tshark reads the file too, interface statistics included.
    if shutil.which("tshark"):
        n = subprocess.run(
            ["tshark", "-r", str(f), "-T", "fields", "-e", "frame.number"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.split()
        assert len(n) == res.stats["frames"]


@needs_capture
def test_cli_errors_are_one_line_without_traceback(tmp_path: Path) -> None:
    cases = [
        (["-i", "nosuch0"], "no network interface 'nosuch0'"),
        (["-i", "lo", "--filter", "tcp port"], "bad BPF filter 'tcp port'"),
        (["-i", "lo", "--rotate", "10m"], "--rotate needs -o DIR"),
        (["-i", "lo", "--rotate", "ten", "-o", str(tmp_path)], "--rotate 'ten'"),
    ]
    prefix: list[str] = []
    if shutil.which("setpriv"):
        # Without CAP_NET_RAW (dropped from the bounding set) the socket is refused.
        prefix = ["setpriv", "--inh-caps=-net_raw", "--bounding-set=-net_raw"]
        cases.append((["-i", "lo", "--duration", "1"], "needs the CAP_NET_RAW capability"))
    for i, (args, expected) in enumerate(cases):
        cmd = [sys.executable, "-m", "pcapan.cli", "live", "--no-dashboard", *args]
        if "CAP_NET_RAW" in expected:
            cmd = prefix + cmd
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
        assert p.returncode == 2, (i, p.stderr)
        lines = p.stderr.strip().splitlines()
        assert len(lines) == 1 and expected in lines[0], (i, p.stderr)


def _frames(path: Path) -> Iterator[FrameBatch]:
    """The capture's frames one at a time (a batch per frame), as a live capture might feed them."""
    for b in open_capture(path):
        for i in range(len(b)):
            sl = slice(i, i + 1)
            yield FrameBatch(
                b.data,
                b.offset[sl],
                b.caplen[sl],
                b.wirelen[sl],
                b.ts_ns[sl],
                b.linktype[sl],
                b.frame_no[sl],
            )


def test_rotation_takes_finished_rows_and_parts_add_up(tmp_path: Path) -> None:
    """Analyzer.snapshot(take=True), what --rotate uses: three HTTP connections 40 s apart (so
    the flow table's sweep, every 10 s of capture time, finalises each before the next one
    starts); taking after every frame hands over each connection once, with its HTTP rows and
    RTT samples, and the parts together are the one-pass analysis."""
    convs = []
    for k in range(3):
        c = Conv(cport=42000 + k, t=1_700_000_000.0 + 40 * k)
        c.handshake()
        c.send(True, "PA", b"GET /%d HTTP/1.1\r\nHost: x\r\n\r\n" % k)
        c.send(False, "PA", b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
        c.send(True, "A")
        c.close()
        convs.append(c)
    path = write(tmp_path / "three.pcap", convs)
    whole = pcapan.analyze(str(path))
    an = Analyzer()
    an.start_source(str(path))
    parts = []
    for fb in _frames(path):
        an.feed(fb)
        p = an.snapshot(take=True)
        if p.connection_records:
            parts.append(p)
            assert not an.engine.connections and not an.engine.http_ctx.records
    parts.append(an.finish())
    assert [len(p.connection_records) for p in parts] == [1, 1, 1]
    merged = pcapan.Result.merge(parts)
    for name in ("connections", "http", "rtt", "anomalies"):
        pdt.assert_frame_equal(merged.tables()[name], whole.tables()[name], obj=name)
    # What stays in memory after the takes is the last connection's (and its uid in the RTT index).
    assert set(parts[-1].rtt.uid) == set(parts[-1].connections.uid)
    assert len(parts[-1].rtt) == sum(a.shape[0] for a in an.engine.rtt_samples.ts_ns)


def test_findings_counted_while_capturing() -> None:
    """During a capture the dashboard's findings counts come from the interval snapshot's
    tables, recomputed only when connections finished since and LIVE_FINDINGS_INTERVAL_S has
    passed (issue 18: they were shown on the final snapshot only). The snapshot here is the
    result of tls-versions.pcap, whose findings table has rows (its certificates do not name
    the SNI: tests/test_findings.py)."""
    import types

    from pcapan.config import LIVE_FINDINGS_INTERVAL_S
    from pcapan.frames.findings import severity_counts
    from pcapan.live.dashboard import render
    from pcapan.live.session import LiveCapture, LiveStats

    snap = pcapan.analyze(Path(__file__).resolve().parent.parent / "samples" / "tls-versions.pcap")
    want = tuple(severity_counts(snap.findings).items())
    assert want
    stats = LiveStats("lo", 1.0, 0, 0, 0.0, 0.0, 0, 0, 0, 0.0, 0, (), (), (), None, None, 0, 0, 0)
    state = types.SimpleNamespace(_findings=(), _findings_at=-math.inf, _findings_rows=0)
    first = LiveCapture._with_findings(state, stats, snap, 100.0)  # type: ignore[arg-type]
    assert first.findings == want and stats.findings == ()
    # Within the interval the counts are kept even though other connections finished (another
    # capture's result stands for them); past it they are recomputed from the new snapshot.
    other = pcapan.analyze(Path(__file__).resolve().parent.parent / "samples" / "http-reuse.pcap")
    want2 = tuple(severity_counts(other.findings).items())
    assert want2 != want and len(other.connection_records) != len(snap.connection_records)
    half = 100.0 + LIVE_FINDINGS_INTERVAL_S / 2
    kept = LiveCapture._with_findings(state, stats, other, half)  # type: ignore[arg-type]
    assert kept.findings == want
    later = 100.0 + LIVE_FINDINGS_INTERVAL_S
    assert LiveCapture._with_findings(state, stats, other, later).findings == want2  # type: ignore[arg-type]
    from rich.console import Console

    con = Console(record=True, width=120, color_system=None)
    con.print(render(first, "", final=False))
    text = con.export_text()
    assert "findings" in text and f"{want[0][0]} {want[0][1]:,}" in text
