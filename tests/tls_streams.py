"""Test helper: each TCP stream of a capture as the (is_orig, payload) segments tshark follows.

``tshark -q -z follow,tcp,raw,N`` prints one hex line per segment; lines of the second node
(the responder, since node 0 is the sender of the stream's first packet) start with a tab.
"""

from __future__ import annotations

import gzip
import shutil
import subprocess
import tempfile
from functools import lru_cache
from pathlib import Path

TSHARK = shutil.which("tshark")


def _readable(path: Path) -> str:
    # tshark reads .gz itself, but decompressing once keeps every later call simple.
    if path.suffix != ".gz":
        return str(path)
    tmp = Path(tempfile.gettempdir()) / ("pcapan-test-" + path.stem)
    if not tmp.exists():
        tmp.write_bytes(gzip.decompress(path.read_bytes()))
    return str(tmp)


@lru_cache(maxsize=64)
def stream_count(path: Path) -> int:
    out = subprocess.run(
        [TSHARK, "-r", _readable(path), "-T", "fields", "-e", "tcp.stream"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    return max((int(x) for x in out if x), default=-1) + 1


# Streams of a capture followed in one tshark pass (one -z follow tap per stream) when it has at
# most this many: one pass instead of one per stream (the JA4 corpus capture has 59 streams:
# ~1 s instead of ~20 s); a capture with more is followed stream by stream, since every tap
# sees every packet.
FOLLOW_ONE_PASS_STREAMS = 100


def _parse_follow(body: str) -> tuple[tuple[bool, bytes], ...]:
    """The segments of one ``follow,tcp,raw`` block, from the line after "Node 1:"."""
    segs = []
    for line in body.splitlines():
        if line.startswith("====="):
            break
        if not line.strip():
            continue
        segs.append((not line.startswith("\t"), bytes.fromhex(line.strip())))
    return tuple(segs)


def _follow(path: Path, streams: list[int]) -> dict[int, tuple[tuple[bool, bytes], ...]]:
    cmd = [TSHARK, "-r", _readable(path), "-o", "tcp.reassemble_out_of_order:TRUE", "-q"]
    for s in streams:
        cmd += ["-z", f"follow,tcp,raw,{s}"]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    got = {}
    for block in out.split("Filter: tcp.stream eq ")[1:]:
        head, rest = block.split("\n", 1)
        got[int(head)] = _parse_follow(rest.split("Node 1:", 1)[1].split("\n", 1)[1])
    assert sorted(got) == sorted(streams), (path, sorted(got), streams)
    return got


@lru_cache(maxsize=64)
def _all_segments(path: Path) -> dict[int, tuple[tuple[bool, bytes], ...]]:
    return _follow(path, list(range(stream_count(path))))


@lru_cache(maxsize=256)
def segments(path: Path, stream: int) -> tuple[tuple[bool, bytes], ...]:
    if 0 <= stream < stream_count(path) <= FOLLOW_ONE_PASS_STREAMS:
        return _all_segments(path)[stream]
    return _follow(path, [stream])[stream]


def tshark_fields(path: Path, display_filter: str, fields: list[str]) -> list[list[str]]:
    """One row per matching packet, TLS records desegmented across TCP segments."""
    cmd = [
        TSHARK,
        "-r",
        _readable(path),
        "-o",
        "tls.desegment_ssl_records:TRUE",
        "-o",
        "tcp.reassemble_out_of_order:TRUE",
        "-Y",
        display_filter,
        "-T",
        "fields",
        "-E",
        "separator=|",
        "-E",
        "occurrence=a",
        "-E",
        "aggregator=,",
    ]
    for f in fields:
        cmd += ["-e", f]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    return [line.split("|") for line in out.splitlines() if line]
