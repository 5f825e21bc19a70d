"""Times for people: a capture's span and durations in units a reader takes in at a glance
(``repr(Result)``; usable by any view of a capture: report, terminal)."""

from __future__ import annotations


def span(first_ns: int | None, last_ns: int | None) -> str:
    """``first .. last UTC (duration)`` of a capture, or ``-`` when it had no frame."""
    import datetime as dt

    if first_ns is None or last_ns is None:
        return "-"

    def stamp(ns: int) -> str:
        try:
            t = dt.datetime.fromtimestamp(ns // 1_000_000_000, dt.UTC)
        except (OverflowError, ValueError, OSError):  # past year 9999: a corrupt timestamp
            return f"{ns} ns"
        return f"{t:%Y-%m-%d %H:%M:%S}.{ns % 1_000_000_000 // 1000:06d}"

    return f"{stamp(first_ns)} .. {stamp(last_ns)} UTC ({duration((last_ns - first_ns) / 1e9)})"


def duration(s: float) -> str:
    """Seconds, and past two minutes also in larger units: 12.345 s, 205.098 s = 3 min 25 s,
    7,200.000 s = 2 h 0 min, ... = 3 d 4 h, ... = 5.6 years (two captures years apart)."""
    m, h, d = s / 60, s / 3600, s / 86400
    if s < 120:
        return f"{s:.3f} s"
    if h < 2:
        human = f"{int(m)} min {int(s % 60)} s"
    elif d < 2:
        human = f"{int(h)} h {int(m % 60)} min"
    elif d < 730:
        human = f"{int(d)} d {int(h % 24)} h"
    else:
        human = f"{d / 365.25:.1f} years"
    return f"{s:,.3f} s = {human}"
