#!/usr/bin/env python3
"""Make the tunnel and link-layer sample captures in ``samples/encap/`` (``tunnel-*``, ``link-*``).

They live in their own folder: the tests that read every capture of ``samples/`` (golden
tables, tshark's conversation table) assume one IP layer per packet; ``tests/test_encap.py``
compares these with tshark instead.

Run as root:  ``python samples/make_tunnels.py``  (``--reencap-only`` needs no root)

Two steps:

1. **Real tunnels made by the kernel.** Two network namespaces ``linklayers-tun-<pid>-a`` and
   ``-b`` joined by a veth pair (underlay 192.0.2.1/2 and 2001:db8::1/2, offloads off, so the
   capture shows ordinary segments), a VXLAN device in each over IPv4 (VNI 42, inner
   10.10.1.0/24) and one over IPv6 (VNI 4242, inner fd00:42::/64); ``python -m http.server`` in
   b, ``curl`` in a fetches a 3000-byte file over each; tcpdump on the underlay veth in a writes
   ``tunnel-vxlan.pcap``. For every other kind (GENEVE, GRE, gretap, ERSPAN II/III, ipip,
   sit, ip6tnl, ip6gre) the script first asks the kernel (``ip link add ... type X``); the
   kernel these samples were made on (6.18, no loadable modules) has only vxlan, so those kinds
   take step 2 (the probe's answer is logged).
2. **Re-encapsulation of those real packets** (``--reencap-only`` starts here): the inner
   Ethernet frames of ``tunnel-vxlan.pcap`` (both HTTP connections with their ARP/ND), with
   their own timestamps, are wrapped again with scapy's encoders into each tunnel kind and each
   link layer the kernel cannot make here, one file each:

   * ``tunnel-geneve.pcap`` (UDP 6081, VNI 7, one 8-byte option), ``tunnel-gre.pcap`` (GRE with
     checksum, key 5 and sequence numbers, IP inside), ``tunnel-gretap.pcap`` (GRE 0x6558,
     Ethernet inside), ``tunnel-ip6gre.pcap`` (GRE over IPv6), ``tunnel-erspan2.pcap`` and
     ``tunnel-erspan3.pcap`` (mirror sessions 123 and 321 to a collector 192.0.2.9: both
     directions travel one way, as mirrored traffic does), ``tunnel-ipip.pcap`` (IPv4 in
     IPv4), ``tunnel-6in4.pcap`` (IPv6 in IPv4), ``tunnel-ip6ip6.pcap``, ``tunnel-4in6.pcap``;
     the IP-in-IP kinds carry only the connection of the matching inner version (and the
     outer IPv4 packets go 192.0.2.1<>192.0.2.2 as the kernel's would);
   * ``link-radiotap.pcap`` (127), ``link-ppi.pcap`` (192), ``link-prism.pcap`` (119),
     ``link-avs.pcap`` (163), ``link-80211.pcap`` (105): 802.11 QoS data frames with LLC/SNAP,
     client-to-server frames ToDS and server-to-client frames FromDS; the IPv6 connection goes
     over a four-address (ToDS and FromDS, WDS) link with plain (non-QoS) data frames; plus a
     beacon, an ACK, a null-data frame and a protected data frame, which are counted and not
     decoded; ``link-ppp.pcap`` (9, with address/control bytes), ``link-ppp-hdlc.pcap`` (50),
     ``link-pppoe.pcap`` (Ethernet, PPPoE session 0x8864), ``link-ppp-ether.pcap`` (51),
     ``link-chdlc.pcap`` (104), ``link-ipoib.pcap`` (242, Linux's 44-byte IPoIB header).

   AVS and IPoIB headers are packed with struct (scapy has no encoder for them).

Every file is then read back with tshark, which must find the same HTTP requests and
responses (method, URI, status, inner addresses) as in the inner frames; the script fails
otherwise. Namespaces (and the processes in them) are removed on every exit; namespaces left by
an earlier killed run are removed at the start.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import struct
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from make_samples import Procs, _raise_on_sigterm, capture, log, run  # noqa: E402

PREFIX = "linklayers-tun-"
HTTP_PORT = 8080
BODY_SIZE = 3000  # two segments at the 1450-byte VXLAN MTU: data, not just headers
KERNEL_KINDS = {
    "geneve": "geneve id 7 remote {peer4}",
    "gre": "gre local {me4} remote {peer4} key 5 icsum ocsum iseq oseq",
    "gretap": "gretap local {me4} remote {peer4}",
    "erspan2": "erspan seq key 10 local {me4} remote {peer4} erspan_ver 1 erspan 123",
    "erspan3": "erspan seq key 11 local {me4} remote {peer4} erspan_ver 2 erspan_dir ingress erspan_hwid 7",
    "ipip": "ipip local {me4} remote {peer4}",
    "6in4": "sit local {me4} remote {peer4}",
    "ip6ip6": "ip6tnl mode ip6ip6 local {me6} remote {peer6}",
    "4in6": "ip6tnl mode ipip6 local {me6} remote {peer6}",
    "ip6gre": "ip6gre local {me6} remote {peer6}",
}
UNDERLAY = {"a": ("192.0.2.1", "2001:db8::1"), "b": ("192.0.2.2", "2001:db8::2")}


# --- step 1: the kernel ----------------------------------------------------------------------
def cleanup_stale() -> None:
    for line in run(["ip", "netns", "list"], check=False).stdout.decode().splitlines():
        name = line.split()[0] if line.strip() else ""
        if name.startswith(PREFIX):
            run(["ip", "netns", "del", name], check=False)


@contextlib.contextmanager
def namespaces() -> Iterator[tuple[str, str]]:
    a, b = f"{PREFIX}{os.getpid()}-a", f"{PREFIX}{os.getpid()}-b"
    try:
        for ns in (a, b):
            run(["ip", "netns", "add", ns])
            run(["ip", "-n", ns, "link", "set", "lo", "up"])
        run(
            [
                "ip",
                "link",
                "add",
                "llvA",
                "netns",
                a,
                "type",
                "veth",
                "peer",
                "name",
                "llvB",
                "netns",
                b,
            ]
        )
        for ns, dev, side in ((a, "llvA", "a"), (b, "llvB", "b")):
            v4, v6 = UNDERLAY[side]
            run(["ip", "-n", ns, "addr", "add", f"{v4}/24", "dev", dev])
            run(["ip", "-n", ns, "addr", "add", f"{v6}/64", "dev", dev, "nodad"])
            run(["ip", "-n", ns, "link", "set", dev, "up"])
            offloads_off(ns, dev)
        yield a, b
    finally:
        for ns in (a, b):
            # Killing the namespace's processes first: a server left running keeps it alive.
            pids = run(["ip", "netns", "pids", ns], check=False).stdout.decode().split()
            for pid in pids:
                with contextlib.suppress(ProcessLookupError, ValueError):
                    os.kill(int(pid), signal.SIGKILL)
            run(["ip", "netns", "del", ns], check=False)


def offloads_off(ns: str, dev: str) -> None:
    # TSO/GSO off: the capture shows wire-sized segments; tx checksum off: real checksums.
    run(
        [
            "ip",
            "netns",
            "exec",
            ns,
            "ethtool",
            "-K",
            dev,
            "tso",
            "off",
            "gso",
            "off",
            "gro",
            "off",
            "tx",
            "off",
        ],
        check=False,
    )


def vxlan(a: str, b: str) -> None:
    for ns, side, peer in ((a, "a", "b"), (b, "b", "a")):
        me4, me6 = UNDERLAY[side]
        p4, p6 = UNDERLAY[peer]
        n = "1" if side == "a" else "2"
        run(
            [
                "ip",
                "-n",
                ns,
                "link",
                "add",
                "vx4",
                "type",
                "vxlan",
                "id",
                "42",
                "local",
                me4,
                "remote",
                p4,
                "dstport",
                "4789",
            ]
        )
        run(["ip", "-n", ns, "addr", "add", f"10.10.1.{n}/24", "dev", "vx4"])
        run(
            [
                "ip",
                "-n",
                ns,
                "link",
                "add",
                "vx6",
                "type",
                "vxlan",
                "id",
                "4242",
                "local",
                me6,
                "remote",
                p6,
                "dstport",
                "4789",
            ]
        )
        run(["ip", "-n", ns, "addr", "add", f"fd00:42::{n}/64", "dev", "vx6", "nodad"])
        # The VXLAN header costs 50 bytes over IPv4, 70 over IPv6: inner MTUs that keep the
        # outer packets within the veth's 1500 (no outer fragments); no link-local addresses
        # (no MLD reports or router solicitations inside the tunnel).
        for dev, mtu in (("vx4", "1450"), ("vx6", "1430")):
            run(["ip", "-n", ns, "link", "set", dev, "mtu", mtu, "addrgenmode", "none"])
            run(["ip", "-n", ns, "link", "set", dev, "up"])
            offloads_off(ns, dev)


def serve_and_fetch(procs: Procs, a: str, b: str, urls: list[str], docroot: Path) -> None:
    srv = procs.start(
        [
            "ip",
            "netns",
            "exec",
            b,
            sys.executable,
            "-m",
            "http.server",
            str(HTTP_PORT),
            "--bind",
            "::",
            "--directory",
            str(docroot),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 10
    while (
        run(
            ["ip", "netns", "exec", b, "ss", "-ltn", f"sport = :{HTTP_PORT}"], check=False
        ).stdout.count(b"LISTEN")
        == 0
    ):
        if time.monotonic() > deadline or srv.poll() is not None:
            raise RuntimeError("http.server did not start")
        time.sleep(0.1)
    for url in urls:
        r = run(
            [
                "ip",
                "netns",
                "exec",
                a,
                "curl",
                "-sS",
                "-o",
                "/dev/null",
                "-w",
                "%{http_code}",
                "--max-time",
                "10",
                url,
            ]
        )
        if r.stdout != b"200":
            raise RuntimeError(f"{url}: HTTP {r.stdout!r}")


def kernel_captures(out: Path) -> None:
    cleanup_stale()
    procs = Procs()
    with tempfile.TemporaryDirectory() as tmp:
        docroot = Path(tmp)
        (docroot / "hello.txt").write_bytes(bytes((i * 7 + 3) % 26 + 97 for i in range(BODY_SIZE)))
        try:
            with namespaces() as (a, b):
                vxlan(a, b)
                with capture(
                    procs, out / "tunnel-vxlan.pcap", "udp port 4789", iface="llvA", netns=a
                ):
                    serve_and_fetch(
                        procs,
                        a,
                        b,
                        [
                            f"http://10.10.1.2:{HTTP_PORT}/hello.txt",
                            f"http://[fd00:42::2]:{HTTP_PORT}/hello.txt",
                        ],
                        docroot,
                    )
            for kind, spec in KERNEL_KINDS.items():
                with namespaces() as (a, b):
                    args = spec.format(
                        me4="192.0.2.1", peer4="192.0.2.2", me6="2001:db8::1", peer6="2001:db8::2"
                    )
                    r = run(
                        ["ip", "-n", a, "link", "add", "t0", "type", *args.split()], check=False
                    )
                    if r.returncode != 0:
                        log(
                            f"{kind}: the kernel cannot make it here ({r.stderr.decode().strip()}); re-encapsulated instead"
                        )
                    else:
                        log(
                            f"{kind}: the kernel has it, but the committed sample is re-encapsulated (same files everywhere)"
                        )
        finally:
            procs.stop_all()


# --- step 2: re-encapsulation ----------------------------------------------------------------
def read_inner(path: Path) -> list[tuple[float, bytes]]:
    """The inner Ethernet frames of a VXLAN capture, with the outer frames' timestamps."""
    from scapy.layers.l2 import Ether
    from scapy.layers.vxlan import VXLAN
    from scapy.utils import RawPcapReader

    frames = []
    for data, meta in RawPcapReader(str(path)):
        pkt = Ether(data)
        if VXLAN not in pkt:
            raise RuntimeError(f"{path}: frame without VXLAN")
        ts = meta.sec + meta.usec / 1e6 if hasattr(meta, "usec") else meta.tshigh
        frames.append((ts, bytes(pkt[VXLAN].payload)))
    return frames


def write_pcap(path: Path, linktype: int, frames: list[tuple[float, bytes]]) -> None:
    """A microsecond pcap with the given link type (written by hand: exact control of both)."""
    with path.open("wb") as f:
        f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 262144, linktype))
        for ts, data in frames:
            sec = int(ts)
            usec = round((ts - sec) * 1e6)
            f.write(struct.pack("<IIII", sec, usec, len(data), len(data)))
            f.write(data)


def _client_to_server(eth: bytes) -> bool:
    """True for frames sent by the namespace a side (the HTTP client): MAC learned from ARP/ND
    is not known here, so tell by the inner source address."""
    from scapy.layers.inet import IP
    from scapy.layers.inet6 import IPv6
    from scapy.layers.l2 import ARP, Ether

    p = Ether(eth)
    if IP in p:
        return p[IP].src == "10.10.1.1"
    if IPv6 in p:
        return p[IPv6].src.startswith("fd00:42::1") or p[IPv6].src.startswith("fe80")
    if ARP in p:
        return p[ARP].psrc == "10.10.1.1"
    return True


def reencapsulate(out: Path) -> list[str]:
    from scapy.contrib.chdlc import CHDLC
    from scapy.contrib.erspan import ERSPAN_II, ERSPAN_III
    from scapy.contrib.geneve import GENEVE, GeneveOptions
    from scapy.layers.dot11 import Dot11, Dot11Beacon, Dot11QoS, PrismHeader, RadioTap
    from scapy.layers.inet import IP, UDP
    from scapy.layers.inet6 import IPv6
    from scapy.layers.l2 import GRE, LLC, SNAP, Ether
    from scapy.layers.ppi import PPI
    from scapy.layers.ppp import HDLC, PPP, PPPoE
    from scapy.packet import Raw

    frames = read_inner(out / "tunnel-vxlan.pcap")
    made: list[str] = []

    def emit(name: str, linktype: int, wrap: Callable[[bytes, bool], bytes | None]) -> None:
        outf = []
        for ts, eth in frames:
            data = wrap(eth, _client_to_server(eth))
            if data is not None:
                outf.append((ts, data))
        write_pcap(out / name, linktype, outf)
        made.append(name)

    def outer4(up: bool) -> IP:
        return IP(src="192.0.2.1", dst="192.0.2.2") if up else IP(src="192.0.2.2", dst="192.0.2.1")

    def outer6(up: bool) -> IPv6:
        return (
            IPv6(src="2001:db8::1", dst="2001:db8::2")
            if up
            else IPv6(src="2001:db8::2", dst="2001:db8::1")
        )

    mac_a, mac_b = "02:00:00:00:00:0a", "02:00:00:00:00:0b"

    def underlay(up: bool) -> Ether:
        return Ether(src=mac_a, dst=mac_b) if up else Ether(src=mac_b, dst=mac_a)

    def ip_of(eth: bytes) -> tuple[int, bytes] | None:
        p = Ether(eth)
        if IP in p:
            return 4, bytes(p[IP])
        if IPv6 in p:
            return 6, bytes(p[IPv6])
        return None

    # -- tunnels
    emit(
        "tunnel-geneve.pcap",
        1,
        lambda eth, up: bytes(
            underlay(up)
            / outer4(up)
            / UDP(sport=49152 + (7 if up else 9), dport=6081)
            / GENEVE(
                vni=7,
                proto=0x6558,
                options=[GeneveOptions(classid=0x0102, type=0x80, data=b"\x00\x00\x00\x2a")],
            )
            / Raw(eth)
        ),
    )

    def gre_ip(eth: bytes, up: bool, v6_underlay: bool = False, **kw: object) -> bytes | None:
        ip = ip_of(eth)
        if ip is None:
            return None
        proto = 0x0800 if ip[0] == 4 else 0x86DD
        outer = outer6(up) if v6_underlay else outer4(up)
        return bytes(underlay(up) / outer / GRE(proto=proto, **kw) / Raw(ip[1]))

    seq = {"n": 0}

    def next_seq() -> int:
        seq["n"] += 1
        return seq["n"]

    emit(
        "tunnel-gre.pcap",
        1,
        lambda eth, up: gre_ip(
            eth,
            up,
            chksum_present=1,
            key_present=1,
            key=5,
            seqnum_present=1,
            sequence_number=next_seq(),
        ),
    )
    emit(
        "tunnel-gretap.pcap",
        1,
        lambda eth, up: bytes(underlay(up) / outer4(up) / GRE(proto=0x6558) / Raw(eth)),
    )
    emit("tunnel-ip6gre.pcap", 1, lambda eth, up: gre_ip(eth, up, v6_underlay=True))

    def mirror() -> Ether:
        return Ether(src=mac_a, dst="02:00:00:00:00:99") / IP(src="192.0.2.1", dst="192.0.2.9")

    emit(
        "tunnel-erspan2.pcap",
        1,
        lambda eth, up: bytes(
            mirror()
            / GRE(proto=0x88BE, seqnum_present=1, sequence_number=next_seq())
            / ERSPAN_II(session_id=123, index=7)
            / Raw(eth)
        ),
    )
    emit(
        "tunnel-erspan3.pcap",
        1,
        lambda eth, up: bytes(
            mirror()
            / GRE(proto=0x22EB, seqnum_present=1, sequence_number=next_seq())
            / ERSPAN_III(session_id=321, hw=7, timestamp=12345)
            / Raw(eth)
        ),
    )

    def ip_in(outer_v6: bool, inner: int) -> Callable[[bytes, bool], bytes | None]:
        def wrap(eth: bytes, up: bool) -> bytes | None:
            ip = ip_of(eth)
            if ip is None or ip[0] != inner:
                return None
            proto = 4 if inner == 4 else 41
            outer = outer6(up) if outer_v6 else outer4(up)
            if outer_v6:
                outer.nh = proto
            else:
                outer.proto = proto
            return bytes(underlay(up) / outer / Raw(ip[1]))

        return wrap

    emit("tunnel-ipip.pcap", 1, ip_in(False, 4))
    emit("tunnel-6in4.pcap", 1, ip_in(False, 6))
    emit("tunnel-ip6ip6.pcap", 1, ip_in(True, 6))
    emit("tunnel-4in6.pcap", 1, ip_in(True, 4))

    # -- link layers: 802.11 family
    ap, sta, srv = "02:00:00:00:01:00", mac_a, mac_b

    def dot11(eth: bytes, up: bool) -> bytes | None:
        p = Ether(eth)
        et = p.type
        body = LLC(dsap=0xAA, ssap=0xAA, ctrl=3) / SNAP(OUI=0, code=et) / p.payload
        if et == 0x86DD:  # the IPv6 connection: a four-address WDS link, plain data frames
            hdr = Dot11(
                type=2, subtype=0, FCfield=0x03, addr1=ap, addr2=ap, addr3=p.dst, addr4=p.src
            )
            return bytes(hdr / body)
        if up:
            hdr = Dot11(type=2, subtype=8, FCfield=0x01, addr1=ap, addr2=sta, addr3=srv)
        else:
            hdr = Dot11(type=2, subtype=8, FCfield=0x02, addr1=sta, addr2=ap, addr3=srv)
        return bytes(hdr / Dot11QoS(TID=0) / body)

    extras = [
        bytes(
            Dot11(type=0, subtype=8, addr1="ff:ff:ff:ff:ff:ff", addr2=ap, addr3=ap)
            / Dot11Beacon(cap="ESS")
        ),
        bytes(Dot11(type=1, subtype=13, addr1=sta)),  # ACK: 10 bytes
        bytes(Dot11(type=2, subtype=4, FCfield=0x01, addr1=ap, addr2=sta, addr3=ap)),  # null data
        bytes(
            Dot11(type=2, subtype=8, FCfield=0x41, addr1=ap, addr2=sta, addr3=srv)
            / Dot11QoS()
            / Raw(b"\x00" * 8 + b"encrypted payload")
        ),
    ]
    t0 = frames[0][0] - 0.001

    def wlan_file(name: str, linktype: int, radio: Callable[[bytes], bytes]) -> None:
        outf = [(t0 + i * 1e-4, radio(x)) for i, x in enumerate(extras)]
        for ts, eth in frames:
            d = dot11(eth, _client_to_server(eth))
            if d is not None:
                outf.append((ts, radio(d)))
        write_pcap(out / name, linktype, outf)
        made.append(name)

    wlan_file("link-80211.pcap", 105, lambda d: d)
    wlan_file(
        "link-radiotap.pcap",
        127,
        lambda d: bytes(
            RadioTap(
                present="Flags+Rate+Channel+dBm_AntSignal",
                Flags=0,
                Rate=108,
                ChannelFrequency=5180,
                ChannelFlags="OFDM+5GHz",
                dBm_AntSignal=-40,
            )
            / Raw(d)
        ),
    )
    wlan_file("link-ppi.pcap", 192, lambda d: bytes(PPI(dlt=105) / Raw(d)))
    wlan_file(
        "link-prism.pcap", 119, lambda d: bytes(PrismHeader(dev=b"wlan0", frmlen=len(d)) / Raw(d))
    )

    def avs(d: bytes) -> bytes:
        # AVS capture header version 2 (magic 0x80211002, Wireshark's wlancap dissector), 80
        # bytes, big-endian: version, length, mactime, hosttime, phytype, channel, datarate,
        # antenna, priority, ssi_type, ssi_signal, ssi_noise, preamble, encoding, then (v2)
        # sequence, drops, receiver address (6), padding (2)
        hdr = struct.pack(
            ">IIQQIIIIIIiiIIII6s2x",
            0x80211002,
            80,
            0,
            0,
            8,
            36,
            540,
            1,
            0,
            2,
            -40,
            -95,
            1,
            6,
            0,
            0,
            bytes(6),
        )
        assert len(hdr) == 80
        return hdr + d

    wlan_file("link-avs.pcap", 163, avs)

    # -- link layers: serial and others (IP packets only: each carries IPv4 or IPv6)
    def ppp_proto(v: int) -> int:
        return 0x0021 if v == 4 else 0x0057

    def with_ip(fn: Callable[[int, bytes, bool], bytes]) -> Callable[[bytes, bool], bytes | None]:
        def wrap(eth: bytes, up: bool) -> bytes | None:
            ip = ip_of(eth)
            return None if ip is None else fn(ip[0], ip[1], up)

        return wrap

    emit(
        "link-ppp.pcap",
        9,
        with_ip(lambda v, ip, up: bytes(HDLC() / PPP(proto=ppp_proto(v)) / Raw(ip))),
    )
    emit(
        "link-ppp-hdlc.pcap",
        50,
        with_ip(lambda v, ip, up: bytes(HDLC() / PPP(proto=ppp_proto(v)) / Raw(ip))),
    )
    emit(
        "link-pppoe.pcap",
        1,
        with_ip(
            lambda v, ip, up: bytes(
                underlay(up) / PPPoE(sessionid=0x1234) / PPP(proto=ppp_proto(v)) / Raw(ip)
            )
        ),
    )
    emit(
        "link-ppp-ether.pcap",
        51,
        with_ip(
            lambda v, ip, up: bytes(PPPoE(sessionid=0x1234) / PPP(proto=ppp_proto(v)) / Raw(ip))
        ),
    )
    emit(
        "link-chdlc.pcap",
        104,
        with_ip(
            lambda v, ip, up: bytes(
                CHDLC(address=0x0F, proto=0x0800 if v == 4 else 0x86DD) / Raw(ip)
            )
        ),
    )

    def ipoib(v: int, ip: bytes, up: bool) -> bytes:
        # Linux IPoIB: a 40-byte pseudo-header (zero first 2 bytes: no GRH, destination address
        # at 20-39: QPN then GID), then the ethertype and 2 reserved bytes.
        dgid = bytes.fromhex(
            "fe800000000000000002c90300001234" if up else "fe800000000000000002c90300005678"
        )
        return (
            bytes(20)
            + struct.pack(">I", 0x48)
            + dgid
            + struct.pack(">HH", 0x0800 if v == 4 else 0x86DD, 0)
            + ip
        )

    emit("link-ipoib.pcap", 242, with_ip(ipoib))
    return made


# --- verification ----------------------------------------------------------------------------
def tshark_http(path: Path) -> list[tuple[str, ...]]:
    """HTTP requests and responses tshark finds, with their innermost source address (the
    Source column) and port."""
    r = subprocess.run(
        [
            "tshark",
            "-r",
            str(path),
            "-Y",
            "http",
            "-T",
            "fields",
            "-E",
            "occurrence=l",
            "-e",
            "_ws.col.Source",
            "-e",
            "tcp.srcport",
            "-e",
            "http.request.method",
            "-e",
            "http.request.uri",
            "-e",
            "http.response.code",
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    return sorted(tuple(line.split("\t")) for line in r.stdout.splitlines() if line.strip())


def verify(out: Path, made: list[str]) -> None:
    """tshark must read the same HTTP from each file as from the kernel's VXLAN capture (the
    IP-in-IP files carry only one inner version: compared with that version's part)."""
    want = tshark_http(out / "tunnel-vxlan.pcap")
    if len(want) != 4:
        raise RuntimeError(
            f"tunnel-vxlan.pcap: expected 2 requests and 2 responses, tshark saw {want}"
        )
    for name in made:
        got = tshark_http(out / name)
        expect = want
        if name in ("tunnel-ipip.pcap", "tunnel-4in6.pcap"):
            expect = [w for w in want if ":" not in w[0]]
        elif name in ("tunnel-6in4.pcap", "tunnel-ip6ip6.pcap"):
            expect = [w for w in want if ":" in w[0]]
        if got != expect:
            raise RuntimeError(f"{name}: tshark reads {got}, expected {expect}")
        log(f"{name}: tshark reads the same {len(got)} HTTP messages")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=HERE / "encap")
    ap.add_argument("--reencap-only", action="store_true", help="skip step 1 (no root needed)")
    args = ap.parse_args()
    signal.signal(signal.SIGTERM, _raise_on_sigterm)
    if not args.reencap_only:
        args.out.mkdir(parents=True, exist_ok=True)
        if os.geteuid() != 0:
            sys.exit("make_tunnels.py: step 1 needs root (namespaces, tcpdump); see --reencap-only")
        kernel_captures(args.out)
    made = reencapsulate(args.out)
    verify(args.out, made)


if __name__ == "__main__":
    main()
