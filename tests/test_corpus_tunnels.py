"""Conformance: tunnel_parents against Zeek on the corpus's tunnelled capture.

``zeek/testing/btest/Traces/tunnels/vxlan-encapsulated-http.pcap`` (see the corpus MANIFEST.md)
comes with Zeek's conn.log (``zeek -b -r ... (tunnels, conn, http)``): a UDP row for the VXLAN
tunnel (service ``vxlan``) and the inner HTTP connection, whose ``tunnel_parents`` holds the
tunnel row's uid. pcapan has no rows for tunnels, so its ``tunnel_parents`` describes the tunnel
instead (kind, outer addresses as the packets went, VNI); the test follows Zeek's uid to its
tunnel row and checks that pcapan's description names the same kind and the same outer
endpoints, and the VNI that tshark reads (``vxlan.vni``). The other conn fields of the inner
connection are compared with Zeek in ``test_corpus_conn.py``.

The corpus has no 802.11, Cisco HDLC, PPP or other-tunnel captures (MANIFEST.md counts them in
the larger set it was taken from): those are covered by ``test_encap.py`` against tshark.
Skips when the corpus is absent.
"""

from __future__ import annotations

import shutil
import subprocess

import pcapan
from tests.test_corpus_conn import CORPUS, B, T, read_zeek_log
from tests.test_corpus_conn import pytestmark as _corpus_marks

pytestmark = _corpus_marks

CAPTURE = f"{T}/tunnels/vxlan-encapsulated-http.pcap"
BASELINE = f"{CAPTURE}.gt/{B}/core.tunnels.analyzer-confirmation/conn.log"


def test_vxlan_tunnel_parents_match_zeek() -> None:
    zeek = read_zeek_log(CORPUS / BASELINE)
    by_uid = {r["uid"]: r for r in zeek}
    inner = [r for r in zeek if r["proto"] == "tcp"]
    assert len(inner) == 1
    parents = [by_uid[u] for u in (inner[0]["tunnel_parents"] or "").split(",")]
    assert [(p["proto"], p["service"]) for p in parents] == [("udp", "vxlan")]
    tunnel = parents[0]

    res = pcapan.analyze(CORPUS / CAPTURE)
    conns = res.connections
    row = conns[
        (conns.orig_h == inner[0]["id.orig_h"]) & (conns.orig_p == int(inner[0]["id.orig_p"]))
    ]
    assert len(row) == 1
    entries = row.tunnel_parents.iloc[0].split(",")
    # One tunnel (as in Zeek): the mirror carried both directions from the same outer source.
    assert len(entries) == len(parents) == 1
    kind, endpoints, vni = entries[0].split(" ")
    assert kind == tunnel["service"]
    assert endpoints == f"{tunnel['id.orig_h']}>{tunnel['id.resp_h']}"
    if shutil.which("tshark"):
        out = subprocess.run(
            ["tshark", "-r", str(CORPUS / CAPTURE), "-T", "fields", "-e", "vxlan.vni"],
            capture_output=True,
            text=True,
            check=True,
            timeout=60,
        ).stdout
        assert vni == f"vni={int(set(out.split()).pop())}"
    # Zeek counts the tunnel's packets on its own row (12): every frame carried the inner flow.
    assert res.summary()["tunnelled_packets"] == int(tunnel["orig_pkts"]) + int(tunnel["resp_pkts"])
