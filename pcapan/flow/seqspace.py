"""32-bit sequence-number arithmetic, written once: the signed distance between two sequence
numbers (RFC 1982 serial arithmetic, Zeek's ``seq_delta``) and a per-group running maximum.

The engine and the RTT estimator work on whole batches (numpy arrays of int64); the per-packet
code of the compiled core (``Connection.packet``, ``Reassembler.rel``) keeps inline C-typed
twins of :func:`signed_delta32`, which say so (a Python call there would cost the compiled
build its gain); ``tests/test_seqspace.py`` checks them against it.
"""

from __future__ import annotations

import numpy as np

MOD32 = 1 << 32
HALF32 = 1 << 31
_M32 = MOD32 - 1

# Groups are spaced this far apart in segmented_cummax, so values of one group never reach the
# next group's: values must lie within a span below 2**40 (signed 32-bit distances, 33-bit
# relative sequence numbers, or sentinels down to -2**36 all do), and group numbers below 2**23
# so that the offsets stay within int64 (a batch has at most READ_CHUNK_BYTES / 16 = 2**19
# frames, and groups are at most twice its flows).
_GROUP_SPACING = 1 << 40


def signed_delta32(a: int, b: int) -> int:
    """The signed distance from ``b`` to ``a`` in 32-bit sequence space: the ``d`` in
    ``[-2**31, 2**31)`` with ``b + d == a`` modulo 2**32."""
    d = (a - b) & _M32
    return d - MOD32 if d >= HALF32 else d


def signed_delta(a: np.ndarray | int, b: np.ndarray | int) -> np.ndarray:
    """:func:`signed_delta32` element-wise, as int64 (either side may be a scalar)."""
    d = np.asarray(a, dtype=np.int64) - np.asarray(b, dtype=np.int64)
    return ((d + HALF32) & _M32) - HALF32


def segmented_cummax(values: np.ndarray, group: np.ndarray) -> np.ndarray:
    """The running maximum of ``values`` within each group, restarting at each group: ``group``
    numbers each element's group, non-decreasing (groups contiguous). One pass, no Python loop:
    each group is lifted above the previous ones (see ``_GROUP_SPACING`` for the bounds on
    values and group numbers)."""
    offs = group.astype(np.int64) * _GROUP_SPACING
    return np.maximum.accumulate(values + offs) - offs
