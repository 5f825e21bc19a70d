"""Cleartext HTTP/2 (h2c) on one TCP connection: the frame layer only, sans-IO.

HTTP/2 with prior knowledge (the client's first bytes are the connection preface, RFC 9113
3.4) or after an ``Upgrade: h2c`` answered by 101 (RFC 7540 3.2) is recognised and counted, not
decoded: headers are HPACK-compressed (a decoder must see every HEADERS frame of the
connection in order and keep its dynamic table), so only the 9-byte frame headers (RFC 9113
4.1) are walked and the payloads skipped. That is cheap and gives what the summary reports:
frames per direction and streams opened.

Streams are counted without a set of ids: a new stream's id must be greater than every id
its initiator opened before (RFC 9113 5.1.1), odd for the client and even for the server
(pushed streams), so a stream is new when its id passes the highest id seen of its parity.
In an upgraded connection stream 1 is the HTTP/1.1 request itself (RFC 7540 3.2), counted when
the server's response frames on stream 1 arrive.

Input as for every parser here: ``data(is_client, chunk, ts_ns)``, ``gap(...)`` and
``end(...)`` per direction, each returning a list of events (:class:`H2Anomaly` only). A gap
inside a frame payload is skipped without losing the frame boundaries; a gap in a frame header
or longer than the payload stops that direction (there is no marker to resynchronise on).
"""

from __future__ import annotations

from dataclasses import dataclass

from pcapan.proto.detect import H2_PREFACE

FRAME_HEADER_LEN = 9  # RFC 9113 4.1: length (24 bits), type, flags, R + stream id (31 bits)
_PREFACE_LEN = len(H2_PREFACE)

# Frame types (RFC 9113 6, RFC 9113 11.2), for anomaly texts.
FRAME_TYPES = {
    0x0: "DATA",
    0x1: "HEADERS",
    0x2: "PRIORITY",
    0x3: "RST_STREAM",
    0x4: "SETTINGS",
    0x5: "PUSH_PROMISE",
    0x6: "PING",
    0x7: "GOAWAY",
    0x8: "WINDOW_UPDATE",
    0x9: "CONTINUATION",
    0xA: "ALTSVC",
    0xC: "ORIGIN",
    0x10: "PRIORITY_UPDATE",
}


@dataclass(frozen=True, slots=True)
class H2Anomaly:
    """Something wrong with the h2 frame stream of one direction."""

    kind: str
    detail: str
    ts_ns: int
    is_client: bool


class _Side:
    __slots__ = ("is_client", "preface", "hdr", "skip", "frames", "dead", "first")

    def __init__(self, is_client: bool) -> None:
        self.is_client = is_client
        self.preface = _PREFACE_LEN if is_client else 0  # preface bytes still to check
        self.hdr = b""  # a frame header split across chunks
        self.skip = 0  # payload bytes of the current frame still to skip
        self.frames = 0
        self.dead = False
        self.first = True  # the next frame is this side's first (the server's must be SETTINGS)


class H2Connection:
    """Both directions of one cleartext HTTP/2 connection; see the module docstring."""

    __slots__ = ("_sides", "streams", "_max_odd", "_max_even")

    def __init__(self) -> None:
        self._sides = (_Side(False), _Side(True))  # indexed by is_client
        self.streams = 0
        self._max_odd = 0  # highest client-initiated stream id seen
        self._max_even = 0  # highest server-initiated (pushed) stream id seen

    def frames(self, is_client: bool) -> int:
        """Frames seen so far in that direction."""
        return self._sides[is_client].frames

    def data(self, is_client: bool, chunk: bytes, ts_ns: int) -> list[H2Anomaly]:
        side = self._sides[is_client]
        if side.dead or not chunk:
            return []
        out: list[H2Anomaly] = []
        mv = memoryview(chunk)
        i, n = 0, len(chunk)
        if side.preface:
            done = _PREFACE_LEN - side.preface
            k = min(side.preface, n)
            if bytes(mv[:k]) != H2_PREFACE[done : done + k]:
                side.dead = True
                return [
                    H2Anomaly(
                        "http2_bad_preface",
                        "the client's first bytes are not the HTTP/2 "
                        "connection preface (RFC 9113 3.4); its frames are not counted",
                        ts_ns,
                        is_client,
                    )
                ]
            side.preface -= k
            i = k
        while i < n:
            if side.skip:
                k = min(side.skip, n - i)
                side.skip -= k
                i += k
                continue
            if side.hdr or n - i < FRAME_HEADER_LEN:
                need = FRAME_HEADER_LEN - len(side.hdr)
                side.hdr += bytes(mv[i : i + need])
                i += need
                if len(side.hdr) < FRAME_HEADER_LEN:
                    break
                h, side.hdr = side.hdr, b""
            else:
                h = bytes(mv[i : i + FRAME_HEADER_LEN])
                i += FRAME_HEADER_LEN
            self._frame(side, h, ts_ns, out)
            if side.dead:
                break
        return out

    def _frame(self, side: _Side, h: bytes, ts_ns: int, out: list[H2Anomaly]) -> None:
        ftype = h[3]
        if side.first:
            side.first = False
            if ftype != 4 or h[4] & 1:
                # RFC 9113 3.4: the preface of each side is a SETTINGS frame (not an ACK).
                # Not fatal: the frame boundaries are still known from the length.
                out.append(
                    H2Anomaly(
                        "http2_no_settings_first",
                        f"first frame is {FRAME_TYPES.get(ftype, hex(ftype))}, not SETTINGS",
                        ts_ns,
                        side.is_client,
                    )
                )
        side.frames += 1
        side.skip = int.from_bytes(h[:3], "big")
        sid = int.from_bytes(h[5:9], "big") & 0x7FFFFFFF
        if sid:
            if sid & 1:
                if sid > self._max_odd:
                    self._max_odd = sid
                    self.streams += 1
            elif sid > self._max_even:
                self._max_even = sid
                self.streams += 1

    def gap(self, is_client: bool, nbytes: int, ts_ns: int) -> list[H2Anomaly]:
        side = self._sides[is_client]
        if side.dead or nbytes <= 0:
            return []
        if side.skip >= nbytes and not side.preface:
            side.skip -= nbytes  # inside one frame's payload: the next header is still found
            return []
        side.dead = True
        return [
            H2Anomaly(
                "http2_gap",
                f"{nbytes} bytes missing outside a frame payload; frames after it are not counted",
                ts_ns,
                is_client,
            )
        ]

    def end(self, is_client: bool, ts_ns: int) -> list[H2Anomaly]:
        side = self._sides[is_client]
        if side.dead:
            return []
        side.dead = True
        if side.hdr or side.skip or 0 < side.preface < _PREFACE_LEN:
            return [H2Anomaly("http2_truncated", "stream ended inside a frame", ts_ns, is_client)]
        return []
