"""Vectorised decoding of a frame batch: link layer -> IPv4/IPv6 -> TCP header fields.

Every header field of every frame in a batch is pulled out with numpy fancy indexing, so the
cost per frame is a handful of array operations shared by the whole batch. Only rare frames take
a Python path: IPv4/IPv6 fragments (reassembled, then decoded again as raw IP) and NFLOG frames.

Wrapped link layers (radiotap, PPI, Prism, AVS around 802.11) and tunnels (VXLAN, GENEVE, GRE,
ERSPAN, IP-in-IP, 6in4, IPv6-in-IPv6, 4in6) are decoded the same way: the inner frames of a
batch become a sub-batch (same buffer, new offsets and link types) that goes through the same
vectorised code. Each tunnelled TCP segment carries the id of its encapsulation
(:meth:`Decoder.describe_tunnel` renders it), which becomes the connection's ``tunnel_parents``.
Checksums are not verified: captures taken on the sending host carry offloaded (wrong)
checksums, and Zeek (-C), Wireshark and tcptrace default to ignoring them as well.
"""

from __future__ import annotations

import ipaddress
import struct
from dataclasses import dataclass, field

import numpy as np

from pcapan.config import MAX_IPV6_EXT_HEADERS, MAX_TUNNEL_DEPTH, MAX_TUNNELS, MAX_VLAN_TAGS
from pcapan.decode import linktypes as lt
from pcapan.decode.ipfrag import Ipv4Defragmenter
from pcapan.io.batch import FrameBatch

I64 = np.int64
U64 = np.uint64

# IPv4 addresses are stored as IPv4-mapped IPv6 (::ffff:a.b.c.d) in two uint64 halves, so one
# flow key layout serves both families and never confuses them.
V4_MAPPED_LO = np.uint64(0xFFFF00000000)

TCP_FIN, TCP_SYN, TCP_RST, TCP_PSH, TCP_ACK, TCP_URG, TCP_ECE, TCP_CWR, TCP_NS = (
    0x01,
    0x02,
    0x04,
    0x08,
    0x10,
    0x20,
    0x40,
    0x80,
    0x100,
)
_IPV6_EXT_SKIP = np.array([0, 43, 60, 135, 139, 140], dtype=I64)  # length in 8-octet units
_IPV6_AH = 51
_IPV6_FRAG = 44


VXLAN_PORT = 4789  # IANA port for VXLAN (RFC 7348), as Zeek and Wireshark decode it by default
GENEVE_PORT = 6081  # IANA port for GENEVE (RFC 8926), as Zeek and Wireshark decode it by default

# Tunnel kinds (codes in the tunnel key; names as they appear in ``tunnel_parents``).
T_VXLAN, T_GENEVE, T_GRE, T_ERSPAN1, T_ERSPAN2, T_ERSPAN3, T_IP4, T_IP6 = 1, 2, 3, 4, 5, 6, 7, 8
_TUNNEL_NAMES = {
    (T_VXLAN, 4): "vxlan",
    (T_VXLAN, 6): "vxlan",
    (T_GENEVE, 4): "geneve",
    (T_GENEVE, 6): "geneve",
    (T_GRE, 4): "gre",
    (T_GRE, 6): "gre",
    (T_ERSPAN1, 4): "erspan1",
    (T_ERSPAN1, 6): "erspan1",
    (T_ERSPAN2, 4): "erspan2",
    (T_ERSPAN2, 6): "erspan2",
    (T_ERSPAN3, 4): "erspan3",
    (T_ERSPAN3, 6): "erspan3",
    # IP in IP: named by outer and inner version (ipip = 4 in 4, 6in4 = IPv6 in IPv4 ...)
    (T_IP4, 4): "ipip",
    (T_IP4, 6): "4in6",
    (T_IP6, 4): "6in4",
    (T_IP6, 6): "ip6ip6",
}
_TUNNEL_ID_LABEL = {
    T_VXLAN: "vni",
    T_GENEVE: "vni",
    T_GRE: "key",
    T_ERSPAN2: "session",
    T_ERSPAN3: "session",
}

# 802.11 frame control (IEEE 802.11-2020 9.2.4.1)
_WLAN_TYPE_DATA = 2
_WLAN_TODS_FROMDS = 0x03  # both set: four addresses (a wireless distribution system, mesh)
_WLAN_PROTECTED = 0x40
_WLAN_ORDER = 0x80  # in a QoS data frame: a 4-byte HT Control field follows QoS Control
_LLC_SNAP = 0xAAAA03
# Radio headers in front of 802.11 frames (AVS's magic; Prism's header may carry it too)
_AVS_MAGIC = 0x80211000


@dataclass(slots=True)
class DecodeAnomaly:
    frame_no: int
    ts_ns: int
    kind: str
    detail: str


@dataclass(slots=True)
class TcpPackets:
    """Column arrays, one element per decoded TCP segment, in capture order."""

    data: bytes | bytearray | memoryview  # payload offsets index this buffer
    frame_no: np.ndarray
    ts_ns: np.ndarray
    ipver: np.ndarray
    src_hi: np.ndarray
    src_lo: np.ndarray
    dst_hi: np.ndarray
    dst_lo: np.ndarray
    sport: np.ndarray
    dport: np.ndarray
    seq: np.ndarray
    ack: np.ndarray
    flags: np.ndarray
    win: np.ndarray
    tcp_off: np.ndarray  # offset of the TCP header in ``data``
    thl: np.ndarray  # TCP header length in bytes (options = thl - 20)
    payload_off: np.ndarray
    payload_len: np.ndarray  # on the wire (from the IP length)
    payload_cap: np.ndarray  # bytes of it actually captured
    opt_cap: np.ndarray  # bytes of the TCP options actually captured (thl - 20 when all were)
    ip_len: np.ndarray  # IP total length (Zeek's ip_bytes)
    tunnel: np.ndarray  # encapsulation id (0: none), see Decoder.describe_tunnel

    def __len__(self) -> int:
        return int(self.frame_no.shape[0])


@dataclass(slots=True)
class DecodeStats:
    """Counts for the summary: nothing is dropped silently."""

    frames: int = 0
    frame_bytes: int = 0
    ip_packets: dict[str, int] = field(default_factory=dict)  # "tcp", "udp", "icmp", "other:N"
    ip_bytes: dict[str, int] = field(default_factory=dict)
    non_ip_frames: int = 0
    unsupported_linktype_frames: dict[int, int] = field(default_factory=dict)
    malformed: int = 0
    fragments: int = 0
    reassembled: int = 0
    tunnelled: int = 0  # packets found inside tunnels (VXLAN, GENEVE, GRE, ...) and decoded
    wlan_non_data: int = 0  # 802.11 management, control and null-data frames (no payload)
    wlan_protected: int = 0  # 802.11 data frames with the Protected bit (encrypted payload)
    wlan_amsdu: int = 0  # 802.11 A-MSDU data frames (aggregates; their subframes are not decoded)

    def add_ip(self, name: str, packets: int, nbytes: int) -> None:
        if packets:
            self.ip_packets[name] = self.ip_packets.get(name, 0) + packets
            self.ip_bytes[name] = self.ip_bytes.get(name, 0) + nbytes


def _g(u8: np.ndarray, pos: np.ndarray) -> np.ndarray:
    """Bytes at ``pos``. ``take(mode="clip")`` skips the per-element bounds error path that
    plain fancy indexing has (measured ~2x faster); callers already mask out invalid rows."""
    return u8.take(pos, mode="clip")


def _u8(u8: np.ndarray, pos: np.ndarray) -> np.ndarray:
    return _g(u8, pos).astype(I64)


def _be16(u8: np.ndarray, pos: np.ndarray) -> np.ndarray:
    return (_g(u8, pos).astype(I64) << 8) | _g(u8, pos + 1)


def _be32(u8: np.ndarray, pos: np.ndarray) -> np.ndarray:
    return (
        (_g(u8, pos).astype(I64) << 24)
        | (_g(u8, pos + 1).astype(I64) << 16)
        | (_g(u8, pos + 2).astype(I64) << 8)
        | _g(u8, pos + 3)
    )


def _le16(u8: np.ndarray, pos: np.ndarray) -> np.ndarray:
    return _g(u8, pos).astype(I64) | (_g(u8, pos + 1).astype(I64) << 8)


def _le32(u8: np.ndarray, pos: np.ndarray) -> np.ndarray:
    return _le16(u8, pos) | (_le16(u8, pos + 2) << 16)


def _kind_of(et: np.ndarray) -> np.ndarray:
    """Ethertype (or PPP protocol mapped to one) -> 4, 6 or 0."""
    return np.where(et == lt.ETH_IPV4, 4, np.where(et == lt.ETH_IPV6, 6, 0))


def _ppp_ethertype(proto: np.ndarray) -> np.ndarray:
    return np.where(
        proto == lt.PPP_IPV4, lt.ETH_IPV4, np.where(proto == lt.PPP_IPV6, lt.ETH_IPV6, 0)
    )


def _be64(u8: np.ndarray, pos: np.ndarray) -> np.ndarray:
    out = np.zeros(pos.shape[0], dtype=U64)
    for k in range(8):
        out = (out << U64(8)) | _g(u8, pos + k).astype(U64)
    return out


class Decoder:
    """Decodes batches; holds the cross-batch state (IP fragments) and the running counters."""

    def __init__(self) -> None:
        self.defrag = Ipv4Defragmenter()
        self.stats = DecodeStats()
        self.anomalies: list[DecodeAnomaly] = []
        self._warned_linktypes: set[int] = set()
        # (frame index, offset in the combined buffer, IP version, length) of datagrams
        # completed by a fragment in the current batch
        self._extra_rows: list[tuple[int, int, int, int]] = []
        self._batch: FrameBatch | None = None
        # (frame indices, inner offsets, inner lengths, inner link types, tunnel ids) of tunnel
        # packets in the batch being decoded at the current tunnel depth
        self._tunnels: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = []
        # Tunnel ids of the frames of the sub-batch being decoded (None: the batch itself), so
        # that a tunnel inside a tunnel gets a key that includes its parent.
        self._cur_parent: np.ndarray | None = None
        # Interned encapsulations: key -> id; layer i (id i) = (parent id, name, src, dst, extra).
        self._tunnel_ids: dict[tuple[int, ...], int] = {}
        self._tunnel_layers: list[tuple[int, str, str, str, str]] = [(0, "", "", "", "")]
        self._overflow_ids: dict[tuple[int, int, int], int] = {}
        self.max_tunnels = MAX_TUNNELS

    # -- link layer -----------------------------------------------------------------------
    def _link(self, u8: np.ndarray, batch: FrameBatch) -> tuple[np.ndarray, np.ndarray]:
        """Return (l3 offset or -1, l3 kind: 4, 6, 0 (not IP) or -1 (malformed)) per frame."""
        n = len(batch)
        off = batch.offset
        end = off + batch.caplen
        l3 = np.full(n, -1, dtype=I64)
        kind = np.zeros(n, dtype=I64)
        for linktype in np.unique(batch.linktype).tolist():
            sel = np.nonzero(batch.linktype == linktype)[0]
            o = off[sel]
            e = end[sel]
            if linktype == lt.ETHERNET or linktype in (lt.LINUX_SLL, lt.LINUX_SLL2):
                hlen, et_at = {
                    lt.ETHERNET: (14, 12),
                    lt.LINUX_SLL: (16, 14),
                    lt.LINUX_SLL2: (20, 0),
                }[linktype]
                ok = e >= o + hlen
                safe = np.where(ok, o, 0)
                et = np.where(ok, _be16(u8, safe + et_at), 0)
                pos = o + hlen
                for _ in range(MAX_VLAN_TAGS + 4):
                    vlan = ok & np.isin(et, list(lt.ETH_VLAN))
                    mpls = ok & np.isin(et, list(lt.ETH_MPLS))
                    pppoe = ok & (et == lt.ETH_PPPOE_SESSION)
                    if not (vlan.any() or mpls.any() or pppoe.any()):
                        break
                    if pppoe.any():
                        # PPPoE session (RFC 2516): 6-byte header, then the PPP protocol.
                        room = e >= pos + 8
                        good = pppoe & room & (_u8(u8, np.where(pppoe & room, pos, 0)) == 0x11)
                        self._malformed(
                            batch,
                            sel[pppoe & ~good],
                            "bad_pppoe_header",
                            "PPPoE session header truncated or not version 1 type 1",
                        )
                        kind[sel[pppoe & ~good]] = -1
                        ok &= ~pppoe | good
                        et = np.where(
                            good, _ppp_ethertype(_be16(u8, np.where(good, pos + 6, 0))), et
                        )
                        pos = np.where(good, pos + 8, pos)
                        continue
                    room = e >= pos + 4
                    ok &= ~(vlan | mpls) | room
                    p = np.where(ok & (vlan | mpls), pos, 0)
                    # VLAN: the tag's last two bytes are the next ethertype. MPLS: pop labels until
                    # bottom-of-stack, then guess IPv4/IPv6 from the version nibble (as Wireshark).
                    bos = (_g(u8, p + 2) & 1).astype(bool)
                    nxt_v = _be16(u8, p + 2)
                    after = np.where(ok & mpls & bos & (e > pos + 4), p + 4, 0)
                    nib = (_g(u8, after) >> 4).astype(I64)
                    guess = np.where(nib == 4, lt.ETH_IPV4, np.where(nib == 6, lt.ETH_IPV6, 0))
                    et = np.where(vlan & ok, nxt_v, et)
                    et = np.where(mpls & ok & bos, guess, et)
                    pos = np.where((vlan | mpls) & ok, pos + 4, pos)
                k = _kind_of(et)
                l3[sel] = np.where(ok & (k > 0), pos, -1)
                kind[sel] = np.where(ok, k, np.minimum(kind[sel], 0))
            elif linktype in (lt.NULL, lt.LOOP):
                ok = e >= o + 4
                safe = np.where(ok, o, 0)
                b = [_g(u8, safe + i).astype(I64) for i in range(4)]
                le = b[0] | (b[1] << 8) | (b[2] << 16) | (b[3] << 24)
                be = (b[0] << 24) | (b[1] << 16) | (b[2] << 8) | b[3]
                fam = np.where(le < 256, le, be) if linktype == lt.NULL else be
                v6 = np.isin(fam, list(lt.AF_INET6))
                k = np.where(fam == lt.AF_INET, 4, np.where(v6, 6, 0))
                l3[sel] = np.where(ok & (k > 0), o + 4, -1)
                kind[sel] = np.where(ok, k, 0)
            elif linktype in lt.RAW_IP:
                ok = e > o
                nib = (_g(u8, np.where(ok, o, 0)) >> 4).astype(I64)
                k = np.where(nib == 4, 4, np.where(nib == 6, 6, 0))
                l3[sel] = np.where(ok & (k > 0), o, -1)
                kind[sel] = np.where(ok, k, 0)
            elif linktype == lt.NFLOG:
                for i in sel.tolist():
                    pos_, k_ = _nflog_payload(batch.data, int(off[i]), int(end[i]))
                    l3[i], kind[i] = pos_, k_
            elif linktype in (lt.RADIOTAP, lt.PPI, lt.PRISM, lt.AVS):
                self._radio(u8, batch, sel, o, e, linktype, l3, kind)
            elif linktype == lt.IEEE802_11:
                ok, pos, et = self._wlan(u8, batch, sel, o, e)
                self._set_l3(l3, kind, sel, ok, pos, et)
            elif linktype in lt.PPP_FAMILY or linktype in (lt.C_HDLC, lt.IPOIB):
                ok, pos, et = self._serial(u8, batch, sel, o, e, linktype)
                self._set_l3(l3, kind, sel, ok, pos, et)
            else:
                self.stats.unsupported_linktype_frames[linktype] = (
                    self.stats.unsupported_linktype_frames.get(linktype, 0) + len(sel)
                )
                if linktype not in self._warned_linktypes:
                    self._warned_linktypes.add(linktype)
                    self.anomalies.append(
                        DecodeAnomaly(
                            int(batch.frame_no[sel[0]]),
                            int(batch.ts_ns[sel[0]]),
                            "unsupported_linktype",
                            f"link type {linktype} is not decoded; its frames are counted only",
                        )
                    )
        return l3, kind

    @staticmethod
    def _set_l3(
        l3: np.ndarray,
        kind: np.ndarray,
        sel: np.ndarray,
        ok: np.ndarray,
        pos: np.ndarray,
        et: np.ndarray,
    ) -> None:
        """Frames ``sel`` whose next header is ethertype ``et`` at ``pos`` (``ok`` False:
        malformed, already reported: kind -1, so they are not counted as non-IP as well)."""
        k = _kind_of(et)
        l3[sel] = np.where(ok & (k > 0), pos, -1)
        kind[sel] = np.where(ok, k, -1)

    def _radio(
        self,
        u8: np.ndarray,
        batch: FrameBatch,
        sel: np.ndarray,
        o: np.ndarray,
        e: np.ndarray,
        linktype: int,
        l3: np.ndarray,
        kind: np.ndarray,
    ) -> None:
        """A radio header in front of an 802.11 frame (or, for PPI, any link type): find where
        the frame starts and decode it as a sub-batch of its own link type."""
        ok = e >= o + 8
        safe = np.where(ok, o, 0)
        inner_lt = np.full(sel.shape[0], lt.IEEE802_11, dtype=np.int32)
        if linktype == lt.RADIOTAP:
            # version 0, pad, little-endian length of the whole radiotap header (>= 8)
            hlen = _le16(u8, safe + 2)
            ok &= (_u8(u8, safe) == 0) & (hlen >= 8)
            name = "radiotap"
        elif linktype == lt.PPI:
            # version 0, flags, little-endian length, little-endian DLT of the frame that follows
            hlen = _le16(u8, safe + 2)
            ok &= (_u8(u8, safe) == 0) & (hlen >= 8)
            inner_lt = _le32(u8, safe + 4).astype(np.int32)
            name = "PPI"
        else:
            # AVS (also found under the Prism link type): magic 0x8021100x, big-endian length.
            # Prism: 144-byte header whose msglen field (host byte order) says so.
            avs = (_be32(u8, safe) & 0xFFFFFFF0) == _AVS_MAGIC
            if linktype == lt.AVS:
                ok &= avs
            msglen = _le32(u8, safe + 4)
            msglen = np.where(msglen > 0xFFFF, _be32(u8, safe + 4), msglen)
            hlen = np.where(avs, _be32(u8, safe + 4), msglen)
            ok &= hlen >= 8
            name = "AVS" if linktype == lt.AVS else "Prism"
        ok &= o + hlen <= e
        bad = ~ok
        if bad.any():
            self._malformed(
                batch,
                sel[bad],
                f"bad_{name.lower()}_header",
                f"{name} header truncated or its length or version invalid",
            )
            kind[sel[bad]] = -1
        good = np.nonzero(ok)[0]
        if good.shape[0] == 0:
            return
        idx = sel[good]
        inner = (o + hlen)[good]
        sub = FrameBatch(
            data=batch.data,
            offset=inner,
            caplen=e[good] - inner,
            wirelen=e[good] - inner,
            ts_ns=batch.ts_ns[idx],
            linktype=inner_lt[good],
            frame_no=batch.frame_no[idx],
        )
        sub_l3, sub_kind = self._link(u8, sub)
        l3[idx] = sub_l3
        kind[idx] = sub_kind

    def _wlan(
        self, u8: np.ndarray, batch: FrameBatch, sel: np.ndarray, o: np.ndarray, e: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """802.11 data frames (IEEE 802.11-2020 9.3.2.1) with an LLC/SNAP header -> (ok, l3
        offset, ethertype). Management, control and null-data frames (no payload) and protected
        frames (encrypted payload) are counted, not decoded, as Zeek and tcpdump do."""
        ok = e >= o + 2  # control frames (ACK, CTS) are only 10 bytes long
        safe = np.where(ok, o, 0)
        fc = _u8(u8, safe)
        fl = _u8(u8, safe + 1)
        data = ok & (((fc >> 2) & 3) == _WLAN_TYPE_DATA) & ((fc & 3) == 0)  # protocol version 0
        nodata = data & ((fc & 0x40) != 0)  # subtypes 4-7, 12-15: null function, CF-ack/poll only
        qos = data & ((fc & 0x80) != 0)
        protected = data & ~nodata & ((fl & _WLAN_PROTECTED) != 0)
        qos_at = o + 24 + np.where((fl & _WLAN_TODS_FROMDS) == _WLAN_TODS_FROMDS, 6, 0)
        htc = qos & ((fl & _WLAN_ORDER) != 0)
        hlen = qos_at - o + np.where(qos, 2, 0) + np.where(htc, 4, 0)
        payload = data & ~nodata & ~protected
        bad = ~ok | (payload & (e < o + hlen + 8))
        self._malformed(batch, sel[bad], "bad_80211_header", "802.11 data frame header truncated")
        payload &= ~bad
        # A-MSDU (QoS Control bit 7): several subframes in one frame, not decoded (counted)
        amsdu = payload & qos & ((_u8(u8, np.where(payload & qos, qos_at, 0)) & 0x80) != 0)
        payload &= ~amsdu
        self.stats.wlan_non_data += int(np.count_nonzero(ok & ~(data & ~nodata)))
        self.stats.wlan_protected += int(np.count_nonzero(protected))
        if amsdu.any():
            self.stats.wlan_amsdu += int(np.count_nonzero(amsdu))
        p = np.where(payload, o + hlen, 0)
        snap = payload & (
            ((_u8(u8, p) << 16) | (_u8(u8, p + 1) << 8) | _u8(u8, p + 2)) == _LLC_SNAP
        )
        et = np.where(snap, _be16(u8, p + 6), 0)
        return ~bad, o + hlen + 8, et

    def _serial(
        self,
        u8: np.ndarray,
        batch: FrameBatch,
        sel: np.ndarray,
        o: np.ndarray,
        e: np.ndarray,
        linktype: int,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """PPP (RFC 1661, with or without RFC 1662 address/control and protocol compression),
        PPP in HDLC framing, PPPoE sessions without Ethernet, Cisco HDLC and Linux IPoIB ->
        (ok, l3 offset, ethertype)."""
        if linktype == lt.IPOIB:
            # 40-byte GRH pseudo-header (Linux), then the 2-byte type and 2 reserved bytes
            ok = e >= o + 44
            et = np.where(ok, _be16(u8, np.where(ok, o + 40, 0)), 0)
            self._malformed(batch, sel[~ok], "bad_ipoib_header", "IPoIB pseudo-header truncated")
            return ok, o + 44, et
        ok = e >= o + 4
        safe = np.where(ok, o, 0)
        b0 = _u8(u8, safe)
        if linktype == lt.C_HDLC:
            self._malformed(batch, sel[~ok], "bad_chdlc_header", "Cisco HDLC header truncated")
            return ok, o + 4, _be16(u8, safe + 2)
        if linktype == lt.PPP_ETHER:
            ok = (e >= o + 8) & (b0 == 0x11)
            self._malformed(
                batch,
                sel[~ok],
                "bad_pppoe_header",
                "PPPoE session header truncated or not version 1 type 1",
            )
            return ok, o + 8, _ppp_ethertype(_be16(u8, np.where(ok, o + 6, 0)))
        chdlc = np.zeros(sel.shape[0], dtype=bool)
        if linktype == lt.PPP_HDLC:
            chdlc = (b0 == 0x0F) | (b0 == 0x8F)  # Cisco HDLC frames share this link type
        ac = (b0 == 0xFF) & (_u8(u8, safe + 1) == 0x03)
        p = np.where(ac, o + 2, o)
        short = _u8(u8, np.where(ok, p, 0)) & 1  # protocol field compression: one odd byte
        proto = np.where(short == 1, _u8(u8, p), _be16(u8, p))
        et = np.where(chdlc, _be16(u8, safe + 2), _ppp_ethertype(proto))
        pos = np.where(chdlc, o + 4, p + 2 - short)
        self._malformed(batch, sel[~ok], "bad_ppp_header", "PPP header truncated")
        return ok, pos, et

    # -- network and transport ----------------------------------------------------------
    def decode(self, batch: FrameBatch) -> TcpPackets:
        """Decode one batch; malformed frames become anomalies, others are counted by protocol."""
        self._extra_rows = []
        self._batch = batch
        n = len(batch)
        self.stats.frames += n
        self.stats.frame_bytes += int(batch.wirelen.sum())
        u8 = np.frombuffer(batch.data, dtype=np.uint8)
        if u8.shape[0] < 64:  # keep the clamped index 0..3 reads in bounds
            u8 = np.concatenate([u8, np.zeros(64, dtype=np.uint8)])
        l3, kind = self._link(u8, batch)
        end = batch.offset + batch.caplen
        self.stats.non_ip_frames += int(np.count_nonzero(kind == 0))
        rows: list[dict[str, np.ndarray]] = []
        extra = bytearray()
        for version in (4, 6):
            sel = np.nonzero((kind == version) & (l3 >= 0))[0]
            if sel.shape[0] == 0:
                continue
            if version == 4:
                r = self._ipv4(u8, batch, sel, l3[sel], end[sel], extra, len(batch.data))
            else:
                r = self._ipv6(u8, batch, sel, l3[sel], end[sel], extra, len(batch.data))
            if r is not None:
                rows.append(r)
        data: bytes | bytearray | memoryview = batch.data
        if extra:
            # Reassembled datagrams live after the batch's bytes; decode them as raw IP frames
            # (tunnels they carry, a fragmented GRE packet say, are decoded below with the rest).
            data = bytes(batch.data) + bytes(extra)
            rows.extend(self._decode_extra(data))
            u8 = np.frombuffer(data, dtype=np.uint8)
        depth = 0
        while self._tunnels and depth < MAX_TUNNEL_DEPTH:
            rows.extend(self._decode_tunnels(u8, batch, data))
            depth += 1
        self._tunnels = []
        self._batch = None  # do not keep the batch's buffer alive past the batch
        return _assemble(data, rows)

    def _ipv4(self, u8, batch, sel, p, e, extra, base) -> dict[str, np.ndarray] | None:  # noqa: ANN001
        ok = e >= p + 20
        ps = np.where(ok, p, 0)
        vihl = _u8(u8, ps)
        ihl = (vihl & 15) * 4
        ok &= ((vihl >> 4) == 4) & (ihl >= 20) & (e >= p + ihl)
        tot = _be16(u8, ps + 2)
        # A zero total length appears in captures of TSO/GSO super-packets on the sending
        # host; the frame itself is then the only length there is.
        tot = np.where(tot == 0, e - p, tot)
        ok &= tot >= ihl
        self._malformed(batch, sel[~ok], "bad_ipv4_header", "IPv4 header too short or invalid")
        ffo = _be16(u8, ps + 6)
        proto = _u8(u8, ps + 9)
        src = _be32(u8, ps + 12).astype(U64)
        dst = _be32(u8, ps + 16).astype(U64)
        frag = ok & ((ffo & 0x3FFF) != 0)
        self._count_ip(proto[ok & ~frag], tot[ok & ~frag])
        if frag.any() and extra is not None:
            self._fragments(batch, sel, p, e, ihl, tot, ffo, proto, src, dst, frag, extra, base)
        self._ip_tunnels(
            u8,
            batch,
            sel,
            ok & ~frag,
            proto,
            p + ihl,
            p + tot,
            e,
            4,
            (np.zeros(sel.shape[0], dtype=U64), src, np.zeros(sel.shape[0], dtype=U64), dst),
        )
        tcp = ok & ~frag & (proto == 6)
        zeros = np.zeros(int(tcp.sum()), dtype=U64)
        return self._tcp(
            u8,
            batch,
            sel[tcp],
            4,
            zeros,
            src[tcp] | V4_MAPPED_LO,
            zeros,
            dst[tcp] | V4_MAPPED_LO,
            (p + ihl)[tcp],
            (p + tot)[tcp],
            e[tcp],
            tot[tcp],
        )

    def _ipv6(self, u8, batch, sel, p, e, extra, base) -> dict[str, np.ndarray] | None:  # noqa: ANN001
        ok = e >= p + 40
        ps = np.where(ok, p, 0)
        ok &= (_u8(u8, ps) >> 4) == 6
        plen = _be16(u8, ps + 4)
        plen = np.where(plen == 0, np.maximum(e - p - 40, 0), plen)  # jumbogram / TSO
        nh = _u8(u8, ps + 6)
        src_hi, src_lo = _be64(u8, ps + 8), _be64(u8, ps + 16)
        dst_hi, dst_lo = _be64(u8, ps + 24), _be64(u8, ps + 32)
        l4 = p + 40
        frag = np.zeros(p.shape[0], dtype=bool)
        frag_at = np.zeros(p.shape[0], dtype=I64)
        for _ in range(MAX_IPV6_EXT_HEADERS):
            skip = ok & np.isin(nh, _IPV6_EXT_SKIP)
            ah = ok & (nh == _IPV6_AH)
            fr = ok & (nh == _IPV6_FRAG) & ~frag
            if not (skip.any() or ah.any() or fr.any()):
                break
            ext = skip | ah | fr
            room = e >= l4 + 8
            ok &= ~ext | room
            q = np.where(ext & ok, l4, 0)
            nxt = _u8(u8, q)
            hlen = np.where(
                skip, (_u8(u8, q + 1) + 1) * 8, np.where(ah, (_u8(u8, q + 1) + 2) * 4, 8)
            )
            fo_m = _be16(u8, q + 2)
            real_frag = fr & ok & ((fo_m & 0xFFF9) != 0)  # offset != 0 or M set (not atomic)
            frag |= real_frag
            frag_at = np.where(real_frag, l4, frag_at)
            nh = np.where(ext & ok, nxt, nh)
            l4 = np.where(ext & ok, l4 + hlen, l4)
        ip_end = p + 40 + plen
        ok &= l4 <= ip_end
        self._malformed(
            batch, sel[~ok], "bad_ipv6_header", "IPv6 header or extension chain invalid"
        )
        self._count_ip(nh[ok & ~frag], (plen + 40)[ok & ~frag])
        if frag.any() and extra is not None:
            self._v6_fragments(batch, sel, p, e, l4, ip_end, nh, frag_at, frag & ok, extra, base)
        self._ip_tunnels(
            u8, batch, sel, ok & ~frag, nh, l4, ip_end, e, 6, (src_hi, src_lo, dst_hi, dst_lo)
        )
        tcp = ok & ~frag & (nh == 6)
        return self._tcp(
            u8,
            batch,
            sel[tcp],
            6,
            src_hi[tcp],
            src_lo[tcp],
            dst_hi[tcp],
            dst_lo[tcp],
            l4[tcp],
            ip_end[tcp],
            e[tcp],
            (plen + 40)[tcp],
        )

    def _tcp(
        self, u8, batch, sel, ver, shi, slo, dhi, dlo, t, ip_end, e, ip_len
    ) -> dict[str, np.ndarray] | None:  # noqa: ANN001
        if sel.shape[0] == 0:
            return None
        ok = (e >= t + 20) & (ip_end >= t + 20)
        ts = np.where(ok, t, 0)
        thl = (_u8(u8, ts + 12) >> 4) * 4
        ok &= (thl >= 20) & (t + thl <= ip_end)
        bad = ~ok
        if bad.any():
            self._malformed(
                batch, sel[bad], "bad_tcp_header", "TCP header truncated or data offset invalid"
            )
            keep = ok
            sel, shi, slo, dhi, dlo, t, ip_end, e, ip_len, ts, thl = (
                a[keep] for a in (sel, shi, slo, dhi, dlo, t, ip_end, e, ip_len, ts, thl)
            )
        flags = ((_u8(u8, ts + 12) & 1) << 8) | _u8(u8, ts + 13)
        pay_off = t + thl
        pay_len = ip_end - pay_off
        return {
            "frame_idx": sel,
            "frame_no": batch.frame_no[sel],
            "ts_ns": batch.ts_ns[sel],
            "ipver": np.full(sel.shape[0], ver, dtype=I64),
            "src_hi": shi,
            "src_lo": slo,
            "dst_hi": dhi,
            "dst_lo": dlo,
            "sport": _be16(u8, ts),
            "dport": _be16(u8, ts + 2),
            "seq": _be32(u8, ts + 4),
            "ack": _be32(u8, ts + 8),
            "flags": flags,
            "win": _be16(u8, ts + 14),
            "tcp_off": t,
            "thl": thl,
            "payload_off": pay_off,
            "payload_len": pay_len,
            "payload_cap": np.clip(np.minimum(ip_end, e) - pay_off, 0, None),
            "opt_cap": np.clip(np.minimum(e, pay_off) - (t + 20), 0, None),
            "ip_len": ip_len,
            "tunnel": np.zeros(sel.shape[0], dtype=I64),
        }

    # -- tunnels ---------------------------------------------------------------------------
    def _ip_tunnels(self, u8, batch, sel, ok, proto, l4, ip_end, e, ver, addrs) -> None:  # noqa: ANN001
        """Note the tunnel packets among IP packets ``sel`` (whole datagrams: ``ok``): their inner
        frames are decoded after the batch's own packets, as Zeek and Wireshark do by default.

        VXLAN (UDP 4789, RFC 7348, I flag set) and GENEVE (UDP 6081, RFC 8926) by their IANA
        ports; GRE (IP protocol 47, RFC 2784/2890: checksum, key and sequence fields) carrying
        IP, Ethernet (0x6558) or ERSPAN type I/II (0x88BE) and III (0x22EB); IPv4 (protocol 4)
        and IPv6 (41) directly in IPv4 or IPv6. A header that contradicts the IP length is a
        ``bad_<tunnel>_header`` anomaly."""
        cand = ok & ((proto == 17) | (proto == 47) | (proto == 4) | (proto == 41))
        if not cand.any():
            return
        j = np.nonzero(cand)[0]
        sel, proto, l4, ip_end, e = sel[j], proto[j], l4[j], ip_end[j], e[j]
        stop = np.minimum(ip_end, e)
        n = j.shape[0]
        inner = np.full(n, -1, dtype=I64)
        ltype = np.full(n, lt.RAW, dtype=np.int32)
        tkind = np.zeros(n, dtype=I64)
        tid = np.full(n, -1, dtype=I64)

        udp = proto == 17
        if udp.any():
            q = np.where(udp & (stop >= l4 + 16), l4, 0)
            dport = np.where(q > 0, _be16(u8, q + 2), 0)
            b8 = _u8(u8, q + 8)
            vx = (dport == VXLAN_PORT) & ((b8 & 0x08) != 0) & (stop >= l4 + 16 + 14)
            inner = np.where(vx, l4 + 16, inner)
            ltype = np.where(vx, lt.ETHERNET, ltype)
            tkind = np.where(vx, T_VXLAN, tkind)
            vni = (_be32(u8, q + 12) >> 8) & 0xFFFFFF
            tid = np.where(vx, vni, tid)
            gn = dport == GENEVE_PORT
            if gn.any():
                # version (2 bits), option length in 4-byte words, flags, protocol type, VNI
                start = l4 + 16 + (b8 & 0x3F) * 4
                ptype = _be16(u8, q + 10)
                good = gn & ((b8 >> 6) == 0) & (start <= ip_end)
                self._malformed(
                    batch,
                    sel[gn & ~good],
                    "bad_geneve_header",
                    "GENEVE header: version not 0 or options past the datagram",
                )
                eth = good & (ptype == lt.ETH_TEB)
                ip = good & ((ptype == lt.ETH_IPV4) | (ptype == lt.ETH_IPV6))
                inner = np.where(eth | ip, start, inner)
                ltype = np.where(eth, lt.ETHERNET, ltype)
                tkind = np.where(eth | ip, T_GENEVE, tkind)
                tid = np.where(eth | ip, vni, tid)

        gre = proto == 47
        if gre.any():
            q = np.where(gre & (stop >= l4 + 4), l4, 0)
            fl = _be16(u8, q)
            ptype = _be16(u8, q + 2)
            c_, k_, s_ = (fl & 0x8000) != 0, (fl & 0x2000) != 0, (fl & 0x1000) != 0
            start = l4 + 4 + 4 * (c_.astype(I64) + k_ + s_)
            # Version 1 is PPTP's enhanced GRE (PPP inside, RFC 2637): not decoded, not malformed.
            v0 = gre & ((fl & 7) == 0)
            good = v0 & ((fl & 0x4000) == 0) & (start <= ip_end)  # no RFC 1701 source routing
            self._malformed(
                batch,
                sel[v0 & ~good],
                "bad_gre_header",
                "GRE header: routing present or optional fields past the datagram",
            )
            key = np.where(k_, _be32(u8, np.where(good & k_, l4 + 4 + 4 * c_.astype(I64), 0)), -1)
            ip = good & ((ptype == lt.ETH_IPV4) | (ptype == lt.ETH_IPV6))
            teb = good & (ptype == lt.ETH_TEB)
            inner = np.where(ip | teb, start, inner)
            ltype = np.where(teb, lt.ETHERNET, ltype)
            tkind = np.where(ip | teb, T_GRE, tkind)
            tid = np.where(ip | teb, key, tid)
            # ERSPAN (draft-foschiano-erspan): type I has no header (and no sequence number),
            # type II an 8-byte header (version 1), type III a 12-byte one (version 2) plus an
            # 8-byte platform subheader when its O bit is set. Session id: 10 bits at offset 2.
            er2 = good & (ptype == lt.ETH_ERSPAN_2)
            er3 = good & (ptype == lt.ETH_ERSPAN_3)
            if er2.any() or er3.any():
                h = np.where(er2 | er3, start, 0)
                hver = _u8(u8, h) >> 4
                session = _be16(u8, h + 2) & 0x3FF
                typ1 = er2 & ~s_
                typ2 = er2 & s_
                o_bit = _u8(u8, h + 11) & 1
                hl = np.where(typ2, 8, np.where(er3, 12 + 8 * o_bit, 0))
                fine = typ1 | ((typ2 & (hver == 1)) | (er3 & (hver == 2))) & (start + hl <= ip_end)
                self._malformed(
                    batch,
                    sel[(er2 | er3) & ~fine],
                    "bad_erspan_header",
                    "ERSPAN header: wrong version for its type or past the datagram",
                )
                inner = np.where(fine, start + hl, inner)
                ltype = np.where(fine, lt.ETHERNET, ltype)
                tkind = np.where(
                    fine, np.where(typ1, T_ERSPAN1, np.where(typ2, T_ERSPAN2, T_ERSPAN3)), tkind
                )
                tid = np.where(fine & ~typ1, session, np.where(fine, -1, tid))

        ipip = (proto == 4) | (proto == 41)
        inner = np.where(ipip, l4, inner)
        tkind = np.where(ipip, np.where(proto == 4, T_IP4, T_IP6), tkind)

        keep = (inner >= 0) & (stop > inner)
        if not keep.any():
            return
        k = np.nonzero(keep)[0]
        ids = self._tunnel_id(batch, sel[k], tkind[k], ver, [a[j[k]] for a in addrs], tid[k])
        self._tunnels.append((sel[k], inner[k], stop[k] - inner[k], ltype[k], ids))

    def _tunnel_id(
        self,
        batch: FrameBatch,
        sel: np.ndarray,
        tkind: np.ndarray,
        ver: int,
        addrs: list[np.ndarray],
        tid: np.ndarray,
    ) -> np.ndarray:
        """Intern each packet's encapsulation (parent, kind, outer addresses, VNI/key/session)
        and return the ids; one Python step per distinct tunnel in the batch, not per packet."""
        parent = (
            self._cur_parent[sel]
            if self._cur_parent is not None
            else np.zeros(sel.shape[0], dtype=I64)
        )
        cols = [
            parent.astype(U64),
            tkind.astype(U64),
            *(a.astype(U64) for a in addrs),
            (tid + 1).astype(U64),
        ]
        keys = np.stack(cols, axis=1)
        uniq, inv = np.unique(keys, axis=0, return_inverse=True)
        out = np.empty(uniq.shape[0], dtype=I64)
        for r, row in enumerate(uniq.tolist()):
            key = (ver, *row)
            t = self._tunnel_ids.get(key)
            if t is None and len(self._tunnel_ids) >= self.max_tunnels:
                i = int(sel[inv.reshape(-1) == r][0])
                t = self._tunnel_overflow(row[1], ver, int(batch.frame_no[i]), int(batch.ts_ns[i]))
            if t is None:
                par, kd, shi, slo, dhi, dlo, tv = row
                name = _TUNNEL_NAMES[(kd, ver)]
                label = _TUNNEL_ID_LABEL.get(kd)
                extra = f" {label}={tv - 1}" if label and tv else ""
                t = len(self._tunnel_layers)
                self._tunnel_layers.append(
                    (par, name, _addr_text(ver, shi, slo), _addr_text(ver, dhi, dlo), extra)
                )
                self._tunnel_ids[key] = t
            out[r] = t
        return out[inv.reshape(-1)]

    def _tunnel_overflow(self, kd: int, ver: int, frame: int, ts: int) -> int:
        """The id shared by every new tunnel of this kind once MAX_TUNNELS are known."""
        name = _TUNNEL_NAMES[(kd, ver)]
        key = (-1, kd, ver)
        t = self._overflow_ids.get(key)
        if t is None:
            if not self._overflow_ids:
                self.anomalies.append(
                    DecodeAnomaly(
                        frame,
                        ts,
                        "tunnel_table_full",
                        f"more than {self.max_tunnels} distinct tunnels (MAX_TUNNELS): further new ones "
                        "are named by kind only in tunnel_parents",
                    )
                )
            t = len(self._tunnel_layers)
            self._tunnel_layers.append(
                (0, name, "?", "?", f" (more than {self.max_tunnels} tunnels)")
            )
            self._overflow_ids[key] = t
        return t

    def describe_tunnel(self, tunnel: int) -> str:
        """The encapsulation ``tunnel`` (a ``TcpPackets.tunnel`` value), outermost layer first,
        layers separated by " / ", each "<kind> <outer src>><outer dst>[ vni=|key=|session=N]"
        as the packet went. UDP ports are left out: the destination port is the kind's, the
        source port is entropy (RFC 7348 section 5, RFC 8926 section 3.3)."""
        layers: list[str] = []
        while tunnel:
            parent, name, src, dst, extra = self._tunnel_layers[tunnel]
            layers.append(f"{name} {src}>{dst}{extra}")
            tunnel = parent
        return " / ".join(reversed(layers))

    def _decode_tunnels(
        self,
        u8: np.ndarray,
        batch: FrameBatch,
        data: bytes | bytearray | memoryview,
    ) -> list[dict[str, np.ndarray]]:
        """Decode the inner frames noted by ``_ip_tunnels`` as frames of their link type."""
        found, self._tunnels = self._tunnels, []
        idx = np.concatenate([f[0] for f in found])
        off = np.concatenate([f[1] for f in found])
        length = np.concatenate([f[2] for f in found])
        ltype = np.concatenate([f[3] for f in found])
        tids = np.concatenate([f[4] for f in found])
        sub = FrameBatch(
            data=data,
            offset=off,
            caplen=length,
            wirelen=length,
            ts_ns=batch.ts_ns[idx],
            linktype=ltype,
            frame_no=batch.frame_no[idx],
        )
        self.stats.tunnelled += idx.shape[0]
        self._cur_parent = tids
        try:
            l3, kind = self._link(u8, sub)
            end = off + length
            out: list[dict[str, np.ndarray]] = []
            self.stats.non_ip_frames += int(np.count_nonzero(kind == 0))
            for version in (4, 6):
                sel = np.nonzero((kind == version) & (l3 >= 0))[0]
                if sel.shape[0] == 0:
                    continue
                fn = self._ipv4 if version == 4 else self._ipv6
                # Fragments inside a tunnel are counted, not reassembled (extra=None).
                r = fn(u8, sub, sel, l3[sel], end[sel], None, len(data))
                if r is not None:
                    r["tunnel"] = tids[r["frame_idx"]]
                    r["frame_idx"] = idx[r["frame_idx"]]
                    out.append(r)
        finally:
            self._cur_parent = None
        # Tunnels inside this tunnel index into ``sub``: map them back to the batch.
        self._tunnels = [(idx[i], o, n, t, ti) for i, o, n, t, ti in self._tunnels]
        return out

    # -- rare paths -------------------------------------------------------------------------
    def _count_ip(self, proto: np.ndarray, nbytes: np.ndarray) -> None:
        if proto.shape[0] == 0:
            return
        for value, name in ((6, "tcp"), (17, "udp"), (1, "icmp"), (58, "icmpv6")):
            m = proto == value
            self.stats.add_ip(name, int(m.sum()), int(nbytes[m].sum()))
        other = ~np.isin(proto, [6, 17, 1, 58])
        if other.any():
            for value in np.unique(proto[other]).tolist():
                m = proto == value
                self.stats.add_ip(f"ip-proto-{value}", int(m.sum()), int(nbytes[m].sum()))

    def _malformed(self, batch: FrameBatch, idx: np.ndarray, kind: str, detail: str) -> None:
        if idx.shape[0] == 0:
            return
        self.stats.malformed += int(idx.shape[0])
        for i in idx.tolist():
            self.anomalies.append(
                DecodeAnomaly(int(batch.frame_no[i]), int(batch.ts_ns[i]), kind, detail)
            )

    def _fragments(
        self, batch, sel, p, e, ihl, tot, ffo, proto, src, dst, frag, extra, base
    ) -> None:  # noqa: ANN001
        data = batch.data
        for j in np.nonzero(frag)[0].tolist():
            i = int(sel[j])
            self.stats.fragments += 1
            start = int(p[j] + ihl[j])
            stop = int(min(p[j] + tot[j], e[j]))
            ip_id = (data[int(p[j]) + 4] << 8) | data[int(p[j]) + 5]
            key = (
                int(src[j]).to_bytes(4, "big"),
                int(dst[j]).to_bytes(4, "big"),
                int(proto[j]),
                ip_id,
            )
            ts = float(batch.ts_ns[i]) / 1e9
            self.defrag.expire(ts)
            whole = self.defrag.add(
                key,
                int(ffo[j] & 0x1FFF) * 8,
                bool(ffo[j] & 0x2000),
                bytes(data[start:stop]),
                ts,
                int(batch.frame_no[i]),
            )
            self._drain_frag_anomalies()
            if whole is not None:
                hdr = bytearray(data[int(p[j]) : int(p[j]) + 20])
                hdr[0] = 0x45
                struct.pack_into("!H", hdr, 2, 20 + len(whole))
                struct.pack_into("!H", hdr, 6, 0)  # no longer a fragment
                self._extra_rows.append((i, base + len(extra), 4, 20 + len(whole)))
                extra += hdr + whole

    def _v6_fragments(self, batch, sel, p, e, l4, ip_end, nh, frag_at, frag, extra, base) -> None:  # noqa: ANN001
        data = batch.data
        for j in np.nonzero(frag)[0].tolist():
            i = int(sel[j])
            self.stats.fragments += 1
            fa = int(frag_at[j])
            fo_m = (data[fa + 2] << 8) | data[fa + 3]
            ident = bytes(data[fa + 4 : fa + 8])
            pj = int(p[j])
            key = (
                bytes(data[pj + 8 : pj + 24]),
                bytes(data[pj + 24 : pj + 40]),
                data[fa],
                int.from_bytes(ident, "big"),
            )
            ts = float(batch.ts_ns[i]) / 1e9
            self.defrag.expire(ts)
            whole = self.defrag.add(
                key,
                (fo_m & 0xFFF8),
                bool(fo_m & 1),
                bytes(data[fa + 8 : int(min(ip_end[j], e[j]))]),
                ts,
                int(batch.frame_no[i]),
            )
            self._drain_frag_anomalies()
            if whole is not None:
                hdr = bytearray(data[pj : pj + 40])
                struct.pack_into("!H", hdr, 4, len(whole))
                hdr[6] = data[fa]
                self._extra_rows.append((i, base + len(extra), 6, 40 + len(whole)))
                extra += hdr + whole

    def flush(self) -> None:
        """End of input: report fragmented datagrams that never completed."""
        self.defrag.flush()
        self._drain_frag_anomalies()

    def _drain_frag_anomalies(self) -> None:
        for a in self.defrag.drain_anomalies():
            self.anomalies.append(DecodeAnomaly(a.frame_no, int(a.ts * 1e9), a.kind, a.detail))

    def _decode_extra(self, data: bytes) -> list[dict[str, np.ndarray]]:
        """Decode reassembled datagrams (appended after the batch's bytes) as raw IP packets."""
        batch = self._batch
        assert batch is not None  # set by decode(), the only caller, for the batch's duration
        rows_in, self._extra_rows = self._extra_rows, []
        idx = np.array([r[0] for r in rows_in], dtype=I64)
        sub = FrameBatch(
            data=data,
            offset=np.array([r[1] for r in rows_in], dtype=I64),
            caplen=np.array([r[3] for r in rows_in], dtype=I64),
            wirelen=np.array([r[3] for r in rows_in], dtype=I64),
            ts_ns=batch.ts_ns[idx],
            linktype=np.full(len(rows_in), lt.RAW, dtype=np.int32),
            frame_no=batch.frame_no[idx],
        )
        u8 = np.frombuffer(data, dtype=np.uint8)
        versions = np.array([r[2] for r in rows_in], dtype=I64)
        out: list[dict[str, np.ndarray]] = []
        self.stats.reassembled += len(rows_in)
        for version in (4, 6):
            sel = np.nonzero(versions == version)[0]
            if sel.shape[0] == 0:
                continue
            p = sub.offset[sel]
            e = p + sub.caplen[sel]
            fn = self._ipv4 if version == 4 else self._ipv6
            before = len(self._tunnels)
            r = fn(u8, sub, sel, p, e, bytearray(), len(data))
            if r is not None:
                r["frame_idx"] = idx[r["frame_idx"]]
                out.append(r)
            # Tunnels in reassembled datagrams index into ``sub``: map them to the batch.
            self._tunnels[before:] = [
                (idx[i], o, n, t, ti) for i, o, n, t, ti in self._tunnels[before:]
            ]
        return out


def _addr_text(ver: int, hi: int, lo: int) -> str:
    if ver == 4:
        return str(ipaddress.IPv4Address(lo & 0xFFFFFFFF))
    return str(ipaddress.IPv6Address((hi << 64) | lo))


def _nflog_payload(data: bytes | bytearray | memoryview, start: int, end: int) -> tuple[int, int]:
    """Find the packet inside an NFLOG frame (TLVs in host byte order; type 9 is the payload)."""
    if end - start < 4:
        return -1, 0
    family = data[start]
    pos = start + 4
    while pos + 4 <= end:
        tlv_len = data[pos] | (data[pos + 1] << 8)
        tlv_type = (data[pos + 2] | (data[pos + 3] << 8)) & 0x7FFF
        if tlv_len < 4:
            return -1, 0
        if tlv_type == 9:
            return pos + 4, (4 if family == 2 else 6 if family == 10 else 0)
        pos += (tlv_len + 3) & ~3
    return -1, 0


def _assemble(
    data: bytes | bytearray | memoryview, rows: list[dict[str, np.ndarray]]
) -> TcpPackets:
    names = [f for f in TcpPackets.__dataclass_fields__ if f != "data"]
    if not rows:
        return TcpPackets(
            data, *[np.zeros(0, dtype=U64 if n.endswith(("_hi", "_lo")) else I64) for n in names]
        )
    if len(rows) == 1:
        r = rows[0]
        return TcpPackets(data, *[r[n] for n in names])
    order = np.argsort(np.concatenate([r["frame_idx"] for r in rows]), kind="stable")
    return TcpPackets(data, *[np.concatenate([r[n] for r in rows])[order] for n in names])
