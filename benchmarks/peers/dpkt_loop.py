#!/usr/bin/env python3
"""The script people write with dpkt: decode Ethernet/IP/TCP for every packet and count
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
            if not isinstance(ip, dpkt.ip.IP):
                continue
            tcp = ip.data
            if not isinstance(tcp, dpkt.tcp.TCP):
                continue
            key = (ip.src, tcp.sport, ip.dst, tcp.dport, ip.p)
            counters = flows.get(key)
            if counters is None:
                flows[key] = [1, ip.len]
            else:
                counters[0] += 1
                counters[1] += ip.len
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
