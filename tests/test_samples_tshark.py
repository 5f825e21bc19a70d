"""Differential test: pcapan's connections table against tshark on every capture in samples/.

For each TCP connection of each sample, tshark (the oracle) and ``pcapan.analyze(path).connections``
must agree on

* the set of connections, as (orig_h, orig_p, resp_h, resp_p);
* packets per direction (``orig_pkts``/``resp_pkts``), from ``tshark -q -z conv,tcp``;
* IP-level bytes per direction (``orig_ip_bytes``/``resp_ip_bytes``). Zeek counts the IP total
  length, not frame bytes (which is what ``conv,tcp`` reports, and only rounded to kB at that),
  so the expected values are summed from ``tshark -T fields`` per packet: ``ip.len`` for IPv4,
  40 + ``ipv6.plen`` for IPv6;
* ``conn_state``, derived here from the TCP flags tshark shows (see ``zeek_conn_state``) and
  additionally pinned per capture in ``EXPECTED_STATES``, which is what samples/README.md
  states. If a regenerated capture closes differently, the pin fails and README must change too.

Orientation follows Zeek: the originator is the side that sent the SYN without ACK. tshark's
conversation table has its own A/B order (A = source of the first packet), so its rows are
mapped onto originator/responder by address and port.

Skips (with the reason) when tshark is not installed; CI installs it. Fails until
``pcapan.analyze`` and its ``connections`` table exist -- that is the contract under test.
"""

from __future__ import annotations

import functools
import ipaddress
import re
import shutil
import subprocess
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import pytest

SAMPLES = Path(__file__).resolve().parent.parent / "samples"
CAPTURES = sorted(p for p in SAMPLES.glob("*") if p.suffix in (".pcap", ".pcapng"))
TSHARK = shutil.which("tshark")

pytestmark = [
    pytest.mark.tshark,
    pytest.mark.skipif(TSHARK is None, reason="tshark is not installed (CI installs it)"),
]

# conn_state of every connection, per capture, as samples/README.md documents it.
#   SF    both sides sent FIN, nobody sent RST.
#   RSTR  the responder sent RST after the connection was established: openssl s_client
#         answers nginx's close_notify+FIN with its own close_notify, which reaches a socket
#         nginx has already closed, so the server's kernel sends RST (tls.pcap streams 2-5).
#   REJ   SYN answered by RST/ACK from a closed port (rst.pcap, port 18089).
#   RSTO  the originator sent RST after establishment: the SO_LINGER 0 client (rst.pcap).
EXPECTED_STATES: dict[str, dict[str, int]] = {
    "http-keepalive.pcap": {"SF": 2},
    "http-keepalive.pcapng": {"SF": 2},
    "lossy.pcap": {"SF": 2},
    "http-close.pcap": {"SF": 4},
    "http-pipelined.pcap": {"SF": 1},
    "tls.pcap": {"SF": 2, "RSTR": 4},
    "ipv6-http.pcap": {"SF": 1},
    "http-sll2.pcap": {"SF": 2},
    "http-sll.pcap": {"SF": 2},  # the name make_samples.py uses if only LINUX_SLL is offered
    "rst.pcap": {"REJ": 1, "RSTO": 1},
    # samples/README.md, the HTTP feature captures (FIN/RST per connection checked with tshark)
    "http-methods.pcap": {"SF": 2},
    "http-vhosts.pcap": {"SF": 3},
    "http-chunked.pcap": {"SF": 2},
    "http-expect.pcap": {"SF": 2},
    "http-upgrade.pcap": {"SF": 3},
    "http-connect.pcap": {"SF": 1, "RSTO": 1},  # curl resets after the refused CONNECT
    "plain-http-in-connect.pcap": {"SF": 1},
    "plain-h2c.pcap": {"SF": 1, "RSTO": 1},  # curl ends the h2c-upgraded connection with a RST
    # samples/README.md, the TLS feature captures: every connection ends with FIN both ways
    "tls-versions.pcap": {"SF": 4},
    "tls-hrr.pcap": {"SF": 1},
    "tls-resume.pcap": {"SF": 6},
    "tls-0rtt.pcap": {"SF": 3},
    "tls-alpn.pcap": {"SF": 3},
    "tls-alert.pcap": {"SF": 3},
    "tls-big-hello.pcap": {"SF": 2},
    # samples/README.md, the captures through the user-space delay: FIN both ways everywhere
    "rtt-http.pcap": {"SF": 2},
    "rtt-tls.pcap": {"SF": 2},
    "rtt-pipelined.pcap": {"SF": 1},
    # samples/README.md: every connection of the missed-reuse capture ends with FIN both ways
    "http-reuse.pcap": {"SF": 11},
    "http-credentials.pcap": {"SF": 3},
    # samples/README.md: 2,000 scanned ports and 50 connect()s nothing answers, one late
    # handshake the client aborts with RST
    "synscan.pcap": {"S0": 2050, "RSTO": 1},
}

Key = tuple[str, int, str, int]  # orig_h, orig_p, resp_h, resp_p


def norm_ip(x: object) -> str:
    return str(ipaddress.ip_address(str(x).strip("[]")))


def tshark(*args: str) -> str:
    # -n: no name resolution, so addresses and ports print as numbers.
    r = subprocess.run([TSHARK, "-n", *args], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    return r.stdout


# --- tshark: per-packet fields --------------------------------------------------------------
FIELDS = [
    "tcp.stream",
    "ip.src",
    "ipv6.src",
    "tcp.srcport",
    "ip.dst",
    "ipv6.dst",
    "tcp.dstport",
    "ip.len",
    "ipv6.plen",
    "frame.len",
    "tcp.flags.syn",
    "tcp.flags.ack",
    "tcp.flags.fin",
    "tcp.flags.reset",
    "tcp.len",
]


def _flag(v: str) -> bool:
    return v in ("1", "True", "true")  # 0/1 in tshark 4.0, False/True in later versions


@dataclass
class Side:
    pkts: int = 0
    ip_bytes: int = 0
    frame_bytes: int = 0
    syn: bool = False  # SYN without ACK
    synack: bool = False  # SYN with ACK
    fin: bool = False
    rst: bool = False
    payload: int = 0


@dataclass
class Conn:
    key: Key
    orig: Side = field(default_factory=Side)
    resp: Side = field(default_factory=Side)


@functools.cache
def tshark_connections(path: Path) -> dict[Key, Conn]:
    out = tshark(
        "-r",
        str(path),
        "-Y",
        "tcp",
        "-T",
        "fields",
        "-E",
        "separator=/t",
        "-E",
        "occurrence=f",
        *[a for f in FIELDS for a in ("-e", f)],
    )
    packets: dict[str, list[dict[str, str]]] = {}
    for line in out.splitlines():
        row = dict(zip(FIELDS, line.split("\t"), strict=True))
        packets.setdefault(row["tcp.stream"], []).append(row)
    conns: dict[Key, Conn] = {}
    for rows in packets.values():
        # Originator (Zeek): source of the first SYN without ACK; else of the first packet.
        first = next(
            (r for r in rows if _flag(r["tcp.flags.syn"]) and not _flag(r["tcp.flags.ack"])),
            rows[0],
        )
        o_h = norm_ip(first["ip.src"] or first["ipv6.src"])
        o_p = int(first["tcp.srcport"])
        r_h = norm_ip(first["ip.dst"] or first["ipv6.dst"])
        r_p = int(first["tcp.dstport"])
        c = Conn((o_h, o_p, r_h, r_p))
        assert c.key not in conns, f"{path.name}: 4-tuple reused, conv,tcp would merge {c.key}"
        conns[c.key] = c
        for r in rows:
            src = (norm_ip(r["ip.src"] or r["ipv6.src"]), int(r["tcp.srcport"]))
            side = c.orig if src == (o_h, o_p) else c.resp
            side.pkts += 1
            side.ip_bytes += int(r["ip.len"]) if r["ip.len"] else 40 + int(r["ipv6.plen"])
            side.frame_bytes += int(r["frame.len"])
            syn, ack = _flag(r["tcp.flags.syn"]), _flag(r["tcp.flags.ack"])
            side.syn |= syn and not ack
            side.synack |= syn and ack
            side.fin |= _flag(r["tcp.flags.fin"])
            side.rst |= _flag(r["tcp.flags.reset"])
            side.payload += int(r["tcp.len"] or 0)
    return conns


def zeek_conn_state(c: Conn) -> str:
    """Zeek's conn_state from the flags each side sent (base/protocols/conn/main.zeek).

    A simplification that is exact for connections whose SYN is in the capture, as in all
    samples: the responder's RST wins over everything (REJ when it never sent SYN-ACK, i.e. the
    originator was still in SYN_SENT; else RSTR); then the originator's RST (RSTO, or RSTOS0
    when the responder never answered); then FINs (SF both, S2 orig only, S3 resp only); then
    S1 for an established connection and S0 for a lone SYN.
    """
    o, r = c.orig, c.resp
    if r.rst:
        return "REJ" if o.syn and not r.synack else "RSTR"
    if o.rst:
        return "RSTOS0" if r.pkts == 0 else "RSTO"
    if o.fin and r.fin:
        return "SF"
    if o.fin:
        return "S2"
    if r.fin:
        return "S3"
    if o.syn and r.synack:
        return "S1"
    if o.syn and r.pkts == 0:
        return "S0"
    return "OTH"


# --- tshark: conversation table -------------------------------------------------------------
_UNITS = {"bytes": 1, "kB": 10**3, "MB": 10**6, "GB": 10**9, "KiB": 2**10, "MiB": 2**20}
_NUM = r"(\d+)\s+([\d,.]+)\s+(bytes|kB|MB|GB|KiB|MiB)"
_CONV_ROW = re.compile(rf"^(\S+):(\d+)\s+<->\s+(\S+):(\d+)\s+{_NUM}\s+{_NUM}\s+{_NUM}\s")


@dataclass
class ConvRow:
    a: tuple[str, int]
    b: tuple[str, int]
    frames_to_a: int  # tshark's "<-" column: B -> A
    bytes_to_a: tuple[float, float]  # (value in bytes, rounding tolerance)
    frames_to_b: int  # tshark's "->" column: A -> B
    bytes_to_b: tuple[float, float]
    frames: int
    total_bytes: tuple[float, float]


def _size(num: str, unit: str) -> tuple[float, float]:
    # conv,tcp prints "1285 bytes" exactly but "160 kB" rounded: keep the tolerance.
    scale = _UNITS[unit]
    return float(num.replace(",", "")) * scale, (0 if scale == 1 else scale)


@functools.cache
def tshark_conv(path: Path) -> list[ConvRow]:
    rows = []
    for line in tshark("-r", str(path), "-q", "-z", "conv,tcp").splitlines():
        m = _CONV_ROW.match(line.strip())
        if not m:
            continue
        g = m.groups()
        rows.append(
            ConvRow(
                a=(norm_ip(g[0]), int(g[1])),
                b=(norm_ip(g[2]), int(g[3])),
                frames_to_a=int(g[4]),
                bytes_to_a=_size(g[5], g[6]),
                frames_to_b=int(g[7]),
                bytes_to_b=_size(g[8], g[9]),
                frames=int(g[10]),
                total_bytes=_size(g[11], g[12]),
            )
        )
    assert rows, f"no conversations parsed from conv,tcp of {path.name}"
    return rows


@functools.cache
def expected(path: Path) -> dict[Key, dict[str, object]]:
    """Oracle table keyed like pcapan's: packets from conv,tcp, IP bytes and state from fields."""
    conns = tshark_connections(path)
    exp: dict[Key, dict[str, object]] = {}
    for row in tshark_conv(path):
        key = next((k for k in conns if {row.a, row.b} == {k[:2], k[2:]}), None)
        assert key is not None, f"{path.name}: conv row {row.a}<->{row.b} has no tcp.stream"
        a_is_orig = row.a == key[:2]
        c = conns[key]
        exp[key] = {
            "orig_pkts": row.frames_to_b if a_is_orig else row.frames_to_a,
            "resp_pkts": row.frames_to_a if a_is_orig else row.frames_to_b,
            "orig_ip_bytes": c.orig.ip_bytes,
            "resp_ip_bytes": c.resp.ip_bytes,
            "conn_state": zeek_conn_state(c),
        }
    assert set(exp) == set(conns), f"{path.name}: conv,tcp and tcp.stream disagree"
    return exp


# --- pcapan ---------------------------------------------------------------------------------
@functools.cache
def pcapan_connections(path: Path) -> dict[Key, dict[str, object]]:
    import pcapan

    df = pcapan.analyze(path).connections
    if "proto" in df.columns:  # the samples are TCP only; ignore anything else if reported
        df = df[df["proto"].astype(str).str.lower() == "tcp"]
    table: dict[Key, dict[str, object]] = {}
    for rec in df.to_dict("records"):
        key = (
            norm_ip(rec["orig_h"]),
            int(rec["orig_p"]),
            norm_ip(rec["resp_h"]),
            int(rec["resp_p"]),
        )
        assert key not in table, f"{path.name}: pcapan reports {key} twice"
        table[key] = rec
    return table


def _ids(p: Path) -> str:
    return p.name


# --- tests ------------------------------------------------------------------------------------
def test_samples_present_and_documented():
    assert CAPTURES, f"no captures in {SAMPLES}; run samples/make_samples.py as root"
    readme = (SAMPLES / "README.md").read_text()
    for p in CAPTURES:
        assert p.name in EXPECTED_STATES, f"{p.name}: add its conn_states to EXPECTED_STATES"
        assert f"`{p.name}`" in readme, f"{p.name} is not documented in samples/README.md"


@pytest.mark.parametrize("path", CAPTURES, ids=_ids)
def test_oracle_is_self_consistent(path: Path):
    """conv,tcp and per-packet fields agree with each other (checks the parsing above)."""
    conns = tshark_connections(path)
    for row in tshark_conv(path):
        key = next(k for k in conns if {row.a, row.b} == {k[:2], k[2:]})
        c = conns[key]
        to_a, to_b = (c.resp, c.orig) if row.a == key[:2] else (c.orig, c.resp)
        assert (row.frames_to_a, row.frames_to_b) == (to_a.pkts, to_b.pkts)
        assert row.frames == to_a.pkts + to_b.pkts
        for (val, tol), side in ((row.bytes_to_a, to_a), (row.bytes_to_b, to_b)):
            assert abs(val - side.frame_bytes) <= tol, (path.name, key, val, side.frame_bytes)


@pytest.mark.parametrize("path", CAPTURES, ids=_ids)
def test_conn_states_match_readme(path: Path):
    got = Counter(e["conn_state"] for e in expected(path).values())
    assert dict(got) == EXPECTED_STATES[path.name]


@pytest.mark.parametrize("path", CAPTURES, ids=_ids)
def test_connection_set(path: Path):
    assert set(pcapan_connections(path)) == set(expected(path))


@pytest.mark.parametrize("path", CAPTURES, ids=_ids)
@pytest.mark.parametrize(
    "column", ["orig_pkts", "resp_pkts", "orig_ip_bytes", "resp_ip_bytes", "conn_state"]
)
def test_connection_column(path: Path, column: str):
    ours = pcapan_connections(path)
    exp = expected(path)
    mismatches = {
        k: (ours[k][column], e[column])
        for k, e in exp.items()
        if k in ours and _value(ours[k][column]) != e[column]
    }
    assert not mismatches, f"{path.name} {column}: (pcapan, tshark) {mismatches}"
    assert set(ours) >= set(exp), "connection sets differ (see test_connection_set)"


def _value(v: object) -> object:
    return v if isinstance(v, str) else int(v)  # numpy / pandas nullable ints -> int
