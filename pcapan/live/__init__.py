"""Live capture: sniff an interface and analyse as the frames arrive.

``pcapan.live("eth0", duration_s=10)`` returns a :class:`~pcapan.api.Result` like
``pcapan.analyze``; ``pcapan.live_snapshots(...)`` yields a :class:`Snapshot` every interval;
:class:`LiveCapture` opens the socket first and runs later (in a thread, say). The module itself
is callable, so that ``pcapan.live(...)`` keeps working once this package has been imported
(the import binds ``pcapan.live`` to the package).
"""

from __future__ import annotations

import os
import sys
import types
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from pcapan.config import LIVE_DASHBOARD_REFRESH_S
from pcapan.live.session import LiveCapture, LiveStats, RotateSpec, Snapshot

if TYPE_CHECKING:
    from pcapan.api import Result

__all__ = ["LiveCapture", "LiveStats", "RotateSpec", "Snapshot", "live", "live_snapshots"]


def live(
    iface: str,
    *,
    bpf_filter: str | None = None,
    duration_s: float | None = None,
    count: int | None = None,
    write: str | os.PathLike[str] | None = None,
    output: str | os.PathLike[str] | None = None,
    fmt: str = "csv",
    interval_s: float = LIVE_DASHBOARD_REFRESH_S,
    rotate: str | RotateSpec | None = None,
    on_snapshot: Callable[[Snapshot], None] | None = None,
    dashboard: bool = False,
    **options: Any,
) -> Result:
    """Capture on ``iface`` until Ctrl-C, SIGTERM, ``duration_s`` or ``count`` frames; return
    the tables of everything captured (open connections flushed). ``write`` saves the frames
    (pcapng, or pcap for a ``.pcap`` name) so that ``pcapan.analyze(write)`` gives the same
    tables; ``output`` writes them as ``fmt`` when the capture ends (or in parts, ``rotate``).
    Other options: ``safe_csv``, ``idle_timeout_s``, ``max_half_open``, ``promisc``, ``analyzer``."""
    cap = LiveCapture(
        iface,
        bpf_filter=bpf_filter,
        duration_s=duration_s,
        count=count,
        write=write,
        output=output,
        fmt=fmt,
        interval_s=interval_s,
        rotate=rotate,
        **options,
    )
    return cap.run(on_snapshot=on_snapshot, dashboard=dashboard)


def live_snapshots(iface: str, *, tables: bool = True, **options: Any) -> Iterator[Snapshot]:
    """Capture as :func:`live` does, yielding a :class:`Snapshot` every ``interval_s`` (with
    the tables so far unless ``tables=False``) and a last one with ``final=True`` and the
    finished Result. Breaking out of the loop stops the capture."""
    return LiveCapture(iface, **options).snapshots(tables=tables)


class _CallableModule(types.ModuleType):
    def __call__(self, iface: str, **options: Any) -> Result:
        return live(iface, **options)


sys.modules[__name__].__class__ = _CallableModule
