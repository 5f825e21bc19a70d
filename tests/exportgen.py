"""A capture crafted for the export tests: hostile and awkward text, and a missed reuse.

Client 10.0.0.1 talks to 10.0.0.2:80 (Host ``-``, a value Zeek must escape as ``\\x2d``):

* connection A (port 40000): ``GET =cmd|' /C calc'!A0`` (a spreadsheet formula, CSV injection),
  User-Agent ``a<TAB>b\\c, "q"`` (tab, backslash, comma, quotes); the response has an empty
  reason phrase (``HTTP/1.1 200 \\r\\n``: status_msg is an empty string, not missing). A then
  stays open and idle;
* connection B (port 40001) opens while A is idle: ``GET /x\\xffy`` (a byte that is not UTF-8),
  answered ``200 OK``, closed; then A closes. B is a missed reuse of A.

Every expected value in the tests follows from these packets.
"""

from __future__ import annotations

from pathlib import Path

from .tcpgen import Conv, write

CLIENT, SERVER, SERVER_PORT = "10.0.0.1", "10.0.0.2", 80
PORT_A, PORT_B = 40000, 40001
T0 = 1_700_000_000.0
URI_A = "=cmd|' /C calc'!A0"
URI_B_WIRE = b"/x\xffy"  # the byte 0xff, not UTF-8
URI_B = "/x\\xffy"  # as the tables hold it (pcapan.proto.text: a non-UTF-8 byte is \xNN)
HOST = "-"
USER_AGENT = 'a\tb\\c, "q"'
BODY = b"ok"


def build(path: Path) -> Path:
    a = Conv(client=CLIENT, server=SERVER, cport=PORT_A, sport=SERVER_PORT, t=T0)
    a.handshake()
    a.send(
        True,
        "PA",
        b"GET "
        + URI_A.encode("latin-1")
        + b" HTTP/1.1\r\nHost: "
        + HOST.encode()
        + b"\r\nUser-Agent: "
        + USER_AGENT.encode("latin-1")
        + b"\r\n\r\n",
    )
    a.send(False, "PA", b"HTTP/1.1 200 \r\nContent-Length: 2\r\n\r\n" + BODY)
    a.send(True, "A")
    b = Conv(
        client=CLIENT,
        server=SERVER,
        cport=PORT_B,
        sport=SERVER_PORT,
        t=a.t + 0.5,
        cisn=7000,
        sisn=9000,
    )
    b.handshake()
    b.send(True, "PA", b"GET " + URI_B_WIRE + b" HTTP/1.1\r\nHost: " + HOST.encode() + b"\r\n\r\n")
    b.send(False, "PA", b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n" + BODY)
    b.send(True, "A")
    b.close()
    a.t = b.t + 0.5
    a.close()
    return write(path, [a, b])
