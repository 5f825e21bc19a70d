"""Build small TCP conversations with scapy for engine tests (every expected value in the tests
is derived from how the packets are built here, not from pcapan's output)."""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from pathlib import Path

from scapy.layers.inet import IP, TCP
from scapy.layers.inet6 import IPv6
from scapy.layers.l2 import Dot1Q, Ether
from scapy.packet import Packet, Raw
from scapy.utils import PcapWriter


@dataclass
class Conv:
    """One TCP conversation; ``pkts`` are (time, scapy packet) with IP as the top layer."""

    client: str = "10.0.0.1"
    server: str = "10.0.0.2"
    cport: int = 40000
    sport: int = 80
    cisn: int = 1000
    sisn: int = 5000
    t: float = 1_700_000_000.0
    pkts: list[tuple[float, Packet]] = field(default_factory=list)
    cseq: int = 0
    sseq: int = 0

    def __post_init__(self) -> None:
        self.cseq = self.cisn
        self.sseq = self.sisn

    def _ip(self, from_client: bool) -> Packet:
        src, dst = (self.client, self.server) if from_client else (self.server, self.client)
        return IPv6(src=src, dst=dst) if ":" in src else IP(src=src, dst=dst)

    def send(
        self,
        from_client: bool,
        flags: str,
        data: bytes = b"",
        seq: int | None = None,
        ack: int | None = None,
        dt: float = 0.001,
        options: list | None = None,
        window: int = 65535,
    ) -> None:
        self.t += dt
        sp, dp = (self.cport, self.sport) if from_client else (self.sport, self.cport)
        my = self.cseq if from_client else self.sseq
        peer = self.sseq if from_client else self.cseq
        s = my if seq is None else seq
        a = peer if ack is None else ack
        tcp = TCP(
            sport=sp,
            dport=dp,
            flags=flags,
            seq=s % 2**32,
            ack=a % 2**32 if "A" in flags else 0,
            window=window,
            options=options or [],
        )
        # add_payload, not "/": "/" copies both sides, which cost most of the time of a test that
        # sends thousands of segments (the packet is the same).
        pkt = self._ip(from_client)
        pkt.add_payload(tcp)
        if data:
            tcp.add_payload(Raw(data))
        self.pkts.append((self.t, pkt))
        if seq is None:
            adv = len(data) + (1 if "S" in flags else 0) + (1 if "F" in flags else 0)
            if from_client:
                self.cseq += adv
            else:
                self.sseq += adv

    def handshake(self) -> None:
        self.send(True, "S", options=[("MSS", 1460), ("WScale", 7), ("SAckOK", b"")])
        self.send(False, "SA", options=[("MSS", 1400), ("WScale", 8), ("SAckOK", b"")])
        self.send(True, "A")

    def close(self) -> None:
        self.send(True, "FA")
        self.send(False, "FA")
        self.send(True, "A")


def write(
    path: Path,
    convs: list[Conv] | list[tuple[float, Packet]],
    linktype: str = "ether",
    vlans: tuple[int, ...] = (),
) -> Path:
    """Write conversations (merged by time) with the given link layer."""
    items: list[tuple[float, Packet]] = []
    for c in convs:
        if isinstance(c, Conv):
            items.extend(c.pkts)
        else:
            items.append(c)
    items.sort(key=lambda x: x[0])
    dlt = {"ether": 1, "raw": 101}[linktype]
    with PcapWriter(str(path), linktype=dlt, sync=False) as w:
        w.write_header(None)
        for t, p in items:
            # scapy's own timestamp rule (GenericPcapWriter._get_time for a packet's .time)
            w.write_packet(_frame(p, linktype, vlans), sec=float(t), usec=round((t - int(t)) * 1e6))
    return path


# Ethernet header of every frame written: dst 00:00:00:00:00:02, src 00:00:00:00:00:01.
_MACS = bytes.fromhex("000000000002000000000001")
_ETHERTYPE = {IP: 0x0800, IPv6: 0x86DD}


def _frame(p: Packet, linktype: str, vlans: tuple[int, ...]) -> bytes:
    """The frame's bytes, as scapy builds ``Ether(...) / Dot1Q(vlan=v)... / p``, without the
    copies of every layer that "/" makes (most of the time of writing a capture). Packets whose
    top layer is not IP or IPv6 are built by scapy itself."""
    if linktype != "ether":
        return bytes(p)
    etype = _ETHERTYPE.get(type(p))
    if etype is None:
        e = Ether(src="00:00:00:00:00:01", dst="00:00:00:00:00:02")
        for v in vlans:
            e = e / Dot1Q(vlan=v)
        return bytes(e / p)
    head = _MACS
    for v in vlans:
        head += struct.pack("!HH", 0x8100, v & 0x0FFF)
    return head + struct.pack("!H", etype) + bytes(p)
