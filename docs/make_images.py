"""Regenerate the README's plot images from the samples: python docs/make_images.py

Writes docs/img/waterfall.png, docs/img/timeseq.png and docs/img/budget.png (each kept under
MAX_BYTES: at 80 dpi the figures are 800 px wide, enough for a README column)."""

from __future__ import annotations

from pathlib import Path

import pcapan

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "samples"
OUT = ROOT / "docs" / "img"
DPI = 80
MAX_BYTES = 100_000


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


if __name__ == "__main__":
    main()
