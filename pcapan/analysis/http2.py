"""Cleartext HTTP/2 on one connection: stream events into the frame walker, counts out.

The walker (:mod:`pcapan.proto.http2`) only counts frames and streams (HPACK-compressed headers
are not decoded); this module is its driver for the engine. The connection's ``service`` is
``http2`` (``http,http2`` after an ``Upgrade: h2c``); the totals go to the summary
(``http2_frames``, ``http2_streams``) and walker anomalies to the connection's anomaly rows.
"""

from __future__ import annotations

from pcapan.analysis.dispatch import Transport
from pcapan.flow.conn import Connection
from pcapan.flow.reassembly import StreamSink
from pcapan.proto.http2 import H2Anomaly, H2Connection


class H2Context:
    """What every HTTP/2 session of one analysis shares: the summary's totals."""

    __slots__ = ("connections", "frames", "streams")

    def __init__(self) -> None:
        self.connections = 0
        self.frames = 0
        self.streams = 0

    def open(self, transport: Transport, client_is_orig: bool) -> tuple[StreamSink, StreamSink]:
        """Dispatch opener (also for the inside of an HTTP Upgrade/CONNECT tunnel)."""
        self.connections += 1
        s = _Session(self, transport.conn)
        return (_Direction(s, client_is_orig), _Direction(s, not client_is_orig))


class _Session:
    __slots__ = ("ctx", "conn", "parser")

    def __init__(self, ctx: H2Context, conn: Connection) -> None:
        self.ctx = ctx
        self.conn = conn
        self.parser = H2Connection()

    def after(self, is_client: bool, frames: int, streams: int, events: list[H2Anomaly]) -> None:
        p = self.parser
        self.ctx.frames += p.frames(is_client) - frames
        self.ctx.streams += p.streams - streams
        for ev in events:
            # Parsers see bytes, not packets: located by time (frame 0), like Zeek's weirds.
            self.conn.note(0, ev.ts_ns, ev.kind, ev.detail)


class _Direction(StreamSink):
    """A stream sink for one direction of an h2 connection."""

    __slots__ = ("session", "is_client")

    # Only frame and stream counts are kept, which do not depend on how the two directions
    # interleave: the engine may hand over each direction's segments of a batch in one run.
    ordered = False

    def __init__(self, session: _Session, is_client: bool) -> None:
        self.session = session
        self.is_client = is_client

    def data(self, chunk: bytes, ts_ns: int) -> None:
        s, c = self.session, self.is_client
        p = s.parser
        frames, streams = p.frames(c), p.streams
        s.after(c, frames, streams, p.data(c, chunk, ts_ns))

    def gap(self, nbytes: int, ts_ns: int) -> None:
        s = self.session
        s.after(
            self.is_client,
            s.parser.frames(self.is_client),
            s.parser.streams,
            s.parser.gap(self.is_client, nbytes, ts_ns),
        )

    def end(self, ts_ns: int) -> None:
        s = self.session
        s.after(
            self.is_client,
            s.parser.frames(self.is_client),
            s.parser.streams,
            s.parser.end(self.is_client, ts_ns),
        )
