"""The command line: verbs, outputs, and one clear line (exit 2) for bad input."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

SAMPLES = Path(__file__).resolve().parent.parent / "samples"
KEEPALIVE = SAMPLES / "http-keepalive.pcap"


def run(*args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pcapan.cli", *args],
        capture_output=True,
        input=stdin.decode("latin-1") if stdin is not None else None,
        text=True,
    )


def test_analyze_writes_tables(tmp_path: Path) -> None:
    p = run("analyze", str(KEEPALIVE), "-o", str(tmp_path), "--no-progress")
    assert p.returncode == 0, p.stderr
    assert "TCP connections" in p.stdout
    conns = pd.read_csv(tmp_path / "connections.csv")
    # samples/README.md: two connections, both closed with FIN/FIN (SF)
    assert len(conns) == 2 and set(conns.conn_state) == {"SF"}
    assert (tmp_path / "anomalies.csv").exists()


@pytest.mark.parametrize("fmt", ["parquet", "json"])
def test_analyze_other_formats(tmp_path: Path, fmt: str) -> None:
    p = run("analyze", str(KEEPALIVE), "-o", str(tmp_path), "--format", fmt)
    assert p.returncode == 0, p.stderr
    if fmt == "parquet":
        df = pd.read_parquet(tmp_path / "connections.parquet")
    else:
        df = pd.read_json(tmp_path / "connections.jsonl", lines=True)
    assert len(df) == 2


def test_analyze_json_summary() -> None:
    p = run("analyze", str(KEEPALIVE), "--json")
    assert p.returncode == 0
    s = json.loads(p.stdout)
    assert s["tcp_connections"] == 2 and s["frames"] == s["ip_packets"]["tcp"]
    # samples/README.md: 4 + 2 GETs, all answered 200
    assert s["http_requests"] == 6 and s["http_responses"] == 6


def test_connections_csv() -> None:
    p = run(
        "connections",
        str(KEEPALIVE),
        "--format",
        "csv",
        "--columns",
        "uid,orig_p,resp_p,conn_state",
    )
    assert p.returncode == 0
    df = pd.read_csv(io.StringIO(p.stdout))
    assert list(df.columns) == ["uid", "orig_p", "resp_p", "conn_state"] and len(df) == 2


def test_stdin() -> None:
    p = subprocess.run(
        [sys.executable, "-m", "pcapan.cli", "connections", "-", "--format", "csv"],
        input=KEEPALIVE.read_bytes(),
        capture_output=True,
    )
    assert p.returncode == 0 and p.stdout.count(b"\n") == 3


def _file(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda d: d / "missing.pcap", "no such file"),
        (lambda d: d, "is a directory"),
        (lambda d: _file(d / "e.pcap", b""), "empty file"),
        (lambda d: _file(d / "t.pcap", b"hello world, not a capture"), "not a pcap or pcapng"),
    ],
)
def test_bad_input_one_line_exit_2(tmp_path: Path, make, message: str) -> None:  # noqa: ANN001
    path = make(tmp_path)
    p = run("analyze", str(path))
    assert p.returncode == 2
    assert "Traceback" not in p.stderr
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0]


def test_truncated_capture_is_analysed_with_warning(tmp_path: Path) -> None:
    data = KEEPALIVE.read_bytes()
    cut = tmp_path / "cut.pcap"
    cut.write_bytes(data[: len(data) // 2 + 7])  # ends inside a record
    p = run("connections", str(cut), "--format", "csv")
    assert p.returncode == 0
    assert "warning" in p.stderr and "Traceback" not in p.stderr
    df = pd.read_csv(io.StringIO(p.stdout))
    assert len(df) >= 1  # the first connection starts in the first half


def test_corrupt_record_length_becomes_anomaly(tmp_path: Path) -> None:
    import struct

    data = bytearray(KEEPALIVE.read_bytes())
    # Find the 10th record header and give it an impossible captured length.
    pos = 24
    for _ in range(9):
        pos += 16 + struct.unpack_from("<I", data, pos + 8)[0]
    struct.pack_into("<I", data, pos + 8, 0x7FFFFFFF)
    bad = tmp_path / "bad.pcap"
    bad.write_bytes(bytes(data))
    import pcapan

    res = pcapan.analyze(bad)
    assert "bad_record_length" in set(res.anomalies.name)
    assert len(res.connections) >= 1


def test_schema_verb() -> None:
    p = run("schema", "connections")
    assert p.returncode == 0 and "conn_state" in p.stdout
    assert run("schema", "nope").returncode == 2


def _user0_capture(tmp_path: Path) -> Path:
    """samples/http-keepalive.pcap (141 frames, as capinfos counts) relabelled as link type 147
    (LINKTYPE_USER0, reserved for private use: no analyser will ever decode it)."""
    data = bytearray(KEEPALIVE.read_bytes())
    data[20:24] = (147).to_bytes(4, "little")
    path = tmp_path / "user0.pcap"
    path.write_bytes(bytes(data))
    return path


@pytest.mark.parametrize(
    "verb",
    [
        ["analyze", "--no-progress"],
        ["analyze", "--json"],
        ["connections"],
        ["http", "--format", "csv"],
        ["tls", "--format", "json"],
        ["rtt"],
        ["servers"],
        ["export", "-o", "{out}"],
        ["extract", "-o", "{out}"],
        ["report", "--no-plots", "-o", "{out}/r.html"],
        ["plot", "--kind", "reuse", "-o", "{out}/r.png"],
    ],
)
def test_unsupported_linktype_is_said_on_stderr(tmp_path: Path, verb: list[str]) -> None:
    """Issue 13 (8): frames of an unsupported link layer passed with exit 0, empty tables and
    nothing on stderr. Every verb that analyses now says so in one line per link type, naming
    the file and the number of frames (141: capinfos -c of the sample)."""
    cap = _user0_capture(tmp_path)
    (tmp_path / "out").mkdir()
    args = [a.replace("{out}", str(tmp_path / "out")) for a in verb]
    p = run(args[0], str(cap), *args[1:])
    assert "Traceback" not in p.stderr
    lines = [ln for ln in p.stderr.splitlines() if "link type" in ln]
    assert lines == [
        f"pcapan: warning: {cap}: 141 frame(s) of link type 147 not analysed: pcapan does not decode "
        "this link layer (counted only; see https://www.tcpdump.org/linktypes.html)"
    ], p.stderr


def test_unsupported_linktype_warning_per_source(tmp_path: Path) -> None:
    from pcapan.api import analyze

    cap = _user0_capture(tmp_path)
    res = analyze([KEEPALIVE, cap])
    assert [w for w in res.warnings if "link type" in w] == [
        f"{cap}: 141 frame(s) of link type 147 not analysed: pcapan does not decode this link layer "
        "(counted only; see https://www.tcpdump.org/linktypes.html)"
    ]
    assert len(res.connections) == 2  # the Ethernet sample is still analysed


def test_same_file_twice_is_warned(tmp_path: Path) -> None:
    """Issue 13 (1): `pcapan analyze F F` silently counted the second reading's segments as
    retransmissions. It still analyses both readings, but says so once on stderr."""
    p = run("analyze", str(KEEPALIVE), str(KEEPALIVE), "--json")
    assert p.returncode == 0 and "Traceback" not in p.stderr
    assert p.stderr.splitlines() == [
        f"pcapan: warning: {KEEPALIVE}: given twice; its packets are analysed twice (the second "
        "reading's segments count as retransmissions)"
    ]
    assert json.loads(p.stdout)["frames"] == 2 * 141  # capinfos -c: 141 frames in the sample


def test_same_file_twice_python_warning(tmp_path: Path) -> None:
    """The library warns with DuplicateSourceWarning (and in Result.warnings) for the same path,
    a symlink, a hard link and a byte-identical copy; not for a file of the same size whose
    bytes differ, nor for distinct files."""
    import warnings

    from pcapan.api import analyze
    from pcapan.errors import DuplicateSourceWarning

    data = KEEPALIVE.read_bytes()
    copy, link, hard, other = (
        tmp_path / n for n in ("copy.pcap", "link.pcap", "hard.pcap", "other.pcap")
    )
    copy.write_bytes(data)
    link.symlink_to(KEEPALIVE)
    hard.hardlink_to(copy)
    other.write_bytes(data[:-1] + bytes([data[-1] ^ 1]))  # same size, last payload byte differs
    for second, why in (
        (KEEPALIVE, "given twice"),
        (link, f"the same file as {KEEPALIVE}"),
        (copy, f"a copy of {KEEPALIVE} (same size and SHA-256)"),
    ):
        with pytest.warns(DuplicateSourceWarning, match="analysed twice") as rec:
            res = analyze([KEEPALIVE, second])
        assert len(rec) == 1
        assert res.warnings == [
            f"{second}: {why}; its packets are analysed twice (the second reading's "
            "segments count as retransmissions)"
        ]
    with pytest.warns(DuplicateSourceWarning, match=f"the same file as {copy}"):
        analyze([copy, hard])
    with warnings.catch_warnings():
        warnings.simplefilter("error", DuplicateSourceWarning)
        assert analyze([KEEPALIVE, other]).warnings == []
        assert analyze([KEEPALIVE, SAMPLES / "http-close.pcap"]).warnings == []


def _compress(comp: str, data: bytes) -> bytes:
    import gzip
    import lzma

    return {"gz": gzip.compress, "xz": lzma.compress}[comp](data)


@pytest.mark.parametrize("sample", ["http-keepalive.pcap", "http-keepalive.pcapng"])
# gz and xz decode in small steps, so half the file yields frames; bz2 (900 kB blocks) and zstd
# (one frame here) give nothing from half of this small sample: "cannot read", a different path.
@pytest.mark.parametrize("comp", ["gz", "xz"])
def test_truncated_compressed_warning_names_the_file_once(
    tmp_path: Path, sample: str, comp: str
) -> None:
    """A compressed capture cut in half: one warning that names the file once. Before, the
    decompressor's message carried the name and the analysis added it again
    ("trunc.pcap.gz: trunc.pcap.gz: decompression failed", issue 15)."""
    import pcapan

    packed = _compress(comp, (SAMPLES / sample).read_bytes())
    cut = tmp_path / f"trunc.{comp}"
    cut.write_bytes(packed[: len(packed) // 2])
    (w,) = pcapan.analyze(cut).warnings
    assert w.startswith(f"{cut}: ") and w.count(cut.name) == 1, w
    assert "(stopped at frame" in w


def test_truncated_gzip_cli_warning_line(tmp_path: Path) -> None:
    """The same on the terminal: one line on stderr, the file named once."""
    import gzip

    cut = tmp_path / "trunc.pcap.gz"
    packed = gzip.compress(KEEPALIVE.read_bytes())
    cut.write_bytes(packed[: len(packed) // 2])
    p = run("connections", str(cut), "--format", "csv")
    assert p.returncode == 0, p.stderr
    (line,) = p.stderr.splitlines()
    assert line.startswith(f"pcapan: warning: {cut}: decompression failed (")
    assert line.count("trunc.pcap.gz") == 1, line
