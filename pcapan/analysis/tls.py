"""TLS on one connection: stream events into the parser, one tls table row out per connection.

The parser (:mod:`pcapan.proto.tls`) is sans-IO; this module is its driver for the engine. It maps
stream directions to client and server, keeps what the row needs from the parser's events,
counts the handshake's round trips from the flights on the wire, turns parser anomalies into the
connection's anomaly rows, and writes the row when both directions have ended.

Record bodies the parser does not read (application data, encrypted handshake) are taken as
opaque: the engine hands them over as views of its batch, counted without being copied, so a
bulk TLS download costs the parser one call per record header, not one per segment.

Application-data exchanges (for reuse on HTTPS, where the requests are encrypted): after the
handshake, a client flight of application data starts an exchange (the time of its first
segment) and the server's application data that follows ends it (the time of its last segment
before the client's next flight). They are followed per call of the stream contract, never per
record: each ``data``/``skim`` call compares the direction's application-data byte count before
and after and hands (direction, first and last timestamp) to :meth:`TlsSession.app_data`; a run
skimmed in one call replays what those per-segment calls would have said (``_Direction.skim``).
The engine keeps both directions' runs in capture order on connections with a parser, also after
the handshake, so the exchanges are those of the packet-by-packet path.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from pcapan.analysis.dispatch import Dispatch, InnerTransport, Openers, Transport
from pcapan.config import MAX_TLS_APP_EXCHANGES
from pcapan.flow.conn import Connection, ntop
from pcapan.flow.reassembly import StreamSink
from pcapan.model import TlsRecord, make_tls_record
from pcapan.proto.detect import HTTP2
from pcapan.proto.tls import (
    APPLICATION_DATA,
    CONTENT_TYPES,
    HS_CERTIFICATE_REQUEST,
    Alert,
    Certificate,
    CertInfo,
    ClientHello,
    Event,
    HandshakeDone,
    HandshakeMessage,
    NewSessionTicket,
    ServerKeyExchange,
    TlsAnomaly,
    TlsConnection,
)
from pcapan.proto.tls_registry import (
    CIPHER_SUITES,
    alert_name,
    cipher_name,
    extension_name,
    group_name,
    is_weak_cipher,
    sigscheme_name,
    version_name,
)

if TYPE_CHECKING:
    from pcapan.proto.tls_decrypt import TlsDecryptor
    from pcapan.proto.tls_keylog import KeyLog

# SHA-384 suites: their Finished carries a 48-byte MAC (RFC 8446 4.4.4), the others 32.
_SHA384_TLS13 = {0x1302}
# An encrypted TLS 1.3 handshake record: message + content type byte + 16-byte AEAD tag.
_EOED_RECORD_LEN = 4 + 1 + 16  # EndOfEarlyData (RFC 8446 4.5) in a record of its own
# An encrypted TLS 1.3 alert (close_notify at the end of a connection): 2 bytes + content type +
# 16-byte AEAD tag. A flight of only this is no request or response.
_TLS13_ALERT_RECORD_LEN = 2 + 1 + 16


class TlsContext:
    """What every TLS session of one analysis shares: where rows go."""

    __slots__ = (
        "records",
        "source",
        "shared",
        "lists",
        "open_sessions",
        "keylog",
        "keylog_refresh",
        "inner_openers",
    )

    def __init__(self) -> None:
        self.records: list[TlsRecord] = []
        self.shared: dict[str | None, str | None] = {}  # one copy of each repeated text value
        # Offered lists, named once each: keyed by (naming function, list), and record-type
        # counts by their sorted (type, count) pairs.
        self.lists: dict[tuple[object, ...], str] = {}
        self.source = ""
        self.open_sessions: set[TlsSession] = set()
        # Decryption (issue 17): the key log (None: no decryption, every session on the fast
        # path), and the openers for decrypted bytes (HTTP with its tls flag, HTTP/2), set by
        # the engine.
        self.keylog: KeyLog | None = None
        # rereads a growing key log (pcapan live); its argument: see Analyzer.use_keylog
        self.keylog_refresh: Callable[[int | None], object] | None = None
        self.inner_openers: Openers = {}

    def open(self, transport: Transport, client_is_orig: bool) -> tuple[StreamSink, StreamSink]:
        """Dispatch opener: a TLS session on a TCP connection."""
        return self._open(transport, client_is_orig, False)

    def open_in_tunnel(
        self, transport: Transport, client_is_orig: bool
    ) -> tuple[StreamSink, StreamSink]:
        """Dispatch opener for the inside of an HTTP CONNECT/Upgrade tunnel."""
        return self._open(transport, client_is_orig, True)

    def _open(
        self, transport: Transport, client_is_orig: bool, in_tunnel: bool
    ) -> tuple[StreamSink, StreamSink]:
        conn = transport.conn
        k = conn.key
        ids = (ntop(k.orig_h), k.orig_p, ntop(k.resp_h), k.resp_p)
        s = TlsSession(self, conn, client_is_orig, ids, self.source, in_tunnel)
        self.open_sessions.add(s)
        if self.keylog is not None:
            from pcapan.proto.tls_decrypt import TlsDecryptor

            s.transport = transport
            s.dec = TlsDecryptor()
            return (_Keyed(s, client_is_orig), _Keyed(s, not client_is_orig))
        return s.sinks()

    def close_all(self) -> None:
        """End of input: write the rows of sessions whose streams never ended (a detached sink)."""
        for s in sorted(self.open_sessions, key=lambda s: s.first_ts or 0):
            s.emit()
        self.open_sessions.clear()


class _Direction(StreamSink):
    """A stream sink for one TCP direction of a TLS connection (record bodies are opaque;
    after the handshake, runs are skimmed)."""

    __slots__ = ("session", "is_client")

    def __init__(self, session: TlsSession, is_client: bool) -> None:
        self.session = session
        self.is_client = is_client

    @property
    def ordered(self) -> bool:
        """The parser needs holes signalled in capture order until the handshake completes
        (flights are counted); after it, records are only counted per direction. (The engine
        still folds both directions' runs in capture order, for the exchanges.)"""
        return self.session.done_ts is None

    def data(self, chunk: bytes, ts_ns: int) -> None:
        s = self.session
        c = self.is_client
        s.bytes_from(c, ts_ns)
        p = s.parser
        # (inside a record body: only the server's continuation matters, see app_data)
        app, skip, done = p.app_data_bytes(c), 0 if c else p.opaque_bytes(c), s.done_ts
        events = p.data(c, chunk, ts_ns)
        if events:
            s.handle(events)
        if s.done_ts is not None:
            grew = p.app_data_bytes(c) - app
            if done is None and c and p.tls13:
                # The client's Finished (EndOfEarlyData) completed the handshake in this chunk:
                # its record is no request; what follows it in the chunk is.
                grew -= p.client_first_encrypted_len or 0
            s.app_data(c, ts_ns, ts_ns, grew, skip)

    def opaque(self) -> int:
        return self.session.parser.opaque_bytes(self.is_client)

    def skim(self, mv: memoryview, offs: list[int], lens: list[int], tss: list[int]) -> bool:
        """A run of segments after the handshake: only record headers matter (counted), walked
        in one call. False when the parser still reads this direction's bytes."""
        s = self.session
        if s.done_ts is None:
            return False
        p = s.parser
        c = self.is_client
        at0 = p.opaque_bytes(c)  # run position of the first header (the rest is a body)
        events = p.skim(c, mv, offs, lens, tss)
        if events is None:
            return False
        s.bytes_from(c, tss[0])
        if events:
            s.handle(events)
        # What data() per segment would have told app_data: per segment, the application-data
        # bytes of the records whose header it completed, and (server) whether it began inside
        # a record body. A client's segments that grew open or extend an exchange one by one
        # (one step per record); for the server only its last such segment matters (times do
        # not go back within a folded run).
        marks = p.skimmed
        if c:
            kk, g = -1, 0
            for _, ln, ctype, k in marks:
                if ctype == APPLICATION_DATA:
                    if k != kk:
                        if g:
                            s.app_data(True, tss[kk], tss[kk], g, 0)
                        kk, g = k, 0
                    g += ln
            if g:
                s.app_data(True, tss[kk], tss[kk], g, 0)
            return True
        tls13 = p.tls13
        n = len(lens)
        # (once framing is lost, data() takes every later segment as skipped unread)
        lost = marks[-1][3] if marks and marks[-1][1] < 0 else n
        i = len(marks) - 1
        pos = sum(lens)
        for k in range(n - 1, -1, -1):
            pos -= lens[k]
            while i >= 0 and marks[i][3] > k:
                i -= 1
            g = 0
            r = i
            while r >= 0 and marks[r][3] == k:
                if marks[r][2] == APPLICATION_DATA:
                    g += marks[r][1]
                r -= 1
            if tls13 and g == _TLS13_ALERT_RECORD_LEN:
                continue
            if k > lost:
                inside = True
            else:
                r = i  # the last header at or before the segment's start
                while r >= 0 and marks[r][0] > pos:
                    r -= 1
                inside = (
                    pos < at0 if r < 0 else marks[r][0] + 5 <= pos < marks[r][0] + 5 + marks[r][1]
                )
            if g > 0 or inside:
                s.app_data(False, tss[k], tss[k], g, 1 if inside else 0)
                break
        return True

    def opaque_views(self, views: list[memoryview], tss: list[int]) -> None:
        s = self.session
        s.bytes_from(self.is_client, tss[0])
        s.parser.skip_opaque(self.is_client, sum(map(len, views)))
        if s.done_ts is not None:
            s.app_data(self.is_client, tss[0], tss[-1], 0, 1)  # the rest of a record body

    def gap(self, nbytes: int, ts_ns: int) -> None:
        s = self.session
        s.handle(s.parser.gap(self.is_client, nbytes, ts_ns))

    def end(self, ts_ns: int) -> None:
        s = self.session
        s.handle(s.parser.end(self.is_client, ts_ns))
        s.ended(self.is_client)


class _Keyed(_Direction):
    """A direction of a TLS connection analysed with a key log: every byte comes through
    :meth:`data` (no skimming, no opaque record bodies: the decryptor reads them) and both
    directions stay in capture order (the decrypted HTTP pairs requests with responses)."""

    __slots__ = ()

    # No opaque record bodies (the decryptor reads them): StreamSink computes has_opaque from it.
    opaque = StreamSink.opaque  # type: ignore[assignment]
    opaque_views = StreamSink.opaque_views  # type: ignore[assignment]

    def skim(self, mv: memoryview, offs: list[int], lens: list[int], tss: list[int]) -> bool:
        """After the handshake a run is walked by record headers for the counts (as without
        keys) and handed to the decryptor in one call."""
        s = self.session
        dec = s.dec
        if dec is None or not dec.version or not super().skim(mv, offs, lens, tss):
            return False
        events = dec.data_run(self.is_client, mv, offs, lens, tss)
        if events:
            s.handle_decrypted(events)
        return True

    @property
    def ordered(self) -> bool:
        return True

    def data(self, chunk: bytes, ts_ns: int) -> None:
        super().data(chunk, ts_ns)
        self.session.decrypt(self.is_client, chunk, ts_ns)

    def gap(self, nbytes: int, ts_ns: int) -> None:
        super().gap(nbytes, ts_ns)
        self.session.decrypt_gap(self.is_client, nbytes, ts_ns)

    def end(self, ts_ns: int) -> None:
        self.session.decrypt_end(self.is_client, ts_ns)
        super().end(ts_ns)


class _Plain(InnerTransport):
    """The decrypted bytes of a TLS connection, as a transport for a nested dispatch (like the
    inside of an HTTP CONNECT tunnel)."""

    __slots__ = ()
    session: TlsSession

    def service(self, name: str) -> None:
        tr = self.session.transport
        if tr is not None:
            tr.service(name)


class TlsSession:
    """Drives one connection's :class:`TlsConnection` and builds its row."""

    __slots__ = (
        "ctx",
        "conn",
        "client_is_orig",
        "ids",
        "source",
        "in_tunnel",
        "parser",
        "first_ts",
        "ch",
        "first_ch",
        "first_ch_ts",
        "ske",
        "cert",
        "cert_requested",
        "client_cert",
        "nst",
        "alert",
        "alert_from",
        "done_ts",
        "rtts",
        "last_from_client",
        "ends",
        "flags",
        "emitted",
        "req_ts",
        "resp_ts",
        "ex_start",
        "ex_client",
        "ex_end",
        "ex_count",
        "ex_times",
        "transport",
        "dec",
        "key_wait",
        "plain",
        "plain_gap",
        "alpn13",
        "nst13",
        "ticket_life",
        "ticket_early",
        "key_updates",
        "h2",
        "__weakref__",
    )

    def __init__(
        self,
        ctx: TlsContext,
        conn: Connection,
        client_is_orig: bool,
        ids: tuple[str, int, str, int],
        source: str,
        in_tunnel: bool,
    ) -> None:
        self.ctx = ctx
        self.conn = conn
        self.client_is_orig = client_is_orig
        self.ids = ids
        self.source = source
        self.in_tunnel = in_tunnel
        self.parser = TlsConnection()
        self.first_ts: int | None = None
        self.ch: ClientHello | None = None
        self.first_ch: ClientHello | None = None
        self.first_ch_ts: int | None = None
        self.ske: ServerKeyExchange | None = None
        self.cert: Certificate | None = None
        self.client_cert = False
        self.cert_requested = False
        self.nst = False
        self.alert: str | None = None
        self.alert_from: str | None = None
        self.done_ts: int | None = None
        self.rtts = 0
        self.req_ts: int | None = None  # first application data the client sent after the handshake
        self.resp_ts: int | None = None  # first data the server sent after that
        self.last_from_client: bool | None = None
        # Application-data exchanges: the open one (client flight's first and last data, the
        # server's last data), how many were answered, the kept ones' start/end pairs, flattened.
        self.ex_start: int | None = None
        self.ex_client = 0
        self.ex_end: int | None = None
        self.ex_count = 0
        self.ex_times: list[int] = []
        self.ends = 0
        self.flags: list[str] = []
        self.emitted = False
        # Decryption (issue 17; set up by TlsContext._open when there is a key log)
        self.transport: Transport | None = None
        self.dec: TlsDecryptor | None = None
        # A followed key log had only some of the TLS 1.3 secrets when the handshake ended:
        # 1 while the records wait for the rest, 2 once they are decrypted with what there is.
        self.key_wait = 0
        self.plain: _Plain | None = None  # the decrypted bytes' transport, once some came
        self.plain_gap = [False, False]  # a gap was passed on (TCP orientation)
        self.alpn13: str | None = None  # ALPN from the decrypted EncryptedExtensions
        self.nst13 = False  # a decrypted TLS 1.3 NewSessionTicket
        self.ticket_life: int | None = None
        self.ticket_early: int | None = None
        self.key_updates = 0
        self.h2: StreamSink | None = None  # the decrypted HTTP/2's client sink (its counts)

    def sinks(self) -> tuple[StreamSink, StreamSink]:
        """(orig, resp) sinks for the TCP streams; the parser's is_orig means the client."""
        return (_Direction(self, self.client_is_orig), _Direction(self, not self.client_is_orig))

    def bytes_from(self, is_client: bool, ts_ns: int) -> None:
        """Flights: each time the server speaks after the client did, before the handshake
        completed, one of the client's flights was answered: one round trip."""
        if self.first_ts is None:
            self.first_ts = ts_ns
        if self.done_ts is not None:
            if is_client and self.req_ts is None:
                self.req_ts = ts_ns
            elif not is_client and self.req_ts is not None and self.resp_ts is None:
                self.resp_ts = ts_ns
        if self.last_from_client is is_client:
            return
        if not is_client and self.last_from_client and self.done_ts is None:
            self.rtts += 1
        self.last_from_client = is_client

    def app_data(self, is_client: bool, first_ns: int, last_ns: int, grew: int, skip: int) -> None:
        """Bytes after the handshake, from ``first_ns`` to ``last_ns``: ``grew`` more bytes of
        application-data record bodies (new records), ``skip`` > 0 when they began inside a record
        body. A client flight opens an exchange, or goes on with the open one while the server
        has not answered all of it (its last data is before the client's last); the server's
        data ends the open one."""
        if grew == _TLS13_ALERT_RECORD_LEN and self.parser.tls13:
            return  # a lone encrypted alert (close_notify): neither request nor response
        start = self.ex_start
        if is_client:
            if grew <= 0:
                return  # the rest of a record already counted, or no application data
            end = self.ex_end
            if start is None:
                self.ex_start = first_ns
                self.ex_client = last_ns
            elif end is not None and end >= self.ex_client and first_ns > end:
                self._close_exchange()
                self.ex_start = first_ns
                self.ex_client = last_ns
            else:  # the flight goes on, or a request is still unanswered
                if first_ns < start:
                    self.ex_start = first_ns
                if last_ns > self.ex_client:
                    self.ex_client = last_ns
        elif (grew > 0 or skip) and start is not None and last_ns >= start:
            end = self.ex_end
            if end is None or last_ns > end:
                self.ex_end = last_ns
        # (server data with no exchange open: a TLS 1.3 session ticket, a server speaking first)

    def _close_exchange(self) -> None:
        """The open exchange is answered and the client speaks again: keep its times (past
        MAX_TLS_APP_EXCHANGES the last kept one is stretched to cover it)."""
        start, end = self.ex_start, self.ex_end
        if start is None or end is None:
            return
        self.ex_count += 1
        t = self.ex_times
        if len(t) < 2 * MAX_TLS_APP_EXCHANGES:
            t += (start, end)
        else:
            t[-1] = end
        self.ex_start = self.ex_end = None

    def _exchanges(self) -> tuple[int | None, tuple[int, ...]]:
        """(answered exchanges, kept start/end pairs) at the end: the open exchange closes; one
        still unanswered is kept with end -1 (in flight until the end) and not counted."""
        if self.ex_start is not None:
            if self.ex_end is not None and self.ex_end >= self.ex_client:
                self._close_exchange()
            else:
                t = self.ex_times
                if len(t) < 2 * MAX_TLS_APP_EXCHANGES:
                    t += (self.ex_start, -1)
                else:
                    t[-1] = -1
                self.ex_start = None
        if self.done_ts is None:
            return None, ()
        return self.ex_count, tuple(self.ex_times)

    # -- decryption (issue 17) -------------------------------------------------------------------
    def decrypt(self, is_client: bool, chunk: bytes, ts_ns: int) -> None:
        """The same bytes the parser just read, for the decryptor: secrets once the ClientHello
        is parsed, the suite once the ServerHello is, then the records."""
        dec = self.dec
        if dec is None or dec.keyed is False:
            return
        p = self.parser
        events: list[Any] = []
        ch = p.client_hello
        if dec.keyed is None and ch is not None:
            ctx = self.ctx
            kl = ctx.keylog
            secrets = kl.lookup(ch.random) if kl is not None else None
            refresh = ctx.keylog_refresh
            if refresh is not None and kl is not None and not (secrets and secrets.complete):
                # A key log still being written (pcapan live): the client logs its secrets
                # when it has the ServerHello (TLS 1.3: the handshake secrets first, the
                # traffic secrets once it has the server's Finished), so they may come after
                # the ClientHello. Records are held meanwhile; "no key" is said only once the
                # handshake is over, after a reading of the file that started after the packet
                # that ended it (the client had logged its secrets before sending it).
                refresh(ts_ns if p.done else None)
                secrets = kl.lookup(ch.random)
                if not (secrets and secrets.complete) and self._wait_for_key(secrets, is_client):
                    dec.data(is_client, chunk, ts_ns)  # (held: the suite is not set yet)
                    return
            events += dec.set_secrets(secrets, ch.random, ts_ns)
        sh = p.server_hello
        if dec.keyed and dec.version is None and sh is not None:
            early = bool(ch is not None and ch.early_data)
            events += dec.hello(sh.version, sh.cipher, sh.random, sh.encrypt_then_mac, early, ts_ns)
        events += dec.data(is_client, chunk, ts_ns)
        if events:
            self.handle_decrypted(events)

    def _wait_for_key(self, secrets: Any, is_client: bool) -> bool:
        """Whether records keep waiting for secrets a followed key log does not hold (all) yet.
        Until the handshake is over, yes. After it, with none: no (no key). With some (TLS 1.3):
        OpenSSL logs CLIENT_TRAFFIC_SECRET_0 just after it sent its Finished, the packet that
        ends the handshake, so they wait on until the client sends more (it had logged it by
        then) or the connection ends (decrypt_end); the server's packets may come first."""
        if not self.parser.done:
            return True
        if secrets is None or self.key_wait == 2:
            return False
        if self.key_wait == 0:
            self.key_wait = 1  # (the packet that ended the handshake)
            return True
        return not is_client

    def decrypt_gap(self, is_client: bool, nbytes: int, ts_ns: int) -> None:
        dec = self.dec
        if dec is None:
            return
        self.handle_decrypted(dec.gap(is_client, nbytes, ts_ns))
        d = is_client == self.client_is_orig
        plain = self.plain
        if plain is not None and not self.plain_gap[d]:
            # Decryption stops here: the parser of the plaintext hears of a hole (its size in
            # plaintext is unknown, and nothing follows it), never of guessed bytes.
            self.plain_gap[d] = True
            plain.pos[d] += nbytes
            sink = plain.sinks[d]
            if sink is not None:
                sink.gap(nbytes, ts_ns)

    def decrypt_end(self, is_client: bool, ts_ns: int) -> None:
        dec = self.dec
        if dec is None:
            return
        if dec.keyed is None and self.key_wait == 1:
            # Still waiting for the rest of the secrets: what the key log holds now (read
            # again) is all there is; the held records are decrypted with it (a missing secret
            # is said).
            self.key_wait = 2
            self.decrypt(is_client, b"", ts_ns)
        dec.end(is_client, ts_ns)
        plain = self.plain
        if plain is not None:
            sink = plain.sinks[is_client == self.client_is_orig]
            if sink is not None:
                sink.end(ts_ns)

    def handle_decrypted(self, events: list[Any]) -> None:
        from pcapan.proto.tls_decrypt import (
            DecryptAnomaly,
            EncryptedExtensions,
            KeyUpdate,
            Plaintext,
            SessionTicket,
        )

        for ev in events:
            if type(ev) is Plaintext:  # (the usual event: one per record)
                self._plaintext(ev.is_orig, ev.data, ev.ts_ns, ev.ts_first_ns)  # type: ignore[union-attr]
            elif isinstance(ev, EncryptedExtensions):
                self.alpn13 = ev.alpn
            elif isinstance(ev, SessionTicket):
                self.nst13 = True
                self.ticket_life = ev.lifetime_s
                self.ticket_early = ev.max_early_data
            elif isinstance(ev, KeyUpdate):
                self.key_updates += 1
            elif isinstance(ev, DecryptAnomaly):
                self.conn.note(0, ev.ts_ns, ev.kind, ev.detail)
            elif isinstance(ev, Alert):
                if self.alert in (None, "encrypted") and ev.level is not None:
                    self.alert = None  # the decrypted alert replaces "encrypted"
                self.handle([ev])
            else:
                self.handle([ev])  # Certificate, HandshakeMessage: as in TLS 1.2

    def _plaintext(self, is_client: bool, data: bytes, ts_ns: int, ts_first_ns: int) -> None:
        plain = self.plain
        if plain is None:
            plain = self.plain = _Plain(self)
            h2 = self.ctx.inner_openers.get(HTTP2)
            if self.alpn13 == "h2" or (self.alpn13 is None and _alpn(self) == "h2"):
                # ALPN chose HTTP/2: its frames, never the HTTP/1 parser (no detection).
                sinks = h2(plain, self.client_is_orig) if h2 is not None else None
                if sinks is not None:
                    plain.service(HTTP2)
                    plain.sinks = [sinks[1], sinks[0]]
                    self.h2 = sinks[0]
            elif self.ctx.inner_openers:
                Dispatch(plain, self.ctx.inner_openers)
        d = is_client == self.client_is_orig
        plain.pos[d] += len(data)
        sink = plain.sinks[d]
        if sink is None:
            return
        if ts_first_ns < ts_ns and len(data) > 1:
            # A record spans segments: its first byte came with the first of them (a response's
            # first byte, for TTFB), the rest when it was complete (a message's end).
            sink.data(data[:1], ts_first_ns)
            sink = plain.sinks[d]  # (detection may have replaced the sink)
            if sink is None:
                return
            data = data[1:]
        sink.data(data, ts_ns)

    def handle(self, events: list[Event]) -> None:
        for ev in events:
            if isinstance(ev, ClientHello):
                if self.ch is None:
                    self.first_ch_ts = ev.ts_ns
                    # JA3/JA4 fingerprint the client: its own hello, not the one a
                    # HelloRetryRequest made it send (FoxIO's ja4 reports the first).
                    self.first_ch = ev
                self.ch = ev  # after a HelloRetryRequest, the second one is what was negotiated
            elif isinstance(ev, ServerKeyExchange):
                self.ske = ev
            elif isinstance(ev, Certificate):
                if ev.is_orig:
                    self.client_cert = self.client_cert or ev.chain_len > 0
                elif self.cert is None:
                    self.cert = ev
            elif isinstance(ev, HandshakeMessage):
                if ev.msg_type == HS_CERTIFICATE_REQUEST and not ev.is_orig:
                    self.cert_requested = True
            elif isinstance(ev, NewSessionTicket):
                self.nst = True
                self.ticket_life = ev.lifetime_hint
            elif isinstance(ev, Alert):
                if self.alert is None:
                    if ev.level is None:
                        self.alert = "encrypted"
                    else:
                        level = {1: "warning", 2: "fatal"}.get(ev.level, str(ev.level))
                        self.alert = f"{level}:{alert_name(ev.description or 0)}"
                    self.alert_from = "client" if ev.is_orig else "server"
            elif isinstance(ev, HandshakeDone):
                if self.done_ts is None:
                    self.done_ts = ev.ts_ns
                    if self.last_from_client:
                        # Completed by the client's own flight (TLS 1.3, resumption, False
                        # Start): its request rides in that flight.
                        self.req_ts = ev.ts_ns
            elif isinstance(ev, TlsAnomaly):
                if ev.kind == "tls_gap":
                    self._flag("tls_gap_client" if ev.is_orig else "tls_gap_server")
                elif ev.kind == "tls_truncated":
                    self._flag("truncated")
                # Parsers see bytes, not packets: located by time (frame 0), like Zeek's weirds.
                self.conn.note(0, ev.ts_ns, ev.kind, ev.detail)

    def _flag(self, name: str) -> None:
        if name not in self.flags:
            self.flags.append(name)

    def ended(self, is_client: bool) -> None:
        self.ends += 1
        if self.ends >= 2:
            self.emit()

    def emit(self) -> None:
        if self.emitted:
            return
        self.emitted = True
        self.ctx.open_sessions.discard(self)
        if self.first_ts is None:
            return  # detected on a probe's bytes but nothing reached the parser
        self.ctx.records.append(self._record())

    def _record(self) -> TlsRecord:
        p = self.parser
        ch = self.ch
        sh_ok = p.server_hello  # the ServerHello that negotiated (not a HelloRetryRequest)
        code = sh_ok.cipher if sh_ok is not None else None
        cs = CIPHER_SUITES.get(code) if code is not None else None
        tls13 = p.tls13
        shared = self.ctx.shared.setdefault

        lists = self.ctx.lists

        curve = None
        if sh_ok is not None and sh_ok.key_share_group is not None:
            curve = group_name(sh_ok.key_share_group)
        elif self.ske is not None and self.ske.curve is not None:
            curve = group_name(self.ske.curve)
        early_offered = ch.early_data if ch is not None else None
        early_accepted: bool | None = None
        if early_offered:
            n = p.client_first_encrypted_len
            if sh_ok is not None and (not tls13 or sh_ok.psk_selected is None):
                early_accepted = False  # no pre-shared key accepted: early data cannot have been
            elif sh_ok is None or n is None:
                early_accepted = None  # the handshake was not seen far enough to tell
            else:
                fin = 4 + (48 if code in _SHA384_TLS13 else 32) + 1 + 16
                early_accepted = n in (_EOED_RECORD_LEN, fin + 4)
        rtts: int | None = None
        if self.done_ts is not None:
            rtts = 0 if early_accepted else self.rtts
        leaf: CertInfo | None = None
        if self.cert is not None:
            try:
                leaf = self.cert.leaf()
            except Exception:  # noqa: BLE001 - a certificate we cannot read must not stop the analysis
                leaf = None
            if leaf is None and self.cert.chain:
                self._flag("bad_certificate")
            elif leaf is not None and (_ns(leaf.not_before) is None or _ns(leaf.not_after) is None):
                self._flag("cert_time_out_of_range")
        if sh_ok is None and ch is not None:
            self._flag("no_server_hello")
        resumption = p.resumed
        t_ch = self.first_ch_ts
        t_done = self.done_ts
        orig_is_client = self.client_is_orig
        rec_c = sum(p.records(True).values())
        rec_s = sum(p.records(False).values())
        app_c, app_s = p.app_data_bytes(True), p.app_data_bytes(False)
        orig_h, orig_p, resp_h, resp_p = self.ids
        ts = t_ch if t_ch is not None else (self.first_ts or self.conn.start_ns)
        version = version_name(sh_ok.version) if sh_ok is not None else None
        fp = self.first_ch
        ja3 = fp.ja3_hash if fp is not None else None
        exchanges, exchange_times = self._exchanges()
        dec = self.dec
        # TLS 1.3 ticket_issued: known only when the server's records were decrypted to the end
        # (True at a decrypted ticket; False when none came in a direction decrypted throughout).
        dec_ok: bool | None = None
        if dec is not None and dec.decrypted_records and dec.error is None:
            dec_ok = False
        h2p = getattr(getattr(self.h2, "session", None), "parser", None)
        # positional, in field order (see fast_maker)
        return make_tls_record(
            ts,  # ts_ns
            self.conn.uid,  # uid
            orig_h,  # orig_h
            orig_p,  # orig_p
            resp_h,  # resp_h
            resp_p,  # resp_p
            shared(version, version),  # version
            version_name(ch.legacy_version) if ch is not None else None,  # client_legacy_version
            _names(lists, ch.supported_versions, version_name)
            if ch is not None
            else None,  # client_versions
            cipher_name(code) if code is not None else None,  # cipher
            code,  # cipher_code
            cs.strength_bits if cs is not None else None,  # cipher_strength_bits
            cs.strength_class if cs is not None else None,  # cipher_strength_class
            cs.forward_secrecy if cs is not None else None,  # cipher_forward_secrecy
            cs.aead if cs is not None else None,  # cipher_aead
            cs.mozilla_level if cs is not None else None,  # cipher_mozilla_level
            cs.h2_blocklisted if cs is not None else None,  # cipher_h2_blocklisted
            cs.insecure if cs is not None else None,  # cipher_insecure
            _names(lists, ch.ciphers, cipher_name) if ch is not None else None,  # client_ciphers
            sum(map(is_weak_cipher, ch.ciphers))
            if ch is not None
            else None,  # weak_ciphers_offered
            ch.server_name if ch is not None else None,  # server_name
            _names(lists, ch.alpn, str) if ch is not None else None,  # alpn_offered
            self.alpn13 if tls13 else (sh_ok.alpn if sh_ok is not None else None),  # next_protocol
            curve,  # curve
            self.ske.dh_prime_bits if self.ske is not None else None,  # dh_prime_bits
            _names(lists, ch.supported_groups, group_name)
            if ch is not None
            else None,  # supported_groups
            _names(lists, ch.key_share_groups, group_name)
            if ch is not None
            else None,  # key_share_groups
            _names(lists, ch.signature_algorithms, sigscheme_name)
            if ch is not None
            else None,  # signature_algorithms
            _names(lists, ch.extensions, extension_name)
            if ch is not None
            else None,  # client_extensions
            _names(lists, sh_ok.extensions, extension_name)
            if sh_ok is not None
            else None,  # server_extensions
            len(ch.session_id) if ch is not None else None,  # session_id_len
            resumption is not None,  # resumed
            resumption,  # resumption
            bool(ch.session_ticket) if ch is not None else None,  # session_ticket_offered
            ch.psk_identities > 0 if ch is not None else None,  # psk_offered
            (True if self.nst13 else dec_ok) if tls13 else self.nst,  # ticket_issued
            early_offered,  # early_data_offered
            early_accepted,  # early_data_accepted
            p.hello_retry,  # hello_retry_request
            t_done is not None,  # established
            self.alert,  # alert
            self.alert_from,  # alert_from
            ch.encrypted_client_hello if ch is not None else None,  # ech_offered
            ch.grease if ch is not None else None,  # grease
            bool(ch is not None and ch.sslv2),  # sslv2_hello
            self.cert_requested,  # cert_requested
            self.client_cert,  # client_cert
            self.cert.chain_len if self.cert is not None else None,  # cert_chain_len
            leaf.subject_cn if leaf is not None else None,  # cert_subject_cn
            ",".join(leaf.san) or None if leaf is not None else None,  # cert_san
            leaf.issuer if leaf is not None else None,  # cert_issuer
            _ns(leaf.not_before) if leaf is not None else None,  # cert_not_before
            _ns(leaf.not_after) if leaf is not None else None,  # cert_not_after
            leaf.key_type if leaf is not None else None,  # cert_key_type
            leaf.key_bits if leaf is not None else None,  # cert_key_bits
            leaf.signature_algorithm if leaf is not None else None,  # cert_sig_alg
            leaf.self_signed if leaf is not None else None,  # cert_self_signed
            ja3,  # ja3
            sh_ok.ja3s_hash if sh_ok is not None else None,  # ja3s
            fp.ja4 if fp is not None else None,  # ja4
            fp.ja4_r if fp is not None else None,  # ja4_r
            t_ch,  # ts_client_hello
            sh_ok.ts_ns if sh_ok is not None else None,  # ts_server_hello
            t_done,  # ts_handshake_done
            rtts,  # handshake_rtts
            (t_done - t_ch) / 1e9
            if t_done is not None and t_ch is not None
            else None,  # handshake_s
            self.req_ts,  # ts_first_request
            self.resp_ts,  # ts_first_response
            rec_c if orig_is_client else rec_s,  # orig_records
            rec_s if orig_is_client else rec_c,  # resp_records
            app_c if orig_is_client else app_s,  # orig_app_bytes
            app_s if orig_is_client else app_c,  # resp_app_bytes
            self._types(orig_is_client),  # orig_record_types
            self._types(not orig_is_client),  # resp_record_types
            self.in_tunnel,  # in_tunnel
            ",".join(self.flags) or None,  # flags
            self.source,  # source
            exchanges,  # app_exchanges
            exchange_times,  # app_exchange_times
            bool(dec is not None and dec.decrypted_records),  # decrypted
            dec.error if dec is not None else None,  # decrypt_error
            dec.decrypted_records if dec is not None else None,  # decrypted_records
            self.ticket_life,  # ticket_lifetime_s
            self.ticket_early,  # ticket_max_early_data
            self.key_updates if dec is not None else None,  # key_updates
            h2p.frames(True) + h2p.frames(False) if h2p is not None else None,  # h2_frames
            h2p.streams if h2p is not None else None,  # h2_streams
        )

    def _types(self, is_client: bool) -> str | None:
        counts = self.parser.records(is_client)
        if not counts:
            return None
        key = tuple(sorted(counts.items()))
        text = self.ctx.lists.get(key)
        if text is None:
            text = ",".join(
                [f"{CONTENT_TYPES.get(t, 'sslv2' if t == 0 else str(t))}={n}" for t, n in key]
            )
            self.ctx.lists[key] = text
        return text


def _names(
    lists: dict[tuple[object, ...], str], vals: tuple[object, ...] | None, fn: Callable[[Any], str]
) -> str | None:
    """An offered list as text. Clients repeat the same lists on every connection: each list is
    named once (``lists``: the context's cache)."""
    if not vals:
        return None
    key = (fn, vals)
    text = lists.get(key)
    if text is None:
        text = lists[key] = ",".join(map(fn, vals))
    return text


def _alpn(s: TlsSession) -> str | None:
    """The ALPN the ServerHello selected (TLS <= 1.2)."""
    sh = s.parser.server_hello
    return sh.alpn if sh is not None else None


# Certificate times pandas can hold as datetime64[ns] (1677-09-21 .. 2262-04-11); test
# certificates often say 9999-12-31, which becomes empty with the flag cert_time_out_of_range.
_NS_MIN_S, _NS_MAX_S = -9_223_372_036, 9_223_372_035


def _ns(dt: object) -> int | None:
    """A certificate time (aware datetime) as ns since the epoch; None when out of range."""
    if dt is None:
        return None
    s = int(dt.timestamp())  # type: ignore[attr-defined]
    return s * 1_000_000_000 if _NS_MIN_S <= s <= _NS_MAX_S else None
