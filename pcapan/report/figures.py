"""The report's plots: drawn through ``Result.plot`` (pcapan.plot is a sibling layer, reached
through the result, not imported) and embedded as data: URIs: SVG when the figure is small
(few elements, a file under SVG_MAX_BYTES), else rasterised to PNG, so that a plot of 200,000
RTT samples or 60 waterfall rows costs a bounded ~100-300 KB, not tens of megabytes.

An SVG shown through <img> is an image document: browsers never run script in it, whatever its
text says, and matplotlib escapes its text anyway (``&lt;`` in comments and <text>). A plot that
has nothing to show for this capture is skipped with the reason; one that fails is skipped with
the error; neither stops the report."""

from __future__ import annotations

import base64
import io
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pcapan.errors import PcapanError

if TYPE_CHECKING:
    from pcapan.api import Result

# The plots in the report, in order, with what each shows (the figure caption).
PLOTS: tuple[tuple[str, str], ...] = (
    (
        "waterfall",
        "Waterfall: TCP and TLS handshakes, request, wait (TTFB) and download per request, "
        "like a browser's network panel (the slowest requests when not all fit: see its title).",
    ),
    (
        "budget",
        "Round-trip budget: TCP, TLS and wait to the first response byte, mean per server and per budget label.",
    ),
    (
        "rtt",
        "Round-trip times: CDF and histogram per direction; handshake RTT against the median data RTT.",
    ),
    (
        "reuse",
        "Connection reuse: requests per connection; open connections over time per client-server pair, "
        "missed reuse marked.",
    ),
    (
        "pipelining",
        "HTTP pipelining: requests per pipeline depth; head-of-line wait per pipelined response.",
    ),
    (
        "tls",
        "TLS: versions, selected cipher suites by strength, ALPN offered vs selected, resumption modes.",
    ),
    ("io", "IO graph: TCP payload bytes per second over the whole capture."),
    ("timeseq", "Time-sequence graph of the connection with the most payload (tcptrace style)."),
)
# matplotlib settings while saving: text as paths (no font needed by the viewer, so nothing to
# fetch) and a fixed hash salt (same capture, same element ids, same file).
SVG_RC = {"svg.fonttype": "path", "svg.hashsalt": "pcapan-report"}
# A figure with at most this many drawn elements (bars, markers, line vertices) is tried as SVG
# (sharp at any zoom); an SVG above SVG_MAX_BYTES, or a denser figure, is a PNG instead.
SVG_MAX_ELEMENTS = 1500
SVG_MAX_BYTES = 200_000
TEXT_WEIGHT = 20
# Resolution of the PNGs: 100 dpi gives 1000 px across at the plots' 10 in width, the width of
# the report's column; a PNG of 60 waterfall rows is ~150 KB.
PNG_DPI = 100


@dataclass(frozen=True)
class Plot:
    """One plot of the report: an SVG or PNG data URI, or the reason it is not there."""

    kind: str
    caption: str
    data_uri: str | None = None
    skipped: str | None = None


def _biggest_uid(res: Result) -> str | None:
    c = res.connections
    if not len(c):
        return None
    payload = (c.orig_bytes.fillna(0) + c.resp_bytes.fillna(0)).astype("int64")
    if int(payload.max()) <= 0:
        return None
    return str(c.uid[payload.idxmax()])


def missing_data(res: Result, kind: str) -> str | None:
    """Why ``kind`` has nothing to show for this capture, or None when it has data."""
    conns = res.connections
    if not len(conns):
        return "no TCP connections"
    if kind == "rtt" and not len(res.rtt):
        return "no round-trip samples"
    if kind == "budget" and not conns.budget_total_s.notna().any():
        return "no connection reached a first response byte"
    if kind == "reuse" and not (conns.requests.fillna(0) > 0).any():
        return "no HTTP requests"
    if kind == "pipelining" and not res.http.pipelined.fillna(False).astype(bool).any():
        return "no pipelined requests"
    if kind == "tls" and not len(res.tls):
        return "no TLS handshakes"
    if kind == "timeseq" and _biggest_uid(res) is None:
        return "no connection carried payload"
    return None


def svg_data_uri(fig: Any) -> str:
    """A matplotlib Figure as a base64 ``data:image/svg+xml`` URI (no creation date: the same
    capture gives the same report)."""
    import matplotlib

    buf = io.BytesIO()
    with matplotlib.rc_context(SVG_RC):
        fig.savefig(buf, format="svg", metadata={"Date": None})
    return "data:image/svg+xml;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def png_data_uri(fig: Any, dpi: int = PNG_DPI) -> str:
    """A matplotlib Figure as a base64 ``data:image/png`` URI (no software/date metadata)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, metadata={"Software": None})
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def elements(fig: Any) -> int:
    """How many things the figure draws: tick labels, patches (bars), line vertices and
    collection members (scatter points, vlines): what an SVG's size grows with."""
    n = 0
    for ax in fig.axes:
        # a tick label's glyphs (SVG text as paths) weigh about as much as TEXT_WEIGHT bars
        n += TEXT_WEIGHT * (len(ax.get_xticklabels()) + len(ax.get_yticklabels()))
        n += len(ax.patches)
        n += sum(len(line.get_xdata()) for line in ax.get_lines())
        for c in ax.collections:
            n += max(len(c.get_offsets()), len(c.get_paths()))
    return n


def image_data_uri(fig: Any) -> str:
    """SVG when the figure is small enough to stay sharp and light, else PNG."""
    if elements(fig) <= SVG_MAX_ELEMENTS:
        uri = svg_data_uri(fig)
        if len(uri) * 3 // 4 <= SVG_MAX_BYTES:
            return uri
    return png_data_uri(fig)


def draw(res: Result, kind: str, caption: str) -> Plot:
    """One plot for the report; never raises (a failure becomes the skip reason)."""
    reason = missing_data(res, kind)
    if reason is not None:
        return Plot(kind, caption, skipped=reason)
    try:
        fig = res.plot.timeseq(_biggest_uid(res) or "") if kind == "timeseq" else res.plot(kind)
        return Plot(kind, caption, data_uri=image_data_uri(fig))
    except PcapanError as exc:  # e.g. io/timeseq cannot re-read standard input
        return Plot(kind, caption, skipped=str(exc))
    except Exception as exc:  # a plot's bug must not cost the whole report
        return Plot(kind, caption, skipped=f"could not be drawn ({type(exc).__name__}: {exc})")


def draw_all(res: Result) -> list[Plot]:
    return [draw(res, kind, caption) for kind, caption in PLOTS]
