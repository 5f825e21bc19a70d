"""io layer: pcap and pcapng readers, compressed input, stdin, errors, and the corpus.

Captures are built from bytes in ``captures_builder``; where tshark/capinfos are installed the
same files are read by them too and the facts compared (frame numbers, timestamps, lengths).
"""

from __future__ import annotations

import bz2
import gzip
import lzma
import os
import re
import shutil
import struct
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import pcapan.io.pcap as pcap_mod
import pcapan.io.pcapng as pcapng_mod
from pcapan.errors import CaptureError
from pcapan.io import FrameBatch, ReaderReport, open_capture
from pcapan.io.pcapng import Interface, ts_units_to_ns

from .captures_builder import (
    LINKTYPE_ETHERNET,
    LINKTYPE_NULL,
    LINKTYPE_RAW,
    Rec,
    block,
    custom_block,
    epb,
    frame_bytes,
    idb,
    isb,
    nrb,
    option,
    pb,
    pcap_file,
    pcap_header,
    pcap_record,
    shb,
    spb,
)

TSHARK = shutil.which("tshark")
CAPINFOS = shutil.which("capinfos")
needs_tshark = pytest.mark.skipif(TSHARK is None, reason="tshark not installed")
needs_capinfos = pytest.mark.skipif(CAPINFOS is None, reason="capinfos not installed")

CORPUS = Path(
    os.environ.get("PCAPAN_CORPUS", Path(__file__).resolve().parents[2] / "shared" / "corpus")
)

T0 = 1_700_000_000  # a present-day timestamp, in seconds


# --- helpers ----------------------------------------------------------------------------------


class Frames:
    """Every frame of a capture flattened out of its batches, plus the reader's report."""

    def __init__(self, batches: list[FrameBatch], report: ReaderReport, reader: object) -> None:
        self.batches = batches
        self.report = report
        self.reader = reader
        cat = (lambda a: np.concatenate(a)) if batches else (lambda a: np.zeros(0, np.int64))
        self.ts_ns = cat([b.ts_ns for b in batches]).tolist()
        self.caplen = cat([b.caplen for b in batches]).tolist()
        self.wirelen = cat([b.wirelen for b in batches]).tolist()
        self.linktype = cat([b.linktype for b in batches]).tolist()
        self.frame_no = cat([b.frame_no for b in batches]).tolist()
        self.data = [
            bytes(b.data[int(o) : int(o) + int(c)])
            for b in batches
            for o, c in zip(b.offset, b.caplen, strict=True)
        ]

    def __len__(self) -> int:
        return len(self.data)

    def kinds(self) -> list[str]:
        return [i.kind for i in self.report.issues]


def read(source: str | os.PathLike[str]) -> Frames:
    cap = open_capture(source)
    batches = list(cap)
    for b in batches:
        # Invariants every batch must keep, whatever the input.
        n = len(b)
        for arr in (b.offset, b.caplen, b.wirelen, b.ts_ns, b.linktype, b.frame_no):
            assert arr.shape == (n,)
        assert b.offset.dtype == np.int64 and b.ts_ns.dtype == np.int64
        assert b.linktype.dtype == np.int32
        assert (b.offset >= 0).all() and (b.caplen >= 0).all()
        assert (b.offset + b.caplen <= len(b.data)).all()
    return Frames(batches, cap.report, cap.reader)


def write(tmp_path: Path, name: str, data: bytes) -> Path:
    p = tmp_path / name
    p.write_bytes(data)
    return p


def tshark_frames(path: Path) -> list[tuple[int, int | None, int, int]]:
    """(frame number, ts in ns or None, captured length, length) per frame, as tshark sees it."""
    out = subprocess.run(
        [
            TSHARK or "tshark",
            "-r",
            str(path),
            "-T",
            "fields",
            "-e",
            "frame.number",
            "-e",
            "frame.time_epoch",
            "-e",
            "frame.cap_len",
            "-e",
            "frame.len",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    rows = []
    for line in out.splitlines():
        no, ts, cap, length = line.split("\t")
        ts_ns = int(Decimal(ts) * 1_000_000_000) if ts else None
        rows.append((int(no), ts_ns, int(cap), int(length)))
    return rows


def capinfos_count(path: Path) -> int:
    out = subprocess.run(
        [CAPINFOS or "capinfos", "-c", "-M", str(path)], capture_output=True, text=True, check=True
    ).stdout
    m = re.search(r"Number of packets:\s+(\d+)", out)
    assert m, out
    return int(m.group(1))


def assert_matches_tshark(path: Path, got: Frames, packet_frames_only: bool = True) -> None:
    """Frame numbers, timestamps and lengths agree with tshark (records without a timestamp,
    i.e. Simple Packet Blocks, only on lengths; tshark's non-packet records are skipped)."""
    rows = {r[0]: r for r in tshark_frames(path)}
    for no, ts, cap, wire in zip(got.frame_no, got.ts_ns, got.caplen, got.wirelen, strict=True):
        t_no, t_ts, t_cap, t_len = rows[no]
        assert (t_cap, t_len) == (cap, wire), f"frame {no}"
        if t_ts is not None:
            assert t_ts == ts, f"frame {no}"
    if packet_frames_only:
        assert len(rows) == len(got)


# --- pcap ---------------------------------------------------------------------------------------


def pcap_recs(nanos: bool) -> list[Rec]:
    frac_max = 999_999_999 if nanos else 999_999
    return [
        Rec(T0, 123_456, frame_bytes(0, 60)),
        Rec(T0 + 1, frac_max, frame_bytes(1, 1514)),
        Rec(T0 + 2, 0, frame_bytes(2, 96), wirelen=1500),  # cut by the snaplen
        Rec(T0 + 3, 7, frame_bytes(3, 0)),  # an empty record is legal
    ]


@pytest.mark.parametrize("order", ["<", ">"])
@pytest.mark.parametrize("nanos", [False, True])
def test_pcap_magic_variants(tmp_path: Path, order: str, nanos: bool) -> None:
    recs = pcap_recs(nanos)
    path = write(tmp_path, "x.pcap", pcap_file(recs, order, nanos, LINKTYPE_RAW))
    got = read(path)
    unit = 1 if nanos else 1000
    assert got.ts_ns == [r.sec * 1_000_000_000 + r.frac * unit for r in recs]
    assert got.caplen == [len(r.data) for r in recs]
    assert got.wirelen == [r.orig for r in recs]
    assert got.frame_no == [1, 2, 3, 4]
    assert got.linktype == [LINKTYPE_RAW] * 4
    assert got.data == [r.data for r in recs]
    assert got.report.format == "pcap"
    assert got.report.issues == []
    assert got.report.frames == 4
    if TSHARK:
        assert_matches_tshark(path, got)


@pytest.mark.parametrize("cut", ["record_data", "record_header", "one_byte"])
def test_pcap_truncated_at_end(tmp_path: Path, cut: str) -> None:
    recs = pcap_recs(False)[:3]
    data = pcap_file(recs)
    extra = pcap_record(Rec(T0 + 9, 0, frame_bytes(9, 200)))
    keep = {"record_data": 16 + 50, "record_header": 9, "one_byte": 1}[cut]
    got = read(write(tmp_path, "t.pcap", data + extra[:keep]))
    assert got.data == [r.data for r in recs]  # every complete record before the cut
    assert got.kinds() == ["truncated_file"]
    issue = got.report.issues[0]
    assert issue.fatal and issue.frame_no == 4


def test_pcap_bad_record_length_resyncs_once(tmp_path: Path) -> None:
    """A record header with an impossible length in the middle: one issue (not one per read
    pass), frames before it kept, and the reader finds the next good record."""
    before = [Rec(T0 + i, i, frame_bytes(i, 80)) for i in range(3)]
    after = [Rec(T0 + 10 + i, i, frame_bytes(10 + i, 70)) for i in range(3)]
    bad = struct.pack("<IIII", T0 + 5, 0, 0x7FFFFFF0, 0x7FFFFFF0)
    data = pcap_file(before) + bad + b"".join(pcap_record(r) for r in after)
    got = read(write(tmp_path, "bad.pcap", data))
    assert got.kinds() == ["bad_record_length"]
    assert got.report.issues[0].frame_no == 4
    assert not got.report.issues[0].fatal
    assert got.data == [r.data for r in before + after]
    assert got.frame_no == [1, 2, 3, 4, 5, 6]


def test_pcap_bad_record_length_without_resync_stops_cleanly(tmp_path: Path) -> None:
    before = [Rec(T0 + i, i, frame_bytes(i, 80)) for i in range(3)]
    bad = struct.pack("<IIII", T0 + 5, 0, 0x7FFFFFF0, 0x7FFFFFF0) + b"\xff" * 300
    got = read(write(tmp_path, "bad.pcap", pcap_file(before) + bad))
    assert got.data == [r.data for r in before]
    assert got.kinds() == ["bad_record_length"]
    assert got.report.issues[0].fatal


def test_pcap_bad_record_length_message_gives_the_file_offset(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 13 (9): the message said "file offset ~0" for a record right after the 24-byte
    global header. The offsets here are counted by hand: 24 + 16 + 80 per record before it."""
    bad = struct.pack("<IIII", T0 + 5, 0, 0x7FFFFFF0, 0x7FFFFFF0)
    after = [Rec(T0 + 10 + i, i, frame_bytes(10 + i, 70)) for i in range(3)]
    got = read(write(tmp_path, "first.pcap", pcap_file([]) + bad + pcap_file(after)[24:]))
    assert "at file offset 24 " in got.report.issues[0].detail
    assert "resumed at file offset 40" in got.report.issues[0].detail
    assert got.data == [r.data for r in after]
    # Later in the file, and in a later read chunk (offsets count the bytes of earlier chunks).
    before = [Rec(T0 + i, i, frame_bytes(i, 80)) for i in range(3)]
    path = write(tmp_path, "third.pcap", pcap_file(before) + bad + pcap_file(after)[24:])
    monkeypatch.setattr(pcap_mod, "READ_CHUNK_BYTES", 50)
    got = read(path)
    assert f"at file offset {24 + 3 * 96} " in got.report.issues[0].detail
    assert got.data == [r.data for r in before + after]


SAMPLES = Path(__file__).resolve().parents[1] / "samples"


def _edit_record_4(tmp_path: Path, caplen: int, wirelen: int) -> tuple[Path, Path]:
    """samples/http-keepalive.pcap (141 real packets) with record 4's lengths overwritten, and
    the intact file minus record 4 (what a reader that skips the bad record should see).
    Record 4 starts at file offset 286 and holds 155 bytes (read with capinfos/tshark)."""
    data = bytearray((SAMPLES / "http-keepalive.pcap").read_bytes())
    assert struct.unpack_from("<II", data, 286 + 8) == (155, 155)
    minus = write(tmp_path, "minus4.pcap", bytes(data[:286] + data[286 + 16 + 155 :]))
    struct.pack_into("<II", data, 286 + 8, caplen, wirelen)
    return write(tmp_path, "bad4.pcap", bytes(data)), minus


@pytest.mark.parametrize(
    ("caplen", "wirelen", "why"),
    [
        (255, 155, "caplen above origlen"),  # the case of issue 13 (3): 137 of 141 packets lost
        (300_000, 300_000, "caplen above the snaplen (262144)"),
        (200_000, 200_000, "record runs past the end of the file"),
    ],
)
@pytest.mark.parametrize("chunk", [None, 4096])
def test_pcap_one_bad_record_header_loses_only_that_record(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplen: int,
    wirelen: int,
    why: str,
    chunk: int | None,
) -> None:
    """One corrupt record header in an otherwise intact real capture: a `bad_record_length`
    issue (not fatal, not `truncated_file`) and every other record read. Expected frames: the
    intact file minus record 4, as capinfos counts (140) and tshark reads it."""
    bad, minus = _edit_record_4(tmp_path, caplen, wirelen)
    if chunk:  # the search waits for more bytes across reads, and reports once
        monkeypatch.setattr(pcap_mod, "READ_CHUNK_BYTES", chunk)
    got = read(bad)
    assert got.kinds() == ["bad_record_length"], why
    issue = got.report.issues[0]
    assert not issue.fatal and issue.frame_no == 4
    assert (
        "at file offset 286 " in issue.detail and f"claims {caplen} captured bytes" in issue.detail
    )
    assert "resumed at file offset 457" in issue.detail  # 286 + 16 + 155: record 5
    want = read(minus)
    assert len(got) == 140 and got.data == want.data and got.ts_ns == want.ts_ns
    if CAPINFOS:
        assert capinfos_count(minus) == 140
    if TSHARK:
        assert_matches_tshark(minus, got)


@needs_tshark
def test_pcap_caplen_above_origlen_kept_when_the_next_header_is_good(tmp_path: Path) -> None:
    """Some writers store caplen > origlen; Wireshark reads such records as they are. When the
    next header is where the record says it ends, the record stays (no issue)."""
    recs = [
        Rec(T0, 0, frame_bytes(0, 80)),
        Rec(T0 + 1, 0, frame_bytes(1, 90), wirelen=60),
        Rec(T0 + 2, 0, frame_bytes(2, 70)),
        Rec(T0 + 3, 0, frame_bytes(3, 70000), wirelen=70000),  # above the snaplen of 65535
        Rec(T0 + 4, 0, frame_bytes(4, 70)),
    ]
    path = write(tmp_path, "big.pcap", pcap_file(recs))
    got = read(path)
    assert got.report.issues == []
    assert got.data == [r.data for r in recs]
    assert_matches_tshark(path, got)


def test_pcap_fcs_bits_in_linktype(tmp_path: Path) -> None:
    """pcap-savefile(5): the P bit (0x04000000) says bits 28-31 hold the FCS length in 16-bit
    units. The link type is the low 16 bits; the FCS is stripped where it was captured."""
    network = LINKTYPE_ETHERNET | 0x04000000 | (2 << 28)  # 4-byte FCS
    recs = [
        Rec(T0, 0, frame_bytes(0, 64)),  # whole frame: last 4 bytes are the FCS
        Rec(T0 + 1, 0, frame_bytes(1, 40), wirelen=64),  # cut by the snaplen: no FCS captured
        Rec(T0 + 2, 0, frame_bytes(2, 62), wirelen=64),  # cut inside the FCS
    ]
    got = read(write(tmp_path, "fcs.pcap", pcap_file(recs, linktype=network)))
    assert got.linktype == [LINKTYPE_ETHERNET] * 3
    assert got.caplen == [60, 40, 60]
    assert got.wirelen == [64, 64, 64]
    # A large FCS length (8 units = 16 bytes) needs all four bits of the field.
    network = LINKTYPE_ETHERNET | 0x04000000 | (8 << 28)
    got = read(write(tmp_path, "fcs16.pcap", pcap_file(recs[:1], linktype=network)))
    assert (got.linktype, got.caplen) == ([LINKTYPE_ETHERNET], [48])
    # Without the P bit the upper bits mean nothing and nothing is stripped.
    got = read(
        write(tmp_path, "nofcs.pcap", pcap_file(recs[:1], linktype=LINKTYPE_ETHERNET | (2 << 28)))
    )
    assert (got.linktype, got.caplen) == ([LINKTYPE_ETHERNET], [64])


@pytest.mark.parametrize("chunk", [1, 5, 17, 64, 1000])
def test_pcap_small_read_chunks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, chunk: int
) -> None:
    """Records split across reads (carry-over between chunks) come out the same."""
    recs = [Rec(T0 + i, i, frame_bytes(i, 1 + (i * 37) % 300)) for i in range(40)]
    path = write(tmp_path, "c.pcap", pcap_file(recs))
    whole = read(path)
    monkeypatch.setattr(pcap_mod, "READ_CHUNK_BYTES", chunk)
    split = read(path)
    assert split.data == whole.data == [r.data for r in recs]
    assert split.ts_ns == whole.ts_ns and split.frame_no == list(range(1, 41))
    assert split.report.issues == []


# --- pcapng ---------------------------------------------------------------------------------


def rich_pcapng(order: str) -> tuple[bytes, list[dict[str, int | bytes]]]:
    """One section with three interfaces (10^-6, 10^-9 and 2^-20 with an offset), every
    packet block type and some blocks to skip; returns the file and the expected frames."""
    us, ns = T0 * 10**6 + 123_456, T0 * 10**9 + 123_456_789
    b20 = (T0 << 20) | (1 << 19)  # T0 + 0.5 s in 2^-20 units
    data = (
        shb(order, opts=[option(4, b"pcapan tests", order)])
        + idb(LINKTYPE_ETHERNET, 0, order)
        + idb(LINKTYPE_RAW, 96, order, tsresol=9)
        + idb(LINKTYPE_NULL, 0, order, tsresol=0x80 | 20, tsoffset=100)
        + epb(0, us, frame_bytes(0, 60), order, opts=[option(1, b"a comment", order)])
        + nrb(order)
        + isb(0, order)
        + block(0x1234, b"unknown!", order)
        + epb(1, ns, frame_bytes(1, 41), order)
        + epb(2, b20, frame_bytes(2, 50), order, wirelen=1500)
        + spb(frame_bytes(3, 61), order)
        + pb(1, ns + 10**9, frame_bytes(4, 33), order, drops=7)
    )
    frames: list[dict[str, int | bytes]] = [
        {"ts": us * 1000, "data": frame_bytes(0, 60), "wire": 60, "lt": LINKTYPE_ETHERNET},
        {"ts": ns, "data": frame_bytes(1, 41), "wire": 41, "lt": LINKTYPE_RAW},
        {
            "ts": (T0 + 100) * 10**9 + 500_000_000,
            "data": frame_bytes(2, 50),
            "wire": 1500,
            "lt": LINKTYPE_NULL,
        },
        # A Simple Packet Block has no timestamp: it inherits the previous frame's.
        {
            "ts": (T0 + 100) * 10**9 + 500_000_000,
            "data": frame_bytes(3, 61),
            "wire": 61,
            "lt": LINKTYPE_ETHERNET,
        },
        {"ts": ns + 10**9, "data": frame_bytes(4, 33), "wire": 33, "lt": LINKTYPE_RAW},
    ]
    return data, frames


@pytest.mark.parametrize("order", ["<", ">"])
def test_pcapng_all_packet_blocks_and_interfaces(tmp_path: Path, order: str) -> None:
    data, want = rich_pcapng(order)
    path = write(tmp_path, "rich.pcapng", data)
    got = read(path)
    assert got.report.format == "pcapng"
    assert got.report.issues == []
    assert got.ts_ns == [f["ts"] for f in want]
    assert got.data == [f["data"] for f in want]
    assert got.caplen == [len(f["data"]) for f in want]  # type: ignore[arg-type]
    assert got.wirelen == [f["wire"] for f in want]
    assert got.linktype == [f["lt"] for f in want]
    assert got.frame_no == [1, 2, 3, 4, 5]
    assert got.reader.unknown_blocks == {0x1234: 1}  # type: ignore[attr-defined]
    if TSHARK:
        assert_matches_tshark(path, got)


def test_pcapng_frame_numbers_follow_wireshark(tmp_path: Path) -> None:
    """Custom blocks are not packets, but Wireshark numbers them as frames; frame_no must
    name the frame a user opens in Wireshark, so it skips their numbers."""
    data = (
        shb()
        + idb()
        + epb(0, 1, frame_bytes(0, 20))
        + custom_block()
        + epb(0, 2, frame_bytes(1, 20))
        + isb(0)
        + epb(0, 3, frame_bytes(2, 20))
    )
    path = write(tmp_path, "cb.pcapng", data)
    got = read(path)
    assert got.frame_no == [1, 3, 4]
    assert got.reader.unknown_blocks == {}  # type: ignore[attr-defined]
    if TSHARK:
        assert_matches_tshark(path, got, packet_frames_only=False)
    if CAPINFOS:
        assert capinfos_count(path) == len(got)


def test_pcapng_two_sections_with_different_byte_orders(tmp_path: Path) -> None:
    """Each SHB starts over: new byte order, interfaces renumbered from 0."""
    head = (
        shb("<")
        + idb(LINKTYPE_ETHERNET, 0, "<")
        + idb(LINKTYPE_RAW, 0, "<")
        + epb(1, T0 * 10**6, frame_bytes(0, 30), "<")
        + epb(0, T0 * 10**6 + 1, frame_bytes(1, 31), "<")
        + shb(">")
        + idb(LINKTYPE_NULL, 0, ">", tsresol=9)
        + spb(frame_bytes(2, 32), ">")  # no timestamp: the previous frame's, across sections
        + epb(0, T0 * 10**9 + 5, frame_bytes(3, 33), ">")
    )
    bad = epb(1, T0 * 10**9 + 6, frame_bytes(4, 34), ">")  # interface 1 is gone
    tail = epb(0, T0 * 10**9 + 7, frame_bytes(5, 35), ">")
    if TSHARK:
        # tshark gives up at an EPB naming an undefined interface: compare the file without it.
        good = write(tmp_path, "good.pcapng", head + tail)
        assert_matches_tshark(good, read(good))
    path = write(tmp_path, "two.pcapng", head + bad + tail)
    got = read(path)
    assert got.data == [frame_bytes(i, 30 + i) for i in (0, 1, 2, 3, 5)]
    assert got.linktype == [
        LINKTYPE_RAW,
        LINKTYPE_ETHERNET,
        LINKTYPE_NULL,
        LINKTYPE_NULL,
        LINKTYPE_NULL,
    ]
    assert got.ts_ns == [
        T0 * 10**9,
        T0 * 10**9 + 1000,
        T0 * 10**9 + 1000,
        T0 * 10**9 + 5,
        T0 * 10**9 + 7,
    ]
    assert got.frame_no == [1, 2, 3, 4, 5]  # a skipped block takes no number
    assert got.kinds() == ["bad_interface_id"]
    assert got.report.issues[0].frame_no == 5 and not got.report.issues[0].fatal
    assert len(got.batches) == 2  # a batch never spans sections (byte order is per batch)


def test_pcapng_tsresol_and_tsoffset_conversion() -> None:
    raw = np.array([0, 1, 1_700_000_000_123_456_789_012], dtype=object)
    cases = [
        (Interface(1, 0), [0, 1000]),  # default 10^-6
        (Interface(1, 0, 10, 9), [0, 1]),
        (Interface(1, 0, 10, 3), [0, 1_000_000]),
        (Interface(1, 0, 10, 0), [0, 1_000_000_000]),
        (Interface(1, 0, 2, 0), [0, 1_000_000_000]),
        (Interface(1, 0, 2, 20), [0, 953]),  # 2^-20 s = 953.67 ns
        (Interface(1, 0, 10, 6, tsoffset_s=-5), [-5 * 10**9, -5 * 10**9 + 1000]),
    ]
    for iface, want in cases:
        out = ts_units_to_ns(np.array(raw[:2].astype(np.uint64)), iface)
        assert out.tolist() == want, iface
    # Picoseconds at a present-day date: 1.7e21 units do not fit int64, nor does units * 1e9.
    pico = np.array([(T0 * 10**12 + 123_456_789_012) % 2**64], dtype=np.uint64)
    if T0 * 10**12 < 2**64:
        assert ts_units_to_ns(pico, Interface(1, 0, 10, 12)).tolist() == [T0 * 10**9 + 123_456_789]
    two30 = np.array([(T0 << 30) | (1 << 29)], dtype=np.uint64)
    assert ts_units_to_ns(two30, Interface(1, 0, 2, 30)).tolist() == [T0 * 10**9 + 500_000_000]
    # 2^-40: fraction * 1e9 would overflow 64 bits unless the finest bits are dropped first.
    two40 = np.array([(1000 << 40) | (1 << 39) | 1], dtype=np.uint64)
    assert ts_units_to_ns(two40, Interface(1, 0, 2, 40)).tolist() == [1000 * 10**9 + 500_000_000]
    # Absurd resolutions do not raise.
    ts_units_to_ns(np.array([2**64 - 1], dtype=np.uint64), Interface(1, 0, 10, 127))
    ts_units_to_ns(np.array([2**64 - 1], dtype=np.uint64), Interface(1, 0, 2, 127))
    ts_units_to_ns(np.array([5], dtype=np.uint64), Interface(1, 0, 10, 6, tsoffset_s=2**62))


def test_pcapng_spb_lengths_follow_snaplen(tmp_path: Path) -> None:
    """SPB captured length = min(original length, snaplen, room in the block)."""
    data = (
        shb()
        + idb(LINKTYPE_ETHERNET, 40)
        + spb(frame_bytes(0, 40), wirelen=100)  # cut by the snaplen
        + spb(frame_bytes(1, 13))  # padded to 16 bytes in the block: 13 are packet
    )
    path = write(tmp_path, "spb.pcapng", data)
    got = read(path)
    assert got.caplen == [40, 13] and got.wirelen == [100, 13]
    assert got.data == [frame_bytes(0, 40), frame_bytes(1, 13)]
    assert got.ts_ns == [0, 0]  # no earlier frame to inherit a timestamp from
    if TSHARK:
        assert_matches_tshark(path, got)


def test_pcapng_if_fcslen_strips_fcs(tmp_path: Path) -> None:
    data = shb() + idb(LINKTYPE_ETHERNET, 0, fcslen=4) + epb(0, 1, frame_bytes(0, 64))
    got = read(write(tmp_path, "fcs.pcapng", data))
    assert (got.caplen, got.wirelen) == ([60], [64])


def test_pcapng_unknown_and_skipped_blocks(tmp_path: Path) -> None:
    data = (
        shb()
        + block(0x77, b"")
        + idb()
        + block(0x0DDBA11, b"x" * 9)
        + nrb()
        + isb(0)
        + block(10, struct.pack("<II", 0x544C534B, 4) + b"keys")  # Decryption Secrets
        + epb(0, 5, frame_bytes(0, 10))
        + block(0x77, b"abcd")
    )
    got = read(write(tmp_path, "u.pcapng", data))
    assert got.data == [frame_bytes(0, 10)]
    assert got.report.issues == []
    assert got.reader.unknown_blocks == {0x77: 2, 0x0DDBA11: 1}  # type: ignore[attr-defined]


def good_prefix() -> tuple[bytes, list[bytes]]:
    frames = [frame_bytes(i, 40 + i) for i in range(3)]
    return shb() + idb() + b"".join(epb(0, T0 * 10**6 + i, f) for i, f in enumerate(frames)), frames


def with_lengths(blk: bytes, total: int | None = None, trailer: int | None = None) -> bytes:
    """Overwrite a little-endian block's leading and/or trailing length."""
    b = bytearray(blk)
    if total is not None:
        b[4:8] = struct.pack("<I", total)
    if trailer is not None:
        b[-4:] = struct.pack("<I", trailer)
    return bytes(b)


BAD_LENGTH_BLOCKS = {
    "too_short": with_lengths(epb(0, 9, frame_bytes(9, 20)), total=8),
    "not_multiple_of_4": with_lengths(epb(0, 9, frame_bytes(9, 20)), total=50),
    "too_large": with_lengths(epb(0, 9, frame_bytes(9, 20)), total=0x7FFFFFF0),
    "epb_shorter_than_its_header": with_lengths(epb(0, 9, b""), total=16),
    "epb_trailer_mismatch": with_lengths(epb(0, 9, frame_bytes(9, 20)), trailer=44),
    "isb_trailer_mismatch": with_lengths(isb(0), trailer=8),
    "idb_trailer_mismatch": with_lengths(idb(), trailer=12),
    # The walk follows a plausible but wrong length into the next blocks; only the trailer
    # check can tell, and what the walk saw after it (a bad interface id here) is dropped.
    "epb_wrong_plausible_length": with_lengths(epb(0, 9, frame_bytes(9, 20)), total=48),
}


@pytest.mark.parametrize("case", sorted(BAD_LENGTH_BLOCKS))
def test_pcapng_bad_block_length_resyncs(tmp_path: Path, case: str) -> None:
    """Issue 13 (3), the pcapng analogue: one block with a wrong length costs that block, not
    the rest of the file. Reading resumes at the next block of a known type whose leading and
    trailing lengths agree (and that is followed by another or by the end of the file)."""
    prefix, frames = good_prefix()
    after = (
        epb(0, 99, frame_bytes(50, 30))
        + epb(7, 99, frame_bytes(51, 30))  # names an interface the section lacks: skipped
        + epb(0, 99, frame_bytes(52, 30))
    )
    bad = BAD_LENGTH_BLOCKS[case]
    got = read(write(tmp_path, "bad.pcapng", prefix + bad + after))
    assert got.data == frames + [frame_bytes(50, 30), frame_bytes(52, 30)]
    assert got.kinds() == ["bad_block_length", "bad_interface_id"]
    issue = got.report.issues[0]
    assert not issue.fatal and issue.frame_no == 4
    at = len(prefix)  # the bad block's offset, and where the next block really starts
    assert f"at file offset {at}" in issue.detail
    assert f"reading resumed at file offset {at + len(bad)}" in issue.detail
    assert got.frame_no == [1, 2, 3, 4, 5]


@pytest.mark.parametrize("case", sorted(BAD_LENGTH_BLOCKS))
def test_pcapng_bad_block_length_stops_cleanly(tmp_path: Path, case: str) -> None:
    """Nothing plausible after the bad block: one fatal issue, the frames before it kept."""
    prefix, frames = good_prefix()
    got = read(write(tmp_path, "bad.pcapng", prefix + BAD_LENGTH_BLOCKS[case] + b"\xff" * 300))
    assert got.data == frames
    assert got.kinds() in (["bad_block_length"], ["truncated_file"])
    assert got.report.issues[0].fatal
    assert got.report.issues[0].frame_no == 4


@pytest.mark.parametrize("chunk", [None, 4096, 100_000])
def test_pcapng_block_length_in_a_real_capture(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, chunk: int | None
) -> None:
    """samples/http-keepalive.pcapng (a real dumpcap capture, 141 packets as capinfos counts):
    the 4th packet block's leading length overwritten with a wrong, plausible value. Before,
    reading stopped there (137 packets lost); now only that packet is, and the rest match
    tshark's reading of the intact file minus that block."""
    data = bytearray((SAMPLES / "http-keepalive.pcapng").read_bytes())
    pos, seen = 0, 0
    while True:  # find the 4th Enhanced Packet Block (little-endian: the sample is)
        btype, blen = struct.unpack_from("<II", data, pos)
        if btype == 6:
            seen += 1
            if seen == 4:
                break
        pos += blen
    minus = write(tmp_path, "minus.pcapng", bytes(data[:pos] + data[pos + blen :]))
    struct.pack_into("<I", data, pos + 4, blen + 40)
    if chunk:  # the search waits for more bytes across reads, and reports once
        monkeypatch.setattr(pcapng_mod, "READ_CHUNK_BYTES", chunk)
    got = read(write(tmp_path, "bad.pcapng", bytes(data)))
    assert got.kinds() == ["bad_block_length"] and not got.report.issues[0].fatal
    assert f"resumed at file offset {pos + blen}" in got.report.issues[0].detail
    want = read(minus)
    assert len(got) == 140 and got.data == want.data and got.ts_ns == want.ts_ns
    if CAPINFOS:
        assert capinfos_count(minus) == 140
    if TSHARK:
        assert_matches_tshark(minus, got)


def test_pcapng_bad_section_header_later_in_file(tmp_path: Path) -> None:
    prefix, frames = good_prefix()
    bad_bom = bytearray(shb())
    bad_bom[8:12] = b"\x00\x11\x22\x33"
    got = read(write(tmp_path, "s.pcapng", prefix + bytes(bad_bom) + epb(0, 1, b"x" * 8)))
    assert got.data == frames
    assert got.kinds() == ["bad_section_header"] and got.report.issues[0].fatal
    v2 = shb(major=2)
    got = read(write(tmp_path, "v.pcapng", prefix + v2 + idb() + epb(0, 1, b"x" * 8)))
    assert got.data == frames
    assert got.kinds() == ["bad_section_header"]


def test_pcapng_truncated_at_every_byte(tmp_path: Path) -> None:
    """Cut the file at every offset: every complete packet block before the cut is read, and
    the cut is reported unless it falls exactly on a block boundary."""
    blocks = [
        shb(),
        idb(),
        epb(0, 1, frame_bytes(0, 21)),
        isb(0),
        spb(frame_bytes(1, 7)),
        shb(">"),
        idb(LINKTYPE_RAW, 0, ">"),
        epb(0, 2, frame_bytes(2, 30), ">"),
    ]
    packet = {2: frame_bytes(0, 21), 4: frame_bytes(1, 7), 7: frame_bytes(2, 30)}
    data = b"".join(blocks)
    ends = np.cumsum([len(b) for b in blocks]).tolist()
    for cut in range(ends[0], len(data)):
        path = write(tmp_path, "t.pcapng", data[:cut])
        got = read(path)
        complete = [packet[i] for i, e in enumerate(ends) if e <= cut and i in packet]
        assert got.data == complete, cut
        if cut in ends:
            assert got.report.issues == [], cut
        else:
            assert got.kinds() == ["truncated_file"], cut
            assert got.report.issues[0].fatal
            assert got.report.issues[0].frame_no == len(complete) + 1


def test_pcapng_bad_interface_id_and_captured_length_skip_block(tmp_path: Path) -> None:
    data = (
        shb()
        + spb(frame_bytes(0, 10))  # before any interface
        + idb()
        + epb(0, 1, frame_bytes(1, 10))
        + epb(3, 2, frame_bytes(2, 10))  # interface 3 is not defined
        + epb(0, 3, frame_bytes(3, 10), caplen=200)  # more captured bytes than the block holds
        + pb(1, 4, frame_bytes(4, 10))  # obsolete Packet Block, bad interface too
        + epb(0, 5, frame_bytes(5, 10))
    )
    got = read(write(tmp_path, "i.pcapng", data))
    assert got.data == [frame_bytes(1, 10), frame_bytes(5, 10)]
    assert got.kinds() == [
        "bad_interface_id",
        "bad_interface_id",
        "bad_captured_length",
        "bad_interface_id",
    ]
    assert not any(i.fatal for i in got.report.issues)
    assert [i.frame_no for i in got.report.issues] == [1, 2, 2, 2]


def test_pcapng_many_bad_blocks_do_not_flood_the_report(tmp_path: Path) -> None:
    data = shb() + idb() + epb(9, 1, b"x" * 4) * 500 + epb(0, 1, b"ok")
    got = read(write(tmp_path, "flood.pcapng", data))
    assert got.data == [b"ok"]
    assert len(got.report.issues) == pcapng_mod._MAX_ISSUES_PER_KIND + 1
    assert "400 more" in got.report.issues[-1].detail


@pytest.mark.parametrize("chunk", [1, 3, 28, 29, 100, 4096])
def test_pcapng_small_read_chunks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, chunk: int
) -> None:
    """Blocks split across reads (and sections, SPBs, skipped blocks) come out the same."""
    data, want = rich_pcapng("<")
    more, _ = rich_pcapng(">")
    path = write(tmp_path, "c.pcapng", data + more)
    whole = read(path)
    monkeypatch.setattr(pcapng_mod, "READ_CHUNK_BYTES", chunk)
    split = read(path)
    assert split.data == whole.data == [f["data"] for f in want] * 2
    assert split.ts_ns == whole.ts_ns
    assert split.frame_no == whole.frame_no == list(range(1, 11))
    assert split.linktype == whole.linktype
    assert split.report.issues == []


def test_pcapng_large_file_many_batches(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pcapng_mod, "READ_CHUNK_BYTES", 64 * 1024)
    n = 20_000
    body = b"".join(epb(i % 2, T0 * 10**6 + i, frame_bytes(i, 20 + i % 50)) for i in range(n))
    path = write(tmp_path, "big.pcapng", shb() + idb() + idb(LINKTYPE_RAW, 0, tsresol=9) + body)
    got = read(path)
    assert len(got.batches) > 10
    assert len(got) == n and got.report.frames == n
    assert got.frame_no == list(range(1, n + 1))
    assert got.caplen == [20 + i % 50 for i in range(n)]
    assert got.linktype == [LINKTYPE_ETHERNET, LINKTYPE_RAW] * (n // 2)
    assert got.ts_ns[:4] == [
        (T0 * 10**6) * 1000,
        T0 * 10**6 + 1,
        (T0 * 10**6 + 2) * 1000,
        T0 * 10**6 + 3,
    ]


# Random damage: whatever the bytes, reading yields frames and issues, never an exception.
_PCAPNG_SAMPLE = rich_pcapng("<")[0] + rich_pcapng(">")[0]
_PCAP_SAMPLE = pcap_file(pcap_recs(False))


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    which=st.sampled_from(["pcapng", "pcap"]),
    edits=st.lists(st.tuples(st.integers(0, 10_000), st.integers(0, 255)), max_size=8),
    cut=st.integers(0, 10_000),
)
def test_damaged_input_never_raises(
    tmp_path: Path, which: str, edits: list[tuple[int, int]], cut: int
) -> None:
    sample = bytearray(_PCAPNG_SAMPLE if which == "pcapng" else _PCAP_SAMPLE)
    for at, value in edits:
        sample[at % len(sample)] = value
    data = bytes(sample[: max(cut % (len(sample) + 1), 1)])
    path = write(tmp_path, "d.cap", data)
    try:
        cap = open_capture(path)
    except CaptureError:
        return
    for b in cap:
        assert (b.offset + b.caplen <= len(b.data)).all()
        assert (b.caplen >= 0).all()


# --- compressed input, stdin ------------------------------------------------------------------


def _zstd(data: bytes) -> bytes:
    zstandard = pytest.importorskip("zstandard")
    return zstandard.ZstdCompressor().compress(data)


COMPRESSORS = {
    "gz": gzip.compress,
    "bz2": bz2.compress,
    "xz": lzma.compress,
    "zst": _zstd,
}


def sample_capture(fmt: str, n: int = 10) -> tuple[bytes, list[bytes]]:
    frames = [frame_bytes(i, 60 + i) for i in range(n)]
    if fmt == "pcap":
        return pcap_file([Rec(T0 + i, i, f) for i, f in enumerate(frames)]), frames
    return shb() + idb() + b"".join(epb(0, i, f) for i, f in enumerate(frames)), frames


@pytest.mark.parametrize("fmt", ["pcap", "pcapng"])
@pytest.mark.parametrize("comp", sorted(COMPRESSORS))
def test_compressed_input_detected_by_magic(tmp_path: Path, fmt: str, comp: str) -> None:
    raw, frames = sample_capture(fmt)
    packed = COMPRESSORS[comp](raw)
    # A misleading name: detection must go by the bytes, not the extension.
    path = write(tmp_path, f"capture.{fmt}", packed)
    got = read(path)
    assert got.report.format == fmt
    assert got.data == frames
    assert got.report.issues == []


@pytest.mark.parametrize("fmt", ["pcap", "pcapng"])
@pytest.mark.parametrize("comp", sorted(COMPRESSORS))
def test_truncated_compressed_input_keeps_earlier_frames(
    tmp_path: Path, fmt: str, comp: str
) -> None:
    raw, frames = sample_capture(fmt, 3000)
    packed = COMPRESSORS[comp](raw)
    got = read(write(tmp_path, "cut.bin", packed[: len(packed) * 2 // 3]))
    assert got.kinds() == ["truncated_file"]
    assert got.report.issues[0].fatal
    assert got.data == frames[: len(got)]  # a prefix of the capture, nothing invented
    if comp in ("gz", "zst"):
        # Both decode in small steps: what came before the cut is read, not thrown away.
        assert len(got) > len(frames) // 3


@pytest.mark.parametrize("fmt", ["pcap", "pcapng"])
def test_corrupt_gzip_is_an_issue_not_a_crash(tmp_path: Path, fmt: str) -> None:
    raw, frames = sample_capture(fmt, 3000)
    packed = gzip.compress(raw)
    # A bad CRC is only noticed at the end: every frame is read, then the failure reported.
    bad_crc = packed[:-8] + bytes(b ^ 0xFF for b in packed[-8:-4]) + packed[-4:]
    got = read(write(tmp_path, "crc.gz", bad_crc))
    assert got.data == frames
    assert got.kinds() == ["truncated_file"]
    assert "decompression failed" in got.report.issues[0].detail
    # Damage in the middle of the deflate stream: zlib.error or garbage blocks, either way
    # an issue and a clean stop, never an exception.
    mangled = bytearray(packed)
    mid = len(mangled) // 2
    mangled[mid : mid + 64] = b"\xff" * 64
    got = read(write(tmp_path, "corrupt.gz", bytes(mangled)))
    assert got.report.issues and got.report.issues[-1].fatal
    assert len(got) < len(frames)


@pytest.mark.parametrize("fmt", ["pcap", "pcapng"])
@pytest.mark.parametrize("comp", ["none", "gz"])
def test_stdin(fmt: str, comp: str) -> None:
    raw, frames = sample_capture(fmt, 50)
    payload = gzip.compress(raw) if comp == "gz" else raw
    code = (
        "from pcapan.io import open_capture\n"
        "c = open_capture('-')\n"
        "n = sum(len(b) for b in c)\n"
        "print(c.name, c.report.format, n, len(c.report.issues))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], input=payload, capture_output=True, check=True
    )
    assert out.stdout.decode().split() == ["<stdin>", fmt, "50", "0"]


# --- errors -----------------------------------------------------------------------------------


def _error_of(source: str | Path) -> str:
    with pytest.raises(CaptureError) as exc:
        open_capture(source)
    msg = str(exc.value)
    assert "\n" not in msg
    assert str(source) in msg
    return msg


def test_error_missing_file(tmp_path: Path) -> None:
    assert "no such file" in _error_of(tmp_path / "nope.pcap")


def test_error_directory(tmp_path: Path) -> None:
    assert "directory" in _error_of(tmp_path)


def test_error_empty_file(tmp_path: Path) -> None:
    assert "empty" in _error_of(write(tmp_path, "empty.pcap", b""))


def test_error_not_a_capture(tmp_path: Path) -> None:
    assert "not a pcap or pcapng" in _error_of(
        write(tmp_path, "notes.pcap", b"hello, this is text\n" * 5)
    )
    # Compressed text is still not a capture.
    assert "not a pcap or pcapng" in _error_of(
        write(tmp_path, "notes.gz", gzip.compress(b"plain text" * 9))
    )


def test_error_header_too_short(tmp_path: Path) -> None:
    _error_of(write(tmp_path, "short.pcap", pcap_header()[:10]))
    _error_of(write(tmp_path, "short.pcapng", shb()[:10]))


def test_error_malformed_section_header(tmp_path: Path) -> None:
    bad_bom = bytearray(shb())
    bad_bom[8:12] = b"abcd"
    assert "byte-order" in _error_of(write(tmp_path, "bom.pcapng", bytes(bad_bom)))
    assert "length" in _error_of(write(tmp_path, "len.pcapng", with_lengths(shb(), total=13)))
    assert "version" in _error_of(write(tmp_path, "ver.pcapng", shb(major=2)))


def test_section_header_only_is_an_empty_capture(tmp_path: Path) -> None:
    got = read(write(tmp_path, "shb.pcapng", shb()))
    assert len(got) == 0 and got.report.issues == []
    got = read(write(tmp_path, "hdr.pcap", pcap_header()))
    assert len(got) == 0 and got.report.issues == []


# --- corpus -----------------------------------------------------------------------------------


def corpus_files() -> list[Path]:
    if not CORPUS.is_dir():
        return []
    out = []
    for p in sorted(CORPUS.rglob("*")):
        if not p.is_file() or any(part.endswith(".gt") for part in p.relative_to(CORPUS).parts):
            continue
        if p.name.endswith((".pcap", ".pcapng", ".pcap.gz")):
            out.append(p)
    return out


_CORPUS_FILES = corpus_files()


@pytest.mark.corpus
@needs_capinfos
@pytest.mark.skipif(not _CORPUS_FILES, reason=f"no corpus at {CORPUS}")
@pytest.mark.parametrize(
    "path", _CORPUS_FILES, ids=[str(p.relative_to(CORPUS)) for p in _CORPUS_FILES]
)
def test_corpus_frame_counts_match_capinfos(path: Path) -> None:
    got = read(path)
    assert [i for i in got.report.issues if i.fatal] == []
    assert len(got) == capinfos_count(path)
    assert got.frame_no == list(range(1, len(got) + 1))


_CORPUS_PCAPNG = [p for p in _CORPUS_FILES if p.name.endswith(".pcapng")]


@pytest.mark.corpus
@pytest.mark.tshark
@needs_tshark
@pytest.mark.skipif(not _CORPUS_PCAPNG, reason=f"no pcapng files in corpus at {CORPUS}")
@pytest.mark.parametrize(
    "path", _CORPUS_PCAPNG, ids=[str(p.relative_to(CORPUS)) for p in _CORPUS_PCAPNG]
)
def test_corpus_pcapng_frames_match_tshark(path: Path) -> None:
    """Timestamps (all if_tsresol variants the corpus has), lengths and numbers per frame."""
    assert_matches_tshark(path, read(path))
