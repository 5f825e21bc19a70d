"""Terminal rendering with rich (imported only by the CLI)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.table import Table

if TYPE_CHECKING:
    import pandas as pd

    from pcapan.api import Result
    from pcapan.frames.schema import Column


def _console() -> Console:
    return Console(soft_wrap=False)


def _fmt(v: Any) -> str:
    if v is None:
        return "-"
    try:
        import pandas as pd

        if v is pd.NA or (isinstance(v, float) and v != v):
            return "-"
        if isinstance(v, pd.Timestamp):
            return v.strftime("%Y-%m-%d %H:%M:%S.%f")
    except ImportError:  # pragma: no cover
        pass
    if isinstance(v, float):
        return f"{v:.6f}"
    return str(v)


def print_frame(df: pd.DataFrame, title: str = "") -> None:
    t = Table(title=title or None, show_lines=False)
    for c in df.columns:
        t.add_column(str(c), overflow="fold")
    for row in df.itertuples(index=False):
        t.add_row(*(_fmt(v) for v in row))
    _console().print(t)


def print_summary(res: Result) -> None:
    s = res.summary()
    con = _console()
    t = Table(title="capture", show_header=False)
    t.add_column("what")
    t.add_column("value", justify="right")
    t.add_row("files", ", ".join(s.get("sources", [])))
    t.add_row("frames", f"{s.get('frames', 0):,}")
    t.add_row("bytes", f"{s.get('frame_bytes', 0):,}")
    first, last = s.get("first_ts_ns", 0), s.get("last_ts_ns", 0)
    t.add_row("duration", f"{(last - first) / 1e9:.3f} s")
    for proto, n in s.get("ip_packets", {}).items():
        t.add_row(f"{proto} packets", f"{n:,}")
    if s.get("non_ip_frames"):
        t.add_row("non-IP frames", f"{s['non_ip_frames']:,}")
    if s.get("malformed_packets"):
        t.add_row("malformed packets", f"{s['malformed_packets']:,}")
    t.add_row("TCP connections", f"{s['tcp_connections']:,}")
    t.add_row("payload bytes (orig/resp)", f"{s['orig_bytes']:,} / {s['resp_bytes']:,}")
    t.add_row("missed bytes", f"{s['missed_bytes']:,}")
    t.add_row("retransmitted segments", f"{s['retransmits']:,}")
    if s.get("http_requests") or s.get("http_responses"):
        t.add_row("HTTP requests / responses", f"{s['http_requests']:,} / {s['http_responses']:,}")
    if s.get("reuse_ratio") is not None:
        t.add_row("requests per connection / reuse", f"{s['requests_per_connection']} / {s['reuse_ratio']:.1%}")
        t.add_row("missed reuse", f"{s['missed_reuse']:,}")
    if s.get("pipelined_share"):
        t.add_row("pipelined requests / max depth", f"{s['pipelined_share']:.1%} / {s['max_pipeline_depth']}")
    if s.get("rtt_p50_s") is not None:
        t.add_row("ack RTT p50 / p95", f"{s['rtt_p50_s'] * 1e3:.3f} ms / {s['rtt_p95_s'] * 1e3:.3f} ms")
    for label, n in list(s.get("budget_labels", {}).items())[:6]:
        t.add_row(f"budget {label}", f"{n:,}")
    if s.get("tls_handshakes"):
        versions = ", ".join(f"{v} {n:,}" for v, n in s["tls_versions"].items())
        t.add_row("TLS handshakes", f"{s['tls_handshakes']:,} ({versions})")
    t.add_row("anomalies", f"{s['anomalies']:,}")
    con.print(t)
    if s["conn_states"]:
        st = Table(title="connection states / services")
        st.add_column("conn_state")
        st.add_column("count", justify="right")
        st.add_column("service")
        st.add_column("count", justify="right")
        states = list(s["conn_states"].items())
        services = list(s["services"].items())
        for i in range(max(len(states), len(services))):
            a = states[i] if i < len(states) else ("", "")
            b = services[i] if i < len(services) else ("", "")
            st.add_row(str(a[0]), str(a[1]), str(b[0]), str(b[1]))
        con.print(st)


def print_schema(tables: dict[str, tuple[Column, ...]]) -> None:
    con = _console()
    for name, cols in tables.items():
        t = Table(title=name)
        t.add_column("column")
        t.add_column("type")
        t.add_column("unit")
        t.add_column("description", overflow="fold")
        for c in cols:
            t.add_row(c.name, c.dtype, c.unit, c.doc)
        con.print(t)
