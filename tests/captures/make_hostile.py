"""Make the hostile-string captures of tests/captures (run as root: tcpdump on lo).

    python tests/captures/make_hostile.py

Real traffic on 127.0.0.1, captured with tcpdump on lo:

* ``hostile-http.pcap``: a Python HTTP server (sockets) answers one request from a Python
  socket client (curl refuses these bytes in a URL). The request line and header values carry
  what a hostile client sends: ESC/BEL/NUL terminal sequences, a byte 0xff that is not UTF-8,
  valid UTF-8 (``é``), and spreadsheet formulas; the response's Content-Type and body too.
* ``hostile-tls.pcap``: ``openssl s_client -servername`` with an SNI of ``\\x1b]0;title\\x07\\x1b[2J``
  (retitles and clears a terminal), then one with a byte 0xff, against ``openssl s_server``.

The bytes sent are in HOSTILE_REQUEST / SNIS below; the tests read them back with tshark.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
HTTP_PORT = 18080
TLS_PORT = 18443

HOSTILE_URI = b"/a\xff/caf\xc3\xa9?q=%1b"  # ESC/NUL in the target: another issue (13, item 9)
HOSTILE_REQUEST = (
    b"GET " + HOSTILE_URI + b" HTTP/1.1\r\n"
    b"Host: \x1b]0;title\x07\x1b[2J.example\r\n"
    b"User-Agent: =cmd|' /C calc'!A0\r\n"
    b"Referer: +1\x00z\xfe\r\n"
    b"Connection: close\r\n\r\n"
)
RESPONSE_BODY = b'=HYPERLINK("http://x")\n'
HOSTILE_RESPONSE = (
    b"HTTP/1.1 200 \x1b[31mOK\xff\r\n"
    b"Content-Type: =cmd|' /C calc'!A0\r\n"
    b"Content-Length: " + str(len(RESPONSE_BODY)).encode() + b"\r\n"
    b"Connection: close\r\n\r\n" + RESPONSE_BODY
)
# The first retitles and clears a terminal when printed raw; the second is not UTF-8.
SNIS = [b"\x1b]0;title\x07\x1b[2J", b"bad\xffname.example"]


def _tcpdump(path: Path, port: int) -> subprocess.Popen[bytes]:
    p = subprocess.Popen(
        [
            "tcpdump",
            "-i",
            "lo",
            "-w",
            str(path),
            "-s",
            "0",
            "-n",
            "-U",
            "-Z",
            "root",
            f"tcp port {port}",
        ],
        stderr=subprocess.PIPE,
    )
    assert p.stderr is not None
    while b"listening on" not in p.stderr.readline():
        pass
    time.sleep(1.5)  # "listening" comes before the filter is live on a loaded machine
    return p


def _stop(p: subprocess.Popen[bytes]) -> None:
    time.sleep(0.5)
    p.terminate()
    p.wait(timeout=10)


def make_http(path: Path) -> None:
    srv = socket.create_server(("127.0.0.1", HTTP_PORT))

    def serve() -> None:
        conn, _ = srv.accept()
        data = b""
        while b"\r\n\r\n" not in data:
            data += conn.recv(4096)
        conn.sendall(HOSTILE_RESPONSE)
        conn.shutdown(socket.SHUT_WR)
        while conn.recv(4096):
            pass
        conn.close()

    cap = _tcpdump(path, HTTP_PORT)
    t = threading.Thread(target=serve)
    t.start()
    c = socket.create_connection(("127.0.0.1", HTTP_PORT))
    c.sendall(HOSTILE_REQUEST)
    while c.recv(4096):
        pass
    c.close()
    t.join()
    srv.close()
    _stop(cap)


def make_tls(path: Path) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        key, crt = Path(tmp) / "k.pem", Path(tmp) / "c.pem"
        subprocess.run(
            [
                "openssl",
                "req",
                "-x509",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-keyout",
                str(key),
                "-out",
                str(crt),
                "-days",
                "1",
                "-subj",
                "/CN=localhost",
            ],
            check=True,
            capture_output=True,
        )
        srv = subprocess.Popen(
            [
                "openssl",
                "s_server",
                "-accept",
                f"127.0.0.1:{TLS_PORT}",
                "-key",
                str(key),
                "-cert",
                str(crt),
                "-naccept",
                str(len(SNIS)),
                "-quiet",
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        time.sleep(1.0)
        cap = _tcpdump(path, TLS_PORT)
        for sni in SNIS:
            # argv carries the bytes as they are (os.fsencode round trip of surrogateescape).
            subprocess.run(
                [
                    "openssl",
                    "s_client",
                    "-connect",
                    f"127.0.0.1:{TLS_PORT}",
                    "-servername",
                    os.fsdecode(sni),
                ],
                input=b"",
                capture_output=True,
                timeout=20,
            )
        _stop(cap)
        srv.wait(timeout=20)


def main() -> int:
    if os.geteuid() != 0 or not shutil.which("tcpdump"):
        print("make_hostile: needs root and tcpdump", file=sys.stderr)
        return 1
    make_http(HERE / "hostile-http.pcap")
    make_tls(HERE / "hostile-tls.pcap")
    return 0


if __name__ == "__main__":
    sys.exit(main())
