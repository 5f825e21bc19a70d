"""Content detection per connection: name the protocol from the first bytes, then hand both
directions to that protocol's session.

A :class:`Dispatch` owns the two directions of one byte-stream pair (a TCP connection, or the
inside of an HTTP CONNECT/Upgrade tunnel). Each direction gets a :class:`Probe` that keeps the
first bytes it sees (at most ``DETECT_BYTES`` plus the chunk that crosses it). When one direction
is recognised, both directions are handed to the protocol's sinks: what the probes held is
replayed first, and bytes a probe did not keep (it had already given up, or saw a gap) are
replayed as a gap of the right size, so the parser stays aligned with the stream.

A direction that looks like nothing stops receiving bytes at once (its stream goes back to
the cheap sequence-only path); it is only re-attached if the other direction turns out to be a
protocol we parse.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from pcapan.config import DETECT_BYTES
from pcapan.flow.conn import Connection
from pcapan.flow.reassembly import StreamSink
from pcapan.proto.detect import HTTP, HTTP2, TLS, detect, skip_empty_lines


class Transport(Protocol):
    """Where a dispatch's bytes come from."""

    conn: Connection  # the TCP connection that carries them

    def set_sink(self, is_orig: bool, sink: StreamSink | None) -> None: ...

    def position(self, is_orig: bool) -> int:
        """Bytes (data and gaps) delivered so far in that direction."""
        ...

    def service(self, name: str) -> None:
        """The protocol carried was recognised as ``name``."""
        ...


class InnerTransport:
    """Bytes carried inside a connection (a CONNECT/Upgrade tunnel, decrypted TLS), as a
    transport for a nested dispatch: per direction (TCP orientation, indexed by is_orig) the
    sink that reads it and the bytes handed on so far. ``session`` is what carries them; a
    subclass says where a recognised protocol is named (:meth:`service`)."""

    __slots__ = ("session", "conn", "sinks", "pos")

    def __init__(self, session: Any) -> None:
        self.session = session
        self.conn: Connection = session.conn
        self.sinks: list[StreamSink | None] = [None, None]
        self.pos = [0, 0]

    def set_sink(self, is_orig: bool, sink: StreamSink | None) -> None:
        self.sinks[is_orig] = sink

    def position(self, is_orig: bool) -> int:
        return self.pos[is_orig]

    def service(self, name: str) -> None:
        raise NotImplementedError


# proto name -> factory(transport, client_is_orig) returning the (orig, resp) sinks or None
Openers = dict[str, Callable[[Transport, bool], tuple[StreamSink, StreamSink] | None]]


class Probe(StreamSink):
    """One direction's bytes until the protocol is known."""

    __slots__ = ("owner", "is_orig", "chunks", "size", "verdict", "head", "detached", "ended")

    def __init__(self, owner: Dispatch, is_orig: bool) -> None:
        # None once the engine unlinks a finished connection's probes (after their end()):
        # no bytes come after that.
        self.owner: Dispatch | None = owner
        self.is_orig = is_orig
        self.chunks: list[tuple[bytes, int]] = []
        self.size = 0
        self.verdict: str | None = None
        self.head = b""
        self.detached = False  # no longer the stream's sink: it missed what came after
        self.ended: int | None = None  # the stream's end (its time) came while this was the sink

    def data(self, chunk: bytes, ts_ns: int) -> None:
        if self.verdict is not None:
            return
        self.chunks.append((bytes(chunk), ts_ns))
        self.size += len(chunk)
        if len(self.head) < DETECT_BYTES:
            self.head += bytes(chunk[: DETECT_BYTES - len(self.head)])
        verdict = detect(self.head)
        if verdict is None and len(self.head) < DETECT_BYTES:
            return
        assert self.owner is not None  # (attached: the stream has not ended)
        self.owner.decided(self, verdict or "")

    def gap(self, nbytes: int, ts_ns: int) -> None:
        if self.verdict is None:
            assert self.owner is not None  # (attached: the stream has not ended)
            self.owner.decided(self, "")

    def end(self, ts_ns: int) -> None:
        # Remembered so that a protocol recognised from now on still hears of it (replay).
        self.ended = ts_ns
        if self.verdict is None:
            assert self.owner is not None  # (unlinked only after this call)
            self.owner.decided(self, detect(self.head) or "")


class Dispatch:
    """See the module docstring."""

    __slots__ = ("transport", "openers", "orig", "resp", "proto")

    def __init__(self, transport: Transport, openers: Openers) -> None:
        self.transport = transport
        self.openers = openers
        self.orig = Probe(self, True)
        self.resp = Probe(self, False)
        self.proto = ""
        transport.set_sink(True, self.orig)
        transport.set_sink(False, self.resp)

    def decided(self, probe: Probe, verdict: str) -> None:
        probe.verdict = verdict
        tr = self.transport
        if verdict:
            tr.service(verdict)
        opener = self.openers.get(verdict) if verdict else None
        if opener is None:
            # Nothing here parses this direction: stop copying its bytes. The probe keeps what
            # it saw in case the other direction is recognised later.
            tr.set_sink(probe.is_orig, None)
            probe.detached = True
            other = self.resp if probe.is_orig else self.orig
            if other.verdict is not None and not self.proto:
                self._drop()
            return
        # Which side is the client: HTTP can tell a request from a response.
        client_is_orig = True
        if verdict == HTTP:
            client_is_orig = probe.is_orig != skip_empty_lines(probe.head).startswith(b"HTTP/")
        elif verdict == HTTP2:
            client_is_orig = probe.is_orig != (probe.head[:1] == b"\0")  # a server's SETTINGS frame
        elif verdict == TLS:
            client_is_orig = probe.is_orig != _is_server_hello(probe.head)
        sinks = opener(tr, client_is_orig)
        if sinks is None:
            tr.set_sink(True, None)
            tr.set_sink(False, None)
            self._drop()
            return
        self.proto = verdict
        now = probe.chunks[-1][1] if probe.chunks else 0
        # Replay the client side first so that a request is known before its response.
        order = (self.orig, self.resp) if client_is_orig else (self.resp, self.orig)
        for p in order:
            sink = sinks[0] if p.is_orig else sinks[1]
            tr.set_sink(p.is_orig, sink)
            chunks, p.chunks = p.chunks, []
            p.verdict = verdict
            for chunk, ts in chunks:
                sink.data(chunk, ts)
            # A probe still attached sees every byte and gap as it comes (including the rest
            # of the delivery in progress); a detached one missed everything past what it kept.
            rest = tr.position(p.is_orig) - p.size if p.detached else 0
            if rest > 0:
                sink.gap(rest, chunks[-1][1] if chunks else now)
            if p.ended is not None:
                sink.end(p.ended)  # the stream ended before the protocol was known
        self._drop()

    def _drop(self) -> None:
        # Free the buffered bytes; the probes are no longer anyone's sink.
        self.orig.chunks = []
        self.resp.chunks = []


def _is_server_hello(head: bytes) -> bool:
    """TLS first bytes from the server: a handshake record whose first message is a
    ServerHello (type 2). Anything else (a ClientHello in either record format) is taken as
    the client's."""
    if len(head) >= 6 and head[0] == 22:
        return head[5] == 2
    return False
