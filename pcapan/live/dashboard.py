"""The live terminal view of ``pcapan live`` (rich), redrawn at every snapshot."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pcapan.live.session import LiveStats


def _rate(v: float, unit: str) -> str:
    for scale, prefix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if v >= scale:
            return f"{v / scale:.1f} {prefix}{unit}"
    return f"{v:.0f} {unit}"


def _ms(v: float | None) -> str:
    return "-" if v is None else f"{v * 1000:.2f} ms"


def render(stats: LiveStats, bpf_filter: str | None, *, final: bool = False) -> Any:
    """A rich renderable of the figures."""
    from rich.console import Group
    from rich.table import Table
    from rich.text import Text

    s = stats
    head = Text.assemble(
        ("pcapan live ", "bold"),
        (s.interface, "cyan"),
        (f"  filter: {bpf_filter}" if bpf_filter else "", "dim"),
        (f"  {s.elapsed_s:,.0f} s", ""),
        ("  (stopped)" if final else "  Ctrl-C to stop", "dim"),
    )
    figures = Table.grid(padding=(0, 3))
    for _ in range(4):
        figures.add_column()
    drops = Text(f"{s.kernel_drops:,}", style="bold red" if s.kernel_drops else "green")
    figures.add_row(
        "packets",
        f"{s.packets:,} ({_rate(s.packets_per_s, 'pkt/s')})",
        "bytes",
        f"{s.bytes:,} ({_rate(s.bytes_per_s * 8, 'bit/s')})",
    )
    figures.add_row(
        "open connections", f"{s.open_connections:,}", "finished connections", f"{s.connections:,}"
    )
    figures.add_row(
        "HTTP requests",
        f"{s.http_requests:,} ({s.requests_per_s:.1f}/s)",
        "TLS handshakes",
        f"{s.tls_handshakes:,}",
    )
    figures.add_row(
        "RTT p50 / p95", f"{_ms(s.rtt_p50_s)} / {_ms(s.rtt_p95_s)}", "kernel drops", drops
    )
    if s.parts_written:
        figures.add_row("parts written", f"{s.parts_written:,}", "", "")
    if final or s.findings:
        found = ", ".join(f"{sev} {n:,}" for sev, n in s.findings) or "none"
        figures.add_row("findings", found, "", "")

    hosts = Table(title="top hosts (Host / SNI)", title_justify="left", expand=False)
    hosts.add_column("host")
    hosts.add_column("requests", justify="right")
    hosts.add_column("TLS", justify="right")
    for name, reqs, hs in s.top_hosts:
        hosts.add_row(name, f"{reqs:,}", f"{hs:,}")
    tls = Table(title="TLS versions / ALPN", title_justify="left", expand=False)
    tls.add_column("version")
    tls.add_column("n", justify="right")
    tls.add_column("ALPN (? = not visible)")
    tls.add_column("n", justify="right")
    rows = max(len(s.tls_versions), len(s.alpn))
    for i in range(rows):
        v = s.tls_versions[i] if i < len(s.tls_versions) else ("", "")
        a = s.alpn[i] if i < len(s.alpn) else ("", "")
        tls.add_row(
            v[0], f"{v[1]:,}" if v[1] != "" else "", a[0], f"{a[1]:,}" if a[1] != "" else ""
        )
    side = Table.grid(padding=(0, 4))
    side.add_row(hosts, tls)
    return Group(head, figures, side)


class Dashboard:
    """rich.live.Live on stdout, redrawn by :meth:`update` (no refresh thread of its own)."""

    def __init__(self, bpf_filter: str | None) -> None:
        from rich.console import Console
        from rich.live import Live

        self.bpf_filter = bpf_filter
        self._live = Live(console=Console(), auto_refresh=False, transient=False)
        self._live.start()

    def update(self, stats: LiveStats, *, final: bool = False) -> None:
        self._live.update(render(stats, self.bpf_filter, final=final), refresh=True)

    def close(self) -> None:
        self._live.stop()
