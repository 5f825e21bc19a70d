#!/usr/bin/env python3
"""Record a real web-traffic capture: nginx, curl and openssl between network namespaces.

Run as root:  ``python benchmarks/make_real_capture.py [--out PATH] [--packets N] [--seed S]``

The synthetic capture of ``make_capture.py`` has ~130 packets per connection; the traffic people
capture has ~20 (issue 14). This script records the second kind, from real servers and clients,
so that the benchmark and the engine's correctness checks (issue 13: client port reuse) run on
what a capture from the wild looks like. What it does:

* creates network namespaces ``realcap-<pid>-client`` and ``realcap-<pid>-server`` joined by a
  veth pair (MTU 1500, GRO/GSO/TSO and checksum offloads off, so the capture shows wire-sized
  segments), IPv4 10.77.0.1/24 -> 10.77.0.2/24 and IPv6 fd72:6361:7000::1/64 -> ::2 (a ULA
  range, DAD off);
* delays every frame by 1 ms each way (RTT ~2 ms): with ``tc qdisc ... netem delay 1ms`` on both
  ends when the kernel has netem, else (``--delay forwarder``; this VM's kernel has no netem)
  through a third namespace ``realcap-<pid>-router`` that holds every frame 1 ms in each
  direction with the delay line of ``samples/make_samples.py --rtt-forwarder`` (client veth ->
  router -> server veth, an L2 wire, so ARP and NDP cross it too);
* narrows the client's ``net.ipv4.ip_local_port_range`` to ``--ports`` ports (default 2,000)
  and turns on ``tcp_tw_reuse``, so client ports come back many times, seconds apart, also after
  connections that ended in RSTs, and also for TLS (issue 13, defect 2b);
* writes a docroot (seeded pseudo-random content of fixed sizes: pages, scripts, images, JSON,
  two bulk files of 2 and 4 MB), a self-signed certificate for a.test, b.test and c.test
  (openssl, at run time) and an nginx config (HTTP on port 80, HTTPS on 443 with TLS 1.2 and
  1.3, session cache and tickets; one server block per name, IPv4 and IPv6);
* captures on the server's veth with tcpdump (``-s 0``, ``-B`` 64 MiB), runs ``--workers``
  client workers in parallel, each taking the next job of a plan drawn from ``--seed`` until
  the capture holds ``--packets`` packets. A job is one client process (see ``JOB_WEIGHTS``):
  curl with 1-3 requests per connection, many with ``Connection: close``, some HTTP/1.0;
  keep-alive connections with many requests; HTTPS the same with TLS 1.2 or 1.3
  (``--tlsv1.2 --tls-max 1.2`` / ``--tlsv1.3``), SNI by ``--resolve`` and session resumption
  between the connections of one curl process; openssl s_client with ``-sess_out`` then
  ``-sess_in``; bulk downloads; 7 % of jobs over IPv6;
* stops the capture, checks tcpdump dropped nothing, renames the file into place, and prints
  (and writes to ``<out>.meta.json``) what tshark and capinfos find in it: packets, TCP
  connections, HTTP requests, TLS handshakes (and resumptions), IPv6 connections, mean packets
  per connection, client ports reused;
* removes everything it started, on success, error, SIGINT and SIGTERM: clients, nginx, tcpdump,
  the delay line and the namespaces (namespaces of an earlier run that was killed are removed
  at the start), and checks ``ip netns`` holds none of its namespaces at the end.

The plan (jobs, hosts, paths, request counts, TLS versions) is fixed by ``--seed``; which job
runs on which worker, timestamps, client ports, sequence numbers and keys differ from run to run,
and the capture ends when the packet target is reached, so its exact length varies a little.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import re
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import threading
import time
import zlib
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
SAMPLES_SCRIPT = REPO / "samples" / "make_samples.py"  # its --rtt-forwarder is the delay line
sys.path.insert(0, str(REPO / "samples"))
import netlab  # noqa: E402  (samples/netlab.py: namespaces and nginx, shared with the samples)

DEFAULT_OUT = HERE / "real-short.pcap"
DEFAULT_PACKETS = 300_000
DEFAULT_SEED = 20261207
DEFAULT_WORKERS = 4
PREFIX = "realcap"

# --- the network -------------------------------------------------------------------------------
CLIENT_V4, SERVER_V4 = "10.77.0.1", "10.77.0.2"
CLIENT_V6, SERVER_V6 = "fd72:6361:7000::1", "fd72:6361:7000::2"  # ULA (RFC 4193) range
ONE_WAY_DELAY_S = 0.001  # each direction, so the RTT is ~2 ms
MTU = 1500
# Client ports: a narrow range so that they repeat (2,000 ports for ~15,000 connections).
PORT_RANGE_LOW = 40000
DEFAULT_PORTS = 2000
CAPTURE_DEV = "s-eth"  # the server's veth
TCPDUMP_BUFFER_KIB = 65536  # -B: bulk bursts at veth speed must not overflow the ring

# --- the servers -------------------------------------------------------------------------------
HOSTS = ("a.test", "b.test", "c.test")
HOST_WEIGHTS = (0.3, 0.2, 0.5)  # c.test is the busy one, as in the capture of issue 13
HTTP_PORT, HTTPS_PORT = 80, 443
# Docroot: path -> size in bytes, and how often clients ask for it. Mostly small objects, as
# on real sites (median web response a few KB); 404s for paths that do not exist.
FILES: dict[str, int] = {
    "index.html": 3200,
    "about.html": 5400,
    "favicon.ico": 1150,
    "style.css": 6800,
    "app.js": 24000,
    "api/items.json": 640,
    "api/user.json": 210,
    "api/feed.json": 2300,
    "img/logo.png": 9100,
    "img/photo1.png": 18500,
    "img/photo2.png": 41000,
    "robots.txt": 120,
}
PATH_WEIGHTS: dict[str, float] = {
    "index.html": 14,
    "about.html": 3,
    "favicon.ico": 8,
    "style.css": 6,
    "app.js": 3,
    "api/items.json": 16,
    "api/user.json": 14,
    "api/feed.json": 8,
    "img/logo.png": 5,
    "img/photo1.png": 2,
    "img/photo2.png": 1,
    "robots.txt": 4,
    "missing.html": 3,  # 404
    "api/missing": 2,  # 404
}
BULK_FILES: dict[str, int] = {"bulk/2m.bin": 2 << 20, "bulk/4m.bin": 4 << 20}
FIXED_MTIME = 1704067200  # 2024-01-01T00:00:00Z: the same Last-Modified/ETag on every run

# --- the clients -------------------------------------------------------------------------------
# One job = one client process. Weights tuned so that the capture averages ~20 packets per TCP
# connection with ~1.8 requests per connection, ~20 % of connections TLS.
JOB_WEIGHTS: dict[str, float] = {
    "http_short": 30,  # curl: 6-16 connections of 1-3 requests, the last with Connection: close
    "http10": 4,  # curl --http1.0: 3-8 requests, one connection each
    "http_keepalive": 5,  # curl: one connection, 8-40 requests, closed by curl's exit
    "https_short": 14,  # curl: 3-8 TLS connections of 1-3 requests, sessions resumed
    "https_keepalive": 3,  # curl: one TLS connection, 5-20 requests
    "s_client": 6,  # openssl s_client: a full handshake, then 1-2 resumptions (-sess_in)
    "bulk": 0.5,  # curl: one 2 or 4 MB download, HTTP or HTTPS
}
IPV6_SHARE = 0.07
CLIENT_TIMEOUT_S = 120
CURL_W = "%{http_code} %{num_connects}\\n"
CMD_TIMEOUT_S = 60
USER_AGENT = "Mozilla/5.0 (X11; Linux x86_64) realcap/1.0 curl"


def log(msg: str) -> None:
    print(f"[make_real_capture] {msg}", file=sys.stderr, flush=True)


def run(
    cmd: list[str],
    *,
    input: bytes | None = None,
    check: bool = True,
    timeout: float = CMD_TIMEOUT_S,
) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, input=input, capture_output=True, timeout=timeout, check=check)


def _raise_on_sigterm(signum: int, frame: object) -> None:
    raise SystemExit(f"make_real_capture: terminated by signal {signum}")


# --- the plan ----------------------------------------------------------------------------------
@dataclass
class Job:
    """One client process and what it should do (for the check of its output)."""

    kind: str
    argv: list[str]  # run in the client namespace
    connections: int
    requests: int
    ipv6: bool
    tls: bool
    stdin: bytes | None = None
    # s_client jobs are several processes run one after the other (session files between them)
    more: list[tuple[list[str], bytes]] = field(default_factory=list)


def _resolve(host: str, port: int, v6: bool) -> list[str]:
    return ["--resolve", f"{host}:{port}:{'[' + SERVER_V6 + ']' if v6 else SERVER_V4}"]


class Planner:
    """An endless, seeded sequence of jobs."""

    def __init__(self, seed: int, tmp: Path) -> None:
        self.rng = random.Random(seed)
        self.tmp = tmp
        self.n = 0
        self.paths = list(PATH_WEIGHTS)
        self.path_w = list(PATH_WEIGHTS.values())
        self.kinds = list(JOB_WEIGHTS)
        self.kind_w = list(JOB_WEIGHTS.values())

    def host(self) -> str:
        return self.rng.choices(HOSTS, HOST_WEIGHTS)[0]

    def path(self) -> str:
        return "/" + self.rng.choices(self.paths, self.path_w)[0]

    def __iter__(self) -> Iterator[Job]:
        while True:
            self.n += 1
            kind = self.rng.choices(self.kinds, self.kind_w)[0]
            v6 = self.rng.random() < IPV6_SHARE
            yield getattr(self, "_" + kind)(v6)

    def _curl(self, segments: list[list[str]], common: list[str]) -> list[str]:
        """One curl process, one ``--next`` segment per group of URLs that share options; the
        connection cache (and TLS session cache) is shared by all segments."""
        cmd = ["curl"]
        for i, seg in enumerate(segments):
            if i:
                cmd.append("--next")
            cmd += ["-sS", "--max-time", "60", "-A", USER_AGENT, "-w", CURL_W, *common, *seg]
        return cmd

    @staticmethod
    def _urls(scheme: str, host: str, paths: list[str]) -> list[str]:
        out: list[str] = []
        for p in paths:
            out += [f"{scheme}://{host}{p}", "-o", "/dev/null"]
        return out

    def _short(self, v6: bool, tls: bool, n_conns: int, common: list[str]) -> tuple[list, int]:
        scheme, port = ("https", HTTPS_PORT) if tls else ("http", HTTP_PORT)
        segments: list[list[str]] = []
        requests = 0
        for _ in range(n_conns):
            host = self.host()
            n_req = self.rng.choices((1, 2, 3), (0.55, 0.3, 0.15))[0]
            paths = [self.path() for _ in range(n_req)]
            requests += n_req
            res = _resolve(host, port, v6)
            if n_req > 1:  # the first requests keep the connection open...
                segments.append([*res, *self._urls(scheme, host, paths[:-1])])
            # ... the last one closes it (curl also closes it on the server's "close")
            segments.append(
                [*res, "-H", "Connection: close", *self._urls(scheme, host, paths[-1:])]
            )
        return segments, requests

    def _http_short(self, v6: bool) -> Job:
        n = self.rng.randint(6, 16)
        segments, requests = self._short(v6, False, n, [])
        return Job("http_short", self._curl(segments, []), n, requests, v6, False)

    def _http10(self, v6: bool) -> Job:
        n = self.rng.randint(3, 8)
        host = self.host()
        seg = [
            *_resolve(host, HTTP_PORT, v6),
            "--http1.0",
            *self._urls("http", host, [self.path() for _ in range(n)]),
        ]
        return Job("http10", self._curl([seg], []), n, n, v6, False)

    def _http_keepalive(self, v6: bool) -> Job:
        n = self.rng.randint(8, 40)
        host = self.host()
        seg = [
            *_resolve(host, HTTP_PORT, v6),
            *self._urls("http", host, [self.path() for _ in range(n)]),
        ]
        return Job("http_keepalive", self._curl([seg], []), 1, n, v6, False)

    def _tls_opts(self) -> list[str]:
        if self.rng.random() < 0.5:
            return ["-k", "--tlsv1.2", "--tls-max", "1.2"]
        return ["-k", "--tlsv1.3"]

    def _https_short(self, v6: bool) -> Job:
        n = self.rng.randint(3, 8)
        opts = self._tls_opts()
        segments, requests = self._short(v6, True, n, opts)
        return Job("https_short", self._curl(segments, opts), n, requests, v6, True)

    def _https_keepalive(self, v6: bool) -> Job:
        n = self.rng.randint(5, 20)
        host = self.host()
        opts = self._tls_opts()
        seg = [
            *_resolve(host, HTTPS_PORT, v6),
            *self._urls("https", host, [self.path() for _ in range(n)]),
        ]
        return Job("https_keepalive", self._curl([seg], opts), 1, n, v6, True)

    def _s_client(self, v6: bool) -> Job:
        host = self.host()
        version = self.rng.choice(("-tls1_2", "-tls1_3"))
        sess = self.tmp / f"sess-{self.n}.pem"
        target = f"[{SERVER_V6}]:{HTTPS_PORT}" if v6 else f"{SERVER_V4}:{HTTPS_PORT}"
        base = [
            "openssl",
            "s_client",
            "-connect",
            target,
            "-servername",
            host,
            version,
            "-quiet",
            "-ign_eof",
        ]
        steps: list[tuple[list[str], bytes]] = []
        n = 1 + self.rng.randint(1, 2)
        for i in range(n):
            req = (
                f"GET {self.path()} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: {USER_AGENT}\r\n"
                "Connection: close\r\n\r\n"
            ).encode()
            flag = ["-sess_out", str(sess)] if i == 0 else ["-sess_in", str(sess)]
            steps.append((base + flag, req))
        (argv, stdin), *more = steps
        return Job("s_client", argv, n, n, v6, True, stdin=stdin, more=more)

    def _bulk(self, v6: bool) -> Job:
        host = self.host()
        tls = self.rng.random() < 0.4
        scheme, port = ("https", HTTPS_PORT) if tls else ("http", HTTP_PORT)
        opts = self._tls_opts() if tls else []
        seg = [
            *_resolve(host, port, v6),
            *self._urls(scheme, host, ["/" + self.rng.choice(list(BULK_FILES))]),
        ]
        return Job("bulk", self._curl([seg], opts), 1, 1, v6, tls)


# --- pcap packet count while tcpdump writes ------------------------------------------------------
class PcapCounter:
    """Counts the complete records of a pcap file that is still being written (tcpdump -U)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.offset = 24
        self.count = 0
        self.endian = "<"

    def update(self) -> int:
        try:
            with self.path.open("rb") as f:
                if self.offset == 24:
                    head = f.read(24)
                    if len(head) < 24:
                        return 0
                    self.endian = (
                        "<" if head[:4] in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1") else ">"
                    )
                f.seek(self.offset)
                data = f.read()
        except FileNotFoundError:
            return 0
        pos = 0
        fmt = self.endian + "IIII"
        while pos + 16 <= len(data):
            caplen = struct.unpack_from(fmt, data, pos)[2]
            if pos + 16 + caplen > len(data):
                break
            pos += 16 + caplen
            self.count += 1
        self.offset += pos
        return self.count


# --- namespaces --------------------------------------------------------------------------------
netns_list = netlab.netns_list


def kill_and_delete(ns: str) -> None:
    netlab.kill_and_delete(ns, log)


def remove_stale() -> None:
    """Namespaces of an earlier run that died (its pid is gone): kill what runs in them and
    delete them; a run still alive is left alone."""
    netlab.remove_stale(rf"{PREFIX}-(\d+)-(?:client|server|router)", log)


class Lab:
    """The namespaces, the veth wire, the delay, nginx and tcpdump. A context manager: on exit
    (error and signals included) every process it started is stopped, anything still running in
    its namespaces is killed by pid, and the namespaces (with their veths) are deleted."""

    def __init__(self, tmp: Path, delay: str, ports: int) -> None:
        self.tmp = tmp
        self.delay = delay
        self.ports = ports
        self.prefix = f"{PREFIX}-{os.getpid()}"
        self.ns = {r: f"{self.prefix}-{r}" for r in ("client", "server", "router")}
        self.procs: list[subprocess.Popen] = []
        self.fwd: subprocess.Popen | None = None
        self.delay_used = ""
        self.ping_ms: list[float] = []
        self.tcpdump_stats = ""
        self.tcpdump_drops = -1

    def cmd(self, role: str, args: list[str]) -> list[str]:
        return ["ip", "netns", "exec", self.ns[role], *args]

    def run(self, role: str, args: list[str], **kw) -> subprocess.CompletedProcess:
        return run(self.cmd(role, args), **kw)

    def start(self, role: str, args: list[str], **kw) -> subprocess.Popen:
        log("start: " + " ".join(args))
        p = subprocess.Popen(self.cmd(role, args), **kw)
        self.procs.append(p)
        return p

    def __enter__(self) -> Lab:
        remove_stale()
        try:
            self._setup()
        except BaseException:
            self._teardown()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self._teardown()

    def _netem_ok(self) -> bool:
        r = self.run(
            "client",
            [
                "tc",
                "qdisc",
                "add",
                "dev",
                "c-eth",
                "root",
                "netem",
                "delay",
                f"{ONE_WAY_DELAY_S * 1000:g}ms",
            ],
            check=False,
        )
        if r.returncode != 0:
            return False
        self.run(
            "server",
            [
                "tc",
                "qdisc",
                "add",
                "dev",
                "s-eth",
                "root",
                "netem",
                "delay",
                f"{ONE_WAY_DELAY_S * 1000:g}ms",
            ],
        )
        return True

    def _setup(self) -> None:
        roles = ["client", "server"]
        want_fwd = self.delay == "forwarder"
        if self.delay == "auto":  # netem? ask the kernel on a throw-away pair first
            want_fwd = not netem_available(self.prefix)
        if want_fwd:
            roles.append("router")
        for role in roles:
            run(["ip", "netns", "add", self.ns[role]])
        for role in ("client", "server"):
            # No DAD (the ULA address usable at once), no TCP metrics cache (no connection
            # starts with what an earlier one learned).
            self.run(
                role,
                [
                    "sysctl",
                    "-q",
                    "-w",
                    "net.ipv6.conf.all.accept_dad=0",
                    "net.ipv6.conf.default.accept_dad=0",
                    "net.ipv4.tcp_no_metrics_save=1",
                ],
            )
        # The client's ports: a narrow range, and TIME_WAIT ports reusable after 1 s (with
        # timestamps, RFC 7323 PAWS keeps that safe), so that ports repeat seconds apart.
        hi = PORT_RANGE_LOW + self.ports - 1
        self.run(
            "client",
            [
                "sysctl",
                "-q",
                "-w",
                f"net.ipv4.ip_local_port_range={PORT_RANGE_LOW} {hi}",
                "net.ipv4.tcp_tw_reuse=1",
            ],
        )
        if want_fwd:
            links = [("client", "c-eth", "router", "r-cli"), ("router", "r-srv", "server", "s-eth")]
            self.run(
                "router",
                [
                    "sysctl",
                    "-q",
                    "-w",
                    "net.ipv6.conf.all.disable_ipv6=1",
                    "net.ipv6.conf.default.disable_ipv6=1",
                ],
            )
        else:
            links = [("client", "c-eth", "server", "s-eth")]
        for ra, da, rb, db in links:
            run(
                [
                    "ip",
                    "link",
                    "add",
                    da,
                    "netns",
                    self.ns[ra],
                    "type",
                    "veth",
                    "peer",
                    "name",
                    db,
                    "netns",
                    self.ns[rb],
                ]
            )
        for role, dev in [(r, d) for ra, da, rb, db in links for r, d in ((ra, da), (rb, db))]:
            run(["ip", "-n", self.ns[role], "link", "set", dev, "mtu", str(MTU)])
            # wire-sized segments: no GRO/GSO/TSO, checksums computed in software
            self.run(
                role,
                [
                    "ethtool",
                    "-K",
                    dev,
                    "gro",
                    "off",
                    "gso",
                    "off",
                    "tso",
                    "off",
                    "tx",
                    "off",
                    "rx",
                    "off",
                ],
            )
            run(["ip", "-n", self.ns[role], "link", "set", dev, "up"])
        for role, dev, v4, v6 in (
            ("client", "c-eth", CLIENT_V4, CLIENT_V6),
            ("server", "s-eth", SERVER_V4, SERVER_V6),
        ):
            run(["ip", "-n", self.ns[role], "link", "set", "lo", "up"])
            run(["ip", "-n", self.ns[role], "addr", "add", f"{v4}/24", "dev", dev])
            run(["ip", "-n", self.ns[role], "-6", "addr", "add", f"{v6}/64", "dev", dev, "nodad"])
        if want_fwd:
            hold = ONE_WAY_DELAY_S
            stages = [["c2s", "r-cli", "r-srv", hold], ["s2c", "r-srv", "r-cli", hold]]
            self.fwd = self.start(
                "router",
                [sys.executable, str(SAMPLES_SCRIPT), "--rtt-forwarder", json.dumps(stages)],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
            )
            assert self.fwd.stdout is not None
            if self.fwd.stdout.readline().strip() != "ready":
                raise RuntimeError("the delay line did not start")
            self.delay_used = "forwarder (samples/make_samples.py --rtt-forwarder), 1 ms each way"
        else:
            if not self._netem_ok():
                raise RuntimeError(
                    "tc netem failed (kernel without sch_netem?): use --delay forwarder"
                )
            self.delay_used = "tc netem delay 1ms on both veth ends"
        out = self.run(
            "client", ["ping", "-n", "-c", "5", "-i", "0.2", "-W", "2", SERVER_V4]
        ).stdout.decode()
        out6 = self.run(
            "client", ["ping", "-6", "-n", "-c", "3", "-i", "0.2", "-W", "2", SERVER_V6]
        ).stdout.decode()
        rtts = [float(t) for t in re.findall(r"time=([\d.]+) ms", out + out6)]
        log(f"delay: {self.delay_used}; ping RTTs {rtts} ms")
        if len(rtts) != 8 or min(rtts) < 2 * ONE_WAY_DELAY_S * 1000 * 0.9:
            raise RuntimeError(f"the link does not delay as configured: ping {rtts} ms")
        self.ping_ms = rtts

    def forwarder_report(self) -> dict:
        if self.fwd is None or self.fwd.poll() is not None:
            return {}
        assert self.fwd.stdin is not None and self.fwd.stdout is not None
        self.fwd.stdin.write("report\n")
        self.fwd.stdin.flush()
        return json.loads(self.fwd.stdout.readline())

    def _teardown(self) -> None:
        if self.fwd is not None and self.fwd.poll() is None:
            with contextlib.suppress(OSError):
                assert self.fwd.stdin is not None
                self.fwd.stdin.close()  # EOF: it prints a last report and exits
        for p in reversed(self.procs):
            if p.poll() is None:
                p.terminate()
                try:
                    p.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait(timeout=5)
        existing = netns_list()
        for ns in self.ns.values():
            if ns in existing:
                kill_and_delete(ns)
        left = [n for n in netns_list() if n.startswith(PREFIX + "-")]
        if left:
            log(f"WARNING: namespaces left behind: {left}")
        else:
            log(
                f"removed namespaces {', '.join(n for n in self.ns.values())}; "
                f"`ip netns` holds none of {PREFIX}-*"
            )


def netem_available(prefix: str) -> bool:
    """Whether ``tc qdisc add ... netem`` works here (on a dummy device of a scratch netns)."""
    ns = f"{prefix}-router"  # the name is ours either way; deleted before _setup reuses it
    run(["ip", "netns", "add", ns])
    try:
        run(["ip", "-n", ns, "link", "add", "name", "probe0", "type", "dummy"], check=False)
        r = run(
            [
                "ip",
                "netns",
                "exec",
                ns,
                "tc",
                "qdisc",
                "add",
                "dev",
                "probe0",
                "root",
                "netem",
                "delay",
                "1ms",
            ],
            check=False,
        )
        return r.returncode == 0
    finally:
        kill_and_delete(ns)


# --- servers -------------------------------------------------------------------------------------
def png(size: int, rng: random.Random) -> bytes:
    """A valid PNG of random RGB pixels, about ``size`` bytes: tshark dissects image bodies,
    and random bytes under an image type would be malformed frames."""
    width = 64
    rows = max(1, (size - 70) // (1 + 3 * width))
    raw = b"".join(b"\x00" + rng.randbytes(3 * width) for _ in range(rows))

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    ihdr = struct.pack(">IIBBBBB", width, rows, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(raw, 1))
        + chunk(b"IEND", b"")
    )


def content(name: str, size: int, rng: random.Random) -> bytes:
    if name.endswith(".png"):
        return png(size, rng)
    if name.endswith((".html", ".css", ".js", ".json", ".txt")):
        words = [
            "pcapan",
            "realcap",
            "lorem",
            "ipsum",
            "dolor",
            "sit",
            "amet",
            "web",
            "capture",
            "packet",
            "nginx",
            "curl",
            "{",
            "}",
            ";",
            "<p>",
            "</p>",
            "\n",
        ]
        out: list[str] = []
        n = 0
        while n < size:
            w = rng.choice(words) + " "
            out.append(w)
            n += len(w)
        return "".join(out).encode()[:size]
    return rng.randbytes(size)


def make_docroots(tmp: Path, seed: int) -> None:
    rng = random.Random(seed ^ 0x5EED)
    for host in HOSTS:
        root = tmp / "www" / host
        for name, size in {**FILES, **BULK_FILES}.items():
            p = root / name
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_bytes(content(name, size + HOSTS.index(host) * 17, rng))
            os.utime(p, (FIXED_MTIME, FIXED_MTIME))


def make_cert(tmp: Path) -> tuple[Path, Path]:
    return netlab.make_cert(tmp, HOSTS, log)


def nginx_conf(tmp: Path, key: Path, cert: Path) -> Path:
    servers = []
    for i, host in enumerate(HOSTS):
        dflt = " default_server" if i == 0 else ""
        servers.append(f"""
    server {{
        listen {SERVER_V4}:{HTTP_PORT}{dflt};
        listen [{SERVER_V6}]:{HTTP_PORT}{dflt};
        listen {SERVER_V4}:{HTTPS_PORT} ssl{dflt};
        listen [{SERVER_V6}]:{HTTPS_PORT} ssl{dflt};
        server_name {host};
        root {tmp / "www" / host};
    }}""")
    head = netlab.nginx_conf_head(
        tmp, error_level="warn", worker_connections=4096, access_log="off"
    )
    conf = f"""{head}    types {{ text/html html; text/css css; application/javascript js; application/json json;
            image/png png; image/x-icon ico; text/plain txt;
            application/octet-stream bin; }}
    default_type application/octet-stream;
    server_tokens off;
    keepalive_timeout 15s;
    keepalive_requests 1000;
    ssl_certificate {cert};
    ssl_certificate_key {key};
    ssl_protocols TLSv1.2 TLSv1.3;
    ssl_session_cache shared:SSL:10m;
    ssl_session_timeout 10m;
    ssl_session_tickets on;
{"".join(servers)}
}}
"""
    path = tmp / "nginx.conf"
    path.write_text(conf)
    return path


def wait_listen(lab: Lab, port: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not lab.run("server", ["ss", "-Hltn", f"sport = :{port}"]).stdout.strip():
        if time.monotonic() > deadline:
            raise RuntimeError(f"nothing listens on port {port}")
        time.sleep(0.05)


# --- capture -----------------------------------------------------------------------------------
@contextlib.contextmanager
def capture(lab: Lab, path: Path) -> Iterator[PcapCounter]:
    """tcpdump on the server's veth while the body runs: everything on the wire (ARP and NDP
    too). -U writes every packet out at once, so the counter sees the file grow."""
    if path.exists():
        path.unlink()
    p = lab.start(
        "server",
        [
            "tcpdump",
            "-i",
            CAPTURE_DEV,
            "-w",
            str(path),
            "-s",
            "0",
            "-n",
            "-U",
            "-Z",
            "root",
            "-B",
            str(TCPDUMP_BUFFER_KIB),
        ],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert p.stderr is not None
    first = p.stderr.readline()
    if "listening on" not in first:
        raise RuntimeError(f"tcpdump did not start: {first}{p.stderr.read()}")
    time.sleep(0.3)
    yield PcapCounter(path)
    # The last FIN/ACKs (and TLS close_notify answered by RSTs) reach the wire, then the ring's
    # last block is handed over before SIGINT.
    time.sleep(1.5)
    p.send_signal(signal.SIGINT)
    p.wait(timeout=30)
    text = p.stderr.read()
    lab.tcpdump_stats = " ".join(ln.strip() for ln in text.splitlines() if "packets" in ln)
    if p.returncode != 0:
        raise RuntimeError(f"tcpdump failed ({p.returncode}): {text}")
    m = re.search(r"(\d+) packets? dropped by kernel", text)
    lab.tcpdump_drops = int(m.group(1)) if m else -1
    log(f"tcpdump: {lab.tcpdump_stats}")


# --- clients -------------------------------------------------------------------------------------
class Runner:
    """Worker threads that run the plan's jobs in the client namespace until told to stop."""

    def __init__(self, lab: Lab, plan: Iterator[Job], workers: int) -> None:
        self.lab = lab
        self.plan = plan
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.done: Counter[str] = Counter()
        self.failures: list[str] = []
        self.connections = 0
        self.requests = 0
        self.threads = [
            threading.Thread(target=self._work, daemon=True, name=f"w{i}") for i in range(workers)
        ]

    def _next(self) -> Job | None:
        with self.lock:
            return None if self.stop.is_set() else next(self.plan)

    def _one(self, argv: list[str], stdin: bytes | None) -> tuple[int, str, str]:
        p = subprocess.run(
            self.lab.cmd("client", argv), input=stdin, capture_output=True, timeout=CLIENT_TIMEOUT_S
        )
        return p.returncode, p.stdout.decode(errors="replace"), p.stderr.decode(errors="replace")

    def _work(self) -> None:
        while (job := self._next()) is not None:
            try:
                err = self._run(job)
            except subprocess.TimeoutExpired:
                err = "timeout"
            with self.lock:
                self.done[job.kind] += 1
                if err:
                    self.failures.append(f"{job.kind}: {err}")
                else:
                    self.connections += job.connections
                    self.requests += job.requests

    def _run(self, job: Job) -> str:
        if job.kind == "s_client":
            for argv, stdin in [(job.argv, job.stdin or b""), *job.more]:
                rc, out, err = self._one(argv, stdin)
                if rc != 0 or not out.startswith("HTTP/1.1 "):
                    return f"rc {rc} {out[:80]!r} {err.strip()[-200:]}"
            return ""
        rc, out, err = self._one(job.argv, None)
        rows = [ln.split() for ln in out.splitlines() if ln.strip()]
        bad = [r for r in rows if r[0] == "000"]
        if rc != 0 or len(rows) != job.requests or bad:
            return f"rc {rc}, {len(rows)}/{job.requests} transfers: {err.strip()[-200:]}"
        return ""

    def start(self) -> None:
        for t in self.threads:
            t.start()

    def finish(self) -> None:
        self.stop.set()
        for t in self.threads:
            t.join(timeout=CLIENT_TIMEOUT_S * 4)


# --- statistics --------------------------------------------------------------------------------
TSHARK_FIELDS = [
    "tcp.stream",
    "frame.time_epoch",
    "ip.src",
    "ipv6.src",
    "tcp.srcport",
    "tcp.dstport",
    "tcp.flags.syn",
    "tcp.flags.ack",
    "tcp.flags.reset",
    "http.request.method",
    "tls.handshake.type",
    "tls.handshake.extensions.supported_version",
    "tls.handshake.extension.type",
]


def _flag(v: str) -> bool:
    return v in ("1", "True")


def capture_stats(path: Path) -> dict:
    """What tshark and capinfos find in the capture (independent of pcapan)."""
    cap = run(["capinfos", "-M", "-c", "-T", "-r", str(path)], timeout=600).stdout.decode()
    packets = int(cap.strip().splitlines()[-1].split("\t")[-1])
    r = run(
        [
            "tshark",
            "-r",
            str(path),
            "-n",
            "-o",
            "tcp.reassemble_out_of_order:TRUE",
            "-Y",
            "tcp",
            "-T",
            "fields",
            "-E",
            "separator=/t",
            "-E",
            "occurrence=a",
            "-E",
            "aggregator=,",
            *sum((["-e", f] for f in TSHARK_FIELDS), []),
        ],
        timeout=3600,
    )
    streams: dict[int, dict] = {}
    tcp_packets = requests = 0
    for line in r.stdout.decode().splitlines():
        (stream, t, v4, v6, sport, dport, syn, ack, rst, methods, hs_types, versions, ext_types) = (
            line.split("\t")
        )
        tcp_packets += 1
        st = streams.setdefault(
            int(stream),
            {
                "t0": float(t),
                "ipv6": bool(v6),
                "client": None,
                "server_port": None,
                "rst": False,
                "ch": 0,
                "tls13": None,
                "resumed": None,
                "cert": False,
            },
        )
        if _flag(syn) and not _flag(ack):
            st["client"] = (v4 or v6, int(sport))
            st["server_port"] = int(dport)
        st["rst"] |= _flag(rst)
        if methods:
            requests += len(methods.split(","))
        types = hs_types.split(",") if hs_types else []
        st["ch"] += types.count("1")
        st["cert"] |= "11" in types
        if "2" in types:  # the ServerHello's frame: its version and extensions
            st["tls13"] = "0x0304" in versions.split(",")
            st["resumed"] = "41" in ext_types.split(",") if st["tls13"] else None
    for st in streams.values():
        if st["tls13"] is False:  # TLS 1.2: an abbreviated handshake has no Certificate
            st["resumed"] = not st["cert"]
    conns = len(streams)
    tls = [s for s in streams.values() if s["ch"]]
    # Client port reuse: a connection whose client address and port an earlier one used.
    last: dict[tuple, dict] = {}
    reused = reused_tls = after_rst = 0
    gaps: list[float] = []
    for _, st in sorted(streams.items(), key=lambda kv: kv[1]["t0"]):
        key = st["client"]
        if key is None:
            continue
        prev = last.get(key)
        if prev is not None:
            reused += 1
            reused_tls += st["server_port"] == HTTPS_PORT
            after_rst += prev["rst"]
            gaps.append(st["t0"] - prev["t0"])
        last[key] = st
    gaps.sort()
    return {
        "packets": packets,
        "tcp_packets": tcp_packets,
        "tcp_connections": conns,
        "http_requests": requests,
        "tls_client_hellos": sum(s["ch"] for s in tls),
        "tls_connections": len(tls),
        "tls12_handshakes": sum(1 for s in tls if s["tls13"] is False),
        "tls13_handshakes": sum(1 for s in tls if s["tls13"] is True),
        "tls_resumed": sum(1 for s in tls if s["resumed"]),
        "ipv6_connections": sum(1 for s in streams.values() if s["ipv6"]),
        "mean_packets_per_connection": round(tcp_packets / conns, 2) if conns else None,
        "distinct_client_ports": len({k[1] for k in last}),
        "connections_on_reused_client_port": reused,
        "tls_connections_on_reused_client_port": reused_tls,
        "reused_after_connection_with_rst": after_rst,
        "reuse_gap_s_median": round(gaps[len(gaps) // 2], 3) if gaps else None,
        "reuse_gap_s_min": round(gaps[0], 3) if gaps else None,
    }


# --- main ----------------------------------------------------------------------------------------
def check_tools() -> None:
    if os.geteuid() != 0:
        raise SystemExit("make_real_capture: run as root (network namespaces, tcpdump)")
    need = (
        "ip",
        "tc",
        "ethtool",
        "ping",
        "ss",
        "nginx",
        "curl",
        "openssl",
        "tcpdump",
        "tshark",
        "capinfos",
    )
    missing = [t for t in need if not shutil.which(t)]
    if missing:
        raise SystemExit(
            f"make_real_capture: missing tools: {', '.join(missing)} "
            "(apt-get install -y nginx curl openssl tcpdump tshark ethtool "
            "iproute2 iputils-ping)"
        )


def record(args: argparse.Namespace) -> dict:
    out: Path = args.out.resolve()
    out.parent.mkdir(parents=True, exist_ok=True)
    part = out.with_name(out.name + ".part")
    tmp = Path(tempfile.mkdtemp(prefix=f"{PREFIX}-{os.getpid()}-"))
    t0 = time.monotonic()
    try:
        make_docroots(tmp, args.seed)
        key, cert = make_cert(tmp)
        conf = nginx_conf(tmp, key, cert)
        with Lab(tmp, args.delay, args.ports) as lab:
            lab.start(
                "server",
                ["nginx", "-p", str(tmp), "-c", str(conf), "-e", str(tmp / "error.log")],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            wait_listen(lab, HTTP_PORT)
            wait_listen(lab, HTTPS_PORT)
            plan = iter(Planner(args.seed, tmp))
            with capture(lab, part) as counter:
                runner = Runner(lab, plan, args.workers)
                runner.start()
                try:
                    last_log = 0.0
                    while counter.update() < args.packets:
                        if not any(t.is_alive() for t in runner.threads):
                            raise RuntimeError("every worker stopped")
                        if time.monotonic() - last_log > 15:
                            last_log = time.monotonic()
                            log(
                                f"{counter.count:,} packets, {sum(runner.done.values())} jobs, "
                                f"{len(runner.failures)} failed, "
                                f"{time.monotonic() - t0:.0f} s"
                            )
                        time.sleep(0.5)
                except BaseException:
                    runner.stop.set()  # no waiting for clients: the teardown kills them
                    raise
                runner.finish()  # the jobs under way complete, so no connection is cut
            fwd = lab.forwarder_report()
            if runner.failures:
                log(f"{len(runner.failures)} client jobs failed; first: {runner.failures[:5]}")
            if len(runner.failures) > 0.01 * sum(runner.done.values()):
                raise RuntimeError(f"too many client failures: {runner.failures[:10]}")
            drops = lab.tcpdump_drops
            meta = {
                "delay": lab.delay_used,
                "ping_ms": lab.ping_ms,
                "tcpdump": lab.tcpdump_stats,
                "tcpdump_kernel_drops": drops,
                "jobs": dict(runner.done),
                "failed_jobs": len(runner.failures),
                "client_connections_planned": runner.connections,
                "client_requests_made": runner.requests,
            }
            if fwd:
                meta["forwarder"] = {
                    "kernel_drops": fwd.get("kernel_drops"),
                    "stages": fwd.get("stages"),
                }
        if drops != 0:
            raise RuntimeError(f"tcpdump dropped {drops} packets: {lab.tcpdump_stats}")
        part.chmod(0o644)
        part.replace(out)
        meta["record_s"] = round(time.monotonic() - t0, 1)
        log(f"wrote {out}; reading it back with tshark")
        meta.update(capture_stats(out))
        meta.update(
            {
                "seed": args.seed,
                "packets_target": args.packets,
                "workers": args.workers,
                "client_port_range": args.ports,
            }
        )
        Path(str(out) + ".meta.json").write_text(json.dumps(meta, indent=2) + "\n")
        return meta
    finally:
        with contextlib.suppress(FileNotFoundError):
            part.unlink()
        shutil.rmtree(tmp, ignore_errors=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument(
        "--out",
        type=Path,
        default=DEFAULT_OUT,
        help=f"capture to write (default {DEFAULT_OUT.relative_to(REPO)})",
    )
    ap.add_argument(
        "--packets",
        type=int,
        default=DEFAULT_PACKETS,
        help="stop once the capture holds this many packets (default %(default)s)",
    )
    ap.add_argument("--seed", type=int, default=DEFAULT_SEED, help="plan seed")
    ap.add_argument(
        "--workers",
        type=int,
        default=DEFAULT_WORKERS,
        help="client processes running at once (default %(default)s)",
    )
    ap.add_argument(
        "--ports",
        type=int,
        default=DEFAULT_PORTS,
        help="size of the client's local port range (default %(default)s)",
    )
    ap.add_argument(
        "--delay",
        choices=("auto", "netem", "forwarder"),
        default="auto",
        help="how the 1 ms each way is made (default: netem if the kernel has it)",
    )
    args = ap.parse_args()
    check_tools()
    signal.signal(signal.SIGTERM, _raise_on_sigterm)
    signal.signal(signal.SIGHUP, _raise_on_sigterm)
    # A shell without job control starts background jobs with SIGINT ignored, which Python
    # inherits; install the KeyboardInterrupt handler anyway so Ctrl-C and kill -INT clean up.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        meta = record(args)
    except (RuntimeError, subprocess.CalledProcessError, subprocess.TimeoutExpired) as e:
        detail = (
            e.stderr.decode(errors="replace").strip()
            if isinstance(e, subprocess.CalledProcessError) and e.stderr
            else ""
        )
        raise SystemExit(f"make_real_capture: {e} {detail}".rstrip()) from None
    except KeyboardInterrupt:
        raise SystemExit(
            "make_real_capture: interrupted (everything it started is removed)"
        ) from None
    finally:
        left = [n for n in netns_list() if n.startswith(f"{PREFIX}-{os.getpid()}-")]
        if left:
            print(f"make_real_capture: namespaces left behind: {left}", file=sys.stderr)
    print(json.dumps(meta, indent=2))
    print(
        f"packets {meta['packets']:,}; TCP connections {meta['tcp_connections']:,}; "
        f"HTTP requests {meta['http_requests']:,}; TLS handshakes {meta['tls_client_hellos']:,}"
        f" ({meta['tls_resumed']:,} resumed); IPv6 connections {meta['ipv6_connections']:,}; "
        f"mean packets/connection {meta['mean_packets_per_connection']}; "
        f"connections on a reused client port {meta['connections_on_reused_client_port']:,} "
        f"(TLS {meta['tls_connections_on_reused_client_port']:,})"
    )


if __name__ == "__main__":
    main()
