"""What a report shows, as plain rows and DataFrames (no HTML, no rich): the summary as labelled
rows, the top servers and clients, the TLS mix, anomaly counts. The terminal (pcapan.render)
and the HTML report (pcapan.report.page) both draw from here, so they show the same figures.

Every function takes a Result (typed for the checker only: report sits below api in the layers).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pcapan.config import CAPTURE_GAP_S
from pcapan.frames.text import printable

if TYPE_CHECKING:
    import pandas as pd

    from pcapan.api import Result

# Budget labels listed in the summary: the commonest few say what the round trips were; a long
# tail of rare labels would push the rest of the summary off the screen.
SUMMARY_BUDGET_LABELS = 6

# The servers view: column (of the servers table, or "server": name and address) -> title.
# Compact for the terminal (a row must fit 80 columns), fuller for the HTML report.
SERVER_COLUMNS_TERMINAL = {
    "orig_h": "client",
    "server": "server",
    "connections": "conns",
    "requests": "reqs",
    "reuse_ratio": "reuse",
    "max_open_connections": "open",
    "missed_reuse": "missed",
    "budget_total_median_s": "budget",
}
SERVER_COLUMNS_REPORT = {
    "orig_h": "client",
    "server": "server",
    "connections": "connections",
    "requests": "requests",
    "requests_per_conn_max": "max requests/conn",
    "reuse_ratio": "reuse",
    "max_open_connections": "max open",
    "missed_reuse": "missed reuse",
    "budget_rtts_median": "budget RTTs (median)",
    "budget_total_median_s": "budget (median)",
    "initial_rtt_median_s": "initial RTT (median)",
}
CLIENT_COLUMNS = {
    "orig_h": "client",
    "servers": "servers",
    "connections": "connections",
    "requests": "requests",
    "reuse_ratio": "reuse",
    "max_open_connections": "max open",
    "missed_reuse": "missed reuse",
}


def format_value(v: Any) -> str:
    """A table cell for people: ``-`` for missing, timestamps to the microsecond, floats with 6
    decimals, captured text through :func:`printable`."""
    import pandas as pd

    if v is None or v is pd.NA or v is pd.NaT or (isinstance(v, float) and v != v):
        return "-"
    if isinstance(v, pd.Timestamp):
        return v.strftime("%Y-%m-%d %H:%M:%S.%f")
    if isinstance(v, float):
        return f"{v:.6f}"
    return printable(v)


def _duration_s(s: dict[str, Any]) -> float:
    """Captured time: the union of the capture files' spans (two files read years apart last as
    long as their two captures, not the years between), else first to last packet."""
    spans = sorted(
        (int(p["first_ts_ns"]), int(p["last_ts_ns"])) for p in s.get("source_spans") or []
    )
    if not spans:
        return (s.get("last_ts_ns", 0) - s.get("first_ts_ns", 0)) / 1e9
    total, (lo, hi) = 0, spans[0]
    for a, b in spans[1:]:
        if a > hi:
            total += hi - lo
            lo, hi = a, b
        else:
            hi = max(hi, b)
    return (total + hi - lo) / 1e9


def _duration_text(s: dict[str, Any]) -> str:
    d = _duration_s(s)
    span = (s.get("last_ts_ns", 0) - s.get("first_ts_ns", 0)) / 1e9
    if span > d + CAPTURE_GAP_S:
        n = len(s.get("source_spans") or [])
        return f"{d:.3f} s captured in {n} files (first to last packet {span:,.0f} s)"
    return f"{d:.3f} s"


def summary_rows(s: dict[str, Any]) -> list[tuple[str, str]]:
    """``Result.summary()`` as (label, value) rows, values formatted for people."""
    rows = [
        ("files", ", ".join(printable(x) for x in s.get("sources", []))),
        ("frames", f"{s.get('frames', 0):,}"),
        ("bytes", f"{s.get('frame_bytes', 0):,}"),
        ("duration", _duration_text(s)),
    ]
    rows += [(f"{proto} packets", f"{n:,}") for proto, n in s.get("ip_packets", {}).items()]
    if s.get("non_ip_frames"):
        rows.append(("non-IP frames", f"{s['non_ip_frames']:,}"))
    if s.get("malformed_packets"):
        rows.append(("malformed packets", f"{s['malformed_packets']:,}"))
    rows += [
        ("TCP connections", f"{s['tcp_connections']:,}"),
        ("payload bytes (orig/resp)", f"{s['orig_bytes']:,} / {s['resp_bytes']:,}"),
        ("missed bytes", f"{s['missed_bytes']:,}"),
        ("retransmitted segments", f"{s['retransmits']:,}"),
    ]
    if s.get("http_requests") or s.get("http_responses"):
        rows.append(
            ("HTTP requests / responses", f"{s['http_requests']:,} / {s['http_responses']:,}")
        )
    if s.get("reuse_ratio") is not None:
        rows.append(
            (
                "requests per connection / reuse",
                f"{s['requests_per_connection']} / {s['reuse_ratio']:.1%}",
            )
        )
        rows.append(
            (
                "missed reuse",
                f"{s['missed_reuse']:,} ({s.get('missed_reuse_rule', '')}; loose count "
                f"{s.get('missed_reuse_loose', 0):,}, low confidence)",
            )
        )
    if s.get("pipelined_share"):
        rows.append(
            (
                "pipelined requests / max depth",
                f"{s['pipelined_share']:.1%} / {s['max_pipeline_depth']}",
            )
        )
    if s.get("rtt_p50_s") is not None:
        rows.append(
            ("ack RTT p50 / p95", f"{s['rtt_p50_s'] * 1e3:.3f} ms / {s['rtt_p95_s'] * 1e3:.3f} ms")
        )
    for label, n in list(s.get("budget_labels", {}).items())[:SUMMARY_BUDGET_LABELS]:
        rows.append((f"budget {label}", f"{n:,}"))
    if s.get("http2_connections"):
        rows.append(
            (
                "cleartext HTTP/2 connections / streams / frames",
                f"{s['http2_connections']:,} / {s['http2_streams']:,} / {s['http2_frames']:,}",
            )
        )
    if s.get("tls_handshakes"):
        versions = ", ".join(f"{v} {n:,}" for v, n in s["tls_versions"].items())
        rows.append(("TLS handshakes", f"{s['tls_handshakes']:,} ({versions})"))
    rows.append(("anomalies", f"{s['anomalies']:,}"))
    return rows


def state_rows(s: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    """Connection states and services side by side: (conn_state, count, service, count)."""
    states = [(str(k), str(v)) for k, v in s.get("conn_states", {}).items()]
    services = [(str(k), str(v)) for k, v in s.get("services", {}).items()]
    n = max(len(states), len(services))
    states += [("", "")] * (n - len(states))
    services += [("", "")] * (n - len(services))
    return [(a, b, c, d) for (a, b), (c, d) in zip(states, services, strict=True)]


def top_servers(res: Result, limit: int | None) -> pd.DataFrame:
    """The servers table's rows with the most connections, then the most requests (ties keep
    the table's order: by client, server address and port), at most ``limit``; every column of
    the table plus ``server`` (:func:`server_labels`)."""
    return _top(res.servers, limit).assign(server=lambda d: server_labels(d))


def top_clients(res: Result, limit: int | None) -> pd.DataFrame:
    """The clients table ordered and cut like :func:`top_servers`."""
    return _top(res.clients, limit)


def server_labels(df: pd.DataFrame) -> pd.Series:
    """``name (address:port)`` per row, or ``address:port`` when there is no name or the name
    is the address itself (the servers table names a server by Host or SNI, else address:port).
    IPv6 addresses in brackets."""
    import pandas as pd

    addr = [
        f"[{h}]:{p}" if ":" in str(h) else f"{h}:{p}"
        for h, p in zip(df.resp_h, df.resp_p, strict=True)
    ]
    names = [
        None
        if n is None or n is pd.NA or (isinstance(n, float) and n != n) or str(n) in ("", a)
        else str(n)
        for n, a in zip(df.server_name, addr, strict=True)
    ]
    return pd.Series(
        [a if n is None else f"{n} ({a})" for n, a in zip(names, addr, strict=True)],
        index=df.index,
        dtype=object,
    )


def view(df: pd.DataFrame, columns: dict[str, str]) -> pd.DataFrame:
    """``df``'s ``columns`` (keys) under their titles (values)."""
    return df[list(columns)].rename(columns=columns).reset_index(drop=True)


def _top(df: pd.DataFrame, limit: int | None) -> pd.DataFrame:
    df = df.sort_values(["connections", "requests"], ascending=False, kind="stable")
    return (df.head(limit) if limit is not None else df).reset_index(drop=True)


def slowest_requests(res: Result, limit: int | None) -> pd.DataFrame:
    """HTTP requests with the longest wait for the first response byte (ttfb_s), longest first
    (ties in capture order); requests without a response are left out."""
    h = res.http[res.http.ttfb_s.notna()].sort_values("ttfb_s", ascending=False, kind="stable")
    if limit is not None:
        h = h.head(limit)
    cols = ["ts", "uid", "method", "host", "uri", "status_code", "response_body_len", "ttfb_s"]
    return h[cols].reset_index(drop=True)


def status_counts(res: Result) -> pd.DataFrame:
    """HTTP responses per status code (``(none)``: a request never answered)."""
    codes = res.http.status_code.astype("Int64").astype(str).replace("<NA>", "(none)")
    return _counted(codes.astype(object), "status_code", "count")


def tls_server_names(res: Result, limit: int | None) -> pd.DataFrame:
    """Handshakes per SNI server name, most frequent first (``(none)``: no SNI sent)."""
    df = _counted(
        res.tls.server_name.fillna("(none)").astype(object),
        "server_name",
        "handshakes",
        by_count=True,
    )
    return df.head(limit) if limit is not None else df


def tls_versions(res: Result) -> pd.DataFrame:
    """Handshakes per negotiated version (``(none)`` when no ServerHello was seen)."""
    return _counted(res.tls.version.fillna("(none)"), "version", "handshakes")


def tls_ciphers(res: Result, limit: int | None) -> pd.DataFrame:
    """Selected cipher suites, most used first: cipher, strength in bits, handshakes."""
    import pandas as pd

    t = res.tls[res.tls.cipher.notna()]
    if not len(t):
        return pd.DataFrame({"cipher": [], "strength bits": [], "handshakes": []})
    g = (
        t.groupby("cipher", sort=True)
        .agg(bits=("cipher_strength_bits", "first"), n=("uid", "size"))
        .reset_index()
    )
    g = g.sort_values(["n", "cipher"], ascending=[False, True], kind="stable")
    if limit is not None:
        g = g.head(limit)
    return g.rename(columns={"bits": "strength bits", "n": "handshakes"}).reset_index(drop=True)


def tls_alpn(res: Result) -> pd.DataFrame:
    """Per ALPN protocol ID: handshakes that offered it, handshakes where it was selected (a TLS
    1.3 server's choice is encrypted, so selected can be below what was used)."""
    from pcapan.frames.tlsmix import alpn_counts

    return alpn_counts(res.tls)


def tls_resumption(res: Result) -> pd.DataFrame:
    """Handshakes per mode: session_id, ticket or psk resumption, else full (established) or
    not established."""
    from pcapan.frames.tlsmix import resumption_modes

    return _counted(resumption_modes(res.tls), "mode", "handshakes")


def anomaly_counts(res: Result) -> pd.DataFrame:
    """Anomaly rows per name (kind), most frequent first."""
    return _counted(res.anomalies.name.astype(object), "name", "count", by_count=True)


def _counted(values: pd.Series, key: str, count: str, *, by_count: bool = False) -> pd.DataFrame:
    import pandas as pd

    vc = values.value_counts(sort=False)
    df = pd.DataFrame({key: [str(k) for k in vc.index], count: [int(v) for v in vc.to_numpy()]})
    if by_count:
        df = df.sort_values([count, key], ascending=[False, True], kind="stable")
    else:
        df = df.sort_values(key, kind="stable")
    return df.reset_index(drop=True)
