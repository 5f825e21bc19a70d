"""IP fragment reassembly: orders, duplicates, overlaps, timeouts, bounds, and anomalies."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pcapan.config import IP_FRAG_TIMEOUT_S, MAX_PENDING_FRAGMENTS
from pcapan.decode.ipfrag import (
    FRAG_EVICTED,
    FRAG_INCOMPLETE,
    FRAG_INCONSISTENT,
    FRAG_OVERLAP,
    FRAG_TOO_BIG,
    PIECE_OVERHEAD_BYTES,
    FragAnomaly,
    Ipv4Defragmenter,
)

KEY = (bytes([10, 0, 0, 1]), bytes([10, 0, 0, 2]), 17, 0x1234)
PAYLOAD = bytes(random.Random(7).randrange(256) for _ in range(3000))

Frag = tuple[int, bool, bytes]  # offset, more_fragments, payload


def fragment(payload: bytes, size: int) -> list[Frag]:
    """Cut like a router would: every fragment but the last carries ``size`` (a multiple of 8)."""
    frags = []
    for off in range(0, len(payload), size):
        chunk = payload[off : off + size]
        frags.append((off, off + size < len(payload), chunk))
    return frags


def feed(d: Ipv4Defragmenter, frags: list[Frag], key=KEY, ts: float = 0.0) -> list[bytes | None]:  # noqa: ANN001
    return [d.add(key, off, mf, data, ts, i + 1) for i, (off, mf, data) in enumerate(frags)]


def kinds(anomalies: list[FragAnomaly]) -> list[str]:
    return [a.kind for a in anomalies]


def test_in_order() -> None:
    d = Ipv4Defragmenter()
    results = feed(d, fragment(PAYLOAD, 1480))
    assert results[:-1] == [None, None]
    assert results[-1] == PAYLOAD
    assert d.pending == 0 and d.pending_bytes == 0
    assert d.drain_anomalies() == []


def test_reversed() -> None:
    d = Ipv4Defragmenter()
    results = feed(d, fragment(PAYLOAD, 8 * 37)[::-1])
    assert all(r is None for r in results[:-1])
    assert results[-1] == PAYLOAD
    assert d.anomalies == []


def test_shuffled() -> None:
    frags = fragment(PAYLOAD, 64)
    for seed in range(20):
        random.Random(seed).shuffle(frags)
        d = Ipv4Defragmenter()
        results = feed(d, frags)
        assert results[-1] == PAYLOAD and all(r is None for r in results[:-1])
        assert d.pending == 0 and d.anomalies == []


def test_unfragmented_datagram_passes_through() -> None:
    d = Ipv4Defragmenter()
    assert d.add(KEY, 0, False, b"whole", 0.0, 1) == b"whole"
    assert d.pending == 0 and d.anomalies == []


def test_keys_are_independent() -> None:
    d = Ipv4Defragmenter()
    other = (KEY[0], KEY[1], KEY[2], KEY[3] + 1)
    a, b = fragment(b"A" * 40, 16), fragment(b"B" * 40, 16)
    assert d.add(KEY, *a[0], 0.0, 1) is None
    assert d.add(other, *b[0], 0.0, 2) is None
    assert d.add(KEY, *a[1], 0.0, 3) is None
    assert d.add(other, *b[2], 0.0, 4) is None
    assert d.add(other, *b[1], 0.0, 5) == b"B" * 40
    assert d.add(KEY, *a[2], 0.0, 6) == b"A" * 40


def test_ipv6_key_allowed_full_payload() -> None:
    # IPv6 keys (16-byte addresses, 32-bit identification) use the same machinery; their
    # payload may reach 65535 bytes since the 40-byte header is outside the length field.
    key6 = (b"\xfe\x80" + bytes(14), b"\xfe\x80" + bytes(13) + b"\x01", 17, 0xDEADBEEF)
    big = bytes(65535)
    d = Ipv4Defragmenter()
    assert feed(d, fragment(big, 1448), key=key6)[-1] == big
    assert d.anomalies == []


# --- overlaps ---------------------------------------------------------------------------------


def test_overlap_identical_bytes() -> None:
    d = Ipv4Defragmenter()
    p = PAYLOAD[:48]
    assert d.add(KEY, 0, True, p[:24], 1.0, 1) is None
    assert d.add(KEY, 16, True, p[16:40], 2.0, 2) is None  # bytes 16..24 again, same content
    assert d.add(KEY, 40, False, p[40:], 3.0, 3) == p
    (a,) = d.drain_anomalies()
    assert (a.kind, a.frame_no, a.ts) == (FRAG_OVERLAP, 2, 2.0)
    assert "8 bytes" in a.detail and "[16, 24)" in a.detail and "identical" in a.detail
    assert "DIFFER" not in a.detail
    assert d.anomalies == []  # drained


def test_overlap_different_bytes_first_copy_wins() -> None:
    d = Ipv4Defragmenter()
    assert d.add(KEY, 8, True, b"B" * 16, 0.0, 1) is None  # [8, 24)
    assert d.add(KEY, 0, True, b"a" * 32, 0.0, 2) is None  # [0, 32): covers it, differs
    result = d.add(KEY, 32, False, b"c" * 8, 0.0, 3)
    # First copy wins: bytes 8..24 keep "B"; only the holes around them take the new "a"s.
    assert result == b"a" * 8 + b"B" * 16 + b"a" * 8 + b"c" * 8
    (a,) = d.anomalies
    assert a.kind == FRAG_OVERLAP and a.frame_no == 2
    assert "DIFFER" in a.detail and "first copy kept" in a.detail and "[8, 24)" in a.detail


def test_overlap_spanning_several_pieces_and_holes() -> None:
    d = Ipv4Defragmenter()
    d.add(KEY, 8, True, b"1" * 8, 0.0, 1)  # [8, 16)
    d.add(KEY, 24, True, b"2" * 8, 0.0, 2)  # [24, 32)
    d.add(KEY, 40, False, b"3" * 8, 0.0, 3)  # [40, 48), last
    # One fragment fills every hole and overlaps all three pieces, the middle one differently.
    filler = b"x" * 8 + b"1" * 8 + b"x" * 8 + b"9" * 8 + b"x" * 8 + b"3" * 8
    assert d.add(KEY, 0, True, filler, 0.0, 4) == (
        b"x" * 8 + b"1" * 8 + b"x" * 8 + b"2" * 8 + b"x" * 8 + b"3" * 8
    )
    (a,) = d.anomalies
    assert "24 bytes" in a.detail and "[8, 48)" in a.detail and "DIFFER" in a.detail


def test_exact_duplicate_fragment_reported_as_overlap() -> None:
    d = Ipv4Defragmenter()
    frags = fragment(PAYLOAD[:100], 40)
    feed(d, [frags[0], frags[0], frags[1]])
    assert d.add(KEY, *frags[2], 0.0, 9) == PAYLOAD[:100]
    assert kinds(d.anomalies) == [FRAG_OVERLAP]


# --- hypothesis: any order, any duplication -------------------------------------------------


@st.composite
def fragmented_payload(draw: st.DrawFn) -> tuple[bytes, list[Frag]]:
    payload = draw(st.binary(min_size=1, max_size=2000))
    size = 8 * draw(st.integers(1, 40))
    return payload, fragment(payload, size)


@given(fragmented_payload(), st.data())
def test_any_permutation_and_duplication_reassembles(
    pf: tuple[bytes, list[Frag]], data: st.DataObject
) -> None:
    payload, frags = pf
    # Every fragment at least once, some several times, in any order.
    extra = data.draw(st.lists(st.sampled_from(frags), max_size=2 * len(frags)))
    order = data.draw(st.permutations(frags + extra))
    d = Ipv4Defragmenter()
    results = feed(d, order)

    # None until the step at which every fragment has been seen; that step yields exactly the
    # payload. Late duplicates start a new datagram (the ID may be reused), so any later
    # completion must be the payload again.
    seen: set[int] = set()
    complete_at = None
    for i, (off, _, _) in enumerate(order):
        seen.add(off)
        if len(seen) == len(frags):
            complete_at = i
            break
    assert complete_at is not None
    assert all(r is None for r in results[:complete_at])
    assert results[complete_at] == payload
    assert all(r is None or r == payload for r in results[complete_at + 1 :])
    # Duplicates overlap with identical bytes only; nothing else can go wrong.
    assert set(kinds(d.anomalies)) <= {FRAG_OVERLAP}
    assert all("identical" in a.detail for a in d.anomalies)


@given(st.binary(min_size=1, max_size=600), st.data())
@settings(max_examples=200)
def test_arbitrary_overlapping_cover_reassembles(payload: bytes, data: st.DataObject) -> None:
    # Fragments with arbitrary (unaligned, overlapping) boundaries cut from the same bytes:
    # a cover of the payload plus random extra slices, in any order.
    n = len(payload)
    cuts = sorted(set(data.draw(st.lists(st.integers(1, n - 1), max_size=10)) if n > 1 else []))
    bounds = [0, *cuts, n]
    frags = [(a, b < n, payload[a:b]) for a, b in zip(bounds, bounds[1:], strict=False)]
    for _ in range(data.draw(st.integers(0, 6))):
        a = data.draw(st.integers(0, n - 1))
        b = data.draw(st.integers(a + 1, n))
        frags.append((a, b < n, payload[a:b]))
    order = data.draw(st.permutations(frags))
    d = Ipv4Defragmenter()
    results = [r for r in feed(d, order) if r is not None]
    assert results and results[0] == payload
    assert all("DIFFER" not in a.detail for a in d.anomalies)


@given(st.lists(st.tuples(st.integers(0, 70000), st.booleans(), st.binary(max_size=64))))
def test_garbage_never_raises_and_bookkeeping_holds(frags: list[Frag]) -> None:
    d = Ipv4Defragmenter(max_pending=3)
    for i, (off, mf, data) in enumerate(frags):
        key = (KEY[0], KEY[1], KEY[2], i % 5)
        d.add(key, off, mf, data, float(i), i)
        assert d.pending <= 3
    d.flush()
    assert d.pending == 0 and d.pending_bytes == 0


# --- timeouts ---------------------------------------------------------------------------------


def test_missing_middle_fragment_expires_with_range() -> None:
    d = Ipv4Defragmenter()
    frags = fragment(PAYLOAD[:3000], 1000)  # [0,1000) [1000,2000) [2000,3000)
    d.add(KEY, *frags[0], 100.0, 7)
    d.add(KEY, *frags[2], 101.0, 9)
    d.expire(100.0 + IP_FRAG_TIMEOUT_S)  # exactly the timeout: not yet
    assert d.pending == 1 and d.anomalies == []
    d.expire(100.0 + IP_FRAG_TIMEOUT_S + 0.001)
    assert d.pending == 0 and d.pending_bytes == 0
    (a,) = d.drain_anomalies()
    assert (a.kind, a.frame_no, a.ts) == (FRAG_INCOMPLETE, 7, 100.0)
    assert "missing bytes [1000, 2000)" in a.detail
    assert "10.0.0.1 > 10.0.0.2 proto 17 id 4660" in a.detail
    assert "2000 bytes held" in a.detail
    # The missing fragment arriving later starts a new datagram; it does not resurrect the old.
    assert d.add(KEY, *frags[1], 200.0, 11) is None


def test_missing_first_and_last_fragment_ranges() -> None:
    d = Ipv4Defragmenter()
    d.add(KEY, 16, True, b"x" * 8, 0.0, 1)
    d.add(KEY, 40, True, b"x" * 8, 0.0, 2)
    d.flush()
    (a,) = d.anomalies
    assert "missing bytes [0, 16), [24, 40), [48, ?)" in a.detail
    assert "last fragment never seen" in a.detail


def test_add_applies_timeout_without_expire() -> None:
    # A fragment arriving after the timeout must not join a stale datagram, even if nobody
    # called expire() in between.
    d = Ipv4Defragmenter()
    d.add(KEY, 0, True, b"a" * 8, 0.0, 1)
    assert d.add(KEY, 8, False, b"b" * 8, IP_FRAG_TIMEOUT_S + 1, 2) is None
    assert kinds(d.drain_anomalies()) == [FRAG_INCOMPLETE]
    assert d.pending == 1  # the new datagram with just the last fragment


def test_expire_keeps_young_datagrams() -> None:
    d = Ipv4Defragmenter()
    for i in range(5):
        d.add((KEY[0], KEY[1], KEY[2], i), 0, True, b"z" * 8, float(i * 10), i)
    d.expire(IP_FRAG_TIMEOUT_S + 15)  # ages 45, 35, 25, 15, 5: two expire
    assert d.pending == 3
    assert [a.frame_no for a in d.drain_anomalies()] == [0, 1]


# --- bounds -----------------------------------------------------------------------------------


def test_eviction_bound_default() -> None:
    d = Ipv4Defragmenter()
    for i in range(MAX_PENDING_FRAGMENTS + 1):
        d.add((KEY[0], KEY[1], KEY[2], i), 0, True, b"q" * 8, float(i) / 1000, i + 1)
    assert d.pending == MAX_PENDING_FRAGMENTS
    evicted, incomplete = d.drain_anomalies()
    assert (evicted.kind, evicted.frame_no) == (FRAG_EVICTED, 1)  # the oldest
    assert "MAX_PENDING_FRAGMENTS" in evicted.detail and "id 0" in evicted.detail
    assert incomplete.kind == FRAG_INCOMPLETE and "missing bytes [8, ?)" in incomplete.detail


def test_eviction_bound_small_and_survivor_completes() -> None:
    d = Ipv4Defragmenter(max_pending=2)
    keys = [(KEY[0], KEY[1], KEY[2], i) for i in range(3)]
    d.add(keys[0], 0, True, b"a" * 8, 0.0, 1)
    d.add(keys[1], 0, True, b"b" * 8, 1.0, 2)
    d.add(keys[2], 0, True, b"c" * 8, 2.0, 3)  # evicts keys[0]
    assert d.pending == 2
    assert kinds(d.drain_anomalies()) == [FRAG_EVICTED, FRAG_INCOMPLETE]
    assert d.add(keys[1], 8, False, b"B", 3.0, 4) == b"b" * 8 + b"B"
    assert d.add(keys[0], 8, False, b"A", 3.0, 5) is None  # its start is gone


def test_byte_budget_evicts_oldest() -> None:
    budget = 3 * (1000 + PIECE_OVERHEAD_BYTES)
    d = Ipv4Defragmenter(max_bytes=budget)
    for i in range(4):
        d.add((KEY[0], KEY[1], KEY[2], i), 0, True, bytes(1000), float(i), i + 1)
    assert d.pending == 3 and d.pending_bytes <= budget
    evicted, _ = d.drain_anomalies()
    assert evicted.kind == FRAG_EVICTED and evicted.frame_no == 1
    assert "MAX_PENDING_FRAGMENT_BYTES" in evicted.detail


def test_too_many_pieces_drops_datagram() -> None:
    d = Ipv4Defragmenter(max_pieces=10)
    for i in range(11):  # 1-byte fragments with holes between them: 11 pieces
        d.add(KEY, i * 16, True, b"t", 0.0, i + 1)
    assert d.pending == 0 and d.pending_bytes == 0
    evicted, incomplete = d.drain_anomalies()
    assert evicted.kind == FRAG_EVICTED and "MAX_FRAGMENTS_PER_DATAGRAM" in evicted.detail
    assert incomplete.kind == FRAG_INCOMPLETE


def test_memory_per_datagram_bounded_by_payload_size() -> None:
    # Re-sending the same bytes many times does not grow what is held.
    d = Ipv4Defragmenter()
    for i in range(1000):
        d.add(KEY, 0, True, PAYLOAD[:1000], 0.0, i)
    assert d.pending_bytes == 1000 + PIECE_OVERHEAD_BYTES


# --- sizes and inconsistent ends ------------------------------------------------------------


def test_too_big_fragment_dropped() -> None:
    d = Ipv4Defragmenter()
    # Ping of death: the last fragment at the largest offset pushes the datagram past 65535.
    assert d.add(KEY, 65528, False, bytes(100), 0.0, 3) is None
    (a,) = d.drain_anomalies()
    assert (a.kind, a.frame_no) == (FRAG_TOO_BIG, 3) and "[65528, 65628)" in a.detail
    assert d.pending == 0
    # Exactly the largest IPv4 payload (65535 less a 20-byte header) is fine.
    big = bytes(65515)
    assert feed(d, fragment(big, 1480))[-1] == big
    assert d.anomalies == []


def test_conflicting_last_fragments() -> None:
    d = Ipv4Defragmenter()
    d.add(KEY, 0, True, b"a" * 8, 0.0, 1)
    d.add(KEY, 16, False, b"b" * 8, 0.0, 2)  # says the end is 24 ...
    d.add(KEY, 24, False, b"c" * 8, 0.0, 3)  # ... and this one says 32: the largest is used
    (a,) = d.anomalies
    assert (a.kind, a.frame_no) == (FRAG_INCONSISTENT, 3)
    assert "end 24 then 32" in a.detail
    assert d.add(KEY, 8, True, b"x" * 8, 0.0, 4) == b"a" * 8 + b"x" * 8 + b"b" * 8 + b"c" * 8


def test_data_past_last_fragment_end() -> None:
    d = Ipv4Defragmenter()
    d.add(KEY, 8, False, b"b" * 8, 0.0, 1)  # end 16
    d.add(KEY, 16, True, b"c" * 8, 0.0, 2)  # beyond it
    assert d.add(KEY, 0, True, b"a" * 8, 0.0, 3) == b"a" * 8 + b"b" * 8 + b"c" * 8
    assert kinds(d.anomalies) == [FRAG_INCONSISTENT]
    d2 = Ipv4Defragmenter()
    d2.add(KEY, 16, True, b"c" * 8, 0.0, 1)
    d2.add(KEY, 0, False, b"a" * 8, 0.0, 2)  # last fragment ends before data already held
    assert kinds(d2.anomalies) == [FRAG_INCONSISTENT]
    assert "earlier data reaches 24" in d2.anomalies[0].detail


def test_anomaly_record_is_frozen() -> None:
    a = FragAnomaly(FRAG_OVERLAP, 1, 0.0, "x")
    with pytest.raises(AttributeError):
        a.kind = FRAG_EVICTED  # type: ignore[misc]
