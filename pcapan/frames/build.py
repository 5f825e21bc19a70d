"""Records -> typed DataFrames, following the schema exactly."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import fields
from typing import Any

import numpy as np
import pandas as pd

from pcapan.frames.schema import TS, Column


def to_frame(records: Sequence[Any], columns: tuple[Column, ...], record_type: type) -> pd.DataFrame:
    names = [f.name for f in fields(record_type)]
    raw: dict[str, list[Any]] = {n: [getattr(r, n) for r in records] for n in names}
    out: dict[str, Any] = {}
    for col in columns:
        src = "ts_ns" if col.dtype == TS and col.name == "ts" else col.name
        values = raw[src]
        if col.dtype == TS:
            if any(v is None for v in values):
                # Optional timestamps (an orphan's missing side): NaT where absent.
                arr = pd.array(values, dtype="Int64").to_numpy(dtype="int64", na_value=np.iinfo(np.int64).min)
                out[col.name] = pd.to_datetime(arr.view("datetime64[ns]"), utc=True)
            else:
                out[col.name] = pd.to_datetime(np.asarray(values, dtype=np.int64), unit="ns", utc=True)
        else:
            out[col.name] = pd.array(values, dtype=col.dtype)
    return pd.DataFrame(out, columns=[c.name for c in columns])
