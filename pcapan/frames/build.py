"""Records -> typed DataFrames, following the schema exactly."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from operator import attrgetter
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from pcapan.frames.schema import BOOL, FLOAT, INT, STR, TS, Column
from pcapan.model import CONN_KINDS, ConnColumns

_NAT = np.iinfo(np.int64).min


def _by_code(values: Iterable[str | None], codes: np.ndarray) -> pa.Array:
    """``values[code]`` per row as an Arrow string array: the few distinct strings are converted
    once and Arrow repeats them, without a Python string per row."""
    return pa.array(list(values), type=pa.large_string()).take(pa.array(codes))


def coded_strings(values: Sequence[str], codes: np.ndarray) -> pd.arrays.ArrowStringArray:
    """A string column of ``values[code]`` per row (a column of many rows and few values, as the
    rtt table's uid, direction and kind)."""
    return pd.arrays.ArrowStringArray(pa.chunked_array([_by_code(values, codes)]))


def column_array(values: list[Any], dtype: str) -> Any:
    """One column's values as the schema's pandas array.

    Arrow converts a list of Python values in C; ``pd.array(values, dtype=...)`` validates each
    element in Python first (twice as slow on the http table). A value Arrow will not take as the
    column's type (an int in a string column, say) falls back to pandas' own conversion.
    """
    try:
        if dtype == STR:
            return pd.arrays.ArrowStringArray(
                pa.chunked_array([pa.array(values, type=pa.large_string())])
            )
        if dtype == INT:
            a = pa.array(values, type=pa.int64())
            return pd.arrays.IntegerArray(a.fill_null(0).to_numpy(), _nulls(a))
        if dtype == BOOL:
            a = pa.array(values, type=pa.bool_())
            return pd.arrays.BooleanArray(
                a.fill_null(False).to_numpy(zero_copy_only=False), _nulls(a)
            )
        if dtype == FLOAT:
            return np.array(values, dtype=np.float64)  # None becomes NaN
    except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, ValueError):
        pass
    return pd.array(values, dtype=dtype)


def _nulls(a: pa.Array) -> np.ndarray:
    if not a.null_count:
        return np.zeros(len(a), dtype=bool)
    return a.is_null().to_numpy(zero_copy_only=False)


def to_frame(records: Sequence[Any], columns: tuple[Column, ...]) -> pd.DataFrame:
    """``records`` (output records with an attribute per column) as a DataFrame with ``columns``, in order.

    Built one column at a time, so only one column's Python values exist at once."""
    out: dict[str, Any] = {}
    for col in columns:
        src = "ts_ns" if col.dtype == TS and col.name == "ts" else col.name
        values = list(map(attrgetter(src), records))
        if col.dtype == TS:
            a = pa.array(values, type=pa.int64())
            if a.null_count:
                # Optional timestamps (an orphan's missing side): NaT where absent.
                out[col.name] = pd.to_datetime(
                    a.fill_null(_NAT).to_numpy().view("datetime64[ns]"), utc=True
                )
            else:
                out[col.name] = pd.to_datetime(a.to_numpy(), unit="ns", utc=True)
        else:
            out[col.name] = column_array(values, col.dtype)
    return pd.DataFrame(out, columns=[c.name for c in columns], copy=False)


def conn_frame(store: ConnColumns, columns: tuple[Column, ...]) -> tuple[pd.DataFrame, np.ndarray]:
    """The connections in ``store`` sorted by (ts, uid), as a DataFrame with ``columns`` (the
    record columns), made from the column buffers without a Python object per row.

    Each buffer is dropped from ``store`` once its column is made, so the buffers and the table
    are not both held whole (the caller then points ``store`` at the table: ConnColumns.release).
    Also returns, per table row, the store's row it came from.
    """
    n = len(store)
    uids = _text_array(*store.buffer("uid"), n)
    ts = np.frombuffer(store.buffer("ts_ns")[0], dtype=np.int64)
    # Stable, as sorted() on (ts_ns, uid) was: equal keys keep their order of finalisation.
    order = pc.sort_indices(
        pa.table({"t": pa.array(ts), "u": uids}), sort_keys=[("t", "ascending"), ("u", "ascending")]
    ).to_numpy()
    del ts
    # Often already in order (a SYN scan's flows end as they began): then each buffer becomes
    # its column as it is, without a copy (the store gives them up: ConnColumns.release).
    same = bool((order == np.arange(n)).all())
    no_nulls = np.zeros(n, dtype=bool)
    out: dict[str, Any] = {}
    for col in columns:
        src = "ts_ns" if col.dtype == TS and col.name == "ts" else col.name
        main, aux = store.buffer(src)
        kind = CONN_KINDS[src]
        if kind in ("s", "t"):
            if kind == "t":
                arr = uids if src == "uid" else _text_array(main, aux, n)
            else:
                arr = _by_code(aux, np.frombuffer(main, dtype=np.int32))
            if not same:
                arr = arr.take(order)
            out[col.name] = (
                pd.arrays.ArrowStringArray(pa.chunked_array([arr]))
                if col.dtype == STR
                else column_array(arr.to_pylist(), col.dtype)
            )
            del arr
        else:
            mask = np.frombuffer(aux, dtype=np.int8).astype(bool) if kind == "q?" else no_nulls
            vals = np.frombuffer(
                main, dtype={"q": np.int64, "d": np.float64, "b": np.int8}[kind[0]]
            )
            if not same:
                mask, vals = mask[order], vals[order]
            if col.dtype == TS:
                if mask.any():
                    vals[mask] = _NAT
                    out[col.name] = pd.to_datetime(vals.view("datetime64[ns]"), utc=True)
                else:
                    out[col.name] = pd.to_datetime(vals, unit="ns", utc=True)
            elif col.dtype == INT:
                out[col.name] = pd.arrays.IntegerArray(vals, mask.copy())
            elif col.dtype == BOOL:
                out[col.name] = pd.arrays.BooleanArray(vals.astype(bool), mask.copy())
            elif col.dtype == FLOAT:
                out[col.name] = vals
            else:  # pragma: no cover - a schema change would show here
                out[col.name] = pd.array(vals, dtype=col.dtype)
            del vals, mask
        del main, aux
        if src == "uid":
            del uids
        store.drop(src)
    return pd.DataFrame(out, columns=[c.name for c in columns], copy=False), order


def _text_array(data: bytearray, offsets: Any, n: int) -> pa.Array:
    """A text column's UTF-8 bytes and offsets as an Arrow large_string array (on the buffers)."""
    return pa.LargeStringArray.from_buffers(n, pa.py_buffer(offsets), pa.py_buffer(data))
