"""Shrink a reproducer: drop records (delta debugging) and trim packets while the failure's
signature still shows.

``python -m tests.fuzz.minimize REPRO.pcap SIGNATURE -o SMALL.pcap`` (the signature as in
summary.json, e.g. ``fold:tls.app_exchange_times``). Works on what the fuzzer's seed reader can
parse (record-level findings); a finding in the file structure itself is usually small already.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from tests.fuzz.capture import Capture, parse, read_bytes, write_pcap, write_pcapng
from tests.fuzz.check import Plan, run_checks


def _plan(signature: str) -> Plan:
    stage = signature.split(":", 1)[0]
    return Plan(
        tables=stage in ("tables", "export", "report"),
        fold=stage == "fold",
        fold_tables=False,
        export=stage == "export",
        report=stage == "report",
        cli=stage == "cli",
    )


def shows_file(path: Path, signature: str, workdir: Path) -> bool:
    """Does the failure ``signature`` show when ``path`` goes through the stage it names?"""
    out = run_checks(
        path,
        _plan(signature),
        time_limit_s=30,
        report_limit_s=300,
        cli_timeout_s=120,
        workdir=workdir,
    )
    return any(f.signature == signature for f in out.failures)


def shows(cap: Capture, signature: str, workdir: Path, pcapng: bool) -> bool:
    path = workdir / ("m.pcapng" if pcapng else "m.pcap")
    path.write_bytes(b"".join(write_pcapng(cap)) if pcapng else write_pcap(cap))
    return shows_file(path, signature, workdir)


def minimize(cap: Capture, signature: str, workdir: Path, pcapng: bool = False) -> Capture:
    """ddmin over the records, then single records one by one."""
    recs = cap.records
    n = 2
    while len(recs) >= 2:
        chunk = max(1, len(recs) // n)
        reduced = False
        for start in range(0, len(recs), chunk):
            trial = recs[:start] + recs[start + chunk :]
            c = cap.copy()
            c.records = trial
            if trial and shows(c, signature, workdir, pcapng):
                recs, n, reduced = trial, max(n - 1, 2), True
                break
        if not reduced:
            if chunk == 1:
                break
            n = min(len(recs), n * 2)
    out = cap.copy()
    out.records = recs
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m tests.fuzz.minimize", description=__doc__)
    p.add_argument("repro", type=Path)
    p.add_argument("signature")
    p.add_argument("-o", "--output", type=Path, required=True)
    a = p.parse_args(argv)
    raw = read_bytes(a.repro)
    cap = parse(raw, a.repro.name)
    pcapng = raw[:4] == b"\x0a\x0d\x0d\x0a"
    with tempfile.TemporaryDirectory() as d:
        if not shows(cap, a.signature, Path(d), pcapng):
            print(
                f"{a.repro}: the signature does not show on the records this reader parses",
                file=sys.stderr,
            )
            return 1
        small = minimize(cap, a.signature, Path(d), pcapng)
    a.output.write_bytes(b"".join(write_pcapng(small)) if pcapng else write_pcap(small))
    print(f"{len(cap.records)} -> {len(small.records)} records: {a.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
