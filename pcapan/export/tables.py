"""CSV that reads back exactly: every table written with its schema and read back with it.

Cells are written per schema dtype so that ``read_csv(path, table)`` returns a DataFrame equal to
the one written (values and dtypes):

* missing values (NA, NaT, NaN) are an empty, unquoted cell; an empty string is ``""`` (quoted),
  so the two stay apart;
* text is quoted when it is empty or holds a comma, a double quote, CR or LF (quotes doubled);
* integers as digits, floats as Python's shortest round-tripping ``repr`` (``inf``, ``-0.0``),
  booleans as ``True``/``False``;
* timestamps as ISO 8601 UTC with nanoseconds: ``2024-05-01T12:00:00.123456789Z``.

``safe=True`` (``--safe-csv``) makes a file for spreadsheets and terminals, no longer exact:

* control, format and surrogate characters in text cells are escaped as in the terminal view
  (``\x1b``, ``\u202e``; :func:`pcapan.frames.text.printable`), so ``cat`` of the file cannot
  drive the terminal; ``read_csv`` does not undo this;
* then spreadsheet formulas are neutralised (OWASP "CSV Injection"): a text cell that begins with
  ``=``, ``+``, ``-``, ``@``, TAB or CR gets a leading ``'``. A text cell that already begins with
  ``'`` gets one too, so this part is reversible: ``read_csv(..., safe=True)`` removes exactly one
  leading ``'`` from every text cell that has one.

Numeric, boolean and timestamp cells are never changed (they are numbers, not formulas, and must
stay parseable).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from pcapan.errors import ExportError
from pcapan.frames.schema import BOOL, FLOAT, INT, STR, TABLES, TS, Column
from pcapan.frames.text import printable

if TYPE_CHECKING:
    import pandas as pd

# OWASP CSV Injection: cells starting with these are read as formulas by spreadsheet programs.
FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")
# Prefixed too, so that the neutralisation can be undone exactly (and a spreadsheet shows the
# original text: it hides one leading apostrophe).
SAFE_PREFIX = "'"
SAFE_TRIGGERS = (*FORMULA_TRIGGERS, SAFE_PREFIX)
# Characters that make a text cell need quoting (RFC 4180 section 2).
_NEEDS_QUOTES = r'[",\r\n]'
_NOT_PLAIN = r"[^\x20-\x7e]"  # (printable() leaves a cell of only these characters as it is)
CSV_ENCODING = "utf-8"
LINE_END = "\n"


def columns_of(table: str) -> tuple[Column, ...]:
    if table not in TABLES:
        raise ExportError(f"unknown table {table!r} (tables: {', '.join(TABLES)})")
    return TABLES[table]


def _quote(s: pd.Series) -> pd.Series:
    """Text cells: quoted (quotes doubled) when empty or when they hold , " CR or LF."""
    need = s.str.contains(_NEEDS_QUOTES, regex=True) | (s == "")
    return s.where(~need, '"' + s.str.replace('"', '""', regex=False) + '"')


def _cells(s: pd.Series, dtype: str, safe: bool) -> pd.Series:
    """One column as CSV cell text ('' for missing)."""
    import numpy as np
    import pandas as pd

    missing = s.isna().to_numpy()
    if dtype == TS:
        ns = pd.to_datetime(s, utc=True).dt.tz_localize(None).to_numpy(dtype="datetime64[ns]")
        text = np.char.add(np.datetime_as_string(ns, unit="ns"), "Z").astype(object)
    elif dtype == FLOAT:
        text = np.array(
            [repr(float(v)) for v in s.to_numpy(dtype="float64", na_value=np.nan)], dtype=object
        )
    elif dtype == INT:
        text = np.array(
            [str(v) for v in s.astype("Int64").fillna(0).to_numpy(dtype="int64")], dtype=object
        )
    elif dtype == BOOL:
        text = np.where(
            s.astype("boolean").fillna(False).to_numpy(dtype=bool), "True", "False"
        ).astype(object)
    else:
        t = s.astype("string").fillna("")
        if safe:
            # Only cells that are not plain printable ASCII, or that begin like a formula, change
            # (safe_text is the identity on the others): found by Arrow, converted one by one.
            odd = t.str.contains(_NOT_PLAIN, regex=True) | t.str.startswith(SAFE_TRIGGERS)
            if odd.any():
                t = t.where(~odd, t[odd].map(safe_text).astype("string"))
        text = _quote(t).to_numpy(dtype=object)
    text[missing] = ""
    return pd.Series(text, index=s.index, dtype=object)


def safe_text(value: str) -> str:
    """A text cell under ``--safe-csv``: control characters escaped, then a formula-leading cell
    (or one beginning with ``'``) prefixed with ``'``."""
    text = printable(value)
    return SAFE_PREFIX + text if text.startswith(SAFE_TRIGGERS) else text


def write_csv(
    df: pd.DataFrame, path: str | os.PathLike[str], table: str, *, safe: bool = False
) -> None:
    """Write one table as CSV (see the module doc for the cell format)."""
    cols = columns_of(table)
    cells = [_cells(df[c.name], c.dtype, safe).tolist() for c in cols]
    header = ",".join(c.name for c in cols)
    with open(path, "w", encoding=CSV_ENCODING, newline="") as f:
        f.write(header + LINE_END)
        for row in zip(*cells, strict=True):
            f.write(",".join(row) + LINE_END)


def read_csv(path: str | os.PathLike[str], table: str, *, safe: bool = False) -> pd.DataFrame:
    """Read a CSV written by :func:`write_csv` (or ``pcapan export --format csv``) back into the
    table's DataFrame: the schema's columns, in order, each of the schema's dtype.

    ``safe=True`` undoes ``--safe-csv`` (one leading ``'`` removed from text cells).
    """
    import pandas as pd
    import pyarrow as pa
    import pyarrow.csv as pacsv

    cols = columns_of(table)
    try:
        raw = pacsv.read_csv(
            Path(path),
            parse_options=pacsv.ParseOptions(newlines_in_values=True),
            convert_options=pacsv.ConvertOptions(
                column_types={c.name: pa.string() for c in cols},
                strings_can_be_null=True,
                quoted_strings_can_be_null=False,
                null_values=[""],
            ),
        )
    except (OSError, pa.ArrowInvalid) as exc:
        raise ExportError(f"{path}: cannot read as a {table} table ({exc})") from None
    missing = [c.name for c in cols if c.name not in raw.column_names]
    if missing:
        raise ExportError(f"{path}: not a {table} table (missing columns: {', '.join(missing)})")
    out: dict[str, pd.Series] = {}
    for c in cols:
        text = pd.Series(raw.column(c.name).to_pylist(), dtype=object)
        na = text.isna()
        if c.dtype == TS:
            vals = text.where(~na, "NaT").str.removesuffix("Z").to_numpy(dtype="datetime64[ns]")
            out[c.name] = pd.Series(vals).dt.tz_localize("UTC").astype(TS)
        elif c.dtype == FLOAT:
            out[c.name] = pd.Series(text.where(~na, "nan").to_numpy(dtype=object).astype("float64"))
        elif c.dtype == INT:
            out[c.name] = pd.Series(
                pd.array([None if v is None else int(v) for v in text], dtype=INT)
            )
        elif c.dtype == BOOL:
            out[c.name] = pd.Series(
                pd.array(text.map({"True": True, "False": False}).where(~na, None), dtype=BOOL)
            )
        else:
            s = text
            if safe:
                s = s.where(~s.str.startswith(SAFE_PREFIX, na=False), s.str[len(SAFE_PREFIX) :])
            out[c.name] = pd.Series(pd.array(s.where(~na, None), dtype=STR))
    return pd.DataFrame(out, columns=[c.name for c in cols]).reset_index(drop=True)
