"""Passive, two-sided, incremental, sans-IO HTTP/1.x parser for one TCP connection.

The caller (the analyze layer) feeds each direction's reassembled bytes as they arrive, in
capture order: ``data(is_orig, chunk, ts_ns)``, ``gap(is_orig, nbytes, ts_ns)`` and
``end(is_orig, ts_ns)``. Every call returns a list of events (possibly empty): "need more bytes"
is simply no event. ``is_orig`` is the client (request) direction.

Design (after h11 and mitmproxy):
- Each direction is a small state machine keyed by its state (``_S_*``); a whole header section is parsed
  at once when its blank line has arrived (bounded by ``HTTP_MAX_HEADER_BYTES``).
- Body framing is one pure function, :func:`expected_body_framing` (RFC 9112 section 6.3).
- Requests wait in a FIFO until the response direction answers them (pipelining); the response
  direction learns HEAD/CONNECT from the request it answers.
- Malformed input raises :class:`~pcapan.errors.ParserError` internally; the public methods turn
  it into an :class:`HttpAnomaly` and resynchronise at the next request or status line. No other
  exception may escape (the fuzz tests enforce that).
- Bodies are counted and hashed incrementally, never kept.
"""

from __future__ import annotations

import hashlib
import re
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from pcapan.config import (
    HTTP09_STATUS_LINE_PEEK,
    HTTP_MAX_CHUNK_LINE_BYTES,
    HTTP_MAX_HEADER_BYTES,
    HTTP_MAX_HEADER_FIELDS,
    HTTP_MAX_PAUSED_BYTES,
    HTTP_MAX_PENDING_REQUESTS,
    HTTP_RESYNC_KEEP_BYTES,
)
from pcapan.errors import ParserError
from pcapan.model import fast_maker

Headers = tuple[tuple[str, str], ...]

# --- events -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class HttpTransaction:
    """One request/response pair, or an orphan (response without request, request unanswered)."""

    trans_depth: int
    method: str | None = None
    uri: str | None = None
    target_form: str | None = None  # origin | absolute | authority | asterisk
    host: str | None = None
    request_version: str | None = None
    response_version: str | None = None
    user_agent: str | None = None
    referrer: str | None = None
    request_headers: Headers = ()
    response_headers: Headers = ()
    request_body_len: int | None = None
    response_body_len: int | None = None
    status_code: int | None = None
    status_msg: str | None = None
    info_codes: tuple[int, ...] = ()
    content_type: str | None = None
    content_length: int | None = None  # declared by the response (a HEAD response declares one)
    transfer_encoding: str | None = None
    content_encoding: str | None = None
    chunk_count: int | None = None  # response chunks (None when not chunked)
    trailer_names: tuple[str, ...] = ()
    trailer_announced: str | None = None  # the response's Trailer header
    expect: str | None = None
    upgrade_requested: str | None = None  # the request's Upgrade header
    upgrade: str | None = None  # protocol switched to by a 101
    tunnel: str | None = None  # CONNECT target when the proxy answered 2xx
    request_connection: str | None = None
    response_connection: str | None = None
    keep_alive: bool | None = None
    pipelined: bool = False
    pipeline_depth: int = 0
    ts_request_start: int | None = None
    ts_request_end: int | None = None
    ts_response_start: int | None = None  # the final (non-1xx) response
    ts_response_end: int | None = None
    resp_body_sha256: str | None = None
    partial: bool = False
    flags: tuple[str, ...] = ()

    @property
    def has_request(self) -> bool:
        return self.ts_request_start is not None or self.method is not None

    @property
    def has_response(self) -> bool:
        # An HTTP/0.9 response has no status line: only its version (0.9) says it was seen.
        return self.status_code is not None or self.response_version is not None


@dataclass(frozen=True, slots=True)
class HttpAnomaly:
    """Something wrong on the connection that is not (only) a flag of one transaction."""

    kind: str
    detail: str
    ts_ns: int
    is_orig: bool


@dataclass(frozen=True, slots=True)
class HttpTunnel:
    """HTTP parsing ended: a CONNECT tunnel opened or a 101 switched protocols."""

    kind: Literal["connect", "upgrade"]
    protocol: str  # Upgrade protocol (websocket, h2c, TLS/1.2, ...); "" for CONNECT
    target: str | None  # CONNECT target (authority-form); None for an upgrade
    trans_depth: int
    ts_ns: int


@dataclass(frozen=True, slots=True)
class TunnelData:
    """Bytes of one direction after an :class:`HttpTunnel` (for content detection)."""

    is_orig: bool
    chunk: bytes
    ts_ns: int


@dataclass(frozen=True, slots=True)
class TunnelGap:
    """A gap in one direction after an :class:`HttpTunnel` (to pass on to the inner parser)."""

    is_orig: bool
    nbytes: int
    ts_ns: int


Event = HttpTransaction | HttpAnomaly | HttpTunnel | TunnelData | TunnelGap

_make_transaction = fast_maker(HttpTransaction)  # every field, positionally

_UNBOUNDED = 1 << 62  # a body delimited by the connection's close

# --- syntax (RFC 9110 5.6.2, RFC 9112 3, 4, 5, 7.1) --------------------------------------------

_TOKEN = rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+"
_TOKEN_RE = re.compile(_TOKEN)
_REQUEST_LINE = re.compile(rb"(" + _TOKEN + rb") ([^\x00- \x7f]+) HTTP/([0-9])\.([0-9])")
# Tolerated with a flag: several spaces or tabs between the parts, trailing whitespace.
_REQUEST_LINE_LAX = re.compile(
    rb"(" + _TOKEN + rb")[ \t]+([^\x00- \x7f]+)[ \t]+HTTP/([0-9])\.([0-9])[ \t]*"
)
# Request lines that break RFC 9112 3 but that servers answer (and that Zeek's
# HTTP_Analyzer::ParseRequest reads the same way): the version is the last "HTTP/" word, the
# request-target is everything between the method and it (empty, or with spaces inside), and a
# malformed version is unknown. Each is flagged: missing_target, space_in_target, bad_version,
# ctl_in_target.
_METHOD_WS = re.compile(rb"(" + _TOKEN + rb")[ \t]+")
_VERSION_AT_END = re.compile(rb"(?:^|[ \t])HTTP/([^ \t]*)[ \t]*\Z")
_VERSION_NUMBER = re.compile(rb"([0-9])\.([0-9])")
_NO_CONTROLS = re.compile(rb"[^\x00-\x08\x0a-\x1f\x7f]*")
# An HTTP/0.9 simple-request (RFC 1945 4.1: Method SP Request-URI, no version, no headers):
# only an upper-case method of 3 or more letters and a path or an absolute URI, so that a line
# of text is not taken for one (Zeek asks for a 3-character method and a URI as well).
_SIMPLE_REQUEST = re.compile(
    rb"([A-Z][A-Z0-9_-]{2,})[ \t]+(/[^\x00- \x7f]*|[A-Za-z][A-Za-z0-9+.-]*://[^\x00- \x7f]+)[ \t]*"
)

RequestLine = tuple[bytes, bytes, tuple[int, int] | None, tuple[str, ...]]


def _parse_request_line(line: bytes) -> RequestLine | None:
    """(method, target, version, flags) of a request line, or None when it is not one.

    The version is None when malformed and (0, 9) for an HTTP/0.9 simple-request.
    """
    m = _REQUEST_LINE.fullmatch(line)
    if m is not None:
        return m.group(1), m.group(2), (int(m.group(3)), int(m.group(4))), ()
    m = _REQUEST_LINE_LAX.fullmatch(line)
    if m is not None:
        return m.group(1), m.group(2), (int(m.group(3)), int(m.group(4))), ("lax_request_line",)
    m = _METHOD_WS.match(line)
    if m is None:
        return None
    rest = line[m.end() :]
    v = _VERSION_AT_END.search(rest)
    if v is not None:
        target = rest[: v.start()].rstrip(b" \t")
        num = _VERSION_NUMBER.fullmatch(v.group(1))
        flags: tuple[str, ...] = ()
        if not _NO_CONTROLS.fullmatch(target):
            # Control characters (ESC, NUL ...) in the target: RFC 3986 has no place for them,
            # but the line is a request (method, version) and the server answers it, so the
            # row keeps it with a flag (Zeek and Wireshark read such a target as sent); how the
            # text is escaped for display is the outputs' job.
            flags += ("ctl_in_target",)
        if not target:
            flags += ("missing_target",)
        elif b" " in target or b"\t" in target:
            flags += ("space_in_target",)
        if num is None:
            flags += ("bad_version",)
        return m.group(1), target, (int(num.group(1)), int(num.group(2))) if num else None, flags
    s = _SIMPLE_REQUEST.fullmatch(line)
    if s is not None:
        return s.group(1), s.group(2), (0, 9), ("http09",)
    return None


# status-line = HTTP-version SP status-code SP [ reason-phrase ]; the reason may be empty.
_STATUS_LINE = re.compile(rb"HTTP/([0-9])\.([0-9]) ([0-9]{3}) ([^\r\n]*)")
_STATUS_LINE_LAX = re.compile(rb"HTTP/([0-9])\.([0-9])[ \t]+([0-9]{3})(?:[ \t]+([^\r\n]*))?")
_HEAD_END = re.compile(rb"\n\r?\n")
# The common case in one match at the start of the buffer: a strict start line, CRLF field lines
# that _FIELD_PAIRS_S reads one each (no bare CR, no folding), and the blank line. Anything
# else, or a head not complete yet, takes the general path, which gives the same result here.
_FAST_REQUEST_LINE = re.compile(rb"(" + _TOKEN + rb") ([^\x00- \x7f]+) HTTP/([0-9])\.([0-9])\r\n")
_FAST_STATUS_LINE = re.compile(rb"HTTP/([0-9])\.([0-9]) ([0-9]{3}) ([^\r\n]*)\r\n")
# field-line = field-name ":" OWS field-value OWS; the value keeps inner whitespace. One line
# (the general path, line by line):
_FIELD_LINE = re.compile(rb"(" + _TOKEN + rb"):[ \t]*((?:[^ \t][^\r\n]*?)?)[ \t]*")
# Every line of a CRLF header block at once (the fast path), as text: the block is decoded once
# as latin-1 (field names are ASCII tokens, values latin-1, RFC 9110 5.5), so the pairs need no
# decode each. Values are taken greedily to the CR and trailing whitespace is stripped after,
# only when there is any: a lazy value pattern would try the line end at every character.
_FIELD_PAIRS_S = re.compile("^(" + _TOKEN.decode("latin-1") + ")" + r":[ \t]*([^\r\n]*)\r\n", re.M)
_TOO_LARGE = f"header section longer than {HTTP_MAX_HEADER_BYTES} bytes"
_CHUNK_TOO_LONG = f"chunk-size line longer than {HTTP_MAX_CHUNK_LINE_BYTES} bytes"
_CHUNK_LINE = re.compile(rb"([0-9A-Fa-f]{1,16})[ \t]*(;[^\r\n]*)?")
_DIGITS = re.compile(r"[0-9]{1,18}")
# Plausible message starts for resynchronisation: at the buffer start or after a newline.
# Lengths are bounded so that a line the resync buffer could not hold whole
# (HTTP_RESYNC_KEEP_BYTES) never matches, however the stream was segmented.
_RESYNC_REQUEST = re.compile(
    rb"(?:^|\n)[!#$%&'*+\-.^_`|~0-9A-Za-z]{1,32} [^\x00- \x7f]{1,"
    + str(HTTP_RESYNC_KEEP_BYTES - 64).encode()
    + rb"} HTTP/[0-9]\.[0-9]\r?\n"
)
_RESYNC_RESPONSE = re.compile(rb"(?:^|\n)HTTP/[0-9]\.[0-9] [0-9]{3}[ \r\n]")


# --- body framing -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class BodyFraming:
    """How the body of one message is delimited.

    ``kind``: ``none`` (no body), ``length`` (``length`` bytes), ``chunked``, ``close`` (read
    until the connection closes) or ``tunnel`` (the connection leaves HTTP after this head).
    """

    kind: Literal["none", "length", "chunked", "close", "tunnel"]
    length: int = 0
    flags: tuple[str, ...] = ()


Index = dict[str, list[str]]

# The flagless framings without a length, shared (frozen): one less object per message.
_NONE = BodyFraming("none")
_CLOSE = BodyFraming("close")
_TUNNEL = BodyFraming("tunnel")
_CHUNKED = BodyFraming("chunked")


def _index(headers: Sequence[tuple[str, str]]) -> Index:
    """Lower-case field name -> its values in order (names are case-insensitive, RFC 9110 5.1);
    built once per header section so that every later lookup is one dict access."""
    idx: Index = {n.lower(): [v] for n, v in headers}
    if len(idx) == len(headers):
        return idx  # the common case: no field repeated
    idx = {}
    for n, v in headers:
        k = n.lower()
        vals = idx.get(k)
        if vals is None:
            idx[k] = [v]
        else:
            vals.append(v)
    return idx


def _list_values(idx: Index, name: str) -> list[str]:
    """Comma-separated list elements of every field called ``name`` (RFC 9110 5.3, 5.6.1)."""
    vals = idx.get(name)
    if not vals:
        return []
    return [p.strip() for v in vals for p in v.split(",") if p.strip()]


def expected_body_framing(
    headers: Sequence[tuple[str, str]],
    *,
    request_method: str | None,
    status_code: int | None,
) -> BodyFraming:
    """Body framing of a message by RFC 9112 section 6.3, as a pure function.

    ``status_code`` is None for a request. For a response ``request_method`` is the method of
    the request it answers (None when unknown, e.g. an orphan response). Unrecoverable framing
    (a bad or conflicting Content-Length, a Transfer-Encoding not ending in chunked) is read
    until close, with a flag: a passive observer cannot know more, and a server answers such a
    request with 400 and closes, so nothing after it would be HTTP anyway.
    """
    return _framing(_index(headers), request_method, status_code)


def _framing(idx: Index, request_method: str | None, status_code: int | None) -> BodyFraming:
    if status_code is not None:
        if status_code == 101:
            return _TUNNEL  # RFC 9110 15.2.2: the connection leaves HTTP
        if request_method == "HEAD" or 100 <= status_code < 200 or status_code in (204, 304):
            return _NONE
        if request_method == "CONNECT" and 200 <= status_code < 300:
            return _TUNNEL
    # Fast path, the common case: one plain Content-Length and no Transfer-Encoding.
    cl1 = idx.get("content-length")
    if cl1 is not None and len(cl1) == 1 and "transfer-encoding" not in idx:
        v = cl1[0]
        if v.isascii() and v.isdigit() and len(v) <= 18:
            n = int(v)
            return BodyFraming("length", n) if n else _NONE
    elif cl1 is None and "transfer-encoding" not in idx:
        return _NONE if status_code is None else _CLOSE
    te = [t.lower() for t in _list_values(idx, "transfer-encoding")]
    cls = _list_values(idx, "content-length")
    if te:
        # request-smuggling indicator (RFC 9112 6.3 #3)
        flags: tuple[str, ...] = ("te_and_cl",) if cls else ()
        if te[-1] == "chunked":
            if te.count("chunked") > 1:
                flags += ("te_chunked_twice",)
            return BodyFraming("chunked", flags=flags) if flags else _CHUNKED
        flags += ("te_not_chunked",)
        if status_code is None and "chunked" in te:
            # RFC 9112 6.3: a server must reject this request (400) and close, so no framing is
            # right; Zeek (first coding) and Wireshark (any coding) both read a chunked body and
            # then the next request, which is the smuggled request an analyst needs to see.
            return BodyFraming("chunked", flags=flags)
        return BodyFraming("close", flags=flags)
    if cls:
        for v in cls:
            if not _DIGITS.fullmatch(v):
                return BodyFraming("close", flags=("cl_invalid",))
        values = {int(v) for v in cls}
        if len(values) > 1:
            return BodyFraming("close", flags=("cl_mismatch",))
        n = values.pop()
        return BodyFraming("length", n) if n else _NONE
    if status_code is None:
        return _NONE
    return _CLOSE


# --- head parsing -----------------------------------------------------------------------------


def _parse_lines(raw: bytes, blank_bare: bool, flags: list[str]) -> list[bytes]:
    """Split a header section into lines, accepting (and flagging) bare LF and bare CR."""
    # Fast path, the normal case: every line ends in CRLF (``raw`` stops before the last LF).
    n_crlf = raw.count(b"\r\n")
    if (
        not blank_bare
        and raw.endswith(b"\r")
        and raw.count(b"\n") == n_crlf
        and raw.count(b"\r") == n_crlf + 1
    ):
        return raw[:-1].split(b"\r\n")
    lines = raw.split(b"\n")
    bare = blank_bare
    out: list[bytes] = []
    for ln in lines:
        if ln.endswith(b"\r"):
            ln = ln[:-1]
        else:
            bare = True
        if b"\r" in ln:
            # RFC 9112 2.2: a bare CR may be replaced by SP before the message is processed.
            flags.append("bare_cr")
            ln = ln.replace(b"\r", b" ")
        out.append(ln)
    if bare:
        flags.append("bare_lf")
    return out


def _parse_fields(lines: Sequence[bytes], flags: list[str]) -> list[tuple[str, str]]:
    """Field lines -> (name, value) in order; obs-fold joined with one space (RFC 9112 5.2)."""
    fields: list[tuple[str, str]] = []
    match = _FIELD_LINE.fullmatch
    for ln in lines:
        m = match(ln)
        if m is not None and len(fields) < HTTP_MAX_HEADER_FIELDS:
            # Fast path: a well-formed field line.
            fields.append((m.group(1).decode("ascii"), m.group(2).decode("latin-1")))
            continue
        if ln[:1] in (b" ", b"\t"):
            if not fields:
                # RFC 9112 2.2: whitespace-led lines right after the start line are ignored.
                flags.append("ws_after_start_line")
                continue
            flags.append("obs_fold")
            name, value = fields[-1]
            more = ln.strip(b" \t").decode("latin-1")
            fields[-1] = (name, f"{value} {more}" if value else more)
            continue
        colon = ln.find(b":")
        if colon <= 0:
            flags.append("bad_header_line")
            continue
        name_b = ln[:colon]
        if name_b[-1:] in (b" ", b"\t"):
            flags.append("ws_before_colon")  # RFC 9112 5.1: servers must reject, we accept
            name_b = name_b.rstrip(b" \t")
        if not _TOKEN_RE.fullmatch(name_b):
            flags.append("bad_header_name")
            continue
        if len(fields) >= HTTP_MAX_HEADER_FIELDS:
            if "too_many_headers" not in flags:
                flags.append("too_many_headers")
            continue
        fields.append((name_b.decode("ascii"), ln[colon + 1 :].strip(b" \t").decode("latin-1")))
    return fields


def _parse_head(
    raw: bytes, blank_bare: bool, flags: list[str]
) -> tuple[bytes, list[tuple[str, str]]]:
    """A header section (without its final LF) -> start line and fields."""
    if not blank_bare and raw.endswith(b"\r"):
        # Fast path, the normal case: CRLF everywhere and only well-formed field lines, checked
        # and split by one regex pass in C instead of a Python loop per line.
        nl = raw.find(b"\r\n")
        start = raw[:nl] if nl >= 0 else raw[:-1]
        block = raw[nl + 2 :] + b"\n" if nl >= 0 else b""
        text = block.decode("latin-1")
        pairs = _FIELD_PAIRS_S.findall(text)
        # Each match starts at a line start and ends with its CRLF, so as many matches as
        # lines means every line is a well-formed field line.
        if (
            b"\r" not in start
            and b"\n" not in start
            and len(pairs) == text.count("\n")
            and len(pairs) <= HTTP_MAX_HEADER_FIELDS
        ):
            if " \r" in text or "\t\r" in text:
                pairs = [(n, v.rstrip(" \t")) for n, v in pairs]
            return start, pairs
    lines = _parse_lines(raw, blank_bare, flags)
    return lines[0], _parse_fields(lines[1:], flags)


def _first(idx: Index, name: str) -> str | None:
    vals = idx.get(name)
    return vals[0] if vals else None


def _joined(idx: Index, name: str) -> str | None:
    vals = idx.get(name)
    return ", ".join(vals) if vals else None


def _persistent(version: tuple[int, int], connection: str | None) -> bool:
    """RFC 9112 9.3: does this message let the connection persist?"""
    if connection is None:
        return version >= (1, 1)
    low = connection.lower()
    # (the token sets are built only when the text could hold the token)
    if "close" in low and "close" in {t.strip() for t in low.split(",")}:
        return False
    if version >= (1, 1):
        return True
    return "keep-alive" in low and "keep-alive" in {
        t.strip() for t in low.split(",")
    }  # RFC 9112 C.2.2


# --- per-connection state ---------------------------------------------------------------------


# Reader states: plain module ints (an Enum's hashing showed up in profiles), C ints in the
# compiled build (http1.pxd).
_S_START = 0  # waiting for / reading a header section
_S_BODY_LEN = 1
_S_CHUNK_SIZE = 2
_S_CHUNK_DATA = 3
_S_CHUNK_CRLF = 4
_S_TRAILERS = 5
_S_BODY_CLOSE = 6
_S_PAUSED = 7  # request side after Upgrade/CONNECT, until the response decides
_S_TUNNEL = 8
_S_RESYNC = 9
_S_DEAD = 10

_STATE_NAMES = {
    _S_START: "start",
    _S_BODY_LEN: "body_len",
    _S_CHUNK_SIZE: "chunk_size",
    _S_CHUNK_DATA: "chunk_data",
    _S_CHUNK_CRLF: "chunk_crlf",
    _S_TRAILERS: "trailers",
    _S_BODY_CLOSE: "body_close",
    _S_PAUSED: "paused",
    _S_TUNNEL: "tunnel",
    _S_RESYNC: "resync",
    _S_DEAD: "dead",
}


# A transaction's header fields and their index until its message's head is read: shared by
# every _Tx (4 fewer objects per exchange for the garbage collector to track).
_NO_FIELDS: list[tuple[str, str]] = []
_NO_INDEX: Index = {}


class _Tx:
    """Mutable transaction under construction (frozen into :class:`HttpTransaction`)."""

    __slots__ = (
        "depth",
        "method",
        "uri",
        "target_form",
        "host",
        "req_version",
        "resp_version",
        "req_headers",
        "resp_headers",
        "req_body_len",
        "resp_body_len",
        "status",
        "reason",
        "info",
        "content_length",
        "chunk_count",
        "trailers",
        "upgrade",
        "tunnel",
        "pipelined",
        "pipeline_depth",
        "ts_req_start",
        "ts_req_end",
        "ts_resp_start",
        "ts_resp_end",
        "hasher",
        "partial",
        "flags",
        "req_done",
        "resp_done",
        "resp_close",
        "has_request",
        "req_idx",
        "resp_idx",
    )

    def __init__(self, depth: int) -> None:
        self.depth = depth
        self.method: str | None = None
        self.uri: str | None = None
        self.target_form: str | None = None
        self.host: str | None = None
        self.req_version: tuple[int, int] | None = None
        self.resp_version: tuple[int, int] | None = None
        # (shared empties, never mutated: a message's head replaces them when it is read)
        self.req_headers: list[tuple[str, str]] = _NO_FIELDS
        self.resp_headers: list[tuple[str, str]] = _NO_FIELDS
        self.req_idx: Index = _NO_INDEX
        self.resp_idx: Index = _NO_INDEX
        self.req_body_len: int | None = None
        self.resp_body_len: int | None = None
        self.status: int | None = None
        self.reason: str | None = None
        self.info: list[int] = []
        self.content_length: int | None = None
        self.chunk_count: int | None = None
        self.trailers: list[str] = []
        self.upgrade: str | None = None
        self.tunnel: str | None = None
        self.pipelined = False
        self.pipeline_depth = 0
        self.ts_req_start: int | None = None
        self.ts_req_end: int | None = None
        self.ts_resp_start: int | None = None
        self.ts_resp_end: int | None = None
        self.hasher: hashlib._Hash | None = None
        self.partial = False
        self.flags: list[str] = []
        self.req_done = False
        self.resp_done = False
        self.resp_close = False  # response delimited by close: the connection cannot persist
        self.has_request = False

    def flag(self, *names: str) -> None:
        for n in names:
            if n not in self.flags:
                self.flags.append(n)

    def connection_headers(self) -> tuple[str | None, str | None]:
        """The request's and the response's Connection header values (each joined)."""
        rq_vals, rs_vals = self.req_idx.get("connection"), self.resp_idx.get("connection")
        return (", ".join(rq_vals) if rq_vals else None, ", ".join(rs_vals) if rs_vals else None)

    def keep_alive(self, rq_conn: str | None, rs_conn: str | None) -> bool | None:
        """Whether the connection may carry another exchange after this one (None: unanswered),
        from the Connection headers ``rq_conn`` and ``rs_conn`` (:meth:`connection_headers`)."""
        if self.upgrade is not None or self.tunnel is not None:
            return False  # the connection no longer carries HTTP
        if self.status is None and not self.has_request:
            return None
        keep = not self.resp_close
        if self.has_request and self.req_version is not None:
            keep = keep and _persistent(self.req_version, rq_conn)
        if self.resp_version is not None:
            keep = keep and _persistent(self.resp_version, rs_conn)
        if self.status is None and self.resp_version is None:
            return None  # unanswered: unknown
        return keep

    def body_sha256(self) -> str | None:
        """The response body's SHA-256 (hex) when it was seen whole and is not empty."""
        if self.hasher is not None and self.resp_body_len:
            return self.hasher.hexdigest()
        return None

    def freeze(self) -> HttpTransaction:
        rqg, rsg = self.req_idx.get, self.resp_idx.get
        rq_conn, rs_conn = self.connection_headers()
        v = self.req_version
        rv = self.resp_version
        ua, ref, ex, upr = rqg("user-agent"), rqg("referer"), rqg("expect"), rqg("upgrade")
        ct, te, ce, tra = (
            rsg("content-type"),
            rsg("transfer-encoding"),
            rsg("content-encoding"),
            rsg("trailer"),
        )
        # positional, in field order (cheaper than 39 keywords; the unit tests check every value)
        return _make_transaction(
            self.depth,  # trans_depth
            self.method,  # method
            self.uri,  # uri
            self.target_form,  # target_form
            self.host,  # host
            f"{v[0]}.{v[1]}" if v else None,  # request_version
            f"{rv[0]}.{rv[1]}" if rv else None,  # response_version
            ua[0] if ua else None,  # user_agent
            ref[0] if ref else None,  # referrer
            tuple(self.req_headers),  # request_headers
            tuple(self.resp_headers),  # response_headers
            self.req_body_len,  # request_body_len
            self.resp_body_len,  # response_body_len
            self.status,  # status_code
            self.reason,  # status_msg
            tuple(self.info),  # info_codes
            ct[0] if ct else None,  # content_type
            self.content_length,  # content_length
            ", ".join(te) if te else None,  # transfer_encoding
            ", ".join(ce) if ce else None,  # content_encoding
            self.chunk_count,  # chunk_count
            tuple(self.trailers),  # trailer_names
            ", ".join(tra) if tra else None,  # trailer_announced
            ex[0] if ex else None,  # expect
            ", ".join(upr) if upr else None,  # upgrade_requested
            self.upgrade,  # upgrade
            self.tunnel,  # tunnel
            rq_conn,  # request_connection
            rs_conn,  # response_connection
            self.keep_alive(rq_conn, rs_conn),  # keep_alive
            self.pipelined,  # pipelined
            self.pipeline_depth,  # pipeline_depth
            self.ts_req_start,  # ts_request_start
            self.ts_req_end,  # ts_request_end
            self.ts_resp_start,  # ts_response_start
            self.ts_resp_end,  # ts_response_end
            self.body_sha256(),  # resp_body_sha256
            self.partial,  # partial
            tuple(self.flags),  # flags
        )


# The finished transaction as the analysis driver reads it (HttpConnection(raw=True)).
TxState = _Tx


class _Side:
    """One direction's parser state."""

    __slots__ = (
        "is_orig",
        "buf",
        "state",
        "remaining",
        "scan",
        "started",
        "msg_ts",
        "outstanding",
        "tx",
        "last_ts",
        "ended",
        "resynced",
        "msg_flags",
        "checked",
        "paused_for",
        "midline",
        "early_ts",
        "first_line",
    )

    def __init__(self, is_orig: bool) -> None:
        self.is_orig = is_orig
        self.buf = bytearray()
        self.state = _S_START
        self.remaining = 0  # bytes left in a Content-Length body or a chunk
        self.scan = 0  # where to continue searching for the end of the header section
        self.started = False  # a message's first byte has been seen
        self.msg_ts = 0  # timestamp of that first byte
        self.outstanding = 0  # requests outstanding when this request's first byte arrived
        self.tx: _Tx | None = None  # the transaction whose message this side is reading
        self.last_ts = 0
        self.ended = False
        self.resynced = False  # the next message follows a resynchronisation
        self.msg_flags: list[str] = []
        self.checked = False  # the message's start line has been checked
        self.paused_for: _Tx | None = None  # the Upgrade/CONNECT request a PAUSED side waits on
        self.midline = False  # resynchronising must first skip the rest of a discarded line
        self.early_ts: int | None = None  # first byte of an answer to HTTP/0.9, not yet decided
        # (line, parse) of the request line the check parsed, so that the head is not parsed twice
        self.first_line: tuple[bytes, RequestLine] | None = None


class HttpConnection:
    """Both directions of one HTTP/1.x connection; see the module docstring."""

    __slots__ = (
        "_req",
        "_resp",
        "_awaiting",
        "_txs",
        "_depth",
        "_out",
        "_tunnel",
        "_on_body",
        "_raw",
    )

    def __init__(
        self,
        on_body: Callable[[int, bytes], None] | None = None,
        first_depth: int = 0,
        raw: bool = False,
    ) -> None:
        """``on_body(trans_depth, chunk)`` receives each response's body bytes as they are
        decoded (chunk framing removed), for extraction; bodies are otherwise never kept.
        ``first_depth``: transactions are numbered from ``first_depth + 1`` (HTTP inside a
        tunnel continues the numbering of the connection that opened it, as Zeek's).
        ``raw``: transactions come out as the parser's own finished :class:`TxState` instead of
        a frozen :class:`HttpTransaction` (the analysis driver reads each once, into its table
        row: a 39-field object per exchange that is read once and dropped is not made)."""
        self._on_body = on_body
        self._raw = raw
        self._req = _Side(True)
        self._resp = _Side(False)
        self._awaiting: deque[_Tx] = deque()  # requests whose response has not started
        self._txs: deque[_Tx] = deque()  # not yet emitted, in trans_depth order
        self._depth = first_depth
        # Events; with ``raw``, finished transactions are TxState objects (see __init__).
        self._out: list[Any] = []
        self._tunnel = False

    # -- public API ------------------------------------------------------------------------------
    @property
    def depth(self) -> int:
        """The highest trans_depth given out so far."""
        return self._depth

    def data(self, is_orig: bool, chunk: bytes, ts_ns: int) -> list[Event]:
        side = self._req if is_orig else self._resp
        if not chunk or side.ended:
            return []
        side.last_ts = ts_ns
        st = side.state
        if st == _S_DEAD:
            return []
        if st == _S_TUNNEL:
            return [TunnelData(is_orig, bytes(chunk), ts_ns)]
        # Fast path: body bytes that need no buffering (large bodies never touch the buffer).
        if not side.buf and st in (_S_BODY_LEN, _S_CHUNK_DATA, _S_BODY_CLOSE):
            if st == _S_BODY_CLOSE:
                self._body(side, chunk)
                return []
            if len(chunk) < side.remaining:
                self._body(side, chunk)
                side.remaining -= len(chunk)
                return []
        side.buf += chunk
        self._run(side, ts_ns)
        return self._take()

    def opaque_bytes(self, is_orig: bool) -> int:
        """How many of the next bytes in this direction are body bytes the parser only counts and
        hashes (they may be fed in one call, with the time of the last of them)."""
        side = self._req if is_orig else self._resp
        if side.buf or side.ended:
            return 0
        st = side.state
        if st in (_S_BODY_LEN, _S_CHUNK_DATA):
            return side.remaining
        if st == _S_BODY_CLOSE:
            return _UNBOUNDED
        return 0

    def opaque_data(self, is_orig: bool, views: Sequence[memoryview], ts_ns: int) -> list[Event]:
        """Body bytes, as views the caller keeps only for this call, all within
        :meth:`opaque_bytes`: counted and hashed without being copied."""
        side = self._req if is_orig else self._resp
        if side.ended or not views:
            return []
        side.last_ts = ts_ns
        # One C-level join (a memcpy) and one hash update beat a Python call per segment.
        chunk = views[0] if len(views) == 1 else b"".join(views)
        self._body(side, chunk)
        n = len(chunk)
        if side.state != _S_BODY_CLOSE:
            side.remaining -= n
            if not side.remaining:
                self._run(side, ts_ns)  # the body (or chunk) ends here
        return self._take()

    def gap(self, is_orig: bool, nbytes: int, ts_ns: int) -> list[Event]:
        side = self._req if is_orig else self._resp
        if nbytes <= 0 or side.ended:
            return []
        side.last_ts = ts_ns
        try:
            self._gap(side, nbytes, ts_ns)
        except ParserError as e:  # pragma: no cover - _gap raises nothing itself today
            self._error(side, e, ts_ns)
        self._run(side, ts_ns)
        return self._take()

    def end(self, is_orig: bool, ts_ns: int) -> list[Event]:
        side = self._req if is_orig else self._resp
        if side.ended:
            return []
        self._run(side, ts_ns)
        self._end(side, ts_ns)
        self._flush()
        return self._take()

    # -- driver ----------------------------------------------------------------------------------
    def _take(self) -> list[Event]:
        out, self._out = self._out, []
        return out

    def _anomaly(self, side: _Side, kind: str, detail: str, ts: int) -> None:
        self._out.append(HttpAnomaly(kind, detail, ts, side.is_orig))

    def _step(self, side: _Side, ts: int) -> bool:
        """One step of the side's state machine; True when it made progress."""
        st = side.state
        if st == _S_START:
            return self._start(side, ts)
        if st in (_S_BODY_LEN, _S_CHUNK_DATA):
            return self._body_len(side, ts)
        if st == _S_CHUNK_SIZE:
            return self._chunk_size(side, ts)
        if st == _S_CHUNK_CRLF:
            return self._chunk_crlf(side, ts)
        if st == _S_TRAILERS:
            return self._trailers(side, ts)
        if st == _S_BODY_CLOSE:
            return self._body_close(side, ts)
        if st == _S_PAUSED:
            return self._paused(side, ts)
        if st == _S_TUNNEL:
            return self._tunnel_data(side, ts)
        if st == _S_RESYNC:
            return self._resync(side, ts)
        return self._dead(side, ts)

    def _run(self, side: _Side, ts: int) -> None:
        txs = self._txs
        while True:
            # Flush after every step: a transaction is emitted as soon as it completes, so the
            # order of events does not depend on how the stream was segmented.
            try:
                progressed = self._step(side, ts)
            except ParserError as e:
                self._error(side, e, ts)
                progressed = True
            if txs and txs[0].req_done and txs[0].resp_done:  # (_flush's test, inlined)
                self._flush()
            if not progressed:
                break

    def _error(self, side: _Side, e: ParserError, ts: int) -> None:
        kind = str(e.args[0]) if e.args else "parse_error"
        detail = str(e.args[1]) if len(e.args) > 1 else ""
        self._anomaly(side, kind, f"{detail}; resynchronising at the next message start", ts)
        self._break(side, kind, ts)
        side.state = _S_RESYNC

    def _break(self, side: _Side, kind: str, ts: int) -> None:
        """The message being read is damaged: finish its transaction as partial."""
        tx = side.tx
        if tx is None and side.started:
            # A head was in progress: its transaction existed even though we cannot read it, so
            # keep a placeholder and the request/response pairing stays aligned.
            tx = self._new_request_tx(side) if side.is_orig else self._response_tx()
        if tx is not None:
            tx.partial = True
            tx.flag(kind)
            if side.is_orig:
                tx.req_done = True
            else:
                tx.resp_done = True
        side.tx = None
        side.started = False
        side.msg_flags = []

    def _flush(self) -> None:
        txs = self._txs
        while txs and txs[0].req_done and txs[0].resp_done:
            tx = txs.popleft()
            self._out.append(tx if self._raw else tx.freeze())

    def _outstanding(self) -> int:
        """Requests sent whose final response has not ended (for pipelining)."""
        n = len(self._awaiting)
        rtx = self._resp.tx
        if rtx is not None and rtx.has_request and not rtx.resp_done:
            n += 1
        return n

    # -- states ----------------------------------------------------------------------------------
    def _start(self, side: _Side, ts: int) -> bool:
        buf = side.buf
        if not side.started:
            if not buf:
                return False
            if not side.is_orig and self._answers_http09():
                return self._decide_http09(side, ts)
            if side.early_ts is None and self._fast_head(side, buf, ts):
                return True
            # RFC 9112 2.2: empty lines before a start line are ignored.
            i = 0
            n = len(buf)
            while i < n and buf[i] in (10, 13):
                i += 1
            if i:
                del buf[:i]
            if not buf:
                return False
            side.started = True
            side.checked = False
            side.msg_ts = ts if side.early_ts is None else side.early_ts
            side.early_ts = None
            side.scan = 0
            if side.is_orig:
                side.outstanding = self._outstanding()
        m = _HEAD_END.search(buf, max(0, side.scan - 2))
        if m is None:
            if not side.checked:
                self._check_first_line(side)
            side.scan = len(buf)
            if len(buf) > HTTP_MAX_HEADER_BYTES:
                self._discard_line(side)
                raise ParserError("header_too_large", _TOO_LARGE)
            return False
        if not side.checked:
            # The same check as above, so that a bad start line costs the same bytes however
            # the stream was segmented (only that line; resynchronising starts after it).
            self._check_first_line(side)
        if m.end() > HTTP_MAX_HEADER_BYTES:
            self._discard_line(side)
            raise ParserError("header_too_large", _TOO_LARGE)
        raw = bytes(buf[: m.start()])
        blank_bare = m.group() == b"\n\n"  # before the buffer the match points into changes
        del buf[: m.end()]
        flags = side.msg_flags
        side.msg_flags = []
        start, fields = _parse_head(raw, blank_bare, flags)
        if side.is_orig:
            self._request_head(side, start, fields, flags, ts)
        else:
            self._response_head(side, start, fields, flags, ts)
        return True

    def _fast_head(self, side: _Side, buf: bytearray, ts: int) -> bool:
        """A whole, well-formed head at the start of the buffer: a strict start line, then CRLF
        field lines that _FIELD_PAIRS_S reads one each (no bare CR or LF, no folding) up to the
        first blank line. Parsed in two C-level passes with the general path's result; False:
        take the general path (also for a head not complete yet)."""
        is_orig = side.is_orig
        m = (_FAST_REQUEST_LINE if is_orig else _FAST_STATUS_LINE).match(buf)
        if m is None:
            return False
        ls = m.end()
        if buf.startswith(b"\r\n", ls):
            end = ls + 2  # no fields
            text = ""
            fields: list[tuple[str, str]] = []
        else:
            be = buf.find(b"\r\n\r\n", ls)
            if be < 0:
                return False  # not complete yet
            end = be + 4
            text = buf[ls : be + 2].decode("latin-1")
            fields = _FIELD_PAIRS_S.findall(text)
            # Each match is one whole line ending in CRLF: as many as lines means all are fields
            # (a bare LF, or a bare-LF blank line ending the head earlier, leaves a line unmatched).
            if len(fields) != text.count("\n") or len(fields) > HTTP_MAX_HEADER_FIELDS:
                return False
        if end > HTTP_MAX_HEADER_BYTES:
            return False
        if " \r" in text or "\t\r" in text:
            fields = [(n, v.rstrip(" \t")) for n, v in fields]
        side.msg_ts = ts
        side.scan = 0
        flags = side.msg_flags
        if flags:
            side.msg_flags = []
        else:
            flags = []
        if is_orig:
            side.outstanding = self._outstanding()
            g = m.group
            parsed = (g(1), g(2), (int(g(3)), int(g(4))), ())
            del buf[:end]
            self._request_head(side, b"", fields, flags, ts, parsed)
        else:
            status = m.groups()  # (read before the buffer the match points into changes)
            del buf[:end]
            self._response_head(side, b"", fields, flags, ts, status)
        return True

    def _answers_http09(self) -> bool:
        """The next response answers an HTTP/0.9 simple-request (and no 1xx is in progress)."""
        return (
            self._resp.tx is None
            and bool(self._awaiting)
            and self._awaiting[0].req_version == (0, 9)
        )

    def _decide_http09(self, side: _Side, ts: int, final: bool = False) -> bool:
        """Start the HTTP/0.9 reply to a simple-request, once its first bytes say whether the
        server wrote a status line anyway (only to flag it: the reply is a simple-response
        either way). ``final``: no more bytes come (end or gap), decide on what there is."""
        buf = side.buf
        if side.early_ts is None:
            side.early_ts = ts
        head = bytes(buf[:5])
        if head == b"HTTP/":
            nl = buf.find(b"\n", 0, HTTP09_STATUS_LINE_PEEK)
            if nl < 0 and len(buf) < HTTP09_STATUS_LINE_PEEK and not final:
                return False  # wait for the whole line, to name it in the anomaly
            end = nl if nl >= 0 else HTTP09_STATUS_LINE_PEEK
            self._simple_response(side, ts, bytes(buf[:end]).rstrip(b"\r"))
            return True
        if b"HTTP/".startswith(head) and not final:
            return False  # may still be a status line
        self._simple_response(side, ts, None)
        return True

    def _simple_response(self, side: _Side, ts: int, status_line: bytes | None) -> None:
        """An HTTP/0.9 response (RFC 1945 6): no status line, no headers; the body is every byte
        up to the close. RFC 1945 4.1: a server must answer a simple-request with a
        simple-response, and a client that sent one reads the answer that way, so a status line
        a server sends anyway is the start of the body, as Zeek reads it (EXPECT_REPLY_HTTP09
        in HTTP_Analyzer). It is flagged, and the anomaly names the line (Wireshark parses it
        as a status line instead)."""
        tx = side.tx = self._response_tx()
        tx.resp_version = (0, 9)
        tx.flag("http09")
        if status_line is not None:
            tx.flag("http09_status_line")
            self._anomaly(
                side,
                "http09_status_line",
                "an HTTP/0.9 request answered with a status line, read as HTTP/0.9 "
                f"body: {status_line.decode('latin-1')!r}",
                side.early_ts or ts,
            )
        tx.ts_resp_start = ts if side.early_ts is None else side.early_ts
        side.early_ts = None
        tx.resp_body_len = 0
        self._begin_body(side, tx, _CLOSE, ts)
        req = self._req
        if req.state == _S_PAUSED and req.paused_for is tx:
            self._unpause()

    def _check_first_line(self, side: _Side) -> None:
        """Reject a bad start line as soon as it is complete, not after 64 KiB of garbage."""
        nl = side.buf.find(b"\n")
        if nl < 0:
            return
        side.checked = True
        line = bytes(side.buf[:nl])
        if line.endswith(b"\r"):
            line = line[:-1]
        line = line.replace(b"\r", b" ")  # as _parse_lines will see it (bare CR -> SP)
        if side.is_orig:
            parsed = _parse_request_line(line)
            ok = parsed is not None
            if parsed is not None:
                side.first_line = (line, parsed)
        else:
            ok = _STATUS_LINE_LAX.fullmatch(line) is not None
        if not ok:
            del side.buf[: nl + 1]
            what = "request" if side.is_orig else "status"
            raise ParserError(f"bad_{what}_line", repr(line[:80]))

    def _discard_line(self, side: _Side) -> None:
        # Progress guarantee: bytes that caused an error are dropped before resynchronising.
        nl = side.buf.find(b"\n")
        if nl < 0:
            # The rest of this line is still to come: resynchronising must skip it too, or
            # the outcome would depend on where the stream was segmented.
            side.buf.clear()
            side.midline = True
        else:
            del side.buf[: nl + 1]

    def _new_request_tx(self, side: _Side) -> _Tx:
        self._depth += 1
        tx = _Tx(self._depth)
        tx.has_request = True
        tx.ts_req_start = side.msg_ts
        tx.pipelined = side.outstanding > 0
        tx.pipeline_depth = side.outstanding + 1
        if side.resynced:
            tx.partial = True
            tx.flag("resync")
            side.resynced = False
        self._txs.append(tx)
        self._awaiting.append(tx)
        if self._resp.ended:
            tx.resp_done = True  # nobody will answer it
        if len(self._awaiting) > HTTP_MAX_PENDING_REQUESTS:
            old = self._awaiting.popleft()
            old.flag("pending_overflow")
            old.resp_done = True
            self._anomaly(
                side,
                "too_many_pending",
                f"more than {HTTP_MAX_PENDING_REQUESTS} requests unanswered; "
                f"request {old.depth} reported unanswered",
                side.msg_ts,
            )
        return tx

    def _response_tx(self) -> _Tx:
        """The transaction the next response belongs to: the oldest unanswered request."""
        if self._awaiting:
            return self._awaiting.popleft()
        self._depth += 1
        tx = _Tx(self._depth)
        tx.req_done = True
        tx.flag("orphan_response")
        self._txs.append(tx)
        return tx

    def _request_head(
        self,
        side: _Side,
        start: bytes,
        fields: list[tuple[str, str]],
        flags: list[str],
        ts: int,
        parsed: RequestLine | None = None,
    ) -> None:
        if parsed is None:
            cached = side.first_line
            side.first_line = None
            parsed = (
                cached[1]
                if cached is not None and cached[0] == start
                else _parse_request_line(start)
            )
            if parsed is None:
                raise ParserError("bad_request_line", repr(start[:80]))
        method_b, target_b, version, line_flags = parsed
        flags.extend(line_flags)
        tx = self._new_request_tx(side)
        side.started = False
        if flags:
            tx.flag(*flags)
        method = method_b.decode("ascii")
        target = target_b.decode("latin-1")
        tx.method = method
        tx.uri = target
        tx.req_version = version
        if version is not None and version[0] != 1 and version != (0, 9):
            tx.flag("unusual_version")
        tx.req_headers = fields
        idx = tx.req_idx = _index(fields)
        if not target:
            tx.target_form = None
        elif method == "CONNECT":
            tx.target_form = "authority"
        elif target == "*":
            tx.target_form = "asterisk"
        elif "://" in target and not target.startswith("/"):
            tx.target_form = "absolute"
        else:
            tx.target_form = "origin"
        hosts = idx.get("host", [])
        if len(hosts) > 1:
            tx.flag("multiple_host")
        if tx.target_form == "absolute":
            # RFC 9112 3.2.2: the authority in an absolute-form target wins over Host.
            tx.host = target.split("://", 1)[1].split("/", 1)[0].split("@")[-1] or None
        elif hosts:
            tx.host = hosts[0]
        elif tx.target_form == "authority":
            tx.host = target.split()[0]  # a target with spaces: its first word names the authority
        if not hosts and version is not None and version >= (1, 1):
            tx.flag("missing_host")
        tx.req_body_len = 0
        framing = _framing(idx, method, None)
        if framing.flags:
            tx.flag(*framing.flags)
        side.tx = tx
        self._begin_body(side, tx, framing, ts)

    def _response_head(
        self,
        side: _Side,
        start: bytes,
        fields: list[tuple[str, str]],
        flags: list[str],
        ts: int,
        status: tuple[bytes, ...] | None = None,
    ) -> None:
        """``status``: the status line's (major, minor, code, reason) when already parsed."""
        if status is None:
            m = _STATUS_LINE.fullmatch(start)
            if m is None:
                m = _STATUS_LINE_LAX.fullmatch(start)
                if m is None:
                    raise ParserError("bad_status_line", repr(start[:80]))
                flags.append("lax_status_line")
            status = m.groups()
        tx = side.tx
        if tx is None:
            tx = side.tx = self._response_tx()
        side.started = False
        if side.resynced:
            tx.partial = True
            tx.flag("resync")
            side.resynced = False
        if flags:
            tx.flag(*flags)
        code = int(status[2])
        version = (int(status[0]), int(status[1]))
        if version[0] != 1:
            tx.flag("unusual_version")
        if 100 <= code < 200 and code != 101:
            tx.info.append(code)  # interim response: the final one follows
            return
        tx.status = code
        tx.reason = (status[3] or b"").decode("latin-1")
        tx.resp_version = version
        tx.resp_headers = fields
        idx = tx.resp_idx = _index(fields)
        tx.ts_resp_start = side.msg_ts
        tx.resp_body_len = 0
        cl1 = idx.get("content-length")
        if cl1 is not None:
            cl = cl1 if len(cl1) == 1 and "," not in cl1[0] else _list_values(idx, "content-length")
            if cl and _DIGITS.fullmatch(cl[0]):
                tx.content_length = int(cl[0])
        framing = _framing(idx, tx.method, code)
        if framing.flags:
            tx.flag(*framing.flags)
        if code == 426:
            tx.flag("upgrade_required")
        req = self._req
        if (
            code == 417
            and req.tx is tx
            and req.state in (_S_BODY_LEN, _S_CHUNK_SIZE)
            and not tx.req_body_len
            and not req.buf
        ):
            # Expectation failed: the client does not send the body it announced (RFC 9110
            # 10.1.1), so the request ends here and the next request starts on the next byte.
            tx.flag("expect_rejected")
            self._request_done(req, req.last_ts)  # it ended with its head, not at the 417
        if framing.kind == "tunnel":
            self._open_tunnel(tx, code, ts)
            return
        self._begin_body(side, tx, framing, ts)
        if req.state == _S_PAUSED and req.paused_for is tx:
            # No tunnel after all (e.g. an ignored h2c upgrade, a refused CONNECT): what the
            # client sent meanwhile is HTTP again.
            self._unpause()

    def _unpause(self) -> None:
        req = self._req
        req.state = _S_START
        req.paused_for = None
        self._run(req, req.last_ts)

    def _begin_body(self, side: _Side, tx: _Tx, framing: BodyFraming, ts: int) -> None:
        if not side.is_orig:
            tx.hasher = hashlib.sha256()
        kind = framing.kind
        if kind == "none":
            self._message_done(side, ts)
        elif kind == "length":
            side.remaining = framing.length
            side.state = _S_BODY_LEN
        elif kind == "chunked":
            if not side.is_orig:
                tx.chunk_count = 0
            side.state = _S_CHUNK_SIZE
        else:  # close
            if not side.is_orig:
                tx.resp_close = True
            side.state = _S_BODY_CLOSE

    def _message_done(self, side: _Side, ts: int) -> None:
        if side.is_orig:
            self._request_done(side, ts)
        else:
            tx = side.tx
            side.tx = None
            side.state = _S_START
            if tx is not None:
                tx.resp_done = True
                tx.ts_resp_end = ts

    def _request_done(self, side: _Side, ts: int) -> None:
        tx = side.tx
        side.tx = None
        side.state = _S_START
        if tx is None:
            return
        tx.req_done = True
        tx.ts_req_end = ts
        if tx.status is None and (tx.method == "CONNECT" or _first(tx.req_idx, "upgrade")):
            # Hold what the client sends next until the response says whether the connection
            # leaves HTTP (h11's "paused" state): it may be a TLS ClientHello or h2 preface.
            side.state = _S_PAUSED
            side.paused_for = tx

    def _body(self, side: _Side, chunk: bytes | bytearray | memoryview) -> None:
        tx = side.tx
        if tx is None:
            return
        if side.is_orig:
            tx.req_body_len = (tx.req_body_len or 0) + len(chunk)
        else:
            tx.resp_body_len = (tx.resp_body_len or 0) + len(chunk)
            if tx.hasher is not None:
                tx.hasher.update(chunk)
            if self._on_body is not None and chunk:
                self._on_body(tx.depth, bytes(chunk))

    def _body_len(self, side: _Side, ts: int) -> bool:
        buf = side.buf
        n = min(side.remaining, len(buf))
        if n:
            self._body(side, memoryview(buf)[:n])
            del buf[:n]
            side.remaining -= n
        if side.remaining:
            return False
        if side.state == _S_CHUNK_DATA:
            side.state = _S_CHUNK_CRLF
        else:
            self._message_done(side, ts)
        return True

    def _chunk_size(self, side: _Side, ts: int) -> bool:
        buf = side.buf
        nl = buf.find(b"\n")
        if nl < 0:
            if len(buf) > HTTP_MAX_CHUNK_LINE_BYTES:
                self._discard_line(side)
                raise ParserError("chunk_line_too_long", _CHUNK_TOO_LONG)
            return False
        if nl > HTTP_MAX_CHUNK_LINE_BYTES:
            self._discard_line(side)
            raise ParserError("chunk_line_too_long", _CHUNK_TOO_LONG)
        line = bytes(buf[:nl])
        del buf[: nl + 1]
        tx = side.tx
        if line.endswith(b"\r"):
            line = line[:-1]
        elif tx is not None:
            tx.flag("bare_lf")
        m = _CHUNK_LINE.fullmatch(line)
        if m is None:
            raise ParserError("bad_chunk_size", repr(line[:80]))
        size = int(m.group(1), 16)
        if size == 0:
            side.state = _S_TRAILERS
            side.scan = 0
            return True
        if tx is not None and not side.is_orig:
            tx.chunk_count = (tx.chunk_count or 0) + 1
        side.remaining = size
        side.state = _S_CHUNK_DATA
        return True

    def _chunk_crlf(self, side: _Side, ts: int) -> bool:
        buf = side.buf
        if buf[:1] == b"\n":
            if side.tx is not None:
                side.tx.flag("bare_lf")
            del buf[:1]
        elif len(buf) < 2:
            if buf[:1] not in (b"", b"\r"):
                del buf[:1]
                raise ParserError("bad_chunk_end", "chunk data not followed by CRLF")
            return False
        elif buf[:2] == b"\r\n":
            del buf[:2]
        else:
            del buf[:1]
            raise ParserError("bad_chunk_end", "chunk data not followed by CRLF")
        side.state = _S_CHUNK_SIZE
        return True

    def _trailers(self, side: _Side, ts: int) -> bool:
        buf = side.buf
        if buf[:2] == b"\r\n" or buf[:1] == b"\n":
            # No trailer fields: the last-chunk's section ends at once.
            if buf[:1] == b"\n" and side.tx is not None:
                side.tx.flag("bare_lf")
            del buf[: 1 if buf[:1] == b"\n" else 2]
            self._message_done(side, ts)
            return True
        if buf == b"\r" or not buf:
            return False
        # Trailer fields: the section ends at an empty line, like a header section.
        m = _HEAD_END.search(buf, max(0, side.scan - 2))
        if m is None:
            side.scan = len(buf)
            if len(buf) > HTTP_MAX_HEADER_BYTES:
                self._discard_line(side)
                raise ParserError("header_too_large", _TOO_LARGE)
            return False
        if m.end() > HTTP_MAX_HEADER_BYTES:
            self._discard_line(side)
            raise ParserError("header_too_large", _TOO_LARGE)
        flags: list[str] = []
        lines = _parse_lines(bytes(buf[: m.start()]), m.group() == b"\n\n", flags)
        del buf[: m.end()]
        fields = _parse_fields(lines, flags)
        tx = side.tx
        if tx is not None:
            tx.flag(*flags)
            if not side.is_orig:
                tx.trailers.extend(n for n, _ in fields)
        self._message_done(side, ts)
        return True

    def _body_close(self, side: _Side, ts: int) -> bool:
        if side.buf:
            self._body(side, side.buf)
            side.buf.clear()
        return False

    def _paused(self, side: _Side, ts: int) -> bool:
        if len(side.buf) > HTTP_MAX_PAUSED_BYTES:
            self._anomaly(
                side,
                "paused_overflow",
                f"{len(side.buf)} bytes after an Upgrade/CONNECT request without a response; "
                "parsing them as HTTP",
                ts,
            )
            side.state = _S_START
            return True
        return False

    def _tunnel_data(self, side: _Side, ts: int) -> bool:
        if side.buf:
            self._out.append(TunnelData(side.is_orig, bytes(side.buf), ts))
            side.buf.clear()
        return False

    def _dead(self, side: _Side, ts: int) -> bool:
        side.buf.clear()
        return False

    def _resync(self, side: _Side, ts: int) -> bool:
        buf = side.buf
        if side.midline:
            nl = buf.find(b"\n")
            if nl < 0:
                buf.clear()
                return False
            del buf[:nl]  # keep the newline: a message may start right after it
            side.midline = False
        pat = _RESYNC_REQUEST if side.is_orig else _RESYNC_RESPONSE
        m = pat.search(buf)
        if m is None:
            # Keep only the unfinished last line (with its newline), bounded.
            nl = buf.rfind(b"\n")
            if nl > 0:
                del buf[:nl]
            if len(buf) > HTTP_RESYNC_KEEP_BYTES:
                buf.clear()
                side.midline = True
            return False
        s = m.start() + (1 if buf[m.start()] == 10 else 0)
        del buf[:s]
        side.state = _S_START
        side.started = False
        side.resynced = True
        return True

    # -- gaps, ends, tunnels -----------------------------------------------------------------------
    def _gap(self, side: _Side, n: int, ts: int) -> None:
        st = side.state
        if st == _S_TUNNEL:
            self._out.append(TunnelGap(side.is_orig, n, ts))
            return
        if st == _S_DEAD:
            return
        # Bytes still buffered come before the gap: consume what the current state can.
        self._run(side, ts)
        st = side.state
        if (
            st == _S_START
            and not side.started
            and side.buf
            and not side.is_orig
            and self._answers_http09()
        ):
            # An undecided reply to a simple-request: HTTP/0.9, and the gap is in its body.
            self._decide_http09(side, ts, final=True)
            self._run(side, ts)
            st = side.state
        if st in (_S_BODY_LEN, _S_CHUNK_DATA) and not side.buf:
            # A body of known length: count the missing bytes and stay in sync.
            k = min(n, side.remaining)
            tx = side.tx
            if tx is not None:
                if side.is_orig:
                    tx.req_body_len = (tx.req_body_len or 0) + k
                else:
                    tx.resp_body_len = (tx.resp_body_len or 0) + k
                tx.hasher = None
                tx.partial = True
                tx.flag("gap_in_body")
            side.remaining -= k
            n -= k
            if side.remaining == 0:
                if st == _S_CHUNK_DATA:
                    side.state = _S_CHUNK_CRLF
                else:
                    self._message_done(side, ts)
                self._flush()
            if n == 0:
                return
            st = side.state
        if st == _S_BODY_CLOSE:
            tx = side.tx
            if tx is not None:
                tx.resp_body_len = (tx.resp_body_len or 0) + n
                tx.hasher = None
                tx.partial = True
                tx.flag("gap_in_body")
            return
        if st == _S_START and not side.started and not side.buf:
            what = "between messages"
            if not side.is_orig and side.tx is None and self._awaiting:
                # Responses come in request order, so the one that starts inside the gap answers
                # the oldest waiting request: it keeps its place in the FIFO (as a damaged head
                # does) and the responses after the gap pair with the requests they answer.
                side.tx = self._response_tx()
        else:
            what = f"in state {_STATE_NAMES[st]}"
        self._anomaly(
            side,
            "gap_resync",
            f"{n} bytes missing {what}; resynchronising at the next message start",
            ts,
        )
        self._break(side, "gap", ts)
        side.buf.clear()
        side.early_ts = None
        side.state = _S_RESYNC
        side.resynced = True
        self._flush()

    def _end(self, side: _Side, ts: int) -> None:
        if side.buf and side.state == _S_START and not side.started and self._answers_http09():
            # The reply to a simple-request was still undecided (a prefix of a status line).
            self._decide_http09(side, ts, final=True)
            self._run(side, ts)
        st = side.state
        tx = side.tx
        if st == _S_BODY_CLOSE and tx is not None:
            # The close delimits the body: the message is complete, ending with its last data.
            if side.is_orig:
                tx.req_done = True
                tx.ts_req_end = side.last_ts
            else:
                tx.resp_done = True
                tx.ts_resp_end = side.last_ts
            side.tx = None
        elif st in (
            _S_BODY_LEN,
            _S_CHUNK_SIZE,
            _S_CHUNK_DATA,
            _S_CHUNK_CRLF,
            _S_TRAILERS,
        ) or (st == _S_START and side.started):
            self._anomaly(side, "truncated", f"stream ended in state {_STATE_NAMES[st]}", ts)
            self._break(side, "truncated", ts)
        side.ended = True
        side.state = _S_DEAD
        side.buf.clear()
        if not side.is_orig:
            # Nothing will answer the requests still waiting.
            for t in self._awaiting:
                t.resp_done = True
            self._awaiting.clear()
            if self._req.state == _S_PAUSED:
                self._unpause()
        else:
            for t in self._txs:
                t.req_done = True

    def _open_tunnel(self, tx: _Tx, code: int, ts: int) -> None:
        if code == 101:
            proto = _joined(tx.resp_idx, "upgrade") or _joined(tx.req_idx, "upgrade") or ""
            tx.upgrade = proto
            if not _first(tx.req_idx, "upgrade"):
                tx.flag("unsolicited_101")
            event = HttpTunnel("upgrade", proto, None, tx.depth, ts)
        else:
            tx.tunnel = tx.uri
            event = HttpTunnel("connect", "", tx.uri, tx.depth, ts)
        tx.resp_done = True
        tx.ts_resp_end = ts
        resp = self._resp
        resp.tx = None
        req = self._req
        if req.tx is not None and req.tx is not tx:
            # A later message the client side was reading is tunnel payload after all.
            req.tx.partial = True
        if req.tx is tx and not tx.req_done:
            tx.req_done = True
            tx.ts_req_end = req.last_ts
            tx.flag("tunnel_before_request_end")
        req.tx = None
        req.started = False
        self._flush()
        # Requests the server never saw as HTTP (pipelined behind the switch) stay unanswered.
        for t in self._awaiting:
            t.resp_done = True
            t.flag("after_tunnel")
        self._awaiting.clear()
        self._flush()
        self._out.append(event)
        self._tunnel = True
        for s in (req, resp):
            if not s.ended:
                s.state = _S_TUNNEL
                self._tunnel_data(s, s.last_ts if s is req else ts)
