"""Every analysis path over one input file, and what counts as a failure.

A failure is: an exception other than a documented pcapan error at the file level
(:class:`pcapan.errors.PcapanError`, which the CLI turns into one line and exit 2), a stage that
overruns its time limit, a MemoryError under the worker's address-space limit, a violated
invariant (a table whose columns are not the schema's, a uid given to two connections), tables
that differ between the folded and the packet-by-packet engine, a CSV export that does not read
back to the same table, and a CLI run that exits with anything but 0, or 2 with one line on
stderr.
"""

from __future__ import annotations

import dataclasses
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
# Stages that build tables, exports and the report cost 100x the engine on small captures
# (pandas per-table overhead; the report draws eight figures); they run on a fraction.
STAGES = ("analyze", "invariants", "tables", "fold", "export", "report", "cli")


class StageTimeout(BaseException):
    """Raised by the per-input alarm. A BaseException, so that an ``except Exception`` in the code
    under test cannot swallow it."""


@dataclass
class Plan:
    """Which of the expensive paths one input goes through (drawn from the input's own rng)."""

    tables: bool = True
    fold: bool = False
    fold_tables: bool = False
    export: bool = False
    report: bool = False
    cli: bool = False


@dataclass
class Fractions:
    """Shares of all inputs that take each expensive path (export, report and fold_tables
    build the tables whatever ``tables`` draws)."""

    tables: float = 0.1
    fold: float = 0.25
    fold_tables: float = 0.01
    export: float = 0.01
    report: float = 0.002
    cli: float = 0.005

    def plan(self, seed: int, index: int) -> Plan:
        rng = random.Random(f"pcapan-fuzz-plan:{seed}:{index}")
        p = Plan(
            tables=rng.random() < self.tables,
            fold=rng.random() < self.fold,
            fold_tables=rng.random() < self.fold_tables,
            export=rng.random() < self.export,
            report=rng.random() < self.report,
            cli=rng.random() < self.cli,
        )
        p.fold |= p.fold_tables
        p.tables |= p.export or p.report or p.fold_tables
        return p


@dataclass
class Failure:
    stage: str
    kind: str  # exception, hang, memory, invariant, fold-mismatch, export-roundtrip, cli
    signature: str
    detail: str


@dataclass
class Outcome:
    status: str = "ok"  # ok | rejected (a PcapanError at the file level) | failed
    failures: list[Failure] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)
    rejected: str = ""


def signature(stage: str, exc: BaseException) -> str:
    """Exception type plus the innermost frame in pcapan (file and function, no line number:
    the same bug keeps its signature while other helpers edit the file)."""
    where = "?"
    for fs in reversed(traceback.extract_tb(exc.__traceback__)):
        fn = fs.filename.replace(os.sep, "/")
        if "/pcapan/" in fn and "/tests/" not in fn:
            where = f"pcapan/{fn.rsplit('/pcapan/', 1)[1]}:{fs.name}"
            break
    else:
        tb = traceback.extract_tb(exc.__traceback__)
        if tb:
            where = f"{Path(tb[-1].filename).name}:{tb[-1].name}"
    kind = type(exc).__name__
    return f"{stage}:{kind}@{where}"


def _tb(exc: BaseException) -> str:
    return "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))


class _Alarm:
    """A limit on the CPU time of one stage (ITIMER_PROF: user + system time of this process, so
    that a machine busy with other work does not make slow stages look like hangs; a stage
    blocked without using CPU is caught by the parent's wall-clock limit instead). The handler
    raises StageTimeout in the main thread."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds

    def __enter__(self) -> None:
        def fire(_sig: int, _frm: Any) -> None:
            raise StageTimeout(f"stage over its {self.seconds:g} s CPU limit")

        self._old = signal.signal(signal.SIGPROF, fire)
        signal.setitimer(signal.ITIMER_PROF, self.seconds)

    def __exit__(self, *exc: object) -> None:
        signal.setitimer(signal.ITIMER_PROF, 0)
        signal.signal(signal.SIGPROF, self._old)


def _record_key(name: str, r: Any) -> tuple[Any, ...]:
    if name == "anomalies":
        return (r.uid, r.name, r.frame, r.source)
    if name == "http":
        return (r.uid, r.trans_depth)
    return (r.uid, r.ts_ns)


def fold_diff(a: Any, b: Any) -> tuple[str, str] | None:
    """The first difference between two results' records, as (table.field, detail): rows matched
    by key, fields compared by repr (so NaN equals NaN)."""
    for name, attr in (
        ("connections", "connection_records"),
        ("http", "http_records"),
        ("tls", "tls_records"),
        ("anomalies", "anomaly_records"),
    ):
        ra: dict[tuple[Any, ...], list[Any]] = {}
        rb: dict[tuple[Any, ...], list[Any]] = {}
        for recs, d in ((getattr(a, attr), ra), (getattr(b, attr), rb)):
            for r in recs:
                d.setdefault(_record_key(name, r), []).append(r)
        for key in sorted(set(ra) | set(rb), key=repr):
            xa, xb = ra.get(key, []), rb.get(key, [])
            if len(xa) != len(xb):
                return (
                    f"{name}.rows",
                    f"{name} {key}: {len(xa)} folded vs {len(xb)} packet-by-packet: {(xa or xb)[0]!r:.1500}",
                )
            for x, y in zip(sorted(xa, key=repr), sorted(xb, key=repr), strict=True):
                for f in dataclasses.fields(x):
                    vx, vy = getattr(x, f.name), getattr(y, f.name)
                    if repr(vx) != repr(vy):
                        return f"{name}.{f.name}", (
                            f"{name} {key}: {f.name} folded {vx!r:.500} vs packet-by-packet "
                            f"{vy!r:.500}"
                        )
    ca, cb = a.rtt_samples.columns(), b.rtt_samples.columns()
    sa = sorted(zip(*(ca[k].tolist() for k in sorted(ca)), strict=True))
    sb = sorted(zip(*(cb[k].tolist() for k in sorted(cb)), strict=True))
    if sa != sb:
        return (
            "rtt.samples",
            f"{len(sa)} folded rtt samples vs {len(sb)}: first differing {sorted(set(sa) ^ set(sb))[:2]}",
        )
    return None


def _invariants(res: Any) -> list[tuple[str, str]]:
    bad: list[tuple[str, str]] = []
    uids = [r.uid for r in res.connection_records]
    if len(set(uids)) != len(uids):
        dup = len(uids) - len(set(uids))
        bad.append(("uid-unique", f"{dup} of {len(uids)} connection records repeat a uid"))
    known = set(uids)
    for name, recs in (("http", res.http_records), ("tls", res.tls_records)):
        orphans = sum(1 for r in recs if r.uid not in known)
        if orphans:
            bad.append(
                (
                    f"{name}-uid-known",
                    f"{orphans} {name} records name a uid with no connection record",
                )
            )
    if res.stats.get("frames", 0) < 0:
        bad.append(("frames", "negative frame count"))
    return bad


def _table_invariants(res: Any) -> list[tuple[str, str]]:
    from pcapan.frames.schema import TABLES

    bad = []
    tables = res.tables()
    for name, cols in TABLES.items():
        df = tables[name]
        want = [c.name for c in cols]
        if list(df.columns) != want:
            bad.append((f"columns-{name}", f"{name}: columns {list(df.columns)} != schema {want}"))
            continue
        wrong = [
            f"{c.name}:{df[c.name].dtype}!={c.dtype}"
            for c in cols
            if str(df[c.name].dtype) != c.dtype
        ]
        if wrong:
            bad.append((f"dtypes-{name}", f"{name}: {', '.join(wrong[:5])}"))
    return bad


def run_checks(
    path: Path,
    plan: Plan,
    *,
    time_limit_s: float,
    report_limit_s: float,
    cli_timeout_s: float,
    workdir: Path,
) -> Outcome:
    """Run ``plan``'s paths over ``path``; never raises (except KeyboardInterrupt)."""
    import pandas as pd

    import pcapan
    from pcapan.api import Analyzer
    from pcapan.errors import PcapanError

    out = Outcome()

    def fail(stage: str, kind: str, sig: str, detail: str) -> None:
        out.failures.append(Failure(stage, kind, sig, detail))
        out.status = "failed"

    def guard(stage: str, fn: Any, limit: float) -> Any:
        t0 = time.perf_counter()
        try:
            with _Alarm(limit):
                return fn()
        except StageTimeout as exc:
            fail(stage, "hang", signature(stage, exc).replace("StageTimeout", "hang"), _tb(exc))
        except MemoryError as exc:
            fail(stage, "memory", signature(stage, exc), _tb(exc))
        except PcapanError as exc:
            if stage == "analyze":
                out.status = "rejected"
                out.rejected = str(exc)
                if "\n" in str(exc):
                    fail(stage, "invariant", "analyze:invariant@error-message-one-line", str(exc))
            else:
                fail(stage, "exception", signature(stage, exc), _tb(exc))
        except Exception as exc:  # noqa: BLE001 - any other exception is the finding
            fail(stage, "exception", signature(stage, exc), _tb(exc))
        finally:
            out.seconds[stage] = out.seconds.get(stage, 0.0) + time.perf_counter() - t0
        return None

    res = guard("analyze", lambda: pcapan.analyze(path), time_limit_s)
    if res is not None:
        for name, detail in guard("invariants", lambda: _invariants(res), time_limit_s) or []:
            fail("invariants", "invariant", f"invariants:{name}", detail)
        tables_ok = False
        if plan.tables:

            def tables() -> list[tuple[str, str]]:
                res.tables()
                json.dumps(res.summary(), default=str)
                return _table_invariants(res)

            bad = guard("tables", tables, time_limit_s)
            tables_ok = bad is not None
            for name, detail in bad or []:
                fail("tables", "invariant", f"tables:{name}", detail)
        if plan.fold:

            def fold() -> tuple[str, str] | None:
                an = Analyzer()
                an._engine.fold_bulk = False
                an.feed_source(path)
                slow = an.finish()
                diff = fold_diff(res, slow)
                if diff is None and tables_ok and plan.fold_tables:
                    # Records equal make tables equal unless table building depends on record
                    # order: checked on a share of inputs (the tables cost 100x the records).
                    slow_tables = slow.tables()
                    for name, df in res.tables().items():
                        try:
                            pd.testing.assert_frame_equal(df, slow_tables[name], obj=name)
                        except AssertionError as exc:
                            return f"table-{name}", str(exc)[:2000]
                return diff

            diff = guard("fold", fold, time_limit_s * 2)
            if diff:
                fail("fold", "fold-mismatch", f"fold:{diff[0]}", diff[1])
        if plan.export and tables_ok:

            def export() -> str | None:
                from pcapan.export.tables import read_csv

                with tempfile.TemporaryDirectory(dir=workdir) as d:
                    for fmt in ("csv", "parquet", "jsonl", "zeek"):
                        res.export(Path(d) / fmt, fmt, safe_csv=False)
                    res.export(Path(d) / "safe", "csv", safe_csv=True)
                    for name, df in res.tables().items():
                        back = read_csv(Path(d) / "csv" / f"{name}.csv", name)
                        try:
                            pd.testing.assert_frame_equal(back, df, check_exact=True, obj=name)
                        except AssertionError as exc:
                            return f"{name}: {str(exc)[:2000]}"
                return None

            diff = guard("export", export, time_limit_s * 2)
            if diff:
                fail(
                    "export",
                    "export-roundtrip",
                    f"export:csv-roundtrip-{diff.split(':', 1)[0]}",
                    diff,
                )
        if plan.report and tables_ok:

            def report() -> None:
                res.report(workdir / "report.html", plots=True)
                import matplotlib.pyplot as plt

                plt.close("all")

            guard("report", report, report_limit_s)
    if plan.cli:
        t0 = time.perf_counter()
        problem = cli_check(path, out.status == "rejected", cli_timeout_s, workdir)
        out.seconds["cli"] = time.perf_counter() - t0
        if problem:
            fail("cli", "cli", f"cli:{problem[0]}", problem[1])
    return out


def cli_check(
    path: Path, rejected: bool, timeout_s: float, workdir: Path
) -> tuple[str, str] | None:
    """``python -m pcapan.cli analyze FILE``: exit 0, or 2 with exactly one ``pcapan: error:``
    line on stderr; never a traceback; and 2 exactly when the library refused the file."""
    env = {**os.environ, "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    cmd = [sys.executable, "-m", "pcapan.cli", "analyze", "--no-progress", str(path)]
    try:
        p = subprocess.run(
            cmd, capture_output=True, timeout=timeout_s, env=env, cwd=workdir, check=False
        )
    except subprocess.TimeoutExpired:
        return "hang", f"{' '.join(cmd)}: no exit within {timeout_s} s"
    err = p.stderr.decode("utf-8", "replace")
    lines = [ln for ln in err.splitlines() if ln.strip()]
    if "Traceback" in err:
        last = lines[-1] if lines else ""
        return f"traceback-{last.split(':', 1)[0]}", err[-4000:]
    if p.returncode == 2:
        if len(lines) != 1 or not lines[0].startswith("pcapan: error:"):
            return "exit2-stderr", f"exit 2 with stderr {err[-2000:]!r}"
        if not rejected:
            return "exit2-but-library-accepts", err
        return None
    if p.returncode != 0:
        return f"exit{p.returncode}", err[-4000:]
    if rejected:
        return "exit0-but-library-rejects", err[-2000:]
    stray = [ln for ln in lines if not ln.startswith("pcapan: ")]
    if stray:
        return "stderr-noise", err[-2000:]
    return None
