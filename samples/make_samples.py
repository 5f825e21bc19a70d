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
* derives ``lossy.pcap`` from ``http-keepalive.pcap`` by rewriting whole pcap records (drop,
  swap, duplicate) and writes the exact edits to ``lossy.edits.json``;
* removes the namespace (killing anything still running in it) and prints
  ``tshark -r X -q -z conv,tcp`` for every capture.

Every process started is stopped again on success, on error and on SIGINT/SIGTERM. The scenario
(ports, requests, files, order) is fixed; timestamps, client ports, TCP sequence numbers, keys
and the Date header naturally differ from run to run.

``--no-netns`` runs on the host loopback instead (not root-free: tcpdump still needs it); the
captures then have host-loopback segment sizes and are not the committed ones.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import queue
import re
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

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


def run(cmd: list[str], *, input: bytes | None = None, check: bool = True) -> subprocess.CompletedProcess:
    log("run: " + " ".join(cmd))
    return subprocess.run(
        cmd, input=input, capture_output=True, timeout=CMD_TIMEOUT_S, check=check
    )


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
) -> Iterator[None]:
    """Capture while the body runs: start, wait until listening, yield, SIGINT, check."""
    if path.exists():
        path.unlink()
    if tool == "tcpdump":
        # --immediate-mode: without it libpcap's TPACKET_V3 ring hands packets over only when
        # a block fills or its 1 s timeout expires, and a SIGINT before that loses them.
        # -B 32768 (KiB): the default 2 MiB ring overflows when loopback bursts 128 KiB.
        cmd = ["tcpdump", "-i", iface, "-w", str(path), "-s", "0", "-n", "-Z", "root",
               "--immediate-mode", "-B", "32768"]
        if linktype:
            cmd += ["-y", linktype]
        cmd.append(bpf)
        ready = "listening on"
    elif tool == "tshark":
        cmd = ["tshark", "-i", iface, "-w", str(path), "-F", "pcapng", "-B", "32", "-f", bpf]
        ready = "Capturing on"
    else:
        raise ValueError(tool)
    p = procs.start(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                    stderr=subprocess.PIPE, text=True)
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


def make_cert(tmp: Path) -> tuple[Path, Path]:
    key, cert = tmp / "key.pem", tmp / "cert.pem"
    run([
        "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-sha256", "-days", "2",
        "-keyout", str(key), "-out", str(cert), "-subj", f"/CN={TLS_NAME}",
        "-addext", f"subjectAltName=DNS:{TLS_NAME}",
    ])
    return key, cert


def nginx_conf(tmp: Path, docroot: Path, key: Path, cert: Path) -> Path:
    plain = [f"127.0.0.1:{p}" for p in (PORT_KEEPALIVE, PORT_CLOSE, PORT_PIPELINED, PORT_SLL,
                                       PORT_RST)]
    plain.append(f"[::1]:{PORT_IPV6}")
    listens = "\n".join(f"        listen {a};" for a in plain)
    conf = f"""
daemon off;
master_process off;
worker_processes 1;
pid {tmp}/nginx.pid;
error_log {tmp}/error.log info;
events {{ worker_connections 64; }}
http {{
    access_log {tmp}/access.log;
    client_body_temp_path {tmp}/client_body;
    proxy_temp_path {tmp}/proxy;
    fastcgi_temp_path {tmp}/fastcgi;
    uwsgi_temp_path {tmp}/uwsgi;
    scgi_temp_path {tmp}/scgi;
    types {{ text/html html; text/plain txt; application/octet-stream bin; }}
    default_type application/octet-stream;
    server_tokens off;
    keepalive_timeout 30s;
    server {{
{listens}
        server_name localhost;
        root {docroot};
    }}
    server {{
        listen 127.0.0.1:{PORT_TLS} ssl;
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


# --- clients ---------------------------------------------------------------------------------
CURL_W = "%{http_code} %{num_connects} %{size_download} %{url_effective}\\n"


def curl(urls: list[str], *extra: str) -> list[tuple[int, int, int, str]]:
    """Run one curl process over ``urls``; return (status, new connections, size, url)."""
    cmd = ["curl", "-sS", "--max-time", "20", "-w", CURL_W, *extra]
    for u in urls:
        cmd += [u, "-o", "/dev/null"]
    out = run(cmd).stdout.decode()
    rows = []
    for line in out.splitlines():
        code, nconn, size, url = line.split(" ", 3)
        rows.append((int(code), int(nconn), int(size), url))
    log(f"curl: {rows}")
    if len(rows) != len(urls):
        raise RuntimeError(f"curl did {len(rows)} transfers, expected {len(urls)}")
    return rows


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
    lines = [f"GET {path} HTTP/1.1", f"Host: {host}", "User-Agent: pcapan-samples/1",
             "Accept: */*"]
    if close:
        lines.append("Connection: close")
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def pipelined_client(port: int) -> None:
    host = f"127.0.0.1:{port}"
    reqs = (http_request("/index.html", host) + http_request("/small.txt", host)
            + http_request("/medium.bin", host, close=True))
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
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
    cmd = ["openssl", "s_client", "-connect", f"127.0.0.1:{port}", "-servername", TLS_NAME,
           "-tls1_2", "-alpn", "http/1.1", "-ign_eof", sess_flag, str(sess_file), *extra]
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
    with capture(procs, out / "http-keepalive.pcap", bpf), \
            capture(procs, out / "http-keepalive.pcapng", bpf, tool="tshark"):
        r1 = curl([f"{base}/index.html", f"{base}/small.txt", f"{base}/large.bin",
                   f"{base}/medium.bin"], "--http1.1")
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
        r1 = curl([f"{base}/index.html", f"{base}/small.txt", f"{base}/missing.html"],
                  "--http1.1", "-H", "Connection: close")
        r2 = curl([f"{base}/medium.bin"], "--http1.0")
    if [r[0] for r in r1 + r2] != [200, 200, 404, 200] or any(r[1] != 1 for r in r1 + r2):
        raise RuntimeError(f"unexpected close scenario: {r1 + r2}")


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
        recs.append((sec, usec, orig, raw[pos:pos + incl]))
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
    swap_a = next(i for i in full[LOSSY_SWAP_FROM_NTH - 1:] if i + 1 in full)
    swap_b = swap_a + 1
    dup = full[LOSSY_DUP_NTH - 1]
    if len({drop, swap_a, swap_b, dup}) != 4 or not drop < swap_a < dup:
        raise RuntimeError("lossy edit positions overlap")

    def seg(i: int) -> dict:
        tcp = tcp_of(recs[i][3])[1]
        offset = (tcp.seq - isn - 1) % 2**32  # of the first payload byte in the stream
        return {"src_frame": i + 1, "stream_offset": offset, "tshark_rel_seq": offset + 1,
                "len": len(tcp.data)}

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
        "duplicated": {**seg(dup), "nth_full_segment": LOSSY_DUP_NTH,
                       "lossy_frames": new_frames(dup)},
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
    run(["ip", "link", "set", "lo", "up", "mtu", "1500", "gso_max_size", "1500",
         "gso_max_segs", "1"])
    run(["ip", "addr", "show", "lo"])


def inside(out: Path, netns: bool) -> None:
    signal.signal(signal.SIGTERM, _raise_on_sigterm)
    if netns:
        setup_namespace_loopback()
    procs = Procs()
    tmp = Path(tempfile.mkdtemp(prefix="pcapan-samples-"))
    try:
        os.chmod(tmp, 0o755)
        make_docroot(tmp / "www")
        key, cert = make_cert(tmp)
        conf = nginx_conf(tmp, tmp / "www", key, cert)
        nginx = procs.start(["nginx", "-p", str(tmp), "-c", str(conf), "-e",
                             str(tmp / "error.log")],
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
        for port in (PORT_KEEPALIVE, PORT_CLOSE, PORT_PIPELINED, PORT_SLL, PORT_RST, PORT_TLS):
            wait_port("127.0.0.1", port)
        wait_port("::1", PORT_IPV6)
        if nginx.poll() is not None:
            raise RuntimeError("nginx exited")
        time.sleep(0.2)

        sc_keepalive(procs, out)
        sc_close(procs, out)
        sc_pipelined(procs, out)
        sc_tls(procs, out, tmp)
        sc_ipv6(procs, out)
        sc_sll(procs, out)
        sc_rst(procs, out)
        make_lossy(out / "http-keepalive.pcap", out / "lossy.pcap", out / "lossy.edits.json")
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


def netns_pids(ns: str) -> list[int]:
    r = subprocess.run(["ip", "netns", "pids", ns], capture_output=True, text=True, timeout=10)
    return [int(x) for x in r.stdout.split()]


def outside(out: Path) -> None:
    ns = f"pcapan-samples-{os.getpid()}"
    run(["ip", "netns", "add", ns])
    try:
        cmd = ["ip", "netns", "exec", ns, sys.executable, str(Path(__file__).resolve()),
               "--inside", "--outdir", str(out)]
        log("run: " + " ".join(cmd))
        child = subprocess.Popen(cmd)
        try:
            rc = child.wait(timeout=600)
        finally:
            if child.poll() is None:  # interrupted: let the inner run stop its processes
                child.terminate()
                try:
                    child.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    child.kill()
        if rc != 0:
            raise SystemExit(f"scenarios failed (exit {rc})")
    finally:
        # Anything still alive in our namespace was started by us: stop it by pid.
        for pid in netns_pids(ns):
            log(f"killing leftover pid {pid} in {ns}")
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        subprocess.run(["ip", "netns", "del", ns], timeout=10, check=False)


def check_complete(path: Path) -> None:
    """Every TCP connection in the file has its SYN and a FIN per direction or a RST."""
    r = subprocess.run(
        ["tshark", "-r", str(path), "-T", "fields", "-e", "tcp.stream", "-e", "tcp.srcport",
         "-e", "tcp.flags.syn", "-e", "tcp.flags.fin", "-e", "tcp.flags.reset"],
        capture_output=True, text=True, timeout=CMD_TIMEOUT_S, check=True)
    seen: dict[str, dict] = {}
    for line in r.stdout.splitlines():
        stream, sport, syn, fin, rst = line.split("\t")
        st = seen.setdefault(stream, {"syn": False, "fin_from": set(), "rst": False})
        st["syn"] |= syn in ("1", "True")
        st["rst"] |= rst in ("1", "True")
        if fin in ("1", "True"):
            st["fin_from"].add(sport)
    bad = {k: v for k, v in seen.items() if not v["syn"] or not (v["rst"] or len(v["fin_from"]) == 2)}
    if not seen or bad:
        raise RuntimeError(f"{path.name}: incomplete connections {bad or '(none at all)'}")
    log(f"{path.name}: {len(seen)} complete TCP connections")


def print_conversations(out: Path) -> None:
    files = sorted(p for p in out.iterdir() if p.suffix in (".pcap", ".pcapng"))
    for p in files:
        check_complete(p)
    for p in files:
        r = subprocess.run(["tshark", "-r", str(p), "-q", "-z", "conv,tcp"],
                           capture_output=True, text=True, timeout=CMD_TIMEOUT_S)
        print(f"\n##### {p.name} ({p.stat().st_size} bytes)")
        print(r.stdout.rstrip())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--outdir", type=Path, default=HERE, help="where to write (default: samples/)")
    ap.add_argument("--no-netns", action="store_true",
                    help="use the host loopback instead of a private namespace")
    ap.add_argument("--inside", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    out = args.outdir.resolve()
    if args.inside:
        inside(out, netns=True)
        return
    if os.geteuid() != 0:
        raise SystemExit("run as root (tcpdump, network namespace)")
    missing = [t for t in ("tcpdump", "tshark", "nginx", "curl", "openssl", "ip")
               if not shutil.which(t)]
    if missing:
        raise SystemExit(f"missing tools: {', '.join(missing)}")
    out.mkdir(parents=True, exist_ok=True)
    signal.signal(signal.SIGTERM, _raise_on_sigterm)
    if args.no_netns:
        inside(out, netns=False)
    else:
        outside(out)
    print_conversations(out)


if __name__ == "__main__":
    main()
