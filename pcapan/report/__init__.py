"""The HTML report: ``write_report(result, "report.html")`` (or ``Result.report(path)``, or
``pcapan report FILE... -o report.html``) writes one self-contained page: the summary, the
plots (SVG images inside the file), top servers and clients, HTTP status codes and the slowest
requests, the TLS mix, missed reuse and anomalies.

Self-contained and inert: no script, no external CSS, fonts or images, and a
Content-Security-Policy that forbids both (so even a missed escape of captured text could not
run). Every string that came from the capture is HTML-escaped (pcapan.report.page)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from pcapan.report.page import render

if TYPE_CHECKING:
    from pcapan.api import Result

__all__ = ["render", "write_report"]


def write_report(
    result: Result, path: str | os.PathLike[str], *, title: str | None = None, plots: bool = True
) -> Path:
    """Write the report of ``result`` to ``path`` (UTF-8 HTML); returns the path.
    ``plots=False`` leaves the plots out (faster; no matplotlib needed)."""
    out = Path(path)
    out.write_text(render(result, title=title, plots=plots), encoding="utf-8")
    return out
