"""The ``--write`` capture file: pcapng (default) or pcap, nanosecond timestamps.

The batch buffers already hold the file's records (see :mod:`pcapan.live.capture`); this module
writes the file header before them and, for pcapng, an Interface Statistics Block after them
with the kernel's received and dropped counts, so that the file is complete and valid once
:meth:`CaptureWriter.close` returns (and readable up to the last whole batch before that).
"""

from __future__ import annotations

import os
import struct
import time
from pathlib import Path

from pcapan import __version__
from pcapan.errors import LiveError

_NS_PCAP_MAGIC = 0xA1B23C4D  # classic pcap with nanosecond timestamps


def _option(code: int, value: bytes) -> bytes:
    pad = (-len(value)) % 4
    return struct.pack("<HH", code, len(value)) + value + bytes(pad)


def _block(btype: int, body: bytes) -> bytes:
    total = 12 + len(body)
    return struct.pack("<II", btype, total) + body + struct.pack("<I", total)


def pcapng_header(linktype: int, snaplen: int, iface: str, bpf_filter: str | None) -> bytes:
    """Section Header Block and one Interface Description Block (if_tsresol 10^-9)."""
    shb_opts = _option(4, f"pcapan {__version__}".encode()) + _option(0, b"")
    shb = _block(0x0A0D0D0A, struct.pack("<IHHq", 0x1A2B3C4D, 1, 0, -1) + shb_opts)
    idb_opts = _option(2, iface.encode()) + _option(9, b"\x09")
    if bpf_filter:
        idb_opts += _option(11, b"\x00" + bpf_filter.encode())  # if_filter: 0 = libpcap string
    idb = _block(1, struct.pack("<HHI", linktype, 0, snaplen) + idb_opts + _option(0, b""))
    return shb + idb


def pcapng_statistics(ts_ns: int, start_ns: int, received: int, dropped: int) -> bytes:
    """Interface Statistics Block: isb_starttime, isb_endtime, isb_ifrecv, isb_ifdrop."""

    def ts(v: int) -> bytes:
        return struct.pack("<II", v >> 32, v & 0xFFFFFFFF)

    opts = (
        _option(2, ts(start_ns))
        + _option(3, ts(ts_ns))
        + _option(4, struct.pack("<Q", received))
        + _option(5, struct.pack("<Q", dropped))
        + _option(0, b"")
    )
    return _block(5, struct.pack("<I", 0) + ts(ts_ns) + opts)


class CaptureWriter:
    """Writes the frames of every batch, in order, to one file."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        fmt: str,
        linktype: int,
        snaplen: int,
        iface: str,
        bpf_filter: str | None,
    ) -> None:
        self.path = Path(path)
        self.format = fmt
        self.start_ns = time.time_ns()
        try:
            self._f = open(self.path, "wb")  # noqa: SIM115 - closed in close()
        except OSError as exc:
            raise LiveError(f"{self.path}: cannot write ({exc.strerror})") from None
        if fmt == "pcapng":
            head = pcapng_header(linktype, snaplen, iface, bpf_filter)
        else:
            head = struct.pack("<IHHiIII", _NS_PCAP_MAGIC, 2, 4, 0, 0, snaplen, linktype)
        self._write(head)

    def _write(self, data: bytes | memoryview) -> None:
        try:
            self._f.write(data)
        except OSError as exc:
            raise LiveError(f"{self.path}: cannot write ({exc.strerror})") from None

    def write(self, records: memoryview) -> None:
        """File records of one batch (already in this file's format)."""
        self._write(records)

    def flush(self) -> None:
        if not self._f.closed:
            self._f.flush()

    def close(self, received: int, dropped: int) -> None:
        """Statistics (pcapng) and close; the file is complete afterwards."""
        if self._f.closed:
            return
        if self.format == "pcapng":
            self._write(pcapng_statistics(time.time_ns(), self.start_ns, received, dropped))
        self._f.close()
