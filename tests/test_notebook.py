"""Notebook manners (issue 15): a short repr/_repr_html_ for Result that builds no table, and the
same defaults in the library and the CLI."""

from __future__ import annotations

import html
import shutil
import subprocess
from pathlib import Path

import pytest

import pcapan
from pcapan.frames.human import duration

SAMPLES = Path(__file__).resolve().parent.parent / "samples"


def test_repr_is_short_and_builds_nothing() -> None:
    """Before, ``repr(res)`` was the dataclass repr of every record (52 MB on a real capture).
    Now a few lines; the counts are the tables' lengths, and no table is built to print them
    (the tables are built afterwards, for the comparison)."""
    res = pcapan.analyze([SAMPLES / "http-keepalive.pcap", SAMPLES / "tls.pcap"])
    text, page = repr(res), res._repr_html_()
    assert res._frames == {}, list(res._frames)
    assert len(text.splitlines()) <= 6 and len(page) < 2_000
    for name in ("connections", "http", "tls", "rtt", "anomalies"):
        assert f"{name} {len(getattr(res, name)):,}" in text, name
    # samples/README.md: http-keepalive.pcap 2 connections, 6 requests; tls.pcap 6 handshakes.
    assert "connections 8," in text and "http 6," in text and "tls 6," in text
    assert "servers, clients, missed_reuse: built on first access" in text
    res.servers  # noqa: B018 (built now: then counted)
    assert f"servers {len(res.servers):,}" in repr(res)
    assert "http-keepalive.pcap" in text and "http-keepalive.pcap" in page


def test_repr_of_a_large_capture(short300k: Path, short300k_result: pcapan.Result) -> None:
    """The 300,000-packet capture: under 2,000 characters (repr and HTML), no table built by
    either. Frames, first and last timestamp from capinfos (-T -r -a -e -c -S prints
    ``300000  1700000000.000000  1700000205.098240``): 2023-11-14 22:13:20 UTC plus 205.098 s."""
    res = short300k_result
    built = set(res._frames)
    text, page = repr(res), res._repr_html_()
    assert set(res._frames) == built
    assert len(text) < 2_000 and len(page) < 2_000, (len(text), len(page))
    assert "frames    300,000" in text
    assert (
        "2023-11-14 22:13:20.000000 .. 2023-11-14 22:16:45.098240 UTC (205.098 s = 3 min 25 s)"
        in text
    )
    for name in ("connections", "http", "tls", "rtt", "anomalies"):
        assert f"{name} {len(getattr(res, name)):,}" in text, name
    assert html.escape("2023-11-14 22:13:20.000000 .. ") in page


def test_capinfos_agrees_on_the_span(short300k: Path) -> None:
    """The oracle of the test above, so that its constants are not copied from pcapan."""
    if not shutil.which("capinfos"):
        pytest.skip("capinfos not installed")
    out = subprocess.run(
        ["capinfos", "-T", "-r", "-a", "-e", "-c", "-S", str(short300k)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split("\t")
    assert [x.strip() for x in out[1:]] == ["300000", "1700000000.000000", "1700000205.098240"]


def test_repr_names_many_files_briefly() -> None:
    """Thirty files: three names and "+27 more", not thirty paths."""
    res = pcapan.Result([], [], {"sources": [f"/captures/part-{i:03d}.pcap" for i in range(30)]})
    text = repr(res)
    assert "part-002.pcap, +27 more" in text and "part-003" not in text


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0.5, "0.500 s"),
        (205.09824, "205.098 s = 3 min 25 s"),
        (3 * 3600 + 60, "10,860.000 s = 3 h 1 min"),
        # two captures years apart (issue 15: "duration 178296399.904 s")
        (178296399.904, "178,296,399.904 s = 5.6 years"),
    ],
)
def test_duration_for_people(seconds: float, text: str) -> None:
    # 178296399.904 / 86400 / 365.25 = 5.65 years
    assert duration(seconds) == text


def test_timeseq_without_uid_draws_the_biggest_connection(tmp_path: Path) -> None:
    """``res.plot.timeseq()`` needed a uid where the CLI picks the connection with most payload.
    http-keepalive.pcap (samples/README.md): the first connection carries /large.bin (131,072
    bytes), the second only /small.txt and /index.html: the first is drawn, by the library and
    by the CLI alike."""
    import matplotlib

    matplotlib.use("Agg")
    import sys

    f = SAMPLES / "http-keepalive.pcap"
    res = pcapan.analyze(f)
    big = res.http.uid[res.http.uri == "/large.bin"].item()
    auto, chosen = res.plot.timeseq(), res.plot.timeseq(big)

    def data(fig: object) -> list[list[float]]:
        return [line.get_xydata().tolist() for ax in fig.axes for line in ax.get_lines()]  # type: ignore[attr-defined]

    assert data(auto) == data(chosen) and data(auto)
    p = subprocess.run(
        [
            sys.executable,
            "-m",
            "pcapan.cli",
            "plot",
            str(f),
            "--kind",
            "timeseq",
            "-o",
            str(tmp_path / "t.png"),
        ],
        capture_output=True,
        text=True,
    )
    assert p.returncode == 0 and f"timeseq of {big} (the connection with most payload" in p.stderr


def test_timeseq_without_any_connection() -> None:
    with pytest.raises(pcapan.errors.PcapanError, match="no TCP connection"):
        pcapan.Result([], [], {"sources": [str(SAMPLES / "http-keepalive.pcap")]}).plot.timeseq()


def test_span_of_a_corrupt_timestamp_does_not_raise() -> None:
    """A timestamp past year 9999 (a corrupt record: 253402300800 s is 10000-01-01) is shown in
    ns, not an OverflowError out of repr."""
    from pcapan.frames.human import span

    late = 253_402_300_800 * 10**9
    assert span(1_700_000_000 * 10**9, late).startswith("2023-11-14 22:13:20.000000 .. ")
    assert f"{late} ns UTC" in span(1_700_000_000 * 10**9, late)
