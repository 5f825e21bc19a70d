"""Findings: what an HTTP/TLS performance and security review would point at, each with the rows
that show it (issue 18).

Derived from the tables only (connections, http, tls, servers, missed_reuse), never from the
capture, so they are the same on merged, sharded, parallel and live results. One small function
per kind; each returns rows (dicts) of the findings table (pcapan/frames/schema.py FINDINGS).
Thresholds are pcapan/config.py constants (FINDINGS_*, with their reasons), overridable by name
(the constant's lower-case name without the prefix) through ``thresholds``.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np
import pandas as pd

from pcapan import config
from pcapan.frames.schema import FINDINGS

SEVERITIES = ("info", "low", "medium", "high")

# Threshold name -> default (from config: FINDINGS_<NAME>).
THRESHOLDS: dict[str, float] = {
    name[len("FINDINGS_") :].lower(): float(getattr(config, name))
    for name in dir(config)
    if name.startswith("FINDINGS_")
}


@dataclass(frozen=True)
class Tables:
    """The tables a finding may read."""

    connections: pd.DataFrame
    http: pd.DataFrame
    tls: pd.DataFrame
    servers: pd.DataFrame
    missed_reuse: pd.DataFrame

    @cached_property
    def server_names(self) -> pd.Series:
        """uid -> Host of the connection's first request, else the SNI (as the servers table);
        once per Tables, every kind reads it."""
        h = self.http[["uid", "trans_depth", "host"]].sort_values("trans_depth")
        host = h.drop_duplicates("uid").set_index("uid").host
        sni = self.tls[["uid", "server_name"]].drop_duplicates("uid").set_index("uid").server_name
        uid = self.connections.uid
        out = _at(uid, host).astype("string")
        out = out.where(out.notna(), _at(uid, sni).astype("string")).fillna("")
        return pd.Series(out.to_numpy(), index=uid.to_numpy())


Row = dict[str, Any]
Kind = Callable[[Tables, Mapping[str, float]], list[Row]]


def parse_thresholds(items: Iterable[str]) -> dict[str, float]:
    """``NAME=VALUE`` strings (the CLI's ``--threshold``) as a thresholds mapping; ValueError
    names the bad one and the known names."""
    out: dict[str, float] = {}
    for item in items:
        name, sep, value = item.partition("=")
        name = name.strip().lower()
        if not sep or name not in THRESHOLDS:
            raise ValueError(
                f"bad threshold {item!r}: expected NAME=VALUE, NAME one of {', '.join(THRESHOLDS)}"
            )
        try:
            out[name] = float(value)
        except ValueError:
            raise ValueError(f"bad threshold {item!r}: {value!r} is not a number") from None
    return out


# --- helpers --------------------------------------------------------------------------------------
def _addr_port(h: object, p: object) -> str:
    h = str(h)
    try:
        v6 = ipaddress.ip_address(h).version == 6
    except ValueError:
        v6 = False
    return f"[{h}]:{p}" if v6 else f"{h}:{p}"


def _row(
    kind: str,
    category: str,
    severity: str,
    uids: Iterable[str],
    summary: str,
    advice: str,
    *,
    table: str,
    server: str | None = None,
    server_name: str | None = None,
    client: str | None = None,
    count: int | None = None,
    cost_s: float | None = None,
    cost_rtts: float | None = None,
    limit: float = config.MAX_FINDING_EVIDENCE,
) -> Row:
    ids = list(dict.fromkeys(str(u) for u in uids if isinstance(u, str)))
    n = len(ids) if count is None else count
    return {
        "kind": kind,
        "category": category,
        "severity": severity,
        "uid": ids[0] if len(ids) == 1 else None,
        "server": server,
        "server_name": server_name or None,
        "client": client,
        "occurrences": n,
        "cost_s": cost_s,
        "cost_rtts": cost_rtts,
        "evidence_table": table,
        "evidence": ",".join(ids[: int(limit)]),
        "summary": summary,
        "advice": advice,
    }


def _bool(s: pd.Series) -> pd.Series:
    return s.fillna(False).astype(bool)


def _dur(secs: float) -> str:
    """A duration for a sentence: ms under a second (loopback costs are microseconds)."""
    return f"{secs:.3f} s" if secs >= 1 else f"{secs * 1e3:.3g} ms"


def _and(items: list[str]) -> str:
    return items[0] if len(items) == 1 else f"{', '.join(items[:-1])} and {items[-1]}"


def _plural(n: float, word: str) -> str:
    return f"{n:,g} {word}" if n == 1 else f"{n:,g} {word}s"


# The columns _per_server groups by (a kind narrows a wide table to these and what it reads:
# each group is a frame of its own, taken column by column).
_KEYS = ["orig_h", "resp_h", "resp_p"]


def _server_keys(df: pd.DataFrame, client: bool) -> list[str]:
    """The columns a finding's scope groups by: server address, port, and server_name when
    present, with the client address first when ``client``."""
    keys = (["orig_h"] if client else []) + ["resp_h", "resp_p"]
    if "server_name" in df:
        keys.append("server_name")
    return keys


def _per_server(df: pd.DataFrame, *, client: bool = False) -> Iterable[tuple[dict, pd.DataFrame]]:
    """Groups of ``df`` by server (:func:`_server_keys`); yields (scope, rows)."""
    keys = _server_keys(df, client)
    for key, g in df.groupby(keys, sort=True, dropna=False):
        k = dict(zip(keys, key, strict=True))
        name = k.get("server_name")
        yield (
            {
                "server": _addr_port(k["resp_h"], k["resp_p"]),
                "server_name": None if name is None or pd.isna(name) else str(name),
                "client": k.get("orig_h"),
            },
            g,
        )


def _at(uids: pd.Series, values: pd.Series) -> pd.Series:
    """``values`` (indexed by uid) looked up for each of ``uids``, on ``uids``' index (Series.map
    on an Arrow string column keeps the Arrow string type; this keeps the values' dtype)."""
    return pd.Series(values.reindex(uids.to_numpy()).to_numpy(), index=uids.index)


def _conn(t: Tables, col: str) -> pd.Series:
    """A numeric connections column indexed by uid (built once per Tables: kinds ask for the
    same columns once per group)."""
    cache = t.__dict__.setdefault("_conn_cols", {})
    s = cache.get(col)
    if s is None:
        c = t.connections
        s = cache[col] = pd.Series(c[col].astype("float64").to_numpy(), index=c.uid.to_numpy())
    return s


def _with_names(df: pd.DataFrame, t: Tables) -> pd.DataFrame:
    return df.assign(server_name=_at(df.uid, t.server_names).fillna(""))


def _conn_cost(t: Tables, uids: Iterable[str]) -> tuple[float, float]:
    """Round trips and seconds a connection's set-up cost before its first request could go out:
    budget_rtts - 1 (TCP, TLS) and budget_tcp_s + budget_tls_s, summed over ``uids``."""
    cache = t.__dict__.setdefault("_conn_cols", {})
    costs = cache.get("_setup_cost")
    if costs is None:
        # uid -> (round trips, seconds), once per Tables: kinds ask per group, hundreds of times.
        rtts_c = np.nan_to_num((_conn(t, "budget_rtts") - 1).clip(lower=0).to_numpy(), nan=0.0)
        secs_c = np.nan_to_num(_conn(t, "budget_tcp_s").to_numpy(), nan=0.0) + np.nan_to_num(
            _conn(t, "budget_tls_s").to_numpy(), nan=0.0
        )
        uid = t.connections.uid.tolist()
        costs = cache["_setup_cost"] = dict(
            zip(uid, zip(rtts_c.tolist(), secs_c.tolist(), strict=True), strict=True)
        )
    rtts = secs = 0.0
    for u in uids:
        c = costs.get(u)
        if c is not None:
            rtts += c[0]
            secs += c[1]
    return rtts, secs


def _group_ids(df: pd.DataFrame, *, client: bool = False) -> np.ndarray:
    """Each row's group number as :func:`_per_server` groups (to count per group at once and
    hand _per_server only the rows of groups that have a finding)."""
    return df.groupby(_server_keys(df, client), sort=True, dropna=False).ngroup().to_numpy()


# --- performance ----------------------------------------------------------------------------------
def no_keep_alive(t: Tables, th: Mapping[str, float]) -> list[Row]:
    h = _with_names(t.http.loc[t.http.status_code.notna(), [*_KEYS, "uid", "ts", "keep_alive"]], t)
    # Count per group first: only groups that can have the finding are taken apart.
    if len(h):
        gid = _group_ids(h, client=True)
        closed_n = np.bincount(gid, weights=(~_bool(h.keep_alive)).to_numpy().astype(float))
        size = np.bincount(gid)
        cand = (closed_n > 0) & (closed_n > th["no_keep_alive_share"] * size)
        h = h[cand[gid]]
    out = []
    for scope, g in _per_server(h, client=True):
        closed = g[~_bool(g.keep_alive)]
        conns = g.uid.nunique()
        if (
            conns < th["no_keep_alive_min_connections"]
            or len(closed) <= th["no_keep_alive_share"] * len(g)
            or not len(closed)
        ):
            continue
        # The connections beyond the first each paid a set-up that reuse would have saved.
        first = g.sort_values("ts").uid.iloc[0]
        extra = [u for u in dict.fromkeys(closed.uid) if u != first]
        rtts, secs = _conn_cost(t, extra)
        out.append(
            _row(
                "no_keep_alive",
                "performance",
                "medium",
                closed.uid,
                f"{len(closed):,} of {len(g):,} exchanges with {scope['server']} closed the "
                f"connection (Connection: close or HTTP/1.0): {_plural(len(extra), 'extra connection')}"
                f", {_plural(rtts, 'round trip')} (~{_dur(secs)}) of set-up.",
                "Keep connections open for further requests: drop Connection: close and "
                "HTTP/1.0 (RFC 9112 section 9.3, persistence).",
                table="http",
                count=len(closed),
                cost_s=secs,
                cost_rtts=rtts,
                **scope,
            )
        )
    return out


def missed_reuse(t: Tables, th: Mapping[str, float]) -> list[Row]:
    m = t.missed_reuse
    out = []
    for scope, g in _per_server(m, client=True):
        if len(g) < th["missed_reuse_min"]:
            continue
        rtts, secs = _conn_cost(t, g.uid)
        thr = g.threshold_s.dropna()
        rule = (
            f"idle > {config.REUSE_IDLE_RTTS:g} RTT, at least {thr.min():.3g} s"
            if len(thr)
            else "HTTP/2"
        )
        out.append(
            _row(
                "missed_reuse",
                "performance",
                "medium" if len(g) >= 10 else "low",
                g.uid,
                f"{_plural(len(g), 'new connection')} to {scope['server']} opened beside an "
                f"open, available one ({rule}): {_plural(rtts, 'round trip')} (~{_dur(secs)}) of set-up.",
                "Send the request on the idle open connection instead of opening another "
                "(RFC 9112 section 9.3; HTTP/2 multiplexes, RFC 9113 section 9.1.1).",
                table="missed_reuse",
                cost_s=secs,
                cost_rtts=rtts,
                **scope,
            )
        )
    return out


def pipelining_hol(t: Tables, th: Mapping[str, float]) -> list[Row]:
    h = t.http[t.http.hol_wait_s.fillna(0) >= th["hol_wait_s"]]
    out = []
    for scope, g in _per_server(_with_names(h, t), client=True):
        wait = float(g.hol_wait_s.sum())
        out.append(
            _row(
                "pipelining_hol",
                "performance",
                "low",
                g.uid,
                f"{_plural(len(g), 'pipelined request')} to {scope['server']} waited behind "
                f"earlier responses for {th['hol_wait_s']:g} s or more ({_dur(wait)} in all, "
                f"longest {_dur(g.hol_wait_s.max())}).",
                "Pipelined responses come back in order, so a slow one holds up the rest: "
                "avoid pipelining behind slow requests, or multiplex with HTTP/2 "
                "(RFC 9112 section 9.3.2; RFC 9113 section 5).",
                table="http",
                count=len(g),
                cost_s=wait,
                **scope,
            )
        )
    return out


def slow_server(t: Tables, th: Mapping[str, float]) -> list[Row]:
    """Think time: ttfb_s minus rtt_syn_s (the capture point to the server and back), for
    requests not pipelined (a pipelined one's TTFB includes its wait behind others)."""
    h = t.http[~_bool(t.http.pipelined) & t.http.ttfb_s.notna()]
    rtt = _at(h.uid, _conn(t, "rtt_syn_s")).fillna(0.0)
    h = h.assign(think=(h.ttfb_s.astype("float64") - rtt).clip(lower=0))
    slow = h[h.think >= th["think_time_s"]]
    out = []
    for scope, g in _per_server(_with_names(slow, t)):
        excess = float(g.think.sum())
        out.append(
            _row(
                "slow_server",
                "performance",
                "medium",
                g.uid,
                f"{_plural(len(g), 'response')} from {scope['server']} took "
                f"{th['think_time_s']:g} s or more of server time (TTFB minus network RTT; "
                f"median {_dur(g.think.median())}, {_dur(excess)} in all).",
                "Profile or cache the slow responses: Lighthouse's server-response-time audit "
                "flags a TTFB over 600 ms (web.dev, Reduce server response times).",
                table="http",
                count=len(g),
                cost_s=excess,
                **scope,
            )
        )
    return out


def tls_resumption_missed(t: Tables, th: Mapping[str, float]) -> list[Row]:
    """Full TLS <= 1.2 handshakes from a client to a server (address, port, SNI) that had
    issued it a session ticket in an earlier handshake (RFC 5077). Resumption saves one round
    trip (TLS 1.2 full: 2, abbreviated: 1); TLS 1.3's tickets are encrypted, so not judged."""
    tls = t.tls[t.tls.version.isin(["TLSv12", "TLSv11", "TLSv10", "SSLv3"]).fillna(False)]
    tls = tls[[*_KEYS, "server_name", "uid", "ts", "ticket_issued", "resumed", "established"]]
    tls = tls.sort_values("ts", kind="stable")
    rtt = _conn(t, "initial_rtt_s")
    out = []
    if not len(tls):
        return out
    # Per row: had the group issued a ticket in an earlier handshake (a cumulative count per
    # group, minus the row's own), for all groups at once.
    ticket = _bool(tls.ticket_issued).to_numpy()
    gid = _group_ids(tls, client=True)
    before = pd.Series(ticket.astype(np.int64)).groupby(gid).cumsum().to_numpy() - ticket
    full_rows = (before > 0) & ~_bool(tls.resumed).to_numpy() & _bool(tls.established).to_numpy()
    for scope, full in _per_server(tls[full_rows], client=True):
        if not len(full):
            continue
        secs = float(_at(full.uid, rtt).fillna(0).sum())
        out.append(
            _row(
                "tls_resumption_missed",
                "performance",
                "low",
                full.uid,
                f"{_plural(len(full), 'full TLS handshake')} to {scope['server']} after the "
                f"server had issued this client a session ticket: {_plural(len(full), 'round trip')} "
                f"(~{_dur(secs)}).",
                "Offer the session ticket the server issued to resume with one round trip "
                "less (RFC 5077 section 3.1; RFC 8446 section 2.2 for TLS 1.3).",
                table="tls",
                count=len(full),
                cost_s=secs,
                cost_rtts=float(len(full)),
                **scope,
            )
        )
    return out


def expect_continue(t: Tables, th: Mapping[str, float]) -> list[Row]:
    """Expect: 100-continue costs the client a round trip before it sends the body (unless it
    gives up waiting); a 417 means the server refused the expectation (the request failed)."""
    h = t.http[t.http.expect.fillna("").str.lower().str.strip().eq("100-continue")]
    rtt = _conn(t, "initial_rtt_s")
    out = []
    for scope, g in _per_server(_with_names(h, t)):
        waited = g[g.info_codes.fillna("").str.contains("100")]
        if len(waited):
            secs = float(_at(waited.uid, rtt).fillna(0).sum())
            out.append(
                _row(
                    "expect_100_continue",
                    "performance",
                    "info",
                    waited.uid,
                    f"{_plural(len(waited), 'request')} to {scope['server']} waited for "
                    f"100 Continue before sending the body: {_plural(len(waited), 'round trip')} "
                    f"(~{_dur(secs)}).",
                    "Send small bodies without Expect: 100-continue; keep it for large uploads "
                    "the server may refuse (RFC 9110 section 10.1.1).",
                    table="http",
                    count=len(waited),
                    cost_s=secs,
                    cost_rtts=float(len(waited)),
                    **scope,
                )
            )
        refused = g[g.status_code.eq(417).fillna(False)]
        if len(refused):
            out.append(
                _row(
                    "expect_417",
                    "performance",
                    "low",
                    refused.uid,
                    f"{_plural(len(refused), 'request')} to {scope['server']} with "
                    "Expect: 100-continue answered 417 Expectation Failed.",
                    "Retry without the Expect header, or fix the server's expectation handling "
                    "(RFC 9110 section 10.1.1 and 15.5.18).",
                    table="http",
                    count=len(refused),
                    **scope,
                )
            )
    return out


def parallel_connections(t: Tables, th: Mapping[str, float]) -> list[Row]:
    s = t.servers[t.servers.max_open_connections > th["parallel_connections"]]
    c = _with_names(t.connections, t)
    out = []
    for _, r in s.iterrows():
        uids = c.uid[
            c.orig_h.eq(r.orig_h)
            & c.resp_h.eq(r.resp_h)
            & c.resp_p.eq(r.resp_p)
            & c.server_name.eq(r.server_name)
        ]
        server = _addr_port(r.resp_h, r.resp_p)
        out.append(
            _row(
                "parallel_connections",
                "performance",
                "low",
                uids,
                f"{r.orig_h} had {r.max_open_connections:,} connections open at once to "
                f"{server} (more than {th['parallel_connections']:g}).",
                "Reuse and limit connections per server, as browsers do (6 per host; "
                "RFC 9112 section 9.4), or multiplex with HTTP/2 (RFC 9113 section 9.1).",
                table="connections",
                server=server,
                server_name=str(r.server_name),
                client=str(r.orig_h),
                count=int(r.max_open_connections),
            )
        )
    return out


def slow_start(t: Tables, th: Mapping[str, float]) -> list[Row]:
    """Responses that took more round trips than slow start from an initial window of
    ``initial_window_segments`` needs (the window doubling each round trip, RFC 5681 / RFC
    6928): their transfer time (ts_response_end - ts_response_start) in round trips
    (initial_rtt_s) minus the rounds the doubling model needs for their segments (body bytes
    over the server's MSS minus 12 bytes of timestamps)."""
    h = t.http[t.http.ts_response_end.notna() & t.http.response_body_len.notna()]
    rtt = _at(h.uid, _conn(t, "initial_rtt_s"))
    mss = _at(h.uid, _conn(t, "resp_mss")).fillna(1460) - 12
    h = h[(rtt >= th["slow_start_min_rtt_s"]).fillna(False)]
    if not len(h):
        return []
    rtt, mss = rtt[h.index], mss[h.index]
    segs = np.ceil(h.response_body_len.astype("float64") / mss)
    iw = max(th["initial_window_segments"], 1.0)
    # Flights of iw, 2iw, 4iw ...: k flights carry iw (2^k - 1); the last arrives k-1 RTTs on.
    need = np.maximum(np.ceil(np.log2(segs / iw + 1)) - 1, 0)
    took = (h.ts_response_end - h.ts_response_start).dt.total_seconds() / rtt
    extra = took - need
    h = h.assign(extra=extra, rtt=rtt, need=need, took=took)
    stalled = h[h.extra >= th["slow_start_extra_rtts"]]
    out = []
    for scope, g in _per_server(_with_names(stalled, t)):
        rtts = float(np.floor(g.extra).sum())
        secs = float((np.floor(g.extra) * g.rtt).sum())
        out.append(
            _row(
                "slow_start_stall",
                "performance",
                "low",
                g.uid,
                f"{_plural(len(g), 'response')} from {scope['server']} took "
                f"{g.took.max():.1f} round trips where slow start from "
                f"{iw:g} segments needs {g.need[g.took.idxmax()]:g}: {_plural(rtts, 'round trip')} "
                f"(~{_dur(secs)}) lost.",
                "Use an initial congestion window of 10 segments (RFC 6928) and keep the window "
                "across idle periods (RFC 5681 section 4.1); check receive windows and loss.",
                table="http",
                count=len(g),
                cost_s=secs,
                cost_rtts=rtts,
                **scope,
            )
        )
    return out


def retransmissions(t: Tables, th: Mapping[str, float]) -> list[Row]:
    c = _with_names(t.connections, t)
    out = []
    for scope, g in _per_server(c):
        pkts = int(g.resp_pkts.fillna(0).sum())
        rtx = int(g.resp_retransmits.fillna(0).sum())
        if pkts < th["retransmit_min_packets"] or rtx <= th["retransmit_rate"] * pkts:
            continue
        hit = g[g.resp_retransmits.fillna(0) > 0]
        out.append(
            _row(
                "retransmissions",
                "performance",
                "medium",
                hit.uid,
                f"{scope['server']} retransmitted {rtx:,} of {pkts:,} segments "
                f"({rtx / pkts:.1%}, above {th['retransmit_rate']:.1%}).",
                "Look for loss or a too-short retransmission timeout on the server's path "
                "(RFC 6298; RFC 5681 section 3.2).",
                table="connections",
                count=rtx,
                **scope,
            )
        )
    return out


# --- security -------------------------------------------------------------------------------------
def trace_enabled(t: Tables, th: Mapping[str, float]) -> list[Row]:
    h = t.http[
        t.http.method.eq("TRACE").fillna(False) & t.http.status_code.between(200, 299).fillna(False)
    ]
    return [
        _row(
            "trace_enabled",
            "security",
            "medium",
            g.uid,
            f"{scope['server']} answered {_plural(len(g), 'TRACE request')} with 2xx "
            "(cross-site tracing: the reply echoes cookies and credentials).",
            "Disable TRACE on the server (RFC 9110 section 9.3.8; OWASP: Test HTTP Methods).",
            table="http",
            count=len(g),
            **scope,
        )
        for scope, g in _per_server(_with_names(h, t))
    ]


def connect_port(t: Tables, th: Mapping[str, float]) -> list[Row]:
    h = t.http[t.http.method.eq("CONNECT").fillna(False) & t.http.tunnel.notna()]
    port = h.tunnel.str.rsplit(":", n=1).str[-1]
    h = h[port.ne("443").fillna(True)]
    return [
        _row(
            "connect_non_443",
            "security",
            "medium",
            g.uid,
            f"Proxy {scope['server']} accepted {_plural(len(g), 'CONNECT')} to ports other "
            f"than 443 ({', '.join(sorted(set(g.tunnel.astype(str)))[:5])}).",
            "Restrict CONNECT to port 443 so the proxy cannot relay arbitrary TCP "
            "(RFC 9110 section 9.3.6).",
            table="http",
            count=len(g),
            **scope,
        )
        for scope, g in _per_server(_with_names(h, t))
    ]


def upgrade_tls(t: Tables, th: Mapping[str, float]) -> list[Row]:
    h = t.http[t.http.upgrade_requested.fillna("").str.upper().str.contains(r"\bTLS/")]
    return [
        _row(
            "upgrade_tls",
            "security",
            "low",
            g.uid,
            f"{_plural(len(g), 'request')} to {scope['server']} asked to upgrade the "
            "cleartext connection to TLS (Upgrade: TLS/1.x).",
            "Use https:// instead: an in-band upgrade to TLS can be stripped by an active "
            "attacker and is not supported by browsers (RFC 2817 section 3; RFC 9110 section 7.8).",
            table="http",
            count=len(g),
            **scope,
        )
        for scope, g in _per_server(_with_names(h, t))
    ]


def tls_version(t: Tables, th: Mapping[str, float]) -> list[Row]:
    old = {"SSLv2": "high", "SSLv3": "high", "TLSv10": "medium", "TLSv11": "medium"}
    tls = t.tls[t.tls.version.isin(list(old)).fillna(False)]
    out = []
    for scope, g in _per_server(tls):
        versions = sorted(set(g.version.astype(str)))
        out.append(
            _row(
                "tls_old_version",
                "security",
                "high" if {"SSLv2", "SSLv3"} & set(versions) else "medium",
                g.uid,
                f"{_plural(len(g), 'handshake')} with {scope['server']} negotiated "
                f"{', '.join(versions)}.",
                "Disable SSLv3, TLS 1.0 and TLS 1.1 and negotiate TLS 1.2 or 1.3 (RFC 8996; "
                "RFC 7568; Mozilla intermediate configuration).",
                table="tls",
                count=len(g),
                **scope,
            )
        )
    return out


def tls_cipher(t: Tables, th: Mapping[str, float]) -> list[Row]:
    tls = t.tls[t.tls.cipher.notna()]
    insecure = tls[_bool(tls.cipher_insecure)]
    h2 = tls[
        _bool(tls.cipher_h2_blocklisted)
        & ~_bool(tls.cipher_insecure)
        & tls.next_protocol.eq("h2").fillna(False)
    ]
    nofs = tls[(tls.cipher_forward_secrecy.eq(False)).fillna(False)]
    out = []
    for scope, g in _per_server(insecure):
        out.append(
            _row(
                "tls_insecure_cipher",
                "security",
                "high",
                g.uid,
                f"{_plural(len(g), 'handshake')} with {scope['server']} selected an insecure "
                f"suite ({', '.join(sorted(set(g.cipher.astype(str)))[:3])}).",
                "Remove NULL, EXPORT, anonymous, RC4, DES, 3DES and MD5 suites (RFC 9325 "
                "section 4.1; RFC 7465; Mozilla intermediate configuration).",
                table="tls",
                count=len(g),
                **scope,
            )
        )
    for scope, g in _per_server(h2):
        out.append(
            _row(
                "tls_h2_blocklisted_cipher",
                "security",
                "medium",
                g.uid,
                f"{_plural(len(g), 'HTTP/2 handshake')} with {scope['server']} selected a suite "
                f"on the HTTP/2 block list ({', '.join(sorted(set(g.cipher.astype(str)))[:3])}).",
                "Select an (EC)DHE AEAD suite for HTTP/2; peers may end the connection with "
                "INADEQUATE_SECURITY (RFC 9113 section 9.2.2; RFC 7540 Appendix A).",
                table="tls",
                count=len(g),
                **scope,
            )
        )
    for scope, g in _per_server(nofs):
        out.append(
            _row(
                "tls_no_forward_secrecy",
                "security",
                "medium",
                g.uid,
                f"{_plural(len(g), 'handshake')} with {scope['server']} used RSA key exchange "
                f"({', '.join(sorted(set(g.cipher.astype(str)))[:3])}): no forward secrecy.",
                "Prefer ECDHE or DHE key exchange (RFC 9325 section 4.1; Mozilla intermediate "
                "lists no RSA key-exchange suite).",
                table="tls",
                count=len(g),
                **scope,
            )
        )
    return out


def weak_ciphers_offered(t: Tables, th: Mapping[str, float]) -> list[Row]:
    # (only the columns used: groups of a 60-column frame cost ~8x more to take apart)
    tls = t.tls.loc[
        (t.tls.weak_ciphers_offered > 0).fillna(False).to_numpy(),
        [*_KEYS, "server_name", "uid", "weak_ciphers_offered"],
    ]
    return [
        _row(
            "tls_weak_ciphers_offered",
            "security",
            "low",
            g.uid,
            f"{scope['client']} offered weak suites (insecure or under 112-bit security) in "
            f"{_plural(len(g), 'ClientHello')} to {scope['server']} "
            f"(up to {int(g.weak_ciphers_offered.max()):,} each).",
            "Remove weak suites from the client's offer so no server can pick them "
            "(RFC 9325 section 4.1; Mozilla intermediate configuration).",
            table="tls",
            count=len(g),
            **scope,
        )
        for scope, g in _per_server(tls, client=True)
    ]


def weak_dh(t: Tables, th: Mapping[str, float]) -> list[Row]:
    tls = t.tls[(t.tls.dh_prime_bits < th["dh_min_bits"]).fillna(False)]
    return [
        _row(
            "tls_weak_dh",
            "security",
            "high" if int(g.dh_prime_bits.min()) < 1024 else "medium",
            g.uid,
            f"{_plural(len(g), 'DHE handshake')} with {scope['server']} used a "
            f"{int(g.dh_prime_bits.min())}-bit group (under {th['dh_min_bits']:g}).",
            "Use DHE groups of 2048 bits or more (ffdhe2048, RFC 7919), or ECDHE "
            "(RFC 9325 section 4.1; Mozilla intermediate configuration).",
            table="tls",
            count=len(g),
            **scope,
        )
        for scope, g in _per_server(tls)
    ]


def _name_matches(name: str, cn: str, san: str) -> bool:
    """RFC 6125 section 6.4: the SNI against the SAN DNS names (the CN only without SANs); a
    wildcard covers one left-most label."""
    name = name.lower().rstrip(".")
    ids = [x.strip().lower() for x in san.split(",") if x.strip()] or [cn.strip().lower()]
    for pat in ids:
        pat = pat.removeprefix("dns:").rstrip(".")
        if pat == name:
            return True
        if pat.startswith("*.") and "." in name and name.split(".", 1)[1] == pat[2:]:
            return True
    return False


def certificates(t: Tables, th: Mapping[str, float]) -> list[Row]:
    tls = t.tls[t.tls.cert_not_after.notna() | t.tls.cert_subject_cn.notna()]
    checks: list[tuple[str, str, pd.Series, str, str]] = [
        (
            "cert_expired",
            "high",
            (tls.cert_not_after < tls.ts).fillna(False),
            "a certificate that had expired at the time of the handshake",
            "Renew the certificate (RFC 5280 section 4.1.2.5, validity).",
        ),
        (
            "cert_not_yet_valid",
            "medium",
            (tls.cert_not_before > tls.ts).fillna(False),
            "a certificate not yet valid at the time of the handshake",
            "Check the certificate's notBefore and the server's clock (RFC 5280 section 4.1.2.5).",
        ),
        (
            "cert_self_signed",
            "medium",
            _bool(tls.cert_self_signed),
            "a self-signed certificate",
            "Use a certificate issued by a CA the clients trust (RFC 5280 section 6; "
            "Mozilla server-side TLS guidelines).",
        ),
    ]
    sni = tls.server_name.fillna("").astype(str)
    has_cert = tls.cert_subject_cn.notna() | tls.cert_san.notna()
    mism = pd.Series(
        [
            bool(n) and bool(h) and not _name_matches(n, str(cn or ""), str(san or ""))
            for n, h, cn, san in zip(
                sni,
                has_cert,
                tls.cert_subject_cn.astype(object).where(tls.cert_subject_cn.notna(), ""),
                tls.cert_san.astype(object).where(tls.cert_san.notna(), ""),
                strict=True,
            )
        ],
        index=tls.index,
        dtype=bool,
    )
    checks.append(
        (
            "cert_name_mismatch",
            "medium",
            mism,
            "a certificate whose names do not cover the SNI",
            "Serve a certificate whose subjectAltName covers the requested name (RFC 6125 "
            "section 6.4; RFC 9110 section 4.3.4).",
        )
    )
    out = []
    for kind, sev, mask, what, advice in checks:
        for scope, g in _per_server(tls[mask.to_numpy()]):
            names = sorted(set(g.server_name.dropna().astype(str)))[:3]
            out.append(
                _row(
                    kind,
                    "security",
                    sev,
                    g.uid,
                    f"{scope['server']} presented {what} in {_plural(len(g), 'handshake')}"
                    + (f" (SNI {', '.join(names)})" if names else "")
                    + ".",
                    advice,
                    table="tls",
                    count=len(g),
                    **scope,
                )
            )
    return out


def _flagged(http: pd.DataFrame, names: Mapping[str, str]) -> pd.DataFrame:
    """The http rows whose flags include any of ``names``, with ``found``: those flags (a
    vectorised match first; only matching rows are split in Python)."""
    pattern = "(?:^|,)(?:" + "|".join(names) + ")(?:,|$)"
    mask = http["http_flags"].str.contains(pattern, regex=True).fillna(False).astype(bool)
    h = http[mask.to_numpy()]
    found = [[f for f in str(v).split(",") if f in names] for v in h["http_flags"]]
    return h.assign(found=pd.Series(found, index=h.index, dtype=object))


# http flags (pcapan/analysis/http.py) for credentials a request carried -> what they are.
CREDENTIAL_FLAGS = {
    "auth_basic": "Basic credentials",
    "auth_digest": "Digest credentials",
    "cookie": "cookies",
}


def cleartext_credentials(t: Tables, th: Mapping[str, float]) -> list[Row]:
    """Requests with Authorization Basic/Digest or a Cookie on connections without TLS (plain
    HTTP: anyone on the path reads them; Basic's password is only base64)."""
    h = _flagged(t.http, CREDENTIAL_FLAGS)
    h = h[~h.uid.isin(t.tls.uid).astype(bool)]
    if not len(h):
        return []
    out = []
    for scope, g in _per_server(_with_names(h, t)):
        found = [f for f in CREDENTIAL_FLAGS if any(f in fs for fs in g.found)]
        out.append(
            _row(
                "cleartext_credentials",
                "security",
                "high" if "auth_basic" in found else "medium",
                g.uid,
                f"{_plural(len(g), 'request')} to {scope['server']} sent "
                f"{_and([CREDENTIAL_FLAGS[f] for f in found])} over plain HTTP.",
                "Serve the site over HTTPS only (Basic sends the password in the clear, RFC 7617 "
                "section 4; cookies: the Secure attribute, RFC 6265 section 4.1.2.5).",
                table="http",
                count=len(g),
                **scope,
            )
        )
    return out


# http flags (pcapan/proto/http1.py) that are request-smuggling indicators (RFC 9112 6.3).
SMUGGLING_FLAGS = {
    "te_and_cl": "both Content-Length and Transfer-Encoding",
    "cl_mismatch": "differing Content-Lengths",
    "cl_invalid": "an invalid Content-Length",
    "te_not_chunked": "a Transfer-Encoding not ending in chunked",
    "te_chunked_twice": "chunked applied twice",
}


def smuggling(t: Tables, th: Mapping[str, float]) -> list[Row]:
    h = _flagged(t.http, SMUGGLING_FLAGS)
    if not len(h):
        return []
    out = []
    for scope, g in _per_server(_with_names(h, t)):
        found = sorted({f for fs in g.found for f in fs})
        out.append(
            _row(
                "request_smuggling",
                "security",
                "high",
                g.uid,
                f"{_plural(len(g), 'exchange')} with {scope['server']} framed a body "
                f"ambiguously: {'; '.join(SMUGGLING_FLAGS[f] for f in found)} "
                f"(flags {', '.join(found)}).",
                "Reject such messages at every hop: they let a front end and a back end disagree "
                "where a request ends (RFC 9112 section 6.3, 11.2).",
                table="http",
                count=len(g),
                **scope,
            )
        )
    return out


KINDS: tuple[Kind, ...] = (
    no_keep_alive,
    missed_reuse,
    pipelining_hol,
    slow_server,
    tls_resumption_missed,
    expect_continue,
    parallel_connections,
    slow_start,
    retransmissions,
    trace_enabled,
    connect_port,
    upgrade_tls,
    cleartext_credentials,
    tls_version,
    tls_cipher,
    weak_ciphers_offered,
    weak_dh,
    certificates,
    smuggling,
)


def findings(tables: Tables, thresholds: Mapping[str, float] | None = None) -> pd.DataFrame:
    """The findings table of ``tables``: one row per kind and scope, the most severe first."""
    th = dict(THRESHOLDS)
    for k, v in (thresholds or {}).items():
        key = k.lower().removeprefix("findings_")
        if key not in THRESHOLDS:
            raise ValueError(f"unknown threshold {k!r} (known: {', '.join(THRESHOLDS)})")
        th[key] = float(v)
    rows = [r for kind in KINDS for r in kind(tables, th)]
    cols = [c.name for c in FINDINGS]
    if not rows:
        return pd.DataFrame(columns=cols)
    df = pd.DataFrame(rows)[cols]
    rank = df.severity.map({s: i for i, s in enumerate(SEVERITIES)})
    order = np.lexsort((df.kind.to_numpy(), -df["occurrences"].to_numpy(), -rank.to_numpy()))
    return df.iloc[order].reset_index(drop=True)


def severity_counts(df: pd.DataFrame) -> dict[str, int]:
    """Findings per severity, most severe first (those with none left out)."""
    counts = df.severity.value_counts() if len(df) else pd.Series(dtype=np.int64)
    return {s: int(counts[s]) for s in reversed(SEVERITIES) if s in counts}
