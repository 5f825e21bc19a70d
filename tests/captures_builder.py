"""Build small pcap and pcapng captures from bytes, for reader tests.

Every builder writes exactly what the format specs say (pcap-savefile(5), draft-ietf-opsawg-pcapng)
so tests do not depend on a capture tool; where tshark is installed, tests cross-check that it
reads the same files the same way.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

PCAP_MAGIC_US = 0xA1B2C3D4
PCAP_MAGIC_NS = 0xA1B23C4D
LINKTYPE_ETHERNET = 1
LINKTYPE_RAW = 101
LINKTYPE_NULL = 0


def frame_bytes(i: int, size: int) -> bytes:
    """Distinct, recognisable payload for frame ``i``: its index repeated."""
    return bytes((i + k) & 0xFF for k in range(size))


@dataclass
class Rec:
    """One packet record to write: seconds and fraction, bytes captured, length on the wire."""

    sec: int
    frac: int
    data: bytes
    wirelen: int | None = None

    @property
    def orig(self) -> int:
        return len(self.data) if self.wirelen is None else self.wirelen


def pcap_header(
    order: str = "<",
    nanos: bool = False,
    linktype: int = LINKTYPE_ETHERNET,
    snaplen: int = 65535,
) -> bytes:
    magic = PCAP_MAGIC_NS if nanos else PCAP_MAGIC_US
    return struct.pack(order + "IHHiIII", magic, 2, 4, 0, 0, snaplen, linktype)


def pcap_record(rec: Rec, order: str = "<") -> bytes:
    return struct.pack(order + "IIII", rec.sec, rec.frac, len(rec.data), rec.orig) + rec.data


def pcap_file(
    recs: list[Rec],
    order: str = "<",
    nanos: bool = False,
    linktype: int = LINKTYPE_ETHERNET,
    snaplen: int = 65535,
) -> bytes:
    return pcap_header(order, nanos, linktype, snaplen) + b"".join(
        pcap_record(r, order) for r in recs
    )


# --- pcapng ---------------------------------------------------------------------------------


def _pad4(b: bytes) -> bytes:
    return b + b"\0" * (-len(b) % 4)


def option(code: int, value: bytes, order: str = "<") -> bytes:
    return struct.pack(order + "HH", code, len(value)) + _pad4(value)


def options(opts: list[bytes], order: str = "<") -> bytes:
    """Options followed by opt_endofopt (only when there are any)."""
    return b"".join(opts) + struct.pack(order + "HH", 0, 0) if opts else b""


def block(
    btype: int, body: bytes, order: str = "<", total: int | None = None, trailer: int | None = None
) -> bytes:
    """A block; ``total``/``trailer`` override the leading/trailing lengths to corrupt it."""
    body = _pad4(body)
    length = 12 + len(body)
    return (
        struct.pack(order + "II", btype, length if total is None else total)
        + body
        + struct.pack(order + "I", length if trailer is None else trailer)
    )


def shb(order: str = "<", major: int = 1, opts: list[bytes] | None = None) -> bytes:
    body = struct.pack(order + "IHHq", 0x1A2B3C4D, major, 0, -1) + options(opts or [], order)
    return block(0x0A0D0D0A, body, order)


def idb(
    linktype: int = LINKTYPE_ETHERNET,
    snaplen: int = 0,
    order: str = "<",
    tsresol: int | None = None,
    tsoffset: int | None = None,
    fcslen: int | None = None,
    extra_opts: list[bytes] | None = None,
) -> bytes:
    opts = list(extra_opts or [])
    if tsresol is not None:
        opts.append(option(9, bytes([tsresol]), order))
    if tsoffset is not None:
        opts.append(option(14, struct.pack(order + "q", tsoffset), order))
    if fcslen is not None:
        opts.append(option(13, bytes([fcslen]), order))
    body = struct.pack(order + "HHI", linktype, 0, snaplen) + options(opts, order)
    return block(1, body, order)


def epb(
    ifid: int,
    ts_units: int,
    data: bytes,
    order: str = "<",
    wirelen: int | None = None,
    caplen: int | None = None,
    opts: list[bytes] | None = None,
) -> bytes:
    body = (
        struct.pack(
            order + "IIIII",
            ifid,
            ts_units >> 32,
            ts_units & 0xFFFFFFFF,
            len(data) if caplen is None else caplen,
            len(data) if wirelen is None else wirelen,
        )
        + _pad4(data)
        + options(opts or [], order)
    )
    return block(6, body, order)


def spb(data: bytes, order: str = "<", wirelen: int | None = None) -> bytes:
    body = struct.pack(order + "I", len(data) if wirelen is None else wirelen) + data
    return block(3, body, order)


def pb(ifid: int, ts_units: int, data: bytes, order: str = "<", drops: int = 0) -> bytes:
    body = struct.pack(
        order + "HHIIII", ifid, drops, ts_units >> 32, ts_units & 0xFFFFFFFF, len(data), len(data)
    ) + _pad4(data)
    return block(2, body, order)


def isb(ifid: int, order: str = "<") -> bytes:
    return block(5, struct.pack(order + "III", ifid, 0, 0), order)


def nrb(order: str = "<") -> bytes:
    # One IPv4 record (type 1) then nrb_record_end.
    rec = struct.pack(order + "HH", 1, 15) + b"\x7f\x00\x00\x01localhost\x00\x00"
    return block(4, _pad4(rec) + struct.pack(order + "HH", 0, 0), order)


def custom_block(order: str = "<") -> bytes:
    return block(0x00000BAD, struct.pack(order + "I", 32473) + b"private!", order)
