"""Plain HTTP inside a CONNECT tunnel (issue 13, 7).

``samples/plain-http-in-connect.pcap`` is real traffic: a Python client sends CONNECT through the
samples' Python proxy to nginx's plain port, then ``\\n`` + GET /index.html and ``\\r\\n`` + GET
/small.txt in the tunnel (RFC 9112 2.2: a server ignores empty lines before a request-line;
nginx answered both with 200). Before the fix only the CONNECT row appeared.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

import pcapan

sys.path.insert(0, str(Path(__file__).resolve().parent))
from tcpgen import Conv, write  # noqa: E402

SAMPLES = Path(__file__).resolve().parent.parent / "samples"
INDEX_HTML_LEN = 178  # samples/make_samples.py INDEX_HTML; the client checked it got this many
SMALL_TXT_LEN = 1000  # samples/make_samples.py FILES["small.txt"]


def test_sample_plain_http_in_connect_tunnel() -> None:
    r = pcapan.analyze(SAMPLES / "plain-http-in-connect.pcap")
    rows = (
        r.http[
            [
                "trans_depth",
                "method",
                "uri",
                "host",
                "status_code",
                "response_body_len",
                "http_flags",
            ]
        ]
        .astype(object)
        .where(r.http.notna(), None)
        .values.tolist()
    )
    assert rows == [
        [1, "CONNECT", "pcapan.test:18080", "pcapan.test:18080", 200, 0, None],
        [2, "GET", "/index.html", "pcapan.test", 200, INDEX_HTML_LEN, "in_tunnel"],
        [3, "GET", "/small.txt", "pcapan.test", 200, SMALL_TXT_LEN, "in_tunnel"],
    ]
    assert r.connections.service.tolist() == ["http"]
    assert len(r.anomalies) == 0


def test_sample_tunnel_bytes_are_what_the_test_says() -> None:
    # The premise, read with tshark: the client's tunnel segments start with LF and CRLF, and
    # each of the proxy's three segments is a 200 (tshark's own HTTP dissector shows only the
    # first two as responses: it loses the tunnel's second request behind its CRLF).
    if subprocess.run(["which", "tshark"], capture_output=True).returncode:
        pytest.skip("tshark not installed")
    out = subprocess.run(
        [
            "tshark",
            "-r",
            str(SAMPLES / "plain-http-in-connect.pcap"),
            "-Y",
            "tcp.len>0",
            "-T",
            "fields",
            "-e",
            "tcp.dstport",
            "-e",
            "tcp.payload",
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout
    seg = [(d, bytes.fromhex(p)) for d, p in (ln.split("\t") for ln in out.splitlines())]
    assert [p[:6] for d, p in seg if d == "18099"] == [b"CONNEC", b"\nGET /", b"\r\nGET "]
    assert [p[:12] for d, p in seg if d != "18099"] == [b"HTTP/1.1 200"] * 3


@pytest.mark.parametrize("lead", [b"", b"\n", b"\r\n", b"\r\n\r\n"])
def test_tunnel_with_empty_lines_in_their_own_segment(tmp_path: Path, lead: bytes) -> None:
    # The empty lines arrive alone, before the request: detection must wait, not give up.
    c = Conv(sport=3128)
    c.handshake()
    c.send(True, "PA", b"CONNECT example.org:80 HTTP/1.1\r\nHost: example.org:80\r\n\r\n")
    c.send(False, "PA", b"HTTP/1.1 200 Connection established\r\n\r\n")
    if lead:
        c.send(True, "PA", lead)
    c.send(True, "PA", b"GET /in HTTP/1.1\r\nHost: example.org\r\nUser-Agent: t\r\n\r\n")
    c.send(False, "PA", b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi")
    c.send(True, "PA", b"\r\nGET /again HTTP/1.1\r\nHost: example.org\r\n\r\n")  # keep-alive
    c.send(False, "PA", b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n")
    c.close()
    r = pcapan.analyze(write(tmp_path / "t.pcap", [c]))
    got = r.http[
        ["trans_depth", "method", "uri", "status_code", "response_body_len"]
    ].values.tolist()
    assert got == [
        [1, "CONNECT", "example.org:80", 200, 0],
        [2, "GET", "/in", 200, 2],
        [3, "GET", "/again", 404, 0],
    ]
    assert r.http["http_flags"].tolist()[1:] == ["in_tunnel", "in_tunnel"]
    assert r.http.user_agent.tolist()[1] == "t"
    assert len(r.anomalies) == 0


def test_empty_lines_before_a_plain_connection(tmp_path: Path) -> None:
    # Not only in tunnels: a connection whose first bytes are CRLF is still HTTP.
    c = Conv()
    c.handshake()
    c.send(True, "PA", b"\r\n")
    c.send(True, "PA", b"GET / HTTP/1.1\r\nHost: h\r\n\r\n")
    c.send(False, "PA", b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nx")
    c.close()
    r = pcapan.analyze(write(tmp_path / "p.pcap", [c]))
    assert r.connections.service.tolist() == ["http"]
    assert r.http[["method", "uri", "status_code"]].values.tolist() == [["GET", "/", 200]]
