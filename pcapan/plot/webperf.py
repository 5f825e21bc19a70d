"""Plots of the tables: round-trip times, round-trip budget, connection reuse, pipelining."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pcapan.errors import PcapanError
from pcapan.plot._base import (
    LOG_SPAN,
    PHASE_COLORS,
    check_limit,
    count_bars,
    integer_ticks,
    new_figure,
    no_data,
    rows_figure,
    server_label,
    short,
)
from pcapan.plot._clock import CaptureClock

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.figure import Figure

    from pcapan.api import Result

RTT_KINDS = ("ack", "ts", "handshake", "all")
# Histogram bins shared by every group of the RTT histogram (enough to show a bimodal
# distribution, few enough that a dozen samples still form visible bars).
RTT_HIST_BINS = 40
# The RTT axes end at this quantile of the samples when the largest is far beyond it (outliers
# counted in the last bin and said), and a CDF draws at most CDF_POINTS steps.
RTT_AXIS_QUANTILE = 0.995
CDF_POINTS = 2000
# Servers shown by the per-server RTT and budget plots, busiest first: more legend entries or
# bar labels than this cannot be read.
MAX_SERVERS = 12
# Client-server pairs drawn in the open-connections plot, most connections first.
MAX_REUSE_PAIRS = 12
# Bars in the head-of-line wait plot (one per pipelined response), first ones first.
MAX_HOL_BARS = 60
# Height per head-of-line bar in inches: a line of small text with room between.
HOL_ROW_IN = 0.22
# Height per bar of the budget plot in inches (a line of small text with room between).
BUDGET_ROW_IN = 0.3
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
        allv = np.concatenate(values)
        # Axes from the data's robust range: one 30 s stall must not squeeze every other sample
        # into the first bin; what lies beyond is counted in the last bin and said.
        hi = float(np.quantile(allv, RTT_AXIS_QUANTILE))
        beyond = int((allv > hi).sum()) if float(allv.max()) > hi * 1.5 else 0
        for label, v in zip(groups, values, strict=True):
            x = np.sort(v)
            n = x.shape[0]
            # At most CDF_POINTS steps: the same curve at screen resolution, not 200,000 vertices.
            at = np.unique(np.linspace(0, n - 1, min(n, CDF_POINTS)).round().astype(np.int64))
            cdf.plot(
                x[at],
                (at + 1) / n,
                drawstyle="steps-post",
                label=f"{label} (n={n})",
            )
        cdf.set_xlabel("RTT (ms)")
        cdf.set_ylabel("fraction of samples")
        cdf.set_ylim(0, 1.02)
        cdf.grid(alpha=0.3)
        cdf.legend(fontsize="small")
        top = hi if beyond else float(allv.max())
        edges = np.histogram_bin_edges(np.clip(allv, None, top), bins=bins)
        for label, v in zip(groups, values, strict=True):
            # label on the BarContainer only: the legend lists each series once
            _, _, bars = hist.hist(np.clip(v, None, top), bins=edges, alpha=0.6)
            bars.set_label(label)
        if beyond:
            cdf.set_xlim(left=min(0.0, float(allv.min())), right=top * 1.05)
            hist.set_title(
                f"axis to the {RTT_AXIS_QUANTILE:.1%} quantile; {beyond:,} samples beyond "
                "in the last bin",
                fontsize="small",
            )
        counts = np.concatenate([np.asarray(p.datavalues) for p in hist.containers])
        nz = counts[counts > 0]
        if len(nz) and nz.max() / nz.min() >= LOG_SPAN:
            hist.set_yscale("log")
        hist.set_xlabel("RTT (ms)")
        hist.set_ylabel("samples" + (" (log scale)" if hist.get_yscale() == "log" else ""))
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
    """Round-trip budget as stacked horizontal bars (TCP handshake, TLS handshake, wait for the
    first byte): the mean per server (top, the ``limit`` servers with most connections) and per
    budget label (below, e.g. 'TCP+TLS1.2 full: 4 RTT'). Horizontal, so that the group names
    read level at any length (truncated with an ellipsis past MAX_LABEL_CHARS)."""
    import numpy as np

    limit = check_limit(limit)
    groups = [
        (by, title, budget_by(result, by, None))
        for by, title in (("server", "per server"), ("label", "per budget label"))
    ]
    sizes = [max(min(len(df), limit or len(df)), 1) for _, _, df in groups]
    fig, axes = rows_figure(
        [s + 2 for s in sizes],
        height=1.6 + BUDGET_ROW_IN * sum(s + 2 for s in sizes),
        title="Round-trip budget: SYN to first response byte (mean per group)",
    )
    for ax, (_, title, df) in zip(axes, groups, strict=True):
        total = len(df)
        if not total:
            no_data(ax, "no connection reached a first response byte")
            continue
        df = df.head(limit if limit is not None else total)
        y = np.arange(len(df))
        left = np.zeros(len(df))
        for name, col in BUDGET_PARTS:
            w = df[col].to_numpy(dtype=float) * 1e3
            ax.barh(y, w, left=left, label=name, color=PHASE_COLORS[name], height=0.6)
            left += w
        ticks = [f"{short(lab)} (n={n:,})" for lab, n in zip(df.label, df.n, strict=True)]
        ax.set_yticks(y, ticks, fontsize="small")
        ax.set_ylim(len(df) - 0.5, -0.5)
        ax.set_xlabel("time (ms)")
        cut = f", {len(df):,} of {total:,} with most connections" if total > len(df) else ""
        ax.set_title(title + cut, fontsize="medium")
        ax.grid(axis="x", alpha=0.3)
        ax.legend(fontsize="small", loc="lower right")
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
    fig, (h_ax, t_ax) = new_figure(1, 2, height=5.2, title="Connection reuse")
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
    clock = CaptureClock.of(result)
    for label, (t, n) in steps.items():
        t_ax.plot(clock.seconds(t), n, drawstyle="steps-post", label=short(label, 40))
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
            xs.append(float(clock.seconds(np.array([ts]))[0]))
            ys.append(int(n[i]) if i >= 0 else 0)
        if xs:
            t_ax.scatter(xs, ys, marker="v", color="#c0392b", s=60, zorder=3, label="missed reuse")
    clock.mark(t_ax)
    t_ax.set_xlabel("time since the capture's start (s)")
    t_ax.set_ylabel("open connections")
    integer_ticks(t_ax)
    # below the axes, not on the lines: a dozen pairs' names would cover what they label
    t_ax.legend(fontsize="x-small", loc="upper center", bbox_to_anchor=(0.5, -0.2), ncols=2)
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
    """HTTP pipelining: the pipeline depth of every request (bars per depth, above), and the
    head-of-line wait of every pipelined response (one horizontal bar each, the first ``limit``
    in capture order, below; the figure grows with the bars so that their labels never
    overprint): how long it waited behind the previous response after its request was
    complete."""
    import numpy as np

    limit = check_limit(limit)
    h = result.http
    total = int((h.pipelined.fillna(False).astype(bool) & h.hol_wait_s.notna()).sum())
    w = hol_waits(result, limit)
    fig, (d_ax, w_ax) = rows_figure(
        [3.0, HOL_ROW_IN * max(len(w), 4) + 1.0],
        height=4.6 + HOL_ROW_IN * max(len(w), 4),
        title="HTTP pipelining",
    )
    count_bars(
        d_ax,
        pipeline_depths(result),
        xlabel="pipeline depth (requests outstanding)",
        ylabel="requests",
        empty="no HTTP requests",
    )
    if not len(w):
        no_data(w_ax, "no pipelined requests")
        return fig
    y = np.arange(len(w))
    w_ax.barh(y, w.hol_wait_s.to_numpy(dtype=float) * 1e3, color="#c0392b", label="HOL wait")
    labels = [
        short(f"#{d} {m or ''} {u or ''}")
        for d, m, u in zip(w.trans_depth, w.method, w.uri, strict=True)
    ]
    w_ax.set_yticks(y, labels, fontsize="small")
    w_ax.set_ylim(len(w) - 0.5, -0.5)
    w_ax.set_xlabel("head-of-line wait (ms)")
    w_ax.set_ylabel("pipelined response")
    w_ax.set_title(
        f"{len(w):,} of {total:,} pipelined responses, in capture order", fontsize="medium"
    )
    return fig
