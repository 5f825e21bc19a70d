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
    values: how many), each value a tick; ``empty`` is said when there is none."""
    if not len(counts):
        no_data(ax, empty)
        return
    ax.bar(counts.index.to_numpy(), counts.to_numpy(), width=0.8, color="#2e86de", label=ylabel)
    ax.set_xticks(counts.index.to_numpy())
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    integer_ticks(ax)


def no_data(ax: Axes, what: str = NO_DATA_TEXT) -> None:
    """Mark an empty axes with a centred note (an empty capture is data, not an error)."""
    ax.text(0.5, 0.5, what, ha="center", va="center", transform=ax.transAxes, color="0.4")
    ax.set_xticks([])
    ax.set_yticks([])


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
