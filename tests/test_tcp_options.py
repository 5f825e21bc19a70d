"""TCP option parsing: RFC layouts, real stacks' SYNs, malformed input, and fuzzing."""

from __future__ import annotations

import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pcapan.decode import tcp_options
from pcapan.decode.tcp_options import NO_OPTIONS, TcpOptions, parse_tcp_options


def _mss(v: int) -> bytes:  # RFC 9293 3.2: kind 2, length 4, 16-bit MSS
    return struct.pack("!BBH", 2, 4, v)


def _ws(shift: int) -> bytes:  # RFC 7323 2.2: kind 3, length 3, shift count
    return bytes([3, 3, shift])


def _ts(val: int, ecr: int) -> bytes:  # RFC 7323 3.2: kind 8, length 10, TSval, TSecr
    return struct.pack("!BBII", 8, 10, val, ecr)


def _sack(*blocks: tuple[int, int]) -> bytes:  # RFC 2018 3: kind 5, length 2 + 8n
    return bytes([5, 2 + 8 * len(blocks)]) + b"".join(struct.pack("!II", *b) for b in blocks)


SACK_OK = bytes([4, 2])  # RFC 2018 2: kind 4, length 2
NOP, EOL = b"\x01", b"\x00"


def test_empty_is_shared_instance() -> None:
    assert parse_tcp_options(b"") is NO_OPTIONS
    assert TcpOptions(None, None, False, (), None, None, False) == NO_OPTIONS


def test_frozen_and_slotted() -> None:
    opts = parse_tcp_options(_mss(1460))
    with pytest.raises(AttributeError):
        opts.mss = 1  # type: ignore[misc]
    assert not hasattr(opts, "__dict__")


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (_mss(1460), TcpOptions(mss=1460)),
        (_mss(0), TcpOptions(mss=0)),
        (_mss(65535), TcpOptions(mss=65535)),
        (_ws(7), TcpOptions(wscale=7)),
        # RFC 7323 2.3: shifts above 14 are clamped by the receiver; we report the wire value.
        (_ws(15), TcpOptions(wscale=15)),
        (SACK_OK, TcpOptions(sack_permitted=True)),
        (_ts(1, 0), TcpOptions(tsval=1, tsecr=0)),
        (_ts(0xFFFFFFFF, 0x80000000), TcpOptions(tsval=0xFFFFFFFF, tsecr=0x80000000)),
        (_sack((1000, 2000)), TcpOptions(sack_blocks=((1000, 2000),))),
        (
            _sack((1, 2), (3, 4), (5, 6), (0xFFFFFFF0, 0x10)),  # 4 blocks, wrapping edges
            TcpOptions(sack_blocks=((1, 2), (3, 4), (5, 6), (0xFFFFFFF0, 0x10))),
        ),
        # RFC 9293 3.1: NOPs pad options to word boundaries; EOL ends the list.
        (NOP * 3 + _mss(536), TcpOptions(mss=536)),
        (_mss(536) + EOL, TcpOptions(mss=536)),
        (_mss(536) + EOL + EOL + EOL, TcpOptions(mss=536)),
        # After EOL everything is padding, even bytes that would be malformed options.
        (_mss(536) + EOL + b"\x02\xff\x99", TcpOptions(mss=536)),
        (EOL + _mss(536), NO_OPTIONS),
        (NOP, NO_OPTIONS),
        (EOL, NO_OPTIONS),
        # RFC 7323 appendix A: the recommended layout NOP NOP TS on non-SYN segments.
        (NOP + NOP + _ts(0x01020304, 0x05060708), TcpOptions(tsval=0x01020304, tsecr=0x05060708)),
        # RFC 2018 3: SACK with timestamps: NOP NOP TS NOP NOP SACK(3 blocks).
        (
            NOP + NOP + _ts(7, 8) + NOP + NOP + _sack((10, 20), (30, 40), (50, 60)),
            TcpOptions(tsval=7, tsecr=8, sack_blocks=((10, 20), (30, 40), (50, 60))),
        ),
    ],
)
def test_rfc_layouts(raw: bytes, expected: TcpOptions) -> None:
    assert parse_tcp_options(raw) == expected


# SYN options as real stacks send them (byte strings from captures of each OS).
REAL_SYNS = [
    # Linux: MSS, SACK_PERM, TS, NOP, WS (the brief's 020405b40402080a...01030307).
    (
        "020405b40402080a0001e2400000000001030307",
        TcpOptions(mss=1460, wscale=7, sack_permitted=True, tsval=123456, tsecr=0),
    ),
    # Linux SYN-ACK over loopback: MSS 65495, TS echoing the SYN's value.
    (
        "0204ffd70402080ab1c2d3e40001e24001030307",
        TcpOptions(mss=65495, wscale=7, sack_permitted=True, tsval=0xB1C2D3E4, tsecr=123456),
    ),
    # Windows 10: MSS, NOP, WS, NOP, NOP, SACK_PERM (no timestamps).
    ("020405b40103030801010402", TcpOptions(mss=1460, wscale=8, sack_permitted=True)),
    # macOS: MSS, NOP, WS, NOP, NOP, TS, SACK_PERM, EOL, EOL.
    (
        "020405b4010303060101080a4b1d2a7f0000000004020000",
        TcpOptions(mss=1460, wscale=6, sack_permitted=True, tsval=0x4B1D2A7F, tsecr=0),
    ),
    # Old stacks: MSS only.
    ("020405b4", TcpOptions(mss=1460)),
]


@pytest.mark.parametrize(("hexopts", "expected"), REAL_SYNS)
def test_real_stack_syns(hexopts: str, expected: TcpOptions) -> None:
    raw = bytes.fromhex(hexopts)
    assert parse_tcp_options(raw) == expected
    # Same answer from any buffer type and from the general loop (bypassing fast paths).
    assert parse_tcp_options(bytearray(raw)) == expected
    assert parse_tcp_options(memoryview(raw)) == expected
    assert tcp_options._parse(raw, len(raw)) == expected


def test_fast_paths_agree_with_general_loop() -> None:
    for raw in [
        bytes.fromhex("020405b40402080a0001e2400000000001030307"),
        bytes.fromhex("0101080a0001e2400001e240"),
        # Near misses of the fast-path layouts must not be taken by them.
        bytes.fromhex("020405b40402080a0001e2400000000001030207"),  # last option malformed
        bytes.fromhex("0101080b0001e2400001e240"),  # TS length 11: runs past the end
        bytes.fromhex("0101080a0001e2400001e24000"),  # 13 bytes
    ]:
        assert parse_tcp_options(raw) == tcp_options._parse(raw, len(raw)), raw.hex()


def test_cache_is_bounded_and_results_stable() -> None:
    raw = bytes.fromhex("020405b40103030801010402")
    first = parse_tcp_options(raw)
    assert parse_tcp_options(raw) is first  # timestamp-free strings are cached
    for mss in range(tcp_options.TCP_OPTIONS_CACHE_ENTRIES + 10):
        parse_tcp_options(_mss(mss))
    assert len(tcp_options._cache) <= tcp_options.TCP_OPTIONS_CACHE_ENTRIES
    assert parse_tcp_options(raw) == first


def test_unknown_kinds_skipped_by_length() -> None:
    # TCP Fast Open cookie (34), MPTCP (30), TCP-AO (29), experimental (254), and a kind
    # with length exactly 2 (no data); the options after them still parse.
    raw = (
        bytes([34, 10]) + b"\xaa" * 8
        + bytes([30, 4, 0x00, 0x81])
        + bytes([254, 2])
        + _mss(1400)
        + bytes([29, 6, 1, 2, 3, 4])
        + _ws(2)
    )  # fmt: skip
    assert parse_tcp_options(raw) == TcpOptions(mss=1400, wscale=2)


def test_duplicate_option_last_wins() -> None:
    assert parse_tcp_options(_mss(1000) + _mss(1200)) == TcpOptions(mss=1200)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        # Length byte missing at the end: stop, keep the MSS parsed before.
        (_mss(1460) + b"\x03", TcpOptions(mss=1460, malformed=True)),
        (b"\x08", TcpOptions(malformed=True)),
        # Length below 2 (0 and 1): no way to find the next option.
        (_mss(1460) + b"\x05\x00" + _ws(3), TcpOptions(mss=1460, malformed=True)),
        (_ws(3) + b"\x22\x01" + _mss(9), TcpOptions(wscale=3, malformed=True)),
        # Length past the end.
        (_mss(1460) + b"\x08\x0a\x00\x00", TcpOptions(mss=1460, malformed=True)),
        (b"\x02\x04\x05", TcpOptions(malformed=True)),
        (SACK_OK + b"\x99\xff", TcpOptions(sack_permitted=True, malformed=True)),
        # Known kind with the wrong length: flagged, skipped by its length, parsing goes on.
        (b"\x02\x05\x05\xb4\x00" + _ws(4), TcpOptions(wscale=4, malformed=True)),
        (b"\x03\x02" + _mss(1), TcpOptions(mss=1, malformed=True)),
        (b"\x04\x03\x00" + _mss(2), TcpOptions(mss=2, malformed=True)),
        (b"\x08\x08" + b"\x00" * 6 + _mss(3), TcpOptions(mss=3, malformed=True)),
        (b"\x05\x02" + _mss(4), TcpOptions(mss=4, malformed=True)),  # SACK with no blocks
        (b"\x05\x06\x00\x00\x00\x01" + _mss(5), TcpOptions(mss=5, malformed=True)),  # 4 bytes
    ],
)
def test_malformed(raw: bytes, expected: TcpOptions) -> None:
    assert parse_tcp_options(raw) == expected
    assert tcp_options._parse(raw, len(raw)) == expected


@given(st.binary(max_size=80))
def test_random_bytes_never_raise(raw: bytes) -> None:
    opts = parse_tcp_options(raw)
    assert isinstance(opts, TcpOptions)
    if raw:
        assert opts == tcp_options._parse(raw, len(raw))
    else:
        assert opts is NO_OPTIONS
    assert opts.mss is None or 0 <= opts.mss <= 0xFFFF
    assert opts.wscale is None or 0 <= opts.wscale <= 0xFF
    assert all(0 <= e <= 0xFFFFFFFF for block in opts.sack_blocks for e in block)


_option = st.one_of(
    st.integers(0, 0xFFFF).map(_mss),
    st.integers(0, 14).map(_ws),
    st.just(SACK_OK),
    st.tuples(st.integers(0, 2**32 - 1), st.integers(0, 2**32 - 1)).map(lambda t: _ts(*t)),
    st.lists(
        st.tuples(st.integers(0, 2**32 - 1), st.integers(0, 2**32 - 1)), min_size=1, max_size=4
    ).map(lambda bl: _sack(*bl)),
    st.just(NOP),
    st.tuples(st.integers(9, 253), st.binary(max_size=12)).map(
        lambda t: bytes([t[0], 2 + len(t[1])]) + t[1]
    ),  # unknown kinds (kind 9..253, avoiding 0-8) with any data
)


@given(st.lists(_option, max_size=8))
def test_well_formed_options_round_trip(parts: list[bytes]) -> None:
    # Build expected values the way a receiver would (last occurrence wins) and compare.
    raw = b"".join(parts)
    expected: dict[str, object] = {}
    for p in parts:
        kind = p[0]
        if kind == 2:
            expected["mss"] = struct.unpack("!H", p[2:4])[0]
        elif kind == 3:
            expected["wscale"] = p[2]
        elif kind == 4:
            expected["sack_permitted"] = True
        elif kind == 8:
            expected["tsval"], expected["tsecr"] = struct.unpack("!II", p[2:10])
        elif kind == 5:
            edges = struct.unpack("!" + "I" * ((len(p) - 2) // 4), p[2:])
            expected["sack_blocks"] = tuple(zip(edges[::2], edges[1::2], strict=True))
    assert parse_tcp_options(raw) == TcpOptions(**expected)  # type: ignore[arg-type]


@given(st.lists(_option, min_size=1, max_size=8), st.data())
def test_truncation_keeps_what_was_parsed(parts: list[bytes], data: st.DataObject) -> None:
    # Cut the option bytes anywhere (as a short header or snaplen would): at an option
    # boundary the prefix parses cleanly; inside an option the parse stops there, flags
    # malformed, and keeps exactly what the complete options before it gave.
    raw = b"".join(parts)
    cut = data.draw(st.integers(0, len(raw)))
    boundaries = [0]
    for p in parts:
        boundaries.append(boundaries[-1] + len(p))
    whole = max(b for b in boundaries if b <= cut)
    before = parse_tcp_options(raw[:whole])
    got = parse_tcp_options(raw[:cut])
    if cut == whole:
        assert got == before
        assert not got.malformed
    else:
        assert got.malformed
        assert got == TcpOptions(
            before.mss, before.wscale, before.sack_permitted, before.sack_blocks,
            before.tsval, before.tsecr, True,
        )  # fmt: skip
