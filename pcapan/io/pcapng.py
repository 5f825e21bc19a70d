"""pcapng files (draft-ietf-opsawg-pcapng): sections in either byte order, many interfaces.

Blocks are walked with one ``struct`` call per block, like the pcap reader walks records. Packet
blocks that pass the cheap checks on the fast path only have their start offset remembered; their
lengths, timestamps, interface ids and trailing block lengths are then pulled out of the buffer
with numpy for the whole batch. Everything rare (section and interface headers, bad blocks,
statistics and other skipped blocks) takes a slower path with ordinary Python.

A batch never spans two sections: a section may change the byte order and always renumbers the
interfaces, and both are fixed for the numpy pass over a batch.
"""

from __future__ import annotations

import struct
from bisect import bisect_right
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import BinaryIO

import numpy as np

from pcapan.config import MAX_BLOCK_BYTES, READ_CHUNK_BYTES, RESYNC_WINDOW_BYTES
from pcapan.errors import CaptureError
from pcapan.io.batch import FrameBatch, ReaderReport, ReadIssue
from pcapan.io.compressed import read_fully

SHB_TYPE = 0x0A0D0D0A  # a palindrome, so it reads the same in both byte orders
IDB_TYPE = 1
PB_TYPE = 2  # obsolete Packet Block
SPB_TYPE = 3
EPB_TYPE = 6
# Decryption Secrets Block (pcapng spec 4.7): secrets type, length, data. Of its types only the
# TLS key log ('TLSK', NSS key log text) is used; it goes to the TLS analysis (issue 17).
DSB_TYPE = 10
DSB_TLS_KEY_LOG = 0x544C534B
# Blocks that are not packets but that Wireshark lists as frames of their own (systemd journal
# entries, Custom Blocks, Sysdig events), so they take a frame number: skipping them without
# counting would make our frame_no drift from the number a user opens in Wireshark.
WIRESHARK_RECORD_TYPES = frozenset(
    {9, 0x00000BAD, 0x40000BAD, 0x204, 0x208, 0x216, 0x217, 0x221, 0x222}
)
# Other block types from the spec's registry that carry nothing the analysis uses: Name
# Resolution, Interface Statistics, IRIG timestamp, ARINC 429, Decryption Secrets, Darwin
# process events. They are skipped without being counted as unknown.
KNOWN_SKIPPED_TYPES = frozenset({4, 5, 7, 8, 10, 0x80000001})

# Block types a resynchronisation may land on (a bad length is followed by garbage or by the
# blocks that were really there; only known types with matching lengths are taken).
_RESYNC_TYPES = (
    frozenset({SHB_TYPE, IDB_TYPE, PB_TYPE, SPB_TYPE, EPB_TYPE})
    | KNOWN_SKIPPED_TYPES
    | WIRESHARK_RECORD_TYPES
)

_BOM_LE = b"\x4d\x3c\x2b\x1a"
_BOM_BE = b"\x1a\x2b\x3c\x4d"
# Smallest legal total length per block type (header fields + trailing length).
_MIN_BLOCK_LEN = {SHB_TYPE: 28, IDB_TYPE: 20, PB_TYPE: 32, SPB_TYPE: 16, EPB_TYPE: 32}
_EPB_ROOM = 32  # bytes of an EPB / PB that are not packet data or options
_SPB_ROOM = 16
# Bytes every fast-path unpack reads at a block start: the seven 32-bit words of an EPB header.
_HEAD = 28

_OPT_END = 0
_OPT_IF_TSRESOL = 9
_OPT_IF_FCSLEN = 13
_OPT_IF_TSOFFSET = 14

# Issues of one kind beyond this many are only counted, so a file full of bad blocks cannot
# grow the report without bound; the count goes into one closing issue.
_MAX_ISSUES_PER_KIND = 100

_NS = 1_000_000_000


@dataclass(slots=True)
class Interface:
    """What an Interface Description Block says that frames need."""

    linktype: int
    snaplen: int  # 0 = no limit
    tsres_base: int = 10  # timestamps count units of tsres_base ** -tsres_exp seconds
    tsres_exp: int = 6
    tsoffset_s: int = 0  # seconds added to every timestamp (if_tsoffset)
    fcs_len: int = 0  # bytes of FCS at the end of each frame (if_fcslen)


def ts_units_to_ns(raw: np.ndarray, iface: Interface) -> np.ndarray:
    """Convert raw 64-bit pcapng timestamps (uint64) of one interface to int64 ns since epoch.

    Seconds and fraction are split before scaling, because ``raw * 1e9`` overflows 64 bits for
    2^-20 or 10^-12 resolutions at present-day dates.
    """
    raw = raw.astype(np.uint64, copy=False)
    exp = iface.tsres_exp
    if iface.tsres_base == 10 and exp <= 9:
        ns = raw * np.uint64(10 ** (9 - exp))
    elif iface.tsres_base == 10:
        if exp > 19:  # 10^exp does not fit 64 bits: every representable time is < 1 s
            div = float(10**exp)
            ns = (raw.astype(np.float64) * (_NS / div)).astype(np.uint64)
        else:
            div_u = np.uint64(10**exp)
            sec = raw // div_u
            frac = raw % div_u
            ns = sec * np.uint64(_NS) + frac // np.uint64(10 ** (exp - 9))
    else:
        if exp >= 64:
            ns = (raw.astype(np.float64) * (_NS / float(2**exp))).astype(np.uint64)
        else:
            sec = raw >> np.uint64(exp)
            frac = raw & np.uint64((1 << exp) - 1)
            # frac * 1e9 must stay below 2^64: drop fraction bits finer than 2^-34 s first
            # (about 0.06 ns, far below the nanosecond output).
            shift = max(exp - 34, 0)
            if shift:
                frac = frac >> np.uint64(shift)
            ns = sec * np.uint64(_NS) + ((frac * np.uint64(_NS)) >> np.uint64(exp - shift))
    out = ns.view(np.int64)  # wraps for garbage timestamps past 2262 instead of raising
    if iface.tsoffset_s:
        # Python ints would raise on overflow for a garbage offset; wrap like numpy does.
        off = ((iface.tsoffset_s * _NS + 2**63) % 2**64) - 2**63
        out = out + np.int64(off)
    return out


@dataclass(slots=True)
class _Walk:
    """What one walk over a buffer found, and where and why it stopped."""

    pos: int  # start of the first block not consumed
    status: int = 0  # _MORE, _SECTION or _FATAL
    offsets: list[int] = field(default_factory=list)  # block offsets of packet blocks
    spb: list[int] = field(default_factory=list)  # indices into offsets: Simple Packet Blocks
    pb: list[int] = field(default_factory=list)  # indices into offsets: obsolete Packet Blocks
    # For each Wireshark-numbered non-packet block: how many frames came before it in the walk.
    phantom: list[int] = field(default_factory=list)


class _Stop(Exception):
    """Internal: reading stops at a fatal problem (already recorded as an issue)."""


# _check_trailer: the block is fine; _bad_block: nothing plausible follows, reading stops.
_TRAILER_OK = -3
_STOPPED = -2

# How a walk over a buffer ended.
_MORE = 0  # at the end of the buffer or of a partial block: more bytes needed (or EOF)
_SECTION = 1  # before a Section Header Block, to close the batch of the previous section
_FATAL = 2  # at a fatal problem, already recorded as an issue


class PcapngReader:
    """Iterate :class:`FrameBatch` objects from a pcapng stream."""

    def __init__(self, stream: BinaryIO, name: str, head: bytes) -> None:
        self._stream = stream
        self.name = name
        self.report = ReaderReport(format="pcapng")
        # Block types outside the spec's registry, with how often each was skipped.
        self.unknown_blocks: dict[int, int] = {}
        # Decryption Secrets Blocks read so far: (secrets type, data), in file order. The batch
        # that follows such a block is yielded after it was read, so a consumer that looks here
        # before feeding each batch has the keys before the packets they decrypt.
        self.secrets: list[tuple[int, bytes]] = []
        self._issue_counts: dict[str, int] = {}
        if len(head) < 16:
            # A stream may hand over fewer bytes than asked; the SHB fields checked below sit in
            # its first 16 bytes.
            try:
                head += read_fully(stream, 16 - len(head), name)
            except CaptureError as exc:
                head += getattr(exc, "partial", b"")
        if len(head) < 16 or head[:4] != b"\x0a\x0d\x0d\x0a":
            raise CaptureError(f"{name}: file too short to be a pcapng capture")
        bom = head[8:12]
        if bom not in (_BOM_LE, _BOM_BE):
            raise CaptureError(
                f"{name}: pcapng section header has a bad byte-order magic ({bom.hex()})"
            )
        order = "<" if bom == _BOM_LE else ">"
        blen = struct.unpack_from(order + "I", head, 4)[0]
        major = struct.unpack_from(order + "H", head, 12)[0]
        if blen < _MIN_BLOCK_LEN[SHB_TYPE] or blen % 4 or blen > MAX_BLOCK_BYTES:
            raise CaptureError(f"{name}: pcapng section header has an impossible length {blen}")
        if major != 1:
            raise CaptureError(f"{name}: pcapng version {major} is not supported (only 1.x)")
        self._head = head
        self._set_order(order)
        self._ifaces: list[Interface] = []

    # --- state --------------------------------------------------------------------------------

    def _set_order(self, order: str) -> None:
        self._order = order
        self._hdr = struct.Struct(order + "7I")
        self._u32 = struct.Struct(order + "I")

    def _issue(self, kind: str, detail: str, frame_no: int, fatal: bool = False) -> None:
        count = self._issue_counts.get(kind, 0) + 1
        self._issue_counts[kind] = count
        if count <= _MAX_ISSUES_PER_KIND or fatal:
            self.report.issues.append(ReadIssue(kind, detail, frame_no, fatal))

    # --- iteration ----------------------------------------------------------------------------

    def __iter__(self) -> Iterator[FrameBatch]:
        frame_no = 1  # Wireshark's number of the next record
        carry = self._head  # the walk parses the first SHB too: one code path for every section
        file_pos = 0  # file offset of carry[0], for messages
        last_ts = 0  # timestamp of the previous frame, which a Simple Packet Block inherits
        eof = False
        cut = ""
        try:
            while not eof:
                try:
                    chunk = read_fully(self._stream, READ_CHUNK_BYTES, self.name)
                except CaptureError as exc:
                    # Bytes decoded before a decompression failure still count; the failure is
                    # then reported as truncation.
                    chunk = getattr(exc, "partial", b"")
                    cut = getattr(exc, "detail", str(exc))
                self.report.bytes_read += len(chunk)
                eof = len(chunk) == 0 or bool(cut)
                buf = carry + chunk if carry else chunk
                n = len(buf)
                if eof:
                    # Zero padding lets the fast path unpack a full header even for the last,
                    # short blocks; block ends are still checked against the real length n.
                    buf = buf + bytes(_HEAD)
                walk = _Walk(pos=0, status=_SECTION)
                while walk.status == _SECTION:
                    walk = self._walk(buf, walk.pos, n, eof, frame_no, file_pos)
                    batch = None
                    found = len(walk.offsets) + len(walk.phantom)
                    if walk.offsets:
                        batch, bad_at = self._batch(buf, walk, frame_no, last_ts)
                        if bad_at >= 0:
                            # A packet block's trailing length disagreed with its leading one:
                            # the walk went on from a wrong length, so whatever it found after
                            # that block (issues included) is noise. Only the frames before it
                            # count; reading goes on where blocks are plausible again.
                            bad_no = frame_no + bad_at + bisect_right(walk.phantom, bad_at)
                            found = bad_no - frame_no
                            self._drop_issues_after(bad_no)
                            at = walk.offsets[bad_at]
                            walk.pos, walk.status = at, _MORE
                            what = (
                                "block's trailing length does not match its leading length at "
                                f"file offset {file_pos + at}"
                            )
                            nxt = self._bad_block(buf, at, n, eof, bad_no, file_pos, what)
                            if nxt == _STOPPED:
                                walk.status = _FATAL
                            elif nxt >= 0:
                                walk.pos, walk.status = nxt, _SECTION
                    frame_no += found
                    if batch is not None:
                        last_ts = int(batch.ts_ns[-1])
                        self.report.frames += len(batch)
                        yield batch
                    if walk.status == _FATAL:
                        return
                    if walk.status == _MORE and eof and walk.pos < n and not cut:
                        # At the end of the file a block runs past it. That is truncation,
                        # unless the bytes after its start parse as blocks: then its length
                        # was wrong.
                        nxt = self._resync(buf, walk.pos + 4, n)
                        if nxt >= 0:
                            btype, blen = self._u32x2(buf, walk.pos)
                            self._issue(
                                "bad_block_length",
                                f"block of type {btype:#x} at file offset {file_pos + walk.pos} "
                                f"claims {blen} bytes, past the end of the file; reading "
                                f"resumed at file offset {file_pos + nxt}",
                                frame_no,
                            )
                            walk.pos, walk.status = nxt, _SECTION
                pos = walk.pos
                if eof:
                    if pos < n or cut:
                        left = n - pos
                        what = (
                            f"capture ends inside a block ({left} bytes of a partial block dropped)"
                            if left
                            else "capture ends early"
                        )
                        self._issue(
                            "truncated_file",
                            f"{cut + '; ' if cut else ''}{what}; everything before it was analysed",
                            frame_no,
                            fatal=True,
                        )
                    break
                carry = buf[pos:n] if pos < n else b""
                file_pos += pos
        finally:
            self._close_issue_counts(frame_no)

    def _drop_issues_after(self, frame_no: int) -> None:
        issues = self.report.issues
        while issues and issues[-1].frame_no > frame_no:
            gone = issues.pop()
            self._issue_counts[gone.kind] -= 1

    def _close_issue_counts(self, frame_no: int) -> None:
        for kind, count in self._issue_counts.items():
            if count > _MAX_ISSUES_PER_KIND:
                self.report.issues.append(
                    ReadIssue(
                        kind,
                        f"{count - _MAX_ISSUES_PER_KIND} more '{kind}' issues not listed",
                        frame_no,
                    )
                )
                self._issue_counts[kind] = _MAX_ISSUES_PER_KIND

    def _walk(self, buf: bytes, pos: int, n: int, eof: bool, frame_no: int, file_pos: int) -> _Walk:
        """Walk blocks from ``pos`` (``n`` real bytes in ``buf``) and collect packet blocks.

        Frames found before a fatal problem are returned like any others, with status _FATAL.
        """
        walk = _Walk(pos=pos)
        try:
            self._walk_blocks(buf, n, eof, frame_no, file_pos, walk)
        except _Stop:
            walk.status = _FATAL
        return walk

    def _walk_blocks(
        self, buf: bytes, n: int, eof: bool, frame_no: int, file_pos: int, walk: _Walk
    ) -> None:
        offsets = walk.offsets
        append = offsets.append
        unpack = self._hdr.unpack_from
        nif = len(self._ifaces)
        maxb = MAX_BLOCK_BYTES
        pos = walk.pos
        # Every unpack reads _HEAD bytes; at EOF the buffer is padded, so any block start with
        # at least the 12 bytes of an empty block qualifies.
        stop = n - 11 if eof else n - _HEAD + 1
        try:
            while pos < stop:
                btype, blen, w2, w3, _w4, w5, _w6 = unpack(buf, pos)
                end = pos + blen
                # Fast path: an Enhanced Packet Block that is whole, sane and fits its
                # interface. Its trailing length is checked later, for the whole batch at once.
                if (
                    btype == EPB_TYPE
                    and _EPB_ROOM <= blen <= maxb
                    and not blen & 3
                    and end <= n
                    and w2 < nif
                    and w5 <= blen - _EPB_ROOM
                ):
                    append(pos)
                    pos = end
                    continue

                # --- slow path: everything else ----------------------------------------------
                at = frame_no + len(offsets) + len(walk.phantom)
                if btype == SHB_TYPE:
                    if offsets or walk.phantom:
                        walk.status = _SECTION  # close this section's batch first
                        return
                    if pos + 16 > n:
                        break  # need more bytes (or truncated at EOF)
                    blen = self._section(buf, pos, at, file_pos)
                    end = pos + blen
                    if end > n:
                        break
                    nxt = self._check_trailer(buf, pos, blen, at, file_pos, n, eof)
                    if nxt != _TRAILER_OK:
                        if nxt == _STOPPED:
                            raise _Stop
                        if nxt < 0:
                            break
                        pos = nxt
                        continue
                    self._ifaces = []
                    nif = 0
                    unpack = self._hdr.unpack_from
                    pos = end
                    continue
                if blen < _MIN_BLOCK_LEN.get(btype, 12) or blen & 3 or blen > maxb:
                    what = (
                        f"block of type {btype:#x} at file offset {file_pos + pos} claims an "
                        f"impossible length {blen}"
                    )
                    nxt = self._bad_block(buf, pos, n, eof, at, file_pos, what)
                    if nxt == _STOPPED:
                        raise _Stop
                    if nxt < 0:
                        break  # search once more bytes are in
                    pos = nxt
                    continue
                if end > n:
                    break
                nxt = self._check_trailer(buf, pos, blen, at, file_pos, n, eof)
                if nxt != _TRAILER_OK:
                    if nxt == _STOPPED:
                        raise _Stop
                    if nxt < 0:
                        break
                    pos = nxt
                    continue
                if btype in (EPB_TYPE, PB_TYPE):
                    # The obsolete Packet Block has a 16-bit interface id, then a drop count.
                    ifid = w2
                    if btype == PB_TYPE:
                        ifid = w2 & 0xFFFF if self._order == "<" else w2 >> 16
                    if ifid >= nif:
                        self._issue(
                            "bad_interface_id",
                            f"packet block at file offset {file_pos + pos} names interface "
                            f"{ifid} but the section defines {nif}; block skipped",
                            at,
                        )
                    elif w5 > blen - _EPB_ROOM:
                        self._issue(
                            "bad_captured_length",
                            f"packet block at file offset {file_pos + pos} claims {w5} "
                            f"captured bytes but has room for {blen - _EPB_ROOM}; block skipped",
                            at,
                        )
                    else:
                        if btype == PB_TYPE:
                            walk.pb.append(len(offsets))
                        append(pos)
                elif btype == SPB_TYPE:
                    if nif == 0:
                        self._issue(
                            "bad_interface_id",
                            f"simple packet block at file offset {file_pos + pos} comes before "
                            "any interface description; block skipped",
                            at,
                        )
                    else:
                        walk.spb.append(len(offsets))
                        append(pos)
                elif btype == IDB_TYPE:
                    self._ifaces.append(self._interface(buf, pos, end, w2, w3, at, file_pos))
                    nif += 1
                elif btype in WIRESHARK_RECORD_TYPES:
                    # Not a packet, but Wireshark numbers it as a frame: keep frame_no in step.
                    walk.phantom.append(len(offsets))
                elif btype == DSB_TYPE:
                    # (w2, w3: secrets type and length; the data must fit the block)
                    if 20 + w3 <= blen:
                        self.secrets.append((w2, bytes(buf[pos + 16 : pos + 16 + w3])))
                    else:
                        self._issue(
                            "pcapng_bad_secrets_block",
                            f"decryption secrets block at file offset {file_pos + pos} claims "
                            f"{w3} bytes of secrets in a block of {blen}",
                            at,
                        )
                elif btype not in KNOWN_SKIPPED_TYPES:
                    self.unknown_blocks[btype] = self.unknown_blocks.get(btype, 0) + 1
                pos = end
        finally:
            walk.pos = pos

    def _check_trailer(
        self, buf: bytes, pos: int, blen: int, at: int, file_pos: int, n: int, eof: bool
    ) -> int:
        """_TRAILER_OK when the block's trailing length matches its leading one, else what
        :meth:`_bad_block` says (where to go on, -1 for more bytes, or _STOPPED)."""
        trailer = self._u32.unpack_from(buf, pos + blen - 4)[0]
        if trailer == blen:
            return _TRAILER_OK
        what = (
            f"block at file offset {file_pos + pos} has leading length {blen} but trailing "
            f"length {trailer}"
        )
        return self._bad_block(buf, pos, n, eof, at, file_pos, what)

    def _bad_block(
        self, buf: bytes, pos: int, n: int, eof: bool, at: int, file_pos: int, what: str
    ) -> int:
        """A block at ``pos`` has a wrong length: the offset where reading goes on (the issue is
        recorded), -1 when the search must wait for more bytes (nothing recorded yet, so the
        issue is reported once), or _STOPPED when nothing plausible follows (a fatal issue)."""
        if not eof and n - pos < RESYNC_WINDOW_BYTES:
            return -1
        nxt = self._resync(buf, pos + 4, n)
        if nxt < 0:
            self._issue("bad_block_length", f"{what}; stopped reading", at, fatal=True)
            return _STOPPED
        self._issue(
            "bad_block_length", f"{what}; reading resumed at file offset {file_pos + nxt}", at
        )
        return nxt

    def _u32x2(self, buf: bytes, pos: int) -> tuple[int, int]:
        return self._u32.unpack_from(buf, pos)[0], self._u32.unpack_from(buf, pos + 4)[0]

    def _whole_block(self, buf: bytes, pos: int, n: int) -> int:
        """The length of a block of a known type at ``pos`` whose leading and trailing lengths
        agree and fit in ``n`` bytes; 0 when not; -1 when it is plausible but ends past ``n``."""
        if pos + 12 > n:
            return 0
        btype, blen = self._u32x2(buf, pos)
        if (
            btype not in _RESYNC_TYPES
            or blen < _MIN_BLOCK_LEN.get(btype, 12)
            or blen & 3
            or blen > MAX_BLOCK_BYTES
        ):
            return 0
        if btype == SHB_TYPE and bytes(buf[pos + 8 : pos + 12]) not in (_BOM_LE, _BOM_BE):
            return 0
        if pos + blen > n:
            return -1
        return blen if self._u32.unpack_from(buf, pos + blen - 4)[0] == blen else 0

    def _resync(self, buf: bytes, start: int, n: int) -> int:
        """The first offset from ``start`` (in steps of 4: blocks are 4-byte aligned) where a
        whole block of a known type begins and is followed by another, by a plausible block
        running past the buffer, or by the end of the data; -1 within RESYNC_WINDOW_BYTES."""
        for pos in range(start, min(n - 11, start + RESYNC_WINDOW_BYTES), 4):
            blen = self._whole_block(buf, pos, n)
            if blen > 0:
                nxt = pos + blen
                if nxt == n or self._whole_block(buf, nxt, n) != 0:
                    return pos
        return -1

    def _section(self, buf: bytes, pos: int, at: int, file_pos: int) -> int:
        """Read a Section Header Block's byte order, length and version; return its length."""
        bom = bytes(buf[pos + 8 : pos + 12])
        if bom not in (_BOM_LE, _BOM_BE):
            self._issue(
                "bad_section_header",
                f"section header at file offset {file_pos + pos} has a bad byte-order magic "
                f"({bom.hex()}); stopped reading",
                at,
                fatal=True,
            )
            raise _Stop
        self._set_order("<" if bom == _BOM_LE else ">")
        blen = self._u32.unpack_from(buf, pos + 4)[0]
        major = struct.unpack_from(self._order + "H", buf, pos + 12)[0]
        if blen < _MIN_BLOCK_LEN[SHB_TYPE] or blen & 3 or blen > MAX_BLOCK_BYTES:
            self._issue(
                "bad_block_length",
                f"section header at file offset {file_pos + pos} claims an impossible length "
                f"{blen}; stopped reading",
                at,
                fatal=True,
            )
            raise _Stop
        if major != 1:
            self._issue(
                "bad_section_header",
                f"section at file offset {file_pos + pos} has pcapng version {major}, only 1.x "
                "is understood; stopped reading",
                at,
                fatal=True,
            )
            raise _Stop
        return blen

    def _interface(
        self, buf: bytes, pos: int, end: int, w2: int, snaplen: int, at: int, file_pos: int
    ) -> Interface:
        """Parse an Interface Description Block (fields already unpacked: w2, snaplen)."""
        # LinkType is the first 16-bit field of the word at pos+8, whichever the byte order.
        linktype = w2 & 0xFFFF if self._order == "<" else w2 >> 16
        iface = Interface(linktype=linktype, snaplen=snaplen)
        o = self._order
        opt = pos + 16
        limit = end - 4
        while opt + 4 <= limit:
            code, length = struct.unpack_from(o + "HH", buf, opt)
            if code == _OPT_END:
                break
            value_at = opt + 4
            if value_at + length > limit:
                self._issue(
                    "bad_option",
                    f"interface description at file offset {file_pos + pos} has an option "
                    f"running past the block; later options ignored",
                    at,
                )
                break
            if code == _OPT_IF_TSRESOL and length >= 1:
                v = buf[value_at]
                # MSB set: a negative power of 2; otherwise a negative power of 10.
                iface.tsres_base, iface.tsres_exp = (2, v & 0x7F) if v & 0x80 else (10, v)
            elif code == _OPT_IF_TSOFFSET and length >= 8:
                iface.tsoffset_s = struct.unpack_from(o + "q", buf, value_at)[0]
            elif code == _OPT_IF_FCSLEN and length >= 1:
                iface.fcs_len = buf[value_at]
            opt = value_at + ((length + 3) & ~3)
        return iface

    # --- numpy over a batch ---------------------------------------------------------------------

    def _batch(
        self, buf: bytes, walk: _Walk, frame_no: int, last_ts: int
    ) -> tuple[FrameBatch | None, int]:
        """Build the batch of the frames a walk found.

        Also returns the index of the first frame whose block has a trailing length that does
        not match its leading one (-1 if none); the batch then holds only the frames before it,
        or is None.
        """
        off = np.asarray(walk.offsets, dtype=np.int64)
        # Every block starts at a multiple of 4 from the buffer start (buffers start at block
        # boundaries, block lengths are multiples of 4), so the buffer can be read as words.
        words = np.frombuffer(buf, dtype=np.dtype(self._order + "u4"), count=len(buf) // 4)
        wi = off >> 2
        hdr = words[wi[:, None] + np.arange(_HEAD // 4, dtype=np.int64)[None, :]]
        blen = hdr[:, 1].astype(np.int64)
        trailer = words[wi + (blen >> 2) - 1]
        bad = np.flatnonzero(trailer != hdr[:, 1])
        bad_at = int(bad[0]) if bad.size else -1
        spb, pb = walk.spb, walk.pb
        if bad_at >= 0:
            if bad_at == 0:
                return None, 0
            off, hdr, blen = off[:bad_at], hdr[:bad_at], blen[:bad_at]
            spb = [i for i in spb if i < bad_at]
            pb = [i for i in pb if i < bad_at]
        n = len(off)

        ifid = hdr[:, 2].astype(np.int64)
        caplen = hdr[:, 5].astype(np.int64)
        wirelen = hdr[:, 6].astype(np.int64)
        data_off = off + _HEAD
        raw_ts = (hdr[:, 3].astype(np.uint64) << np.uint64(32)) | hdr[:, 4].astype(np.uint64)
        if pb:
            pbi = np.asarray(pb, dtype=np.int64)
            ifid[pbi] = (ifid[pbi] & 0xFFFF) if self._order == "<" else (ifid[pbi] >> 16)
        ifaces = self._ifaces
        has_ts = None
        if spb:
            si = np.asarray(spb, dtype=np.int64)
            ifid[si] = 0
            wirelen[si] = hdr[si, 2]
            data_off[si] = off[si] + 12
            # No captured-length field: the packet is the original length cut to the snaplen,
            # and never more than the block holds (the data field is padded to 4 bytes).
            cap = np.minimum(wirelen[si], blen[si] - _SPB_ROOM)
            if ifaces[0].snaplen:
                cap = np.minimum(cap, ifaces[0].snaplen)
            caplen[si] = cap
            has_ts = np.ones(n, dtype=bool)
            has_ts[si] = False

        linktype = np.asarray([i.linktype for i in ifaces], dtype=np.int32)[ifid]
        lo, hi = int(ifid.min()), int(ifid.max())
        if lo == hi:  # the common case: one interface, no masks
            ts_ns = ts_units_to_ns(raw_ts, ifaces[lo])
        else:
            ts_ns = np.empty(n, dtype=np.int64)
            for i in np.unique(ifid):
                mask = ifid == i
                ts_ns[mask] = ts_units_to_ns(raw_ts[mask], ifaces[int(i)])
        if has_ts is not None:
            # A Simple Packet Block takes the timestamp of the frame before it (or 0).
            idx = np.where(has_ts, np.arange(n, dtype=np.int64), -1)
            np.maximum.accumulate(idx, out=idx)
            ts_ns = np.where(idx >= 0, ts_ns[np.maximum(idx, 0)], np.int64(last_ts))
        fcs = np.asarray([i.fcs_len for i in ifaces], dtype=np.int64)
        if fcs.any():
            # Strip a trailing FCS so IP lengths line up; only bytes that were captured go.
            caplen = np.maximum(np.minimum(caplen, wirelen - fcs[ifid]), 0)
        numbers = np.arange(frame_no, frame_no + n, dtype=np.int64)
        if walk.phantom:
            # Each Wireshark-numbered block before a frame shifts its number by one.
            numbers += np.searchsorted(
                np.asarray(walk.phantom, dtype=np.int64), np.arange(n), side="right"
            )
        return (
            FrameBatch(
                data=buf,
                offset=data_off,
                caplen=caplen,
                wirelen=wirelen,
                ts_ns=ts_ns,
                linktype=linktype,
                frame_no=numbers,
            ),
            bad_at,
        )
