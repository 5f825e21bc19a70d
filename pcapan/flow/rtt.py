"""Round-trip times from the wire, per batch of packets, with array operations.

Samples, as the capture point sees them:

* ``handshake``: a SYN to the SYN-ACK that acknowledges it (the capture point to the responder
  and back), and a SYN-ACK to the ACK that acknowledges it (to the originator and back); their
  sum is Wireshark's ``tcp.analysis.initial_rtt``.
* ``ack``: a data segment (or a FIN) to the first acknowledgement that covers exactly its end,
  as Wireshark's ``tcp.analysis.ack_rtt`` pairs them (the acknowledgement number equals the
  segment's next sequence number), one sample per acknowledgement. Karn's rule: no sample from
  a segment whose bytes were sent more than once before the acknowledgement arrived.
* ``ts``: a TCP timestamp value (TSval) to the first segment of the peer that echoes it (TSecr),
  where the option is present.

A sample belongs to the direction of the data it times: ``is_orig`` True means the originator's
segment and the responder's acknowledgement (the path from the capture point to the responder).

Duplicate ACKs and zero-window advertisements are counted here too (Wireshark's
``tcp.analysis.duplicate_ack`` and ``tcp.analysis.zero_window``), since they need the same
per-direction ordering.

State kept per endpoint between batches (:class:`RttState`): the sequence base, the highest
acknowledgement and segment end so far, the segments not yet acknowledged (bounded) and the
timestamp values not yet echoed (bounded).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from pcapan.config import RTT_MAX_PENDING_SEGMENTS, RTT_MAX_PENDING_TSVALS
from pcapan.flow.seqspace import segmented_cummax, signed_delta

KIND_HANDSHAKE, KIND_ACK, KIND_TS = 0, 1, 2
KINDS = ("handshake", "ack", "ts")

_FIN, _SYN, _RST, _ACK = 0x01, 0x02, 0x04, 0x10
_M32 = 0xFFFFFFFF
# Sequence numbers are made relative to a base a quarter of the space below the endpoint's first
# one, so that data retransmitted from before the capture started stays positive.
_BASE_MARGIN = 1 << 30
_KEY_SHIFT = 34  # (endpoint, 33-bit value) packed into one int64 for sorting and lookups
# Longest segment a retransmission may overlap from below: 64 KiB IP payloads, or GRO/TSO
# super-segments in captures taken on the sending host.
_MAX_SEGMENT_SPAN = 1 << 18


class RttState:
    """What every endpoint's RTT bookkeeping carries from batch to batch, as arrays indexed by
    endpoint id: a connection's slot times two, plus one for its responder. Arrays rather than an
    object per endpoint: a batch touches hundreds of endpoints, and reading and writing their
    state is then a handful of array operations, not loops. Slots of finalised connections are
    reused, so the arrays follow the number of open connections, not of all connections seen."""

    _INT_FIELDS = (
        "base",
        "max_ack",
        "hi_end",
        "last_ack",
        "last_win",
        "dup_acks",
        "zero_windows",
        "ts_echoed",
    )
    _INITIAL = {"max_ack": -1, "last_ack": -1, "last_win": -1, "ts_echoed": -1}

    def __init__(self) -> None:
        self.known = np.zeros(0, dtype=bool)  # the endpoint has sent a packet (base is set)
        self.base = np.zeros(
            0, dtype=np.int64
        )  # sequence number that relative position 0 stands for
        self.max_ack = np.zeros(
            0, dtype=np.int64
        )  # highest relative acknowledgement of its data seen
        self.hi_end = np.zeros(0, dtype=np.int64)  # highest relative segment end sent
        self.last_ack = np.zeros(0, dtype=np.int64)  # its own last acknowledgement number (32-bit)
        self.last_win = np.zeros(0, dtype=np.int64)  # and window
        self.dup_acks = np.zeros(0, dtype=np.int64)
        self.zero_windows = np.zeros(0, dtype=np.int64)
        self.ts_echoed = np.zeros(0, dtype=np.int64)  # the last of its TSvals the peer echoed
        # Segments not acknowledged yet (endpoint, relative start and end, time, kind,
        # retransmitted), at most RTT_MAX_PENDING_SEGMENTS per endpoint, in sending order.
        self.pend: tuple[np.ndarray, ...] = (
            np.empty(0, np.int64),
            np.empty(0, np.int64),
            np.empty(0, np.int64),
            np.empty(0, np.int64),
            np.empty(0, np.int8),
            np.empty(0, bool),
        )
        # TSvals sent and not echoed yet (endpoint, value, time first sent), ascending per
        # endpoint, at most RTT_MAX_PENDING_TSVALS per endpoint.
        self.tsp: tuple[np.ndarray, ...] = (
            np.empty(0, np.int64),
            np.empty(0, np.int64),
            np.empty(0, np.int64),
        )
        self._free: list[int] = []  # slots of finalised connections, to reuse
        self._slots = 0  # slots handed out so far

    def alloc(self, n: int) -> list[int]:
        """Slots for ``n`` new connections (reused ones first)."""
        k = min(n, len(self._free))
        out = [self._free.pop() for _ in range(k)]
        out.extend(range(self._slots, self._slots + n - k))
        self._slots += n - k
        self.reserve(2 * self._slots)
        return out

    def reserve(self, n_endpoints: int) -> None:
        size = self.known.shape[0]
        if n_endpoints <= size:
            return
        new = max(n_endpoints, 2 * size, 1024)
        self.known = np.concatenate([self.known, np.zeros(new - size, dtype=bool)])
        for name in self._INT_FIELDS:
            fill = np.full(new - size, self._INITIAL.get(name, 0), dtype=np.int64)
            setattr(self, name, np.concatenate([getattr(self, name), fill]))

    def release(self, slots: np.ndarray) -> None:
        """These (finalised) connections' slots become free: their carried segments and TSvals
        go, their endpoints start afresh."""
        gone = np.zeros(self.known.shape[0] // 2 + 1, dtype=bool)
        gone[slots] = True
        self.pend = tuple(x[~gone[self.pend[0] >> 1]] for x in self.pend)
        self.tsp = tuple(x[~gone[self.tsp[0] >> 1]] for x in self.tsp)
        eps = np.concatenate([2 * slots, 2 * slots + 1])
        self.known[eps] = False
        for name in self._INT_FIELDS:
            getattr(self, name)[eps] = self._INITIAL.get(name, 0)
        self._free.extend(slots.tolist())

    def counters(self, conn: int) -> tuple[int, int, int, int]:
        """(orig dup ACKs, resp dup ACKs, orig zero windows, resp zero windows) of the connection
        in slot ``conn`` (-1: never seen by a batch)."""
        if conn < 0 or 2 * conn >= self.known.shape[0]:
            return 0, 0, 0, 0
        e = 2 * conn
        return (
            int(self.dup_acks[e]),
            int(self.dup_acks[e + 1]),
            int(self.zero_windows[e]),
            int(self.zero_windows[e + 1]),
        )


@dataclass(slots=True)
class RttSamples:
    """Samples of one analysis, as column chunks (one chunk per batch). A sample names its
    connection by an index into ``uids`` (4 bytes a sample, not a string reference)."""

    uids: list[str] = field(default_factory=list)
    index: dict[str, int] = field(default_factory=dict)
    conn: list[np.ndarray] = field(default_factory=list)
    is_orig: list[np.ndarray] = field(default_factory=list)
    kind: list[np.ndarray] = field(default_factory=list)
    ts_ns: list[np.ndarray] = field(default_factory=list)
    rtt_ns: list[np.ndarray] = field(default_factory=list)

    def ids(self, uids: list[str]) -> np.ndarray:
        """Indexes of these connections (added on first sight)."""
        out = []
        for u in uids:
            i = self.index.get(u)
            if i is None:
                i = self.index[u] = len(self.uids)
                self.uids.append(u)
            out.append(i)
        return np.array(out, dtype=np.int32)

    def add(
        self,
        conn: np.ndarray,
        is_orig: np.ndarray,
        kind: np.ndarray,
        ts_ns: np.ndarray,
        rtt_ns: np.ndarray,
    ) -> None:
        if conn.shape[0]:
            self.conn.append(conn)
            self.is_orig.append(is_orig)
            self.kind.append(kind)
            self.ts_ns.append(ts_ns)
            self.rtt_ns.append(rtt_ns)

    _DTYPES = {
        "conn": np.int32,
        "is_orig": bool,
        "kind": np.int8,
        "ts_ns": np.int64,
        "rtt_ns": np.int64,
    }

    def columns(self, names: tuple[str, ...] = tuple(_DTYPES)) -> dict[str, np.ndarray]:
        """The samples as whole columns (only ``names``: each is one copy of every sample)."""
        return {
            n: np.concatenate(getattr(self, n))
            if getattr(self, n)
            else np.empty(0, dtype=self._DTYPES[n])
            for n in names
        }

    @staticmethod
    def merge(parts: list[RttSamples]) -> RttSamples:
        out = RttSamples()
        for p in parts:
            remap = out.ids(p.uids)
            out.conn.extend(remap[c] for c in p.conn)
            for name in ("is_orig", "kind", "ts_ns", "rtt_ns"):
                getattr(out, name).extend(getattr(p, name))
        return out


def _groups(keys: np.ndarray, order: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For ``keys[order]`` (sorted, equal keys contiguous): where each group starts, each
    element's group number, and each group's key."""
    k = keys[order]
    starts = np.ones(order.shape[0], dtype=bool)
    starts[1:] = k[1:] != k[:-1]
    return starts, np.cumsum(starts) - 1, k[starts]


def _exclusive_cummax(
    values: np.ndarray, group: np.ndarray, starts: np.ndarray, first: np.ndarray
) -> np.ndarray:
    """Per group (sorted, contiguous), the maximum of the values before each element, starting
    from ``first`` (one per group). Values must be in [0, 2**40) (see segmented_cummax)."""
    run = segmented_cummax(np.maximum(values, first[group]), group)
    prev = np.empty_like(run)
    prev[1:] = run[:-1]
    prev[starts] = first[group[starts]]
    return prev


def timestamps(
    data: np.ndarray, tcp_off: np.ndarray, thl: np.ndarray, opt_cap: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(present, TSval, TSecr) per segment, for the layouts senders use: NOP NOP TS at the start
    of the options (Linux, BSD, Windows on every non-SYN segment) or TS first. Other layouts are
    read option by option (SYNs mostly). Options cut by the snap length are not read."""
    n = tcp_off.shape[0]
    present = np.zeros(n, dtype=bool)
    tsval = np.zeros(n, dtype=np.int64)
    tsecr = np.zeros(n, dtype=np.int64)
    has = (thl >= 30) & (opt_cap == thl - 20)
    if not has.any():
        return present, tsval, tsecr
    idx = np.nonzero(has)[0]
    o = tcp_off[idx] + 20
    b0, b1, b2, b3 = data[o], data[o + 1], data[o + 2], data[o + 3]
    nopnop = (b0 == 1) & (b1 == 1) & (b2 == 8) & (b3 == 10) & (thl[idx] >= 32)
    first = (b0 == 8) & (b1 == 10)
    for sel, at in ((nopnop, 4), (first, 2)):
        j = idx[sel]
        p = tcp_off[j] + 20 + at
        present[j] = True
        tsval[j] = _u32(data, p)
        tsecr[j] = _u32(data, p + 4)
    for i in idx[~(nopnop | first)].tolist():
        off, end = int(tcp_off[i]) + 20, int(tcp_off[i]) + int(thl[i])
        while off < end:
            kind = int(data[off])
            if kind == 0:
                break
            if kind == 1:
                off += 1
                continue
            if off + 1 >= end:
                break
            ln = int(data[off + 1])
            if ln < 2 or off + ln > end:
                break
            if kind == 8 and ln == 10:
                present[i] = True
                tsval[i] = int.from_bytes(bytes(data[off + 2 : off + 6]), "big")
                tsecr[i] = int.from_bytes(bytes(data[off + 6 : off + 10]), "big")
                break
            off += ln
    return present, tsval, tsecr


def _u32(data: np.ndarray, p: np.ndarray) -> np.ndarray:
    return (
        (data[p].astype(np.int64) << 24)
        | (data[p + 1].astype(np.int64) << 16)
        | (data[p + 2].astype(np.int64) << 8)
        | data[p + 3].astype(np.int64)
    )


def _last_per_group(keys: np.ndarray, limit: int) -> np.ndarray:
    """For ``keys`` grouped (equal keys contiguous): True for the last ``limit`` of each group."""
    n = keys.shape[0]
    if not n:
        return np.zeros(0, dtype=bool)
    ends = np.r_[np.nonzero(keys[1:] != keys[:-1])[0] + 1, n]  # one past each group's end
    group_end = np.repeat(ends, np.diff(np.r_[0, ends]))
    return group_end - np.arange(n) <= limit


def batch(
    samples: RttSamples,
    state: RttState,
    sid: np.ndarray,
    ep: np.ndarray,
    seq: np.ndarray,
    ack: np.ndarray,
    flags: np.ndarray,
    win: np.ndarray,
    plen: np.ndarray,
    ts: np.ndarray,
    ts_opt: tuple[np.ndarray, np.ndarray, np.ndarray],
) -> None:
    """One batch, in capture order. ``ep`` is each packet's sending endpoint id (its connection's
    slot in ``state`` times two, plus one for the responder); ``state`` (sized for every slot by
    :meth:`RttState.alloc`) carries every endpoint's bookkeeping from batch to batch; ``sid[slot]``
    is the connection's index in ``samples``."""
    n = ep.shape[0]
    if n == 0:
        return
    idx = np.arange(n, dtype=np.int64)
    # Endpoints seen for the first time get their base from their first packet. (An endpoint
    # silent in this batch keeps its state: its peer's ACKs time its segments.)
    ue, first = np.unique(ep, return_index=True)
    fresh = ~state.known[ue]
    if fresh.any():
        state.base[ue[fresh]] = (seq[first[fresh]] - _BASE_MARGIN) & _M32
        state.known[ue[fresh]] = True
    known, base = state.known, state.base
    # The connections of this batch: their carried state is taken out, used and put back.
    in_batch = np.zeros(known.shape[0] // 2 + 1, dtype=bool)
    in_batch[ue >> 1] = True

    # -- segments: data, SYN or FIN (each occupies sequence space) ---------------------------
    syn = (flags & _SYN) != 0
    fin = (flags & _FIN) != 0
    is_seg = ((plen > 0) | syn | fin) & ((flags & _RST) == 0)
    si = idx[is_seg]
    s_ep = ep[si]
    s_start = (seq[si] - base[s_ep]) & _M32
    s_end = s_start + plen[si] + syn[si] + fin[si]
    s_ts = ts[si]
    s_kind = np.where(syn[si], KIND_HANDSHAKE, KIND_ACK).astype(np.int8)
    # Segments still unacknowledged from earlier batches come first (index -1: sent before).
    pe = state.pend
    take = in_batch[pe[0] >> 1]
    p_ep, p_start, p_end, p_ts, p_kind, p_retx = (x[take] for x in pe)
    rest = tuple(x[~take] for x in pe)
    a_ep = np.concatenate([p_ep, s_ep])
    a_idx = np.concatenate([np.full(p_ep.shape[0], -1, dtype=np.int64), si])
    a_start = np.concatenate([p_start, s_start])
    a_end = np.concatenate([p_end, s_end])
    a_ts = np.concatenate([p_ts, s_ts])
    a_kind = np.concatenate([p_kind, s_kind])
    # Retransmitted: starts before the highest sequence number this endpoint had sent, as its
    # segments' ends and its other packets' sequence numbers tell (an ACK whose sequence number
    # is ahead shows bytes the capture missed: resending them is a retransmission, as Wireshark
    # flags it). Carried pending segments keep the flag they were given.
    pure = ~is_seg & ((flags & _RST) == 0)
    pi_ = idx[pure]
    m_ep = np.concatenate([a_ep, ep[pi_]])
    m_idx = np.concatenate([a_idx, pi_])
    m_val = np.concatenate([a_end, (seq[pi_] - base[ep[pi_]]) & _M32])
    n_a = a_ep.shape[0]
    order = np.lexsort((m_idx, m_ep))  # by endpoint, then capture order
    starts, group, ug = _groups(m_ep, order)
    hi0 = state.hi_end[ug]
    prev_hi = np.empty(order.shape[0], dtype=np.int64)
    prev_hi[order] = _exclusive_cummax(m_val[order], group, starts, hi0)
    n_p = p_ep.shape[0]
    retx = a_start < prev_hi[:n_a]
    retx[:n_p] = p_retx
    if order.shape[0]:
        state.hi_end[ug] = np.maximum.reduceat(
            np.maximum(m_val[order], hi0[group]), np.nonzero(starts)[0]
        )

    # -- acknowledgements ---------------------------------------------------------------------
    tgt_all = ep ^ 1
    is_ack = ((flags & _ACK) != 0) & known[tgt_all]  # an RST-ACK refusing a SYN times it too
    ai = idx[is_ack]
    tgt = tgt_all[ai]
    ack_rel = (ack[ai] - base[tgt]) & _M32
    a_order = np.argsort(tgt, kind="stable")
    a_starts, a_group, a_ug = _groups(tgt, a_order)
    max0 = state.max_ack[a_ug]
    prev_max = np.empty(ai.shape[0], dtype=np.int64)
    prev_max[a_order] = (
        _exclusive_cummax(ack_rel[a_order], a_group, a_starts, max0) if ai.shape[0] else max0[:0]
    )
    new = ack_rel > prev_max
    if ai.shape[0]:
        state.max_ack[a_ug] = np.maximum.reduceat(
            np.maximum(ack_rel[a_order], max0[a_group]), np.nonzero(a_starts)[0]
        )

    # Each new acknowledgement looks up the segment of its endpoint ending exactly there.
    comp = (a_ep << _KEY_SHIFT) | a_end
    by_comp = np.argsort(comp, kind="stable")
    comp_s = comp[by_comp]
    ni = np.nonzero(new)[0]
    q = (tgt[ni] << _KEY_SHIFT) | ack_rel[ni]
    lo = np.searchsorted(comp_s, q, side="left")
    hi = np.searchsorted(comp_s, q, side="right")
    cand = by_comp[np.minimum(lo, comp_s.shape[0] - 1)] if comp_s.shape[0] else lo
    # Equal ends sit in capture order: the first was sent before the acknowledgement and no
    # other one was (a copy sent after it, e.g. a spurious retransmission, does not matter).
    nxt = by_comp[np.minimum(lo + 1, comp_s.shape[0] - 1)] if comp_s.shape[0] else lo
    one = ((hi - lo) == 1) | (
        ((hi - lo) >= 2) & (a_idx[nxt] > ai[ni]) if comp_s.shape[0] else False
    )
    ok = one & (a_idx[cand] < ai[ni]) if comp_s.shape[0] else one
    ok &= ~retx[cand] if comp_s.shape[0] else ok
    # Karn, the other half: a retransmission of the segment's bytes sent before this
    # acknowledgement makes the sample ambiguous too. For each retransmitted segment, the
    # earlier segments it overlaps learn when their bytes were first sent again.
    if ok.any() and retx.any():
        again = np.full(a_ep.shape[0], np.iinfo(np.int64).max, dtype=np.int64)
        s_ord = np.lexsort((a_start, a_ep))
        ep_sorted = a_ep[s_ord]
        start_sorted = a_start[s_ord]
        for r in np.nonzero(retx)[0].tolist():
            e, rs, re_, ri = int(a_ep[r]), int(a_start[r]), int(a_end[r]), int(a_idx[r])
            lo_e = int(np.searchsorted(ep_sorted, e, "left"))
            hi_e = int(np.searchsorted(ep_sorted, e, "right"))
            # Segments are at most 64 KiB + a few (TSO captures aside): start the scan there.
            lo_s = lo_e + int(
                np.searchsorted(start_sorted[lo_e:hi_e], rs - _MAX_SEGMENT_SPAN, "left")
            )
            hi_s = lo_e + int(np.searchsorted(start_sorted[lo_e:hi_e], re_, "left"))
            near = s_ord[lo_s:hi_s]
            hit = near[(a_end[near] > rs) & (a_idx[near] < ri)]
            again[hit] = np.minimum(again[hit], ri)
        ok &= again[cand] > ai[ni]
    # Several segments ending at the same place: retransmissions, ambiguous by Karn's rule.
    m = ni[ok]
    c_ok = cand[ok] if comp_s.shape[0] else cand[:0]
    if m.shape[0]:
        a_pk = ai[m]
        e_data = tgt[m]
        samples.add(
            sid[e_data >> 1], (e_data & 1) == 0, a_kind[c_ok], ts[a_pk], ts[a_pk] - a_ts[c_ok]
        )

    # What stays unacknowledged goes on to the next batch (the newest, per endpoint).
    keep = a_end > state.max_ack[a_ep]
    kidx = np.nonzero(keep)[0]
    kidx = kidx[np.argsort(a_ep[kidx], kind="stable")]
    kidx = kidx[_last_per_group(a_ep[kidx], RTT_MAX_PENDING_SEGMENTS)]
    state.pend = tuple(
        np.concatenate([r, x[kidx]])
        for r, x in zip(rest, (a_ep, a_start, a_end, a_ts, a_kind, retx), strict=True)
    )

    _dup_and_zero(state, ep, ack, flags, win, plen, idx)
    _ts_samples(samples, state, sid, in_batch, ep, ts, flags, ts_opt)


def _dup_and_zero(
    state: RttState,
    ep: np.ndarray,
    ack: np.ndarray,
    flags: np.ndarray,
    win: np.ndarray,
    plen: np.ndarray,
    idx: np.ndarray,
) -> None:
    """Wireshark's duplicate ACK (no data, no SYN/FIN/RST, same acknowledgement and window as the
    endpoint's previous ACK, while the peer has data outstanding) and zero window (a window of 0
    outside SYN/FIN/RST)."""
    ctrl = (flags & (_SYN | _FIN | _RST)) != 0
    zw = (win == 0) & ~ctrl
    if zw.any():
        np.add.at(state.zero_windows, ep[zw], 1)
    acking = ((flags & _ACK) != 0) & ~((flags & _RST) != 0)
    ai = idx[acking]
    if not ai.shape[0]:
        return
    a_ep = ep[ai]
    order = np.argsort(a_ep, kind="stable")
    s_ep = a_ep[order]
    starts, _, ug = _groups(a_ep, order)
    gi = ai[order]
    prev_ack = np.empty(order.shape[0], dtype=np.int64)
    prev_win = np.empty(order.shape[0], dtype=np.int64)
    prev_ack[1:] = ack[gi[:-1]]
    prev_win[1:] = win[gi[:-1]]
    prev_ack[starts] = state.last_ack[ug]
    prev_win[starts] = state.last_win[ug]
    g_ack = ack[gi]
    cand = (plen[gi] == 0) & ~ctrl[gi] & (g_ack == prev_ack) & (win[gi] == prev_win)
    if cand.any():
        # The peer must have data outstanding: the acknowledgement is below its highest end.
        peer = s_ep ^ 1
        cand &= state.known[peer] & (state.hi_end[peer] > ((g_ack - state.base[peer]) & _M32))
        np.add.at(state.dup_acks, s_ep[cand], 1)
    ends = np.append(np.nonzero(starts)[0][1:], order.shape[0]) - 1
    state.last_ack[ug] = g_ack[ends]
    state.last_win[ug] = win[gi[ends]]


def _after(value: np.ndarray, mark: np.ndarray) -> np.ndarray:
    """``value`` is later than ``mark`` in 32-bit serial arithmetic (RFC 1982): 1 to 2**31 - 1
    ahead. The same value is not later: an echo of the value already echoed (in an earlier
    batch) is no new sample, so the samples do not depend on where batches end."""
    return signed_delta(value, mark) > 0


def _ts_samples(
    samples: RttSamples,
    state: RttState,
    sid: np.ndarray,
    in_batch: np.ndarray,
    ep: np.ndarray,
    ts: np.ndarray,
    flags: np.ndarray,
    ts_opt: tuple[np.ndarray, np.ndarray, np.ndarray],
) -> None:
    """TSval first sent by an endpoint -> the first segment of its peer echoing it in TSecr."""
    present, tsval, tsecr = ts_opt
    pi = np.nonzero(present)[0]
    if not pi.shape[0]:
        return
    e = ep[pi]
    v = tsval[pi]
    t = ts[pi]
    known = state.known
    mark = state.ts_echoed
    # Values sent: those carried from earlier batches first (their first sending is earlier),
    # then this batch's, first time each.
    tp = state.tsp
    take = in_batch[tp[0] >> 1]
    c_comp = (tp[0][take] << _KEY_SHIFT) | tp[1][take]
    c_ts = tp[2][take]
    rest = tuple(x[~take] for x in tp)
    u, first = np.unique((e << _KEY_SHIFT) | v, return_index=True)
    all_comp = np.concatenate([c_comp, u])
    all_ts = np.concatenate([c_ts, t[first]])
    all_at = np.concatenate([np.full(c_comp.shape[0], -1, dtype=np.int64), first])  # index into pi
    sent, keep_first = np.unique(all_comp, return_index=True)  # the earliest of each value
    sent_ts, sent_at = all_ts[keep_first], all_at[keep_first]
    # Echoes: an acknowledging segment whose TSecr names a value of the peer newer than the last
    # value echoed before (timestamps only grow); the first echo of each value.
    w = tsecr[pi]
    tgt = e ^ 1
    newer = (mark[tgt] < 0) | _after(w, mark[tgt])
    echo = (w != 0) & ((flags[pi] & _ACK) != 0) & known[tgt] & newer
    ei = np.nonzero(echo)[0]
    if ei.shape[0]:
        ue, efirst = np.unique((tgt[ei] << _KEY_SHIFT) | w[ei], return_index=True)
        echo_at = ei[efirst]
        pos = np.minimum(np.searchsorted(sent, ue), max(sent.shape[0] - 1, 0))
        ok = (
            (sent[pos] == ue) & (sent_at[pos] < echo_at)
            if sent.shape[0]
            else np.zeros(ue.shape[0], bool)
        )
        if ok.any():
            data_ep = ue[ok] >> _KEY_SHIFT
            at = t[echo_at[ok]]
            samples.add(
                sid[data_ep >> 1],
                (data_ep & 1) == 0,
                np.full(data_ep.shape[0], KIND_TS, dtype=np.int8),
                at,
                at - sent_ts[pos[ok]],
            )
        # The last value each endpoint's peer echoed, in capture order.
        te = tgt[ei]
        by_ep = np.argsort(te, kind="stable")
        te_s = te[by_ep]
        last = np.nonzero(np.r_[te_s[1:] != te_s[:-1], True])[0]
        mark[te_s[last]] = w[ei][by_ep][last]
    # Carry the values not echoed yet, the newest RTT_MAX_PENDING_TSVALS per endpoint.
    s_ep = sent >> _KEY_SHIFT
    s_val = sent & ((1 << _KEY_SHIFT) - 1)
    pending = (mark[s_ep] < 0) | _after(s_val, mark[s_ep])
    s_ep, s_val, s_ts = s_ep[pending], s_val[pending], sent_ts[pending]
    lastn = _last_per_group(s_ep, RTT_MAX_PENDING_TSVALS)
    state.tsp = tuple(
        np.concatenate([r, x[lastn]]) for r, x in zip(rest, (s_ep, s_val, s_ts), strict=True)
    )
