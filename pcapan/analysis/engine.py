"""The incremental analyzer: frame batches in, connection and anomaly records out.

Per batch: the decoder yields column arrays of TCP segments; packets are grouped by flow with
numpy; only packets that can change a connection's state (SYN/FIN/RST, payload, zero window,
the first packet of each direction in a batch) go through Python one by one. Pure ACKs, the
bulk of any bulk transfer, are folded into their connection per batch with vectorised sums.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import numpy as np

from pcapan.analysis import packet_loop
from pcapan.analysis.bulk_runs import BulkRuns
from pcapan.analysis.dispatch import Dispatch, Openers, Probe
from pcapan.analysis.http import BodyHook, HttpContext
from pcapan.analysis.http2 import H2Context
from pcapan.analysis.tls import TlsContext
from pcapan.config import (
    MAX_HALF_OPEN_FLOWS,
    SWEEP_INTERVAL_S,
    TCP_CLOSE_LINGER_S,
    TCP_IDLE_TIMEOUT_S,
)
from pcapan.decode.packets import TCP_ACK, TCP_FIN, TCP_RST, TCP_SYN, Decoder, TcpPackets
from pcapan.flow import rtt
from pcapan.flow.community_id import community_id
from pcapan.flow.conn import (
    CLOSE_END,
    CLOSE_IDLE,
    INACTIVE,
    Connection,
    ntop,
)
from pcapan.flow.halfopen import (
    CLOSE_EVICTED,
    FlowKeyTuple,
    HalfOpen,
    HalfOpenTable,
    extra_counts,
    replay_packets,
)
from pcapan.flow.reassembly import StreamSink
from pcapan.flow.seqspace import segmented_cummax, signed_delta
from pcapan.flow.table import FlowTable
from pcapan.io.batch import FrameBatch, ReadIssue
from pcapan.model import AnomalyRecord, ConnColumns, ConnRecord
from pcapan.proto.detect import HTTP, HTTP2, TLS

_CTRL = TCP_SYN | TCP_FIN | TCP_RST
_TP_COLUMNS = tuple(f for f in TcpPackets.__dataclass_fields__ if f != "data")
# Half-open flows made connections at once (bounds the transient memory of a mass eviction).
_REPLAY_CHUNK = 4096
# Acks of one direction more than this apart (a corrupt field, or a peer restarted without a
# SYN in the capture) go one by one: Zeek takes each ack relative to the one before it
# (update_ack_seq, so jumps under 2**31 add up), a folded run takes its highest; the two agree
# while every ack lies within a quarter of the sequence space of the first.
_ACK_JUMP_LIMIT = 1 << 30


def _mix(x: np.ndarray) -> np.ndarray:
    """splitmix64 finaliser: spreads key bits so that np.unique on the hash groups flows."""
    x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


def _flow_hash(
    a_hi: np.ndarray, a_lo: np.ndarray, b_hi: np.ndarray, b_lo: np.ndarray, ports: np.ndarray
) -> np.ndarray:
    """64-bit hash of the canonical flow key (groups are verified against the key itself)."""
    with np.errstate(over="ignore"):
        return (
            _mix(a_hi)
            ^ _mix(a_lo + np.uint64(0x9E3779B97F4A7C15))
            ^ _mix(b_hi * np.uint64(3))
            ^ _mix(b_lo * np.uint64(7))
            ^ _mix(ports + np.uint64(11))
        )


class _TcpTransport:
    """A connection's two TCP streams, as a transport for content dispatch."""

    __slots__ = ("conn",)

    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def set_sink(self, is_orig: bool, sink: StreamSink | None) -> None:
        self.conn.set_sink(is_orig, sink)

    def position(self, is_orig: bool) -> int:
        st = (self.conn.orig if is_orig else self.conn.resp).stream
        return st.next_rel - 1 if st.started else 0  # stream bytes start at relative 1

    def service(self, name: str) -> None:
        c = self.conn
        if not c.service:
            c.service = name
        elif name not in c.service.split(","):
            c.service += "," + name


class Analyzer:
    """Feed frame batches, then :meth:`finish` for the records.

    ``shard=(i, n)`` keeps only flows whose key hash is ``i`` modulo ``n``: run ``n`` analyzers
    over the same capture (on other cores or machines) and concatenate their records to get
    exactly the records of one analyzer over everything.
    """

    def __init__(
        self,
        *,
        idle_timeout_s: float = TCP_IDLE_TIMEOUT_S,
        shard: tuple[int, int] | None = None,
        on_connection: Callable[[ConnRecord], None] | None = None,
        on_http_body: BodyHook | None = None,
        max_half_open: int = MAX_HALF_OPEN_FLOWS,
    ) -> None:
        self.decoder = Decoder()
        self.idle_ns = int(idle_timeout_s * 1e9)
        self.linger_ns = int(TCP_CLOSE_LINGER_S * 1e9)
        self.sweep_ns = int(SWEEP_INTERVAL_S * 1e9)
        # Open connections by flow key: orientation, uids, 5-tuple reuse, timeouts.
        self.table = FlowTable(self.idle_ns, self.linger_ns)
        # Flows that have only seen SYNs, kept compact and bounded (pcapan.flow.halfopen).
        self.half_open = HalfOpenTable(max_half_open)
        self.connections = ConnColumns()  # finished connections' rows, by column
        self.anomalies: list[AnomalyRecord] = []
        self.shard = shard
        self.on_connection = on_connection
        self.http_ctx = HttpContext(on_http_body)
        self.tls_ctx = TlsContext()
        self.rtt_samples = rtt.RttSamples()
        self.rtt_state = rtt.RttState()
        self._rtt_done: list[int] = []  # finalised connections whose carried RTT state can go
        self.h2_ctx = H2Context()
        self.openers: Openers = {
            HTTP: self.http_ctx.open,
            TLS: self.tls_ctx.open,
            HTTP2: self.h2_ctx.open,
        }
        self.http_ctx.tunnel_openers[TLS] = self.tls_ctx.open_in_tunnel
        # What decrypted TLS carries (used only with a key log: tls_ctx.keylog, issue 17)
        self.tls_ctx.inner_openers = {HTTP: self.http_ctx.open_in_tls, HTTP2: self.h2_ctx.open}
        self.http_ctx.tunnel_openers[HTTP2] = self.h2_ctx.open
        self.source = ""
        self._frame_base = 0
        self._last_sweep = 0
        # Fold in-order data runs per batch (False: every data segment one by one; the two must
        # give identical tables, which a test checks).
        self.fold_bulk = True
        self.packets = 0
        # Connection (creation number) -> ids of the tunnels its packets came in: only for
        # connections seen in a tunnel, so the common case costs nothing.
        self._tunnels_of: dict[int, set[int]] = {}
        self.first_ns = 0
        self.last_ns = 0

    @property
    def flows(self) -> dict[FlowKeyTuple, Connection]:
        """The open connections by flow key (the flow table's)."""
        return self.table.open

    # -- input -------------------------------------------------------------------------------
    def start_source(self, name: str) -> None:
        """Frames that follow come from ``name`` (frame numbers restart at 1 in each file)."""
        if self.source:
            self._frame_base += 1 << 40
        self.source = name
        self.http_ctx.source = name
        self.tls_ctx.source = name

    def feed(self, batch: FrameBatch) -> None:
        self.table.clock(batch.frame_no, batch.ts_ns)
        n_before = len(self.decoder.anomalies)
        tp = self.decoder.decode(batch)
        self.packets += len(batch)
        if len(batch):
            if not self.first_ns:
                self.first_ns = int(batch.ts_ns[0])
            self.last_ns = max(self.last_ns, int(batch.ts_ns[-1]))
        for a in self.decoder.anomalies[n_before:]:
            self.anomalies.append(
                AnomalyRecord(a.ts_ns, "", a.frame_no, a.kind, a.detail, self.source)
            )
        del self.decoder.anomalies[n_before:]
        if len(tp):
            self._tcp(tp)
        if self.last_ns - self._last_sweep >= self.sweep_ns:
            self._sweep(self.last_ns)
        self._eviction_burst(self.half_open.end_of_batch())

    def add_read_issues(self, issues: Iterable[ReadIssue]) -> None:
        for issue in issues:
            self.anomalies.append(
                AnomalyRecord(
                    self.last_ns, "", issue.frame_no, issue.kind, issue.detail, self.source
                )
            )

    # -- the batch ---------------------------------------------------------------------------
    def _tcp(self, tp: TcpPackets, half_open: bool = True) -> None:
        a_is_src = (tp.src_hi < tp.dst_hi) | (
            (tp.src_hi == tp.dst_hi)
            & ((tp.src_lo < tp.dst_lo) | ((tp.src_lo == tp.dst_lo) & (tp.sport <= tp.dport)))
        )
        a_hi = np.where(a_is_src, tp.src_hi, tp.dst_hi)
        a_lo = np.where(a_is_src, tp.src_lo, tp.dst_lo)
        b_hi = np.where(a_is_src, tp.dst_hi, tp.src_hi)
        b_lo = np.where(a_is_src, tp.dst_lo, tp.src_lo)
        a_p = np.where(a_is_src, tp.sport, tp.dport)
        b_p = np.where(a_is_src, tp.dport, tp.sport)
        ports = ((a_p << 16) | b_p).astype(np.uint64)
        h = _flow_hash(a_hi, a_lo, b_hi, b_lo, ports)
        if self.shard is not None:
            i, n = self.shard
            keep = (h % np.uint64(n)) == np.uint64(i)
            if not keep.all():
                tp = TcpPackets(
                    tp.data,
                    *[getattr(tp, f)[keep] for f in TcpPackets.__dataclass_fields__ if f != "data"],
                )
                a_is_src, a_hi, a_lo, b_hi, b_lo, a_p, b_p, h = (
                    x[keep] for x in (a_is_src, a_hi, a_lo, b_hi, b_lo, a_p, b_p, h)
                )
                if len(tp) == 0:
                    return
        # One stable sort groups packets by flow, in capture order within each flow.
        order = np.argsort(h, kind="stable")
        hs = h[order]
        new_flow = np.ones(hs.shape[0], dtype=bool)
        new_flow[1:] = hs[1:] != hs[:-1]
        inv = np.empty(hs.shape[0], dtype=np.int64)
        inv[order] = np.cumsum(new_flow) - 1
        first = order[new_flow]
        rep = first[inv]
        if not (
            np.array_equal(a_hi[rep], a_hi)
            and np.array_equal(a_lo[rep], a_lo)
            and np.array_equal(b_hi[rep], b_hi)
            and np.array_equal(b_lo[rep], b_lo)
            and np.array_equal(a_p[rep], a_p)
            and np.array_equal(b_p[rep], b_p)
        ):
            # A 64-bit hash collision inside one batch: group by the full key instead.
            full_keys = np.stack(
                [a_hi, a_lo, b_hi, b_lo, a_p.astype(np.uint64), b_p.astype(np.uint64)], axis=1
            )
            _, first, inv = np.unique(full_keys, axis=0, return_index=True, return_inverse=True)
            inv = inv.reshape(-1)
            order = np.argsort(inv, kind="stable")
        n = len(tp)
        flags = tp.flags
        ts = tp.ts_ns
        plen_a = tp.payload_len
        ctrl = (flags & _CTRL) != 0
        # Packets that must go through the per-packet path; data segments may also take it.
        force = ctrl | (tp.win == 0)
        kd = inv * 2 + a_is_src.astype(np.int64)
        order_kd = np.argsort(kd, kind="stable")
        kd_s = kd[order_kd]
        starts_kd = np.ones(n, dtype=bool)
        starts_kd[1:] = kd_s[1:] != kd_s[:-1]
        first_kd = order_kd[starts_kd]  # first packet of each (flow, direction), group order

        # Connections open at the start of the batch, one dict lookup per flow (not per packet).
        flows = self.flows
        keys = list(
            zip(
                a_hi[first].tolist(),
                a_lo[first].tolist(),
                b_hi[first].tolist(),
                b_lo[first].tolist(),
                a_p[first].tolist(),
                b_p[first].tolist(),
                strict=True,
            )
        )
        if half_open:
            # SYN-only flows go to the compact table (the rest of the batch goes on without
            # them); flows it held that this batch continues become connections first.
            ho = self.half_open
            ho.next_n = self.table.next_n
            keep, promote = ho.absorb(
                tp, keys, inv, first, a_is_src, self._frame_base, flows, self.idle_ns
            )
            self.table.next_n = ho.next_n
            if promote:
                self._replay(promote, "")
            if keep is not None:
                if ho.cap and len(ho) > ho.cap:
                    gone = ho.oldest(len(ho) - ho.cap)
                    ho.note_evicted(gone)
                    self._replay(gone, CLOSE_EVICTED)
                if keep.any():
                    self._tcp(
                        TcpPackets(tp.data, *[getattr(tp, f)[keep] for f in _TP_COLUMNS]),
                        half_open=False,
                    )
                return
        cur: dict[int, Connection | None] = {}
        conns: list[Connection] = []
        slot_of: dict[int, int] = {}
        slot = np.full(n, -1, dtype=np.int64)
        need = np.zeros(len(keys), dtype=bool)
        idle_first = np.zeros(len(keys), dtype=bool)  # the flow's first packet ends its connection
        idle = self.idle_ns
        for k, (fk, t0) in enumerate(zip(keys, ts[first].tolist(), strict=True)):
            c = flows.get(fk)
            cur[k] = c
            if c is None:
                need[k] = True
                continue
            slot_of[id(c)] = len(conns)
            slot[first[k]] = len(conns)
            conns.append(c)
            # A silent endpoint changes state on its first packet; an idle connection ends.
            if t0 - c.last_ns > idle:
                need[k] = idle_first[k] = True
            elif c.orig.state == INACTIVE or c.resp.state == INACTIVE:
                need[k] = True
        force[first[need]] = True
        # A silent endpoint's first packet changes its state (INACTIVE -> PARTIAL/ESTABLISHED).
        # A flow that starts with a bare SYN is the exception worth knowing: its originator is
        # SYN_SENT from then on and its responder speaks first with a SYN-ACK (control, forced).
        bare_syn = (flags[first] & (TCP_SYN | TCP_ACK | TCP_RST | TCP_FIN)) == TCP_SYN
        fresh = np.array([c is None for c in cur.values()], dtype=bool)  # no connection open yet
        need_kd = need & ~(bare_syn & fresh)
        force[first_kd[need_kd[inv[first_kd]]]] = True

        # A pure ACK whose sequence number is ahead of the data seen so far in its direction
        # (the capture missed data) changes Zeek's last_seq: it must be seen in order. "Seen so
        # far" starts from the connection's state before the batch.
        base_g = tp.seq[first_kd].copy()
        g_known = ~need[inv[first_kd]]
        if g_known.any():
            gk = np.nonzero(g_known)[0]
            jk = first_kd[gk]
            vals = []
            for k, ais in zip(inv[jk].tolist(), a_is_src[jk].tolist(), strict=True):
                c = cur[k]
                ep = c.orig if ais == c.orig_is_a else c.resp  # type: ignore[union-attr]
                vals.append(ep.z_start + ep.z_last)
            base_g[gk] = np.asarray(vals, dtype=np.int64) & 0xFFFFFFFF
        seg_end = tp.seq + plen_a + ((flags & TCP_SYN) != 0) + ((flags & TCP_FIN) != 0)
        s_end = seg_end[order_kd]
        group_kd = np.cumsum(starts_kd) - 1
        d = signed_delta(s_end, base_g[group_kd])
        run = segmented_cummax(d, group_kd)
        prev = np.empty(n, dtype=np.int64)
        prev[0] = 0
        prev[1:] = run[:-1]
        prev[starts_kd] = 0
        pure = (plen_a[order_kd] == 0) & ((flags[order_kd] & _CTRL) == 0)
        ahead = pure & (d > prev)
        ahead &= ~starts_kd | g_known[group_kd]
        force[order_kd[ahead]] = True
        force |= _wild_acks(tp, order_kd, starts_kd)

        inv_s = inv[order]
        same = inv_s[1:] == inv_s[:-1]
        ctrl_s = ctrl[order]
        late = (ts[order][1:] - ts[order][:-1]) > idle
        force[order[1:][same & late]] = True
        interesting = force | (plen_a > 0)
        # Flows whose bytes a parser reads (or may read: new flows are being probed): the parser
        # must see both directions' bytes in capture order, so their runs are folded in that
        # order (BulkRuns.flush_ordered), before every packet of the flow that goes one by one.
        # So are flows where a new connection may begin within the batch (a SYN, or a packet
        # after an idle gap, ends the one open at the start): its parser starts from nothing,
        # whatever the connection it replaces had come to (TLS past its handshake, not ordered).
        parsed = np.array(
            [
                c is None or _ordered(c.orig.stream.sink) or _ordered(c.resp.stream.sink)
                for c in cur.values()
            ],
            dtype=bool,
        )
        restart = idle_first.copy()
        restart[inv[(flags & (TCP_SYN | TCP_ACK)) == TCP_SYN]] = True
        restart[inv[order[1:][same & late]]] = True
        restart &= ~fresh
        parsed |= restart
        parsed_l = parsed.tolist()
        # Flows with a parser that no longer needs capture order (TLS past its handshake) still
        # fold both directions' runs in capture order: what it records across the directions
        # (TLS application-data exchanges: a client flight, then the server's answer) must
        # come out as packet by packet. (Cheap: runs are cut only where both directions have
        # data; the hole machinery above stays for parsed flows.)
        inorder_l = [
            p
            or (
                c is not None and (c.orig.stream.sink is not None or c.resp.stream.sink is not None)
            )
            for p, c in zip(parsed_l, cur.values(), strict=True)
        ]
        # A parser must hear of a hole when the ACK that reveals it passes, not at the end of
        # the batch: until then the data behind the hole waits in the out-of-order buffer while
        # the other direction goes on (requests pile up unanswered). So in parsed flows, ACKs
        # that may reveal a hole go one by one and are applied at once: those beyond every byte
        # the peer was seen to send, and those beyond a hole's start sent while the hole is open
        # (from the segment that jumped ahead to the one that filled it, or the batch's end).
        any_parsed = bool(parsed.any())
        early = np.zeros(n, dtype=bool)
        if any_parsed:
            reveal = self._revealing_acks(
                tp, order, order_kd, kd, kd_s, starts_kd, inv, a_is_src, base_g, d, parsed
            )
            if reveal is not None:
                early |= reveal
            early |= self._hole_windows(
                tp, order_kd, kd, kd_s, starts_kd, inv, a_is_src, cur, parsed_l, restart.tolist()
            )
            if early.any():
                force |= early  # (data packets among them must not be folded either)
                interesting = force | (plen_a > 0)
        early_l = early.tolist()
        if self.fold_bulk:
            # (In parsed flows both directions fold too: their runs are folded in capture order,
            # cut wherever the other direction's data comes in, see BulkRuns.flush_ordered.)
            bulk = self._bulk_candidates(tp, order, ctrl_s, order_kd, kd_s, force)
        else:
            bulk = np.zeros(n, dtype=bool)
        interesting &= ~bulk
        data = tp.data
        mv = memoryview(data) if not isinstance(data, memoryview) else data
        runs = (
            BulkRuns(tp, order_kd, kd_s, starts_kd, bulk, mv, self._frame_base)
            if bulk.any()
            else None
        )

        # Python path, packet by packet, in capture order.
        idx = np.nonzero(interesting)[0]
        cols = [
            x[idx].tolist()
            for x in (
                inv,
                a_is_src,
                flags,
                tp.seq,
                tp.ack,
                tp.win,
                plen_a,
                tp.payload_cap,
                tp.payload_off,
                tp.tcp_off,
                tp.thl,
                tp.ip_len,
                ts,
                tp.frame_no,
            )
        ]
        fb = self._frame_base
        if runs is not None:
            rpos, rgrp, rpos2 = runs.where(idx)
        else:
            rpos = rgrp = rpos2 = [0] * idx.shape[0]
        packet_loop.run(
            self,
            tp,
            idx,
            cols,
            rpos,
            rgrp,
            rpos2,
            cur,
            runs,
            inorder_l,
            early_l,
            keys,
            slot_of,
            conns,
            slot,
            mv,
        )
        if runs is not None:
            for k2, conn2 in cur.items():
                if conn2 is not None:
                    if inorder_l[k2]:
                        runs.flush_ordered(k2, n, conn2)
                    else:
                        runs.flush_rest(k2, conn2)
        # Every other packet belongs to the connection of the last interesting packet of its flow.
        slot_s = slot[order]
        pos = np.where(slot_s >= 0, np.arange(n), 0)
        np.maximum.accumulate(pos, out=pos)
        filled = np.empty(n, dtype=np.int64)
        filled[order] = slot_s[pos]
        self._rtt(tp, filled, a_is_src, conns)
        if tp.tunnel.any():
            tun = np.nonzero(tp.tunnel)[0]
            self._note_tunnels(conns, filled[tun], tp.tunnel[tun])
        pa = np.nonzero(~interesting & ~bulk)[0]
        if pa.shape[0]:
            self._pure_acks(
                conns,
                filled[pa],
                a_is_src[pa],
                tp.ip_len[pa],
                ts[pa],
                tp.ack[pa],
                tp.frame_no[pa],
                fb,
            )
        end_ts = int(ts[-1])
        for conn in conns:
            conn.apply_acks(end_ts)
        for conn, reason in self.table.take_ended():
            self._finalise(conn, reason)

    def _rtt(
        self, tp: TcpPackets, slot: np.ndarray, a_is_src: np.ndarray, conns: list[Connection]
    ) -> None:
        """Round-trip samples, duplicate ACKs and zero windows of the batch (pcapan.flow.rtt)."""
        if not conns:
            return
        st = self.rtt_state
        if self._rtt_done:
            # (A connection finalised during this batch, its 5-tuple reused, still has packets
            # in it: its slot is freed after the next batch.)
            present = {c.rtt_id for c in conns}
            gone = [i for i in self._rtt_done if i not in present]
            self._rtt_done = [i for i in self._rtt_done if i in present]
            if gone:
                st.release(np.array(gone, dtype=np.int64))
        fresh = [c for c in conns if c.rtt_id < 0]
        if fresh:
            for c, i in zip(fresh, st.alloc(len(fresh)), strict=True):
                c.rtt_id = i
        gid = np.array([c.rtt_id for c in conns], dtype=np.int64)
        sid = np.zeros(int(gid.max()) + 1, dtype=np.int32)  # slot -> index in the samples
        sid[gid] = self.rtt_samples.ids([c.uid for c in conns])
        orig_is_a = np.array([c.orig_is_a for c in conns], dtype=bool)
        is_orig = a_is_src == orig_is_a[slot]
        ep = gid[slot] * 2 + (~is_orig).astype(np.int64)
        data = np.frombuffer(tp.data, dtype=np.uint8)
        ts_opt = rtt.timestamps(data, tp.tcp_off, tp.thl, tp.opt_cap)
        rtt.batch(
            self.rtt_samples,
            st,
            sid,
            ep,
            tp.seq,
            tp.ack,
            tp.flags,
            tp.win,
            tp.payload_len,
            tp.ts_ns,
            ts_opt,
        )

    @staticmethod
    def _hole_windows(
        tp: TcpPackets,
        order_kd: np.ndarray,
        kd: np.ndarray,
        kd_s: np.ndarray,
        starts_kd: np.ndarray,
        inv: np.ndarray,
        a_is_src: np.ndarray,
        cur: dict[int, Connection | None],
        parsed_l: list[bool],
        restart_l: list[bool],
    ) -> np.ndarray:
        """ACK-carrying packets of parsed flows sent while their peer's data has a hole open.

        Per (flow, direction), in capture order: a data segment starting beyond every byte
        seen so far opens a hole (so does data that does not continue where the stream stood
        at the start of the batch, or bytes already waiting out of order); the first later
        segment that starts at or before the hole closes it. Packets of the other direction in
        between are marked. In flows where a new connection may begin (``restart_l``) the
        stream continues from the batch's SYN, as in a new flow: measured from the stream of
        the connection it replaces (another ISN), every data segment looked like a hole.
        """
        n = len(tp)
        out = np.zeros(n, dtype=bool)
        plen = tp.payload_len
        has_d = plen[order_kd] > 0
        ds = order_kd[has_d]
        if ds.shape[0] == 0:
            return out
        kd_d = kd_s[has_d]
        gfirst = np.concatenate([[True], kd_d[1:] != kd_d[:-1]])
        gstart = np.nonzero(gfirst)[0]
        gend = np.append(gstart[1:], ds.shape[0])
        gkd = kd_d[gstart]
        seqs = tp.seq[ds]
        first_seq = seqs[gstart]
        syn_i = np.nonzero((tp.flags & TCP_SYN) != 0)[0]
        syn_seq = dict(zip(kd[syn_i].tolist(), tp.seq[syn_i].tolist(), strict=True))
        syn_idx = dict(zip(kd[syn_i].tolist(), syn_i.tolist(), strict=True))
        # Where each (flow, direction)'s data should continue, in sequence space, and whether a
        # hole is open already at the start of the batch (index where its window opens, or -1).
        anchors: list[int] = []
        opens: list[int] = []
        keep: list[bool] = []
        for kdv, s_first, i_first in zip(
            gkd.tolist(), first_seq.tolist(), ds[gstart].tolist(), strict=True
        ):
            k = kdv >> 1
            c = None if restart_l[k] else cur[k]  # (a new connection's stream starts at its SYN)
            if not parsed_l[k]:
                anchors.append(s_first)
                opens.append(-1)
                keep.append(False)
                continue
            if c is None:
                s0 = syn_seq.get(kdv)
                anchor = (s0 + 1) % (1 << 32) if s0 is not None else s_first
                anchors.append(anchor)
                opens.append(syn_idx.get(kdv, i_first) if s0 is None or s_first != anchor else -1)
                keep.append(True)
                continue
            st = (c.orig if bool(kdv & 1) == c.orig_is_a else c.resp).stream
            if not st.started:
                anchors.append(s_first)
                opens.append(-1)
                keep.append(False)
                continue
            anchor = st.seq_of(st.next_rel)
            anchors.append(anchor)
            opens.append(0 if (st.pending_bytes or s_first != anchor) else -1)
            keep.append(True)
        group = np.cumsum(gfirst) - 1
        rs = signed_delta(seqs, np.asarray(anchors, dtype=np.int64)[group])
        re = np.maximum(rs + plen[ds], 0)
        reach = segmented_cummax(re, group)
        prev_reach = np.empty_like(reach)
        prev_reach[0] = 0
        prev_reach[1:] = reach[:-1]
        prev_reach[gstart] = 0
        jump = rs > prev_reach
        opens_a = np.asarray(opens, dtype=np.int64)
        jump[gstart] = opens_a >= 0
        jump &= np.asarray(keep, dtype=bool)[group]
        # (kd of the data, first index, end index, sequence number where the hole starts)
        windows: list[tuple[int, int, int, int]] = []
        gend_l = gend.tolist()
        for q in np.nonzero(jump)[0].tolist():
            g = int(group[q])
            hole = int(prev_reach[q])
            hi = gend_l[g]
            fill = np.nonzero(rs[q + 1 : hi] <= hole)[0]
            start = opens[g] if (gfirst[q] and opens[g] >= 0) else int(ds[q])
            stop = int(ds[q + 1 + int(fill[0])]) if fill.shape[0] else n
            windows.append((int(kd_d[q]), start, stop, (anchors[g] + hole) % (1 << 32)))
        if not windows:
            return out
        acking = (tp.flags & TCP_ACK) != 0
        for kdv, start, stop, hole_seq in windows:
            sl = slice(start, stop)
            # Only an ACK beyond the hole's start can reveal it: duplicate ACKs (the receiver
            # is missing the bytes too) reveal nothing and stay folded.
            beyond = signed_delta(tp.ack[sl], hole_seq) > 0
            out[sl] |= acking[sl] & (kd[sl] == (kdv ^ 1)) & beyond
        return out

    @staticmethod
    def _revealing_acks(
        tp: TcpPackets,
        order: np.ndarray,
        order_kd: np.ndarray,
        kd: np.ndarray,
        kd_s: np.ndarray,
        starts_kd: np.ndarray,
        inv: np.ndarray,
        a_is_src: np.ndarray,
        base_g: np.ndarray,
        d: np.ndarray,
        parsed: np.ndarray,
    ) -> np.ndarray | None:
        """Packets of parsed flows whose ACK is beyond every byte their peer sent so far.

        ``d`` holds each packet's sequence end relative to its direction's base (``base_g``),
        in (flow, direction) order; the running maximum of those ends, per flow and direction in
        capture order, is what the peer has been seen to send.
        """
        n = len(tp)
        flags = tp.flags
        acking = ((flags & (TCP_SYN | TCP_RST)) == 0) & ((flags & TCP_ACK) != 0) & parsed[inv]
        if not acking.any():
            return None
        gvals = kd_s[starts_kd]  # the (flow, direction) of each group, sorted
        g_other = np.searchsorted(gvals, kd ^ 1)
        has_other = (g_other < gvals.shape[0]) & (
            gvals[np.minimum(g_other, gvals.shape[0] - 1)] == (kd ^ 1)
        )
        cand = acking & has_other
        if not cand.any():
            return None
        d_pkt = np.empty(n, dtype=np.int64)
        d_pkt[order_kd] = d
        adv = (tp.payload_len > 0) | ((flags & (TCP_SYN | TCP_FIN)) != 0)
        inv_o = inv[order]
        seen: dict[bool, np.ndarray] = {}
        for side in (False, True):
            vals = np.where(adv[order] & (a_is_src[order] == side), d_pkt[order], -(1 << 35))
            seen[side] = np.maximum(segmented_cummax(vals, inv_o), 0)
        run = np.empty(n, dtype=np.int64)
        other_side = ~a_is_src[order]
        run_o = np.where(other_side, seen[True], seen[False])
        run[order] = run_o
        gi = np.minimum(g_other, gvals.shape[0] - 1)
        dack = signed_delta(tp.ack, base_g[gi])
        return cand & (dack > run)

    def _bulk_candidates(
        self,
        tp: TcpPackets,
        order: np.ndarray,
        ctrl_s: np.ndarray,
        order_kd: np.ndarray,
        kd_s: np.ndarray,
        forced: np.ndarray,
    ) -> np.ndarray:
        """Data segments that can be folded in without looking at them one by one.

        A segment qualifies when it carries data with ACK and no SYN/FIN/RST, a non-zero window,
        all its bytes captured, and either is the first data of its direction in the batch or
        continues exactly where the previous one ended with no SYN/FIN/RST on the connection in
        between. Whether the stream really stands where a run starts is checked when the run is
        folded in (``BulkRuns``); if not, the segments take the normal path.
        """
        n = len(tp)
        flags = tp.flags
        plen = tp.payload_len
        # A segment cut by the snap length is not data Zeek (or we) can count as delivered. A
        # one-byte segment may be a zero-window probe (counted against the peer's window as the
        # capture had it at that packet) or a keep-alive.
        cand = (
            (plen > 1)
            & ((flags & (_CTRL | TCP_ACK)) == TCP_ACK)
            & (tp.win != 0)
            & (tp.payload_cap >= plen)
            & ~forced
        )
        older = self.table.older_than_before(tp.frame_no, tp.ts_ns)
        if older is not None:
            # Time went back in this batch: a segment older than a frame before it goes one by
            # one (a run takes its last segment's time as the latest, its first as the earliest).
            cand &= ~older
        # running count of control packets per flow key, in time order
        cc_sorted = np.cumsum(ctrl_s)
        cc = np.empty(n, dtype=np.int64)
        cc[order] = cc_sorted
        has_data = plen[order_kd] > 0
        data_sorted = order_kd[has_data]
        bulk = np.zeros(n, dtype=bool)
        if data_sorted.shape[0] == 0:
            return bulk
        kd_d = kd_s[has_data]
        first_in_group = np.ones(data_sorted.shape[0], dtype=bool)
        first_in_group[1:] = kd_d[1:] != kd_d[:-1]
        chained = np.zeros(data_sorted.shape[0], dtype=bool)
        prev, cur = data_sorted[:-1], data_sorted[1:]
        chained[1:] = (
            ~first_in_group[1:]
            & (tp.seq[cur] == (tp.seq[prev] + plen[prev]) % (1 << 32))
            & (cc[cur] == cc[prev])
            & ((flags[prev] & _CTRL) == 0)
        )
        ok = (first_in_group | chained) & cand[data_sorted]
        bulk[data_sorted[ok]] = True
        return bulk

    def _pure_acks(self, conns, slots, ais, ip_len, ts, ack, fno, fb) -> None:  # noqa: ANN001
        orig_is_a = np.array([c.orig_is_a for c in conns], dtype=bool)
        is_orig = ais == orig_is_a[slots]
        g = slots * 2 + is_orig.astype(np.int64)
        # One stable sort groups the ACKs by (connection, direction), in capture order within a
        # group; sums and maxima are then reduceat over the group starts (ufunc.at is slow).
        by_group = np.argsort(g, kind="stable")
        gs = g[by_group]
        starts = np.ones(gs.shape[0], dtype=bool)
        starts[1:] = gs[1:] != gs[:-1]
        gstart = np.nonzero(starts)[0]
        ug = gs[gstart]
        ginv = np.empty(g.shape[0], dtype=np.int64)
        ginv[by_group] = np.cumsum(starts) - 1
        gfirst = by_group[gstart]
        bounds_a = np.append(gstart, gs.shape[0])
        count = np.diff(bounds_a)
        nbytes = np.add.reduceat(ip_len[by_group], gstart)
        last = np.maximum.reduceat(ts[by_group], gstart)
        # Relative ack per group: reference = the acknowledged peer stream's 32/64-bit anchor.
        refs = []
        for gv in ug.tolist():
            c = conns[gv >> 1]
            peer = c.resp if gv & 1 else c.orig
            st = peer.stream
            refs.append((*st.reference(), st.started))
        ref_seq = np.array([r[0] for r in refs], dtype=np.int64)
        ref_rel = np.array([r[1] for r in refs], dtype=np.int64)
        rel = ref_rel[ginv] + signed_delta(ack, ref_seq[ginv])
        rel_g = rel[by_group]
        mx = np.maximum.reduceat(rel_g, gstart)
        # Per group, its ACKs in capture order (frame, relative ack): a content gap is pinned on
        # the ACK that revealed it, not on the first of the group.
        bounds = bounds_a.tolist()
        frames_g = fno[by_group] + fb
        cols = zip(
            ug.tolist(),
            count.tolist(),
            nbytes.tolist(),
            ts[gfirst].tolist(),
            last.tolist(),
            mx.tolist(),
            fno[gfirst].tolist(),
            refs,
            strict=True,
        )
        for j, (gv, cnt, nb, t0, t1, top, f0, ref) in enumerate(cols):
            lo, hi = bounds[j], bounds[j + 1]
            conns[gv >> 1].pure_acks(
                bool(gv & 1),
                cnt,
                nb,
                t0,
                t1,
                top if ref[2] else 0,
                fb + f0,
                frames=frames_g[lo:hi],
                acks=rel_g[lo:hi],
            )

    def _new_conn(
        self, tp: TcpPackets, i: int, fkey: FlowKeyTuple, ais: bool, fl: int, t: int
    ) -> Connection:
        """A connection whose first packet is packet ``i`` (flow key ``fkey``, canonical order),
        with its content dispatch."""
        conn = self.table.new_connection(tp, i, fkey, ais, fl, t)
        conn.source = self.source
        if tunnel := tp.tunnel.item(i):
            # (Also here: a connection that ends within its first batch is recorded before
            # the batch's tunnels are noted.)
            self._tunnels_of[conn.n] = {tunnel}
        Dispatch(_TcpTransport(conn), self.openers)
        return conn

    # -- half-open flows (pcapan.flow.halfopen) ------------------------------------------------------
    def _replay(self, items: list[tuple[FlowKeyTuple, HalfOpen]], reason: str) -> None:
        """Make these half-open flows connections, through the ordinary per-packet path from
        their kept SYNs; then finalise them with ``reason``, or (``""``) keep them open, with
        their SYNs in the round-trip state, for the batch that continues them."""
        for lo in range(0, len(items), _REPLAY_CHUNK):
            chunk = items[lo : lo + _REPLAY_CHUNK]
            tp = replay_packets(chunk)
            mv = memoryview(tp.data)
            slots: list[int] = []
            conns: list[Connection] = []
            i = 0
            for fk, ho in chunk:
                conn = None
                for j in range(i, i + (1 if ho.last is None else 2)):
                    fl, seq, win, toff, thl, ipl, t, fno = (
                        x.item(j)
                        for x in (
                            tp.flags,
                            tp.seq,
                            tp.win,
                            tp.tcp_off,
                            tp.thl,
                            tp.ip_len,
                            tp.ts_ns,
                            tp.frame_no,
                        )
                    )
                    if conn is None:
                        conn = self._new_conn(tp, j, fk, ho.src_is_a, fl, t)
                        conn.n = ho.n
                    options = mv[toff + 20 : toff + thl] if thl > 20 else None
                    conn.packet(True, fl, seq, 0, win, 0, None, options, ipl, t, fno, caplen=0)
                    slots.append(len(conns))
                    i = j + 1
                assert conn is not None
                pkts, nbytes = extra_counts(ho)
                conn.orig.pkts += pkts
                conn.orig.ip_bytes += nbytes
                conns.append(conn)
            if reason:
                for conn in conns:
                    self._finalise(conn, reason)
            else:
                # (Their SYNs go into the round-trip state: the handshake is timed from them.)
                for conn in conns:
                    self.table.add(conn)
                ais = np.array([ho.src_is_a for _fk, ho in chunk], dtype=bool)
                slot = np.asarray(slots, dtype=np.int64)
                self._rtt(tp, slot, ais[slot], conns)

    def _eviction_burst(self, burst: tuple[int, int, int] | None) -> None:
        if burst is not None:
            count, ts, fno = burst
            self.anomalies.append(
                AnomalyRecord(
                    ts,
                    "",
                    fno & ((1 << 40) - 1),
                    "half_open_evicted",
                    f"{count} half-open flows (SYN only) finalised early, oldest first: more than "
                    f"max_half_open={self.half_open.cap} at once (their rows have evicted set)",
                    self.source,
                )
            )

    # -- finalisation ----------------------------------------------------------------------------
    def _sweep(self, now: int) -> None:
        self._last_sweep = now
        self._replay(self.half_open.idle(now, self.idle_ns), CLOSE_IDLE)
        for c in self.table.expired(now):
            self._finalise(c, CLOSE_IDLE)

    def _finalise(self, conn: Connection, reason: str) -> None:
        self.table.remove(conn)
        # Protocol probes still attached point at their Dispatch and it at them (and at the
        # connection): unlinked once the streams end, the connection is freed at once instead of
        # by the cyclic collector (a SYN scan's flows otherwise pile up between collections).
        probes = [s for ep in (conn.orig, conn.resp) if type(s := ep.stream.sink) is Probe]
        conn.finish(reason, conn.last_ns)
        for p in probes:
            p.owner = None
        self.connections.append(self._record(conn))
        for fno, t, kind, detail in conn.anomalies:
            self.anomalies.append(
                AnomalyRecord(t, conn.uid, fno & ((1 << 40) - 1), kind, detail, self.source)
            )
        for ep, side in ((conn.orig, "orig"), (conn.resp, "resp")):
            st = ep.stream
            if st.conflicts:
                self.anomalies.append(
                    AnomalyRecord(
                        conn.start_ns,
                        conn.uid,
                        0,
                        "conflicting_overlap",
                        f"{st.conflicts} retransmitted segment(s) from {side} differ from the first copy (first copy kept)",
                        self.source,
                    )
                )
            if st.before_start:
                self.anomalies.append(
                    AnomalyRecord(
                        conn.start_ns,
                        conn.uid,
                        0,
                        "seq_before_start",
                        f"{st.before_start} segment(s) from {side} before the initial sequence number",
                        self.source,
                    )
                )
        conn.release()
        if conn.rtt_id >= 0:
            self._rtt_done.append(conn.rtt_id)
        if self.on_connection is not None:
            self.on_connection(self.connections[-1])  # a record made for the callback only

    def _record(self, c: Connection) -> dict[str, Any]:
        """The connection's row, by column name (the one place fields become columns)."""
        k = c.key
        o, r = c.orig, c.resp
        os_, rs = o.stream, r.stream
        dup_o, dup_r, zw_o, zw_r = self.rtt_state.counters(c.rtt_id)
        return {
            "ts_ns": c.start_ns,
            "uid": c.uid,
            "community_id": community_id(6, k.orig_h, k.resp_h, k.orig_p, k.resp_p),
            "orig_h": ntop(k.orig_h),
            "orig_p": k.orig_p,
            "resp_h": ntop(k.resp_h),
            "resp_p": k.resp_p,
            "proto": "tcp",
            "service": c.service,
            "duration_s": (c.last_ns - c.start_ns) / 1e9,
            "orig_bytes": o.size(),
            "resp_bytes": r.size(),
            "missed_bytes": c.missed_bytes,
            "orig_pkts": o.pkts,
            "resp_pkts": r.pkts,
            "orig_ip_bytes": o.ip_bytes,
            "resp_ip_bytes": r.ip_bytes,
            "conn_state": c.conn_state(),
            "history": c.history_str(),
            "orig_retransmits": os_.retransmitted,
            "resp_retransmits": rs.retransmitted,
            "orig_out_of_order": os_.out_of_order,
            "resp_out_of_order": rs.out_of_order,
            "orig_zero_window_probes": o.zero_window_probes,
            "resp_zero_window_probes": r.zero_window_probes,
            "orig_dup_acks": dup_o,
            "resp_dup_acks": dup_r,
            "orig_zero_windows": zw_o,
            "resp_zero_windows": zw_r,
            "orig_keepalives": os_.keepalives,
            "resp_keepalives": rs.keepalives,
            "overlap_conflicts": os_.conflicts + rs.conflicts,
            "close_reason": c.close_reason,
            "ts_close": c.first_close_ns or None,
            "closed_by": c.first_close_by or None,
            "close_flag": c.first_close_flag or None,
            "orig_mss": o.mss,
            "resp_mss": r.mss,
            "orig_wscale": o.wscale,
            "resp_wscale": r.wscale,
            "orig_sack_ok": o.sack_ok,
            "resp_sack_ok": r.sack_ok,
            "orig_ts_ok": o.ts_ok,
            "resp_ts_ok": r.ts_ok,
            "partial": c.partial,
            "flipped": c.flipped,
            "evicted": c.close_reason == CLOSE_EVICTED,
            "ip_version": k.ipver,
            "tunnel_parents": self._tunnel_parents(c),
            "source": c.source,
        }

    def _note_tunnels(self, conns: list[Connection], slots: np.ndarray, tunnel: np.ndarray) -> None:
        """Remember which encapsulations carried each connection's packets: one Python step
        per distinct (connection, tunnel) in the batch, not per packet."""
        for key in np.unique(slots * (1 << 32) + tunnel).tolist():
            s, t = divmod(key, 1 << 32)
            self._tunnels_of.setdefault(conns[s].n, set()).add(t)

    def _tunnel_parents(self, c: Connection) -> str | None:
        """The tunnel_parents column: each encapsulation that carried the connection's packets,
        as those packets went (a mirror session carries both directions one way), distinct,
        sorted, comma-separated (Zeek's set)."""
        seen = self._tunnels_of.pop(c.n, None)
        if not seen:
            return None
        describe = self.decoder.describe_tunnel
        return ",".join(sorted({describe(t) for t in seen}))

    def finish(self) -> None:
        """End of input: finalise every open connection ("end of capture")."""
        self.decoder.flush()
        for a in self.decoder.anomalies:
            self.anomalies.append(
                AnomalyRecord(a.ts_ns, "", a.frame_no, a.kind, a.detail, self.source)
            )
        self.decoder.anomalies.clear()
        self._replay(list(self.half_open.flows.items()), CLOSE_END)
        self.half_open.flows.clear()
        self._eviction_burst(self.half_open.end_of_batch(final=True))
        for c in sorted(self.flows.values(), key=lambda c: c.n):
            self._finalise(c, CLOSE_END)
        self.flows.clear()
        self.tls_ctx.close_all()


def _ordered(sink: StreamSink | None) -> bool:
    """A parser reads this stream and needs the two directions' bytes in capture order.

    A sink may say it no longer does (``StreamSink.ordered`` False): TLS after its handshake
    only counts records per direction, so its flow needs no hole signalled early (its runs
    still fold in capture order, see ``inorder_l`` in ``_tcp``)."""
    return sink is not None and sink.ordered


def _wild_acks(tp: TcpPackets, order_kd: np.ndarray, starts_kd: np.ndarray) -> np.ndarray:
    """Packets of a (flow, direction) whose acks jump by more than :data:`_ACK_JUMP_LIMIT`.

    A direction's acks are compared with its first ack, afresh from each of its SYNs (a new
    connection on the 5-tuple acks a new ISN). Every packet of such a stretch is returned, so
    that all its acks are taken in capture order.
    """
    n = order_kd.shape[0]
    out = np.zeros(n, dtype=bool)
    fl = tp.flags[order_kd]
    acked = np.nonzero((fl & (TCP_ACK | TCP_RST)) == TCP_ACK)[0]
    if acked.shape[0] < 2:
        return out
    sub = np.cumsum(starts_kd | ((fl & TCP_SYN) != 0))
    sa = sub[acked]
    a = tp.ack[order_kd[acked]].astype(np.int64)
    firsts = np.ones(sa.shape[0], dtype=bool)
    firsts[1:] = sa[1:] != sa[:-1]
    ref = np.zeros(int(sub[-1]) + 1, dtype=np.int64)
    ref[sa[firsts]] = a[firsts]
    far = np.abs(signed_delta(a, ref[sa])) > _ACK_JUMP_LIMIT
    if far.any():
        out[order_kd[np.isin(sub, sa[far])]] = True
    return out
