"""Captured strings that are hostile to terminals and spreadsheets, or not UTF-8 (issue 13, items
5, 6 and 9): one decoding rule for every table, control characters escaped in every text output
a terminal may show, exact files otherwise.

The captures in tests/captures are real traffic on 127.0.0.1 made by
tests/captures/make_hostile.py (a Python socket client/server for HTTP, openssl s_client/s_server
for TLS). Expected values come from the bytes tshark reads (``-e tcp.payload``,
``tls.handshake.extensions_server_name``), decoded by the rule of pcapan/proto/text.py: UTF-8,
each byte that is not part of valid UTF-8 as the four characters ``\\xNN``.
"""

from __future__ import annotations

import csv
import io
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

import pcapan
from pcapan.export.tables import read_csv

CAPS = Path(__file__).resolve().parent / "captures"
HTTP_CAP = CAPS / "hostile-http.pcap"
TLS_CAP = CAPS / "hostile-tls.pcap"
TSHARK = shutil.which("tshark")

# The bytes sent (tests/captures/make_hostile.py), checked against tshark below.
HOST = b"\x1b]0;title\x07\x1b[2J.example"
URI = b"/a\xff/caf\xc3\xa9?q=%1b"
UA = b"=cmd|' /C calc'!A0"
REFERER = b"+1\x00z\xfe"
REASON = b"\x1b[31mOK\xff"
CTYPE = b"=cmd|' /C calc'!A0"
SNIS = [b"\x1b]0;title\x07\x1b[2J", b"bad\xffname.example"]

# The rule, written out by hand for each value (not computed by the code under test).
TABLE = {
    "host": "\x1b]0;title\x07\x1b[2J.example",
    "uri": "/a\\xff/café?q=%1b",
    "user_agent": "=cmd|' /C calc'!A0",
    "referrer": "+1\x00z\\xfe",
    "status_msg": "\x1b[31mOK\\xff",
    "content_type": "=cmd|' /C calc'!A0",
}
SNI_TABLE = ["\x1b]0;title\x07\x1b[2J", "bad\\xffname.example"]
# What a terminal is shown (pcapan.frames.text.printable): controls as \xNN and, in a value where
# an escape was made, a backslash doubled.
SHOWN = {
    "host": "\\x1b]0;title\\x07\\x1b[2J.example",
    "uri": "/a\\xff/café?q=%1b",
    "referrer": "+1\\x00z\\\\xfe",
    "status_msg": "\\x1b[31mOK\\\\xff",
}
SNI_SHOWN = ["\\x1b]0;title\\x07\\x1b[2J", "bad\\xffname.example"]
# Bytes a terminal obeys: C0 controls other than LF (and CR of CSV line ends), DEL.
RAW_CONTROL = re.compile(r"[\x00-\x09\x0b\x0c\x0e-\x1f\x7f]")


def run(*args: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([sys.executable, "-m", "pcapan.cli", *args], capture_output=True)


@pytest.mark.skipif(TSHARK is None, reason="tshark not installed")
def test_captures_hold_the_hostile_bytes() -> None:
    """Ground truth: the request and response bytes as tshark reads them, and the SNI of each
    ClientHello (tshark prints raw ESC/BEL; it shows 0xff as U+FFFD, so the SNI's bytes are
    found in the ClientHello payload, with tshark's length)."""
    out = subprocess.run(
        [
            TSHARK or "tshark",
            "-r",
            str(HTTP_CAP),
            "-Y",
            "tcp.len>0",
            "-T",
            "fields",
            "-e",
            "tcp.payload",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    req, resp = (bytes.fromhex(h) for h in out.split())
    assert req.startswith(b"GET " + URI + b" HTTP/1.1\r\n")
    for name, value in ((b"Host", HOST), (b"User-Agent", UA), (b"Referer", REFERER)):
        assert b"\r\n" + name + b": " + value + b"\r\n" in req
    assert resp.startswith(b"HTTP/1.1 200 " + REASON + b"\r\nContent-Type: " + CTYPE + b"\r\n")
    out = subprocess.run(
        [
            TSHARK or "tshark",
            "-r",
            str(TLS_CAP),
            "-Y",
            "tls.handshake.type==1",
            "-T",
            "fields",
            "-e",
            "tls.handshake.extensions_server_name_len",
            "-e",
            "tcp.payload",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    rows = [line.split("\t") for line in out.splitlines()]
    assert [int(n) for n, _ in rows] == [len(s) for s in SNIS]
    for (_, payload), sni in zip(rows, SNIS, strict=True):
        assert len(sni).to_bytes(2, "big") + sni in bytes.fromhex(payload)


def test_tables_follow_one_rule() -> None:
    """HTTP fields were latin-1 (``/aÿ/cafÃ©``) where the SNI was ``\\xff``: now both decode
    UTF-8 and write other bytes as ``\\xNN``; control characters stay in the DataFrame."""
    http = pcapan.analyze(HTTP_CAP).http
    assert len(http) == 1
    for col, want in TABLE.items():
        assert http[col].iloc[0] == want, col
    tls = pcapan.analyze(TLS_CAP).tls
    assert list(tls.server_name) == SNI_TABLE


@pytest.mark.parametrize(
    ("verb", "cap", "col", "want"),
    [
        ("http", HTTP_CAP, "host", [SHOWN["host"]]),
        ("http", HTTP_CAP, "uri", [SHOWN["uri"]]),
        ("http", HTTP_CAP, "referrer", [SHOWN["referrer"]]),
        ("http", HTTP_CAP, "status_msg", [SHOWN["status_msg"]]),
        ("tls", TLS_CAP, "server_name", SNI_SHOWN),
    ],
)
def test_csv_on_stdout_escapes_control_characters(
    verb: str, cap: Path, col: str, want: list[str]
) -> None:
    """`pcapan http/tls --format csv` printed raw ESC/BEL/NUL (the SNI retitled and cleared the
    terminal); now escaped as in the table view."""
    p = run(verb, str(cap), "--format", "csv")
    assert p.returncode == 0, p.stderr
    assert not RAW_CONTROL.search(p.stdout.decode("utf-8")), p.stdout
    df = pd.read_csv(io.BytesIO(p.stdout), dtype=str, keep_default_na=False)
    assert list(df[col]) == want


@pytest.mark.parametrize(("verb", "cap"), [("http", HTTP_CAP), ("tls", TLS_CAP)])
def test_json_on_stdout_is_escaped_and_exact(verb: str, cap: Path) -> None:
    p = run(verb, str(cap), "--format", "json")
    assert p.returncode == 0, p.stderr
    assert not RAW_CONTROL.search(p.stdout.decode("utf-8"))
    rows = [json.loads(line) for line in p.stdout.decode().splitlines()]
    if verb == "http":
        assert {c: rows[0][c] for c in TABLE} == TABLE
    else:
        assert [r["server_name"] for r in rows] == SNI_TABLE


def test_table_view_escapes() -> None:
    p = run("tls", str(TLS_CAP), "--columns", "server_name")
    assert p.returncode == 0 and not RAW_CONTROL.search(p.stdout.decode())
    assert SNI_SHOWN[0] in p.stdout.decode()


def test_csv_files_exact_unless_safe(tmp_path: Path) -> None:
    """Export CSV reads back exactly (control characters and all); --safe-csv files carry no raw
    control character and no formula-leading cell."""
    res = pcapan.analyze([HTTP_CAP, TLS_CAP])
    exact, safe = tmp_path / "exact", tmp_path / "safe"
    assert run("export", str(HTTP_CAP), str(TLS_CAP), "-o", str(exact)).returncode == 0
    assert run("export", str(HTTP_CAP), str(TLS_CAP), "-o", str(safe), "--safe-csv").returncode == 0
    for name in ("http", "tls"):
        pd.testing.assert_frame_equal(
            read_csv(exact / f"{name}.csv", name), res.tables()[name], check_exact=True
        )
    assert "\x1b]0;title\x07" in (exact / "tls.csv").read_text(encoding="utf-8")
    for name in ("http", "tls"):
        text = (safe / f"{name}.csv").read_text(encoding="utf-8")
        assert not RAW_CONTROL.search(text), name
    with open(safe / "http.csv", newline="", encoding="utf-8") as f:
        row = next(csv.DictReader(f))
    assert row["host"] == SHOWN["host"] and row["uri"] == SHOWN["uri"]
    assert row["referrer"] == "'" + SHOWN["referrer"]  # begins with +
    assert row["user_agent"] == row["content_type"] == "'=cmd|' /C calc'!A0"
    with open(safe / "tls.csv", newline="", encoding="utf-8") as f:
        assert [r["server_name"] for r in csv.DictReader(f)] == SNI_SHOWN


def test_jsonl_and_parquet_keep_the_table_text(tmp_path: Path) -> None:
    res = pcapan.analyze([HTTP_CAP, TLS_CAP])
    res.export(tmp_path / "j", "jsonl")
    res.export(tmp_path / "p", "parquet")
    rows = [json.loads(line) for line in (tmp_path / "j" / "http.jsonl").read_text().splitlines()]
    assert {c: rows[0][c] for c in TABLE} == TABLE
    rows = [json.loads(line) for line in (tmp_path / "j" / "tls.jsonl").read_text().splitlines()]
    assert [r["server_name"] for r in rows] == SNI_TABLE
    assert list(pd.read_parquet(tmp_path / "p" / "tls.parquet").server_name) == SNI_TABLE


def test_zeek_logs_write_bytes_as_zeek_does(tmp_path: Path) -> None:
    """Zeek's ASCII writer: a byte that is not UTF-8 as \\xNN (not \\\\xNN), control characters
    as \\xNN, valid UTF-8 as itself (the SNI was written \\\\xff before)."""
    res = pcapan.analyze([HTTP_CAP, TLS_CAP])
    res.export(tmp_path, "zeek")

    def column(log: str, name: str) -> list[str]:
        lines = (tmp_path / log).read_text(encoding="utf-8").splitlines()
        fields = next(ln for ln in lines if ln.startswith("#fields")).split("\t")[1:]
        return [ln.split("\t")[fields.index(name)] for ln in lines if not ln.startswith("#")]

    assert column("http.log", "uri") == ["/a\\xff/café?q=%1b"]
    assert column("http.log", "host") == ["\\x1b]0;title\\x07\\x1b[2J.example"]
    assert column("http.log", "referrer") == ["+1\\x00z\\xfe"]
    assert column("ssl.log", "server_name") == [
        "\\x1b]0;title\\x07\\x1b[2J",
        "bad\\xffname.example",
    ]


def test_extract_safe_csv_manifest(tmp_path: Path) -> None:
    """extract's manifest.csv kept formula-leading cells; --safe-csv (and safe_csv=True)
    neutralises them and escapes control characters, as the table exports do."""
    plain, safe, lib = tmp_path / "plain", tmp_path / "safe", tmp_path / "lib"
    assert run("extract", str(HTTP_CAP), "-o", str(plain)).returncode == 0
    p = run("extract", str(HTTP_CAP), "-o", str(safe), "--safe-csv")
    assert p.returncode == 0, p.stderr
    _, manifest = pcapan.extract(HTTP_CAP, lib, safe_csv=True)
    assert manifest["content_type"].iloc[0] == "=cmd|' /C calc'!A0"  # the DataFrame stays exact

    def row(d: Path) -> dict[str, str]:
        with open(d / "manifest.csv", newline="", encoding="utf-8") as f:
            rows = list(csv.DictReader(f))
        assert len(rows) == 1
        return rows[0]

    assert row(plain)["content_type"] == "=cmd|' /C calc'!A0"
    for d in (safe, lib):
        r = row(d)
        assert r["content_type"] == "'=cmd|' /C calc'!A0"
        assert r["host"] == SHOWN["host"]
        assert not RAW_CONTROL.search((d / "manifest.csv").read_text(encoding="utf-8"))
        # the body itself is written unchanged: 23 bytes (Content-Length, read with tshark above)
        assert (d / r["file"]).read_bytes() == b'=HYPERLINK("http://x")\n'


def test_servers_csv_and_analyze_json_have_no_raw_control_characters() -> None:
    """The servers table names servers by Host/SNI (captured text); analyze's JSON summary is
    JSON-escaped. Neither may print a raw control byte."""
    p = run("servers", str(HTTP_CAP), str(TLS_CAP), "--format", "csv")
    assert p.returncode == 0 and not RAW_CONTROL.search(p.stdout.decode("utf-8"))
    names = set(pd.read_csv(io.BytesIO(p.stdout), dtype=str).server_name)
    assert {SHOWN["host"], SNI_SHOWN[0], SNI_SHOWN[1]} <= names
    p = run("analyze", str(HTTP_CAP), str(TLS_CAP), "--json")
    assert p.returncode == 0 and not RAW_CONTROL.search(p.stdout.decode("utf-8"))
    # tshark -T fields -e tcp.stream: one stream in the HTTP capture, two in the TLS one
    assert json.loads(p.stdout)["tcp_connections"] == 3
