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
    Column("frame", INT, "", "1-based frame number in the source file (0 when not tied to one frame)."),
    Column("name", STR, "", "Machine name of the anomaly (Zeek weird.log style), e.g. bad_tcp_header, truncated_file."),
    Column("addl", STR, "", "Human-readable detail."),
    Column("source", STR, "", "Capture file."),
)

TABLES: dict[str, tuple[Column, ...]] = {"connections": CONNECTIONS, "anomalies": ANOMALIES}
