#!/usr/bin/env python3
"""The script people write with dpkt: decode Ethernet/IP(v4 or v6)/TCP for every packet and count
packets and IP bytes per 5-tuple.

Deliberately the plain idiom (``dpkt.pcap.Reader`` plus one ``Ethernet(buf)`` per packet, which
dpkt decodes down to TCP), not a tuned variant: it is the baseline users would reach for.
Prints the number of directional 5-tuples, connections (both directions folded) and totals.
"""

from __future__ import annotations

import sys

import dpkt

FlowKey = tuple[bytes, int, bytes, int, int]


def count(path: str) -> dict[FlowKey, list[int]]:
    flows: dict[FlowKey, list[int]] = {}
    with open(path, "rb") as f:
        for _ts, buf in dpkt.pcap.Reader(f):
            eth = dpkt.ethernet.Ethernet(buf)
            ip = eth.data
            # IPv6 too: the real capture has IPv6 connections, and a peer that skipped them
            # would do less work than pcapan on the same file.
            if isinstance(ip, dpkt.ip.IP):
                length = ip.len
            elif isinstance(ip, dpkt.ip6.IP6):
                length = 40 + ip.plen
            else:
                continue
            tcp = ip.data
            if not isinstance(tcp, dpkt.tcp.TCP):
                continue
            key = (ip.src, tcp.sport, ip.dst, tcp.dport, 6)
            counters = flows.get(key)
            if counters is None:
                flows[key] = [1, length]
            else:
                counters[0] += 1
                counters[1] += length
    return flows


def main() -> int:
    flows = count(sys.argv[1])
    connections = {min((k[0], k[1], k[2], k[3]), (k[2], k[3], k[0], k[1])) for k in flows}
    packets = sum(c[0] for c in flows.values())
    nbytes = sum(c[1] for c in flows.values())
    print(
        f"{len(connections)} connections, {len(flows)} 5-tuples, {packets} TCP packets, {nbytes} IP bytes"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
