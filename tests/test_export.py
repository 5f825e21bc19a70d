"""Exports: every table to CSV / Parquet / JSON Lines and back, manifest.json, --safe-csv, the CLI.

The analysed input is real samples (samples/README.md says what they hold) plus a capture
crafted in tests/exportgen.py, so that every table is non-empty and the text cells include a
spreadsheet formula, a tab, a backslash, quotes, a comma, a non-UTF-8 byte and an empty string.
Round trips compare against the DataFrames themselves (pandas.testing, exact); the manifest's
hashes and sizes are recomputed here with hashlib/os from the files.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
from contextlib import redirect_stderr
from pathlib import Path

import pandas as pd
import pytest

import pcapan
from pcapan.cli import main
from pcapan.export.tables import FORMULA_TRIGGERS, read_csv
from pcapan.frames.schema import SCHEMA_VERSION, STR, TABLES
from pcapan.frames.text import printable

from . import exportgen

SAMPLES = Path(__file__).resolve().parent.parent / "samples"
# samples/README.md: curl keep-alive (HTTP), TLS with ALPN, a download aborted by RST (one
# anomaly: the response body cut short).
SAMPLE_FILES = [SAMPLES / "http-keepalive.pcap", SAMPLES / "tls-alpn.pcap", SAMPLES / "rst.pcap"]


@pytest.fixture(scope="module")
def crafted(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return exportgen.build(tmp_path_factory.mktemp("cap") / "crafted.pcap")


@pytest.fixture(scope="module")
def sources(crafted: Path) -> list[Path]:
    return [*SAMPLE_FILES, crafted]


@pytest.fixture(scope="module")
def result(sources: list[Path]) -> pcapan.Result:
    return pcapan.analyze(sources)


def test_every_table_is_non_empty(result: pcapan.Result) -> None:
    sizes = {name: len(df) for name, df in result.tables().items()}
    assert set(sizes) == set(TABLES)
    assert all(sizes.values()), sizes
    # exportgen.py: connection B opened while A was open and idle
    assert len(result.missed_reuse) == 1


def test_csv_round_trip_every_table(result: pcapan.Result, tmp_path: Path) -> None:
    paths = result.to_csv(tmp_path)
    assert {p.name for p in paths} == {f"{t}.csv" for t in TABLES} | {"manifest.json"}
    for name, df in result.tables().items():
        back = read_csv(tmp_path / f"{name}.csv", name)
        pd.testing.assert_frame_equal(back, df, check_exact=True, obj=name)


def test_csv_keeps_empty_strings_apart_from_missing(result: pcapan.Result, tmp_path: Path) -> None:
    result.to_csv(tmp_path)
    http = result.http
    # exportgen.py: "HTTP/1.1 200 \r\n" has an empty reason phrase; request B sent no User-Agent
    row_a = http[http.uri == exportgen.URI_A].iloc[0]
    row_b = http[http.uri == exportgen.URI_B].iloc[0]
    assert row_a.status_msg == "" and row_b.user_agent is pd.NA
    with open(tmp_path / "http.csv", newline="", encoding="utf-8") as f:
        raw = list(csv.reader(f))
    header = raw[0]
    text = (tmp_path / "http.csv").read_text(encoding="utf-8")
    assert ',"",' in text  # the empty string is quoted, a missing value is not
    rows = {r[header.index("uid")] + r[header.index("trans_depth")]: r for r in raw[1:]}
    b = rows[row_b.uid + str(row_b.trans_depth)]
    assert b[header.index("user_agent")] == ""
    # the tab, backslash, comma and quotes of the User-Agent survive the csv module too
    a = rows[row_a.uid + str(row_a.trans_depth)]
    assert a[header.index("user_agent")] == exportgen.USER_AGENT


def test_csv_timestamps_keep_nanoseconds(result: pcapan.Result, tmp_path: Path) -> None:
    result.to_csv(tmp_path)
    with open(tmp_path / "connections.csv", newline="", encoding="utf-8") as f:
        first = next(csv.DictReader(f))
    ts = result.connections.ts.iloc[0]
    assert (
        first["ts"]
        == ts.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ts.microsecond:06d}{ts.nanosecond:03d}Z"
    )


def test_parquet_round_trip_every_table(result: pcapan.Result, tmp_path: Path) -> None:
    paths = result.to_parquet(tmp_path)
    assert {p.name for p in paths} == {f"{t}.parquet" for t in TABLES} | {"manifest.json"}
    for name, df in result.tables().items():
        back = pd.read_parquet(tmp_path / f"{name}.parquet")
        pd.testing.assert_frame_equal(back, df, check_exact=True, obj=name)  # dtypes included


def test_jsonl_every_table(result: pcapan.Result, tmp_path: Path) -> None:
    result.to_json(tmp_path)
    for name, df in result.tables().items():
        lines = (tmp_path / f"{name}.jsonl").read_text(encoding="utf-8").splitlines()
        assert len(lines) == len(df)
        recs = [json.loads(x) for x in lines]
        assert list(recs[0]) == list(df.columns)
        if "uid" in df.columns:
            assert [r["uid"] for r in recs] == [None if u is pd.NA else u for u in df.uid]
    http = [
        json.loads(x) for x in (tmp_path / "http.jsonl").read_text(encoding="utf-8").splitlines()
    ]
    assert {exportgen.URI_A, exportgen.URI_B} <= {r["uri"] for r in http}


def test_manifest(result: pcapan.Result, sources: list[Path], tmp_path: Path) -> None:
    result.to_parquet(tmp_path)
    m = json.loads((tmp_path / "manifest.json").read_text())
    assert m["pcapan_version"] == pcapan.__version__
    assert m["schema_version"] == SCHEMA_VERSION
    assert m["format"] == "parquet" and m["safe_csv"] is False
    assert [s["path"] for s in m["sources"]] == [str(p) for p in sources]
    for s, p in zip(m["sources"], sources, strict=True):
        assert s["size"] == os.path.getsize(p)
        assert s["sha256"] == hashlib.sha256(p.read_bytes()).hexdigest()
    assert set(m["tables"]) == set(TABLES)
    for name, entry in m["tables"].items():
        assert entry == {
            "file": f"{name}.parquet",
            "table": name,
            "rows": len(result.tables()[name]),
        }
        assert (tmp_path / entry["file"]).is_file()


def _run(*argv: str) -> int:
    with redirect_stderr(io.StringIO()):
        return main(list(argv))


def test_safe_csv(result: pcapan.Result, sources: list[Path], tmp_path: Path) -> None:
    plain, safe = tmp_path / "plain", tmp_path / "safe"
    assert _run("export", *map(str, sources), "-o", str(plain), "--format", "csv") == 0
    assert _run("export", *map(str, sources), "-o", str(safe), "--format", "csv", "--safe-csv") == 0
    with open(plain / "http.csv", newline="", encoding="utf-8") as f:
        uris = [r["uri"] for r in csv.DictReader(f)]
    assert exportgen.URI_A in uris  # without the option the formula reaches the spreadsheet
    for name, cols in TABLES.items():
        text_cols = [c.name for c in cols if c.dtype == STR]
        with open(safe / f"{name}.csv", newline="", encoding="utf-8") as f:
            rows = list(csv.DictReader(f))
        for r in rows:
            for c in text_cols:
                assert not r[c].startswith(FORMULA_TRIGGERS), (name, c, r[c])
        # the prefix is undone exactly by read_csv(safe=True); control characters stay escaped
        # as in the terminal (the User-Agent's TAB reads back as the four characters \x09)
        want = result.tables()[name].copy()
        for c in text_cols:
            want[c] = want[c].map(printable, na_action="ignore").astype(STR)
        pd.testing.assert_frame_equal(
            read_csv(safe / f"{name}.csv", name, safe=True), want, check_exact=True, obj=name
        )
    with open(safe / "http.csv", newline="", encoding="utf-8") as f:
        hosts_uris = [(r["host"], r["uri"]) for r in csv.DictReader(f)]
    assert ("'-", "'" + exportgen.URI_A) in hosts_uris
    with open(safe / "http.csv", newline="", encoding="utf-8") as f:
        agents = {r["user_agent"] for r in csv.DictReader(f)}
    assert 'a\\x09b\\\\c, "q"' in agents  # TAB escaped, so the backslash is doubled
    assert json.loads((safe / "manifest.json").read_text())["safe_csv"] is True


def test_cli_export_every_format(sources: list[Path], tmp_path: Path) -> None:
    expected = {
        "csv": {f"{t}.csv" for t in TABLES},
        "parquet": {f"{t}.parquet" for t in TABLES},
        "jsonl": {f"{t}.jsonl" for t in TABLES},
        "zeek": {"conn.log", "http.log", "ssl.log", "weird.log"},
    }
    for fmt, names in expected.items():
        out = tmp_path / fmt
        assert _run("export", str(sources[-1]), "-o", str(out), "--format", fmt) == 0
        assert {p.name for p in out.iterdir()} == names | {"manifest.json"}
        assert json.loads((out / "manifest.json").read_text())["format"] == fmt


def test_cli_analyze_output_uses_export(sources: list[Path], tmp_path: Path) -> None:
    from contextlib import redirect_stdout

    with redirect_stdout(io.StringIO()):
        # the older --format json still works and writes JSON Lines
        assert (
            _run(
                "analyze", str(sources[-1]), "--json", "-o", str(tmp_path / "j"), "--format", "json"
            )
            == 0
        )
        assert (
            _run(
                "analyze", str(sources[-1]), "--json", "-o", str(tmp_path / "z"), "--format", "zeek"
            )
            == 0
        )
    assert (tmp_path / "j" / "http.jsonl").is_file() and (
        tmp_path / "j" / "manifest.json"
    ).is_file()
    assert (tmp_path / "z" / "conn.log").is_file()


def test_cli_safe_csv_misuse(
    sources: list[Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert (
        main(["export", str(sources[-1]), "-o", str(tmp_path), "--format", "zeek", "--safe-csv"])
        == 2
    )
    assert "--safe-csv applies to --format csv only" in capsys.readouterr().err
    assert main(["analyze", str(sources[-1]), "--safe-csv"]) == 2
    assert "--safe-csv needs -o DIR" in capsys.readouterr().err
