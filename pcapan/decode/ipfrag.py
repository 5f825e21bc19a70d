"""IP fragment reassembly (RFC 791 section 3.2; also usable for IPv6 fragments, RFC 8200 4.5).

Fragments are held per datagram key ``(src, dst, proto, ip_id)`` until every byte from 0 to
the end given by the last fragment (More Fragments clear) has arrived, in any order; then the
reassembled IP payload is returned and the datagram forgotten. Nothing here raises on bad
input: every problem becomes a :class:`FragAnomaly` in :attr:`Ipv4Defragmenter.anomalies`.

Policies, each a choice where the RFCs leave room:

- Overlap: the first copy of a byte wins (BSD's and Zeek's default; Linux instead drops the
  whole datagram). Overlaps are reported as ``frag_overlap``, saying whether the bytes
  differed, since different bytes are how IDS-evasion attacks show up.
- Conflicting ends (two last fragments that disagree, or data past the end a last fragment
  gave): the largest end wins, as in Zeek, so no received byte is discarded; reported as
  ``frag_inconsistent``.
- A fragment whose end would make the datagram exceed 65535 bytes (20-byte minimum IPv4
  header assumed; 65535 payload bytes for IPv6 keys) is dropped and reported
  (``frag_too_big``, the "ping of death").
- Timeout: a datagram still incomplete ``IP_FRAG_TIMEOUT_S`` after its first fragment is
  dropped, like Linux's ipfrag_time, and reported as ``frag_incomplete`` with the missing
  byte ranges. :meth:`Ipv4Defragmenter.add` applies the timeout itself to the key it is
  given, so results do not depend on how often :meth:`~Ipv4Defragmenter.expire` is called.
- Bounds: at most ``MAX_PENDING_FRAGMENTS`` datagrams, ``MAX_PENDING_FRAGMENT_BYTES`` bytes
  in all and ``MAX_FRAGMENTS_PER_DATAGRAM`` pieces per datagram; past them the oldest
  datagram (or the offending one) is dropped and reported as ``frag_evicted`` plus
  ``frag_incomplete``.
- A late duplicate of a fragment of an already reassembled datagram starts a new datagram
  (as in Linux: the IP ID may legitimately have been reused), which normally ends as
  ``frag_incomplete``.
"""

from __future__ import annotations

import ipaddress
from bisect import bisect_right
from dataclasses import dataclass

from pcapan.config import (
    IP_FRAG_TIMEOUT_S,
    MAX_FRAGMENTS_PER_DATAGRAM,
    MAX_PENDING_FRAGMENT_BYTES,
    MAX_PENDING_FRAGMENTS,
)

FRAG_OVERLAP = "frag_overlap"
FRAG_INCOMPLETE = "frag_incomplete"
FRAG_TOO_BIG = "frag_too_big"
FRAG_EVICTED = "frag_evicted"
FRAG_INCONSISTENT = "frag_inconsistent"

# Largest reassembled payload: the 16-bit IPv4 total length less the minimum 20-byte header
# (the header length of the first fragment is not passed in), and the 16-bit IPv6 payload
# length, which already excludes the fixed header.
IPV4_MAX_PAYLOAD = 65535 - 20
IPV6_MAX_PAYLOAD = 65535

# Bookkeeping charged per stored piece against MAX_PENDING_FRAGMENT_BYTES, on top of its
# payload: a bytes object header (33), its list slot and its start offset (an int and a slot),
# rounded up. Without it, a flood of 1-byte fragments would cost far more than it is charged.
PIECE_OVERHEAD_BYTES = 80

Key = tuple[bytes, bytes, int, int]


@dataclass(frozen=True, slots=True)
class FragAnomaly:
    """One reassembly problem. ``kind`` is one of the ``FRAG_*`` names of this module.

    ``frame_no`` and ``ts`` are those of the fragment that showed the problem; for a datagram
    dropped as incomplete or evicted, those of its first fragment, so the row points at the
    datagram a user would look for.
    """

    kind: str
    frame_no: int
    ts: float
    detail: str


class _Datagram:
    """Fragments received so far for one key: disjoint pieces sorted by offset."""

    __slots__ = ("first_ts", "first_frame", "starts", "pieces", "have", "end", "last_end", "cost")

    def __init__(self, ts: float, frame_no: int) -> None:
        self.first_ts = ts
        self.first_frame = frame_no
        self.starts: list[int] = []  # offset of each piece, ascending
        self.pieces: list[bytes] = []  # payload of each piece; pieces never overlap
        self.have = 0  # bytes held; complete when it equals ``end`` and a last fragment came
        self.end = 0  # largest fragment end seen
        self.last_end: int | None = None  # end given by the first last fragment (MF clear)
        self.cost = 0  # charged against the byte budget

    def missing(self) -> list[tuple[int, int | None]]:
        """Holes as ``(start, stop)``; ``stop`` is None for an open end (no last fragment)."""
        holes: list[tuple[int, int | None]] = []
        cur = 0
        for start, piece in zip(self.starts, self.pieces, strict=True):
            if start > cur:
                holes.append((cur, start))
            cur = start + len(piece)
        if self.last_end is None:
            holes.append((cur, None))
        elif cur < self.end:
            holes.append((cur, self.end))
        return holes


def _describe_key(key: Key) -> str:
    src, dst, proto, ip_id = key
    try:
        s, d = str(ipaddress.ip_address(src)), str(ipaddress.ip_address(dst))
    except ValueError:
        s, d = src.hex(), dst.hex()
    return f"{s} > {d} proto {proto} id {ip_id}"


def _describe_missing(holes: list[tuple[int, int | None]]) -> str:
    ranges = ", ".join(f"[{a}, {'?' if b is None else b})" for a, b in holes)
    text = f"missing bytes {ranges}"
    if holes and holes[-1][1] is None:
        text += " (last fragment never seen, total length unknown)"
    return text


class Ipv4Defragmenter:
    """Reassembles fragmented IP datagrams; see the module docstring for the policies.

    The limits default to the ``config`` constants and can be lowered (tests do).
    """

    def __init__(
        self,
        timeout_s: float = IP_FRAG_TIMEOUT_S,
        max_pending: int = MAX_PENDING_FRAGMENTS,
        max_bytes: int = MAX_PENDING_FRAGMENT_BYTES,
        max_pieces: int = MAX_FRAGMENTS_PER_DATAGRAM,
    ) -> None:
        self.timeout_s = timeout_s
        self.max_pending = max_pending
        self.max_bytes = max_bytes
        self.max_pieces = max_pieces
        self.anomalies: list[FragAnomaly] = []
        # Insertion order is first-fragment order, so the oldest datagram is the first key.
        self._pending: dict[Key, _Datagram] = {}
        self._bytes = 0

    @property
    def pending(self) -> int:
        """Datagrams waiting for fragments."""
        return len(self._pending)

    @property
    def pending_bytes(self) -> int:
        """Bytes charged for them (payload plus per-piece bookkeeping)."""
        return self._bytes

    def drain_anomalies(self) -> list[FragAnomaly]:
        """Return the anomalies recorded so far and forget them."""
        out = self.anomalies
        self.anomalies = []
        return out

    def add(
        self,
        key: Key,
        offset: int,
        more_fragments: bool,
        payload: bytes,
        ts: float,
        frame_no: int,
    ) -> bytes | None:
        """Add one fragment: ``offset`` in bytes (the header field times 8), ``payload`` the
        bytes after the IP header. Returns the whole reassembled payload when this fragment
        completes its datagram, else None."""
        end = offset + len(payload)
        limit = IPV4_MAX_PAYLOAD if len(key[0]) == 4 else IPV6_MAX_PAYLOAD
        if end > limit:
            self._record(
                FRAG_TOO_BIG, frame_no, ts,
                f"{_describe_key(key)}: fragment [{offset}, {end}) ends past the largest "
                f"possible payload ({limit} bytes); fragment dropped",
            )  # fmt: skip
            return None

        dg = self._pending.get(key)
        if dg is not None and ts - dg.first_ts > self.timeout_s:
            # Expired but not yet swept: it would have been dropped by now.
            self._drop(key, FRAG_INCOMPLETE, f"timed out after {self.timeout_s:g} s")
            dg = None
        if dg is None:
            if offset == 0 and not more_fragments:
                # A whole datagram (or an atomic fragment): nothing to wait for.
                return payload
            if len(self._pending) >= self.max_pending:
                oldest = next(iter(self._pending))
                self._drop(
                    oldest, FRAG_EVICTED,
                    f"{self.max_pending} datagrams pending (MAX_PENDING_FRAGMENTS)",
                )  # fmt: skip
            dg = _Datagram(ts, frame_no)
            self._pending[key] = dg

        self._check_end(key, dg, offset, end, more_fragments, ts, frame_no)
        if end > dg.end:
            dg.end = end
        if end > offset:
            self._insert(key, dg, offset, end, payload, ts, frame_no)

        if dg.last_end is not None and dg.have == dg.end:
            del self._pending[key]
            self._bytes -= dg.cost
            return dg.pieces[0] if len(dg.pieces) == 1 else b"".join(dg.pieces)

        if len(dg.pieces) > self.max_pieces:
            self._drop(
                key, FRAG_EVICTED,
                f"more than {self.max_pieces} fragments (MAX_FRAGMENTS_PER_DATAGRAM)",
            )  # fmt: skip
        elif self._bytes > self.max_bytes:
            self._shrink(keep=key)
        return None

    def expire(self, now: float) -> None:
        """Drop (and report) datagrams whose first fragment is more than the timeout before
        ``now``. Cheap enough to call per packet: it looks at the oldest datagrams only, which
        assumes capture timestamps do not run backwards by much (a datagram that started
        out of timestamp order is expired when the ones queued before it are)."""
        pending = self._pending
        deadline = now - self.timeout_s
        while pending:
            key = next(iter(pending))
            if pending[key].first_ts >= deadline:
                break
            self._drop(key, FRAG_INCOMPLETE, f"timed out after {self.timeout_s:g} s")

    def flush(self) -> None:
        """Drop and report every pending datagram (end of capture)."""
        for key in list(self._pending):
            self._drop(key, FRAG_INCOMPLETE, "capture ended")

    # --- internals ---------------------------------------------------------------------------

    def _record(self, kind: str, frame_no: int, ts: float, detail: str) -> None:
        self.anomalies.append(FragAnomaly(kind, frame_no, ts, detail))

    def _drop(self, key: Key, kind: str, why: str) -> None:
        """Forget a pending datagram, reporting ``kind`` (and, for an eviction, what is lost)."""
        dg = self._pending.pop(key)
        self._bytes -= dg.cost
        missing = _describe_missing(dg.missing())
        if kind == FRAG_EVICTED:
            self._record(FRAG_EVICTED, dg.first_frame, dg.first_ts, f"{_describe_key(key)}: {why}")
            why = "evicted"
        self._record(
            FRAG_INCOMPLETE, dg.first_frame, dg.first_ts,
            f"{_describe_key(key)}: {why}; {missing}; {dg.have} bytes held",
        )  # fmt: skip

    def _shrink(self, keep: Key) -> None:
        """Evict the oldest datagrams (other than ``keep``) until within the byte budget."""
        for key in list(self._pending):
            if self._bytes <= self.max_bytes:
                break
            if key != keep:
                self._drop(
                    key, FRAG_EVICTED,
                    f"{self.max_bytes} bytes pending (MAX_PENDING_FRAGMENT_BYTES)",
                )  # fmt: skip

    def _check_end(
        self, key: Key, dg: _Datagram, offset: int, end: int, mf: bool, ts: float, frame_no: int
    ) -> None:
        """Report a fragment whose end contradicts what earlier fragments said."""
        problem = None
        if not mf:
            if dg.last_end is None:
                dg.last_end = end
                if end < dg.end:
                    problem = f"last fragment ends at {end} but earlier data reaches {dg.end}"
            elif end != dg.last_end:
                problem = f"last fragments disagree: end {dg.last_end} then {end}"
        elif dg.last_end is not None and end > dg.last_end:
            problem = (
                f"fragment [{offset}, {end}) reaches past the last fragment's end {dg.last_end}"
            )
        if problem is not None:
            self._record(
                FRAG_INCONSISTENT, frame_no, ts,
                f"{_describe_key(key)}: {problem}; the largest end is used",
            )  # fmt: skip

    def _insert(
        self, key: Key, dg: _Datagram, offset: int, end: int, payload: bytes, ts: float,
        frame_no: int,
    ) -> None:  # fmt: skip
        """Store the parts of ``[offset, end)`` not yet held (first copy wins), noting overlaps."""
        starts, pieces = dg.starts, dg.pieces
        # First piece that could overlap: the one starting at or before ``offset`` if it
        # reaches past it, else the next one.
        lo = bisect_right(starts, offset) - 1
        if lo < 0 or starts[lo] + len(pieces[lo]) <= offset:
            lo += 1
        hi = lo
        n = len(starts)
        if hi == n or starts[hi] >= end:
            # No overlap at all: the common case, one insertion, no copy.
            starts.insert(lo, offset)
            pieces.insert(lo, payload)
            size = end - offset
            dg.have += size
            dg.cost += size + PIECE_OVERHEAD_BYTES
            self._bytes += size + PIECE_OVERHEAD_BYTES
            return

        new_starts: list[int] = []
        new_pieces: list[bytes] = []
        cur = offset
        overlap = 0
        overlap_lo = overlap_hi = -1
        differ = False
        added = 0
        while hi < n and starts[hi] < end:
            ps = starts[hi]
            pd = pieces[hi]
            pe = ps + len(pd)
            if cur < ps:
                new_starts.append(cur)
                new_pieces.append(payload[cur - offset : ps - offset])
                added += ps - cur
            a, b = max(cur, ps), min(end, pe)
            if a < b:
                overlap += b - a
                if overlap_lo < 0:
                    overlap_lo = a
                overlap_hi = b
                if not differ and payload[a - offset : b - offset] != pd[a - ps : b - ps]:
                    differ = True
            new_starts.append(ps)
            new_pieces.append(pd)
            cur = max(cur, pe)
            hi += 1
        if cur < end:
            new_starts.append(cur)
            new_pieces.append(payload[cur - offset :])
            added += end - cur
        starts[lo:hi] = new_starts
        pieces[lo:hi] = new_pieces
        charge = added + PIECE_OVERHEAD_BYTES * (len(new_pieces) - (hi - lo))
        dg.have += added
        dg.cost += charge
        self._bytes += charge

        contents = "contents DIFFER, first copy kept" if differ else "contents identical"
        self._record(
            FRAG_OVERLAP, frame_no, ts,
            f"{_describe_key(key)}: fragment [{offset}, {end}) overlaps {overlap} bytes held "
            f"in [{overlap_lo}, {overlap_hi}); {contents}",
        )  # fmt: skip
