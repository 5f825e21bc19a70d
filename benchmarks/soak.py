"""Soak check of ``pcapan live``: sustained loopback HTTP traffic for a minute, packets captured
vs packets sent, kernel drops, CPU and memory.

nginx (temporary config, keep-alive) serves two files on 127.0.0.1; a client process opens
connections at a steady request rate, 1 to 10 keep-alive requests each (seeded), and counts the
responses it read. tcpdump and ``pcapan live`` capture the same filter on ``lo`` at the same
time: tcpdump's count is the reference for the packets sent (it reports its own kernel drops),
and pcapan's tables must hold every request the client made. Needs root, nginx and tcpdump.

    python benchmarks/soak.py                  # 60 s at 2,000 requests/s
    python benchmarks/soak.py --seconds 10 --rate 500
    python benchmarks/soak.py --rotate 5s      # tables written in parts: memory stays flat
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
FILES = {"small.txt": 2_000, "large.txt": 20_000}
CLK_TCK = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_port(port: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        if time.monotonic() > deadline:
            raise RuntimeError(f"nothing listening on 127.0.0.1:{port}")
        time.sleep(0.05)


def start_nginx(tmp: Path, port: int) -> subprocess.Popen[bytes]:
    www = tmp / "www"
    www.mkdir()
    for name, size in FILES.items():
        (www / name).write_bytes(b"x" * size)
    conf = tmp / "nginx.conf"
    conf.write_text(f"""
daemon off;
master_process off;
worker_processes 1;
pid {tmp}/nginx.pid;
error_log {tmp}/error.log;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    client_body_temp_path {tmp}/body; proxy_temp_path {tmp}/proxy; fastcgi_temp_path {tmp}/fcgi;
    uwsgi_temp_path {tmp}/uwsgi; scgi_temp_path {tmp}/scgi;
    keepalive_timeout 30s;
    keepalive_requests 1000;
    server {{ listen 127.0.0.1:{port} backlog=1024; root {www}; }}
}}
""")
    proc = subprocess.Popen(["nginx", "-c", str(conf), "-p", str(tmp)], stderr=subprocess.DEVNULL)
    wait_port(port)
    return proc


def client(port: int, seconds: float, rate: float, seed: int) -> dict[str, int]:
    """Requests at ``rate`` per second for ``seconds``: connections of 1-10 keep-alive requests."""
    rng = random.Random(seed)
    names = list(FILES)
    start = time.monotonic()
    sent = conns = ok = 0
    while (now := time.monotonic()) - start < seconds:
        k = rng.randint(1, 10)
        with socket.create_connection(("127.0.0.1", port)) as s:
            conns += 1
            buf = b""
            for i in range(k):
                # Pace the requests: request number `sent` is due at start + sent / rate.
                due = start + sent / rate
                if due > now:
                    time.sleep(due - now)
                last = i == k - 1
                s.sendall(
                    f"GET /{rng.choice(names)} HTTP/1.1\r\nHost: soak\r\n"
                    f"{'Connection: close' if last else 'Connection: keep-alive'}\r\n\r\n".encode()
                )
                sent += 1
                while b"\r\n\r\n" not in buf:
                    buf += s.recv(65536)
                head, buf = buf.split(b"\r\n\r\n", 1)
                m = re.search(rb"(?i)content-length: *(\d+)", head)
                size = int(m.group(1)) if m else 0
                while len(buf) < size:
                    buf += s.recv(65536)
                buf = buf[size:]
                ok += head.startswith(b"HTTP/1.1 200")
                now = time.monotonic()
    return {"requests": sent, "responses_200": ok, "connections": conns}


def cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime, stime


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=float, default=60.0, help="seconds of traffic (default 60)")
    ap.add_argument(
        "--rate", type=float, default=2000.0, help="HTTP requests per second (default 2000)"
    )
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument(
        "--rotate",
        metavar="SPEC",
        help="pass --rotate SPEC to pcapan live (tables written in parts)",
    )
    ap.add_argument(
        "--out", type=Path, default=HERE / "out" / "soak.json", help="where to save the figures"
    )
    args = ap.parse_args(argv)
    if os.geteuid() != 0:
        print("soak: needs root (packet sockets)", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="pcapan-soak-") as t:
        tmp = Path(t)
        port = free_port()
        nginx = start_nginx(tmp, port)
        bpf = f"tcp port {port}"
        try:
            tcpdump = subprocess.Popen(
                ["tcpdump", "-i", "lo", "-n", "-B", "65536", "-w", os.devnull, bpf],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                text=True,
            )
            pcapan = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "pcapan.cli",
                    "live",
                    "-i",
                    "lo",
                    "--filter",
                    bpf,
                    "--no-dashboard",
                    "-o",
                    str(tmp / "tables"),
                    *(["--rotate", args.rotate] if args.rotate else []),
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                text=True,
            )
            assert pcapan.stderr is not None and tcpdump.stderr is not None
            pcapan.stderr.readline()  # "capturing on ...": the socket is open
            time.sleep(1.0)  # tcpdump's too
            rss: list[float] = []
            stop = threading.Event()

            def sample() -> None:
                while not stop.wait(1.0):
                    rss.append(rss_mb(pcapan.pid))

            sampler = threading.Thread(target=sample)
            sampler.start()
            t0 = time.monotonic()
            cpu0 = cpu_s(pcapan.pid)
            made = client(port, args.seconds, args.rate, args.seed)
            traffic_s = time.monotonic() - t0
            time.sleep(1.0)  # the last packets reach both sockets
            cpu_capture = cpu_s(pcapan.pid) - cpu0
            stop.set()
            sampler.join()
            tcpdump.send_signal(signal.SIGINT)
            pcapan.send_signal(signal.SIGTERM)
            t_stop = time.monotonic()
            _, status, usage = os.wait4(pcapan.pid, 0)
            finish_s = time.monotonic() - t_stop
            pcapan.returncode = os.waitstatus_to_exitcode(status)
            p_err = pcapan.stderr.read()
            d_err = tcpdump.communicate(timeout=30)[1]
        finally:
            nginx.terminate()
            nginx.wait(10)
        m = re.search(r"live: ([\d,]+) packets.*kernel: ([\d,]+) received, ([\d,]+) dropped", p_err)
        if pcapan.returncode != 0 or not m:
            print(p_err, file=sys.stderr)
            return 1
        p_pkts, p_kernel, p_drops = (int(g.replace(",", "")) for g in m.groups())
        d_pkts = int(re.search(r"(\d+) packets? captured", d_err).group(1))  # type: ignore[union-attr]
        d_drops = int(re.search(r"(\d+) packets? dropped by kernel", d_err).group(1))  # type: ignore[union-attr]
        manifests = sorted((tmp / "tables").glob("**/manifest.json"))
        rows: dict[str, int] = {}
        for path in manifests:
            for k, v in json.loads(path.read_text())["tables"].items():
                rows[k] = rows.get(k, 0) + v["rows"]
    out: dict[str, Any] = {
        "seconds": round(traffic_s, 1),
        "rotate": args.rotate,
        "parts": len(manifests) if args.rotate else None,
        "client": made,
        "tcpdump_packets": d_pkts,
        "tcpdump_kernel_drops": d_drops,
        "pcapan_packets": p_pkts,
        "pcapan_kernel_received": p_kernel,
        "pcapan_kernel_drops": p_drops,
        "packets_per_s": round(p_pkts / traffic_s),
        "pcapan_vs_tcpdump": round(p_pkts / d_pkts, 6) if d_pkts else None,
        "http_rows": rows.get("http"),
        "connection_rows": rows.get("connections"),
        "cpu_capture_s": round(cpu_capture, 2),
        "cpu_capture_share": round(cpu_capture / traffic_s, 3),
        "cpu_total_s": round(usage.ru_utime + usage.ru_stime, 2),
        "finish_s": round(finish_s, 2),
        "rss_mb_first_10s": round(max(rss[:10]), 1) if rss else None,
        "rss_mb_end_of_traffic": round(rss[-1], 1) if rss else None,
        "peak_rss_mb": round(usage.ru_maxrss / 1024, 1),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=2) + "\n")
    print(json.dumps(out, indent=2))
    good = p_drops == 0 and p_pkts == d_pkts and rows.get("http") == made["requests"]
    print(
        "soak: "
        + (
            "OK: every packet tcpdump saw was captured and every request is a row"
            if good
            else "MISMATCH: see the figures above"
        )
    )
    return 0 if good else 1


if __name__ == "__main__":
    sys.exit(main())
