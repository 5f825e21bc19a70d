#!/usr/bin/env python3
"""Record the keyed HTTPS benchmark capture (issue 17's speed comparison): real nginx + curl
traffic with the NSS key log curl wrote (``SSLKEYLOGFILE``), written as ``FILE`` and
``FILE`` with the suffix ``.keys``.

Run as root:  ``python benchmarks/make_tls_capture.py FILE [N]``

``N`` connections (default 300), alternating TLS 1.3 and TLS 1.2 (AES-GCM), each with five
HTTP/1.1 requests (index.html, small.txt three times, medium.bin: 178 B to 20 KB): many small
HTTPS transactions, where decryption's cost is per record and per connection rather than per
byte. A negative ``N`` records -N bulk connections instead (four 128 KiB downloads each).

The recording is ``samples/make_tls_keys.py --bench`` (its nginx configuration, docroot,
certificate, tcpdump and curl helpers, in a private network namespace it creates and removes);
this script only names the namespace (``--ns-prefix``, so that parallel runs do not clash) and
is what ``benchmarks/run.py --tls-capture FILE`` expects.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "samples" / "make_tls_keys.py"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("out", type=Path, help="the capture to write (its key log beside it: .keys)")
    ap.add_argument("n", type=int, nargs="?", default=300, help="connections (negative: bulk)")
    ap.add_argument("--ns-prefix", default="pcapan-tlsbench-", help="network namespace prefix")
    args = ap.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("run as root (tcpdump, network namespace)")
    spec = importlib.util.spec_from_file_location("make_tls_keys", SCRIPT)
    assert spec is not None and spec.loader is not None
    mk = importlib.util.module_from_spec(spec)
    sys.modules["make_tls_keys"] = mk
    spec.loader.exec_module(mk)
    mk.NS_PREFIX = args.ns_prefix
    out = args.out.resolve()
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="pcapan-tlsbench-") as tmp:
        mk.outside(["--outdir", tmp, "--only", "", "--bench", str(out), str(args.n)])
    print(f"wrote {out} and {out.with_suffix('.keys')}")


if __name__ == "__main__":
    main()
