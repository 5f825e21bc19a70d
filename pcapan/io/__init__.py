"""Sources: capture files (pcap, pcapng, compressed, stdin) -> batches of frames."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from typing import BinaryIO, Protocol

from pcapan.errors import CaptureError
from pcapan.io.batch import FrameBatch, ReaderReport, ReadIssue
from pcapan.io.compressed import CountingReader, open_stream
from pcapan.io.pcap import GLOBAL_HEADER_LEN, MAGICS, PcapReader

__all__ = ["CaptureReader", "FrameBatch", "ReadIssue", "ReaderReport", "open_capture"]

PCAPNG_SHB = b"\x0a\x0d\x0d\x0a"


class CaptureReader(Protocol):
    name: str
    report: ReaderReport

    def __iter__(self) -> Iterator[FrameBatch]: ...


class OpenedCapture:
    """A reader plus what a progress bar needs (bytes consumed of the file on disk)."""

    def __init__(
        self,
        reader: CaptureReader,
        counter: CountingReader | None,
        total: int | None,
        stream: BinaryIO,
    ) -> None:
        self.reader = reader
        self.counter = counter
        self.total_bytes = total
        self._stream = stream

    @property
    def name(self) -> str:
        return self.reader.name

    @property
    def report(self) -> ReaderReport:
        return self.reader.report

    @property
    def consumed_bytes(self) -> int:
        return self.counter.consumed if self.counter else 0

    def __iter__(self) -> Iterator[FrameBatch]:
        try:
            yield from self.reader
        finally:
            self.close()

    def close(self) -> None:
        # Closing a half-read decompressor may complain; the data we wanted is already out.
        with contextlib.suppress(Exception):
            self._stream.close()


def open_capture(source: str | os.PathLike[str] | BinaryIO) -> OpenedCapture:
    """Open a pcap or pcapng file (optionally gz/bz2/xz/zst compressed, or ``-`` for stdin)."""
    stream, counter, total, name = open_stream(source)
    try:
        head = stream.read(GLOBAL_HEADER_LEN)
    except (OSError, EOFError, ValueError) as exc:
        raise CaptureError(f"{name}: cannot read ({exc})") from None
    if not head:
        raise CaptureError(f"{name}: empty file, not a capture")
    reader: CaptureReader
    if head[:4] in MAGICS:
        reader = PcapReader(stream, name, head)
    elif head[:4] == PCAPNG_SHB:
        from pcapan.io.pcapng import PcapngReader

        reader = PcapngReader(stream, name, head)
    else:
        raise CaptureError(f"{name}: not a pcap or pcapng capture (magic {head[:4].hex()})")
    return OpenedCapture(reader, counter, total, stream)
