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
PPP = 9  # PPP, RFC 1661; may start with the RFC 1662 address/control bytes FF 03
PPP_HDLC = 50  # PPP in HDLC-like framing (RFC 1662), or Cisco HDLC
PPP_ETHER = 51  # PPPoE session stage (RFC 2516) without the Ethernet header
C_HDLC = 104  # Cisco HDLC: address, control, 2-byte ethertype
IEEE802_11 = 105  # 802.11 MAC frames, no radio header
PRISM = 119  # Prism monitor-mode header (144 bytes) + 802.11
RADIOTAP = 127  # radiotap header (its own length field) + 802.11
AVS = 163  # AVS monitor-mode header (its own length field) + 802.11
PPI = 192  # Per-Packet Information header (its own length and inner DLT) + 802.11
IPOIB = 242  # Linux IP over InfiniBand: 40-byte GRH pseudo-header, 2-byte type, 2 reserved

WLAN = frozenset({IEEE802_11, PRISM, RADIOTAP, AVS, PPI})
PPP_FAMILY = frozenset({PPP, PPP_HDLC, PPP_ETHER})

RAW_IP = frozenset({RAW_12, RAW_14, RAW, IPV4, IPV6})

# BSD address families for IPv6 differ by OS (Linux 10, NetBSD/OpenBSD 24, FreeBSD 28, Darwin 30).
AF_INET = 2
AF_INET6 = frozenset({10, 24, 28, 30})

ETH_IPV4 = 0x0800
ETH_IPV6 = 0x86DD
ETH_VLAN = frozenset({0x8100, 0x88A8, 0x9100})
ETH_MPLS = frozenset({0x8847, 0x8848})
ETH_PPPOE_SESSION = 0x8864  # RFC 2516 session stage; 0x8863 (discovery) carries no IP
ETH_TEB = 0x6558  # transparent Ethernet bridging: GRE/GENEVE payload is an Ethernet frame
ETH_ERSPAN_2 = 0x88BE  # GRE protocol type of ERSPAN type I and II
ETH_ERSPAN_3 = 0x22EB  # GRE protocol type of ERSPAN type III

# PPP protocol numbers (RFC 1661/1332/5072) for IPv4 and IPv6
PPP_IPV4 = 0x0021
PPP_IPV6 = 0x0057
