"""The campaign: worker processes under a memory limit, inputs by index, reproducers, a summary.

The parent process never imports pcapan: it hands input indices to workers, each of which
generates the input itself (inputs are a pure function of the campaign seed and the index), runs
every path under a per-stage alarm and an address-space limit (RLIMIT_AS), and answers with the
outcome. A worker that dies (a segfault, the kernel's OOM killer) or stops answering is replaced;
the parent regenerates the input and saves it as a reproducer.

``--out DIR`` holds ``summary.json`` (rewritten every few seconds: inputs, rates, failures by
signature, hangs, peak worker RSS) and ``repro/<signature>/`` (a few inputs per signature, each
with its traceback and the mutations that made it). Run again with the same DIR and ``--resume``
to continue a campaign: indices already done are skipped.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import multiprocessing as mp
import os
import re
import resource
import sys
import time
from dataclasses import asdict, dataclass, field
from multiprocessing.connection import Connection, wait
from pathlib import Path
from typing import Any

from tests.fuzz.capture import Capture, parse, read_bytes
from tests.fuzz.check import REPO, Fractions

SAMPLES = REPO / "samples"
# The shared conformance corpus sits beside the main checkout (../shared/corpus); from a git
# worktree under /work/wt/NAME it is two levels up.
CORPUS_CANDIDATES = (REPO.parent / "shared" / "corpus", REPO.parent.parent / "shared" / "corpus")
REPROS_PER_SIGNATURE = 3
SUMMARY_EVERY_S = 10.0
# A worker is recycled after this many inputs, so that slow leaks in the code under test (or in
# matplotlib's caches) do not build up to the memory limit and look like a finding.
INPUTS_PER_WORKER = 3000


@dataclass
class Config:
    inputs: int = 1000
    seed: int = 0
    workers: int = 1
    out: Path = Path("fuzz-out")
    start: int = 0
    time_limit_s: float = 10.0
    report_limit_s: float = 120.0
    cli_timeout_s: float = 60.0
    mem_limit_mb: int = 1536
    max_records: int = 80
    fractions: Fractions = field(default_factory=Fractions)
    corpus: Path | None = None
    resume: bool = False
    quiet: bool = False

    @property
    def hard_limit_s(self) -> float:
        """How long the parent waits for one answer before it kills the worker (the alarm in the
        worker cannot interrupt a long call inside C code)."""
        return 3 * (6 * self.time_limit_s + self.report_limit_s + self.cli_timeout_s) + 30


def seed_paths(corpus: Path | None = None) -> list[Path]:
    files = sorted(p for p in SAMPLES.glob("*.pcap*") if p.is_file())
    dirs = [corpus] if corpus else [c for c in CORPUS_CANDIDATES if c.is_dir()][:1]
    for d in dirs:
        files += sorted(
            p
            for p in d.rglob("*.pcap*")
            if p.is_file()
            and ".gt" not in p.parts[-2]
            and re.search(r"\.(pcap|pcapng)(\.gz)?$", p.name)
            and "/.gt" not in str(p)
            and ".gt/" not in str(p)
        )
    return files


def load_seeds(corpus: Path | None = None) -> tuple[list[Capture], list[bytes]]:
    caps, raws = [], []
    for p in seed_paths(corpus):
        raw = read_bytes(p)
        try:
            cap = parse(raw, p.name)
        except ValueError:
            continue
        if cap.records:
            caps.append(cap)
            raws.append(raw)
    return caps, raws


# -- worker ---------------------------------------------------------------------------------------


def _vm_size_bytes() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmSize:"):
                return int(line.split()[1]) * 1024
    return 0


def _cpu_s() -> float:
    """CPU seconds of this process and its waited-for children (the CLI runs)."""
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


def _worker(conn: Connection, cfg: Config, wid: int) -> None:
    # One thread per math library: thread pools reserve address space per thread and would eat
    # the RLIMIT_AS budget; the campaign's parallelism is its worker processes. Arrow's default
    # pool (mimalloc) reserves about 1.3 GB of address space within the first few hundred
    # inputs while its resident size stays under 200 MB, so under RLIMIT_AS it produced a
    # MemoryError that replayed alone was clean (seed 2, input 5669): the system allocator
    # keeps the limit a measure of memory actually used.
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = "1"
    os.environ["ARROW_DEFAULT_MEMORY_POOL"] = "system"
    os.environ["MPLBACKEND"] = "Agg"
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot  # noqa: F401 - imported before the limit, as the report needs it
    import pandas  # noqa: F401
    import pyarrow.csv  # noqa: F401
    import pyarrow.parquet  # noqa: F401

    import pcapan.api  # noqa: F401
    import pcapan.report  # noqa: F401
    from tests.fuzz.check import run_checks
    from tests.fuzz.mutate import generate

    seeds, raws = load_seeds(cfg.corpus)
    base = _vm_size_bytes()
    limit = base + cfg.mem_limit_mb * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    workdir = cfg.out / "work" / f"w{wid}-{os.getpid()}"
    workdir.mkdir(parents=True, exist_ok=True)
    conn.send(("ready", {"vm_base_mb": base >> 20}))
    while True:
        msg = conn.recv()
        if msg is None:
            break
        index = msg
        try:
            inp = generate(seeds, raws, cfg.seed, index, max_records=cfg.max_records)
        except Exception as exc:  # noqa: BLE001 - a bug in the fuzzer, not in pcapan: report it as such
            conn.send(
                (
                    "done",
                    {
                        "index": index,
                        "status": "failed",
                        "seconds": {},
                        "rss_kb": 0,
                        "bytes": 0,
                        "failures": [
                            {
                                "stage": "generate",
                                "kind": "fuzzer-bug",
                                "detail": repr(exc),
                                "signature": f"generate:{type(exc).__name__}",
                            }
                        ],
                    },
                )
            )
            continue
        path = workdir / f"input{inp.suffix}"
        path.write_bytes(inp.data)
        plan = cfg.fractions.plan(cfg.seed, index)
        t0 = time.perf_counter()
        c0 = _cpu_s()
        out = run_checks(
            path,
            plan,
            time_limit_s=cfg.time_limit_s,
            report_limit_s=cfg.report_limit_s,
            cli_timeout_s=cfg.cli_timeout_s,
            workdir=workdir,
        )
        rss_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        conn.send(
            (
                "done",
                {
                    "index": index,
                    "status": out.status,
                    "failures": [asdict(f) for f in out.failures],
                    "seconds": out.seconds,
                    "total_s": time.perf_counter() - t0,
                    "cpu_s": _cpu_s() - c0,
                    "rss_kb": rss_kb,
                    "plan": asdict(plan),
                    "bytes": len(inp.data),
                },
            )
        )
        if any(f.kind == "memory" for f in out.failures):
            break  # after a MemoryError the heap may be in any state: start afresh
    conn.close()


# -- parent ---------------------------------------------------------------------------------------


class _Slot:
    def __init__(self, ctx: Any, cfg: Config, wid: int) -> None:
        self.wid = wid
        parent, child = ctx.Pipe()
        self.proc = ctx.Process(target=_worker, args=(child, cfg, wid), daemon=True)
        self.proc.start()
        child.close()
        self.conn = parent
        self.ready = False
        self.index: int | None = None
        self.since = 0.0
        self.served = 0

    def kill(self) -> None:
        if self.proc.is_alive():
            self.proc.kill()
        self.proc.join(5)
        self.conn.close()


def _sig_dir(sig: str) -> str:
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "_", sig)[:80]
    return f"{slug}-{hashlib.sha1(sig.encode()).hexdigest()[:8]}"


class Campaign:
    def __init__(self, cfg: Config) -> None:
        self.cfg = cfg
        self.out = cfg.out
        self.summary_path = self.out / "summary.json"
        # Indices done, as [start, end) runs (a million inputs are a handful of runs) plus those
        # finished since the last save.
        self.done_runs: list[list[int]] = []
        self.done_new: set[int] = set()
        self.stats: dict[str, Any] = {
            "seed": cfg.seed,
            "inputs_done": 0,
            "ok": 0,
            "rejected": 0,
            "failed": 0,
            "hangs": 0,
            "memory": 0,
            "worker_deaths": 0,
            "worker_restarts": 0,
            "signatures": {},
            "stage_seconds": {},
            "stage_runs": {},
            "peak_worker_rss_mb": 0.0,
            "busy_s": 0.0,
            "cpu_s": 0.0,
            "inputs_without_cpu": 0,  # (done before CPU time was counted: left out of the rate)
            "elapsed_s": 0.0,
            "input_bytes": 0,
        }
        self._seeds: tuple[list[Capture], list[bytes]] | None = None

    # persistence
    def load(self) -> None:
        if not self.summary_path.exists():
            return
        old = json.loads(self.summary_path.read_text())
        if old.get("seed") != self.cfg.seed:
            raise SystemExit(
                f"{self.summary_path}: campaign seed {old.get('seed')} != --seed {self.cfg.seed}"
            )
        self.stats.update({k: v for k, v in old.items() if k in self.stats})
        if "cpu_s" not in old:  # a summary from before CPU time was counted
            self.stats["inputs_without_cpu"] = old.get("inputs_done", 0)
        self.done_runs = old.get("done", [])

    def save(self) -> None:
        s = dict(self.stats)
        el = s["elapsed_s"]
        s["inputs_per_s"] = round(s["inputs_done"] / el, 2) if el else None
        # Wall time per input (a busy machine stretches it) and CPU time per input (what a
        # campaign costs whatever else runs: inputs per CPU second is the rate of one worker on a
        # core of its own).
        s["inputs_per_s_per_worker"] = (
            round(s["inputs_done"] / s["busy_s"], 2) if s["busy_s"] else None
        )
        cpu_runs = s["inputs_done"] - s["inputs_without_cpu"]
        if s["cpu_s"] and cpu_runs > 0:
            s["inputs_per_cpu_s"] = round(cpu_runs / s["cpu_s"], 2)
            s["estimate_1M_inputs_cpu_h"] = round(1e6 / s["inputs_per_cpu_s"] / 3600, 1)
        s["config"] = {
            k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(self.cfg).items()
        }
        self.done_runs = _merge(self.done_runs, self.done_new)
        self.done_new = set()
        s["done"] = self.done_runs
        tmp = self.summary_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(s, indent=1, default=str))
        tmp.replace(self.summary_path)

    # results
    def seeds(self) -> tuple[list[Capture], list[bytes]]:
        if self._seeds is None:
            self._seeds = load_seeds(self.cfg.corpus)
        return self._seeds

    def record(self, r: dict[str, Any]) -> None:
        st = self.stats
        self.done_new.add(r["index"])
        st["inputs_done"] += 1
        st[r["status"]] += 1
        st["busy_s"] += r.get("total_s", 0.0)
        st["cpu_s"] += r.get("cpu_s", 0.0)
        st["input_bytes"] += r.get("bytes", 0)
        st["peak_worker_rss_mb"] = max(
            st["peak_worker_rss_mb"], round(r.get("rss_kb", 0) / 1024, 1)
        )
        for stage, sec in r.get("seconds", {}).items():
            st["stage_seconds"][stage] = round(st["stage_seconds"].get(stage, 0.0) + sec, 3)
            st["stage_runs"][stage] = st["stage_runs"].get(stage, 0) + 1
        for f in r["failures"]:
            if f["kind"] == "hang":
                st["hangs"] += 1
            if f["kind"] == "memory":
                st["memory"] += 1
            sig = st["signatures"].setdefault(
                f["signature"],
                {
                    "count": 0,
                    "kind": f["kind"],
                    "stage": f["stage"],
                    "first_index": r["index"],
                    "repros": [],
                },
            )
            sig["count"] += 1
            if len(sig["repros"]) < REPROS_PER_SIGNATURE:
                sig["repros"].append(self.save_repro(r["index"], f))

    def save_repro(self, index: int, f: dict[str, Any]) -> str:
        from tests.fuzz.mutate import generate

        caps, raws = self.seeds()
        d = self.out / "repro" / _sig_dir(f["signature"])
        d.mkdir(parents=True, exist_ok=True)
        try:
            inp = generate(caps, raws, self.cfg.seed, index, max_records=self.cfg.max_records)
        except Exception as exc:  # noqa: BLE001 - the fuzzer's own bug: keep the notes
            (d / f"{index}.txt").write_text(
                f"signature: {f['signature']}\n{exc!r}\n{f['detail']}\n"
            )
            return str((d / f"{index}.txt").relative_to(self.out))
        path = d / f"{index}{inp.suffix}"
        path.write_bytes(inp.data)
        plan = self.cfg.fractions.plan(self.cfg.seed, index)
        (d / f"{index}.txt").write_text(
            f"signature: {f['signature']}\nkind: {f['kind']}\nstage: {f['stage']}\n"
            f"campaign seed {self.cfg.seed}, input {index}; replay: python -m tests.fuzz --seed {self.cfg.seed} "
            f"--only {index}\nseeds: {', '.join(inp.seeds)}\nmutations: {'; '.join(inp.ops)}\nplan: {plan}\n\n"
            f"{f['detail']}\n"
        )
        return str(path.relative_to(self.out))

    def fail_input(self, index: int, kind: str, sig: str, detail: str) -> None:
        self.record(
            {
                "index": index,
                "status": "failed",
                "failures": [{"stage": "worker", "kind": kind, "signature": sig, "detail": detail}],
            }
        )

    # the loop
    def run(self) -> dict[str, Any]:
        cfg = self.cfg
        self.out.mkdir(parents=True, exist_ok=True)
        if cfg.resume:
            self.load()
        done = set(_expand(self.done_runs))
        todo = [i for i in range(cfg.start, cfg.start + cfg.inputs) if i not in done]
        del done
        todo.reverse()
        ctx = mp.get_context("fork")
        slots = [_Slot(ctx, cfg, w) for w in range(cfg.workers)]
        t_start = time.monotonic()
        elapsed0 = self.stats["elapsed_s"]
        last_save = last_print = t_start
        try:
            while todo or any(s.index is not None for s in slots):
                now = time.monotonic()
                for s in slots:
                    if s.ready and s.index is None and todo:
                        s.index = todo.pop()
                        s.since = now
                        s.conn.send(s.index)
                ready = wait([s.conn for s in slots], timeout=1.0)
                for s in list(slots):
                    if s.conn in ready:
                        try:
                            kind, payload = s.conn.recv()
                        except (EOFError, OSError):
                            self._died(s, slots, ctx)
                            continue
                        if kind == "ready":
                            s.ready = True
                            self.stats.setdefault("worker_vm_base_mb", payload["vm_base_mb"])
                        else:
                            self.record(payload)
                            s.index = None
                            s.served += 1
                            if s.served >= INPUTS_PER_WORKER or any(
                                f["kind"] == "memory" for f in payload["failures"]
                            ):
                                self._replace(s, slots, ctx)
                    elif s.index is not None and now - s.since > cfg.hard_limit_s:
                        self.fail_input(
                            s.index,
                            "hang",
                            "worker:hang-killed",
                            f"no answer within {cfg.hard_limit_s:.0f} s; worker killed",
                        )
                        s.index = None
                        self._replace(s, slots, ctx, dead=True)
                    elif not s.proc.is_alive() and s.conn not in ready:
                        self._died(s, slots, ctx)
                now = time.monotonic()
                self.stats["elapsed_s"] = round(elapsed0 + now - t_start, 1)
                if now - last_save > SUMMARY_EVERY_S:
                    self.save()
                    last_save = now
                if not cfg.quiet and now - last_print > 30:
                    self.print_progress()
                    last_print = now
        finally:
            for s in slots:
                if s.proc.is_alive():
                    with contextlib.suppress(OSError):
                        s.conn.send(None)
                s.proc.join(5)
                s.kill()
            self.stats["elapsed_s"] = round(elapsed0 + time.monotonic() - t_start, 1)
            self.save()
        return json.loads(self.summary_path.read_text())

    def _replace(self, s: _Slot, slots: list[_Slot], ctx: Any, dead: bool = False) -> None:
        if not dead:
            with contextlib.suppress(OSError):
                s.conn.send(None)
            s.proc.join(10)
        s.kill()
        slots[slots.index(s)] = _Slot(ctx, self.cfg, s.wid)
        self.stats["worker_restarts"] += 1

    def _died(self, s: _Slot, slots: list[_Slot], ctx: Any) -> None:
        s.proc.join(5)
        code = s.proc.exitcode
        if s.index is not None:
            self.stats["worker_deaths"] += 1
            self.fail_input(
                s.index,
                "crash",
                f"worker:died-exit{code}",
                f"worker process ended with exit code {code} (negative: killed by that signal)",
            )
            s.index = None
        self._replace(s, slots, ctx, dead=True)

    def print_progress(self) -> None:
        st = self.stats
        rate = st["inputs_done"] / st["elapsed_s"] if st["elapsed_s"] else 0
        print(
            f"[fuzz] {st['inputs_done']} inputs ({rate:.1f}/s): ok {st['ok']}, rejected {st['rejected']}, "
            f"failed {st['failed']}, hangs {st['hangs']}, memory {st['memory']}, worker deaths {st['worker_deaths']}, "
            f"signatures {len(st['signatures'])}, peak worker RSS {st['peak_worker_rss_mb']} MB",
            file=sys.stderr,
            flush=True,
        )


def _merge(runs: list[list[int]], new: set[int]) -> list[list[int]]:
    """[start, end) runs with the indices in ``new`` added, coalesced: the summary stays small and
    saving it stays cheap for a million inputs."""
    out: list[list[int]] = []
    for a, b in sorted([*runs, *([x, x + 1] for x in new)]):
        if out and a <= out[-1][1]:
            out[-1][1] = max(out[-1][1], b)
        else:
            out.append([a, b])
    return out


def _expand(runs: list[list[int]]) -> list[int]:
    return [i for a, b in runs for i in range(a, b)]
