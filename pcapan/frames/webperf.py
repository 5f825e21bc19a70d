"""What HTTP/1.1's speed-ups did on the wire, derived from the tables (no packets needed).

* The round-trip budget of each connection's first request: TCP handshake, TLS handshake,
  request to first response byte, counted in round trips from the flights the capture shows
  (``tcp``: 1 when the handshake was seen; ``tls``: the tls table's ``handshake_rtts``; the
  request: 1 when a response came) and in seconds, with the label of the expected count.
* Per request: round trips to its first byte (1 on a reused connection), the idle gap before it,
  head-of-line blocking behind earlier pipelined responses.
* Per connection: requests carried, idle gaps, who closed and how long after the last response
  (an estimate of the server's keep-alive timeout), pipelining depth and HOL waits, whether the
  pipelined responses came in order and whether the server serialised them.
* Per client-server pair (``servers``) and per client (``clients``): connections, requests,
  reuse, the most connections open at once, and missed reuse: a new connection opened while
  another one from the same client to the same server was open and idle (HTTP, or HTTPS judged
  by its application-data exchanges), or while an HTTP/2 one was open. The count is strict
  (idle longer than a threshold tied to the connection's RTT, and still idle when the new
  connection's request went out: see :func:`missed_reuse`); the loose count is kept apart.

Everything here is vectorised over the tables or loops over connections, never packets.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from pcapan.config import (
    PIPELINE_SERIAL_MIN_GAP_S,
    PIPELINE_SERIAL_THINK_SHARE,
    REUSE_IDLE_FLOOR_S,
    REUSE_IDLE_RTTS,
)
from pcapan.frames.schema import CLIENTS, SERVERS

# Expected round trips to the first response byte (the table, RFC 8446 / RFC 5246).
EXPECTED_RTTS = {
    "TCP": 2,
    "TCP+TLS1.2 full": 4,
    "TCP+TLS1.2 resumed": 3,
    "TCP+TLS1.3 full": 3,
    "TCP+TLS1.3 PSK": 3,
    "TCP+TLS1.3 HRR": 4,
    "TCP+TLS1.3 0-RTT": 2,
}
_NS = 1e9


def _tls_mode(t: pd.DataFrame) -> pd.Series:
    """The handshake kind of each tls row, as the budget labels name it."""
    v13 = t.version.fillna("").str.startswith("TLSv13")
    v12 = t.version.fillna("").isin(["TLSv12", "TLSv11", "TLSv10", "SSLv3"])
    mode = pd.Series(pd.NA, index=t.index, dtype="string")
    mode[v12] = np.where(
        t.resumed[v12].fillna(False).astype(bool), "TCP+TLS1.2 resumed", "TCP+TLS1.2 full"
    )
    mode[v13] = "TCP+TLS1.3 full"
    mode[v13 & (t.resumption == "psk").fillna(False)] = "TCP+TLS1.3 PSK"
    mode[v13 & t.hello_retry_request.fillna(False).astype(bool)] = "TCP+TLS1.3 HRR"
    mode[v13 & t.early_data_accepted.fillna(False).astype(bool)] = "TCP+TLS1.3 0-RTT"
    return mode


def _isin(s: pd.Series, values: pd.Index | pd.Series) -> pd.Series:
    """``s.isin(values)`` for a string column, in Arrow: pandas' own isin on Arrow strings makes
    a Python scalar of every value first (37 ms for 4,400 uids against 0.6 ms here)."""
    arr = pa.array(s)
    vs = pa.array(values)
    if isinstance(vs, pa.ChunkedArray):
        vs = vs.combine_chunks()
    if vs.type != arr.type:
        vs = vs.cast(arr.type)
    mask = pc.is_in(arr, value_set=vs).fill_null(False)
    return pd.Series(mask.to_numpy(zero_copy_only=False), index=s.index, dtype=bool)


def http_columns(http: pd.DataFrame, conns: pd.DataFrame) -> pd.DataFrame:
    """The http table with ``rtts_to_first_byte``, ``idle_before_s``, ``hol_wait_s`` and
    ``resp_gap_s``."""
    out = http.copy()
    h = _by_connection(http)
    same = h.uid.eq(h.uid.shift())
    prev_end = h.ts_response_end.shift().where(same)
    idle = (h.ts_request_start - prev_end).dt.total_seconds()
    # HOL: a pipelined request whose response could only start after the previous one ended.
    hol = (prev_end - h.ts_request_end).dt.total_seconds().clip(lower=0)
    piped = h.pipelined.fillna(False).astype(bool) & same
    hol = hol.where(piped)
    # A pipelined response's start after the previous response's end (serialisation shows here).
    gap = (h.ts_response_start - prev_end).dt.total_seconds().where(piped)
    budget = conns.set_index("uid").budget_rtts
    first = h.trans_depth.eq(1)
    rtts = pd.Series(pd.NA, index=h.index, dtype="Int64")
    rtts[first] = h.uid[first].map(budget).astype("Int64")
    rtts[~first & h.status_code.notna()] = 1  # on a connection already open: one round trip
    out["rtts_to_first_byte"] = rtts.reindex(out.index)
    out["idle_before_s"] = idle.where(idle >= 0).reindex(out.index).astype("float64")
    out["hol_wait_s"] = hol.reindex(out.index).astype("float64")
    out["resp_gap_s"] = gap.reindex(out.index).astype("float64")
    return out


# The http columns the derived timing columns read: the sorted copy holds only these.
_TIMING = [
    "uid",
    "trans_depth",
    "ts_request_start",
    "ts_request_end",
    "ts_response_start",
    "ts_response_end",
    "pipelined",
    "ttfb_s",
    "status_code",
]


# (and those of the tls and request rows connection_columns reads; copies hold only these)
_TLS_USED = [
    "uid",
    "version",
    "resumed",
    "resumption",
    "hello_retry_request",
    "early_data_accepted",
    "handshake_rtts",
    "ts_client_hello",
    "ts_handshake_done",
    "ts_first_request",
    "ts_first_response",
]
_REQ_USED = ["uid", "pipelined", "pipeline_depth", "request_connection_header"]


def _by_connection(http: pd.DataFrame) -> pd.DataFrame:
    """The http rows' timing columns, ordered by connection and position on it."""
    return http[_TIMING].sort_values(["uid", "trans_depth"])


def connection_columns(conns: pd.DataFrame, http: pd.DataFrame, tls: pd.DataFrame) -> pd.DataFrame:
    """The connections table with the budget, reuse and pipelining columns (schema CONN_WEB)."""
    out = conns.copy(deep=False)
    uid = out.uid
    t = (
        tls.loc[~tls.in_tunnel.fillna(False).astype(bool), _TLS_USED]
        .drop_duplicates("uid")
        .set_index("uid")
    )
    req = http.loc[http.method.notna(), _REQ_USED]
    g = req.groupby("uid")
    out["requests"] = pd.array(uid.map(g.size()).fillna(0).astype(np.int64), dtype="Int64")
    first = (
        http.loc[http.trans_depth == 1, ["uid", "ttfb_s", "ts_response_start"]]
        .drop_duplicates("uid")
        .set_index("uid")
    )

    # -- the budget ---------------------------------------------------------------------------
    has_tcp = out.initial_rtt_s.notna()
    mode = uid.map(_tls_mode(t)) if len(t) else pd.Series(pd.NA, index=out.index, dtype="string")
    is_tls = _isin(uid, t.index)
    mode = mode.astype("string").where(
        is_tls, pd.Series("TCP", index=out.index, dtype="string").where(_isin(uid, first.index))
    )
    tls_rtts = uid.map(t.handshake_rtts) if len(t) else pd.Series(pd.NA, index=out.index)
    tls_s = (
        uid.map((t.ts_handshake_done - t.ts_client_hello).dt.total_seconds()) if len(t) else np.nan
    )
    # First request and its response: the http row of depth 1, or the TLS application data.
    ttfb_http = uid.map(first.ttfb_s) if len(first) else pd.Series(np.nan, index=out.index)
    nat = pd.Series(pd.NaT, index=out.index, dtype="datetime64[ns, UTC]")
    resp_http = pd.to_datetime(uid.map(first.ts_response_start), utc=True) if len(first) else nat
    if len(t):
        ttfb_tls = uid.map((t.ts_first_response - t.ts_first_request).dt.total_seconds())
        resp_tls = pd.to_datetime(uid.map(t.ts_first_response), utc=True)
    else:
        ttfb_tls = pd.Series(np.nan, index=out.index)
        resp_tls = nat
    ttfb = ttfb_http.where(ttfb_http.notna(), ttfb_tls).astype("float64")
    resp_start = resp_http.where(resp_http.notna(), resp_tls)
    answered = resp_start.notna()
    n = pd.Series(0, index=out.index, dtype="Int64")
    n = n + has_tcp.astype(int)
    n = n + pd.array(tls_rtts.where(is_tls, 0).fillna(0).astype(int), dtype="Int64")
    n = n + answered.astype(int)
    complete = has_tcp & answered & (~is_tls | tls_rtts.notna())
    out["budget_rtts"] = n.where(complete, pd.NA).astype("Int64")
    out["budget_expected_rtts"] = mode.map(EXPECTED_RTTS).astype("Int64").where(complete, pd.NA)
    out["budget_tcp_s"] = out.initial_rtt_s.where(complete)
    out["budget_tls_s"] = pd.Series(tls_s, index=out.index, dtype="float64").where(
        complete & is_tls
    )
    out["budget_ttfb_s"] = ttfb.where(complete)
    out["budget_think_s"] = (ttfb - out.initial_rtt_s).where(complete)
    out["budget_total_s"] = (
        (resp_start - out.ts).dt.total_seconds().where(complete).astype("float64")
    )
    label = mode + ": " + out.budget_rtts.astype("string") + " RTT"
    differs = complete & out.budget_rtts.ne(out.budget_expected_rtts).fillna(False)
    label = label.where(
        ~differs, label + " (expected " + out.budget_expected_rtts.astype("string") + ")"
    )
    out["budget_label"] = label.where(complete).astype("string")

    # -- reuse: idle gaps, who closed, how long after the last response -----------------------
    h = _by_connection(http)
    same = h.uid.eq(h.uid.shift())
    idle = (h.ts_request_start - h.ts_response_end.shift()).dt.total_seconds().where(same)
    gi = idle.groupby(h.uid)
    out["idle_gap_mean_s"] = uid.map(gi.mean()).astype("float64")
    out["idle_gap_max_s"] = uid.map(gi.max()).astype("float64")
    last_end = (
        pd.to_datetime(uid.map(h.groupby("uid").ts_response_end.max()), utc=True) if len(h) else nat
    )
    out["close_after_last_response_s"] = (
        (out.ts_close - last_end).dt.total_seconds().astype("float64")
    )
    req_close = req.request_connection_header.fillna("").str.lower().str.contains("close")
    resp_close = http.response_connection_header.fillna("").str.lower().str.contains("close")
    asked_client = _isin(uid, req.uid[req_close])
    asked_server = _isin(uid, http.uid[resp_close])
    cause = pd.Series(pd.NA, index=out.index, dtype="string")
    flag_by = (
        out.close_flag.astype("string")
        + "_"
        + out.closed_by.map({"orig": "client", "resp": "server"}).astype("string")
    )
    cause = cause.where(out.closed_by.isna(), flag_by)
    cause = cause.where(~asked_server, "connection_close_server")
    cause = cause.where(~asked_client, "connection_close_client")
    cause = cause.where(
        out.closed_by.notna()
        | ~out.close_reason.isin(["idle_timeout", "end_of_capture", "evicted"]),
        out.close_reason.astype("string"),
    )
    out["close_cause"] = cause

    # -- pipelining ------------------------------------------------------------------------------
    pipe = req[req.pipelined.fillna(False).astype(bool)]
    out["pipelined_requests"] = pd.array(
        uid.map(pipe.groupby("uid").size()).fillna(0).astype(np.int64), dtype="Int64"
    )
    out["max_pipeline_depth"] = pd.array(uid.map(g.pipeline_depth.max()), dtype="Int64")
    prev_end = h.ts_response_end.shift().where(same)
    hol = (
        (prev_end - h.ts_request_end)
        .dt.total_seconds()
        .clip(lower=0)
        .where(h.pipelined.fillna(False).astype(bool) & same)
    )
    gh = hol.groupby(h.uid)
    out["hol_wait_total_s"] = uid.map(gh.sum(min_count=1)).astype("float64")
    out["hol_wait_max_s"] = uid.map(gh.max()).astype("float64")
    in_order, serialised = _pipelining(h, same, prev_end, out)
    out["pipelining_in_order"] = pd.array(uid.map(in_order), dtype="boolean")
    out["pipelining_serialised"] = pd.array(uid.map(serialised), dtype="boolean")
    return out


def _pipelining(
    h: pd.DataFrame, same: pd.Series, prev_end: pd.Series, conns: pd.DataFrame
) -> tuple[pd.Series, pd.Series]:
    """Per connection with answered pipelined requests (``h``: the http rows sorted by uid and
    depth, ``prev_end``: the previous response's end on the same connection):

    * in order: every pipelined response started at or after the previous one ended. HTTP/1.1
      pairs responses with requests in order, so what can be seen is that none overlapped.
    * serialised: the server only started request N+1 after sending response N. Then the gap
      between the two responses is about one think time; a server that worked on the requests
      in parallel sends them back to back. Only requests the server already held when it ended
      response N count (``hol_wait_s`` >= ``rtt_syn_s``, the capture point to the server and
      back: the request had reached it): for a later one the gap includes network time. The
      rule: the median gap >= PIPELINE_SERIAL_MIN_GAP_S (1 ms: below that the gaps come from the
      sender's kernel) and >= PIPELINE_SERIAL_THINK_SHARE (half) of the median think time of the
      connection's non-pipelined requests (``ttfb_s - rtt_syn_s``, the first request's at
      least). A serialising server whose work is quicker than that, or hidden behind a large
      previous response still draining from its socket buffer, reads False: no wait visible.
    """
    piped = h.pipelined.fillna(False).astype(bool) & same
    gap = (h.ts_response_start - prev_end).dt.total_seconds().where(piped)
    rsyn = (
        h.uid.map(pd.Series(conns.rtt_syn_s.to_numpy(), index=conns.uid.to_numpy()))
        .astype("float64")
        .fillna(0.0)
    )
    held = ((prev_end - h.ts_request_end).dt.total_seconds() >= rsyn).fillna(False)
    solo = ~h.pipelined.fillna(False).astype(bool)
    think = (h.ttfb_s - rsyn).clip(lower=0).where(solo)
    measured = gap.notna()
    in_order = (gap >= 0).where(measured).groupby(h.uid[measured]).all()
    gap_med = gap.where(held & measured).groupby(h.uid).median().dropna()
    think_med = think.groupby(h.uid).median().reindex(gap_med.index).fillna(0.0)
    bar = np.maximum(PIPELINE_SERIAL_MIN_GAP_S, PIPELINE_SERIAL_THINK_SHARE * think_med)
    return in_order.astype(bool), gap_med >= bar


def _server_name(conns: pd.DataFrame, http: pd.DataFrame, tls: pd.DataFrame) -> pd.Series:
    """Host header of the connection's first request, else the TLS SNI, else empty."""
    host = http.sort_values("trans_depth").drop_duplicates("uid").set_index("uid").host
    sni = tls.drop_duplicates("uid").set_index("uid").server_name
    name = conns.uid.map(host).astype("string")
    return name.where(name.notna(), conns.uid.map(sni).astype("string")).fillna("")


def _max_open_per_group(
    code: np.ndarray, starts: np.ndarray, ends: np.ndarray, n_groups: int
) -> np.ndarray:
    """Per group, the most of its intervals open at once (a sweep over starts and ends, an end
    before a start at the same instant)."""
    out = np.zeros(n_groups, dtype=np.int64)
    if not code.shape[0]:
        return out
    g = np.concatenate([code, code])
    t = np.concatenate([starts, ends])
    d = np.concatenate([np.ones(code.shape[0], np.int64), -np.ones(code.shape[0], np.int64)])
    order = np.lexsort((d, t, g))
    g, d = g[order], d[order]
    run = np.cumsum(d)
    first = np.r_[True, g[1:] != g[:-1]]
    base = np.maximum.accumulate(
        np.where(first, np.r_[0, run[:-1]], 0)
    )  # running total before each group
    # (base is right because every group's running sum returns to zero at its end)
    level = run - base
    out[g[first]] = np.maximum.reduceat(level, np.nonzero(first)[0])
    return out


def pairs(conns: pd.DataFrame, http: pd.DataFrame, tls: pd.DataFrame) -> pd.DataFrame:
    """Connections with their pair key (client, server address, port, name), its code, and the
    interval they were open (start, first FIN/RST or last packet) in ns: the input of
    :func:`missed_reuse`, :func:`servers` and :func:`clients`."""
    c = conns.assign(server_name=_server_name(conns, http, tls))
    end = c.ts_close.where(c.ts_close.notna(), c.ts + pd.to_timedelta(c.duration_s, unit="s"))
    c = c.assign(t0=c.ts.astype("int64"), t1=end.astype("int64"))
    # HTTPS: application-data exchanges (an estimate of the requests) and, for ALPN h2, when the
    # handshake completed (from then on the client knew it could multiplex; never otherwise).
    t = tls[~tls.in_tunnel.fillna(False).astype(bool)].drop_duplicates("uid").set_index("uid")
    c["tls_exchanges"] = (
        pd.array(c.uid.map(t.app_exchanges), dtype="Int64")
        if len(t)
        else pd.array([pd.NA] * len(c), dtype="Int64")
    )
    never = np.iinfo(np.int64).max
    if len(t):
        h2 = t.ts_handshake_done[t.next_protocol.eq("h2").fillna(False).astype(bool)].dropna()
        at = pd.Index(h2.index).get_indexer(c.uid)  # -1: not h2, picks the appended never
        c["h2_ready"] = np.append(h2.astype("int64").to_numpy(), never)[at]
    else:
        c["h2_ready"] = np.full(len(c), never, dtype=np.int64)
    c["pair"] = c.groupby(
        ["orig_h", "resp_h", "resp_p", "server_name"], sort=True, dropna=False
    ).ngroup()
    return c


def missed_reuse(
    c: pd.DataFrame,
    http: pd.DataFrame,
    exchanges: Mapping[str, tuple[int, ...]] | None = None,
    *,
    idle_rtts: float = REUSE_IDLE_RTTS,
    idle_floor_s: float = REUSE_IDLE_FLOOR_S,
) -> pd.DataFrame:
    """New connections opened while another connection from the same client to the same server
    (address, port and name) was open and could have carried the request. One row per such new
    connection, with the open one it could have used and why (``reason``):

    * ``idle``: the open connection's HTTP is visible; it had answered at least one request and
      had no request in flight.
    * ``idle_tls``: HTTPS (requests encrypted), judged by its application-data exchanges
      (``exchanges``: uid -> flattened start, end pairs in ns from the tls records, end -1 when
      unanswered): at least one exchange answered, none in flight.
    * ``h2``: the open connection had negotiated HTTP/2 by ALPN (its handshake completed before
      the new connection started). HTTP/2 multiplexes requests on one connection, so any new
      connection to the same server while it is open is missed reuse, busy or not. TLS 1.3
      encrypts the selected ALPN: such connections are judged by their exchanges.

    ``strict`` says whether the open connection was really available (the count the tables and
    the summary report): idle for at least its threshold (``threshold_s``: ``idle_rtts`` times
    its handshake RTT ``initial_rtt_s``, at least ``idle_floor_s``) when the new connection
    opened, and still idle and open until the new connection's first request went out (its
    first HTTP request, or its first application-data exchange on HTTPS; its opening when it
    sent none). Without that, the "idle" connection is usually another process's keep-alive
    connection between two back-to-back requests of its owner (gaps of microseconds to a few
    ms), which no other process could have used: the loose rows are a low-confidence count only.
    An HTTP/2 connection is strict when it is still open at the new connection's first request.
    For each new connection a strict candidate is preferred; ``idle_s`` is how long the chosen
    one had been idle when the new connection opened (empty for h2).
    """
    cols = [
        "ts",
        "uid",
        "idle_uid",
        "reason",
        "orig_h",
        "resp_h",
        "resp_p",
        "server_name",
        "idle_s",
        "threshold_s",
        "strict",
    ]
    sizes = c.pair.map(c.pair.value_counts())
    c = c[sizes >= 2].sort_values(["pair", "t0"])
    if not len(c):
        return pd.DataFrame(columns=cols)
    # Each connection's exchanges as arrays: request starts, response ends (never: in flight).
    never = np.iinfo(np.int64).max
    ex = http[http.ts_request_start.notna() & _isin(http.uid, c.uid)].sort_values(
        ["uid", "ts_request_start"]
    )
    ex_uid = ex.uid.to_numpy()
    ex_s = ex.ts_request_start.astype("int64").to_numpy()
    ex_e = np.where(
        ex.ts_response_end.isna().to_numpy(), never, ex.ts_response_end.astype("int64").to_numpy()
    )
    bounds = (
        np.r_[0, np.nonzero(ex_uid[1:] != ex_uid[:-1])[0] + 1, ex_uid.shape[0]]
        if ex_uid.shape[0]
        else []
    )
    busy: dict[str, tuple[np.ndarray, np.ndarray, int, str]] = {}
    for b0, b1 in zip(bounds[:-1], bounds[1:], strict=False):
        e = ex_e[b0:b1]
        answered = e[e != never]
        busy[ex_uid[b0]] = (
            ex_s[b0:b1],
            e,
            int(answered.min()) if answered.shape[0] else never,
            "idle",
        )
    for u in c.uid[c.tls_exchanges.notna()] if exchanges else ():
        times = exchanges.get(u) if exchanges is not None else None
        if u in busy or not times:
            continue  # HTTP visible (judged by its requests), or no exchange kept
        pairs_ = np.asarray(times, dtype=np.int64).reshape(-1, 2)
        e = np.where(pairs_[:, 1] < 0, never, pairs_[:, 1])
        answered = e[e != never]
        busy[u] = (pairs_[:, 0], e, int(answered.min()) if answered.shape[0] else never, "idle_tls")
    uid, pair = c.uid.to_numpy(), c.pair.to_numpy()
    t0, t1, h2_list = c.t0.tolist(), c.t1.tolist(), c.h2_ready.tolist()
    rtt = (
        c["initial_rtt_s"].astype("float64").fillna(0.0).to_numpy()
        if "initial_rtt_s" in c
        else np.zeros(len(c))
    )
    thr = np.maximum(idle_rtts * rtt, idle_floor_s)
    thr_ns = (thr * _NS).astype(np.int64).tolist()
    # When each new connection's first request went out (its opening when none is visible).
    first_req = [int(busy[u][0].min()) if u in busy else t for u, t in zip(uid, t0, strict=True)]
    gb = np.r_[0, np.nonzero(pair[1:] != pair[:-1])[0] + 1, pair.shape[0]]
    hits: list[tuple[int, int, str, float, bool]] = []
    for b0, b1 in zip(gb[:-1].tolist(), gb[1:].tolist(), strict=True):
        # A sweep in opening order: the connections still open when connection i opens are the
        # only candidates (a pair may hold thousands of connections, a few open at once).
        open_: list[int] = []
        for i in range(b0, b1):
            ti, ri = t0[i], first_req[i]
            open_ = [j for j in open_ if t1[j] > ti]
            loose: tuple[int, int, str, float, bool] | None = None
            for j in open_:
                if not t0[j] < ti:
                    continue  # opened at the same instant
                if h2_list[j] < ti:
                    cand = (i, j, "h2", float("nan"), t1[j] >= ri)
                else:
                    b = busy.get(uid[j])
                    if b is None or b[2] > ti:
                        continue  # exchanges not visible, or it had not answered anything yet
                    s_, e_ = b[0], b[1]
                    if ((s_ <= ti) & (e_ >= ti)).any():
                        continue  # a request in flight
                    done = e_[e_ <= ti]
                    idle_ns = ti - int(done.max())
                    used_before = bool(((s_ > ti) & (s_ <= ri)).any())
                    ok = idle_ns >= thr_ns[j] and not used_before and t1[j] >= ri
                    cand = (i, j, b[3], idle_ns / _NS, ok)
                if cand[4]:
                    loose = cand
                    break
                if loose is None:
                    loose = cand
            if loose is not None:
                hits.append(loose)
            open_.append(i)
    if not hits:
        return pd.DataFrame(columns=cols)
    rows = c.iloc[[h[0] for h in hits]]
    return pd.DataFrame(
        {
            "ts": rows.ts.to_numpy(),
            "uid": rows.uid.to_numpy(),
            "idle_uid": [uid[h[1]] for h in hits],
            "reason": [h[2] for h in hits],
            "orig_h": rows.orig_h.to_numpy(),
            "resp_h": rows.resp_h.to_numpy(),
            "resp_p": rows.resp_p.to_numpy(),
            "server_name": rows.server_name.to_numpy(),
            "idle_s": np.array([h[3] for h in hits], dtype=np.float64),
            "threshold_s": np.array([thr[h[1]] for h in hits], dtype=np.float64),
            "strict": np.array([h[4] for h in hits], dtype=bool),
        }
    )[cols]


def servers(c: pd.DataFrame, missed: pd.DataFrame) -> pd.DataFrame:
    """Per client-server pair (``c``: :func:`pairs`): connections, requests, reuse, parallelism,
    missed reuse, budget."""
    if not len(c):
        return pd.DataFrame(columns=[col.name for col in SERVERS])
    c = c.assign(
        used=(c.requests > 0).astype(np.int64),
        req=c.requests.astype(np.int64),
        b_rtts=c.budget_rtts.astype("float64"),
        tls_ex=c.tls_exchanges.fillna(0).astype(np.int64),
    )
    g = c.groupby("pair", sort=True)
    first = g.first()
    out = pd.DataFrame(
        {
            "orig_h": first.orig_h,
            "resp_h": first.resp_h,
            "resp_p": first.resp_p,
            "server_name": first.server_name,
            "connections": g.size(),
            "requests": g.req.sum(),
        }
    )
    used = g.used.sum()
    out["requests_per_conn_mean"] = (out.requests / used.where(used > 0)).astype("float64")
    out["requests_per_conn_max"] = g.req.max()
    out["reuse_ratio"] = ((out.requests - used) / out.requests.where(out.requests > 0)).astype(
        "float64"
    )
    n = int(c.pair.max()) + 1
    out["max_open_connections"] = _max_open_per_group(
        c.pair.to_numpy(), c.t0.to_numpy(), c.t1.to_numpy(), n
    )[out.index]
    # Missed reuse per pair: the new connections' pairs, counted.
    per_pair = c.set_index("uid").pair
    strict = (
        missed.strict.astype(bool) if "strict" in missed else pd.Series(True, index=missed.index)
    )
    for col, rows in (("missed_reuse", missed[strict]), ("missed_reuse_loose", missed)):
        miss = rows.uid.map(per_pair).value_counts() if len(rows) else pd.Series(dtype=np.int64)
        out[col] = out.index.map(miss).fillna(0).astype(np.int64)
    out["tls_exchanges"] = g.tls_ex.sum()
    out["budget_rtts_median"] = g.b_rtts.median()
    out["budget_total_median_s"] = g.budget_total_s.median()
    out["budget_ttfb_median_s"] = g.budget_ttfb_s.median()
    out["initial_rtt_median_s"] = g.initial_rtt_s.median()
    return out.reset_index(drop=True)[[col.name for col in SERVERS]]


def clients(conns: pd.DataFrame, srv: pd.DataFrame) -> pd.DataFrame:
    """Per client address (``conns``: :func:`pairs`): servers contacted, connections, requests,
    reuse, parallelism."""
    if not len(conns):
        return pd.DataFrame(columns=[c.name for c in CLIENTS])
    c = conns.assign(
        used=(conns.requests > 0).astype(np.int64),
        req=conns.requests.astype(np.int64),
        tls_ex=conns.tls_exchanges.fillna(0).astype(np.int64),
    )
    c["client"] = c.groupby("orig_h", sort=True).ngroup()
    g = c.groupby("client", sort=True)
    out = pd.DataFrame(
        {
            "orig_h": g.orig_h.first(),
            "connections": g.size(),
            "requests": g.req.sum(),
            "tls_exchanges": g.tls_ex.sum(),
        }
    )
    used = g.used.sum()
    out["reuse_ratio"] = ((out.requests - used) / out.requests.where(out.requests > 0)).astype(
        "float64"
    )
    n = int(c.client.max()) + 1
    out["max_open_connections"] = _max_open_per_group(
        c.client.to_numpy(), c.t0.to_numpy(), c.t1.to_numpy(), n
    )[out.index]
    pairs = srv.groupby("orig_h").size() if len(srv) else pd.Series(dtype=np.int64)
    out["servers"] = out.orig_h.map(pairs).fillna(0).astype(np.int64)
    for col in ("missed_reuse", "missed_reuse_loose"):
        miss = srv.groupby("orig_h")[col].sum() if len(srv) else pd.Series(dtype=np.int64)
        out[col] = out.orig_h.map(miss).fillna(0).astype(np.int64)
    return out.reset_index(drop=True)[[c.name for c in CLIENTS]]
