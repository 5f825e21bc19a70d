"""Make the small real captures of tests/data used by tests/test_engine_reuse.py.

Run as root: ``python tests/data/make_engine_captures.py`` (needs tcpdump). Traffic is real and
stays on 127.0.0.1: a Python ``http.server`` (HTTP/1.0, so the server closes each connection
first) and a small socket client bound to a chosen port, which reads until the server's FIN
before closing (so its port is free again at once, as curl's is when the server closes first).

* ``port-reuse.pcap``: two requests from the same client port in a row,
  so the second connection reopens the first one's 5-tuple a few ms after its last ACK, with a
  new ISN (the server's socket is in TIME_WAIT and accepts the higher ISN).
* ``spaced.pcap``: two requests from two client ports 12 s apart, more than the engine's close
  linger plus its sweep interval (TCP_CLOSE_LINGER_S 5 s, SWEEP_INTERVAL_S 10 s): when the
  capture is read twice in a row, the first connection has been finalised by the time its copy
  comes back with the same 5-tuple and start time.

Every process started is stopped again, also on error.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
PORT = 18531  # the server (nothing else of the project listens there)
CLIENT_PORT_REUSE = 40121
CLIENT_PORTS_SPACED = (40131, 40132)
SPACED_GAP_S = 12.0


def fetch(cport: int) -> None:
    """GET /a.txt from client port ``cport``; close only after the server has closed."""
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.settimeout(10)
        s.bind(("127.0.0.1", cport))
        s.connect(("127.0.0.1", PORT))
        s.sendall(b"GET /a.txt HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: pcapan-test\r\n\r\n")
        while s.recv(65536):
            pass


def capture(out: Path, clients: list[tuple[int, float]]) -> None:
    """Capture the server port on lo while curl fetches once per (client port, delay before)."""
    with tempfile.TemporaryDirectory() as tmp:
        Path(tmp, "a.txt").write_bytes(b"pcapan engine test file\n" * 8)
        procs: list[subprocess.Popen[bytes]] = []
        try:
            srv = subprocess.Popen(
                [sys.executable, "-m", "http.server", str(PORT), "--bind", "127.0.0.1"],
                cwd=tmp,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            procs.append(srv)
            time.sleep(1.0)
            dump = subprocess.Popen(
                ["tcpdump", "-i", "lo", "-U", "-s", "0", "-w", str(out), f"tcp port {PORT}"],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            procs.append(dump)
            time.sleep(1.0)
            for cport, delay in clients:
                time.sleep(delay)
                fetch(cport)
            time.sleep(1.0)
        finally:
            for p in reversed(procs):
                p.terminate()
                p.wait(timeout=10)


def main() -> None:
    capture(HERE / "port-reuse.pcap", [(CLIENT_PORT_REUSE, 0.0), (CLIENT_PORT_REUSE, 0.0)])
    capture(
        HERE / "spaced.pcap",
        [(CLIENT_PORTS_SPACED[0], 0.0), (CLIENT_PORTS_SPACED[1], SPACED_GAP_S)],
    )


if __name__ == "__main__":
    main()
