"""Tables written to Parquet read back identical (dtypes included); CSV keeps every row and value."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

import pcapan
from pcapan.frames.schema import TABLES

SAMPLES = Path(__file__).resolve().parent.parent / "samples"


def test_parquet_round_trip(tmp_path: Path) -> None:
    res = pcapan.analyze([SAMPLES / "tls.pcap", SAMPLES / "rst.pcap", SAMPLES / "http-pipelined.pcap"])
    paths = res.to_parquet(tmp_path)
    assert {p.name for p in paths} == {f"{t}.parquet" for t in TABLES}
    back = pd.read_parquet(tmp_path / "connections.parquet")
    # samples/README.md: 6 TLS connections + 2 in rst.pcap + 1 pipelined connection
    assert len(res.connections) == 9
    pd.testing.assert_frame_equal(back, res.connections)
    # the http table (nullable timestamps and integers included) survives too
    # samples/README.md: three pipelined GETs, and in rst.pcap the GET /large.bin aborted by RST
    assert len(res.http) == 4
    pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "http.parquet"), res.http)


def test_csv_round_trip_values(tmp_path: Path) -> None:
    res = pcapan.analyze(SAMPLES / "http-close.pcap")
    res.to_csv(tmp_path)
    back = pd.read_csv(tmp_path / "connections.csv")
    df = res.connections
    assert len(back) == len(df) == 4
    assert list(back.uid) == list(df.uid)
    assert list(back.orig_ip_bytes) == list(df.orig_ip_bytes)
    assert list(back.history) == list(df.history)
    # timestamps survive as ISO text with microseconds
    assert list(pd.to_datetime(back.ts, utc=True)) == list(df.ts.dt.floor("us"))


def test_jsonl(tmp_path: Path) -> None:
    res = pcapan.analyze(SAMPLES / "ipv6-http.pcap")
    res.to_json(tmp_path)
    back = pd.read_json(tmp_path / "connections.jsonl", lines=True)
    assert list(back.orig_h) == ["::1"] and list(back.conn_state) == ["SF"]
