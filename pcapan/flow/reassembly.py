"""Per-direction TCP stream reassembly: segments in, ordered data / gap / end events out.

Policy (documented in the README, checked by property tests):
- Sequence numbers are made relative to the initial sequence number and extended to 64 bits,
  so wrap-around is invisible above this module.
- First copy wins: bytes already delivered, or already buffered out of order, are never
  replaced by a later copy. When a later copy of bytes we still hold differs, that is a
  conflicting overlap (counted, reported as an anomaly by the caller).
- Out-of-order segments wait in a bounded buffer (``MAX_OOO_*``). When the buffer is full, or
  the peer acknowledges bytes that never appeared, or the stream ends, the missing range is
  delivered as a gap of exactly its size and the stream continues after it.
- Data at or beyond the FIN's sequence number is not part of the stream (counted), including
  out-of-order data that was buffered before the FIN arrived.
- A keep-alive probe (one byte at the next expected sequence number minus one, also before any
  data was sent) is not data (counted).
- A payload shorter than the segment's length (snap length) is delivered as far as it was
  captured; the sink gets a gap for the rest so that it stays aligned with sequence space.
  Those bytes count as delivered, not as ``gap_bytes``: the counters depend on sequence numbers
  only, so a flow without a sink counts exactly the same.

A consumer (``StreamSink``) is optional: without one the reassembler only tracks sequence
space (counts, gaps), and never copies payload bytes, which is what keeps flows nobody parses
cheap.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from bisect import bisect_left, insort
from typing import Any, ClassVar

from pcapan.config import (
    MAX_OOO_BYTES_PER_DIRECTION,
    MAX_OOO_SEGMENTS_PER_DIRECTION,
    RETX_COMPARE_TAIL_BYTES,
)

_MOD = 1 << 32
_HALF = 1 << 31


class StreamSink(ABC):
    """What a protocol parser sees of one direction of a connection: the stream contract.

    Every consumer handed to a :class:`Reassembler` (and through it by the engine) derives from
    this class. It must implement :meth:`data`, :meth:`gap` and :meth:`end`; the other members
    are optional capabilities with neutral defaults, overridden by sinks that can do better:

    - :meth:`opaque` and :meth:`opaque_views`: bytes the sink takes without looking at their
      structure or at when each arrived (an HTTP body of known length, a TLS record body), so
      that in-order segments can be handed over joined, or as views with no copy at all;
    - :meth:`skim`: a whole run of in-order segments in one call, for a sink that needs only
      sparse bytes of it (TLS record headers after the handshake);
    - :attr:`ordered`: whether the sink needs the two directions' bytes in capture order.

    Whether a class overrides :meth:`skim` or :meth:`opaque` is computed once per class
    (``has_skim``, ``has_opaque``), so that the reassembler's fast path costs a sink without
    them no call per segment.
    """

    __slots__ = ()

    # Set for each subclass by __init_subclass__: it overrides skim() / opaque().
    has_skim: ClassVar[bool] = False
    has_opaque: ClassVar[bool] = False

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls.has_skim = cls.skim is not StreamSink.skim
        cls.has_opaque = cls.opaque is not StreamSink.opaque

    @abstractmethod
    def data(self, chunk: bytes, ts_ns: int) -> None:
        """The next bytes of the stream, in order (never empty); ``ts_ns`` is the capture time
        of the segment that completed them."""

    @abstractmethod
    def gap(self, nbytes: int, ts_ns: int) -> None:
        """The next ``nbytes`` (> 0) of the stream were never captured."""

    @abstractmethod
    def end(self, ts_ns: int) -> None:
        """The stream ended (FIN reached, or the connection was finalised); called once, with
        nothing after it."""

    @property
    def ordered(self) -> bool:
        """A parser reads this stream and needs both directions' bytes in capture order, with
        holes signalled as soon as they are known. A sink that only counts per direction (HTTP/2
        frames, TLS records after the handshake) says False, and its flow's runs may fold in
        bulk. Read by the engine once per flow and batch."""
        return True

    def opaque(self) -> int:
        """How many of the next bytes the sink will take without looking at their structure or
        at when each arrived (0: none). Called before each in-order segment of a folded run
        (only if the class overrides it); segments that fit wholly go to :meth:`opaque_views`."""
        return 0

    def opaque_views(self, views: list[memoryview], tss: list[int]) -> None:
        """Take the next bytes, declared opaque, as memoryviews of the batch (one per segment,
        with its timestamp in ``tss``), which must not be kept past the call. By default they
        are joined and given to :meth:`data` with the last segment's timestamp."""
        self.data(b"".join(views), tss[-1])

    def skim(self, mv: memoryview, offs: list[int], lens: list[int], tss: list[int]) -> bool:
        """Take a whole run of in-order segments (``mv[off:off+len]`` each, with their
        timestamps) in one call, returning True; or False to get them the ordinary way, one
        :meth:`data` per segment (the default). Views must not be kept past the call."""
        return False


class Reassembler:
    """One direction of one TCP connection."""

    __slots__ = (
        "sink",
        "started",
        "_ref_seq",
        "_ref_rel",
        "next_rel",
        "max_end",
        "fin_rel",
        "ended",
        "_ooo",
        "_ooo_pieces",
        "_ooo_bytes",
        "_tail",
        "delivered",
        "gap_bytes",
        "gaps",
        "retransmitted",
        "out_of_order",
        "conflicts",
        "after_fin",
        "keepalives",
        "before_start",
    )

    def __init__(self, sink: StreamSink | None = None) -> None:
        self.sink = sink
        self.started = False
        self._ref_seq = 0  # a 32-bit sequence number ...
        self._ref_rel = 0  # ... and the relative position it stands for
        self.next_rel = 1  # next byte expected in order (relative; the SYN is position 0)
        self.max_end = 1  # one past the highest byte seen
        self.fin_rel: int | None = None
        self.ended = False
        # (start, end, payload, pieces) sorted by start; ``pieces`` counts the segment pieces an
        # entry holds (sequence-only entries merge, so limits and counters count pieces, the
        # same in both modes)
        self._ooo: list[tuple[int, int, bytes | None, int]] = []
        self._ooo_pieces = 0
        self._ooo_bytes = 0
        self._tail = b""  # the last delivered bytes, to tell a faithful retransmission from a conflicting one
        self.delivered = 0
        self.gap_bytes = 0
        self.gaps = 0
        self.retransmitted = 0
        self.out_of_order = 0
        self.conflicts = 0
        self.after_fin = 0
        self.keepalives = 0
        self.before_start = 0

    # -- sequence space ------------------------------------------------------------------------
    def init_isn(self, isn: int) -> None:
        """Anchor the stream: ``isn`` is the SYN's sequence number (data starts at isn + 1)."""
        self._ref_seq = isn
        self._ref_rel = 0
        self.next_rel = self.max_end = 1
        self.started = True

    def rel(self, seq: int) -> int:
        """Relative 64-bit position of a 32-bit sequence number (nearest to the reference)."""
        # (seqspace.signed_delta32 inline: C-typed in the compiled build, see reassembly.pxd)
        d = (seq - self._ref_seq) % _MOD
        if d >= _HALF:
            d -= _MOD
        return self._ref_rel + d

    def seq_of(self, rel: int) -> int:
        """The 32-bit sequence number of relative position ``rel`` (the inverse of :meth:`rel`)."""
        return (self._ref_seq + rel - self._ref_rel) % _MOD

    def reference(self) -> tuple[int, int]:
        """(32-bit sequence number, relative position it stands for): the anchor :meth:`rel`
        measures from, for callers that map many sequence numbers at once (numpy)."""
        return self._ref_seq, self._ref_rel

    def buffered_beyond(self, pos: int) -> bool:
        """Do bytes held out of order (beyond a hole) reach past relative position ``pos``?"""
        return bool(self._ooo) and self._ooo[-1][1] > pos

    def _move_ref(self) -> None:
        # Keep the reference near the stream head so the +-2^31 window follows wrap-around.
        delta = self.next_rel - self._ref_rel
        self._ref_seq = (self._ref_seq + delta) % _MOD
        self._ref_rel = self.next_rel

    # -- input ---------------------------------------------------------------------------------
    def segment(
        self,
        seq: int,
        payload: bytes | memoryview | None,
        length: int,
        ts_ns: int,
        fin: bool = False,
    ) -> str:
        """Add a segment carrying ``length`` bytes starting at 32-bit ``seq``.

        ``payload`` is ``None`` in sequence-only mode (no sink). Returns how the segment was
        classified: ``"new"``, ``"ooo"`` (late hole filler), ``"future"`` (beyond a hole),
        ``"retx"`` (nothing new), ``"partial"`` (partly new), ``"after_fin"``, ``"before_start"``,
        ``"keepalive"`` or ``""`` for an empty segment.
        """
        if not self.started:
            # Picked up mid-stream: pretend a SYN sat just before the first byte seen (as Zeek).
            self.init_isn((seq - 1) % _MOD)
        start = self.rel(seq)
        end = start + length
        kind = ""
        if fin:
            fin_at = end
            if self.fin_rel is None or fin_at < self.fin_rel:
                self.fin_rel = fin_at
                self._trim_after_fin()
            # The FIN may complete the stream even when its segment brings nothing new (a
            # retransmitted last segment that now carries the FIN, or a pure FIN).
            self._maybe_end(ts_ns)
        if length <= 0:
            return kind
        if self.fin_rel is not None and start >= self.fin_rel:
            self.after_fin += 1
            return "after_fin"
        if length == 1 and start == self.next_rel - 1 and not fin:
            # A keep-alive probe re-sends the last acknowledged byte (or, before any data, the
            # byte just before the first one, i.e. the SYN's sequence number): not data.
            self.keepalives += 1
            return "keepalive"
        if start < 1:
            if end <= 1:
                self.before_start += 1
                return "before_start"
            if payload is not None:
                payload = payload[1 - start :]
            start = 1
        if self.fin_rel is not None and end > self.fin_rel:
            if payload is not None:
                payload = payload[: self.fin_rel - start]
            end = self.fin_rel
        had_higher = start < self.max_end and end > self.next_rel
        if end <= self.next_rel:
            self.retransmitted += 1
            if self._compare_tail(start, end, payload):
                self.conflicts += 1
            return "retx"
        conflict = False
        if start < self.next_rel:
            conflict = self._compare_tail(
                start,
                self.next_rel,
                payload[: self.next_rel - start] if payload is not None else None,
            )
            if payload is not None:
                payload = payload[self.next_rel - start :]
            start = self.next_rel
            kind = "partial"
        if start == self.next_rel:
            if self._ooo and self._ooo[0][0] < end:
                # Part of this segment is already buffered: those bytes keep their first copy.
                _, clash = self._buffer(start, end, payload)
                conflict = conflict or clash
            else:
                self._deliver(start, end, payload, ts_ns)
            if not kind:
                kind = "ooo" if had_higher and end <= self.max_end else "new"
            if kind == "ooo":
                self.out_of_order += 1
            self._drain(ts_ns)
        else:
            new, clash = self._buffer(start, end, payload)
            if clash:
                self.conflicts += 1
            if not new:
                self.retransmitted += 1
                return "retx"
            if start < self.max_end:
                self.out_of_order += 1
                kind = kind or "ooo"
            else:
                kind = kind or "future"
            self._enforce_limits(ts_ns)
        if conflict:
            self.conflicts += 1
        if kind == "partial":
            self.retransmitted += 1
        if end > self.max_end:
            self.max_end = end
        self._maybe_end(ts_ns)
        return kind

    def advance(self, nbytes: int) -> None:
        """Fast path: the next ``nbytes`` arrived in order, in sequence-only mode.

        Counts exactly as feeding them as in-order segments without payload would. Only valid
        when there is no sink, nothing is buffered out of order and no FIN is known (the caller
        checks; otherwise it must use :meth:`segment`).
        """
        if nbytes <= 0:
            return
        if self.sink is not None or self._ooo or self.fin_rel is not None or not self.started:
            raise ValueError(
                "advance() needs a started, sink-less stream with nothing buffered and no FIN"
            )
        self._deliver(self.next_rel, self.next_rel + nbytes, None, 0)
        if self.next_rel > self.max_end:
            self.max_end = self.next_rel

    def deliver_run(self, mv: memoryview, offs: list[int], lens: list[int], tss: list[int]) -> None:
        """Fast path with a sink: in-order segments that continue the stream exactly, with all
        their bytes captured (``mv[off:off+len]`` each), nothing buffered out of order and no FIN
        known. The sink gets one ``data`` per segment with its own timestamp, exactly as
        :meth:`segment` would give it, except for a run it skims (``StreamSink.skim``) and bytes
        it declares opaque (``StreamSink.opaque``): those come in one ``opaque_views`` call per
        group of whole segments. The sink may detach itself on the way."""
        if self._ooo or self.fin_rel is not None or not self.started:
            raise ValueError(
                "deliver_run() needs a started stream with nothing buffered and no FIN"
            )
        pos = self.next_rel
        self.delivered += sum(lens)
        i, count = 0, len(offs)
        # A sink that needs only sparse bytes of the run (TLS record headers after the
        # handshake) may take the whole run in one call.
        sink = self.sink
        if sink is not None and sink.has_skim and sink.skim(mv, offs, lens, tss):
            i = count
            pos += sum(lens)
            self.next_rel = pos
        kept = True  # every segment went to a sink (as in _deliver, which keeps its tail)
        has_opaque_of = None
        has_opaque = False
        while i < count:
            sink = self.sink
            if sink is None:
                pos += sum(lens[i:])
                self.next_rel = pos
                kept = False
                break
            if has_opaque_of is not sink:
                has_opaque = sink.has_opaque
                has_opaque_of = sink
            # Bytes the sink takes as opaque (an HTTP body) go in one call: the segments that
            # fit wholly, as views of the batch (no copy), with the timestamp of the last (where
            # such a body would end).
            room = sink.opaque() if has_opaque else 0
            j, took = i, 0
            while j < count and took + lens[j] <= room:
                took += lens[j]
                j += 1
            if j > i:
                pos += took
                self.next_rel = pos
                views = [mv[o : o + n] for o, n in zip(offs[i:j], lens[i:j], strict=True)]
                sink.opaque_views(views, tss[i:j])
                i = j
                continue
            off, n = offs[i], lens[i]
            pos += n
            self.next_rel = pos
            sink.data(bytes(mv[off : off + n]), tss[i])
            i += 1
        if pos > self.max_end:
            self.max_end = pos
        if kept and RETX_COMPARE_TAIL_BYTES:
            # The last bytes, as _deliver keeps them (from as many trailing segments as needed,
            # as views joined in one copy; also when the sink detached itself in the last one).
            parts: list[bytes | memoryview] = []
            need = RETX_COMPARE_TAIL_BYTES
            k = count
            while k:
                k -= 1
                off, n = offs[k], lens[k]
                if n >= need:
                    parts.append(mv[off + n - need : off + n])
                    need = 0
                    break
                parts.append(mv[off : off + n])
                need -= n
            if need and self._tail:
                parts.append(self._tail[-need:])
            parts.reverse()
            self._tail = b"".join(parts)
        else:
            self._tail = b""
        if pos - self._ref_rel > _HALF // 2:
            self._move_ref()

    def acked(self, ack_rel: int, ts_ns: int) -> None:
        """The peer acknowledged everything before ``ack_rel``: holes below it will never fill."""
        limit = ack_rel if self.fin_rel is None else min(ack_rel, self.fin_rel)
        if limit <= self.next_rel:
            return
        while self.next_rel < limit:
            nxt = self._ooo[0][0] if self._ooo else None
            stop = limit if nxt is None else min(limit, nxt)
            if stop > self.next_rel:
                self._gap(stop - self.next_rel, ts_ns)
            self._drain(ts_ns)
            if nxt is None:
                break
        if self.next_rel > self.max_end:
            self.max_end = self.next_rel
        self._maybe_end(ts_ns)

    def finish(self, ts_ns: int, acked_rel: int | None = None) -> None:
        """End of the connection: flush the buffer with gaps for what never arrived, then end."""
        if self.ended:
            return
        while self._ooo:
            s = self._ooo[0][0]
            if s > self.next_rel:
                self._gap(s - self.next_rel, ts_ns)
            self._drain(ts_ns)
        # Bytes acknowledged by the peer, or sitting before our FIN, existed on the wire even if
        # the capture never saw them: they are missed bytes (Zeek's definition), not silence.
        target = self.fin_rel if self.fin_rel is not None else max(self.max_end, acked_rel or 0)
        if target > self.next_rel:
            self._gap(target - self.next_rel, ts_ns)
        self.ended = True
        if self.sink is not None:
            self.sink.end(ts_ns)

    # -- internals -----------------------------------------------------------------------------
    def _deliver(
        self, start: int, end: int, payload: bytes | memoryview | None, ts_ns: int
    ) -> None:
        self.next_rel = end
        self.delivered += end - start
        sink = self.sink
        if payload is not None and sink is not None:
            chunk = bytes(payload[: end - start])
            if chunk:
                sink.data(chunk, ts_ns)
            missing = end - start - len(chunk)
            if missing:
                # Truncated capture (snap length): keep the consumer aligned with sequence space.
                self._tail = b""
                if self.sink is not None:  # the data callback may have detached the sink
                    self.sink.gap(missing, ts_ns)
            else:
                self._tail = (
                    (self._tail + chunk)[-RETX_COMPARE_TAIL_BYTES:]
                    if RETX_COMPARE_TAIL_BYTES
                    else b""
                )
        else:
            # Bytes we did not keep: the tail must always end at next_rel, so start it afresh.
            self._tail = b""
        if end - self._ref_rel > _HALF // 2:
            self._move_ref()

    def _gap(self, n: int, ts_ns: int) -> None:
        self.gap_bytes += n
        self.gaps += 1
        self.next_rel += n
        self._tail = b""
        if self.sink is not None:
            self.sink.gap(n, ts_ns)
        if self.next_rel - self._ref_rel > _HALF // 2:
            self._move_ref()

    def _drain(self, ts_ns: int) -> None:
        ooo = self._ooo
        while ooo and ooo[0][0] <= self.next_rel:
            s, e, p, k = ooo.pop(0)
            self._ooo_bytes -= e - s
            self._ooo_pieces -= k
            if e <= self.next_rel:
                continue
            if s < self.next_rel and p is not None:
                p = p[self.next_rel - s :]
            self._deliver(max(s, self.next_rel), e, p, ts_ns)

    def _buffer(
        self, start: int, end: int, payload: bytes | memoryview | None
    ) -> tuple[bool, bool]:
        """Insert the parts of [start, end) not already buffered.

        Returns (any byte was new, some already-buffered byte differs from this copy).
        """
        pieces: list[tuple[int, int]] = []
        conflict = False
        cur = start
        for s, e, p, _k in self._ooo:
            if e <= cur:
                continue
            if s >= end:
                break
            if s > cur:
                pieces.append((cur, s))
            # overlap [max(s,cur), min(e,end)) is already held: compare (first copy wins)
            lo, hi = max(s, cur), min(e, end)
            if payload is not None and p is not None and hi > lo and not conflict:
                conflict = _differs(payload[lo - start : hi - start], p[lo - s : hi - s])
            cur = max(cur, e)
            if cur >= end:
                break
        if cur < end:
            pieces.append((cur, end))
        for s, e in pieces:
            chunk = bytes(payload[s - start : e - start]) if payload is not None else None
            self._insert(s, e, chunk)
        return bool(pieces), conflict

    def _insert(self, s: int, e: int, chunk: bytes | None, pieces: int = 1) -> None:
        """Buffer [s, e); in sequence-only mode adjacent ranges merge into one entry, so a
        run of segments beyond a hole costs one entry, however it arrives."""
        ooo = self._ooo
        self._ooo_bytes += e - s
        self._ooo_pieces += pieces
        if chunk is None:
            if ooo and ooo[-1][1] == s and ooo[-1][2] is None:
                last = ooo[-1]  # the common case: extending the last range
                ooo[-1] = (last[0], e, None, last[3] + pieces)
                return
            i = bisect_left(ooo, s, key=lambda t: t[0])
            if i > 0 and ooo[i - 1][1] == s and ooo[i - 1][2] is None:
                i -= 1
                s = ooo[i][0]
                pieces += ooo[i][3]
                del ooo[i]
            if i < len(ooo) and ooo[i][0] == e and ooo[i][2] is None:
                e = ooo[i][1]
                pieces += ooo[i][3]
                del ooo[i]
            ooo.insert(i, (s, e, None, pieces))
            return
        insort(ooo, (s, e, chunk, pieces), key=lambda t: t[0])

    def extend_future(
        self, start: int, end: int, ts_ns: int, segments: int = 1, payload: bytes | None = None
    ) -> None:
        """Fast path: a contiguous run of segments [start, end) beyond everything seen so far
        (``start >= max_end``, past a hole), with its bytes (``payload``) when there is a sink.

        Counts exactly as feeding the run's segments one by one would: each is a "future"
        segment, which changes no counter; they are buffered as one range.
        """
        if (
            (self.sink is not None) != (payload is not None)
            or self.fin_rel is not None
            or not self.started
            or start < self.max_end
            or start <= self.next_rel
            or (payload is not None and len(payload) != end - start)
        ):
            raise ValueError(
                "extend_future() needs no FIN, a run beyond a hole, and its bytes if there is a sink"
            )
        self._insert(start, end, payload, segments)
        self.max_end = end
        self._enforce_limits(ts_ns)

    def _trim_after_fin(self) -> None:
        """Drop buffered bytes at or beyond the FIN (they arrived before we knew of it)."""
        fin = self.fin_rel
        if fin is None or not self._ooo or self._ooo[-1][1] <= fin:
            return
        kept: list[tuple[int, int, bytes | None, int]] = []
        for s, e, p, k in self._ooo:
            if e <= fin:
                kept.append((s, e, p, k))
                continue
            self._ooo_bytes -= e - max(s, fin)
            if s < fin:
                # A merged sequence-only range: which pieces lie past the FIN is not known;
                # count one, as for the piece a payload-mode entry would split.
                self.after_fin += 1
                kept.append((s, fin, p[: fin - s] if p is not None else None, max(k - 1, 1)))
                self._ooo_pieces -= 1 if k > 1 else 0
            else:
                self.after_fin += k
                self._ooo_pieces -= k
        self._ooo = kept

    def _enforce_limits(self, ts_ns: int) -> None:
        while self._ooo and (
            self._ooo_bytes > MAX_OOO_BYTES_PER_DIRECTION
            or self._ooo_pieces > MAX_OOO_SEGMENTS_PER_DIRECTION
        ):
            s = self._ooo[0][0]
            if s > self.next_rel:
                self._gap(s - self.next_rel, ts_ns)
            self._drain(ts_ns)

    def _compare_tail(self, start: int, end: int, payload: bytes | memoryview | None) -> bool:
        """Does a copy of delivered bytes [start, end) differ from the recent tail we kept?"""
        if payload is None or not self._tail or end > self.next_rel:
            return False
        tail_start = self.next_rel - len(self._tail)
        lo = max(start, tail_start)
        if lo >= end:
            return False
        return _differs(
            payload[lo - start : end - start], self._tail[lo - tail_start : end - tail_start]
        )

    def _maybe_end(self, ts_ns: int) -> None:
        if (
            not self.ended
            and self.fin_rel is not None
            and self.next_rel >= self.fin_rel
            and not self._ooo
        ):
            self.ended = True
            if self.sink is not None:
                self.sink.end(ts_ns)

    @property
    def pending_bytes(self) -> int:
        return self._ooo_bytes


def _differs(a: bytes | memoryview, b: bytes | memoryview) -> bool:
    """Two copies of the same range differ (compared as far as both were captured)."""
    n = min(len(a), len(b))
    return bytes(a[:n]) != bytes(b[:n])
