"""Write every table to a directory as CSV, Parquet or JSON Lines."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from pcapan.errors import ExportError

if TYPE_CHECKING:
    from pcapan.api import Result

FORMATS = {"csv": ".csv", "parquet": ".parquet", "json": ".jsonl", "jsonl": ".jsonl"}


def write_tables(result: Result, directory: str | os.PathLike[str], fmt: str) -> list[Path]:
    if fmt not in FORMATS:
        raise ExportError(f"unknown format {fmt!r} (choose from {', '.join(sorted(FORMATS))})")
    out = Path(directory)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ExportError(f"{out}: cannot create output directory ({exc.strerror})") from None
    written: list[Path] = []
    for name, df in result.tables().items():
        path = out / f"{name}{FORMATS[fmt]}"
        try:
            if fmt == "csv":
                df.to_csv(path, index=False, date_format="%Y-%m-%dT%H:%M:%S.%fZ")
            elif fmt == "parquet":
                df.to_parquet(path, index=False)
            else:
                df.to_json(path, orient="records", lines=True, date_format="iso", date_unit="ns")
        except OSError as exc:
            raise ExportError(f"{path}: cannot write ({exc.strerror})") from None
        written.append(path)
    return written
