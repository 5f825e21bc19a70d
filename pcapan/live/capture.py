"""Raw frames from a network interface, in batches, with kernel timestamps and drop counts.

Scapy opens the packet socket (``L2ListenSocket``: an ``AF_PACKET`` raw socket bound to the
interface, the BPF filter compiled by libpcap and attached in the kernel, ``SO_TIMESTAMPNS``
and ``PACKET_AUXDATA`` enabled), but no packet is ever dissected by scapy: frames are received
with ``recvmsg_into`` straight into one large buffer, already laid out as the records of the
capture file (pcapng Enhanced Packet Blocks or pcap records), so the same bytes are handed to
the analyzer as a :class:`FrameBatch` and written to ``--write`` with one ``write`` call.
"""

from __future__ import annotations

import contextlib
import logging
import select
import socket
import struct
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from pcapan.config import LIVE_BATCH_BYTES, LIVE_SNAPLEN, LIVE_SOCKET_BUFFER_BYTES
from pcapan.errors import LiveError
from pcapan.io.batch import FrameBatch

# Linux constants (linux/if_packet.h, asm-generic/socket.h) the socket module does not name.
SOL_PACKET = 263
PACKET_AUXDATA = 8
PACKET_STATISTICS = 6
SO_RCVBUFFORCE = 33
SCM_TIMESTAMPNS = 35
PACKET_OUTGOING = 4
TP_STATUS_VLAN_VALID = 0x10
TP_STATUS_VLAN_TPID_VALID = 0x40
ETH_P_8021Q = 0x8100

# ARPHRD (the interface's hardware type) -> the pcap link type of what a raw packet socket
# hands over: Ethernet headers on Ethernet and loopback, bare IP on tun/wireguard devices.
ARPHRD_TO_LINKTYPE = {1: 1, 6: 1, 772: 1, 65534: 101}
ARPHRD_LOOPBACK = 772
LINKTYPE_ETHERNET = 1

# Ancillary data per frame: a struct timespec and a struct tpacket_auxdata.
_ANC_BYTES = socket.CMSG_SPACE(16) + socket.CMSG_SPACE(20)
_TIMESPEC = struct.Struct("@qq")
_AUXDATA = struct.Struct("@IIIHHHH")
_EPB_HEAD = struct.Struct(
    "<IIIIIII"
)  # type, total length, interface, ts high, ts low, caplen, wirelen
_PCAP_HEAD = struct.Struct("<IIII")  # ts seconds, ts nanoseconds, caplen, wirelen
_U32 = struct.Struct("<I")


def file_format(path: str | Path) -> str:
    """``pcap`` for a ``.pcap`` name, else ``pcapng`` (the richer format: it keeps the
    interface name, the filter and the kernel's drop count)."""
    return "pcap" if str(path).lower().endswith(".pcap") else "pcapng"


@dataclass(frozen=True, slots=True)
class KernelStats:
    """The packet socket's counters (PACKET_STATISTICS, summed over reads since opening):
    ``packets`` that passed the filter, ``drops`` the kernel could not queue (buffer full)."""

    packets: int = 0
    drops: int = 0


def interface_type(iface: str) -> int:
    """The interface's ARPHRD hardware type; LiveError when there is no such interface."""
    try:
        socket.if_nametoindex(iface)
    except OSError:
        names = ", ".join(name for _, name in socket.if_nameindex())
        raise LiveError(f"no network interface {iface!r} (interfaces here: {names})") from None
    try:
        return int(Path(f"/sys/class/net/{iface}/type").read_text().strip())
    except (OSError, ValueError):
        return 1


def _filter_reason(exc: BaseException) -> str:
    """libpcap's reason from scapy's message ("Cannot set filter: Failed to compile filter
    expression 'x' (reason)")."""
    msg = str(exc)
    if "(" in msg and msg.endswith(")"):
        return msg[msg.rindex("(") + 1 : -1]
    return msg


class PacketSource:
    """A packet socket on one interface; :meth:`read` fills batches of raw frames.

    ``layout`` is the file format whose record headers surround each frame in the batch buffer
    (``pcapng`` or ``pcap``), so that :attr:`FrameBatch.data` up to the batch's end can be
    written to a capture file as is.
    """

    def __init__(
        self,
        iface: str,
        bpf_filter: str | None = None,
        *,
        layout: str = "pcapng",
        snaplen: int = LIVE_SNAPLEN,
        promisc: bool = True,
    ) -> None:
        self.iface = iface
        self.bpf_filter = bpf_filter
        self.snaplen = snaplen
        self.layout = layout
        hatype = interface_type(iface)
        if hatype not in ARPHRD_TO_LINKTYPE:
            raise LiveError(
                f"{iface}: hardware type {hatype} is not supported for live capture "
                f"(Ethernet, loopback and tun-style raw IP interfaces are)"
            )
        self.linktype = ARPHRD_TO_LINKTYPE[hatype]
        # On loopback every packet passes the socket twice, once going out and once coming in;
        # like libpcap, keep only the incoming copy (here in the kernel: the BPF "inbound").
        self.loopback = hatype == ARPHRD_LOOPBACK
        kernel_filter = bpf_filter
        if self.loopback:
            kernel_filter = f"({bpf_filter}) and inbound" if bpf_filter else "inbound"
        self._sock_wrapper = self._open(kernel_filter, promisc)
        self.sock: socket.socket = self._sock_wrapper.ins
        self.sock.setblocking(False)
        for opt in (
            SO_RCVBUFFORCE,
            socket.SO_RCVBUF,
        ):  # FORCE ignores rmem_max (needs CAP_NET_ADMIN)
            try:
                self.sock.setsockopt(socket.SOL_SOCKET, opt, LIVE_SOCKET_BUFFER_BYTES)
                break
            except OSError:
                continue
        self._packets = 0
        self._drops = 0
        self.frames = 0  # frames handed out in batches
        self.frame_bytes = 0
        self.skipped = 0  # outgoing loopback copies the filter let through
        self._closed = False

    def _open(self, kernel_filter: str | None, promisc: bool) -> Any:
        try:
            from scapy.arch.linux import L2ListenSocket
            from scapy.error import Scapy_Exception
        except ImportError as exc:  # pragma: no cover - scapy is a dependency
            raise LiveError(f"live capture needs scapy ({exc})") from None
        log = logging.getLogger("scapy.runtime")
        level = log.level
        log.setLevel(logging.ERROR)  # "Unable to guess type" for loopback: we do not use its layers
        try:
            return L2ListenSocket(iface=self.iface, filter=kernel_filter, promisc=promisc)
        except PermissionError:
            raise LiveError(
                f"permission denied opening a packet socket on {self.iface}: live capture needs the "
                "CAP_NET_RAW capability (run as root, or grant it to the interpreter with "
                "'setcap cap_net_raw+eip <python binary>')"
            ) from None
        except Scapy_Exception as exc:
            raise LiveError(f"bad BPF filter {self.bpf_filter!r}: {_filter_reason(exc)}") from None
        except ImportError as exc:
            raise LiveError(f"cannot compile the BPF filter: {exc}") from None
        except OSError as exc:
            raise LiveError(f"{self.iface}: cannot capture ({exc.strerror or exc})") from None
        finally:
            log.setLevel(level)

    # -- counters --------------------------------------------------------------------------------
    def kernel_stats(self) -> KernelStats:
        """Packets seen and dropped by the kernel since the socket was opened. The kernel resets
        its counters on every read, so they are summed here."""
        if not self._closed:
            with contextlib.suppress(OSError):
                packets, drops = struct.unpack(
                    "II", self.sock.getsockopt(SOL_PACKET, PACKET_STATISTICS, 8)
                )
                self._packets += packets
                self._drops += drops
        return KernelStats(self._packets, self._drops)

    # -- frames ----------------------------------------------------------------------------------
    def wait(self, timeout: float) -> bool:
        """Block until frames are queued or ``timeout`` seconds pass."""
        try:
            ready, _, _ = select.select([self.sock], [], [], max(timeout, 0.0))
        except InterruptedError:  # pragma: no cover - PEP 475 retries; a handler may raise
            return False
        return bool(ready)

    def read(self, batch: BatchBuilder, max_frames: int) -> int:
        """Move queued frames into ``batch`` until the queue is empty, the batch is full or
        ``max_frames`` were read. Returns the number of frames read."""
        recv = self.sock.recvmsg_into
        mv = batch.view
        hdr = batch.header_len
        snap = self.snaplen
        limit = batch.capacity - hdr - snap - 8  # room for a frame, a VLAN tag and the trailer
        loopback = self.loopback
        vlan_ok = self.linktype == LINKTYPE_ETHERNET
        unpack_ts = _TIMESPEC.unpack
        unpack_aux = _AUXDATA.unpack
        pos = batch.pos
        got = 0
        while got < max_frames and pos <= limit:
            start = pos + hdr
            try:
                n, anc, _flags, addr = recv(
                    [mv[start : start + snap]], _ANC_BYTES, socket.MSG_TRUNC
                )
            except (BlockingIOError, InterruptedError):
                break
            if loopback and addr[2] == PACKET_OUTGOING:
                self.skipped += 1
                continue
            ts = 0
            wire = n
            caplen = n if n < snap else snap
            for level, kind, data in anc:
                if kind == SCM_TIMESTAMPNS and level == socket.SOL_SOCKET:
                    sec, nsec = unpack_ts(data)
                    ts = sec * 1_000_000_000 + nsec
                elif level == SOL_PACKET and kind == PACKET_AUXDATA:
                    status, wire, _snap, _mac, _net, tci, tpid = unpack_aux(data)
                    if status & TP_STATUS_VLAN_VALID and vlan_ok and caplen >= 12:
                        # The NIC stripped an 802.1Q tag into metadata; put it back where it was
                        # on the wire (as libpcap does), so VLAN decoding sees it.
                        tag = struct.pack(
                            ">HH", tpid if status & TP_STATUS_VLAN_TPID_VALID else ETH_P_8021Q, tci
                        )
                        mv[start + 16 : start + caplen + 4] = mv[start + 12 : start + caplen]
                        mv[start + 12 : start + 16] = tag
                        caplen += 4
                        wire += 4
            if not ts:
                ts = time.time_ns()
            pos = batch.add(pos, ts, caplen, wire)
            got += 1
        batch.pos = pos
        self.frames += got
        return got

    def close(self) -> None:
        if not self._closed:
            self.kernel_stats()
            self._closed = True
            with contextlib.suppress(Exception):
                self._sock_wrapper.close()


class BatchBuilder:
    """One batch being filled: a buffer of file records plus per-frame arrays."""

    def __init__(
        self, layout: str, linktype: int, first_frame_no: int, capacity: int = LIVE_BATCH_BYTES
    ) -> None:
        self.layout = layout
        self.header_len = _EPB_HEAD.size if layout == "pcapng" else _PCAP_HEAD.size
        self.capacity = capacity
        self.buf = bytearray(capacity)
        self.view = memoryview(self.buf)
        self.pos = 0
        self.linktype = linktype
        self.first_frame_no = first_frame_no
        self.offsets: list[int] = []
        self.caplens: list[int] = []
        self.wirelens: list[int] = []
        self.ts: list[int] = []
        self.started = time.monotonic()
        self._pcapng = layout == "pcapng"

    def __len__(self) -> int:
        return len(self.offsets)

    def full(self, snaplen: int) -> bool:
        """No room left for another frame of up to ``snaplen`` bytes."""
        return self.pos > self.capacity - self.header_len - snaplen - 8

    def add(self, pos: int, ts: int, caplen: int, wire: int) -> int:
        """Record the frame received at ``pos + header_len``: write its record header (and
        pcapng trailer) around it; returns where the next record starts."""
        hdr = self.header_len
        self.offsets.append(pos + hdr)
        self.caplens.append(caplen)
        self.wirelens.append(wire)
        self.ts.append(ts)
        if self._pcapng:
            padded = (caplen + 3) & ~3
            total = hdr + padded + 4
            mv = self.view
            mv[pos + hdr + caplen : pos + hdr + padded] = bytes(padded - caplen)
            _EPB_HEAD.pack_into(mv, pos, 6, total, 0, ts >> 32, ts & 0xFFFFFFFF, caplen, wire)
            _U32.pack_into(mv, pos + hdr + padded, total)
            return pos + total
        _PCAP_HEAD.pack_into(self.view, pos, ts // 1_000_000_000, ts % 1_000_000_000, caplen, wire)
        return pos + hdr + caplen

    def finish(self) -> tuple[FrameBatch, memoryview]:
        """The batch for the analyzer and the file records to write (the same bytes)."""
        n = len(self.offsets)
        batch = FrameBatch(
            data=self.buf,
            offset=np.asarray(self.offsets, dtype=np.int64),
            caplen=np.asarray(self.caplens, dtype=np.int64),
            wirelen=np.asarray(self.wirelens, dtype=np.int64),
            ts_ns=np.asarray(self.ts, dtype=np.int64),
            linktype=np.full(n, self.linktype, dtype=np.int32),
            frame_no=np.arange(self.first_frame_no, self.first_frame_no + n, dtype=np.int64),
        )
        return batch, self.view[: self.pos]
