#!/usr/bin/env python3
"""Make ``synscan.pcap``: a real SYN scan where nothing answers, and one handshake answered late.

Run as root: ``python samples/make_synscan.py [--out samples/synscan.pcap]``. It

* creates the namespace ``halfopen-ns`` and the veth pair ``halfopen0`` (host, 10.77.0.1/24)
  / ``halfopen1`` (namespace, no address, so the namespace's kernel stays silent), IPv6 off,
  with a permanent neighbour entry for the target 10.77.0.3 (the namespace's MAC), so frames go
  out without ARP and nothing answers them;
* captures on ``halfopen0`` with tcpdump;
* from the host: a kernel ``connect()`` to 10.77.0.3:8080, which a responder in the namespace
  (this script with ``--responder``, a raw AF_PACKET socket) answers with a SYN-ACK 0.8 s later
  (a tarpit's delay; the kernel then ACKs and the client aborts with RST, SO_LINGER 0);
  meanwhile a raw-socket SYN scan in nmap ``-sS`` style (one source port, window 1024, MSS
  option) of ports 1-2000 of 10.77.0.3; then 50 non-blocking kernel ``connect()`` calls to
  ports 3001-3050, which Linux retransmits after its 1 s initial RTO;
* stops everything and removes the namespace and veths, also on error.

Timestamps, ISNs and the client ports differ from run to run; the shape is fixed.
"""

from __future__ import annotations

import argparse
import os
import random
import socket
import struct
import subprocess
import sys
import time
from pathlib import Path

NS = "halfopen-ns"
HOST_IF, NS_IF = "halfopen0", "halfopen1"
HOST_IP, TARGET_IP = "10.77.0.1", "10.77.0.3"
LATE_PORT = 8080
LATE_DELAY_S = 0.8  # below Linux's 1 s initial SYN RTO: the SYN-ACK answers the first SYN
SCAN_PORTS = range(1, 2001)
SCAN_SPORT = 51234
KERNEL_PORTS = range(3001, 3051)


def sh(*cmd: str, check: bool = True) -> None:
    subprocess.run(
        cmd,
        check=check,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL if not check else None,
    )


def csum(b: bytes) -> int:
    if len(b) % 2:
        b += b"\0"
    s = sum(struct.unpack(f"!{len(b) // 2}H", b))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


def ip_tcp(
    src: str,
    dst: str,
    sport: int,
    dport: int,
    seq: int,
    ack: int,
    flags: int,
    win: int,
    opts: bytes,
    ip_id: int,
) -> bytes:
    s, d = socket.inet_aton(src), socket.inet_aton(dst)
    thl = 20 + len(opts)
    tcp = (
        struct.pack("!HHIIBBHHH", sport, dport, seq, ack, (thl // 4) << 4, flags, win, 0, 0) + opts
    )
    tcp = (
        tcp[:16]
        + struct.pack("!H", csum(s + d + struct.pack("!BBH", 0, 6, len(tcp)) + tcp))
        + tcp[18:]
    )
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(tcp), ip_id, 0x4000, 64, 6, 0, s, d)
    return ip[:10] + struct.pack("!H", csum(ip)) + ip[12:] + tcp


def responder() -> None:
    """In the namespace: answer SYNs to TARGET_IP:LATE_PORT with a SYN-ACK, LATE_DELAY_S later."""
    sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x0800))
    sock.bind((NS_IF, 0))
    my_mac = sock.getsockname()[4]
    sock.settimeout(0.05)
    pending: list[tuple[float, bytes]] = []
    target = socket.inet_aton(TARGET_IP)
    while True:
        now = time.monotonic()
        for due, frame in [p for p in pending if p[0] <= now]:
            sock.send(frame)
            pending.remove((due, frame))
        try:
            fr = sock.recv(65535)
        except TimeoutError:
            continue
        if len(fr) < 54 or fr[23] != 6 or fr[30:34] != target:
            continue
        ihl = (fr[14] & 15) * 4
        t = 14 + ihl
        sport, dport, seq = struct.unpack("!HHI", fr[t : t + 8])
        flags = fr[t + 13]
        if dport != LATE_PORT or flags & 0x12 != 0x02:
            continue
        pkt = ip_tcp(
            TARGET_IP,
            socket.inet_ntoa(fr[26:30]),
            LATE_PORT,
            sport,
            random.getrandbits(32),
            (seq + 1) & 0xFFFFFFFF,
            0x12,
            65160,
            b"\x02\x04\x05\xb4",
            random.getrandbits(16),
        )
        pending.append((now + LATE_DELAY_S, fr[6:12] + my_mac + b"\x08\x00" + pkt))


def scan() -> None:
    raw = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
    for i, port in enumerate(SCAN_PORTS):
        pkt = ip_tcp(
            HOST_IP,
            TARGET_IP,
            SCAN_SPORT,
            port,
            random.getrandbits(32),
            0,
            0x02,
            1024,
            b"\x02\x04\x05\xb4",
            (i * 7919) & 0xFFFF,
        )
        raw.sendto(pkt, (TARGET_IP, 0))
    raw.close()


def late_client() -> socket.socket:
    s = socket.socket()
    s.settimeout(5)
    s.connect((TARGET_IP, LATE_PORT))  # returns once the late SYN-ACK came and was ACKed
    return s


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--out", type=Path, default=Path(__file__).with_name("synscan.pcap"))
    ap.add_argument("--responder", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.responder:
        responder()
        return
    if os.geteuid() != 0:
        sys.exit("make_synscan.py needs root (namespaces, raw sockets, tcpdump)")
    sh("ip", "netns", "del", NS, check=False)
    sh("ip", "link", "del", HOST_IF, check=False)
    procs: list[subprocess.Popen[bytes]] = []
    socks: list[socket.socket] = []
    try:
        sh("ip", "netns", "add", NS)
        sh("ip", "link", "add", HOST_IF, "type", "veth", "peer", "name", NS_IF)
        sh("ip", "link", "set", NS_IF, "netns", NS)
        sh("sysctl", "-qw", f"net.ipv6.conf.{HOST_IF}.disable_ipv6=1")
        sh("ip", "netns", "exec", NS, "sysctl", "-qw", f"net.ipv6.conf.{NS_IF}.disable_ipv6=1")
        sh("ip", "addr", "add", f"{HOST_IP}/24", "dev", HOST_IF)
        sh("ip", "link", "set", HOST_IF, "up")
        sh("ip", "netns", "exec", NS, "ip", "link", "set", NS_IF, "up")
        mac = subprocess.run(
            ["ip", "netns", "exec", NS, "cat", f"/sys/class/net/{NS_IF}/address"],
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()
        sh("ip", "neigh", "replace", TARGET_IP, "lladdr", mac, "dev", HOST_IF, "nud", "permanent")
        procs.append(
            subprocess.Popen(["ip", "netns", "exec", NS, sys.executable, __file__, "--responder"])
        )
        tmp = args.out.with_suffix(".tmp.pcap")
        procs.append(
            subprocess.Popen(
                [
                    "tcpdump",
                    "-i",
                    HOST_IF,
                    "-s",
                    "0",
                    "-n",
                    "-U",
                    "-w",
                    str(tmp),
                    "-Z",
                    "root",
                    "tcp",
                ],
                stderr=subprocess.DEVNULL,
            )
        )
        time.sleep(1.5)  # tcpdump and the responder are listening
        import threading

        box: list[socket.socket] = []
        th = threading.Thread(target=lambda: box.append(late_client()))
        th.start()
        time.sleep(0.05)
        scan()
        th.join()
        late = box[0]
        late.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        late.close()  # an abort: RST
        time.sleep(0.2)
        for port in KERNEL_PORTS:
            s = socket.socket()
            s.setblocking(False)
            s.connect_ex((TARGET_IP, port))
            socks.append(s)
        time.sleep(1.6)  # one retransmission each (Linux: 1 s initial RTO)
        procs[1].terminate()
        procs[1].wait(timeout=10)
        tmp.replace(args.out)
        print(f"wrote {args.out}")
    finally:
        for s in socks:
            s.close()
        for p in procs:
            if p.poll() is None:
                p.terminate()
                try:
                    p.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    p.kill()
        sh("ip", "netns", "del", NS, check=False)
        sh("ip", "link", "del", HOST_IF, check=False)


if __name__ == "__main__":
    main()
