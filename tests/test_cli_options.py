"""Every option of the CLI validated (issue 15): a bad value is exit status 2 and one line on
stderr naming the option, never a traceback; output files get their directory created, as
`export` creates its own."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import pcapan

SAMPLES = Path(__file__).resolve().parent.parent / "samples"
F = str(SAMPLES / "http-keepalive.pcap")


def run(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pcapan.cli", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env={**os.environ, "COLUMNS": "100"},
        timeout=300,
    )


BAD: list[tuple[list[str], str]] = [
    # --idle-timeout, on every verb that analyses: 0 or less ended a connection at each packet
    (["analyze", F, "--idle-timeout", "-5"], "--idle-timeout"),
    (["analyze", F, "--idle-timeout", "0"], "--idle-timeout"),
    (["analyze", F, "--idle-timeout", "nan"], "--idle-timeout"),
    (["analyze", F, "--idle-timeout", "inf"], "--idle-timeout"),
    (["analyze", F, "--idle-timeout", "soon"], "--idle-timeout"),
    (["connections", F, "--idle-timeout", "0"], "--idle-timeout"),
    (["export", F, "-o", "out", "--idle-timeout", "-1"], "--idle-timeout"),
    (["extract", F, "-o", "out", "--idle-timeout", "0"], "--idle-timeout"),
    (["plot", F, "--kind", "tls", "--idle-timeout", "-1"], "--idle-timeout"),
    (["report", F, "--idle-timeout", "0"], "--idle-timeout"),
    (["live", "-i", "lo", "--idle-timeout", "0"], "--idle-timeout"),
    # --limit: 1 or more (0 would show nothing; leave it out for every row)
    (["connections", F, "--limit", "-1"], "--limit"),
    (["http", F, "--limit", "0"], "--limit"),
    (["tls", F, "--limit", "many"], "--limit"),
    (["rtt", F, "--limit", "1.5"], "--limit"),
    (["servers", F, "--limit", "-3"], "--limit"),
    (["plot", F, "--kind", "waterfall", "--limit", "0"], "--limit"),
    (["plot", F, "--kind", "rtt", "--limit", "-1"], "--limit"),
    # --max-half-open: 0 (no bound) or more
    (["servers", F, "--max-half-open", "-1"], "--max-half-open"),
    (["report", F, "--max-half-open", "x"], "--max-half-open"),
    # live's counts and times
    (["live", "-i", "lo", "--duration", "0"], "--duration"),
    (["live", "-i", "lo", "--duration", "-2"], "--duration"),
    (["live", "-i", "lo", "--count", "0"], "--count"),
    (["live", "-i", "lo", "--interval", "-1"], "--interval"),
    (["live", "-i", "lo", "--interval", "0"], "--interval"),
    # choices, required arguments, column lists
    (["connections", F, "--format", "xml"], "--format"),
    (["plot", F], "--kind"),
    (["analyze"], "FILE"),
    (["export", F], "-o/--output"),
    (["tls", F, "--columns", ","], "--columns"),
    (["connections", F, "--wide", "--format", "csv"], "--wide"),
    (["http", F, "--columns", "uri,nope"], "nope"),
    (["plot", F, "--kind", "tls", "-o", "figure.gif"], ".png"),
    (["plot", F, "--kind", "tls", "--uid", "C1"], "--uid"),
    (["schema", "nope"], "nope"),
]


@pytest.mark.parametrize(("argv", "names"), BAD, ids=[" ".join(a[:1] + a[2:]) for a, _ in BAD])
def test_bad_value_is_one_line_exit_2(argv: list[str], names: str, tmp_path: Path) -> None:
    p = run(*argv, cwd=tmp_path)
    assert p.returncode == 2, (p.returncode, p.stderr)
    assert "Traceback" not in p.stderr
    lines = p.stderr.splitlines()
    assert len(lines) == 1 and names in lines[0], p.stderr
    assert lines[0].startswith("pcapan"), lines[0]
    assert p.stdout == ""
    assert not (tmp_path / "out").exists()  # refused before anything is written


def test_output_directories_are_created(tmp_path: Path) -> None:
    """`report -o` and `plot -o` into a directory that does not exist: created, as `export`
    does (before: FileNotFoundError and a traceback)."""
    rep = tmp_path / "new" / "dir" / "r.html"
    p = run("report", F, "-o", str(rep), "--no-plots", "--no-progress")
    assert p.returncode == 0, p.stderr
    assert rep.is_file() and rep.read_text().lstrip().lower().startswith("<!doctype html")
    fig = tmp_path / "plots" / "deep" / "tls.svg"
    p = run("plot", F, "--kind", "tls", "-o", str(fig))
    assert p.returncode == 0, p.stderr
    assert fig.is_file() and "<svg" in fig.read_text()
    out = tmp_path / "tables" / "deep"
    p = run("export", F, "-o", str(out))
    assert p.returncode == 0 and (out / "manifest.json").is_file(), p.stderr


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["report", F, "-o", "{file}/r.html"], "cannot create the directory of"),
        (["plot", F, "--kind", "tls", "-o", "{file}/x.png"], "cannot create the directory of"),
        (["report", F, "-o", "{dir}"], "is a directory"),
        (["plot", F, "--kind", "tls", "-o", "{dir}/x.png"], "is a directory"),
    ],
)
def test_unwritable_output_is_one_line(tmp_path: Path, argv: list[str], message: str) -> None:
    """Where the directory cannot be made (a file is in the way) or the output names a
    directory: one line, exit 2, before the analysis."""
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    (tmp_path / "d" / "x.png").mkdir(parents=True)
    args = [a.format(file=blocker, dir=tmp_path / "d") for a in argv]
    p = run(*args, "--max-half-open", "5")
    assert p.returncode == 2 and "Traceback" not in p.stderr, p.stderr
    (line,) = p.stderr.splitlines()
    assert line.startswith("pcapan: error: ") and message in line, line


def test_library_refuses_the_same_idle_timeouts() -> None:
    """The same rule in the API as in the CLI."""
    for bad in (0, -5, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="idle_timeout_s"):
            pcapan.Analyzer(idle_timeout_s=bad)
    # A positive one is used: samples/README.md, http-keepalive.pcap has 2 connections.
    assert len(pcapan.analyze(F, idle_timeout_s=60).connections) == 2


def test_idle_timeout_reaches_every_analysing_verb(tmp_path: Path) -> None:
    """`pcapan connections --idle-timeout` is the API's idle_timeout_s: with 0.001 s the
    keep-alive connections split wherever the capture is silent longer than 1 ms, as
    pcapan.analyze(..., idle_timeout_s=0.001) splits them."""
    want = len(pcapan.analyze(F, idle_timeout_s=0.001).connections)
    assert want > 2  # the split happens, so the option is seen
    p = run("connections", F, "--idle-timeout", "0.001", "--format", "csv", "--columns", "uid")
    assert p.returncode == 0, p.stderr
    assert len(p.stdout.splitlines()) == want + 1


@pytest.mark.skipif(os.geteuid() != 0, reason="live capture needs root")
def test_live_write_creates_its_directory(tmp_path: Path) -> None:
    """`live --write` follows the same rule as every other output: before, a missing directory
    was refused ("cannot write"); now it is created. Loopback, half a second."""
    out = tmp_path / "new" / "dir" / "cap.pcapng"
    p = run("live", "-i", "lo", "--write", str(out), "--duration", "0.5", "--no-dashboard")
    assert p.returncode == 0, p.stderr
    assert out.is_file() and out.read_bytes()[:4] == b"\x0a\x0d\x0d\x0a"  # pcapng SHB
