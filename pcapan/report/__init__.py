"""The HTML report: ``write_report(result, "report.html")`` (or ``Result.report(path)``, or
``pcapan report FILE... -o report.html``) writes one self-contained page: findings (once
issue 18 adds them), the summary (per capture file when several), the plots (SVG or PNG images
inside the file), top servers and clients, HTTP status codes and the slowest requests, the TLS
mix, missed reuse and anomalies; and beside it ``report_files/`` with every table in full as
CSV, linked from the page. The page stays under ~5 MB for any capture (tables cut to their top
rows, dense plots rasterised).

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

__all__ = ["render", "tables_dir", "write_report"]


def write_report(
    result: Result,
    path: str | os.PathLike[str],
    *,
    title: str | None = None,
    plots: bool = True,
    tables: bool = True,
) -> Path:
    """Write the report of ``result`` to ``path`` (UTF-8 HTML); returns the path.
    ``plots=False`` leaves the plots out (faster; no matplotlib needed). ``tables=True`` also
    writes every table in full as CSV into the folder beside it, ``<name>_files/`` (the page
    shows the top rows of each and links there); the CSV cells are spreadsheet-safe (formulas
    in captured text neutralised)."""
    out = Path(path)
    # As every verb that writes: the missing directories of the output are made.
    out.parent.mkdir(parents=True, exist_ok=True)
    files = tables_dir(out) if tables else None
    if files is not None:
        result.export(files, "csv", safe_csv=True)
    text = render(result, title=title, plots=plots, files=files.name if files else None)
    out.write_text(text, encoding="utf-8")
    return out


def tables_dir(path: str | os.PathLike[str]) -> Path:
    """The folder of full tables beside report ``path``: ``r.html`` -> ``r_files/``."""
    p = Path(path)
    return p.with_name(f"{p.stem}_files")
