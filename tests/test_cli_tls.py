"""`pcapan tls` on the TLS sample (expected values: samples/README.md, checked there with tshark)."""

from __future__ import annotations

import io
from contextlib import redirect_stdout
from pathlib import Path

import pandas as pd

from pcapan.cli import main

SAMPLES = Path(__file__).resolve().parent.parent / "samples"


def _run(*argv: str) -> tuple[int, str]:
    buf = io.StringIO()
    with redirect_stdout(buf):
        rc = main(list(argv))
    return rc, buf.getvalue()


def test_tls_verb_csv() -> None:
    rc, out = _run(
        "tls",
        str(SAMPLES / "tls.pcap"),
        "--format",
        "csv",
        "--columns",
        "version,server_name,resumption,established",
    )
    assert rc == 0
    df = pd.read_csv(io.StringIO(out))
    # samples/README.md: six connections to port 18443, SNI pcapan.test; one TLS 1.3, five 1.2 of
    # which one resumes by ticket and one by session id.
    assert len(df) == 6
    assert sorted(df.version) == ["TLSv12"] * 5 + ["TLSv13"]
    assert set(df.server_name) == {"pcapan.test"}
    assert sorted(df.resumption.dropna()) == ["session_id", "ticket"]
    assert df.established.all()


def test_tls_verb_default_table() -> None:
    rc, out = _run("tls", str(SAMPLES / "tls.pcap"))
    assert rc == 0
    assert "tls (6)" in out


def test_tls_schema_lists_every_column() -> None:
    rc, out = _run("schema", "tls", "--format", "markdown")
    assert rc == 0
    for col in ("ja4", "handshake_rtts", "cipher_mozilla_level", "early_data_accepted", "cert_san"):
        assert f"`{col}`" in out
