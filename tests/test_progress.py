"""The progress bar appears on a terminal's stderr for a large file, and never on stdout."""

from __future__ import annotations

import json
import os
import pty
import select
import subprocess
import sys
from pathlib import Path

import pytest

from pcapan.cli import PROGRESS_MIN_BYTES

SAMPLE = Path(__file__).resolve().parent.parent / "samples" / "http-keepalive.pcap"


def _big_capture(tmp_path: Path) -> Path:
    """The sample's records repeated (timestamps shifted) until the file passes the threshold."""
    import struct

    data = SAMPLE.read_bytes()
    head, body = data[:24], data[24:]
    out = bytearray(head)
    shift = 0
    while len(out) < PROGRESS_MIN_BYTES + 1:
        pos = 0
        while pos < len(body):
            sec, usec, cap, wire = struct.unpack_from("<IIII", body, pos)
            out += (
                struct.pack("<IIII", sec + shift, usec, cap, wire) + body[pos + 16 : pos + 16 + cap]
            )
            pos += 16 + cap
        shift += 1000
    p = tmp_path / "big.pcap"
    p.write_bytes(bytes(out))
    return p


@pytest.mark.skipif(not hasattr(os, "openpty"), reason="needs a pseudo-terminal")
def test_progress_bar_on_terminal_stderr(tmp_path: Path) -> None:
    big = _big_capture(tmp_path)
    master, slave = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "pcapan.cli", "analyze", str(big), "--json"],
        stdout=subprocess.PIPE,
        stderr=slave,
        stdin=subprocess.DEVNULL,
    )
    os.close(slave)
    seen = b""
    while True:
        ready, _, _ = select.select([master], [], [], 0.2)
        if ready:
            try:
                chunk = os.read(master, 65536)
            except OSError:
                break
            if not chunk:
                break
            seen += chunk
        elif proc.poll() is not None:
            break
    stdout = proc.communicate()[0]
    os.close(master)
    assert proc.returncode == 0
    assert b"big.pcap" in seen and b"MB" in seen  # the bar: file name and bytes read
    assert json.loads(stdout)["frames"] > 0  # stdout holds only the JSON summary, no bar
