"""Seed captures as editable records, and writers back to pcap and pcapng bytes.

The fuzzer's own small reader, independent of pcapan.io on purpose: a bug in the reader under
test must not shape the seeds. It reads only well-formed seeds (the samples and the corpus) and
raises ValueError on anything else; the writers produce exactly the bytes they are given, so a
mutation that sets a wrong length reaches pcapan as a wrong length.
"""

from __future__ import annotations

import bz2
import gzip
import lzma
import struct
from dataclasses import dataclass, field
from pathlib import Path

PCAP_MAGIC_US = 0xA1B2C3D4
PCAP_MAGIC_NS = 0xA1B23C4D
PCAPNG_SHB = 0x0A0D0D0A
PCAPNG_IDB = 0x00000001
PCAPNG_SPB = 0x00000003
PCAPNG_EPB = 0x00000006
PCAPNG_BOM = 0x1A2B3C4D
PCAPNG_OPT_TSRESOL = 9


@dataclass
class Record:
    """One captured frame: timestamp split as the pcap record stores it, lengths as stored
    (``caplen`` may disagree with ``len(data)`` after a mutation: that is the point)."""

    ts_sec: int
    ts_frac: int  # microseconds or nanoseconds, as the capture's resolution
    caplen: int
    origlen: int
    data: bytes
    linktype: int


@dataclass
class Capture:
    """A capture as records plus the global header fields the writers need."""

    records: list[Record]
    linktype: int = 1
    nanos: bool = False
    snaplen: int = 262144
    big_endian: bool = False
    version: tuple[int, int] = (2, 4)
    name: str = ""
    extra: dict[str, int] = field(default_factory=dict)

    def copy(self) -> Capture:
        return Capture(
            [
                Record(r.ts_sec, r.ts_frac, r.caplen, r.origlen, r.data, r.linktype)
                for r in self.records
            ],
            self.linktype,
            self.nanos,
            self.snaplen,
            self.big_endian,
            self.version,
            self.name,
            dict(self.extra),
        )


def read_bytes(path: Path) -> bytes:
    """The capture's bytes, decompressed by suffix (the corpus has .pcap.gz files)."""
    raw = path.read_bytes()
    if path.suffix == ".gz":
        return gzip.decompress(raw)
    if path.suffix == ".bz2":
        return bz2.decompress(raw)
    if path.suffix == ".xz":
        return lzma.decompress(raw)
    return raw


def parse(data: bytes, name: str = "") -> Capture:
    """A pcap or pcapng seed as a Capture (ValueError if it is neither)."""
    if len(data) < 24:
        raise ValueError(f"{name}: too short")
    magic_le = struct.unpack_from("<I", data)[0]
    if magic_le == PCAPNG_SHB:
        return _parse_pcapng(data, name)
    for order in "<>":
        magic = struct.unpack_from(order + "I", data)[0]
        if magic in (PCAP_MAGIC_US, PCAP_MAGIC_NS):
            return _parse_pcap(data, order, magic == PCAP_MAGIC_NS, name)
    raise ValueError(f"{name}: not a pcap or pcapng file")


def _parse_pcap(data: bytes, order: str, nanos: bool, name: str) -> Capture:
    vmaj, vmin, _tz, _sig, snaplen, network = struct.unpack_from(order + "HHiIII", data, 4)
    lt = network & 0xFFFF
    recs: list[Record] = []
    pos = 24
    hdr = struct.Struct(order + "IIII")
    while pos + 16 <= len(data):
        sec, frac, cap, orig = hdr.unpack_from(data, pos)
        if pos + 16 + cap > len(data):
            break
        recs.append(Record(sec, frac, cap, orig, data[pos + 16 : pos + 16 + cap], lt))
        pos += 16 + cap
    return Capture(recs, lt, nanos, snaplen, order == ">", (vmaj, vmin), name)


def _parse_pcapng(data: bytes, name: str) -> Capture:
    """SHB/IDB/EPB/SPB only (what the seeds use); timestamps converted to the first interface's
    resolution when it is micro- or nanoseconds, else to microseconds."""
    recs: list[Record] = []
    ifaces: list[tuple[int, int]] = []  # (linktype, ticks per second)
    order = "<"
    pos = 0
    while pos + 12 <= len(data):
        btype = struct.unpack_from(order + "I", data, pos)[0]
        if btype == PCAPNG_SHB:
            bom = struct.unpack_from("<I", data, pos + 8)[0]
            order = "<" if bom == PCAPNG_BOM else ">"
            ifaces = []
        blen = struct.unpack_from(order + "I", data, pos + 4)[0]
        if blen < 12 or pos + blen > len(data):
            break
        body = data[pos + 8 : pos + blen - 4]
        if btype == PCAPNG_IDB and len(body) >= 8:
            lt = struct.unpack_from(order + "H", body)[0]
            ifaces.append((lt, _tsresol(body[8:], order)))
        elif btype == PCAPNG_EPB and len(body) >= 20:
            iface, hi, lo, cap, orig = struct.unpack_from(order + "IIIII", body)
            if iface < len(ifaces):
                lt, tps = ifaces[iface]
                ticks = (hi << 32) | lo
                sec, sub = divmod(ticks, tps)
                ns = sub * 1_000_000_000 // tps
                recs.append(Record(sec, ns, cap, orig, body[20 : 20 + cap], lt))
        elif btype == PCAPNG_SPB and len(body) >= 4 and ifaces:
            orig = struct.unpack_from(order + "I", body)[0]
            pkt = body[4 : 4 + orig]
            recs.append(Record(0, 0, len(pkt), orig, pkt, ifaces[0][0]))
        pos += blen
    lt = recs[0].linktype if recs else (ifaces[0][0] if ifaces else 1)
    return Capture(recs, lt, True, 262144, order == ">", (2, 4), name)


def _tsresol(opts: bytes, order: str) -> int:
    pos = 0
    while pos + 4 <= len(opts):
        code, olen = struct.unpack_from(order + "HH", opts, pos)
        if code == 0:
            break
        if code == PCAPNG_OPT_TSRESOL and olen >= 1:
            v = opts[pos + 4]
            return 2 ** (v & 0x7F) if v & 0x80 else 10 ** (v & 0x7F)
        pos += 4 + olen + (-olen % 4)
    return 1_000_000


def write_pcap(cap: Capture) -> bytes:
    """Classic pcap bytes; record headers carry the records' fields as they are."""
    order = ">" if cap.big_endian else "<"
    magic = PCAP_MAGIC_NS if cap.nanos else PCAP_MAGIC_US
    out = [
        struct.pack(
            order + "IHHiIII",
            magic,
            cap.version[0],
            cap.version[1],
            0,
            0,
            cap.snaplen & 0xFFFFFFFF,
            cap.linktype & 0xFFFFFFFF,
        )
    ]
    hdr = struct.Struct(order + "IIII")
    for r in cap.records:
        out.append(
            hdr.pack(
                r.ts_sec & 0xFFFFFFFF,
                r.ts_frac & 0xFFFFFFFF,
                r.caplen & 0xFFFFFFFF,
                r.origlen & 0xFFFFFFFF,
            )
        )
        out.append(r.data)
    return b"".join(out)


def _block(order: str, btype: int, body: bytes) -> bytes:
    pad = b"\0" * (-len(body) % 4)
    n = 12 + len(body) + len(pad)
    return struct.pack(order + "II", btype, n) + body + pad + struct.pack(order + "I", n)


def write_pcapng(cap: Capture) -> list[bytes]:
    """pcapng as a list of blocks (SHB, one IDB per link type in record order, EPBs), so that a
    mutator can corrupt one block's lengths; join them for the file. EPB caplen is the record's
    ``caplen`` field (which may lie), the data is the record's data."""
    order = ">" if cap.big_endian else "<"
    blocks = [_block(order, PCAPNG_SHB, struct.pack(order + "IHHq", PCAPNG_BOM, 1, 0, -1))]
    ifaces: dict[int, int] = {}
    tsresol = 9 if cap.nanos else 6
    for lt in [cap.linktype, *(r.linktype for r in cap.records)]:
        if lt not in ifaces:
            ifaces[lt] = len(ifaces)
            opt = struct.pack(order + "HHB3x", PCAPNG_OPT_TSRESOL, 1, tsresol) + b"\0\0\0\0"
            blocks.append(
                _block(
                    order,
                    PCAPNG_IDB,
                    struct.pack(order + "HHI", lt & 0xFFFF, 0, cap.snaplen & 0xFFFFFFFF) + opt,
                )
            )
    scale = 1_000_000_000 if cap.nanos else 1_000_000
    for r in cap.records:
        ticks = (r.ts_sec * scale + r.ts_frac) & 0xFFFFFFFFFFFFFFFF
        body = (
            struct.pack(
                order + "IIIII",
                ifaces[r.linktype],
                ticks >> 32,
                ticks & 0xFFFFFFFF,
                r.caplen & 0xFFFFFFFF,
                r.origlen & 0xFFFFFFFF,
            )
            + r.data
        )
        blocks.append(_block(order, PCAPNG_EPB, body))
    return blocks
