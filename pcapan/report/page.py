"""The HTML report: one self-contained page (no script, nothing fetched) built from the facts
and the plots. Every value goes through :func:`esc` (``facts.printable`` then ``html.escape``
with quotes) before it reaches the page; the only unescaped strings are this module's own
markup and the base64 data URIs of the plots (``[A-Za-z0-9+/=]`` and a fixed prefix)."""

from __future__ import annotations

import html
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from pcapan.report import facts, figures, template

if TYPE_CHECKING:
    import pandas as pd

    from pcapan.api import Result

# Rows per table in the report. A report is read by people: past these the table is a log,
# which the exports (CSV, Parquet, Zeek) serve better; each cut table says how many rows it had.
TOP_ROWS = 25  # servers and clients, by connections
SLOWEST_REQUESTS = 25  # HTTP requests by TTFB
TLS_CIPHERS = 20  # cipher suites (as the tls plot's MAX_CIPHERS)
TLS_SERVER_NAMES = 25  # SNI names
MISSED_REUSE_ROWS = 50  # missed-reuse events
ANOMALY_ROWS = 100  # anomaly rows (the counts by kind are always complete)
DEFAULT_TITLE = "pcapan report"

Formats = dict[str, Callable[[Any], str]]


def esc(value: object) -> str:
    """Any value as HTML text: control/format characters made visible, then ``& < > " '``
    escaped (safe in element content and in quoted attributes)."""
    return html.escape(facts.printable(value), quote=True)


def _pct(v: Any) -> str:
    return "-" if facts.format_value(v) == "-" else f"{float(v):.0%}"


def _ms(v: Any) -> str:
    return "-" if facts.format_value(v) == "-" else f"{float(v) * 1e3:.1f} ms"


def _g(v: Any) -> str:
    return "-" if facts.format_value(v) == "-" else f"{float(v):g}"


SERVER_FORMATS: Formats = {
    "reuse": _pct,
    "budget RTTs (median)": _g,
    "budget (median)": _ms,
    "initial RTT (median)": _ms,
}
CLIENT_FORMATS: Formats = {"reuse": _pct}
REQUEST_FORMATS: Formats = {"ttfb_s": _ms}


def table(
    df: pd.DataFrame, caption: str, formats: Formats | None = None, *, total: int | None = None
) -> str:
    """``df`` as an HTML table; ``total``: the rows before the cut, named in the caption."""
    formats = formats or {}
    if total is not None and total > len(df):
        caption = f"{caption} (first {len(df):,} of {total:,})"
    head = "".join(f"<th>{esc(c)}</th>" for c in df.columns)
    numeric = [df[c].dtype.kind in "iuf" or c in formats for c in df.columns]
    body = []
    for row in df.itertuples(index=False):
        cells = []
        for c, v, num in zip(df.columns, row, numeric, strict=True):
            text = formats.get(c, facts.format_value)(v)
            cells.append(f'<td class="num">{esc(text)}</td>' if num else f"<td>{esc(text)}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    return (
        f"<table><caption>{esc(caption)}</caption><thead><tr>{head}</tr></thead>"
        f"<tbody>{''.join(body)}</tbody></table>\n"
    )


def _rows_table(
    rows: Iterable[tuple[str, ...]], caption: str, header: tuple[str, ...] | None = None
) -> str:
    head = (
        f"<thead><tr>{''.join(f'<th>{esc(h)}</th>' for h in header)}</tr></thead>" if header else ""
    )
    body = "".join("<tr>" + "".join(f"<td>{esc(v)}</td>" for v in r) + "</tr>" for r in rows)
    return f"<table><caption>{esc(caption)}</caption>{head}<tbody>{body}</tbody></table>\n"


def _section(anchor: str, title: str, *parts: str) -> str:
    return f'<section id="{anchor}"><h2>{esc(title)}</h2>\n{"".join(parts)}</section>\n'


def _note(text: str) -> str:
    return f'<p class="note">{esc(text)}</p>\n'


def _tables(*parts: str) -> str:
    return f'<div class="tables">{"".join(parts)}</div>\n'


def _header(res: Result, s: dict[str, Any], title: str) -> str:
    import pandas as pd

    sources = ", ".join(str(x) for x in s.get("sources", [])) or "(no source)"
    span = ""
    if s.get("frames"):
        first = pd.Timestamp(s.get("first_ts_ns", 0), unit="ns", tz="UTC")
        last = pd.Timestamp(s.get("last_ts_ns", 0), unit="ns", tz="UTC")
        span = f" \u2014 {first:%Y-%m-%d %H:%M:%S} to {last:%Y-%m-%d %H:%M:%S} UTC"
    nav = "".join(
        f'<a href="#{a}">{esc(t)}</a>'
        for a, t in (
            ("findings", "Findings"),
            ("summary", "Summary"),
            ("plots", "Plots"),
            ("servers", "Servers"),
            ("http", "HTTP"),
            ("tls", "TLS"),
            ("reuse", "Missed reuse"),
            ("anomalies", "Anomalies"),
        )
    )
    return (
        f'<h1>{esc(title)}</h1>\n<p class="sub">{esc(sources)}{esc(span)}</p>\n<nav>{nav}</nav>\n'
    )


def _summary(s: dict[str, Any]) -> str:
    parts = [_rows_table(facts.summary_rows(s), "capture")]
    states = facts.state_rows(s)
    if states:
        parts.append(
            _rows_table(
                states, "connection states / services", ("conn_state", "count", "service", "count")
            )
        )
    warn = "".join(f'<li class="warn">{esc(w)}</li>' for w in s.get("warnings", []))
    return _section("summary", "Summary", _tables(*parts), f"<ul>{warn}</ul>\n" if warn else "")


def _plots(plots: list[figures.Plot]) -> str:
    parts = []
    for p in plots:
        if p.data_uri is not None:
            # The URI is base64 from svg_data_uri; escaping it changes nothing and keeps the rule.
            parts.append(
                f'<figure id="plot-{esc(p.kind)}"><img alt="{esc(p.kind)} plot" src="{esc(p.data_uri)}">'
                f"<figcaption>{esc(p.caption)}</figcaption></figure>\n"
            )
        else:
            parts.append(
                f'<p class="note" id="plot-{esc(p.kind)}">{esc(p.kind)}: skipped ({esc(p.skipped)})</p>\n'
            )
    return _section("plots", "Plots", *parts)


def _servers(res: Result) -> str:
    if not len(res.servers):
        return _section("servers", "Servers and clients", _note("no TCP connections"))
    return _section(
        "servers",
        "Servers and clients",
        table(
            facts.view(facts.top_servers(res, TOP_ROWS), facts.SERVER_COLUMNS_REPORT),
            "servers (client-server pairs) by connections",
            SERVER_FORMATS,
            total=len(res.servers),
        ),
        table(
            facts.view(facts.top_clients(res, TOP_ROWS), facts.CLIENT_COLUMNS),
            "clients by connections",
            CLIENT_FORMATS,
            total=len(res.clients),
        ),
    )


def _http(res: Result) -> str:
    if not len(res.http):
        return _section("http", "HTTP", _note("no HTTP requests"))
    answered = int(res.http.ttfb_s.notna().sum())
    return _section(
        "http",
        "HTTP",
        table(facts.status_counts(res), "responses by status code"),
        table(
            facts.slowest_requests(res, SLOWEST_REQUESTS),
            "slowest requests (time to first byte)",
            REQUEST_FORMATS,
            total=answered,
        ),
    )


def _tls(res: Result) -> str:
    if not len(res.tls):
        return _section("tls", "TLS", _note("no TLS handshakes"))
    ciphers = int(res.tls.cipher.nunique())
    names = int(res.tls.server_name.fillna("(none)").nunique())
    return _section(
        "tls",
        "TLS",
        _tables(
            table(facts.tls_versions(res), "versions"),
            table(facts.tls_resumption(res), "resumption"),
            _alpn(res),
        ),
        _tables(
            table(facts.tls_ciphers(res, TLS_CIPHERS), "selected cipher suites", total=ciphers),
            table(facts.tls_server_names(res, TLS_SERVER_NAMES), "server names (SNI)", total=names),
        ),
    )


def _alpn(res: Result) -> str:
    alpn = facts.tls_alpn(res)
    if not len(alpn):
        return _note("ALPN: no protocol offered or selected")
    return table(alpn, "ALPN (offered / selected)")


def _missed(res: Result) -> str:
    m = res.missed_reuse
    if not len(m):
        return _section(
            "reuse",
            "Missed reuse",
            _note("none: no new connection opened while an idle one to the same server was open"),
        )
    return _section(
        "reuse",
        "Missed reuse",
        table(
            m.head(MISSED_REUSE_ROWS),
            f"{len(m):,} new connections an open one could have carried",
            total=len(m),
        ),
    )


# The findings table's columns the report shows (evidence uids are for the exports).
FINDING_COLUMNS = [
    "severity",
    "kind",
    "server",
    "client",
    "count",
    "cost_s",
    "cost_rtts",
    "summary",
    "advice",
]


def _findings(res: Result) -> str:
    """The findings first: what is wrong, before the tables that show it (issue 18)."""
    from pcapan.frames.findings import severity_counts

    f = res.findings
    if not len(f):
        return _section("findings", "Findings", _note("none at the default thresholds"))
    counts = ", ".join(f"{n:,} {sev}" for sev, n in severity_counts(f).items())
    return _section(
        "findings", "Findings", table(f[FINDING_COLUMNS], f"{len(f):,} findings: {counts}")
    )


def _anomalies(res: Result) -> str:
    a = res.anomalies
    if not len(a):
        return _section("anomalies", "Anomalies", _note("none"))
    return _section(
        "anomalies",
        "Anomalies",
        table(facts.anomaly_counts(res), "by kind"),
        table(a.head(ANOMALY_ROWS), "rows", total=len(a)),
    )


def render(res: Result, *, title: str | None = None, plots: bool = True) -> str:
    """The report of ``res`` as one HTML document (a str)."""
    from pcapan import __version__

    s = res.summary()
    title = title or DEFAULT_TITLE
    drawn = figures.draw_all(res) if plots else []
    parts = [
        template.HEAD.format(
            csp=esc(template.CONTENT_SECURITY_POLICY),
            version=esc(__version__),
            title=esc(title),
            style=template.STYLE,
        ),
        _header(res, s, title),
        _findings(res),
        _summary(s),
        _plots(drawn) if plots else _section("plots", "Plots", _note("not drawn (--no-plots)")),
        _servers(res),
        _http(res),
        _tls(res),
        _missed(res),
        _anomalies(res),
        template.FOOT.format(version=esc(__version__)),
    ]
    return "".join(parts)
