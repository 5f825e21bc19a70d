"""Every column is documented, and the DataFrames follow the schema exactly."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

import pcapan
from pcapan.frames.schema import TABLES

SAMPLES = Path(__file__).resolve().parent.parent / "samples"


def test_every_column_documented() -> None:
    for table, cols in TABLES.items():
        names = [c.name for c in cols]
        assert len(names) == len(set(names)), f"{table}: duplicate column"
        for c in cols:
            assert c.doc.strip() and len(c.doc) > 10, f"{table}.{c.name} has no doc"


def test_no_column_shadows_a_dataframe_attribute() -> None:
    """``df.flags`` was pandas' DataFrame.flags, not the tls column (issue 15): attribute access
    must reach every column, so no column of any table may be named like a DataFrame attribute
    or method (``flags``, ``size``, ``index``, ``count``, ``plot``...)."""
    shadowing = [
        f"{table}.{c.name}"
        for table, cols in TABLES.items()
        for c in cols
        if hasattr(pd.DataFrame, c.name)
    ]
    assert not shadowing, shadowing


def test_flags_columns_reach_by_attribute() -> None:
    """The renamed columns: ``res.tls.tls_flags`` and ``res.http.http_flags`` are the Series (lossy
    .pcap has a /large.bin body hole: flagged gap_in_body, samples/README.md)."""
    res = pcapan.analyze(SAMPLES / "lossy.pcap")
    assert isinstance(res.http.http_flags, pd.Series) and isinstance(res.tls.tls_flags, pd.Series)
    assert "gap_in_body" in set(res.http.http_flags.dropna())


@pytest.mark.parametrize("capture", ["http-keepalive.pcap", "rst.pcap"])
def test_frames_follow_schema(capture: str) -> None:
    res = pcapan.analyze(SAMPLES / capture)
    for table, cols in TABLES.items():
        df = res.tables()[table]
        assert list(df.columns) == [c.name for c in cols]
        for c in cols:
            assert str(df[c.name].dtype) == c.dtype, (table, c.name, df[c.name].dtype)
    conns = res.connections
    assert len(conns) > 0
    assert isinstance(conns["ts"].dtype, pd.DatetimeTZDtype)


def test_schema_cli_prints_every_column() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "pcapan.cli", "schema", "--format", "markdown"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    for cols in TABLES.values():
        for c in cols:
            assert f"`{c.name}`" in out
