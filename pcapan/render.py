"""Terminal rendering (imported only by the CLI): rich for the summary of ``pcapan analyze``,
and for the table verbs the same look drawn from widths decided here (see :func:`print_table`).

Text that came from a capture is shown through ``facts.printable`` (control and bidi characters
escaped: a URI must not drive the terminal) inside ``rich.text.Text`` (never parsed as rich
markup: ``[/b]`` in a URI is text, not a closing tag); the table verbs write it as plain text."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from pcapan.report.facts import (
    SERVER_COLUMNS_TERMINAL,
    anomaly_counts,
    format_value,
    printable,
    state_rows,
    summary_rows,
    tls_alpn,
    tls_versions,
    top_servers,
    view,
)

if TYPE_CHECKING:
    import pandas as pd

    from pcapan.api import Result
    from pcapan.frames.schema import Column

# Server rows `pcapan analyze` shows: a screenful next to the summary; the servers verb and the
# HTML report show more.
TERMINAL_TOP_SERVERS = 10


def _console() -> Console:
    # rich takes the width from the terminal, or from $COLUMNS (80 when neither says).
    return Console(soft_wrap=False)


def _missing(v: Any) -> bool:
    if v is None:
        return True
    import pandas as pd

    return v is pd.NA or v is pd.NaT or (isinstance(v, float) and v != v)


def _fmt(v: Any) -> str:
    return format_value(v)


# --- the table verbs (connections, http, tls, rtt, servers) -------------------------------------
# Per verb: the columns shown by default, in the order shown, and the order in which they are
# kept when the terminal cannot hold them all (most useful first): a column that does not fit
# is left out whole, never squeezed until its numbers wrap. The rest of each table is reachable
# with --columns or --wide.
TERMINAL_COLUMNS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "connections": (
        (
            "ts",
            "uid",
            "orig_h",
            "orig_p",
            "resp_h",
            "resp_p",
            "service",
            "conn_state",
            "duration_s",
            "orig_bytes",
            "resp_bytes",
            "history",
            "orig_pkts",
            "resp_pkts",
            "missed_bytes",
        ),
        (
            "uid",
            "orig_h",
            "resp_h",
            "resp_p",
            "service",
            "conn_state",
            "duration_s",
            "orig_bytes",
            "resp_bytes",
            "ts",
            "orig_p",
            "history",
            "orig_pkts",
            "resp_pkts",
            "missed_bytes",
        ),
    ),
    "http": (
        (
            "ts",
            "uid",
            "trans_depth",
            "method",
            "host",
            "uri",
            "status_code",
            "request_body_len",
            "response_body_len",
            "keep_alive",
            "pipelined",
            "ttfb_s",
        ),
        (
            "method",
            "host",
            "uri",
            "status_code",
            "ttfb_s",
            "response_body_len",
            "uid",
            "ts",
            "trans_depth",
            "keep_alive",
            "pipelined",
            "request_body_len",
        ),
    ),
    "tls": (
        (
            "ts",
            "uid",
            "resp_h",
            "resp_p",
            "server_name",
            "version",
            "cipher",
            "alpn_offered",
            "next_protocol",
            "resumption",
            "established",
            "handshake_rtts",
            "handshake_s",
        ),
        (
            "server_name",
            "version",
            "cipher",
            "resp_h",
            "established",
            "handshake_s",
            "handshake_rtts",
            "resumption",
            "next_protocol",
            "uid",
            "resp_p",
            "ts",
            "alpn_offered",
        ),
    ),
    "rtt": (
        ("ts", "uid", "direction", "kind", "rtt_s"),
        ("uid", "rtt_s", "direction", "kind", "ts"),
    ),
    "servers": (
        (
            "orig_h",
            "resp_h",
            "resp_p",
            "server_name",
            "connections",
            "requests",
            "reuse_ratio",
            "max_open_connections",
            "missed_reuse",
            "budget_total_median_s",
            "initial_rtt_median_s",
        ),
        (
            "server_name",
            "resp_h",
            "resp_p",
            "connections",
            "requests",
            "reuse_ratio",
            "orig_h",
            "missed_reuse",
            "max_open_connections",
            "budget_total_median_s",
            "initial_rtt_median_s",
        ),
    ),
    "findings": (
        ("severity", "kind", "server", "occurrences", "cost_s", "summary"),
        ("severity", "kind", "summary", "server", "occurrences", "cost_s"),
    ),
}
# Text columns that are identifiers: a cut uid or address names nothing, so they are never
# truncated, like numbers, timestamps and booleans. Other text (URIs, Host, SNI, user agents,
# cipher names, history) is cut to fit, ending in an ellipsis.
# (server and client: the findings table's scope, an address[:port].)
WHOLE_TEXT = frozenset({"uid", "orig_h", "resp_h", "community_id", "idle_uid", "server", "client"})
# Narrowest a truncated text column gets: less says too little to be worth its borders.
TEXT_MIN_WIDTH = 12
# rich's default table: a border before each column and one after the last, one space of
# padding on each side of a cell.
_COLUMN_OVERHEAD = 3
_TABLE_OVERHEAD = 1


def terminal_width() -> int:
    """The terminal's width; ``$COLUMNS`` when set (tests, pipes), 80 when nothing says."""
    import shutil

    return shutil.get_terminal_size((80, 24)).columns


def _header_pieces(name: str) -> list[str]:
    """A column name cut after each ``_`` (``response_body_len`` -> ``response_``, ``body_``,
    ``len``): where its header may break when the column is narrower than the name."""
    parts = name.split("_")
    return [p + "_" for p in parts[:-1]] + [parts[-1]]


def _header(name: str, width: int) -> str:
    """``name`` in lines of at most ``width`` characters, broken only after an ``_``."""
    lines: list[str] = []
    for piece in _header_pieces(name):
        if lines and len(lines[-1]) + len(piece) <= width:
            lines[-1] += piece
        else:
            lines.append(piece)
    return "\n".join(lines)


def _cells(s: pd.Series, date: str | None) -> list[str]:
    """A column's cells as text: ``-`` for missing, timestamps to the microsecond (the time of
    day alone when ``date`` is the one date of the whole column), floats with 6 decimals,
    captured text escaped (see pcapan.frames.text)."""
    import pandas as pd

    kind = s.dtype.kind
    if isinstance(s.dtype, pd.DatetimeTZDtype) or kind == "M":
        fmt = "%H:%M:%S.%f" if date else "%Y-%m-%d %H:%M:%S.%f"
        return s.dt.strftime(fmt).fillna("-").tolist()
    if kind == "f":
        return ["-" if v != v else f"{v:.6f}" for v in s.tolist()]
    return [format_value(v) for v in s.astype(object).tolist()]


def _one_date(s: pd.Series) -> str | None:
    """The UTC date of every timestamp of ``s`` when there is one, else None."""
    import pandas as pd

    if not (isinstance(s.dtype, pd.DatetimeTZDtype) or s.dtype.kind == "M"):
        return None
    days = s.dropna().dt.strftime("%Y-%m-%d").unique()
    return str(days[0]) if len(days) == 1 else None


def fit_columns(
    columns: list[tuple[str, int, int]], keep_order: list[str], width: int
) -> tuple[list[str], dict[str, int]]:
    """Which columns a table of ``width`` characters shows, and how wide each is.

    ``columns``: (name, narrowest, widest) in display order, where narrowest is the width
    below which the column would have to wrap its numbers or cut an identifier (or, for text,
    TEXT_MIN_WIDTH) and widest the width of its longest cell or name. Columns are taken in
    ``keep_order`` while their narrowest widths and the borders fit (the first always; the
    first that does not fit ends the choice); the room left widens columns towards their widest
    (text that would be cut, headers that would break), in ``keep_order``.
    """
    spec = {name: (lo, hi) for name, lo, hi in columns}
    chosen: list[str] = []
    used = _TABLE_OVERHEAD
    for name in keep_order:
        need = spec[name][0] + _COLUMN_OVERHEAD
        if chosen and used + need > width:
            break  # the rest are less useful: a narrow one further on does not jump the queue
        chosen.append(name)
        used += need
    widths = {n: spec[n][0] for n in chosen}
    room = width - used
    for n in chosen:  # in keep order: the most useful text first
        grow = min(room, spec[n][1] - widths[n])
        if grow > 0:
            widths[n] += grow
            room -= grow
    shown = [name for name, _, _ in columns if name in widths]
    return shown, widths


def print_table(
    df: pd.DataFrame,
    title: str,
    *,
    keep_order: list[str] | None = None,
    wide: bool = False,
    width: int | None = None,
) -> None:
    """A table of a table verb, fitted to the terminal: numbers, timestamps, booleans, uids and
    addresses whole on one line; other text cut with an ellipsis; columns that do not fit left
    out (in ``keep_order``'s reverse, default the display order's) and named under the table.
    ``wide``: every column of ``df`` at full width, however wide the lines get (for ``less -S``).
    """
    dates = {str(c): _one_date(df[c]) for c in df.columns}
    # The date shown once in the title: that of the first timestamp column whose values all
    # fall on one UTC date; every timestamp column on that date shows the time of day alone
    # (26 characters become 15: at 80 columns, room for one more column).
    main = next((d for c, d in dates.items() if d), None) if not wide else None
    cells: dict[str, list[str]] = {}
    numeric: set[str] = set()
    whole: set[str] = set(WHOLE_TEXT)
    for c in map(str, df.columns):
        s = df[c]
        cells[c] = _cells(s, main if main and dates[c] == main else None)
        if s.dtype.kind in _NUMERIC_KINDS or str(s.dtype) in ("Int64", "boolean"):
            numeric.add(c)
        if s.dtype.kind == "M" or "datetime64" in str(s.dtype):
            whole.add(c)

    def titled(shown: list[str]) -> str:
        date = main if main and any(dates[c] == main for c in shown) else None
        return title + (f" · times UTC on {date}" if date else "")

    _write(
        fitted_lines(
            cells,
            titled,
            numeric=numeric,
            whole=whole | numeric,
            keep_order=keep_order,
            wide=wide,
            width=width,
            hint="--wide shows every column; --columns chooses",
        )
    )


def fitted_lines(
    cells: dict[str, list[str]],
    title: str | Callable[[list[str]], str],
    *,
    numeric: set[str],
    whole: set[str],
    keep_order: list[str] | None = None,
    wide: bool = False,
    width: int | None = None,
    hint: str = "",
    tails: frozenset[str] = frozenset(),
) -> list[str]:
    """The lines of a fitted table of ``cells`` (column -> cell texts, in display order).
    ``whole`` columns are never cut; ``tails`` columns hold ``label (address)`` cells whose
    ``(address)`` is never cut (the label is); ``numeric`` columns are right-aligned. ``title``
    may be a function of the columns shown."""
    from rich.cells import cell_len

    width = width or terminal_width()
    cols: list[tuple[str, int, int]] = []
    for c, values in cells.items():
        longest = max((cell_len(v) for v in values), default=1)
        head = max(len(p) for p in _header_pieces(c))
        if c in whole:
            lo = max(longest, head)
        elif c in tails:
            lo = max([head, *(cell_len(_tail(v)[1].lstrip()) for v in values)])
        else:
            lo = max(head, min(longest, TEXT_MIN_WIDTH))
        cols.append((c, lo, max(longest, len(c))))
    names = [c for c, _, _ in cols]
    if wide:
        shown, widths = names, {c: hi for c, _, hi in cols}
        width = _TABLE_OVERHEAD + sum(w + _COLUMN_OVERHEAD for w in widths.values())
    else:
        shown, widths = fit_columns(cols, keep_order or names, width)
    hidden = [c for c in names if c not in widths]
    caption = None
    if hidden:
        caption = f"{len(hidden)} more column(s) do not fit in {width}: {', '.join(hidden)}"
        caption += f" ({hint})" if hint else ""
    return _draw(
        [(c, widths[c], c in numeric, c in tails) for c in shown],
        [cells[c] for c in shown],
        title(shown) if callable(title) else title,
        caption,
    )


def _tail(text: str) -> tuple[str, str]:
    """``label (address)`` -> (``label``, `` (address)``); text without one -> (text, "")."""
    i = text.rfind(" (")
    return (text[:i], text[i:]) if i > 0 and text.endswith(")") else (text, "")


def _write(lines: list[str]) -> None:
    out = sys.stdout
    for start in range(0, len(lines), _WRITE_LINES):
        out.write("\n".join(lines[start : start + _WRITE_LINES]) + "\n")
    out.flush()


# Lines written to stdout at a time (a pipe that closes early stops the rest).
_WRITE_LINES = 4096


def _draw(
    columns: list[tuple[str, int, bool, bool]],
    cells: list[list[str]],
    title: str,
    caption: str | None,
) -> list[str]:
    """The table's lines in rich's default look (heavy header box, as every other table of
    pcapan), drawn here because the widths are already decided: rich lays out each cell again
    and takes ~0.8 ms a row (10 s for the 12,333 connections of a 300,000-packet capture);
    this takes ~10 µs a row. Cells are cut to their column with "…" (by terminal cells, so wide
    characters count double) and padded; headers break after "_" and sit at the bottom."""
    from rich.cells import cell_len, set_cell_size

    def fit(text: str, w: int, right: bool, tail: bool = False) -> str:
        n = cell_len(text)
        if n > w:
            label, end = _tail(text) if tail else (text, "")
            room = w - cell_len(end)
            if end and room >= 2:
                return set_cell_size(label, room - 1) + "…" + end
            if end:
                return fit(end.lstrip(), w, right)
            return set_cell_size(text, w - 1) + "…"
        return " " * (w - n) + text if right else text + " " * (w - n)

    heads = [_header(name, w).split("\n") for name, w, _, _ in columns]
    depth = max(len(h) for h in heads)
    heads = [[""] * (depth - len(h)) + h for h in heads]
    widths = [w for _, w, _, _ in columns]
    total = _TABLE_OVERHEAD + sum(w + _COLUMN_OVERHEAD for w in widths)

    def rule(left: str, fill: str, cross: str, right: str) -> str:
        return left + cross.join(fill * (w + 2) for w in widths) + right

    lines = [_centre(title, total)]
    lines.append(rule("┏", "━", "┳", "┓"))
    for i in range(depth):
        row = (fit(h[i], w, r) for h, (_, w, r, _) in zip(heads, columns, strict=True))
        lines.append("┃ " + " ┃ ".join(row) + " ┃")
    lines.append(rule("┡", "━", "╇", "┩"))
    rights = [r for _, _, r, _ in columns]
    tails = [k for _, _, _, k in columns]
    for values in zip(*cells, strict=True):
        row = (fit(v, w, r, k) for v, w, r, k in zip(values, widths, rights, tails, strict=True))
        lines.append("│ " + " │ ".join(row) + " │")
    lines.append(rule("└", "─", "┴", "┘"))
    if caption:
        import textwrap

        lines += textwrap.wrap(caption, width=total, break_on_hyphens=False)
    return lines


def _centre(text: str, width: int) -> str:
    """``text`` centred in ``width`` (cut with "…" when longer, as rich shows a title)."""
    from rich.cells import cell_len, set_cell_size

    n = cell_len(text)
    if n > width:
        return set_cell_size(text, width - 1) + "…"
    left = (width - n) // 2
    return " " * left + text


def _print_summary(con: Console, s: dict[str, Any]) -> None:
    t = Table(title="capture", show_header=False)
    t.add_column("what", overflow="fold")
    t.add_column("value", justify="right", overflow="fold")
    for label, value in summary_rows(s):
        t.add_row(Text(label), Text(value))
    con.print(t)
    states = state_rows(s)
    if states:
        st = Table(title="connection states / services")
        for name, justify in (
            ("conn_state", "left"),
            ("count", "right"),
            ("service", "left"),
            ("count", "right"),
        ):
            st.add_column(name, justify=justify, overflow="fold")  # type: ignore[arg-type]
        for row in states:
            st.add_row(*(Text(printable(v)) for v in row))
        con.print(st)


def print_analysis(res: Result, *, top: int = TERMINAL_TOP_SERVERS) -> None:
    """What ``pcapan analyze`` prints: the summary, the top servers, the TLS mix and the
    anomaly counts, each table only when it has rows; sized to the terminal (rich wraps
    columns to the console width, which follows the terminal or $COLUMNS)."""
    con = _console()
    _print_summary(con, res.summary())
    servers = top_servers(res, top)
    if len(servers):
        n = len(res.servers)
        shown = f"top {len(servers)} of {n}" if n > len(servers) else f"{n}"
        _print_servers(
            con, view(servers, SERVER_COLUMNS_TERMINAL), f"servers ({shown}, by connections)"
        )
    if len(res.tls):
        _print_df(con, tls_versions(res), "TLS versions")
        alpn = tls_alpn(res)
        if len(alpn):
            _print_df(con, alpn, "ALPN (offered / selected)")
    counts = anomaly_counts(res)
    if len(counts):
        _print_df(con, counts, f"anomalies ({int(counts['count'].sum()):,}) by kind")


def _pct(v: Any) -> str:
    return "-" if _missing(v) else f"{float(v):.0%}"


def _ms(v: Any) -> str:
    return "-" if _missing(v) else f"{float(v) * 1e3:.1f} ms"


# Cell formats of the top-servers table (by its column titles, see facts.SERVER_COLUMNS_TERMINAL).
_SERVER_FORMATS: dict[str, Callable[[Any], str]] = {"reuse": _pct, "budget": _ms}
_NUMERIC_KINDS = "iufb"


def _print_df(
    con: Console,
    df: pd.DataFrame,
    title: str,
    formats: dict[str, Callable[[Any], str]] | None = None,
) -> None:
    formats = formats or {}
    t = Table(title=title)
    for c in df.columns:
        numeric = df[c].dtype.kind in _NUMERIC_KINDS or c in formats
        # Numbers never wrap (a figure split over two lines misreads); text folds to fit.
        t.add_column(
            str(c), justify="right" if numeric else "left", overflow="fold", no_wrap=numeric
        )
    for row in df.itertuples(index=False):
        t.add_row(*(Text(formats.get(c, _fmt)(v)) for c, v in zip(df.columns, row, strict=True)))
    con.print(t)


# The top-servers view's columns kept first when the terminal is narrow (its titles, see
# facts.SERVER_COLUMNS_TERMINAL): who, how many, how much reuse and what it cost.
_SERVER_KEEP = ["client", "server", "conns", "reqs", "reuse", "budget", "missed", "open"]


def _print_servers(con: Console, df: pd.DataFrame, title: str) -> None:
    """The top servers of ``pcapan analyze``, fitted as the table verbs are: the client address
    and the numbers whole, the server's ``name (address:port)`` cut in its name only, columns
    that do not fit left out and named (before, the address folded over lines at 80 columns)."""
    cells = {
        str(c): [_SERVER_FORMATS.get(str(c), _fmt)(v) for v in df[c].tolist()] for c in df.columns
    }
    numeric = {
        str(c) for c in df.columns if df[c].dtype.kind in _NUMERIC_KINDS or c in _SERVER_FORMATS
    }
    keep = [c for c in _SERVER_KEEP if c in cells] + [c for c in cells if c not in _SERVER_KEEP]
    con.file.flush()
    _write(
        fitted_lines(
            cells,
            title,
            numeric=numeric,
            whole=numeric | {"client"},
            keep_order=keep,
            width=con.width,
            hint="pcapan servers FILE shows them",
            tails=frozenset({"server"}),
        )
    )


def print_schema(tables: dict[str, tuple[Column, ...]]) -> None:
    con = _console()
    for name, cols in tables.items():
        t = Table(title=name)
        t.add_column("column")
        t.add_column("type")
        t.add_column("unit")
        t.add_column("description", overflow="fold")
        for c in cols:
            t.add_row(c.name, c.dtype, c.unit, c.doc)
        con.print(t)
