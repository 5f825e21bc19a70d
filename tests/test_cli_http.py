"""`pcapan http` and `pcapan extract` (and ``pcapan.extract``) on samples and built captures.

Expected bodies come from samples/README.md ("Served files": sha256 of each docroot file, made
before any capture existed), not from pcapan.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
from contextlib import redirect_stdout
from pathlib import Path

import pandas as pd

import pcapan
from pcapan.cli import main

from .tcpgen import Conv, write

SAMPLES = Path(__file__).resolve().parent.parent / "samples"
# samples/README.md, "Served files"
SHA = {
    "/index.html": "29ee48639c58fd3522d751b7dadcf5a3604df04248716505cb3c9fa6bec6ac3f",
    "/small.txt": "7a64ce35e8e3fbf9b02d3f620f0753175c2ff86829eaf4c13314745243566ccc",
    "/medium.bin": "2a85c07913a238e9ee3c554a941f71ba1da4a397305425a00fbe505a5d297944",
    "/large.bin": "115f565a8615e428b1e00712862f1a66ebb085f1070a78e8e4887453f50ec8b0",
}


def _run(*argv: str) -> tuple[int, str]:
    buf = io.StringIO()
    with redirect_stdout(buf):
        rc = main(list(argv))
    return rc, buf.getvalue()


def test_http_verb_csv() -> None:
    rc, out = _run("http", str(SAMPLES / "http-keepalive.pcap"), "--format", "csv")
    assert rc == 0
    df = pd.read_csv(io.StringIO(out))
    # samples/README.md: curl 1 fetches index, small, large, medium; curl 2 small, index.
    assert list(df.uri) == [
        "/index.html",
        "/small.txt",
        "/large.bin",
        "/medium.bin",
        "/small.txt",
        "/index.html",
    ]
    assert list(df.trans_depth) == [1, 2, 3, 4, 1, 2]
    assert set(df.status_code) == {200}


def test_http_verb_unknown_column(capsys) -> None:  # noqa: ANN001
    assert main(["http", str(SAMPLES / "http-keepalive.pcap"), "--columns", "uri,nope"]) == 2
    assert "unknown column(s): nope" in capsys.readouterr().err


def test_extract_sample_bodies(tmp_path: Path) -> None:
    rc, out = _run("extract", str(SAMPLES / "http-keepalive.pcap"), "-o", str(tmp_path))
    assert rc == 0 and "wrote 6 object(s)" in out
    with open(tmp_path / "manifest.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [r["uri"] for r in rows] == [
        "/index.html",
        "/small.txt",
        "/large.bin",
        "/medium.bin",
        "/small.txt",
        "/index.html",
    ]
    for r in rows:
        data = (tmp_path / r["file"]).read_bytes()
        assert hashlib.sha256(data).hexdigest() == SHA[r["uri"]] == r["sha256"] == r["body_sha256"]
        assert int(r["size"]) == len(data)
    # the extension comes from the Content-Type, the name never from the URI
    assert {Path(r["file"]).suffix for r in rows} == {".html", ".txt", ".bin"}
    assert not list(tmp_path.glob(".part-*"))


def _gzip_conv(uri: bytes, body: bytes, encoding: bytes = b"gzip", chunked: bool = False) -> Conv:
    c = Conv()
    c.handshake()
    c.send(True, "PA", b"GET " + uri + b" HTTP/1.1\r\nHost: x\r\n\r\n")
    head = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Encoding: " + encoding + b"\r\n"
    if chunked:
        framed = b"".join(
            b"%x\r\n%s\r\n" % (len(body[i : i + 100]), body[i : i + 100])
            for i in range(0, len(body), 100)
        )
        c.send(False, "PA", head + b"Transfer-Encoding: chunked\r\n\r\n" + framed + b"0\r\n\r\n")
    else:
        c.send(False, "PA", head + b"Content-Length: %d\r\n\r\n" % len(body) + body)
    c.send(True, "A")
    c.close()
    return c


def test_extract_decode_gzip_chunked(tmp_path: Path) -> None:
    text = b"pcapan extract test line\n" * 200
    packed = gzip.compress(text, mtime=0)
    cap = write(tmp_path / "gz.pcap", [_gzip_conv(b"/../../etc/passwd", packed, chunked=True)])
    res, manifest = pcapan.extract(cap, tmp_path / "out", decode=True)
    assert len(manifest) == 1
    row = manifest.iloc[0]
    assert row.decoded and row.note == ""
    assert (tmp_path / "out" / row.file).read_bytes() == text
    # the table's hash is of the de-chunked, still encoded body (as Zeek's files framework)
    assert res.http.resp_body_sha256.iloc[0] == hashlib.sha256(packed).hexdigest()
    # a hostile URI never becomes a path
    assert "passwd" not in row.file and "/" not in row.file
    assert not (tmp_path / "etc").exists()


def test_extract_without_decode_keeps_encoding(tmp_path: Path) -> None:
    packed = gzip.compress(b"abc" * 100, mtime=0)
    cap = write(tmp_path / "gz.pcap", [_gzip_conv(b"/a", packed)])
    _, manifest = pcapan.extract(cap, tmp_path / "out")
    assert (tmp_path / "out" / manifest.file.iloc[0]).read_bytes() == packed
    assert not manifest.decoded.iloc[0]


def test_extract_unsupported_encoding_noted(tmp_path: Path) -> None:
    cap = write(
        tmp_path / "br.pcap", [_gzip_conv(b"/a", b"\x1b\x02\x00not really brotli", encoding=b"br")]
    )
    _, manifest = pcapan.extract(cap, tmp_path / "out", decode=True)
    assert not manifest.decoded.iloc[0]
    assert "not decoded" in manifest.note.iloc[0]


def test_extract_corrupt_gzip_kept_raw(tmp_path: Path) -> None:
    bad = b"\x1f\x8b\x08\x00garbage-not-deflate" * 3
    cap = write(tmp_path / "bad.pcap", [_gzip_conv(b"/a", bad)])
    _, manifest = pcapan.extract(cap, tmp_path / "out", decode=True)
    row = manifest.iloc[0]
    assert not row.decoded and "decoding failed" in row.note
    assert (tmp_path / "out" / row.file).read_bytes() == bad


def test_extract_unwritable_dir(tmp_path: Path, capsys) -> None:  # noqa: ANN001
    blocker = tmp_path / "file"
    blocker.write_text("x")
    assert main(["extract", str(SAMPLES / "http-keepalive.pcap"), "-o", str(blocker / "sub")]) == 2
    assert "cannot create output directory" in capsys.readouterr().err
