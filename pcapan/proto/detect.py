"""Content detection: which protocol does a stream carry? Decided from its first bytes, not ports."""

from __future__ import annotations

import re

HTTP = "http"
HTTP2 = "http2"  # Zeek's and Wireshark's name for HTTP/2
TLS = "tls"

# The HTTP/2 client connection preface (RFC 9113 3.4): what a client with prior knowledge of
# h2 (cleartext, "h2c") sends first. It has the shape of a request line with method PRI, and an
# HTTP/1 parser would read it as one; it is h2, never an HTTP/1 error.
H2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"

# A request line: token method, one space, a target with no spaces, HTTP-version (RFC 9112 3).
# Only the start is required so that detection works before the line is complete.
_METHOD = re.compile(rb"^[!#$%&'*+\-.^_`|~0-9A-Za-z]{1,24} [^ \r\n]")
_REQUEST_LINE = re.compile(rb"^[!#$%&'*+\-.^_`|~0-9A-Za-z]{1,24} [^ \r\n]+ HTTP/\d\.\d\r?\n")
_STATUS = re.compile(rb"^HTTP/\d\.\d [0-9]{3}")
_KNOWN_METHODS = (
    b"GET ",
    b"POST ",
    b"HEAD ",
    b"PUT ",
    b"DELETE ",
    b"OPTIONS ",
    b"TRACE ",
    b"CONNECT ",
    b"PATCH ",
    b"PROPFIND ",
    b"PROPPATCH ",
    b"MKCOL ",
    b"COPY ",
    b"MOVE ",
    b"LOCK ",
    b"UNLOCK ",
    b"REPORT ",
    b"SEARCH ",
    b"PURGE ",
)


def skip_empty_lines(head: bytes) -> bytes:
    """``head`` without the empty lines (CR, LF) before a start line: RFC 9112 2.2 says a
    recipient should ignore at least one before a request-line (a client may send a stray CRLF
    after a POST body), so content detection must see past them as the HTTP parser does."""
    return head.lstrip(b"\r\n") if head[:1] in (b"\r", b"\n") else head


def is_h2_settings(head: bytes) -> bool:
    """An HTTP/2 frame header of a SETTINGS frame (RFC 9113 6.5) on stream 0, no ACK flag,
    payload a multiple of 6 bytes: what an h2 server sends first (its connection preface,
    RFC 9113 3.4). ``head`` holds at least the 9-byte frame header."""
    return (
        head[3] == 4
        and head[4] == 0
        and head[5:9] == b"\0\0\0\0"
        and int.from_bytes(head[:3], "big") % 6 == 0
    )


def detect(head: bytes) -> str | None:
    """Return ``"http"``, ``"http2"``, ``"tls"``, ``""`` (decided: neither) or ``None`` (need more
    bytes)."""
    if not head:
        return None
    b0 = head[0]
    if b0 == 0:
        # A server's first h2 frame (cleartext h2 with prior knowledge answers the preface
        # with SETTINGS): 00 LL LL 04 00 00 00 00 00 (a SETTINGS payload is below 64 KiB).
        if len(head) < 9:
            return None if head[3:] == b"\x04\0\0\0\0\0"[: max(0, len(head) - 3)] else ""
        return HTTP2 if is_h2_settings(head) else ""
    # TLS record: content type 20..24, version major 3, minor 0..4 (SSL 3.0 .. TLS 1.3).
    if 20 <= b0 <= 24:
        if len(head) < 3:
            return None
        if head[1] == 3 and head[2] <= 4:
            return TLS
        return ""
    # SSLv2-format ClientHello: a 2-byte record header with the high bit set and a length that
    # covers at least the fixed fields (9 bytes), message type 1, then version 0.2 (SSL 2) or
    # 3.0-3.4. All five bytes are checked: a masked WebSocket frame (0x81 ...) also starts with
    # the high bit set.
    if b0 & 0x80:
        if len(head) < 5:
            return None
        length = ((b0 & 0x7F) << 8) | head[1]
        if (
            length >= 9
            and head[2] == 1
            and ((head[3] == 0 and head[4] == 2) or (head[3] == 3 and head[4] <= 4))
        ):
            return TLS
        return ""
    if b0 == 10 or b0 == 13:
        rest = skip_empty_lines(head)
        if not rest:
            return None  # only empty lines so far (bounded by the caller's DETECT_BYTES)
        verdict = detect(rest)
        return verdict if verdict is None or verdict == HTTP else ""  # only HTTP allows them
    if head.startswith(H2_PREFACE[: len(head)]):
        return HTTP2 if len(head) >= len(H2_PREFACE) else None
    if head.startswith(b"HTTP/"[: len(head)]):
        if len(head) < 12:
            return None
        return HTTP if _STATUS.match(head) else ""
    if head.startswith(_KNOWN_METHODS):
        return HTTP
    if _METHOD.match(head):
        # An unknown extension method: insist on a full request line to avoid false positives.
        if _REQUEST_LINE.match(head):
            return HTTP
        return None if b"\n" not in head and len(head) < 64 else ""
    if len(head) < 24 and all(65 <= c <= 90 or c == 45 for c in head):
        return None  # could still become an extension method
    return ""
