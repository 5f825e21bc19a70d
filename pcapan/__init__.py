"""pcapan: packet-capture analysis for TCP connections, HTTP/1.1 reuse and pipelining, TLS and RTT.

``pcapan.analyze(path)`` returns a :class:`Result` whose tables are pandas DataFrames.
Heavy imports (pandas, matplotlib, scapy) wait until they are needed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pcapan import _build

# Before any other pcapan module loads: the compiled core, or the source when told to
# (PCAPAN_PURE=1) or when a compiled module's source changed since it was built.
_build.select()

__version__ = "0.1.0"
__all__ = [
    "Analyzer",
    "LiveCapture",
    "Result",
    "analyze",
    "extract",
    "live",
    "live_snapshots",
    "__version__",
]

if TYPE_CHECKING:
    from pcapan.api import Analyzer, Result, analyze, extract
    from pcapan.live import LiveCapture, live_snapshots


def __getattr__(name: str) -> Any:
    if name in ("Analyzer", "Result", "analyze", "extract"):
        from pcapan import api

        return getattr(api, name)
    if name == "live":
        # The package pcapan.live is callable: pcapan.live(iface, ...) -> Result.
        import importlib

        return importlib.import_module("pcapan.live")
    if name in ("live_snapshots", "LiveCapture"):
        from pcapan import live

        return getattr(live, name)
    raise AttributeError(name)
