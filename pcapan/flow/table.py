"""The table of open TCP connections: flow keys, orientation, uids, 5-tuple reuse, timeouts.

The engine (:mod:`pcapan.analysis.engine`) decides per batch which packets go one by one; this
module answers, for such a packet, which connection it belongs to: the one open on its flow key,
or a new one when there is none, when the open one went idle, or when a SYN reuses the 5-tuple
(Zeek's ``IsReuse``). A new connection gets its orientation (who is the originator) and a
deterministic uid here. Connections leave the table when they end; the engine finalises them
(records, anomalies) at the end of the batch, once the packets folded per batch that came before
their end have been added (:attr:`FlowTable.ended`).

Flow keys are canonical tuples ``(a_hi, a_lo, b_hi, b_lo, a_port, b_port)``: the two endpoints
in a fixed order, so both directions of a connection share one key.
"""

from __future__ import annotations

import hashlib
from bisect import bisect_left

import numpy as np

from pcapan.decode.packets import TCP_ACK, TCP_SYN, TcpPackets
from pcapan.flow.conn import CLOSE_IDLE, CLOSE_REUSE, Connection, FlowKey
from pcapan.flow.halfopen import FlowKeyTuple

UID_ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
# Zeek's uids are "C" and 17 base-62 digits (about 101 bits; 12 digest bytes give 96).
_UID_DIGITS = 17
# Ports at or above this are ephemeral (IANA 49152; Linux starts at 32768, so use that).
_EPHEMERAL_MIN = 32768


# Two base-62 digits at a time, least significant first (one division of the 96-bit number per
# pair instead of per digit: half the time of a uid).
_UID_PAIRS = [UID_ALPHABET[i % 62] + UID_ALPHABET[i // 62] for i in range(62 * 62)]


def uid_from_bytes(material: bytes) -> str:
    """A Zeek-style uid ("C" + 17 base-62 digits, least significant first) derived from
    ``material`` by BLAKE2b."""
    n = int.from_bytes(hashlib.blake2b(material, digest_size=12).digest(), "big")
    out = []
    for _ in range(_UID_DIGITS // 2):
        n, r = divmod(n, 62 * 62)
        out.append(_UID_PAIRS[r])
    if _UID_DIGITS % 2:
        out.append(UID_ALPHABET[n % 62])
    return "C" + "".join(out)


def make_uid(key: FlowKey, start_ns: int, tag: bytes = b"") -> str:
    """Deterministic Zeek-style uid: same capture, same uids (also live vs. the file it wrote).

    ``tag`` tells apart connections of one 5-tuple that start at the same instant (a capture
    whose time goes backwards, e.g. the same file read twice); it is empty for all others, so
    their uids do not depend on it."""
    return uid_from_bytes(
        b"%d|%b|%d|%b|%d|%d%b"
        % (key.ipver, key.orig_h, key.orig_p, key.resp_h, key.resp_p, start_ns, tag)
    )


def addr_bytes(hi: int, lo: int, ipver: int) -> bytes:
    if ipver == 4:
        return (lo & 0xFFFFFFFF).to_bytes(4, "big")
    return hi.to_bytes(8, "big") + lo.to_bytes(8, "big")


class FlowTable:
    """Open connections by flow key, and what makes a packet start a new one.

    ``idle_ns``: a connection silent for longer ends (the next packet of its key starts a new
    one). ``linger_ns``: how long a closed connection stays in the table for late packets.
    """

    def __init__(self, idle_ns: int, linger_ns: int) -> None:
        self.idle_ns = idle_ns
        self.linger_ns = linger_ns
        self.open: dict[FlowKeyTuple, Connection] = {}
        # Connections taken out of the table by a packet of the batch (5-tuple reused, idle),
        # with why: the engine finalises them at the end of the batch.
        self.ended: list[tuple[Connection, str]] = []
        self.next_n = 0  # creation number of the next connection (shared with the SYN table)
        # Uid uniqueness (see _uid_tag), from every frame in capture order, before any shard
        # filter, so that shards and the whole agree: the latest timestamp so far, the number
        # of frames so far whose time went backwards, and for the batch being fed, per frame,
        # the latest timestamp before it and that count (None while time has only gone on).
        self._ts_max = -(1 << 63)
        self._backs = 0
        self._b_time: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None
        # (the same as lists: _uid_tag looks one frame up per new connection, where numpy's
        # scalar calls cost ~10x)
        self._b_lists: tuple[list[int], list[int], list[int]] | None = None
        self._tie_t = 0
        self._tie: dict[FlowKeyTuple, int] = {}  # flow key -> connections started at _tie_t

    def __len__(self) -> int:
        return len(self.open)

    def get(self, fkey: FlowKeyTuple) -> Connection | None:
        return self.open.get(fkey)

    def add(self, conn: Connection) -> None:
        self.open[conn.fkey] = conn

    def remove(self, conn: Connection) -> None:
        """Take ``conn`` out of the table, if it is still the connection of its key."""
        fk = conn.fkey
        if self.open.get(fk) is conn:
            del self.open[fk]

    # -- time ----------------------------------------------------------------------------------
    def clock(self, frame_no: np.ndarray, ts: np.ndarray) -> None:
        """Per frame of the batch: the latest timestamp before it, and whether it goes back."""
        self._b_time = None
        self._b_lists = None
        if not len(ts):
            return
        run = np.maximum.accumulate(ts)
        if ts[0] >= self._ts_max and (run == ts).all():
            self._ts_max = int(ts[-1])  # the usual case: time only went on
            return
        before = np.empty_like(ts)
        before[0] = self._ts_max
        np.maximum(run[:-1], self._ts_max, out=before[1:])
        backs = self._backs + np.cumsum(ts < before)
        self._b_time = (frame_no, before, backs)
        self._b_lists = (frame_no.tolist(), before.tolist(), backs.tolist())
        self._ts_max = max(self._ts_max, int(run[-1]))
        self._backs = int(backs[-1])

    def older_than_before(self, frame_no: np.ndarray, ts: np.ndarray) -> np.ndarray | None:
        """Which of these frames of the batch are older than a frame before them (None: none
        is, time only went on in this batch)."""
        bt = self._b_time
        if bt is None:
            return None
        frames, before, _ = bt
        j = np.minimum(np.searchsorted(frames, frame_no), frames.shape[0] - 1)
        return ts < before[j]

    def _uid_tag(self, fkey: FlowKeyTuple, fno: int, t: int) -> bytes:
        """What makes a new connection's uid unique when its 5-tuple and start time are not.

        Two connections of one flow key can start at the same instant only if time stood still
        between them or went back. A connection whose first frame is not older than every frame
        before it is counted among those of its flow key starting at that instant (the n-th
        gets tag n, the first none); those start times never decrease, so one instant is kept.
        A connection starting back in time gets the number of frames that went back so far,
        its own included, which no earlier connection can have."""
        bl = self._b_lists
        if bl is not None:  # (else no frame of the batch went back)
            frames, before, backs = bl
            j = min(bisect_left(frames, fno), len(frames) - 1)
            if t < before[j]:
                return b"|b%d" % backs[j]
        if t != self._tie_t:
            self._tie.clear()
            self._tie_t = t
        n = self._tie.get(fkey, 0)
        self._tie[fkey] = n + 1
        return b"|n%d" % n if n else b""

    # -- connections ---------------------------------------------------------------------------
    def new_connection(
        self, tp: TcpPackets, i: int, fkey: FlowKeyTuple, ais: bool, fl: int, t: int
    ) -> Connection:
        """A connection whose first packet is packet ``i`` of ``tp`` (flow key ``fkey``; ``ais``:
        its source is the key's first endpoint), oriented and named; not yet in the table."""
        partial = False
        syn, ack = fl & TCP_SYN, fl & TCP_ACK
        sport, dport = tp.sport.item(i), tp.dport.item(i)
        if syn and not ack:
            src_is_orig = True
        elif syn and ack:
            src_is_orig = False  # a SYN-ACK comes from the responder
        else:
            partial = True
            src_is_orig = True
            # Picked up mid-stream. Heuristic (stated in the README): the side on a port below
            # 1024, or the non-ephemeral side when exactly one port is ephemeral, is the server;
            # otherwise the sender of the first packet seen is the originator.
            if (sport < 1024) != (dport < 1024):
                src_is_orig = dport < 1024
            elif (sport >= _EPHEMERAL_MIN) != (dport >= _EPHEMERAL_MIN):
                src_is_orig = sport >= _EPHEMERAL_MIN
        orig_is_a = ais if src_is_orig else not ais
        ipver = tp.ipver.item(i)
        s_b = addr_bytes(tp.src_hi.item(i), tp.src_lo.item(i), ipver)
        d_b = addr_bytes(tp.dst_hi.item(i), tp.dst_lo.item(i), ipver)
        if src_is_orig:
            key = FlowKey(ipver, s_b, sport, d_b, dport)
        else:
            key = FlowKey(ipver, d_b, dport, s_b, sport)
        conn = Connection(
            make_uid(key, t, self._uid_tag(fkey, tp.frame_no.item(i), t)),
            key,
            orig_is_a,
            t,
            self.next_n,
        )
        self.next_n += 1
        conn.fkey = fkey
        conn.partial = partial
        if not src_is_orig:
            conn.flipped = True
            conn.history.append((0, -1, "^"))
        return conn

    def ends_before(self, conn: Connection, fl: int, seq: int, ais: bool, t: int) -> bool:
        """Does this packet start a new connection on the same 5-tuple (Zeek's IsReuse), or
        come after ``conn`` went idle? Then ``conn`` has ended (:attr:`ended`)."""
        if t - conn.last_ns > self.idle_ns:
            self.end(conn, CLOSE_IDLE)
            return True
        if fl & TCP_SYN and not fl & TCP_ACK:
            is_orig = ais == conn.orig_is_a
            ep = conn.orig if is_orig else conn.resp
            if ep.syn_seen and ep.stream.rel(seq) == 0:
                return False  # a retransmitted SYN
            if conn.is_closed or (is_orig and ep.syn_seen):
                if not conn.is_closed:
                    conn.note(
                        0,
                        t,
                        "active_connection_reuse",
                        "new SYN with a different ISN on an open connection",
                    )
                self.end(conn, CLOSE_REUSE)
                return True
        return False

    def end(self, conn: Connection, reason: str) -> None:
        """Take ``conn`` out of the table now (a packet of the batch starts its successor); it
        is finalised at the end of the batch."""
        self.remove(conn)
        self.ended.append((conn, reason))

    def take_ended(self) -> list[tuple[Connection, str]]:
        ended, self.ended = self.ended, []
        return ended

    def expired(self, now: int) -> list[Connection]:
        """Open connections that are over at ``now``: idle for longer than the idle timeout, or
        closed and lingering for longer than the linger time."""
        return [
            c
            for c in self.open.values()
            if (c.close_reason and now - c.last_ns > self.linger_ns)
            or now - c.last_ns > self.idle_ns
        ]
