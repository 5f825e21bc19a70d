"""Content detection from a stream's first bytes (pcapan.proto.detect)."""

from __future__ import annotations

import pytest

from pcapan.proto.detect import detect


@pytest.mark.parametrize(
    ("head", "want"),
    [
        (b"GET / HTTP/1.1\r\n", "http"),
        (b"PURGE /x HTTP/1.1\r\n", "http"),
        (b"FOOBAR /x HTTP/1.1\r\n", "http"),  # extension method with a full request line
        (b"HTTP/1.1 200 OK\r\n", "http"),
        (b"HTTP/1.0 404 Not Found\r\n", "http"),
        (b"\x16\x03\x01\x02\x00\x01", "tls"),  # TLS record: handshake, version 3.1
        (b"\x17\x03\x03\x00\x20", "tls"),
        # SSLv2-format CLIENT-HELLO: length 0x2e, type 1, version 3.1 / 0.2 (RFC 5246 E.2)
        (b"\x80\x2e\x01\x03\x01\x00\x15", "tls"),
        (b"\x80\x2e\x01\x00\x02\x00\x15", "tls"),
        # A masked WebSocket text frame (RFC 6455 5.7 example, mask 37 fa 21 3d) and one with
        # mask 01 02 03 04: the high bit is set, but it is no SSLv2 hello.
        (b"\x81\x85\x37\xfa\x21\x3d\x7f\x9f\x4d\x51\x58", ""),
        (b"\x81\x85\x01\x02\x03\x04Hello", ""),
        (b"SSH-2.0-OpenSSH_9.2\r\n", ""),
        # Issue 13 (7): empty lines before a start line are ignored (RFC 9112 2.2), as the
        # HTTP parser ignores them; a stray LF used to make the stream "neither".
        (b"\nGET / HTTP/1.1\r\n", "http"),
        (b"\r\n\r\nPOST /x HTTP/1.1\r\n", "http"),
        (b"\r\nHTTP/1.1 200 OK\r\n", "http"),
        (b"\n\x16\x03\x01\x02\x00", ""),  # only HTTP skips them: no TLS record starts with LF
        # Issue 13 (9d): the HTTP/2 connection preface (RFC 9113 3.4) is h2, not an HTTP/1 PRI,
        # and so is a server's first frame, SETTINGS on stream 0 (here 18 bytes: 3 settings,
        # as nginx 1.22 sends in samples/plain-h2c.pcap).
        (b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", "http2"),
        (b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x12\x04\x00\x00\x00\x00\x00", "http2"),
        (b"\x00\x00\x12\x04\x00\x00\x00\x00\x00\x00\x03", "http2"),
        (b"\x00\x00\x00\x04\x00\x00\x00\x00\x00", "http2"),  # empty SETTINGS
        (b"PRI * HTTP/1.1\r\n", "http"),  # an extension method PRI in HTTP/1.1 stays HTTP/1
        (b"\x00\x00\x12\x04\x01\x00\x00\x00\x00", ""),  # SETTINGS ACK is never first
        (b"\x00\x00\x11\x04\x00\x00\x00\x00\x00", ""),  # not a multiple of 6
        (b"\x00\x00\x12\x04\x00\x00\x00\x00\x01", ""),  # SETTINGS on a stream
        (b"\x00\x00\x04\x08\x00\x00\x00\x00\x00", ""),  # WINDOW_UPDATE first
        (b"220 mail.example.com ESMTP\r\n", ""),
    ],
)
def test_detect(head: bytes, want: str) -> None:
    assert detect(head) == want


@pytest.mark.parametrize(
    "head",
    [
        b"G",
        b"GE",
        b"HTTP/1",
        b"\x16\x03",
        b"\x80\x2e\x01",
        b"\n",
        b"\r\n",
        b"\r\n\r\nGE",
        b"PRI * HTTP/2.0\r\n\r\nSM",
        b"PRI * HTTP/2.0\r\n",
        b"\x00",
        b"\x00\x00\x12\x04\x00\x00",
    ],
)
def test_needs_more(head: bytes) -> None:
    assert detect(head) is None
