"""``python -m tests.fuzz``: run (or resume) a campaign, or replay one input."""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

from tests.fuzz.check import Fractions, Plan, run_checks
from tests.fuzz.runner import Campaign, Config, load_seeds


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m tests.fuzz", description=__doc__)
    p.add_argument("--inputs", type=int, default=1000, help="how many inputs (default 1000)")
    p.add_argument(
        "--seed", type=int, default=0, help="campaign seed: input i is a function of (seed, i)"
    )
    p.add_argument("--start", type=int, default=0, help="first input index (default 0)")
    p.add_argument("--workers", type=int, default=1, help="worker processes (default 1)")
    p.add_argument(
        "--out", type=Path, default=Path("fuzz-out"), help="summary.json and repro/ go here"
    )
    p.add_argument(
        "--resume",
        action="store_true",
        help="continue the campaign in --out (same --seed), skipping inputs done",
    )
    p.add_argument(
        "--time-limit",
        type=float,
        default=10.0,
        help="seconds per stage (analyze, tables, ...; default 10)",
    )
    p.add_argument(
        "--mem-limit",
        type=int,
        default=1536,
        help="MB of address space a worker may add after its imports (default 1536)",
    )
    p.add_argument(
        "--max-records",
        type=int,
        default=80,
        help="seeds are mostly cropped to windows of this many records",
    )
    p.add_argument(
        "--corpus",
        type=Path,
        help="seed captures besides samples/ (default: ../shared/corpus when present)",
    )
    f = Fractions()
    for name in ("tables", "fold", "fold_tables", "export", "report", "cli"):
        p.add_argument(
            f"--{name.replace('_', '-')}",
            type=float,
            default=getattr(f, name),
            metavar="FRACTION",
            help=f"share of inputs that go through the {name} path (default {getattr(f, name)})",
        )
    p.add_argument(
        "--only",
        type=int,
        metavar="INDEX",
        help="replay one input in this process (every path) and print the outcome",
    )
    p.add_argument("--save", type=Path, metavar="FILE", help="with --only: write the input to FILE")
    p.add_argument("--quiet", action="store_true", help="no progress lines")
    a = p.parse_args(argv)
    fr = Fractions(a.tables, a.fold, a.fold_tables, a.export, a.report, a.cli)
    if a.only is not None:
        return _replay(a, fr)
    cfg = Config(
        inputs=a.inputs,
        seed=a.seed,
        workers=a.workers,
        out=a.out,
        start=a.start,
        time_limit_s=a.time_limit,
        mem_limit_mb=a.mem_limit,
        max_records=a.max_records,
        fractions=fr,
        corpus=a.corpus,
        resume=a.resume,
        quiet=a.quiet,
    )
    s = Campaign(cfg).run()
    sigs = s["signatures"]
    print(
        f"inputs {s['inputs_done']} in {s['elapsed_s']} s ({s.get('inputs_per_s')}/s; "
        f"{s.get('inputs_per_cpu_s')} per CPU second): ok {s['ok']}, rejected {s['rejected']}, "
        f"failed {s['failed']}; hangs {s['hangs']}, memory {s['memory']}, worker deaths {s['worker_deaths']}; "
        f"peak worker RSS {s['peak_worker_rss_mb']} MB"
    )
    for sig, info in sorted(sigs.items(), key=lambda kv: -kv[1]["count"]):
        print(
            f"  {info['count']:6d}  {sig}  (first: input {info['first_index']}; {', '.join(info['repros'])})"
        )
    print(f"summary: {a.out / 'summary.json'}")
    return 1 if sigs else 0


def _replay(a: argparse.Namespace, fr: Fractions) -> int:
    from tests.fuzz.mutate import generate

    seeds, raws = load_seeds(a.corpus)
    inp = generate(seeds, raws, a.seed, a.only, max_records=a.max_records)
    print(
        f"input {a.only}: {len(inp.data)} bytes{inp.suffix}; seeds {inp.seeds}; mutations {inp.ops}"
    )
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / f"input{inp.suffix}"
        path.write_bytes(inp.data)
        if a.save:
            a.save.write_bytes(inp.data)
        out = run_checks(
            path,
            Plan(True, True, True, True, True, True),
            time_limit_s=a.time_limit,
            report_limit_s=300,
            cli_timeout_s=120,
            workdir=Path(d),
        )
    print(
        json.dumps(
            {"status": out.status, "rejected": out.rejected, "seconds": out.seconds}, indent=1
        )
    )
    for fl in out.failures:
        print(f"--- {fl.signature} ({fl.kind})\n{fl.detail}")
    return 1 if out.failures else 0


if __name__ == "__main__":
    sys.exit(main())
