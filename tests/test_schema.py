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
