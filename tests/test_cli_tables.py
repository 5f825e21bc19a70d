"""The table verbs in a terminal (issue 15): at 80 and 120 columns on a 300,000-packet capture
no line is wider than the terminal, every number, address, uid, timestamp and boolean is whole
on one line, long text ends in "…", and the columns left out are named.

The oracle is the DataFrame the table shows (pcapan.analyze of the same capture): each printed
cell is compared with the value of its row and column. The DataFrames themselves are checked
against tshark and the samples elsewhere (test_samples_*, test_corpus_*)."""

from __future__ import annotations

import contextlib
import io
import os
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import pandas as pd
import pytest
from rich.cells import cell_len

import pcapan
import pcapan.api
from pcapan import cli
from pcapan.render import TERMINAL_COLUMNS, WHOLE_TEXT, fit_columns, print_table

VERBS = ["connections", "http", "tls", "servers"]


def run_cli(capture: Path, verb: str, width: int, *extra: str) -> str:
    """The CLI in a subprocess, stdout a pipe, the terminal width given by $COLUMNS."""
    env = {**os.environ, "COLUMNS": str(width)}
    env.pop("LINES", None)
    p = subprocess.run(
        [sys.executable, "-m", "pcapan.cli", verb, str(capture), *extra],
        capture_output=True,
        text=True,
        env=env,
        timeout=900,
    )
    assert p.returncode == 0, p.stderr
    assert "Traceback" not in p.stderr
    return p.stdout


def run_in_process(
    res: pcapan.Result, verb: str, width: int, monkeypatch: pytest.MonkeyPatch, *extra: str
) -> str:
    """The same CLI code (cli.main) on the session's analysis: no second analysis of the capture."""
    monkeypatch.setenv("COLUMNS", str(width))
    monkeypatch.setattr(pcapan.api, "analyze", lambda *a, **k: res)
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        assert cli.main([verb, "unused.pcap", *extra]) == 0
    return buf.getvalue()


def parse(out: str) -> tuple[str, list[str], list[list[str]], str]:
    """(title, column names, rows of cells, caption) of the one table in ``out``. A header
    broken after "_" is joined back; a row is one line, so a cell split over lines would show
    as an extra row (and fail the comparison)."""
    lines = out.splitlines()
    title = lines[0].strip()
    top = next(i for i, s in enumerate(lines) if s.startswith("┏"))
    sep = next(i for i, s in enumerate(lines) if s.startswith("┡"))
    end = next(i for i, s in enumerate(lines) if s.startswith("└"))
    heads = [[c.strip() for c in s.strip("┃").split("┃")] for s in lines[top + 1 : sep]]
    names = ["".join(h[i] for h in heads) for i in range(len(heads[0]))]
    rows = [[c.strip() for c in s[1:-1].split("│")] for s in lines[sep + 1 : end]]
    return title, names, rows, " ".join(s.strip() for s in lines[end + 1 :])


def expected(df: pd.DataFrame, col: str, date: str | None) -> list[str]:
    """What a cell must read: the value formatted as the README says (``-`` missing, floats
    with 6 decimals, timestamps to the microsecond, the time alone when the title gives the
    date)."""
    s = df[col]
    if "datetime64" in str(s.dtype):
        fmt = "%H:%M:%S.%f" if date else "%Y-%m-%d %H:%M:%S.%f"
        return s.dt.strftime(fmt).fillna("-").tolist()
    if s.dtype.kind == "f":
        return ["-" if v != v else f"{v:.6f}" for v in s.tolist()]
    return ["-" if v is pd.NA or v is None else str(v) for v in s.astype(object).tolist()]


def check(out: str, df: pd.DataFrame, verb: str, width: int) -> list[str]:
    """Every assertion of a fitted table; returns the columns shown."""
    assert out, "no output"
    widths = [cell_len(line) for line in out.splitlines()]
    assert max(widths) <= width, max(widths)
    title, names, rows, caption = parse(out)
    assert title.startswith(f"{verb} ({len(df):,})"), title
    date = title.split(" · times UTC on ")[1] if " · times UTC on " in title else None
    # One line per row: nothing wrapped.
    assert len(rows) == len(df) and len(df) > 1000
    shown, _ = TERMINAL_COLUMNS[verb]
    assert set(names) <= set(shown) and names == [c for c in shown if c in names]
    hidden = [c for c in shown if c not in names]
    if hidden:
        assert f"{len(hidden)} more column(s) do not fit in {width}: {', '.join(hidden)}" in caption
    for i, name in enumerate(names):
        got = [r[i] for r in rows]
        want = expected(df, name, date)
        s = df[name]
        whole = name in WHOLE_TEXT or s.dtype.kind in "iufbM" or "datetime64" in str(s.dtype)
        if whole:
            # Numbers, timestamps, booleans, uids and addresses: exactly the value, whole.
            assert got == want, (
                name,
                next((g, w) for g, w in zip(got, want, strict=True) if g != w),
            )
        else:
            for g, w in zip(got, want, strict=True):
                assert g == w or (g.endswith("…") and w.startswith(g[:-1]) and len(g) > 1), (g, w)
    return names


SUBPROCESS_CASES = [("connections", 80), ("http", 80), ("tls", 120), ("servers", 120)]


@pytest.fixture(scope="session")
def subprocess_runs(short300k: Path) -> Iterator[dict[tuple[str, int], Future[str]]]:
    """The CLI runs of test_subprocess_tables_fit, started together, two at a time: each analyses
    the capture in its own process (~7 s of CPU) while pytest only waits, and CI has 2 cores.
    Session-scoped so that they start before short300k_result is made, which they overlap."""
    with ThreadPoolExecutor(max_workers=2) as pool:
        yield {case: pool.submit(run_cli, short300k, *case) for case in SUBPROCESS_CASES}


@pytest.mark.parametrize(("verb", "width"), SUBPROCESS_CASES)
def test_subprocess_tables_fit(
    verb: str,
    width: int,
    subprocess_runs: dict[tuple[str, int], Future[str]],
    short300k_result: pcapan.Result,
) -> None:
    out = subprocess_runs[(verb, width)].result()
    names = check(out, getattr(short300k_result, verb), verb, width)
    assert len(names) >= 4, names


@pytest.mark.parametrize(
    ("verb", "width"),
    # (findings: its server and client are addresses, never cut; the short mix has 1,345 rows)
    [("connections", 120), ("http", 120), ("tls", 80), ("servers", 80), ("findings", 80)],
)
def test_in_process_tables_fit(
    verb: str, width: int, short300k_result: pcapan.Result, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = run_in_process(short300k_result, verb, width, monkeypatch)
    names = check(out, getattr(short300k_result, verb), verb, width)
    assert len(names) >= 4, names


def test_what_80_columns_show(
    short300k_result: pcapan.Result, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The readable core of each verb at 80 columns (the README's list): who talked to whom
    for connections, the request and its answer for http, the server and its TLS for tls."""
    shown = {
        verb: parse(run_in_process(short300k_result, verb, 80, monkeypatch))[1] for verb in VERBS
    }
    assert {"uid", "orig_h", "resp_h", "resp_p", "service"} <= set(shown["connections"])
    assert {"method", "host", "uri", "status_code", "ttfb_s"} <= set(shown["http"])
    assert {"server_name", "version", "cipher"} <= set(shown["tls"])
    assert {"server_name", "resp_h", "resp_p", "connections", "requests"} <= set(shown["servers"])


def test_long_text_is_cut_with_an_ellipsis(
    short300k_result: pcapan.Result, monkeypatch: pytest.MonkeyPatch
) -> None:
    """http at 80 columns: some URIs are longer than their column (the short mix has
    /news/2023/..., /search?q=... paths), and those end in "…" with the start of the URI."""
    out = run_in_process(short300k_result, "http", 80, monkeypatch)
    _, names, rows, _ = parse(out)
    uris = [r[names.index("uri")] for r in rows]
    assert any(u.endswith("…") for u in uris)
    full = short300k_result.http.uri.tolist()
    assert all(u == f or f.startswith(u[:-1]) for u, f in zip(uris, full, strict=True))


def test_wide_shows_every_column_whole(
    short300k_result: pcapan.Result, monkeypatch: pytest.MonkeyPatch
) -> None:
    """--wide: every column of the table, nothing cut, however long the lines."""
    out = run_in_process(short300k_result, "tls", 80, monkeypatch, "--wide", "--limit", "50")
    _, names, rows, caption = parse(out)
    df = short300k_result.tls.head(50)
    assert names == list(df.columns) and caption == "" and len(rows) == 50
    for i, name in enumerate(names):
        assert [r[i] for r in rows] == expected(df, name, None), name


def test_columns_keep_their_order_and_fit(
    short300k_result: pcapan.Result, monkeypatch: pytest.MonkeyPatch
) -> None:
    """--columns: those columns in that order; at 80 columns the ones that do not fit are left
    out from the end and named."""
    want = ["uid", "ts", "community_id", "orig_h", "resp_h", "history"]
    out = run_in_process(
        short300k_result,
        "connections",
        80,
        monkeypatch,
        "--columns",
        ",".join(want),
        "--limit",
        "20",
    )
    _, names, rows, caption = parse(out)
    assert names == want[: len(names)] and len(names) < len(want)
    assert caption.startswith(f"{len(want) - len(names)} more column(s) do not fit in 80: ")
    assert max(cell_len(line) for line in out.splitlines()) <= 80


def test_fit_columns_rule() -> None:
    """The rule on its own, widths by hand: borders cost 3 a column plus 1."""
    cols = [("a", 10, 10), ("b", 5, 30), ("c", 8, 8)]
    # 1 + (10+3) + (5+3) + (8+3) = 33 fits in 40; 7 to spare go to b (text up to 30).
    assert fit_columns(cols, ["a", "b", "c"], 40) == (["a", "b", "c"], {"a": 10, "b": 12, "c": 8})
    # In 30: a and b (1 + 13 + 8 = 22); c (11 more) does not fit; 8 spare widen b.
    assert fit_columns(cols, ["a", "b", "c"], 30) == (["a", "b"], {"a": 10, "b": 13})
    # Keep order c, a, b; display order stays a, b, c; b no longer fits (1+11+13+8 = 33 > 30).
    assert fit_columns(cols, ["c", "a", "b"], 30) == (["a", "c"], {"a": 10, "c": 8})
    # The first column always, even when the terminal is narrower.
    assert fit_columns(cols, ["a", "b", "c"], 5) == (["a"], {"a": 10})


def test_wide_characters_and_escapes_count_by_cell() -> None:
    """A Host of CJK characters (two terminal cells each) and one with an escape sequence: cut
    by cells, the ESC shown as \\x1b, no line wider than the terminal."""
    df = pd.DataFrame(
        {
            "uid": pd.array(["C1", "C2"], dtype="string"),
            "host": pd.array(["例え.テスト" * 6, "\x1b]0;x\x07" + "a" * 60], dtype="string"),
            "n": pd.array([1234567, None], dtype="Int64"),
        }
    )
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        print_table(df, "t", width=40)
    out = buf.getvalue()
    assert "\x1b" not in out and "\\x1b]0;x\\x07" in out
    assert max(cell_len(line) for line in out.splitlines()) <= 40
    _, names, rows, _ = parse(out)
    assert names == ["uid", "host", "n"]
    assert rows[0][0] == "C1" and rows[0][2] == "1234567" and rows[1][2] == "-"
    assert rows[0][1].endswith("…") and "例え.テスト".startswith(rows[0][1][:2])


def test_analyze_top_servers_keep_addresses_whole(
    short300k_result: pcapan.Result, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`pcapan analyze` at 80 columns: the top-servers table folded "(198.51.100.11:443)" over
    two lines. Now one line per server; the client and the server's (address:port) whole, the
    name cut instead; the numbers those of the servers table (facts.top_servers, the same rows
    the README describes: most connections, then most requests)."""
    from pcapan.report.facts import top_servers

    out = run_in_process(short300k_result, "analyze", 80, monkeypatch, "--no-progress")
    assert max(cell_len(line) for line in out.splitlines()) <= 80
    block = out[out.index("servers (top 10 of") :]
    _, names, rows, caption = parse(block)
    want = top_servers(short300k_result, 10)
    assert len(rows) == 10 and names[:4] == ["client", "server", "conns", "reqs"]
    for r, (_, w) in zip(rows, want.iterrows(), strict=True):
        addr = f"{w.resp_h}:{w.resp_p}"
        assert r[0] == w.orig_h
        assert r[1] == addr or r[1].endswith(f"({addr})"), (r[1], addr)
        assert (int(r[2]), int(r[3])) == (w.connections, w.requests)


def test_findings_keep_server_addresses_whole(
    short300k_result: pcapan.Result, monkeypatch: pytest.MonkeyPatch
) -> None:
    """findings at 80 columns: the server column (an address and port) is printed whole, never
    cut with an ellipsis; the summary sentence is what gets cut."""
    out = run_in_process(short300k_result, "findings", 80, monkeypatch)
    _, names, rows, _ = parse(out)
    f = short300k_result.findings
    i = names.index("server")
    assert [r[i] for r in rows] == f.server.astype(str).tolist()
