"""The per-packet path of a batch: every packet that may change its connection's state, in
capture order (compiled with ``packet_loop.pxd``; see README, "The compiled core").

Kept apart from :mod:`pcapan.analysis.engine`, which decides which packets come here (numpy over
the whole batch), so that this loop alone carries C types: one iteration is a few field reads
and the calls into :meth:`Connection.packet`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from pcapan.decode.packets import TCP_ACK, TCP_FIN, TCP_RST, TCP_SYN

if TYPE_CHECKING:
    from pcapan.flow.conn import Connection

_CTRL = TCP_SYN | TCP_FIN | TCP_RST
_SYN = TCP_SYN
_ACK = TCP_ACK


def run(
    eng: Any,
    tp: Any,
    idx: np.ndarray,
    cols: list[list[int]],
    rpos: list[int],
    rgrp: list[int],
    rpos2: list[int],
    cur: dict[int, Connection | None],
    runs: Any,
    inorder_l: list[bool],
    early_l: list[bool],
    keys: list[tuple[int, ...]],
    slot_of: dict[int, int],
    conns: list[Connection],
    slot: np.ndarray,
    mv: memoryview,
) -> None:
    """Feed the packets ``idx`` of the batch (their fields in ``cols``, as
    :meth:`Analyzer._tcp` lists them) to their connections; folded runs of bulk segments that
    precede a packet are applied first (``runs``). New connections start here; ``slot`` gets
    each packet's index in ``conns``."""
    table = eng.table
    flows = table.open
    idle = eng.idle_ns
    fb = eng._frame_base
    slots: list[int] = []
    (
        ks,
        aiss,
        fls,
        seqs,
        acks,
        wins,
        plens,
        pcaps,
        poffs,
        toffs,
        thls,
        iplens,
        tss,
        fnos,
    ) = cols
    idx_l = idx.tolist()
    n = len(idx_l)
    j = 0
    while j < n:
        i = idx_l[j]
        k = ks[j]
        ais = aiss[j]
        fl = fls[j]
        seq = seqs[j]
        t = tss[j]
        plen = plens[j]
        conn = cur[k]
        if conn is not None and runs is not None:
            if inorder_l[k]:
                runs.flush_ordered(k, i, conn)
                runs.applied[rgrp[j]] = rpos[j] + 1
            else:
                runs.flush_before(
                    rpos[j],
                    rgrp[j],
                    rpos2[j],
                    k,
                    ais,
                    bool(fl & _CTRL) or t - conn.last_ns > idle or plen == 1,
                    conn,
                )
        if conn is not None and table.ends_before(conn, fl, seq, ais, t):
            conn = None
        if conn is None:
            conn = eng._new_conn(tp, i, keys[k], ais, fl, t)
            flows[conn.fkey] = conn
            cur[k] = conn
        s = slot_of.get(id(conn))
        if s is None:
            s = slot_of[id(conn)] = len(conns)
            conns.append(conn)
        slots.append(s)
        is_orig = ais == conn.orig_is_a
        ep = conn.orig if is_orig else conn.resp
        pcap = pcaps[j]
        payload = None
        if plen and ep.stream.sink is not None:
            poff = poffs[j]
            payload = mv[poff : poff + pcap]
        options = None
        thl = thls[j]
        if fl & _SYN and thl > 20:
            toff = toffs[j]
            options = mv[toff + 20 : toff + thl]
        ack = acks[j]
        if early_l[i] and fl & _ACK:
            # An acknowledgement beyond what the peer's stream holds reveals a hole: the
            # parser gets the gap now, before this packet's own data (sent after the
            # acknowledged bytes arrived), not at the end of the batch.
            peer = conn.resp if is_orig else conn.orig
            pst = peer.stream
            if pst.started:
                rel_ack = pst.rel(ack)
                if rel_ack > pst.next_rel:
                    peer.ack_event(fb + fnos[j], rel_ack)
                    conn.apply_acks(t)
        conn.packet(
            is_orig, fl, seq, ack, wins[j], plen, payload, options, iplens[j], t, fb + fnos[j], pcap
        )
        if fl & _CTRL and conn.close_reason and not conn.closed_ns:
            conn.closed_ns = t
        j += 1
    if n:
        slot[idx] = slots
