"""Figures of an analysis (matplotlib, imported only inside the plotting functions; every
figure is drawn by the Agg canvas, no pyplot). Each plot is a function returning a
``matplotlib.figure.Figure``; ``Result.plot.<kind>(**options)`` calls them for a Result.

Kinds: rtt, budget, reuse, pipelining, tls, waterfall (from the tables) and timeseq, io (which
re-read the capture for per-packet data)."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from pcapan.errors import PcapanError
from pcapan.plot.packets import Sources, io_graph, timeseq
from pcapan.plot.tls import tls
from pcapan.plot.waterfall import WATERFALL_CONNECTIONS, waterfall
from pcapan.plot.webperf import budget, pipelining, reuse, rtt

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from pcapan.api import Result

__all__ = [
    "KINDS",
    "PACKET_KINDS",
    "WATERFALL_CONNECTIONS",
    "Plotter",
    "budget",
    "io_graph",
    "pipelining",
    "reuse",
    "rtt",
    "timeseq",
    "tls",
    "waterfall",
]

# Plots drawn from the tables, and plots that re-read the capture.
TABLE_KINDS = ("rtt", "budget", "reuse", "pipelining", "tls", "waterfall")
PACKET_KINDS = ("timeseq", "io")
KINDS = (*TABLE_KINDS, *PACKET_KINDS)


class Plotter:
    """``Result.plot``: ``res.plot.waterfall(limit=10)``, ``res.plot.timeseq(uid)``,
    ``res.plot("tls")``. Packet plots read the capture the result came from (one file; pass
    ``source=`` otherwise)."""

    def __init__(self, result: Result) -> None:
        self._result = result

    def __call__(self, kind: str, **options: Any) -> Figure:
        if kind not in KINDS:
            raise PcapanError(f"unknown plot kind {kind!r} (kinds: {', '.join(KINDS)})")
        return getattr(self, kind)(**options)

    def rtt(self, **options: Any) -> Figure:
        """See :func:`pcapan.plot.webperf.rtt` (kind, by_server, limit, bins)."""
        return rtt(self._result, **options)

    def budget(self, **options: Any) -> Figure:
        """See :func:`pcapan.plot.webperf.budget` (limit)."""
        return budget(self._result, **options)

    def reuse(self, **options: Any) -> Figure:
        """See :func:`pcapan.plot.webperf.reuse` (limit)."""
        return reuse(self._result, **options)

    def pipelining(self, **options: Any) -> Figure:
        """See :func:`pcapan.plot.webperf.pipelining` (limit)."""
        return pipelining(self._result, **options)

    def tls(self, **options: Any) -> Figure:
        """See :func:`pcapan.plot.tls.tls` (limit)."""
        return tls(self._result, **options)

    def waterfall(self, **options: Any) -> Figure:
        """See :func:`pcapan.plot.waterfall.waterfall` (limit, uid, server, since, until, order)."""
        return waterfall(self._result, **options)

    def timeseq(
        self, uid: str | None = None, *, source: Sources | None = None, **options: Any
    ) -> Figure:
        """See :func:`pcapan.plot.packets.timeseq` (direction). Without ``uid``, the connection
        with the most payload, as ``pcapan plot --kind timeseq`` picks it."""
        if uid is None:
            from pcapan.frames.pick import biggest_connection

            uid = biggest_connection(self._result.connections)
            if uid is None:
                raise PcapanError("no TCP connection to draw")
        return timeseq(
            source if source is not None else self._sources(), uid, result=self._result, **options
        )

    def io(
        self, uid: str | None = None, *, source: Sources | None = None, **options: Any
    ) -> Figure:
        """See :func:`pcapan.plot.packets.io_graph` (bin_s)."""
        return io_graph(
            source if source is not None else self._sources(), uid, result=self._result, **options
        )

    def _sources(self) -> list[str]:
        names = list(self._result.stats.get("sources", []))
        if not names or any(n == "-" or not os.path.exists(n) for n in names):
            raise PcapanError(
                "packet plots re-read the capture: pass source= (the result's sources "
                f"{names or 'are unknown'} cannot be reopened)"
            )
        return names
