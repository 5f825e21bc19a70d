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
    Column("uid", STR, "", "Deterministic connection id (same capture, same uid); joins all tables."),
    Column("community_id", STR, "", "Community ID v1 flow hash (seed 0), joins with Zeek/Suricata/Wireshark."),
    Column("orig_h", STR, "", "Originator address (the SYN sender; see 'partial' for guessed orientation)."),
    Column("orig_p", INT, "", "Originator port."),
    Column("resp_h", STR, "", "Responder address."),
    Column("resp_p", INT, "", "Responder port."),
    Column("proto", STR, "", "Transport protocol (tcp)."),
    Column("service", STR, "", "Protocol detected from the stream's first bytes (http, tls) or empty; never from the port."),
    Column("duration_s", FLOAT, "s", "Last packet time minus first packet time."),
    Column("orig_bytes", INT, "bytes", "Payload bytes the originator sent, from sequence numbers (Zeek: includes bytes acknowledged but not captured)."),
    Column("resp_bytes", INT, "bytes", "Payload bytes the responder sent, from sequence numbers."),
    Column("missed_bytes", INT, "bytes", "Bytes in content gaps (never captured), both directions."),
    Column("orig_pkts", INT, "packets", "Packets sent by the originator."),
    Column("resp_pkts", INT, "packets", "Packets sent by the responder."),
    Column("orig_ip_bytes", INT, "bytes", "Sum of IP total lengths of the originator's packets."),
    Column("resp_ip_bytes", INT, "bytes", "Sum of IP total lengths of the responder's packets."),
    Column("conn_state", STR, "", "Zeek connection state: S0 S1 SF REJ S2 S3 RSTO RSTR RSTOS0 RSTRH SH SHR OTH."),
    Column("history", STR, "", "Zeek history letters (upper case: originator; ^ = roles flipped)."),
    Column("orig_retransmits", INT, "segments", "Originator data segments that carried only (or partly) bytes already seen."),
    Column("resp_retransmits", INT, "segments", "Responder data segments that carried only (or partly) bytes already seen."),
    Column("orig_out_of_order", INT, "segments", "Originator segments with new bytes that arrived after higher-sequence data (hole fillers)."),
    Column("resp_out_of_order", INT, "segments", "Responder segments with new bytes that arrived after higher-sequence data."),
    Column("orig_zero_window_probes", INT, "segments", "One-byte segments the originator sent while the responder advertised a zero window."),
    Column("resp_zero_window_probes", INT, "segments", "One-byte segments the responder sent while the originator advertised a zero window."),
    Column("orig_keepalives", INT, "segments", "TCP keep-alive probes sent by the originator (not counted as data)."),
    Column("resp_keepalives", INT, "segments", "TCP keep-alive probes sent by the responder."),
    Column("overlap_conflicts", INT, "segments", "Retransmitted bytes that differ from the first copy (first copy wins); an evasion indicator."),
    Column("close_reason", STR, "", "Why the record ended: fin, rst, idle_timeout, reused (new SYN on the 5-tuple), end_of_capture."),
    Column("orig_mss", INT, "bytes", "MSS option in the originator's SYN."),
    Column("resp_mss", INT, "bytes", "MSS option in the responder's SYN-ACK."),
    Column("orig_wscale", INT, "", "Window-scale shift in the originator's SYN (empty if absent)."),
    Column("resp_wscale", INT, "", "Window-scale shift in the responder's SYN-ACK (empty if absent)."),
    Column("orig_sack_ok", BOOL, "", "Originator's SYN offered SACK."),
    Column("resp_sack_ok", BOOL, "", "Responder's SYN-ACK offered SACK."),
    Column("orig_ts_ok", BOOL, "", "Originator's SYN carried the timestamps option."),
    Column("resp_ts_ok", BOOL, "", "Responder's SYN-ACK carried the timestamps option."),
    Column("partial", BOOL, "", "Picked up mid-stream (no SYN seen first); orientation is the stated port heuristic."),
    Column("flipped", BOOL, "", "Orientation differs from the first packet's direction (e.g. SYN-ACK seen first)."),
    Column("ip_version", INT, "", "IP version of the connection: 4 or 6."),
    Column("source", STR, "", "Capture file the connection was read from."),
)

ANOMALIES: tuple[Column, ...] = (
    Column("ts", TS, "", "Time of the packet (or of the file position) concerned."),
    Column("uid", STR, "", "Connection uid, empty when not tied to a connection."),
    Column("frame", INT, "", "1-based frame number in the source file (0 when not tied to one frame, e.g. protocol anomalies found in reassembled bytes: see ts)."),
    Column("name", STR, "", "Machine name of the anomaly (Zeek weird.log style), e.g. bad_tcp_header, truncated_file."),
    Column("addl", STR, "", "Human-readable detail."),
    Column("source", STR, "", "Capture file."),
)

HTTP: tuple[Column, ...] = (
    Column("ts", TS, "", "Time of the request's first byte (the response's, for a response with no request seen)."),
    Column("uid", STR, "", "Connection uid (joins the connections table)."),
    Column("orig_h", STR, "", "Connection originator address (as in the connections table)."),
    Column("orig_p", INT, "", "Connection originator port."),
    Column("resp_h", STR, "", "Connection responder address."),
    Column("resp_p", INT, "", "Connection responder port."),
    Column("trans_depth", INT, "", "1-based position of the request/response pair on the connection (Zeek's trans_depth)."),
    Column("method", STR, "", "Request method as sent (any token, extension methods included); empty for a response with no request."),
    Column("host", STR, "", "Host header of the request (the authority for a CONNECT or an absolute-form target without Host)."),
    Column("uri", STR, "", "Request target as sent: origin-form path, absolute-form URL, authority-form (CONNECT) or '*'."),
    Column("target_form", STR, "", "RFC 9112 request-target form: origin, absolute, authority or asterisk."),
    Column("version", STR, "", "HTTP version of the request line (1.0, 1.1; 0.9 for a simple-request without one; empty when malformed, flag bad_version)."),
    Column("response_version", STR, "", "HTTP version of the final response's status line (0.9 for a reply to a simple-request that has no status line)."),
    Column("user_agent", STR, "", "User-Agent header of the request."),
    Column("referrer", STR, "", "Referer header of the request."),
    Column("request_body_len", INT, "bytes", "Request body length after removing chunk framing (0 when none)."),
    Column("response_body_len", INT, "bytes", "Response body length after removing chunk framing (0 for HEAD, 1xx, 204, 304)."),
    Column("status_code", INT, "", "Status code of the final (non-1xx) response, or of the 101 that switched protocols; empty for an HTTP/0.9 reply."),
    Column("status_msg", STR, "", "Reason phrase of that response (may be empty)."),
    Column("info_codes", STR, "", "Interim 1xx responses before the final one, comma-separated in order (e.g. 100)."),
    Column("content_type", STR, "", "Content-Type header of the response."),
    Column("content_length", INT, "bytes", "Content-Length the response declared (a HEAD response declares one without a body)."),
    Column("transfer_encoding", STR, "", "Transfer-Encoding header of the response (e.g. chunked)."),
    Column("content_encoding", STR, "", "Content-Encoding header of the response (gzip, br, ...)."),
    Column("chunk_count", INT, "chunks", "Data chunks in a chunked response (the last-chunk not counted); empty when not chunked."),
    Column("trailer_names", STR, "", "Trailer fields received after the last chunk, by name, comma-separated."),
    Column("trailer_announced", STR, "", "The response's Trailer header (fields announced in advance)."),
    Column("expect", STR, "", "Expect header of the request (100-continue)."),
    Column("upgrade_requested", STR, "", "Upgrade header of the request (websocket, h2c, TLS/1.2, ...)."),
    Column("upgrade", STR, "", "Protocol switched to by a 101 Switching Protocols; HTTP parsing ends there."),
    Column("tunnel", STR, "", "CONNECT target when the proxy answered 2xx and a tunnel opened."),
    Column("request_connection_header", STR, "", "Connection header of the request (keep-alive, close, Upgrade ...)."),
    Column("response_connection_header", STR, "", "Connection header of the response."),
    Column("keep_alive", BOOL, "", "The exchange leaves the connection open for another request (RFC 9112 9.3: version and Connection of both messages, no close-delimited body, no tunnel); empty when unanswered."),
    Column("pipelined", BOOL, "", "The request's first byte arrived before the previous response's last byte."),
    Column("pipeline_depth", INT, "requests", "Requests outstanding (sent, final response not finished) when this one started, itself included."),
    Column("ts_request_start", TS, "", "First byte of the request."),
    Column("ts_request_end", TS, "", "Last byte of the request (end of its body)."),
    Column("ts_response_start", TS, "", "First byte of the final response (after any 1xx)."),
    Column("ts_response_end", TS, "", "Last byte of the response."),
    Column("ttfb_s", FLOAT, "s", "Time to first byte seen at the capture point: final response start minus request end."),
    Column("response_time_s", FLOAT, "s", "Request start to response end."),
    Column("resp_body_sha256", STR, "", "SHA-256 of the decoded response body (chunk framing removed, content encoding kept); empty when there is no body."),
    Column("partial", BOOL, "", "A gap, a parse error or the end of the capture cut the request or the response."),
    Column("flags", STR, "", "Comma-separated notes on this exchange (bare_lf, obs_fold, te_and_cl, cl_mismatch, orphan_response, ...); see the README."),
    Column("source", STR, "", "Capture file."),
)

TABLES: dict[str, tuple[Column, ...]] = {"connections": CONNECTIONS, "http": HTTP, "anomalies": ANOMALIES}
