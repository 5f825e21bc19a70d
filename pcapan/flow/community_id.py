"""Community ID v1 flow hashing (https://github.com/corelight/community-id-spec).

The Community ID lets a user join pcapan's tables with Zeek, Suricata, Wireshark and Arkime on
one string. Version 1 is::

    "1:" + base64(sha1(seed . saddr . daddr . proto . 0 . sport . dport))

with every field in network byte order (seed and ports 2 bytes, addresses 4 or 16 bytes, proto
1 byte followed by one zero byte of padding so the input stays 32-bit aligned), and the two
endpoints ordered so that the numerically smaller ``(address, port)`` comes first, which makes
both directions of a flow hash alike.

ICMP and ICMPv6 have no ports; like Zeek (whose logic the spec adopts), the message type is the
"source port" and, for request/reply pairs (echo, timestamp, router solicitation, ...), the
counterpart type is the "destination port", so a request and its reply share an ID. Other ICMP
messages (errors, redirects, ...) are one-way: the "destination port" is the code and the
endpoints are never swapped. Protocols other than TCP, UDP, SCTP, ICMP and ICMPv6 hash only
addresses and protocol.
"""

from __future__ import annotations

import base64
import hashlib
import struct

from pcapan.errors import FlowError

PROTO_ICMP = 1
PROTO_TCP = 6
PROTO_UDP = 17
PROTO_ICMPV6 = 58
PROTO_SCTP = 132

# Protocols whose tuple includes ports (or, for the ICMPs, type/code mapped to ports). For any
# other protocol the spec hashes addresses and protocol only.
PORT_PROTOS = frozenset({PROTO_ICMP, PROTO_TCP, PROTO_UDP, PROTO_ICMPV6, PROTO_SCTP})

# Request/reply type pairs, from Zeek's ICMP4_counterpart()/ICMP6_counterpart() as mirrored by
# the spec's reference implementation (pycommunityid). A type found here is two-way: its
# counterpart stands in for the destination port. Any other type is one-way.
ICMP4_COUNTERPART: dict[int, int] = {
    8: 0,  # echo request -> echo reply
    0: 8,
    13: 14,  # timestamp -> timestamp reply
    14: 13,
    15: 16,  # information request -> information reply
    16: 15,
    10: 9,  # router solicitation -> router advertisement
    9: 10,
    17: 18,  # address mask request -> address mask reply
    18: 17,
}
ICMP6_COUNTERPART: dict[int, int] = {
    128: 129,  # echo request -> echo reply
    129: 128,
    130: 131,  # MLD listener query -> report
    131: 130,
    133: 134,  # router solicitation -> router advertisement
    134: 133,
    135: 136,  # neighbour solicitation -> neighbour advertisement
    136: 135,
    139: 140,  # node information ("who are you") request -> reply
    140: 139,
    144: 145,  # home agent address discovery request -> reply
    145: 144,
}

_SEED = struct.Struct("!H")
_TAIL_PORTS = struct.Struct("!BxHH")  # proto, padding byte, sport, dport
_TAIL_NOPORTS = struct.Struct("!Bx")  # proto, padding byte


def icmp_port_equivalents(proto: int, icmp_type: int, icmp_code: int) -> tuple[int, int, bool]:
    """Map an ICMP/ICMPv6 type and code to ``(sport, dport, one_way)`` as Zeek does."""
    table = ICMP4_COUNTERPART if proto == PROTO_ICMP else ICMP6_COUNTERPART
    counterpart = table.get(icmp_type)
    if counterpart is None:
        return icmp_type, icmp_code, True
    return icmp_type, counterpart, False


def community_id_digest(
    proto: int, src: bytes, dst: bytes, sport: int, dport: int, seed: int = 0
) -> bytes:
    """The raw 20-byte SHA1 digest behind :func:`community_id` (the spec's "no base64" form)."""
    if len(src) not in (4, 16) or len(dst) != len(src):
        # Mixed families or a wrong length cannot come from one IP header: a caller bug.
        raise FlowError(
            f"community_id needs two packed addresses of one family, got {len(src)} and "
            f"{len(dst)} bytes"
        )
    if not 0 <= proto <= 255:
        raise FlowError(f"IP protocol number out of range: {proto}")
    if not 0 <= seed <= 0xFFFF:
        raise FlowError(f"Community ID seed must fit in 16 bits: {seed}")

    if proto in PORT_PROTOS:
        if not (0 <= sport <= 0xFFFF and 0 <= dport <= 0xFFFF):
            raise FlowError(f"port (or ICMP type/code) out of range: {sport}, {dport}")
        one_way = False
        if proto in (PROTO_ICMP, PROTO_ICMPV6):
            sport, dport, one_way = icmp_port_equivalents(proto, sport, dport)
        # Bytes compare lexicographically, which for equal-length big-endian addresses is
        # numeric order; equal addresses fall through to the ports, as the spec says.
        if not one_way and (src > dst or (src == dst and sport > dport)):
            src, dst, sport, dport = dst, src, dport, sport
        tail = _TAIL_PORTS.pack(proto, sport, dport)
    else:
        if src > dst:
            src, dst = dst, src
        tail = _TAIL_NOPORTS.pack(proto)
    return hashlib.sha1(_SEED.pack(seed) + src + dst + tail, usedforsecurity=False).digest()


def community_id(proto: int, src: bytes, dst: bytes, sport: int, dport: int, seed: int = 0) -> str:
    """Community ID v1 of a flow, e.g. ``"1:LQU9qZlK+B5F3KDmev6m5PMibrg="``.

    ``src`` and ``dst`` are packed addresses (4 bytes for IPv4, 16 for IPv6, both the same);
    ``sport``/``dport`` are the ports for TCP, UDP and SCTP, and the ICMP type and code for ICMP
    (proto 1) and ICMPv6 (proto 58); for any other protocol they are ignored. Either direction
    of a flow gives the same ID. Raises :class:`~pcapan.errors.FlowError` on inputs no packet
    can produce (mixed address families, out-of-range numbers).
    """
    digest = community_id_digest(proto, src, dst, sport, dport, seed)
    return "1:" + base64.b64encode(digest).decode("ascii")
