"""Link layers and tunnels: pcapan against tshark on samples/encap/ (made by
samples/make_tunnels.py: a real kernel VXLAN capture and its packets re-encapsulated).

For every capture, tshark (which decodes all of these by default; VXLAN and GENEVE on their IANA
ports) and pcapan must agree on

* the TCP connections (inner addresses and ports, originator = sender of the bare SYN), their
  packets per direction and payload bytes per direction (summed from ``tcp.len``; the captures
  have no retransmission, which the test checks first with ``tcp.analysis.retransmission``);
* the HTTP requests (method, URI) and responses (status) per connection;
* ``tunnel_parents``: built here from tshark's outermost IP addresses per packet and its
  ``vxlan.vni`` / ``geneve.vni`` / ``gre.key`` / ``erspan.spanid`` fields, in the documented form
  "<kind> <outer src>><outer dst>[ vni=|key=|session=N]";
* for the 802.11 captures, the frames counted and not decoded (management, control, null
  data; protected), from ``wlan.fc.type_subtype`` and ``wlan.fc.protected``.

Malformed headers (one frame of a sample corrupted here) must become one anomaly row of the
right kind while the rest of the capture is still analysed.
"""

from __future__ import annotations

import functools
import shutil
import struct
import subprocess
from collections import Counter, defaultdict
from pathlib import Path

import pytest

import pcapan

ENCAP = Path(__file__).resolve().parent.parent / "samples" / "encap"
TSHARK = shutil.which("tshark")
needs_tshark = pytest.mark.skipif(TSHARK is None, reason="tshark is not installed (CI installs it)")

# capture -> (tunnel kind as pcapan names it, outer IP version, tshark field of the tunnel id,
# label); None for link-layer captures.
TUNNELS: dict[str, tuple[str, int, str | None, str] | None] = {
    "tunnel-vxlan.pcap": ("vxlan", 0, "vxlan.vni", "vni"),  # 0: IPv4 and IPv6 underlays
    "tunnel-geneve.pcap": ("geneve", 4, "geneve.vni", "vni"),
    "tunnel-gre.pcap": ("gre", 4, "gre.key", "key"),
    "tunnel-gretap.pcap": ("gre", 4, None, ""),
    "tunnel-ip6gre.pcap": ("gre", 6, None, ""),
    "tunnel-erspan2.pcap": ("erspan2", 4, "erspan.spanid", "session"),
    "tunnel-erspan3.pcap": ("erspan3", 4, "erspan.spanid", "session"),
    "tunnel-ipip.pcap": ("ipip", 4, None, ""),
    "tunnel-6in4.pcap": ("6in4", 4, None, ""),
    "tunnel-ip6ip6.pcap": ("ip6ip6", 6, None, ""),
    "tunnel-4in6.pcap": ("4in6", 6, None, ""),
    "link-80211.pcap": None,
    "link-radiotap.pcap": None,
    "link-ppi.pcap": None,
    "link-prism.pcap": None,
    "link-avs.pcap": None,
    "link-ppp.pcap": None,
    "link-ppp-hdlc.pcap": None,
    "link-pppoe.pcap": None,
    "link-ppp-ether.pcap": None,
    "link-chdlc.pcap": None,
    "link-ipoib.pcap": None,
}
WLAN = [
    "link-80211.pcap",
    "link-radiotap.pcap",
    "link-ppi.pcap",
    "link-prism.pcap",
    "link-avs.pcap",
]


def test_every_capture_is_listed() -> None:
    assert {p.name for p in ENCAP.glob("*.pcap")} == set(TUNNELS)


@functools.cache
def analyze(name: str) -> pcapan.Result:
    return pcapan.analyze(ENCAP / name)


def tshark(
    path: Path, fields: list[str], display: str = "tcp", occurrence: str = "a"
) -> list[list[str]]:
    r = subprocess.run(
        [
            TSHARK,
            "-r",
            str(path),
            "-Y",
            display,
            "-T",
            "fields",
            "-E",
            "separator=\t",
            "-E",
            f"occurrence={occurrence}",
            "-E",
            "aggregator=|",
            *[a for f in fields for a in ("-e", f)],
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    return [line.split("\t") for line in r.stdout.splitlines()]


Key = tuple[str, int, str, int]


def tshark_view(name: str) -> dict[Key, dict]:
    """Per TCP connection (orig_h, orig_p, resp_h, resp_p): packets, payload bytes, HTTP and
    the tunnel descriptions, all from tshark's fields."""
    return _tshark_pass(name)[0]


def tshark_retransmissions(name: str) -> list[list[str]]:
    """The TCP frames tshark marks tcp.analysis.retransmission."""
    return _tshark_pass(name)[1]


@functools.cache
def _tshark_pass(name: str) -> tuple[dict[Key, dict], list[list[str]]]:
    path = ENCAP / name
    spec = TUNNELS[name]
    fields = [
        "tcp.stream",
        "_ws.col.Source",
        "_ws.col.Destination",
        "tcp.srcport",
        "tcp.dstport",
        "tcp.flags.syn",
        "tcp.flags.ack",
        "tcp.len",
        "ip.src",
        "ip.dst",
        "ipv6.src",
        "ipv6.dst",
        "frame.protocols",
    ]
    if spec and spec[2]:
        fields.append(spec[2])
    # Retransmissions and HTTP from the same pass (one tshark run per capture instead of four):
    # their columns after the ones above.
    n = len(fields)
    fields += ["tcp.analysis.retransmission", "http.request.method", "http.request.uri"]
    fields += ["http.response.code"]
    streams: dict[str, list[list[str]]] = defaultdict(list)
    retransmissions: list[list[str]] = []
    requests: list[tuple[str, str, str]] = []
    responses: list[tuple[str, str]] = []
    for row in tshark(path, fields):
        streams[row[0]].append(row[1:n])
        retx, method, uri, code = row[n:]
        if retx:
            retransmissions.append(row)
        if method:  # (the frames of display filter http.request)
            requests.append((row[3], method, uri))
        if code:  # (http.response)
            responses.append((row[4], code))
    out: dict[Key, dict] = {}
    for rows in streams.values():
        syn = next(r for r in rows if r[4] == "1" and r[5] == "0")
        key = (syn[0], int(syn[2]), syn[1], int(syn[3]))
        v = {"orig_pkts": 0, "resp_pkts": 0, "orig_bytes": 0, "resp_bytes": 0, "tunnels": set()}
        for r in rows:
            side = "orig" if (r[0], int(r[2])) == (key[0], key[1]) else "resp"
            v[f"{side}_pkts"] += 1
            v[f"{side}_bytes"] += int(r[6])
            if spec:
                kind, outer, _, label = spec
                protos = r[11].split(":")
                # outermost IP layer: the first of ip/ipv6 in frame.protocols
                first = next(p for p in protos if p in ("ip", "ipv6"))
                if outer:
                    assert first == ("ip" if outer == 4 else "ipv6"), (name, protos)
                src, dst = (r[7], r[8]) if first == "ip" else (r[9], r[10])
                src, dst = src.split("|")[0], dst.split("|")[0]
                extra = f" {label}={int(r[12].split('|')[0], 0)}" if len(r) > 12 and r[12] else ""
                v["tunnels"].add(f"{kind} {src}>{dst}{extra}")
        out[key] = v
    for method_uri_port in requests:
        for key in out:
            if key[1] == int(method_uri_port[0]):
                out[key].setdefault("requests", []).append(tuple(method_uri_port[1:]))
    for port_code in responses:
        for key in out:
            if key[1] == int(port_code[0]):
                out[key].setdefault("responses", []).append(int(port_code[1]))
    return out, retransmissions


@needs_tshark
@pytest.mark.parametrize("name", sorted(TUNNELS))
def test_connections_and_http_match_tshark(name: str) -> None:
    assert tshark_retransmissions(name) == []
    want = tshark_view(name)
    res = analyze(name)
    conns = res.connections
    got = {(r.orig_h, int(r.orig_p), r.resp_h, int(r.resp_p)): r for r in conns.itertuples()}
    assert set(got) == set(want), name
    assert want, f"{name}: tshark found no TCP connection"
    for key, w in want.items():
        r = got[key]
        assert (r.orig_pkts, r.resp_pkts) == (w["orig_pkts"], w["resp_pkts"]), (name, key)
        assert (r.orig_bytes, r.resp_bytes) == (w["orig_bytes"], w["resp_bytes"]), (name, key)
        assert r.conn_state == "SF"
        http = res.http[res.http.uid == r.uid]
        assert list(zip(http.method, http.uri, strict=True)) == w["requests"], (name, key)
        assert [int(s) for s in http.status_code] == w["responses"], (name, key)
        if TUNNELS[name]:
            assert r.tunnel_parents == ",".join(sorted(w["tunnels"])), (name, key)
        else:
            assert r.tunnel_parents is None or r.tunnel_parents is pd_na(), (name, key)
    assert res.summary()["malformed_packets"] == 0
    assert not any(res.anomalies.name.str.startswith("bad_")), res.anomalies


def pd_na() -> object:
    import pandas as pd

    return pd.NA


@needs_tshark
@pytest.mark.parametrize("name", WLAN)
def test_wlan_frames_counted_not_decoded(name: str) -> None:
    # type_subtype: 0x0020 data, 0x0028 QoS data carry payload; every other type/subtype
    # (beacon 0x0008, ACK 0x001d, null function 0x0024 ...) does not.
    rows = tshark(ENCAP / name, ["wlan.fc.type_subtype", "wlan.fc.protected"], "wlan")
    no_payload = sum(1 for t, _ in rows if int(t, 0) not in (0x20, 0x28))
    protected = sum(1 for t, p in rows if int(t, 0) in (0x20, 0x28) and p in ("1", "True"))
    assert no_payload == 3 and protected == 1  # what make_tunnels.py puts in: the check has teeth
    s = analyze(name).summary()
    assert s["wlan_non_data_frames"] == no_payload
    assert s["wlan_protected_frames"] == protected
    assert s["unsupported_linktype_frames"] == {}


def test_tunnel_summary_counts() -> None:
    # tunnel-vxlan.pcap: every one of its 39 frames is VXLAN (the capture filter was "udp port
    # 4789"); tshark -r ... -Y vxlan | wc -l says 39.
    s = analyze("tunnel-vxlan.pcap").summary()
    assert s["tunnelled_packets"] == s["frames"] == 39


# --- malformed headers ---------------------------------------------------------------------
def records(path: Path) -> tuple[bytes, list[tuple[int, int]]]:
    """The file's bytes and (data offset, caplen) of each record (microsecond pcap, LE)."""
    data = path.read_bytes()
    pos, out = 24, []
    while pos < len(data):
        caplen = struct.unpack_from("<I", data, pos + 8)[0]
        out.append((pos + 16, caplen))
        pos += 16 + caplen
    return data, out


def find_frame(path: Path, display: str) -> int:
    """1-based number of the first frame tshark matches with ``display``."""
    return int(tshark(path, ["frame.number"], display)[0][0])


def mutate(path: Path, frame: int, edit, tmp: Path) -> Path:  # noqa: ANN001
    data, recs = records(path)
    buf = bytearray(data)
    off, caplen = recs[frame - 1]
    frame_bytes = bytearray(buf[off : off + caplen])
    new = edit(frame_bytes)
    if len(new) != caplen:  # truncation: rewrite caplen and origlen
        struct.pack_into("<II", buf, off - 8, len(new), len(new))
    buf[off : off + caplen] = new
    out = tmp / path.name
    out.write_bytes(bytes(buf))
    return out


def _set(at: int, value: int, fmt: str = ">H"):  # noqa: ANN202
    def edit(b: bytearray) -> bytearray:
        struct.pack_into(fmt, b, at, value)
        return b

    return edit


def _cut(n: int):  # noqa: ANN202
    return lambda b: b[:n]


# (capture, tshark display filter for the frame to damage, edit, anomaly kind). Offsets are
# those of the layouts make_tunnels.py writes (Ethernet 14 + IPv4 20 for the tunnels).
MALFORMED = [
    ("link-radiotap.pcap", "http.request", _set(2, 0xFFF0, "<H"), "bad_radiotap_header"),
    ("link-ppi.pcap", "http.request", _set(2, 0xFFF0, "<H"), "bad_ppi_header"),
    ("link-avs.pcap", "http.request", _set(4, 0xFFFF, ">I"), "bad_avs_header"),
    ("link-prism.pcap", "http.request", _set(4, 0xFFFF, "<I"), "bad_prism_header"),
    ("link-80211.pcap", "http.request", _cut(30), "bad_80211_header"),
    ("link-ppp.pcap", "http.request", _cut(3), "bad_ppp_header"),
    ("link-ppp-ether.pcap", "http.request", _set(0, 0x21, ">B"), "bad_pppoe_header"),
    ("link-pppoe.pcap", "http.request", _set(14, 0x21, ">B"), "bad_pppoe_header"),
    ("link-chdlc.pcap", "http.request", _cut(3), "bad_chdlc_header"),
    ("link-ipoib.pcap", "http.request", _cut(40), "bad_ipoib_header"),
    ("tunnel-gre.pcap", "http.request", _set(34, 0xB000 | 0x4000), "bad_gre_header"),  # routing bit
    (
        "tunnel-geneve.pcap",
        "http.request",
        _set(42, 0x3F, ">B"),
        "bad_geneve_header",
    ),  # 252 option bytes
    (
        "tunnel-erspan2.pcap",
        "http.request",
        _set(42, 0x20, ">B"),
        "bad_erspan_header",
    ),  # version 2 in type II
    (
        "tunnel-erspan3.pcap",
        "http.request",
        _set(42, 0x10, ">B"),
        "bad_erspan_header",
    ),  # version 1 in type III
]


@needs_tshark
@pytest.mark.parametrize(
    ("name", "display", "edit", "kind"), MALFORMED, ids=[m[0] + ":" + m[3] for m in MALFORMED]
)
def test_malformed_header_is_an_anomaly(
    name: str, display: str, edit, kind: str, tmp_path: Path
) -> None:  # noqa: ANN001
    src = ENCAP / name
    frame = find_frame(src, display)
    bad = mutate(src, frame, edit, tmp_path)
    res = pcapan.analyze(bad)
    rows = res.anomalies[res.anomalies.name == kind]
    assert list(rows.frame) == [frame], res.anomalies
    assert res.summary()["malformed_packets"] == 1
    # The rest is analysed: the other connection is intact, the damaged one lost one request
    # segment (its GET is missing, the response stays an orphan or is kept).
    good = analyze(name)
    assert len(res.connections) == len(good.connections)
    assert Counter(res.connections.orig_pkts) + Counter(res.connections.resp_pkts) != Counter()
    assert int(res.connections.orig_pkts.sum()) == int(good.connections.orig_pkts.sum()) - 1


# --- tunnels in reassembled outer datagrams --------------------------------------------------
def test_tunnel_in_fragmented_outer_datagram(tmp_path: Path) -> None:
    """Outer IPv4 fragments of VXLAN packets (a tunnel whose MTU was not lowered): the datagram
    is reassembled, then its inner frame decoded. Before, a tunnel found in a reassembled
    datagram was left for the next batch and decoded against the wrong buffer (or never)."""
    from scapy.layers.inet import IP, fragment
    from scapy.layers.l2 import Ether
    from scapy.utils import RawPcapReader, wrpcap

    src = ENCAP / "tunnel-vxlan.pcap"
    pkts = []
    for data, meta in RawPcapReader(str(src)):
        p = Ether(data)
        ts = meta.sec + meta.usec / 1e6
        if IP in p and len(p[IP]) > 600:
            for f in fragment(p[IP], fragsize=512):
                q = Ether(src=p.src, dst=p.dst) / f
                q.time = ts
                pkts.append(q)
        else:
            p.time = ts
            pkts.append(p)
    out = tmp_path / "vxlan-frag.pcap"
    wrpcap(str(out), pkts)
    got, want = pcapan.analyze(out), analyze("tunnel-vxlan.pcap")
    assert got.summary()["ip_reassembled"] > 0
    cols = [
        "orig_h",
        "orig_p",
        "resp_h",
        "resp_p",
        "orig_pkts",
        "resp_pkts",
        "orig_bytes",
        "resp_bytes",
        "missed_bytes",
        "history",
        "tunnel_parents",
    ]
    assert got.connections[cols].equals(want.connections[cols])
    assert list(got.http.status_code) == list(want.http.status_code) == [200, 200]


# --- the Zeek export ---------------------------------------------------------------------------
def test_zeek_conn_log_tunnel_parents(tmp_path: Path) -> None:
    res = analyze("tunnel-gre.pcap")
    res.to_zeek(tmp_path)
    lines = (tmp_path / "conn.log").read_text().splitlines()
    names = next(ln for ln in lines if ln.startswith("#fields")).split("\t")[1:]
    rows = [dict(zip(names, ln.split("\t"), strict=True)) for ln in lines if not ln.startswith("#")]
    assert len(rows) == 2
    for row in rows:
        # set[string] with Zeek's "," set separator; the strings are the column's entries
        assert sorted(row["tunnel_parents"].split(",")) == [
            "gre 192.0.2.1>192.0.2.2 key=5",
            "gre 192.0.2.2>192.0.2.1 key=5",
        ]


def test_plain_captures_have_no_tunnel_parents() -> None:
    res = pcapan.analyze(ENCAP.parent / "http-keepalive.pcap")
    assert res.connections.tunnel_parents.isna().all()


# --- garbage never crashes the decoder ------------------------------------------------------
def test_random_frames_of_every_new_link_type_and_tunnel() -> None:
    """Seeded random bytes behind each new link type, and behind valid outer headers of each
    tunnel kind (3,000 frames each): decoding yields rows or anomalies, never an exception."""
    import numpy as np

    from pcapan.decode import linktypes as lt
    from pcapan.decode.packets import Decoder
    from pcapan.io.batch import FrameBatch

    rng = np.random.default_rng(13)
    eth_ip = bytes.fromhex("0200000000020200000000010800450000000000400000400000c0000201c0000202")

    def outer(proto: int, head: bytes) -> bytes:
        return eth_ip[:23] + bytes([proto]) + eth_ip[24:] + head

    prefixes = {
        lt.ETHERNET: [
            outer(17, bytes.fromhex("c35012b500000000")),
            outer(17, bytes.fromhex("c35017c100000000")),
            outer(47, b""),
            outer(4, b""),
            outer(41, b""),
            bytes.fromhex("0200000000020200000000018864"),
        ],
        **{
            t: [b""]
            for t in (
                lt.PPP,
                lt.PPP_HDLC,
                lt.PPP_ETHER,
                lt.C_HDLC,
                lt.IEEE802_11,
                lt.PRISM,
                lt.RADIOTAP,
                lt.AVS,
                lt.PPI,
                lt.IPOIB,
            )
        },
    }
    for linktype, heads in prefixes.items():
        for head in heads:
            frames = [
                head + rng.integers(0, 256, int(rng.integers(0, 160)), dtype=np.uint8).tobytes()
                for _ in range(3000)
            ]
            if head.startswith(eth_ip[:12]) and len(head) > 34:
                # a plausible IPv4 total length, so the tunnel code gets to the random part
                frames = [f[:16] + (len(f) - 14).to_bytes(2, "big") + f[18:] for f in frames]
            data = b"".join(frames)
            lens = np.array([len(f) for f in frames], dtype=np.int64)
            off = np.concatenate([[0], np.cumsum(lens)[:-1]])
            n = len(frames)
            batch = FrameBatch(
                data,
                off,
                lens,
                lens,
                np.arange(n, dtype=np.int64) * 1000,
                np.full(n, linktype, dtype=np.int32),
                np.arange(1, n + 1, dtype=np.int64),
            )
            d = Decoder()
            d.decode(batch)
            st = d.stats
            assert st.frames == n
            assert not st.unsupported_linktype_frames


def test_tunnel_table_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    """Past MAX_TUNNELS distinct tunnels, new ones are named by kind only, one anomaly says so,
    and the inner connections are still analysed. tunnel-gre.pcap has two (one per direction)."""
    from pcapan.decode import packets

    monkeypatch.setattr(packets, "MAX_TUNNELS", 1)
    res = pcapan.analyze(ENCAP / "tunnel-gre.pcap")
    assert list(res.anomalies.name) == ["tunnel_table_full"]
    assert len(res.connections) == 2 and set(res.http.status_code) == {200}
    # the first packet (frame 1, client to server) made the one remembered tunnel
    assert set(res.connections.tunnel_parents) == {
        "gre 192.0.2.1>192.0.2.2 key=5,gre ?>? (more than 1 tunnels)"
    }
