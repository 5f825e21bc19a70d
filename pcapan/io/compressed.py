"""Open a path (or ``-`` for stdin) as a binary stream, decompressing by magic bytes."""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
import os
import sys
from pathlib import Path
from typing import BinaryIO

from pcapan.errors import CaptureError

_GZIP = b"\x1f\x8b"
_BZIP2 = b"BZh"
_XZ = b"\xfd7zXZ\x00"
_ZSTD = b"\x28\xb5\x2f\xfd"


class CountingReader(io.RawIOBase):
    """Counts bytes taken from the underlying (possibly compressed) file, for progress bars."""

    def __init__(self, raw: BinaryIO) -> None:
        self._raw = raw
        self.consumed = 0

    def readable(self) -> bool:
        return True

    def readinto(self, b: bytearray | memoryview) -> int:  # type: ignore[override]
        n = self._raw.readinto(b)  # type: ignore[attr-defined]
        if n:
            self.consumed += n
        return n or 0

    def close(self) -> None:
        self._raw.close()
        super().close()


def _peekable(raw: BinaryIO) -> io.BufferedReader:
    return raw if isinstance(raw, io.BufferedReader) else io.BufferedReader(raw)  # type: ignore[arg-type]


def open_stream(source: str | os.PathLike[str] | BinaryIO) -> tuple[BinaryIO, CountingReader | None, int | None, str]:
    """Return ``(stream, counter, total_bytes, name)``.

    ``stream`` yields the decompressed capture bytes. ``counter.consumed`` / ``total_bytes``
    measure progress through the file on disk (``None`` for stdin or file objects).
    Raises :class:`CaptureError` with one clear sentence for missing or unreadable input.
    """
    total: int | None = None
    counter: CountingReader | None = None
    if isinstance(source, (str, os.PathLike)):
        name = os.fspath(source)
        if name == "-":
            raw: BinaryIO = sys.stdin.buffer
            name = "<stdin>"
        else:
            path = Path(name)
            if not path.exists():
                raise CaptureError(f"{name}: no such file")
            if path.is_dir():
                raise CaptureError(f"{name}: is a directory, not a capture file")
            try:
                f = open(path, "rb", buffering=0)  # noqa: SIM115 - closed by the reader
            except OSError as exc:
                raise CaptureError(f"{name}: cannot open ({exc.strerror})") from None
            total = path.stat().st_size
            counter = CountingReader(f)  # type: ignore[arg-type]
            raw = counter  # type: ignore[assignment]
    else:
        raw = source
        name = getattr(source, "name", "<stream>")
        if not isinstance(name, str):
            name = "<stream>"
    buffered = _peekable(raw)
    try:
        head = buffered.peek(6)[:6]
    except OSError as exc:
        raise CaptureError(f"{name}: cannot read ({exc.strerror})") from None
    stream: BinaryIO
    if head.startswith(_GZIP):
        stream = gzip.GzipFile(fileobj=buffered, mode="rb")  # type: ignore[assignment]
    elif head.startswith(_BZIP2):
        stream = bz2.BZ2File(buffered, mode="rb")  # type: ignore[assignment]
    elif head.startswith(_XZ):
        stream = lzma.LZMAFile(buffered, mode="rb")  # type: ignore[assignment]
    elif head.startswith(_ZSTD):
        try:
            import zstandard
        except ImportError:
            raise CaptureError(
                f"{name}: zstd-compressed; install the 'zstandard' package (pip install zstandard)"
            ) from None
        stream = zstandard.ZstdDecompressor().stream_reader(buffered, read_across_frames=True)  # type: ignore[assignment]
    else:
        stream = buffered  # type: ignore[assignment]
    return stream, counter, total, name


def read_fully(stream: BinaryIO, n: int, name: str) -> bytes:
    """Read up to ``n`` bytes, looping over short reads; decompression errors -> CaptureError."""
    parts: list[bytes] = []
    want = n
    try:
        while want > 0:
            chunk = stream.read(want)
            if not chunk:
                break
            parts.append(chunk)
            want -= len(chunk)
    except (OSError, EOFError, lzma.LZMAError, ValueError) as exc:
        # A corrupt or cut compressed stream: report it; the caller treats it as truncation.
        raise CaptureError(f"{name}: decompression failed ({exc})") from None
    return b"".join(parts) if len(parts) != 1 else parts[0]
