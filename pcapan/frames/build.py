"""Records -> typed DataFrames, following the schema exactly."""

from __future__ import annotations

from collections.abc import Sequence
from operator import attrgetter
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from pcapan.frames.schema import BOOL, FLOAT, INT, STR, TS, Column

_NAT = np.iinfo(np.int64).min


def column_array(values: list[Any], dtype: str) -> Any:
    """One column's values as the schema's pandas array.

    Arrow converts a list of Python values in C; ``pd.array(values, dtype=...)`` validates each
    element in Python first (twice as slow on the http table). A value Arrow will not take as the
    column's type (an int in a string column, say) falls back to pandas' own conversion.
    """
    try:
        if dtype == STR:
            return pd.arrays.ArrowStringArray(pa.chunked_array([pa.array(values, type=pa.large_string())]))
        if dtype == INT:
            a = pa.array(values, type=pa.int64())
            return pd.arrays.IntegerArray(a.fill_null(0).to_numpy(), _nulls(a))
        if dtype == BOOL:
            a = pa.array(values, type=pa.bool_())
            return pd.arrays.BooleanArray(a.fill_null(False).to_numpy(zero_copy_only=False), _nulls(a))
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
                out[col.name] = pd.to_datetime(a.fill_null(_NAT).to_numpy().view("datetime64[ns]"), utc=True)
            else:
                out[col.name] = pd.to_datetime(a.to_numpy(), unit="ns", utc=True)
        else:
            out[col.name] = column_array(values, col.dtype)
    return pd.DataFrame(out, columns=[c.name for c in columns], copy=False)
