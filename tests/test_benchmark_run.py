"""benchmarks/run.py: the second table (the real capture), the build line, results.json.

A shipped sample stands in for the real capture (the real one is 300,000 packets, recorded as
root, and not in the repository); the synthetic capture is kept tiny. Each run costs a few
seconds of CPU.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
RUN = REPO / "benchmarks" / "run.py"
REAL = REPO / "samples" / "http-close.pcap"


def _run(tmp_path: Path, *args: str) -> tuple[str, dict]:
    results = tmp_path / "results.json"
    res = subprocess.run(
        [sys.executable, str(RUN), "--smoke", "--packets", "2000", "--no-2x", "--no-http"]
        + ["--repeat", "1", "--results", str(results), *args],
        capture_output=True,
        text=True,
        cwd=tmp_path,  # the runner must not depend on the caller's directory
        check=False,
    )
    assert res.returncode == 0, res.stderr
    return res.stdout, json.loads(results.read_text())


def _version_line() -> str:
    res = subprocess.run(
        [sys.executable, "-m", "pcapan.cli", "--version"],
        capture_output=True,
        text=True,
        cwd=REPO,
        check=True,
    )
    return res.stdout.strip()


@pytest.mark.skipif(shutil.which("tshark") is None, reason="tshark not installed")
def test_real_capture_table(tmp_path: Path) -> None:
    # The sample's facts from tshark (4 SYNs without ACK, 4 http.request frames, 66 frames):
    # tshark -r samples/http-close.pcap -Y "tcp.flags.syn==1 && tcp.flags.ack==0" | wc -l, and the
    # same with -Y http.request; capinfos -c counts 66 packets. The test reads them again here.
    def tshark_count(display_filter: str) -> int:
        out = subprocess.run(
            ["tshark", "-r", str(REAL), "-Y", display_filter],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        return len(out.splitlines())

    syns = tshark_count("tcp.flags.syn==1 && tcp.flags.ack==0")
    requests = tshark_count("http.request")
    frames = tshark_count("frame")
    assert (syns, requests, frames) == (4, 4, 66)

    # A relative --real, given from another directory than the checkout's.
    rel = Path("real.pcap")
    shutil.copy(REAL, tmp_path / rel)
    stdout, doc = _run(tmp_path, "--real", str(rel), "--peers", "pcapan,dpkt")

    build = _version_line()
    assert stdout.splitlines()[0] == f"build: {build}"
    assert doc["build"] == build

    synthetic, _, real = stdout.partition("\nreal capture: ")
    assert "synthetic capture (web mix)" in synthetic
    assert real.startswith(str(tmp_path / rel))
    assert f"\n{frames} packets, one core each" in real
    rows = {ln.split()[0]: ln for ln in real.splitlines() if ln.startswith(("pcapan ", "dpkt "))}
    assert set(rows) == {"pcapan", "dpkt"}
    assert f"{syns} connections, {requests} http, 0 tls" in rows["pcapan"]
    assert "pcapan is" in rows["dpkt"] and f"{syns} connections" in rows["dpkt"]

    # results.json: the synthetic keys as before, the real capture in its own section.
    assert doc["capture"]["packets"] == 2000 and doc["capture"]["mix"] == "web"
    assert {r["peer"] for r in doc["runs"]} == {"pcapan", "dpkt"}
    assert doc["real"]["capture"]["packets"] == frames
    runs = {r["peer"]: r for r in doc["real"]["runs"]}
    assert set(runs) == {"pcapan", "dpkt"}
    assert all(r["status"] == "ok" and r["capture"] == rel.name for r in runs.values())
    assert runs["pcapan"]["result"].startswith(f"{syns} connections, {requests} http, 0 tls, ")
    assert "len(r.rtt)" in " ".join(runs["pcapan"]["command"])
    assert runs["dpkt"]["speed_ratio"] == pytest.approx(
        runs["pcapan"]["packets_per_s"] / runs["dpkt"]["packets_per_s"], rel=0.01
    )


def test_no_real_table_in_smoke_without_real_and_with_no_real(tmp_path: Path) -> None:
    stdout, doc = _run(tmp_path, "--peers", "dpkt", "--mix", "short")
    assert "synthetic capture (short mix)" in stdout
    assert doc["capture"]["mix"] == "short"
    assert "\nreal capture: skipped in --smoke" in stdout
    assert doc["real"] == {"skipped": "skipped in --smoke (give --real PATH to run on one)"}

    stdout, doc = _run(tmp_path, "--peers", "dpkt", "--no-real")
    assert "\nreal capture: skipped (--no-real)" in stdout
    assert doc["real"] == {"skipped": "skipped (--no-real)"}
