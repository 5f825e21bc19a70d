"""One TCP connection: Zeek's endpoint state machine, history letters and counters.

The rules follow Zeek's TCPSessionAdapter (UpdateStateMachine, update_history, Size) so that
``conn_state`` and ``history`` mean exactly what Zeek users expect. Only packets that can change
state reach :meth:`Connection.packet` one by one; pure ACKs in the middle of a connection are
folded in per batch by :meth:`Connection.pure_acks`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from pcapan.decode.tcp_options import parse_tcp_options
from pcapan.flow.reassembly import Reassembler, StreamSink

INACTIVE, SYN_SENT, SYN_ACK_SENT, PARTIAL, ESTABLISHED, CLOSED, RESET = range(7)

FIN, SYN, RST, ACK = 0x01, 0x02, 0x04, 0x10

# History bits as in Zeek (one per letter and direction; the resp bits are shifted by 16).
_H_SYN, _H_SYN_ACK, _H_FIN, _H_RST, _H_DATA, _H_ACK, _H_MULTI, _H_FIN_RST = (
    1, 2, 4, 8, 16, 32, 64, 128,
)
_RSTOS0 = re.compile(r"^\^?S[^HAFGIQ]*R.*")

CLOSE_FIN = "fin"
CLOSE_RST = "rst"
CLOSE_IDLE = "idle_timeout"
CLOSE_END = "end_of_capture"
CLOSE_REUSE = "reused"


class Endpoint:
    """One side of a connection (Zeek's TCP_Endpoint, reduced to what the tables need)."""

    __slots__ = (
        "state", "prev_state", "stream", "fin_cnt", "rst_cnt", "pkts", "ip_bytes", "mss",
        "wscale", "sack_ok", "ts_ok", "window", "did_close", "hist_last_syn", "hist_last_fin",
        "hist_last_rst", "rxmt_cnt", "rxmt_thresh", "zw_cnt", "zw_thresh", "gap_cnt", "gap_thresh",
        "max_ack_rel", "syn_seen", "first_ts", "last_ts", "zero_window_probes",
    )

    def __init__(self) -> None:
        self.state = INACTIVE
        self.prev_state = INACTIVE
        self.stream = Reassembler()
        self.fin_cnt = 0
        self.rst_cnt = 0
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
        self.max_ack_rel = 0  # highest relative ack this endpoint's *peer* sent for our bytes
        self.syn_seen = False
        self.first_ts = 0
        self.last_ts = 0
        self.zero_window_probes = 0

    def set_state(self, s: int) -> None:
        self.prev_state = self.state
        self.state = s

    def size(self) -> int:
        """Bytes sent, from sequence numbers (Zeek's TCP_Endpoint::Size)."""
        if self.prev_state == SYN_SENT and self.state == RESET:
            return 0
        st = self.stream
        if not st.started:
            return 0
        top = max(st.max_end, self.max_ack_rel)
        if st.fin_rel is not None:
            top = max(top, st.fin_rel + 1)
        size = top  # relative position 0 is the SYN (or the imagined one)
        if size:
            size -= 1
        if self.fin_cnt and size:
            size -= 1
        return max(size, 0)


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
        "uid", "key", "orig", "resp", "orig_is_a", "start_ns", "last_ns", "history",
        "_hist_seen", "flipped", "partial", "close_reason", "closed_ns", "anomalies",
        "service", "n", "detect", "_fkey",
    )

    def __init__(self, uid: str, key: FlowKey, orig_is_a: bool, start_ns: int, n: int) -> None:
        self.uid = uid
        self.key = key
        self.orig = Endpoint()
        self.resp = Endpoint()
        self.orig_is_a = orig_is_a
        self.start_ns = start_ns
        self.last_ns = start_ns
        self.history: list[tuple[int, int, str]] = []  # (frame_no, order, letter)
        self._hist_seen = 0
        self.flipped = False
        self.partial = False  # picked up mid-stream: orientation is a guess
        self.close_reason = ""
        self.closed_ns = 0
        self.anomalies: list[tuple[int, int, str, str]] = []  # (frame_no, ts_ns, kind, detail)
        self.service = ""
        self.n = n  # creation order, for deterministic output
        self.detect: object | None = None

    # -- history -----------------------------------------------------------------------------
    def _add(self, frame_no: int, letter: str, is_orig: bool) -> None:
        self.history.append((frame_no, len(self.history), letter if is_orig else letter.lower()))

    def _check(self, frame_no: int, bit: int, letter: str, is_orig: bool) -> bool:
        """Record a letter the first time; True if it had been seen before (Zeek's CheckHistory)."""
        mask = bit if is_orig else bit << 16
        if self._hist_seen & mask:
            return True
        self._hist_seen |= mask
        self._add(frame_no, letter, is_orig)
        return False

    def _scaled(self, frame_no: int, ep: Endpoint, which: str, letter: str, is_orig: bool) -> None:
        # Zeek logs C/G/T/W at the 1st, 10th, 100th ... occurrence.
        cnt = getattr(ep, which + "_cnt") + 1
        setattr(ep, which + "_cnt", cnt)
        th = getattr(ep, which + "_thresh")
        if cnt == th:
            self._add(frame_no, letter, is_orig)
            setattr(ep, which + "_thresh", th * 10)

    def history_str(self) -> str:
        return "".join(h[2] for h in sorted(self.history))

    def has_ack_letter(self, is_orig: bool) -> bool:
        return bool(self._hist_seen & (_H_ACK if is_orig else _H_ACK << 16))

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
    ) -> str:
        """Process one packet that may change state; returns the reassembler's classification."""
        ep, peer = (self.orig, self.resp) if is_orig else (self.resp, self.orig)
        ep.pkts += 1
        ep.ip_bytes += ip_len
        if not ep.first_ts:
            ep.first_ts = ts_ns
        ep.last_ts = ts_ns
        if not (self.orig.did_close and self.resp.did_close):
            self.last_ns = ts_ns
        syn, fin, rst, has_ack = flags & SYN, flags & FIN, flags & RST, flags & ACK
        st = ep.stream
        # Sequence space (Zeek's init_endpoint).
        if syn:
            if not st.started or (ep.state in (INACTIVE, ESTABLISHED, PARTIAL) and st.rel(seq) != 0) or (
                ep.state == RESET and ep.prev_state == INACTIVE
            ):
                st.init_isn(seq)
            ep.syn_seen = True
        elif not st.started:
            st.init_isn((seq - 1) % (1 << 32))
        rel_seq = st.rel(seq)
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
                if self._check(frame_no, _H_SYN_ACK if has_ack else _H_SYN, code, is_orig) and rel_seq != ep.hist_last_syn:
                    self._add(frame_no, code, is_orig)
                ep.hist_last_syn = rel_seq
            if fin:
                if self._check(frame_no, _H_FIN, "F", is_orig) and rel_seq + length != ep.hist_last_fin:
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
        # Window (Zeek's update_window: zero windows are boring with or after RST, after peer FIN).
        scale = ep.wscale or 0
        if win == 0 and not rst and peer.state != CLOSED and ep.state != RESET and not syn:
            self._scaled(frame_no, ep, "zw", "W", is_orig)
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
        if rst:
            ep.rst_cnt += 1
        # Acknowledgements: the peer's bytes below ``ack`` arrived (Zeek's init_peer / update_ack_seq).
        if has_ack and not rst:
            ps = peer.stream
            if not ps.started:
                ps.init_isn((ack - 1) % (1 << 32))
            a = ps.rel(ack)
            if a > peer.max_ack_rel:
                peer.max_ack_rel = a
        # Zero-window probe: one byte sent while the peer advertises a zero window.
        kind = ""
        data_len = 0 if rst else length
        if data_len == 1 and peer.window == 0 and not syn and not fin:
            ep.zero_window_probes += 1
        data_seq = (seq + 1) % (1 << 32) if syn else seq
        if data_len or fin:
            kind = st.segment(data_seq, payload if (payload is not None and st.sink is not None) else None, data_len, ts_ns, fin=bool(fin))
        # Zeek's update_last_seq + DidRxmit: data not beyond the highest seq seen is a 'T'.
        if data_len and kind in ("retx", "ooo", "partial"):
            self._scaled(frame_no, ep, "rxmt", "T", is_orig)
        elif kind == "after_fin":
            self.note(frame_no, ts_ns, "data_after_fin", f"{data_len} bytes after the FIN's sequence number")
        self._state(ep, peer, is_orig, flags, length, seq, frame_no)
        return kind

    def _state(self, ep: Endpoint, peer: Endpoint, is_orig: bool, flags: int, length: int, seq: int, frame_no: int) -> None:
        """Zeek's UpdateStateMachine, without the events."""
        syn, fin, rst, has_ack = flags & SYN, flags & FIN, flags & RST, flags & ACK
        s = ep.state
        if s == INACTIVE:
            if syn:
                if is_orig:
                    ep.set_state(SYN_ACK_SENT if has_ack else SYN_SENT)
                else:
                    if not has_ack and peer.state == SYN_ACK_SENT:
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
            if ep.state == INACTIVE:
                if not is_orig and length == 0 and self.orig.state == SYN_SENT:
                    pass  # an ACK of the SYN before the SYN-ACK does not make a partial connection
                elif has_ack and peer.state == ESTABLISHED:
                    ep.set_state(ESTABLISHED)
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
            if syn and s == PARTIAL and peer.state == INACTIVE and not has_ack:
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

    def pure_acks(self, is_orig: bool, count: int, ip_bytes: int, first_ts: int, last_ts: int, max_ack: int, first_frame: int) -> None:
        """Fold in pure ACKs (no SYN/FIN/RST, no payload, non-zero window) seen in one batch."""
        ep, peer = (self.orig, self.resp) if is_orig else (self.resp, self.orig)
        ep.pkts += count
        ep.ip_bytes += ip_bytes
        if not ep.first_ts:
            ep.first_ts = first_ts
        if last_ts > ep.last_ts:
            ep.last_ts = last_ts
        if last_ts > self.last_ns and not (self.orig.did_close and self.resp.did_close):
            self.last_ns = last_ts
        if count and not self.has_ack_letter(is_orig):
            self._check(first_frame, _H_ACK, "A", is_orig)
        ps = peer.stream
        if ps.started and max_ack > peer.max_ack_rel:
            peer.max_ack_rel = max_ack

    def bulk_data(self, is_orig: bool, *, count: int, nbytes: int, ip_bytes: int, last_ts: int,
                  last_win: int, first_frame: int) -> None:
        """Fold in a run of in-order data segments (ACK set, no SYN/FIN/RST, non-zero window)
        that continue exactly where the stream stands; the engine checked that."""
        ep, peer = (self.orig, self.resp) if is_orig else (self.resp, self.orig)
        ep.pkts += count
        ep.ip_bytes += ip_bytes
        if last_ts > ep.last_ts:
            ep.last_ts = last_ts
        if last_ts > self.last_ns and not (self.orig.did_close and self.resp.did_close):
            self.last_ns = last_ts
        scaled = ep.wscale is not None and peer.wscale is not None
        ep.window = last_win << (ep.wscale or 0) if scaled else last_win
        self._check(first_frame, _H_DATA, "D", is_orig)
        ep.stream.advance(nbytes)

    def apply_acks(self, ts_ns: int) -> None:
        """Declare as gaps the bytes each side acknowledged that the capture never showed."""
        for ep in (self.orig, self.resp):
            st = ep.stream
            if st.started and ep.max_ack_rel > st.next_rel:
                before = st.gap_bytes
                st.acked(ep.max_ack_rel, ts_ns)
                if st.gap_bytes > before:
                    self._gap_letter(ep, ts_ns)

    def _gap_letter(self, ep: Endpoint, ts_ns: int) -> None:
        is_orig = ep is self.orig
        # Zeek's 'G' comes from an ACK revealing a content gap; we learn it at the same point.
        self._scaled(self._last_frame(), ep, "gap", "G", is_orig)

    def _last_frame(self) -> int:
        return self.history[-1][0] if self.history else 0

    def finish(self, reason: str, ts_ns: int) -> None:
        if not self.close_reason:
            self.close_reason = reason
        for ep in (self.orig, self.resp):
            before = ep.stream.gap_bytes
            ep.stream.finish(ts_ns, ep.max_ack_rel if ep.stream.started else None)
            if ep.stream.gap_bytes > before:
                self._gap_letter(ep, ts_ns)

    # -- Zeek's conn_state ---------------------------------------------------------------
    def conn_state(self) -> str:
        os_, rs = self.orig.state, self.resp.state
        o_inactive = os_ in (INACTIVE, PARTIAL)
        r_inactive = rs in (INACTIVE, PARTIAL)
        if rs == RESET:
            if os_ in (SYN_SENT, SYN_ACK_SENT) or (os_ == RESET and self.orig.size() == 0 and self.resp.size() == 0):
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
        if os_ == SYN_SENT and rs == INACTIVE:
            return "S0"
        if os_ == ESTABLISHED and rs == ESTABLISHED:
            return "S1"
        return "OTH"

    def set_sink(self, is_orig: bool, sink: StreamSink | None) -> None:
        (self.orig if is_orig else self.resp).stream.sink = sink
