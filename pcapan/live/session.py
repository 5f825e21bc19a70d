"""A live capture session: packet socket -> batches -> the analyzer, with snapshots, the
``--write`` file, exports and rotation.

One thread does everything, in this order per batch: frames are received into the batch
buffer, the buffer is written to the capture file, the batch is fed to the same ``Analyzer`` as
file analysis. Stop requests (Ctrl-C, SIGTERM, :meth:`LiveCapture.stop`, ``duration_s``,
``count``) only set a flag that the loop checks between reads, so a batch is never left
half-analysed and the capture file always ends on a whole record.
"""

from __future__ import annotations

import dataclasses
import math
import multiprocessing
import os
import re
import signal
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any

import numpy as np

from pcapan.config import (
    LIVE_BATCH_FRAMES,
    LIVE_DASHBOARD_REFRESH_S,
    LIVE_FEED_INTERVAL_S,
    LIVE_FINDINGS_INTERVAL_S,
    LIVE_MAX_PENDING_PARTS,
    LIVE_MAX_TRACKED_HOSTS,
    LIVE_POLL_S,
    LIVE_RTT_WINDOW_SAMPLES,
    LIVE_STOP_DRAIN_S,
    LIVE_TOP_HOSTS,
)
from pcapan.errors import LiveError
from pcapan.live.capture import BatchBuilder, KernelStats, PacketSource, file_format
from pcapan.live.writer import CaptureWriter

if TYPE_CHECKING:
    from pcapan.api import Analyzer, Result

# File formats of -o (the export layer's; "json" is the older name of "jsonl").
EXPORT_FORMATS = ("csv", "parquet", "jsonl", "json", "zeek")
_ROTATE_TIME = re.compile(r"^(\d+(?:\.\d+)?)([smh])$")
_ROTATE_ROWS = re.compile(r"^(\d+)rows$")
_UNIT_S = {"s": 1.0, "m": 60.0, "h": 3600.0}


@dataclass(frozen=True, slots=True)
class RotateSpec:
    """When to close a part of the tables: every ``seconds`` of wall-clock time, or when
    ``rows`` connections have finished since the last part."""

    seconds: float | None = None
    rows: int | None = None

    @staticmethod
    def parse(text: str) -> RotateSpec:
        """``30s``, ``10m``, ``1.5h`` (time) or ``100000rows`` (finished connections)."""
        t = text.strip().lower()
        if m := _ROTATE_TIME.match(t):
            seconds = float(m.group(1)) * _UNIT_S[m.group(2)]
            if seconds > 0:
                return RotateSpec(seconds=seconds)
        elif (m := _ROTATE_ROWS.match(t)) and int(m.group(1)) > 0:
            return RotateSpec(rows=int(m.group(1)))
        raise LiveError(
            f"--rotate {text!r}: expected a time such as 30s, 10m, 1h or a row count such as 100000rows"
        )


@dataclass(frozen=True, slots=True)
class LiveStats:
    """The dashboard's figures at one moment (rates over the last interval)."""

    interface: str
    elapsed_s: float
    packets: int  # frames captured (after the BPF filter)
    bytes: int  # their bytes on the wire
    packets_per_s: float
    bytes_per_s: float
    open_connections: int  # connections in the flow table not closed by FIN/RST yet
    connections: int  # connections finished so far (rows)
    http_requests: int
    requests_per_s: float
    tls_handshakes: int
    top_hosts: tuple[tuple[str, int, int], ...]  # (HTTP Host or TLS SNI, requests, TLS handshakes)
    tls_versions: tuple[tuple[str, int], ...]
    alpn: tuple[tuple[str, int], ...]  # selected ALPN ("?" when not visible, e.g. TLS 1.3)
    rtt_p50_s: float | None  # over the most recent ACK round-trip samples
    rtt_p95_s: float | None
    kernel_packets: int  # PACKET_STATISTICS tp_packets (includes the drops)
    kernel_drops: int  # PACKET_STATISTICS tp_drops
    parts_written: int  # --rotate parts written so far
    # Findings by severity, most severe first, over the connections finished so far: derived
    # from the tables, so recomputed at most every LIVE_FINDINGS_INTERVAL_S while capturing
    # (when the tables are asked for), and on the final snapshot (with --rotate, of the last part).
    findings: tuple[tuple[str, int], ...] = ()


@dataclass(frozen=True, slots=True)
class Snapshot:
    """What :func:`live_snapshots` yields every interval. ``result`` holds the tables so far
    (finished connections; HTTP/TLS rows and anomalies recorded so far), or None when tables
    were not asked for. The last snapshot has ``final=True`` and the finished result."""

    stats: LiveStats
    result: Result | None
    final: bool = False


class _Tally:
    """Running figures for the dashboard, updated from the records added since the last look
    (never from the tables, which would cost the whole run's rows every second)."""

    def __init__(self) -> None:
        self.connections = 0
        self.requests = 0
        self.handshakes = 0
        self.hosts: Counter[str] = Counter()
        self.tls_hosts: Counter[str] = Counter()
        self.versions: Counter[str] = Counter()
        self.alpn: Counter[str] = Counter()
        self.rtt: deque[np.ndarray] = deque()
        self._rtt_n = 0
        self._seen = {"conn": 0, "http": 0, "tls": 0, "rtt": 0}

    def update(self, eng: Any) -> None:
        conns, http, tls, rtt_kind = (
            eng.connections,
            eng.http_ctx.records,
            eng.tls_ctx.records,
            eng.rtt_samples.kind,
        )
        seen = self._seen
        self.connections += len(conns) - seen["conn"]
        for h in http[seen["http"] :]:
            if h.method is not None:
                self.requests += 1
                self.hosts[h.host or h.resp_h] += 1
        for t in tls[seen["tls"] :]:
            self.handshakes += 1
            self.tls_hosts[t.server_name or t.resp_h] += 1
            self.versions[t.version or "?"] += 1
            self.alpn[t.next_protocol or "?"] += 1
        for kind, rtt_ns in zip(
            rtt_kind[seen["rtt"] :], eng.rtt_samples.rtt_ns[seen["rtt"] :], strict=True
        ):
            acks = rtt_ns[kind == 1]
            if acks.shape[0]:
                self.rtt.append(acks[-LIVE_RTT_WINDOW_SAMPLES:])
                self._rtt_n += acks.shape[0]
                while self._rtt_n - self.rtt[0].shape[0] >= LIVE_RTT_WINDOW_SAMPLES:
                    self._rtt_n -= self.rtt.popleft().shape[0]
        self.mark(eng)
        for c in (self.hosts, self.tls_hosts):
            if len(c) > LIVE_MAX_TRACKED_HOSTS:
                keep = c.most_common(LIVE_MAX_TRACKED_HOSTS // 2)
                c.clear()
                c.update(dict(keep))

    def mark(self, eng: Any) -> None:
        """Everything in the engine's lists now counts as seen (also after --rotate took rows)."""
        self._seen = {
            "conn": len(eng.connections),
            "http": len(eng.http_ctx.records),
            "tls": len(eng.tls_ctx.records),
            "rtt": len(eng.rtt_samples.kind),
        }

    def rtt_percentiles(self) -> tuple[float | None, float | None]:
        if not self.rtt:
            return None, None
        v = np.concatenate(list(self.rtt))[-LIVE_RTT_WINDOW_SAMPLES:] / 1e9
        p50, p95 = np.percentile(v, [50, 95])
        return float(p50), float(p95)

    def top_hosts(self) -> tuple[tuple[str, int, int], ...]:
        names = set(self.hosts) | set(self.tls_hosts)
        ranked = sorted(names, key=lambda n: (-(self.hosts[n] + self.tls_hosts[n]), n))[
            :LIVE_TOP_HOSTS
        ]
        return tuple((n, self.hosts[n], self.tls_hosts[n]) for n in ranked)


def _export_part(part: Result, directory: Path, fmt: str, safe_csv: bool) -> list[Path]:
    """Runs in the export process: one --rotate part's tables into ``directory``."""
    return part.export(directory, fmt, safe_csv=safe_csv)


def _new_analyzer(idle_timeout_s: float | None, max_half_open: int | None = None) -> Analyzer:
    # The live layer sits beside api (DESIGN.md): it reaches the Analyzer through the package's
    # public face rather than importing its sibling module.
    import pcapan

    return pcapan.Analyzer(idle_timeout_s=idle_timeout_s, max_half_open=max_half_open)


class LiveCapture:
    """Capture on ``iface`` and analyse as the frames arrive.

    The packet socket is opened here, so a missing interface, missing privileges or a bad
    filter raise :class:`~pcapan.errors.LiveError` at once. Then :meth:`run` (returns the
    Result) or :meth:`snapshots` (yields a :class:`Snapshot` every ``interval_s``) capture
    until :meth:`stop`, Ctrl-C or SIGTERM (when run in the main thread), ``duration_s`` or
    ``count`` frames.
    """

    def __init__(
        self,
        iface: str,
        *,
        bpf_filter: str | None = None,
        duration_s: float | None = None,
        count: int | None = None,
        write: str | os.PathLike[str] | None = None,
        output: str | os.PathLike[str] | None = None,
        fmt: str = "csv",
        safe_csv: bool = False,
        interval_s: float = LIVE_DASHBOARD_REFRESH_S,
        rotate: str | RotateSpec | None = None,
        idle_timeout_s: float | None = None,
        max_half_open: int | None = None,
        promisc: bool = True,
        analyzer: Analyzer | None = None,
    ) -> None:
        if duration_s is not None and not duration_s > 0:
            raise LiveError("--duration must be more than 0 seconds")
        if count is not None and count < 1:
            raise LiveError("--count must be at least 1")
        if not interval_s > 0:
            raise LiveError("--interval must be more than 0 seconds")
        if fmt not in EXPORT_FORMATS:
            raise LiveError(f"--format {fmt!r}: one of {', '.join(EXPORT_FORMATS)}")
        if safe_csv and (output is None or fmt != "csv"):
            raise LiveError("--safe-csv needs -o DIR and --format csv")
        self.rotate = RotateSpec.parse(rotate) if isinstance(rotate, str) else rotate
        if self.rotate is not None and output is None:
            raise LiveError("--rotate needs -o DIR (the parts are written there)")
        self.iface = iface
        self.bpf_filter = bpf_filter
        self.duration_s = duration_s
        self.count = count
        self.output = Path(output) if output is not None else None
        self.fmt = fmt
        self.safe_csv = safe_csv
        self.interval_s = interval_s
        self.write_path = Path(write) if write is not None else None
        # The source name is what pcapan.analyze() would call the --write file (its path as
        # given), so the live tables and the file's tables agree in every column.
        self.source_name = os.fspath(write) if write is not None else f"live:{iface}"
        layout = file_format(self.write_path) if self.write_path is not None else "pcap"
        self.source = PacketSource(iface, bpf_filter, layout=layout, promisc=promisc)
        self.writer: CaptureWriter | None = None
        try:
            if write is not None:
                self.writer = CaptureWriter(
                    write, layout, self.source.linktype, self.source.snaplen, iface, bpf_filter
                )
            self.analyzer = (
                analyzer if analyzer is not None else _new_analyzer(idle_timeout_s, max_half_open)
            )
        except BaseException:
            self.source.close()
            raise
        self._stop = threading.Event()
        self.stop_reason = ""
        self.result: Result | None = None
        self.parts: list[Path] = []
        self._exporter: ProcessPoolExecutor | None = None
        self._pending: list[Future[list[Path]]] = []
        self._tally = _Tally()
        self._frames = 0
        self._bytes = 0
        self._started = 0.0
        self._last = (0.0, 0, 0, 0)  # (time, packets, bytes, requests) at the previous snapshot
        # Findings counts shown while capturing, and when (and over how many connections) they
        # were last computed (see _with_findings).
        self._findings: tuple[tuple[str, int], ...] = ()
        self._findings_at = -math.inf
        self._findings_rows = 0

    # -- control ---------------------------------------------------------------------------------
    def stop(self, reason: str = "stop") -> None:
        """Ask the capture to end (thread-safe; takes effect within LIVE_POLL_S)."""
        if not self.stop_reason:
            self.stop_reason = reason
        self._stop.set()

    def run(
        self,
        *,
        on_snapshot: Callable[[Snapshot], None] | None = None,
        dashboard: bool = False,
        handle_signals: bool = True,
    ) -> Result:
        """Capture until stopped; returns the finished Result (the tables of every connection,
        open ones flushed). ``on_snapshot`` gets a :class:`Snapshot` with tables every
        ``interval_s``; ``dashboard`` draws the live terminal view on stdout."""
        live_view = None
        if dashboard:
            from pcapan.live.dashboard import Dashboard

            live_view = Dashboard(self.bpf_filter)
        try:
            for snap in self.snapshots(
                tables=on_snapshot is not None, handle_signals=handle_signals
            ):
                if live_view is not None:
                    live_view.update(snap.stats, final=snap.final)
                if on_snapshot is not None:
                    on_snapshot(snap)
        finally:
            if live_view is not None:
                live_view.close()
        assert self.result is not None
        return self.result

    def snapshots(self, *, tables: bool = True, handle_signals: bool = True) -> Iterator[Snapshot]:
        """Capture, yielding a :class:`Snapshot` every ``interval_s`` and a final one. Leaving
        the loop early (break) stops the capture and closes the socket and the file."""
        restore: dict[signal.Signals, Any] = {}
        if handle_signals and threading.current_thread() is threading.main_thread():

            def on_signal(signum: int, _frame: FrameType | None) -> None:
                self.stop("signal" if signum == signal.SIGINT else "sigterm")

            for sig in (signal.SIGINT, signal.SIGTERM):
                restore[sig] = signal.signal(sig, on_signal)
        try:
            yield from self._loop(tables)
        finally:
            for sig, old in restore.items():
                signal.signal(sig, old)
            self._close()

    # -- the loop --------------------------------------------------------------------------------
    def _new_batch(self) -> BatchBuilder:
        return BatchBuilder(self.source.layout, self.source.linktype, self._frames + 1)

    def _room(self, batch: BatchBuilder) -> int:
        room = LIVE_BATCH_FRAMES - len(batch)
        if self.count is not None:
            room = min(room, self.count - self._frames - len(batch))
        return room

    def _feed(self, batch: BatchBuilder) -> BatchBuilder:
        if not len(batch):
            return batch
        fb, records = batch.finish()
        if self.writer is not None:
            self.writer.write(records)
        records.release()
        self._frames += len(fb)
        self._bytes += int(fb.wirelen.sum())
        self.analyzer.feed(fb)
        eng = self.analyzer.engine
        self._tally.update(eng)
        if (
            self.rotate is not None
            and self.rotate.rows is not None
            and len(eng.connections) >= self.rotate.rows
        ):
            self._write_part(self.analyzer.snapshot(take=True))
        return self._new_batch()

    def _loop(self, tables: bool) -> Iterator[Snapshot]:
        src = self.source
        self.analyzer.start_source(self.source_name)
        self._started = start = time.monotonic()
        self._last = (start, 0, 0, 0)
        part_started = start
        deadline = start + self.duration_s if self.duration_s is not None else math.inf
        next_tick = start + self.interval_s
        batch = self._new_batch()
        while True:
            now = time.monotonic()
            if self._stop.is_set():
                break
            if now >= deadline:
                self.stop("duration")
                break
            if self.count is not None and self._frames + len(batch) >= self.count:
                self.stop("count")
                break
            due = min(
                next_tick,
                deadline,
                batch.started + LIVE_FEED_INTERVAL_S if len(batch) else math.inf,
            )
            if src.wait(min(LIVE_POLL_S, due - now)):
                src.read(batch, self._room(batch))
            now = time.monotonic()
            if (
                len(batch) >= LIVE_BATCH_FRAMES
                or batch.full(src.snaplen)
                or (len(batch) and now - batch.started >= LIVE_FEED_INTERVAL_S)
            ):
                batch = self._feed(batch)
            if now >= next_tick:
                batch = self._feed(batch)
                if (
                    self.rotate is not None
                    and self.rotate.seconds is not None
                    and now - part_started >= self.rotate.seconds
                ):
                    self._write_part(self.analyzer.snapshot(take=True))
                    part_started = now
                snap = self.analyzer.snapshot() if tables else None
                yield Snapshot(self._with_findings(self._stats(now), snap, now), snap)
                next_tick = max(next_tick + self.interval_s, now)
        # Frames already queued in the kernel were on the wire before the stop: read them.
        drain_end = time.monotonic() + LIVE_STOP_DRAIN_S
        while time.monotonic() < drain_end and self._room(batch) > 0:
            got = src.read(batch, self._room(batch))
            if len(batch) >= LIVE_BATCH_FRAMES or batch.full(src.snaplen):
                batch = self._feed(batch)
            elif not got:
                break
        batch = self._feed(batch)
        yield self._finish()

    def _with_findings(self, stats: LiveStats, snap: Result | None, now: float) -> LiveStats:
        """``stats`` with the findings counts of ``snap`` (recomputed when connections finished
        since the last count and LIVE_FINDINGS_INTERVAL_S has passed; else the last counts)."""
        if snap is not None:
            rows = len(snap.connection_records)
            if rows != self._findings_rows and now - self._findings_at >= LIVE_FINDINGS_INTERVAL_S:
                from pcapan.frames.findings import severity_counts

                self._findings = tuple(severity_counts(snap.findings).items())
                self._findings_rows, self._findings_at = rows, now
        return dataclasses.replace(stats, findings=self._findings) if self._findings else stats

    def _finish(self) -> Snapshot:
        kernel = self.source.kernel_stats()
        self.source.close()
        res = self.analyzer.finish()
        self._tally.update(self.analyzer.engine)
        if self.writer is not None:
            self.writer.close(kernel.packets, kernel.drops)
        elapsed = time.monotonic() - self._started
        res.stats["live"] = {
            "interface": self.iface,
            "filter": self.bpf_filter,
            "packets": self._frames,
            "bytes": self._bytes,
            "duration_s": round(elapsed, 3),
            "stopped_by": self.stop_reason or "stop",
            "kernel_packets": kernel.packets,
            "kernel_drops": kernel.drops,
            "write": os.fspath(self.write_path) if self.write_path is not None else None,
        }
        if kernel.drops:
            res.warnings.append(
                f"the kernel dropped {kernel.drops} packet(s) on {self.iface} "
                "(the capture could not keep up): the tables miss them"
            )
        if self.rotate is not None:
            if len(res.connection_records) or len(res.anomaly_records) or not self.parts:
                self._write_part(res)
            self._wait_parts()
            res.stats["live"]["parts"] = [os.fspath(p) for p in self.parts]
        elif self.output is not None:
            res.export(self.output, self.fmt, safe_csv=self.safe_csv)
        self.result = res
        from pcapan.frames.findings import severity_counts

        stats = dataclasses.replace(
            self._stats(time.monotonic(), kernel),
            findings=tuple(severity_counts(res.findings).items()),
        )
        return Snapshot(stats, res, final=True)

    def _write_part(self, part: Result) -> None:
        """One --rotate part: every table of the connections finished since the last part."""
        assert self.output is not None
        self._tally.mark(self.analyzer.engine)
        if not (part.connection_records or part.anomaly_records):
            return
        if self.writer is not None:
            self.writer.flush()
        directory = self.output / f"part-{len(self.parts) + 1:06d}"
        self.parts.append(directory)
        # Building a big part's tables takes seconds of CPU (the servers/missed_reuse tables
        # most); in a process of its own it neither holds this process' GIL nor stalls the
        # capture loop. The part's records are already out of the engine and are pickled over.
        if self._exporter is None:
            self._exporter = ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn"))
        while len(self._pending) >= LIVE_MAX_PENDING_PARTS:
            self._pending.pop(0).result()  # back-pressure; an export error ends the capture here
        self._pending.append(
            self._exporter.submit(_export_part, part, directory, self.fmt, self.safe_csv)
        )
        for f in [f for f in self._pending if f.done()]:
            self._pending.remove(f)
            f.result()

    def _wait_parts(self) -> None:
        pending, self._pending = self._pending, []
        for f in pending:
            f.result()

    def _stats(self, now: float, kernel: KernelStats | None = None) -> LiveStats:
        t = self._tally
        last_t, last_p, last_b, last_r = self._last
        dt = max(now - last_t, 1e-9)
        self._last = (now, self._frames, self._bytes, t.requests)
        p50, p95 = t.rtt_percentiles()
        k = kernel if kernel is not None else self.source.kernel_stats()
        return LiveStats(
            interface=self.iface,
            elapsed_s=now - self._started,
            packets=self._frames,
            bytes=self._bytes,
            packets_per_s=(self._frames - last_p) / dt,
            bytes_per_s=(self._bytes - last_b) / dt,
            open_connections=sum(
                1 for c in self.analyzer.engine.flows.values() if not c.close_reason
            )
            + len(self.analyzer.engine.half_open),
            connections=t.connections,
            http_requests=t.requests,
            requests_per_s=(t.requests - last_r) / dt,
            tls_handshakes=t.handshakes,
            top_hosts=t.top_hosts(),
            tls_versions=tuple(t.versions.most_common()),
            alpn=tuple(t.alpn.most_common()),
            rtt_p50_s=p50,
            rtt_p95_s=p95,
            kernel_packets=k.packets,
            kernel_drops=k.drops,
            parts_written=len(self.parts),
        )

    def _close(self) -> None:
        """Release the socket and the file, also when the consumer left the loop early."""
        self.source.close()
        if self._exporter is not None:
            self._exporter.shutdown(wait=True)
        if self.writer is not None:
            k = self.source.kernel_stats()
            self.writer.close(k.packets, k.drops)
