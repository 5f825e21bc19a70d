"""HTTP/1.x on one connection: stream events into the parser, transactions out as table rows.

The parser (:mod:`pcapan.proto.http1`) is sans-IO; this module is its driver for the engine.
It maps stream directions to client/server, turns transactions into :class:`HttpRecord` rows,
parser anomalies into the connection's anomaly rows, and, when a CONNECT or an Upgrade turns the
connection into a tunnel, hands the tunnel's bytes to content detection again (TLS inside a
CONNECT tunnel is still TLS, and so is plain HTTP: its rows continue the connection's
``trans_depth``, as Zeek's, and are flagged ``in_tunnel``). After a 101 to ``Upgrade: h2c`` the
bytes are HTTP/2 (RFC 7540 3.2), handed to the h2 opener without detection (the server's first
bytes are a SETTINGS frame).
"""

from __future__ import annotations

from collections.abc import Callable

from pcapan.analysis.dispatch import Dispatch, InnerTransport, Openers, Transport
from pcapan.flow.conn import Connection, ntop
from pcapan.flow.reassembly import StreamSink
from pcapan.model import HttpRecord, make_http_record
from pcapan.proto.detect import HTTP, HTTP2
from pcapan.proto.http1 import (
    Event,
    HttpAnomaly,
    HttpConnection,
    HttpTunnel,
    TunnelData,
    TunnelGap,
    TxState,
)
from pcapan.proto.text import wire_text_latin1

# Transaction flags that are also anomaly rows: framing disagreements are how request smuggling
# works (RFC 9112 6.3, 11.2), so they must be visible without reading every row's flags.
_ANOMALY_FLAGS = frozenset(
    {
        "te_and_cl",
        "cl_mismatch",
        "cl_invalid",
        "te_not_chunked",
        "te_chunked_twice",
        "multiple_host",
    }
)

# on_body(uid, trans_depth, chunk): response body bytes, de-chunked, as they are parsed
BodyHook = Callable[[str, int, bytes], None]


# Request headers that carry credentials (issue 18: in the clear on plain HTTP): header (lower
# case) -> flag, for Authorization by its scheme.
_AUTH_SCHEMES = {"basic": "auth_basic", "digest": "auth_digest"}
_AUTH_HEADERS = frozenset({"authorization", "proxy-authorization"})


def _flags(tx: TxState, in_tunnel: bool) -> str | None:
    """The row's flags: the parser's, ``in_tunnel`` first inside a tunnel, and credentials the
    request carried (auth_basic / auth_digest: an Authorization or Proxy-Authorization of that
    scheme; cookie: a Cookie header) for the findings' cleartext_credentials."""
    extra: list[str] = []
    idx = tx.req_idx
    if "authorization" in idx or "proxy-authorization" in idx or "cookie" in idx:
        # (in header order, as the flags are listed)
        for name, value in tx.req_headers:
            n = name.lower()
            if n in _AUTH_HEADERS:
                f = _AUTH_SCHEMES.get(value.strip().split(" ", 1)[0].lower())
                if f is not None and f not in extra:
                    extra.append(f)
            elif n == "cookie" and "cookie" not in extra:
                extra.append("cookie")
    flags = tx.flags
    if in_tunnel or extra:
        flags = [*(("in_tunnel",) if in_tunnel else ()), *flags, *extra]
    return ",".join(flags) if flags else None


class HttpContext:
    """What every HTTP session of one analysis shares: where rows go, and the body hook."""

    __slots__ = ("records", "on_body", "tunnel_openers", "source", "shared")

    def __init__(self, on_body: BodyHook | None = None) -> None:
        self.records: list[HttpRecord] = []
        # One copy of each repeated text value (hosts, user agents, content types ...): rows are
        # kept until the end, and per-row copies would make memory grow with the capture.
        self.shared: dict[str, str | None] = {}
        self.on_body = on_body
        self.source = ""
        # Protocols parsed inside a CONNECT/Upgrade tunnel (TLS and HTTP/2 register here).
        self.tunnel_openers: Openers = {HTTP: self.open_in_tunnel}

    def open(self, transport: Transport, client_is_orig: bool) -> tuple[StreamSink, StreamSink]:
        """Dispatch opener: an HTTP session on the transport's connection."""
        conn = transport.conn
        k = conn.key
        ids = (ntop(k.orig_h), k.orig_p, ntop(k.resp_h), k.resp_p)
        return HttpSession(self, conn, transport, client_is_orig, ids, self.source).sinks()

    def open_in_tunnel(
        self, transport: Transport, client_is_orig: bool
    ) -> tuple[StreamSink, StreamSink]:
        """Dispatch opener for plain HTTP inside a CONNECT/Upgrade tunnel (``transport`` is the
        tunnel of the outer session): numbering continues after the outer transactions."""
        conn = transport.conn
        k = conn.key
        ids = (ntop(k.orig_h), k.orig_p, ntop(k.resp_h), k.resp_p)
        outer = transport.session if isinstance(transport, _Tunnel) else None
        depth = outer.parser.depth if outer is not None else 0
        return HttpSession(
            self, conn, transport, client_is_orig, ids, self.source, depth, True
        ).sinks()

    def open_in_tls(
        self, transport: Transport, client_is_orig: bool
    ) -> tuple[StreamSink, StreamSink]:
        """Dispatch opener for HTTP decrypted from TLS with a key log (issue 17): rows as on a
        cleartext connection, with ``tls`` true."""
        conn = transport.conn
        k = conn.key
        ids = (ntop(k.orig_h), k.orig_p, ntop(k.resp_h), k.resp_p)
        s = HttpSession(self, conn, transport, client_is_orig, ids, self.source)
        s.tls = True
        return s.sinks()


class _Direction(StreamSink):
    """A stream sink for one TCP direction of an HTTP connection (body bytes are opaque)."""

    __slots__ = ("session", "is_client")

    def __init__(self, session: HttpSession, is_client: bool) -> None:
        self.session = session
        self.is_client = is_client

    def data(self, chunk: bytes, ts_ns: int) -> None:
        self.session.data(self.is_client, chunk, ts_ns)

    def opaque(self) -> int:
        return self.session.parser.opaque_bytes(self.is_client)

    def opaque_views(self, views: list[memoryview], tss: list[int]) -> None:
        self.session.opaque_views(self.is_client, views, tss[-1])

    def gap(self, nbytes: int, ts_ns: int) -> None:
        s = self.session
        s.handle(s.parser.gap(self.is_client, nbytes, ts_ns))

    def end(self, ts_ns: int) -> None:
        s = self.session
        s.handle(s.parser.end(self.is_client, ts_ns))
        s.tunnel_end(self.is_client, ts_ns)


class _Tunnel(InnerTransport):
    """The inside of a CONNECT/Upgrade tunnel, as a transport for a nested dispatch."""

    __slots__ = ()
    session: HttpSession

    def set_sink(self, is_orig: bool, sink: StreamSink | None) -> None:
        self.sinks[is_orig] = sink
        if self.sinks[0] is None and self.sinks[1] is None:
            self.session.tunnel_idle()

    def service(self, name: str) -> None:
        self.session.transport.service(name)


class HttpSession:
    """Drives one connection's :class:`HttpConnection`."""

    __slots__ = (
        "ctx",
        "conn",
        "transport",
        "client_is_orig",
        "parser",
        "tunnel",
        "ids",
        "source",
        "in_tunnel",
        "tls",
    )

    def __init__(
        self,
        ctx: HttpContext,
        conn: Connection,
        transport: Transport,
        client_is_orig: bool,
        ids: tuple[str, int, str, int],
        source: str,
        depth: int = 0,
        in_tunnel: bool = False,
    ) -> None:
        self.ctx = ctx
        self.conn = conn
        self.transport = transport
        self.client_is_orig = client_is_orig
        self.ids = ids
        self.source = source
        hook = ctx.on_body
        uid = conn.uid
        self.parser = HttpConnection(
            (lambda depth, chunk: hook(uid, depth, chunk)) if hook else None, depth, True
        )  # (on_body, first_depth, raw)
        self.tunnel: _Tunnel | None = None
        self.in_tunnel = in_tunnel
        self.tls = False  # read from decrypted TLS

    def sinks(self) -> tuple[StreamSink, StreamSink]:
        """(orig, resp) sinks for the TCP streams."""
        return (_Direction(self, self.client_is_orig), _Direction(self, not self.client_is_orig))

    def data(self, is_client: bool, chunk: bytes, ts_ns: int) -> None:
        """One direction's next bytes (the sinks' data, typed in the compiled build)."""
        events = self.parser.data(is_client, chunk, ts_ns)
        if events:
            self.handle(events)

    def opaque_views(self, is_client: bool, views: list[memoryview], ts_ns: int) -> None:
        """Body bytes the parser declared opaque (see StreamSink.opaque_views)."""
        events = self.parser.opaque_data(is_client, views, ts_ns)
        if events:
            self.handle(events)

    def handle(self, events: list[Event]) -> None:
        for ev in events:
            if type(ev) is TxState:
                self.ctx.records.append(self._record(ev))
                for f in ev.flags:
                    if f in _ANOMALY_FLAGS:
                        t = ev.ts_req_start or ev.ts_resp_start or 0
                        self.conn.note(
                            0,
                            t,
                            "http_" + f,
                            f"HTTP transaction {ev.depth}: {f.replace('_', ' ')}",
                        )
            elif isinstance(ev, TunnelData):
                self._tunnel_bytes(ev.is_orig, ev.chunk, 0, ev.ts_ns)
            elif isinstance(ev, TunnelGap):
                self._tunnel_bytes(ev.is_orig, b"", ev.nbytes, ev.ts_ns)
            elif isinstance(ev, HttpAnomaly):
                # Parsers see bytes, not packets: located by time (frame 0), like Zeek's weirds.
                self.conn.note(0, ev.ts_ns, "http_" + ev.kind, ev.detail)
            elif isinstance(ev, HttpTunnel):
                proto = ev.protocol.split(",")[0].strip().lower()
                h2 = self.ctx.tunnel_openers.get(HTTP2)
                if ev.kind == "upgrade" and proto == "h2c" and h2 is not None:
                    # RFC 7540 3.2: after the 101 both sides speak h2 (the client starts with
                    # the preface, the server with SETTINGS); no detection needed.
                    tun = self.tunnel = _Tunnel(self)
                    self.transport.service(HTTP2)
                    sinks = h2(tun, self.client_is_orig)
                    assert sinks is not None  # H2Context.open never declines (Openers allow it)
                    orig, resp = sinks
                    tun.sinks = [resp, orig]
                elif ev.kind == "upgrade" and not proto.startswith("tls"):
                    # WebSocket frames and HTTP/2 are not parsed (WebSocket payload is masked,
                    # so first-bytes detection would only guess); the protocol is named.
                    if proto.startswith("websocket"):
                        self.transport.service("websocket")
                    self.tunnel_idle()
                else:
                    # CONNECT, or an RFC 2817 upgrade to TLS: what follows is detected anew.
                    self.tunnel = _Tunnel(self)
                    Dispatch(self.tunnel, self.ctx.tunnel_openers)

    def _tunnel_bytes(self, is_client: bool, chunk: bytes, gap: int, ts_ns: int) -> None:
        tun = self.tunnel
        if tun is None:
            return
        d = is_client == self.client_is_orig  # the tunnel's "orig" is the TCP originator
        sink = tun.sinks[d]
        tun.pos[d] += len(chunk) + gap
        if sink is None:
            return
        if gap:
            sink.gap(gap, ts_ns)
        else:
            sink.data(chunk, ts_ns)

    def tunnel_end(self, is_client: bool, ts_ns: int) -> None:
        """The connection's direction ended: so does the tunnel's."""
        tun = self.tunnel
        if tun is None:
            return
        sink = tun.sinks[is_client == self.client_is_orig]
        if sink is not None:
            sink.end(ts_ns)

    def tunnel_idle(self) -> None:
        """Nothing parses the tunnel: stop copying the connection's bytes (HTTP is over)."""
        self.transport.set_sink(True, None)
        self.transport.set_sink(False, None)

    def _record(self, tx: TxState) -> HttpRecord:
        """The table row of a finished transaction, read from the parser's own state."""
        orig_h, orig_p, resp_h, resp_p = self.ids
        t_rq0, t_rq1, t_rs0, t_rs1 = (
            tx.ts_req_start,
            tx.ts_req_end,
            tx.ts_resp_start,
            tx.ts_resp_end,
        )
        ts = t_rq0 if t_rq0 is not None else (t_rs0 if t_rs0 is not None else self.conn.start_ns)
        # Wire bytes (held as latin-1 by the parser) -> table text: the one rule for every table
        # (_text); repeated values (hosts, user agents, versions ...) are shared (_shared).
        shared = self.ctx.shared
        rq, rs = tx.req_idx, tx.resp_idx
        rq_conn, rs_conn = tx.connection_headers()
        v, rv = tx.req_version, tx.resp_version
        has_request = t_rq0 is not None or tx.method is not None
        # (an HTTP/0.9 response has no status line: only its version says it was seen)
        has_response = tx.status is not None or rv is not None
        # positional, in field order (cheaper than 47 keywords; the table tests check every value)
        return make_http_record(
            ts,  # ts_ns
            self.conn.uid,  # uid
            orig_h,  # orig_h
            orig_p,  # orig_p
            resp_h,  # resp_h
            resp_p,  # resp_p
            tx.depth,  # trans_depth
            _shared(shared, tx.method),  # method
            _shared(shared, tx.host),  # host
            _text(tx.uri),  # uri
            _shared(shared, tx.target_form),  # target_form
            _shared(shared, f"{v[0]}.{v[1]}") if v else None,  # version
            _shared(shared, f"{rv[0]}.{rv[1]}") if rv else None,  # response_version
            _shared(shared, _first(rq, "user-agent")),  # user_agent
            _shared(shared, _first(rq, "referer")),  # referrer
            tx.req_body_len if has_request else None,  # request_body_len
            tx.resp_body_len if has_response else None,  # response_body_len
            tx.status,  # status_code
            _shared(shared, tx.reason),  # status_msg
            ",".join(map(str, tx.info)) if tx.info else None,  # info_codes
            _shared(shared, _first(rs, "content-type")),  # content_type
            tx.content_length,  # content_length
            _shared(shared, _joined(rs, "transfer-encoding")),  # transfer_encoding
            _shared(shared, _joined(rs, "content-encoding")),  # content_encoding
            tx.chunk_count,  # chunk_count
            _text(",".join(tx.trailers)) if tx.trailers else None,  # trailer_names
            _joined(rs, "trailer"),  # trailer_announced
            _text(_first(rq, "expect")),  # expect
            _joined(rq, "upgrade"),  # upgrade_requested
            _text(tx.upgrade),  # upgrade
            _text(tx.tunnel),  # tunnel
            _shared(shared, rq_conn),  # request_connection_header
            _shared(shared, rs_conn),  # response_connection_header
            tx.keep_alive(rq_conn, rs_conn),  # keep_alive
            tx.pipelined,  # pipelined
            tx.pipeline_depth if has_request else None,  # pipeline_depth
            t_rq0,  # ts_request_start
            t_rq1,  # ts_request_end
            t_rs0,  # ts_response_start
            t_rs1,  # ts_response_end
            (t_rs0 - t_rq1) / 1e9 if t_rs0 is not None and t_rq1 is not None else None,  # ttfb_s
            (t_rs1 - t_rq0) / 1e9
            if t_rs1 is not None and t_rq0 is not None
            else None,  # response_time_s
            tx.body_sha256(),  # resp_body_sha256
            tx.partial,  # partial
            _flags(tx, self.in_tunnel),  # flags
            self.source,  # source
            self.tls,  # tls
        )


def _text(s: str | None) -> str | None:
    """:func:`wire_text_latin1` (ASCII, the common case, is returned at once)."""
    if s is None or s.isascii():
        return s
    return wire_text_latin1(s)


def _shared(shared: dict[str, str | None], s: str | None) -> str | None:
    """``_text(s)``, one copy per distinct value: rows are kept until the end, and per-row copies
    of hosts, user agents, content types ... would make memory grow with the capture."""
    if s is None:
        return None
    out = shared.get(s)
    if out is None:
        out = shared[s] = _text(s)
    return out


def _first(idx: dict[str, list[str]], name: str) -> str | None:
    vals = idx.get(name)
    return vals[0] if vals else None


def _joined(idx: dict[str, list[str]], name: str) -> str | None:
    vals = idx.get(name)
    return ", ".join(vals) if vals else None
