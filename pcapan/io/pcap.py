"""Classic libpcap files: microsecond and nanosecond magic, either byte order.

Records are walked with one ``struct`` call per record (the only per-frame Python work in the io
layer); timestamps and lengths are then pulled out of the buffer with numpy in one go.
"""

from __future__ import annotations

import struct
import sys
from collections.abc import Iterator
from typing import BinaryIO

import numpy as np

from pcapan.config import MAX_RECORD_BYTES, READ_CHUNK_BYTES, RESYNC_WINDOW_BYTES
from pcapan.errors import CaptureError
from pcapan.io.batch import FrameBatch, ReaderReport, ReadIssue
from pcapan.io.compressed import read_chunk

MAGICS: dict[bytes, tuple[str, int]] = {
    # magic bytes as stored -> (byte order, nanoseconds per fractional unit)
    b"\xd4\xc3\xb2\xa1": ("<", 1000),
    b"\xa1\xb2\xc3\xd4": (">", 1000),
    b"\x4d\x3c\xb2\xa1": ("<", 1),
    b"\xa1\xb2\x3c\x4d": (">", 1),
}
GLOBAL_HEADER_LEN = 24
RECORD_HEADER_LEN = 16
# A resynchronised record must have a timestamp within this many seconds of the last good one.
_RESYNC_MAX_TS_JUMP_S = 86400


class PcapReader:
    """Iterate :class:`FrameBatch` objects from a classic pcap stream."""

    def __init__(self, stream: BinaryIO, name: str, head: bytes) -> None:
        self._stream = stream
        self.name = name
        self.report = ReaderReport(format="pcap")
        if len(head) < GLOBAL_HEADER_LEN:
            raise CaptureError(f"{name}: file too short to be a pcap capture")
        order, self._frac_ns = MAGICS[head[:4]]
        self._order = order
        _vmaj, _vmin, _tz, _sigfigs, snaplen, network = struct.unpack(order + "HHiIII", head[4:24])
        # The upper 16 bits of the link-type field are not part of the link type: bits 28-31
        # hold the FCS length in 16-bit units, valid when the P bit (0x04000000) is set
        # (pcap-savefile(5), libpcap's LT_LINKTYPE / LT_FCS_LENGTH).
        self.linktype = network & 0xFFFF
        self.fcs_len = ((network >> 28) & 0xF) * 2 if network & 0x04000000 else 0
        self.snaplen = snaplen if snaplen else MAX_RECORD_BYTES
        self._hdr = struct.Struct(order + "IIII")
        self._caplen_at = struct.Struct(order + "I")
        self._next_len = struct.Struct(order + "8xI").unpack_from
        # The file's byte order is the machine's: lengths can be read through a cast memoryview.
        self._native = (order == "<") == (sys.byteorder == "little")

    def _plausible(
        self, buf: bytes | memoryview, pos: int, last_sec: int, strict: bool = True
    ) -> bool:
        """Whether a record header may begin at ``pos``. ``strict=False`` accepts a captured
        length above the original length or the snaplen (kept when the next header is good)."""
        if pos + RECORD_HEADER_LEN > len(buf):
            return False
        sec, frac, caplen, wirelen = self._hdr.unpack_from(buf, pos)
        if caplen > MAX_RECORD_BYTES or wirelen > MAX_RECORD_BYTES:
            return False
        if strict and (caplen > wirelen or caplen > max(self.snaplen, 65535)):
            return False
        if frac >= (1_000_000 if self._frac_ns == 1000 else 1_000_000_000):
            return False
        return not (last_sec and abs(sec - last_sec) > _RESYNC_MAX_TS_JUMP_S)

    def _resync(self, buf: bytes | memoryview, start: int, last_sec: int) -> int:
        """Find the next offset where two consecutive plausible record headers begin, or -1."""
        end = min(len(buf) - RECORD_HEADER_LEN, start + RESYNC_WINDOW_BYTES)
        for pos in range(start, end):
            if self._plausible(buf, pos, last_sec):
                caplen = self._caplen_at.unpack_from(buf, pos + 8)[0]
                nxt = pos + RECORD_HEADER_LEN + caplen
                if nxt == len(buf) or self._plausible(buf, nxt, last_sec):
                    return pos
        return -1

    def __iter__(self) -> Iterator[FrameBatch]:
        frame_no = 1
        last_sec = 0
        carry = b""
        eof = False
        offsets: list[int] = []
        cut = ""  # decompression failure message: the stream ends after this chunk
        spare: bytearray | None = None
        while not eof:
            lc = len(carry)
            # Reuse the last chunk's buffer when nothing refers to it any more (the consumer is
            # done with the previous batch): no new 8 MiB allocation per chunk, so memory stays
            # flat and no page is faulted in again. A consumer that keeps batches (list(reader))
            # holds references, and then a fresh buffer is allocated.
            if spare is not None and sys.getrefcount(spare) > 2:
                spare = None
            try:
                buf = read_chunk(self._stream, carry, READ_CHUNK_BYTES, self.name, spare)
            except CaptureError as exc:
                # Keep what was decoded before the failure; it is reported below as truncation.
                buf = carry + getattr(exc, "partial", b"")
                cut = getattr(exc, "detail", str(exc))
            got = len(buf) - lc
            self.report.bytes_read += got
            eof = got == 0 or bool(cut)
            n = len(buf)
            pos = 0
            offsets = []
            # File offset of buf[0]: the global header, then every byte read before this chunk
            # except the carried tail, which is re-read at the start of buf.
            base = GLOBAL_HEADER_LEN + self.report.bytes_read - got - lc
            while True:
                found, pos, bad = self._walk(buf, pos, n, eof)
                offsets.extend(found)
                if not bad:
                    if not eof or n - pos < RECORD_HEADER_LEN:
                        break
                    # At the end of the file a record runs past it. That is truncation, unless
                    # the bytes after its header parse as records: then its length was wrong.
                    sec, _frac, caplen, wirelen = self._hdr.unpack_from(buf, pos)
                    nxt = self._resync(buf, pos + 1, last_sec or sec)
                    if nxt < 0:
                        break
                    self.report.issues.append(
                        ReadIssue(
                            "bad_record_length",
                            f"record header at file offset {base + pos} claims {caplen} captured "
                            f"bytes (original length {wirelen}), past the end of the file; "
                            f"reading resumed at file offset {base + nxt}",
                            frame_no + len(offsets),
                        )
                    )
                    pos = nxt
                    continue
                if len(buf) - pos < RESYNC_WINDOW_BYTES and not eof:
                    # Search once more bytes are in; keep this tail as carry. The issue is
                    # recorded on that later pass, so it is reported once, not twice.
                    break
                sec, _frac, caplen, wirelen = self._hdr.unpack_from(buf, pos)
                nxt = self._resync(buf, pos + 1, last_sec or sec)
                self.report.issues.append(
                    ReadIssue(
                        "bad_record_length",
                        f"record header at file offset {base + pos} claims {caplen} captured "
                        f"bytes (original length {wirelen}, snaplen {self.snaplen}); "
                        + (
                            f"reading resumed at file offset {base + nxt}"
                            if nxt >= 0
                            else "no record found after it; stopped reading"
                        ),
                        frame_no + len(offsets),
                    )
                )
                if nxt < 0:
                    self.report.issues[-1].fatal = True
                    eof = True
                    pos = n
                    break
                pos = nxt
            carry = bytes(buf[pos:]) if pos < n else b""
            if eof and (carry or cut):
                dropped = (
                    f"capture ends inside a record ({len(carry)} bytes of a partial record dropped)"
                    if carry
                    else "capture ends early"
                )
                self.report.issues.append(
                    ReadIssue(
                        "truncated_file",
                        f"{cut + '; ' if cut else ''}{dropped}; everything before it was analysed",
                        frame_no + len(offsets),
                        fatal=True,
                    )
                )
            if offsets:
                batch = self._batch(buf, offsets, frame_no)
                frame_no += len(offsets)
                last_sec = int(batch.ts_ns[-1] // 1_000_000_000)
                self.report.frames += len(offsets)
                yield batch
                del batch
            spare = (
                buf.obj if isinstance(buf, memoryview) and isinstance(buf.obj, bytearray) else None
            )
            del buf

    def _walk(
        self, buf: bytes | memoryview, pos: int, n: int, eof: bool
    ) -> tuple[list[int], int, bool]:
        """Walk record headers from ``pos`` as fast as Python allows, then check the lengths
        for the whole run at once.

        Returns the offsets of complete records with plausible lengths, where the walk stopped
        (the start of an incomplete record, or of the first record with a wrong length), and
        whether it stopped at such a record. A length is wrong when it is impossible (above
        MAX_RECORD_BYTES), or when it exceeds the record's original length or the file's
        snaplen and no record header follows where it says the record ends. (Some writers do
        store caplen > origlen; Wireshark reads such files, so a record followed by a good
        header is kept as it is.)
        """
        offsets: list[int] = []
        append = offsets.append
        limit = n - RECORD_HEADER_LEN
        if self._native:
            # Four uint32 views of the buffer, one per alignment: the captured length of the
            # record at ``pos`` is one index away, ~20% faster than struct.unpack_from.
            mv = memoryview(buf)[:n]
            views = [mv[k : k + (n - k) // 4 * 4].cast("I") for k in range(4)]
            while pos <= limit:
                append(pos)
                pos += RECORD_HEADER_LEN + views[pos & 3][(pos >> 2) + 2]
            for v in views:
                v.release()
            mv.release()
        else:
            skip = self._next_len
            while pos <= limit:
                append(pos)
                pos += RECORD_HEADER_LEN + skip(buf, pos)[0]
        if not offsets:
            return offsets, pos, False
        off = np.asarray(offsets, dtype=np.int64)
        u8 = np.frombuffer(buf, dtype=np.uint8)
        lens = (
            u8.take(off[:, None] + np.arange(8, 16, dtype=np.int64)[None, :])
            .view(self._order + "u4")
            .reshape(-1, 2)
        )
        cl, wl = lens[:, 0], lens[:, 1]
        odd = (cl > MAX_RECORD_BYTES) | (cl > wl) | (cl > self.snaplen)
        for k in np.flatnonzero(odd).tolist():
            at = offsets[k]
            end = at + RECORD_HEADER_LEN + int(cl[k])
            if cl[k] > MAX_RECORD_BYTES:
                return offsets[:k], at, True
            if end + RECORD_HEADER_LEN > n and not (eof and end == n):
                # The header after it is not in the buffer yet (or the record runs past the
                # end of the file): decide on the next pass, or at EOF in the caller.
                return offsets[:k], at, False
            if end < n and not self._plausible(
                buf, end, self._hdr.unpack_from(buf, at)[0], strict=False
            ):
                return offsets[:k], at, True
        if offsets[-1] + RECORD_HEADER_LEN + int(cl[-1]) > n:
            return offsets[:-1], offsets[-1], False
        return offsets, pos, False

    def _batch(self, buf: bytes | memoryview, offsets: list[int], frame_no: int) -> FrameBatch:
        off = np.asarray(offsets, dtype=np.int64)
        dt = np.dtype(self._order + "u4")
        words = np.frombuffer(buf, dtype=np.uint8)
        idx = off[:, None] + np.arange(16, dtype=np.int64)[None, :]
        hdr = words[idx].copy().view(dt).reshape(-1, 4).astype(np.int64)
        caplen = hdr[:, 2]
        wirelen = hdr[:, 3]
        if self.fcs_len:
            # Frames carry a trailing FCS; strip it so IP lengths line up. Only the FCS bytes that
            # were actually captured go: a frame cut by the snaplen keeps all its payload bytes.
            caplen = np.maximum(np.minimum(caplen, wirelen - self.fcs_len), 0)
        ts = hdr[:, 0] * 1_000_000_000 + hdr[:, 1] * self._frac_ns
        n = len(offsets)
        return FrameBatch(
            data=buf,
            offset=off + RECORD_HEADER_LEN,
            caplen=caplen,
            wirelen=wirelen,
            ts_ns=ts,
            linktype=np.full(n, self.linktype, dtype=np.int32),
            frame_no=np.arange(frame_no, frame_no + n, dtype=np.int64),
        )
