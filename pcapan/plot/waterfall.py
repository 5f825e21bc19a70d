"""The waterfall: one row per HTTP request (per connection for HTTPS), bars for the TCP
handshake, TLS handshake, request, wait (time to first byte) and download, as a browser's
network panel draws them.

A capture holds thousands of requests; the waterfall draws at most ``limit`` of them, chosen by
a stated rule, and says what it left out ("60 of 23,050 requests, slowest first"):

- default, when there are more rows than ``limit``: the slowest rows, where a row's time is from its first bar to its first response
  byte (for a connection's first request: SYN to first byte, i.e. the round-trip budget; for a
  later request on a reused connection: request start to first byte); rows never answered come
  last. Drawn slowest first, each row from its own start (its start in the capture is in the
  label), since the slowest requests of a long capture are seconds apart.
- ``since``/``until`` (a time window), ``server`` or ``uid`` (or all rows fit): the rows that
  match, in time order, the first ``limit``, drawn as a waterfall on one time axis (seconds since the capture's start;
  pauses between captures cut out and marked).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pcapan.config import WATERFALL_MAX_ROWS, WATERFALL_REQUESTS
from pcapan.errors import PcapanError
from pcapan.plot._base import PHASE_COLORS, check_limit, new_figure, no_data, server_label, short
from pcapan.plot._clock import CaptureClock

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.figure import Figure

    from pcapan.api import Result

# Height per row in inches: one line of small text with room between rows (labels never
# overprint); the figure grows with the rows, at most WATERFALL_MAX_ROWS of them.
ROW_IN = 0.28
PHASES = ("TCP", "TLS", "request", "wait", "download")
ORDERS = ("slowest", "time")
# Kept for callers of the earlier API (it counted connections; the limit now counts requests).
WATERFALL_CONNECTIONS = WATERFALL_REQUESTS
ROW_COLUMNS = ["label", "uid", *(f"{p}_{e}" for p in PHASES for e in ("start", "end"))]


class Selection:
    """The rows a waterfall draws and how they were chosen: ``rows`` (top to bottom; the phase
    columns, ``label``, ``uid``, ``start`` and ``to_first_byte_s``), ``matched`` (rows that
    passed the filters), ``available`` (rows of the whole capture), ``order`` and ``note``."""

    def __init__(
        self, rows: pd.DataFrame, matched: int, available: int, order: str, filters: str
    ) -> None:
        self.rows = rows
        self.matched = matched
        self.available = available
        self.order = order
        rule = "slowest first" if order == "slowest" else "in time order"
        note = f"{len(rows):,} of {matched:,} requests{filters}, {rule}"
        if matched != available:
            note += f" ({available:,} in the capture)"
        self.note = note


def all_rows(result: Result) -> pd.DataFrame:
    """Every row the waterfall could draw, in time order (connection start, then request), with
    the phase columns, ``uid``, ``order`` (connection's rank by start), ``depth`` and what the
    label and the server filter need (method, host, uri, resp_h, resp_p, sni).

    HTTP: one row per request; the connection's first request also carries its TCP handshake
    (first packet to the ACK of the SYN-ACK: ts + initial_rtt_s) and TLS handshake, if any
    (ts_client_hello to ts_handshake_done); request is ts_request_start..ts_request_end, wait
    ts_request_end..ts_response_start, download ts_response_start..ts_response_end.
    HTTPS and other connections without visible requests: one row with TCP and TLS; for TLS,
    wait is ts_first_request..ts_first_response and download runs from ts_first_response to the
    first FIN/RST (else the last packet): the encrypted response's end is not visible."""
    import numpy as np
    import pandas as pd

    c = result.connections.sort_values(["ts", "uid"], kind="stable").reset_index(drop=True)
    cols = [*ROW_COLUMNS, "order", "depth", "method", "host", "uri", "resp_h", "resp_p", "sni"]
    if not len(c):
        return pd.DataFrame(columns=cols)
    nat = pd.Series(pd.NaT, index=c.index, dtype=c.ts.dtype)
    end = c.ts_close.where(c.ts_close.notna(), c.ts + pd.to_timedelta(c.duration_s, unit="s"))
    tls = result.tls.drop_duplicates("uid").set_index("uid")
    hello = c.uid.map(tls.ts_client_hello) if len(tls) else nat
    done = c.uid.map(tls.ts_handshake_done) if len(tls) else nat
    sni = c.uid.map(tls.server_name) if len(tls) else pd.Series(None, index=c.index, dtype=object)
    conn = pd.DataFrame(
        {
            "uid": c.uid,
            "order": range(len(c)),
            "TCP_start": c.ts,
            "TCP_end": c.ts + pd.to_timedelta(c.initial_rtt_s, unit="s"),
            "TLS_start": hello,
            "TLS_end": done,
            "resp_h": c.resp_h,
            "resp_p": c.resp_p,
            "sni": sni,
        }
    )
    conn.loc[conn.TLS_end.isna(), ["TLS_start", "TLS_end"]] = pd.NaT
    # membership through Python sets: isin on Arrow-backed strings walks them one by one
    conn_uids = set(c.uid.tolist())
    hu = result.http.uid.tolist()
    h = result.http[np.fromiter((u in conn_uids for u in hu), dtype=bool, count=len(hu))]
    h = h.sort_values(["uid", "trans_depth"], kind="stable")
    req = pd.DataFrame(
        {
            "uid": h.uid,
            "depth": h.trans_depth.astype("float64"),
            "method": h.method,
            "host": h.host,
            "uri": h.uri,
            "request_start": h.ts_request_start,
            "request_end": h.ts_request_end,
            "wait_start": h.ts_request_end,
            "wait_end": h.ts_response_start,
            "download_start": h.ts_response_start,
            "download_end": h.ts_response_end,
        }
    )
    req.loc[req.wait_end.isna(), ["wait_start", "wait_end"]] = pd.NaT
    first = ~req.uid.duplicated()
    req = req.merge(conn, on="uid", how="left")
    req.loc[~first.to_numpy(), ["TCP_start", "TCP_end", "TLS_start", "TLS_end"]] = pd.NaT
    # connections without a visible request: one row each
    with_requests = set(h.uid.tolist())
    no_req = np.fromiter((u not in with_requests for u in c.uid.tolist()), dtype=bool, count=len(c))
    rest = c[no_req]
    r = conn[no_req].copy()
    r["depth"] = 0.0
    tr = rest.uid.map(tls.ts_first_request) if len(tls) else nat[rest.index]
    tf = rest.uid.map(tls.ts_first_response) if len(tls) else nat[rest.index]
    r["request_start"] = r["request_end"] = pd.Series(pd.NaT, index=r.index, dtype=c.ts.dtype)
    r["wait_start"], r["wait_end"] = tr.where(tf.notna()), tf.where(tr.notna())
    r["download_start"], r["download_end"] = tf, end[rest.index].where(tf.notna())
    for k in ("method", "host", "uri"):
        r[k] = None
    r["label"] = None
    out = pd.concat([req, r], ignore_index=True).sort_values(["order", "depth"], kind="stable")
    return out.reindex(columns=cols).reset_index(drop=True)


def _instant(value: object, clock: CaptureClock) -> tuple[str, float]:
    """A --since/--until value as ("s", axis seconds since the capture's start) or ("ns", an
    absolute timestamp): a number of seconds, or a date-time (ISO 8601; UTC when no zone)."""
    import pandas as pd

    if isinstance(value, (int, float)):
        return "s", float(value)
    text = str(value).strip()
    try:
        return "s", float(text)
    except ValueError:
        pass
    try:
        ts = pd.Timestamp(value)  # type: ignore[arg-type]
    except (ValueError, TypeError) as exc:
        raise PcapanError(
            f"not a time: {text!r} (seconds since the capture's start, or a date-time such as "
            "2026-01-02T03:04:05)"
        ) from exc
    if ts.tzinfo is None:
        ts = ts.tz_localize("UTC")
    return "ns", float(ts.value)


def select_rows(
    result: Result,
    *,
    limit: int | None = WATERFALL_REQUESTS,
    uid: str | None = None,
    server: str | None = None,
    since: object = None,
    until: object = None,
    order: str | None = None,
) -> Selection:
    """Choose the waterfall's rows (see the module's doc for the rules). ``limit``: rows drawn
    (requests, not connections; None: WATERFALL_MAX_ROWS); ``uid``: one connection; ``server``:
    rows whose Host, SNI, server address or address:port is this; ``since``/``until``: rows that
    start in this window (seconds since the capture's start, or a date-time); ``order``: slowest
    or time (default: slowest when rows are left out and no filter is given, else time)."""
    import numpy as np

    limit = check_limit(limit)
    if limit is None:
        limit = WATERFALL_MAX_ROWS
    if limit > WATERFALL_MAX_ROWS:
        raise PcapanError(
            f"a waterfall draws at most {WATERFALL_MAX_ROWS} rows (got limit {limit}): choose "
            "them with since/until, server or uid"
        )
    filtered = uid is not None or server is not None or since is not None or until is not None
    if order is not None and order not in ORDERS:
        raise PcapanError(f"order must be one of {', '.join(ORDERS)} (got {order!r})")
    rows = all_rows(result)
    available = len(rows)
    clock = CaptureClock.of(result)
    starts = rows[[f"{p}_start" for p in PHASES]].min(axis=1)
    rows["start"] = starts
    rows["start_s"] = clock.seconds(starts) if len(rows) else np.zeros(0)
    first_byte = (rows.download_start - starts).dt.total_seconds()
    rows["to_first_byte_s"] = first_byte
    keep = np.ones(len(rows), dtype=bool)
    said = []
    if uid is not None:
        m = (rows.uid == uid).to_numpy()
        if not m.any() and not (result.connections.uid == uid).any():
            raise PcapanError(f"no connection with uid {uid!r}")
        keep &= m
        said.append(f"of {uid}")
    if server is not None:
        keep &= _server_mask(rows, str(server))
        said.append(f"to {server}")
    for name, value, op in (("since", since, np.greater_equal), ("until", until, np.less)):
        if value is None:
            continue
        unit, x = _instant(value, clock)
        at = rows.start_s.to_numpy() if unit == "s" else rows.start.astype("int64").to_numpy()
        keep &= op(at, x) & rows.start.notna().to_numpy()
        said.append(f"{name} {value}{' s' if unit == 's' else ''}")
    sel = rows[keep]
    if order is None:  # slowest first only when rows are left out: else all of them, in order
        order = "slowest" if not filtered and len(sel) > limit else "time"
    if order == "slowest":
        sel = sel.assign(_k=sel.to_first_byte_s.fillna(-np.inf)).sort_values(
            ["_k", "order", "depth"], ascending=[False, True, True], kind="stable"
        )
    sel = sel.head(limit).copy()
    sel["label"] = [
        _row_label(m, h, u, rh, rp, s)
        for m, h, u, rh, rp, s in zip(
            sel.method, sel.host, sel.uri, sel.resp_h, sel.resp_p, sel.sni, strict=True
        )
    ]
    if order == "slowest":
        sel["label"] = [
            short(f"+{t:.3f} s {lab}") for t, lab in zip(sel.start_s, sel.label, strict=True)
        ]
    filters = (" " + " ".join(said)) if said else ""
    return Selection(sel.reset_index(drop=True), int(keep.sum()), available, order, filters)


def _server_mask(rows: pd.DataFrame, server: str) -> Any:
    """Rows whose server is ``server``: the request's Host (with or without its port), the SNI,
    the server address, or address:port (IPv6 in brackets)."""
    import pandas as pd

    host = rows.host.astype(object).where(rows.host.notna(), "")
    bare = host.str.replace(r":\d+$", "", regex=True)
    addr = rows.resp_h.astype(str)
    hp = [f"[{h}]:{p}" if ":" in h else f"{h}:{p}" for h, p in zip(addr, rows.resp_p, strict=True)]
    m = (host == server) | (bare == server) | (rows.sni == server) | (addr == server)
    return (m | (pd.Series(hp, index=rows.index) == server)).fillna(False).to_numpy(dtype=bool)


def _row_label(
    method: object, host: object, uri: object, resp_h: object, resp_p: object, sni: object
) -> str:
    """``GET host/path`` for a request (absolute-form, authority-form and ``*`` targets as
    sent); ``TLS name (address:port)`` or ``address:port`` for a connection row."""
    import pandas as pd

    if isinstance(method, str) or isinstance(uri, str):
        return _request_label(method, host, uri)
    name = sni if isinstance(sni, str) and not pd.isna(sni) else None
    return short(("TLS " if name else "") + server_label(resp_h, resp_p, name))


def waterfall_rows(
    result: Result,
    *,
    limit: int | None = WATERFALL_REQUESTS,
    uid: str | None = None,
    server: str | None = None,
    since: object = None,
    until: object = None,
    order: str | None = None,
) -> pd.DataFrame:
    """The rows the waterfall draws, top to bottom: ``label``, ``uid`` and for each phase
    ``<phase>_start``/``<phase>_end`` timestamps (NaT when the row has no such bar); see
    :func:`select_rows` for the choice and :func:`all_rows` for the phases."""
    sel = select_rows(
        result, limit=limit, uid=uid, server=server, since=since, until=until, order=order
    )
    return sel.rows[ROW_COLUMNS]


def _request_label(method: object, host: object, uri: object) -> str:
    """``GET host/path``; absolute-form, authority-form and ``*`` targets as sent."""
    m = method if isinstance(method, str) else "(response)"
    u = uri if isinstance(uri, str) else ""
    h = host if isinstance(host, str) and u.startswith("/") else ""
    return short(f"{m} {h}{u}")


def waterfall(
    result: Result,
    *,
    limit: int | None = WATERFALL_REQUESTS,
    uid: str | None = None,
    server: str | None = None,
    since: object = None,
    until: object = None,
    order: str | None = None,
) -> Figure:
    """Waterfall of at most ``limit`` requests (see :func:`select_rows`): per request,
    horizontal bars for TCP handshake, TLS handshake, request, wait (TTFB) and download. The
    axes title says what was drawn and what was left out ("60 of 23,050 requests, slowest
    first"). Slowest first: each row in ms from its own start; in time order: ms since the
    capture's start, pauses between captures cut out and marked."""
    import numpy as np

    sel = select_rows(
        result, limit=limit, uid=uid, server=server, since=since, until=until, order=order
    )
    rows = sel.rows
    n = len(rows)
    fig, (ax,) = new_figure(
        1,
        1,
        height=1.9 + ROW_IN * max(n, 3),
        title="Waterfall" + (f" of {uid}" if uid else ""),
    )
    ax.set_title(sel.note, fontsize="medium")
    if not n:
        no_data(ax, "no TCP connections" if not sel.available else "no request matches")
        return fig
    clock = CaptureClock.of(result)
    own = sel.order == "slowest"
    y = np.arange(n)
    for p in PHASES:
        s, e = rows[f"{p}_start"], rows[f"{p}_end"]
        m = (s.notna() & e.notna()).to_numpy()
        if not m.any():
            continue
        if own:
            left = (s[m] - rows.start[m]).dt.total_seconds().to_numpy() * 1e3
        else:
            left = clock.seconds(s[m]) * 1e3
        width = (e[m] - s[m]).dt.total_seconds().to_numpy() * 1e3
        ax.barh(y[m], width, left=left, height=0.6, color=PHASE_COLORS[p], label=p)
    ax.set_yticks(y, list(rows.label), fontsize="small")
    ax.set_ylim(n - 0.5, -0.5)
    if own:
        ax.set_xlabel("time since the request's first packet (ms); its start in the label")
    else:
        ax.set_xlabel("time since the capture's start (ms)")
        lo, hi = ax.get_xlim()
        for x, _ in clock.breaks():
            if lo <= x * 1e3 <= hi:
                clock.mark(ax, scale=1e3)
                break
    ax.set_ylabel("request / connection")
    ax.grid(axis="x", alpha=0.3)
    fig.legend(fontsize="small", loc="outside lower center", ncols=len(PHASES))
    return fig
