"""The pcap reader reuses its chunk buffer only when nobody holds the previous batch."""

from __future__ import annotations

from pathlib import Path

import pytest

from pcapan.io import open_capture

SAMPLE = Path(__file__).resolve().parent.parent / "samples" / "http-keepalive.pcap"


def _frames(batches: list) -> list[bytes]:  # noqa: ANN001
    out = []
    for b in batches:
        for o, c in zip(b.offset.tolist(), b.caplen.tolist(), strict=True):
            out.append(bytes(b.data[o : o + c]))
    return out


def test_kept_batches_are_not_overwritten(monkeypatch: pytest.MonkeyPatch) -> None:
    import pcapan.io.pcap as pcap_mod

    monkeypatch.setattr(pcap_mod, "READ_CHUNK_BYTES", 4096)  # many chunks
    kept = list(open_capture(SAMPLE))  # every batch still referenced: no reuse allowed
    assert len(kept) > 10
    streamed: list[bytes] = []
    for b in open_capture(SAMPLE):  # batches dropped as we go: buffers may be reused
        streamed.extend(_frames([b]))
    assert _frames(kept) == streamed
    # 141 frames in the sample (samples/README.md, capinfos)
    assert len(streamed) == 141
