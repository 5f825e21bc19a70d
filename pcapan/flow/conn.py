"""One TCP connection: Zeek's endpoint state machine, history letters and counters.

The rules follow Zeek's TCPSessionAdapter (``Process``: init_endpoint, update_history,
update_window, init_peer, update_ack_seq, update_last_seq, UpdateStateMachine), its
TCP_Endpoint (``Size``) and its TCP_Reassembler (content gaps revealed by acknowledgements), so
that ``conn_state``, ``history``, ``orig_bytes``/``resp_bytes`` and ``missed_bytes`` mean exactly
what Zeek users expect. Zeek's sequence bookkeeping (start/last/ack sequence numbers per
endpoint, the ``z_*`` fields) is kept apart from the reassembler's, which serves the parsers.

Only packets that can change state reach :meth:`Connection.packet` one by one; pure ACKs in the
middle of a connection are folded in per batch by :meth:`Connection.pure_acks`, and runs of
in-order data by :meth:`Connection.bulk_data`. Where a history letter is recorded out of capture
order because of that folding, it is moved back to the frame where it first occurred (Zeek sees
packets in capture order).
"""

from __future__ import annotations

import re
import socket
from bisect import bisect_right
from dataclasses import dataclass
from functools import lru_cache

from pcapan.decode.tcp_options import MAX_WSCALE, parse_tcp_options
from pcapan.flow.reassembly import Reassembler, StreamSink

# A canonical flow key: both endpoints in a fixed order, so both directions share it.
FlowKeyTuple = tuple[int, int, int, int, int, int]  # a_hi, a_lo, b_hi, b_lo, a_p, b_p

INACTIVE, SYN_SENT, SYN_ACK_SENT, PARTIAL, ESTABLISHED, CLOSED, RESET = range(7)
# (the same, C-typed in the compiled build: other modules import INACTIVE)
_INACTIVE = INACTIVE

FIN, SYN, RST, ACK = 0x01, 0x02, 0x04, 0x10

# History bits as in Zeek (one per letter and direction; the resp bits are shifted by 16).
_H_SYN, _H_SYN_ACK, _H_FIN, _H_RST, _H_DATA, _H_ACK, _H_MULTI, _H_FIN_RST = (
    1,
    2,
    4,
    8,
    16,
    32,
    64,
    128,
)
_RSTOS0 = re.compile(r"^\^?S[^HAFGIQ]*R.*")

_M32 = 0xFFFFFFFF
_HALF = 1 << 31
# Zeek's TOO_LARGE_SEQ_DELTA: SYN/RST sequence jumps beyond this are not trusted.
_TOO_LARGE_SEQ_DELTA = 1048576

CLOSE_FIN = "fin"
CLOSE_RST = "rst"
CLOSE_IDLE = "idle_timeout"
CLOSE_END = "end_of_capture"
CLOSE_REUSE = "reused"


def _delta(a: int, b: int) -> int:
    """Zeek's seq_delta: the signed 32-bit distance from ``b`` to ``a``.

    :func:`pcapan.flow.seqspace.signed_delta32`, kept here as a C function of the compiled core
    (conn.pxd), as are the inline ``((x + _HALF) & _M32) - _HALF`` in :meth:`Connection.packet`
    (a Python call there would cost the compiled build its gain; tests/test_seqspace.py checks
    them against it)."""
    d = (a - b) & _M32
    return d - (1 << 32) if d >= _HALF else d


def _abs_seq(st: Reassembler, rel: int) -> int:
    """The 32-bit sequence number at relative position ``rel`` of a reassembler's stream."""
    return (st._ref_seq + rel - st._ref_rel) & _M32


def stream_empty(st: Reassembler) -> bool:
    return st.delivered == 0 and st.gap_bytes == 0 and not st.pending_bytes and st.fin_rel is None


class Endpoint:
    """One side of a connection (Zeek's TCP_Endpoint, reduced to what the tables need).

    ``z_start`` is Zeek's start_seq (a 32-bit sequence number); ``z_last`` and ``z_ack`` are
    Zeek's last_seq and ack_seq relative to it (64-bit, so wrap-around is invisible).
    """

    __slots__ = (
        "state",
        "prev_state",
        "stream",
        "fin_cnt",
        "pkts",
        "ip_bytes",
        "mss",
        "wscale",
        "sack_ok",
        "ts_ok",
        "window",
        "did_close",
        "hist_last_syn",
        "hist_last_fin",
        "hist_last_rst",
        "rxmt_cnt",
        "rxmt_thresh",
        "zw_cnt",
        "zw_thresh",
        "gap_cnt",
        "gap_thresh",
        "max_ack_rel",
        "syn_seen",
        "first_ts",
        "last_ts",
        "zero_window_probes",
        "peer",
        "z_start",
        "z_last",
        "z_ack",
        "acks",
        "ack_front",
        "ack_hi",
    )

    def __init__(self) -> None:
        self.state = _INACTIVE
        self.prev_state = _INACTIVE
        self.stream = Reassembler()
        self.fin_cnt = 0
        self.pkts = 0
        self.ip_bytes = 0
        self.mss: int | None = None
        self.wscale: int | None = None
        self.sack_ok = False
        self.ts_ok = False
        self.window = -1
        self.did_close = False
        self.hist_last_syn = 0
        self.hist_last_fin = 0
        self.hist_last_rst = 0
        self.rxmt_cnt = self.zw_cnt = self.gap_cnt = 0
        self.rxmt_thresh = self.zw_thresh = self.gap_thresh = 1
        # Highest ack the *peer* sent for our bytes, relative to our reassembler's stream (the
        # engine also raises it directly when it folds runs of segments).
        self.max_ack_rel = 0
        self.syn_seen = False
        self.first_ts = 0
        self.last_ts = 0
        self.zero_window_probes = 0
        self.peer: Endpoint = self
        self.z_start = 0
        self.z_last = 0
        self.z_ack = 0
        # Acks of our bytes not yet applied to the reassembler: (frame, relative ack, frames,
        # acks); applied in frame order once the batch's data is in (Connection.apply_acks).
        self.acks: list[tuple[int, int, object, object]] = []
        self.ack_front = 0  # highest ack already applied
        self.ack_hi = 0  # highest ack in ``acks``

    def reanchor(self, isn: int) -> None:
        """Restart the reassembler's sequence space (nothing of this side's data is in it)."""
        self.stream.init_isn(isn & _M32)
        self.max_ack_rel = 0
        self.acks.clear()
        self.ack_front = self.ack_hi = 0

    def ack_event(
        self, frame_no: int, ack_rel: int, frames: object = None, acks: object = None
    ) -> None:
        # Kept even when a later frame already acked as much: packets folded in per batch come
        # out of capture order, and a gap belongs to the first ACK that revealed it.
        if ack_rel > self.ack_front:
            self.acks.append((frame_no, ack_rel, frames, acks))
            if ack_rel > self.ack_hi:
                self.ack_hi = ack_rel

    def set_state(self, s: int) -> None:
        """Zeek's SetState: prev_state changes only with a real transition."""
        if s != self.state:
            self.prev_state = self.state
            self.state = s

    # -- Zeek's sequence bookkeeping -------------------------------------------------------
    def z_rel(self, seq: int, ref: int) -> int:
        """Zeek's get_relative_seq: ``seq`` relative to start_seq, unwrapped near ``ref``."""
        return ref + _delta(seq - self.z_start, ref)

    def z_init(self, start: int, last_rel: int) -> None:
        """InitStartSeq + InitAckSeq + InitLastSeq."""
        self.z_start = start & _M32
        self.z_ack = 0
        self.z_last = last_rel

    def z_ack_top(self) -> int:
        """Zeek's ack_seq, including acks the engine folded into ``max_ack_rel``."""
        top = self.z_ack
        st = self.stream
        if st.started and self.max_ack_rel > 0:
            top = max(top, self.z_rel(_abs_seq(st, self.max_ack_rel), self.z_ack))
        return top

    def size(self) -> int:
        """Bytes sent, from sequence numbers (Zeek's TCP_Endpoint::Size)."""
        if self.state == _INACTIVE:
            # Zeek re-initialises an inactive endpoint's sequence space on every packet it
            # sends and every ACK its peer sends, so its size is always 0.
            return 0
        ack = self.z_ack_top()
        if (
            self.prev_state == SYN_SENT
            and self.state == RESET
            and self.peer.state == _INACTIVE
            and ack not in (0, 1)
        ):
            return 0  # a half-open connection discovered and aborted
        size = max(self.z_last, ack)
        if size != 0:
            size -= 1  # the SYN (or the imagined one)
        if self.fin_cnt > 0 and size != 0:
            size -= 1  # the FIN
        return max(size, 0)


def _is_clean(e: Endpoint) -> bool:
    return e.state == ESTABLISHED or (e.state == CLOSED and e.prev_state == ESTABLISHED)


@dataclass(frozen=True, slots=True)
class FlowKey:
    """The 5-tuple as the originator sees it."""

    ipver: int
    orig_h: bytes
    orig_p: int
    resp_h: bytes
    resp_p: int


class Connection:
    """A TCP connection between two endpoints, from first packet to finalisation."""

    __slots__ = (
        "uid",
        "key",
        "orig",
        "resp",
        "orig_is_a",
        "start_ns",
        "last_ns",
        "history",
        "_hist_seen",
        "_hist_pos",
        "flipped",
        "partial",
        "close_reason",
        "closed_ns",
        "anomalies",
        "first_close_ns",
        "first_close_by",
        "first_close_flag",
        "service",
        "n",
        "fkey",
        "missed_bytes",
        "_z_partial",
        "_first_seen",
        "_last_frame",
        "_clean_log",
        "rtt_id",
        "source",
    )

    def __init__(self, uid: str, key: FlowKey, orig_is_a: bool, start_ns: int, n: int) -> None:
        self.uid = uid
        self.key = key
        self.orig = Endpoint()
        self.resp = Endpoint()
        self.orig.peer = self.resp
        self.resp.peer = self.orig
        self.orig_is_a = orig_is_a
        self.start_ns = start_ns
        self.last_ns = start_ns
        self.history: list[tuple[int, int, str]] = []  # (frame_no, order, letter)
        self._hist_seen = 0
        self._hist_pos: dict[int, int] = {}  # history bit -> index of its letter in ``history``
        self.flipped = False
        self.partial = False  # picked up mid-stream: orientation is a guess
        self.close_reason = ""
        self.closed_ns = 0
        # The first FIN or RST on the connection: who ended it, how, when (for keep-alive reuse).
        self.first_close_ns = 0
        self.first_close_by = ""
        self.first_close_flag = ""
        self.anomalies: list[tuple[int, int, str, str]] = []  # (frame_no, ts_ns, kind, detail)
        self.service = ""
        self.n = n  # creation order, for deterministic output
        self.fkey: FlowKeyTuple = (0, 0, 0, 0, 0, 0)  # set by the flow table
        # Zeek's missed_bytes: content gaps revealed by acknowledgements while both sides were
        # established or cleanly closing (the content_gap events base/protocols/conn sums).
        self.missed_bytes = 0
        self._z_partial = False  # Zeek's is_partial (the connection did not start with a SYN)
        self._first_seen = 0  # Zeek's first_packet_seen bits (1 orig, 2 resp)
        self._last_frame = 0  # highest frame number seen, for letters of folded packets
        self._clean_log: list[tuple[int, bool]] = [(0, False)]  # (frame, both sides clean) changes
        self.rtt_id = -1  # slot in the round-trip state (pcapan.flow.rtt), once seen
        self.source = ""  # the capture file of its first packet

    # -- history -----------------------------------------------------------------------------
    def _add(self, frame_no: int, letter: str, is_orig: bool) -> None:
        self.history.append((frame_no, len(self.history), letter if is_orig else letter.lower()))

    def _check(self, frame_no: int, bit: int, letter: str, is_orig: bool) -> bool:
        """Record a letter the first time; True if it had been seen before (Zeek's CheckHistory).

        A letter already recorded at a later frame (packets folded in per batch are handled
        after the packets that follow them) moves back to this, the earlier, frame.
        """
        mask = bit if is_orig else bit << 16
        if self._hist_seen & mask:
            i = self._hist_pos[mask]
            f, order, ltr = self.history[i]
            if frame_no < f:
                self.history[i] = (frame_no, order, ltr)
            return True
        self._hist_seen |= mask
        self._hist_pos[mask] = len(self.history)
        self._add(frame_no, letter, is_orig)
        return False

    def _scaled(self, frame_no: int, ep: Endpoint, which: str, letter: str, is_orig: bool) -> None:
        # Zeek logs C/G/T/W at the 1st, 10th, 100th ... occurrence (ScaledHistoryEntry).
        cnt = getattr(ep, which + "_cnt") + 1
        setattr(ep, which + "_cnt", cnt)
        th = getattr(ep, which + "_thresh")
        if cnt == th:
            self._add(frame_no, letter, is_orig)
            setattr(ep, which + "_thresh", th * 10)

    def history_str(self) -> str:
        return "".join(h[2] for h in sorted(self.history))

    def note(self, frame_no: int, ts_ns: int, kind: str, detail: str) -> None:
        self.anomalies.append((frame_no, ts_ns, kind, detail))

    # -- packets -------------------------------------------------------------------------------
    def packet(
        self,
        is_orig: bool,
        flags: int,
        seq: int,
        ack: int,
        win: int,
        length: int,
        payload: bytes | memoryview | None,
        options: bytes | memoryview | None,
        ip_len: int,
        ts_ns: int,
        frame_no: int,
        caplen: int | None = None,
    ) -> str:
        """Process one packet that may change state; returns the reassembler's classification.

        ``caplen`` is how many of the ``length`` payload bytes the capture holds (``None``: all
        of them). A truncated segment (snap length) is not data for the reassembler, exactly as
        in Zeek: its bytes become a content gap once the peer acknowledges them.
        """
        ep, peer = (self.orig, self.resp) if is_orig else (self.resp, self.orig)
        ep.pkts += 1
        ep.ip_bytes += ip_len
        if not ep.first_ts:
            ep.first_ts = ts_ns
        if ts_ns > ep.last_ts:  # folded runs may reach us out of capture order
            ep.last_ts = ts_ns
        if frame_no > self._last_frame:
            self._last_frame = frame_no
        syn, fin, rst, has_ack = flags & SYN, flags & FIN, flags & RST, flags & ACK
        if (fin or rst) and not self.first_close_ns:
            self.first_close_ns = ts_ns
            self.first_close_by = "orig" if is_orig else "resp"
            self.first_close_flag = "rst" if rst else "fin"
        # Zeek's SetPartialStatus.
        if is_orig:
            if not self._first_seen & 1:
                self._z_partial = not syn or bool(has_ack)
        elif not self._first_seen & 2 and not self._z_partial:
            self._z_partial = not syn
        seg_len = length + (1 if syn else 0) + (1 if fin else 0) - (length if rst else 0)
        one_past = (seq + seg_len) & _M32
        # The reassembler's sequence space (what the parsers see).
        st = ep.stream
        if syn:
            if (
                not st.started
                or (ep.state in (_INACTIVE, ESTABLISHED, PARTIAL) and st.rel(seq) != 0)
                or (ep.state == RESET and ep.prev_state == _INACTIVE)
            ):
                ep.reanchor(seq)
            ep.syn_seen = True
        elif not st.started or (ep.state == _INACTIVE and stream_empty(st)):
            # Picked up mid-stream (re-anchored while this side has sent nothing, as Zeek does).
            ep.reanchor(seq - 1)
        # Zeek's init_endpoint.
        s = ep.state
        if s == _INACTIVE:
            if syn:
                ep.z_init(seq, seg_len)
            else:
                ep.z_init(seq - 1, 1)  # as if a SYN preceded; the first packet is not a repeat
        elif syn and (
            (s in (SYN_SENT, SYN_ACK_SENT) and seq != ep.z_start)
            or s in (ESTABLISHED, PARTIAL)
            or (s == RESET and ep.prev_state == _INACTIVE)
        ):
            ep.z_init(seq, seg_len)
        z_last = ep.z_last
        rel_seq = (
            z_last + ((seq - ep.z_start - z_last + _HALF) & _M32) - _HALF
        )  # ep.z_rel(seq, z_last)
        # History (Zeek's update_history).
        bits = (1 if syn else 0) + (1 if fin else 0) + (1 if rst else 0)
        if bits > 1:
            if fin and rst:
                self._check(frame_no, _H_FIN_RST, "I", is_orig)
            else:
                self._check(frame_no, _H_MULTI, "Q", is_orig)
        elif bits == 1:
            if syn:
                code = "H" if has_ack else "S"
                if (
                    self._check(frame_no, _H_SYN_ACK if has_ack else _H_SYN, code, is_orig)
                    and rel_seq != ep.hist_last_syn
                ):
                    self._add(frame_no, code, is_orig)
                ep.hist_last_syn = rel_seq
            if fin:
                if (
                    self._check(frame_no, _H_FIN, "F", is_orig)
                    and rel_seq + length != ep.hist_last_fin
                ):
                    self._add(frame_no, "F", is_orig)
                ep.hist_last_fin = rel_seq + length
            if rst:
                if self._check(frame_no, _H_RST, "R", is_orig) and rel_seq != ep.hist_last_rst:
                    self._add(frame_no, "R", is_orig)
                ep.hist_last_rst = rel_seq
        elif length:
            self._check(frame_no, _H_DATA, "D", is_orig)
        elif has_ack:
            self._check(frame_no, _H_ACK, "A", is_orig)
        # Window (Zeek's update_window: zero windows are boring with or after RST, after peer FIN;
        # Zeek looks at SYNs too).
        scale = min(ep.wscale or 0, MAX_WSCALE)  # (RFC 7323 2.3; also keeps the shift in 64 bits)
        if win == 0 and not rst and peer.state != CLOSED and ep.state != RESET:
            self._scaled(frame_no, ep, "zw", "W", is_orig)
        if not (self.orig.did_close and self.resp.did_close) and ts_ns > self.last_ns:
            self.last_ns = ts_ns
        if syn and options:
            o = parse_tcp_options(bytes(options))
            ep.mss = o.mss
            ep.wscale = o.wscale
            ep.sack_ok = o.sack_permitted
            ep.ts_ok = o.tsval is not None
            if has_ack and o.wscale is None:
                # Window scaling is only in effect when both SYNs carry it (RFC 7323).
                peer.wscale = None
        if not syn:
            ep.window = win << scale if ep.wscale is not None and peer.wscale is not None else win
        if fin:
            ep.fin_cnt += 1
        # Acknowledgements (Zeek's init_peer / get_relative_seq / update_ack_seq).
        rel_ack = 0
        if has_ack:
            ps = peer.stream
            if peer.state == _INACTIVE:
                # Zeek starts (and restarts) the silent peer's numbering at every ACK.
                rel_ack = 1
                peer.z_init(ack - 1, 0)
                if not ps.started or stream_empty(ps):
                    peer.reanchor(ack - 1)
            else:
                rel_ack = peer.z_ack + ((ack - peer.z_start - peer.z_ack + _HALF) & _M32) - _HALF
                if rel_ack < 0:
                    rel_ack = 0  # Zeek: TCP_ack_underflow_or_misorder
                elif not rst:
                    d = rel_ack - peer.z_ack
                    if d > 0 and not (ack == 0 and d > _TOO_LARGE_SEQ_DELTA):
                        peer.z_ack = rel_ack
            if not rst and ps.started and peer.state != _INACTIVE:
                a = ps.rel(ack)
                if a > peer.max_ack_rel:
                    peer.max_ack_rel = a
                if a > peer.ack_hi and a > peer.ack_front:
                    # (in capture order: an ack no higher than one before it reveals nothing new)
                    peer.ack_event(frame_no, a)
        # Zeek's update_last_seq; DidRxmit gives the 'T'.
        z_last = ep.z_last
        d_last = ((one_past - ep.z_start - z_last + _HALF) & _M32) - _HALF
        new_last = z_last + d_last
        if (syn or rst) and (d_last > _TOO_LARGE_SEQ_DELTA or d_last < -_TOO_LARGE_SEQ_DELTA):
            pass
        elif fin and ep.z_last == 1:
            ep.z_last = new_last
        elif ep.state == RESET:
            pass
        elif d_last > 0:
            ep.z_last = new_last
        elif length > 0:
            self._scaled(frame_no, ep, "rxmt", "T", is_orig)
        # Zero-window probe: one byte sent while the peer advertises a zero window.
        kind = ""
        data_len = 0 if rst else length
        if data_len == 1 and peer.window == 0 and not syn and not fin:
            ep.zero_window_probes += 1
        data_seq = (seq + 1) & _M32 if syn else seq
        if data_len and caplen is not None and caplen < data_len:
            kind = "truncated"
            if fin:
                st.segment((data_seq + data_len) & _M32, None, 0, ts_ns, fin=True)
        elif data_len or fin:
            kind = st.segment(
                data_seq,
                payload if (payload is not None and st.sink is not None) else None,
                data_len,
                ts_ns,
                fin=bool(fin),
            )
        if kind == "after_fin":
            self.note(
                frame_no,
                ts_ns,
                "data_after_fin",
                f"{data_len} bytes after the FIN's sequence number",
            )
        if flags & (SYN | FIN | RST) or ep.state == _INACTIVE:
            # Only these can change a state (Zeek's UpdateStateMachine).
            self._state(ep, peer, is_orig, flags, length, seq, frame_no)
            clean = _is_clean(self.orig) and _is_clean(self.resp)
            if clean != self._clean_log[-1][1]:
                self._clean_log.append((frame_no, clean))
        self._first_seen |= 1 if is_orig else 2
        return kind

    def _clean_at(self, frame_no: int) -> bool:
        """Were both sides established or cleanly closing right after ``frame_no``?"""
        log = self._clean_log
        i = bisect_right(log, (frame_no, True)) - 1
        return log[i][1] if i >= 0 else False

    def apply_acks(self, ts_ns: int) -> None:
        """Apply the batch's acknowledgements, in frame order, once its data is in.

        Bytes acknowledged that never arrived are a content gap (Zeek's
        TCP_Reassembler::AckReceived). Zeek counts it in ``missed_bytes`` and adds a 'G' only
        when both sides were established or cleanly closing when the ACK came. Acks are applied
        at the end of a batch because the engine folds some packets in out of capture order.
        """
        o, r = self.orig, self.resp
        if (
            max(o.ack_hi, o.max_ack_rel) <= o.stream.next_rel
            and max(r.ack_hi, r.max_ack_rel) <= r.stream.next_rel
        ):
            # Nothing acknowledged that the reassemblers do not have: no gap.
            for ep in (o, r):
                if ep.acks:
                    ep.ack_front = max(ep.ack_front, ep.ack_hi)
                    ep.acks.clear()
            return
        for ep in (o, r):
            # Acks the engine folded straight into max_ack_rel (runs of in-order segments).
            if (
                ep.state != _INACTIVE
                and ep.stream.started
                and ep.max_ack_rel > max(ep.ack_front, ep.ack_hi)
            ):
                ep.ack_event(self._last_frame, ep.max_ack_rel)
        # A folded run's event lists its packets' acks: each ack higher than those before it
        # is an event of its own frame, as when the packets come one by one (two acks that
        # each reveal part of a hole give two gaps, not one).
        events: list[tuple[int, int, int]] = []
        for side, ep in ((0, self.orig), (1, self.resp)):
            for frame_no, a, frames, acks in ep.acks:
                if frames is None or acks is None:
                    events.append((frame_no, side, a))
                    continue
                top = ep.ack_front
                # (numpy slices from the engine's pure-ACK groups: as ints)
                fs = frames.tolist() if hasattr(frames, "tolist") else frames
                xs = acks.tolist() if hasattr(acks, "tolist") else acks
                for f, x in zip(fs, xs, strict=True):  # type: ignore[arg-type]
                    if x > top:
                        events.append((f, side, x))
                        top = x
        events.sort(key=lambda x: (x[0], x[1]))
        for ep in (self.orig, self.resp):
            ep.ack_front = max(ep.ack_front, ep.ack_hi)
            ep.acks.clear()
        for frame_no, side, a in events:
            ep = self.resp if side else self.orig
            st = ep.stream
            if a <= st.next_rel or (self._z_partial and a <= 2):
                # Nothing missing; or Zeek ignoring the first octets of a partial connection's
                # faked-up numbering.
                continue
            b0, n0 = st.gap_bytes, st.gaps
            st.acked(a, ts_ns)
            n = st.gaps - n0
            if n and self._clean_at(frame_no):
                self.missed_bytes += st.gap_bytes - b0
                for _ in range(n):
                    self._scaled(frame_no, ep, "gap", "G", side == 0)

    def _state(
        self,
        ep: Endpoint,
        peer: Endpoint,
        is_orig: bool,
        flags: int,
        length: int,
        seq: int,
        frame_no: int,
    ) -> None:
        """Zeek's UpdateStateMachine, without the events."""
        syn, fin, rst, has_ack = flags & SYN, flags & FIN, flags & RST, flags & ACK
        s = ep.state
        if s == _INACTIVE:
            if syn:
                if is_orig:
                    ep.set_state(SYN_ACK_SENT if has_ack else SYN_SENT)
                else:
                    if not has_ack and peer.state == SYN_ACK_SENT:
                        self._z_partial = False
                        peer.set_state(ESTABLISHED)
                    if peer.state == SYN_SENT:
                        peer.set_state(ESTABLISHED)
                    ep.set_state(ESTABLISHED)
            if fin:
                ep.set_state(CLOSED)
                self._closed(ep, peer)
            if rst:
                ep.set_state(RESET)
                self._closed(ep, peer)
            if ep.state == _INACTIVE:
                if not is_orig and length == 0 and self.orig.state == SYN_SENT:
                    pass  # an ACK of the SYN before the SYN-ACK does not make a partial connection
                elif has_ack and peer.state == ESTABLISHED:
                    ep.set_state(ESTABLISHED)
                    self._z_partial = False
                else:
                    ep.set_state(PARTIAL)
        elif s in (SYN_SENT, SYN_ACK_SENT):
            if fin:
                ep.set_state(CLOSED)
                self._closed(ep, peer)
            if rst:
                ep.set_state(RESET)
                self._closed(ep, peer)
        elif s in (ESTABLISHED, PARTIAL):
            if syn and s == PARTIAL and peer.state == _INACTIVE and not has_ack:
                ep.set_state(SYN_SENT)
            if fin and not rst:
                ep.set_state(CLOSED)
                if peer.state == RESET and peer.prev_state == CLOSED:
                    peer.set_state(CLOSED)
                self._closed(ep, peer)
            if rst:
                ep.set_state(RESET)
                self._closed(ep, peer)
        elif s == CLOSED and rst and peer.state != CLOSED:
            ep.set_state(RESET)
            self._closed(ep, peer)

    def _closed(self, ep: Endpoint, peer: Endpoint) -> None:
        ep.did_close = True
        if not self.close_reason and (ep.state == RESET or peer.did_close):
            self.close_reason = CLOSE_RST if ep.state == RESET else CLOSE_FIN
            self.closed_ns = ep.last_ts

    @property
    def is_closed(self) -> bool:
        """Both sides closed, or one reset: a new SYN on this 5-tuple is a new connection."""
        o, r = self.orig.state, self.resp.state
        return o == RESET or r == RESET or (o == CLOSED and r == CLOSED)

    def pure_acks(
        self,
        is_orig: bool,
        count: int,
        ip_bytes: int,
        first_ts: int,
        last_ts: int,
        max_ack: int,
        first_frame: int,
        frames: object | None = None,
        acks: object | None = None,
    ) -> None:
        """Fold in pure ACKs (no SYN/FIN/RST, no payload, non-zero window) seen in one batch.

        ``max_ack`` is the highest of their acks relative to the peer's stream. With ``frames``
        and ``acks`` (per packet, in capture order; acks relative to the peer's stream) a gap
        letter lands on the ACK that revealed the gap; without them, on the first of the batch.
        """
        ep, peer = (self.orig, self.resp) if is_orig else (self.resp, self.orig)
        ep.pkts += count
        ep.ip_bytes += ip_bytes
        if not ep.first_ts:
            ep.first_ts = first_ts
        if last_ts > ep.last_ts:
            ep.last_ts = last_ts
        if last_ts > self.last_ns and not (self.orig.did_close and self.resp.did_close):
            self.last_ns = last_ts
        if count:
            self._check(first_frame, _H_ACK, "A", is_orig)
        ps = peer.stream
        if not ps.started:
            return
        if peer.state == _INACTIVE:
            # Zeek's init_peer at every ACK while the peer is silent.
            a = _abs_seq(ps, max_ack)
            peer.z_init(a - 1, 0)
            if stream_empty(ps):
                peer.reanchor(a - 1)
            return
        z = peer.z_rel(_abs_seq(ps, max_ack), peer.z_ack)
        if z > peer.z_ack:
            peer.z_ack = z
        if max_ack > peer.max_ack_rel:
            peer.max_ack_rel = max_ack
        peer.ack_event(first_frame, max_ack, frames, acks)

    def bulk_data(
        self,
        is_orig: bool,
        *,
        count: int,
        nbytes: int,
        ip_bytes: int,
        last_ts: int,
        last_win: int,
        first_frame: int,
        first_seq: int,
        future: bool = False,
        ts_ns: int = 0,
        delivered: bool = False,
        payload: bytes | None = None,
    ) -> None:
        """Fold in a run of contiguous data segments (ACK set, no SYN/FIN/RST, non-zero window)
        starting at ``first_seq``: either exactly where the stream stands, or (``future``)
        beyond a hole and beyond everything seen; the engine checked which. ``delivered``: the
        engine already gave the bytes to the stream's sink (``Reassembler.deliver_run``); ``payload``:
        the run's bytes, for a ``future`` run on a stream with a sink."""
        ep, peer = (self.orig, self.resp) if is_orig else (self.resp, self.orig)
        ep.pkts += count
        ep.ip_bytes += ip_bytes
        if last_ts > ep.last_ts:
            ep.last_ts = last_ts
        if last_ts > self.last_ns and not (self.orig.did_close and self.resp.did_close):
            self.last_ns = last_ts
        scaled = ep.wscale is not None and peer.wscale is not None
        ep.window = last_win << min(ep.wscale or 0, MAX_WSCALE) if scaled else last_win
        self._check(first_frame, _H_DATA, "D", is_orig)
        if first_frame > self._last_frame:
            self._last_frame = first_frame
        st = ep.stream
        start = ep.z_rel(first_seq, ep.z_last)
        if future:
            rel = st.rel(first_seq)
            st.extend_future(rel, rel + nbytes, ts_ns, count, payload)
        elif not delivered:
            st.advance(nbytes)
        if ep.state == RESET or nbytes <= 0:
            return
        # Zeek's update_last_seq per segment: in order, so a segment is a retransmission ('T')
        # only if Zeek's last_seq is already beyond it -- a pure ACK carried a sequence number
        # past data the capture missed. Where last_seq falls inside the run, the segment sizes
        # are not known here: the share of the run below it is taken as the share of segments.
        end = start + nbytes
        if ep.z_last >= end:
            rxmt = count
        elif ep.z_last > start:
            rxmt = max(1, (count * (ep.z_last - start)) // nbytes)
        else:
            rxmt = 0
        for _ in range(rxmt):
            self._scaled(first_frame, ep, "rxmt", "T", is_orig)
        if end > ep.z_last:
            ep.z_last = end

    def finish(self, reason: str, ts_ns: int) -> None:
        """End of the connection: the reassemblers flush (the parsers see the holes as gaps);
        Zeek counts no content gap here, so neither ``missed_bytes`` nor the history changes."""
        if not self.close_reason:
            self.close_reason = reason
        self.apply_acks(ts_ns)
        for ep in (self.orig, self.resp):
            ep.stream.finish(ts_ns, ep.max_ack_rel if ep.stream.started else None)

    # -- Zeek's conn_state ---------------------------------------------------------------
    def conn_state(self) -> str:
        os_, rs = self.orig.state, self.resp.state
        o_inactive = os_ in (_INACTIVE, PARTIAL)
        r_inactive = rs in (_INACTIVE, PARTIAL)
        if rs == RESET:
            if os_ in (SYN_SENT, SYN_ACK_SENT) or (
                os_ == RESET and self.orig.size() == 0 and self.resp.size() == 0
            ):
                return "REJ"
            return "RSTRH" if o_inactive else "RSTR"
        if os_ == RESET:
            if r_inactive:
                return "RSTOS0" if _RSTOS0.match(self.history_str()) else "OTH"
            return "RSTO"
        if rs == CLOSED and os_ == CLOSED:
            return "SF"
        if os_ == CLOSED:
            return "SH" if r_inactive else "S2"
        if rs == CLOSED:
            return "SHR" if o_inactive else "S3"
        if os_ == SYN_SENT and rs == _INACTIVE:
            return "S0"
        if os_ == ESTABLISHED and rs == ESTABLISHED:
            return "S1"
        return "OTH"

    def release(self) -> None:
        """Break the reference cycles (endpoint <-> peer, stream -> sink -> connection) once the
        record is out, so reference counting frees the connection at once, without waiting for
        the cyclic garbage collector."""
        for ep in (self.orig, self.resp):
            ep.stream.sink = None
            ep.peer = None  # type: ignore[assignment]

    def set_sink(self, is_orig: bool, sink: StreamSink | None) -> None:
        (self.orig if is_orig else self.resp).stream.sink = sink


@lru_cache(maxsize=4096)
def ntop(addr: bytes) -> str:
    """Printable address (RFC 5952 for IPv6, as Zeek and Wireshark print them).

    Cached: addresses repeat across a capture's rows (a scan's 200,000 rows name two), and
    every row keeping its own copy of the same string cost ~120 bytes a row."""
    return socket.inet_ntop(socket.AF_INET if len(addr) == 4 else socket.AF_INET6, addr)
