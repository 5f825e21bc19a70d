"""Capture time for time axes: seconds since each capture's start, with the pauses between
captures given to one analysis cut out and marked (two files read years apart would otherwise
put the data at both ends of a 1.6e11 ms axis)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pcapan.config import CAPTURE_GAP_S

if TYPE_CHECKING:
    import numpy as np
    from matplotlib.axes import Axes

    from pcapan.api import Result

# Width on the axis, as a share of the captured time, given to a cut-out pause: enough to see
# the marker between the two sides, small enough not to look like captured time.
GAP_AXIS_SHARE = 0.02


@dataclass(frozen=True)
class Segment:
    """A stretch of captured time (ns): one capture, or overlapping/adjacent captures merged."""

    start_ns: int
    end_ns: int
    names: tuple[str, ...]


def spans(result: Result) -> list[tuple[str, int, int]]:
    """(source, first ns, last ns) per capture file: from the analysis' per-source statistics
    when it has them, else from the connections table's ``source`` column (first packet to
    last packet of its connections), else the whole capture as one span."""
    st = result.stats
    per = st.get("source_spans")
    if per:
        return [(str(p["source"]), int(p["first_ts_ns"]), int(p["last_ts_ns"])) for p in per]
    c = result.connections
    if len(c) and "source" in c:
        t0 = c.ts.astype("int64")
        t1 = t0 + (c.duration_s.fillna(0.0) * 1e9).astype("int64")
        g = (
            c.assign(_t0=t0, _t1=t1)
            .groupby(c.source.fillna(""), sort=False)
            .agg(a=("_t0", "min"), b=("_t1", "max"))
        )
        return [(str(s), int(a), int(b)) for s, a, b in zip(g.index, g.a, g.b, strict=True)]
    first, last = int(st.get("first_ts_ns") or 0), int(st.get("last_ts_ns") or 0)
    return [("", first, last)] if last >= first and (first or last) else []


def merge(parts: list[tuple[str, int, int]], gap_s: float = CAPTURE_GAP_S) -> list[Segment]:
    """Spans sorted by start and merged where they overlap or the pause is at most ``gap_s``."""
    out: list[Segment] = []
    for name, a, b in sorted(parts, key=lambda p: (p[1], p[2])):
        if out and a - out[-1].end_ns <= gap_s * 1e9:
            last = out[-1]
            out[-1] = Segment(last.start_ns, max(last.end_ns, b), (*last.names, name))
        else:
            out.append(Segment(a, b, (name,)))
    return out


def captured_s(parts: list[tuple[str, int, int]]) -> float:
    """Seconds of captured time: the union of the spans (pauses between captures left out)."""
    return sum(s.end_ns - s.start_ns for s in merge(parts, 0.0)) / 1e9


class CaptureClock:
    """Maps capture timestamps (ns) to axis seconds: 0 at the first capture's start; each later
    stretch of captured time starts where the previous one ended plus a small marked gap."""

    def __init__(self, segments: list[Segment]) -> None:
        import numpy as np

        self.segments = segments
        total = sum(s.end_ns - s.start_ns for s in segments) / 1e9
        gap = max(total * GAP_AXIS_SHARE, 1e-3)
        offsets, at = [], 0.0
        for s in segments:
            offsets.append(at)
            at += (s.end_ns - s.start_ns) / 1e9 + gap
        self._starts = np.array([s.start_ns for s in segments] or [0], dtype=np.int64)
        self._offsets = np.array(offsets or [0.0], dtype=np.float64)
        self.gap_axis_s = gap

    @classmethod
    def of(cls, result: Result) -> CaptureClock:
        return cls(merge(spans(result)))

    @property
    def origin_ns(self) -> int:
        return int(self._starts[0])

    def seconds(self, ns: Any) -> np.ndarray:
        """Axis seconds of timestamps ``ns`` (int64 ns array, or datetime64/Series)."""
        import numpy as np
        import pandas as pd

        if isinstance(ns, pd.Series) and ns.dtype.kind == "M":  # datetime64, with or without tz
            nat = ns.isna().to_numpy()
            a = ns.dt.tz_localize(None) if ns.dt.tz is not None else ns
            a = a.to_numpy(dtype="datetime64[ns]").astype(np.int64)
        elif (a := np.asarray(ns)).dtype.kind == "M":
            nat = np.isnat(a)
            a = a.astype("datetime64[ns]").astype(np.int64)
        else:
            nat = np.zeros(a.shape, dtype=bool)
            a = a.astype(np.int64)
        i = np.clip(np.searchsorted(self._starts, a, side="right") - 1, 0, None)
        out = self._offsets[i] + (a - self._starts[i]) / 1e9
        return np.where(nat, np.nan, out)

    def breaks(self) -> list[tuple[float, str]]:
        """(axis seconds, note) of each cut-out pause: where the next stretch starts."""
        out = []
        for prev, s, off in zip(self.segments, self.segments[1:], self._offsets[1:], strict=False):
            out.append((float(off), f"{_span_text((s.start_ns - prev.end_ns) / 1e9)} later"))
        return out

    def mark(self, ax: Axes, *, scale: float = 1.0, axis: str = "x") -> None:
        """Draw each cut-out pause on ``ax`` as a dashed line with its length ("+3.2 y later");
        ``scale``: axis units per second (1e3 for an axis in ms)."""
        for x, note in self.breaks():
            pos = (x - self.gap_axis_s / 2) * scale
            if axis == "x":
                ax.axvline(pos, color="0.3", linestyle=(0, (4, 3)), linewidth=1)
                ax.annotate(
                    note,
                    (pos, 1.0),
                    xycoords=("data", "axes fraction"),
                    xytext=(2, -2),
                    textcoords="offset points",
                    fontsize="x-small",
                    color="0.3",
                    va="top",
                    rotation=90,
                )
            else:
                ax.axhline(pos, color="0.3", linestyle=(0, (4, 3)), linewidth=1)


def _span_text(s: float) -> str:
    """A pause for people: 45 s, 12 min, 5.0 h, 3.2 d, 5.6 y."""
    for unit, size in (("y", 365.25 * 86400), ("d", 86400.0), ("h", 3600.0), ("min", 60.0)):
        if s >= size:
            return f"{s / size:.1f} {unit}"
    return f"{s:.0f} s"
