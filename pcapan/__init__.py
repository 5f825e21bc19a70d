"""pcapan: packet-capture analysis for TCP connections, HTTP/1.1 reuse and pipelining, TLS and RTT.

``pcapan.analyze(path)`` returns a :class:`Result` whose tables are pandas DataFrames.
Heavy imports (pandas, matplotlib, scapy) wait until they are needed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"
__all__ = ["Analyzer", "Result", "analyze", "extract", "__version__"]

if TYPE_CHECKING:
    from pcapan.api import Analyzer, Result, analyze, extract


def __getattr__(name: str) -> Any:
    if name in ("Analyzer", "Result", "analyze", "extract"):
        from pcapan import api

        return getattr(api, name)
    raise AttributeError(name)
