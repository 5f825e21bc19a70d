"""Bytes from the wire -> text for a table: one rule for every protocol field.

Text fields taken from captured bytes (HTTP method, URI, host and other header values, the
status reason; TLS server name and ALPN protocol names) are decoded as UTF-8, and every byte
that is not part of valid UTF-8 becomes the four characters ``\\xNN`` (lower-case hex), as Zeek
writes such bytes in its logs. So a UTF-8 URI reads as itself (``/café``), a byte 0xff reads
``\\xff`` in the DataFrame, in every export and on the terminal alike, and the DataFrame holds
only encodable text (pandas' Arrow-backed strings and Parquet refuse lone surrogates).

Control characters (ESC, NUL, BEL...) are valid UTF-8 and stay in the DataFrame as they are:
the DataFrame is the data. Text outputs escape them when they show them (see
:mod:`pcapan.frames.text`).
"""

from __future__ import annotations


def wire_text(raw: bytes | bytearray | memoryview) -> str:
    """Captured bytes as table text: UTF-8, other bytes as ``\\xNN``."""
    return bytes(raw).decode("utf-8", "backslashreplace")


def wire_text_latin1(s: str | None) -> str | None:
    """The same rule for wire bytes a parser holds as latin-1 text (one char per byte, as the
    HTTP parser does to match its regexes on str): ASCII is returned as it is (no copy)."""
    if s is None or s.isascii():
        return s
    return s.encode("latin-1").decode("utf-8", "backslashreplace")
