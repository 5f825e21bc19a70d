"""HTTP/1.x parser: unit tables (each fed whole, one byte at a time and split at every point),
body framing on its own, gaps, tunnels, limits, fuzzing, and the HTTP samples."""

from __future__ import annotations

import hashlib
import random
import shutil
import subprocess
from collections.abc import Callable, Iterable
from dataclasses import replace
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pcapan import config
from pcapan.proto.http1 import (
    BodyFraming,
    Event,
    HttpAnomaly,
    HttpConnection,
    HttpTransaction,
    HttpTunnel,
    TunnelData,
    TunnelGap,
    expected_body_framing,
)

SAMPLES = Path(__file__).resolve().parent.parent / "samples"

# A step of a conversation: ("c", bytes) client data, ("s", bytes) server data,
# ("gc", n) / ("gs", n) a gap, ("ec", 0) / ("es", 0) the end of a direction.
Step = tuple[str, bytes | int]
Splitter = Callable[[bytes], list[bytes]]


def _whole(b: bytes) -> list[bytes]:
    return [b]


def _bytewise(b: bytes) -> list[bytes]:
    return [b[i : i + 1] for i in range(len(b))]


def _at(i: int) -> Splitter:
    return lambda b: [p for p in (b[:i], b[i:]) if p]


def feed(steps: Iterable[Step], split: Splitter = _whole, end: bool = True) -> list[Event]:
    conn = HttpConnection()
    out: list[Event] = []
    ended: set[bool] = set()
    for k, (kind, arg) in enumerate(steps):
        ts = (k + 1) * 1000  # one timestamp per step so that splitting cannot change the events
        is_orig = kind.endswith("c")
        if kind in ("c", "s"):
            assert isinstance(arg, bytes)
            for piece in split(arg):
                out += conn.data(is_orig, piece, ts)
        elif kind.startswith("g"):
            assert isinstance(arg, int)
            out += conn.gap(is_orig, arg, ts)
        else:
            out += conn.end(is_orig, ts)
            ended.add(is_orig)
    if end:
        for is_orig in (True, False):
            if is_orig not in ended:
                out += conn.end(is_orig, 10**9)
    return _merge_tunnel(out)


def _merge_tunnel(events: list[Event]) -> list[Event]:
    """Adjacent TunnelData of one direction and timestamp are one piece (splitting cuts them)."""
    out: list[Event] = []
    for e in events:
        last = out[-1] if out else None
        if (
            isinstance(e, TunnelData)
            and isinstance(last, TunnelData)
            and last.is_orig == e.is_orig
            and last.ts_ns == e.ts_ns
        ):
            out[-1] = replace(last, chunk=last.chunk + e.chunk)
        else:
            out.append(e)
    return out


def check(steps: list[Step], end: bool = True) -> list[Event]:
    """Feed whole, byte by byte and split at every point; all must give the same events."""
    whole = feed(steps, _whole, end)
    assert feed(steps, _bytewise, end) == whole, "byte-by-byte differs"
    longest = max((len(a) for _, a in steps if isinstance(a, bytes)), default=0)
    for i in range(1, longest):
        assert feed(steps, _at(i), end) == whole, f"split at {i} differs"
    return whole


def txs(events: list[Event]) -> list[HttpTransaction]:
    return [e for e in events if isinstance(e, HttpTransaction)]


def anomalies(events: list[Event]) -> list[HttpAnomaly]:
    return [e for e in events if isinstance(e, HttpAnomaly)]


def one(events: list[Event]) -> HttpTransaction:
    t = txs(events)
    assert len(t) == 1, t
    return t[0]


def req(line: str = "GET / HTTP/1.1", *headers: str, body: bytes = b"") -> bytes:
    return (line + "\r\n" + "".join(h + "\r\n" for h in headers) + "\r\n").encode() + body


def resp(line: str = "HTTP/1.1 200 OK", *headers: str, body: bytes = b"") -> bytes:
    return (line + "\r\n" + "".join(h + "\r\n" for h in headers) + "\r\n").encode() + body


def sha(b: bytes) -> str:
    return hashlib.sha256(b).hexdigest()


# --- body framing, the pure function -------------------------------------------------------------

H = list[tuple[str, str]]


@pytest.mark.parametrize(
    ("headers", "method", "status", "expected"),
    [
        ([], "GET", None, BodyFraming("none")),
        ([("Content-Length", "10")], "POST", None, BodyFraming("length", 10)),
        ([("content-length", "0")], "POST", None, BodyFraming("none")),
        (
            [("Content-Length", "5"), ("Content-Length", "5")],
            "POST",
            None,
            BodyFraming("length", 5),
        ),
        ([("Content-Length", "5, 5")], "POST", None, BodyFraming("length", 5)),
        (
            [("Content-Length", "5"), ("Content-Length", "6")],
            "POST",
            None,
            BodyFraming("close", flags=("cl_mismatch",)),
        ),
        ([("Content-Length", "-1")], "POST", None, BodyFraming("close", flags=("cl_invalid",))),
        ([("Content-Length", "\u00b2")], "POST", None, BodyFraming("close", flags=("cl_invalid",))),
        ([("Transfer-Encoding", "chunked")], "POST", None, BodyFraming("chunked")),
        ([("Transfer-Encoding", "gzip, Chunked")], "POST", None, BodyFraming("chunked")),
        (
            [("Transfer-Encoding", "chunked"), ("Content-Length", "3")],
            "POST",
            None,
            BodyFraming("chunked", flags=("te_and_cl",)),
        ),
        # chunked not last: undeterminable (RFC 9112 6.3); read as chunked, as Zeek and Wireshark do
        (
            [("Transfer-Encoding", "chunked, gzip")],
            "POST",
            None,
            BodyFraming("chunked", flags=("te_not_chunked",)),
        ),
        (
            [("Transfer-Encoding", "chunked, identity")],
            "POST",
            None,
            BodyFraming("chunked", flags=("te_not_chunked",)),
        ),
        (
            [("Transfer-Encoding", "gzip")],
            "POST",
            None,
            BodyFraming("close", flags=("te_not_chunked",)),
        ),
        (
            [("Transfer-Encoding", "chunked"), ("Transfer-Encoding", "chunked")],
            "POST",
            None,
            BodyFraming("chunked", flags=("te_chunked_twice",)),
        ),
        # responses
        ([], "GET", 200, BodyFraming("close")),
        ([], None, 200, BodyFraming("close")),
        ([("Content-Length", "10")], "HEAD", 200, BodyFraming("none")),
        ([("Transfer-Encoding", "chunked")], "HEAD", 200, BodyFraming("none")),
        ([("Content-Length", "10")], "GET", 204, BodyFraming("none")),
        ([("Content-Length", "10")], "GET", 304, BodyFraming("none")),
        ([("Content-Length", "10")], "GET", 100, BodyFraming("none")),
        ([("Upgrade", "websocket")], "GET", 101, BodyFraming("tunnel")),
        ([], "CONNECT", 200, BodyFraming("tunnel")),
        ([("Content-Length", "10")], "CONNECT", 407, BodyFraming("length", 10)),
        (
            [("Transfer-Encoding", "chunked"), ("Content-Length", "3")],
            "GET",
            200,
            BodyFraming("chunked", flags=("te_and_cl",)),
        ),
        (
            [("Transfer-Encoding", "gzip")],
            "GET",
            200,
            BodyFraming("close", flags=("te_not_chunked",)),
        ),
        # a response whose last coding is not chunked is read until the close (RFC 9112 6.3 #4)
        (
            [("Transfer-Encoding", "chunked, gzip")],
            "GET",
            200,
            BodyFraming("close", flags=("te_not_chunked",)),
        ),
        ([("Content-Length", "7")], "GET", 404, BodyFraming("length", 7)),
    ],
)
def test_expected_body_framing(
    headers: H, method: str | None, status: int | None, expected: BodyFraming
) -> None:
    assert expected_body_framing(headers, request_method=method, status_code=status) == expected


# --- message syntax --------------------------------------------------------------------------------


def test_simple_exchange_and_timestamps() -> None:
    body = b"hello world"
    ev = check(
        [
            (
                "c",
                req(
                    "GET /index.html HTTP/1.1",
                    "Host: example.com",
                    "User-Agent: ua/1",
                    "Referer: http://r/",
                ),
            ),
            ("s", resp("HTTP/1.1 200 OK", "Content-Type: text/plain", "Content-Length: 11")),
            ("s", body),
        ]
    )
    t = one(ev)
    assert (t.trans_depth, t.method, t.uri, t.host, t.request_version) == (
        1,
        "GET",
        "/index.html",
        "example.com",
        "1.1",
    )
    assert (t.user_agent, t.referrer, t.target_form) == ("ua/1", "http://r/", "origin")
    assert (t.status_code, t.status_msg, t.response_version) == (200, "OK", "1.1")
    assert (t.request_body_len, t.response_body_len, t.content_length) == (0, 11, 11)
    assert t.content_type == "text/plain"
    assert t.resp_body_sha256 == sha(body)
    assert (t.ts_request_start, t.ts_request_end, t.ts_response_start, t.ts_response_end) == (
        1000,
        1000,
        2000,
        3000,
    )
    assert t.keep_alive is True and not t.partial and t.flags == ()
    assert not t.pipelined and t.pipeline_depth == 1
    assert anomalies(ev) == []


@pytest.mark.parametrize(
    ("line", "method", "uri", "form"),
    [
        ("GET / HTTP/1.1", "GET", "/", "origin"),
        ("HEAD /x HTTP/1.1", "HEAD", "/x", "origin"),
        ("POST /f HTTP/1.1", "POST", "/f", "origin"),
        ("PUT /f HTTP/1.1", "PUT", "/f", "origin"),
        ("DELETE /f HTTP/1.1", "DELETE", "/f", "origin"),
        ("OPTIONS * HTTP/1.1", "OPTIONS", "*", "asterisk"),
        ("OPTIONS /a HTTP/1.1", "OPTIONS", "/a", "origin"),
        ("TRACE /t HTTP/1.1", "TRACE", "/t", "origin"),
        ("PATCH /p?q=1 HTTP/1.1", "PATCH", "/p?q=1", "origin"),
        ("PROPFIND /dav/ HTTP/1.1", "PROPFIND", "/dav/", "origin"),
        ("X-CUSTOM_method.1 /e HTTP/1.1", "X-CUSTOM_method.1", "/e", "origin"),
        (
            "GET http://example.org:8080/a/b?c HTTP/1.1",
            "GET",
            "http://example.org:8080/a/b?c",
            "absolute",
        ),
    ],
)
def test_request_lines(line: str, method: str, uri: str, form: str) -> None:
    host = "example.org:8080" if form == "absolute" else "h"
    ev = check([("c", req(line, "Host: h")), ("s", resp("HTTP/1.1 204 No Content"))])
    t = one(ev)
    assert (t.method, t.uri, t.target_form, t.host, t.status_code) == (method, uri, form, host, 204)
    assert t.response_body_len == 0 and t.flags == ()


@pytest.mark.parametrize(
    ("line", "method", "uri", "version", "form", "flags"),
    [
        # Zeek's methods.pcap and connect-with-smtp.pcap: servers answered each of these.
        ("OPTIONS HTTP/1.1", "OPTIONS", "", "1.1", None, ("missing_target",)),
        ("GET / HTTP/1.", "GET", "/", None, "origin", ("bad_version",)),
        ("CCM_POST / HTTP/1.", "CCM_POST", "/", None, "origin", ("bad_version",)),
        ("GET / HTTP/x", "GET", "/", None, "origin", ("bad_version",)),
        (
            "CONNECT mail.example:25 / HTTP/1.0",
            "CONNECT",
            "mail.example:25 /",
            "1.0",
            "authority",
            ("space_in_target",),
        ),
        ("GET /a b HTTP/1.1", "GET", "/a b", "1.1", "origin", ("space_in_target",)),
        # Control characters in the target (issue 13, 9c): kept as sent, flagged.
        ("GET /a\x01b HTTP/1.1", "GET", "/a\x01b", "1.1", "origin", ("ctl_in_target",)),
        ("GET /\x1b]0;t\x07 HTTP/1.1", "GET", "/\x1b]0;t\x07", "1.1", "origin", ("ctl_in_target",)),
        ("GET /a\x00b HTTP/1.0", "GET", "/a\x00b", "1.0", "origin", ("ctl_in_target",)),
        (
            "GET /a\x1b b HTTP/1.1",
            "GET",
            "/a\x1b b",
            "1.1",
            "origin",
            ("ctl_in_target", "space_in_target"),
        ),
        # HTTP/0.9 simple-requests (RFC 1945 4.1): no version.
        ("GET /HTTP/1.1", "GET", "/HTTP/1.1", "0.9", "origin", ("http09",)),
        ("GET /", "GET", "/", "0.9", "origin", ("http09",)),
        ("DELETE http://h/x ", "DELETE", "http://h/x", "0.9", "absolute", ("http09",)),
    ],
)
def test_request_lines_servers_accept(
    line: str, method: str, uri: str, version: str | None, form: str | None, flags: tuple[str, ...]
) -> None:
    answer = resp("HTTP/1.0 400 Bad Request", "Content-Length: 2", body=b"no")
    ev = check([("c", req(line, "Host: h")), ("s", answer), ("es", 0)])
    t = one(ev)
    assert (t.method, t.uri, t.request_version, t.target_form) == (method, uri, version, form)
    assert t.host == "h"
    if version != "0.9":
        assert (t.status_code, t.response_body_len, t.flags) == (400, 2, flags)
        assert anomalies(ev) == []
        return
    # RFC 1945 4.1: the reply to a simple-request is a simple-response; the status line the
    # server wrote anyway is body (Zeek's reading), flagged, and quoted in the anomaly.
    assert (t.status_code, t.response_version, t.response_body_len) == (None, "0.9", len(answer))
    assert t.flags == (*flags, "http09_status_line")
    assert [(a.kind, a.detail.endswith("'HTTP/1.0 400 Bad Request'")) for a in anomalies(ev)] == [
        ("http09_status_line", True)
    ]


def test_control_characters_in_target_keep_the_row() -> None:
    # Issue 13 (9c): a target with ESC and NUL lost host, uri and user_agent (bad_request_line,
    # an empty row). The bytes stay as sent (decoded like every target, latin-1); escaping
    # them for a terminal is the outputs' job.
    line = b"GET /x\x1b[2J\x00y?q=\x1b]0;t\x07 HTTP/1.1"
    ev = check(
        [
            ("c", line + b"\r\nHost: h.example\r\nUser-Agent: curl/8\r\n\r\n"),
            ("s", resp("HTTP/1.1 404 Not Found", "Content-Length: 0")),
        ]
    )
    t = one(ev)
    assert (t.method, t.uri, t.host, t.user_agent, t.status_code) == (
        "GET",
        "/x\x1b[2J\x00y?q=\x1b]0;t\x07",
        "h.example",
        "curl/8",
        404,
    )
    assert t.flags == ("ctl_in_target",) and not t.partial and anomalies(ev) == []


@pytest.mark.parametrize(
    "line",
    [
        "GET/ HTTP/1.1",
        "OPTIONSHTTP/1.1",
        "OPTIONS",
        "GET/HTTP/1.1",
        "\u00c3\u00c2 / HTTP/1.1",
        "get /lower-case-simple-request",
        "GE /too-short",
        "GET relative",
        "hello world",
        "GET /a HTTP/1.1 extra",
        "\x1b[2J / HTTP/1.1",
    ],
)
def test_request_lines_still_rejected(line: str) -> None:
    ev = check(
        [
            ("c", line.encode("latin-1") + b"\r\nHost: h\r\n\r\n"),
            ("s", resp("HTTP/1.0 400 Bad Request", "Content-Length: 0")),
        ]
    )
    t = one(ev)
    assert t.method is None and t.status_code == 400 and "bad_request_line" in t.flags
    assert [a.kind for a in anomalies(ev)] == ["bad_request_line"]


@pytest.mark.parametrize("body", [b"<html>hi</html>\n", b"\r\nraw", b"H", b"HTTP", b"HTML page"])
def test_http09_response_is_the_body_up_to_the_close(body: bytes) -> None:
    # Zeek's mixed-vlan-mpls.pcap: "GET /" answered by a bare HTML page and a FIN.
    ev = check([("c", b"GET /\r\n\r\n"), ("s", body), ("es", 0)])
    t = one(ev)
    assert (t.method, t.uri, t.request_version) == ("GET", "/", "0.9")
    assert (t.status_code, t.status_msg, t.response_version, t.has_response) == (
        None,
        None,
        "0.9",
        True,
    )
    assert (t.response_body_len, t.resp_body_sha256) == (len(body), sha(body))
    assert (t.ts_response_start, t.ts_response_end) == (2000, 2000)
    assert t.keep_alive is False and t.flags == ("http09",) and not t.partial
    assert anomalies(ev) == []


def test_http09_request_answered_with_a_status_line() -> None:
    # Zeek's methods.pcap: "GET /HTTP/1.1" (no space) got an HTTP/1.0 403 with headers. RFC 1945
    # 4.1: the answer to a simple-request is a simple-response, all body up to the close, as
    # Zeek logs it (status_code 0 there, version 0.9, body length every byte the server sent).
    answer = resp("HTTP/1.0 403 Forbidden", "Content-Length: 3", body=b"no!")
    ev = check([("c", b"GET /HTTP/1.1\nHost: h\n\n"), ("s", answer), ("es", 0)])
    t = one(ev)
    assert (t.method, t.uri, t.host, t.request_version) == ("GET", "/HTTP/1.1", "h", "0.9")
    assert (t.status_code, t.status_msg, t.response_version, t.response_body_len) == (
        None,
        None,
        "0.9",
        len(answer),
    )
    assert t.resp_body_sha256 == sha(answer) and t.keep_alive is False
    assert t.flags == ("bare_lf", "http09", "http09_status_line")
    assert [(a.kind, a.detail.endswith("'HTTP/1.0 403 Forbidden'")) for a in anomalies(ev)] == [
        ("http09_status_line", True)
    ]


@pytest.mark.parametrize("line", [b"HTTP/1.1 200 OK" + b"x" * 300, b"HTTP/1.1 200 OK"])
def test_http09_status_line_without_newline(line: bytes) -> None:
    """A status-line-looking reply with no newline within HTTP09_STATUS_LINE_PEEK bytes (or
    before the close) is not held back: it is body, the anomaly quotes at most the peek."""
    ev = check([("c", b"GET /\r\n\r\n"), ("s", line), ("es", 0)])
    t = one(ev)
    assert (t.status_code, t.response_body_len, t.flags) == (
        None,
        len(line),
        ("http09", "http09_status_line"),
    )
    (a,) = anomalies(ev)
    assert (
        a.kind == "http09_status_line"
        and repr(line[: config.HTTP09_STATUS_LINE_PEEK].decode())[1:-1] in a.detail
    )


def test_http09_gap_before_the_answer_is_decided() -> None:
    # "HT" may begin a status line; the gap decides: the reply is HTTP/0.9, the gap in its body.
    ev = check(
        [
            ("c", b"GET /\r\n\r\n"),
            ("s", b"HT"),
            ("gs", 10),
            ("s", resp("HTTP/1.0 200 OK", body=b"hello")),
            ("es", 0),
        ]
    )
    t = one(ev)
    n = 2 + 10 + len(resp("HTTP/1.0 200 OK", body=b"hello"))
    assert (t.status_code, t.response_version, t.response_body_len) == (None, "0.9", n)
    assert t.ts_response_start == 2000 and t.partial and "gap_in_body" in t.flags
    assert anomalies(ev) == []


def test_http09_request_without_answer() -> None:
    t = one(check([("c", b"GET /x\r\n\r\n"), ("es", 0)]))
    assert (t.method, t.status_code, t.response_version, t.has_response) == (
        "GET",
        None,
        None,
        False,
    )
    assert t.response_body_len is None and t.keep_alive is None


def test_response_without_status_line_to_http11_request_is_malformed() -> None:
    ev = check([("c", req("GET / HTTP/1.1", "Host: h")), ("s", b"<html>hi</html>\r\n")])
    t = one(ev)
    assert t.method == "GET" and t.status_code is None and t.response_version is None
    assert [a.kind for a in anomalies(ev)] == ["bad_status_line"]


def test_connect_target_with_space_names_its_authority() -> None:
    # Zeek's connect-with-smtp.pcap: the proxy accepted it and the tunnel carried SMTP.
    ev = check(
        [
            ("c", b"CONNECT mail.example:25 / HTTP/1.0\r\nMozilla 4.0 (compatible)\r\n\r\n"),
            ("s", b"HTTP/1.0 200 Connection established\r\n\r\n220 mail ESMTP\r\n"),
            ("c", b"HELO x\r\n"),
        ]
    )
    t = one(ev)
    assert (t.method, t.uri, t.host, t.status_code, t.tunnel) == (
        "CONNECT",
        "mail.example:25 /",
        "mail.example:25",
        200,
        "mail.example:25 /",
    )
    assert (t.request_body_len, t.response_body_len) == (0, 0)
    assert t.flags == ("bad_header_line", "space_in_target")
    tunnel = [e for e in ev if isinstance(e, TunnelData)]
    assert [(d.is_orig, d.chunk) for d in tunnel] == [
        (False, b"220 mail ESMTP\r\n"),
        (True, b"HELO x\r\n"),
    ]


def test_connect_authority_form_without_host() -> None:
    ev = check(
        [
            ("c", req("CONNECT example.org:443 HTTP/1.1")),
            ("s", resp("HTTP/1.1 403 Forbidden", "Content-Length: 0")),
        ]
    )
    t = one(ev)
    assert (t.method, t.uri, t.target_form, t.host, t.status_code) == (
        "CONNECT",
        "example.org:443",
        "authority",
        "example.org:443",
        403,
    )
    assert t.tunnel is None and "missing_host" in t.flags


@pytest.mark.parametrize(
    ("line", "code", "msg", "flags"),
    [
        ("HTTP/1.1 200 OK", 200, "OK", ()),
        ("HTTP/1.1 200 ", 200, "", ()),  # empty reason phrase (RFC 9112 4)
        ("HTTP/1.1 200", 200, "", ("lax_status_line",)),
        ("HTTP/1.1 404 Not  Found here", 404, "Not  Found here", ()),
        ("HTTP/1.0 500 Internal Server Error", 500, "Internal Server Error", ()),
    ],
)
def test_status_lines(line: str, code: int, msg: str, flags: tuple[str, ...]) -> None:
    ev = check(
        [
            ("c", req("GET / HTTP/1.1", "Host: h")),
            ("s", resp(line, "Content-Length: 2", body=b"ok")),
        ]
    )
    t = one(ev)
    assert (t.status_code, t.status_msg, t.response_body_len, t.flags) == (code, msg, 2, flags)


def test_repeated_fields_order_and_case_insensitive_names() -> None:
    ev = check(
        [
            ("c", req("GET / HTTP/1.1", "HOST: h", "user-agent: u", "Accept: a", "accept: b")),
            (
                "s",
                resp(
                    "HTTP/1.1 200 OK",
                    "Set-Cookie: a=1",
                    "Set-Cookie: b=2",
                    "CONTENT-LENGTH: 1",
                    "content-TYPE: x/y",
                    body=b"z",
                ),
            ),
        ]
    )
    t = one(ev)
    assert t.host == "h" and t.user_agent == "u" and t.content_type == "x/y"
    assert t.request_headers == (
        ("HOST", "h"),
        ("user-agent", "u"),
        ("Accept", "a"),
        ("accept", "b"),
    )
    assert t.response_headers[:2] == (("Set-Cookie", "a=1"), ("Set-Cookie", "b=2"))
    assert t.response_body_len == 1


def test_obs_fold_accepted_and_flagged() -> None:
    raw = b"GET / HTTP/1.1\r\nHost: h\r\nX-Long: one\r\n  two\r\n\tthree\r\n\r\n"
    ev = check([("c", raw), ("s", resp("HTTP/1.1 200 OK", "Content-Length: 0"))])
    t = one(ev)
    assert ("X-Long", "one two three") in t.request_headers
    assert "obs_fold" in t.flags


def test_bare_lf_accepted_and_flagged() -> None:
    ev = check(
        [
            ("c", b"GET /lf HTTP/1.1\nHost: h\n\n"),
            ("s", b"HTTP/1.1 200 OK\nContent-Length: 2\n\nokHTTP/1.1 200 OK\r\n\r\n"),
        ]
    )
    t = txs(ev)[0]
    assert t.uri == "/lf" and t.status_code == 200 and t.response_body_len == 2
    assert "bare_lf" in t.flags


def test_leading_empty_lines_ignored() -> None:
    ev = check(
        [
            ("c", b"\r\n\r\nGET / HTTP/1.1\r\nHost: h\r\n\r\n"),
            ("s", resp("HTTP/1.1 200 OK", "Content-Length: 0")),
        ]
    )
    assert one(ev).flags == ()


@pytest.mark.parametrize("sep", [b"\n", b"\r\n", b"\r\n\r\n"])
def test_empty_lines_between_keep_alive_requests_ignored(sep: bytes) -> None:
    # RFC 9112 2.2 (issue 13, 7): a stray CRLF or LF after a request (e.g. after a POST body)
    # is ignored, on the fast head path and the general one alike (check() feeds every split).
    ev = check(
        [
            (
                "c",
                req("POST /a HTTP/1.1", "Host: h", "Content-Length: 2", body=b"xy")
                + sep
                + req("GET /b HTTP/1.1", "Host: h")
                + sep,
            ),
            ("s", resp("HTTP/1.1 200 OK", "Content-Length: 0") * 2),
        ]
    )
    a, b = txs(ev)
    assert (a.method, a.request_body_len, b.method, b.uri, b.status_code) == (
        "POST",
        2,
        "GET",
        "/b",
        200,
    )
    assert a.flags == b.flags == () and anomalies(ev) == []


@pytest.mark.parametrize("eol", [b"\r\n", b"\n"])
def test_field_values_trimmed_and_empty(eol: bytes) -> None:
    raw = eol.join(
        [b"GET / HTTP/1.1", b"Host:h", b"X-A: \t a  b \t", b"X-Empty:", b"X-Sp:   ", b"", b""]
    )
    t = one(check([("c", raw), ("s", resp("HTTP/1.1 200 OK", "Content-Length: 0"))]))
    assert t.request_headers == (("Host", "h"), ("X-A", "a  b"), ("X-Empty", ""), ("X-Sp", ""))


def test_header_field_problems_are_flags() -> None:
    raw = b"GET / HTTP/1.1\r\nHost : h\r\nno colon here\r\nb@d: 1\r\nOk: 2\r\n\r\n"
    t = one(check([("c", raw), ("s", resp("HTTP/1.1 200 OK", "Content-Length: 0"))]))
    assert {"ws_before_colon", "bad_header_line", "bad_header_name"} <= set(t.flags)
    assert t.request_headers == (("Host", "h"), ("Ok", "2"))


# --- HTTP/1.0, keep-alive, close ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("req_line", "req_conn", "resp_line", "resp_conn", "keep"),
    [
        ("GET / HTTP/1.1", None, "HTTP/1.1 200 OK", None, True),
        ("GET / HTTP/1.1", "close", "HTTP/1.1 200 OK", None, False),
        ("GET / HTTP/1.1", None, "HTTP/1.1 200 OK", "close", False),
        ("GET / HTTP/1.0", None, "HTTP/1.1 200 OK", None, False),
        ("GET / HTTP/1.0", "keep-alive", "HTTP/1.0 200 OK", "keep-alive", True),
        ("GET / HTTP/1.0", "keep-alive", "HTTP/1.0 200 OK", None, False),
        ("GET / HTTP/1.1", "Keep-Alive, Upgrade", "HTTP/1.1 200 OK", "Keep-Alive", True),
    ],
)
def test_keep_alive(
    req_line: str, req_conn: str | None, resp_line: str, resp_conn: str | None, keep: bool
) -> None:
    rh = ["Host: h"] + ([f"Connection: {req_conn}"] if req_conn else [])
    sh = ["Content-Length: 1"] + ([f"Connection: {resp_conn}"] if resp_conn else [])
    t = one(check([("c", req(req_line, *rh)), ("s", resp(resp_line, *sh, body=b"x"))]))
    assert t.keep_alive is keep
    assert t.request_connection == req_conn and t.response_connection == resp_conn


def test_read_until_close_response() -> None:
    ev = check(
        [
            ("c", req("GET /old HTTP/1.0")),
            ("s", b"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\npart one, "),
            ("s", b"part two"),
            ("es", 0),
        ]
    )
    t = one(ev)
    assert t.response_body_len == len(b"part one, part two")
    assert t.resp_body_sha256 == sha(b"part one, part two")
    assert t.keep_alive is False and not t.partial
    assert t.ts_response_end == 3000  # the last data, not the close
    assert anomalies(ev) == []


def test_http10_request_without_host_is_fine() -> None:
    t = one(
        check([("c", req("GET / HTTP/1.0")), ("s", resp("HTTP/1.0 200 OK", "Content-Length: 0"))])
    )
    assert t.host is None and t.flags == ()


# --- framing in the parser -------------------------------------------------------------------------


def test_head_response_has_no_body() -> None:
    ev = check(
        [
            ("c", req("HEAD /big HTTP/1.1", "Host: h") + req("GET /small HTTP/1.1", "Host: h")),
            (
                "s",
                resp("HTTP/1.1 200 OK", "Content-Length: 131072")
                + resp("HTTP/1.1 200 OK", "Content-Length: 3", body=b"abc"),
            ),
        ]
    )
    a, b = txs(ev)
    assert (a.method, a.status_code, a.response_body_len, a.content_length) == (
        "HEAD",
        200,
        0,
        131072,
    )
    assert a.resp_body_sha256 is None
    assert (b.method, b.uri, b.response_body_len) == ("GET", "/small", 3)


@pytest.mark.parametrize("code", [204, 304])
def test_no_body_statuses(code: int) -> None:
    ev = check(
        [
            ("c", req("GET /a HTTP/1.1", "Host: h") + req("GET /b HTTP/1.1", "Host: h")),
            (
                "s",
                resp(f"HTTP/1.1 {code} X", "Content-Length: 50", 'ETag: "x"')
                + resp("HTTP/1.1 200 OK", "Content-Length: 2", body=b"hi"),
            ),
        ]
    )
    a, b = txs(ev)
    assert (a.status_code, a.response_body_len) == (code, 0)
    assert (b.uri, b.status_code, b.response_body_len) == ("/b", 200, 2)


def test_chunked_with_extensions_and_trailers() -> None:
    body = (
        b"5;name=value\r\nhello\r\n"
        b"6 ; a=b;c\r\n world\r\n"
        b"0;last\r\n"
        b"Server-Timing: db;dur=5\r\nX-Checksum: abc\r\n\r\n"
    )
    ev = check(
        [
            ("c", req("GET /c HTTP/1.1", "Host: h") + req("GET /n HTTP/1.1", "Host: h")),
            (
                "s",
                resp(
                    "HTTP/1.1 200 OK",
                    "Transfer-Encoding: chunked",
                    "Trailer: Server-Timing, X-Checksum",
                    body=body,
                )
                + resp("HTTP/1.1 200 OK", "Content-Length: 0"),
            ),
        ]
    )
    a, b = txs(ev)
    assert a.response_body_len == 11 and a.chunk_count == 2
    assert a.resp_body_sha256 == sha(b"hello world")
    assert a.trailer_names == ("Server-Timing", "X-Checksum")
    assert a.trailer_announced == "Server-Timing, X-Checksum"
    assert a.transfer_encoding == "chunked" and a.flags == ()
    assert b.uri == "/n" and b.status_code == 200


def test_chunked_request_body_and_empty_trailer() -> None:
    ev = check(
        [
            (
                "c",
                req(
                    "POST /up HTTP/1.1",
                    "Host: h",
                    "Transfer-Encoding: chunked",
                    body=b"3\r\nabc\r\n0\r\n\r\n",
                )
                + req("GET /next HTTP/1.1", "Host: h"),
            ),
            (
                "s",
                resp("HTTP/1.1 201 Created", "Content-Length: 0")
                + resp("HTTP/1.1 200 OK", "Transfer-Encoding: chunked", body=b"0\r\n\r\n"),
            ),
        ]
    )
    a, b = txs(ev)
    assert (a.method, a.request_body_len, a.status_code) == ("POST", 3, 201)
    assert (b.uri, b.response_body_len, b.chunk_count, b.trailer_names) == ("/next", 0, 0, ())


def test_te_and_cl_is_flagged_and_te_wins() -> None:
    ev = check(
        [
            (
                "c",
                req(
                    "POST /s HTTP/1.1",
                    "Host: h",
                    "Content-Length: 3",
                    "Transfer-Encoding: chunked",
                    body=b"1\r\nx\r\n0\r\n\r\n",
                )
                + req("GET /after HTTP/1.1", "Host: h"),
            ),
            ("s", resp("HTTP/1.1 200 OK", "Content-Length: 0") * 2),
        ]
    )
    a, b = txs(ev)
    assert a.request_body_len == 1 and "te_and_cl" in a.flags
    assert b.uri == "/after"


def test_cl_mismatch_flagged_identical_repeats_fine() -> None:
    ev = check(
        [
            (
                "c",
                req(
                    "POST /a HTTP/1.1",
                    "Host: h",
                    "Content-Length: 2",
                    "Content-Length: 2",
                    body=b"ab",
                )
                + req(
                    "POST /b HTTP/1.1",
                    "Host: h",
                    "Content-Length: 2",
                    "Content-Length: 3",
                    body=b"abc",
                ),
            ),
            (
                "s",
                resp("HTTP/1.1 200 OK", "Content-Length: 0")
                + resp("HTTP/1.1 400 Bad Request", "Connection: close", "Content-Length: 0"),
            ),
        ]
    )
    a, b = txs(ev)
    assert a.flags == () and a.request_body_len == 2
    assert "cl_mismatch" in b.flags and b.status_code == 400


# --- pipelining and pairing --------------------------------------------------------------------------


def test_pipelining_three_requests_in_one_segment() -> None:
    three = b"".join(req(f"GET /{i} HTTP/1.1", "Host: h") for i in range(3))
    ev = check(
        [
            ("c", three),
            ("s", resp("HTTP/1.1 200 OK", "Content-Length: 1", body=b"a")),
            ("s", resp("HTTP/1.1 200 OK", "Content-Length: 2", body=b"bb")),
            ("s", resp("HTTP/1.1 404 Not Found", "Content-Length: 3", body=b"ccc")),
        ]
    )
    t = txs(ev)
    assert [x.uri for x in t] == ["/0", "/1", "/2"]
    assert [x.trans_depth for x in t] == [1, 2, 3]
    assert [x.status_code for x in t] == [200, 200, 404]
    assert [x.response_body_len for x in t] == [1, 2, 3]
    assert [x.pipelined for x in t] == [False, True, True]
    assert [x.pipeline_depth for x in t] == [1, 2, 3]
    assert [x.ts_response_start for x in t] == [2000, 3000, 4000]


def test_sequential_keepalive_is_not_pipelined() -> None:
    ev = check(
        [
            ("c", req("GET /1 HTTP/1.1", "Host: h")),
            ("s", resp("HTTP/1.1 200 OK", "Content-Length: 1", body=b"a")),
            ("c", req("GET /2 HTTP/1.1", "Host: h")),
            ("s", resp("HTTP/1.1 200 OK", "Content-Length: 1", body=b"b")),
        ]
    )
    t = txs(ev)
    assert [(x.trans_depth, x.pipelined, x.pipeline_depth) for x in t] == [
        (1, False, 1),
        (2, False, 1),
    ]


def test_orphans() -> None:
    # A response with no request seen, then a request never answered.
    ev = check(
        [
            ("s", resp("HTTP/1.1 200 OK", "Content-Length: 1", body=b"a")),
            ("c", req("GET /never HTTP/1.1", "Host: h")),
            ("es", 0),
        ]
    )
    a, b = txs(ev)
    assert a.method is None and a.status_code == 200 and "orphan_response" in a.flags
    assert not a.has_request and a.has_response
    assert b.uri == "/never" and b.status_code is None and b.keep_alive is None
    assert b.has_request and not b.has_response


# --- Expect: 100-continue ---------------------------------------------------------------------------


def test_100_continue_then_200() -> None:
    ev = check(
        [
            ("c", req("PUT /f HTTP/1.1", "Host: h", "Expect: 100-continue", "Content-Length: 4")),
            ("s", resp("HTTP/1.1 100 Continue")),
            ("c", b"data"),
            ("s", resp("HTTP/1.1 200 OK", "Content-Length: 0")),
            ("c", req("GET /next HTTP/1.1", "Host: h")),
            ("s", resp("HTTP/1.1 200 OK", "Content-Length: 0")),
        ]
    )
    a, b = txs(ev)
    assert (a.method, a.expect, a.info_codes, a.status_code, a.request_body_len) == (
        "PUT",
        "100-continue",
        (100,),
        200,
        4,
    )
    assert a.ts_request_end == 3000 and a.ts_response_start == 4000
    assert b.uri == "/next" and b.info_codes == () and not b.pipelined


def test_100_continue_body_sent_without_waiting() -> None:
    ev = check(
        [
            (
                "c",
                req(
                    "POST /f HTTP/1.1",
                    "Host: h",
                    "Expect: 100-continue",
                    "Content-Length: 4",
                    body=b"data",
                ),
            ),
            ("s", resp("HTTP/1.1 100 Continue") + resp("HTTP/1.1 200 OK", "Content-Length: 0")),
        ]
    )
    t = one(ev)
    assert t.info_codes == (100,) and t.request_body_len == 4 and t.status_code == 200


def test_417_ends_the_request() -> None:
    ev = check(
        [
            (
                "c",
                req(
                    "PUT /big HTTP/1.1", "Host: h", "Expect: 100-continue", "Content-Length: 100000"
                ),
            ),
            ("s", resp("HTTP/1.1 417 Expectation Failed", "Content-Length: 0")),
            ("c", req("PUT /big HTTP/1.1", "Host: h", "Content-Length: 2", body=b"ab")),
            ("s", resp("HTTP/1.1 201 Created", "Content-Length: 0")),
        ]
    )
    a, b = txs(ev)
    assert (a.status_code, a.request_body_len, a.info_codes) == (417, 0, ())
    assert "expect_rejected" in a.flags and not a.partial
    assert (b.status_code, b.request_body_len) == (201, 2)
    assert anomalies(ev) == []


# --- Upgrade and CONNECT ---------------------------------------------------------------------------


def test_101_websocket_ends_http() -> None:
    ws_client = b"\x81\x85\x37\xfa\x21\x3d\x7f\x9f\x4d\x51\x58"
    ev = check(
        [
            (
                "c",
                req(
                    "GET /chat HTTP/1.1",
                    "Host: h",
                    "Upgrade: websocket",
                    "Connection: Upgrade",
                    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==",
                    "Sec-WebSocket-Version: 13",
                ),
            ),
            (
                "s",
                resp(
                    "HTTP/1.1 101 Switching Protocols",
                    "Upgrade: websocket",
                    "Connection: Upgrade",
                    body=b"\x81\x05Hello",
                ),
            ),
            ("c", ws_client),
            ("s", b"GET / HTTP/1.1\r\n\r\n"),  # looks like HTTP but is tunnel payload now
        ]
    )
    t = one(ev)
    assert (t.status_code, t.upgrade_requested, t.upgrade, t.keep_alive) == (
        101,
        "websocket",
        "websocket",
        False,
    )
    tun = [e for e in ev if isinstance(e, HttpTunnel)]
    assert tun == [HttpTunnel("upgrade", "websocket", None, 1, 2000)]
    data = [e for e in ev if isinstance(e, TunnelData)]
    assert data == [
        TunnelData(False, b"\x81\x05Hello", 2000),
        TunnelData(True, ws_client, 3000),
        TunnelData(False, b"GET / HTTP/1.1\r\n\r\n", 4000),
    ]
    assert ev.index(t) < ev.index(tun[0]) < ev.index(data[0])


def test_h2c_upgrade_refused_then_http_continues() -> None:
    ev = check(
        [
            (
                "c",
                req(
                    "GET / HTTP/1.1",
                    "Host: h",
                    "Connection: Upgrade, HTTP2-Settings",
                    "Upgrade: h2c",
                    "HTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA",
                )
                + req("GET /two HTTP/1.1", "Host: h"),
            ),
            (
                "s",
                resp("HTTP/1.1 200 OK", "Content-Length: 1", body=b"x")
                + resp("HTTP/1.1 200 OK", "Content-Length: 1", body=b"y"),
            ),
        ]
    )
    a, b = txs(ev)
    assert a.upgrade_requested == "h2c" and a.upgrade is None and a.status_code == 200
    assert b.uri == "/two" and b.pipelined
    assert not [e for e in ev if isinstance(e, (HttpTunnel, TunnelData))]


def test_h2c_upgrade_accepted() -> None:
    preface = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
    ev = check(
        [
            (
                "c",
                req(
                    "GET / HTTP/1.1",
                    "Host: h",
                    "Connection: Upgrade, HTTP2-Settings",
                    "Upgrade: h2c",
                    "HTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA",
                )
                + preface,
            ),
            ("s", resp("HTTP/1.1 101 Switching Protocols", "Connection: Upgrade", "Upgrade: h2c")),
        ]
    )
    t = one(ev)
    assert t.upgrade == "h2c"
    assert [e for e in ev if isinstance(e, TunnelData)] == [TunnelData(True, preface, 1000)]


def test_426_recorded() -> None:
    t = one(
        check(
            [
                ("c", req("GET / HTTP/1.1", "Host: h")),
                (
                    "s",
                    resp(
                        "HTTP/1.1 426 Upgrade Required",
                        "Upgrade: TLS/1.2, HTTP/1.1",
                        "Connection: Upgrade",
                        "Content-Length: 0",
                    ),
                ),
            ]
        )
    )
    assert t.status_code == 426 and "upgrade_required" in t.flags and t.upgrade is None
    assert ("Upgrade", "TLS/1.2, HTTP/1.1") in t.response_headers


def test_connect_200_then_tls_as_tunnel_data() -> None:
    hello = bytes.fromhex("16030100a5010000a10303") + bytes(20)
    ev = check(
        [
            (
                "c",
                req(
                    "CONNECT pcapan.test:443 HTTP/1.1",
                    "Host: pcapan.test:443",
                    "Proxy-Connection: Keep-Alive",
                ),
            ),
            ("s", resp("HTTP/1.1 200 Connection established")),
            ("c", hello),
            ("s", bytes.fromhex("160303007a020000760303")),
            ("gs", 10),
        ]
    )
    t = one(ev)
    assert (t.method, t.status_code, t.tunnel, t.keep_alive) == (
        "CONNECT",
        200,
        "pcapan.test:443",
        False,
    )
    assert [e for e in ev if isinstance(e, HttpTunnel)] == [
        HttpTunnel("connect", "", "pcapan.test:443", 1, 2000)
    ]
    data = [e for e in ev if isinstance(e, TunnelData)]
    assert data == [
        TunnelData(True, hello, 3000),
        TunnelData(False, bytes.fromhex("160303007a020000760303"), 4000),
    ]
    assert TunnelGap(False, 10, 5000) in ev


def test_connect_client_hello_sent_early_is_held() -> None:
    hello = bytes.fromhex("1603010005") + b"HELLO"
    ev = check(
        [
            ("c", req("CONNECT h:443 HTTP/1.1", "Host: h:443") + hello),
            ("s", resp("HTTP/1.1 200 OK") + b"\x16\x03\x03"),
        ]
    )
    assert [e for e in ev if isinstance(e, TunnelData)] == [
        TunnelData(True, hello, 1000),
        TunnelData(False, b"\x16\x03\x03", 2000),
    ]


def test_connect_refused_http_continues() -> None:
    ev = check(
        [
            ("c", req("CONNECT h:443 HTTP/1.1", "Host: h:443")),
            (
                "s",
                resp(
                    "HTTP/1.1 407 Proxy Authentication Required", "Content-Length: 4", body=b"auth"
                ),
            ),
            ("c", req("CONNECT h:443 HTTP/1.1", "Host: h:443", "Proxy-Authorization: Basic eDp5")),
            ("s", resp("HTTP/1.1 200 OK")),
            ("c", b"\x16\x03\x01"),
        ]
    )
    a, b = txs(ev)
    assert (a.status_code, a.tunnel, a.response_body_len) == (407, None, 4)
    assert (b.status_code, b.tunnel, b.trans_depth) == (200, "h:443", 2)
    assert ev[-1] == TunnelData(True, b"\x16\x03\x01", 5000)


# --- gaps -------------------------------------------------------------------------------------------


def test_gap_in_content_length_body_keeps_sync() -> None:
    ev = check(
        [
            ("c", req("GET /large HTTP/1.1", "Host: h") + req("GET /next HTTP/1.1", "Host: h")),
            ("s", resp("HTTP/1.1 200 OK", "Content-Length: 100", body=b"x" * 30)),
            ("gs", 40),
            ("s", b"y" * 30 + resp("HTTP/1.1 200 OK", "Content-Length: 2", body=b"ok")),
        ]
    )
    a, b = txs(ev)
    assert (a.uri, a.response_body_len, a.partial, a.resp_body_sha256) == (
        "/large",
        100,
        True,
        None,
    )
    assert "gap_in_body" in a.flags
    assert (b.uri, b.response_body_len, b.partial) == ("/next", 2, False)
    assert b.resp_body_sha256 == sha(b"ok")
    assert anomalies(ev) == []


def test_gap_in_chunk_data_keeps_sync() -> None:
    ev = check(
        [
            ("c", req("GET /a HTTP/1.1", "Host: h") + req("GET /b HTTP/1.1", "Host: h")),
            ("s", resp("HTTP/1.1 200 OK", "Transfer-Encoding: chunked", body=b"a\r\n01")),
            ("gs", 5),
            ("s", b"789\r\n0\r\n\r\n" + resp("HTTP/1.1 200 OK", "Content-Length: 0")),
        ]
    )
    a, b = txs(ev)
    assert (a.response_body_len, a.chunk_count, a.partial) == (10, 1, True)
    assert (b.uri, b.partial) == ("/b", False)


def test_gap_in_request_body_keeps_sync() -> None:
    ev = check(
        [
            ("c", req("POST /u HTTP/1.1", "Host: h", "Content-Length: 10", body=b"abc")),
            ("gc", 7),
            ("c", req("GET /n HTTP/1.1", "Host: h")),
            ("s", resp("HTTP/1.1 200 OK", "Content-Length: 0") * 2),
        ]
    )
    a, b = txs(ev)
    assert (a.request_body_len, a.partial) == (10, True)
    assert (b.uri, b.partial) == ("/n", False)


def test_gap_in_headers_resyncs() -> None:
    ev = check(
        [
            (
                "c",
                req("GET /a HTTP/1.1", "Host: h")
                + req("GET /b HTTP/1.1", "Host: h")
                + req("GET /c HTTP/1.1", "Host: h"),
            ),
            ("s", b"HTTP/1.1 200 OK\r\nContent-Le"),
            ("gs", 20),  # the rest of /a's head and its body are lost
            (
                "s",
                b"garbage tail of body\r\n"
                + resp("HTTP/1.1 200 OK", "Content-Length: 1", body=b"b")
                + resp("HTTP/1.1 200 OK", "Content-Length: 1", body=b"c"),
            ),
        ]
    )
    a, b, c = txs(ev)
    assert (a.uri, a.partial, a.status_code) == ("/a", True, None)
    assert "gap" in a.flags
    # Resynchronised at the next status line: it answers the next request.
    assert (b.uri, b.status_code, b.partial) == ("/b", 200, True)
    assert "resync" in b.flags
    assert (c.uri, c.partial, c.response_body_len) == ("/c", False, 1)
    an = anomalies(ev)
    assert [x.kind for x in an] == ["gap_resync"] and not an[0].is_orig
    assert "resynchronising" in an[0].detail


def test_gap_in_request_headers_keeps_pairing() -> None:
    ev = check(
        [
            ("c", b"GET /a HTTP/1.1\r\nHo"),
            ("gc", 12),
            ("c", req("GET /b HTTP/1.1", "Host: h")),
            (
                "s",
                resp("HTTP/1.1 200 OK", "Content-Length: 1", body=b"a")
                + resp("HTTP/1.1 200 OK", "Content-Length: 1", body=b"b"),
            ),
        ]
    )
    a, b = txs(ev)
    # The damaged request still holds its place in the FIFO, so /b gets the second response.
    assert (a.partial, a.status_code, a.method) == (True, 200, None)
    assert (b.uri, b.status_code, b.partial) == ("/b", 200, True)


def test_gap_before_a_response_keeps_pairing() -> None:
    # Zeek's 1000-requests-one-dropped-response.pcap: the segment with the first response's head
    # is missing. That response started inside the gap, so it is the first request's (damaged);
    # the next status line answers the second request, not the first.
    ev = check(
        [
            ("c", req("GET /a HTTP/1.1", "Host: h")),
            ("gs", 40),
            ("c", req("GET /b HTTP/1.1", "Host: h")),
            (
                "s",
                b"tail of /a's body\r\n" + resp("HTTP/1.1 200 OK", "Content-Length: 1", body=b"b"),
            ),
            ("c", req("GET /c HTTP/1.1", "Host: h")),
            ("s", resp("HTTP/1.1 404 Not Found", "Content-Length: 1", body=b"c")),
        ]
    )
    a, b, c = txs(ev)
    assert (a.uri, a.status_code, a.partial, a.flags) == ("/a", None, True, ("gap",))
    assert (b.uri, b.status_code, b.response_body_len, b.partial) == ("/b", 200, 1, True)
    assert "resync" in b.flags
    assert (c.uri, c.status_code, c.partial, c.flags) == ("/c", 404, False, ())
    assert [(x.kind, x.is_orig) for x in anomalies(ev)] == [("gap_resync", False)]


def test_gap_in_the_response_stream_with_nothing_waiting() -> None:
    ev = check(
        [
            ("c", req("GET /a HTTP/1.1", "Host: h")),
            ("s", resp("HTTP/1.1 200 OK", "Content-Length: 1", body=b"a")),
            ("gs", 40),
            ("s", b"junk\r\n" + resp("HTTP/1.1 200 OK", "Content-Length: 1", body=b"x")),
        ]
    )
    a, x = txs(ev)
    assert (a.uri, a.status_code, a.partial) == ("/a", 200, False)
    assert x.method is None and x.status_code == 200 and "orphan_response" in x.flags


def test_gap_between_messages_resyncs() -> None:
    ev = check(
        [
            ("c", req("GET /a HTTP/1.1", "Host: h")),
            ("s", resp("HTTP/1.1 200 OK", "Content-Length: 1", body=b"a")),
            ("gc", 100),
            ("c", b"tail of something\r\n" + req("GET /c HTTP/1.1", "Host: h")),
            ("s", resp("HTTP/1.1 200 OK", "Content-Length: 1", body=b"c")),
        ]
    )
    a, c = txs(ev)
    assert not a.partial and (c.uri, c.partial) == ("/c", True)
    assert [x.kind for x in anomalies(ev)] == ["gap_resync"]


def test_gap_in_read_until_close_body() -> None:
    ev = check(
        [
            ("c", req("GET / HTTP/1.0")),
            ("s", b"HTTP/1.0 200 OK\r\n\r\nab"),
            ("gs", 5),
            ("s", b"cd"),
            ("es", 0),
        ]
    )
    t = one(ev)
    assert (t.response_body_len, t.partial, t.resp_body_sha256) == (9, True, None)


def test_truncated_response() -> None:
    ev = check(
        [
            ("c", req("GET / HTTP/1.1", "Host: h")),
            ("s", resp("HTTP/1.1 200 OK", "Content-Length: 10", body=b"abc")),
            ("es", 0),
        ]
    )
    t = one(ev)
    assert (t.status_code, t.response_body_len, t.partial) == (200, 3, True)
    assert [a.kind for a in anomalies(ev)] == ["truncated"]


# --- malformed input and limits ---------------------------------------------------------------------


def test_malformed_request_line_resyncs() -> None:
    ev = check(
        [
            ("c", b"GET /a HTTP/1.1 extra\r\nHost: h\r\n\r\n" + req("GET /b HTTP/1.1", "Host: h")),
            (
                "s",
                resp("HTTP/1.1 400 Bad Request", "Content-Length: 0")
                + resp("HTTP/1.1 200 OK", "Content-Length: 0"),
            ),
        ]
    )
    a, b = txs(ev)
    assert a.partial and a.method is None and a.status_code == 400
    assert (b.uri, b.status_code) == ("/b", 200)
    assert [x.kind for x in anomalies(ev)] == ["bad_request_line"]


def test_malformed_chunk_size_resyncs() -> None:
    ev = check(
        [
            ("c", req("GET /a HTTP/1.1", "Host: h") + req("GET /b HTTP/1.1", "Host: h")),
            (
                "s",
                resp("HTTP/1.1 200 OK", "Transfer-Encoding: chunked", body=b"zz\r\nxx\r\n")
                + resp("HTTP/1.1 200 OK", "Content-Length: 0"),
            ),
        ]
    )
    a, b = txs(ev)
    assert a.partial and "bad_chunk_size" in a.flags
    assert b.uri == "/b" and b.status_code == 200
    assert [x.kind for x in anomalies(ev)] == ["bad_chunk_size"]


def test_header_section_too_large() -> None:
    big = b"GET /a HTTP/1.1\r\n" + b"X-Pad: " + b"p" * config.HTTP_MAX_HEADER_BYTES + b"\r\n\r\n"
    ev = feed(
        [
            ("c", big + req("GET /b HTTP/1.1", "Host: h")),
            (
                "s",
                resp("HTTP/1.1 431 Too Large", "Content-Length: 0")
                + resp("HTTP/1.1 200 OK", "Content-Length: 0"),
            ),
        ]
    )
    a, b = txs(ev)
    assert a.partial and "header_too_large" in a.flags and a.status_code == 431
    assert (b.uri, b.status_code) == ("/b", 200)
    assert "header_too_large" in [x.kind for x in anomalies(ev)]


def test_header_garbage_without_newline_is_bounded() -> None:
    conn = HttpConnection()
    out: list[Event] = []
    for _ in range(40):
        out += conn.data(True, b"A" * 4096, 1)
    assert "header_too_large" in [x.kind for x in anomalies(out)]
    assert len(conn._req.buf) <= config.HTTP_MAX_HEADER_BYTES + 4096


def test_too_many_header_fields() -> None:
    fields = [f"X-{i}: v" for i in range(config.HTTP_MAX_HEADER_FIELDS + 10)]
    t = one(
        feed(
            [
                ("c", req("GET / HTTP/1.1", "Host: h", *fields)),
                ("s", resp("HTTP/1.1 200 OK", "Content-Length: 0")),
            ]
        )
    )
    assert len(t.request_headers) == config.HTTP_MAX_HEADER_FIELDS
    assert "too_many_headers" in t.flags


def test_too_many_pending_requests() -> None:
    n = config.HTTP_MAX_PENDING_REQUESTS + 5
    ev = feed([("c", b"".join(req(f"GET /{i} HTTP/1.1", "Host: h") for i in range(n)))])
    t = txs(ev)
    assert len(t) == n
    assert sum("pending_overflow" in x.flags for x in t) == 5
    assert [x.kind for x in anomalies(ev)] == ["too_many_pending"] * 5


def test_resync_buffer_is_bounded() -> None:
    conn = HttpConnection()
    conn.gap(False, 10, 1)
    for _ in range(100):
        conn.data(False, b"\x00" * 4096, 2)
    assert len(conn._resp.buf) <= config.HTTP_RESYNC_KEEP_BYTES


def test_paused_overflow_resumes_http() -> None:
    conn = HttpConnection()
    out = conn.data(True, req("CONNECT h:443 HTTP/1.1", "Host: h"), 1)
    out += conn.data(True, b"z" * (config.HTTP_MAX_PAUSED_BYTES + 1), 2)
    assert "paused_overflow" in [x.kind for x in anomalies(out)]


# --- properties -------------------------------------------------------------------------------------

VALID: list[list[Step]] = [
    [
        ("c", req("GET /a HTTP/1.1", "Host: h") + req("HEAD /b HTTP/1.1", "Host: h")),
        (
            "s",
            resp("HTTP/1.1 200 OK", "Content-Length: 3", body=b"abc")
            + resp("HTTP/1.1 200 OK", "Content-Length: 99"),
        ),
    ],
    [
        (
            "c",
            req(
                "POST /p HTTP/1.1",
                "Host: h",
                "Transfer-Encoding: chunked",
                body=b"4;x=y\r\nbody\r\n0\r\nT: 1\r\n\r\n",
            ),
        ),
        (
            "s",
            resp("HTTP/1.1 100 Continue")
            + resp("HTTP/1.1 200 OK", "Transfer-Encoding: chunked", body=b"2\r\nok\r\n0\r\n\r\n"),
        ),
    ],
    [
        ("c", req("CONNECT h:443 HTTP/1.1", "Host: h") + b"\x16\x03\x01\x00\x05hello"),
        ("s", resp("HTTP/1.1 200 OK") + b"\x16\x03\x03"),
    ],
    [
        ("c", req("GET /ws HTTP/1.1", "Host: h", "Upgrade: websocket", "Connection: Upgrade")),
        ("s", resp("HTTP/1.1 101 Switching Protocols", "Upgrade: websocket", body=b"\x81\x00")),
    ],
    [("c", b"GET /x HTTP/1.0\nUser-Agent: a\n  b\n\n"), ("s", b"HTTP/1.0 200 OK\n\nbody")],
]


def _mutate(rng: random.Random, b: bytes) -> bytes:
    data = bytearray(b)
    for _ in range(rng.randint(1, 4)):
        op = rng.randrange(3)
        if op == 0 and data:
            data[rng.randrange(len(data))] = rng.choice(
                b"\r\n :0;\x00\xff" + bytes([rng.randrange(256)])
            )
        elif op == 1 and data:
            cut = rng.randrange(len(data))
            data = (
                data[:cut] if rng.random() < 0.5 else data[:cut] + data[cut + rng.randint(1, 20) :]
            )
        else:
            pos = rng.randrange(len(data) + 1)
            data[pos:pos] = rng.choice(
                [
                    b"\r\n",
                    b"\n",
                    b"0\r\n\r\n",
                    b"HTTP/1.1 200 OK\r\n",
                    b"GET / HTTP/1.1\r\n",
                    b"Content-Length: 5\r\n",
                    b"Transfer-Encoding: chunked\r\n",
                    bytes(rng.randrange(256) for _ in range(8)),
                ]
            )
    return bytes(data)


def _random_split(rng: random.Random) -> Splitter:
    def split(b: bytes) -> list[bytes]:
        cuts = (
            sorted(rng.sample(range(1, len(b)), min(len(b) - 1, rng.randint(0, 6))))
            if len(b) > 1
            else []
        )
        edges = [0, *cuts, len(b)]
        return [b[x:y] for x, y in zip(edges, edges[1:], strict=False) if y > x]

    return split


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(min_value=0, max_value=2**32 - 1))
def test_mutated_messages_give_events_never_exceptions(seed: int) -> None:
    rng = random.Random(seed)
    steps: list[Step] = []
    for kind, arg in rng.choice(VALID):
        if isinstance(arg, bytes):
            steps.append((kind, _mutate(rng, arg) if rng.random() < 0.8 else arg))
        else:
            steps.append((kind, arg))
    if rng.random() < 0.3:
        steps.insert(rng.randrange(len(steps) + 1), (rng.choice(["gc", "gs"]), rng.randint(1, 50)))
    whole = feed(steps)
    assert all(isinstance(e, Event.__args__) for e in whole)  # type: ignore[attr-defined]
    # Any segmentation gives the same events, mutated or not.
    assert feed(steps, _random_split(rng)) == whole


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(
        st.tuples(st.sampled_from(["c", "s", "gc", "gs"]), st.binary(max_size=64)), max_size=12
    )
)
def test_garbage_never_raises(steps_raw: list[tuple[str, bytes]]) -> None:
    steps: list[Step] = [(k, b if not k.startswith("g") else len(b) + 1) for k, b in steps_raw]
    feed(steps)


@pytest.mark.parametrize("case", range(len(VALID)))
def test_valid_messages_at_every_split(case: int) -> None:
    check(VALID[case])


# --- samples: real traffic from curl/nginx, reassembled by tshark -------------------------------------


def _follow(pcap: Path) -> list[list[tuple[bool, bytes]]]:
    """Per TCP stream, the data in order as (is_orig, bytes) pieces (tshark follow,tcp,raw)."""
    streams: list[list[tuple[bool, bytes]]] = []
    for n in range(64):
        out = subprocess.run(
            ["tshark", "-r", str(pcap), "-q", "-z", f"follow,tcp,raw,{n}"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        lines = out.splitlines()
        try:
            start = next(i for i, ln in enumerate(lines) if ln.startswith("Node 1:")) + 1
        except StopIteration:
            break
        pieces = [
            (not ln.startswith("\t"), bytes.fromhex(ln.strip()))
            for ln in lines[start:]
            if ln.strip() and not ln.startswith("=")
        ]
        if not pieces:
            break
        streams.append(pieces)
    return streams


def _parse_stream(pieces: list[tuple[bool, bytes]]) -> list[Event]:
    conn = HttpConnection()
    out: list[Event] = []
    for k, (is_orig, data) in enumerate(pieces):
        out += conn.data(is_orig, data, k)
    out += conn.end(True, len(pieces)) + conn.end(False, len(pieces))
    return out


SAMPLE_FACTS = {
    "http-keepalive.pcap": [
        [
            ("/index.html", 200, 178),
            ("/small.txt", 200, 1000),
            ("/large.bin", 200, 131072),
            ("/medium.bin", 200, 20000),
        ],
        [("/small.txt", 200, 1000), ("/index.html", 200, 178)],
    ],
    "http-pipelined.pcap": [
        [("/index.html", 200, 178), ("/small.txt", 200, 1000), ("/medium.bin", 200, 20000)],
    ],
    "http-close.pcap": [
        [("/index.html", 200, 178)],
        [("/small.txt", 200, 1000)],
        [("/missing.html", 404, 146)],
        [("/medium.bin", 200, 20000)],
    ],
}
SHA = {
    "/index.html": "29ee48639c58fd3522d751b7dadcf5a3604df04248716505cb3c9fa6bec6ac3f",
    "/small.txt": "7a64ce35e8e3fbf9b02d3f620f0753175c2ff86829eaf4c13314745243566ccc",
    "/medium.bin": "2a85c07913a238e9ee3c554a941f71ba1da4a397305425a00fbe505a5d297944",
    "/large.bin": "115f565a8615e428b1e00712862f1a66ebb085f1070a78e8e4887453f50ec8b0",
}


@pytest.mark.tshark
@pytest.mark.skipif(shutil.which("tshark") is None, reason="tshark not installed")
@pytest.mark.parametrize("name", sorted(SAMPLE_FACTS))
def test_samples(name: str) -> None:
    streams = _follow(SAMPLES / name)
    assert len(streams) == len(SAMPLE_FACTS[name])
    for pieces, facts in zip(streams, SAMPLE_FACTS[name], strict=True):
        ev = _parse_stream(pieces)
        assert anomalies(ev) == []
        t = txs(ev)
        assert [(x.uri, x.status_code, x.response_body_len) for x in t] == facts
        assert all(x.method == "GET" and not x.partial and x.flags == () for x in t)
        assert [x.trans_depth for x in t] == list(range(1, len(t) + 1))
        for x in t:
            if x.uri in SHA:
                assert x.resp_body_sha256 == SHA[x.uri]
        if name == "http-pipelined.pcap":
            assert [x.pipelined for x in t] == [False, True, True]
            assert [x.pipeline_depth for x in t] == [1, 2, 3]
            assert [x.keep_alive for x in t] == [True, True, False]
        if name == "http-keepalive.pcap":
            assert all(x.user_agent == "curl/7.88.1" and x.keep_alive for x in t)
            assert not any(x.pipelined for x in t)
        if name == "http-close.pcap":
            assert all(x.keep_alive is False for x in t)
    if name == "http-close.pcap":
        last = txs(_parse_stream(streams[3]))[0]
        assert (last.request_version, last.response_version) == ("1.0", "1.1")


# --- samples again, reassembled by the repo's own Reassembler (so lossy.pcap's gap is real) ----


class _Sink:
    """StreamSink of one direction: forwards to the connection's parser, collects events."""

    def __init__(self, conn: HttpConnection, is_orig: bool, out: list[Event]) -> None:
        self.conn, self.is_orig, self.out = conn, is_orig, out

    def data(self, chunk: bytes, ts_ns: int) -> None:
        self.out.extend(self.conn.data(self.is_orig, bytes(chunk), ts_ns))

    def gap(self, nbytes: int, ts_ns: int) -> None:
        self.out.extend(self.conn.gap(self.is_orig, nbytes, ts_ns))

    def end(self, ts_ns: int) -> None:
        self.out.extend(self.conn.end(self.is_orig, ts_ns))


def _reassemble(pcap: Path) -> list[list[Event]]:
    """Per connection (in order of first packet), the parser's events (Ethernet/IPv4 only)."""
    dpkt = pytest.importorskip("dpkt")
    from pcapan.flow.reassembly import Reassembler

    conns: dict[tuple[bytes, int, bytes, int], tuple[dict[bool, Reassembler], list[Event]]] = {}
    last = 0
    with pcap.open("rb") as f:
        for ts, frame in dpkt.pcap.Reader(f):
            ip = dpkt.ethernet.Ethernet(frame).data
            tcp = ip.data
            ts_ns = last = int(round(ts * 1e9))
            fwd = (ip.src, tcp.sport, ip.dst, tcp.dport)
            rev = (ip.dst, tcp.dport, ip.src, tcp.sport)
            if fwd in conns:
                key, is_orig = fwd, True
            elif rev in conns:
                key, is_orig = rev, False
            else:
                key, is_orig = fwd, True
                parser, out = HttpConnection(), []
                conns[key] = ({d: Reassembler(_Sink(parser, d, out)) for d in (True, False)}, out)
            ras = conns[key][0]
            r = ras[is_orig]
            if tcp.flags & dpkt.tcp.TH_SYN:
                r.init_isn(tcp.seq)
            else:
                r.segment(
                    tcp.seq,
                    bytes(tcp.data),
                    len(tcp.data),
                    ts_ns,
                    fin=bool(tcp.flags & dpkt.tcp.TH_FIN),
                )
            peer = ras[not is_orig]
            if tcp.flags & dpkt.tcp.TH_ACK and peer.started:
                peer.acked(peer.rel(tcp.ack), ts_ns)
    for ras, _ in conns.values():
        for r in ras.values():
            r.finish(last)
    return [out for _, out in conns.values()]


@pytest.mark.parametrize("name", sorted(SAMPLE_FACTS))
def test_samples_through_reassembler(name: str) -> None:
    per_conn = _reassemble(SAMPLES / name)
    assert len(per_conn) == len(SAMPLE_FACTS[name])
    for ev, facts in zip(per_conn, SAMPLE_FACTS[name], strict=True):
        assert anomalies(ev) == []
        t = txs(ev)
        assert [(x.uri, x.status_code, x.response_body_len) for x in t] == facts
        assert all(not x.partial for x in t)
        for x in t:
            assert x.ts_request_start <= x.ts_request_end <= x.ts_response_start  # type: ignore[operator]
            assert x.ts_response_start <= x.ts_response_end  # type: ignore[operator]
            if x.uri in SHA:
                assert x.resp_body_sha256 == SHA[x.uri]


def test_lossy_sample_gap_inside_body_keeps_sync() -> None:
    # samples/README.md: 1448 bytes of the /large.bin body (Content-Length 131072) are missing;
    # the responses after it must still be found (tshark loses them).
    first, second = _reassemble(SAMPLES / "lossy.pcap")
    t = txs(first)
    assert [(x.uri, x.status_code, x.response_body_len) for x in t] == SAMPLE_FACTS[
        "http-keepalive.pcap"
    ][0]
    assert [x.partial for x in t] == [False, False, True, False]
    assert t[2].resp_body_sha256 is None and "gap_in_body" in t[2].flags
    assert t[3].resp_body_sha256 == SHA["/medium.bin"]
    assert anomalies(first) == []
    assert [x.uri for x in txs(second)] == ["/small.txt", "/index.html"]


def test_limits_give_the_same_events_at_every_split(monkeypatch: pytest.MonkeyPatch) -> None:
    # Small limits so that every split point can be tried: the outcome of exceeding a limit
    # must not depend on segmentation (the discarded line is skipped to its end either way).
    import pcapan.proto.http1 as h

    monkeypatch.setattr(h, "HTTP_MAX_HEADER_BYTES", 60)
    monkeypatch.setattr(h, "HTTP_MAX_CHUNK_LINE_BYTES", 12)
    ev = check(
        [
            (
                "c",
                req("GET /a HTTP/1.1", "Host: h", "X-Pad: " + "p" * 60)
                + req("GET /b HTTP/1.1", "Host: h")
                + req("GET /c HTTP/1.1", "Host: h"),
            ),
            (
                "s",
                resp("HTTP/1.1 431 Too Large", "Content-Length: 0")
                + resp(
                    "HTTP/1.1 200 OK",
                    "Transfer-Encoding: chunked",
                    body=b"1;" + b"e" * 40 + b"HTTP/1.1 999 x\r\nx\r\n0\r\n\r\n",
                )
                + resp("HTTP/1.1 200 OK", "Content-Length: 0"),
            ),
        ]
    )
    a, b, c = txs(ev)
    assert "header_too_large" in a.flags and a.status_code == 431
    assert b.uri == "/b" and "chunk_line_too_long" in b.flags and b.partial
    assert (c.uri, c.status_code) == ("/c", 200)
    assert [x.kind for x in anomalies(ev)] == ["header_too_large", "chunk_line_too_long"]


def test_opaque_data_equals_data() -> None:
    """Body bytes handed over as views (the engine's no-copy path) give the same transaction
    as the same bytes fed with data(), chunked bodies included."""
    body = bytes(range(256)) * 40
    chunked = b"".join(
        b"%x\r\n%s\r\n" % (len(body[i : i + 1000]), body[i : i + 1000])
        for i in range(0, len(body), 1000)
    )
    for head, payload in (
        (b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(body), body),
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", chunked + b"0\r\n\r\n"),
        (b"HTTP/1.0 200 OK\r\n\r\n", body),
    ):
        outs = []
        for use_views in (False, True):
            conn = HttpConnection()
            out = conn.data(True, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", 1)
            out += conn.data(False, head, 2)
            rest, ts = payload, 3
            while rest:
                # the same pieces either way: within the opaque room when there is one
                room = conn.opaque_bytes(False)
                take = min(room, 700, len(rest)) if room else min(700, len(rest))
                if use_views and room:
                    mv = memoryview(rest)
                    out += conn.opaque_data(False, [mv[: take // 2], mv[take // 2 : take]], ts)
                else:
                    out += conn.data(False, rest[:take], ts)
                rest, ts = rest[take:], ts + 1
            out += conn.end(False, ts) + conn.end(True, ts)
            outs.append(out)
        assert outs[0] == outs[1]
        tx = next(e for e in outs[1] if isinstance(e, HttpTransaction))
        assert tx.response_body_len == len(body)
