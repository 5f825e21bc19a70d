"""TCP stream reassembly (pcapan.flow.reassembly): the stream contract of DESIGN.md.

Three layers:
- Hypothesis properties: any segmentation, permutation, duplication, overlap and loss of a
  stream (with wrap-around of the 32-bit sequence space, FIN and data after it) reassembles to
  exactly the covered bytes, with gaps of exactly the missing ranges at the right places, every
  byte delivered with the timestamp of the packet that completed it; sequence-only mode counts
  the same; a small out-of-order buffer stays bounded and never invents or moves bytes.
- Unit tables: in-order and out-of-order delivery, retransmission, partial and conflicting
  overlap, keep-alives, wrap-around, data after FIN, acked() gaps, bounded buffer,
  classifications; each fed whole, at every split point and one byte at a time.
- End to end through ``pcapan.analyze`` on small scapy-built pcaps (drop, swap, duplicate,
  wrap-around), with every expected value derived by hand from how the packets were built.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from unittest import mock

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pcapan.flow import reassembly
from pcapan.flow.reassembly import Reassembler

MOD = 1 << 32
KINDS = {"", "new", "ooo", "future", "retx", "partial", "after_fin", "keepalive", "before_start"}
# Counters that depend on sequence numbers only: a sink-less reassembler must agree on them.
SEQ_COUNTERS = (
    "delivered",
    "gap_bytes",
    "gaps",
    "retransmitted",
    "out_of_order",
    "after_fin",
    "keepalives",
    "before_start",
    "next_rel",
    "max_end",
    "fin_rel",
    "ended",
    "pending_bytes",
)


# -- helpers -----------------------------------------------------------------------------------
class Recorder:
    """A StreamSink that records every event (and checks the contract's shape as it goes)."""

    def __init__(self) -> None:
        self.events: list[tuple] = []

    def data(self, chunk: bytes, ts_ns: int) -> None:
        assert type(chunk) is bytes and chunk, "data() must get non-empty bytes"
        assert not self.ended, "data after end()"
        self.events.append(("data", chunk, ts_ns))

    def gap(self, nbytes: int, ts_ns: int) -> None:
        assert nbytes > 0, "gap() must get a positive size"
        assert not self.ended, "gap after end()"
        self.events.append(("gap", nbytes, ts_ns))

    def end(self, ts_ns: int) -> None:
        assert not self.ended, "end() twice"
        self.events.append(("end", ts_ns))

    @property
    def ended(self) -> bool:
        return bool(self.events) and self.events[-1][0] == "end"

    def merged(self) -> list[tuple]:
        """Events without timestamps, adjacent data chunks joined (chunking is not contractual)."""
        out: list[tuple] = []
        for ev in self.events:
            if ev[0] == "data" and out and out[-1][0] == "data":
                out[-1] = ("data", out[-1][1] + ev[1])
            elif ev[0] == "end":
                out.append(("end",))
            else:
                out.append(ev[:2])
        return out

    def holes(self) -> list[int | None]:
        """The stream as seen by the consumer: byte values, None for each byte of a gap."""
        out: list[int | None] = []
        for ev in self.events:
            if ev[0] == "data":
                out.extend(ev[1])
            elif ev[0] == "gap":
                out.extend([None] * ev[1])
        return out

    def byte_ts(self) -> list[int]:
        """Timestamp of the event that delivered each data byte, in stream order."""
        out: list[int] = []
        for ev in self.events:
            if ev[0] == "data":
                out.extend([ev[2]] * len(ev[1]))
        return out

    def data_bytes(self) -> bytes:
        return b"".join(ev[1] for ev in self.events if ev[0] == "data")


class Both:
    """The same input fed to a reassembler with a recording sink and to a sequence-only one.

    Offsets are stream offsets (0 = first data byte); ``seq`` turns them into 32-bit sequence
    numbers for the given ISN. Every call checks that both agree on the classification and,
    via :meth:`check`, on every sequence-space counter.
    """

    def __init__(self, isn: int = 1000, memview: bool = False) -> None:
        self.isn = isn
        self.rec = Recorder()
        self.r = Reassembler(self.rec)
        self.q = Reassembler(None)
        self.r.init_isn(isn)
        self.q.init_isn(isn)
        self.memview = memview
        self.kinds: list[str] = []

    def seq(self, off: int) -> int:
        return (self.isn + 1 + off) % MOD

    def seg(
        self, off: int, payload: bytes, ts: int, fin: bool = False, length: int | None = None
    ) -> str:
        return self.seg_seq(self.seq(off), payload, ts, fin, length)

    def seg_seq(
        self, seq: int, payload: bytes, ts: int, fin: bool = False, length: int | None = None
    ) -> str:
        n = len(payload) if length is None else length
        p = memoryview(payload) if self.memview else payload
        k = self.r.segment(seq, p, n, ts, fin=fin)
        k2 = self.q.segment(seq, None, n, ts, fin=fin)
        assert k == k2, (k, k2)
        assert k in KINDS
        self.kinds.append(k)
        self.check()
        return k

    def acked(self, off: int, ts: int) -> None:
        """The peer acknowledged every byte before stream offset ``off``."""
        self.r.acked(off + 1, ts)
        self.q.acked(off + 1, ts)
        self.check()

    def finish(self, ts: int, acked_off: int | None = None) -> None:
        a = None if acked_off is None else acked_off + 1
        self.r.finish(ts, a)
        self.q.finish(ts, a)
        self.check()
        assert self.r.pending_bytes == 0

    def check(self) -> None:
        for name in SEQ_COUNTERS:
            assert getattr(self.r, name) == getattr(self.q, name), name
        assert self.q.conflicts == 0  # nothing to compare without payload

    def __getattr__(self, name: str):  # counters of the sink-carrying reassembler
        return getattr(self.r, name)


def splits(data: bytes) -> Iterator[list[tuple[int, bytes]]]:
    """Segmentations of ``data`` as (offset, bytes): whole, every 2-way split, one byte at a time."""
    yield [(0, data)]
    for k in range(1, len(data)):
        yield [(0, data[:k]), (k, data[k:])]
    if len(data) > 2:
        yield [(i, data[i : i + 1]) for i in range(len(data))]


@contextmanager
def limits(nbytes: int, nsegs: int) -> Iterator[None]:
    """Small out-of-order limits (the module reads its config constants at call time)."""
    with (
        mock.patch.object(reassembly, "MAX_OOO_BYTES_PER_DIRECTION", nbytes),
        mock.patch.object(reassembly, "MAX_OOO_SEGMENTS_PER_DIRECTION", nsegs),
    ):
        yield


# -- property tests ----------------------------------------------------------------------------
T0 = 1_000  # item k of a scenario is fed with timestamp T0 + k
FINISH_TS = 10**9


@dataclass
class Item:
    a: int  # stream offset of the first byte
    b: int  # one past the last
    payload: bytes
    fin: bool = False
    junk: bool = False  # beyond the end of the stream (after the FIN)


@dataclass
class Scenario:
    stream: bytes
    isn: int
    order: list[Item]
    with_fin: bool
    ack_full: bool  # finish() told that the peer acknowledged the whole stream
    memview: bool


@st.composite
def scenarios(draw: st.DrawFn, *, drops: bool, early_junk: bool = True) -> Scenario:
    n = draw(st.integers(0, 20_000))
    rnd = random.Random(draw(st.integers(0, 2**32 - 1)))
    stream = rnd.randbytes(n)
    junk = rnd.randbytes(5_000)
    # Any ISN, or one just below 2^32 so that the stream's sequence numbers wrap around.
    isn = draw(st.one_of(st.integers(0, MOD - 1), st.integers(max(0, MOD - 2 - n), MOD - 1)))
    items: list[Item] = []
    if n:
        cuts = (
            sorted(set(draw(st.lists(st.integers(1, max(1, n - 1)), max_size=40)))) if n > 1 else []
        )
        bounds = [0, *cuts, n]
        base = list(zip(bounds, bounds[1:], strict=False))
        if drops:
            keep = draw(st.lists(st.booleans(), min_size=len(base), max_size=len(base)))
            base = [ab for ab, k in zip(base, keep, strict=True) if k]
        spans = list(base)
        # Duplicates of base segments, and segments with random start/end (overlaps).
        if base:
            spans += draw(st.lists(st.sampled_from(base), max_size=10))
        for a, ln in draw(
            st.lists(st.tuples(st.integers(0, n - 1), st.integers(1, 4_000)), max_size=12)
        ):
            b = min(n, a + ln)
            if drops and draw(st.booleans()):
                continue  # in the lossy case, many extras are lost too
            spans.append((a, b))
        items = [Item(a, b, stream[a:b]) for a, b in spans]
    with_fin = draw(st.booleans())
    late: list[Item] = []
    if with_fin:
        for it in items:
            if it.b == n and draw(st.booleans()):
                it.fin = True  # the last data segment carries the FIN
        items.append(Item(n, n, b"", fin=True))  # a pure FIN (also when the data carried one)
        for off, ln in draw(
            st.lists(st.tuples(st.integers(0, 2_000), st.integers(1, 1_000)), max_size=4)
        ):
            # Junk after the FIN, from one junk stream so that overlapping junk agrees.
            j = Item(n + off, n + off + ln, junk[off : off + ln], junk=True)
            # Junk right at the FIN's position, fed before the FIN, would simply be the stream's
            # continuation (nothing tells it apart); so that kind comes after the FIN.
            if off == 0 or not early_junk or draw(st.booleans()):
                late.append(j)
            else:
                items.append(j)
    order = draw(st.permutations(items))
    if late:
        first_fin = min(i for i, it in enumerate(order) if it.fin)
        for j in late:
            order.insert(draw(st.integers(first_fin + 1, len(order))), j)
    ack_full = not with_fin and draw(st.booleans())
    return Scenario(stream, isn, order, with_fin, ack_full, draw(st.booleans()))


def _run(sc: Scenario) -> Both:
    b = Both(sc.isn, memview=sc.memview)
    for k, it in enumerate(sc.order):
        b.seg(it.a, it.payload, T0 + k, fin=it.fin)
    b.finish(FINISH_TS, len(sc.stream) if sc.ack_full else None)
    return b


def _coverage(sc: Scenario) -> tuple[np.ndarray, int]:
    """First feed index covering each stream byte (a large value if never), and the stream end
    the reassembler can know of (the FIN, the acknowledgement, or the highest byte seen)."""
    n = len(sc.stream)
    first = np.full(n, 1 << 40, dtype=np.int64)
    for k in range(len(sc.order) - 1, -1, -1):  # backwards: the earliest writer wins
        it = sc.order[k]
        if not it.junk:
            first[it.a : it.b] = k
    if sc.with_fin or sc.ack_full:
        end = n
    else:
        end = max((it.b for it in sc.order if not it.junk and it.b > it.a), default=0)
    return first, end


def _runs(covered: np.ndarray, stream: bytes) -> list[tuple]:
    out: list[tuple] = []
    i, n = 0, len(covered)
    while i < n:
        j = i
        while j < n and covered[j] == covered[i]:
            j += 1
        out.append(("data", stream[i:j]) if covered[i] else ("gap", j - i))
        i = j
    return out


@settings(
    max_examples=250,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(scenarios(drops=False))
def test_property_full_coverage_reassembles_original(sc: Scenario) -> None:
    b = _run(sc)
    n = len(sc.stream)
    assert b.rec.merged() == ([("data", sc.stream)] if n else []) + [("end",)]
    assert b.delivered == n and b.gap_bytes == 0 and b.gaps == 0
    assert b.conflicts == 0
    _check_timing_and_counters(sc, b)


@settings(
    max_examples=250,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(scenarios(drops=True))
def test_property_lost_ranges_become_exact_gaps(sc: Scenario) -> None:
    b = _run(sc)
    first, end = _coverage(sc)
    covered = first[:end] < (1 << 40)
    # One gap event per missing range, of exactly its size, between the right bytes.
    assert b.rec.merged() == _runs(covered, sc.stream) + [("end",)]
    assert b.rec.holes() == [sc.stream[i] if c else None for i, c in enumerate(covered)]
    assert b.delivered == int(covered.sum())
    assert b.gap_bytes == end - int(covered.sum())
    assert b.conflicts == 0
    _check_timing_and_counters(sc, b)


def _check_timing_and_counters(sc: Scenario, b: Both) -> None:
    first, end = _coverage(sc)
    covered = first[:end] < (1 << 40)
    # A byte is delivered by the call that completed everything before it: its timestamp is the
    # latest first arrival among the bytes up to it, or finish() when a hole precedes it.
    arrival = np.where(covered, T0 + first[:end], FINISH_TS)
    ready = np.maximum.accumulate(arrival) if end else arrival
    assert b.rec.byte_ts() == ready[covered].tolist()
    # end(): when the FIN is known, every byte up to it arrived and nothing waits (else finish).
    fin_k = [k for k, it in enumerate(sc.order) if it.fin]
    if sc.with_fin and covered.all():
        want_end = max(T0 + fin_k[0], int(ready[-1]) if end else 0)
    else:
        want_end = FINISH_TS
    assert b.rec.events[-1] == ("end", want_end)
    assert b.ended and b.pending_bytes == 0
    # Data after the FIN: ignored, and every junk segment fed once the FIN was known is counted
    # (junk buffered before it is dropped when it comes, and counted per buffered piece).
    if sc.with_fin:
        junk_after = sum(1 for k, it in enumerate(sc.order) if it.junk and k > fin_k[0])
        junk_before = sum(1 for k, it in enumerate(sc.order) if it.junk and k < fin_k[0])
        assert b.after_fin >= junk_after
        if not junk_before:
            assert b.after_fin == junk_after
        assert b.fin_rel == len(sc.stream) + 1
    else:
        assert b.after_fin == 0


@settings(
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(scenarios(drops=True, early_junk=False), st.integers(1, 6_000), st.integers(1, 8))
def test_property_bounded_buffer(sc: Scenario, max_bytes: int, max_segs: int) -> None:
    """With tiny limits the buffer forces gaps, stays within them, and never invents bytes."""
    with limits(max_bytes, max_segs):
        b = Both(sc.isn, memview=sc.memview)
        for k, it in enumerate(sc.order):
            b.seg(it.a, it.payload, T0 + k, fin=it.fin)
            assert b.pending_bytes <= max_bytes
            assert len(b.r._ooo) <= max_segs
        b.finish(FINISH_TS, len(sc.stream) if sc.ack_full else None)
    first, end = _coverage(sc)
    got = b.rec.holes()
    assert len(got) == end  # every position accounted for, once, in order
    for i, v in enumerate(got):
        if v is not None:
            assert v == sc.stream[i]  # a delivered byte is the right byte at the right place
            assert first[i] < (1 << 40)
    assert b.delivered == sum(v is not None for v in got)
    assert b.gap_bytes == end - b.delivered
    # No byte is delivered before a packet carrying it arrived.
    ts = b.rec.byte_ts()
    pos = [i for i, v in enumerate(got) if v is not None]
    assert all(t >= T0 + first[i] for t, i in zip(ts, pos, strict=True))
    assert b.conflicts == 0
    assert b.rec.events[-1][0] == "end"


# -- unit tests --------------------------------------------------------------------------------
MSG = b"GET / HTTP/1.1\r\n\r\n"


def _feed(b: Both, segs: list[tuple[int, bytes]], ts0: int = 1) -> list[str]:
    return [b.seg(off, p, ts0 + i) for i, (off, p) in enumerate(segs)]


@pytest.mark.parametrize("isn", [0, 1000, MOD - 1, MOD - 7])
def test_in_order_delivery_with_timestamp_of_each_packet(isn: int) -> None:
    for segs in splits(MSG):
        b = Both(isn)
        assert _feed(b, segs) == ["new"] * len(segs)
        # Each segment is delivered at once, with its own timestamp.
        assert b.rec.events == [("data", p, 1 + i) for i, (_, p) in enumerate(segs)]
        assert (b.delivered, b.retransmitted, b.out_of_order, b.next_rel) == (
            len(MSG),
            0,
            0,
            len(MSG) + 1,
        )
        b.finish(99)
        assert b.rec.events[-1] == ("end", 99) and b.gap_bytes == 0


def test_out_of_order_delivered_with_timestamp_of_hole_filler() -> None:
    for segs in list(splits(MSG))[1:]:
        b = Both()
        rev = segs[::-1]
        kinds = _feed(b, rev)
        # The highest segment arrives first ('future'); the others fill holes below data already
        # seen ('ooo'); nothing is delivered until the first byte arrives, and then everything,
        # with the timestamp of that last packet.
        assert kinds == ["future"] + ["ooo"] * (len(rev) - 1)
        assert b.rec.merged() == [("data", MSG)]
        assert {ev[2] for ev in b.rec.events} == {len(rev)}
        assert b.out_of_order == len(rev) - 1 and b.retransmitted == 0
        b.finish(99)
        assert b.rec.merged() == [("data", MSG), ("end",)]


def test_hole_filled_in_the_middle() -> None:
    # [0,4) at ts 1, [8,12) at ts 2 (waits), [4,8) at ts 3 fills the hole: [4,12) go out at ts 3.
    b = Both()
    assert b.seg(0, MSG[:4], 1) == "new"
    assert b.seg(8, MSG[8:12], 2) == "future"
    assert b.pending_bytes == 4
    assert b.seg(4, MSG[4:8], 3) == "ooo"
    assert b.rec.byte_ts() == [1] * 4 + [3] * 8
    assert b.rec.data_bytes() == MSG[:12] and b.pending_bytes == 0


def test_exact_retransmission() -> None:
    for segs in splits(MSG):
        b = Both()
        _feed(b, segs)
        again = _feed(b, segs, ts0=50)
        # Each copy of delivered bytes is a retransmission, except a one-byte copy of the last
        # byte, which is indistinguishable from a keep-alive probe (Wireshark's rule as well).
        want = ["retx"] * len(segs)
        if len(segs[-1][1]) == 1:
            want[-1] = "keepalive"
        assert again == want
        assert b.retransmitted == want.count("retx") and b.keepalives == want.count("keepalive")
        assert b.rec.merged() == [("data", MSG)] and b.conflicts == 0  # no duplicate data


def test_retransmission_of_buffered_segment() -> None:
    b = Both()
    assert b.seg(10, MSG[10:], 1) == "future"
    assert b.seg(10, MSG[10:], 2) == "retx"  # nothing new: already buffered
    assert b.seg(12, MSG[12:14], 3) == "retx"
    assert b.retransmitted == 2 and b.pending_bytes == len(MSG) - 10 and not b.rec.events
    assert b.seg(0, MSG[:10], 4) == "ooo"
    assert b.rec.merged() == [("data", MSG)]


def test_partial_overlap_at_every_split() -> None:
    n = len(MSG)
    for j in range(0, n - 1):
        for k in range(j + 1, n):
            b = Both()
            assert b.seg(0, MSG[:k], 1) == "new"
            # [j, n) repeats [j, k) and brings [k, n): only the new part is delivered.
            assert b.seg(j, MSG[j:], 2) == "partial"
            assert b.rec.events == [("data", MSG[:k], 1), ("data", MSG[k:], 2)]
            assert b.retransmitted == 1 and b.conflicts == 0 and b.delivered == n


def test_overlap_with_buffered_keeps_first_copy() -> None:
    # An in-order segment that also covers bytes waiting in the buffer: the buffered (first)
    # copy is what is delivered for those bytes, and a differing later copy is a conflict.
    for k in range(1, len(MSG)):
        b = Both()
        first = b"X" * (len(MSG) - k)
        assert b.seg(k, first, 1) == "future"
        assert b.seg(0, MSG, 2) == "ooo"
        assert b.rec.merged() == [("data", MSG[:k] + first)]
        assert b.conflicts == 1 and b.pending_bytes == 0
        # The same with an identical copy: no conflict.
        c = Both()
        c.seg(k, MSG[k:], 1)
        c.seg(0, MSG, 2)
        assert c.rec.merged() == [("data", MSG)] and c.conflicts == 0


def test_conflicting_overlap_between_buffered_segments() -> None:
    b = Both()
    b.seg(0, b"ab", 1)
    assert b.seg(5, b"fgh", 2) == "future"
    assert b.seg(9, b"jk", 3) == "future"
    # [4, 12) differs from both buffered pieces: one conflicting segment, first copies kept,
    # and only the missing pieces [4,5), [8,9), [11,12) are taken from it.
    assert b.seg(4, b"EFGHIJKL", 4) == "ooo"
    assert b.conflicts == 1
    b.seg(2, b"cd", 5)
    assert b.rec.merged() == [("data", b"abcdEfghIjkL")]


def test_conflict_against_recent_tail() -> None:
    for segs in splits(b"hello world"):
        b = Both()
        _feed(b, segs)
        assert b.seg(6, b"WORLD", 50) == "retx"
        assert b.conflicts == 1
        assert b.seg(6, b"world", 51) == "retx"  # a faithful copy is no conflict
        assert b.conflicts == 1
        assert b.seg(8, b"RLD!!", 52) == "partial"  # differs in the delivered part, new "!!"
        assert b.conflicts == 2
        assert b.rec.merged() == [("data", b"hello world!!")]  # the first copy stays


def test_conflict_beyond_kept_tail_is_not_seen() -> None:
    with mock.patch.object(reassembly, "RETX_COMPARE_TAIL_BYTES", 4):
        b = Both()
        b.seg(0, b"hello world", 1)
        assert b.seg(0, b"HELLO", 2) == "retx"  # outside the 4-byte tail: not compared
        assert b.conflicts == 0
        assert b.seg(5, b" wORLD", 3) == "retx"  # "RLD" differs inside the tail "orld"
        assert b.conflicts == 1


def test_keepalive_probe_is_not_data() -> None:
    for segs in splits(b"abc"):
        b = Both()
        _feed(b, segs)
        # One byte at next-1, garbage or not: a keep-alive, not a retransmission or conflict.
        assert b.seg(2, b"\x00", 10) == "keepalive"
        assert b.seg(2, b"c", 11) == "keepalive"
        assert b.keepalives == 2 and b.retransmitted == 0 and b.conflicts == 0
        assert b.seg(3, b"d", 12) == "new"
        assert b.rec.merged() == [("data", b"abcd")]


def test_keepalive_before_any_data() -> None:
    # Before any data, next-1 is the SYN's sequence number (the ISN): probes carry seq = ISN.
    b = Both(isn=MOD - 1)
    assert b.seg_seq(MOD - 1, b"\x00", 1) == "keepalive"
    assert b.keepalives == 1 and b.before_start == 0 and not b.rec.events
    assert b.seg(0, b"x", 2) == "new"
    assert b.rec.merged() == [("data", b"x")]


def test_before_start() -> None:
    b = Both(isn=5)
    assert b.seg_seq(3, b"ab", 1) == "before_start"  # bytes 3,4 are below the ISN+1 = 6
    assert b.seg_seq(4, b"abcd", 2) == "new"  # 4,5 clipped; 6,7 are the first stream bytes
    assert b.before_start == 1 and b.rec.merged() == [("data", b"cd")]


@pytest.mark.parametrize("isn", [MOD - 1, MOD - 2, MOD - 5, MOD - len(MSG), MOD - len(MSG) - 1])
def test_wrap_around(isn: int) -> None:
    for segs in splits(MSG):
        for order in (segs, segs[::-1]):
            b = Both(isn)
            _feed(b, order)
            b.finish(99)
            assert b.rec.merged() == [("data", MSG), ("end",)]
            assert b.gap_bytes == 0 and b.next_rel == len(MSG) + 1


def test_wrap_around_with_gap_and_ack() -> None:
    isn = MOD - 3  # data starts at MOD-2: bytes 0,1 below 2^32, byte 2 at sequence 0
    b = Both(isn)
    b.seg(0, b"ab", 1)
    assert b.seg(4, b"ef", 2) == "future"  # sequence numbers 2, 3 after the wrap
    b.acked(6, 3)  # everything up to 'f' acknowledged: 'cd' (seq 0, 1) is a gap of 2
    assert b.rec.merged() == [("data", b"ab"), ("gap", 2), ("data", b"ef")]
    assert b.rec.events[1] == ("gap", 2, 3)


def test_relative_positions_survive_many_wraps() -> None:
    # Sequence-only mode copies nothing, so 5 GiB (> 2^32) of in-order segments are cheap.
    isn = 123
    q = Reassembler(None)
    q.init_isn(isn)
    step = 1 << 28
    pos = 1
    for i in range(20):
        assert q.segment((isn + pos) % MOD, None, step, i) == "new"
        pos += step
    assert q.next_rel == pos == 20 * step + 1 and q.delivered == 20 * step
    # A late copy from 1 GiB back is a retransmission; the next byte is still the next byte.
    assert q.segment((isn + pos - (1 << 30)) % MOD, None, 100, 30) == "retx"
    assert q.segment((isn + pos) % MOD, None, 10, 31) == "new"
    # advance() (the engine's folded in-order runs) counts exactly like segments.
    a = Reassembler(None)
    a.init_isn(isn)
    for _ in range(20):
        a.advance(step)
    assert (a.next_rel, a.delivered, a.max_end) == (20 * step + 1, 20 * step, 20 * step + 1)
    assert a.segment((isn + pos) % MOD, None, 10, 31) == "new"


def test_advance_needs_a_plain_stream() -> None:
    with pytest.raises(ValueError):
        Reassembler(Recorder()).advance(1)  # a sink wants the bytes
    q = Reassembler(None)
    q.init_isn(0)
    q.segment(5, None, 3, 1)
    with pytest.raises(ValueError):
        q.advance(1)  # something is buffered out of order


def test_data_after_fin() -> None:
    for segs in splits(b"abc"):
        b = Both()
        _feed(b, segs[:-1])
        off, last = segs[-1]
        assert b.seg(off, last, 5, fin=True) == "new"
        assert b.rec.events[-1] == ("end", 5) and b.fin_rel == 4  # the FIN is at offset 3
        assert b.seg(3, b"zz", 6) == "after_fin"
        assert b.seg(10, b"zz", 7) == "after_fin"
        assert b.seg(2, b"cz", 8) == "retx"  # straddles the FIN: only 'c' counts, a copy
        assert b.after_fin == 2
        b.finish(9)
        assert b.rec.merged() == [("data", b"abc"), ("end",)]
        assert b.gap_bytes == 0 and b.max_end == 4


def test_fin_before_hole_is_filled() -> None:
    b = Both()
    assert b.seg(3, b"def", 1, fin=True) == "future"
    assert b.seg(8, b"zz", 2) == "after_fin"
    assert b.seg(1, b"bcdefZZ", 3) == "ooo"  # clipped at the FIN; 'bc' fills part of the hole
    assert not b.rec.events
    assert b.seg(0, b"a", 4) == "ooo"
    assert b.rec.merged() == [("data", b"abcdef"), ("end",)]
    assert b.rec.events[-1] == ("end", 4)


def test_buffered_data_beyond_a_later_fin_is_dropped() -> None:
    # Junk beyond the end arrives (and waits) before the FIN tells where the stream ends.
    b = Both()
    assert b.seg(20, b"junk", 1) == "future"
    assert b.seg(9, b"jX", 2) == "ooo"  # straddles the FIN at 10 (not yet known)
    assert b.seg(0, b"abcdefg", 3) == "ooo"  # arrives after higher data: a hole filler
    assert b.rec.merged() == [("data", b"abcdefg")]
    # The FIN at offset 10: 'junk' is dropped, 'jX' cut to 'j' (both counted), and the
    # buffered 'j' keeps its first copy (equal here: no conflict).
    assert b.seg(7, b"hij", 4, fin=True) == "ooo"
    assert b.rec.merged() == [("data", b"abcdefghij"), ("end",)]
    assert b.rec.events[-1] == ("end", 4)
    assert b.after_fin == 2 and b.pending_bytes == 0 and b.conflicts == 0
    b.finish(9)
    assert b.gap_bytes == 0 and b.rec.merged()[-1] == ("end",)


def test_fin_on_a_retransmission_ends_the_stream() -> None:
    b = Both()
    b.seg(0, b"abc", 1)
    assert b.seg(0, b"abc", 2, fin=True) == "retx"  # the last segment again, now with FIN
    assert b.rec.events[-1] == ("end", 2) and b.ended


def test_pure_fin() -> None:
    b = Both()
    b.seg(0, b"abc", 1)
    assert b.seg(3, b"", 2, fin=True) == ""
    assert b.rec.events[-1] == ("end", 2)
    # A pure FIN past a hole: the hole becomes a gap at finish().
    d = Both()
    d.seg(0, b"ab", 1)
    d.seg(5, b"", 2, fin=True)
    assert not d.ended
    d.finish(3)
    assert d.rec.merged() == [("data", b"ab"), ("gap", 3), ("end",)] and d.gap_bytes == 3


def test_acked_beyond_received_data_is_an_exact_gap() -> None:
    for segs in splits(b"abc"):
        b = Both()
        _feed(b, segs)
        b.acked(8, 20)  # peer acknowledged offsets 0..7; 3..7 never seen
        assert b.rec.events[-1] == ("gap", 5, 20)
        assert (b.gap_bytes, b.gaps, b.next_rel) == (5, 1, 9)
        b.acked(8, 21)  # the same ack again: nothing new
        b.acked(4, 22)  # an older ack: nothing
        assert b.gaps == 1
        # The stream continues after the gap.
        assert b.seg(8, b"ijk", 23) == "new"
        assert b.seg(5, b"fgh", 24) == "retx"  # inside the gap: too late, a retransmission
        b.finish(30)
        assert b.rec.merged() == [("data", b"abc"), ("gap", 5), ("data", b"ijk"), ("end",)]


def test_acked_around_buffered_data() -> None:
    b = Both()
    b.seg(0, b"ab", 1)
    b.seg(4, b"ef", 2)
    b.seg(8, b"ij", 3)
    b.acked(12, 4)  # holes 2..3, 6..7 and 10..11 are gaps, buffered data goes out between them
    assert b.rec.merged() == [
        ("data", b"ab"),
        ("gap", 2),
        ("data", b"ef"),
        ("gap", 2),
        ("data", b"ij"),
        ("gap", 2),
    ]
    assert [ev[2] for ev in b.rec.events[1:]] == [4] * 5
    assert b.gap_bytes == 6 and b.pending_bytes == 0


def test_acked_stops_at_fin_and_finish_uses_ack() -> None:
    b = Both()
    b.seg(0, b"ab", 1)
    b.seg(4, b"", 2, fin=True)
    b.acked(5, 3)  # the ack also covers the FIN's own sequence number: not a data byte
    assert b.rec.merged() == [("data", b"ab"), ("gap", 2), ("end",)] and b.gap_bytes == 2
    c = Both()
    c.seg(0, b"ab", 1)
    c.finish(5, acked_off=6)  # no FIN seen: what the peer acknowledged existed
    assert c.rec.merged() == [("data", b"ab"), ("gap", 4), ("end",)]
    e = Both()
    e.seg(0, b"ab", 1)
    e.finish(5)
    assert e.rec.merged() == [("data", b"ab"), ("end",)] and e.gap_bytes == 0


def test_bounded_buffer_by_bytes() -> None:
    with limits(10, 100):
        b = Both()
        b.seg(0, b"a", 1)
        assert b.seg(5, b"fghi", 2) == "future"  # hole at 1..4
        assert b.seg(12, b"mnop", 3) == "future"  # 8 bytes buffered
        assert b.pending_bytes == 8 and not b.rec.merged()[1:]
        # 4 more would make 12 > 10: the first hole becomes a gap and 'fghi' goes out.
        assert b.seg(20, b"uvwx", 4) == "future"
        assert b.rec.merged() == [("data", b"a"), ("gap", 4), ("data", b"fghi")]
        assert b.rec.events[1][2] == 4  # at the time of the packet that overflowed
        assert b.pending_bytes == 8 <= 10
        # One segment larger than the whole buffer: everything before it is given up.
        assert b.seg(30, b"0123456789AB", 5) == "future"
        assert b.pending_bytes == 0
        assert b.rec.merged() == [
            ("data", b"a"),
            ("gap", 4),
            ("data", b"fghi"),
            ("gap", 3),
            ("data", b"mnop"),
            ("gap", 4),
            ("data", b"uvwx"),
            ("gap", 6),
            ("data", b"0123456789AB"),
        ]
        assert b.gap_bytes == 17 and b.delivered == 25


def test_bounded_buffer_by_segments() -> None:
    with limits(1 << 20, 3):
        b = Both()
        for i in range(1, 4):
            assert b.seg(2 * i, b"x", i) == "future"  # 2, 4, 6: three pieces buffered
        assert b.pending_bytes == 3 and not b.rec.events
        assert b.seg(8, b"y", 4) == "future"  # a fourth: the first hole gives way
        assert b.rec.merged() == [("gap", 2), ("data", b"x")]
        assert len(b.r._ooo) == 3 and b.pending_bytes == 3
        for i in range(5, 200):
            b.seg(2 * i, b"z", i)
            assert len(b.r._ooo) <= 3 and b.pending_bytes <= 3
        # 199 one-byte pieces at even offsets: all but the last 3 were forced out, each after
        # a gap (2 bytes before the first, 1 byte between the others).
        assert b.gaps == 199 - 3 and b.gap_bytes == 2 + (199 - 3 - 1)
        b.finish(1000)
        assert b.gaps == 199 and b.delivered == 199 and b.pending_bytes == 0


def test_classifications() -> None:
    b = Both()
    assert b.seg(0, b"abcd", 1) == "new"
    assert b.seg(8, b"ijkl", 2) == "future"  # beyond anything seen
    assert b.seg(14, b"op", 3) == "future"
    assert b.seg(12, b"mn", 4) == "ooo"  # fills a hole below data already seen (buffered)
    assert b.seg(4, b"efgh", 5) == "ooo"  # fills the first hole: delivered with what waited
    assert b.seg(2, b"cd", 6) == "retx"
    assert b.seg(14, b"opqr", 7) == "partial"  # repeats 'op', brings 'qr'
    assert b.seg(17, b"r", 8) == "keepalive"
    assert b.seg(18, b"st", 9, fin=True) == "new"
    assert b.seg(20, b"uv", 10) == "after_fin"
    assert b.seg(20, b"", 11) == ""  # an empty segment (a pure ACK)
    assert b.kinds == [
        "new",
        "future",
        "future",
        "ooo",
        "ooo",
        "retx",
        "partial",
        "keepalive",
        "new",
        "after_fin",
        "",
    ]
    assert (b.retransmitted, b.out_of_order, b.keepalives, b.after_fin) == (2, 2, 1, 1)
    assert b.rec.merged() == [("data", b"abcdefghijklmnopqrst"), ("end",)]


def test_ooo_then_bigger_in_order_segment() -> None:
    # An in-order segment that covers a hole and goes beyond everything seen: 'new', and the
    # buffered bytes inside it keep their first copy.
    b = Both()
    b.seg(4, b"EF", 1)
    assert b.seg(0, b"abcdefgh", 2) == "new"
    assert b.rec.merged() == [("data", b"abcdEFgh")] and b.conflicts == 1


def test_truncated_payload_keeps_the_consumer_aligned() -> None:
    # A snap length cut the payload: what was captured is data, the rest a gap for the sink;
    # the sequence-space counters do not change (sequence-only mode counts the same).
    b = Both()
    assert b.seg(0, b"ab", 1, length=5) == "new"
    assert b.seg(5, b"fgh", 2) == "new"
    assert b.rec.merged() == [("data", b"ab"), ("gap", 3), ("data", b"fgh")]
    assert b.delivered == 8 and b.gap_bytes == 0
    # Buffered truncated copy, later a full copy of the same range: first copy wins, and the
    # bytes both have are compared (equal here: no conflict).
    c = Both()
    c.seg(0, b"a", 1)
    c.seg(3, b"d", 2, length=3)
    c.seg(1, b"bcdef", 3)
    assert c.rec.merged() == [("data", b"abcd"), ("gap", 2)]
    assert c.conflicts == 0 and c.delivered == 6
    assert c.seg(6, b"g", 4) == "new"


def test_sink_detached_mid_stream() -> None:
    # The engine's content detector detaches itself once it has decided; the stream goes on
    # in sequence space, and a later copy with payload is not mistaken for a conflict.
    rec = Recorder()
    r = Reassembler(rec)
    r.init_isn(0)

    class Detach(Recorder):
        def data(self, chunk: bytes, ts_ns: int) -> None:
            rec.data(chunk, ts_ns)
            r.sink = None

    r.sink = Detach()
    r.segment(1, b"abc", 3, 1)
    r.segment(7, b"ghi", 3, 2)  # buffered with payload
    r.segment(4, b"def", 3, 3)
    assert rec.data_bytes() == b"abc" and r.delivered == 9
    assert r.segment(4, b"def", 3, 4) == "retx" and r.conflicts == 0
    r.finish(5)
    assert r.ended


# -- end to end through the engine -------------------------------------------------------------
CLIENT_PORT, SERVER_PORT = 40_000, 80
REQ1 = b"GET /index.html HTTP/1.1\r\n"
REQ2 = b"Host: 127.0.0.1\r\nUser-Agent: t\r\n\r\n"
BODY = bytes(range(48, 48 + 64)) * 3  # 192 bytes
RESP1 = b"HTTP/1.1 200 OK\r\nContent-Length: 192\r\n\r\n"
RESP2 = BODY[:100]
RESP3 = BODY[100:]
REQ = REQ1 + REQ2
RESP = RESP1 + RESP2 + RESP3


def _exchange(path, *, cisn: int = 1_000, sisn: int = 50_000, mutate=None) -> None:  # noqa: ANN001
    """Write one HTTP exchange over 127.0.0.1 (handshake, 2 request segments, 3 response
    segments, FIN both ways). Receivers acknowledge everything that was *sent*: a 'dropped'
    segment is lost by the capture, not by the network."""
    from scapy.layers.inet import IP, TCP
    from scapy.layers.l2 import Ether
    from scapy.packet import Raw
    from scapy.utils import wrpcap

    c, s = cisn, sisn
    cseq = lambda off: (c + 1 + off) % MOD  # noqa: E731 - client stream offset -> sequence
    sseq = lambda off: (s + 1 + off) % MOD  # noqa: E731
    plan = [  # (label, from client, flags, seq, ack, payload)
        ("syn", True, "S", c, 0, b""),
        ("synack", False, "SA", s, cseq(0), b""),
        ("ack", True, "A", cseq(0), sseq(0), b""),
        ("req1", True, "PA", cseq(0), sseq(0), REQ1),
        ("req2", True, "PA", cseq(len(REQ1)), sseq(0), REQ2),
        ("ack_req", False, "A", sseq(0), cseq(len(REQ)), b""),
        ("r1", False, "PA", sseq(0), cseq(len(REQ)), RESP1),
        ("r2", False, "PA", sseq(len(RESP1)), cseq(len(REQ)), RESP2),
        ("r3", False, "PA", sseq(len(RESP1) + len(RESP2)), cseq(len(REQ)), RESP3),
        ("ack_resp", True, "A", cseq(len(REQ)), sseq(len(RESP)), b""),
        ("fin_c", True, "FA", cseq(len(REQ)), sseq(len(RESP)), b""),
        ("fin_s", False, "FA", sseq(len(RESP)), cseq(len(REQ) + 1), b""),
        ("last_ack", True, "A", cseq(len(REQ) + 1), sseq(len(RESP) + 1), b""),
    ]
    if mutate is not None:
        plan = mutate(plan)
    pkts = []
    for i, (_, from_client, flags, seq, ack, payload) in enumerate(plan):
        sport, dport = (CLIENT_PORT, SERVER_PORT) if from_client else (SERVER_PORT, CLIENT_PORT)
        macs = ("02:00:00:00:00:01", "02:00:00:00:00:02")
        p = (
            Ether(src=macs[not from_client], dst=macs[from_client])
            / IP(src="127.0.0.1", dst="127.0.0.1")
            / TCP(sport=sport, dport=dport, flags=flags, seq=seq, ack=ack, window=65535)
        )
        if payload:
            p = p / Raw(payload)
        p.time = 1_700_000_000 + i * 0.001
        pkts.append(p)
    wrpcap(str(path), pkts)


def _drop(label: str):  # noqa: ANN202
    return lambda plan: [p for p in plan if p[0] != label]


def _swap(a: str, b: str):  # noqa: ANN202
    def f(plan):  # noqa: ANN001, ANN202
        i = next(k for k, p in enumerate(plan) if p[0] == a)
        j = next(k for k, p in enumerate(plan) if p[0] == b)
        plan = list(plan)
        plan[i], plan[j] = plan[j], plan[i]
        return plan

    return f


def _dup_after(label: str, after: str):  # noqa: ANN202
    def f(plan):  # noqa: ANN001, ANN202
        copy = next(p for p in plan if p[0] == label)
        j = next(k for k, p in enumerate(plan) if p[0] == after)
        return [*plan[: j + 1], (label + "_again", *copy[1:]), *plan[j + 1 :]]

    return f


# Expected values, by hand from the plan above. orig_bytes / resp_bytes follow Zeek: they come
# from sequence numbers (SYN to FIN), so they are len(REQ) = 26 + 34 = 60 and
# len(RESP) = 40 + 100 + 92 = 232 whatever the capture lost, reordered or repeated.
E2E = {
    # (a) r2 (100 response bytes) never captured; the client's ACKs cover it, so it is a gap of
    # exactly 100 bytes; r3 waited in the buffer and is neither a retransmission nor a hole
    # filler (it came after nothing higher).
    "drop": dict(
        mutate=_drop("r2"),
        missed_bytes=len(RESP2),
        orig_retransmits=0,
        resp_retransmits=0,
        orig_out_of_order=0,
        resp_out_of_order=0,
    ),
    # (b) the request's two segments swapped: req2 waits, req1 fills the hole below it and is
    # the one out-of-order segment; the service is still detected from "GET " (now delivered
    # with the second packet).
    "swap": dict(
        mutate=_swap("req1", "req2"),
        missed_bytes=0,
        orig_retransmits=0,
        resp_retransmits=0,
        orig_out_of_order=1,
        resp_out_of_order=0,
    ),
    # (c) r2 sent again after r3: one retransmission by the responder, nothing else.
    "dup": dict(
        mutate=_dup_after("r2", "r3"),
        missed_bytes=0,
        orig_retransmits=0,
        resp_retransmits=1,
        orig_out_of_order=0,
        resp_out_of_order=0,
    ),
    # (d) both ISNs just below 2^32: the client's data starts at 2^32 - 4, so sequence numbers
    # wrap 4 bytes into req1; the server's at 2^32 - 40 - 30, so they wrap 30 bytes into r2.
    # Nothing is lost or repeated.
    "wrap": dict(
        cisn=MOD - 5,
        sisn=MOD - 1 - len(RESP1) - 30,
        missed_bytes=0,
        orig_retransmits=0,
        resp_retransmits=0,
        orig_out_of_order=0,
        resp_out_of_order=0,
    ),
}


@pytest.mark.parametrize("case", list(E2E))
def test_engine_end_to_end(tmp_path, case: str) -> None:  # noqa: ANN001
    import pcapan

    spec = dict(E2E[case])
    build = {k: spec.pop(k) for k in ("mutate", "cisn", "sisn") if k in spec}
    path = tmp_path / f"{case}.pcap"
    _exchange(path, **build)
    conns = pcapan.analyze(path).connections
    assert len(conns) == 1
    row = conns.iloc[0]
    assert row["orig_bytes"] == len(REQ) == 60
    assert row["resp_bytes"] == len(RESP) == 232
    for col, want in spec.items():
        assert row[col] == want, (case, col, row[col], want)
    assert row["conn_state"] == "SF"  # FIN both ways, the last FIN acknowledged
    assert row["service"] == "http"
    assert row["overlap_conflicts"] == 0
    assert (row["orig_h"], row["orig_p"], row["resp_p"]) == ("127.0.0.1", CLIENT_PORT, SERVER_PORT)
