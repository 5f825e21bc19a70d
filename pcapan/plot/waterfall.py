"""The waterfall: one row per HTTP request (per connection for HTTPS), bars for the TCP
handshake, TLS handshake, request, wait (time to first byte) and download, as a browser's
network panel draws them."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pcapan.errors import PcapanError
from pcapan.plot._base import PHASE_COLORS, check_limit, new_figure, no_data, server_label, short

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.figure import Figure

    from pcapan.api import Result

# Connections drawn by default (the first ones by start time): past ~50 connections and their
# requests the rows are too thin to read; pass limit=None (CLI: --limit) for more.
WATERFALL_CONNECTIONS = 50
# Height per row in inches, and the most a figure may grow to (a taller image is not viewable).
ROW_IN = 0.28
MAX_HEIGHT_IN = 60.0
PHASES = ("TCP", "TLS", "request", "wait", "download")


def waterfall_rows(
    result: Result, *, limit: int | None = WATERFALL_CONNECTIONS, uid: str | None = None
) -> pd.DataFrame:
    """The rows the waterfall draws, top to bottom: ``label``, ``uid`` and for each phase
    ``<phase>_start``/``<phase>_end`` timestamps (NaT when the row has no such bar).

    HTTP: one row per request; the connection's first request also carries its TCP handshake
    (first packet to the ACK of the SYN-ACK: ts + initial_rtt_s) and TLS handshake, if any
    (ts_client_hello to ts_handshake_done); request is ts_request_start..ts_request_end, wait
    ts_request_end..ts_response_start, download ts_response_start..ts_response_end.
    HTTPS and other connections without visible requests: one row with TCP and TLS; for TLS,
    wait is ts_first_request..ts_first_response and download runs from ts_first_response to the
    first FIN/RST (else the last packet): the encrypted response's end is not visible."""
    import pandas as pd

    limit = check_limit(limit)
    c = result.connections.sort_values(["ts", "uid"], kind="stable")
    if uid is not None:
        c = c[c.uid == uid]
        if not len(c):
            raise PcapanError(f"no connection with uid {uid!r}")
    elif limit is not None:
        c = c.head(limit)
    cols = ["label", "uid", *(f"{p}_{e}" for p in PHASES for e in ("start", "end"))]
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
        }
    )
    conn.loc[conn.TLS_end.isna(), ["TLS_start", "TLS_end"]] = pd.NaT
    h = result.http[result.http.uid.isin(c.uid)].sort_values(["uid", "trans_depth"], kind="stable")
    req = pd.DataFrame(
        {
            "uid": h.uid,
            "depth": h.trans_depth.astype("float64"),
            "label": [
                _request_label(m, host, u)
                for m, host, u in zip(h.method, h.host, h.uri, strict=True)
            ],
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
    rest = c[~c.uid.isin(h.uid)]
    r = conn[conn.uid.isin(rest.uid)].copy()
    r["depth"] = 0.0
    tr = rest.uid.map(tls.ts_first_request) if len(tls) else nat[rest.index]
    tf = rest.uid.map(tls.ts_first_response) if len(tls) else nat[rest.index]
    r["request_start"] = r["request_end"] = pd.Series(pd.NaT, index=r.index, dtype=c.ts.dtype)
    r["wait_start"], r["wait_end"] = tr.where(tf.notna()), tf.where(tr.notna())
    r["download_start"], r["download_end"] = tf, end[rest.index].where(tf.notna())
    r["label"] = [
        short(
            ("TLS " if pd.notna(s) else "")
            + server_label(x.resp_h, x.resp_p, s if pd.notna(s) else None)
        )
        for x, s in zip(rest.itertuples(), sni[rest.index], strict=True)
    ]
    out = pd.concat([req, r], ignore_index=True).sort_values(["order", "depth"], kind="stable")
    return out[cols].reset_index(drop=True)


def _request_label(method: object, host: object, uri: object) -> str:
    """``GET host/path``; absolute-form, authority-form and ``*`` targets as sent."""
    m = method if isinstance(method, str) else "(response)"
    u = uri if isinstance(uri, str) else ""
    h = host if isinstance(host, str) and u.startswith("/") else ""
    return short(f"{m} {h}{u}")


def waterfall(
    result: Result, *, limit: int | None = WATERFALL_CONNECTIONS, uid: str | None = None
) -> Figure:
    """Waterfall of the first ``limit`` connections (or of one connection, ``uid``): per
    request, horizontal bars for TCP handshake, TLS handshake, request, wait (TTFB) and download,
    in milliseconds since the first connection started (see :func:`waterfall_rows`)."""
    import numpy as np

    rows = waterfall_rows(result, limit=limit, uid=uid)
    n = len(rows)
    fig, (ax,) = new_figure(
        1,
        1,
        height=min(MAX_HEIGHT_IN, 1.6 + ROW_IN * max(n, 3)),
        title="Waterfall" + (f" of {uid}" if uid else ""),
    )
    if not n:
        no_data(ax, "no TCP connections")
        return fig
    t0 = rows[[f"{p}_start" for p in PHASES]].min().min()
    y = np.arange(n)
    for p in PHASES:
        s, e = rows[f"{p}_start"], rows[f"{p}_end"]
        m = (s.notna() & e.notna()).to_numpy()
        if not m.any():
            continue
        left = (s[m] - t0).dt.total_seconds().to_numpy() * 1e3
        width = (e[m] - s[m]).dt.total_seconds().to_numpy() * 1e3
        ax.barh(y[m], width, left=left, height=0.6, color=PHASE_COLORS[p], label=p)
    ax.set_yticks(y, list(rows.label), fontsize="small")
    ax.set_ylim(n - 0.5, -0.5)
    ax.set_xlabel("time since first connection start (ms)")
    ax.set_ylabel("request / connection")
    ax.grid(axis="x", alpha=0.3)
    fig.legend(fontsize="small", loc="outside lower center", ncols=len(PHASES))
    return fig
