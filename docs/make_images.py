"""Regenerate the README's plot images: python docs/make_images.py [--large]

Writes docs/img/waterfall.png, docs/img/timeseq.png and docs/img/budget.png from the samples
(each kept under MAX_BYTES: at 80 dpi the figures are 800 px wide, enough for a README column).
With --large also the images of a generated 300,000-packet capture (benchmarks/make_capture.py
--mix short, the capture of the tests' short300k fixture): docs/img/large-*.png, the waterfall,
RTT, budget, reuse and TLS plots, and a headless-Chromium screenshot of its report (the top of
the page; needs the chromium package), each under MAX_LARGE_BYTES."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pcapan

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "samples"
OUT = ROOT / "docs" / "img"
DPI = 80
MAX_BYTES = 100_000
MAX_LARGE_BYTES = 300_000
LARGE_PACKETS = 300_000


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    web = pcapan.analyze(
        [SAMPLES / "rtt-http.pcap", SAMPLES / "rtt-tls.pcap", SAMPLES / "rtt-pipelined.pcap"]
    )
    lossy = pcapan.analyze(SAMPLES / "lossy.pcap")
    uid = lossy.connections.set_index("orig_p").uid.loc[
        42150
    ]  # the connection lossy.edits.json describes
    figures = {
        "waterfall.png": pcapan.analyze(SAMPLES / "rtt-http.pcap").plot.waterfall(),
        "budget.png": web.plot.budget(),
        "timeseq.png": lossy.plot.timeseq(uid, direction="resp"),
    }
    for name, fig in figures.items():
        path = OUT / name
        fig.savefig(path, dpi=DPI, metadata={"Software": None})
        size = path.stat().st_size
        assert size < MAX_BYTES, f"{path}: {size} bytes"
        print(f"wrote {path.relative_to(ROOT)} ({size:,} bytes)")


def large() -> None:
    """The images of the generated 300,000-packet capture (and its report's screenshot)."""
    with tempfile.TemporaryDirectory() as tmp:
        cap = Path(tmp) / "short300k.pcap"
        subprocess.run(
            [
                sys.executable,
                str(ROOT / "benchmarks" / "make_capture.py"),
                "--packets",
                str(LARGE_PACKETS),
                "--mix",
                "short",
                "--out",
                str(cap),
            ],
            check=True,
            capture_output=True,
        )
        here = Path.cwd()
        os.chdir(tmp)  # the report names the file as given: short300k.pcap, not /tmp/...
        report = Path(tmp) / "report.html"
        try:
            res = pcapan.analyze(cap.name)
            res.report(report, title="pcapan report: 300,000 generated packets")
        finally:
            os.chdir(here)
        for kind in ("waterfall", "rtt", "budget", "reuse", "tls"):
            path = OUT / f"large-{kind}.png"
            res.plot(kind).savefig(path, dpi=DPI, metadata={"Software": None})
            _check(path, MAX_LARGE_BYTES)
        browser = shutil.which("chromium") or shutil.which("chromium-browser")
        if browser is None:
            print("chromium not installed: no report screenshot")
            return
        shot = OUT / "large-report.png"
        subprocess.run(
            [
                browser,
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--hide-scrollbars",
                f"--user-data-dir={tmp}/profile",
                f"--screenshot={shot}",
                "--window-size=1100,1500",
                report.as_uri(),
            ],
            check=True,
            capture_output=True,
            timeout=120,
        )
        _check(shot, MAX_LARGE_BYTES)


def _check(path: Path, limit: int) -> None:
    size = path.stat().st_size
    assert size < limit, f"{path}: {size} bytes"
    print(f"wrote {path.relative_to(ROOT)} ({size:,} bytes)")


if __name__ == "__main__":
    main()
    if "--large" in sys.argv[1:]:
        large()
