"""32-bit sequence arithmetic (pcapan.flow.seqspace) and the compiled core's inline twins of it."""

from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from pcapan.flow import conn
from pcapan.flow.reassembly import Reassembler
from pcapan.flow.seqspace import segmented_cummax, signed_delta, signed_delta32

M = 1 << 32
u32 = st.integers(0, M - 1)

# (a, b, a - b in RFC 1982 serial arithmetic), worked out by hand: b + d == a modulo 2**32,
# with d in [-2**31, 2**31); the midpoint 2**31 is -2**31, as Zeek's seq_delta (an int32 cast).
CASES = [
    (5, 3, 2),
    (3, 5, -2),
    (0, M - 1, 1),  # 0 comes one after 2**32 - 1 (wrap-around)
    (M - 1, 0, -1),
    (2**31 - 1, 0, 2**31 - 1),
    (2**31, 0, -(2**31)),
    (0, 2**31, -(2**31)),
    (7, 7, 0),
]


def test_signed_delta32_by_hand() -> None:
    for a, b, d in CASES:
        assert signed_delta32(a, b) == d, (a, b)
        assert (b + d) % M == a


def test_signed_delta_arrays_by_hand() -> None:
    a = np.array([c[0] for c in CASES], dtype=np.int64)
    b = np.array([c[1] for c in CASES], dtype=np.int64)
    assert signed_delta(a, b).tolist() == [c[2] for c in CASES]
    assert signed_delta(a, b).dtype == np.int64
    # a scalar on either side; unsigned input is taken as its value, not wrapped in uint32
    assert signed_delta(a, 0).tolist() == [signed_delta32(int(x), 0) for x in a]
    assert signed_delta(a.astype(np.uint32), b.astype(np.uint32)).tolist() == [c[2] for c in CASES]


@given(u32, u32)
def test_inline_twins_agree(a: int, b: int) -> None:
    """The compiled core's copies (conn._delta, Reassembler.rel, Endpoint.z_rel) equal the
    reference, also for values outside 32 bits (the callers pass sums that can be)."""
    d = signed_delta32(a, b)
    assert conn._delta(a, b) == d
    assert conn._delta(a + M, b - M) == d
    assert int(signed_delta(np.array([a]), np.array([b]))[0]) == d
    r = Reassembler()
    r.init_isn(b)
    assert r.rel(a) == d
    ep = conn.Endpoint()
    ep.z_init(b, 0)
    assert ep.z_rel(a, 0) == d


@given(
    st.lists(
        st.tuples(
            st.integers(1, 5),
            st.lists(
                st.one_of(
                    st.integers(-(2**31), 2**31 - 1),  # signed distances
                    st.integers(0, 2**33),  # relative sequence numbers
                    st.just(-(2**36)),  # the engine's sentinels
                    st.just(2**40 - 2**36 - 1),
                ),
                min_size=1,
                max_size=6,
            ),
        ),
        min_size=1,
        max_size=8,
    )
)
def test_segmented_cummax_is_a_running_max_per_group(groups: list) -> None:
    vals: list[int] = []
    grp: list[int] = []
    want: list[int] = []
    g = 0
    for step, vs in groups:
        g += step  # (group numbers need not be consecutive, only non-decreasing)
        top = None
        for v in vs:
            top = v if top is None else max(top, v)
            vals.append(v)
            grp.append(g)
            want.append(top)
    got = segmented_cummax(np.array(vals, dtype=np.int64), np.array(grp, dtype=np.int64))
    assert got.tolist() == want


def test_segmented_cummax_large_group_numbers() -> None:
    # Group numbers up to 2**22 (a batch's groups are far fewer): no int64 overflow.
    grp = np.array([0, 0, 2**22, 2**22], dtype=np.int64)
    vals = np.array([5, -(2**36), -(2**36), 2**33], dtype=np.int64)
    assert segmented_cummax(vals, grp).tolist() == [5, 5, -(2**36), 2**33]
