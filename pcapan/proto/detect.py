"""Content detection: which protocol does a stream carry? Decided from its first bytes, not ports."""

from __future__ import annotations

import re

HTTP = "http"
TLS = "tls"

# A request line: token method, one space, a target with no spaces, HTTP-version (RFC 9112 3).
# Only the start is required so that detection works before the line is complete.
_METHOD = re.compile(rb"^[!#$%&'*+\-.^_`|~0-9A-Za-z]{1,24} [^ \r\n]")
_REQUEST_LINE = re.compile(rb"^[!#$%&'*+\-.^_`|~0-9A-Za-z]{1,24} [^ \r\n]+ HTTP/\d\.\d\r?\n")
_STATUS = re.compile(rb"^HTTP/\d\.\d [0-9]{3}")
_KNOWN_METHODS = (
    b"GET ", b"POST ", b"HEAD ", b"PUT ", b"DELETE ", b"OPTIONS ", b"TRACE ", b"CONNECT ",
    b"PATCH ", b"PROPFIND ", b"PROPPATCH ", b"MKCOL ", b"COPY ", b"MOVE ", b"LOCK ", b"UNLOCK ",
    b"REPORT ", b"SEARCH ", b"PURGE ",
)


def detect(head: bytes) -> str | None:
    """Return ``"http"``, ``"tls"``, ``""`` (decided: neither) or ``None`` (need more bytes)."""
    if not head:
        return None
    b0 = head[0]
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
        if length >= 9 and head[2] == 1 and ((head[3] == 0 and head[4] == 2) or (head[3] == 3 and head[4] <= 4)):
            return TLS
        return ""
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
