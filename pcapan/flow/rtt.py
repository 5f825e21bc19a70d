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

State kept per endpoint between batches (:class:`EndpointRtt`): the sequence base, the highest
acknowledgement and segment end so far, the segments not yet acknowledged (bounded) and the
timestamp values not yet echoed (bounded).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from pcapan.config import RTT_MAX_PENDING_SEGMENTS, RTT_MAX_PENDING_TSVALS

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


@dataclass(slots=True)
class EndpointRtt:
    """What one endpoint's RTT bookkeeping carries from batch to batch."""

    base: int  # sequence number that relative position 0 stands for
    max_ack: int = -1  # highest relative acknowledgement of this endpoint's data seen
    hi_end: int = 0  # highest relative segment end sent
    # Segments not acknowledged yet: relative start and end, time, kind, retransmitted.
    pend: tuple[np.ndarray, ...] | None = None
    last_ack: int = -1  # this endpoint's own last acknowledgement number (32-bit) and window
    last_win: int = -1
    dup_acks: int = 0
    zero_windows: int = 0
    # TSvals sent and not echoed yet (ascending) with the time each was first sent; the last
    # value the peer echoed back
    ts_v: np.ndarray | None = None
    ts_t: np.ndarray | None = None
    ts_echoed: int = -1


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

    def add(self, conn: np.ndarray, is_orig: np.ndarray, kind: np.ndarray, ts_ns: np.ndarray,
            rtt_ns: np.ndarray) -> None:
        if conn.shape[0]:
            self.conn.append(conn)
            self.is_orig.append(is_orig)
            self.kind.append(kind)
            self.ts_ns.append(ts_ns)
            self.rtt_ns.append(rtt_ns)

    def columns(self) -> dict[str, np.ndarray]:
        def cat(parts: list[np.ndarray], dtype: object) -> np.ndarray:
            return np.concatenate(parts) if parts else np.empty(0, dtype=dtype)

        return {"conn": cat(self.conn, np.int32), "is_orig": cat(self.is_orig, bool), "kind": cat(self.kind, np.int8),
                "ts_ns": cat(self.ts_ns, np.int64), "rtt_ns": cat(self.rtt_ns, np.int64)}

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


def _exclusive_cummax(values: np.ndarray, group: np.ndarray, starts: np.ndarray, first: np.ndarray) -> np.ndarray:
    """Per group (sorted, contiguous), the maximum of the values before each element, starting
    from ``first`` (one per group). Values must be below 2**40."""
    offs = group.astype(np.int64) << 41
    run = np.maximum.accumulate(np.maximum(values, first[group]) + offs) - offs
    prev = np.empty_like(run)
    prev[1:] = run[:-1]
    prev[starts] = first[group[starts]]
    return prev


def timestamps(data: np.ndarray, tcp_off: np.ndarray, thl: np.ndarray,
               opt_cap: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
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
    return ((data[p].astype(np.int64) << 24) | (data[p + 1].astype(np.int64) << 16)
            | (data[p + 2].astype(np.int64) << 8) | data[p + 3].astype(np.int64))


def batch(samples: RttSamples, eps: list, uids: np.ndarray, ep: np.ndarray, seq: np.ndarray, ack: np.ndarray,
          flags: np.ndarray, win: np.ndarray, plen: np.ndarray, ts: np.ndarray,
          ts_opt: tuple[np.ndarray, np.ndarray, np.ndarray]) -> None:
    """One batch, in capture order. ``eps[e]`` is the Endpoint object of endpoint index ``e``
    (a connection's originator is ``2*slot``, its responder ``2*slot + 1``), ``ep`` each packet's
    sending endpoint, ``uids[e >> 1]`` the connection's index in ``samples.uids``."""
    n = ep.shape[0]
    if n == 0:
        return
    idx = np.arange(n, dtype=np.int64)
    # Per endpoint in the batch: its state (created on its first packet ever).
    # (An endpoint silent in this batch still has its state: its peer's ACKs time its segments.)
    states: list[EndpointRtt | None] = [x.rtt for x in eps]
    ue, first = np.unique(ep, return_index=True)
    for e, i in zip(ue.tolist(), first.tolist(), strict=True):
        if states[e] is None:
            states[e] = eps[e].rtt = EndpointRtt(base=(int(seq[i]) - _BASE_MARGIN) & _M32)
    known = np.array([s is not None for s in states], dtype=bool)
    base = np.array([s.base if s is not None else 0 for s in states], dtype=np.int64)

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
    pend_parts = [(e, s.pend) for e, s in enumerate(states) if s is not None and s.pend is not None]
    if pend_parts:
        p_ep = np.concatenate([np.full(p[0].shape[0], e, dtype=np.int64) for e, p in pend_parts])
        p_start, p_end, p_ts, p_kind, p_retx = (np.concatenate([p[k] for _, p in pend_parts]) for k in range(5))
        for e, _ in pend_parts:
            states[e].pend = None  # type: ignore[union-attr]
    else:
        p_ep = p_start = p_end = p_ts = np.empty(0, dtype=np.int64)
        p_kind = np.empty(0, dtype=np.int8)
        p_retx = np.empty(0, dtype=bool)
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
    pure = ~is_seg & ((flags & _RST) == 0) & known[ep]
    pi_ = idx[pure]
    m_ep = np.concatenate([a_ep, ep[pi_]])
    m_idx = np.concatenate([a_idx, pi_])
    m_val = np.concatenate([a_end, (seq[pi_] - base[ep[pi_]]) & _M32])
    n_a = a_ep.shape[0]
    order = np.lexsort((m_idx, m_ep))  # by endpoint, then capture order
    starts, group, ug = _groups(m_ep, order)
    hi0 = np.array([states[e].hi_end for e in ug.tolist()], dtype=np.int64)  # type: ignore[union-attr]
    prev_hi = np.empty(order.shape[0], dtype=np.int64)
    prev_hi[order] = _exclusive_cummax(m_val[order], group, starts, hi0)
    n_p = p_ep.shape[0]
    retx = a_start < prev_hi[:n_a]
    retx[:n_p] = p_retx
    if order.shape[0]:
        hi_after = np.maximum.reduceat(np.maximum(m_val[order], hi0[group]), np.nonzero(starts)[0])
        for e, h in zip(ug.tolist(), hi_after.tolist(), strict=True):
            states[e].hi_end = h  # type: ignore[union-attr]

    # -- acknowledgements ---------------------------------------------------------------------
    tgt_all = ep ^ 1
    is_ack = ((flags & _ACK) != 0) & known[tgt_all]  # an RST-ACK refusing a SYN times it too
    ai = idx[is_ack]
    tgt = tgt_all[ai]
    ack_rel = (ack[ai] - base[tgt]) & _M32
    a_order = np.argsort(tgt, kind="stable")
    a_starts, a_group, a_ug = _groups(tgt, a_order)
    max0 = np.array([states[e].max_ack for e in a_ug.tolist()], dtype=np.int64)  # type: ignore[union-attr]
    prev_max = np.empty(ai.shape[0], dtype=np.int64)
    prev_max[a_order] = _exclusive_cummax(ack_rel[a_order], a_group, a_starts, max0) if ai.shape[0] else max0[:0]
    new = ack_rel > prev_max
    if ai.shape[0]:
        top = np.maximum.reduceat(np.maximum(ack_rel[a_order], max0[a_group]), np.nonzero(a_starts)[0])
        for e, m in zip(a_ug.tolist(), top.tolist(), strict=True):
            states[e].max_ack = m  # type: ignore[union-attr]

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
    one = ((hi - lo) == 1) | (((hi - lo) >= 2) & (a_idx[nxt] > ai[ni]) if comp_s.shape[0] else False)
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
            lo_s = lo_e + int(np.searchsorted(start_sorted[lo_e:hi_e], rs - _MAX_SEGMENT_SPAN, "left"))
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
        samples.add(uids[e_data >> 1], (e_data & 1) == 0, a_kind[c_ok], ts[a_pk], ts[a_pk] - a_ts[c_ok])

    # What stays unacknowledged goes on to the next batch.
    if n_a:
        max_now = np.array([s.max_ack if s is not None else -1 for s in states], dtype=np.int64)
        keep = a_end > max_now[a_ep]
        if keep.any():
            kidx = np.nonzero(keep)[0]
            k_ep = a_ep[kidx]
            k_order = np.argsort(k_ep, kind="stable")
            kidx = kidx[k_order]
            k_ep = k_ep[k_order]
            bounds = np.nonzero(np.r_[True, k_ep[1:] != k_ep[:-1]])[0].tolist() + [k_ep.shape[0]]
            for b0, b1 in zip(bounds[:-1], bounds[1:], strict=True):
                sel = kidx[max(b0, b1 - RTT_MAX_PENDING_SEGMENTS) : b1]
                states[int(k_ep[b0])].pend = (a_start[sel], a_end[sel], a_ts[sel], a_kind[sel], retx[sel])  # type: ignore[union-attr]

    _dup_and_zero(states, ep, ack, flags, win, plen, idx, known)
    _ts_samples(samples, states, uids, ep, ts, flags, ts_opt)


def _dup_and_zero(states: list[EndpointRtt | None], ep: np.ndarray, ack: np.ndarray, flags: np.ndarray,
                  win: np.ndarray, plen: np.ndarray, idx: np.ndarray, known: np.ndarray) -> None:
    """Wireshark's duplicate ACK (no data, no SYN/FIN/RST, same acknowledgement and window as the
    endpoint's previous ACK, while the peer has data outstanding) and zero window (a window of 0
    outside SYN/FIN/RST)."""
    ctrl = (flags & (_SYN | _FIN | _RST)) != 0
    zw = (win == 0) & ~ctrl
    if zw.any():
        for e, c in zip(*np.unique(ep[zw], return_counts=True), strict=True):
            states[int(e)].zero_windows += int(c)  # type: ignore[union-attr]
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
    prev_ack[starts] = [states[e].last_ack for e in ug.tolist()]  # type: ignore[union-attr]
    prev_win[starts] = [states[e].last_win for e in ug.tolist()]  # type: ignore[union-attr]
    cand = (plen[gi] == 0) & ~ctrl[gi] & (ack[gi] == prev_ack) & (win[gi] == prev_win)
    if cand.any():
        # The peer must have data outstanding: the acknowledgement is below its highest end.
        for j in np.nonzero(cand)[0].tolist():
            e = int(s_ep[j])
            peer = states[e ^ 1]
            if peer is not None and peer.hi_end > ((int(ack[gi[j]]) - peer.base) & _M32):
                states[e].dup_acks += 1  # type: ignore[union-attr]
    ends = np.append(np.nonzero(starts)[0][1:], order.shape[0]) - 1
    for e, j in zip(ug.tolist(), ends.tolist(), strict=True):
        st = states[e]
        st.last_ack = int(ack[gi[j]])  # type: ignore[union-attr]
        st.last_win = int(win[gi[j]])  # type: ignore[union-attr]


def _ts_samples(samples: RttSamples, states: list[EndpointRtt | None], uids: np.ndarray, ep: np.ndarray,
                ts: np.ndarray, flags: np.ndarray, ts_opt: tuple[np.ndarray, np.ndarray, np.ndarray]) -> None:
    """TSval first sent by an endpoint -> the first segment of its peer echoing it in TSecr."""
    present, tsval, tsecr = ts_opt
    pi = np.nonzero(present)[0]
    if not pi.shape[0]:
        return
    e = ep[pi]
    v = tsval[pi]
    t = ts[pi]
    known = np.array([s is not None for s in states], dtype=bool)
    mark = np.array([s.ts_echoed if s is not None else -1 for s in states], dtype=np.int64)
    # Values sent: those carried from earlier batches first (their first sending is earlier),
    # then this batch's, first time each.
    carried = [(i, st.ts_v, st.ts_t) for i, st in enumerate(states) if st is not None and st.ts_v is not None]
    c_comp = np.concatenate([(i << _KEY_SHIFT) | vals for i, vals, _ in carried]) if carried else np.empty(0, np.int64)
    c_ts = np.concatenate([tt for _, _, tt in carried]) if carried else np.empty(0, np.int64)
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
    newer = (mark[tgt] < 0) | ((((w - mark[tgt]) & _M32) - 1) < (1 << 31) - 1)
    echo = (w != 0) & ((flags[pi] & _ACK) != 0) & known[tgt] & newer
    ei = np.nonzero(echo)[0]
    if ei.shape[0]:
        ue, efirst = np.unique((tgt[ei] << _KEY_SHIFT) | w[ei], return_index=True)
        echo_at = ei[efirst]
        pos = np.minimum(np.searchsorted(sent, ue), max(sent.shape[0] - 1, 0))
        ok = (sent[pos] == ue) & (sent_at[pos] < echo_at) if sent.shape[0] else np.zeros(ue.shape[0], bool)
        if ok.any():
            data_ep = ue[ok] >> _KEY_SHIFT
            at = t[echo_at[ok]]
            samples.add(uids[data_ep >> 1], (data_ep & 1) == 0, np.full(data_ep.shape[0], KIND_TS, dtype=np.int8),
                        at, at - sent_ts[pos[ok]])
        # The last value each endpoint's peer echoed, in capture order.
        te = tgt[ei]
        by_ep = np.argsort(te, kind="stable")
        te_s = te[by_ep]
        last = np.nonzero(np.r_[te_s[1:] != te_s[:-1], True])[0]
        for tv, val in zip(te_s[last].tolist(), w[ei][by_ep][last].tolist(), strict=True):
            states[tv].ts_echoed = val  # type: ignore[union-attr]
            mark[tv] = val
    # Carry the values not echoed yet, the newest RTT_MAX_PENDING_TSVALS per endpoint.
    s_ep = sent >> _KEY_SHIFT
    s_val = sent & ((1 << _KEY_SHIFT) - 1)
    pending = (mark[s_ep] < 0) | ((((s_val - mark[s_ep]) & _M32) - 1) < (1 << 31) - 1)
    for i, _, _ in carried:
        states[i].ts_v = states[i].ts_t = None  # type: ignore[union-attr]
    if pending.any():
        s_ep, s_val, s_ts = s_ep[pending], s_val[pending], sent_ts[pending]
        bounds = np.nonzero(np.r_[True, s_ep[1:] != s_ep[:-1]])[0].tolist() + [s_ep.shape[0]]
        for b0, b1 in zip(bounds[:-1], bounds[1:], strict=True):
            lo = max(b0, b1 - RTT_MAX_PENDING_TSVALS)
            st = states[int(s_ep[b0])]
            st.ts_v, st.ts_t = s_val[lo:b1], s_ts[lo:b1]  # type: ignore[union-attr]
