"""Output records: one frozen dataclass per table row (rows, never packets)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class ConnRecord:
    ts_ns: int
    uid: str
    community_id: str
    orig_h: str
    orig_p: int
    resp_h: str
    resp_p: int
    proto: str
    service: str
    duration_s: float
    orig_bytes: int
    resp_bytes: int
    missed_bytes: int
    orig_pkts: int
    resp_pkts: int
    orig_ip_bytes: int
    resp_ip_bytes: int
    conn_state: str
    history: str
    orig_retransmits: int
    resp_retransmits: int
    orig_out_of_order: int
    resp_out_of_order: int
    orig_zero_window_probes: int
    resp_zero_window_probes: int
    orig_keepalives: int
    resp_keepalives: int
    overlap_conflicts: int
    close_reason: str
    orig_mss: int | None
    resp_mss: int | None
    orig_wscale: int | None
    resp_wscale: int | None
    orig_sack_ok: bool
    resp_sack_ok: bool
    orig_ts_ok: bool
    resp_ts_ok: bool
    partial: bool
    flipped: bool
    ip_version: int
    source: str


@dataclass(frozen=True, slots=True)
class AnomalyRecord:
    ts_ns: int
    uid: str
    frame: int
    name: str
    addl: str
    source: str
