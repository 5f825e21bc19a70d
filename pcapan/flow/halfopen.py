"""Half-open flows: compact state for flows that have only seen their originator's SYN(s).

A SYN scan or flood opens one flow per SYN and nothing answers. A full connection (two
endpoints, two reassemblers, content dispatch, a round-trip slot) costs ~4 KB; most of it is
for a handshake that never comes. So a flow whose packets so far are bare SYNs from one side
with one initial sequence number is kept here instead, as the SYN itself: its TCP options and
the fixed fields of its first and last copy, packed into ``bytes`` (~0.5 KB a flow with its key
and table entry). When any other packet of the flow arrives (a SYN-ACK, a RST, data, a SYN with a new ISN),
or the flow ends, the engine replays the kept SYNs through its ordinary path (as a batch of
their own, before the batch that needs them), so the connection, its row and its round-trip
samples are exactly what they would have been without this table.

The table is used once a batch brings ``HALF_OPEN_MIN_BATCH`` new SYN-only flows (a scan, a
flood), and from then on while it holds any; ordinary traffic's few handshakes cut by a batch's
end take the ordinary path.

The table is bounded like Suricata's flow memcap: past ``max_half_open`` flows the oldest
(first SYN earliest) are finalised early. Their rows still appear (Zeek's ``S0``, flagged
``evicted``); a SYN-ACK that comes after its flow was evicted starts a new flow, as in Suricata
once a flow is gone (a row with history ``^h``, flipped). Zeek keeps every flow, unbounded.
"""

from __future__ import annotations

import struct
from collections.abc import Mapping

import numpy as np

from pcapan.config import HALF_OPEN_MIN_BATCH
from pcapan.decode.packets import TcpPackets
from pcapan.flow.conn import FlowKeyTuple

# One kept SYN: absolute frame number, time, sequence number, flags, window, IP total length,
# TCP header length, captured option bytes, tunnel id (0: none); the options follow.
_SYN = struct.Struct("<QqIHHHBBI")
_SYN_DTYPE = np.dtype(
    [("fno", "<u8"), ("ts", "<i8"), ("seq", "<u4"), ("flags", "<u2"), ("win", "<u2"), ("ip_len", "<u2"),
     ("thl", "u1"), ("opt_cap", "u1"), ("tunnel", "<u4")]
)  # fmt: skip
assert _SYN_DTYPE.itemsize == _SYN.size
# close_reason of a half-open flow finalised early because the table was full.
CLOSE_EVICTED = "evicted"
_BARE = 0x02  # SYN set; ACK, FIN, RST clear
_CTRL_ACK = 0x02 | 0x01 | 0x04 | 0x10


class HalfOpen:
    """One flow that has only seen bare SYNs from one side with one ISN."""

    __slots__ = ("src_is_a", "ipver", "n", "count", "ip_bytes", "last_ns", "first", "last")

    def __init__(
        self, src_is_a: bool, ipver: int, n: int, syn: bytes, ip_len: int, ts_ns: int
    ) -> None:
        self.src_is_a = src_is_a  # the SYN's sender is the canonical key's side a
        self.ipver = ipver
        self.n = n  # creation order (the connection's, once it is one)
        self.count = 1  # SYNs seen
        self.ip_bytes = ip_len  # their IP total lengths, summed
        self.last_ns = ts_ns
        self.first = syn  # the first SYN, packed (see _SYN)
        self.last: bytes | None = None  # the latest retransmission, packed

    @property
    def isn(self) -> int:
        return _SYN.unpack_from(self.first)[2]

    @property
    def start_ns(self) -> int:
        return _SYN.unpack_from(self.first)[1]


class HalfOpenTable:
    """The half-open flows, oldest first (dict order is insertion order), with the eviction count.

    Evictions are reported once per burst: a burst is the evictions of consecutive batches; it
    ends with the first batch that evicts nothing (or the end of the input)."""

    def __init__(self, cap: int) -> None:
        self.cap = cap  # 0: no compact state at all (every flow is a full connection at once)
        self.flows: dict[FlowKeyTuple, HalfOpen] = {}
        self.evicted = 0
        self.burst = 0  # evictions in the current burst
        self.burst_ts = 0  # first SYN time of the first flow evicted in it
        self.burst_frame = 0
        self.burst_evicted_in_batch = False
        self.next_n = 0  # creation number of the next new flow (the engine's counter, lent)

    def __len__(self) -> int:
        return len(self.flows)

    def absorb(
        self,
        tp: TcpPackets,
        keys: list[FlowKeyTuple],
        inv: np.ndarray,
        first: np.ndarray,
        a_is_src: np.ndarray,
        frame_base: int,
        skip: Mapping[FlowKeyTuple, object],
        idle_ns: int,
    ) -> tuple[np.ndarray | None, list[tuple[FlowKeyTuple, HalfOpen]]]:
        """Take the batch's packets of flows that are (still) SYN-only into the table.

        ``keys[k]``, ``first[k]``: flow ``k``'s canonical key and its first packet in the batch;
        ``inv``: each packet's flow; ``skip``: flows that are full connections already. New flows
        are numbered from ``next_n`` on (which moves on). Returns (mask of the packets left to the
        engine, or None when that is all of them; the half-open flows that the batch's other
        packets continue, taken out of the table: the engine makes them connections first)."""
        n = len(tp)
        flags = tp.flags
        rep = first[inv]
        bare = (
            ((flags & _CTRL_ACK) == _BARE)
            & (tp.payload_len == 0)
            & (tp.win != 0)
            & (a_is_src == a_is_src[rep])
            & (tp.seq == tp.seq[rep])
            # (a SYN more than the idle timeout after the flow's first starts a new flow)
            & (tp.ts_ns - tp.ts_ns[rep] <= idle_ns)
        )
        nflows = len(keys)
        syn_only = (
            (np.bincount(inv, weights=~bare, minlength=nflows) == 0)
            if n
            else np.zeros(0, dtype=bool)
        )
        table = self.flows
        promote: list[tuple[FlowKeyTuple, HalfOpen]] = []
        if not table and int(np.count_nonzero(syn_only)) < HALF_OPEN_MIN_BATCH:
            # Ordinary traffic: a few handshakes cut by the batch's end. Taking them in and
            # replaying them at the next batch would cost more than it saves.
            return None, promote
        syn_l = syn_only.tolist()
        f_src = a_is_src[first].tolist()
        f_seq = tp.seq[first].tolist()
        f_ts = tp.ts_ns[first].tolist()
        taken = np.zeros(nflows, dtype=bool)
        cand = False
        for k, fk in enumerate(keys):
            if fk in skip:
                continue
            ho = table.get(fk) if table else None
            if syn_l[k] and (
                ho is None
                or (
                    ho.src_is_a == f_src[k]
                    and ho.isn == f_seq[k]
                    and f_ts[k] - ho.last_ns <= idle_ns
                )
            ):
                taken[k] = True
                cand = True
            elif ho is not None:
                del table[fk]
                promote.append((fk, ho))
        if not cand:
            return None, promote
        keep = ~taken[inv]
        # The SYNs taken, in capture order: the first of a new flow is kept whole; later ones
        # (retransmissions) count, and the latest is kept too.
        idx = np.nonzero(~keep)[0]
        data = tp.data
        mv = data if isinstance(data, memoryview) else memoryview(data)
        # The fixed fields of every SYN taken, packed at once (one Python list per column for
        # a 100,000-SYN batch would cost more than the table itself).
        rec = np.empty(idx.shape[0], dtype=_SYN_DTYPE)
        rec["fno"] = tp.frame_no[idx] + frame_base
        rec["ts"] = tp.ts_ns[idx]
        rec["seq"] = tp.seq[idx]
        rec["flags"] = flags[idx]
        rec["win"] = tp.win[idx]
        rec["ip_len"] = tp.ip_len[idx]
        rec["thl"] = tp.thl[idx]
        rec["opt_cap"] = tp.opt_cap[idx]
        rec["tunnel"] = tp.tunnel[idx]
        raw = rec.tobytes()
        size = _SYN.size
        f_ipver = tp.ipver[first].tolist()
        cols = zip(
            inv[idx].tolist(),
            (tp.tcp_off[idx] + 20).tolist(),
            tp.opt_cap[idx].tolist(),
            tp.ip_len[idx].tolist(),
            tp.ts_ns[idx].tolist(),
            strict=True,
        )
        for j, (k, opt, ocap, ipl, t) in enumerate(cols):
            syn = raw[j * size : (j + 1) * size] + bytes(mv[opt : opt + ocap])
            fk = keys[k]
            ho = table.get(fk)
            if ho is None:
                table[fk] = HalfOpen(f_src[k], f_ipver[k], self.next_n, syn, ipl, t)
                self.next_n += 1
            else:
                ho.count += 1
                ho.ip_bytes += ipl
                ho.last = syn
                if t > ho.last_ns:
                    ho.last_ns = t
        return keep, promote

    def oldest(self, k: int) -> list[tuple[FlowKeyTuple, HalfOpen]]:
        """Remove and return the ``k`` oldest flows."""
        out = []
        it = iter(self.flows.items())
        for _ in range(min(k, len(self.flows))):
            out.append(next(it))
        for fk, _ho in out:
            del self.flows[fk]
        return out

    def idle(self, now: int, idle_ns: int) -> list[tuple[FlowKeyTuple, HalfOpen]]:
        """Remove and return the flows silent for longer than ``idle_ns``."""
        out = [(fk, ho) for fk, ho in self.flows.items() if now - ho.last_ns > idle_ns]
        for fk, _ho in out:
            del self.flows[fk]
        return out

    def note_evicted(self, gone: list[tuple[FlowKeyTuple, HalfOpen]]) -> None:
        if not gone:
            return
        if not self.burst:
            fno, t = _SYN.unpack_from(gone[0][1].first)[:2]
            self.burst_ts, self.burst_frame = t, fno
        self.burst += len(gone)
        self.evicted += len(gone)
        self.burst_evicted_in_batch = True

    def end_of_batch(self, final: bool = False) -> tuple[int, int, int] | None:
        """(count, first time, first frame) of a burst that has just ended, else None."""
        ended = self.burst and (final or not self.burst_evicted_in_batch)
        self.burst_evicted_in_batch = False
        if not ended:
            return None
        out = (self.burst, self.burst_ts, self.burst_frame)
        self.burst = 0
        return out


def replay_packets(items: list[tuple[FlowKeyTuple, HalfOpen]]) -> TcpPackets:
    """The kept SYNs of these flows as a batch for the engine: each flow's first SYN and, if it
    was retransmitted, its latest copy (frame numbers absolute). The copies in between change
    nothing but the packet and byte counts (``extra_counts``)."""
    rows: list[tuple[int, ...]] = []
    addrs: list[tuple[int, int, int, int]] = []
    buf = bytearray()
    for fk, ho in items:
        a_hi, a_lo, b_hi, b_lo, a_p, b_p = fk
        if ho.src_is_a:
            addr, ports = (a_hi, a_lo, b_hi, b_lo), (a_p, b_p)
        else:
            addr, ports = (b_hi, b_lo, a_hi, a_lo), (b_p, a_p)
        for syn in (ho.first, ho.last) if ho.last is not None else (ho.first,):
            fno, t, seq, fl, win, ipl, thl, ocap, tun = _SYN.unpack_from(syn)
            toff = len(buf)
            buf += bytes(20)  # (the fixed header: its fields are in the columns)
            buf += syn[_SYN.size :]
            rows.append(
                (fno, t, ho.ipver, *ports, seq, fl, win, toff, thl, toff + thl, ocap, ipl, tun)
            )
            addrs.append(addr)
    c = np.ascontiguousarray(np.array(rows, dtype=np.int64).reshape(-1, 14).T)
    h = np.ascontiguousarray(np.array(addrs, dtype=np.uint64).reshape(-1, 4).T)
    z = np.zeros(c.shape[1], dtype=np.int64)
    return TcpPackets(
        data=bytes(buf),
        frame_no=c[0],
        ts_ns=c[1],
        ipver=c[2],
        src_hi=h[0],
        src_lo=h[1],
        dst_hi=h[2],
        dst_lo=h[3],
        sport=c[3],
        dport=c[4],
        seq=c[5],
        ack=z,
        flags=c[6],
        win=c[7],
        tcp_off=c[8],
        thl=c[9],
        payload_off=c[10],
        payload_len=z,
        payload_cap=z.copy(),
        opt_cap=c[11],
        ip_len=c[12],
        tunnel=c[13],
    )


def extra_counts(ho: HalfOpen) -> tuple[int, int]:
    """(packets, IP bytes) of the retransmissions between the first and the latest SYN, which
    :func:`replay_packets` leaves out."""
    if ho.last is None:
        return 0, 0
    first_ip = _SYN.unpack_from(ho.first)[5]
    last_ip = _SYN.unpack_from(ho.last)[5]
    return ho.count - 2, ho.ip_bytes - first_ip - last_ip
