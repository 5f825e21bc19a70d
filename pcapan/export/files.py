"""Write every table to a directory as CSV, Parquet, JSON Lines or Zeek logs, plus manifest.json.

One file per table (``<table>.csv``, ``.parquet``, ``.jsonl``) or, for ``zeek``, one Zeek log per
table Zeek has (``conn.log``, ``http.log``, ``ssl.log``, ``weird.log``; see
:mod:`pcapan.export.zeek`). ``manifest.json`` says what was written and from what: the pcapan
version, the schema version, the format, each source capture with its size and SHA-256, and each
file with its table and row count.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pcapan import __version__
from pcapan.errors import ExportError
from pcapan.frames.schema import SCHEMA_VERSION

if TYPE_CHECKING:
    import pandas as pd

    from pcapan.api import Result

# format name -> file extension; "json" is the older name of "jsonl" (same files).
FORMATS = {
    "csv": ".csv",
    "parquet": ".parquet",
    "jsonl": ".jsonl",
    "json": ".jsonl",
    "zeek": ".log",
}
MANIFEST = "manifest.json"
HASH_BLOCK_BYTES = 1 << 20
# Source names that are not files on disk (standard input).
_NOT_FILES = ("-", "<stdin>")


def write_tables(
    result: Result, directory: str | os.PathLike[str], fmt: str, *, safe_csv: bool = False
) -> list[Path]:
    """Write every table of ``result`` into ``directory`` in format ``fmt``, then manifest.json.
    Returns the paths written (the manifest last)."""
    if fmt not in FORMATS:
        raise ExportError(f"unknown format {fmt!r} (choose from {', '.join(sorted(FORMATS))})")
    if safe_csv and fmt != "csv":
        raise ExportError("--safe-csv applies to --format csv only")
    out = Path(directory)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ExportError(f"{out}: cannot create output directory ({exc.strerror})") from None
    tables = result.tables()
    entries: dict[str, dict[str, Any]] = {}
    if fmt == "zeek":
        from pcapan.export import zeek

        first = result.stats.get("first_ts_ns")
        last = result.stats.get("last_ts_ns")
        for spec in zeek.LOGS:
            path = out / zeek.file_name(spec)
            rows = zeek.write_log(spec, tables, path, first, last)
            entries[spec.path] = {"file": path.name, "table": spec.table, "rows": rows}
    else:
        for name, df in tables.items():
            path = out / f"{name}{FORMATS[fmt]}"
            _write_one(df, path, name, fmt, safe_csv)
            entries[name] = {"file": path.name, "table": name, "rows": len(df)}
    manifest = build_manifest(result, fmt, entries, safe_csv=safe_csv)
    mpath = out / MANIFEST
    try:
        mpath.write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    except OSError as exc:
        raise ExportError(f"{mpath}: cannot write ({exc.strerror})") from None
    return [out / e["file"] for e in entries.values()] + [mpath]


def _write_one(df: pd.DataFrame, path: Path, table: str, fmt: str, safe_csv: bool) -> None:
    try:
        if fmt == "csv":
            from pcapan.export.tables import write_csv

            write_csv(df, path, table, safe=safe_csv)
        elif fmt == "parquet":
            df.to_parquet(path, index=False)
        else:
            df.to_json(path, orient="records", lines=True, date_format="iso", date_unit="ns")
    except OSError as exc:
        raise ExportError(f"{path}: cannot write ({exc.strerror})") from None


def source_names(result: Result) -> list[str]:
    """The captures the result was read from, in order: the analysis' list, then any other
    ``source`` named in the tables (a merged result)."""
    names: list[str] = [str(s) for s in result.stats.get("sources", [])]
    seen = set(names)
    for table in ("connections", "anomalies"):
        df = result.tables()[table]
        if "source" in df.columns:
            for s in df["source"].dropna().unique().tolist():
                if str(s) not in seen:
                    seen.add(str(s))
                    names.append(str(s))
    return names


def describe_source(name: str) -> dict[str, Any]:
    """{path, size, sha256} of a capture file; size and sha256 are null when it is not a file
    (standard input) or no longer readable."""
    entry: dict[str, Any] = {"path": name, "size": None, "sha256": None}
    if name in _NOT_FILES:
        return entry
    h = hashlib.sha256()
    size = 0
    try:
        with open(name, "rb") as f:
            while block := f.read(HASH_BLOCK_BYTES):
                h.update(block)
                size += len(block)
    except OSError:
        return entry
    entry["size"] = size
    entry["sha256"] = h.hexdigest()
    return entry


def build_manifest(
    result: Result, fmt: str, entries: dict[str, dict[str, Any]], *, safe_csv: bool = False
) -> dict[str, Any]:
    return {
        "pcapan_version": __version__,
        "schema_version": SCHEMA_VERSION,
        "format": "jsonl" if fmt == "json" else fmt,
        "safe_csv": safe_csv,
        "sources": [describe_source(n) for n in source_names(result)],
        "tables": entries,
    }


__all__ = ["FORMATS", "MANIFEST", "build_manifest", "describe_source", "write_tables"]
