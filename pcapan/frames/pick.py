"""Rows picked by a stated rule, shared by the CLI and the library (one rule, one place)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd


def biggest_connection(conns: pd.DataFrame) -> str | None:
    """The uid of the connection with the most payload (orig_bytes + resp_bytes; the first in
    table order on a tie), or None when there is no connection: what ``pcapan plot --kind
    timeseq`` and ``res.plot.timeseq()`` draw when no uid is given."""
    if not len(conns):
        return None
    payload = conns.orig_bytes.fillna(0).astype("int64") + conns.resp_bytes.fillna(0).astype(
        "int64"
    )
    return str(conns.uid.iloc[int(payload.to_numpy().argmax())])
