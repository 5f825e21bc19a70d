"""Shared figure plumbing: matplotlib is imported here, inside functions only, and every figure
is drawn by the Agg canvas (no pyplot, no global backend switch, no GUI)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pcapan.errors import PcapanError

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

# Figure width in inches: fits a README column and a laptop screen at 100 dpi.
FIG_WIDTH_IN = 10.0
# Height of one row of subplots in inches.
ROW_HEIGHT_IN = 3.6
# Longest tick label (URIs, server names, cipher names) before it is cut with an ellipsis:
# longer labels squeeze the plotting area to nothing.
MAX_LABEL_CHARS = 48
# Colours of the round-trip phases, close to a browser's network panel (Chrome DevTools).
PHASE_COLORS = {
    "TCP": "#f39c12",  # connection: orange
    "TLS": "#9b59b6",  # SSL: purple
    "request": "#1abc9c",  # request sent: teal
    "wait": "#27ae60",  # waiting (TTFB): green
    "download": "#2e86de",  # content download: blue
}
NO_DATA_TEXT = "no data"
# Values (or counts) whose largest is this many times the smallest span decades: drawn on a
# log axis, where a bar at 1 and one at 5,000 (or 5,000 connections and 3) are both visible.
LOG_SPAN = 50.0
# A bar on a log axis spans value / factor .. value * factor: the same width on the page for
# every value, narrow enough that neighbours (1 and 2) do not touch.
LOG_BAR_FACTOR = 1.2
# Most integer values that each get a tick of their own on a count axis; past it a few
# whole-number ticks are chosen (30 ticks of "5000" would overprint).
MAX_CATEGORY_TICKS = 20
# Width of one character of a "small" (8.3 pt) tick label in inches, a little generous: used to
# decide before drawing whether category labels fit level or must be turned.
CHAR_IN = 0.075


def new_figure(
    nrows: int = 1,
    ncols: int = 1,
    *,
    height: float | None = None,
    width: float = FIG_WIDTH_IN,
    title: str | None = None,
) -> tuple[Figure, list[Axes]]:
    """A Figure on the Agg canvas with ``nrows x ncols`` axes (flattened, row by row)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(
        figsize=(width, height if height is not None else ROW_HEIGHT_IN * nrows),
        layout="constrained",
    )
    FigureCanvasAgg(fig)
    axes = list(fig.subplots(nrows, ncols, squeeze=False).ravel())
    if title:
        fig.suptitle(title)
    return fig, axes


def rows_figure(
    ratios: list[float], *, height: float, width: float = FIG_WIDTH_IN, title: str | None = None
) -> tuple[Figure, list[Axes]]:
    """A Figure on the Agg canvas with one full-width axes per row, row heights in ``ratios``
    (rows of bars grow with their number of bars, so their labels never overprint)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)
    axes = list(fig.subplots(len(ratios), 1, squeeze=False, height_ratios=ratios).ravel())
    if title:
        fig.suptitle(title)
    return fig, axes


def two_row_figure(
    top: int, *, height: float, width: float = FIG_WIDTH_IN, title: str | None = None
) -> tuple[Figure, list[Axes], Axes]:
    """A Figure on the Agg canvas: ``top`` axes side by side above one wide axes, each row laid
    out on its own (long tick labels below do not squeeze the row above)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)
    upper, lower = fig.subfigures(2, 1)
    axes = list(upper.subplots(1, top, squeeze=False).ravel())
    if title:
        fig.suptitle(title)
    return fig, axes, lower.subplots()


def integer_ticks(ax: Axes, axis: str = "y") -> None:
    """Counts: ticks on whole numbers only."""
    from matplotlib.ticker import MaxNLocator

    (ax.yaxis if axis == "y" else ax.xaxis).set_major_locator(MaxNLocator(integer=True))


def count_bars(ax: Axes, counts: pd.Series, *, xlabel: str, ylabel: str, empty: str) -> None:
    """A bar per integer value in ``counts`` (index: the value, e.g. requests per connection;
    values: how many), ``empty`` said when there is none. Readable at any size: a tick per value
    only while they fit (else a few whole-number ticks); a log x axis when the values span
    decades (bars at 1 and 5,000 both visible, each as wide on the page), a log y axis when the
    counts do."""
    import numpy as np

    if not len(counts):
        no_data(ax, empty)
        return
    x = counts.index.to_numpy(dtype=float)
    h = counts.to_numpy(dtype=float)
    pos = x[x > 0]
    log_x = len(pos) > 1 and pos.max() / pos.min() >= LOG_SPAN
    if log_x:
        # symlog: a linear stretch below 1 keeps a 0 value on the axis; widths are a fixed
        # factor of the value, so every bar has the same width on the page.
        ax.set_xscale("symlog", linthresh=1.0, linscale=0.5)
        left = np.where(x > 0, x / LOG_BAR_FACTOR, x - 0.3)
        right = np.where(x > 0, x * LOG_BAR_FACTOR, x + 0.3)
        ax.bar(left, h, width=right - left, align="edge", color="#2e86de", label=ylabel)
    else:
        ax.bar(x, h, width=0.8, color="#2e86de", label=ylabel)
        if len(x) <= MAX_CATEGORY_TICKS and x.max() - x.min() <= 2 * MAX_CATEGORY_TICKS:
            ax.set_xticks(x)
        else:
            integer_ticks(ax, "x")
    nz = h[h > 0]
    if len(nz) and nz.max() / nz.min() >= LOG_SPAN:
        ax.set_yscale("log")
    else:
        integer_ticks(ax)
    ax.set_xlabel(xlabel + (" (log scale)" if log_x else ""))
    ax.set_ylabel(ylabel + (" (log scale)" if ax.get_yscale() == "log" else ""))


def category_ticks(ax: Axes, labels: list[str], *, axis: str = "x", share: float = 1.0) -> None:
    """Tick labels for bars at 0..n-1 that never overprint: kept level while the longest fits
    its slot (``share``: the axes' part of the figure width), else turned 90 degrees (each label
    then needs only a line's height)."""
    import numpy as np

    pos = np.arange(len(labels))
    if axis == "y":
        ax.set_yticks(pos, labels, fontsize="small")
        return
    slot_in = FIG_WIDTH_IN * share * 0.8 / max(len(labels), 1)
    longest = max((len(t) for t in labels), default=0)
    if longest * CHAR_IN <= slot_in:
        ax.set_xticks(pos, labels, fontsize="small")
    else:
        ax.set_xticks(pos, labels, fontsize="small", rotation=90)


def no_data(ax: Axes, what: str = NO_DATA_TEXT) -> None:
    """Mark an empty axes with a centred note (an empty capture is data, not an error)."""
    ax.text(0.5, 0.5, what, ha="center", va="center", transform=ax.transAxes, color="0.4")
    ax.set_xticks([])
    ax.set_yticks([])


def empty_figure(title: str, note: str, *, height: float = 2.4) -> Figure:
    """One axes with one clear note, frame hidden: a plot with nothing to show for this capture
    says so once, instead of drawing panels that are all empty."""
    fig, (ax,) = new_figure(1, 1, height=height, title=title)
    no_data(ax, note)
    for side in ax.spines.values():
        side.set_visible(False)
    return fig


def short(text: object, limit: int = MAX_LABEL_CHARS) -> str:
    s = "" if text is None else str(text)
    return s if len(s) <= limit else s[: limit - 1] + "\u2026"


def server_label(host: object, port: object, name: object = None) -> str:
    """``name (host:port)`` or ``host:port``; IPv6 addresses in brackets."""
    h = str(host)
    hp = f"[{h}]:{port}" if ":" in h else f"{h}:{port}"
    if not isinstance(name, str) or not name or name in (h, hp):
        return hp
    return f"{name} ({hp})"


def check_limit(limit: int | None) -> int | None:
    if limit is not None and limit < 1:
        raise PcapanError(f"limit must be at least 1 (got {limit})")
    return limit
