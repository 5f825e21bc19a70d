"""Per-packet plots that re-read the capture: a tcptrace-style time-sequence graph of one
connection and an IO graph (bytes per second). The tables keep no packets, so the capture is
read again with the same reader and vectorised decoder the analysis uses, and each batch is
filtered by the connection's 5-tuple and time span with array operations."""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, BinaryIO

from pcapan.decode.tcp_options import MAX_WSCALE
from pcapan.errors import PcapanError
from pcapan.plot._base import new_figure, no_data
from pcapan.plot._clock import CaptureClock

if TYPE_CHECKING:
    import numpy as np
    from matplotlib.figure import Figure

    from pcapan.api import Result
    from pcapan.decode.packets import TcpPackets
    from pcapan.model import ConnRecord

Source = str | os.PathLike[str] | BinaryIO
Sources = Source | Sequence[Source]
# The IO graph aims at about this many bins (a readable curve at figure width), never finer
# than IO_MIN_BIN_S (capture timestamps below a millisecond are mostly scheduling noise).
IO_TARGET_BINS = 200
IO_MIN_BIN_S = 0.001
# An ACK this far (2 GiB) beyond the sender's initial sequence number is not acknowledging
# anything the sender sent (e.g. a RST with ack 0): left out of the ACK line.
MAX_ACK_REL = 1 << 31
_SEQ_MASK = 0xFFFFFFFF
FIELDS = ("frame_no", "ts_ns", "seq", "ack", "flags", "win", "payload_len")
DIRECTIONS = ("auto", "orig", "resp")


@dataclass
class ConnPackets:
    """One connection's TCP packets in capture order (column arrays), and its record."""

    record: ConnRecord
    from_orig: np.ndarray
    frame_no: np.ndarray
    ts_ns: np.ndarray
    seq: np.ndarray
    ack: np.ndarray
    flags: np.ndarray
    win: np.ndarray
    payload_len: np.ndarray


def _as_list(sources: Sources) -> list[Source]:
    if isinstance(sources, (str, os.PathLike)) or hasattr(sources, "read"):
        return [sources]  # type: ignore[list-item]
    return list(sources)  # type: ignore[arg-type]


def _addr(h: str) -> tuple[int, int]:
    """(hi, lo) as the decoder stores addresses: IPv4 as ::ffff:a.b.c.d."""
    from pcapan.decode.packets import V4_MAPPED_LO

    ip = ipaddress.ip_address(h)
    if ip.version == 4:
        return 0, int(ip) | int(V4_MAPPED_LO)
    n = int(ip)
    return n >> 64, n & 0xFFFFFFFFFFFFFFFF


def read_tcp(sources: Sources, select: Callable[[TcpPackets], np.ndarray]) -> dict[str, np.ndarray]:
    """Read the capture(s) in order, decode each batch, keep the rows ``select`` marks: the
    columns of ``FIELDS`` plus ``src_hi``/``src_lo``/``sport`` (to tell directions apart)."""
    import numpy as np

    from pcapan.decode.packets import Decoder
    from pcapan.io import open_capture

    names = (*FIELDS, "src_hi", "src_lo", "sport")
    parts: dict[str, list[np.ndarray]] = {n: [] for n in names}
    for src in _as_list(sources):
        dec = Decoder()
        for batch in open_capture(src):
            tp = dec.decode(batch)
            if not len(tp):
                continue
            m = select(tp)
            if m.any():
                for n in names:
                    parts[n].append(np.asarray(getattr(tp, n))[m])
    return {n: np.concatenate(v) if v else np.zeros(0, dtype=np.int64) for n, v in parts.items()}


def find_connection(
    sources: Sources, uid: str, result: Result | None = None
) -> tuple[ConnRecord, int | None]:
    """The connection record of ``uid`` and the start (ns) of the next connection on the same
    5-tuple, if any: from ``result`` when given, else by analysing the capture (the uid is a
    hash of the 5-tuple and first packet time, not invertible)."""
    if result is not None:
        recs = result.connection_records
    else:
        from pcapan.analysis.engine import Analyzer
        from pcapan.io import open_capture

        eng = Analyzer()
        for src in _as_list(sources):
            opened = open_capture(src)
            eng.start_source(opened.name)
            for batch in opened:
                eng.feed(batch)
        eng.finish()
        recs = eng.connections
    mine = next((r for r in recs if r.uid == uid), None)
    if mine is None:
        raise PcapanError(f"no connection with uid {uid!r} (see 'pcapan connections')")
    key = {
        (mine.orig_h, mine.orig_p, mine.resp_h, mine.resp_p),
        (mine.resp_h, mine.resp_p, mine.orig_h, mine.orig_p),
    }
    later = [
        r.ts_ns
        for r in recs
        if r.ts_ns > mine.ts_ns and (r.orig_h, r.orig_p, r.resp_h, r.resp_p) in key
    ]
    return mine, min(later) if later else None


def connection_packets(sources: Sources, uid: str, *, result: Result | None = None) -> ConnPackets:
    """Every TCP packet of connection ``uid``: its 5-tuple (either direction) from its first
    packet up to the next connection on the same 5-tuple (trailing ACKs after the last counted
    packet belong to it, as in the analysis)."""
    import numpy as np

    rec, nxt = find_connection(sources, uid, result)
    o_hi, o_lo = _addr(rec.orig_h)
    r_hi, r_lo = _addr(rec.resp_h)
    t0 = rec.ts_ns
    t1 = nxt if nxt is not None else np.iinfo(np.int64).max

    def select(tp: TcpPackets) -> np.ndarray:
        fwd = (
            (tp.src_hi == o_hi)
            & (tp.src_lo == o_lo)
            & (tp.sport == rec.orig_p)
            & (tp.dst_hi == r_hi)
            & (tp.dst_lo == r_lo)
            & (tp.dport == rec.resp_p)
        )
        rev = (
            (tp.src_hi == r_hi)
            & (tp.src_lo == r_lo)
            & (tp.sport == rec.resp_p)
            & (tp.dst_hi == o_hi)
            & (tp.dst_lo == o_lo)
            & (tp.dport == rec.orig_p)
        )
        return (fwd | rev) & (tp.ts_ns >= t0) & (tp.ts_ns < t1)

    cols = read_tcp(sources, select)
    from_orig = (
        (cols["src_hi"] == o_hi) & (cols["src_lo"] == o_lo) & (cols["sport"] == rec.orig_p)
    ).astype(bool)
    return ConnPackets(rec, from_orig, *(cols[n].astype(np.int64) for n in FIELDS))


def classify_segments(
    start: np.ndarray, end: np.ndarray, first: int
) -> tuple[np.ndarray, np.ndarray, list[tuple[int, int, int]]]:
    """Data segments in capture order, as relative [start, end) sequence ranges, where the
    stream's first byte is ``first``. Returns (retransmission mask, out-of-order mask, gaps).

    In-order segments (start == highest end so far), the bulk, are settled with one cumulative
    maximum; only the others are walked: one that starts beyond the highest end opens a hole;
    one that starts below it is *out of order* when it fills hole bytes, else a
    *retransmission* (all its bytes were seen before, or only bytes beyond the highest end are
    new). Holes never filled are the gaps, returned as (segment index that opened it, lo, hi)."""
    import numpy as np

    n = start.shape[0]
    retrans = np.zeros(n, dtype=bool)
    ooo = np.zeros(n, dtype=bool)
    if not n:
        return retrans, ooo, []
    top = np.maximum.accumulate(np.maximum(end, first))
    prev = np.r_[first, top[:-1]]
    holes: list[tuple[int, int, int]] = []
    for i in np.nonzero(start != prev)[0].tolist():
        s, e = int(start[i]), int(end[i])
        if s > prev[i]:
            holes.append((i, int(prev[i]), s))
            continue
        kept: list[tuple[int, int, int]] = []
        filled = False
        for at, lo, hi in holes:
            if s < hi and e > lo:
                filled = True
                if s > lo:
                    kept.append((at, lo, s))
                if e < hi:
                    kept.append((at, e, hi))
            else:
                kept.append((at, lo, hi))
        holes = kept
        if filled:
            ooo[i] = True
        else:
            retrans[i] = True
    return retrans, ooo, holes


@dataclass
class TimeSeq:
    """What the time-sequence graph draws (times in s since the connection's first packet,
    sequence numbers relative to the sender's ISN: its first data byte is 1)."""

    direction: str
    data_t: np.ndarray
    data_start: np.ndarray
    data_end: np.ndarray
    retrans: np.ndarray
    out_of_order: np.ndarray
    gaps: list[tuple[float, int, int]]
    ack_t: np.ndarray
    ack: np.ndarray
    window: np.ndarray


def time_sequence(cp: ConnPackets, direction: str = "auto") -> TimeSeq:
    """The time-sequence data of one direction (``auto``: the one that sent more payload)."""
    import numpy as np

    from pcapan.decode.packets import TCP_ACK, TCP_SYN

    if direction not in DIRECTIONS:
        raise PcapanError(f"direction must be one of {', '.join(DIRECTIONS)} (got {direction!r})")
    if direction == "auto":
        sent_orig = int(cp.payload_len[cp.from_orig].sum())
        direction = "orig" if sent_orig > int(cp.payload_len[~cp.from_orig].sum()) else "resp"
    snd = cp.from_orig if direction == "orig" else ~cp.from_orig
    rcv = ~snd
    t0 = cp.ts_ns[0] if cp.ts_ns.shape[0] else 0
    data = snd & (cp.payload_len > 0)
    syn = np.nonzero(snd & ((cp.flags & TCP_SYN) != 0))[0]
    if syn.shape[0]:
        isn, first = int(cp.seq[syn[0]]), 1
    elif data.any():
        isn, first = int(cp.seq[data][0]) - 1, 1
    else:
        isn, first = 0, 1

    def rel(x: np.ndarray) -> np.ndarray:
        return (x - isn) & _SEQ_MASK

    ds = rel(cp.seq[data])
    de = ds + cp.payload_len[data]
    dt = (cp.ts_ns[data] - t0) / 1e9
    retrans, ooo, holes = classify_segments(ds, de, first)
    acking = rcv & ((cp.flags & TCP_ACK) != 0)
    ar = rel(cp.ack[acking])
    keep = ar < MAX_ACK_REL
    rec = cp.record
    shift = 0
    if rec.orig_wscale is not None and rec.resp_wscale is not None:
        shift = min(int(rec.orig_wscale if direction == "resp" else rec.resp_wscale), MAX_WSCALE)
    scaled = np.where((cp.flags[acking] & TCP_SYN) != 0, cp.win[acking], cp.win[acking] << shift)
    return TimeSeq(
        direction,
        dt,
        ds,
        de,
        retrans,
        ooo,
        [(float(dt[i]), lo, hi) for i, lo, hi in holes],
        ((cp.ts_ns[acking] - t0) / 1e9)[keep],
        ar[keep],
        (ar + scaled)[keep],
    )


def timeseq(
    sources: Sources, uid: str, *, result: Result | None = None, direction: str = "auto"
) -> Figure:
    """tcptrace-style time-sequence graph of connection ``uid``: each data segment of one
    direction as a vertical line from its first to its last sequence number (relative to the
    sender's ISN) at its capture time, the receiver's ACK line and receive-window line (ACK +
    scaled window), retransmissions and out-of-order segments marked, and gaps (sequence ranges
    never captured) drawn in red at the time the hole was first seen.

    ``sources``: the capture file(s) the connection is in; ``result``: the analysis of them, if
    at hand (else the capture is analysed to find the uid's 5-tuple); ``direction``: orig, resp
    or auto (the direction that sent more payload)."""
    cp = connection_packets(sources, uid, result=result)
    ts = time_sequence(cp, direction)
    rec = cp.record
    snd, rcv = ((rec.orig_h, rec.orig_p), (rec.resp_h, rec.resp_p))[
        :: 1 if ts.direction == "orig" else -1
    ]
    fig, (ax,) = new_figure(
        1,
        1,
        height=5.5,
        title=f"Time-sequence graph of {uid} ({ts.direction}: "
        f"{snd[0]}:{snd[1]} \u2192 {rcv[0]}:{rcv[1]})",
    )
    if not ts.data_t.shape[0] and not ts.ack_t.shape[0]:
        no_data(ax, "no data segments and no ACKs in this direction")
        return fig
    if ts.ack_t.shape[0]:
        ax.plot(
            ts.ack_t,
            ts.window,
            drawstyle="steps-post",
            color="#d4ac0d",
            linewidth=1,
            label="receive window",
        )
        ax.plot(ts.ack_t, ts.ack, drawstyle="steps-post", color="#27ae60", linewidth=1, label="ACK")
    if ts.data_t.shape[0]:
        ax.vlines(
            ts.data_t,
            ts.data_start,
            ts.data_end,
            color="#1f618d",
            linewidth=1.5,
            label="data segments",
        )
    if ts.retrans.any():
        ax.scatter(
            ts.data_t[ts.retrans],
            ts.data_end[ts.retrans],
            marker="x",
            color="#c0392b",
            s=40,
            zorder=3,
            label="retransmission",
        )
    if ts.out_of_order.any():
        ax.scatter(
            ts.data_t[ts.out_of_order],
            ts.data_end[ts.out_of_order],
            marker="o",
            facecolors="none",
            edgecolors="#e67e22",
            s=40,
            zorder=3,
            label="out of order",
        )
    if ts.gaps:
        ax.vlines(
            [g[0] for g in ts.gaps],
            [g[1] for g in ts.gaps],
            [g[2] for g in ts.gaps],
            color="#e74c3c",
            linewidth=5,
            alpha=0.6,
            label="gap (never captured)",
        )
    ax.set_xlabel("time since the connection's first packet (s)")
    ax.set_ylabel("relative sequence number (bytes)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize="small", loc="upper left")
    return fig


def nice_bin(span_s: float) -> float:
    """A bin width of 1, 2 or 5 times a power of ten giving about IO_TARGET_BINS bins."""
    import math

    raw = max(span_s / IO_TARGET_BINS, IO_MIN_BIN_S)
    p = 10 ** math.floor(math.log10(raw))
    for m in (1, 2, 5, 10):
        if raw <= m * p * (1 + 1e-9):
            return max(m * p, IO_MIN_BIN_S)
    return 10 * p


def io_series(
    sources: Sources,
    uid: str | None = None,
    *,
    result: Result | None = None,
    bin_s: float | None = None,
) -> tuple[float, dict[str, tuple[np.ndarray, np.ndarray]]]:
    """(bin width, {label: (bin start times in s, payload bytes per second)}). With ``uid``:
    one series per direction of that connection, time from its first packet; without: all TCP
    payload of the capture, time from the first TCP packet."""
    import numpy as np

    if uid is not None:
        cp = connection_packets(sources, uid, result=result)
        ts, ln = cp.ts_ns, cp.payload_len
        groups = {"orig \u2192 resp": cp.from_orig, "resp \u2192 orig": ~cp.from_orig}
    else:
        cols = read_tcp(sources, lambda tp: tp.payload_len > 0)
        ts, ln = cols["ts_ns"].astype(np.int64), cols["payload_len"].astype(np.int64)
        groups = {"all TCP": np.ones(ts.shape[0], dtype=bool)}
    if not ts.shape[0]:
        return bin_s or IO_MIN_BIN_S, {}
    t0 = int(ts.min())
    rel = (ts - t0) / 1e9
    if uid is None and result is not None:
        # the whole capture: seconds since each capture's start, pauses between files cut out
        rel = CaptureClock.of(result).seconds(ts)
        rel = rel - min(0.0, float(rel.min()))  # (a packet before the first span's start)
    width = bin_s if bin_s is not None else nice_bin(float(rel.max()))
    if width <= 0:
        raise PcapanError(f"bin_s must be positive (got {width})")
    idx = np.floor(rel / width).astype(np.int64)
    nb = int(idx.max()) + 1
    x = np.arange(nb) * width
    return width, {
        k: (x, np.bincount(idx[m], weights=ln[m], minlength=nb) / width) for k, m in groups.items()
    }


def io_graph(
    sources: Sources,
    uid: str | None = None,
    *,
    result: Result | None = None,
    bin_s: float | None = None,
) -> Figure:
    """IO graph: TCP payload bytes per second over time, per direction of connection ``uid``, or
    of all TCP traffic in the capture without one. ``bin_s``: bin width (default: a 1-2-5 width
    giving about 200 bins, at least 1 ms)."""
    width, series = io_series(sources, uid, result=result, bin_s=bin_s)
    fig, (ax,) = new_figure(
        1, 1, height=4.0, title="IO graph" + (f" of {uid}" if uid else " (all TCP)")
    )
    if not series:
        no_data(ax, "no TCP packets")
        return fig
    for label, (x, y) in series.items():
        ax.plot(x, y, drawstyle="steps-post", label=label)
    if uid is None and result is not None:
        CaptureClock.of(result).mark(ax)
    ax.set_xlabel(f"time (s, bins of {width * 1e3:g} ms)")
    ax.set_ylabel("TCP payload (bytes/s)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize="small")
    return fig
