"""A small fuzzing campaign in CI (tests/fuzz): a few thousand mutated captures through every
analysis path, and checks that the fuzzer itself finds what it should (a crash, a hang, a memory
blow-up, a dead worker) and mutates where it means to.

The big campaign is ``python -m tests.fuzz --inputs 1000000 --workers 2 --out DIR`` (README,
Fuzzing).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests.fuzz import check
from tests.fuzz.capture import parse, read_bytes, write_pcap, write_pcapng
from tests.fuzz.check import Fractions, Plan, run_checks
from tests.fuzz.mutate import generate, layers
from tests.fuzz.runner import Campaign, Config, load_seeds, seed_paths

SAMPLES = Path(__file__).resolve().parent.parent / "samples"
CI_SEED = 20261207
CI_INPUTS = 2500
# The expensive paths on a few inputs each: tables cost ~0.15 s per input, the report seconds.
CI_FRACTIONS = Fractions(
    tables=0.03, fold=0.15, fold_tables=0.004, export=0.004, report=0.0008, cli=0.0012
)
# CI machines have 2 cores and pytest uses one: two workers check the same inputs (a function
# of seed and index, whichever worker takes them) in half the wall time. The stage limits count
# CPU time, so sharing the cores does not turn slow inputs into hangs.
CI_WORKERS = 2

# Failure signatures the campaign finds in today's code, each with its reproducer under
# /work/captures/fuzz-repro/ and in the fuzz report; remove an entry when its fix lands (the test
# then also fails if the fix regresses).
KNOWN: dict[str, str] = {}


def test_campaign_finds_nothing_new(tmp_path: Path) -> None:
    cfg = Config(
        inputs=CI_INPUTS,
        seed=CI_SEED,
        workers=CI_WORKERS,
        out=tmp_path,
        fractions=CI_FRACTIONS,
        quiet=True,
        time_limit_s=20.0,
    )
    t0 = time.monotonic()
    s = Campaign(cfg).run()
    took = time.monotonic() - t0
    assert s["inputs_done"] == CI_INPUTS
    # The inputs reached the code: most were analysed (not refused at the file level), and every
    # expensive path ran at least once.
    assert s["ok"] + s["failed"] > CI_INPUTS * 0.8, s
    for stage in ("analyze", "tables", "fold", "export", "report", "cli"):
        assert s["stage_runs"].get(stage, 0) > 0, (stage, s["stage_runs"])
    new = {sig: info for sig, info in s["signatures"].items() if sig not in KNOWN}
    details = {
        sig: (tmp_path / info["repros"][0]).with_suffix(".txt").read_text()[:3000]
        if info["repros"]
        else ""
        for sig, info in new.items()
    }
    assert not new, f"new failure signatures (reproducers in {tmp_path}/repro):\n" + "\n\n".join(
        f"{sig}: {info['count']}x\n{details[sig]}" for sig, info in new.items()
    )
    print(
        f"fuzz campaign: {CI_INPUTS} inputs in {took:.1f} s; known signatures seen: "
        f"{ {k: v['count'] for k, v in s['signatures'].items()} }"
    )


def test_inputs_are_a_function_of_seed_and_index() -> None:
    seeds, raws = load_seeds()
    a = [generate(seeds, raws, 7, i) for i in range(200)]
    b = [generate(seeds, raws, 7, i) for i in range(200)]
    assert [x.data for x in a] == [x.data for x in b]
    assert len({x.data for x in a}) > 190  # and they differ from one another
    # every family of mutation occurs
    ops = " ".join(op for x in a for op in x.ops)
    for family in (
        "rec_len",
        "ts",
        "order",
        "tcp_hdr",
        "ip_",
        "split_segment",
        "as_pcapng",
        "crop",
    ):
        assert family in ops, family


def test_seed_reader_round_trips_the_samples() -> None:
    """The fuzzer's own reader and writers: a sample read and written back as pcap is the file
    itself (the samples are little-endian microsecond pcaps); pcapng seeds keep every packet."""
    for p in sorted(SAMPLES.glob("*.pcap")):
        raw = read_bytes(p)
        assert write_pcap(parse(raw, p.name)) == raw, p.name
    ng = parse(read_bytes(SAMPLES / "http-keepalive.pcapng"))
    classic = parse(read_bytes(SAMPLES / "http-keepalive.pcap"))
    assert [r.data for r in ng.records] == [r.data for r in classic.records]
    assert parse(b"".join(write_pcapng(ng))).records == ng.records
    assert len(seed_paths()) >= len(list(SAMPLES.glob("*.pcap*")))


@pytest.mark.skipif(shutil.which("tshark") is None, reason="tshark not installed")
@pytest.mark.parametrize(
    "name", ["http-keepalive.pcap", "tls.pcap", "ipv6-http.pcap", "http-sll2.pcap"]
)
def test_layer_offsets_agree_with_tshark(name: str) -> None:
    """Structure-aware mutations find TCP payload at fixed offsets: the frames where they find
    payload, and its length, are tshark's (tcp.len) for Ethernet, IPv6 and SLL2 captures."""
    out = subprocess.run(
        ["tshark", "-r", str(SAMPLES / name), "-T", "fields", "-e", "tcp.len"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split("\n")
    theirs = [int(x) if x else 0 for x in out[:-1]]
    cap = parse(read_bytes(SAMPLES / name))
    ours = []
    for r in cap.records:
        ly = layers(r)
        ours.append(ly.end - ly.payload if ly and ly.payload >= 0 else 0)
    assert ours == theirs
    assert sum(1 for n in ours if n) > 3


def _plan() -> Plan:
    return Plan(tables=True, fold=True, fold_tables=False, export=False, report=False, cli=False)


def test_checks_report_an_exception_a_hang_and_a_refusal(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import pcapan

    good = SAMPLES / "http-keepalive.pcap"
    out = run_checks(
        good, _plan(), time_limit_s=30, report_limit_s=60, cli_timeout_s=60, workdir=tmp_path
    )
    assert out.status == "ok" and not out.failures, out

    junk = tmp_path / "junk.pcap"
    junk.write_bytes(b"not a capture at all")
    out = run_checks(
        junk, _plan(), time_limit_s=30, report_limit_s=60, cli_timeout_s=60, workdir=tmp_path
    )
    assert out.status == "rejected" and "not a pcap" in out.rejected and not out.failures

    def boom(path: object) -> None:
        {}["missing"]  # noqa: B018 - a KeyError, as a bug in pcapan would raise

    monkeypatch.setattr(pcapan, "analyze", boom)
    out = run_checks(
        good, _plan(), time_limit_s=30, report_limit_s=60, cli_timeout_s=60, workdir=tmp_path
    )
    assert out.status == "failed"
    assert [f.signature for f in out.failures] == ["analyze:KeyError@test_fuzz_campaign.py:boom"]

    def slow(path: object) -> None:
        end = time.monotonic() + 30
        while time.monotonic() < end:  # a busy loop: the stage limit counts CPU time
            pass

    monkeypatch.setattr(pcapan, "analyze", slow)
    t0 = time.monotonic()
    out = run_checks(
        good, _plan(), time_limit_s=0.5, report_limit_s=60, cli_timeout_s=60, workdir=tmp_path
    )
    assert time.monotonic() - t0 < 5
    assert [f.kind for f in out.failures] == ["hang"]


def test_cli_check_wants_one_error_line(tmp_path: Path) -> None:
    junk = tmp_path / "junk.pcap"
    junk.write_bytes(b"\xd4\xc3\xb2\xa1")  # a magic and nothing else
    assert check.cli_check(junk, True, 120, tmp_path) is None  # exit 2, one line
    # ... and says so when the library and the CLI disagree
    assert check.cli_check(junk, False, 120, tmp_path)[0] == "exit2-but-library-accepts"


def test_runner_survives_a_dead_worker_and_a_memory_blowup(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A worker killed by a signal, and one that allocates past its RLIMIT_AS, each cost one input
    (saved as a reproducer); the campaign goes on to the end with new workers."""

    def fake(path: Path, plan: Plan, **kw: object) -> check.Outcome:
        n = int(path.parent.joinpath("n").read_text()) if path.parent.joinpath("n").exists() else 0
        path.parent.joinpath("n").write_text(str(n + 1))
        if n == 2 and "w0-" in path.parent.name and not (tmp_path / "died").exists():
            (tmp_path / "died").write_text("")
            os.kill(os.getpid(), signal.SIGKILL)
        if n == 4:
            out = check.Outcome()
            try:
                bytearray(8 << 30)
            except MemoryError as exc:
                out.failures.append(
                    check.Failure("analyze", "memory", check.signature("analyze", exc), "x")
                )
                out.status = "failed"
            return out
        return check.Outcome()

    monkeypatch.setattr(check, "run_checks", fake)
    cfg = Config(inputs=12, seed=1, workers=1, out=tmp_path / "out", quiet=True, mem_limit_mb=512)
    s = Campaign(cfg).run()
    assert s["inputs_done"] == 12
    assert s["worker_deaths"] == 1 and s["memory"] >= 1, s
    sigs = s["signatures"]
    assert "worker:died-exit-9" in sigs
    assert any(k.startswith("analyze:MemoryError") for k in sigs), sigs
    repro = tmp_path / "out" / sigs["worker:died-exit-9"]["repros"][0]
    assert repro.stat().st_size > 0 and repro.with_suffix(".txt").exists()
    # resumable: a second run of the same campaign does nothing new
    s2 = Campaign(
        Config(inputs=12, seed=1, workers=1, out=tmp_path / "out", quiet=True, resume=True)
    ).run()
    assert s2["inputs_done"] == 12
    assert json.loads((tmp_path / "out" / "summary.json").read_text())["done"] == [[0, 12]]
