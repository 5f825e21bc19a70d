"""Plots of the tables: round-trip times, round-trip budget, connection reuse, pipelining."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pcapan.errors import PcapanError
from pcapan.plot._base import (
    PHASE_COLORS,
    check_limit,
    count_bars,
    integer_ticks,
    new_figure,
    no_data,
    server_label,
    short,
)

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.figure import Figure

    from pcapan.api import Result

RTT_KINDS = ("ack", "ts", "handshake", "all")
# Histogram bins shared by every group of the RTT histogram (enough to show a bimodal
# distribution, few enough that a dozen samples still form visible bars).
RTT_HIST_BINS = 40
# Servers shown by the per-server RTT and budget plots, busiest first: more legend entries or
# bar labels than this cannot be read.
MAX_SERVERS = 12
# Client-server pairs drawn in the open-connections plot, most connections first.
MAX_REUSE_PAIRS = 12
# Bars in the head-of-line wait plot (one per pipelined response), first ones first.
MAX_HOL_BARS = 60
BUDGET_PARTS = (("TCP", "budget_tcp_s"), ("TLS", "budget_tls_s"), ("wait", "budget_ttfb_s"))


def _server_names(result: Result) -> pd.DataFrame:
    """Connections with ``server_name`` (first request's Host, else SNI), ``t0``/``t1`` (open
    interval in ns) and ``pair`` (client, server address, port, name), as the servers table."""
    from pcapan.frames import webperf

    return webperf.pairs(result.connections, result.http, result.tls)


# -- RTT ------------------------------------------------------------------------------------------
def rtt(
    result: Result,
    *,
    kind: str = "ack",
    by_server: bool = False,
    limit: int | None = MAX_SERVERS,
    bins: int = RTT_HIST_BINS,
) -> Figure:
    """RTT samples: CDF and histogram per direction (``orig``: the originator's data timed to the
    responder and back; ``resp``: the other way), optionally per server; and per connection the
    handshake RTT against the median data (ack) RTT of the same direction.

    ``kind``: which samples of the rtt table (ack, ts, handshake, or all); ``by_server``: one
    group per server and direction (the ``limit`` servers with most samples)."""
    import numpy as np

    if kind not in RTT_KINDS:
        raise PcapanError(f"unknown RTT kind {kind!r} (kinds: {', '.join(RTT_KINDS)})")
    limit = check_limit(limit)
    fig, (cdf, hist, hs) = new_figure(1, 3, title=f"Round-trip times ({kind} samples)")
    groups = rtt_groups(result, kind=kind, by_server=by_server, limit=limit)
    if not groups:
        no_data(cdf, "no RTT samples")
        no_data(hist, "no RTT samples")
    else:
        values = [v * 1e3 for v in groups.values()]
        for label, v in zip(groups, values, strict=True):
            x = np.sort(v)
            cdf.plot(
                x,
                np.arange(1, x.shape[0] + 1) / x.shape[0],
                drawstyle="steps-post",
                label=f"{label} (n={x.shape[0]})",
            )
        cdf.set_xlabel("RTT (ms)")
        cdf.set_ylabel("fraction of samples")
        cdf.set_ylim(0, 1.02)
        cdf.grid(alpha=0.3)
        cdf.legend(fontsize="small")
        edges = np.histogram_bin_edges(np.concatenate(values), bins=bins)
        for label, v in zip(groups, values, strict=True):
            _, _, bars = hist.hist(v, bins=edges, alpha=0.6, label=label)
            bars.set_label(label)  # the BarContainer too, not only its first bar
        hist.set_xlabel("RTT (ms)")
        hist.set_ylabel("samples")
        hist.legend(fontsize="small")
    pts = handshake_vs_data(result)
    if not len(pts):
        no_data(hs, "no connection with both handshake and data RTT")
    else:
        for d, sub in pts.groupby("direction", sort=True):
            hs.scatter(sub.handshake_s * 1e3, sub.data_s * 1e3, label=str(d), s=24)
        top = float(max(pts.handshake_s.max(), pts.data_s.max()) * 1e3) * 1.1
        hs.plot(
            [0, top], [0, top], color="0.6", linestyle="--", linewidth=1, label="data = handshake"
        )
        hs.set_xlabel("handshake RTT (ms)")
        hs.set_ylabel("median data RTT (ms)")
        hs.set_title("per connection and direction", fontsize="medium")
        hs.legend(fontsize="small")
    return fig


def rtt_groups(
    result: Result, *, kind: str = "ack", by_server: bool = False, limit: int | None = MAX_SERVERS
) -> dict[str, object]:
    """The sample arrays (seconds) the RTT CDF and histogram draw, by label, in drawing order."""
    r = result.rtt
    if kind != "all":
        r = r[r.kind == kind]
    if not len(r):
        return {}
    if not by_server:
        return {str(d): g.rtt_s.to_numpy() for d, g in r.groupby("direction", sort=True)}
    c = _server_names(result)
    label = (
        c.apply(lambda x: server_label(x.resp_h, x.resp_p, x.server_name), axis=1)
        if len(c)
        else c.uid
    )
    r = r.assign(server=r.uid.map(dict(zip(c.uid, label, strict=True))))
    top = r.server.value_counts().index[: limit if limit is not None else None]
    r = r[r.server.isin(top)]
    return {
        f"{s} {d}": g.rtt_s.to_numpy()
        for (s, d), g in r.groupby(["server", "direction"], sort=True)
    }


def handshake_vs_data(result: Result) -> pd.DataFrame:
    """Per connection and direction: the handshake RTT of that direction (rtt_syn_s for orig,
    rtt_synack_s for resp) and the median ack RTT of its data; rows with both only."""
    import pandas as pd

    c = result.connections
    parts = [
        pd.DataFrame({"uid": c.uid, "direction": d, "handshake_s": c[h], "data_s": c[m]})
        for d, h, m in (
            ("orig", "rtt_syn_s", "rtt_orig_median_s"),
            ("resp", "rtt_synack_s", "rtt_resp_median_s"),
        )
    ]
    out = pd.concat(parts, ignore_index=True)
    return out[out.handshake_s.notna() & out.data_s.notna()].reset_index(drop=True)


# -- round-trip budget ---------------------------------------------------------------------------
def budget_by(result: Result, by: str, limit: int | None = MAX_SERVERS) -> pd.DataFrame:
    """Mean TCP, TLS and wait (TTFB) time per server or per budget label, over the connections
    that reached a first response byte (budget_total_s known); a part a connection does not have
    (no TLS) counts 0. Columns: label, n, and the three parts in seconds; most connections first."""
    import pandas as pd

    c = _server_names(result)
    c = c[c.budget_total_s.notna()]
    cols = [p for _, p in BUDGET_PARTS]
    if not len(c):
        return pd.DataFrame(columns=["label", "n", *cols])
    if by == "server":
        key = c.apply(lambda x: server_label(x.resp_h, x.resp_p, x.server_name), axis=1)
    elif by == "label":
        key = c.budget_label.fillna("(no label)")
    else:
        raise PcapanError(f"budget_by: by must be 'server' or 'label' (got {by!r})")
    g = c[cols].fillna(0.0).groupby(key.to_numpy())
    out = g.mean().assign(n=g.size()).rename_axis("label").reset_index()
    out = out.sort_values(["n", "label"], ascending=[False, True], kind="stable")
    return out.head(limit if limit is not None else len(out)).reset_index(drop=True)


def budget(result: Result, *, limit: int | None = MAX_SERVERS) -> Figure:
    """Round-trip budget as stacked bars (TCP handshake, TLS handshake, wait for the first byte):
    the mean per server (left, the ``limit`` servers with most connections) and per budget label
    (right, e.g. 'TCP+TLS1.2 full: 4 RTT')."""
    import numpy as np

    limit = check_limit(limit)
    fig, axes = new_figure(
        1, 2, height=4.6, title="Round-trip budget: SYN to first response byte (mean per group)"
    )
    for ax, by, title in (
        (axes[0], "server", "per server"),
        (axes[1], "label", "per budget label"),
    ):
        df = budget_by(result, by, limit)
        if not len(df):
            no_data(ax, "no connection reached a first response byte")
            continue
        x = np.arange(len(df))
        bottom = np.zeros(len(df))
        for name, col in BUDGET_PARTS:
            h = df[col].to_numpy(dtype=float) * 1e3
            ax.bar(x, h, bottom=bottom, label=name, color=PHASE_COLORS[name], width=0.6)
            bottom += h
        ticks = [
            "\n".join(short(part.rstrip(")"), 28) for part in str(lab).split(" (")) + f"\nn={n}"
            for lab, n in zip(df.label, df.n, strict=True)
        ]
        ax.set_xticks(x, ticks, fontsize="small")
        ax.set_ylabel("time (ms)")
        ax.set_title(title, fontsize="medium")
        ax.legend(fontsize="small")
    return fig


# -- reuse ---------------------------------------------------------------------------------------
def requests_per_connection(result: Result) -> pd.Series:
    """Number of HTTP connections (service http) per count of requests they carried."""
    c = result.connections
    http = c[
        c.service.fillna("").str.split(",").apply(lambda s: "http" in s)
        | (c.requests.fillna(0) > 0)
    ]
    return http.requests.fillna(0).astype(int).value_counts().sort_index()


def open_connections(
    result: Result, limit: int | None = MAX_REUSE_PAIRS
) -> dict[str, tuple[object, object]]:
    """Per client-server pair (client, server address, port, name; the ``limit`` pairs with most
    connections): the step function of its open connections, as (times in ns, count after each
    time). A connection is open from its first packet to its first FIN/RST (or last packet), as
    in the servers table; closes sort before opens at the same instant."""
    import numpy as np

    c = _server_names(result)
    if not len(c):
        return {}
    sizes = c.groupby("pair").size().sort_values(ascending=False, kind="stable")
    keep = sizes.index[: limit if limit is not None else None]
    out = {}
    for p in sorted(keep):
        g = c[c.pair == p]
        t = np.concatenate([g.t0.to_numpy(), g.t1.to_numpy()])
        d = np.concatenate([np.ones(len(g), np.int64), -np.ones(len(g), np.int64)])
        order = np.lexsort((d, t))
        r = g.iloc[0]
        label = f"{r.orig_h} \u2192 {server_label(r.resp_h, r.resp_p, r.server_name)}"
        out[label] = (t[order], np.cumsum(d[order]))
    return out


def reuse(result: Result, *, limit: int | None = MAX_REUSE_PAIRS) -> Figure:
    """Connection reuse: how many requests each HTTP connection carried (histogram), and the
    connections open over time per client-server pair (a step line per pair, at most ``limit``
    pairs) with the missed-reuse events marked (a new connection while an idle one was open)."""
    import numpy as np
    import pandas as pd

    limit = check_limit(limit)
    fig, (h_ax, t_ax) = new_figure(1, 2, title="Connection reuse")
    count_bars(
        h_ax,
        requests_per_connection(result),
        xlabel="requests per connection",
        ylabel="connections",
        empty="no HTTP connections",
    )
    steps = open_connections(result, limit)
    if not steps:
        no_data(t_ax, "no TCP connections")
        return fig
    t0 = min(int(t[0]) for t, _ in steps.values())
    for label, (t, n) in steps.items():
        t_ax.plot((t - t0) / 1e9, n, drawstyle="steps-post", label=short(label, 40))
    m = result.missed_reuse
    if len(m):
        c = _server_names(result).set_index("uid")
        xs, ys = [], []
        for u, ts in zip(m.uid, pd.to_datetime(m.ts).astype("int64"), strict=True):
            step = steps.get(_pair_label(c, u) or "")
            if step is None:
                continue  # its pair is beyond the limit
            t, n = step
            i = int(np.searchsorted(t, ts, side="right")) - 1  # open count just after it opened
            xs.append((ts - t0) / 1e9)
            ys.append(int(n[i]) if i >= 0 else 0)
        if xs:
            t_ax.scatter(xs, ys, marker="v", color="#c0392b", s=60, zorder=3, label="missed reuse")
    t_ax.set_xlabel("time since first connection (s)")
    t_ax.set_ylabel("open connections")
    integer_ticks(t_ax)
    t_ax.legend(fontsize="small")
    return fig


def _pair_label(c: pd.DataFrame, uid: str) -> str | None:
    if uid not in c.index:
        return None
    r = c.loc[uid]
    return f"{r.orig_h} \u2192 {server_label(r.resp_h, r.resp_p, r.server_name)}"


# -- pipelining ----------------------------------------------------------------------------------
def pipeline_depths(result: Result) -> pd.Series:
    """Number of requests per pipeline depth (requests outstanding when each one started)."""
    d = result.http.pipeline_depth.dropna()
    return d.astype(int).value_counts().sort_index()


def hol_waits(result: Result, limit: int | None = MAX_HOL_BARS) -> pd.DataFrame:
    """Pipelined requests (hol_wait_s known), in capture order, the first ``limit``."""
    h = result.http
    h = h[h.pipelined.fillna(False).astype(bool) & h.hol_wait_s.notna()].sort_values(
        ["ts", "uid", "trans_depth"]
    )
    return h.head(limit if limit is not None else len(h)).reset_index(drop=True)


def pipelining(result: Result, *, limit: int | None = MAX_HOL_BARS) -> Figure:
    """HTTP pipelining: the pipeline depth of every request (bars per depth), and the head-of-
    line wait of every pipelined response (one bar each, at most ``limit``): how long it waited
    behind the previous response after its request was complete."""
    import numpy as np

    limit = check_limit(limit)
    fig, (d_ax, w_ax) = new_figure(1, 2, title="HTTP pipelining")
    count_bars(
        d_ax,
        pipeline_depths(result),
        xlabel="pipeline depth (requests outstanding)",
        ylabel="requests",
        empty="no HTTP requests",
    )
    w = hol_waits(result, limit)
    if not len(w):
        no_data(w_ax, "no pipelined requests")
        return fig
    y = np.arange(len(w))
    w_ax.barh(y, w.hol_wait_s.to_numpy(dtype=float) * 1e3, color="#c0392b", label="HOL wait")
    labels = [
        short(f"#{d} {m or ''} {u or ''}", 32)
        for d, m, u in zip(w.trans_depth, w.method, w.uri, strict=True)
    ]
    w_ax.set_yticks(y, labels, fontsize="small")
    w_ax.invert_yaxis()
    w_ax.set_xlabel("head-of-line wait (ms)")
    w_ax.set_ylabel("pipelined response")
    return fig
