#!/usr/bin/env python3
"""Side-by-side benchmark: pcapan against the tools users would otherwise reach for.

    python benchmarks/run.py [--packets N] [--mix web|short] [--real PATH | --no-real]
                             [--keep] [--smoke] [--strict]

Generates (or reuses) the deterministic capture from make_capture.py in benchmarks/out/, then
runs each peer as its own subprocess on that same file, one after another, pinned to one CPU,
under ``/usr/bin/time -v`` (peak RSS) with wall-clock timing. Then the same peers run on the real
short-connection capture of make_real_capture.py (pcapan with its connections, http, tls and rtt
tables). Prints pcapan's build (``pcapan --version``), one table per capture with packets/s, how
pcapan's speed compares with each peer and peak RSS, and the memory check (pcapan's peak RSS on
a synthetic capture twice as long, divided by its peak RSS on the normal one). Results also go to
benchmarks/out/results.json. Figures are ratios from one run on one machine; see README.md.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
OUT = HERE / "out"
PEERS_DIR = HERE / "peers"
sys.path.insert(0, str(HERE))

from make_capture import DEFAULT_SEED, GENERATOR_VERSION, meta_path  # noqa: E402

SMOKE_PACKETS = 20_000
MEMORY_TARGET = 1.2  # pcapan peak RSS on the 2x capture / on the 1x capture
TIME_BIN = "/usr/bin/time"
PCAPAN_SNIPPET = "import sys, pcapan; r = pcapan.analyze(sys.argv[1]); print(len(r.connections))"
PCAPAN_HTTP_SNIPPET = (
    "import sys, pcapan; h = pcapan.analyze(sys.argv[1]).http; "
    "print(int(h.method.notna().sum()), int(h.status_code.notna().sum()))"
)
HTTP_PACKETS = 500_000  # the HTTP phase's capture (HTTP only); tshark's HTTP dissection is slow
SMOKE_HTTP_PACKETS = 10_000
# The real capture: every table pcapan makes is built (the tables are made on first access), as
# a user of connections, http, tls and rtt would have them.
PCAPAN_REAL_SNIPPET = (
    "import sys, pcapan; r = pcapan.analyze(sys.argv[1]); "
    "print(len(r.connections), len(r.http), len(r.tls), len(r.rtt))"
)
# The parallel phase (README, Performance: parallel analysis): the same analysis in 1 and 2
# processes and on a Dask LocalCluster of 2 worker processes, unpinned, each timed inside its
# process (analyze() including the merge, then the four tables); the cluster is started and its
# workers have imported pcapan before the clock starts, as a running cluster would have.
PARALLEL_SNIPPET = """
import sys, time, pcapan
mode, path = sys.argv[1], sys.argv[2]
client = None
if mode == "dask":
    from distributed import Client, LocalCluster
    t0 = time.perf_counter()
    cluster = LocalCluster(n_workers=2, processes=True, threads_per_worker=1,
                           host="127.0.0.1", dashboard_address=None)
    client = Client(cluster)
    client.run(lambda: __import__("pcapan.api"))
    print(f"startup_s={time.perf_counter() - t0:.3f}")
t1 = time.perf_counter()
r = pcapan.analyze(path, workers=None if mode == "dask" else int(mode), client=client)
t2 = time.perf_counter()
rows = (len(r.connections), len(r.http), len(r.tls), len(r.rtt))
t3 = time.perf_counter()
print(f"analyze_s={t2 - t1:.3f} tables_s={t3 - t2:.3f} rows={rows}")
if client is not None:
    client.close(); cluster.close()
"""
# The keyed HTTPS phase (issue 17): many small HTTPS transactions recorded with their key log by
# make_tls_capture.py; pcapan decrypts with the key log and makes the http table, tshark with the
# same key log prints the HTTP fields. pcapan also prints its own CPU time for analyze() and the
# table (the interpreter's start and imports excluded), beside the whole process's.
PCAPAN_TLS_SNIPPET = """
import resource, sys, pcapan
def cpu():
    u = resource.getrusage(resource.RUSAGE_SELF)
    return u.ru_utime + u.ru_stime
t0 = cpu()
h = pcapan.analyze(sys.argv[1], keylog=sys.argv[2]).http
t1 = cpu()
print(int(h.method.notna().sum()), int(h.status_code.notna().sum()), f"analysis_cpu_s={t1 - t0:.3f}")
"""
TLS_PORT = 19443  # make_tls_keys.py's PORT_MAIN (tshark does not take it for TLS by itself)
TLS_OUT = OUT / "tls-small.pcap"
TLS_CONNECTIONS = 1000  # recorded when missing: ~42 packets and 5 requests per connection

PARALLEL_MODES = (("workers=1", "1"), ("workers=2", "2"), ("dask LocalCluster(2)", "dask"))
PARALLEL_TARGETS = {"workers=2": 1.8, "dask LocalCluster(2)": 1.6}
# Where a real capture is looked for when --real is not given: run.py's own output directory, then
# make_real_capture.py's default --out. A missing one is recorded into the first (root only) and
# kept: recording takes about a minute and is not byte-for-byte repeatable.
REAL_OUT = OUT / "real-short.pcap"
REAL_DEFAULTS = (REAL_OUT, HERE / "real-short.pcap")
SYNTHETIC_MIXES = ("web", "short")


@dataclass
class Peer:
    name: str
    what: str
    argv: list[str]  # "{pcap}" is replaced by the capture path
    needs: str | None = None  # executable that must be on PATH
    stdout_to_null: bool = False


@dataclass
class Run:
    peer: str
    capture: str
    status: str  # ok | failed | skipped | timeout
    what: str = ""
    command: list[str] = field(default_factory=list)
    wall_s: float | None = None
    user_s: float | None = None
    sys_s: float | None = None
    max_rss_mb: float | None = None
    packets_per_s: float | None = None
    speed_ratio: float | None = None  # pcapan packets/s divided by this peer's
    result: str = ""
    error: str = ""
    all_wall_s: list[float] = field(default_factory=list)  # every run's wall time (--repeat)


def peers(real: bool = False) -> list[Peer]:
    """The peers of the main tables; on the real capture pcapan also builds http, tls and rtt."""
    py = sys.executable
    if real:
        pcapan = Peer(
            "pcapan",
            "pcapan.analyze(): the full analysis, connections/http/tls/rtt tables built",
            [py, "-c", PCAPAN_REAL_SNIPPET, "{pcap}"],
        )
    else:
        pcapan = Peer(
            "pcapan", "pcapan.analyze(): the full analysis", [py, "-c", PCAPAN_SNIPPET, "{pcap}"]
        )
    return [
        pcapan,
        Peer(
            "tshark",
            "tshark -q -z conv,tcp: full dissection + TCP conversation table",
            ["tshark", "-r", "{pcap}", "-q", "-z", "conv,tcp"],
            needs="tshark",
        ),
        Peer(
            "tcptrace",
            "tcptrace -n -l: per-connection TCP statistics (C)",
            ["tcptrace", "-n", "-l", "{pcap}"],
            needs="tcptrace",
            stdout_to_null=True,
        ),
        Peer(
            "dpkt",
            "dpkt loop: Ethernet/IP(v4, v6)/TCP decode + per-5-tuple counters",
            [py, str(PEERS_DIR / "dpkt_loop.py"), "{pcap}"],
        ),
        Peer(
            "floor",
            "bare Python walk over pcap record headers",
            [py, str(PEERS_DIR / "floor_walk.py"), "{pcap}"],
        ),
    ]


def http_peers() -> list[Peer]:
    """The HTTP phase: every request/response's method, host, URI, status and length."""
    py = sys.executable
    return [
        Peer(
            "pcapan-http",
            "pcapan.analyze().http: the full analysis, http table as a DataFrame",
            [py, "-c", PCAPAN_HTTP_SNIPPET, "{pcap}"],
        ),
        Peer(
            "tshark-http",
            "tshark -Y http -T fields (method, host, uri, status, length): HTTP dissection with reassembly",
            [
                "tshark",
                "-r",
                "{pcap}",
                "-n",
                "-Y",
                "http",
                "-T",
                "fields",
                "-e",
                "tcp.stream",
                "-e",
                "http.request.method",
                "-e",
                "http.host",
                "-e",
                "http.request.uri",
                "-e",
                "http.response.code",
                "-e",
                "http.content_length",
            ],
            needs="tshark",
        ),
    ]


def tls_peers() -> list[Peer]:
    """The keyed HTTPS phase: pcapan and tshark decrypt with the same key log ({keys})."""
    return [
        Peer(
            "pcapan-tls",
            "pcapan.analyze(keylog=K).http: decrypted HTTP/1.1 inside TLS 1.2 and 1.3",
            [sys.executable, "-c", PCAPAN_TLS_SNIPPET, "{pcap}", "{keys}"],
        ),
        Peer(
            "tshark-tls",
            "tshark -o tls.keylog_file:K -Y http -T fields (method, uri, host, status)",
            [
                "tshark",
                "-r",
                "{pcap}",
                "-n",
                "-o",
                "tls.keylog_file:{keys}",
                "-d",
                f"tcp.port=={TLS_PORT},tls",
                "-Y",
                "http",
                "-T",
                "fields",
                "-e",
                "http.request.method",
                "-e",
                "http.request.uri",
                "-e",
                "http.host",
                "-e",
                "http.response.code",
            ],  # fmt: skip
            needs="tshark",
        ),
    ]


def find_tls_capture(args: argparse.Namespace) -> tuple[Path | None, str]:
    """The keyed capture (its key log beside it, suffix .keys): --tls-capture, else
    benchmarks/out/tls-small.pcap, recorded there by make_tls_capture.py when missing and root."""
    cap = Path(args.tls_capture) if args.tls_capture else TLS_OUT
    if cap.is_file():
        if not cap.with_suffix(".keys").is_file():
            return None, f"{cap}: no key log {cap.with_suffix('.keys').name} beside it"
        return cap, ""
    if args.tls_capture:
        return None, f"{cap}: no such file"
    if os.geteuid() != 0 or not all(shutil.which(t) for t in ("nginx", "curl", "tcpdump")):
        return None, "no keyed capture (make_tls_capture.py needs root, nginx, curl, tcpdump)"
    print(f"recording {cap} ({TLS_CONNECTIONS} HTTPS connections) ...", flush=True)
    r = subprocess.run(
        [sys.executable, str(HERE / "make_tls_capture.py"), str(cap), str(TLS_CONNECTIONS)],
        capture_output=True,
        text=True,
        timeout=1800,
    )
    if r.returncode != 0 or not cap.is_file():
        return None, "make_tls_capture.py failed: " + r.stderr.strip()[-300:]
    return cap, ""


def pinned_cpu() -> int | None:
    """The first CPU this process may use (core 0 may be outside a container's cpuset)."""
    try:
        return min(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return None


def capture_path(packets: int, seed: int, mix: str = "web") -> Path:
    # Generator version and seed are in the name, so a changed generator never reuses old bytes.
    suffix = "" if mix == "web" else f"-{mix}"
    return OUT / f"capture-{packets}-s{seed}-v{GENERATOR_VERSION}{suffix}.pcap"


def ensure_capture(packets: int, seed: int, mix: str = "web") -> tuple[Path, dict, bool]:
    """Return (path, generator metadata, generated_now)."""
    path = capture_path(packets, seed, mix)
    meta = meta_path(path)
    if path.exists() and meta.exists():
        info = json.loads(meta.read_text())
        if info.get("packets") == packets and info.get("generator_version") == GENERATOR_VERSION:
            return path, info, False
    OUT.mkdir(parents=True, exist_ok=True)
    print(f"generating {path.name} ({packets} packets) ...", flush=True)
    cmd = [
        sys.executable,
        str(HERE / "make_capture.py"),
        "--packets",
        str(packets),
        "--seed",
        str(seed),
        "--mix",
        mix,
        "--out",
        str(path),
    ]
    res = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if res.returncode != 0:
        raise SystemExit(f"make_capture.py failed:\n{res.stderr}")
    info = json.loads(meta.read_text())
    print(
        f"  {info['packets']} packets, {info['bytes'] / 1e6:.0f} MB, {info['connections']} connections in {info['generation_s']:.1f} s",
        flush=True,
    )
    return path, info, True


def warm_page_cache(path: Path) -> None:
    # Every peer should read from the page cache, not the first one from disk.
    with open(path, "rb") as f:
        while f.read(16 << 20):
            pass


def parse_time_v(text: str) -> dict[str, float]:
    fields = {
        "Maximum resident set size (kbytes)": "max_rss_kb",
        "User time (seconds)": "user_s",
        "System time (seconds)": "sys_s",
    }
    out: dict[str, float] = {}
    for line in text.splitlines():
        key, _, value = line.strip().rpartition(": ")
        if key in fields:
            out[fields[key]] = float(value)
    return out


def summarise(peer: str, stdout: str) -> str:
    """One short line per peer that tells whether it saw the same capture."""
    lines = [ln for ln in stdout.splitlines() if ln.strip()]
    if peer == "tshark":
        return f"{sum('<->' in ln for ln in lines)} conversations"
    if peer == "pcapan" and lines:
        counts = lines[-1].split()
        if len(counts) == 4:  # the real capture's snippet: rows of four tables
            return "{} connections, {} http, {} tls, {} rtt rows".format(*counts)
        return f"{lines[-1].strip()} connections"
    if peer == "pcapan-http" and lines:
        req, resp = lines[-1].split()
        return f"{req} requests, {resp} responses"
    if peer == "pcapan-tls" and lines:
        req, resp, cpu = lines[-1].split()
        return f"{req} requests, {resp} responses, {cpu}"
    if peer == "tshark-tls":
        cols = [ln.split("\t") for ln in lines]
        req = sum(1 for c in cols if c and c[0])
        resp = sum(1 for c in cols if len(c) > 3 and c[3])
        return f"{req} requests, {resp} responses"
    if peer == "tshark-http":
        cols = [ln.split("\t") for ln in lines]
        req = sum(1 for c in cols if len(c) > 1 and c[1])
        resp = sum(1 for c in cols if len(c) > 4 and c[4])
        return f"{req} requests, {resp} responses"
    return lines[-1].strip()[:80] if lines else ""


def repo_env() -> dict[str, str]:
    """The environment of every subprocess: this checkout's pcapan first on the path."""
    return dict(
        os.environ,
        PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
    )


def build_line() -> str:
    """pcapan's own account of its build, from ``pcapan --version`` in a subprocess (the line
    names the compiled core, or says the pure-Python build runs and why)."""
    try:
        res = subprocess.run(
            [sys.executable, "-m", "pcapan.cli", "--version"],
            capture_output=True,
            text=True,
            cwd=REPO,
            env=repo_env(),
            timeout=120,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as e:
        return f"unknown (pcapan --version: {e})"
    lines = (res.stdout or res.stderr).strip().splitlines()
    if res.returncode != 0 or not lines:
        return f"unknown (pcapan --version: exit {res.returncode})"
    return lines[0].strip()


def count_packets(path: Path) -> int:
    """Records in a capture: a walk over classic pcap record headers (no packet is decoded),
    capinfos for anything else (pcapng)."""
    with open(path, "rb") as f:
        head = f.read(24)
        magic = head[:4]
        order = {b"\xd4\xc3\xb2\xa1": "<", b"\x4d\x3c\xb2\xa1": "<"}.get(magic) or {
            b"\xa1\xb2\xc3\xd4": ">",
            b"\xa1\xb2\x3c\x4d": ">",
        }.get(magic)
        if order is not None and len(head) == 24:
            rec = struct.Struct(order + "IIII")
            count = 0
            while True:
                hdr = f.read(16)
                if len(hdr) < 16:
                    return count
                f.seek(rec.unpack(hdr)[2], os.SEEK_CUR)
                count += 1
    if shutil.which("capinfos") is None:
        raise SystemExit(f"{path}: not a classic pcap, and capinfos (to count pcapng) is missing")
    res = subprocess.run(
        ["capinfos", "-M", "-c", "-T", "-r", str(path)], capture_output=True, text=True, check=False
    )
    try:
        return int(res.stdout.split("\t")[-1])
    except ValueError:
        raise SystemExit(f"{path}: capinfos cannot count it: {res.stderr.strip()}") from None


def find_real_capture(args: argparse.Namespace) -> tuple[Path | None, str]:
    """The real capture to run on, or None and the reason there is none (one line)."""
    if not args.real_enabled:
        return None, "skipped (--no-real)"
    if args.real:
        # Absolute: the peers run with the checkout as their working directory.
        return Path(args.real).resolve(), ""
    if args.smoke:
        # CI's smoke run stays fast; give --real to have the table in a smoke run.
        return None, "skipped in --smoke (give --real PATH to run on one)"
    for path in REAL_DEFAULTS:
        if path.exists():
            return path, ""
    where = " or ".join(str(p.relative_to(REPO)) for p in REAL_DEFAULTS)
    if os.geteuid() != 0:
        return None, (
            f"skipped: no real capture at {where}, and recording one "
            "(benchmarks/make_real_capture.py) needs root; give --real PATH"
        )
    print(
        f"recording the real capture into {REAL_OUT.relative_to(REPO)} (about a minute) ...",
        flush=True,
    )
    OUT.mkdir(parents=True, exist_ok=True)
    res = subprocess.run(
        [sys.executable, str(HERE / "make_real_capture.py"), "--out", str(REAL_OUT)],
        capture_output=True,
        text=True,
        check=False,
    )
    if res.returncode != 0 or not REAL_OUT.exists():
        tail = [ln for ln in res.stderr.splitlines() if ln.strip()]
        return None, f"skipped: make_real_capture.py failed: {tail[-1] if tail else res.returncode}"
    return REAL_OUT, ""


def run_peer(peer: Peer, pcap: Path, packets: int, cpu: int | None, timeout: float) -> Run:
    keys = str(pcap.with_suffix(".keys"))
    argv = [a.replace("{pcap}", str(pcap)).replace("{keys}", keys) for a in peer.argv]
    run = Run(peer=peer.name, capture=pcap.name, status="ok", what=peer.what, command=argv)
    if peer.needs and shutil.which(peer.needs) is None:
        run.status, run.error = "skipped", f"{peer.needs} not installed"
        return run
    with tempfile.TemporaryDirectory() as tmp:
        time_file = Path(tmp) / "time.txt"
        out_file = Path(tmp) / "stdout.txt"
        err_file = Path(tmp) / "stderr.txt"
        cmd = list(argv)
        use_time = os.access(TIME_BIN, os.X_OK)
        if use_time:
            cmd = [TIME_BIN, "-v", "-o", str(time_file), *cmd]
        if cpu is not None and shutil.which("taskset"):
            cmd = ["taskset", "-c", str(cpu), *cmd]
        env = repo_env()
        with open(out_file, "wb") as out, open(err_file, "wb") as err:
            stdout = subprocess.DEVNULL if peer.stdout_to_null else out
            started = time.perf_counter()
            proc = subprocess.Popen(
                cmd, stdout=stdout, stderr=err, cwd=REPO, env=env, start_new_session=True
            )
            if use_time:
                try:
                    rc = proc.wait(timeout=timeout)
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait()
                    rc = None
                usage = parse_time_v(time_file.read_text()) if time_file.exists() else {}
            else:
                # No GNU time: wait4() gives the same rusage for exactly this child.
                rc, usage = _wait4(proc, timeout)
            wall = time.perf_counter() - started
        stdout_text = out_file.read_text(errors="replace")
        stderr_text = err_file.read_text(errors="replace")
    if rc is None:
        run.status, run.error = "timeout", f"killed after {timeout:.0f} s"
        return run
    run.wall_s = round(wall, 3)
    run.user_s = usage.get("user_s")
    run.sys_s = usage.get("sys_s")
    if "max_rss_kb" in usage:
        run.max_rss_mb = round(usage["max_rss_kb"] / 1024, 1)
    if rc != 0:
        run.status = "failed"
        tail = [ln for ln in stderr_text.splitlines() if ln.strip() and "Running as user" not in ln]
        run.error = f"exit {rc}: " + " | ".join(tail[-3:])[-400:]
        return run
    run.packets_per_s = round(packets / wall, 1) if wall > 0 else None
    run.result = summarise(peer.name, stdout_text)
    return run


def _wait4(proc: subprocess.Popen, timeout: float) -> tuple[int | None, dict[str, float]]:
    deadline = time.monotonic() + timeout
    while True:
        pid, status, ru = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            proc.returncode = os.waitstatus_to_exitcode(status)
            return proc.returncode, {
                "max_rss_kb": ru.ru_maxrss,
                "user_s": ru.ru_utime,
                "sys_s": ru.ru_stime,
            }
        if time.monotonic() > deadline:
            os.killpg(proc.pid, signal.SIGKILL)
            os.wait4(proc.pid, 0)
            return None, {}
        time.sleep(0.01)


def tool_versions() -> dict[str, str]:
    versions: dict[str, str] = {"python": platform.python_version()}
    for tool, args in (("tshark", ["--version"]), ("tcptrace", ["-v"])):
        if shutil.which(tool):
            res = subprocess.run([tool, *args], capture_output=True, text=True, check=False)
            first = (res.stdout or res.stderr).strip().splitlines()
            versions[tool] = first[0] if first else "?"
    try:
        import dpkt

        versions["dpkt"] = dpkt.__version__
    except ImportError:
        pass
    res = subprocess.run(
        ["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"],
        capture_output=True,
        text=True,
        check=False,
    )
    versions["pcapan_commit"] = res.stdout.strip()
    return versions


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "?"


def fmt(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def run_interleaved(
    selected: list[Peer], cap: Path, packets: int, repeat: int, cpu: int | None, timeout: float
) -> list[Run]:
    """Run every peer ``repeat`` times, round-robin; keep each peer's fastest successful run."""
    if not selected:
        return []
    warm_page_cache(cap)
    best: dict[str, Run] = {}
    walls: dict[str, list[float]] = {}
    for rnd in range(max(1, repeat)):
        for peer in selected:
            print(
                f"running {peer.name} on {cap.name} (run {rnd + 1}/{max(1, repeat)}) ...",
                flush=True,
            )
            r = run_peer(peer, cap, packets, cpu, timeout)
            if r.wall_s is not None and r.status == "ok":
                walls.setdefault(peer.name, []).append(r.wall_s)
            prev = best.get(peer.name)
            if prev is None or (
                r.status == "ok" and (prev.status != "ok" or (r.wall_s or 0) < (prev.wall_s or 0))
            ):
                best[peer.name] = r
    runs = []
    for peer in selected:
        best[peer.name].all_wall_s = walls.get(peer.name, [])
        runs.append(best[peer.name])
    return runs


def run_parallel(cap: Path, repeat: int, timeout: float) -> list[dict]:
    """The parallel phase on ``cap``: each mode ``repeat`` times round-robin, fastest kept;
    speedup = workers=1's analyze time over the mode's."""
    warm_page_cache(cap)
    best: dict[str, dict] = {}
    for rnd in range(max(1, repeat)):
        for label, mode in PARALLEL_MODES:
            print(f"running pcapan {label} on {cap.name} (run {rnd + 1}) ...", flush=True)
            try:
                p = subprocess.run(
                    [sys.executable, "-c", PARALLEL_SNIPPET, mode, str(cap)],
                    capture_output=True,
                    text=True,
                    cwd=REPO,
                    env=repo_env(),
                    timeout=timeout,
                )
            except subprocess.TimeoutExpired:
                best.setdefault(label, {"mode": label, "status": "timeout"})
                continue
            vals = dict(
                kv.split("=", 1)
                for line in p.stdout.splitlines()
                for kv in line.split(" ")
                if "=" in kv
            )
            if p.returncode != 0 or "analyze_s" not in vals:
                tail = " | ".join(p.stderr.strip().splitlines()[-2:])[-300:]
                best.setdefault(label, {"mode": label, "status": "failed", "error": tail})
                continue
            row = {
                "mode": label,
                "status": "ok",
                "analyze_s": float(vals["analyze_s"]),
                "tables_s": float(vals["tables_s"]),
                "startup_s": float(vals["startup_s"]) if "startup_s" in vals else None,
                "rows": vals["rows"],
                "loadavg": round(os.getloadavg()[0], 2),
            }
            row["all_analyze_s"] = best.get(label, {}).get("all_analyze_s", []) + [row["analyze_s"]]
            prev = best.get(label)
            if prev is None or prev.get("status") != "ok" or row["analyze_s"] < prev["analyze_s"]:
                best[label] = row
            else:
                prev["all_analyze_s"] = row["all_analyze_s"]
    rows = [best[label] for label, _ in PARALLEL_MODES if label in best]
    base = best.get("workers=1", {}).get("analyze_s")
    for r in rows:
        if base and r.get("status") == "ok":
            r["speedup"] = round(base / r["analyze_s"], 2)
            r["target"] = PARALLEL_TARGETS.get(r["mode"])
    return rows


def print_parallel(rows: list[dict], title: str) -> None:
    print(
        f"\n{title}\nparallel analysis, unpinned ({os.cpu_count()} CPUs), fastest of the runs; "
        "speedup = workers=1's analyze s / the mode's (analyze includes the merge)\n"
    )
    header = f"{'mode':<22} {'status':<8} {'analyze s':>9} {'tables s':>9} {'speedup':>8} {'target':>7}  all analyze s / notes"
    print(header)
    print("-" * len(header))
    for r in rows:
        if r.get("status") != "ok":
            print(f"{r['mode']:<22} {r.get('status', '?'):<8} {r.get('error', '')[:90]}")
            continue
        target = f">={r['target']}" if r.get("target") else "-"
        notes = "/".join(f"{w:.2f}" for w in r["all_analyze_s"])
        if r.get("startup_s") is not None:
            notes += f"; cluster start {r['startup_s']:.1f} s (not counted)"
        print(
            f"{r['mode']:<22} {'ok':<8} {r['analyze_s']:>9.2f} {r['tables_s']:>9.2f} "
            f"{r.get('speedup', 0):>8.2f} {target:>7}  {notes}"
        )


def set_ratios(runs: list[Run], base_name: str) -> Run | None:
    """speed_ratio of every other peer: the base's packets/s over the peer's."""
    base = next((r for r in runs if r.peer == base_name and r.status == "ok"), None)
    for r in runs:
        if base and r.peer != base_name and r.packets_per_s:
            r.speed_ratio = round(base.packets_per_s / r.packets_per_s, 3)
    return base


def tls_cpu_ratio(runs: list[Run]) -> None:
    """The keyed phase in CPU seconds: the whole processes, and pcapan's analysis alone (the
    interpreter's start and imports, a fixed cost a small capture does not amortise, left out)."""
    mine = next((r for r in runs if r.peer == "pcapan-tls" and r.status == "ok"), None)
    peer = next((r for r in runs if r.peer == "tshark-tls" and r.status == "ok"), None)
    if mine is None or peer is None or mine.user_s is None or peer.user_s is None:
        return
    p_cpu = mine.user_s + (mine.sys_s or 0)
    t_cpu = peer.user_s + (peer.sys_s or 0)
    inner = next(
        (float(w.split("=")[1]) for w in mine.result.split() if w.startswith("analysis_cpu_s=")),
        None,
    )
    line = f"cpu s: tshark {t_cpu:.2f}, pcapan process {p_cpu:.2f} ({t_cpu / p_cpu:.2f}x)"
    if inner:
        line += f", pcapan analysis {inner:.2f} ({t_cpu / inner:.2f}x)"
    print(line)


def print_table(runs: list[Run], packets: int, title: str = "") -> None:
    print(
        (f"\n{title}" if title else "")
        + f"\n{packets} packets, one core each, fastest of the runs per peer; "
        "ratio = pcapan packets/s / peer packets/s (>1: pcapan faster)\n"
    )
    header = (
        f"{'peer':<12} {'status':<8} {'wall s':>8} {'cpu s':>8} {'packets/s':>12} "
        f"{'pcapan vs peer':<26} {'peak RSS MB':>11}  result"
    )
    print(header)
    print("-" * len(header))
    for r in runs:
        if r.peer.startswith("pcapan"):
            ratio = "-"
        elif r.speed_ratio is not None:
            ratio = f"pcapan is {r.speed_ratio:.2f}x"
        else:
            ratio = "n/a"
        detail = r.result if r.status == "ok" else r.error
        cpu_s = r.user_s + r.sys_s if r.user_s is not None and r.sys_s is not None else None
        print(
            f"{r.peer:<12} {r.status:<8} {fmt(r.wall_s, '.2f'):>8} {fmt(cpu_s, '.2f'):>8} "
            f"{fmt(r.packets_per_s, ',.0f'):>12} {ratio:<26} {fmt(r.max_rss_mb, '.1f'):>11}  {detail[:90]}"
        )
    spread = [
        f"{r.peer} {'/'.join(f'{w:.2f}' for w in r.all_wall_s)}"
        for r in runs
        if len(r.all_wall_s) > 1
    ]
    if spread:
        print("\nall wall times (s): " + "; ".join(spread))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument(
        "--packets", type=int, default=None, help="packets in the 1x capture (default 1000000)"
    )
    ap.add_argument(
        "--smoke",
        action="store_true",
        help=f"tiny capture ({SMOKE_PACKETS} packets) for CI; finishes in seconds",
    )
    ap.add_argument(
        "--keep",
        action="store_true",
        help="keep captures generated by this run in benchmarks/out/ for the next run",
    )
    ap.add_argument("--seed", type=int, default=DEFAULT_SEED)
    ap.add_argument(
        "--mix",
        choices=SYNTHETIC_MIXES,
        default="web",
        help="the synthetic capture's traffic: web (long keep-alive connections, ~130 packets "
        "each; default) or short (1-3 exchanges per connection, ~23 packets each)",
    )
    ap.add_argument(
        "--real",
        metavar="PATH",
        default=None,
        help="the real capture to run every peer on as well (default: "
        + " or ".join(str(p.relative_to(REPO)) for p in REAL_DEFAULTS)
        + ", recorded with make_real_capture.py when missing and root; not in --smoke)",
    )
    ap.add_argument(
        "--no-real",
        dest="real_enabled",
        action="store_false",
        help="skip the real capture's table",
    )
    ap.add_argument(
        "--peers",
        default=None,
        help="comma-separated subset of: "
        + ",".join(p.name for p in peers() + http_peers() + tls_peers()),
    )
    ap.add_argument(
        "--no-2x",
        dest="two_x",
        action="store_false",
        help="skip the 2x capture and the memory check",
    )
    ap.add_argument(
        "--no-http",
        dest="http",
        action="store_false",
        help=f"skip the HTTP phase (pcapan's http table vs tshark's HTTP fields on a {HTTP_PACKETS}-packet HTTP-only capture)",
    )
    ap.add_argument(
        "--tls-capture",
        metavar="PATH",
        default=None,
        help="the keyed HTTPS phase's capture, its key log beside it with the suffix .keys "
        "(x.pcap: x.keys; default "
        + str(TLS_OUT.relative_to(REPO))
        + ", recorded with make_tls_capture.py when missing and root; not in --smoke)",
    )
    ap.add_argument(
        "--no-tls",
        dest="tls",
        action="store_false",
        help="skip the keyed HTTPS phase (pcapan with a key log vs tshark with the same key log)",
    )
    ap.add_argument(
        "--results",
        metavar="PATH",
        type=Path,
        default=OUT / "results.json",
        help="where the JSON results go (default benchmarks/out/results.json)",
    )
    ap.add_argument(
        "--no-parallel",
        dest="parallel",
        action="store_false",
        help="skip the parallel phase (workers=1, workers=2 and a Dask LocalCluster(2) on the "
        "synthetic and the real capture; not in --smoke; Dask's row needs pcapan[dask])",
    )
    ap.add_argument("--timeout", type=float, default=3600.0, help="seconds before a peer is killed")
    ap.add_argument(
        "--strict",
        action="store_true",
        help="exit 1 if pcapan fails (on either capture) or misses the memory target",
    )
    ap.add_argument(
        "--repeat",
        type=int,
        default=3,
        help="runs per peer, interleaved round-robin; each peer's fastest run counts (as hyperfine's min), "
        "so a noisy moment on a shared machine does not decide a ratio (default 3)",
    )
    args = ap.parse_args(argv)
    packets = args.packets or (SMOKE_PACKETS if args.smoke else 1_000_000)
    if args.real and not args.real_enabled:
        ap.error("--real and --no-real contradict each other")
    if args.real and not Path(args.real).is_file():
        ap.error(f"--real {args.real}: no such file")
    build = build_line()
    print(f"build: {build}", flush=True)

    selected = peers()
    wanted: set[str] = set()
    if args.peers:
        wanted = set(args.peers.split(","))
        unknown = wanted - {p.name for p in selected + http_peers() + tls_peers()}
        if unknown:
            ap.error(f"unknown peers: {', '.join(sorted(unknown))}")
        selected = [p for p in selected if p.name in wanted]
    real_selected = [p for p in peers(real=True) if p.name in {q.name for q in selected}]
    cpu = pinned_cpu()
    load_at_start = os.getloadavg()[0]
    if load_at_start > 0.5:
        # Pinning does not keep other processes off that core; wall-clock ratios get noisy.
        print(
            f"note: load average {load_at_start:.1f} at start; compare wall s with cpu s in the table",
            file=sys.stderr,
        )
    if not os.access(TIME_BIN, os.X_OK):
        print(
            f"note: {TIME_BIN} missing (Debian package 'time'); measuring with wait4() instead",
            file=sys.stderr,
        )

    # Byte-compile pcapan as a regular install would (pip compiles on install); an editable
    # checkout under PYTHONDONTWRITEBYTECODE=1 would otherwise compile every module on every run.
    import compileall

    compileall.compile_dir(str(REPO / "pcapan"), quiet=1)

    generated: list[Path] = []
    cap1, meta1, new = ensure_capture(packets, args.seed, args.mix)
    if new:
        generated.append(cap1)
    cap2 = meta2 = None
    pcapan_peer = next((p for p in selected if p.name == "pcapan"), None)
    if args.two_x and pcapan_peer:
        cap2, meta2, new = ensure_capture(2 * packets, args.seed, args.mix)
        if new:
            generated.append(cap2)

    http_selected = http_peers() if args.http else []
    if args.peers:
        http_selected = [p for p in http_selected if p.name in wanted]
    http_packets = SMOKE_HTTP_PACKETS if args.smoke else HTTP_PACKETS
    cap_h = meta_h = None
    if http_selected:
        cap_h, meta_h, new = ensure_capture(http_packets, args.seed, "http")
        if new:
            generated.append(cap_h)

    tls_selected = tls_peers() if args.tls and not args.smoke else []
    if args.peers:
        tls_selected = [p for p in tls_selected if p.name in wanted]
    cap_t: Path | None = None
    tls_note = "skipped"
    tls_packets = 0
    if tls_selected:
        cap_t, tls_note = find_tls_capture(args)
        if cap_t is not None:
            tls_packets = count_packets(cap_t)

    cap_r: Path | None = None
    real_note = "skipped (no peer of the main table selected)"
    real_packets = 0
    if real_selected:
        cap_r, real_note = find_real_capture(args)
        if cap_r is not None:
            real_packets = count_packets(cap_r)

    try:
        runs = run_interleaved(selected, cap1, packets, args.repeat, cpu, args.timeout)
        real_runs = (
            run_interleaved(real_selected, cap_r, real_packets, args.repeat, cpu, args.timeout)
            if cap_r is not None
            else []
        )
        http_runs = (
            run_interleaved(http_selected, cap_h, http_packets, args.repeat, cpu, args.timeout)
            if cap_h
            else []
        )
        tls_runs = (
            run_interleaved(tls_selected, cap_t, tls_packets, args.repeat, cpu, args.timeout)
            if cap_t is not None
            else []
        )
        par_runs: dict[str, list[dict]] = {}
        if args.parallel and not args.smoke and pcapan_peer is not None:
            par_runs["synthetic"] = run_parallel(cap1, args.repeat, args.timeout)
            if cap_r is not None:
                par_runs["real"] = run_parallel(cap_r, args.repeat, args.timeout)
        run2x = None
        if cap2 is not None and pcapan_peer is not None:
            warm_page_cache(cap2)
            print(f"running pcapan on {cap2.name} (memory check) ...", flush=True)
            run2x = run_peer(pcapan_peer, cap2, 2 * packets, cpu, args.timeout)
    finally:
        if not args.keep:
            for path in generated:
                path.unlink(missing_ok=True)
                meta_path(path).unlink(missing_ok=True)

    base = set_ratios(runs, "pcapan")
    if runs:
        ppc = meta1.get("packets_per_connection")
        print_table(
            runs,
            packets,
            f"synthetic capture ({args.mix} mix): {cap1.name}, {meta1['connections']} connections"
            + (f", {ppc} packets per connection" if ppc else ""),
        )
    set_ratios(real_runs, "pcapan")
    real_meta: dict = {}
    if cap_r is not None:
        meta_file = Path(str(cap_r) + ".meta.json")
        if meta_file.exists():
            try:
                real_meta = json.loads(meta_file.read_text())
            except (OSError, ValueError):
                real_meta = {}
        facts = ", ".join(
            f"{real_meta[k]:,} {label}"
            for k, label in (
                ("tcp_connections", "TCP connections"),
                ("http_requests", "HTTP requests"),
                ("tls_client_hellos", "TLS handshakes"),
                ("mean_packets_per_connection", "packets per connection"),
            )
            if isinstance(real_meta.get(k), int | float)
        )
        print_table(
            real_runs,
            real_packets,
            f"real capture: {cap_r}" + (f" ({facts})" if facts else ""),
        )
    elif runs:
        print(f"\nreal capture: {real_note}")
    if http_runs:
        set_ratios(http_runs, "pcapan-http")
        print("\nHTTP phase: an HTTP-only capture (every request and response parsed)")
        print_table(http_runs, http_packets)

    if tls_runs:
        set_ratios(tls_runs, "pcapan-tls")
        print(f"\nkeyed HTTPS phase: {cap_t} with its key log (decrypted HTTP/1.1 in TLS)")
        print_table(tls_runs, tls_packets)
        tls_cpu_ratio(tls_runs)
    elif tls_selected:
        print(f"\nkeyed HTTPS phase: {tls_note}")

    for which, rows in par_runs.items():
        print_parallel(rows, f"{which} capture: {cap1.name if which == 'synthetic' else cap_r}")
    memory: dict[str, object] = {"target": MEMORY_TARGET}
    if run2x is not None:
        memory["run_2x"] = asdict(run2x)
        if base and run2x.status == "ok" and base.max_rss_mb and run2x.max_rss_mb:
            ratio = run2x.max_rss_mb / base.max_rss_mb
            memory.update(ratio=round(ratio, 3), ok=ratio <= MEMORY_TARGET)
            verdict = "OK" if ratio <= MEMORY_TARGET else "OVER TARGET"
            print(
                f"\nmemory: pcapan peak RSS {run2x.max_rss_mb:.1f} MB on 2x / {base.max_rss_mb:.1f} MB on 1x "
                f"= {ratio:.2f} (target <= {MEMORY_TARGET}) {verdict}; 2x speed {fmt(run2x.packets_per_s, ',.0f')} packets/s"
            )
            if args.smoke:
                print(
                    "        (smoke capture: interpreter start-up dominates RSS, the ratio means little)"
                )
        else:
            print(
                f"\nmemory: check not available (pcapan on 1x: {base.status if base else 'failed'}, on 2x: {run2x.status})"
            )

    OUT.mkdir(parents=True, exist_ok=True)
    doc = {
        "when": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "packets": packets,
        "smoke": args.smoke,
        "pinned_cpu": cpu,
        "cpu_model": cpu_model(),
        "cpus_online": os.cpu_count(),
        "loadavg_at_start": load_at_start,
        "loadavg_at_end": os.getloadavg()[0],
        "versions": tool_versions(),
        "capture": {"file": cap1.name, **meta1},
        "capture_2x": {"file": cap2.name, **meta2} if cap2 is not None and meta2 else None,
        "runs": [asdict(r) for r in runs],
        "capture_http": {"file": cap_h.name, **meta_h} if cap_h is not None and meta_h else None,
        "http_runs": [asdict(r) for r in http_runs],
        "tls_runs": [asdict(r) for r in tls_runs],
        "capture_tls": {"file": str(cap_t), "packets": tls_packets} if cap_t else tls_note,
        "memory": memory,
        "parallel": par_runs,
        "build": build,
        "real": (
            {
                "capture": {**real_meta, "file": str(cap_r), "packets": real_packets},
                "runs": [asdict(r) for r in real_runs],
            }
            if cap_r is not None
            else {"skipped": real_note}
        ),
    }
    results = args.results.resolve()
    results.parent.mkdir(parents=True, exist_ok=True)
    results.write_text(json.dumps(doc, indent=2) + "\n")
    shown = results.relative_to(REPO) if results.is_relative_to(REPO) else results
    print(f"\nresults: {shown}")
    real_failed = any(r.peer == "pcapan" and r.status != "ok" for r in real_runs)
    if args.strict and (base is None or real_failed or memory.get("ok") is False):
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
