"""Community ID v1: the spec's published vectors, properties, and tshark as a differential oracle."""

from __future__ import annotations

import ipaddress
import shutil
import struct
import subprocess
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pcapan.errors import FlowError
from pcapan.flow.community_id import community_id, community_id_digest

CORPUS = Path(__file__).resolve().parents[1].parent / "shared" / "corpus"


def _ip(text: str) -> bytes:
    return ipaddress.ip_address(text).packed


V4_A, V4_B = "1.2.3.4", "5.6.7.8"
V6_A = "fe80:0001:0203:0405:0607:0809:0A0B:0C0D"
V6_B = "fe80:1011:1213:1415:1617:1819:1A1B:1C1D"

# The three tables in the spec's baseline/README.md: (proto, src, dst, sport, dport) and the ID
# with defaults, with seed=1, and the hex digest without base64. For the ICMPs the "ports" are
# the message type and code. Ports of None mean a port-less protocol (RSVP).
SPEC_TABLE = [
    (6, V4_A, V4_B, 1122, 3344, "1:wCb3OG7yAFWelaUydu0D+125CLM=", "1:HhA1B+6CoLbiKPEs5nhNYN4XWfk=",
     "c026f7386ef200559e95a53276ed03fb5db908b3"),
    (6, V4_B, V4_A, 3344, 1122, "1:wCb3OG7yAFWelaUydu0D+125CLM=", "1:HhA1B+6CoLbiKPEs5nhNYN4XWfk=",
     "c026f7386ef200559e95a53276ed03fb5db908b3"),
    (17, V4_A, V4_B, 1122, 3344, "1:0Mu9InQx6z4ZiCZM/7HXi2WMhOg=", "1:OShq+iKDAMVouh/4bMxB9Sz4amw=",
     "d0cbbd227431eb3e1988264cffb1d78b658c84e8"),
    (17, V4_B, V4_A, 3344, 1122, "1:0Mu9InQx6z4ZiCZM/7HXi2WMhOg=", "1:OShq+iKDAMVouh/4bMxB9Sz4amw=",
     "d0cbbd227431eb3e1988264cffb1d78b658c84e8"),
    (132, V4_A, V4_B, 1122, 3344, "1:EKt4MsxuyaE6mL+hmrEkQ9csDD8=", "1:uitchpn5MMGAQKBJh7bIr/bAr7s=",
     "10ab7832cc6ec9a13a98bfa19ab12443d72c0c3f"),
    (132, V4_B, V4_A, 3344, 1122, "1:EKt4MsxuyaE6mL+hmrEkQ9csDD8=", "1:uitchpn5MMGAQKBJh7bIr/bAr7s=",
     "10ab7832cc6ec9a13a98bfa19ab12443d72c0c3f"),
    (1, V4_A, V4_B, 8, 0, "1:crodRHL2FEsHjbv3UkRrfbs4bZ0=", "1:9pr4ZGTICiuZoIh90RRYE2RyXpU=",
     "72ba1d4472f6144b078dbbf752446b7dbb386d9d"),
    (1, V4_B, V4_A, 0, 0, "1:crodRHL2FEsHjbv3UkRrfbs4bZ0=", "1:9pr4ZGTICiuZoIh90RRYE2RyXpU=",
     "72ba1d4472f6144b078dbbf752446b7dbb386d9d"),
    (1, V4_A, V4_B, 11, 0, "1:f/YiSyWqczrTgfUCZlBUnvHRcPk=", "1:1DD7cWGC/Yg91YGsQeni8du3pIA=",
     "7ff6224b25aa733ad381f5026650549ef1d170f9"),
    (58, V6_A, V6_B, 128, 0, "1:0bf7hyMJUwt3fMED7z8LIfRpBeo=", "1:IO27GQzPuCtNnwFvjWALMHu5tJE=",
     "d1b7fb872309530b777cc103ef3f0b21f46905ea"),
    (58, V6_B, V6_A, 129, 0, "1:0bf7hyMJUwt3fMED7z8LIfRpBeo=", "1:IO27GQzPuCtNnwFvjWALMHu5tJE=",
     "d1b7fb872309530b777cc103ef3f0b21f46905ea"),
    (58, V6_A, V6_B, 146, 0, "1:fYC8+pz24E+EhANP1EZhpX0Dw10=", "1:Cv4IKJe56BNkF0MBW2YxQ3Nwc3s=",
     "7d80bcfa9cf6e04f8484034fd44661a57d03c35d"),
    (46, V4_A, V4_B, None, None, "1:ikv3kmf89luf73WPz1jOs49S768=", "1:/buhqeOmaRCopOZFy9HnoJd5XW8=",
     "8a4bf79267fcf65b9fef758fcf58ceb38f52efaf"),
    (46, V4_B, V4_A, None, None, "1:ikv3kmf89luf73WPz1jOs49S768=", "1:/buhqeOmaRCopOZFy9HnoJd5XW8=",
     "8a4bf79267fcf65b9fef758fcf58ceb38f52efaf"),
    (46, V6_A, V6_B, None, None, "1:wQ/2mwrnXP4lmJcHdGL5ePjR+e0=", "1:j6EyyfBzL4vWKHFXgUqb5Az3OxM=",
     "c10ff69b0ae75cfe259897077462f978f8d1f9ed"),
    (46, V6_B, V6_A, None, None, "1:wQ/2mwrnXP4lmJcHdGL5ePjR+e0=", "1:j6EyyfBzL4vWKHFXgUqb5Az3OxM=",
     "c10ff69b0ae75cfe259897077462f978f8d1f9ed"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("proto", "src", "dst", "sport", "dport", "deflt", "seed1", "hexdigest"), SPEC_TABLE
)
def test_spec_baseline_tables(
    proto: int, src: str, dst: str, sport: int | None, dport: int | None,
    deflt: str, seed1: str, hexdigest: str,
) -> None:  # fmt: skip
    # A port-less protocol ignores whatever ports it is given; pass nonsense to prove it.
    sp = 9999 if sport is None else sport
    dp = 1 if dport is None else dport
    assert community_id(proto, _ip(src), _ip(dst), sp, dp) == deflt
    assert community_id(proto, _ip(src), _ip(dst), sp, dp, seed=1) == seed1
    assert community_id_digest(proto, _ip(src), _ip(dst), sp, dp).hex() == hexdigest


# The spec's baseline/baseline_deflt.json and baseline_seed1.json: pycommunityid over the spec's
# combined.pcap. For the ICMPs the file lists the port equivalents, which are fixed points of the
# type/code mapping, so they can be passed as type/code unchanged.
SPEC_JSON = [
    (58, "fe80::200:86ff:fe05:80da", "fe80::260:97ff:fe07:69ea", 135, 136, "1:dGHyGvjMfljg6Bppwm3bg0LO8TY=", "1:kHa1FhMYIT6Ym2Vm2AOtoOARDzY="),
    (58, "fe80::260:97ff:fe07:69ea", "fe80::200:86ff:fe05:80da", 136, 135, "1:dGHyGvjMfljg6Bppwm3bg0LO8TY=", "1:kHa1FhMYIT6Ym2Vm2AOtoOARDzY="),
    (58, "fe80::260:97ff:fe07:69ea", "fe80::200:86ff:fe05:80da", 135, 136, "1:zavyT/cezQr1fmImYCwYnMXbgck=", "1:2hSqmsDZ2kdcY9kbiUzOEBic0iM="),
    (58, "fe80::200:86ff:fe05:80da", "fe80::260:97ff:fe07:69ea", 136, 135, "1:zavyT/cezQr1fmImYCwYnMXbgck=", "1:2hSqmsDZ2kdcY9kbiUzOEBic0iM="),
    (58, "3ffe:501:1800:2345::2", "3ffe:507:0:1:200:86ff:fe05:80da", 3, 0, "1:2ObVBgIn28oZvibYZhZMBgh7WdQ=", "1:lVEtCZpYu84Xqaa++3lXFyuu2n4="),
    (58, "3ffe:501:410:0:2c0:dfff:fe47:33e", "3ffe:507:0:1:200:86ff:fe05:80da", 1, 4, "1:hLZd0XGWojozrvxqE0dWB1iM6R0=", "1:W8MHwXpWzpoSTD+cGcaJr4u0ys8="),
    (58, "3ffe:507:0:1:200:86ff:fe05:80da", "3ffe:501:0:1001::2", 128, 129, "1:+TW+HtLHvV1xnGhV1lv7XoJrqQg=", "1:GfZxjAkDk2MkegpBYHV6tadtFXQ="),
    (58, "3ffe:501:0:1001::2", "3ffe:507:0:1:200:86ff:fe05:80da", 129, 128, "1:+TW+HtLHvV1xnGhV1lv7XoJrqQg=", "1:GfZxjAkDk2MkegpBYHV6tadtFXQ="),
    (58, "fe80::200:86ff:fe05:80da", "ff02::2", 133, 134, "1:hO+sN4H+MG5MY/8hIrXPqc4ZQz0=", "1:L7Ka0ZMYu+J3bL4ulW2PrqyXNo8="),
    (58, "fe80::260:97ff:fe07:69ea", "ff02::1", 134, 133, "1:pkvHqCL88/tg1k4cPigmZXUtL00=", "1:K/ee5UCqAMAQXDorP5nSa2CGLjc="),
    (1, "192.168.0.89", "192.168.0.1", 8, 0, "1:X0snYXpgwiv9TZtqg64sgzUn6Dk=", "1:03g6IloqVBdcZlPyX8r0hgoE7kA="),
    (1, "192.168.0.1", "192.168.0.89", 0, 8, "1:X0snYXpgwiv9TZtqg64sgzUn6Dk=", "1:03g6IloqVBdcZlPyX8r0hgoE7kA="),
    (1, "10.0.0.1", "10.0.0.2", 11, 0, "1:YHxtAirCG//0OzkcVAukqKQN9xM=", "1:XjUibYHaafLQ3pxQeiMI8g25q20="),
    (6, "2001:470:e5bf:dead:4957:2174:e82c:4887", "2607:f8b0:400c:c03::1a", 63943, 25, "1:/qFaeAR+gFe1KYjMzVDsMv+wgU4=", "1:eJYTW6AOzFLlSUoESovMjnu7rMw="),
    (6, "2607:f8b0:400c:c03::1a", "2001:470:e5bf:dead:4957:2174:e82c:4887", 25, 63943, "1:/qFaeAR+gFe1KYjMzVDsMv+wgU4=", "1:eJYTW6AOzFLlSUoESovMjnu7rMw="),
    (132, "192.168.170.8", "192.168.170.56", 7, 7, "1:MP2EtRCAUIZvTw6MxJHLV7N7JDs=", "1:5w3ZRjeKBzqT3zsaEECDGjUbYeg="),
    (132, "192.168.170.56", "192.168.170.8", 7, 7, "1:MP2EtRCAUIZvTw6MxJHLV7N7JDs=", "1:5w3ZRjeKBzqT3zsaEECDGjUbYeg="),
    (6, "128.232.110.120", "66.35.250.204", 34855, 80, "1:LQU9qZlK+B5F3KDmev6m5PMibrg=", "1:3V71V58M3Ksw/yuFALMcW0LAHvc="),
    (6, "66.35.250.204", "128.232.110.120", 80, 34855, "1:LQU9qZlK+B5F3KDmev6m5PMibrg=", "1:3V71V58M3Ksw/yuFALMcW0LAHvc="),
    (17, "192.168.1.52", "8.8.8.8", 54585, 53, "1:d/FP5EW3wiY1vCndhwleRRKHowQ=", "1:Q9We8WO3piVF8yEQBNJF4uiSVrI="),
    (17, "8.8.8.8", "192.168.1.52", 53, 54585, "1:d/FP5EW3wiY1vCndhwleRRKHowQ=", "1:Q9We8WO3piVF8yEQBNJF4uiSVrI="),
    (46, "10.1.12.1", "10.1.12.2", 0, 0, "1:KHlLkgoJW7ifUTyTSgyVfkFHzKw=", "1:rYir8gphR31noO9iDRQmF/BteEI="),
    (46, "10.1.12.2", "10.1.12.1", 0, 0, "1:KHlLkgoJW7ifUTyTSgyVfkFHzKw=", "1:rYir8gphR31noO9iDRQmF/BteEI="),
]  # fmt: skip


@pytest.mark.parametrize(("proto", "src", "dst", "sport", "dport", "deflt", "seed1"), SPEC_JSON)
def test_spec_baseline_json(
    proto: int, src: str, dst: str, sport: int, dport: int, deflt: str, seed1: str
) -> None:
    assert community_id(proto, _ip(src), _ip(dst), sport, dport) == deflt
    assert community_id(proto, _ip(src), _ip(dst), sport, dport, seed=1) == seed1


def test_spec_readme_example() -> None:
    # The spec README's prose example: both directions order to 10.0.0.1, 127.0.0.1, 1234, 80.
    a, b = _ip("10.0.0.1"), _ip("127.0.0.1")
    assert community_id(6, a, b, 1234, 80) == community_id(6, b, a, 80, 1234)


def test_equal_addresses_ordered_by_port() -> None:
    # Loopback to itself: the addresses tie, so the ports decide the order.
    lo = _ip("::1")
    assert community_id(6, lo, lo, 52522, 80) == community_id(6, lo, lo, 80, 52522)
    assert community_id(6, lo, lo, 52522, 80) != community_id(6, lo, lo, 52522, 81)


def test_icmp_one_way_is_not_reordered() -> None:
    # Port unreachable is one-way: the two directions are different "flows".
    a, b = _ip(V4_A), _ip(V4_B)
    assert community_id(1, a, b, 3, 3) != community_id(1, b, a, 3, 3)
    # Two-way types pair with their counterpart regardless of the code field.
    assert (
        community_id(1, a, b, 8, 0) == community_id(1, a, b, 8, 77) == community_id(1, b, a, 0, 0)
    )
    assert community_id(58, a * 4, b * 4, 135, 0) == community_id(58, b * 4, a * 4, 136, 0)


@pytest.mark.parametrize(
    ("proto", "src", "dst", "sport", "dport", "seed"),
    [
        (6, b"\x01" * 4, b"\x01" * 16, 1, 2, 0),  # mixed families
        (6, b"\x01" * 5, b"\x01" * 5, 1, 2, 0),  # not an address length
        (256, b"\x01" * 4, b"\x02" * 4, 1, 2, 0),
        (6, b"\x01" * 4, b"\x02" * 4, 65536, 2, 0),
        (6, b"\x01" * 4, b"\x02" * 4, 1, -1, 0),
        (6, b"\x01" * 4, b"\x02" * 4, 1, 2, 65536),
    ],
)
def test_invalid_input_raises_flow_error(
    proto: int, src: bytes, dst: bytes, sport: int, dport: int, seed: int
) -> None:
    with pytest.raises(FlowError):
        community_id(proto, src, dst, sport, dport, seed)


_addr_pair = st.sampled_from([4, 16]).flatmap(
    lambda n: st.tuples(st.binary(min_size=n, max_size=n), st.binary(min_size=n, max_size=n))
)


@given(
    addrs=_addr_pair,
    proto=st.sampled_from([6, 17, 132, 46, 47, 0, 255]),
    sport=st.integers(0, 65535),
    dport=st.integers(0, 65535),
    seed=st.integers(0, 65535),
)
def test_direction_independent(
    addrs: tuple[bytes, bytes], proto: int, sport: int, dport: int, seed: int
) -> None:
    src, dst = addrs
    fwd = community_id(proto, src, dst, sport, dport, seed)
    assert fwd == community_id(proto, dst, src, dport, sport, seed)
    assert fwd.startswith("1:") and len(fwd) == 2 + 28  # base64 of 20 bytes


# --- differential against tshark's Community ID dissector -----------------------------------

_FIELDS = [
    "ip.src", "ip.dst", "ipv6.src", "ipv6.dst", "ip.proto", "ipv6.nxt",
    "tcp.srcport", "tcp.dstport", "udp.srcport", "udp.dstport", "sctp.srcport", "sctp.dstport",
    "icmp.type", "icmp.code", "icmpv6.type", "icmpv6.code", "communityid",
]  # fmt: skip
# Which tshark fields stand for sport/dport, by protocol; the ICMPs pass type and code.
_PORT_FIELDS = [
    (6, "tcp.srcport", "tcp.dstport"),
    (17, "udp.srcport", "udp.dstport"),
    (132, "sctp.srcport", "sctp.dstport"),
    (1, "icmp.type", "icmp.code"),
    (58, "icmpv6.type", "icmpv6.code"),
]

needs_tshark = pytest.mark.skipif(shutil.which("tshark") is None, reason="tshark not installed")


def _tshark_rows(path: Path) -> list[tuple[int, bytes, bytes, int, int, str]]:
    """(proto, src, dst, sport, dport, tshark's community id) for each single-IP packet."""
    cmd = ["tshark", "-r", str(path), "-n", "--enable-protocol", "communityid", "-T", "fields",
           "-E", "separator=\t", "-E", "occurrence=a"]  # fmt: skip
    for f in _FIELDS:
        cmd += ["-e", f]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True, timeout=120).stdout
    rows = []
    for line in out.splitlines():
        v = dict(zip(_FIELDS, line.split("\t"), strict=True))
        # A comma means a field occurs twice: a tunnel or an ICMP error quoting the offending
        # header. Which layer tshark hashes then is its own choice, so leave those out.
        if not v["communityid"] or any("," in x for x in v.values()):
            continue
        if v["ip.src"]:
            src, dst = _ip(v["ip.src"]), _ip(v["ip.dst"])
            proto = int(v["ip.proto"])
        elif v["ipv6.src"]:
            src, dst = _ip(v["ipv6.src"]), _ip(v["ipv6.dst"])
            proto = -1  # ipv6.nxt is the first extension header, not the transport: use below
        else:
            continue
        for p, sf, df in _PORT_FIELDS:
            if v[sf]:
                rows.append((p, src, dst, int(v[sf]), int(v[df]), v["communityid"]))
                break
        else:
            if proto == -1:
                proto = int(v["ipv6.nxt"])
            rows.append((proto, src, dst, 0, 0, v["communityid"]))
    return rows


def _assert_agrees(rows: list[tuple[int, bytes, bytes, int, int, str]]) -> None:
    mismatches = [(r, community_id(*r[:5])) for r in rows if community_id(*r[:5]) != r[5]]
    assert not mismatches, mismatches[:5]


@needs_tshark
@pytest.mark.tshark
@pytest.mark.corpus
@pytest.mark.parametrize(
    ("relpath", "proto", "family_len"),
    [
        ("ja3/testing/Traces/ssl-curl.pcap", 6, 4),
        ("zeek/testing/btest/Traces/http/connect-with-header.pcap", 6, 16),
        ("ja4/pcap/latest.pcapng", 17, None),
        ("zeek/testing/btest/Traces/ipv6-http-atomic-frag.pcap", 58, 16),
    ],
)
def test_tshark_agrees_on_corpus(relpath: str, proto: int, family_len: int | None) -> None:
    path = CORPUS / relpath
    if not path.exists():
        pytest.skip(f"corpus capture absent: {path}")
    rows = _tshark_rows(path)
    wanted = [r for r in rows if r[0] == proto and (family_len is None or len(r[1]) == family_len)]
    # Guard against a silently broken tshark invocation comparing nothing.
    assert wanted, f"tshark gave no protocol-{proto} Community IDs for {relpath}"
    _assert_agrees(rows)


def _write_raw_ip_pcap(path: Path, packets: list[bytes]) -> None:
    # Classic pcap with LINKTYPE_RAW (101): each record is a bare IPv4 or IPv6 packet.
    with path.open("wb") as f:
        f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 101))
        for i, p in enumerate(packets):
            f.write(struct.pack("<IIII", i, 0, len(p), len(p)) + p)


def _ip4(src: str, dst: str, proto: int, payload: bytes) -> bytes:
    return struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(payload), 1, 0, 64, proto, 0,
                       _ip(src), _ip(dst)) + payload  # fmt: skip


def _ip6(src: str, dst: str, nxt: int, payload: bytes) -> bytes:
    return (
        struct.pack("!IHBB16s16s", 0x60000000, len(payload), nxt, 64, _ip(src), _ip(dst)) + payload
    )


@needs_tshark
@pytest.mark.tshark
def test_tshark_agrees_on_synthetic_packets(tmp_path: Path) -> None:
    # Every branch the corpus lacks: ICMP two-way and one-way types in both directions,
    # ICMPv6, SCTP, a port-less protocol, equal addresses, a seedless run.
    def ports(s: int, d: int) -> bytes:
        return struct.pack("!HH", s, d)

    pkts = []
    for a, b in [("10.0.0.2", "10.0.0.1"), ("10.0.0.1", "10.0.0.2"), ("10.0.0.1", "10.0.0.1")]:
        pkts += [
            _ip4(a, b, 6, ports(80, 1234) + bytes(8) + b"\x50\x02\x20\x00" + bytes(4)),
            _ip4(a, b, 6, ports(1234, 80) + bytes(8) + b"\x50\x02\x20\x00" + bytes(4)),
            _ip4(a, b, 17, ports(53, 40000) + b"\x00\x08\x00\x00"),
            _ip4(a, b, 132, ports(7, 9) + bytes(8)),
            _ip4(a, b, 46, b"\x10\x01\x00\x00\x40\x00\x00\x08"),
        ]
        for icmp_type, code in [
            (8, 0),
            (0, 0),
            (13, 0),
            (14, 0),
            (17, 0),
            (10, 0),
            (9, 0),
            (3, 3),
            (11, 1),
        ]:
            pkts.append(_ip4(a, b, 1, struct.pack("!BBHI", icmp_type, code, 0, 0) + bytes(12)))
    for a, b in [("fe80::2", "fe80::1"), ("fe80::1", "fe80::2"), ("2001:db8::1", "2001:db8::1")]:
        pkts.append(_ip6(a, b, 6, ports(443, 50000) + bytes(8) + b"\x50\x10\x20\x00" + bytes(4)))
        pkts.append(_ip6(a, b, 17, ports(50000, 443) + b"\x00\x08\x00\x00"))
        for icmp_type, code in [(128, 0), (129, 0), (135, 0), (136, 0), (133, 0), (1, 4), (200, 7)]:
            pkts.append(_ip6(a, b, 58, struct.pack("!BBHI", icmp_type, code, 0, 0) + bytes(16)))
    path = tmp_path / "synthetic.pcap"
    _write_raw_ip_pcap(path, pkts)
    rows = _tshark_rows(path)
    assert len(rows) == len(pkts)
    _assert_agrees(rows)
