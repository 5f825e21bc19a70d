"""One schema per table: column, dtype, unit, doc. The single source of truth for the tables,
the CSV/Parquet exports and ``pcapan schema``."""

from __future__ import annotations

from dataclasses import dataclass

SCHEMA_VERSION = 1


@dataclass(frozen=True, slots=True)
class Column:
    name: str
    dtype: str  # pandas dtype name
    unit: str
    doc: str


TS = "datetime64[ns, UTC]"
STR = "string"
INT = "Int64"
FLOAT = "float64"
BOOL = "boolean"

CONNECTIONS: tuple[Column, ...] = (
    Column("ts", TS, "", "Time of the connection's first packet (UTC)."),
    Column(
        "uid", STR, "", "Deterministic connection id (same capture, same uid); joins all tables."
    ),
    Column(
        "community_id",
        STR,
        "",
        "Community ID v1 flow hash (seed 0), joins with Zeek/Suricata/Wireshark.",
    ),
    Column(
        "orig_h",
        STR,
        "",
        "Originator address (the SYN sender; see 'partial' for guessed orientation).",
    ),
    Column("orig_p", INT, "", "Originator port."),
    Column("resp_h", STR, "", "Responder address."),
    Column("resp_p", INT, "", "Responder port."),
    Column("proto", STR, "", "Transport protocol (tcp)."),
    Column(
        "service",
        STR,
        "",
        "Protocol detected from the stream's first bytes (http, tls, http2 for cleartext HTTP/2; comma-separated when a CONNECT/Upgrade tunnel carries another: http,tls, http,http2) or empty; never from the port.",
    ),
    Column("duration_s", FLOAT, "s", "Last packet time minus first packet time."),
    Column(
        "orig_bytes",
        INT,
        "bytes",
        "Payload bytes the originator sent, from sequence numbers (Zeek: includes bytes acknowledged but not captured).",
    ),
    Column("resp_bytes", INT, "bytes", "Payload bytes the responder sent, from sequence numbers."),
    Column(
        "missed_bytes", INT, "bytes", "Bytes in content gaps (never captured), both directions."
    ),
    Column("orig_pkts", INT, "packets", "Packets sent by the originator."),
    Column("resp_pkts", INT, "packets", "Packets sent by the responder."),
    Column("orig_ip_bytes", INT, "bytes", "Sum of IP total lengths of the originator's packets."),
    Column("resp_ip_bytes", INT, "bytes", "Sum of IP total lengths of the responder's packets."),
    Column(
        "conn_state",
        STR,
        "",
        "Zeek connection state: S0 S1 SF REJ S2 S3 RSTO RSTR RSTOS0 RSTRH SH SHR OTH.",
    ),
    Column("history", STR, "", "Zeek history letters (upper case: originator; ^ = roles flipped)."),
    Column(
        "orig_retransmits",
        INT,
        "segments",
        "Originator data segments that carried only (or partly) bytes already seen.",
    ),
    Column(
        "resp_retransmits",
        INT,
        "segments",
        "Responder data segments that carried only (or partly) bytes already seen.",
    ),
    Column(
        "orig_out_of_order",
        INT,
        "segments",
        "Originator segments with new bytes that arrived after higher-sequence data (hole fillers).",
    ),
    Column(
        "resp_out_of_order",
        INT,
        "segments",
        "Responder segments with new bytes that arrived after higher-sequence data.",
    ),
    Column(
        "orig_zero_window_probes",
        INT,
        "segments",
        "One-byte segments the originator sent while the responder advertised a zero window.",
    ),
    Column(
        "resp_zero_window_probes",
        INT,
        "segments",
        "One-byte segments the responder sent while the originator advertised a zero window.",
    ),
    Column(
        "orig_dup_acks",
        INT,
        "segments",
        "Duplicate ACKs the originator sent (Wireshark's tcp.analysis.duplicate_ack: no data, same ack and window as its previous ACK, responder data outstanding).",
    ),
    Column("resp_dup_acks", INT, "segments", "Duplicate ACKs the responder sent."),
    Column(
        "orig_zero_windows",
        INT,
        "segments",
        "Segments in which the originator advertised a zero window (SYN/FIN/RST aside).",
    ),
    Column(
        "resp_zero_windows",
        INT,
        "segments",
        "Segments in which the responder advertised a zero window.",
    ),
    Column(
        "orig_keepalives",
        INT,
        "segments",
        "TCP keep-alive probes sent by the originator (not counted as data).",
    ),
    Column("resp_keepalives", INT, "segments", "TCP keep-alive probes sent by the responder."),
    Column(
        "overlap_conflicts",
        INT,
        "segments",
        "Retransmitted bytes that differ from the first copy (first copy wins); an evasion indicator.",
    ),
    Column(
        "close_reason",
        STR,
        "",
        "Why the record ended: fin, rst, idle_timeout, reused (new SYN on the 5-tuple), end_of_capture, evicted (a half-open flow finalised early: too many open).",
    ),
    Column("ts_close", TS, "", "Time of the first FIN or RST from either side."),
    Column("closed_by", STR, "", "Who sent that first FIN or RST: orig or resp."),
    Column("close_flag", STR, "", "What it was: fin or rst."),
    Column("orig_mss", INT, "bytes", "MSS option in the originator's SYN."),
    Column("resp_mss", INT, "bytes", "MSS option in the responder's SYN-ACK."),
    Column("orig_wscale", INT, "", "Window-scale shift in the originator's SYN (empty if absent)."),
    Column(
        "resp_wscale", INT, "", "Window-scale shift in the responder's SYN-ACK (empty if absent)."
    ),
    Column("orig_sack_ok", BOOL, "", "Originator's SYN offered SACK."),
    Column("resp_sack_ok", BOOL, "", "Responder's SYN-ACK offered SACK."),
    Column("orig_ts_ok", BOOL, "", "Originator's SYN carried the timestamps option."),
    Column("resp_ts_ok", BOOL, "", "Responder's SYN-ACK carried the timestamps option."),
    Column(
        "partial",
        BOOL,
        "",
        "Picked up mid-stream (no SYN seen first); orientation is the stated port heuristic.",
    ),
    Column(
        "flipped",
        BOOL,
        "",
        "Orientation differs from the first packet's direction (e.g. SYN-ACK seen first).",
    ),
    Column(
        "evicted",
        BOOL,
        "",
        "A half-open flow (only SYNs seen) finalised early because more than max_half_open were open at once (close_reason evicted; conn_state stays S0); see the half_open_evicted anomaly.",
    ),
    Column("ip_version", INT, "", "IP version of the connection: 4 or 6."),
    Column(
        "tunnel_parents",
        STR,
        "",
        "Tunnels the connection's packets came in (Zeek's tunnel_parents), comma-separated, sorted; empty when none. Each is '<kind> <outer src>><outer dst>[ vni=|key=|session=N]' as the packets went, so a two-way tunnel gives two (kind: vxlan, geneve, gre, erspan1/2/3, ipip, 6in4, 4in6, ip6ip6); nested tunnels outermost first, joined by ' / '.",
    ),
    Column("source", STR, "", "Capture file the connection was read from."),
)

# Round-trip columns of the connections table, computed from the rtt table when the table is
# built (a connection's record is written when it ends; its samples are kept column-wise).
_RTT_STATS = (
    ("min", "smallest"),
    ("median", "median"),
    ("mean", "mean"),
    ("p95", "95th percentile"),
    ("max", "largest"),
    ("stdev", "standard deviation (population)"),
)
CONN_RTT: tuple[Column, ...] = (
    Column(
        "rtt_syn_s",
        FLOAT,
        "s",
        "SYN to the SYN-ACK acknowledging it: capture point to the responder and back.",
    ),
    Column(
        "rtt_synack_s",
        FLOAT,
        "s",
        "SYN-ACK to the ACK acknowledging it: capture point to the originator and back.",
    ),
    Column(
        "initial_rtt_s",
        FLOAT,
        "s",
        "Their sum, the whole round trip (Wireshark's tcp.analysis.initial_rtt).",
    ),
    *(
        Column(
            f"rtt_{d}_{k}_s",
            FLOAT,
            "s",
            f"{what.capitalize()} of the ack RTT samples of the {side}'s data (see the rtt table).",
        )
        for d, side in (("orig", "originator"), ("resp", "responder"))
        for k, what in _RTT_STATS
    ),
    Column(
        "rtt_orig_count",
        INT,
        "samples",
        "Ack RTT samples of the originator's data (timed to the responder and back).",
    ),
    Column(
        "rtt_resp_count",
        INT,
        "samples",
        "Ack RTT samples of the responder's data (timed to the originator and back).",
    ),
)
# Web-performance columns of the connections table (pcapan.analysis.webperf), from the tables.
CONN_WEB: tuple[Column, ...] = (
    Column(
        "requests",
        INT,
        "requests",
        "HTTP requests seen on the connection (0 for HTTPS: encrypted).",
    ),
    Column(
        "budget_rtts",
        INT,
        "RTTs",
        "Round trips from the SYN to the first response byte, counted from the flights on the wire: 1 for the TCP handshake, the TLS handshake's handshake_rtts, 1 for the first request.",
    ),
    Column(
        "budget_expected_rtts",
        INT,
        "RTTs",
        "What the version and handshake kind lead one to expect: plain HTTP 2, TLS 1.2 full 4 (3 with False Start), resumed 3, TLS 1.3 full or PSK 3, with a HelloRetryRequest 4, with accepted 0-RTT 2.",
    ),
    Column(
        "budget_tcp_s", FLOAT, "s", "TCP handshake: SYN to the ACK of the SYN-ACK (initial_rtt_s)."
    ),
    Column(
        "budget_tls_s",
        FLOAT,
        "s",
        "TLS handshake: ClientHello to its completion (the tls table's handshake_s).",
    ),
    Column(
        "budget_ttfb_s",
        FLOAT,
        "s",
        "First request's end to the first response byte (HTTP: the http table's ttfb_s; HTTPS: ts_first_request to ts_first_response of the tls table).",
    ),
    Column(
        "budget_think_s",
        FLOAT,
        "s",
        "Server think time: budget_ttfb_s minus one round trip (initial_rtt_s).",
    ),
    Column("budget_total_s", FLOAT, "s", "SYN to the first response byte."),
    Column(
        "budget_label",
        STR,
        "",
        "e.g. 'TCP+TLS1.2 full: 4 RTT', '(expected N)' appended when the count differs from the expected one.",
    ),
    Column(
        "idle_gap_mean_s",
        FLOAT,
        "s",
        "Mean idle time between a response's end and the next request on the connection.",
    ),
    Column("idle_gap_max_s", FLOAT, "s", "Longest such idle time."),
    Column(
        "close_after_last_response_s",
        FLOAT,
        "s",
        "First FIN/RST minus the last response's end: with close_cause fin_server, an estimate of the server's keep-alive timeout.",
    ),
    Column(
        "close_cause",
        STR,
        "",
        "Why the connection ended: connection_close_client / connection_close_server (a Connection: close header), fin_client, fin_server, rst_client, rst_server, idle_timeout, end_of_capture, evicted.",
    ),
    Column(
        "pipelined_requests", INT, "requests", "Requests sent before the previous response ended."
    ),
    Column(
        "max_pipeline_depth",
        INT,
        "requests",
        "Most requests outstanding at once (the http table's pipeline_depth).",
    ),
    Column(
        "hol_wait_total_s",
        FLOAT,
        "s",
        "Head-of-line blocking: summed hol_wait_s of the connection's pipelined responses.",
    ),
    Column("hol_wait_max_s", FLOAT, "s", "Longest hol_wait_s."),
    Column(
        "pipelining_in_order",
        BOOL,
        "",
        "Every pipelined response started at or after the previous response's end (resp_gap_s >= 0; HTTP/1.1 requires it). Empty without pipelined requests.",
    ),
    Column(
        "pipelining_serialised",
        BOOL,
        "",
        "The server looks to have started each pipelined request only after sending the previous response: the median resp_gap_s of the pipelined requests it already held is at least 1 ms and at least half the median think time (ttfb_s minus rtt_syn_s) of the connection's non-pipelined requests. False: no such wait visible (parallel, or work too quick to see). Empty without pipelined requests.",
    ),
)
CONNECTIONS = CONNECTIONS + CONN_RTT + CONN_WEB
CONN_RECORD_COLUMNS = CONNECTIONS[: -len(CONN_RTT) - len(CONN_WEB)]

RTT: tuple[Column, ...] = (
    Column(
        "ts",
        TS,
        "",
        "Time of the packet that completed the sample (the acknowledgement or the echo).",
    ),
    Column("uid", STR, "", "Connection uid."),
    Column(
        "direction",
        STR,
        "",
        "Whose segment was timed: orig (the originator's data, acknowledged by the responder: capture point to responder and back) or resp.",
    ),
    Column(
        "kind",
        STR,
        "",
        "handshake (SYN or SYN-ACK to the ACK of it), ack (data or FIN segment to the first ACK of exactly its end; Karn's rule: never a retransmitted segment) or ts (TSval to the first TSecr echoing it).",
    ),
    Column("rtt_s", FLOAT, "s", "The round-trip time."),
)

ANOMALIES: tuple[Column, ...] = (
    Column("ts", TS, "", "Time of the packet (or of the file position) concerned."),
    Column("uid", STR, "", "Connection uid, empty when not tied to a connection."),
    Column(
        "frame",
        INT,
        "",
        "1-based frame number in the source file (0 when not tied to one frame, e.g. protocol anomalies found in reassembled bytes: see ts).",
    ),
    Column(
        "name",
        STR,
        "",
        "Machine name of the anomaly (Zeek weird.log style), e.g. bad_tcp_header, truncated_file.",
    ),
    Column("addl", STR, "", "Human-readable detail."),
    Column("source", STR, "", "Capture file."),
)

HTTP: tuple[Column, ...] = (
    Column(
        "ts",
        TS,
        "",
        "Time of the request's first byte (the response's, for a response with no request seen).",
    ),
    Column("uid", STR, "", "Connection uid (joins the connections table)."),
    Column("orig_h", STR, "", "Connection originator address (as in the connections table)."),
    Column("orig_p", INT, "", "Connection originator port."),
    Column("resp_h", STR, "", "Connection responder address."),
    Column("resp_p", INT, "", "Connection responder port."),
    Column(
        "trans_depth",
        INT,
        "",
        "1-based position of the request/response pair on the connection (Zeek's trans_depth).",
    ),
    Column(
        "method",
        STR,
        "",
        "Request method as sent (any token, extension methods included); empty for a response with no request.",
    ),
    Column(
        "host",
        STR,
        "",
        "Host header of the request (the authority for a CONNECT or an absolute-form target without Host).",
    ),
    Column(
        "uri",
        STR,
        "",
        "Request target as sent: origin-form path, absolute-form URL, authority-form (CONNECT) or '*'.",
    ),
    Column(
        "target_form",
        STR,
        "",
        "RFC 9112 request-target form: origin, absolute, authority or asterisk.",
    ),
    Column(
        "version",
        STR,
        "",
        "HTTP version of the request line (1.0, 1.1; 0.9 for a simple-request without one; empty when malformed, flag bad_version).",
    ),
    Column(
        "response_version",
        STR,
        "",
        "HTTP version of the final response's status line (0.9 for a reply to a simple-request that has no status line).",
    ),
    Column("user_agent", STR, "", "User-Agent header of the request."),
    Column("referrer", STR, "", "Referer header of the request."),
    Column(
        "request_body_len",
        INT,
        "bytes",
        "Request body length after removing chunk framing (0 when none).",
    ),
    Column(
        "response_body_len",
        INT,
        "bytes",
        "Response body length after removing chunk framing (0 for HEAD, 1xx, 204, 304).",
    ),
    Column(
        "status_code",
        INT,
        "",
        "Status code of the final (non-1xx) response, or of the 101 that switched protocols; empty for an HTTP/0.9 reply.",
    ),
    Column("status_msg", STR, "", "Reason phrase of that response (may be empty)."),
    Column(
        "info_codes",
        STR,
        "",
        "Interim 1xx responses before the final one, comma-separated in order (e.g. 100).",
    ),
    Column("content_type", STR, "", "Content-Type header of the response."),
    Column(
        "content_length",
        INT,
        "bytes",
        "Content-Length the response declared (a HEAD response declares one without a body).",
    ),
    Column(
        "transfer_encoding", STR, "", "Transfer-Encoding header of the response (e.g. chunked)."
    ),
    Column("content_encoding", STR, "", "Content-Encoding header of the response (gzip, br, ...)."),
    Column(
        "chunk_count",
        INT,
        "chunks",
        "Data chunks in a chunked response (the last-chunk not counted); empty when not chunked.",
    ),
    Column(
        "trailer_names",
        STR,
        "",
        "Trailer fields received after the last chunk, by name, comma-separated.",
    ),
    Column(
        "trailer_announced", STR, "", "The response's Trailer header (fields announced in advance)."
    ),
    Column("expect", STR, "", "Expect header of the request (100-continue)."),
    Column(
        "upgrade_requested",
        STR,
        "",
        "Upgrade header of the request (websocket, h2c, TLS/1.2, ...).",
    ),
    Column(
        "upgrade",
        STR,
        "",
        "Protocol switched to by a 101 Switching Protocols; HTTP parsing ends there.",
    ),
    Column("tunnel", STR, "", "CONNECT target when the proxy answered 2xx and a tunnel opened."),
    Column(
        "request_connection_header",
        STR,
        "",
        "Connection header of the request (keep-alive, close, Upgrade ...).",
    ),
    Column("response_connection_header", STR, "", "Connection header of the response."),
    Column(
        "keep_alive",
        BOOL,
        "",
        "The exchange leaves the connection open for another request (RFC 9112 9.3: version and Connection of both messages, no close-delimited body, no tunnel); empty when unanswered.",
    ),
    Column(
        "pipelined",
        BOOL,
        "",
        "The request's first byte arrived before the previous response's last byte.",
    ),
    Column(
        "pipeline_depth",
        INT,
        "requests",
        "Requests outstanding (sent, final response not finished) when this one started, itself included.",
    ),
    Column("ts_request_start", TS, "", "First byte of the request."),
    Column("ts_request_end", TS, "", "Last byte of the request (end of its body)."),
    Column("ts_response_start", TS, "", "First byte of the final response (after any 1xx)."),
    Column("ts_response_end", TS, "", "Last byte of the response."),
    Column(
        "ttfb_s",
        FLOAT,
        "s",
        "Time to first byte seen at the capture point: final response start minus request end.",
    ),
    Column("response_time_s", FLOAT, "s", "Request start to response end."),
    Column(
        "resp_body_sha256",
        STR,
        "",
        "SHA-256 of the decoded response body (chunk framing removed, content encoding kept); empty when there is no body.",
    ),
    Column(
        "partial",
        BOOL,
        "",
        "A gap, a parse error or the end of the capture cut the request or the response.",
    ),
    Column(
        "http_flags",
        STR,
        "",
        "Comma-separated notes on this exchange (bare_lf, obs_fold, te_and_cl, cl_mismatch, orphan_response, in_tunnel, ...; auth_basic, auth_digest, cookie: credentials the request carried); see the README.",
    ),
    Column("source", STR, "", "Capture file."),
    Column(
        "tls",
        BOOL,
        "",
        "The exchange was read from decrypted TLS (HTTPS analysed with a key log: --keylog, or a pcapng Decryption Secrets Block); false for cleartext HTTP.",
    ),
)
HTTP_WEB: tuple[Column, ...] = (
    Column(
        "rtts_to_first_byte",
        INT,
        "RTTs",
        "Round trips from the connection's SYN to this response's first byte for the first request (the connection's budget_rtts), 1 for a request on a connection already open.",
    ),
    Column(
        "idle_before_s",
        FLOAT,
        "s",
        "Idle time on the connection between the previous response's end and this request's start.",
    ),
    Column(
        "hol_wait_s",
        FLOAT,
        "s",
        "Head-of-line blocking of a pipelined request: max(0, previous response end - this request end).",
    ),
    Column(
        "resp_gap_s",
        FLOAT,
        "s",
        "Pipelined request: its response's start minus the previous response's end on the connection (0 back to back; about a think time when the server serialised). Empty when not pipelined.",
    ),
)
HTTP_RECORD_COLUMNS = HTTP
HTTP = HTTP + HTTP_WEB

SERVERS: tuple[Column, ...] = (
    Column("orig_h", STR, "", "Client address."),
    Column("resp_h", STR, "", "Server address."),
    Column("resp_p", INT, "", "Server port."),
    Column(
        "server_name", STR, "", "Host header of the connections' first requests, else the TLS SNI."
    ),
    Column("connections", INT, "connections", "Connections the client opened to the server."),
    Column("requests", INT, "requests", "HTTP requests on them."),
    Column(
        "requests_per_conn_mean", FLOAT, "requests", "Requests per connection that carried any."
    ),
    Column("requests_per_conn_max", INT, "requests", "Most requests on one connection."),
    Column(
        "reuse_ratio",
        FLOAT,
        "",
        "Share of requests sent on a connection already used: (requests - connections used) / requests.",
    ),
    Column(
        "max_open_connections",
        INT,
        "connections",
        "Most connections open at once (browser-style parallelism).",
    ),
    Column(
        "missed_reuse",
        INT,
        "connections",
        "New connections opened while another one to the server was open and available: idle for longer than max(REUSE_IDLE_RTTS (2) x its handshake RTT, REUSE_IDLE_FLOOR_S (0.1 s)) and still idle and open when the new one's first request went out, or an HTTP/2 one still open then (the rows of the missed_reuse table).",
    ),
    Column(
        "missed_reuse_loose",
        INT,
        "connections",
        "Low confidence: new connections opened while another one to the server was open with no request in flight at that instant, however briefly (counts the gaps between back-to-back requests of another process's connection, which it could not have used); includes missed_reuse.",
    ),
    Column(
        "tls_exchanges",
        INT,
        "exchanges",
        "Application-data exchanges on the pair's HTTPS connections (the tls table's app_exchanges): an estimate of the encrypted requests, not counted in requests.",
    ),
    Column("budget_rtts_median", FLOAT, "RTTs", "Median round trips to the first response byte."),
    Column("budget_total_median_s", FLOAT, "s", "Median SYN to first response byte."),
    Column("budget_ttfb_median_s", FLOAT, "s", "Median request to first response byte."),
    Column("initial_rtt_median_s", FLOAT, "s", "Median handshake RTT."),
)
CLIENTS: tuple[Column, ...] = (
    Column("orig_h", STR, "", "Client address."),
    Column("servers", INT, "servers", "Client-server pairs (address, port, name)."),
    Column("connections", INT, "connections", "Connections the client opened."),
    Column("requests", INT, "requests", "HTTP requests it sent."),
    Column("reuse_ratio", FLOAT, "", "Share of its requests sent on a connection already used."),
    Column("max_open_connections", INT, "connections", "Most of its connections open at once."),
    Column(
        "missed_reuse",
        INT,
        "connections",
        "Its new connections that an available open one could have carried (the servers table's missed_reuse, summed).",
    ),
    Column(
        "missed_reuse_loose",
        INT,
        "connections",
        "Low confidence: the servers table's missed_reuse_loose, summed (an open connection with no request in flight at the instant, however briefly).",
    ),
    Column(
        "tls_exchanges",
        INT,
        "exchanges",
        "Application-data exchanges on its HTTPS connections: an estimate of its encrypted requests, not counted in requests.",
    ),
)
MISSED_REUSE: tuple[Column, ...] = (
    Column("ts", TS, "", "When the new connection started."),
    Column("uid", STR, "", "The new connection."),
    Column(
        "idle_uid",
        STR,
        "",
        "An open connection to the same server it could have reused: idle for at least threshold_s when the new one opened and until its first request went out (or an open HTTP/2 one, busy or not: it multiplexes).",
    ),
    Column(
        "reason",
        STR,
        "",
        "Why idle_uid could have carried it: idle (its HTTP visible: a request answered, none in flight), idle_tls (HTTPS: an application-data exchange answered, none in flight), h2 (ALPN h2: HTTP/2 multiplexes).",
    ),
    Column("orig_h", STR, "", "Client address."),
    Column("resp_h", STR, "", "Server address."),
    Column("resp_p", INT, "", "Server port."),
    Column("server_name", STR, "", "Host/SNI of the pair."),
    Column(
        "idle_s",
        FLOAT,
        "s",
        "How long idle_uid had been idle (since its last response ended) when the new connection opened; empty for h2.",
    ),
    Column(
        "threshold_s",
        FLOAT,
        "s",
        "The idle time idle_uid needed to count: max(REUSE_IDLE_RTTS (2) x its initial_rtt_s, REUSE_IDLE_FLOOR_S (0.1 s)).",
    ),
)

TLS: tuple[Column, ...] = (
    Column("ts", TS, "", "Time of the ClientHello (of the first TLS byte when none was seen)."),
    Column("uid", STR, "", "Connection uid (joins the connections table)."),
    Column("orig_h", STR, "", "Connection originator address."),
    Column("orig_p", INT, "", "Connection originator port."),
    Column("resp_h", STR, "", "Connection responder address."),
    Column("resp_p", INT, "", "Connection responder port."),
    Column(
        "version",
        STR,
        "",
        "Negotiated version in Zeek's spelling (SSLv3, TLSv10, TLSv11, TLSv12, TLSv13, TLSv13-draftNN, TLSv13-expNN, TLSv13-fb-draftNN): from supported_versions in TLS 1.3, else the ServerHello's version.",
    ),
    Column(
        "client_legacy_version",
        STR,
        "",
        "ClientHello.legacy_version (TLSv12 for every TLS 1.3 client).",
    ),
    Column(
        "client_versions",
        STR,
        "",
        "Versions offered in supported_versions, in order, GREASE removed; empty when the extension is absent.",
    ),
    Column("cipher", STR, "", "Selected cipher suite, IANA name."),
    Column("cipher_code", INT, "", "Selected cipher suite code point."),
    Column(
        "cipher_strength_bits",
        INT,
        "bits",
        "Security of the selected suite's bulk cipher in bits (112 for 3DES, 40/56 for export/DES).",
    ),
    Column(
        "cipher_strength_class",
        INT,
        "bits",
        "Highest security level of 64/80/96/112/128/256 bits the suite reaches (0: below 64, broken).",
    ),
    Column(
        "cipher_forward_secrecy",
        BOOL,
        "",
        "The suite's key exchange is ephemeral ((EC)DHE; every TLS 1.3 suite).",
    ),
    Column("cipher_aead", BOOL, "", "The suite uses an AEAD cipher (GCM, CCM, ChaCha20-Poly1305)."),
    Column(
        "cipher_mozilla_level",
        STR,
        "",
        "Strictest Mozilla server-side TLS configuration listing the suite: modern, intermediate, old or none.",
    ),
    Column(
        "cipher_h2_blocklisted",
        BOOL,
        "",
        "On the HTTP/2 cipher block list (RFC 9113 / RFC 7540 Appendix A).",
    ),
    Column("cipher_insecure", BOOL, "", "NULL, EXPORT, anonymous, RC4, RC2, DES, 3DES or MD5."),
    Column(
        "client_ciphers",
        STR,
        "",
        "Cipher suites the client offered, IANA names in order, GREASE removed.",
    ),
    Column(
        "weak_ciphers_offered",
        INT,
        "suites",
        "Offered suites that are insecure or below 112-bit security (signalling values not counted).",
    ),
    Column("server_name", STR, "", "SNI host name from the ClientHello (the outer one under ECH)."),
    Column(
        "alpn_offered", STR, "", "ALPN protocol IDs the client offered, in order, comma-separated."
    ),
    Column(
        "next_protocol",
        STR,
        "",
        "ALPN protocol the server selected: from the ServerHello (TLS <= 1.2) or, in TLS 1.3, from the decrypted EncryptedExtensions (with a key log); empty in TLS 1.3 without keys (never guessed).",
    ),
    Column(
        "curve",
        STR,
        "",
        "Key exchange group: TLS 1.3 key_share of the ServerHello, or the named curve of an ECDHE ServerKeyExchange.",
    ),
    Column(
        "dh_prime_bits",
        INT,
        "bits",
        "Size of the DH prime in a DHE ServerKeyExchange (at least 2048 recommended).",
    ),
    Column(
        "supported_groups",
        STR,
        "",
        "Groups the client offered (supported_groups), names in order, GREASE removed.",
    ),
    Column("key_share_groups", STR, "", "Groups the client sent key shares for (TLS 1.3)."),
    Column(
        "signature_algorithms", STR, "", "Signature schemes the client offered, names in order."
    ),
    Column("client_extensions", STR, "", "ClientHello extensions, names in order, GREASE removed."),
    Column("server_extensions", STR, "", "ServerHello extensions, names in order."),
    Column("session_id_len", INT, "bytes", "Length of the session id the client offered."),
    Column("resumed", BOOL, "", "The server resumed a previous session (see resumption)."),
    Column(
        "resumption",
        STR,
        "",
        "How: session_id (id echoed, no certificate), ticket (RFC 5077 ticket accepted) or psk (TLS 1.3 pre_shared_key selected).",
    ),
    Column(
        "session_ticket_offered", BOOL, "", "The client sent a non-empty session ticket (RFC 5077)."
    ),
    Column(
        "psk_offered",
        BOOL,
        "",
        "The client offered TLS 1.3 pre-shared keys (pre_shared_key extension).",
    ),
    Column(
        "ticket_issued",
        BOOL,
        "",
        "The server sent a NewSessionTicket (TLS <= 1.2; in TLS 1.3 only with a key log: true at a decrypted ticket, false when the server's records were decrypted to the end without one, else empty).",
    ),
    Column(
        "early_data_offered",
        BOOL,
        "",
        "The client offered 0-RTT early data (early_data extension).",
    ),
    Column(
        "early_data_accepted",
        BOOL,
        "",
        "The server accepted the 0-RTT data: inferred from the client's EndOfEarlyData record (RFC 8446 4.5: sent only when early data was accepted; a 21-byte encrypted record before its Finished). Empty when no early data was offered.",
    ),
    Column(
        "hello_retry_request",
        BOOL,
        "",
        "The server answered with a HelloRetryRequest (a second ClientHello followed).",
    ),
    Column(
        "established",
        BOOL,
        "",
        "The handshake completed: both Finished (TLS <= 1.2), the client's Finished (TLS 1.3), or application data after the hellos.",
    ),
    Column(
        "alert",
        STR,
        "",
        "First alert seen, level:description (e.g. fatal:handshake_failure); 'encrypted' when it travelled encrypted.",
    ),
    Column("alert_from", STR, "", "Who sent that alert: client or server."),
    Column("ech_offered", BOOL, "", "The ClientHello carried encrypted_client_hello (ECH)."),
    Column("grease", BOOL, "", "The ClientHello used GREASE values (RFC 8701)."),
    Column("sslv2_hello", BOOL, "", "The ClientHello came in SSLv2 record format."),
    Column(
        "cert_requested",
        BOOL,
        "",
        "The server asked for a client certificate (CertificateRequest; visible in TLS <= 1.2, and in TLS 1.3 when decrypted with a key log).",
    ),
    Column(
        "client_cert",
        BOOL,
        "",
        "The client sent a certificate (mutual TLS; visible in TLS <= 1.2).",
    ),
    Column(
        "cert_chain_len",
        INT,
        "certs",
        "Certificates in the server's Certificate message (TLS <= 1.2; encrypted in 1.3).",
    ),
    Column("cert_subject_cn", STR, "", "Leaf certificate subject common name."),
    Column(
        "cert_san",
        STR,
        "",
        "Leaf certificate subjectAltName DNS names and addresses, comma-separated.",
    ),
    Column("cert_issuer", STR, "", "Leaf certificate issuer (RFC 4514 string)."),
    Column("cert_not_before", TS, "", "Leaf certificate validity start."),
    Column("cert_not_after", TS, "", "Leaf certificate validity end."),
    Column("cert_key_type", STR, "", "Leaf public key type: RSA, EC, DSA, Ed25519, Ed448."),
    Column("cert_key_bits", INT, "bits", "Leaf public key size."),
    Column("cert_sig_alg", STR, "", "Signature algorithm of the leaf certificate."),
    Column("cert_self_signed", BOOL, "", "Leaf certificate issuer equals its subject."),
    Column(
        "ja3",
        STR,
        "",
        "JA3 client fingerprint (MD5 of the JA3 string; salesforce/ja3) of the first ClientHello (before any HelloRetryRequest).",
    ),
    Column("ja3s", STR, "", "JA3S server fingerprint (MD5)."),
    Column(
        "ja4",
        STR,
        "",
        "JA4 client fingerprint of the first ClientHello (FoxIO JA4, BSD-3-Clause; JA4S and the rest of JA4+ are not computed: non-commercial licence).",
    ),
    Column(
        "ja4_r",
        STR,
        "",
        "JA4_r: the JA4 before hashing (cipher and extension lists sorted, as JA4 specifies).",
    ),
    Column("ts_client_hello", TS, "", "Time of the (first) ClientHello."),
    Column(
        "ts_server_hello",
        TS,
        "",
        "Time of the ServerHello (after a HelloRetryRequest, the second).",
    ),
    Column("ts_handshake_done", TS, "", "When the handshake completed (see established)."),
    Column(
        "handshake_rtts",
        INT,
        "RTTs",
        "Round trips the handshake cost the client before it could send application data, counted from the flights on the wire: 2 full TLS 1.2, 1 abbreviated or False Start, 1 TLS 1.3, 2 with a HelloRetryRequest, 0 with accepted early data.",
    ),
    Column("handshake_s", FLOAT, "s", "ts_handshake_done minus ts_client_hello."),
    Column(
        "ts_first_request",
        TS,
        "",
        "First application data from the client after the handshake (the flight that completed it, when the client completed it): the encrypted request.",
    ),
    Column(
        "ts_first_response",
        TS,
        "",
        "First data from the server after that: the encrypted response's first byte. In TLS 1.3 a session ticket the server sends after the handshake arrives first, so this is a lower bound there.",
    ),
    Column(
        "app_exchanges",
        INT,
        "exchanges",
        "Application-data exchanges after the handshake that the server answered: a client flight of application data and the server's that followed, until the client's next flight. An estimate of the encrypted requests (HTTP/1.1: one per request; HTTP/2 multiplexes, so flights, not requests); lone encrypted alerts and TLS 1.3 session tickets before the first request are not counted. Empty when the handshake did not complete.",
    ),
    Column(
        "decrypted",
        BOOL,
        "",
        "Records of this connection were decrypted with a key log (--keylog / keylog=, or pcapng Decryption Secrets Blocks): its HTTP is in the http table with tls true, its TLS 1.3 handshake (certificate, ALPN, tickets) in this row.",
    ),
    Column(
        "decrypt_error",
        STR,
        "",
        "Why decryption stopped or never started (empty: no key log, or nothing went wrong): no_key (the key log has no entry for the ClientHello random), missing_secret (an entry lacks a secret the connection needs), bad_key (an AEAD tag or MAC failed: wrong key; that direction stops), unsupported (suite, version or renegotiation not decrypted), gap (bytes missing: records after them cannot be decrypted, never guessed), overflow (more held than MAX_TLS_DECRYPT_PENDING_BYTES). The first reason only; anomaly rows say which direction.",
    ),
    Column(
        "decrypted_records",
        INT,
        "records",
        "Records decrypted, both directions (empty without a key log).",
    ),
    Column(
        "ticket_lifetime_s",
        INT,
        "s",
        "Lifetime of the last session ticket the server issued (TLS <= 1.2 lifetime hint; TLS 1.3 ticket_lifetime, decrypted).",
    ),
    Column(
        "ticket_max_early_data",
        INT,
        "bytes",
        "TLS 1.3: max_early_data_size of the last decrypted ticket (the 0-RTT data it allows); empty when the ticket allows none.",
    ),
    Column(
        "key_updates",
        INT,
        "messages",
        "TLS 1.3 KeyUpdate messages decrypted, both directions (empty without a key log).",
    ),
    Column(
        "h2_frames",
        INT,
        "frames",
        "Decrypted HTTP/2 (ALPN h2): frames walked, both directions (headers are not decoded).",
    ),
    Column("h2_streams", INT, "streams", "Decrypted HTTP/2: streams opened."),
    Column("orig_records", INT, "records", "TLS records the originator sent (every content type)."),
    Column("resp_records", INT, "records", "TLS records the responder sent."),
    Column(
        "orig_app_bytes",
        INT,
        "bytes",
        "Bytes of application_data record bodies from the originator (in TLS 1.3 including its encrypted handshake).",
    ),
    Column(
        "resp_app_bytes",
        INT,
        "bytes",
        "Bytes of application_data record bodies from the responder.",
    ),
    Column(
        "orig_record_types",
        STR,
        "",
        "Records the originator sent per content type, e.g. handshake=3,change_cipher_spec=1,application_data=5.",
    ),
    Column("resp_record_types", STR, "", "Records the responder sent per content type."),
    Column(
        "in_tunnel",
        BOOL,
        "",
        "The TLS ran inside an HTTP CONNECT or Upgrade tunnel on this connection.",
    ),
    Column(
        "tls_flags",
        STR,
        "",
        "Comma-separated notes: tls_gap_client / tls_gap_server (bytes missing, parsing stopped), truncated, no_server_hello, ...",
    ),
    Column("source", STR, "", "Capture file."),
)

FINDINGS: tuple[Column, ...] = (
    Column(
        "kind",
        STR,
        "",
        "What was found: no_keep_alive, missed_reuse, pipelining_hol, slow_server, tls_resumption_missed, expect_100_continue, expect_417, parallel_connections, slow_start_stall, retransmissions (performance); trace_enabled, connect_non_443, upgrade_tls, cleartext_credentials, tls_old_version, tls_insecure_cipher, tls_h2_blocklisted_cipher, tls_no_forward_secrecy, tls_weak_ciphers_offered, tls_weak_dh, cert_expired, cert_not_yet_valid, cert_self_signed, cert_name_mismatch, request_smuggling (security); see the README.",
    ),
    Column("category", STR, "", "performance or security."),
    Column("severity", STR, "", "info, low, medium or high (rows are ordered most severe first)."),
    Column("uid", STR, "", "The connection, when the finding rests on exactly one."),
    Column("server", STR, "", "Server address:port the finding is about ([v6]:port)."),
    Column("server_name", STR, "", "Host header of the connections' first requests, else the SNI."),
    Column(
        "client",
        STR,
        "",
        "Client address, for findings about one client and server (empty: all clients).",
    ),
    Column(
        "occurrences",
        INT,
        "",
        "How many: exchanges, connections, handshakes or segments, as the summary says (not 'count', which would hide DataFrame.count).",
    ),
    Column(
        "cost_s",
        FLOAT,
        "s",
        "Time it cost where computable (set-up of extra connections, waits, round trips times the RTT); empty otherwise.",
    ),
    Column(
        "cost_rtts",
        FLOAT,
        "RTTs",
        "Round trips it cost where computable (e.g. budget_rtts - 1 per extra connection); empty otherwise.",
    ),
    Column(
        "evidence_table",
        STR,
        "",
        "The table whose rows show it (connections, http, tls, missed_reuse): filter it by uid.",
    ),
    Column(
        "evidence",
        STR,
        "",
        "Comma-separated uids of those rows (at most MAX_FINDING_EVIDENCE, 1,000; count has them all).",
    ),
    Column("summary", STR, "", "One plain sentence with the numbers."),
    Column(
        "advice",
        STR,
        "",
        "One sentence on what to do, with its reference (RFC section or Mozilla guideline).",
    ),
)

TABLES: dict[str, tuple[Column, ...]] = {
    "connections": CONNECTIONS,
    "http": HTTP,
    "tls": TLS,
    "rtt": RTT,
    "servers": SERVERS,
    "clients": CLIENTS,
    "missed_reuse": MISSED_REUSE,
    "anomalies": ANOMALIES,
    "findings": FINDINGS,
}
