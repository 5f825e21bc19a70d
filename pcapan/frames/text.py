"""Captured text shown to people: control characters escaped.

A captured string may hold ESC, BEL or NUL (an SNI of ``\\x1b]0;title\\x07`` retitles a
terminal), bidi overrides ("Trojan Source") or other invisible format characters. Every text
output a terminal may show (the table view, ``--format csv`` on stdout, the HTML report) and
CSV files written with ``--safe-csv`` pass text cells through :func:`printable`. Exact outputs
(CSV without ``--safe-csv``, Parquet, JSON Lines) keep the text as it is; JSON escapes control
characters itself (``\\u001b``), which keeps the value exact.
"""

from __future__ import annotations

import unicodedata

# Unicode categories shown as escapes, never as themselves: control characters (a terminal
# obeys ESC sequences found in a captured URI), format characters (bidi overrides reorder the
# text around them, "Trojan Source") and lone surrogates (not encodable as UTF-8).
HIDDEN_CATEGORIES = frozenset({"Cc", "Cf", "Cs"})


def printable(value: object) -> str:
    """``str(value)`` with control, format and surrogate characters written as ``\\xNN`` /
    ``\\uNNNN`` escapes (and a backslash as ``\\\\`` when any escape was made, so the text stays
    unambiguous). Captured text goes through this before any terminal or page shows it."""
    s = "" if value is None else str(value)
    if s.isascii() and s.isprintable():
        return s  # the common case, without a per-character category lookup
    if all(unicodedata.category(ch) not in HIDDEN_CATEGORIES for ch in s):
        return s
    out = []
    for ch in s:
        if ch == "\\":
            out.append("\\\\")
        elif unicodedata.category(ch) in HIDDEN_CATEGORIES:
            o = ord(ch)
            out.append(f"\\x{o:02x}" if o < 0x100 else f"\\u{o:04x}")
        else:
            out.append(ch)
    return "".join(out)
