"""Terminal rendering with rich (imported only by the CLI).

Text that came from a capture is shown through ``facts.printable`` (control and bidi characters
escaped: a URI must not drive the terminal) inside ``rich.text.Text`` (never parsed as rich
markup: ``[/b]`` in a URI is text, not a closing tag)."""

from __future__ import annotations

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


def print_frame(df: pd.DataFrame, title: str = "") -> None:
    t = Table(title=title or None, show_lines=False)
    for c in df.columns:
        t.add_column(str(c), overflow="fold")
    for row in df.itertuples(index=False):
        t.add_row(*(Text(_fmt(v)) for v in row))
    _console().print(t)


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
        _print_df(
            con,
            view(servers, SERVER_COLUMNS_TERMINAL),
            f"servers ({shown}, by connections)",
            _SERVER_FORMATS,
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
