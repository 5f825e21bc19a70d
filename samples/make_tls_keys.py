#!/usr/bin/env python3
"""Make the keyed TLS sample captures in ``samples/tls-keys/`` (issue 17): real HTTPS traffic
with the NSS key log each client wrote, committed side by side (``X.pcap`` + ``X.keys``).

Run as root:  ``python samples/make_tls_keys.py``  (``--only NAME[,NAME]``; ``--bench FILE N``
records a bigger keyed capture of N connections, outside the repo, for the speed comparison)

What it does, following ``make_samples.py`` (whose capture and server helpers it imports):

* creates a private network namespace ``tlsdec-keys-<pid>`` (prefix: ``--ns-prefix``; loopback
  MTU 1500, one segment per GSO packet, so captures show wire-sized segments) and re-executes
  itself inside it;
* writes the docroot of ``make_samples.py`` (index.html, small.txt, medium.bin, large.bin with
  fixed contents), a self-signed certificate for ``pcapan.test`` and an nginx config with five
  TLS servers: ``PORT_MAIN`` (TLS 1.2 and 1.3, every TLS 1.3 suite including CCM, the TLS 1.2
  suites the scenarios ask for, session tickets, ``ssl_early_data on``), ``PORT_NO_ETM`` (the
  same with OpenSSL's encrypt-then-MAC option off), ``PORT_H2`` (``listen ... http2``: ALPN
  selects h2), ``PORT_HRR`` (only X25519: a HelloRetryRequest for a P-256 key share) and
  ``PORT_CERTREQ`` (asks for a client certificate);
* per scenario: tcpdump on the scenario's port, real clients (curl with ``SSLKEYLOGFILE``,
  ``openssl s_client -keylogfile``) writing one key log per capture, then tshark reads the
  capture back with that key log and must find exactly the HTTP requests the clients made
  (method, URI) and their status codes, or the script fails;
* derives ``tls13-loss.pcap`` from ``tls13-aes128.pcap`` by deleting one full-size server
  segment in the middle of the ``/medium.bin`` response (editcap ``-D``-free: the frame number
  is found with tshark and removed with ``editcap FILE OUT N``), so the TLS 1.3 server stream
  has a hole;
* writes ``tls13-dsb.pcapng``: ``tls13-aes128.pcap`` with its key log embedded in a pcapng
  Decryption Secrets Block (``editcap --inject-secrets tls,KEYS``);
* for 0-RTT rejected by the server (``tls13-0rtt-rejected``) and TLS 1.0 / 1.1 (``tls10-cbc``,
  ``tls11-cbc``), starts ``openssl s_server -HTTP`` (see ``PORT_S_SERVER_0RTT``) for the
  scenario; its log must show the files it served.

Keys and timestamps naturally differ from run to run; the requests do not.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from make_samples import (  # noqa: E402
    TLS_NAME,
    Procs,
    _raise_on_sigterm,
    capture,
    log,
    make_cert,
    make_docroot,
    run,
    setup_namespace_loopback,
    wait_port,
)
from netlab import nginx_conf_head, run_in_new_netns  # noqa: E402

OUT = HERE / "tls-keys"
NS_PREFIX = "tlsdec-keys-"
PORT_MAIN = 19443
PORT_NO_ETM = 19444
PORT_H2 = 19445
PORT_HRR = 19446  # only X25519: a client whose key share is for P-256 gets a HelloRetryRequest
PORT_CERTREQ = 19447  # asks for a client certificate (ssl_verify_client optional_no_ca)
# openssl s_server -HTTP (one request per connection, answered with a file that holds a whole
# HTTP/1.1 response: see http_docroot; then close), started by the scenarios that need what nginx
# cannot give: a ticket allowing early data from a server that then rejects it (nginx with
# ssl_early_data off would not offer 0-RTT in its tickets, and s_client waits for nginx's
# keep-alive timeout), and TLS 1.0 / 1.1 (OpenSSL 3 needs @SECLEVEL=0 for them).
PORT_S_SERVER_0RTT = 19448
PORT_S_SERVER_OLD = 19449
OLD_CBC_SUITES = ("AES128-SHA", "ECDHE-RSA-AES256-SHA")  # RSA and ECDHE key exchange, SHA-1 MAC
# The s_server / s_client version option and the protocol s_client reports, per capture.
OLD_CBC_CAPTURES = {"tls10-cbc": ("-tls1", "TLSv1"), "tls11-cbc": ("-tls1_1", "TLSv1.1")}
TLS13_SUITES = (
    "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256:"
    "TLS_AES_128_CCM_SHA256"
)
TLS12_SUITES = (
    "ECDHE-RSA-AES128-GCM-SHA256:ECDHE-RSA-AES256-GCM-SHA384:ECDHE-RSA-CHACHA20-POLY1305:"
    "ECDHE-RSA-AES128-SHA256:ECDHE-RSA-AES256-SHA384:ECDHE-RSA-AES128-SHA:"
    "AES128-CCM:AES128-CCM8"
)
# The TLS 1.3 suite of each tls13-* capture.
TLS13_CAPTURES = {
    "tls13-aes128": "TLS_AES_128_GCM_SHA256",
    "tls13-aes256": "TLS_AES_256_GCM_SHA384",
    "tls13-chacha": "TLS_CHACHA20_POLY1305_SHA256",
    "tls13-ccm": "TLS_AES_128_CCM_SHA256",
}


def nginx_conf(tmp: Path, docroot: Path, key: Path, cert: Path) -> Path:
    common = f"""
        server_name {TLS_NAME};
        root {docroot};
        ssl_certificate {cert};
        ssl_certificate_key {key};
        ssl_protocols TLSv1.2 TLSv1.3;
        ssl_ciphers {TLS12_SUITES};
        ssl_conf_command Ciphersuites {TLS13_SUITES};
        ssl_session_cache shared:SSL:1m;
        ssl_session_tickets on;
        ssl_early_data on;"""
    head = nginx_conf_head(
        tmp, error_level="info", worker_connections=256, access_log=f"{tmp}/access.log"
    )
    conf = f"""{head}    types {{ text/html html; text/plain txt; application/octet-stream bin; }}
    default_type application/octet-stream;
    server_tokens off;
    keepalive_timeout 30s;
    keepalive_requests 10000;
    server {{
        listen 127.0.0.1:{PORT_MAIN} ssl;{common}
    }}
    server {{
        listen 127.0.0.1:{PORT_NO_ETM} ssl;{common}
        ssl_conf_command Options -EncryptThenMac;
    }}
    server {{
        listen 127.0.0.1:{PORT_H2} ssl http2;{common}
    }}
    server {{
        listen 127.0.0.1:{PORT_HRR} ssl;{common}
        ssl_ecdh_curve X25519;
    }}
    server {{
        listen 127.0.0.1:{PORT_CERTREQ} ssl;{common}
        ssl_verify_client optional_no_ca;
    }}
}}
"""
    path = tmp / "nginx.conf"
    path.write_text(conf)
    return path


# --- clients ---------------------------------------------------------------------------------
def curl(keys: Path, port: int, paths: list[str], *opts: str) -> None:
    """One curl process (one connection, keep-alive) over ``paths``; its key log to ``keys``."""
    cmd = ["curl", "-sS", "-k", "--max-time", "20", *opts]
    for p in paths:
        cmd += [f"https://{TLS_NAME}:{port}{p}", "-o", "/dev/null"]
    cmd += ["--resolve", f"{TLS_NAME}:{port}:127.0.0.1", "-w", "%{http_code} %{num_connects}\\n"]
    env = dict(os.environ, SSLKEYLOGFILE=str(keys))
    log("run: " + " ".join(cmd))
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=60, env=env, check=True)
    log(f"curl: {r.stdout.split()}")


def request(path: str, close: bool) -> bytes:
    return (
        f"GET {path} HTTP/1.1\r\nHost: {TLS_NAME}\r\nUser-Agent: pcapan-s_client\r\n"
        + ("Connection: close\r\n" if close else "")
        + "\r\n"
    ).encode()


def s_client(
    keys: Path,
    port: int,
    path: str,
    *opts: str,
    early: Path | None = None,
    early_path: str | None = None,
) -> str:
    """One s_client connection sending one request (Connection: close); returns its output.
    With ``early`` the request goes as 0-RTT early data (written to that file); with
    ``early_path`` too, the early data asks for ``early_path`` and ``path`` is asked for after
    the handshake (what is seen of a server that rejects the early data)."""
    cmd = [
        "openssl",
        "s_client",
        "-connect",
        f"127.0.0.1:{port}",
        "-servername",
        TLS_NAME,
        "-keylogfile",
        str(keys),
        "-ign_eof",
        *opts,
    ]
    req = request(path, close=True)
    if early is not None:
        if early_path is None:
            early.write_bytes(req)
            req = b""
        else:
            early.write_bytes(request(early_path, close=True))
        cmd += ["-early_data", str(early)]
    log("run: " + " ".join(cmd))
    r = subprocess.run(cmd, input=req, capture_output=True, timeout=60, check=False)
    out = r.stdout.decode("latin-1")
    if "HTTP/1.1 200 OK" not in out:
        raise RuntimeError(f"s_client failed:\n{out}\n{r.stderr.decode('latin-1')}")
    m = re.search(r"^(New|Reused), (TLSv[\d.]+), Cipher is (\S+)", out, re.M)
    early_state = re.search(r"^Early data was (\w+)", out, re.M)
    log(f"s_client: {m and m.group(0)} early={early_state and early_state.group(1)}")
    return out


def s_client_key_update(keys: Path, port: int) -> str:
    """One TLS 1.3 connection: GET /index.html, then the ``K`` command (a KeyUpdate that asks
    the peer to update too), then GET /small.txt (Connection: close) under the new keys."""
    cmd = [
        "openssl",
        "s_client",
        "-connect",
        f"127.0.0.1:{port}",
        "-servername",
        TLS_NAME,
        "-tls1_3",
        "-keylogfile",
        str(keys),
    ]
    log("run: " + " ".join(cmd))
    p = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert p.stdin is not None and p.stdout is not None
    chunks: list[bytes] = []
    t = threading.Thread(target=lambda: chunks.extend(iter(lambda: p.stdout.read(1), b"")))
    t.start()

    def wait_for(needle: bytes, count: int) -> None:
        deadline = time.monotonic() + 15
        while b"".join(chunks).count(needle) < count:
            if time.monotonic() > deadline:
                raise RuntimeError(f"s_client: no {needle!r}:\n{b''.join(chunks)!r}")
            time.sleep(0.05)

    try:
        wait_for(b"Verify return code", 1)
        time.sleep(0.2)
        p.stdin.write(request("/index.html", close=False))
        p.stdin.flush()
        wait_for(b"HTTP/1.1 200 OK", 1)
        time.sleep(0.3)
        p.stdin.write(b"K\n")
        p.stdin.flush()
        time.sleep(0.5)  # (s_client says KEYUPDATE on stderr; the capture check is tshark)
        p.stdin.write(request("/small.txt", close=True))
        p.stdin.flush()
        wait_for(b"HTTP/1.1 200 OK", 2)
        p.wait(timeout=15)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
        t.join(timeout=5)
    return b"".join(chunks).decode("latin-1")


# --- checks ----------------------------------------------------------------------------------
def tshark_http(pcap: Path, keys: Path | None, ports: list[int]) -> list[tuple[str, ...]]:
    """(method, uri) of each request and (status,) of each response tshark decrypts."""
    cmd = ["tshark", "-r", str(pcap), "-o", "tcp.reassemble_out_of_order:TRUE"]
    if keys is not None:
        cmd += ["-o", f"tls.keylog_file:{keys}"]
    for p in ports:
        cmd += ["-d", f"tcp.port=={p},tls"]
    cmd += ["-Y", "http || http2", "-T", "fields", "-E", "occurrence=a", "-E", "aggregator=|"]
    cmd += ["-e", "http.request.method", "-e", "http.request.uri", "-e", "http.response.code"]
    cmd += ["-e", "http2.type"]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=True)
    return [tuple(line.split("\t")) for line in r.stdout.splitlines()]


def check(
    pcap: Path,
    keys: Path,
    ports: list[int],
    want: list[str],
    h2: bool = False,
    answered: int | None = None,
) -> None:
    """tshark, given the key log, must see exactly ``want`` requests (URIs, in order) each
    answered 200 (``answered``: that many 200s), and nothing without it (unless the keys are in
    the file: pcapng DSB); with h2, HTTP/2 frames of type HEADERS (1) and DATA (0)."""
    rows = tshark_http(pcap, keys, ports)
    if h2:
        types = {t for r in rows for t in r[3].split("|") if t}
        if not {"0", "1"} <= types:
            raise RuntimeError(f"{pcap.name}: tshark sees no h2 HEADERS/DATA: {rows}")
        log(f"{pcap.name}: tshark decrypts h2 frames {sorted(types)}")
        return
    uris = [r[1] for r in rows if r[0]]
    codes = [r[2] for r in rows if r[2]]
    if uris != want or codes != ["200"] * (len(want) if answered is None else answered):
        raise RuntimeError(f"{pcap.name}: tshark decrypted {uris} {codes}, expected {want}")
    if pcap.suffix == ".pcap" and tshark_http(pcap, None, ports):
        raise RuntimeError(f"{pcap.name}: tshark reads HTTP without the keys?")
    log(f"{pcap.name}: tshark decrypts {len(want)} requests, all 200")


# --- scenarios -------------------------------------------------------------------------------
def scenario(
    procs: Procs, tmp: Path, name: str, ports: list[int], body: Callable[[Path], None]
) -> tuple[Path, Path]:
    pcap, keys = tmp / f"{name}.pcap", tmp / f"{name}.keys"
    keys.unlink(missing_ok=True)
    keys.touch()
    bpf = " or ".join(f"tcp port {p}" for p in ports)
    with capture(procs, pcap, bpf):
        body(keys)
    return pcap, keys


def publish(out: Path, *files: Path) -> None:
    for f in files:
        shutil.copyfile(f, out / f.name)
        log(f"wrote {out / f.name} ({f.stat().st_size} bytes)")


TLS12 = ["--tlsv1.2", "--tls-max", "1.2", "--http1.1"]


def sc_tls12_gcm(procs: Procs, tmp: Path, out: Path) -> None:
    def body(keys: Path) -> None:
        curl(keys, PORT_MAIN, ["/index.html", "/small.txt"], *TLS12, "--ciphers",
             "ECDHE-RSA-AES128-GCM-SHA256")  # fmt: skip
        curl(keys, PORT_MAIN, ["/medium.bin"], *TLS12, "--ciphers", "ECDHE-RSA-AES256-GCM-SHA384")

    pcap, keys = scenario(procs, tmp, "tls12-gcm", [PORT_MAIN], body)
    check(pcap, keys, [PORT_MAIN], ["/index.html", "/small.txt", "/medium.bin"])
    publish(out, pcap, keys)


def sc_tls12_chacha(procs: Procs, tmp: Path, out: Path) -> None:
    def body(keys: Path) -> None:
        curl(keys, PORT_MAIN, ["/index.html", "/small.txt"], *TLS12, "--ciphers",
             "ECDHE-RSA-CHACHA20-POLY1305")  # fmt: skip

    pcap, keys = scenario(procs, tmp, "tls12-chacha", [PORT_MAIN], body)
    check(pcap, keys, [PORT_MAIN], ["/index.html", "/small.txt"])
    publish(out, pcap, keys)


def sc_tls12_ccm(procs: Procs, tmp: Path, out: Path) -> None:
    """TLS 1.2 AES-CCM (RFC 6655): AES128-CCM (16-byte tag) and AES128-CCM8 (8-byte tag), RSA
    key exchange (nginx offers DHE only with a dhparam file; with RSA the key log's master
    secret is all it takes too)."""

    def body(keys: Path) -> None:
        curl(keys, PORT_MAIN, ["/index.html", "/small.txt"], *TLS12, "--ciphers",
             "AES128-CCM")  # fmt: skip
        curl(keys, PORT_MAIN, ["/medium.bin"], *TLS12, "--ciphers", "AES128-CCM8")

    pcap, keys = scenario(procs, tmp, "tls12-ccm", [PORT_MAIN], body)
    check(pcap, keys, [PORT_MAIN], ["/index.html", "/small.txt", "/medium.bin"])
    publish(out, pcap, keys)


def sc_tls12_cbc(procs: Procs, tmp: Path, out: Path) -> None:
    """curl negotiates encrypt-then-MAC (RFC 7366, both sides offer it by default); s_client
    -no_etm to the port where nginx has it off too gives MAC-then-encrypt, with SHA-384."""

    def body(keys: Path) -> None:
        curl(keys, PORT_MAIN, ["/index.html", "/small.txt"], *TLS12, "--ciphers",
             "ECDHE-RSA-AES128-SHA256")  # fmt: skip
        s_client(keys, PORT_NO_ETM, "/medium.bin", "-tls1_2", "-no_etm", "-cipher",
                 "ECDHE-RSA-AES256-SHA384")  # fmt: skip
        s_client(keys, PORT_NO_ETM, "/small.txt", "-tls1_2", "-no_etm", "-cipher",
                 "ECDHE-RSA-AES128-SHA")  # fmt: skip

    pcap, keys = scenario(procs, tmp, "tls12-cbc", [PORT_MAIN, PORT_NO_ETM], body)
    check(pcap, keys, [PORT_MAIN, PORT_NO_ETM], ["/index.html", "/small.txt", "/medium.bin",
                                                 "/small.txt"])  # fmt: skip
    publish(out, pcap, keys)


def sc_tls13(procs: Procs, tmp: Path, out: Path, name: str) -> None:
    suite = TLS13_CAPTURES[name]

    def body(keys: Path) -> None:
        curl(keys, PORT_MAIN, ["/index.html", "/medium.bin", "/small.txt"], "--tlsv1.3",
             "--http1.1", "--tls13-ciphers", suite)  # fmt: skip

    pcap, keys = scenario(procs, tmp, name, [PORT_MAIN], body)
    check(pcap, keys, [PORT_MAIN], ["/index.html", "/medium.bin", "/small.txt"])
    publish(out, pcap, keys)
    if name == "tls13-aes128":
        make_loss(tmp, out, pcap, keys)
        dsb = tmp / "tls13-dsb.pcapng"
        run(["editcap", "--inject-secrets", f"tls,{keys}", str(pcap), str(dsb)])
        check(dsb, Path("/dev/null"), [PORT_MAIN], ["/index.html", "/medium.bin", "/small.txt"])
        publish(out, dsb)


def make_loss(tmp: Path, out: Path, pcap: Path, keys: Path) -> None:
    """Delete the 5th full-size server segment of the capture (inside /medium.bin's response,
    the only response longer than one segment)."""
    r = subprocess.run(
        ["tshark", "-r", str(pcap), "-Y", f"tcp.srcport=={PORT_MAIN} && tcp.len>=1400",
         "-T", "fields", "-e", "frame.number"],
        capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    frames = r.stdout.split()
    if len(frames) < 10:
        raise RuntimeError(f"{pcap.name}: only {len(frames)} full-size server segments")
    loss = tmp / "tls13-loss.pcap"
    run(["editcap", str(pcap), str(loss), frames[4]])
    log(f"tls13-loss.pcap: frame {frames[4]} of tls13-aes128.pcap deleted")
    shutil.copyfile(keys, tmp / "tls13-loss.keys")
    (tmp / "tls13-loss.deleted").write_text(frames[4] + "\n")
    publish(out, loss, tmp / "tls13-loss.keys", tmp / "tls13-loss.deleted")


def sc_resume(procs: Procs, tmp: Path, out: Path) -> None:
    """TLS 1.3 full handshake then PSK resumption; TLS 1.2 full then ticket resumption."""
    s13, s12 = tmp / "sess13.pem", tmp / "sess12.pem"

    def body(keys: Path) -> None:
        s_client(keys, PORT_MAIN, "/index.html", "-tls1_3", "-sess_out", str(s13))
        o = s_client(keys, PORT_MAIN, "/small.txt", "-tls1_3", "-sess_in", str(s13))
        if "Reused, TLSv1.3" not in o:
            raise RuntimeError("TLS 1.3 session not resumed")
        s_client(keys, PORT_MAIN, "/index.html", "-tls1_2", "-sess_out", str(s12))
        o = s_client(keys, PORT_MAIN, "/small.txt", "-tls1_2", "-sess_in", str(s12))
        if "Reused, TLSv1.2" not in o:
            raise RuntimeError("TLS 1.2 session not resumed")

    pcap, keys = scenario(procs, tmp, "tls-resume", [PORT_MAIN], body)
    check(pcap, keys, [PORT_MAIN], ["/index.html", "/small.txt", "/index.html", "/small.txt"])
    publish(out, pcap, keys)


def sc_0rtt(procs: Procs, tmp: Path, out: Path) -> None:
    """A full TLS 1.3 handshake whose ticket allows early data, then a resumption that sends
    its request as 0-RTT early data (accepted by nginx's ssl_early_data on)."""
    sess = tmp / "sess0.pem"

    def body(keys: Path) -> None:
        s_client(keys, PORT_MAIN, "/index.html", "-tls1_3", "-sess_out", str(sess))
        o = s_client(keys, PORT_MAIN, "/small.txt", "-tls1_3", "-sess_in", str(sess),
                     early=tmp / "early.txt")  # fmt: skip
        if not re.search(r"^Early data was accepted", o, re.M):
            raise RuntimeError(f"early data not accepted:\n{o}")

    pcap, keys = scenario(procs, tmp, "tls13-0rtt", [PORT_MAIN], body)
    check(pcap, keys, [PORT_MAIN], ["/index.html", "/small.txt"])
    publish(out, pcap, keys)


def sc_key_update(procs: Procs, tmp: Path, out: Path) -> None:
    pcap, keys = scenario(
        procs, tmp, "tls13-keyupdate", [PORT_MAIN], lambda k: s_client_key_update(k, PORT_MAIN)
    )
    check(pcap, keys, [PORT_MAIN], ["/index.html", "/small.txt"])
    publish(out, pcap, keys)


def sc_h2(procs: Procs, tmp: Path, out: Path) -> None:
    def body(keys: Path) -> None:
        curl(keys, PORT_H2, ["/index.html", "/small.txt"], "--tlsv1.3", "--http2")

    pcap, keys = scenario(procs, tmp, "tls13-h2", [PORT_H2], body)
    check(pcap, keys, [PORT_H2], [], h2=True)
    publish(out, pcap, keys)


def sc_hrr(procs: Procs, tmp: Path, out: Path) -> None:
    """s_client offers P-256 then X25519 with a key share for P-256 only; the server has only
    X25519: HelloRetryRequest, a second ClientHello (same random), then the handshake."""

    def body(keys: Path) -> None:
        o = s_client(keys, PORT_HRR, "/index.html", "-tls1_3", "-groups", "P-256:X25519")
        if "Server Temp Key: X25519" not in o:
            raise RuntimeError(f"no X25519 after the retry:\n{o}")

    pcap, keys = scenario(procs, tmp, "tls13-hrr", [PORT_HRR], body)
    check(pcap, keys, [PORT_HRR], ["/index.html"])
    r = subprocess.run(
        ["tshark", "-r", str(pcap), "-d", f"tcp.port=={PORT_HRR},tls", "-Y",
         "tls.handshake.type == 1", "-T", "fields", "-e", "frame.number"],
        capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    if len(r.stdout.split()) != 2:
        raise RuntimeError(f"{pcap.name}: expected two ClientHellos (a retry), got {r.stdout}")
    publish(out, pcap, keys)


def sc_certreq(procs: Procs, tmp: Path, out: Path) -> None:
    """TLS 1.3 CertificateRequest (encrypted): curl answers with an empty Certificate, then
    s_client with a certificate (the server's own self-signed one, as a client certificate)."""
    key, cert = tmp / "key.pem", tmp / "cert.pem"

    def body(keys: Path) -> None:
        curl(keys, PORT_CERTREQ, ["/index.html"], "--tlsv1.3", "--http1.1")
        s_client(keys, PORT_CERTREQ, "/small.txt", "-tls1_3", "-cert", str(cert), "-key", str(key))

    pcap, keys = scenario(procs, tmp, "tls13-certreq", [PORT_CERTREQ], body)
    check(pcap, keys, [PORT_CERTREQ], ["/index.html", "/small.txt"])
    publish(out, pcap, keys)


def http_docroot(tmp: Path) -> Path:
    """The docroot's files as whole HTTP/1.1 responses (status line, Content-Length, Connection:
    close, the file), for s_server -HTTP: its -WWW mode answers HTTP/1.0 without a length,
    delimited by the close, which tshark does not show as a response when the close is a TLS
    close_notify."""
    root = tmp / "www-http"
    if not root.exists():
        root.mkdir()
        for f in sorted((tmp / "www").iterdir()):
            body = f.read_bytes()
            head = (
                f"HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n"
                f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
            )
            (root / f.name).write_bytes(head.encode() + body)
    return root


def s_server(procs: Procs, tmp: Path, port: int, *opts: str) -> tuple[subprocess.Popen, Path]:
    """openssl s_server -HTTP serving ``http_docroot`` on ``port`` (the scenario stops it); its
    output (a ``FILE:name`` line per file served) goes to the returned log file."""
    out = tmp / f"s_server-{port}.log"
    cmd = ["openssl", "s_server", "-accept", f"127.0.0.1:{port}", "-cert", str(tmp / "cert.pem"),
           "-key", str(tmp / "key.pem"), "-HTTP", *opts]  # fmt: skip
    www = http_docroot(tmp)
    with out.open("wb") as f:
        p = procs.start(cmd, cwd=www, stdin=subprocess.DEVNULL, stdout=f, stderr=f)
    wait_port("127.0.0.1", port)
    return p, out


def stop(p: subprocess.Popen) -> None:
    p.terminate()
    try:
        p.wait(timeout=5)
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait(timeout=5)


def served(log_file: Path) -> list[str]:
    """The files s_server -HTTP says it served, in order."""
    return re.findall(r"^FILE:(\S+)", log_file.read_text("latin-1"), re.M)


def sc_0rtt_rejected(procs: Procs, tmp: Path, out: Path) -> None:
    """0-RTT rejected by the server: s_server gives tickets that allow early data
    (``-max_early_data``) but, without ``-early_data``, never reads it, so OpenSSL rejects it.
    The resumed connection sends GET /medium.bin as early data (rejected: the server never sees
    it) and, after the handshake, GET /small.txt (answered)."""
    sess = tmp / "sess-rej.pem"
    srv, srv_log = s_server(procs, tmp, PORT_S_SERVER_0RTT, "-tls1_3", "-max_early_data", "16384")

    def body(keys: Path) -> None:
        s_client(keys, PORT_S_SERVER_0RTT, "/index.html", "-tls1_3", "-sess_out", str(sess))
        o = s_client(keys, PORT_S_SERVER_0RTT, "/small.txt", "-tls1_3", "-sess_in", str(sess),
                     early=tmp / "early-rej.txt", early_path="/medium.bin")  # fmt: skip
        if "Reused, TLSv1.3" not in o or not re.search(r"^Early data was rejected", o, re.M):
            raise RuntimeError(f"expected a resumption with early data rejected:\n{o}")

    try:
        pcap, keys = scenario(procs, tmp, "tls13-0rtt-rejected", [PORT_S_SERVER_0RTT], body)
    finally:
        stop(srv)
    if served(srv_log) != ["index.html", "small.txt"]:
        raise RuntimeError(f"s_server served {served(srv_log)}, expected index.html, small.txt")
    if "CLIENT_EARLY_TRAFFIC_SECRET" not in keys.read_text():
        raise RuntimeError("the key log has no early traffic secret")
    # tshark, which has the early traffic secret, decrypts the rejected early data too and shows
    # its request (never answered); the server's log above says it never read it.
    check(
        pcap, keys, [PORT_S_SERVER_0RTT], ["/index.html", "/medium.bin", "/small.txt"], answered=2
    )
    publish(out, pcap, keys)


def sc_old_cbc(procs: Procs, tmp: Path, out: Path, name: str) -> None:
    """TLS 1.0 (CBC IV chained from the previous record, the PRF of MD5 and SHA-1) or TLS 1.1
    (explicit IV per record) with AES-CBC and HMAC-SHA1, RSA and ECDHE key exchange: s_server
    and s_client allowed to speak them with @SECLEVEL=0. Each connection: one request; the first
    with encrypt-then-MAC (RFC 7366, both sides' default), the second without (s_client
    ``-no_etm``: MAC-then-encrypt)."""
    flag, proto = OLD_CBC_CAPTURES[name]
    suites = ":".join(OLD_CBC_SUITES) + ":@SECLEVEL=0"
    srv, srv_log = s_server(procs, tmp, PORT_S_SERVER_OLD, flag, "-cipher", suites)
    paths = ["/medium.bin", "/small.txt"]  # medium.bin: 20,000 bytes, two records and more

    def body(keys: Path) -> None:
        for suite, path, etm in zip(OLD_CBC_SUITES, paths, ([], ["-no_etm"]), strict=True):
            o = s_client(keys, PORT_S_SERVER_OLD, path, flag, "-cipher", f"{suite}:@SECLEVEL=0",
                         *etm)  # fmt: skip
            if not re.search(rf"^\s*Protocol\s*: {re.escape(proto)}$", o, re.M) or not re.search(
                rf"^\s*Cipher\s*: {suite}$", o, re.M
            ):
                raise RuntimeError(f"expected {proto} {suite}:\n{o}")

    try:
        pcap, keys = scenario(procs, tmp, name, [PORT_S_SERVER_OLD], body)
    finally:
        stop(srv)
    if served(srv_log) != [p.lstrip("/") for p in paths]:
        raise RuntimeError(f"s_server served {served(srv_log)}")
    check(pcap, keys, [PORT_S_SERVER_OLD], paths)
    publish(out, pcap, keys)


def bench(procs: Procs, tmp: Path, dest: Path, n: int) -> None:
    """A bigger keyed capture for the speed comparison: ``n`` connections, TLS 1.3 and 1.2
    alternating, each with 5 requests (index.html, small.txt x3, medium.bin); with a negative
    ``n``, -n bulk connections instead, each downloading large.bin (128 KiB) 4 times."""
    paths = ["/index.html", "/small.txt", "/small.txt", "/small.txt", "/medium.bin"]
    if n < 0:
        n, paths = -n, ["/large.bin"] * 4

    def body(keys: Path) -> None:
        for i in range(n):
            v = ["--tlsv1.3"] if i % 2 == 0 else TLS12[:3]
            curl(keys, PORT_MAIN, paths, *v, "--http1.1")

    pcap, keys = scenario(procs, tmp, "bench", [PORT_MAIN], body)
    shutil.copyfile(pcap, dest)
    shutil.copyfile(keys, dest.with_suffix(".keys"))
    log(f"wrote {dest} and {dest.with_suffix('.keys')}")


SCENARIOS: dict[str, Callable[[Procs, Path, Path], None]] = {
    "tls12-gcm": sc_tls12_gcm,
    "tls12-chacha": sc_tls12_chacha,
    "tls12-cbc": sc_tls12_cbc,
    "tls12-ccm": sc_tls12_ccm,
    **{n: (lambda p, t, o, n=n: sc_tls13(p, t, o, n)) for n in TLS13_CAPTURES},  # type: ignore[misc]
    "tls-resume": sc_resume,
    "tls13-0rtt": sc_0rtt,
    "tls13-keyupdate": sc_key_update,
    "tls13-h2": sc_h2,
    "tls13-hrr": sc_hrr,
    "tls13-certreq": sc_certreq,
    "tls13-0rtt-rejected": sc_0rtt_rejected,
    **{n: (lambda p, t, o, n=n: sc_old_cbc(p, t, o, n)) for n in OLD_CBC_CAPTURES},  # type: ignore[misc]
}


def inside(out: Path, only: list[str], bench_to: tuple[Path, int] | None) -> None:
    signal.signal(signal.SIGTERM, _raise_on_sigterm)
    setup_namespace_loopback()
    procs = Procs()
    tmp = Path(tempfile.mkdtemp(prefix="tlsdec-keys-"))
    try:
        os.chmod(tmp, 0o755)
        make_docroot(tmp / "www")
        key, cert = make_cert(tmp)
        conf = nginx_conf(tmp, tmp / "www", key, cert)
        nginx = procs.start(
            ["nginx", "-p", str(tmp), "-c", str(conf), "-e", str(tmp / "error.log")],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for port in (PORT_MAIN, PORT_NO_ETM, PORT_H2, PORT_HRR, PORT_CERTREQ):
            wait_port("127.0.0.1", port)
        if bench_to is not None:
            bench(procs, tmp, *bench_to)
            return
        out.mkdir(parents=True, exist_ok=True)
        for name in only:
            log(f"--- scenario {name}")
            SCENARIOS[name](procs, tmp, out)
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


def outside(argv: list[str], ns_prefix: str = NS_PREFIX) -> None:
    ns = f"{ns_prefix}{os.getpid()}"
    cmd = [sys.executable, str(Path(__file__).resolve()), *argv, "--inside"]
    rc = run_in_new_netns(ns, cmd, log, timeout=3600)
    if rc != 0:
        raise SystemExit(f"scenarios failed (exit {rc})")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--outdir", type=Path, default=OUT)
    ap.add_argument("--only", default=",".join(SCENARIOS), help=", ".join(SCENARIOS))
    ap.add_argument("--bench", nargs=2, metavar=("FILE", "N"), help="a bigger keyed capture")
    ap.add_argument("--ns-prefix", default=NS_PREFIX, help="network namespace name prefix")
    ap.add_argument("--inside", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    only = [n for n in args.only.split(",") if n]
    bad = [n for n in only if n not in SCENARIOS]
    if bad:
        raise SystemExit(f"unknown scenario(s) {bad}; choose from {', '.join(SCENARIOS)}")
    bench_to = (Path(args.bench[0]).resolve(), int(args.bench[1])) if args.bench else None
    if args.inside:
        inside(args.outdir.resolve(), only, bench_to)
        return
    if os.geteuid() != 0:
        raise SystemExit("run as root (tcpdump, network namespace)")
    argv = ["--outdir", str(args.outdir.resolve()), "--only", ",".join(only)]
    if bench_to:
        argv += ["--bench", str(bench_to[0]), str(bench_to[1])]
    signal.signal(signal.SIGTERM, _raise_on_sigterm)
    outside(argv, args.ns_prefix)


if __name__ == "__main__":
    main()
