"""`pcapan analyze` in the terminal: rich tables sized to the terminal, their contents against
the tables, samples/README.md and tshark, --format table|json, captured text that cannot drive
the terminal, and the progress bar (stderr, terminals only, big files only)."""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

import pcapan
import pcapan.cli as cli
from pcapan.render import TERMINAL_TOP_SERVERS

from .tcpgen import Conv, write

SAMPLES = Path(__file__).resolve().parent.parent / "samples"
TSHARK = shutil.which("tshark")
# Every sample: more client-server pairs than the terminal shows, TLS, an anomaly (rst.pcap).
ALL = sorted(str(p) for p in SAMPLES.glob("*.pcap"))


def analyze(
    *args: str, columns: int = 200, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """`pcapan analyze` in a subprocess, stdout a pipe, the terminal width given by $COLUMNS."""
    e = {**os.environ, "COLUMNS": str(columns), **(env or {})}
    e.pop("LINES", None)
    return subprocess.run(
        [sys.executable, "-m", "pcapan.cli", "analyze", *args],
        capture_output=True,
        text=True,
        env=e,
        timeout=600,
    )


def tables(out: str) -> dict[str, list[list[str]]]:
    """The rich tables of ``out`` by title: the rows' cells, stripped (header rows, drawn with
    heavy verticals, left out). Titles are the centred line above each box."""
    found: dict[str, list[list[str]]] = {}
    title, rows = "", None
    for line in out.splitlines():
        s = line.strip()
        if s[:1] in "┌┏":
            rows = []
        elif s[:1] in "└┗" and rows is not None:
            found[title] = rows
            rows = None
        elif rows is not None and s.startswith("│"):
            rows.append([c.strip() for c in s.strip("│").split("│")])
        elif rows is None and s:
            title = s
    return found


def table(out: str, prefix: str) -> list[list[str]]:
    hits = [k for k in tables(out) if k.startswith(prefix)]
    assert len(hits) == 1, (prefix, list(tables(out)))
    return tables(out)[hits[0]]


@pytest.fixture(scope="module")
def all_samples() -> tuple[pcapan.Result, str]:
    p = analyze(*ALL)
    assert p.returncode == 0, p.stderr
    return pcapan.analyze(ALL), p.stdout


# -- width -------------------------------------------------------------------------------------
@pytest.mark.parametrize("width", [80, 200])
def test_tables_fit_the_terminal(width: int, all_samples: tuple[pcapan.Result, str]) -> None:
    """No line is wider than $COLUMNS; at 200 the tables do use more than 80 (the file list and
    the server names are long), so the width is followed, not a fixed 80."""
    out = all_samples[1] if width == 200 else analyze(*ALL, columns=width).stdout
    widths = [len(line) for line in out.splitlines()]
    assert max(widths) <= width
    if width == 200:
        assert max(widths) > 80
    # All sections drawn at both widths.
    for title in (
        "capture",
        "connection states / services",
        "servers (top",
        "TLS versions",
        "ALPN",
        "anomalies (",
    ):
        assert any(k.startswith(title) for k in tables(out)), (title, list(tables(out)))


# -- contents ------------------------------------------------------------------------------------
def test_summary_rows(all_samples: tuple[pcapan.Result, str]) -> None:
    from pcapan.report.facts import summary_rows

    res, out = all_samples
    rows = table(out, "capture")
    labels = [r[0] for r in rows if r[0]]
    assert labels == [label for label, _ in summary_rows(res.summary())]
    assert dict(r for r in rows if r[0])["TCP connections"] == f"{len(res.connections):,}"


def test_top_servers_are_the_servers_tables_first_rows(
    all_samples: tuple[pcapan.Result, str],
) -> None:
    """The servers table ordered by connections, then requests (stable), cut to
    TERMINAL_TOP_SERVERS: client, address, connections and requests of every row agree."""
    res, out = all_samples
    srv = res.servers.sort_values(["connections", "requests"], ascending=False, kind="stable")
    assert len(srv) > TERMINAL_TOP_SERVERS  # so the cut is tested
    rows = table(out, f"servers (top {TERMINAL_TOP_SERVERS} of {len(srv)}")
    assert len(rows) == TERMINAL_TOP_SERVERS
    want = srv.head(TERMINAL_TOP_SERVERS)
    for r, (_, w) in zip(rows, want.iterrows(), strict=True):
        assert r[0] == w.orig_h
        addr = f"[{w.resp_h}]:{w.resp_p}" if ":" in w.resp_h else f"{w.resp_h}:{w.resp_p}"
        assert r[1] == addr or r[1].endswith(f"({addr})"), (r, addr)
        assert (int(r[2]), int(r[3])) == (w.connections, w.requests)


def test_keepalive_server_row() -> None:
    """samples/README.md: http-keepalive.pcap is 4 + 2 GETs on 2 connections to 127.0.0.1:18080:
    2 connections, 6 requests, reuse (6 - 2) / 6 = 67%, one connection open at a time, no missed
    reuse; no TLS and no anomaly, so neither table is drawn."""
    out = analyze(str(SAMPLES / "http-keepalive.pcap")).stdout
    rows = table(out, "servers (1,")
    assert [r[:7] for r in rows] == [["127.0.0.1", "127.0.0.1:18080", "2", "6", "67%", "1", "0"]]
    titles = list(tables(out))
    assert not [t for t in titles if t.startswith(("TLS", "ALPN", "anomalies"))], titles


def test_tls_versions_match_tshark() -> None:
    """tls-versions.pcap, ServerHellos by hand:
    ``tshark -r samples/tls-versions.pcap -Y tls.handshake.type==2 -T fields -e tcp.stream
    -e tls.handshake.version -e tls.handshake.extensions.supported_version`` prints
        0 0x0303
        1 0x0303
        2 0x0303
        3 0x0303 0x0304
    (TLS 1.3 keeps 0x0303 in the legacy field and says 0x0304 in supported_versions): three TLS
    1.2 and one TLS 1.3."""
    out = analyze(str(SAMPLES / "tls-versions.pcap")).stdout
    assert table(out, "TLS versions") == [["TLSv12", "3"], ["TLSv13", "1"]]
    if TSHARK:
        p = subprocess.run(
            [
                TSHARK,
                "-r",
                str(SAMPLES / "tls-versions.pcap"),
                "-Y",
                "tls.handshake.type==2",
                "-T",
                "fields",
                "-e",
                "tls.handshake.version",
                "-e",
                "tls.handshake.extensions.supported_version",
            ],
            capture_output=True,
            text=True,
            timeout=120,
        )
        names = {"0x0303": "TLSv12", "0x0304": "TLSv13"}
        seen = Counter(
            names[(line.split("\t") + [""])[1] or line.split("\t")[0]]
            for line in p.stdout.splitlines()
            if line
        )
        assert [[v, str(n)] for v, n in sorted(seen.items())] == table(out, "TLS versions")


def test_alpn_offered_and_selected() -> None:
    """tls-alpn.pcap (samples/README.md; tshark tls.handshake.extensions_alpn_str): every
    ClientHello offers "h2,http/1.1"; the two TLS 1.2 ServerHellos select h2 and http/1.1; the
    TLS 1.3 server's choice is in its encrypted extensions, so it is not counted as selected."""
    out = analyze(str(SAMPLES / "tls-alpn.pcap")).stdout
    assert table(out, "ALPN") == [["h2", "3", "1"], ["http/1.1", "3", "1"]]


def test_anomaly_counts() -> None:
    """rst.pcap: the 131072-byte response is cut by the client's RST after 23168 body bytes
    (samples/README.md): one http_truncated."""
    out = analyze(str(SAMPLES / "rst.pcap")).stdout
    assert table(out, "anomalies (1) by kind") == [["http_truncated", "1"]]


# -- formats -------------------------------------------------------------------------------------
def test_format_json_is_the_json_flag() -> None:
    keep = str(SAMPLES / "http-keepalive.pcap")
    a, b = analyze(keep, "--format", "json"), analyze(keep, "--json")
    assert a.returncode == b.returncode == 0
    assert json.loads(a.stdout) == json.loads(b.stdout)
    assert json.loads(a.stdout)["tcp_connections"] == 2
    t, d = analyze(keep, "--format", "table"), analyze(keep)
    assert t.stdout == d.stdout and "servers (1," in t.stdout


def test_file_format_needs_output(tmp_path: Path) -> None:
    p = analyze(str(SAMPLES / "http-keepalive.pcap"), "--format", "parquet")
    assert p.returncode == 2 and "--format parquet is a file format: it needs -o DIR" in p.stderr
    # json with -o: the summary as JSON and the tables as JSON Lines (its meaning before "table").
    p = analyze(str(SAMPLES / "http-keepalive.pcap"), "--format", "json", "-o", str(tmp_path))
    assert p.returncode == 0 and json.loads(p.stdout)["tcp_connections"] == 2
    assert (tmp_path / "connections.jsonl").is_file()
    # A file format with -o: terminal tables.
    p = analyze(str(SAMPLES / "http-keepalive.pcap"), "--format", "zeek", "-o", str(tmp_path / "z"))
    assert (
        p.returncode == 0 and "servers (1," in p.stdout and (tmp_path / "z" / "conn.log").is_file()
    )


# -- hostile text ----------------------------------------------------------------------------------
HOST = "[/b][bold red]x\x1b]0;PWNED\x07\x1b[2Jevil"
URI = "/[/]red[link=http://x]y"


def test_captured_text_cannot_drive_the_terminal(tmp_path: Path) -> None:
    """A Host with rich markup and terminal escape sequences (set the window title, clear the
    screen) and a URI with markup: shown as text, control characters as \\xNN, no ESC or BEL
    reaches stdout, no markup error (before, `[/b]` raised rich's MarkupError)."""
    c = Conv()
    c.handshake()
    c.send(
        True, "PA", b"GET " + URI.encode() + b" HTTP/1.1\r\nHost: " + HOST.encode() + b"\r\n\r\n"
    )
    c.send(False, "PA", b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
    c.close()
    cap = write(tmp_path / "x.pcap", [c])
    assert list(pcapan.analyze(cap).http.host) == [HOST]
    shown = "[/b][bold red]x\\x1b]0;PWNED\\x07\\x1b[2Jevil"
    p = analyze(str(cap), columns=250)
    assert p.returncode == 0, p.stderr
    assert "\x1b" not in p.stdout and "\x07" not in p.stdout
    assert table(p.stdout, "servers")[0][1] == f"{shown} (10.0.0.2:80)"
    h = subprocess.run(
        [sys.executable, "-m", "pcapan.cli", "http", str(cap), "--columns", "host,uri"],
        capture_output=True,
        text=True,
        env={**os.environ, "COLUMNS": "250"},
        timeout=300,
    )
    assert h.returncode == 0, h.stderr
    assert "\x1b" not in h.stdout and table(h.stdout, "http (1)") == [[shown, URI]]


# -- progress --------------------------------------------------------------------------------------
class FakeTerminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def _run_in_process(
    monkeypatch: pytest.MonkeyPatch,
    stderr: io.StringIO,
    *args: str,
    path: Path = SAMPLES / "http-keepalive.pcap",
) -> str:
    out = io.StringIO()
    monkeypatch.setattr(sys, "stderr", stderr)
    monkeypatch.setattr(sys, "stdout", out)
    assert cli.main(["analyze", str(path), "--json", *args]) == 0
    monkeypatch.undo()
    return out.getvalue()


@pytest.mark.parametrize("deep", [False, True])
def test_progress_bar_on_a_terminal_for_big_files(
    deep: bool, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With the size threshold lowered to 0 the sample counts as big: on a terminal's stderr the
    bar shows the file name and bytes read of total (the file's size), stdout keeps only JSON.
    Deep: under a 150-character directory on an 80-column terminal the bar still fits on its
    line, since it shows the base name (CI once checked out the repo under a longer path and the
    full path squeezed the byte counts into a wrapped column)."""
    src = SAMPLES / "http-keepalive.pcap"
    size_kb = f"{src.stat().st_size / 1000:.1f}"
    path = src
    if deep:
        path = tmp_path / ("d" * 150) / src.name
        path.parent.mkdir()
        shutil.copy(src, path)
    monkeypatch.setenv("TERM", "xterm")
    monkeypatch.setenv("COLUMNS", "80")
    monkeypatch.setattr(cli, "PROGRESS_MIN_BYTES", 0)
    err = FakeTerminal()
    out = _run_in_process(monkeypatch, err, path=path)
    assert "http-keepalive.pcap" in err.getvalue() and f"{size_kb}/{size_kb} kB" in err.getvalue()
    assert "d" * 20 not in err.getvalue()
    assert json.loads(out)["frames"] > 0


@pytest.mark.parametrize("case", ["pipe", "small", "no-progress"])
def test_no_progress_bar(case: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """No bar when stderr is not a terminal, when the file is under PROGRESS_MIN_BYTES (32 MiB
    by default), or with --no-progress."""
    monkeypatch.setenv("TERM", "xterm")
    if case != "small":
        monkeypatch.setattr(cli, "PROGRESS_MIN_BYTES", 0)
    err = io.StringIO() if case == "pipe" else FakeTerminal()
    _run_in_process(monkeypatch, err, *(["--no-progress"] if case == "no-progress" else []))
    assert err.getvalue() == ""


def test_no_progress_bar_into_a_real_pipe() -> None:
    """A real process with stderr a pipe and the threshold at 0: nothing on stderr."""
    code = (
        "import sys, pcapan.cli as c; c.PROGRESS_MIN_BYTES = 0; "
        f"sys.exit(c.main(['analyze', {str(SAMPLES / 'http-keepalive.pcap')!r}, '--json']))"
    )
    p = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "TERM": "xterm"},
    )
    assert p.returncode == 0 and p.stderr == "" and json.loads(p.stdout)["frames"] > 0
