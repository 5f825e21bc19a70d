"""Link-layer type numbers (LINKTYPE_* / DLT_*) that the decoder understands."""

from __future__ import annotations

NULL = 0  # BSD loopback, address family in host byte order
ETHERNET = 1
RAW_12 = 12  # DLT_RAW on most BSDs
RAW_14 = 14  # DLT_RAW on OpenBSD
RAW = 101  # LINKTYPE_RAW
LOOP = 108  # OpenBSD loopback, address family in network byte order
LINUX_SLL = 113
NFLOG = 239
IPV4 = 228
IPV6 = 229
LINUX_SLL2 = 276

RAW_IP = frozenset({RAW_12, RAW_14, RAW, IPV4, IPV6})
SUPPORTED = frozenset({NULL, ETHERNET, LOOP, LINUX_SLL, LINUX_SLL2, NFLOG}) | RAW_IP

NAMES = {
    NULL: "null",
    ETHERNET: "ethernet",
    RAW_12: "raw",
    RAW_14: "raw",
    RAW: "raw",
    LOOP: "loop",
    LINUX_SLL: "linux-sll",
    LINUX_SLL2: "linux-sll2",
    NFLOG: "nflog",
    IPV4: "ipv4",
    IPV6: "ipv6",
}

# BSD address families for IPv6 differ by OS (Linux 10, NetBSD/OpenBSD 24, FreeBSD 28, Darwin 30).
AF_INET = 2
AF_INET6 = frozenset({10, 24, 28, 30})

ETH_IPV4 = 0x0800
ETH_IPV6 = 0x86DD
ETH_VLAN = frozenset({0x8100, 0x88A8, 0x9100})
ETH_MPLS = frozenset({0x8847, 0x8848})
