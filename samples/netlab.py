"""What the capture-making scripts share: ``samples/make_samples.py``,
``samples/make_tls_keys.py`` and ``benchmarks/make_real_capture.py`` (which put ``samples/`` on
``sys.path`` to import it).

- Network namespaces: listed, the pids running in one, one removed with everything still
  running in it (killed by pid: only what runs in our own namespace), those of an earlier run
  that died removed, and a command run in a namespace made for it and removed after it.
- nginx: the head of every configuration (one worker process in the foreground, the pid file,
  error log and temporary paths in the run's directory) and the self-signed certificate.

Each function takes the calling script's ``log`` (its messages carry the script's name).
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
from collections.abc import Callable, Sequence
from pathlib import Path

Log = Callable[[str], None]
CMD_TIMEOUT_S = 60


# --- network namespaces ------------------------------------------------------------------------
def netns_list() -> list[str]:
    """The names of the network namespaces (``ip netns list`` adds ``(id: N)`` to some)."""
    r = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, timeout=10)
    return [line.split()[0] for line in r.stdout.splitlines() if line.strip()]


def netns_pids(ns: str) -> list[int]:
    r = subprocess.run(["ip", "netns", "pids", ns], capture_output=True, text=True, timeout=10)
    return [int(x) for x in r.stdout.split()]


def kill_and_delete(ns: str, log: Log) -> None:
    """Kill what still runs in ``ns`` (by pid; everything there was started by the run that made
    it) and delete the namespace (its veths go with it)."""
    for pid in netns_pids(ns):
        log(f"killing leftover pid {pid} in {ns}")
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    subprocess.run(["ip", "netns", "del", ns], timeout=10, check=False)


def remove_stale(pattern: str, log: Log) -> None:
    """Namespaces of an earlier run that died: those whose name matches ``pattern`` (a regular
    expression whose group 1 is the pid of the run that made it) when that pid is gone. A run
    still alive, or this one, is left alone."""
    for ns in netns_list():
        m = re.fullmatch(pattern, ns)
        if not m or int(m.group(1)) == os.getpid():
            continue
        try:
            os.kill(int(m.group(1)), 0)
            continue  # that run is still alive: not ours to touch
        except ProcessLookupError:
            pass
        except PermissionError:
            continue
        log(f"removing stale namespace {ns}")
        kill_and_delete(ns, log)


def run_in_new_netns(ns: str, cmd: Sequence[str], log: Log, timeout: float) -> int:
    """Make the namespace ``ns``, run ``cmd`` in it (``ip netns exec``), then remove it with
    whatever still runs there; returns the command's exit status. Interrupted (a signal, the
    timeout), the command is asked to stop first so that it can stop what it started."""
    log(f"run: ip netns add {ns}")
    subprocess.run(
        ["ip", "netns", "add", ns], capture_output=True, timeout=CMD_TIMEOUT_S, check=True
    )
    try:
        full = ["ip", "netns", "exec", ns, *cmd]
        log("run: " + " ".join(full))
        child = subprocess.Popen(full)
        try:
            return child.wait(timeout=timeout)
        finally:
            if child.poll() is None:
                child.terminate()
                try:
                    child.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    child.kill()
    finally:
        kill_and_delete(ns, log)


# --- nginx -------------------------------------------------------------------------------------
def nginx_conf_head(
    tmp: Path, *, error_level: str, worker_connections: int, access_log: str
) -> str:
    """The start of an nginx configuration up to the inside of its ``http`` block: no daemon,
    no master process, one worker, the pid file, error log and temporary paths in ``tmp`` (a run
    never touches the system's nginx). The caller adds the rest of ``http`` and closes it."""
    return f"""
daemon off;
master_process off;
worker_processes 1;
pid {tmp}/nginx.pid;
error_log {tmp}/error.log {error_level};
events {{ worker_connections {worker_connections}; }}
http {{
    access_log {access_log};
    client_body_temp_path {tmp}/client_body;
    proxy_temp_path {tmp}/proxy;
    fastcgi_temp_path {tmp}/fastcgi;
    uwsgi_temp_path {tmp}/uwsgi;
    scgi_temp_path {tmp}/scgi;
"""


def make_cert(tmp: Path, names: Sequence[str], log: Log) -> tuple[Path, Path]:
    """A self-signed RSA 2048 certificate (2 days) for ``names`` (the first one is the CN, all
    are subjectAltNames) and its key: ``tmp/key.pem``, ``tmp/cert.pem``."""
    key, cert = tmp / "key.pem", tmp / "cert.pem"
    cmd = ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-sha256", "-days", "2",
           "-keyout", str(key), "-out", str(cert), "-subj", f"/CN={names[0]}",
           "-addext", "subjectAltName=" + ",".join(f"DNS:{n}" for n in names)]  # fmt: skip
    log("run: " + " ".join(cmd))
    subprocess.run(cmd, capture_output=True, timeout=CMD_TIMEOUT_S, check=True)
    return key, cert
