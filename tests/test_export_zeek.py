"""Zeek ASCII logs (``Result.to_zeek`` / ``pcapan export --format zeek``).

Three independent checks:
* a real third-party reader, ``parsezeeklogs`` (its TSV reader honours the header lines and
  converts every Zeek type), loads each log, and its values equal the pcapan tables (and, for
  the crafted capture of tests/exportgen.py, the values that follow from the packets);
* a strict reader written here from the format (header lines in Zeek's order and spelling,
  equal numbers of #fields/#types/cells, every cell valid for its #types entry);
* the header lines and the #types of every field are compared with real Zeek logs in
  ../shared/corpus (Zeek btest baselines; the salesforce/ja3 ssl.log for ja3 and for a real
  #open stamp): same directive lines byte for byte, same type for the same field name, and
  Zeek's field order.
The escaping cases follow Zeek's source (src/threading/formatters/Ascii.cc: reserved values
escaped on their first character; src/Desc.cc and src/util.cc: the backslash as ``\\\\``,
separators and unprintable bytes as ``\\xNN`` lower-case; valid UTF-8 kept).
"""

from __future__ import annotations

import ipaddress
import re
from pathlib import Path

import pandas as pd
import pytest

import pcapan
from pcapan.export.zeek import CONN, HTTP, LOGS, SSL, WEIRD, ZeekLogSpec, escape, render

from . import exportgen

SAMPLES = Path(__file__).resolve().parent.parent / "samples"
CORPUS = Path(__file__).resolve().parent.parent.parent / "shared" / "corpus"
# samples/README.md: curl keep-alive over HTTP, TLS with ALPN (three handshakes), an aborted
# download (one anomaly).
SAMPLE_FILES = [SAMPLES / "http-keepalive.pcap", SAMPLES / "tls-alpn.pcap", SAMPLES / "rst.pcap"]
HEADER = ["#separator \\x09", "#set_separator\t,", "#empty_field\t(empty)", "#unset_field\t-"]
STAMP = re.compile(r"^\d{4}-\d\d-\d\d-\d\d-\d\d-\d\d$")
CELL = {
    "time": re.compile(r"^\d+\.\d{6}$"),
    "interval": re.compile(r"^-?\d+\.\d{6}$"),
    "count": re.compile(r"^\d+$"),
    "port": re.compile(r"^\d+$"),
    "bool": re.compile(r"^[TF]$"),
}


@pytest.fixture(scope="module")
def result(tmp_path_factory: pytest.TempPathFactory) -> pcapan.Result:
    crafted = exportgen.build(tmp_path_factory.mktemp("cap") / "crafted.pcap")
    return pcapan.analyze([*SAMPLE_FILES, crafted])


@pytest.fixture(scope="module")
def logs(result: pcapan.Result, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("zeek")
    result.to_zeek(out)
    return out


def strict_read(path: Path) -> tuple[dict[str, str], list[str], list[str], list[list[str]]]:
    """Directives, fields, types and rows of a Zeek TSV log, failing on anything off-format."""
    lines = path.read_text(encoding="utf-8").split("\n")
    assert lines[-1] == "", "the file ends with a newline"
    lines = lines[:-1]
    assert lines[:4] == HEADER
    assert lines[4].startswith("#path\t") and STAMP.match(lines[5].removeprefix("#open\t"))
    assert lines[6].startswith("#fields\t") and lines[7].startswith("#types\t")
    assert lines[-1].startswith("#close\t") and STAMP.match(lines[-1].removeprefix("#close\t"))
    fields = lines[6].split("\t")[1:]
    types = lines[7].split("\t")[1:]
    assert len(fields) == len(types) == len(set(fields))
    rows = [ln.split("\t") for ln in lines[8:-1]]
    for row in rows:
        assert not row[0].startswith("#")
        assert len(row) == len(fields)
        for cell, ztype, name in zip(row, types, fields, strict=True):
            assert cell, f"{name}: empty cell (Zeek writes - or (empty))"
            if cell == "-":
                continue
            if ztype in CELL:
                assert CELL[ztype].match(cell), (name, cell)
            elif ztype == "addr":
                ipaddress.ip_address(cell)
            elif ztype.startswith(("set[", "vector[")):
                assert cell == "(empty)" or all(cell.split(","))
            assert "\t" not in cell and "\n" not in cell
    return {"path": lines[4].split("\t", 1)[1]}, fields, types, rows


def test_strict_format(logs: Path, result: pcapan.Result) -> None:
    for spec in LOGS:
        directives, fields, types, rows = strict_read(logs / f"{spec.path}.log")
        assert directives["path"] == spec.path
        assert fields == [f.name for f in spec.fields] and types == [f.type for f in spec.fields]
        assert len(rows) == len(result.tables()[spec.table]) > 0


def test_open_close_are_first_and_last_packet(logs: Path, result: pcapan.Result) -> None:
    lines = (logs / "conn.log").read_text().splitlines()
    first = pd.Timestamp(result.stats["first_ts_ns"], tz="UTC").strftime("%Y-%m-%d-%H-%M-%S")
    last = pd.Timestamp(result.stats["last_ts_ns"], tz="UTC").strftime("%Y-%m-%d-%H-%M-%S")
    assert lines[5] == f"#open\t{first}" and lines[-1] == f"#close\t{last}"


def _epoch(ts: pd.Timestamp) -> float:
    return round(ts.value / 1e9, 6)


def test_read_by_parsezeeklogs(logs: Path, result: pcapan.Result) -> None:
    pz = pytest.importorskip("parsezeeklogs")
    conn = list(pz.read_zeek(logs / "conn.log"))
    df = result.connections
    assert [r["uid"] for r in conn] == list(df.uid)
    assert [r["id.orig_h"] for r in conn] == list(df.orig_h)
    assert [r["id.resp_p"] for r in conn] == list(df.resp_p)
    assert [r["history"] for r in conn] == list(df.history)
    assert [r["conn_state"] for r in conn] == list(df.conn_state)
    assert [r["orig_ip_bytes"] for r in conn] == list(df.orig_ip_bytes)
    assert [r["ts"] for r in conn] == [_epoch(t) for t in df.ts]
    assert [r["duration"] for r in conn] == [round(d, 6) for d in df.duration_s]
    assert {r["proto"] for r in conn} == {"tcp"} and {r["ip_proto"] for r in conn} == {6}
    assert all(r["local_orig"] is None and r["tunnel_parents"] is None for r in conn)
    # Zeek names the TLS analyzer "ssl"
    tls_uids = set(result.tls.uid)
    assert all(r["service"] == "ssl" for r in conn if r["uid"] in tls_uids)

    http = list(pz.read_zeek(logs / "http.log"))
    h = result.http
    assert [r["uid"] for r in http] == list(h.uid)
    assert [r["status_code"] for r in http] == list(h.status_code)
    assert all(r["tags"] == [] for r in http)  # an empty set is "(empty)"
    crafted = [r for r in http if r["id.orig_p"] in (exportgen.PORT_A, exportgen.PORT_B)]
    a, b = sorted(crafted, key=lambda r: r["id.orig_p"])
    assert a["uri"] == exportgen.URI_A and a["method"] == "GET" and a["status_code"] == 200
    assert a["host"] == exportgen.HOST  # written "\x2d", read back as "-", not as unset
    assert a["user_agent"] == exportgen.USER_AGENT  # tab and backslash escaped and undone
    assert a["status_msg"] == ""  # the empty reason phrase: (empty), not unset
    assert a["response_body_len"] == len(exportgen.BODY) and a["trans_depth"] == 1
    assert b["user_agent"] is None and b["status_msg"] == "OK"

    ssl = list(pz.read_zeek(logs / "ssl.log"))
    t = result.tls
    assert [r["server_name"] for r in ssl] == list(t.server_name)
    assert [r["version"] for r in ssl] == list(t.version)
    assert [r["established"] for r in ssl] == [bool(v) for v in t.established]
    assert [r["ja3"] for r in ssl] == list(t.ja3)

    weird = list(pz.read_zeek(logs / "weird.log"))
    an = result.anomalies
    assert [r["name"] for r in weird] == list(an.name)
    conn_by_uid = df.set_index("uid")
    for r in weird:
        if r["uid"] is not None:
            assert r["id.resp_p"] == conn_by_uid.loc[r["uid"], "resp_p"]


def test_crafted_rows_raw(logs: Path) -> None:
    """The exact text of the crafted exchange A and B in http.log (what Zeek itself writes)."""
    _, fields, _, rows = strict_read(logs / "http.log")
    by_port = {int(r[fields.index("id.orig_p")]): dict(zip(fields, r, strict=True)) for r in rows}
    a, b = by_port[exportgen.PORT_A], by_port[exportgen.PORT_B]
    assert a["host"] == "\\x2d"
    assert a["uri"] == "=cmd|' /C calc'!A0"
    assert a["user_agent"] == 'a\\x09b\\\\c, "q"'
    assert a["status_msg"] == "(empty)" and b["user_agent"] == "-"
    assert b["uri"] == "/x\\xffy"  # the wire byte 0xff is not UTF-8
    # exportgen.py: the SYN of A is the first packet, at T0 + 1 ms (Conv.send's default step)
    _, cf, _, crow = strict_read(logs / "conn.log")
    conn = {int(r[cf.index("id.orig_p")]): dict(zip(cf, r, strict=True)) for r in crow}
    assert conn[exportgen.PORT_A]["ts"] == f"{exportgen.T0 + 0.001:.6f}"
    assert (
        conn[exportgen.PORT_A]["service"] == "http" and conn[exportgen.PORT_A]["conn_state"] == "SF"
    )


@pytest.mark.parametrize(
    ("value", "kw", "expected"),
    [
        ("", {}, "(empty)"),
        ("-", {}, "\\x2d"),
        ("(empty)", {}, "\\x28empty)"),
        ("--", {}, "--"),
        ("a\tb", {}, "a\\x09b"),
        ("a\\b", {}, "a\\\\b"),
        ("a\x00\x1f\x7fz", {}, "a\\x00\\x1f\\x7fz"),
        ("\\xff", {}, "\\xff"),  # table text for the byte 0xff (pcapan.proto.text) -> Zeek's \xff
        ("café", {}, "café"),
        ("a,b", {}, "a,b"),
        ("a,b", {"in_set": True}, "a\\x2cb"),
    ],
)
def test_escape(value: str, kw: dict[str, bool], expected: str) -> None:
    assert escape(value, **kw) == expected


def test_render_types() -> None:
    assert render(None, "string") == "-" and render(pd.NA, "count") == "-"
    assert render(pd.Timestamp(1_700_000_000_123_456_789, tz="UTC"), "time") == "1700000000.123457"
    assert render(0.5, "interval") == "0.500000" and render(True, "bool") == "T"
    assert (
        render([], "set[string]") == "(empty)"
        and render(["a", "b,c"], "vector[string]") == "a,b\\x2cc"
    )


def _corpus_logs(path: str) -> list[Path]:
    found = []
    for p in sorted(CORPUS.rglob("*.log")):
        head = p.read_text(encoding="utf-8", errors="replace").splitlines()[:12]
        if f"#path\t{path}" in head and any(x.startswith("#types\t") for x in head):
            found.append(p)
    return found


def _header(p: Path) -> tuple[list[str], dict[str, str], list[str]]:
    # btest baselines start with a "###" note; multi-trace ones interleave "#file <trace>" lines
    lines = [
        x
        for x in p.read_text(encoding="utf-8", errors="replace").splitlines()
        if not x.startswith(("###", "#file "))
    ]
    fields = next(x for x in lines if x.startswith("#fields\t")).split("\t")[1:]
    types = next(x for x in lines if x.startswith("#types\t")).split("\t")[1:]
    return lines, dict(zip(fields, types, strict=True)), fields


@pytest.mark.corpus
@pytest.mark.parametrize("spec", [CONN, HTTP, SSL, WEIRD], ids=lambda s: s.path)
def test_matches_real_zeek_logs(spec: ZeekLogSpec, logs: Path) -> None:
    if not CORPUS.is_dir():
        pytest.skip("../shared/corpus not present")
    real = _corpus_logs(spec.path)
    assert real, f"no {spec.path}.log in the corpus"
    ours_lines, ours_types, ours_fields = _header(logs / f"{spec.path}.log")
    compared: set[str] = set()
    for p in real:
        lines, types, fields = _header(p)
        assert lines[:4] == ours_lines[:4] == HEADER, p
        assert lines[4] == ours_lines[4] == f"#path\t{spec.path}"
        for name, ztype in types.items():
            if name in ours_types:
                assert ours_types[name] == ztype, (p, name)
                compared.add(name)
        # Zeek's field order: the fields both logs have come in the same order
        common = [f for f in fields if f in ours_types]
        assert common == [f for f in ours_fields if f in types], p
    # every field that Zeek's own logs have was checked (the rest: ja3 and community_id below)
    extras = {f.name for f in spec.fields} - compared
    assert extras <= {"ja3s", "ja4", "community_id"}, extras


@pytest.mark.corpus
def test_open_stamp_like_real_zeek(logs: Path) -> None:
    ja3 = (
        CORPUS
        / "ja3/testing/Traces/ssl-chrome.pcap.gt/testing/Baseline/ja3-tests.chrome_test1/ssl.log"
    )
    if not ja3.is_file():
        pytest.skip("../shared/corpus not present")
    real = ja3.read_text().splitlines()
    ours = (logs / "ssl.log").read_text().splitlines()
    assert real[5].split("\t")[0] == ours[5].split("\t")[0] == "#open"
    assert STAMP.match(real[5].split("\t")[1]) and STAMP.match(ours[5].split("\t")[1])
    assert real[-1].split("\t")[0] == ours[-1].split("\t")[0] == "#close"
