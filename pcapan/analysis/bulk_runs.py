"""Runs of bulk segments folded into their connections (compiled with ``bulk_runs.pxd``;
see README, "The compiled core").

The engine (:mod:`pcapan.analysis.engine`) marks, per batch, the data segments that need no
per-packet step (bulk); :class:`BulkRuns` holds their prefix sums by (flow, direction) and folds
the run that precedes each packet of the per-packet path (:mod:`pcapan.analysis.packet_loop`),
then the rest at the end of the batch. Kept apart from the engine so that this code, run once
per run and per segment a parser reads, carries C types.
"""

from __future__ import annotations

from bisect import bisect_left

import numpy as np

from pcapan.decode.packets import TcpPackets
from pcapan.flow.conn import INACTIVE, Connection, stream_empty
from pcapan.flow.seqspace import segmented_cummax, signed_delta


class BulkRuns:
    """Prefix sums over bulk segments, grouped by (flow, direction) in time order.

    The Python loop folds the run of bulk segments that precede each interesting packet of the
    same flow (``flush_before``) and the rest at the end of the batch (``flush_rest``), each
    in O(1) from the prefix sums; in flows a parser reads, both directions' runs in capture
    order (``flush_ordered``).
    """

    def __init__(
        self,
        tp: TcpPackets,
        order_kd: np.ndarray,
        kd_s: np.ndarray,
        starts_kd: np.ndarray,
        bulk: np.ndarray,
        mv: memoryview,
        frame_base: int,
    ) -> None:
        self.tp = tp
        self.mv = mv
        self.fb = frame_base
        self.order_kd = order_kd
        n = order_kd.shape[0]
        pos = np.empty(n, dtype=np.int64)
        pos[order_kd] = np.arange(n)
        self.pos = pos
        b = bulk[order_kd]
        self.b = b
        self.cs_len = np.concatenate([[0], np.cumsum(np.where(b, tp.payload_len[order_kd], 0))])
        self.cs_ip = np.concatenate([[0], np.cumsum(np.where(b, tp.ip_len[order_kd], 0))])
        self.cs_cnt = np.concatenate([[0], np.cumsum(b)])
        group = np.cumsum(starts_kd) - 1
        self.group = group
        gstart = np.nonzero(starts_kd)[0]
        self.gstart = gstart
        self.gend = np.append(gstart[1:], n)  # exclusive end of each group in sorted order
        self.gkd = kd_s[gstart]
        self.kd_sorted = kd_s
        # Acknowledgement numbers: running max of the signed distance from the group's first
        # ack, so the highest ack of any run is one lookup.
        ack = tp.ack[order_kd]
        # Distances are measured from the group's first bulk segment's ack (not its first
        # packet's: a SYN's ack field is 0, more than 2**31 away from real acks).
        g_ack = ack[gstart]
        bp = np.nonzero(b)[0]
        if bp.shape[0]:
            gb = group[bp]  # (non-decreasing: the first of each group is where it changes)
            first_b = np.ones(gb.shape[0], dtype=bool)
            first_b[1:] = gb[1:] != gb[:-1]
            g_ack[gb[first_b]] = ack[bp[first_b]]
        first_ack = g_ack[group]
        d = np.where(b, signed_delta(ack, first_ack), -(1 << 36))
        run_max = segmented_cummax(d, group)
        self.dmax = run_max.tolist()
        # Where that running max was reached: a run that starts after it (the acks went back,
        # e.g. a new connection on the 5-tuple) must take its own maximum, not the group's.
        at = np.where(d == run_max, np.arange(n), 0)
        self.dmax_at = np.maximum.accumulate(at)  # (read once per fold: no list)
        self.first_ack = first_ack.tolist()
        self.applied: dict[int, int] = {}  # group -> sorted position up to which runs were folded
        # Python lists for the per-packet lookups (numpy scalar indexing costs ~10x more).
        self.cnt_l = self.cs_cnt.tolist()
        self.gstart_l = gstart.tolist()
        self.gend_l = self.gend.tolist()
        self.gidx = {kdv: g for g, kdv in enumerate(self.gkd.tolist())}
        self.order_l = order_kd.tolist()  # batch index at each sorted position
        # The bulk segments in sorted order: the run in [lo, hi) is bulk_*[cnt_l[lo]:cnt_l[hi]].
        bpos = np.nonzero(b)[0]
        bidx = order_kd[bpos]
        self.bulk_pos = bpos.tolist()
        self.bulk_idx = bidx.tolist()
        self.bulk_seq = tp.seq[bidx].tolist()
        self.bulk_ts = tp.ts_ns[bidx].tolist()
        self.bulk_win = tp.win[bidx].tolist()
        self.bulk_frame = tp.frame_no[bidx].tolist()
        self.bulk_off = tp.payload_off[bidx].tolist()
        self.bulk_len = tp.payload_len[bidx].tolist()
        self.len_l = self.cs_len.tolist()
        self.ip_l = self.cs_ip.tolist()

    def where(self, idx: np.ndarray) -> tuple[list[int], list[int], list[int]]:
        """For each of the packets ``idx`` (the interesting ones): its sorted position, its
        group, and where it would sit in the other direction's group of its flow."""
        p = self.pos[idx]
        n = self.pos.shape[0]
        composite = self.kd_sorted * n + self.order_kd  # sorted: by (flow, direction), then index
        other = np.searchsorted(composite, (self.kd_sorted[p] ^ 1) * n + idx)
        return p.tolist(), self.group[p].tolist(), other.tolist()

    def flush_before(
        self,
        p: int,
        g: int,
        p2: int,
        k: int,
        ais: bool,
        both: bool,
        conn: Connection,
    ) -> None:
        """Fold the runs of flow ``k`` that precede the packet at sorted position ``p`` in group
        ``g``: its direction's, or both directions' (``p2``: its place in the other group)."""
        self._flush(g, p, conn, ais)
        self.applied[g] = p + 1
        if both:
            g2 = self.gidx.get(k * 2 + (0 if ais else 1), -1)
            if g2 >= 0:
                self._flush(g2, p2, conn, not ais)

    def flush_ordered(self, k: int, lim: int, conn: Connection) -> None:
        """Fold the runs of flow ``k`` before batch index ``lim``, both directions, in capture
        order: a parser reads the flow and must see its two directions' bytes as they came. A
        direction's run is cut only where the other direction has a bulk segment."""
        ol = self.order_l
        cl = self.cnt_l
        bidx = self.bulk_idx
        ga = self.gidx.get(k * 2 + 1, -1)
        gb = self.gidx.get(k * 2, -1)
        if ga >= 0:
            pa = self.applied.get(ga, self.gstart_l[ga])
            ea = bisect_left(ol, lim, pa, self.gend_l[ga])
        else:
            pa = ea = 0
        if gb >= 0:
            pb = self.applied.get(gb, self.gstart_l[gb])
            eb = bisect_left(ol, lim, pb, self.gend_l[gb])
        else:
            pb = eb = 0
        while pa < ea and pb < eb:
            na, nb = cl[pa], cl[pb]
            if na == cl[ea] or nb == cl[eb]:
                break  # one side has no bulk segment left before lim: no more cuts
            ia, ib = bidx[na], bidx[nb]
            if ia < ib:
                cut = bisect_left(ol, ib, pa, ea)
                self._flush(ga, cut, conn, True)
                pa = cut
            else:
                cut = bisect_left(ol, ia, pb, eb)
                self._flush(gb, cut, conn, False)
                pb = cut
        if pa < ea:
            self._flush(ga, ea, conn, True)
        if pb < eb:
            self._flush(gb, eb, conn, False)

    def flush_rest(self, k: int, conn: Connection) -> None:
        for ais in (True, False):
            g = self.gidx.get(k * 2 + int(ais), -1)
            if g >= 0:
                self._flush(g, self.gend_l[g], conn, ais)

    def _flush(self, g: int, hi: int, conn: Connection, ais: bool) -> None:
        lo = self.applied.get(g, self.gstart_l[g])
        if hi > lo:
            self.applied[g] = hi
            if self.cnt_l[hi] > self.cnt_l[lo]:
                self._fold(lo, hi, conn, ais)

    def _fold(self, lo: int, hi: int, conn: Connection, ais: bool) -> None:
        """Fold the bulk segments at sorted positions [lo, hi) into ``conn``.

        Segments go one by one while the stream is not where they start (a parser still reads
        the stream, a hole is being filled, the endpoint is silent so far); the rest of the
        run, once it continues the stream or lies wholly beyond a hole, is folded in at once.
        """
        tp = self.tp
        b0, b1 = self.cnt_l[lo], self.cnt_l[hi]
        seqs = self.bulk_seq
        is_orig = ais == conn.orig_is_a
        ep, peer = (conn.orig, conn.resp) if is_orig else (conn.resp, conn.orig)
        st = ep.stream
        j = b0
        future = False
        delivered = False
        run_bytes: bytes | None = None
        while j < b1:
            # (While Zeek's last_seq is past a segment's start, a pure ACK having carried a
            # sequence number beyond data the capture missed, the segment may count as a
            # retransmission, 'T' on its own frame: one by one until the run passes last_seq.)
            if (
                st.fin_rel is None
                and st.started
                and ep.state != INACTIVE
                and ((seqs[j] - ep.z_start - ep.z_last) & 0xFFFFFFFF)
                < 0x80000000  # (z_rel >= z_last: signed_delta32(seq - z_start, z_last) >= 0, inline)
            ):
                start = st.rel(seqs[j])
                if start == st.next_rel and not st.pending_bytes:
                    if st.sink is not None:
                        # A parser reads this direction: hand it the run's bytes segment by
                        # segment, without the per-packet bookkeeping.
                        st.deliver_run(
                            self.mv, self.bulk_off[j:b1], self.bulk_len[j:b1], self.bulk_ts[j:b1]
                        )
                        delivered = True
                    break
                if start > st.next_rel and start >= st.max_end and not st.buffered_beyond(start):
                    # (max_end restarts with the sequence space when a SYN re-anchors it; bytes
                    # buffered before may lie beyond: then the segments go one by one.)
                    future = True  # the rest lies beyond a hole: buffered as one range
                    if st.sink is not None:
                        mv = self.mv
                        run_bytes = b"".join(
                            [
                                mv[o : o + n]
                                for o, n in zip(
                                    self.bulk_off[j:b1], self.bulk_len[j:b1], strict=True
                                )
                            ]
                        )
                    break
            slow_segment(conn, is_orig, self.bulk_idx[j], tp, self.mv, self.fb)
            j += 1
        if j == b1:
            return
        p0 = self.bulk_pos[j]
        last = b1 - 1
        t_last = self.bulk_ts[last]
        conn.bulk_data(
            is_orig,
            count=b1 - j,
            nbytes=self.len_l[hi] - self.len_l[p0],
            ip_bytes=self.ip_l[hi] - self.ip_l[p0],
            last_ts=t_last,
            last_win=self.bulk_win[last],
            first_frame=self.fb + self.bulk_frame[j],
            first_seq=seqs[j],
            future=future,
            ts_ns=t_last,
            delivered=delivered,
            payload=run_bytes,
        )
        ps = peer.stream
        if peer.state == INACTIVE:
            # Zeek's init_peer at every ACK while the peer is silent (as Connection.packet):
            # the last segment's ACK stands.
            top = tp.ack.item(self.bulk_idx[last]) - 1
            peer.z_init(top, 0)
            if not ps.started or stream_empty(ps):
                peer.reanchor(top)
        elif ps.started:
            if self.dmax_at.item(hi - 1) >= p0:
                a = ps.rel((self.first_ack[hi - 1] + self.dmax[hi - 1]) & 0xFFFFFFFF)
            else:
                a = -(1 << 62)
                for x in tp.ack[self.bulk_idx[j:b1]].tolist():
                    a = max(a, ps.rel(x))
            if a > peer.max_ack_rel:
                peer.max_ack_rel = a
            if a > ps.next_rel and a > peer.ack_front:
                # The run acknowledges bytes the peer's stream does not hold (yet): a content
                # gap belongs to the segment whose ACK revealed it, as in Connection.packet.
                # (Often the peer's data is only folded later in the batch: apply_acks decides.)
                fb = self.fb
                frames = [fb + f for f in self.bulk_frame[j:b1]]
                peer.ack_event(
                    frames[0], a, frames, [ps.rel(x) for x in tp.ack[self.bulk_idx[j:b1]].tolist()]
                )


def slow_segment(
    conn: Connection, is_orig: bool, i: int, tp: TcpPackets, mv: memoryview, frame_base: int
) -> None:
    """Feed segment ``i`` of the batch (one of a bulk run) through the per-packet path."""
    st = (conn.orig if is_orig else conn.resp).stream
    # (one field at a time: a generator here would be a closure, which Cython's cpdef lacks)
    plen = tp.payload_len.item(i)
    poff = tp.payload_off.item(i)
    pcap = tp.payload_cap.item(i)
    payload = mv[poff : poff + pcap] if st.sink is not None else None
    conn.packet(
        is_orig,
        tp.flags.item(i),
        tp.seq.item(i),
        tp.ack.item(i),
        tp.win.item(i),
        plen,
        payload,
        None,
        tp.ip_len.item(i),
        tp.ts_ns.item(i),
        frame_base + tp.frame_no.item(i),
        caplen=pcap,
    )
