"""TCP options (RFC 9293 section 3.1, RFC 7323, RFC 2018) from the bytes after the fixed header.

This runs on every SYN (and on data segments when SACK or timestamps are wanted), so it avoids
work where it can: no options returns a shared instance; the two layouts that dominate real
traffic (Linux's SYN ``MSS,SACK_PERM,TS,NOP,WS`` and the ``NOP,NOP,TS`` of data segments) are
matched and unpacked with one struct call each; option strings without timestamps or SACK
blocks (e.g. Windows SYNs) repeat verbatim across connections, so their parsed (immutable)
result is cached; everything else goes through one loop with integer indexing. Building the
frozen result object is then the larger part of the cost.

Malformed input is data, not an exception: an option whose length byte is missing, below 2 or
runs past the end stops the parse with ``malformed=True`` and keeps what was parsed before it
(there is no way to find the next option boundary). A known option with the wrong length for
its kind (say an MSS of length 5) sets ``malformed=True`` too, but its length is still usable
to skip it, so parsing continues. When an option appears twice the last one wins, as in Linux's
``tcp_parse_options()``.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from pcapan.config import TCP_OPTIONS_CACHE_ENTRIES

# Option kinds (IANA "TCP Option Kind Numbers").
KIND_EOL = 0
KIND_NOP = 1
KIND_MSS = 2
KIND_WSCALE = 3
KIND_SACK_PERMITTED = 4
KIND_SACK = 5
KIND_TIMESTAMPS = 8

# RFC 7323 section 2.3: a shift above 14 is treated as 14. ``wscale`` keeps the value on the
# wire (a larger one is worth reporting); whoever scales windows clamps with this.
MAX_WSCALE = 14

_U16 = struct.Struct("!H")
_U32X2 = struct.Struct("!II")
# Linux SYN / SYN-ACK: 02 04 <mss> 04 02 08 0a <tsval> <tsecr> 01 03 03 <shift>.
_LINUX_SYN = struct.Struct("!2xH4xII3xB")
# SACK with k blocks (an option length byte allows up to 31) unpacks in one call.
_SACK_EDGES = [struct.Struct("!" + "II" * k) for k in range(32)]
# NOP NOP TS, on every segment of a connection that negotiated timestamps.
_NOP_NOP_TS = struct.Struct("!4xII")


@dataclass(frozen=True, slots=True)
class TcpOptions:
    """The options of one TCP header that pcapan uses.

    ``mss`` and ``wscale`` are as sent (only meaningful on SYNs); ``sack_blocks`` are
    ``(left_edge, right_edge)`` sequence numbers as on the wire (not relative); ``tsval`` and
    ``tsecr`` are the RFC 7323 timestamp values. ``malformed`` means some option bytes could
    not be parsed (see the module docstring for what was kept).
    """

    mss: int | None = None
    wscale: int | None = None
    sack_permitted: bool = False
    sack_blocks: tuple[tuple[int, int], ...] = ()
    tsval: int | None = None
    tsecr: int | None = None
    malformed: bool = False


NO_OPTIONS = TcpOptions()

# Parsed results of timestamp-free option strings, keyed by the bytes.
_cache: dict[bytes, TcpOptions] = {}


def parse_tcp_options(opts: bytes | bytearray | memoryview) -> TcpOptions:
    """Parse the option bytes of a TCP header (``data_offset * 4 - 20`` bytes after the ports).

    Never raises for any byte string; see :class:`TcpOptions` and the module docstring.
    """
    n = len(opts)
    if n == 0:
        return NO_OPTIONS
    if n == 12 and opts[:4] == b"\x01\x01\x08\x0a":
        tsval, tsecr = _NOP_NOP_TS.unpack_from(opts)
        return TcpOptions(None, None, False, (), tsval, tsecr, False)
    if (
        n == 20
        and opts[:2] == b"\x02\x04"
        and opts[4:8] == b"\x04\x02\x08\x0a"
        and opts[16:19] == b"\x01\x03\x03"
    ):
        mss, tsval, tsecr, wscale = _LINUX_SYN.unpack_from(opts)
        return TcpOptions(mss, wscale, True, (), tsval, tsecr, False)
    key = opts if type(opts) is bytes else bytes(opts)
    cached = _cache.get(key)
    if cached is not None:
        return cached
    result = _parse(opts, n)
    if result.tsval is None and not result.sack_blocks:
        if len(_cache) >= TCP_OPTIONS_CACHE_ENTRIES:
            # Garbage or an unusual mix filled it; start over rather than track recency.
            _cache.clear()
        _cache[key] = result
    return result


def _parse(opts: bytes | bytearray | memoryview, n: int) -> TcpOptions:
    """The general loop over ``n`` (> 0) option bytes."""
    mss: int | None = None
    wscale: int | None = None
    sack_permitted = False
    sack_blocks: tuple[tuple[int, int], ...] = ()
    tsval: int | None = None
    tsecr: int | None = None
    malformed = False

    i = 0
    while i < n:
        kind = opts[i]
        if kind == KIND_NOP:
            i += 1
            continue
        if kind == KIND_EOL:
            # Everything after End of Option List is padding, whatever it contains.
            break
        if i + 1 >= n:
            malformed = True
            break
        length = opts[i + 1]
        end = i + length
        if length < 2 or end > n:
            malformed = True
            break
        # Ordered by how often each kind occurs: timestamps ride on most segments of a
        # modern connection, the rest mostly on SYNs.
        if kind == KIND_TIMESTAMPS:
            if length == 10:
                tsval, tsecr = _U32X2.unpack_from(opts, i + 2)
            else:
                malformed = True
        elif kind == KIND_SACK:
            nbytes = length - 2
            if nbytes and nbytes % 8 == 0:
                edges = _SACK_EDGES[nbytes >> 3].unpack_from(opts, i + 2)
                sack_blocks = tuple(zip(edges[::2], edges[1::2], strict=True))
            else:
                malformed = True
        elif kind == KIND_MSS:
            if length == 4:
                mss = _U16.unpack_from(opts, i + 2)[0]
            else:
                malformed = True
        elif kind == KIND_WSCALE:
            if length == 3:
                wscale = opts[i + 2]
            else:
                malformed = True
        elif kind == KIND_SACK_PERMITTED:
            if length == 2:
                sack_permitted = True
            else:
                malformed = True
        # Any other kind (MPTCP, TCP-AO, fast open, experiments, ...) is skipped by its length.
        i = end

    return TcpOptions(mss, wscale, sack_permitted, sack_blocks, tsval, tsecr, malformed)
