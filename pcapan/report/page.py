"""The HTML report: one self-contained page (no script, nothing fetched) built from the facts
and the plots. Every value goes through :func:`esc` (``facts.printable`` then ``html.escape``
with quotes) before it reaches the page; the only unescaped strings are this module's own
markup and the base64 data URIs of the plots (``[A-Za-z0-9+/=]`` and a fixed prefix)."""

from __future__ import annotations

import html
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from pcapan.config import REPORT_CELL_CHARS
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
    df: pd.DataFrame,
    caption: str,
    formats: Formats | None = None,
    *,
    total: int | None = None,
    csv: str | None = None,
) -> str:
    """``df`` as an HTML table; ``total``: the rows before the cut, named in the caption ("top
    25 of 12,345"); ``csv``: the relative link to the full table's CSV file, put in the caption."""
    formats = formats or {}
    link = ""
    if total is not None and total > len(df):
        caption = f"{caption} (top {len(df):,} of {total:,})"
        if csv:
            link = f' <a class="csv" href="{esc(csv)}">all {total:,} rows (CSV)</a>'
    elif csv:
        link = f' <a class="csv" href="{esc(csv)}">CSV</a>'
    head = "".join(f"<th>{esc(c)}</th>" for c in df.columns)
    numeric = [df[c].dtype.kind in "iuf" or c in formats for c in df.columns]
    body = []
    for row in df.itertuples(index=False):
        cells = []
        for c, v, num in zip(df.columns, row, numeric, strict=True):
            text = _cut(formats.get(c, facts.format_value)(v))
            cells.append(f'<td class="num">{esc(text)}</td>' if num else f"<td>{esc(text)}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    return (
        f"<table><caption>{esc(caption)}{link}</caption><thead><tr>{head}</tr></thead>"
        f"<tbody>{''.join(body)}</tbody></table>\n"
    )


def _cut(text: str) -> str:
    """A cell's text, at most REPORT_CELL_CHARS (the CSV beside the page has it whole)."""
    if len(text) <= REPORT_CELL_CHARS:
        return text
    return text[: REPORT_CELL_CHARS - 1] + "\u2026"


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


def _header(res: Result, s: dict[str, Any], title: str, *, findings: bool = False) -> str:
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
            *((("findings", "Findings"),) if findings else ()),
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


def _summary(res: Result, s: dict[str, Any], files: str | None = None) -> str:
    parts = [_rows_table(facts.summary_rows(s), "capture")]
    states = facts.state_rows(s)
    if states:
        parts.append(
            _rows_table(
                states, "connection states / services", ("conn_state", "count", "service", "count")
            )
        )
    warn = "".join(f'<li class="warn">{esc(w)}</li>' for w in s.get("warnings", []))
    full = (
        f'<p class="note">Every table in full, as CSV: <a href="{esc(files)}/">{esc(files)}/</a> '
        "(the page shows the top rows of each).</p>\n"
        if files
        else ""
    )
    return _section(
        "summary",
        "Summary",
        _tables(*parts),
        _per_file(res, s),
        f"<ul>{warn}</ul>\n" if warn else "",
        full,
    )


def _plots(plots: list[figures.Plot]) -> str:
    parts = []
    for p in plots:
        if p.data_uri is not None:
            # The URI is base64 from image_data_uri; escaping it changes nothing and keeps the rule.
            parts.append(
                f'<figure id="plot-{esc(p.kind)}"><img alt="{esc(p.kind)} plot" src="{esc(p.data_uri)}">'
                f"<figcaption>{esc(p.caption)}</figcaption></figure>\n"
            )
        else:
            parts.append(
                f'<p class="note" id="plot-{esc(p.kind)}">{esc(p.kind)}: skipped ({esc(p.skipped)})</p>\n'
            )
    return _section("plots", "Plots", *parts)


def _csv(files: str | None, table_name: str) -> str | None:
    """The relative link to a full table's CSV in the folder beside the page, if written."""
    return f"{files}/{table_name}.csv" if files else None


# -- findings --------------------------------------------------------------------------------
# The findings table comes first on the page, its top rows (the whole of it in the CSV folder).
FINDINGS_ROWS = 50


def _per_file(res: Result, s: dict[str, Any]) -> str:
    """One row per capture file when several were analysed together: its span, frames, and the
    connections, HTTP requests and TLS handshakes read from it (the tables' source column)."""
    import pandas as pd

    spans = s.get("source_spans") or []
    if len(spans) < 2:
        return ""

    import numpy as np

    bounds = sorted((int(p["first_ts_ns"]), int(p["last_ts_ns"])) for p in spans)
    disjoint = all(a[1] < b[0] for a, b in zip(bounds, bounds[1:], strict=False))

    def per_source(df: pd.DataFrame) -> dict[str, int]:
        """Rows per file: by first timestamp within the file's span when the files do not
        overlap in time (the connections table's source is the file being read when the
        connection ended, which after a FIN's linger can be the next file), else by source."""
        if not len(df):
            return {}
        if disjoint:
            ts = pd.to_datetime(df.ts, utc=True).astype("int64").to_numpy()
            return {
                str(p["source"]): int(
                    np.count_nonzero((ts >= int(p["first_ts_ns"])) & (ts <= int(p["last_ts_ns"])))
                )
                for p in spans
            }
        return {str(k): int(v) for k, v in df.source.value_counts().items()}

    conns, reqs, hs = per_source(res.connections), per_source(res.http), per_source(res.tls)
    rows = []
    for p in spans:
        name = str(p["source"])
        a = pd.Timestamp(int(p["first_ts_ns"]), unit="ns", tz="UTC")
        b = pd.Timestamp(int(p["last_ts_ns"]), unit="ns", tz="UTC")
        rows.append(
            (
                name,
                f"{a:%Y-%m-%d %H:%M:%S}",
                f"{b:%Y-%m-%d %H:%M:%S}",
                f"{(int(p['last_ts_ns']) - int(p['first_ts_ns'])) / 1e9:.3f} s",
                f"{int(p.get('frames', 0)):,}",
                f"{conns.get(name, 0):,}",
                f"{reqs.get(name, 0):,}",
                f"{hs.get(name, 0):,}",
            )
        )
    return _rows_table(
        rows,
        "per capture file (time axes count each file's own time; pauses between files are cut "
        "out and marked)",
        (
            "file",
            "first packet (UTC)",
            "last packet (UTC)",
            "duration",
            "frames",
            "connections",
            "HTTP requests",
            "TLS handshakes",
        ),
    )


def _servers(res: Result, files: str | None = None) -> str:
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
            csv=_csv(files, "servers"),
        ),
        table(
            facts.view(facts.top_clients(res, TOP_ROWS), facts.CLIENT_COLUMNS),
            "clients by connections",
            CLIENT_FORMATS,
            total=len(res.clients),
            csv=_csv(files, "clients"),
        ),
    )


def _http(res: Result, files: str | None = None) -> str:
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
            csv=_csv(files, "http"),
        ),
    )


def _tls(res: Result, files: str | None = None) -> str:
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
            table(
                facts.tls_ciphers(res, TLS_CIPHERS),
                "selected cipher suites",
                total=ciphers,
                csv=_csv(files, "tls"),
            ),
            table(
                facts.tls_server_names(res, TLS_SERVER_NAMES),
                "server names (SNI)",
                total=names,
                csv=_csv(files, "tls"),
            ),
        ),
    )


def _alpn(res: Result) -> str:
    alpn = facts.tls_alpn(res)
    if not len(alpn):
        return _note("ALPN: no protocol offered or selected")
    return table(alpn, "ALPN (offered / selected)")


def _missed(res: Result, files: str | None = None) -> str:
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
            csv=_csv(files, "missed_reuse"),
        ),
    )


# The findings table's columns the report shows (evidence uids are for the exports).
FINDING_COLUMNS = [
    "severity",
    "kind",
    "server",
    "client",
    "occurrences",
    "cost_s",
    "cost_rtts",
    "summary",
    "advice",
]


def _findings(res: Result, files: str | None = None) -> str:
    """The findings first: what is wrong, before the tables that show it (issue 18)."""
    from pcapan.frames.findings import severity_counts

    f = res.findings
    if not len(f):
        return _section("findings", "Findings", _note("none at the default thresholds"))
    counts = ", ".join(f"{n:,} {sev}" for sev, n in severity_counts(f).items())
    return _section(
        "findings",
        "Findings",
        table(
            f[FINDING_COLUMNS].head(FINDINGS_ROWS),
            f"{len(f):,} findings: {counts}",
            total=len(f),
            csv=_csv(files, "findings"),
        ),
    )


def _anomalies(res: Result, files: str | None = None) -> str:
    a = res.anomalies
    if not len(a):
        return _section("anomalies", "Anomalies", _note("none"))
    return _section(
        "anomalies",
        "Anomalies",
        table(facts.anomaly_counts(res), "by kind"),
        table(a.head(ANOMALY_ROWS), "rows", total=len(a), csv=_csv(files, "anomalies")),
    )


def render(
    res: Result, *, title: str | None = None, plots: bool = True, files: str | None = None
) -> str:
    """The report of ``res`` as one HTML document (a str). ``files``: the folder beside the page
    (relative name) holding every table as CSV, linked from the cut tables; None: no links."""
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
        _header(res, s, title, findings=True),
        _findings(res, files),
        _summary(res, s, files),
        _plots(drawn) if plots else _section("plots", "Plots", _note("not drawn (--no-plots)")),
        _servers(res, files),
        _http(res, files),
        _tls(res, files),
        _missed(res, files),
        _anomalies(res, files),
        template.FOOT.format(version=esc(__version__)),
    ]
    return "".join(parts)
