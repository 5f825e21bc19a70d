"""Zeek ASCII (TSV) logs: conn.log, http.log, ssl.log and weird.log from pcapan's tables.

The header and the cell rendering follow Zeek's ASCII writer (``src/logging/writers/ascii`` and
``src/threading/formatters/Ascii.cc``): ``#separator \\x09``, ``#set_separator``,
``#empty_field``, ``#unset_field``, ``#path``, ``#open``, ``#fields``, ``#types``, the rows, then
``#close``. Values:

* ``time`` and ``interval``: seconds with 6 decimals; ``count``/``port``: digits; ``bool``: T/F;
* unset (pcapan's NA): ``-``; an empty string or an empty set/vector: ``(empty)``;
* strings: a backslash becomes ``\\\\``; the separator, control characters and bytes that are not
  valid UTF-8 become ``\\xNN`` (lower-case hex, as Zeek with ``LogAscii::enable_utf_8``); inside a
  set or vector the set separator too; a value that is exactly ``-`` or ``(empty)`` gets its first
  character escaped (``\\x2d``, ``\\x28empty)``) so it is not read as unset/empty.

HTTP text (method, URI, headers) is written as the bytes on the wire (pcapan keeps them as
latin-1 text), so a URI with a byte 0xff reads ``\\xff`` as in Zeek. ``#open``/``#close`` are the
first and last packet times of the analysis (UTC), which keeps the files reproducible (Zeek uses
the local wall-clock or network time).
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from pcapan.errors import ExportError

if TYPE_CHECKING:
    import pandas as pd

SEPARATOR = "\t"
SET_SEPARATOR = ","
EMPTY_FIELD = "(empty)"
UNSET_FIELD = "-"
# Zeek's Ascii writer formats #open/#close with this strftime pattern.
OPEN_CLOSE_FORMAT = "%Y-%m-%d-%H-%M-%S"
TIME_DECIMALS = 6
IP_PROTO_TCP = 6
# pcapan's service names that Zeek spells differently (Zeek's TLS analyzer is "ssl").
ZEEK_SERVICE = {"tls": "ssl"}


@dataclass(frozen=True, slots=True)
class ZeekField:
    """One column of a Zeek log: Zeek's name and type, and where pcapan's value comes from."""

    name: str
    type: str
    source: str  # how the value is made (documentation)
    column: str | None = None  # the pcapan column copied as is, if any


@dataclass(frozen=True, slots=True)
class ZeekLogSpec:
    path: str  # Zeek's log path: conn, http, ssl, weird
    table: str  # the pcapan table it is made from
    fields: tuple[ZeekField, ...]


def _copy(name: str, ztype: str, column: str) -> ZeekField:
    """A Zeek field that is a pcapan column as it is."""
    return ZeekField(name, ztype, f"the {column} column", column)


_ID = (
    _copy("ts", "time", "ts"),
    _copy("uid", "string", "uid"),
    _copy("id.orig_h", "addr", "orig_h"),
    _copy("id.orig_p", "port", "orig_p"),
    _copy("id.resp_h", "addr", "resp_h"),
    _copy("id.resp_p", "port", "resp_p"),
)
_UNSET = "unset (pcapan does not compute it)"

CONN = ZeekLogSpec(
    "conn",
    "connections",
    (
        *_ID,
        _copy("proto", "enum", "proto"),
        ZeekField(
            "service", "string", "service, with tls spelled ssl as Zeek does; unset when none"
        ),
        ZeekField(
            "duration",
            "interval",
            "duration_s; unset (with orig_bytes, resp_bytes) when 0, as Zeek",
        ),
        _copy("orig_bytes", "count", "orig_bytes"),
        _copy("resp_bytes", "count", "resp_bytes"),
        _copy("conn_state", "string", "conn_state"),
        ZeekField("local_orig", "bool", "unset (Zeek sets it only with Site::local_nets)"),
        ZeekField("local_resp", "bool", "unset (Zeek sets it only with Site::local_nets)"),
        _copy("missed_bytes", "count", "missed_bytes"),
        _copy("history", "string", "history"),
        _copy("orig_pkts", "count", "orig_pkts"),
        _copy("orig_ip_bytes", "count", "orig_ip_bytes"),
        _copy("resp_pkts", "count", "resp_pkts"),
        _copy("resp_ip_bytes", "count", "resp_ip_bytes"),
        ZeekField(
            "tunnel_parents",
            "set[string]",
            "tunnel_parents: the tunnels as described there (pcapan has no rows for the tunnels themselves, so no uids); unset when none",
        ),
        ZeekField("ip_proto", "count", "6 (TCP)"),
        ZeekField(
            "community_id",
            "string",
            "community_id (Zeek's policy/protocols/conn/community-id-logging)",
            "community_id",
        ),
    ),
)

HTTP = ZeekLogSpec(
    "http",
    "http",
    (
        *_ID,
        _copy("trans_depth", "count", "trans_depth"),
        _copy("method", "string", "method"),
        _copy("host", "string", "host"),
        _copy("uri", "string", "uri"),
        _copy("referrer", "string", "referrer"),
        _copy("version", "string", "version"),
        _copy("user_agent", "string", "user_agent"),
        ZeekField("origin", "string", _UNSET),
        _copy("request_body_len", "count", "request_body_len"),
        _copy("response_body_len", "count", "response_body_len"),
        _copy("status_code", "count", "status_code"),
        _copy("status_msg", "string", "status_msg"),
        ZeekField("info_code", "count", "the last of info_codes"),
        ZeekField("info_msg", "string", _UNSET),
        ZeekField("tags", "set[enum]", "always empty"),
        ZeekField("username", "string", _UNSET),
        ZeekField("password", "string", _UNSET),
        ZeekField("proxied", "set[string]", _UNSET),
        ZeekField("orig_fuids", "vector[string]", _UNSET),
        ZeekField("orig_filenames", "vector[string]", _UNSET),
        ZeekField("orig_mime_types", "vector[string]", _UNSET),
        ZeekField("resp_fuids", "vector[string]", _UNSET),
        ZeekField("resp_filenames", "vector[string]", _UNSET),
        ZeekField("resp_mime_types", "vector[string]", _UNSET),
    ),
)

SSL = ZeekLogSpec(
    "ssl",
    "tls",
    (
        *_ID,
        _copy("version", "string", "version"),
        _copy("cipher", "string", "cipher"),
        _copy("curve", "string", "curve"),
        _copy("server_name", "string", "server_name"),
        ZeekField("resumed", "bool", "resumed (F when unknown, Zeek's default)"),
        ZeekField(
            "last_alert",
            "string",
            "the description part of alert (the first alert seen; unset when encrypted)",
        ),
        _copy("next_protocol", "string", "next_protocol"),
        ZeekField("established", "bool", "established (F when unknown, Zeek's default)"),
        ZeekField("ssl_history", "string", _UNSET),
        ZeekField("cert_chain_fps", "vector[string]", _UNSET),
        ZeekField("client_cert_chain_fps", "vector[string]", _UNSET),
        ZeekField("sni_matches_cert", "bool", _UNSET),
        ZeekField("ja3", "string", "ja3 (the salesforce/ja3 Zeek package's field)", "ja3"),
        ZeekField("ja3s", "string", "ja3s (the salesforce/ja3 Zeek package's field)", "ja3s"),
        ZeekField("ja4", "string", "ja4 (the FoxIO JA4 Zeek package's field)", "ja4"),
    ),
)

WEIRD = ZeekLogSpec(
    "weird",
    "anomalies",
    (
        *_ID,
        _copy("name", "string", "name"),
        _copy("addl", "string", "addl"),
        ZeekField("notice", "bool", "F"),
        ZeekField("peer", "string", _UNSET),
        ZeekField("source", "string", _UNSET),
    ),
)

LOGS: tuple[ZeekLogSpec, ...] = (CONN, HTTP, SSL, WEIRD)

# Characters escaped as \xNN anywhere: C0 controls (the tab separator among them), DEL, and
# the surrogates that stand for bytes that are not valid UTF-8. The backslash is "\\".
_ESCAPE = re.compile("[\\x00-\\x1f\\x7f\\\\\udc80-\udcff]")
_ESCAPE_IN_SET = re.compile("[\\x00-\\x1f\\x7f\\\\\udc80-\udcff" + re.escape(SET_SEPARATOR) + "]")


# A non-UTF-8 byte as table text writes it (pcapan.proto.text.wire_text): \x80 to \xff.
_WIRE_ESCAPE = re.compile(r"\\x([89a-f][0-9a-f])")


def _wire_byte(m: re.Match[str]) -> str:
    return chr(0xDC00 + int(m.group(1), 16))  # the surrogate that _escape_char writes as \xNN


def _escape_char(m: re.Match[str]) -> str:
    c = m.group(0)
    if c == "\\":
        return "\\\\"
    code = ord(c)
    return f"\\x{code - 0xDC00 if code >= 0xDC80 else code:02x}"


def escape(value: str, *, in_set: bool = False) -> str:
    """A string cell as Zeek's ASCII writer renders it."""
    if value == "":
        return EMPTY_FIELD
    # Table text holds a byte that is not valid UTF-8 as the four characters \xNN
    # (pcapan.proto.text); turned back into that byte here, it is written \xNN as Zeek
    # writes it, and not as \\xNN (an escaped backslash).
    text = _WIRE_ESCAPE.sub(_wire_byte, value) if "\\x" in value else value
    head = ""
    if text in (UNSET_FIELD, EMPTY_FIELD):
        head, text = f"\\x{ord(text[0]):02x}", text[1:]
    return head + (_ESCAPE_IN_SET if in_set else _ESCAPE).sub(_escape_char, text)


def _is_na(v: object) -> bool:
    import pandas as pd

    return v is None or v is pd.NA or v is pd.NaT or (isinstance(v, float) and v != v)


def render(value: Any, ztype: str) -> str:
    """One cell: ``value`` (None/NA = unset) rendered for Zeek type ``ztype``."""
    if _is_na(value):
        return UNSET_FIELD
    if ztype.startswith(("set[", "vector[")):
        inner = ztype[ztype.index("[") + 1 : -1]
        items = list(value)
        if not items:
            return EMPTY_FIELD
        return SET_SEPARATOR.join(
            escape(str(v), in_set=True) if inner in ("string", "enum") else render(v, inner)
            for v in items
        )
    if ztype == "time":
        ns = int(value.value) if hasattr(value, "value") else round(float(value) * 1e9)
        us = (ns + 500) // 1000
        return f"{us // 10**6}.{us % 10**6:0{TIME_DECIMALS}d}"
    if ztype in ("interval", "double"):
        return f"{float(value):.{TIME_DECIMALS}f}"
    if ztype in ("count", "port", "int"):
        return str(int(value))
    if ztype == "bool":
        return "T" if bool(value) else "F"
    if ztype == "addr":
        return str(value)
    return escape(str(value))


def _col(df: pd.DataFrame, name: str) -> list[Any]:
    return df[name].astype(object).tolist()


def _none(n: int) -> list[Any]:
    return [None] * n


def _conn_values(df: pd.DataFrame, _: dict[str, pd.DataFrame]) -> dict[str, list[Any]]:
    n = len(df)
    dur = _col(df, "duration_s")
    positive = [not _is_na(d) and d > 0 for d in dur]
    service = [
        None
        if _is_na(s) or s == ""
        else ",".join(ZEEK_SERVICE.get(p, p) for p in str(s).split(","))
        for s in _col(df, "service")
    ]
    out = {f.name: _col(df, f.column) for f in CONN.fields if f.column is not None}
    out.update(
        {
            "service": service,
            "duration": [d if p else None for d, p in zip(dur, positive, strict=True)],
            "orig_bytes": [
                v if p else None for v, p in zip(_col(df, "orig_bytes"), positive, strict=True)
            ],
            "resp_bytes": [
                v if p else None for v, p in zip(_col(df, "resp_bytes"), positive, strict=True)
            ],
            "local_orig": _none(n),
            "local_resp": _none(n),
            "tunnel_parents": [
                None if _is_na(t) or not t else str(t).split(",")
                for t in _col(df, "tunnel_parents")
            ],
            "ip_proto": [IP_PROTO_TCP] * n,
        }
    )
    return out


def _http_values(df: pd.DataFrame, _: dict[str, pd.DataFrame]) -> dict[str, list[Any]]:
    n = len(df)
    out = {f.name: _col(df, f.column) for f in HTTP.fields if f.column is not None}
    out["info_code"] = [
        None if _is_na(s) or not str(s).strip() else int(str(s).split(",")[-1])
        for s in _col(df, "info_codes")
    ]
    out["tags"] = [[] for _ in range(n)]
    for name in (
        "origin",
        "info_msg",
        "username",
        "password",
        "proxied",
        "orig_fuids",
        "orig_filenames",
        "orig_mime_types",
        "resp_fuids",
        "resp_filenames",
        "resp_mime_types",
    ):
        out[name] = _none(n)
    return out


def _ssl_values(df: pd.DataFrame, _: dict[str, pd.DataFrame]) -> dict[str, list[Any]]:
    n = len(df)
    out = {f.name: _col(df, f.column) for f in SSL.fields if f.column is not None}
    out["resumed"] = [False if _is_na(v) else bool(v) for v in _col(df, "resumed")]
    out["established"] = [False if _is_na(v) else bool(v) for v in _col(df, "established")]
    out["last_alert"] = [
        None if _is_na(a) or a == "encrypted" else str(a).split(":", 1)[-1]
        for a in _col(df, "alert")
    ]
    for name in ("ssl_history", "cert_chain_fps", "client_cert_chain_fps", "sni_matches_cert"):
        out[name] = _none(n)
    return out


def _weird_values(df: pd.DataFrame, tables: dict[str, pd.DataFrame]) -> dict[str, list[Any]]:
    n = len(df)
    conn = tables["connections"].drop_duplicates("uid").set_index("uid")
    uids = _col(df, "uid")
    out: dict[str, list[Any]] = {
        "ts": _col(df, "ts"),
        "uid": uids,
        "name": _col(df, "name"),
        "addl": _col(df, "addl"),
    }
    for zname, col in (
        ("id.orig_h", "orig_h"),
        ("id.orig_p", "orig_p"),
        ("id.resp_h", "resp_h"),
        ("id.resp_p", "resp_p"),
    ):
        m = conn[col].astype(object).to_dict()
        out[zname] = [None if _is_na(u) else m.get(u) for u in uids]
    out["notice"] = [False] * n
    out["peer"] = _none(n)
    out["source"] = _none(n)
    return out


_VALUES: dict[str, Callable[[pd.DataFrame, dict[str, pd.DataFrame]], dict[str, list[Any]]]] = {
    "conn": _conn_values,
    "http": _http_values,
    "ssl": _ssl_values,
    "weird": _weird_values,
}


def _stamp(ns: int | None) -> str:
    return datetime.fromtimestamp((ns or 0) / 1e9, tz=UTC).strftime(OPEN_CLOSE_FORMAT)


def header_lines(spec: ZeekLogSpec, open_ns: int | None) -> list[str]:
    """The header block, one string per line (without the newline)."""
    sep_hex = "".join(f"\\x{ord(c):02x}" for c in SEPARATOR)
    return [
        f"#separator {sep_hex}",
        f"#set_separator{SEPARATOR}{SET_SEPARATOR}",
        f"#empty_field{SEPARATOR}{EMPTY_FIELD}",
        f"#unset_field{SEPARATOR}{UNSET_FIELD}",
        f"#path{SEPARATOR}{spec.path}",
        f"#open{SEPARATOR}{_stamp(open_ns)}",
        "#fields" + SEPARATOR + SEPARATOR.join(f.name for f in spec.fields),
        "#types" + SEPARATOR + SEPARATOR.join(f.type for f in spec.fields),
    ]


def write_log(
    spec: ZeekLogSpec,
    tables: dict[str, pd.DataFrame],
    path: str | os.PathLike[str],
    open_ns: int | None,
    close_ns: int | None,
) -> int:
    """Write one Zeek log; returns the number of rows."""
    df = tables[spec.table]
    values = _VALUES[spec.path](df, tables)
    columns: Sequence[list[Any]] = [values[f.name] for f in spec.fields]
    try:
        with open(path, "w", encoding="utf-8", errors="surrogateescape", newline="") as f:
            for line in header_lines(spec, open_ns):
                f.write(line + "\n")
            for row in zip(*columns, strict=True):
                f.write(
                    SEPARATOR.join(
                        render(v, fld.type) for v, fld in zip(row, spec.fields, strict=True)
                    )
                    + "\n"
                )
            f.write(f"#close{SEPARATOR}{_stamp(close_ns)}\n")
    except OSError as exc:
        raise ExportError(f"{path}: cannot write ({exc.strerror})") from None
    return len(df)


def file_name(spec: ZeekLogSpec) -> str:
    return f"{spec.path}.log"
