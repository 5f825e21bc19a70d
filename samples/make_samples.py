#!/usr/bin/env python3
"""Make the sample captures in ``samples/`` from real traffic on loopback.

Run as root:  ``python samples/make_samples.py``

What it does (see samples/README.md for what each capture contains):

* creates a private network namespace ``pcapan-samples-<pid>`` whose loopback has MTU 1500 and
  GSO limited to one segment, so captures show ordinary 1448-byte TCP segments instead of the
  64 KiB super-packets of the host's loopback, and so no other traffic can leak into a capture;
* re-executes itself inside that namespace (``--inside``), where it writes a docroot with files
  of known sizes and fixed mtimes, a self-signed certificate for ``pcapan.test`` (openssl) and an
  nginx config into a temporary directory, starts nginx, and for each scenario starts tcpdump
  (or tshark), waits until it is listening, runs real clients (curl, openssl s_client, small
  Python socket clients), stops the capture with SIGINT and checks nothing was dropped;
  the HTTP feature scenarios also run small Python servers (chunked responses with trailers,
  Expect: 100-continue / 417, a WebSocket 101 / 426, a CONNECT proxy) as threads of this
  process, so they live in the namespace and stop with it;
* the TLS feature scenarios (``tls-*``) run one ``openssl s_server`` per case on its own port
  and connect to it with ``openssl s_client`` (and Python's ssl module), each with its own
  SNI; every such capture is made in the temporary directory, read back with tshark and
  compared with what the scenario means to produce, and only then moved to the output
  directory, its connections' facts written to ``tls-facts.json``;
* derives ``lossy.pcap`` from ``http-keepalive.pcap`` by rewriting whole pcap records (drop,
  swap, duplicate) and writes the exact edits to ``lossy.edits.json``;
* removes the namespace (killing anything still running in it) and prints
  ``tshark -r X -q -z conv,tcp`` for every capture;
* the RTT scenarios (``rtt-*``) run from the host namespace instead: they build three
  namespaces ``pcapan-rtt-<pid>-client``/``-router``/``-server`` joined by veth pairs
  (10.99.1.0/24 and 10.99.2.0/24, MTU 1500, offloads off), run a delay line in the router
  namespace (this script with ``--rtt-forwarder``: frames held 10 ms each way between the
  client and the capture point, 25 ms each way between the capture point and the server,
  since this kernel has no netem), capture with tcpdump in the router between the two holds,
  check every connection's handshake and ACK round trips (tshark, tcptrace) against the
  configured delays, and write ``rtt-facts.json``; everything is removed again at the end
  (and namespaces left by an earlier run that was killed are removed at the start).

Every process started is stopped again on success, on error and on SIGINT/SIGTERM. The scenario
(ports, requests, files, order) is fixed; timestamps, client ports, TCP sequence numbers, keys
and the Date header naturally differ from run to run.

``--only NAME[,NAME...]`` runs only the named scenarios (see ``SCENARIOS``) and writes only their
captures (and, for TLS scenarios, their entries of ``tls-facts.json``, for RTT scenarios those of
``rtt-facts.json``); everything else in the output directory is left alone.

``--no-netns`` runs on the host loopback instead (not root-free: tcpdump still needs it); the
captures then have host-loopback segment sizes and are not the committed ones.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import hashlib
import json
import os
import queue
import re
import shutil
import signal
import socket
import ssl
import struct
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from netlab import (  # noqa: E402  (samples/netlab.py: shared with make_tls_keys, make_real_capture)
    kill_and_delete,
    netns_list,
    nginx_conf_head,
    remove_stale,
    run_in_new_netns,
)
from netlab import make_cert as _make_cert  # noqa: E402

HERE = Path(__file__).resolve().parent

# --- the scenario (fixed) --------------------------------------------------------------------
# One port per scenario, so a capture filtered on its port can only contain that scenario.
PORT_KEEPALIVE = 18080
PORT_CLOSE = 18081
PORT_PIPELINED = 18082
PORT_IPV6 = 18086
PORT_SLL = 18087
PORT_RST = 18088
PORT_CLOSED = 18089  # nothing listens here: SYN -> RST (Zeek REJ)
PORT_TLS = 18443
TLS_NAME = "pcapan.test"
# HTTP feature scenarios (see samples/README.md, one capture each).
PORT_METHODS = 18090  # nginx: OPTIONS, HEAD, PUT, DELETE, PATCH, PURGE, TRACE, OPTIONS *
PORT_VHOSTS = 18091  # nginx: server_name a.pcapan.test and b.pcapan.test on one port
PORT_CHUNKED = 18092  # Python server: chunked response with extensions and trailers
PORT_EXPECT = 18093  # Python server: Expect: 100-continue accepted (100) and rejected (417)
PORT_UPGRADE = 18094  # Python server: WebSocket 101 and 426 Upgrade Required
PORT_H2C = 18095  # nginx (no h2c): curl --http2 upgrade attempt answered in HTTP/1.1
PORT_PROXY = 18096  # Python CONNECT proxy (the only port captured for http-connect.pcap)
PORT_TLS_TUNNEL = 18444  # nginx TLS (pcapan.test) reached through the proxy, not captured
PROXY_FORBIDDEN_PORT = 25  # CONNECT to this port is refused with 403
# plain-h2c.pcap (issue 13): cleartext HTTP/2. nginx serves h2c with prior knowledge only (listen
# ... http2 on a plain port); hypercorn (pip install hypercorn) also answers Upgrade: h2c.
PORT_H2_PRIOR = 18097  # nginx, listen http2: curl --http2-prior-knowledge
PORT_H2_UPGRADE = 18098  # hypercorn: curl --http2 (Upgrade: h2c, 101, then h2)
H2_BODY = b"hello over h2c from hypercorn\n"
# plain-http-in-connect.pcap (issue 13): plain HTTP inside a CONNECT tunnel to nginx
# (PORT_KEEPALIVE), the tunnel's first bytes a stray LF (RFC 9112 2.2), and a CRLF between the
# two keep-alive requests.
PORT_PROXY_PLAIN = 18099
# http-reuse.pcap (issue 18): nginx; one curl process keeps a keep-alive connection busy with
# back-to-back requests while another opens new connections (not missed reuse: the busy one is
# idle only between its owner's requests), then a connection left idle and a new one beside it
# (missed reuse).
PORT_REUSE = 18100
REUSE_BUSY_REQUESTS = 100  # on the busy connection, one every 10 ms (curl --rate 100/s): 1 s
REUSE_BUSY_RATE = "100/s"
REUSE_NEW_CONNECTIONS = 8  # one curl process each, during the busy second
REUSE_IDLE_WAIT_S = 0.5  # the idle connection's idle time before the new one opens
# http-credentials.pcap (issue 18): credentials over plain HTTP to nginx (curl -u --basic, a
# Digest Authorization header, a Cookie).
PORT_CREDENTIALS = 18101
VHOSTS = ("a.pcapan.test", "b.pcapan.test")

# Served files: name -> size in bytes. large.bin spans ~91 full-size segments.
FILES = {
    "index.html": 0,  # size follows from the fixed text below
    "small.txt": 1000,
    "medium.bin": 20000,
    "large.bin": 131072,
}
INDEX_HTML = (
    "<!DOCTYPE html>\n<html><head><title>pcapan sample</title></head>\n"
    "<body><h1>pcapan sample page</h1><p>Served by nginx on loopback for the pcapan sample "
    "captures.</p></body></html>\n"
)
# All files get this mtime, so Last-Modified and ETag are the same on every run.
FIXED_MTIME = 1704067200  # 2024-01-01T00:00:00Z

# Lossy edits, counted among the full-size server->client data segments of the first
# connection of http-keepalive.pcap (1-based, in capture order).
LOSSY_DROP_NTH = 10
LOSSY_SWAP_FROM_NTH = 25  # first frame pair at/after this one that are adjacent in the capture
LOSSY_DUP_NTH = 40
LOSSY_DUP_DELAY_FRAMES = 2  # the copy is inserted this many frames after the original

# Index pages of the two virtual hosts (different content and sizes).
VHOST_INDEX = {
    "a.pcapan.test": "<!DOCTYPE html>\n<html><head><title>site A</title></head>\n"
    "<body><h1>a.pcapan.test</h1></body></html>\n",
    "b.pcapan.test": "<!DOCTYPE html>\n<html><head><title>site B</title></head>\n"
    "<body><h1>b.pcapan.test</h1><p>The second virtual host on the same "
    "port.</p></body></html>\n",
}

# http-chunked.pcap: the chunked response of GET /chunked, as (chunk extension, data) pairs,
# and the request body chunks the Python client sends (POST /upload).
CHUNK_LINE = b"pcapan chunked sample, line of 48 bytes........\n"
CHUNKED_RESPONSE = [
    (b';name="first"', (CHUNK_LINE * 2)[:64]),
    (b"", (CHUNK_LINE * 21)[:1000]),
    (b";a=1;b", b"last chunk data\n"),
]
CHUNKED_TRAILER_NAMES = ("X-Checksum", "X-Chunk-Count")
CHUNKED_REQUEST = [(b";part=1", b"a" * 256), (b"", b"b" * 32), (b"", b"c" * 7)]
CURL_UPLOAD_SIZE = 3000  # curl --data-binary with Transfer-Encoding: chunked (one chunk)
EXPECT_BODY_SIZE = 4000  # body announced with Expect: 100-continue
# The fixed Sec-WebSocket-Key of RFC 6455 section 1.3 and its accept value.
WS_KEY = "dGhlIHNhbXBsZSBub25jZQ=="
WS_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
WS_MESSAGES = [b"hello pcapan", b"second message"]
# Client frame masks: fixed so the capture is the same on every run (a real client draws them at
# random); the first is the one of the RFC 6455 section 5.7 examples. The last masks the close.
WS_MASKS = [b"\x37\xfa\x21\x3d", b"\x5a\x3c\x91\x0e", b"\xc4\x7e\x12\x88"]

CAPTURES = [
    "http-keepalive.pcap",
    "http-keepalive.pcapng",
    "http-close.pcap",
    "http-pipelined.pcap",
    "tls.pcap",
    "ipv6-http.pcap",
    "http-sll2.pcap",  # or http-sll.pcap when tcpdump cannot do LINUX_SLL2
    "lossy.pcap",
    "rst.pcap",
    "http-methods.pcap",
    "http-vhosts.pcap",
    "http-chunked.pcap",
    "http-expect.pcap",
    "http-upgrade.pcap",
    "http-connect.pcap",
    "plain-http-in-connect.pcap",
    "plain-h2c.pcap",
    # TLS feature captures (issue 4); their facts are in tls-facts.json
    "tls-versions.pcap",
    "tls-hrr.pcap",
    "tls-resume.pcap",
    "tls-0rtt.pcap",
    "tls-alpn.pcap",
    "tls-alert.pcap",
    "tls-big-hello.pcap",
    # RTT captures through a delay line of known delays; their facts are in rtt-facts.json
    "rtt-http.pcap",
    "rtt-tls.pcap",
    "rtt-pipelined.pcap",
    # missed reuse (issue 18)
    "http-reuse.pcap",
    # credentials over plain HTTP (issue 18)
    "http-credentials.pcap",
]

CMD_TIMEOUT_S = 60


def log(msg: str) -> None:
    print(f"[make_samples] {msg}", file=sys.stderr, flush=True)


# --- process bookkeeping ---------------------------------------------------------------------
class Procs:
    """Every long-running process we start, so that all of them are stopped on any exit."""

    def __init__(self) -> None:
        self.procs: list[subprocess.Popen] = []

    def start(self, cmd: list[str], **kw) -> subprocess.Popen:
        log("start: " + " ".join(cmd))
        p = subprocess.Popen(cmd, **kw)
        self.procs.append(p)
        return p

    def stop_all(self) -> None:
        for p in reversed(self.procs):
            if p.poll() is None:
                log(f"stopping pid {p.pid} ({p.args[0]})")
                p.terminate()
                try:
                    p.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait(timeout=5)


def _raise_on_sigterm(signum, frame):
    raise SystemExit(f"terminated by signal {signum}")


def run(
    cmd: list[str], *, input: bytes | None = None, check: bool = True
) -> subprocess.CompletedProcess:
    log("run: " + " ".join(cmd))
    return subprocess.run(cmd, input=input, capture_output=True, timeout=CMD_TIMEOUT_S, check=check)


# --- capture ---------------------------------------------------------------------------------
@contextlib.contextmanager
def capture(
    procs: Procs,
    path: Path,
    bpf: str,
    *,
    iface: str = "lo",
    linktype: str | None = None,
    tool: str = "tcpdump",
    netns: str | None = None,
) -> Iterator[None]:
    """Capture while the body runs: start, wait until listening, yield, SIGINT, check.
    With ``netns`` the capture tool runs in that network namespace (``ip netns exec``)."""
    if path.exists():
        path.unlink()
    if tool == "tcpdump":
        # --immediate-mode: without it libpcap's TPACKET_V3 ring hands packets over only when
        # a block fills or its 1 s timeout expires, and a SIGINT before that loses them.
        # -B 32768 (KiB): the default 2 MiB ring overflows when loopback bursts 128 KiB.
        cmd = [
            "tcpdump",
            "-i",
            iface,
            "-w",
            str(path),
            "-s",
            "0",
            "-n",
            "-Z",
            "root",
            "--immediate-mode",
            "-B",
            "32768",
        ]
        if linktype:
            cmd += ["-y", linktype]
        cmd.append(bpf)
        ready = "listening on"
    elif tool == "tshark":
        cmd = ["tshark", "-i", iface, "-w", str(path), "-F", "pcapng", "-B", "32", "-f", bpf]
        ready = "Capturing on"
    else:
        raise ValueError(tool)
    if netns:
        cmd = ["ip", "netns", "exec", netns, *cmd]  # ip execs the tool: same pid, signals
    p = procs.start(
        cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )
    lines: queue.Queue[str | None] = queue.Queue()
    seen: list[str] = []

    def pump() -> None:
        assert p.stderr is not None
        for line in p.stderr:
            lines.put(line)
        lines.put(None)

    t = threading.Thread(target=pump, daemon=True)
    t.start()
    deadline = time.monotonic() + 15
    while True:
        try:
            line = lines.get(timeout=max(0.0, deadline - time.monotonic()))
        except queue.Empty:
            raise RuntimeError(f"{tool} did not start listening: {''.join(seen)}") from None
        if line is None:
            raise RuntimeError(f"{tool} exited before listening: {''.join(seen)}")
        seen.append(line)
        if ready in line:
            break
    # The "listening" line is printed after the socket is bound and the filter attached; a
    # short pause more costs nothing and covers any ring set-up still in progress.
    time.sleep(0.3)
    yield
    # Let the last FIN/ACKs of the clients (already exited) reach the capture, and let any
    # ring-buffer block time out (dumpcap has no immediate mode switch), then stop it.
    time.sleep(1.5)
    p.send_signal(signal.SIGINT)
    p.wait(timeout=15)
    t.join(timeout=5)
    while True:
        try:
            line = lines.get_nowait()
        except queue.Empty:
            break
        if line is not None:
            seen.append(line)
    text = "".join(seen)
    if p.returncode != 0:
        raise RuntimeError(f"{tool} failed ({p.returncode}): {text}")
    m = re.search(r"(\d+) packets? dropped by kernel", text)
    if m and int(m.group(1)) != 0:
        raise RuntimeError(f"{tool} dropped packets: {text}")
    summary = [ln.strip() for ln in seen if "captured" in ln]
    log(f"{path.name}: {'; '.join(summary) or 'done'}")
    if not path.exists() or path.stat().st_size == 0:
        raise RuntimeError(f"{tool} wrote nothing to {path}")


def pcap_linktype(path: Path) -> int:
    head = path.read_bytes()[:24]
    magic = head[:4]
    endian = "<" if magic in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1") else ">"
    return struct.unpack(endian + "I", head[20:24])[0]


# --- servers ---------------------------------------------------------------------------------
def make_docroot(root: Path) -> dict[str, int]:
    root.mkdir(parents=True)
    sizes = {}
    for name, size in FILES.items():
        if name == "index.html":
            data = INDEX_HTML.encode()
        elif name.endswith(".txt"):
            line = b"pcapan sample text, line of 50 bytes............\n"
            data = (line * (size // len(line) + 1))[:size]
        else:  # deterministic pseudo-random bytes (SHA-256 in counter mode)
            chunks = []
            n = 0
            while sum(map(len, chunks)) < size:
                chunks.append(hashlib.sha256(f"{name}:{n}".encode()).digest())
                n += 1
            data = b"".join(chunks)[:size]
        (root / name).write_bytes(data)
        os.utime(root / name, (FIXED_MTIME, FIXED_MTIME))
        sizes[name] = len(data)
    return sizes


def make_vhost_docroots(tmp: Path) -> None:
    for name, text in VHOST_INDEX.items():
        root = tmp / ("www-" + name)
        root.mkdir(parents=True)
        (root / "index.html").write_text(text)
        os.utime(root / "index.html", (FIXED_MTIME, FIXED_MTIME))


def make_cert(tmp: Path) -> tuple[Path, Path]:
    return _make_cert(tmp, [TLS_NAME], log)


def nginx_conf(tmp: Path, docroot: Path, key: Path, cert: Path) -> Path:
    plain = [
        f"127.0.0.1:{p}"
        for p in (
            PORT_KEEPALIVE,
            PORT_CLOSE,
            PORT_PIPELINED,
            PORT_SLL,
            PORT_RST,
            PORT_METHODS,
            PORT_H2C,
            PORT_REUSE,
            PORT_CREDENTIALS,
        )
    ]
    plain.append(f"127.0.0.1:{PORT_H2_PRIOR} http2")  # h2c with prior knowledge
    plain.append(f"[::1]:{PORT_IPV6}")
    listens = "\n".join(f"        listen {a};" for a in plain)
    # Name-based virtual hosts: the first one is also the port's default server.
    vhosts = "".join(
        f"""
    server {{
        listen 127.0.0.1:{PORT_VHOSTS};
        server_name {name};
        root {docroot.parent / ("www-" + name)};
    }}"""
        for name in VHOSTS
    )
    head = nginx_conf_head(
        tmp, error_level="info", worker_connections=64, access_log=f"{tmp}/access.log"
    )
    conf = f"""{head}    types {{ text/html html; text/plain txt; application/octet-stream bin; }}
    default_type application/octet-stream;
    server_tokens off;
    keepalive_timeout 30s;
    server {{
{listens}
        server_name localhost;
        root {docroot};
    }}{vhosts}
    server {{
        listen 127.0.0.1:{PORT_TLS} ssl;
        listen 127.0.0.1:{PORT_TLS_TUNNEL} ssl;
        server_name {TLS_NAME};
        root {docroot};
        ssl_certificate {cert};
        ssl_certificate_key {key};
        ssl_protocols TLSv1.2 TLSv1.3;
        ssl_session_cache shared:SSL:1m;
        ssl_session_timeout 10m;
        ssl_session_tickets on;
    }}
}}
"""
    path = tmp / "nginx.conf"
    path.write_text(conf)
    return path


def wait_port(host: str, port: int, timeout: float = 10.0) -> None:
    fam = socket.AF_INET6 if ":" in host else socket.AF_INET
    deadline = time.monotonic() + timeout
    while True:
        with socket.socket(fam, socket.SOCK_STREAM) as s:
            try:
                s.connect((host, port))
                return
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"nothing listening on {host}:{port}") from None
        time.sleep(0.1)


# --- Python servers and clients of the HTTP feature scenarios ----------------------------------
class SockReader:
    """Buffered reads from a socket: up to a separator, an exact number of bytes, or EOF."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buf = bytearray()

    def _fill(self) -> bool:
        data = self.sock.recv(65536)
        self.buf += data
        return bool(data)

    def until(self, sep: bytes) -> bytes | None:
        """Bytes up to and including ``sep``; None at EOF before the first byte."""
        while (i := self.buf.find(sep)) < 0:
            if not self._fill():
                if self.buf:
                    raise RuntimeError(f"EOF inside a message: {bytes(self.buf[:80])!r}")
                return None
        out = bytes(self.buf[: i + len(sep)])
        del self.buf[: i + len(sep)]
        return out

    def exact(self, n: int) -> bytes:
        while len(self.buf) < n:
            if not self._fill():
                raise RuntimeError(f"EOF after {len(self.buf)} of {n} bytes")
        out = bytes(self.buf[:n])
        del self.buf[:n]
        return out

    def rest(self) -> bytes:
        """Everything until the peer closes."""
        while self._fill():
            pass
        out = bytes(self.buf)
        self.buf.clear()
        return out


Head = tuple[str, dict[str, str]]  # start line, {lower-case field name: value}


def read_head(r: SockReader) -> Head | None:
    raw = r.until(b"\r\n\r\n")
    if raw is None:
        return None
    lines = raw[:-4].decode("latin-1").split("\r\n")
    fields = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        fields[name.strip().lower()] = value.strip()
    return lines[0], fields


def read_chunked(r: SockReader) -> tuple[bytes, int, list[str]]:
    """A chunked body: (decoded data, number of data chunks, trailer field names)."""
    data, count = bytearray(), 0
    while True:
        line = r.until(b"\r\n")
        if line is None:
            raise RuntimeError("EOF before a chunk size line")
        size = int(line.split(b";")[0].strip(), 16)
        if size == 0:
            break
        data += r.exact(size)
        if r.exact(2) != b"\r\n":
            raise RuntimeError("chunk data not followed by CRLF")
        count += 1
    trailers = []
    while (line := r.until(b"\r\n")) != b"\r\n":
        if line is None:
            raise RuntimeError("EOF inside the trailer section")
        trailers.append(line.split(b":")[0].decode("latin-1"))
    return bytes(data), count, trailers


def read_body(r: SockReader, fields: dict[str, str]) -> tuple[bytes, int | None]:
    """A request body by its framing: (data, chunk count or None when not chunked)."""
    if "chunked" in fields.get("transfer-encoding", "").lower():
        data, count, _ = read_chunked(r)
        return data, count
    return r.exact(int(fields.get("content-length", "0"))), None


def read_response(r: SockReader, method: str) -> tuple[int, dict[str, str], bytes]:
    """One final response (1xx skipped) framed by Content-Length; no body for HEAD."""
    while True:
        head = read_head(r)
        if head is None:
            raise RuntimeError(f"connection closed before the response to {method}")
        start, fields = head
        status = int(start.split(" ")[1])
        if status >= 200 or status == 101:
            break
    if method == "HEAD" or status in (101, 204, 304):
        return status, fields, b""
    if "chunked" in fields.get("transfer-encoding", "").lower():
        return status, fields, read_chunked(r)[0]
    return status, fields, r.exact(int(fields.get("content-length", "0")))


def response(status: int, reason: str, fields: list[str], body: bytes | None = b"") -> bytes:
    """A response head (no Date, so the bytes are the same on every run) and its body."""
    lines = [f"HTTP/1.1 {status} {reason}", "Server: pcapan-samples/1", *fields]
    if body is not None:
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + (body or b"")


def request(
    method: str,
    target: str,
    host: str,
    fields: Sequence[str] = (),
    body: bytes = b"",
    *,
    length: int | None = None,
) -> bytes:
    """A request head (+ body); Content-Length is ``length`` or the body's when there is one."""
    lines = [
        f"{method} {target} HTTP/1.1",
        f"Host: {host}",
        "User-Agent: pcapan-samples/1",
        "Accept: */*",
        *fields,
    ]
    if length is None and body:
        length = len(body)
    if length is not None:
        lines.append(f"Content-Length: {length}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


class PyServer:
    """A small TCP server in threads of this process (so inside the namespace, and nothing to
    kill afterwards): each connection runs ``handler(sock)`` in its own thread and is closed
    when the handler returns. Leaving the ``with`` block stops accepting, waits for the
    connection threads and raises the first error a handler had."""

    def __init__(self, name: str, port: int, handler) -> None:
        self.name, self.port, self.handler = name, port, handler
        self.stop = threading.Event()
        self.threads: list[threading.Thread] = []
        self.errors: list[BaseException] = []
        self.ls: socket.socket | None = None
        self.acceptor: threading.Thread | None = None

    def __enter__(self) -> PyServer:
        ls = self.ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        ls.bind(("127.0.0.1", self.port))
        ls.listen(16)
        ls.settimeout(0.1)  # the accept loop polls self.stop
        self.acceptor = threading.Thread(target=self._accept, name=self.name, daemon=True)
        self.acceptor.start()
        log(f"{self.name} listening on 127.0.0.1:{self.port}")
        return self

    def _accept(self) -> None:
        assert self.ls is not None
        while not self.stop.is_set():
            try:
                conn, _ = self.ls.accept()
            except TimeoutError:
                continue
            t = threading.Thread(target=self._serve, args=(conn,), daemon=True)
            self.threads.append(t)
            t.start()

    def _serve(self, conn: socket.socket) -> None:
        try:
            conn.settimeout(10)
            # Every write of the handlers is meant to be its own segment.
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self.handler(conn)
        except BaseException as e:  # reported by __exit__
            log(f"{self.name}: {e!r}")
            self.errors.append(e)
        finally:
            conn.close()

    def __exit__(self, exc_type, exc, tb) -> None:
        self.stop.set()
        if self.acceptor is not None:
            self.acceptor.join(timeout=5)
        for t in self.threads:
            t.join(timeout=10)
        if self.ls is not None:
            self.ls.close()
        alive = [t for t in self.threads if t.is_alive()]
        if exc_type is None and (self.errors or alive):
            raise RuntimeError(f"{self.name}: errors {self.errors!r}, {len(alive)} stuck")


def client_socket(port: int) -> socket.socket:
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s


def send_parts(s: socket.socket, parts: list[bytes]) -> None:
    """One write per part, a moment apart, so that each part is its own TCP segment."""
    for part in parts:
        s.sendall(part)
        time.sleep(0.02)


# http-methods.pcap: requests of the Python client on one connection to nginx, and what
# nginx 1.22 answers (static files only: every method but GET/HEAD is 405; TRACE's 405 closes).
PUT_BODY = b"pcapan sample PUT body line 32B\n" * 4  # 128 bytes
PATCH_BODY = b'{"op": "replace", "path": "/title", "value": "pcapan"}\n'
METHOD_REQUESTS: list[tuple[str, str, list[str], bytes, int]] = [
    ("OPTIONS", "/", [], b"", 405),
    ("HEAD", "/index.html", [], b"", 200),
    ("PUT", "/upload.txt", ["Content-Type: text/plain"], PUT_BODY, 405),
    ("DELETE", "/index.html", [], b"", 405),
    ("PATCH", "/index.html", ["Content-Type: application/json-patch+json"], PATCH_BODY, 405),
    ("PURGE", "/index.html", [], b"", 405),
    ("TRACE", "/", [], b"", 405),
]


def methods_client(port: int) -> None:
    host = f"127.0.0.1:{port}"
    got = []
    with client_socket(port) as s:
        r = SockReader(s)
        for method, target, fields, body, _ in METHOD_REQUESTS:
            s.sendall(request(method, target, host, fields, body))
            status, hdrs, data = read_response(r, method)
            got.append(
                (method, status, hdrs.get("content-length"), len(data), hdrs.get("connection"))
            )
        tail = r.rest()  # nginx closes after TRACE's 405
    log(f"methods: {got}")
    want = [m[4] for m in METHOD_REQUESTS]
    if [g[1] for g in got] != want or tail or got[-1][4] != "close":
        raise RuntimeError(f"methods: got {got}, tail {tail!r}; expected statuses {want}")
    if got[1] != ("HEAD", 200, str(len(INDEX_HTML)), 0, "keep-alive"):
        raise RuntimeError(f"HEAD: {got[1]}")


# http-chunked.pcap
def chunk_bytes(chunks: list[tuple[bytes, bytes]]) -> list[bytes]:
    return [f"{len(data):x}".encode() + ext + b"\r\n" + data + b"\r\n" for ext, data in chunks]


def chunked_body() -> bytes:
    return b"".join(data for _, data in CHUNKED_RESPONSE)


def chunked_trailer() -> bytes:
    digest = hashlib.sha256(chunked_body()).hexdigest()
    return (
        f"0\r\n{CHUNKED_TRAILER_NAMES[0]}: sha256={digest}\r\n"
        f"{CHUNKED_TRAILER_NAMES[1]}: {len(CHUNKED_RESPONSE)}\r\n\r\n"
    ).encode()


def chunked_handler(conn: socket.socket) -> None:
    """GET /chunked: a chunked response (head, each chunk, last-chunk + trailer: one write
    each); POST /upload: reads the body (chunked or not) and says what it got."""
    r = SockReader(conn)
    while (head := read_head(r)) is not None:
        start, fields = head
        method, target, _ = start.split(" ")
        if (method, target) == ("GET", "/chunked"):
            head_bytes = response(
                200,
                "OK",
                [
                    "Content-Type: text/plain",
                    "Transfer-Encoding: chunked",
                    f"Trailer: {', '.join(CHUNKED_TRAILER_NAMES)}",
                ],
                None,
            )
            send_parts(conn, [head_bytes, *chunk_bytes(CHUNKED_RESPONSE), chunked_trailer()])
        elif (method, target) == ("POST", "/upload"):
            data, count = read_body(r, fields)
            text = f"received {len(data)} bytes" + (f" in {count} chunks" if count else "")
            conn.sendall(response(200, "OK", ["Content-Type: text/plain"], (text + "\n").encode()))
        else:
            conn.sendall(response(404, "Not Found", ["Content-Type: text/plain"], b"no\n"))


def chunked_upload_client(port: int) -> None:
    """POST /upload with a chunked request body: head, 3 chunks, last-chunk; one write each."""
    head = request(
        "POST",
        "/upload",
        f"127.0.0.1:{port}",
        ["Content-Type: application/octet-stream", "Transfer-Encoding: chunked"],
    )
    with client_socket(port) as s:
        send_parts(s, [head, *chunk_bytes(CHUNKED_REQUEST), b"0\r\n\r\n"])
        r = SockReader(s)
        status, _, body = read_response(r, "POST")
        s.shutdown(socket.SHUT_WR)
        tail = r.rest()
    size = sum(len(d) for _, d in CHUNKED_REQUEST)
    want = f"received {size} bytes in {len(CHUNKED_REQUEST)} chunks\n".encode()
    log(f"chunked upload: {status} {body!r}")
    if (status, body, tail) != (200, want, b""):
        raise RuntimeError(f"chunked upload: {status} {body!r} {tail!r}")


# http-expect.pcap
def expect_handler(conn: socket.socket) -> None:
    """Expect: 100-continue on /reject -> 417 without reading the body (the client does not
    send it); elsewhere -> 100 Continue, then the body is read and 200 answered."""
    r = SockReader(conn)
    while (head := read_head(r)) is not None:
        start, fields = head
        _, target, _ = start.split(" ")
        if fields.get("expect", "").lower() == "100-continue":
            if target == "/reject":
                conn.sendall(
                    response(
                        417,
                        "Expectation Failed",
                        ["Content-Type: text/plain"],
                        b"uploads to /reject are refused\n",
                    )
                )
                continue
            conn.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")
        data, _ = read_body(r, fields)
        conn.sendall(
            response(
                200, "OK", ["Content-Type: text/plain"], f"received {len(data)} bytes\n".encode()
            )
        )


def expect_reject_client(port: int, body: bytes) -> None:
    """POST /reject with Expect: 100-continue -> 417, body never sent; then a plain POST."""
    host = f"127.0.0.1:{port}"
    with client_socket(port) as s:
        r = SockReader(s)
        s.sendall(
            request(
                "POST",
                "/reject",
                host,
                ["Content-Type: application/octet-stream", "Expect: 100-continue"],
                length=len(body),
            )
        )
        first, _, text1 = read_response(r, "POST")
        s.sendall(request("POST", "/upload", host, ["Content-Type: text/plain"], PUT_BODY))
        second, _, text2 = read_response(r, "POST")
        s.shutdown(socket.SHUT_WR)
        tail = r.rest()
    log(f"expect reject client: {first} {text1!r}, {second} {text2!r}")
    if (first, second, text2, tail) != (
        417,
        200,
        f"received {len(PUT_BODY)} bytes\n".encode(),
        b"",
    ):
        raise RuntimeError(f"expect reject client: {first} {second} {text2!r} {tail!r}")


# http-upgrade.pcap
def ws_accept(key: str) -> str:
    import base64

    return base64.b64encode(hashlib.sha1((key + WS_GUID).encode()).digest()).decode()


def ws_frame(opcode: int, payload: bytes, mask: bytes | None) -> bytes:
    """One final frame (FIN set), payload < 126 bytes; masked when ``mask`` (client frames)."""
    if len(payload) >= 126:
        raise ValueError("short frames only")
    if mask is None:
        return bytes([0x80 | opcode, len(payload)]) + payload
    masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    return bytes([0x80 | opcode, 0x80 | len(payload)]) + mask + masked


def ws_read(r: SockReader) -> tuple[int, bytes, bool]:
    """(opcode, unmasked payload, was masked) of one frame of < 126 bytes."""
    b0, b1 = r.exact(2)
    n, masked = b1 & 0x7F, bool(b1 & 0x80)
    if not b0 & 0x80 or n >= 126:
        raise RuntimeError(f"unexpected frame header {b0:#x} {b1:#x}")
    mask = r.exact(4) if masked else b"\0\0\0\0"
    payload = bytes(b ^ mask[i % 4] for i, b in enumerate(r.exact(n)))
    return b0 & 0x0F, payload, masked


def upgrade_handler(conn: socket.socket) -> None:
    """GET /ws: with Upgrade: websocket -> 101 (RFC 6455 handshake), then echo text frames
    until the client's close frame, answer it and close; without -> 426 with Upgrade."""
    r = SockReader(conn)
    while (head := read_head(r)) is not None:
        start, fields = head
        _, target, _ = start.split(" ")
        tokens = {t.strip().lower() for t in fields.get("connection", "").split(",")}
        if target != "/ws":
            conn.sendall(response(404, "Not Found", ["Content-Type: text/plain"], b"no\n"))
            continue
        if fields.get("upgrade", "").lower() != "websocket" or "upgrade" not in tokens:
            conn.sendall(
                response(
                    426,
                    "Upgrade Required",
                    [
                        "Upgrade: websocket",
                        "Connection: Upgrade",
                        "Sec-WebSocket-Version: 13",
                        "Content-Type: text/plain",
                    ],
                    b"this resource needs a WebSocket upgrade\n",
                )
            )
            continue
        conn.sendall(
            response(
                101,
                "Switching Protocols",
                [
                    "Upgrade: websocket",
                    "Connection: Upgrade",
                    f"Sec-WebSocket-Accept: {ws_accept(fields['sec-websocket-key'])}",
                ],
                None,
            )
        )
        while True:
            opcode, payload, masked = ws_read(r)
            if not masked:
                raise RuntimeError("client frame not masked")
            if opcode == 0x1:
                conn.sendall(ws_frame(0x1, payload, None))
            elif opcode == 0x8:
                conn.sendall(ws_frame(0x8, payload, None))
                return  # the server closes the TCP connection first (RFC 6455 7.1.1)
            else:
                raise RuntimeError(f"unexpected opcode {opcode}")


def websocket_client(port: int) -> None:
    host = f"127.0.0.1:{port}"
    with client_socket(port) as s:
        r = SockReader(s)
        s.sendall(
            request(
                "GET",
                "/ws",
                host,
                [
                    "Upgrade: websocket",
                    "Connection: Upgrade",
                    f"Sec-WebSocket-Key: {WS_KEY}",
                    "Sec-WebSocket-Version: 13",
                ],
            )
        )
        head = read_head(r)
        if head is None or not head[0].startswith("HTTP/1.1 101 "):
            raise RuntimeError(f"websocket handshake: {head}")
        if head[1].get("sec-websocket-accept") != ws_accept(WS_KEY):
            raise RuntimeError(f"bad Sec-WebSocket-Accept: {head[1]}")
        for msg, mask in zip(WS_MESSAGES, WS_MASKS, strict=False):
            s.sendall(ws_frame(0x1, msg, mask))
            got = ws_read(r)
            if got != (0x1, msg, False):
                raise RuntimeError(f"websocket echo: {got}")
        close = struct.pack("!H", 1000)
        s.sendall(ws_frame(0x8, close, WS_MASKS[-1]))
        got = ws_read(r)
        tail = r.rest()
    log(f"websocket: 101, {len(WS_MESSAGES)} messages echoed, close {got}")
    if got != (0x8, close, False) or tail:
        raise RuntimeError(f"websocket close: {got} {tail!r}")


# http-connect.pcap
def relay(a: socket.socket, b: socket.socket) -> None:
    """Copy bytes both ways until both sides have closed; a FIN is passed on as SHUT_WR."""
    import select

    peer = {a: b, b: a}
    live = {a, b}
    while live:
        readable, _, _ = select.select(list(live), [], [], 10)
        if not readable:
            raise RuntimeError("tunnel idle for 10 s")
        for s in readable:
            data = s.recv(65536)
            if data:
                peer[s].sendall(data)
            else:
                live.discard(s)
                peer[s].shutdown(socket.SHUT_WR)


def proxy_handler(conn: socket.socket) -> None:
    """A CONNECT-only forward proxy: pcapan.test:PORT_TLS_TUNNEL and pcapan.test:PORT_KEEPALIVE
    (-> 127.0.0.1) are tunnelled, anything else is refused with 403 and the connection closed."""
    r = SockReader(conn)
    head = read_head(r)
    if head is None:
        return
    start, _ = head
    method, target, _ = start.split(" ")
    host, _, port = target.rpartition(":")
    if method != "CONNECT":
        conn.sendall(
            response(405, "Method Not Allowed", ["Allow: CONNECT", "Connection: close"], b"")
        )
        return
    if (host, port) not in ((TLS_NAME, str(PORT_TLS_TUNNEL)), (TLS_NAME, str(PORT_KEEPALIVE))):
        conn.sendall(
            response(
                403,
                "Forbidden",
                ["Content-Type: text/plain", "Connection: close"],
                f"CONNECT to {target} is not allowed\n".encode(),
            )
        )
        return
    with socket.create_connection(("127.0.0.1", int(port)), timeout=10) as upstream:
        conn.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
        if r.buf:  # anything the client sent before our answer belongs to the tunnel
            upstream.sendall(bytes(r.buf))
            r.buf.clear()
        relay(conn, upstream)


# --- clients ---------------------------------------------------------------------------------
CURL_W = "%{http_code} %{num_connects} %{size_download} %{url_effective}\\n"


def curl(urls: list[str], *extra: str) -> list[tuple[int, int, int, str]]:
    """Run one curl process over ``urls``; return (status, new connections, size, url)."""
    cmd = ["curl", "-sS", "--max-time", "20", "-w", CURL_W, *extra]
    for u in urls:
        cmd += [u, "-o", "/dev/null"]
    return _curl_rows(cmd, len(urls))


def _curl_rows(cmd: list[str], transfers: int) -> list[tuple[int, int, int, str]]:
    """Run curl and parse its ``CURL_W`` lines; fail unless it made ``transfers`` transfers."""
    out = run(cmd).stdout.decode()
    rows = []
    for line in out.splitlines():
        code, nconn, size, url = line.split(" ", 3)
        rows.append((int(code), int(nconn), int(size), url))
    log(f"curl: {rows}")
    if len(rows) != transfers:
        raise RuntimeError(f"curl did {len(rows)} transfers, expected {transfers}")
    return rows


def curl_next(*segments: list[str]) -> list[tuple[int, int, int, str]]:
    """One curl process, one transfer per segment (``--next`` between them, so each has its
    own options but the connection cache is shared); same rows as ``curl``."""
    cmd = ["curl"]
    for i, seg in enumerate(segments):
        if i:
            cmd.append("--next")
        cmd += ["-sS", "--max-time", "20", "-w", CURL_W, *seg, "-o", "/dev/null"]
    return _curl_rows(cmd, len(segments))


def read_http_responses(data: bytes) -> list[tuple[int, int]]:
    """Split concatenated HTTP/1.1 responses with Content-Length; return (status, body size)."""
    out = []
    while data:
        head, sep, rest = data.partition(b"\r\n\r\n")
        if not sep:
            raise RuntimeError(f"truncated response head: {data[:80]!r}")
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1])
        length = 0
        for h in lines[1:]:
            k, _, v = h.partition(":")
            if k.strip().lower() == "content-length":
                length = int(v)
        out.append((status, length))
        data = rest[length:]
    return out


def http_request(path: str, host: str, *, close: bool = False) -> bytes:
    lines = [f"GET {path} HTTP/1.1", f"Host: {host}", "User-Agent: pcapan-samples/1", "Accept: */*"]
    if close:
        lines.append("Connection: close")
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def pipelined_client(port: int, addr: str = "127.0.0.1") -> None:
    host = f"{addr}:{port}"
    reqs = (
        http_request("/index.html", host)
        + http_request("/small.txt", host)
        + http_request("/medium.bin", host, close=True)
    )
    with socket.create_connection((addr, port), timeout=10) as s:
        s.sendall(reqs)  # one write, one segment: three requests back to back
        buf = bytearray()
        while chunk := s.recv(65536):
            buf += chunk
    got = read_http_responses(bytes(buf))
    log(f"pipelined responses: {got}")
    want = [(200, len(INDEX_HTML)), (200, FILES["small.txt"]), (200, FILES["medium.bin"])]
    if got != want:
        raise RuntimeError(f"pipelined client got {got}, expected {want}")


def refused_client(port: int) -> None:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=5).close()
    except ConnectionRefusedError:
        log(f"connection to {port} refused, as intended")
        return
    raise RuntimeError(f"something listens on {port}")


def reset_client(port: int, read_bytes: int = 16384) -> None:
    """GET /large.bin with a tiny receive buffer, read a little, then abort with RST."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        # Small receive window: the server is still sending when we abort.
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        s.settimeout(10)
        s.connect(("127.0.0.1", port))
        s.sendall(http_request("/large.bin", f"127.0.0.1:{port}"))
        got = 0
        while got < read_bytes:
            chunk = s.recv(4096)
            if not chunk:
                raise RuntimeError("server closed before the reset")
            got += len(chunk)
        time.sleep(0.2)  # let the server refill the window
        # SO_LINGER with timeout 0: close() sends RST instead of FIN.
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        log(f"reset client: read {got} bytes of {FILES['large.bin']}, aborting")
    finally:
        s.close()


def s_client(port: int, sess_flag: str, sess_file: Path, *extra: str) -> str:
    req = http_request("/index.html", TLS_NAME, close=True)
    cmd = [
        "openssl",
        "s_client",
        "-connect",
        f"127.0.0.1:{port}",
        "-servername",
        TLS_NAME,
        "-tls1_2",
        "-alpn",
        "http/1.1",
        "-ign_eof",
        sess_flag,
        str(sess_file),
        *extra,
    ]
    out = run(cmd, input=req).stdout.decode("latin-1")
    reuse = re.search(r"^(New|Reused), (TLSv[\d.]+), Cipher is (\S+)", out, re.M)
    alpn = re.search(r"^ALPN protocol: (\S+)", out, re.M)
    if not reuse or "HTTP/1.1 200 OK" not in out:
        raise RuntimeError(f"s_client failed:\n{out}")
    summary = f"{reuse.group(1)} {reuse.group(2)} {reuse.group(3)} alpn={alpn and alpn.group(1)}"
    log(f"s_client {' '.join(extra)} {sess_flag}: {summary}")
    return reuse.group(1)


# --- scenarios -------------------------------------------------------------------------------
def sc_keepalive(procs: Procs, out: Path) -> None:
    base = f"http://127.0.0.1:{PORT_KEEPALIVE}"
    bpf = f"tcp port {PORT_KEEPALIVE}"
    # tcpdump and tshark capture the same traffic side by side: .pcap and a real dumpcap .pcapng
    with (
        capture(procs, out / "http-keepalive.pcap", bpf),
        capture(procs, out / "http-keepalive.pcapng", bpf, tool="tshark"),
    ):
        r1 = curl(
            [f"{base}/index.html", f"{base}/small.txt", f"{base}/large.bin", f"{base}/medium.bin"],
            "--http1.1",
        )
        r2 = curl([f"{base}/small.txt", f"{base}/index.html"], "--http1.1")
    for rows in (r1, r2):
        if [r[1] for r in rows] != [1] + [0] * (len(rows) - 1):
            raise RuntimeError(f"curl did not reuse its connection: {rows}")
        if any(r[0] != 200 for r in rows):
            raise RuntimeError(f"unexpected status: {rows}")
    (out / "http-keepalive.pcapng").chmod(0o644)  # dumpcap creates it 0600
    same_packets(out / "http-keepalive.pcap", out / "http-keepalive.pcapng")


def sc_close(procs: Procs, out: Path) -> None:
    base = f"http://127.0.0.1:{PORT_CLOSE}"
    with capture(procs, out / "http-close.pcap", f"tcp port {PORT_CLOSE}"):
        r1 = curl(
            [f"{base}/index.html", f"{base}/small.txt", f"{base}/missing.html"],
            "--http1.1",
            "-H",
            "Connection: close",
        )
        r2 = curl([f"{base}/medium.bin"], "--http1.0")
    if [r[0] for r in r1 + r2] != [200, 200, 404, 200] or any(r[1] != 1 for r in r1 + r2):
        raise RuntimeError(f"unexpected close scenario: {r1 + r2}")


def sc_reuse(procs: Procs, out: Path) -> None:
    """http-reuse.pcap: what missed reuse must and must not count (issue 18).

    1. Busy: one curl process sends REUSE_BUSY_REQUESTS GETs on one keep-alive connection, one
       every 10 ms (``--rate``); meanwhile REUSE_NEW_CONNECTIONS other curl processes open a new
       connection each (every other one with ``Connection: close``). The busy connection is
       idle only in the ~10 ms between its owner's requests: no other process could use it.
    2. Idle: a Python client's keep-alive connection answers one GET and stays open;
       REUSE_IDLE_WAIT_S later a second connection to the same server opens and sends a GET,
       then both close. That one is missed reuse.
    """
    base = f"http://127.0.0.1:{PORT_REUSE}"
    host = f"127.0.0.1:{PORT_REUSE}"
    busy: list[tuple[int, int, int, str]] = []
    new: list[tuple[int, int, int, str]] = []
    with capture(procs, out / "http-reuse.pcap", f"tcp port {PORT_REUSE}"):
        owner = threading.Thread(
            target=lambda: busy.extend(
                curl(
                    [f"{base}/small.txt"] * REUSE_BUSY_REQUESTS,
                    "--http1.1",
                    "--rate",
                    REUSE_BUSY_RATE,
                )
            )
        )
        owner.start()
        time.sleep(0.2)  # the busy connection is open and in its rhythm
        for k in range(REUSE_NEW_CONNECTIONS):
            extra = ["-H", "Connection: close"] if k % 2 else []
            new += curl([f"{base}/index.html"], "--http1.1", *extra)
            time.sleep(0.02)
        owner.join()
        time.sleep(0.3)
        a = client_socket(PORT_REUSE)
        a.sendall(http_request("/small.txt", host))
        status_a = read_response(SockReader(a), "GET")[0]
        time.sleep(REUSE_IDLE_WAIT_S)
        b = client_socket(PORT_REUSE)
        b.sendall(http_request("/index.html", host))
        status_b = read_response(SockReader(b), "GET")[0]
        b.close()
        time.sleep(0.1)
        a.close()
    if [r[1] for r in busy] != [1] + [0] * (REUSE_BUSY_REQUESTS - 1):
        raise RuntimeError(f"the busy curl did not keep one connection: {busy}")
    if any(r[1] != 1 for r in new) or any(r[0] != 200 for r in busy + new):
        raise RuntimeError(f"unexpected reuse scenario: {new}")
    if (status_a, status_b) != (200, 200):
        raise RuntimeError(f"unexpected statuses {status_a}, {status_b}")


def sc_credentials(procs: Procs, out: Path) -> None:
    """http-credentials.pcap: credentials in the clear (issue 18). curl sends Basic credentials
    (-u --basic), a Digest Authorization header (curl only answers a Digest challenge, which
    nginx's static server never sends, so the header is given with -H: the bytes a Digest
    client sends after the challenge) and a Cookie (-b). nginx serves the file to all three."""
    url = f"http://127.0.0.1:{PORT_CREDENTIALS}/small.txt"
    digest = (
        'Authorization: Digest username="user", realm="pcapan", nonce="dcd98b7102dd2f0e", '
        'uri="/small.txt", response="6629fae49393a05397450978507c4ef1"'
    )
    with capture(procs, out / "http-credentials.pcap", f"tcp port {PORT_CREDENTIALS}"):
        rows = curl([url], "--http1.1", "--basic", "-u", "user:secret")
        rows += curl([url], "--http1.1", "-H", digest)
        rows += curl([url], "--http1.1", "-b", "session=0123456789abcdef")
    if [r[0] for r in rows] != [200, 200, 200]:
        raise RuntimeError(f"unexpected credentials scenario: {rows}")


def sc_pipelined(procs: Procs, out: Path) -> None:
    with capture(procs, out / "http-pipelined.pcap", f"tcp port {PORT_PIPELINED}"):
        pipelined_client(PORT_PIPELINED)


def sc_tls(procs: Procs, out: Path, tmp: Path) -> None:
    url = f"https://{TLS_NAME}:{PORT_TLS}"
    common = ["-k", "--http1.1", "--resolve", f"{TLS_NAME}:{PORT_TLS}:127.0.0.1"]
    with capture(procs, out / "tls.pcap", f"tcp port {PORT_TLS}"):
        curl([f"{url}/index.html"], *common, "--tlsv1.2", "--tls-max", "1.2")
        curl([f"{url}/small.txt"], *common, "--tlsv1.3")
        t, i = tmp / "ticket.sess", tmp / "id.sess"
        modes = [
            s_client(PORT_TLS, "-sess_out", t),
            s_client(PORT_TLS, "-sess_in", t),
            s_client(PORT_TLS, "-sess_out", i, "-no_ticket"),
            s_client(PORT_TLS, "-sess_in", i, "-no_ticket"),
        ]
    if modes != ["New", "Reused", "New", "Reused"]:
        raise RuntimeError(f"TLS 1.2 resumption did not happen as intended: {modes}")


def sc_ipv6(procs: Procs, out: Path) -> None:
    base = f"http://[::1]:{PORT_IPV6}"
    with capture(procs, out / "ipv6-http.pcap", f"tcp port {PORT_IPV6}"):
        rows = curl([f"{base}/index.html", f"{base}/small.txt"], "-g", "--http1.1")
    if [r[:2] for r in rows] != [(200, 1), (200, 0)]:
        raise RuntimeError(f"unexpected ipv6 scenario: {rows}")


def sc_sll(procs: Procs, out: Path) -> str:
    base = f"http://127.0.0.1:{PORT_SLL}"
    tmp_path = out / "http-sll.tmp.pcap"

    def body() -> None:
        curl([f"{base}/index.html", f"{base}/small.txt"], "--http1.1")
        curl([f"{base}/medium.bin"], "--http1.1", "-H", "Connection: close")

    # LINUX_SLL2 (276) when this tcpdump/libpcap offers it on "any", else LINUX_SLL (113).
    r = run(["tcpdump", "-i", "any", "-L"], check=False)
    offered = (r.stdout + r.stderr).decode()
    linktype = "LINUX_SLL2" if "LINUX_SLL2" in offered else "LINUX_SLL"
    with capture(procs, tmp_path, f"tcp port {PORT_SLL}", iface="any", linktype=linktype):
        body()
    lt = pcap_linktype(tmp_path)
    name = {276: "http-sll2.pcap", 113: "http-sll.pcap"}[lt]
    for stale in ("http-sll2.pcap", "http-sll.pcap"):
        (out / stale).unlink(missing_ok=True)
    tmp_path.rename(out / name)
    log(f"{name}: link type {lt}")
    return name


def sc_rst(procs: Procs, out: Path) -> None:
    with capture(procs, out / "rst.pcap", f"tcp port {PORT_CLOSED} or tcp port {PORT_RST}"):
        refused_client(PORT_CLOSED)
        reset_client(PORT_RST)


def sc_methods(procs: Procs, out: Path) -> None:
    with capture(procs, out / "http-methods.pcap", f"tcp port {PORT_METHODS}"):
        methods_client(PORT_METHODS)
        # The asterisk-form target (RFC 9112 3.2.4) from curl, on a second connection: nginx
        # closes the first one after TRACE, and answers OPTIONS * with 400 and closes again.
        rows = curl(
            [f"http://127.0.0.1:{PORT_METHODS}/"],
            "--http1.1",
            "-X",
            "OPTIONS",
            "--request-target",
            "*",
        )
    if [r[:2] for r in rows] != [(400, 1)]:
        raise RuntimeError(f"OPTIONS *: {rows}")


def sc_vhosts(procs: Procs, out: Path) -> None:
    a, b = VHOSTS
    sizes = [len(VHOST_INDEX[a]), len(VHOST_INDEX[b])]
    with capture(procs, out / "http-vhosts.pcap", f"tcp port {PORT_VHOSTS}"):
        # Host names resolved by curl itself: one connection per host name.
        r1 = curl(
            [f"http://{a}:{PORT_VHOSTS}/", f"http://{b}:{PORT_VHOSTS}/"],
            "--http1.1",
            "--resolve",
            f"{a}:{PORT_VHOSTS}:127.0.0.1",
            "--resolve",
            f"{b}:{PORT_VHOSTS}:127.0.0.1",
        )
        # Same address, Host header set per transfer: both hosts on one reused connection.
        base = f"http://127.0.0.1:{PORT_VHOSTS}/"
        r2 = curl_next(
            ["--http1.1", "-H", f"Host: {a}", base], ["--http1.1", "-H", f"Host: {b}", base]
        )
    if [(r[0], r[1], r[2]) for r in r1 + r2] != [
        (200, 1, sizes[0]),
        (200, 1, sizes[1]),
        (200, 1, sizes[0]),
        (200, 0, sizes[1]),
    ]:
        raise RuntimeError(f"vhosts: {r1 + r2}")


def sc_chunked(procs: Procs, out: Path, tmp: Path) -> None:
    upload = tmp / "upload.txt"
    upload.write_bytes((CHUNK_LINE * (CURL_UPLOAD_SIZE // len(CHUNK_LINE) + 1))[:CURL_UPLOAD_SIZE])
    url = f"http://127.0.0.1:{PORT_CHUNKED}"
    with (
        PyServer("chunked server", PORT_CHUNKED, chunked_handler),
        capture(procs, out / "http-chunked.pcap", f"tcp port {PORT_CHUNKED}"),
    ):
        rows = curl_next(
            ["--http1.1", f"{url}/chunked"],
            [
                "--http1.1",
                "-H",
                "Transfer-Encoding: chunked",
                "-H",
                "Content-Type: application/octet-stream",
                "--data-binary",
                f"@{upload}",
                f"{url}/upload",
            ],
        )
        chunked_upload_client(PORT_CHUNKED)
    want = [
        (200, 1, len(chunked_body())),
        (200, 0, len(f"received {CURL_UPLOAD_SIZE} bytes in 1 chunks\n")),
    ]
    if [r[:3] for r in rows] != want:
        raise RuntimeError(f"chunked: {rows}, expected {want}")


def sc_expect(procs: Procs, out: Path, tmp: Path) -> None:
    body = tmp / "expect-body.bin"
    data = b"".join(
        hashlib.sha256(f"expect:{n}".encode()).digest() for n in range(EXPECT_BODY_SIZE // 32 + 1)
    )[:EXPECT_BODY_SIZE]
    body.write_bytes(data)
    with (
        PyServer("expect server", PORT_EXPECT, expect_handler),
        capture(procs, out / "http-expect.pcap", f"tcp port {PORT_EXPECT}"),
    ):
        rows = curl(
            [f"http://127.0.0.1:{PORT_EXPECT}/upload"],
            "--http1.1",
            "-H",
            "Expect: 100-continue",
            "-H",
            "Content-Type: application/octet-stream",
            "--data-binary",
            f"@{body}",
        )
        expect_reject_client(PORT_EXPECT, data)
    if [r[:3] for r in rows] != [(200, 1, len(f"received {EXPECT_BODY_SIZE} bytes\n"))]:
        raise RuntimeError(f"expect: {rows}")


def sc_upgrade(procs: Procs, out: Path) -> None:
    with (
        PyServer("upgrade server", PORT_UPGRADE, upgrade_handler),
        capture(
            procs, out / "http-upgrade.pcap", f"tcp port {PORT_UPGRADE} or tcp port {PORT_H2C}"
        ),
    ):
        websocket_client(PORT_UPGRADE)
        r426 = curl([f"http://127.0.0.1:{PORT_UPGRADE}/ws"], "--http1.1")
        # curl asks nginx for h2c (Upgrade: h2c, HTTP2-Settings); nginx has no h2c on a
        # plain listener and answers in HTTP/1.1.
        h2c = run(
            [
                "curl",
                "-sS",
                "--max-time",
                "20",
                "--http2",
                "-o",
                "/dev/null",
                "-w",
                "%{http_code} %{http_version} %{size_download}",
                f"http://127.0.0.1:{PORT_H2C}/index.html",
            ]
        ).stdout.decode()
    log(f"426: {r426}; h2c attempt: {h2c}")
    if [r[:2] for r in r426] != [(426, 1)] or h2c != f"200 1.1 {len(INDEX_HTML)}":
        raise RuntimeError(f"upgrade: {r426} {h2c!r}")


def sc_connect(procs: Procs, out: Path) -> None:
    proxy = ["-p", "-x", f"http://127.0.0.1:{PORT_PROXY}"]
    with (
        PyServer("CONNECT proxy", PORT_PROXY, proxy_handler),
        capture(procs, out / "http-connect.pcap", f"tcp port {PORT_PROXY}"),
    ):
        rows = curl(
            [f"https://{TLS_NAME}:{PORT_TLS_TUNNEL}/small.txt"],
            *proxy,
            "-k",
            "--http1.1",
            "--resolve",
            f"{TLS_NAME}:{PORT_TLS_TUNNEL}:127.0.0.1",
        )
        refused = run(
            [
                "curl",
                "-sS",
                "--max-time",
                "20",
                *proxy,
                "-o",
                "/dev/null",
                "-w",
                "%{http_connect}",
                f"http://{TLS_NAME}:{PROXY_FORBIDDEN_PORT}/",
            ],
            check=False,
        )
    log(
        f"tunnel: {rows}; refused: rc {refused.returncode} {refused.stdout!r} "
        f"{refused.stderr.decode().strip()!r}"
    )
    if [r[:3] for r in rows] != [(200, 1, FILES["small.txt"])]:
        raise RuntimeError(f"CONNECT tunnel: {rows}")
    # curl exit 56: "CONNECT tunnel failed, response 403"
    if refused.returncode != 56 or refused.stdout != b"403":
        raise RuntimeError(f"refused CONNECT: {refused}")


def connect_plain_client(port: int) -> list[tuple[int, int]]:
    """CONNECT to nginx's plain port through the proxy, then two keep-alive GETs in the tunnel:
    the tunnel's first byte is a stray LF and a CRLF comes between the requests (RFC 9112 2.2:
    a server ignores at least one empty line before a request-line; nginx does)."""
    target = f"{TLS_NAME}:{PORT_KEEPALIVE}"
    with client_socket(port) as s:
        r = SockReader(s)
        s.sendall(request("CONNECT", target, target))
        head = read_head(r)
        if head is None or not head[0].startswith("HTTP/1.1 200"):
            raise RuntimeError(f"CONNECT answered {head}")
        got = []
        for lead, path in ((b"\n", "/index.html"), (b"\r\n", "/small.txt")):
            s.sendall(lead + request("GET", path, TLS_NAME))
            code, _, body = read_response(r, "GET")
            got.append((code, len(body)))
        s.shutdown(socket.SHUT_WR)
        r.rest()
    return got


def sc_connect_plain(procs: Procs, out: Path) -> None:
    with (
        PyServer("CONNECT proxy", PORT_PROXY_PLAIN, proxy_handler),
        capture(procs, out / "plain-http-in-connect.pcap", f"tcp port {PORT_PROXY_PLAIN}"),
    ):
        got = connect_plain_client(PORT_PROXY_PLAIN)
    log(f"plain HTTP in a CONNECT tunnel: {got}")
    if got != [(200, len(INDEX_HTML)), (200, FILES["small.txt"])]:
        raise RuntimeError(f"connect-plain: {got}")


H2_APP = """
BODY = {body!r}


async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    await send({{"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"text/plain"),
                            (b"content-length", str(len(BODY)).encode())]}})
    await send({{"type": "http.response.body", "body": BODY}})
"""


def sc_http2(procs: Procs, out: Path, tmp: Path) -> None:
    (tmp / "h2app.py").write_text(H2_APP.format(body=H2_BODY))
    procs.start(
        [sys.executable, "-m", "hypercorn", "--bind", f"127.0.0.1:{PORT_H2_UPGRADE}", "h2app:app"],
        cwd=tmp,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    wait_port("127.0.0.1", PORT_H2_UPGRADE)
    w = "%{http_code} %{http_version} %{num_connects} %{size_download}\\n"
    with capture(
        procs, out / "plain-h2c.pcap", f"tcp port {PORT_H2_PRIOR} or tcp port {PORT_H2_UPGRADE}"
    ):
        # One stream with prior knowledge (curl 7.88 fails with "Error in the HTTP2 framing
        # layer" when it reuses a prior-knowledge connection, with nginx and hypercorn alike);
        # then the h2c upgrade: the first request is stream 1 (answered in h2 after the 101),
        # the second one stream 3 on the same connection.
        prior = run(
            [
                "curl",
                "-sS",
                "--max-time",
                "20",
                "--http2-prior-knowledge",
                "-w",
                w,
                f"http://127.0.0.1:{PORT_H2_PRIOR}/index.html",
                "-o",
                "/dev/null",
            ]
        ).stdout.decode()
        upgrade = run(
            [
                "curl",
                "-sS",
                "--max-time",
                "20",
                "--http2",
                "-w",
                w,
                f"http://127.0.0.1:{PORT_H2_UPGRADE}/one",
                "-o",
                "/dev/null",
                f"http://127.0.0.1:{PORT_H2_UPGRADE}/two",
                "-o",
                "/dev/null",
            ]
        ).stdout.decode()
    log(f"h2 prior knowledge: {prior!r}; h2c upgrade: {upgrade!r}")
    want_prior = f"200 2 1 {len(INDEX_HTML)}\n"
    want_upgrade = f"200 2 1 {len(H2_BODY)}\n200 2 0 {len(H2_BODY)}\n"
    if prior != want_prior or upgrade != want_upgrade:
        raise RuntimeError(f"http2: {prior!r} {upgrade!r}")


# --- TLS feature captures (issue 4) ----------------------------------------------------------
# Every case has its own openssl s_server (OpenSSL 3.0, -accept 127.0.0.1:PORT) and its own SNI,
# so a connection is identified by its server port and SNI. The clients are openssl s_client
# (and, for split-hello, Python's ssl module through an SSLObject). After each capture the
# facts of every connection are read back with tshark, compared with what the scenario means
# to produce (the script fails on any difference) and written to tls-facts.json.
TLS_REQUEST = b"GET /hello.txt HTTP/1.0\r\n\r\n"
TLS_FILE = b"hello from s_server\n"  # served by s_server -WWW from its working directory
HRR_RANDOM = "cf21ad74e59a6111be1d8c021e65b891c2a211167abb8c5e079e09e2c8a8339c"
# ALPN names of big-hello: 12 x 250 bytes, so the ClientHello (~3.3 KB) needs 3 segments of
# 1448 bytes on the namespace loopback (MTU 1500).
BIG_HELLO_ALPN = [f"pcapan-big-hello-{i:02d}-".ljust(250, "x") for i in range(12)]
# split-hello: the Python client writes its ClientHello in three send() calls cut at these
# offsets (3: inside the 5-byte record header; 100: inside the ClientHello body).
SPLIT_HELLO_CUTS = (3, 100)
# RFC 7919 ffdhe2048, as written by `openssl genpkey -genparam -algorithm DH -pkeyopt
# group:ffdhe2048` (instant, unlike `openssl dhparam 2048`).
FFDHE2048_PEM = """\
-----BEGIN DH PARAMETERS-----
MIIBCAKCAQEA//////////+t+FRYortKmq/cViAnPTzx2LnFg84tNpWp4TZBFGQz
+8yTnc4kmz75fS/jY2MMddj2gbICrsRhetPfHtXV/WVhJDP1H18GbtCFY2VVPe0a
87VXE15/V8k1mE8McODmi3fipona8+/och3xWKE2rec1MKzKT0g6eXq8CrGCsyT7
YdEIqUuyyOP7uWrat2DX9GgdT0Kj3jlN9K5W7edjcrsZCwenyO4KbXCeAvzhzffi
7MA0BM0oNC9hkXL+nOmFg/+OTxIy7vKBg8P+OxtMb61zO7X8vC7CIAXFjvGDfRaD
ssbzSibBsu/6iGtCOGEoXJf//////////wIBAg==
-----END DH PARAMETERS-----
"""
# IANA TLS alert descriptions (those OpenSSL may send); levels 1 warning, 2 fatal.
ALERT_NAMES = {
    0: "close_notify",
    10: "unexpected_message",
    20: "bad_record_mac",
    40: "handshake_failure",
    42: "bad_certificate",
    46: "certificate_unknown",
    47: "illegal_parameter",
    48: "unknown_ca",
    50: "decode_error",
    51: "decrypt_error",
    70: "protocol_version",
    71: "insufficient_security",
    80: "internal_error",
    86: "inappropriate_fallback",
    90: "user_canceled",
    109: "missing_extension",
    110: "unsupported_extension",
    112: "unrecognized_name",
    116: "certificate_required",
    120: "no_application_protocol",
}
TLS_VERSIONS = {"0x0303": "TLSv1.2", "0x0304": "TLSv1.3"}


def sni(case: str) -> str:
    return f"{case}.{TLS_NAME}"


# Server port -> (case name, s_server options); the case name is also the SNI's first label.
# -no_tls1_3 servers answer a client that offers 1.3 and 1.2 (s_client's default) with 1.2.
TLS_SERVERS: dict[int, tuple[str, list[str]]] = {
    18450: ("tls12-ecdhe", ["-no_tls1_3", "-cipher", "ECDHE-RSA-AES128-GCM-SHA256"]),
    18451: (
        "tls12-dhe",
        ["-no_tls1_3", "-cipher", "DHE-RSA-AES128-GCM-SHA256", "-dhparam", "{ffdhe2048}"],
    ),
    18452: ("tls12-rsa", ["-no_tls1_3", "-cipher", "AES128-GCM-SHA256"]),
    18453: ("tls13", []),
    18454: ("hrr", ["-groups", "X25519"]),
    18455: ("resume-id", ["-no_tls1_3", "-no_ticket"]),
    18456: ("resume-ticket", ["-no_tls1_3"]),
    18457: ("resume-psk", ["-tls1_3"]),
    18458: ("early-data", ["-tls1_3", "-early_data"]),  # no -WWW: s_server's interactive mode
    18459: ("alpn-h2", ["-no_tls1_3", "-alpn", "h2"]),
    18460: ("alpn-http11", ["-no_tls1_3", "-alpn", "http/1.1"]),
    18461: ("alpn-h2-tls13", ["-tls1_3", "-alpn", "h2"]),
    18462: ("alert-cipher", ["-no_tls1_3", "-cipher", "AES128-GCM-SHA256"]),
    18463: ("alert-version", ["-no_tls1_3"]),
    18464: ("alert-unknown-ca", ["-no_tls1_3"]),
    18465: ("big-hello", []),
    18466: ("split-hello", []),
}
TLS_PORT = {case: port for port, (case, _) in TLS_SERVERS.items()}


class OpenSSLProc:
    """An openssl s_server/s_client whose output goes to a file we poll and whose stdin is a
    pipe we write to (kept open until ``close_stdin``: s_server quits at EOF on stdin)."""

    def __init__(self, procs: Procs, cmd: list[str], logfile: Path, cwd: Path) -> None:
        self.logfile = logfile
        self.fh = logfile.open("wb")
        self.p = procs.start(
            cmd, stdin=subprocess.PIPE, stdout=self.fh, stderr=subprocess.STDOUT, cwd=cwd
        )

    def text(self) -> str:
        return self.logfile.read_bytes().decode("latin-1")

    def wait_for(self, needle: str, count: int = 1, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while self.text().count(needle) < count:
            if self.p.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{self.p.args[:2]}: no {needle!r} (x{count}):\n{self.text()}")
            time.sleep(0.02)

    def send(self, data: bytes) -> None:
        assert self.p.stdin is not None
        self.p.stdin.write(data)
        self.p.stdin.flush()

    def close_stdin(self) -> None:
        assert self.p.stdin is not None
        self.p.stdin.close()

    def stop(self) -> None:
        if self.p.poll() is None:
            self.p.terminate()
            self.p.wait(timeout=5)
        self.fh.close()


@contextlib.contextmanager
def s_servers(procs: Procs, tmp: Path, ports: Sequence[int]) -> Iterator[dict[int, OpenSSLProc]]:
    """Start one s_server per port (before the capture starts: nothing connects to find out
    whether they listen, their "ACCEPT" line says so) and stop them all afterwards."""
    docs = tmp / "tls-www"
    if not docs.exists():
        docs.mkdir()
        (docs / "hello.txt").write_bytes(TLS_FILE)
        (tmp / "ffdhe2048.pem").write_text(FFDHE2048_PEM)
    servers: dict[int, OpenSSLProc] = {}
    try:
        for port in ports:
            case, opts = TLS_SERVERS[port]
            www = [] if "-early_data" in opts else ["-WWW"]
            opts = [o.format(ffdhe2048=tmp / "ffdhe2048.pem") for o in opts]
            cmd = [
                "openssl",
                "s_server",
                "-accept",
                f"127.0.0.1:{port}",
                "-cert",
                str(tmp / "cert.pem"),
                "-key",
                str(tmp / "key.pem"),
                *www,
                *opts,
            ]
            servers[port] = OpenSSLProc(procs, cmd, tmp / f"s_server-{case}.log", docs)
        for s in servers.values():
            s.wait_for("ACCEPT")
        yield servers
    finally:
        for s in servers.values():
            s.stop()


def parse_s_client(text: str) -> dict:
    """What s_client says about its connection (the encrypted parts tshark cannot see)."""
    new = re.search(r"^(New|Reused), (\S+), Cipher is (\S+)", text, re.M)
    alpn = re.search(r"^ALPN protocol: (\S+)", text, re.M)
    early = re.search(r"^Early data was (\w+)", text, re.M)
    alert = re.search(r"SSL alert number (\d+)", text)
    return {
        "handshake": new.group(1) if new else None,
        "version": new.group(2) if new else None,
        "cipher": new.group(3) if new else None,
        "alpn": alpn.group(1) if alpn else None,
        "early_data": early.group(1) if early else None,
        "alert_received": int(alert.group(1)) if alert else None,
        "verify_failed": "certificate verify failed" in text,
        "got_file": TLS_FILE.decode().strip() in text,
    }


def tls_client(case: str, *opts: str, check: bool = True) -> dict:
    """s_client to the case's server: its SNI, TLS_REQUEST on stdin (-ign_eof: it reads until
    s_server -WWW has sent the file and closed). Returns parse_s_client's summary."""
    port = TLS_PORT[case]
    cmd = [
        "openssl",
        "s_client",
        "-connect",
        f"127.0.0.1:{port}",
        "-servername",
        sni(case),
        "-ign_eof",
        *opts,
    ]
    r = run(cmd, input=TLS_REQUEST, check=False)
    info = parse_s_client((r.stdout + r.stderr).decode("latin-1"))
    log(f"s_client {case} (rc {r.returncode}): {info}")
    if check and (r.returncode != 0 or not info["got_file"]):
        raise RuntimeError(
            f"s_client {case} failed:\n{r.stdout.decode('latin-1')}{r.stderr.decode('latin-1')}"
        )
    return info


def split_hello_client(case: str) -> dict:
    """Python ssl through an SSLObject: the ClientHello is written in three send() calls (cut
    at SPLIT_HELLO_CUTS), each its own segment; then the handshake goes on normally, the
    request is sent, the response read up to the server's close_notify, which is answered."""
    port = TLS_PORT[case]
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    inc, outg = ssl.MemoryBIO(), ssl.MemoryBIO()
    tls = ctx.wrap_bio(inc, outg, server_hostname=sni(case))
    with client_socket(port) as s:

        def pump() -> None:  # what the SSLObject wrote -> socket
            if pending := outg.read():
                s.sendall(pending)

        def feed() -> bool:  # socket -> SSLObject; False at EOF
            data = s.recv(65536)
            if data:
                inc.write(data)
            else:
                inc.write_eof()
            return bool(data)

        with contextlib.suppress(ssl.SSLWantReadError):  # it wants the ServerHello
            tls.do_handshake()
        hello = outg.read()
        cuts = [0, *SPLIT_HELLO_CUTS, len(hello)]
        send_parts(s, [hello[a:b] for a, b in zip(cuts, cuts[1:], strict=False)])
        while True:
            try:
                tls.do_handshake()
                break
            except ssl.SSLWantReadError:
                pump()
                if not feed():
                    raise RuntimeError("split-hello: EOF during the handshake") from None
        pump()
        tls.write(TLS_REQUEST)
        pump()
        body = bytearray()
        while True:
            try:
                data = tls.read(65536)
            except ssl.SSLWantReadError:
                if not feed():
                    raise RuntimeError("split-hello: EOF without close_notify") from None
                continue
            if not data:  # the server's close_notify (SSLObject.read returns b"")
                break
            body += data
        tls.unwrap()  # our close_notify
        pump()
        s.shutdown(socket.SHUT_WR)
        with contextlib.suppress(OSError):
            while s.recv(65536):
                pass
    info = {
        "name": "python ssl (SSLObject)",
        "handshake": "New",
        "version": tls.version(),
        "cipher": tls.cipher()[0],
        "alpn": tls.selected_alpn_protocol(),
        "early_data": None,
        "alert_received": None,
        "verify_failed": False,
        "got_file": TLS_FILE in body,
        "client_hello_len": len(hello),
    }
    log(f"python client {case}: {info}")
    if not info["got_file"]:
        raise RuntimeError(f"split-hello: unexpected response {bytes(body)!r}")
    return info


def early_data_clients(procs: Procs, tmp: Path, server: OpenSSLProc) -> list[dict]:
    """Three connections to the -early_data server (s_server's interactive mode: it prints
    what it receives, and sends what we write to its stdin): a full handshake that saves the
    session; a resumption with the request as 0-RTT early data (accepted); the same session
    once more (OpenSSL's anti-replay lets a ticket be used once: PSK refused, full
    handshake, early data rejected, the request sent again after the handshake)."""
    case = "early-data"
    sess, early = tmp / "early-data.sess", tmp / "early-data.req"
    early.write_bytes(TLS_REQUEST)
    response = b"HTTP/1.0 200 ok\r\nContent-type: text/plain\r\n\r\n" + TLS_FILE
    base = [
        "openssl",
        "s_client",
        "-connect",
        f"127.0.0.1:{TLS_PORT[case]}",
        "-servername",
        sni(case),
    ]
    runs = [
        ["-sess_out", str(sess)],
        ["-sess_in", str(sess), "-early_data", str(early)],
        ["-sess_in", str(sess), "-early_data", str(early)],
    ]
    infos = []
    for i, opts in enumerate(runs):
        c = OpenSSLProc(procs, base + opts, tmp / f"s_client-{case}-{i}.log", tmp)
        try:
            c.wait_for("Early data was")  # printed once the handshake is done
            if "Early data was accepted" not in c.text():
                c.send(TLS_REQUEST)
            server.wait_for("GET /hello.txt", count=i + 1)
            server.send(response)
            c.wait_for(TLS_FILE.decode().strip())
            c.close_stdin()  # s_client: close_notify, FIN, exit
            c.p.wait(timeout=10)
            server.wait_for("DONE", count=i + 1)  # it got the close_notify
        finally:
            c.stop()
        info = parse_s_client(c.text())
        log(f"s_client {case} #{i}: {info}")
        infos.append(info)
    got = [(x["handshake"], x["early_data"]) for x in infos]
    if got != [("New", "not"), ("Reused", "accepted"), ("New", "rejected")]:
        raise RuntimeError(f"early data: {got}")
    return infos


# --- TLS facts read back from a capture with tshark --------------------------------------------
def tshark_tls(path: Path, ports: Sequence[int], filt: str, fields: list[str]) -> list[list[str]]:
    cmd = ["tshark", "-r", str(path), "-n"]
    for p in ports:
        cmd += ["-d", f"tcp.port=={p},tls"]
    cmd += ["-Y", filt, "-T", "fields", "-E", "separator=/t", "-E", "aggregator=|"]
    for f in fields:
        cmd += ["-e", f]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=CMD_TIMEOUT_S, check=True)
    return [line.split("\t") for line in r.stdout.splitlines()]


_CIPHER_NAMES: dict[int, str] = {}


def iana_cipher(code: str) -> str:
    """IANA name of a cipher suite number, from tshark's own table (tshark -G values)."""
    if not _CIPHER_NAMES:
        r = subprocess.run(
            ["tshark", "-G", "values"],
            capture_output=True,
            text=True,
            timeout=CMD_TIMEOUT_S,
            check=True,
        )
        for line in r.stdout.splitlines():
            parts = line.split("\t")
            if len(parts) == 4 and parts[:2] == ["V", "tls.handshake.ciphersuite"]:
                _CIPHER_NAMES[int(parts[2])] = parts[3]
    return _CIPHER_NAMES[int(code, 16)]


@functools.cache
def openssl_to_iana(name: str) -> str:
    r = run(["openssl", "ciphers", "-stdname", "ALL:@SECLEVEL=0"])
    for line in r.stdout.decode().splitlines():
        std, _, rest = line.partition(" - ")
        if rest.split()[0] == name:
            return std.strip()
    raise RuntimeError(f"openssl does not know the cipher {name}")


HS_FIELDS = [
    "tcp.stream",
    "tcp.srcport",
    "tcp.dstport",
    "tls.handshake.type",
    "tls.handshake.version",
    "tls.handshake.extensions.supported_version",
    "tls.handshake.ciphersuite",
    "tls.handshake.random",
    "tls.handshake.session_id",
    "tls.handshake.extensions_server_name",
    "tls.handshake.extensions_alpn_str",
    "tls.handshake.extension.type",
    "tls.handshake.extension.len",
    "tls.handshake.p_len",
    "tcp.segment.count",
]


def wire_facts(path: Path, ports: Sequence[int]) -> list[dict]:
    """Per TCP connection (in tcp.stream order): what tshark shows of its TLS handshake.

    A server frame may carry several handshake messages (ServerHello, Certificate,
    ServerKeyExchange, ServerHelloDone); only the ServerHello has a version, cipher suite,
    random, session id and (in these captures) extensions, and only a ServerKeyExchange has
    a DH prime, so the fields of such a frame are unambiguous. A client frame carries one
    ClientHello at most."""
    conns: dict[int, dict] = {}
    for row in tshark_tls(path, ports, "tls.handshake.type", HS_FIELDS):
        f = dict(zip(HS_FIELDS, row, strict=True))
        stream, sport, dport = int(f["tcp.stream"]), int(f["tcp.srcport"]), int(f["tcp.dstport"])
        from_server = sport in ports
        c = conns.setdefault(
            stream,
            {
                "server_port": sport if from_server else dport,
                "ch": [],
                "sh": [],
                "server_types": set(),
            },
        )
        types = set(f["tls.handshake.type"].split("|"))
        if from_server:
            c["server_types"] |= types
            if "2" in types:
                c["sh"].append(f)
            if f["tls.handshake.p_len"]:
                c["dh_prime_bits"] = int(f["tls.handshake.p_len"]) * 8
        elif "1" in types:
            c["ch"].append(f)
    alerts: dict[int, dict] = {}
    for stream, sport, level, desc in tshark_tls(
        path,
        ports,
        "tls.alert_message.level",
        ["tcp.stream", "tcp.srcport", "tls.alert_message.level", "tls.alert_message.desc"],
    ):
        if "|" in level or int(stream) in alerts:
            raise RuntimeError(f"{path.name}: more than one cleartext alert in stream {stream}")
        alerts[int(stream)] = {
            "level": {"1": "warning", "2": "fatal"}[level],
            "description": ALERT_NAMES[int(desc)],
            "code": int(desc),
            "from": "server" if int(sport) in ports else "client",
        }
    facts = []
    for stream in sorted(conns):
        c = conns[stream]
        ch = c["ch"][0]
        ch_ext = dict(
            zip(
                ch["tls.handshake.extension.type"].split("|"),
                map(int, ch["tls.handshake.extension.len"].split("|")),
                strict=True,
            )
        )
        hrr = [sh for sh in c["sh"] if sh["tls.handshake.random"] == HRR_RANDOM]
        final = [sh for sh in c["sh"] if sh["tls.handshake.random"] != HRR_RANDOM]
        if len(final) > 1 or len(c["ch"]) != 1 + len(hrr) or len(hrr) > 1:
            raise RuntimeError(
                f"{path.name} stream {stream}: {len(c['ch'])} ClientHellos, "
                f"{len(hrr)} HelloRetryRequests, {len(final)} ServerHellos"
            )
        version = cipher = alpn_selected = None
        resumed: bool | str = False
        if final:
            sh = final[0]
            sh_ext = set(sh["tls.handshake.extension.type"].split("|"))
            version = TLS_VERSIONS[
                sh["tls.handshake.extensions.supported_version"] or sh["tls.handshake.version"]
            ]
            cipher = iana_cipher(sh["tls.handshake.ciphersuite"])
            alpn_selected = sh["tls.handshake.extensions_alpn_str"] or None
            if version == "TLSv1.3":
                resumed = "psk" if "41" in sh_ext else False
            elif (
                sh["tls.handshake.session_id"]
                and sh["tls.handshake.session_id"] == ch["tls.handshake.session_id"]
                and "11" not in c["server_types"]
            ):
                resumed = "ticket" if ch_ext.get("35", 0) > 0 else "session_id"
        alpn = ch["tls.handshake.extensions_alpn_str"]
        facts.append(
            {
                "tcp_stream": stream,
                "server_port": c["server_port"],
                "sni": ch["tls.handshake.extensions_server_name"] or None,
                "version": version,
                "cipher": cipher,
                "alpn_offered": alpn.split("|") if alpn else [],
                "alpn_selected": alpn_selected,
                "resumed": resumed,
                "hello_retry_request": bool(hrr),
                "early_data_offered": "42" in ch_ext,
                "alert": alerts.get(stream),
                "client_hello_segments": int(ch["tcp.segment.count"] or 1),
                "dh_prime_bits": c.get("dh_prime_bits"),
            }
        )
    return facts


def check_tls_capture(path: Path, cases: list[tuple[str, dict, dict]]) -> list[dict]:
    """Compare tshark's view of ``path`` with the intended ``cases`` (case, expected wire
    facts, the client's report), connection by connection in capture order; return the
    facts entries for tls-facts.json."""
    ports = sorted({TLS_PORT[case] for case, _, _ in cases})
    wire = wire_facts(path, ports)
    if len(wire) != len(cases):
        raise RuntimeError(f"{path.name}: {len(wire)} TLS connections, expected {len(cases)}")
    entries = []
    for w, (case, want, client) in zip(wire, cases, strict=True):
        want = {
            "server_port": TLS_PORT[case],
            "sni": sni(case),
            "alpn_offered": [],
            "alpn_selected": None,
            "resumed": False,
            "hello_retry_request": False,
            "early_data_offered": False,
            "alert": None,
            "client_hello_segments": 1,
            "dh_prime_bits": None,
            **want,
        }
        diff = {k: (w.get(k), v) for k, v in want.items() if w.get(k) != v}
        if diff:
            raise RuntimeError(
                f"{path.name} stream {w['tcp_stream']} ({case}): tshark (got, wanted): {diff}"
            )
        # The client's own view must agree with the wire where both see the same thing.
        if (
            client["handshake"]
            and client["version"] != "(NONE)"
            and (client["version"], openssl_to_iana(client["cipher"]))
            != (w["version"], w["cipher"])
        ):
            raise RuntimeError(f"{case}: client reports {client}, tshark {w}")
        if w["version"] == "TLSv1.2" and client["alpn"] != w["alpn_selected"]:
            raise RuntimeError(f"{case}: client ALPN {client['alpn']}, tshark {w}")
        if (client["handshake"] == "Reused") != bool(w["resumed"]):
            raise RuntimeError(f"{case}: client says {client['handshake']}, tshark {w}")
        entry = {"file": path.name, "case": case, **w}
        entry["alpn_selected_encrypted"] = client["alpn"] if w["version"] == "TLSv1.3" else None
        entry["early_data_accepted"] = (
            client["early_data"] == "accepted" if w["early_data_offered"] else None
        )
        entry["client"] = client.get("name", "openssl s_client")
        entries.append(entry)
    log(f"{path.name}: tshark agrees with the scenario on {len(entries)} TLS connections")
    return entries


def finish_tls_capture(out: Path, path: Path, cases: list[tuple[str, dict, dict]]) -> None:
    """Check a TLS capture made in the temporary directory; only when it is right, move it
    to ``out`` and update its entries in tls-facts.json (so the two always agree)."""
    entries = check_tls_capture(path, cases)
    shutil.move(path, out / path.name)
    write_tls_facts(out, entries)


def write_tls_facts(out: Path, entries: list[dict]) -> None:
    """Merge ``entries`` into out/tls-facts.json, replacing any entries of the same files."""
    path = out / "tls-facts.json"
    files = {e["file"] for e in entries}
    old = json.loads(path.read_text())["connections"] if path.exists() else []
    conns = [e for e in old if e["file"] not in files] + entries
    order = {name: i for i, name in enumerate(TLS_CAPTURES)}
    conns.sort(key=lambda e: (order.get(e["file"], len(order)), e["file"], e["tcp_stream"]))
    doc = {
        "about": "Facts of every TLS connection of the tls-*.pcap samples, read back with "
        "tshark 4.0 by make_samples.py (see samples/README.md). server_port/sni "
        "identify a connection; tcp_stream is tshark's index in the file.",
        "keys": {
            "case": "the scenario's name for the connection (the SNI's first label)",
            "tcp_stream": "tshark's tcp.stream of the connection in the file",
            "server_port": "the case's s_server port (127.0.0.1); client ports vary per run",
            "sni": "ClientHello server_name",
            "version": "ServerHello supported_versions, else its version field; null when "
            "there is no ServerHello (also set when the handshake failed after it)",
            "cipher": "IANA name of the ServerHello cipher suite (null without one)",
            "alpn_offered": "ClientHello ALPN list",
            "alpn_selected": "ServerHello ALPN (cleartext, TLS 1.2 only), else null",
            "alpn_selected_encrypted": "TLS 1.3 only: the ALPN the client reported "
            "(in EncryptedExtensions, not on the wire), else null",
            "resumed": "false, 'session_id' / 'ticket' (TLS 1.2: session id echoed, no "
            "Certificate; 'ticket' when the ClientHello carried a non-empty "
            "SessionTicket), 'psk' (TLS 1.3: pre_shared_key in the ServerHello)",
            "hello_retry_request": "a ServerHello with the HelloRetryRequest random, then a "
            "second ClientHello",
            "early_data_offered": "early_data extension in the ClientHello",
            "early_data_accepted": "when offered: the client's report (encrypted on the wire)",
            "alert": "the cleartext alert of the connection, if any (encrypted alerts such "
            "as close_notify after the handshake are not counted)",
            "client_hello_segments": "TCP segments the first ClientHello spans",
            "dh_prime_bits": "DHE: bits of the ServerKeyExchange prime, else null",
            "client": "the client program",
        },
        "connections": conns,
    }
    path.write_text(json.dumps(doc, indent=2) + "\n")
    log(f"{path.name}: {len(conns)} connections")


V12, V13 = "TLSv1.2", "TLSv1.3"
AES256_13 = "TLS_AES_256_GCM_SHA384"  # what OpenSSL 3.0 picks in TLS 1.3 by default
ECDHE_AES256 = "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384"  # ... and in TLS 1.2 (RSA certificate)


def bpf_ports(ports: Sequence[int]) -> str:
    return " or ".join(f"tcp port {p}" for p in ports)


# Each TLS scenario captures into the temporary directory; finish_tls_capture checks the file
# against what the scenario means (the expected wire facts below) and only then moves it to out.
def sc_tls_versions(procs: Procs, out: Path, tmp: Path) -> None:
    path = tmp / "tls-versions.pcap"
    want = {
        "tls12-ecdhe": {"version": V12, "cipher": "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256"},
        "tls12-dhe": {
            "version": V12,
            "cipher": "TLS_DHE_RSA_WITH_AES_128_GCM_SHA256",
            "dh_prime_bits": 2048,
        },
        "tls12-rsa": {"version": V12, "cipher": "TLS_RSA_WITH_AES_128_GCM_SHA256"},
        "tls13": {"version": V13, "cipher": AES256_13},
    }
    ports = [TLS_PORT[c] for c in want]
    with s_servers(procs, tmp, ports), capture(procs, path, bpf_ports(ports)):
        cases = [(c, w, tls_client(c)) for c, w in want.items()]
    finish_tls_capture(out, path, cases)


def sc_tls_hrr(procs: Procs, out: Path, tmp: Path) -> None:
    path, case = tmp / "tls-hrr.pcap", "hrr"
    ports = [TLS_PORT[case]]
    with s_servers(procs, tmp, ports), capture(procs, path, bpf_ports(ports)):
        # A key share for P-256 only (the first group offered); the server wants X25519.
        report = tls_client(case, "-groups", "P-256:X25519")
    want = {"version": V13, "cipher": AES256_13, "hello_retry_request": True}
    finish_tls_capture(out, path, [(case, want, report)])


def sc_tls_resume(procs: Procs, out: Path, tmp: Path) -> None:
    path = tmp / "tls-resume.pcap"
    runs = [
        ("resume-id", V12, ECDHE_AES256, "session_id"),
        ("resume-ticket", V12, ECDHE_AES256, "ticket"),
        ("resume-psk", V13, AES256_13, "psk"),
    ]
    ports = [TLS_PORT[c] for c, *_ in runs]
    cases = []
    with s_servers(procs, tmp, ports), capture(procs, path, bpf_ports(ports)):
        for case, version, cipher, how in runs:
            sess = tmp / f"{case}.sess"
            first = tls_client(case, "-sess_out", str(sess))
            second = tls_client(case, "-sess_in", str(sess))
            if (first["handshake"], second["handshake"]) != ("New", "Reused"):
                raise RuntimeError(f"{case}: {first['handshake']}, {second['handshake']}")
            want = {"version": version, "cipher": cipher}
            cases += [(case, want, first), (case, {**want, "resumed": how}, second)]
    finish_tls_capture(out, path, cases)


def sc_tls_early_data(procs: Procs, out: Path, tmp: Path) -> None:
    path, case = tmp / "tls-0rtt.pcap", "early-data"
    port = TLS_PORT[case]
    with s_servers(procs, tmp, [port]) as servers, capture(procs, path, bpf_ports([port])):
        full, accepted, rejected = early_data_clients(procs, tmp, servers[port])
    want = {"version": V13, "cipher": AES256_13}
    finish_tls_capture(
        out,
        path,
        [
            (case, want, full),
            (case, {**want, "resumed": "psk", "early_data_offered": True}, accepted),
            (case, {**want, "early_data_offered": True}, rejected),  # PSK refused: full handshake
        ],
    )


def sc_tls_alpn(procs: Procs, out: Path, tmp: Path) -> None:
    path = tmp / "tls-alpn.pcap"
    offer = ["h2", "http/1.1"]
    # The servers select (-alpn) h2, http/1.1, h2; the TLS 1.3 choice is encrypted.
    want = {
        "alpn-h2": {"version": V12, "cipher": ECDHE_AES256, "alpn_selected": "h2"},
        "alpn-http11": {"version": V12, "cipher": ECDHE_AES256, "alpn_selected": "http/1.1"},
        "alpn-h2-tls13": {"version": V13, "cipher": AES256_13},
    }
    ports = [TLS_PORT[c] for c in want]
    with s_servers(procs, tmp, ports), capture(procs, path, bpf_ports(ports)):
        cases = [
            (c, {**w, "alpn_offered": offer}, tls_client(c, "-alpn", ",".join(offer)))
            for c, w in want.items()
        ]
    if [r["alpn"] for _, _, r in cases] != ["h2", "http/1.1", "h2"]:
        raise RuntimeError(f"ALPN: {cases}")
    finish_tls_capture(out, path, cases)


def sc_tls_alert(procs: Procs, out: Path, tmp: Path) -> None:
    path = tmp / "tls-alert.pcap"
    runs = [
        # Only a cipher the server does not have (TLS 1.2 only, so no TLS 1.3 suites either).
        (
            "alert-cipher",
            ["-tls1_2", "-cipher", "ECDHE-RSA-CHACHA20-POLY1305"],
            "server",
            "handshake_failure",
            40,
        ),
        # TLS 1.3 only, to a TLS 1.2 server.
        ("alert-version", ["-tls1_3"], "server", "protocol_version", 70),
        # The client refuses the self-signed certificate (TLS 1.2: the alert is cleartext).
        ("alert-unknown-ca", ["-tls1_2", "-verify_return_error"], "client", "unknown_ca", 48),
    ]
    ports = [TLS_PORT[c] for c, *_ in runs]
    cases = []
    with s_servers(procs, tmp, ports), capture(procs, path, bpf_ports(ports)):
        for case, opts, side, name, code in runs:
            report = tls_client(case, *opts, check=False)
            if (
                report["handshake"],
                report["version"],
                report["alert_received"],
                report["verify_failed"],
            ) != ("New", "(NONE)", code if side == "server" else None, side == "client"):
                raise RuntimeError(f"{case}: {report}")
            want = {
                "version": None,
                "cipher": None,
                "alert": {"level": "fatal", "description": name, "code": code, "from": side},
            }
            if side == "client":  # the server's ServerHello came before the alert
                want |= {"version": V12, "cipher": ECDHE_AES256}
            cases.append((case, want, report))
    finish_tls_capture(out, path, cases)


def sc_tls_big_hello(procs: Procs, out: Path, tmp: Path) -> None:
    path = tmp / "tls-big-hello.pcap"
    ports = [TLS_PORT["big-hello"], TLS_PORT["split-hello"]]
    with s_servers(procs, tmp, ports), capture(procs, path, bpf_ports(ports)):
        big = tls_client("big-hello", "-alpn", ",".join(BIG_HELLO_ALPN))
        split = split_hello_client("split-hello")
    want = {"version": V13, "cipher": AES256_13, "client_hello_segments": 3}
    finish_tls_capture(
        out,
        path,
        [
            ("big-hello", {**want, "alpn_offered": BIG_HELLO_ALPN}, big),
            ("split-hello", want, split),
        ],
    )


TLS_CAPTURES = [
    "tls-versions.pcap",
    "tls-hrr.pcap",
    "tls-resume.pcap",
    "tls-0rtt.pcap",
    "tls-alpn.pcap",
    "tls-alert.pcap",
    "tls-big-hello.pcap",
]


# --- RTT captures: real network delay through a user-space forwarder --------------------------
# This kernel has no netem, so the delay is made in user space. Three network namespaces
# (client, router, server; names pcapan-rtt-<pid>-<role>) are joined by veth pairs; the router
# namespace holds one more veth pair, the capture wire, and a forwarder (this script run with
# --rtt-forwarder) that moves every Ethernet frame, unchanged, from one router veth to the
# next after a fixed hold. The router has no addresses (IPv6 off): it is an L2 delay line in two
# stages, so ARP and NDP between client and server cross it like everything else:
#
#   client ns          router ns                                                 server ns
#   c-eth  ======  r-cli -[10 ms]-> r-cap0 ====== r-cap1 -[25 ms]-> r-srv  ======  s-eth
#   10.99.1.2/24         <-[10 ms]-  (tcpdump)            <-[25 ms]-               10.99.2.2/24
#
# tcpdump captures on r-cap0, between the two stages: from there the client is 10 ms away
# each way (client-side RTT 20 ms) and the server 25 ms (server-side RTT 50 ms), so a SYN ->
# SYN/ACK takes 50 ms at the capture point, SYN/ACK -> ACK 20 ms and SYN -> ACK 70 ms. Client
# and server reach each other's /24 on-link (routes without gateway, ARP through the line).
RTT_CLIENT_IP, RTT_SERVER_IP = "10.99.1.2", "10.99.2.2"
RTT_CLIENT_ONE_WAY_S = 0.010  # hold of every frame between r-cli and r-cap0, each direction
RTT_SERVER_ONE_WAY_S = 0.025  # hold of every frame between r-cap1 and r-srv, each direction
RTT_CLIENT_SIDE_S = 2 * RTT_CLIENT_ONE_WAY_S  # RTT capture point -> client -> capture point
RTT_SERVER_SIDE_S = 2 * RTT_SERVER_ONE_WAY_S  # RTT capture point -> server -> capture point
RTT_TOLERANCE_S = 0.003  # measured minimum RTTs must be within this above the configured ones
RTT_EARLY_S = 0.0002  # ... and nothing below them by more than this (timestamp rounding)
RTT_TLS_WORK_S = 0.015  # TLS handshakes: room for the crypto of both ends on top of the RTTs
RTT_PORT_HTTP = 18480  # nginx: keep-alive connection, then Connection: close
RTT_PORT_TLS12 = 18481  # openssl s_server -WWW -tls1_2
RTT_PORT_TLS13 = 18482  # openssl s_server -WWW -tls1_3
RTT_PORT_PIPELINED = 18483  # nginx: 3 pipelined requests
RTT_BIG_FILE, RTT_BIG_SIZE = "big.bin", 204800  # 200 KiB: 141 full-size segments + the rest
RTT_CAPTURE_DEV = "r-cap0"
RTT_ROLES = ("client", "router", "server")
# veth pairs as ((role, device), (role, device)); every one MTU 1500, offloads off.
RTT_LINKS = [
    (("client", "c-eth"), ("router", "r-cli")),
    (("router", "r-cap0"), ("router", "r-cap1")),
    (("router", "r-srv"), ("server", "s-eth")),
]
# Forwarder stages: (name, input device, output device, hold in seconds). Every router device
# is the input of exactly one stage.
RTT_STAGES = [
    ("c2s-client-side", "r-cli", "r-cap0", RTT_CLIENT_ONE_WAY_S),
    ("c2s-server-side", "r-cap1", "r-srv", RTT_SERVER_ONE_WAY_S),
    ("s2c-server-side", "r-srv", "r-cap1", RTT_SERVER_ONE_WAY_S),
    ("s2c-client-side", "r-cap0", "r-cli", RTT_CLIENT_ONE_WAY_S),
]
RTT_CAPTURES = ["rtt-http.pcap", "rtt-tls.pcap", "rtt-pipelined.pcap"]

ETH_P_ALL = 0x0003
SOL_PACKET = 263
PACKET_STATISTICS = 6
PACKET_OUTGOING = 4
SO_TIMESTAMPNS = getattr(socket, "SO_TIMESTAMPNS", 35)  # asm-generic value (x86-64, arm64)
SO_RCVBUFFORCE = getattr(socket, "SO_RCVBUFFORCE", 33)


def _spread(values: list[float], scale: float, digits: int = 1) -> dict:
    """min / median / p99 / max of ``values`` times ``scale``, rounded."""
    if not values:
        return {"min": None, "median": None, "p99": None, "max": None}
    v = sorted(values)

    def r(x: float) -> float:
        return round(x * scale, digits)

    return {
        "min": r(v[0]),
        "median": r(v[len(v) // 2]),
        "p99": r(v[min(len(v) - 1, int(len(v) * 0.99))]),
        "max": r(v[-1]),
    }


def rtt_forwarder(stages: list[list]) -> None:
    """The delay line (runs in the router namespace). One AF_PACKET socket per device; a frame
    read on a stage's input device (its kernel receive timestamp, SO_TIMESTAMPNS) is queued
    with due time = receive time + the stage's hold, and written unchanged to the stage's
    output device when due. The queues are FIFO and a due time is never earlier than the one
    before it, so the order of frames is kept. One thread: select() with a timeout until the
    next due frame (timer slack 1 ns).

    Talks to the script on stdin/stdout: prints ``ready`` once bound; ``report`` on stdin prints
    one JSON line of statistics since the last report (per stage: frames, bytes, lateness =
    send time - due time, hold = send time - receive time, wake = user-space receive time -
    kernel receive time; kernel drops, send errors) and starts new ones; EOF on stdin makes it
    print a last report and exit (so it also ends when the script dies)."""
    import collections
    import ctypes
    import select

    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None).prctl(29, 1, 0, 0, 0)  # PR_SET_TIMERSLACK: 1 ns
    # Real-time priority, so that curl, nginx and tcpdump on the same 2 CPUs do not hold a due
    # frame back for a time slice (4 ms outliers without it). It sleeps in select() between
    # frames, so it cannot starve anything.
    with contextlib.suppress(OSError, AttributeError):
        os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(50))
    socks: dict[str, socket.socket] = {}
    for _, dev_in, dev_out, _ in stages:
        for dev in (dev_in, dev_out):
            if dev not in socks:
                # protocol 0 until bound: nothing is queued from other devices meanwhile
                s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0)
                s.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, 8 << 20)
                s.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
                s.bind((dev, ETH_P_ALL))
                socks[dev] = s
    stage_of = {
        dev_in: (name, socks[dev_out], float(hold)) for name, dev_in, dev_out, hold in stages
    }
    queues: dict[str, collections.deque] = {name: collections.deque() for name, *_ in stages}
    out_of = {name: socks[dev_out] for name, _, dev_out, _ in stages}
    last_due = dict.fromkeys(queues, 0.0)
    dev_of_fd = {s.fileno(): dev for dev, s in socks.items()}
    stdin = sys.stdin.fileno()

    def fresh() -> dict:
        return {
            name: {"frames": 0, "bytes": 0, "late": [], "hold": [], "wake": [], "send_errors": 0}
            for name in queues
        }

    st = fresh()

    def report() -> str:
        nonlocal st
        drops = {}
        for dev, s in socks.items():
            _, dropped = struct.unpack("II", s.getsockopt(SOL_PACKET, PACKET_STATISTICS, 8))
            drops[dev] = dropped
        doc = {
            "stages": {},
            "kernel_drops": drops,
            "queued": {name: len(q) for name, q in queues.items()},
            "sched_fifo": os.sched_getscheduler(0) == os.SCHED_FIFO,
        }
        for name, _, _, hold in stages:
            x = st[name]
            doc["stages"][name] = {
                "hold_ms": hold * 1000,
                "frames": x["frames"],
                "bytes": x["bytes"],
                "send_errors": x["send_errors"],
                "lateness_us": _spread(x["late"], 1e6),
                "actual_hold_ms": _spread(x["hold"], 1e3, 3),
                "wake_us": _spread(x["wake"], 1e6),
            }
        st = fresh()
        return json.dumps(doc)

    print("ready", flush=True)
    pending = b""
    while True:
        now = time.time()
        for name, q in queues.items():
            while q and q[0][0] <= now:
                due, rx, frame = q.popleft()
                try:
                    out_of[name].send(frame)
                except OSError:
                    st[name]["send_errors"] += 1
                now = time.time()
                st[name]["late"].append(now - due)
                st[name]["hold"].append(now - rx)
        heads = [q[0][0] for q in queues.values() if q]
        timeout = max(0.0, min(heads) - time.time()) if heads else None
        readable, _, _ = select.select([stdin, *dev_of_fd], [], [], timeout)
        for fd in readable:
            if fd == stdin:
                data = os.read(stdin, 4096)
                if not data:
                    print(report(), flush=True)
                    return
                pending += data
                while b"\n" in pending:
                    line, pending = pending.split(b"\n", 1)
                    if line.strip() == b"report":
                        print(report(), flush=True)
                continue
            dev = dev_of_fd[fd]
            name, _, hold = stage_of[dev]
            while True:
                try:
                    frame, anc, _, addr = socks[dev].recvmsg(65536, 256, socket.MSG_DONTWAIT)
                except BlockingIOError:
                    break
                if addr[2] == PACKET_OUTGOING:  # our own writes are not looped back; be sure
                    continue
                t = time.time()
                rx = t
                for level, kind, data in anc:
                    if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS:
                        sec, nsec = struct.unpack("qq", data[:16])
                        rx = sec + nsec * 1e-9
                due = max(rx + hold, last_due[name])
                last_due[name] = due
                queues[name].append((due, rx, frame))
                x = st[name]
                x["frames"] += 1
                x["bytes"] += len(frame)
                x["wake"].append(t - rx)


def remove_stale_rtt_labs() -> None:
    """Namespaces of an earlier run that died (its pid is gone): kill what runs in them,
    delete them (their veths go with them)."""
    remove_stale(r"pcapan-rtt-(\d+)-(?:client|router|server)", log)
    for d in Path(tempfile.gettempdir()).glob("pcapan-rtt-*-*"):  # their temporary dirs
        m = re.fullmatch(r"pcapan-rtt-(\d+)-\w+", d.name)
        if m and d.is_dir() and int(m.group(1)) != os.getpid():
            try:
                os.kill(int(m.group(1)), 0)
            except ProcessLookupError:
                log(f"removing stale {d}")
                shutil.rmtree(d, ignore_errors=True)
            except PermissionError:
                pass


class RttLab:
    """The client/router/server namespaces, their veths and the forwarder. A context manager:
    on exit (also on error or a signal) the forwarder and every process started through
    ``procs`` are stopped, anything else still running in the namespaces is killed by pid, and
    the namespaces are deleted (with them the veths)."""

    def __init__(self, procs: Procs, tmp: Path) -> None:
        self.procs, self.tmp = procs, tmp
        self.prefix = f"pcapan-rtt-{os.getpid()}"
        self.ns = {role: f"{self.prefix}-{role}" for role in RTT_ROLES}
        self.fwd: subprocess.Popen | None = None
        self.checks: dict = {}

    def cmd(self, role: str, args: Sequence[str]) -> list[str]:
        return ["ip", "netns", "exec", self.ns[role], *args]

    def run(self, role: str, args: Sequence[str], **kw) -> subprocess.CompletedProcess:
        return run(self.cmd(role, args), **kw)

    def __enter__(self) -> RttLab:
        remove_stale_rtt_labs()
        try:
            self._setup()
        except BaseException:
            self._teardown()
            raise
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        self._teardown()

    def _setup(self) -> None:
        for role in RTT_ROLES:
            run(["ip", "netns", "add", self.ns[role]])
        # The router is a wire: no IPv6 (no link-local address, no NDP/MLD of its own) and no
        # IPv4 address. Client and server: no DAD (link-local usable at once) and no TCP
        # metrics cache, so no connection starts with what an earlier one learned.
        self.run(
            "router",
            [
                "sysctl",
                "-q",
                "-w",
                "net.ipv6.conf.all.disable_ipv6=1",
                "net.ipv6.conf.default.disable_ipv6=1",
            ],
        )
        for role in ("client", "server"):
            self.run(
                role,
                [
                    "sysctl",
                    "-q",
                    "-w",
                    "net.ipv6.conf.all.accept_dad=0",
                    "net.ipv6.conf.default.accept_dad=0",
                    "net.ipv4.tcp_no_metrics_save=1",
                ],
            )
        for (ra, da), (rb, db) in RTT_LINKS:
            run(
                [
                    "ip",
                    "link",
                    "add",
                    da,
                    "netns",
                    self.ns[ra],
                    "type",
                    "veth",
                    "peer",
                    "name",
                    db,
                    "netns",
                    self.ns[rb],
                ]
            )
        for role, dev in (end for link in RTT_LINKS for end in link):
            run(["ip", "-n", self.ns[role], "link", "set", dev, "mtu", "1500"])
            # wire-sized segments: no GRO/GSO/TSO, checksums computed in software
            self.run(
                role,
                [
                    "ethtool",
                    "-K",
                    dev,
                    "gro",
                    "off",
                    "gso",
                    "off",
                    "tso",
                    "off",
                    "tx",
                    "off",
                    "rx",
                    "off",
                ],
            )
            run(["ip", "-n", self.ns[role], "link", "set", dev, "up"])
        for role, dev, addr, other in (
            ("client", "c-eth", RTT_CLIENT_IP, "10.99.2.0/24"),
            ("server", "s-eth", RTT_SERVER_IP, "10.99.1.0/24"),
        ):
            run(["ip", "-n", self.ns[role], "link", "set", "lo", "up"])
            run(["ip", "-n", self.ns[role], "addr", "add", f"{addr}/24", "dev", dev])
            run(["ip", "-n", self.ns[role], "route", "add", other, "dev", dev])
        stages = json.dumps([list(s) for s in RTT_STAGES])
        self.fwd = self.procs.start(
            self.cmd(
                "router", [sys.executable, str(Path(__file__).resolve()), "--rtt-forwarder", stages]
            ),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        if self._line(10) != "ready":
            raise RuntimeError("the forwarder did not start")
        self._check_paths()

    def _line(self, timeout: float) -> str:
        import select

        assert self.fwd is not None and self.fwd.stdout is not None
        ready, _, _ = select.select([self.fwd.stdout], [], [], timeout)
        if not ready:
            raise RuntimeError("no answer from the forwarder")
        line = self.fwd.stdout.readline()
        if not line:
            raise RuntimeError(f"forwarder exited ({self.fwd.wait(5)})")
        return line.strip()

    def report(self) -> dict:
        """Forwarder statistics since the last report (and start new ones)."""
        assert self.fwd is not None and self.fwd.stdin is not None
        self.fwd.stdin.write("report\n")
        self.fwd.stdin.flush()
        return json.loads(self._line(10))

    def _ping(self, target: str, *opts: str) -> list[float]:
        out = self.run(
            "client", ["ping", *opts, "-n", "-c", "4", "-i", "0.2", "-W", "2", target]
        ).stdout.decode()
        return [float(t) for t in re.findall(r"time=([\d.]+) ms", out)]

    def _check_paths(self) -> None:
        """ICMP through the line before any capture: IPv4 (the first echo waits for ARP
        across the line) and IPv6 to the server's link-local address (NDP across the line).
        Both RTTs must be the sum of the holds, client to server (70 ms)."""
        v4 = self._ping(RTT_SERVER_IP)
        out = run(
            [
                "ip",
                "-n",
                self.ns["server"],
                "-6",
                "-o",
                "addr",
                "show",
                "dev",
                "s-eth",
                "scope",
                "link",
            ]
        ).stdout.decode()
        m = re.search(r"inet6 (fe80::[0-9a-f:]+)/", out)
        if not m:
            raise RuntimeError(f"server has no link-local IPv6 address: {out}")
        v6 = self._ping(f"{m.group(1)}%c-eth", "-6")
        want = RTT_CLIENT_SIDE_S + RTT_SERVER_SIDE_S
        self.checks = {"ping_ipv4_ms": v4, "ping_ipv6_link_local_ms": v6}
        log(f"ping through the line: IPv4 {v4} ms, IPv6 {v6} ms (want {want * 1000:.0f} ms)")
        for times in (v4, v6):
            if len(times) != 4 or not (
                want - RTT_EARLY_S <= min(times) / 1000 <= want + RTT_TOLERANCE_S
            ):
                raise RuntimeError(f"the delay line does not work: ping {v4} / {v6} ms")
        self.report()  # start counting afresh

    def _teardown(self) -> None:
        if self.fwd is not None and self.fwd.poll() is None:
            assert self.fwd.stdin is not None
            with contextlib.suppress(OSError):
                self.fwd.stdin.close()  # EOF: it prints a last report and exits
            try:
                self.fwd.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.fwd.kill()
                self.fwd.wait(timeout=5)
        self.procs.stop_all()
        existing = netns_list()
        for role in RTT_ROLES:
            if self.ns[role] in existing:
                kill_and_delete(self.ns[role], log)
        left = [n for n in netns_list() if n.startswith(self.prefix)]
        if left:
            log(f"WARNING: namespaces left behind: {left}")
        else:
            log(f"removed namespaces {', '.join(self.ns.values())} (and their veths)")

    @contextlib.contextmanager
    def capture(self, path: Path, ports: Sequence[int]) -> Iterator[dict]:
        """tcpdump on the capture wire (router namespace, r-cap0) while the body runs; the dict
        yielded receives the forwarder's statistics for the capture's time."""
        stats: dict = {}
        self.report()
        with capture(
            self.procs, path, bpf_ports(ports), iface=RTT_CAPTURE_DEV, netns=self.ns["router"]
        ):
            yield stats
        stats.update(self.report())
        bad = {n: s for n, s in stats["stages"].items() if s["send_errors"]}
        if bad or any(stats["kernel_drops"].values()) or any(stats["queued"].values()):
            raise RuntimeError(f"forwarder lost frames: {stats}")

    def curl(self, urls: list[str], *extra: str) -> list[dict]:
        """curl in the client namespace, one process, ``urls`` in order."""
        fmt = "%{http_code} %{num_connects} %{size_download} %{time_connect} %{url_effective}\\n"
        cmd = ["curl", "-sS", "--max-time", "20", "-w", fmt, *extra]
        for u in urls:
            cmd += [u, "-o", "/dev/null"]
        rows = []
        for line in self.run("client", cmd).stdout.decode().splitlines():
            code, nconn, size, t_connect, url = line.split(" ", 4)
            rows.append(
                {
                    "status": int(code),
                    "new_connection": int(nconn),
                    "size": int(size),
                    "time_connect_s": float(t_connect),
                    "url": url,
                }
            )
        log(f"curl: {rows}")
        if len(rows) != len(urls):
            raise RuntimeError(f"curl did {len(rows)} transfers, expected {len(urls)}")
        return rows

    def wait_listen(self, port: int, timeout: float = 10.0) -> None:
        """Until something listens on the server's port (asked with ss, no connection)."""
        deadline = time.monotonic() + timeout
        while not self.run("server", ["ss", "-Hltn", f"sport = :{port}"]).stdout.strip():
            if time.monotonic() > deadline:
                raise RuntimeError(f"nothing listens on {RTT_SERVER_IP}:{port}")
            time.sleep(0.05)


def rtt_docroot(root: Path) -> None:
    """The docroot of make_docroot plus the 200 KiB file (same generator)."""
    make_docroot(root)
    chunks = [
        hashlib.sha256(f"{RTT_BIG_FILE}:{n}".encode()).digest()
        for n in range(RTT_BIG_SIZE // 32 + 1)
    ]
    (root / RTT_BIG_FILE).write_bytes(b"".join(chunks)[:RTT_BIG_SIZE])
    os.utime(root / RTT_BIG_FILE, (FIXED_MTIME, FIXED_MTIME))


def start_rtt_nginx(lab: RttLab, tmp: Path) -> None:
    docroot = tmp / "rtt-www"
    rtt_docroot(docroot)
    conf = tmp / "rtt-nginx.conf"
    conf.write_text(f"""
daemon off;
master_process off;
worker_processes 1;
pid {tmp}/rtt-nginx.pid;
error_log {tmp}/rtt-error.log info;
events {{ worker_connections 64; }}
http {{
    access_log {tmp}/rtt-access.log;
    client_body_temp_path {tmp}/rtt-client_body;
    proxy_temp_path {tmp}/rtt-proxy;
    fastcgi_temp_path {tmp}/rtt-fastcgi;
    uwsgi_temp_path {tmp}/rtt-uwsgi;
    scgi_temp_path {tmp}/rtt-scgi;
    types {{ text/html html; text/plain txt; application/octet-stream bin; }}
    default_type application/octet-stream;
    server_tokens off;
    keepalive_timeout 30s;
    server {{
        listen {RTT_SERVER_IP}:{RTT_PORT_HTTP};
        listen {RTT_SERVER_IP}:{RTT_PORT_PIPELINED};
        root {docroot};
    }}
}}
""")
    lab.procs.start(
        lab.cmd(
            "server", ["nginx", "-p", str(tmp), "-c", str(conf), "-e", str(tmp / "rtt-error.log")]
        ),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    for port in (RTT_PORT_HTTP, RTT_PORT_PIPELINED):
        lab.wait_listen(port)


# --- RTT facts read back with tshark and tcptrace ----------------------------------------------
RTT_PKT_FIELDS = [
    "tcp.stream",
    "frame.time_epoch",
    "ip.src",
    "tcp.srcport",
    "ip.dst",
    "tcp.dstport",
    "tcp.flags.syn",
    "tcp.flags.ack",
    "tcp.len",
    "tcp.analysis.ack_rtt",
    "tcp.analysis.initial_rtt",
]


def _flag(v: str) -> bool:
    return v in ("1", "True")


def _secs(values: list[float]) -> dict:
    if not values:
        return {"samples": 0, "min_s": None, "median_s": None, "max_s": None}
    v = sorted(values)
    n = len(v)
    median = v[n // 2] if n % 2 else (v[n // 2 - 1] + v[n // 2]) / 2
    return {
        "samples": n,
        "min_s": round(v[0], 6),
        "median_s": round(median, 6),
        "max_s": round(v[-1], 6),
    }


def tshark_rtt(path: Path, server_ports: Sequence[int]) -> list[dict]:
    """Per TCP connection (tcp.stream order): addresses, handshake times and tshark's
    ack_rtt samples per side, from one pass of per-packet fields."""
    r = subprocess.run(
        [
            "tshark",
            "-r",
            str(path),
            "-n",
            "-T",
            "fields",
            "-E",
            "separator=/t",
            *[a for f in RTT_PKT_FIELDS for a in ("-e", f)],
        ],
        capture_output=True,
        text=True,
        timeout=CMD_TIMEOUT_S,
        check=True,
    )
    conns: dict[int, dict] = {}
    for line in r.stdout.splitlines():
        f = dict(zip(RTT_PKT_FIELDS, line.split("\t"), strict=True))
        stream, t = int(f["tcp.stream"]), float(f["frame.time_epoch"])
        from_server = int(f["tcp.srcport"]) in server_ports
        c = conns.setdefault(
            stream, {"pkts": [], "ack_rtt_client": [], "ack_rtt_server": [], "initial_rtt": None}
        )
        if not c["pkts"]:
            if not (_flag(f["tcp.flags.syn"]) and not _flag(f["tcp.flags.ack"])):
                raise RuntimeError(f"{path.name} stream {stream} does not start with a SYN")
            c["client"] = f"{f['ip.src']}:{f['tcp.srcport']}"
            c["server"] = f"{f['ip.dst']}:{f['tcp.dstport']}"
        c["pkts"].append((t, from_server, _flag(f["tcp.flags.syn"]), _flag(f["tcp.flags.ack"])))
        if f["tcp.analysis.ack_rtt"]:
            # An ACK from the client times the way capture point -> client -> capture point.
            side = "ack_rtt_server" if from_server else "ack_rtt_client"
            c[side].append(float(f["tcp.analysis.ack_rtt"]))
        if f["tcp.analysis.initial_rtt"] and c["initial_rtt"] is None:
            c["initial_rtt"] = float(f["tcp.analysis.initial_rtt"])
    out = []
    for stream in sorted(conns):
        c = conns[stream]
        pk = c["pkts"]
        syn = pk[0][0]
        synack = next(t for t, srv, s, a in pk if srv and s and a)
        ack = next(t for t, srv, s, a in pk if not srv and not s and a and t >= synack)
        out.append(
            {
                "tcp_stream": stream,
                "client": c["client"],
                "server": c["server"],
                "syn_to_synack_s": round(synack - syn, 6),
                "synack_to_ack_s": round(ack - synack, 6),
                "initial_rtt_s": c["initial_rtt"] and round(c["initial_rtt"], 6),
                "ack_rtt": {
                    "client_side": _secs(c["ack_rtt_client"]),
                    "server_side": _secs(c["ack_rtt_server"]),
                },
            }
        )
    return out


def tcptrace_rtt(path: Path) -> dict[tuple[str, str], dict]:
    """``tcptrace -l -r -n``: per connection (host a, host b) its RTT lines, both columns
    (a->b: segments a sent, timed by b's ACKs; b->a the other way)."""
    r = subprocess.run(
        ["tcptrace", "-l", "-r", "-n", str(path)],
        capture_output=True,
        text=True,
        timeout=CMD_TIMEOUT_S,
        check=True,
    )
    conns: dict[tuple[str, str], dict] = {}
    for block in re.split(r"^TCP connection \d+:\n", r.stdout, flags=re.M)[1:]:
        hosts = re.findall(r"^\s*host \w+:\s+(\S+)", block, re.M)[:2]
        cols: dict[str, tuple[float, float]] = {}
        for key, a2b, b2a in re.findall(
            r"RTT (samples|min|max|avg|stdev|from 3WHS):\s+([\d.]+)(?: ms)?\s+"
            r"RTT \1:\s+([\d.]+)",
            block,
        ):
            cols[key] = (float(a2b), float(b2a))
        conns[(hosts[0], hosts[1])] = cols
    return conns


def tcptrace_sides(cols: dict, client_is_a: bool) -> dict:
    """tcptrace's columns as client_side (segments the server sent, timed by the client's
    ACKs) and server_side."""

    def col(i: int) -> dict:
        return {
            "rtt_samples": int(cols["samples"][i]),
            "rtt_min_ms": cols["min"][i],
            "rtt_max_ms": cols["max"][i],
            "rtt_avg_ms": cols["avg"][i],
            "rtt_stdev_ms": cols["stdev"][i],
            "rtt_from_3whs_ms": cols["from 3WHS"][i],
        }

    a2b, b2a = col(0), col(1)
    return (
        {"client_side": b2a, "server_side": a2b}
        if client_is_a
        else {"client_side": a2b, "server_side": b2a}
    )


def http_requests_per_stream(path: Path, ports: Sequence[int]) -> dict[int, dict]:
    cmd = [
        "tshark",
        "-r",
        str(path),
        "-n",
        *[a for p in ports for a in ("-d", f"tcp.port=={p},http")],
        "-o",
        "http.desegment_body:FALSE",
        "-Y",
        "http.request || http.response",
        "-T",
        "fields",
        "-E",
        "aggregator=|",
        "-e",
        "tcp.stream",
        "-e",
        "http.request.method",
        "-e",
        "http.response.code",
    ]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=CMD_TIMEOUT_S, check=True)
    out: dict[int, dict] = {}
    for line in r.stdout.splitlines():
        stream, methods, codes = line.split("\t")
        c = out.setdefault(int(stream), {"http_requests": 0, "http_responses": []})
        c["http_requests"] += len(methods.split("|")) if methods else 0
        c["http_responses"] += [int(x) for x in codes.split("|")] if codes else []
    return out


def tls_rtt_times(path: Path, ports: Sequence[int]) -> dict[int, dict]:
    """Per TLS connection: ClientHello -> ServerHello and ClientHello -> the client's first
    application data record that is not its TLS 1.3 Finished (the HTTP request), seconds."""
    rows = tshark_tls(
        path,
        ports,
        "tls.record",
        [
            "tcp.stream",
            "frame.time_epoch",
            "tcp.srcport",
            "tls.record.content_type",
            "tls.record.opaque_type",
            "tls.handshake.type",
            "tls.handshake.extensions.supported_version",
        ],
    )
    conns: dict[int, dict] = {}
    for stream, t, sport, ctypes, opaque, htypes, versions in rows:
        c = conns.setdefault(int(stream), {"app_data": 0})
        from_server = int(sport) in ports
        hs = htypes.split("|") if htypes else []
        if not from_server and "1" in hs and "ch" not in c:
            c["ch"] = float(t)
        if from_server and "2" in hs and "sh" not in c:
            c["sh"] = float(t)
            c["v13"] = "0x0304" in versions.split("|")
        if not from_server and "sh" in c:
            # tshark 4.0 puts a TLS 1.3 encrypted record's type in opaque_type
            for ct in ctypes.split("|") + opaque.split("|"):
                if ct == "23":
                    c["app_data"] += 1
                    # TLS 1.3: the client's first encrypted record is its Finished
                    if "req" not in c and c["app_data"] == (2 if c["v13"] else 1):
                        c["req"] = float(t)
    return {
        k: {
            "tls_client_hello_to_server_hello_s": round(c["sh"] - c["ch"], 6),
            "tls_client_hello_to_request_s": round(c["req"] - c["ch"], 6),
        }
        for k, c in conns.items()
    }


def rtt_wire_facts(path: Path, ports: Sequence[int]) -> list[dict]:
    """Facts of every connection of an RTT capture; fails unless the measured times match
    the configured holds (within RTT_TOLERANCE_S above, RTT_EARLY_S below)."""
    conns = tshark_rtt(path, ports)
    trace = tcptrace_rtt(path)
    for c in conns:
        key = (c["client"], c["server"])
        cols = trace.get(key) or trace.get(key[::-1])
        if cols is None:
            raise RuntimeError(f"{path.name}: tcptrace has no connection {key}")
        c["tcptrace"] = tcptrace_sides(cols, client_is_a=key in trace)
    flags = subprocess.run(
        [
            "tshark",
            "-r",
            str(path),
            "-n",
            "-Y",
            "tcp.analysis.flags && !tcp.analysis.window_update",
            "-T",
            "fields",
            "-e",
            "frame.number",
            "-e",
            "_ws.expert.message",
        ],
        capture_output=True,
        text=True,
        timeout=CMD_TIMEOUT_S,
        check=True,
    ).stdout.strip()
    if flags:  # a lost, reordered or retransmitted segment would show here
        raise RuntimeError(f"{path.name}: tshark TCP analysis flags:\n{flags}")
    want = {
        "syn_to_synack_s": RTT_SERVER_SIDE_S,
        "synack_to_ack_s": RTT_CLIENT_SIDE_S,
        "initial_rtt_s": RTT_SERVER_SIDE_S + RTT_CLIENT_SIDE_S,
    }
    for c in conns:
        bad = {
            k: (c[k], w)
            for k, w in want.items()
            if c[k] is None or not w - RTT_EARLY_S <= c[k] <= w + RTT_TOLERANCE_S
        }
        for side, w in (("client_side", RTT_CLIENT_SIDE_S), ("server_side", RTT_SERVER_SIDE_S)):
            a = c["ack_rtt"][side]
            if not a["samples"] or not w - RTT_EARLY_S <= a["min_s"] <= w + RTT_TOLERANCE_S:
                bad[f"ack_rtt {side}"] = (a, w)
            t = c["tcptrace"][side]
            if t["rtt_samples"] and not (
                w * 1000 - 0.1 <= t["rtt_min_ms"] <= (w + RTT_TOLERANCE_S) * 1000
            ):
                bad[f"tcptrace {side}"] = (t, w)
        if bad:
            raise RuntimeError(
                f"{path.name} stream {c['tcp_stream']}: measured (got, configured): {bad}"
            )
    return conns


def finish_rtt_capture(
    out: Path, path: Path, ports: Sequence[int], stats: dict, meta: list[dict]
) -> None:
    """Check an RTT capture made in the temporary directory against the delays and the
    scenario (``meta``: one dict per connection, in order, merged into its facts), then move
    it to ``out`` and write its entries of rtt-facts.json."""
    conns = rtt_wire_facts(path, ports)
    if len(conns) != len(meta):
        raise RuntimeError(f"{path.name}: {len(conns)} connections, expected {len(meta)}")
    http_ports = [p for p in ports if p not in (RTT_PORT_TLS12, RTT_PORT_TLS13)]
    http = http_requests_per_stream(path, http_ports) if http_ports else {}
    tls_ports = [p for p in ports if p in (RTT_PORT_TLS12, RTT_PORT_TLS13)]
    tls = {w["tcp_stream"]: w for w in wire_facts(path, tls_ports)} if tls_ports else {}
    tls_times = tls_rtt_times(path, tls_ports) if tls_ports else {}
    entries = []
    for c, m in zip(conns, meta, strict=True):
        m = dict(m)
        client_view = m.pop("client_view")
        e = {
            "file": path.name,
            **c,
            "one_way_delay_s": {
                "client_side": RTT_CLIENT_ONE_WAY_S,
                "server_side": RTT_SERVER_ONE_WAY_S,
            },
            **m,
        }
        if c["server"] != f"{RTT_SERVER_IP}:{m['server_port']}":
            raise RuntimeError(
                f"{path.name} stream {c['tcp_stream']}: {c['server']}, "
                f"expected port {m['server_port']}"
            )
        del e["server_port"]
        if "http_requests" in m:
            got = http.get(c["tcp_stream"], {"http_requests": 0, "http_responses": []})
            if (got["http_requests"], got["http_responses"]) != (
                m["http_requests"],
                m["http_responses"],
            ):
                raise RuntimeError(
                    f"{path.name} stream {c['tcp_stream']}: tshark HTTP {got}, expected {m}"
                )
        if "tls_version" in m:
            w = tls.get(c["tcp_stream"])
            if not w or (w["version"], w["cipher"]) != (m["tls_version"], m["tls_cipher"]):
                raise RuntimeError(
                    f"{path.name} stream {c['tcp_stream']}: tshark TLS {w}, expected {m}"
                )
            times = tls_times[c["tcp_stream"]]
            e.update(times)
            # The request can leave the client after 2 round trips (TLS 1.2) or 1 (TLS 1.3)
            # plus what the two ends compute; the ServerHello after 1 server-side RTT.
            full = RTT_CLIENT_SIDE_S + RTT_SERVER_SIDE_S
            lo = m["tls_round_trips"] * full
            if not (
                lo - RTT_EARLY_S <= times["tls_client_hello_to_request_s"] <= lo + RTT_TLS_WORK_S
            ) or not (
                RTT_SERVER_SIDE_S - RTT_EARLY_S
                <= times["tls_client_hello_to_server_hello_s"]
                <= RTT_SERVER_SIDE_S + RTT_TLS_WORK_S
            ):
                raise RuntimeError(f"{path.name} stream {c['tcp_stream']}: TLS times {times}")
        e["client_view"] = client_view
        entries.append(e)
    log(
        f"{path.name}: {len(entries)} connections, RTTs as configured: "
        + "; ".join(
            f"stream {e['tcp_stream']} SYN->SYN/ACK {e['syn_to_synack_s'] * 1000:.2f} ms, "
            f"SYN/ACK->ACK {e['synack_to_ack_s'] * 1000:.2f} ms"
            for e in entries
        )
    )
    shutil.move(path, out / path.name)
    write_rtt_facts(out, path.name, stats, entries)


def write_rtt_facts(out: Path, name: str, stats: dict, entries: list[dict]) -> None:
    """Merge one capture's forwarder statistics and connections into out/rtt-facts.json."""
    path = out / "rtt-facts.json"
    old = json.loads(path.read_text()) if path.exists() else {}
    captures = {k: v for k, v in old.get("captures", {}).items() if k != name}
    captures[name] = {"forwarder": stats}
    conns = [e for e in old.get("connections", []) if e["file"] != name] + entries
    order = {n: i for i, n in enumerate(RTT_CAPTURES)}
    conns.sort(key=lambda e: (order.get(e["file"], len(order)), e["file"], e["tcp_stream"]))
    doc = {
        "about": "Connections of the rtt-*.pcap samples, made through a delay line of known "
        "one-way delays and read back with tshark 4.0 and tcptrace 6.6.7 by "
        "make_samples.py (see samples/README.md). Client ports are those of the "
        "committed files.",
        "lab": {
            "capture_point": "tcpdump on r-cap0 in the router namespace, between the client "
            "stage and the server stage of the forwarder",
            "client": f"{RTT_CLIENT_IP}/24 (c-eth), route to 10.99.2.0/24 on-link",
            "server": f"{RTT_SERVER_IP}/24 (s-eth), route to 10.99.1.0/24 on-link",
            "one_way_delay_s": {
                "client_side": RTT_CLIENT_ONE_WAY_S,
                "server_side": RTT_SERVER_ONE_WAY_S,
            },
            "expected_rtt_s": {
                "client_side": RTT_CLIENT_SIDE_S,
                "server_side": RTT_SERVER_SIDE_S,
                "initial": RTT_CLIENT_SIDE_S + RTT_SERVER_SIDE_S,
            },
            "stages": [{"name": n, "from": a, "to": b, "hold_s": h} for n, a, b, h in RTT_STAGES],
            "mtu": 1500,
            "offloads": "gro, gso, tso, tx and rx checksumming off on every veth",
        },
        "keys": {
            "tcp_stream": "tshark's tcp.stream of the connection in the file",
            "client / server": "address:port (client = sender of the SYN)",
            "syn_to_synack_s": "time at the capture point from the SYN to the SYN/ACK: the "
            "server-side RTT",
            "synack_to_ack_s": "from the SYN/ACK to the client's first ACK: the client-side RTT",
            "initial_rtt_s": "tshark tcp.analysis.initial_rtt (SYN to the handshake's ACK)",
            "ack_rtt": "tshark tcp.analysis.ack_rtt per side: client_side = on ACKs sent by the "
            "client (capture point -> client -> capture point), server_side = on "
            "ACKs sent by the server; samples, min/median/max in seconds",
            "tcptrace": "tcptrace -l -r -n, per side (client_side = the server's segments, "
            "timed by the client's ACKs: tcptrace's b->a column when the client is "
            "host a): RTT samples, min/max/avg/stdev and RTT from 3WHS in ms "
            "(tcptrace prints one decimal)",
            "one_way_delay_s": "the forwarder's hold per direction on each side",
            "http_requests / http_responses": "HTTP requests and status codes tshark shows on "
            "the connection",
            "tls_version / tls_cipher": "ServerHello version and cipher suite (tshark)",
            "tls_round_trips": "handshake round trips before the client may send its request "
            "(2 for a TLS 1.2 full handshake, 1 for TLS 1.3)",
            "tls_client_hello_to_server_hello_s": "at the capture point: the server-side RTT "
            "plus the server's work (signature)",
            "tls_client_hello_to_request_s": "ClientHello to the client's first application "
            "data record that is not its TLS 1.3 Finished: "
            "tls_round_trips x 70 ms plus both ends' work",
            "client_view": "what the client program reported: curl's time_connect (SYN sent "
            "to SYN/ACK received: the full RTT, 70 ms), or s_client's summary",
            "captures.*.forwarder": "the forwarder's own statistics over the capture's time: per "
            "stage frames, bytes, lateness_us (send time - due time), "
            "actual_hold_ms (send time - kernel receive time), wake_us "
            "(user-space receive - kernel receive), send_errors; "
            "kernel_drops per packet socket; frames still queued; "
            "whether it ran with SCHED_FIFO",
        },
        "captures": {k: captures[k] for k in sorted(captures, key=lambda n: order.get(n, 99))},
        "connections": conns,
    }
    path.write_text(json.dumps(doc, indent=2) + "\n")
    log(f"{path.name}: {len(conns)} connections")


# --- RTT scenarios ---------------------------------------------------------------------------
def sc_rtt_http(lab: RttLab, out: Path, tmp: Path) -> None:
    path = tmp / "rtt-http.pcap"
    base = f"http://{RTT_SERVER_IP}:{RTT_PORT_HTTP}"
    with lab.capture(path, [RTT_PORT_HTTP]) as stats:
        keep = lab.curl([f"{base}/small.txt", f"{base}/{RTT_BIG_FILE}"], "--http1.1")
        close = lab.curl([f"{base}/index.html"], "--http1.1", "-H", "Connection: close")
    got = [(r["status"], r["new_connection"], r["size"]) for r in keep + close]
    if got != [(200, 1, FILES["small.txt"]), (200, 0, RTT_BIG_SIZE), (200, 1, len(INDEX_HTML))]:
        raise RuntimeError(f"rtt-http: {got}")
    finish_rtt_capture(
        out,
        path,
        [RTT_PORT_HTTP],
        stats,
        [
            {
                "server_port": RTT_PORT_HTTP,
                "what": f"keep-alive: GET /small.txt, GET /{RTT_BIG_FILE}",
                "http_requests": 2,
                "http_responses": [200, 200],
                "client_view": {"program": "curl", "time_connect_s": keep[0]["time_connect_s"]},
            },
            {
                "server_port": RTT_PORT_HTTP,
                "what": "GET /index.html with Connection: close",
                "http_requests": 1,
                "http_responses": [200],
                "client_view": {"program": "curl", "time_connect_s": close[0]["time_connect_s"]},
            },
        ],
    )


def sc_rtt_tls(lab: RttLab, out: Path, tmp: Path) -> None:
    path = tmp / "rtt-tls.pcap"
    docs = tmp / "rtt-tls-www"
    docs.mkdir(exist_ok=True)
    (docs / "hello.txt").write_bytes(TLS_FILE)
    key, cert = tmp / "key.pem", tmp / "cert.pem"
    if not cert.exists():
        make_cert(tmp)
    servers = []
    cases = [
        (RTT_PORT_TLS12, "-tls1_2", V12, ECDHE_AES256),
        (RTT_PORT_TLS13, "-tls1_3", V13, AES256_13),
    ]
    try:
        for port, opt, _, _ in cases:
            cmd = lab.cmd(
                "server",
                [
                    "openssl",
                    "s_server",
                    "-accept",
                    f"{RTT_SERVER_IP}:{port}",
                    "-cert",
                    str(cert),
                    "-key",
                    str(key),
                    "-WWW",
                    opt,
                ],
            )
            servers.append(OpenSSLProc(lab.procs, cmd, tmp / f"rtt-s_server-{port}.log", docs))
        for s in servers:
            s.wait_for("ACCEPT")
        reports = []
        with lab.capture(path, [p for p, *_ in cases]) as stats:
            for port, _, _, _ in cases:
                r = lab.run(
                    "client",
                    [
                        "openssl",
                        "s_client",
                        "-connect",
                        f"{RTT_SERVER_IP}:{port}",
                        "-servername",
                        f"rtt.{TLS_NAME}",
                        "-ign_eof",
                    ],
                    input=TLS_REQUEST,
                    check=False,
                )
                info = parse_s_client((r.stdout + r.stderr).decode("latin-1"))
                log(f"s_client {port} (rc {r.returncode}): {info}")
                if r.returncode != 0 or not info["got_file"]:
                    raise RuntimeError(f"s_client to {port} failed: {info}")
                reports.append(info)
    finally:
        for s in servers:
            s.stop()
    meta = []
    for (port, _, version, cipher), info in zip(cases, reports, strict=True):
        if (info["handshake"], info["version"], openssl_to_iana(info["cipher"])) != (
            "New",
            version,
            cipher,
        ):
            raise RuntimeError(f"rtt-tls {port}: {info}")
        meta.append(
            {
                "server_port": port,
                "what": f"{version} full handshake, then GET /hello.txt HTTP/1.0",
                "tls_version": version,
                "tls_cipher": cipher,
                "tls_round_trips": 2 if version == V12 else 1,
                "client_view": {
                    "program": "openssl s_client",
                    "handshake": info["handshake"],
                    "version": info["version"],
                    "cipher": info["cipher"],
                    "got_file": info["got_file"],
                },
            }
        )
    finish_rtt_capture(out, path, [p for p, *_ in cases], stats, meta)


def sc_rtt_pipelined(lab: RttLab, out: Path, tmp: Path) -> None:
    path = tmp / "rtt-pipelined.pcap"
    with lab.capture(path, [RTT_PORT_PIPELINED]) as stats:
        lab.run(
            "client",
            [
                sys.executable,
                str(Path(__file__).resolve()),
                "--rtt-pipelined-client",
                f"{RTT_SERVER_IP}:{RTT_PORT_PIPELINED}",
            ],
        )
    finish_rtt_capture(
        out,
        path,
        [RTT_PORT_PIPELINED],
        stats,
        [
            {
                "server_port": RTT_PORT_PIPELINED,
                "what": "GET /index.html, /small.txt, /medium.bin (Connection: close) in one segment",
                "http_requests": 3,
                "http_responses": [200, 200, 200],
                "client_view": {
                    "program": "pipelined_client (Python socket)",
                    "responses_in_order": True,
                },
            },
        ],
    )


def run_rtt(out: Path, names: list[str]) -> None:
    """The RTT scenarios: build the lab (as root, from the host namespace), run them, remove
    everything again."""
    steps = {"rtt-http": sc_rtt_http, "rtt-tls": sc_rtt_tls, "rtt-pipelined": sc_rtt_pipelined}
    assert list(steps) == RTT_SCENARIOS
    procs = Procs()
    tmp = Path(tempfile.mkdtemp(prefix=f"pcapan-rtt-{os.getpid()}-"))
    try:
        os.chmod(tmp, 0o755)
        with RttLab(procs, tmp) as lab:
            if {"rtt-http", "rtt-pipelined"} & set(names):
                start_rtt_nginx(lab, tmp)
            for name, step in steps.items():
                if name in names:
                    log(f"--- scenario {name}")
                    step(lab, out, tmp)
    except BaseException:
        err = tmp / "rtt-error.log"
        if err.exists():
            log("nginx error.log tail:\n" + "".join(err.read_text().splitlines(True)[-20:]))
        raise
    finally:
        procs.stop_all()
        shutil.rmtree(tmp, ignore_errors=True)


# --- same packets in .pcap and .pcapng --------------------------------------------------------
def read_records(path: Path) -> list[tuple[float, bytes]]:
    import dpkt

    with path.open("rb") as f:
        head = f.read(4)
        f.seek(0)
        reader = dpkt.pcapng.Reader(f) if head == b"\x0a\x0d\x0d\x0a" else dpkt.pcap.Reader(f)
        return [(ts, bytes(buf)) for ts, buf in reader]


def same_packets(a: Path, b: Path) -> None:
    """Two captures of the same traffic hold the same packets (order may differ, see README)."""
    ra, rb = [x[1] for x in read_records(a)], [x[1] for x in read_records(b)]
    if sorted(ra) != sorted(rb):
        raise RuntimeError(f"{a.name} and {b.name} differ ({len(ra)} vs {len(rb)} packets)")
    moved = sum(x != y for x, y in zip(ra, rb, strict=True))
    log(f"{a.name} and {b.name}: same {len(ra)} packets, {moved} at a different position")


# --- lossy.pcap --------------------------------------------------------------------------------
PCAP_REC = struct.Struct("<IIII")


def make_lossy(src: Path, dst: Path, edits_path: Path) -> dict:
    """Drop, swap and duplicate whole records of ``src``; record bytes stay as captured."""
    import dpkt

    raw = src.read_bytes()
    if raw[:4] != b"\xd4\xc3\xb2\xa1":
        raise RuntimeError("expected a little-endian microsecond pcap from tcpdump")
    ghdr, pos = raw[:24], 24
    recs: list[tuple[int, int, int, bytes]] = []  # (sec, usec, orig_len, data)
    while pos < len(raw):
        sec, usec, incl, orig = PCAP_REC.unpack_from(raw, pos)
        pos += 16
        recs.append((sec, usec, orig, raw[pos : pos + incl]))
        pos += incl

    def tcp_of(data: bytes):
        ip = dpkt.ethernet.Ethernet(data).data
        return ip, ip.data

    # First connection: the first SYN in the file.
    first = next(tcp_of(r[3]) for r in recs if tcp_of(r[3])[1].flags & dpkt.tcp.TH_SYN)
    cport = first[1].sport
    server_data = []  # record indexes of server->client segments with payload
    isn = None
    for i, r in enumerate(recs):
        ip, tcp = tcp_of(r[3])
        if tcp.sport == PORT_KEEPALIVE and tcp.dport == cport:
            if tcp.flags & dpkt.tcp.TH_SYN:
                isn = tcp.seq
            if len(tcp.data):
                server_data.append(i)
    mss_payload = max(len(tcp_of(recs[i][3])[1].data) for i in server_data)
    full = [i for i in server_data if len(tcp_of(recs[i][3])[1].data) == mss_payload]

    drop = full[LOSSY_DROP_NTH - 1]
    swap_a = next(i for i in full[LOSSY_SWAP_FROM_NTH - 1 :] if i + 1 in full)
    swap_b = swap_a + 1
    dup = full[LOSSY_DUP_NTH - 1]
    if len({drop, swap_a, swap_b, dup}) != 4 or not drop < swap_a < dup:
        raise RuntimeError("lossy edit positions overlap")

    def seg(i: int) -> dict:
        tcp = tcp_of(recs[i][3])[1]
        offset = (tcp.seq - isn - 1) % 2**32  # of the first payload byte in the stream
        return {
            "src_frame": i + 1,
            "stream_offset": offset,
            "tshark_rel_seq": offset + 1,
            "len": len(tcp.data),
        }

    out: list[tuple[int, int, int, bytes, int]] = []  # + source index
    dup_insert_after = dup + LOSSY_DUP_DELAY_FRAMES
    for i, r in enumerate(recs):
        if i == drop:
            continue
        if i == swap_a:  # data of b in a's time slot
            b = recs[swap_b]
            out.append((r[0], r[1], b[2], b[3], swap_b))
            continue
        if i == swap_b:
            a = recs[swap_a]
            out.append((r[0], r[1], a[2], a[3], swap_a))
            continue
        out.append((*r, i))
        if i == dup_insert_after:  # copy of dup, stamped with the frame it follows
            d = recs[dup]
            out.append((r[0], r[1], d[2], d[3], dup))
    with dst.open("wb") as f:
        f.write(ghdr)
        for sec, usec, orig, data, _ in out:
            f.write(PCAP_REC.pack(sec, usec, len(data), orig))
            f.write(data)

    def new_frames(src_index: int) -> list[int]:
        return [n + 1 for n, o in enumerate(out) if o[4] == src_index]

    edits = {
        "source": src.name,
        "connection": {"client_port": cport, "server_port": PORT_KEEPALIVE},
        "full_size_payload": mss_payload,
        "source_frames": len(recs),
        "lossy_frames": len(out),
        "dropped": {**seg(drop), "nth_full_segment": LOSSY_DROP_NTH},
        "swapped": [
            {**seg(swap_a), "lossy_frame": new_frames(swap_a)[0]},
            {**seg(swap_b), "lossy_frame": new_frames(swap_b)[0]},
        ],
        "duplicated": {
            **seg(dup),
            "nth_full_segment": LOSSY_DUP_NTH,
            "lossy_frames": new_frames(dup),
        },
        "note": "swapped frames keep the timestamps of their slots; the duplicate carries the "
        "timestamp of the frame it follows; all record data is byte-identical to the "
        "source",
    }
    edits_path.write_text(json.dumps(edits, indent=2) + "\n")
    log(f"lossy edits: {json.dumps(edits)}")
    return edits


# --- driver ----------------------------------------------------------------------------------
def setup_namespace_loopback() -> None:
    # MTU 1500 and one segment per GSO packet: the capture sees wire-sized segments.
    run(
        [
            "ip",
            "link",
            "set",
            "lo",
            "up",
            "mtu",
            "1500",
            "gso_max_size",
            "1500",
            "gso_max_segs",
            "1",
        ]
    )
    run(["ip", "addr", "show", "lo"])


# Scenario names for --only, in the order they run, with the captures each one writes.
SCENARIOS: dict[str, list[str]] = {
    "keepalive": ["http-keepalive.pcap", "http-keepalive.pcapng"],
    "close": ["http-close.pcap"],
    "pipelined": ["http-pipelined.pcap"],
    "tls": ["tls.pcap"],
    "ipv6": ["ipv6-http.pcap"],
    "sll": ["http-sll2.pcap", "http-sll.pcap"],  # whichever link type tcpdump offers
    "rst": ["rst.pcap"],
    "lossy": ["lossy.pcap"],  # derived from the http-keepalive.pcap in the output directory
    "methods": ["http-methods.pcap"],
    "vhosts": ["http-vhosts.pcap"],
    "chunked": ["http-chunked.pcap"],
    "expect": ["http-expect.pcap"],
    "upgrade": ["http-upgrade.pcap"],
    "connect": ["http-connect.pcap"],
    "connect-plain": ["plain-http-in-connect.pcap"],
    "http2": ["plain-h2c.pcap"],
    # TLS feature captures: each also rewrites its entries of tls-facts.json
    "tls-versions": ["tls-versions.pcap"],
    "tls-hrr": ["tls-hrr.pcap"],
    "tls-resume": ["tls-resume.pcap"],
    "tls-0rtt": ["tls-0rtt.pcap"],
    "tls-alpn": ["tls-alpn.pcap"],
    "tls-alert": ["tls-alert.pcap"],
    "tls-big-hello": ["tls-big-hello.pcap"],
    "reuse": ["http-reuse.pcap"],
    "credentials": ["http-credentials.pcap"],
    # RTT captures through the delay line (three namespaces, run from the host namespace);
    # each also rewrites its entries of rtt-facts.json
    "rtt-http": ["rtt-http.pcap"],
    "rtt-tls": ["rtt-tls.pcap"],
    "rtt-pipelined": ["rtt-pipelined.pcap"],
}
RTT_SCENARIOS = ["rtt-http", "rtt-tls", "rtt-pipelined"]


def parse_only(text: str) -> list[str]:
    names = [n.strip() for n in text.split(",") if n.strip()]
    unknown = [n for n in names if n not in SCENARIOS]
    if unknown or not names:
        raise argparse.ArgumentTypeError(
            f"unknown scenario(s) {', '.join(unknown) or '(none given)'}; "
            f"choose from {', '.join(SCENARIOS)}"
        )
    return names


def inside(out: Path, netns: bool, only: list[str]) -> None:
    signal.signal(signal.SIGTERM, _raise_on_sigterm)
    if netns:
        setup_namespace_loopback()
    procs = Procs()
    tmp = Path(tempfile.mkdtemp(prefix="pcapan-samples-"))
    try:
        os.chmod(tmp, 0o755)
        make_docroot(tmp / "www")
        make_vhost_docroots(tmp)
        key, cert = make_cert(tmp)
        conf = nginx_conf(tmp, tmp / "www", key, cert)
        nginx = procs.start(
            ["nginx", "-p", str(tmp), "-c", str(conf), "-e", str(tmp / "error.log")],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for port in (
            PORT_KEEPALIVE,
            PORT_CLOSE,
            PORT_PIPELINED,
            PORT_SLL,
            PORT_RST,
            PORT_TLS,
            PORT_METHODS,
            PORT_VHOSTS,
            PORT_H2C,
            PORT_TLS_TUNNEL,
            PORT_H2_PRIOR,
            PORT_REUSE,
            PORT_CREDENTIALS,
        ):
            wait_port("127.0.0.1", port)
        wait_port("::1", PORT_IPV6)
        if nginx.poll() is not None:
            raise RuntimeError("nginx exited")
        time.sleep(0.2)

        steps = {
            "keepalive": lambda: sc_keepalive(procs, out),
            "close": lambda: sc_close(procs, out),
            "pipelined": lambda: sc_pipelined(procs, out),
            "tls": lambda: sc_tls(procs, out, tmp),
            "ipv6": lambda: sc_ipv6(procs, out),
            "sll": lambda: sc_sll(procs, out),
            "rst": lambda: sc_rst(procs, out),
            "lossy": lambda: make_lossy(
                out / "http-keepalive.pcap", out / "lossy.pcap", out / "lossy.edits.json"
            ),
            "methods": lambda: sc_methods(procs, out),
            "vhosts": lambda: sc_vhosts(procs, out),
            "chunked": lambda: sc_chunked(procs, out, tmp),
            "expect": lambda: sc_expect(procs, out, tmp),
            "upgrade": lambda: sc_upgrade(procs, out),
            "connect": lambda: sc_connect(procs, out),
            "connect-plain": lambda: sc_connect_plain(procs, out),
            "http2": lambda: sc_http2(procs, out, tmp),
            "tls-versions": lambda: sc_tls_versions(procs, out, tmp),
            "tls-hrr": lambda: sc_tls_hrr(procs, out, tmp),
            "tls-resume": lambda: sc_tls_resume(procs, out, tmp),
            "tls-0rtt": lambda: sc_tls_early_data(procs, out, tmp),
            "tls-alpn": lambda: sc_tls_alpn(procs, out, tmp),
            "tls-alert": lambda: sc_tls_alert(procs, out, tmp),
            "tls-big-hello": lambda: sc_tls_big_hello(procs, out, tmp),
            "reuse": lambda: sc_reuse(procs, out),
            "credentials": lambda: sc_credentials(procs, out),
        }
        assert list(steps) == [n for n in SCENARIOS if n not in RTT_SCENARIOS]
        for name, step in steps.items():
            if name in only:
                log(f"--- scenario {name}")
                step()
        if nginx.poll() is not None:
            raise RuntimeError("nginx died during the scenarios")
    except BaseException:
        err = tmp / "error.log"
        if err.exists():
            log("nginx error.log tail:\n" + "".join(err.read_text().splitlines(True)[-20:]))
        raise
    finally:
        procs.stop_all()
        shutil.rmtree(tmp, ignore_errors=True)
        (out / "http-sll.tmp.pcap").unlink(missing_ok=True)


def outside(out: Path, only: list[str]) -> None:
    # PCAPAN_SAMPLES_NETNS: the namespace name's prefix (when several people make samples at once)
    ns = f"{os.environ.get('PCAPAN_SAMPLES_NETNS', 'pcapan-samples')}-{os.getpid()}"
    cmd = [sys.executable, str(Path(__file__).resolve()), "--inside", "--outdir", str(out)]
    rc = run_in_new_netns(ns, [*cmd, "--only", ",".join(only)], log, timeout=600)
    if rc != 0:
        raise SystemExit(f"scenarios failed (exit {rc})")


def check_complete(path: Path) -> None:
    """Every TCP connection in the file has its SYN and a FIN per direction or a RST."""
    r = subprocess.run(
        [
            "tshark",
            "-r",
            str(path),
            "-T",
            "fields",
            "-e",
            "tcp.stream",
            "-e",
            "tcp.srcport",
            "-e",
            "tcp.flags.syn",
            "-e",
            "tcp.flags.fin",
            "-e",
            "tcp.flags.reset",
        ],
        capture_output=True,
        text=True,
        timeout=CMD_TIMEOUT_S,
        check=True,
    )
    seen: dict[str, dict] = {}
    for line in r.stdout.splitlines():
        stream, sport, syn, fin, rst = line.split("\t")
        st = seen.setdefault(stream, {"syn": False, "fin_from": set(), "rst": False})
        st["syn"] |= syn in ("1", "True")
        st["rst"] |= rst in ("1", "True")
        if fin in ("1", "True"):
            st["fin_from"].add(sport)
    bad = {
        k: v for k, v in seen.items() if not v["syn"] or not (v["rst"] or len(v["fin_from"]) == 2)
    }
    if not seen or bad:
        raise RuntimeError(f"{path.name}: incomplete connections {bad or '(none at all)'}")
    log(f"{path.name}: {len(seen)} complete TCP connections")


def print_conversations(out: Path, only: list[str]) -> None:
    """Check and summarise the captures written by the scenarios that ran."""
    names = {f for n in only for f in SCENARIOS[n]}
    files = sorted(p for p in out.iterdir() if p.name in names)
    for p in files:
        check_complete(p)
    for p in files:
        r = subprocess.run(
            ["tshark", "-r", str(p), "-q", "-z", "conv,tcp"],
            capture_output=True,
            text=True,
            timeout=CMD_TIMEOUT_S,
        )
        print(f"\n##### {p.name} ({p.stat().st_size} bytes)")
        print(r.stdout.rstrip())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--outdir", type=Path, default=HERE, help="where to write (default: samples/)")
    ap.add_argument(
        "--no-netns",
        action="store_true",
        help="use the host loopback instead of a private namespace",
    )
    ap.add_argument(
        "--only",
        type=parse_only,
        default=list(SCENARIOS),
        metavar="NAME[,NAME...]",
        help="run only these scenarios (default: all): " + ", ".join(SCENARIOS),
    )
    ap.add_argument("--inside", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--rtt-forwarder", metavar="STAGES_JSON", help=argparse.SUPPRESS)
    ap.add_argument("--rtt-pipelined-client", metavar="ADDR:PORT", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.rtt_forwarder:  # the delay line, in the router namespace
        rtt_forwarder(json.loads(args.rtt_forwarder))
        return
    if args.rtt_pipelined_client:  # in the client namespace
        addr, _, port = args.rtt_pipelined_client.rpartition(":")
        pipelined_client(int(port), addr)
        return
    out = args.outdir.resolve()
    loopback = [n for n in args.only if n not in RTT_SCENARIOS]
    rtt = [n for n in args.only if n in RTT_SCENARIOS]
    if args.inside:
        inside(out, netns=True, only=loopback)
        return
    if os.geteuid() != 0:
        raise SystemExit("run as root (tcpdump, network namespace)")
    missing = [
        t
        for t in ("tcpdump", "tshark", "nginx", "curl", "openssl", "ip")
        + (("ethtool", "tcptrace", "ping", "ss") if rtt else ())
        if not shutil.which(t)
    ]
    if missing:
        raise SystemExit(f"missing tools: {', '.join(missing)}")
    out.mkdir(parents=True, exist_ok=True)
    signal.signal(signal.SIGTERM, _raise_on_sigterm)
    if rtt and args.no_netns:
        raise SystemExit(f"{', '.join(rtt)} need network namespaces (no --no-netns)")
    if args.no_netns:
        inside(out, netns=False, only=loopback)
    elif loopback:
        outside(out, loopback)
    if rtt:
        run_rtt(out, rtt)
    print_conversations(out, args.only)


if __name__ == "__main__":
    main()
