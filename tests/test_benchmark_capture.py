"""The benchmark's capture generator: deterministic, a valid pcap, and what it claims to contain.

tshark is the independent check that the synthetic traffic is well-formed (no malformed packets,
correct checksums) and that the generator's own statistics (connections, HTTP requests, TLS
ClientHellos) are what a real dissector finds.
"""

from __future__ import annotations

import hashlib
import importlib.util
import shutil
import struct
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

REPO = Path(__file__).resolve().parent.parent
N = 4000


def _load_generator() -> ModuleType:
    # benchmarks/ is not a package (it is a directory of scripts), so load the file directly.
    name = "pcapan_benchmarks_make_capture"
    spec = importlib.util.spec_from_file_location(name, REPO / "benchmarks" / "make_capture.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up while the class is created
    spec.loader.exec_module(module)
    return module


make_capture = _load_generator()
needs_tshark = pytest.mark.skipif(shutil.which("tshark") is None, reason="tshark not installed")
# tshark setup for a fair reading: reassemble out-of-order segments (the capture has reordering
# and retransmissions, and without this tshark loses messages behind a gap), verify checksums.
TSHARK_OPTS = [
    "-o", "tcp.reassemble_out_of_order:TRUE",
    "-o", "ip.check_checksum:TRUE",
    "-o", "tcp.check_checksum:TRUE",
]  # fmt: skip


@pytest.fixture(scope="module")
def capture(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, object]:
    path = tmp_path_factory.mktemp("bench") / "small.pcap"
    stats = make_capture.write_capture(path, N)
    return path, stats


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _tshark(path: Path, *args: str) -> str:
    res = subprocess.run(
        ["tshark", "-r", str(path), *TSHARK_OPTS, *args],
        capture_output=True,
        text=True,
        check=False,
    )
    assert res.returncode == 0, res.stderr
    errors = [ln for ln in res.stderr.splitlines() if ln.strip() and "Running as user" not in ln]
    assert not errors, errors
    return res.stdout


def test_deterministic(tmp_path: Path, capture: tuple[Path, object]) -> None:
    path, _ = capture
    again = tmp_path / "again.pcap"
    make_capture.write_capture(again, N)
    assert _sha256(again) == _sha256(path)


def test_cli_matches_library_and_writes_metadata(
    tmp_path: Path, capture: tuple[Path, object]
) -> None:
    path, stats = capture
    out = tmp_path / "cli.pcap"
    script = REPO / "benchmarks" / "make_capture.py"
    subprocess.run(
        [sys.executable, str(script), "--packets", str(N // 2), "--scale", "2", "--out", str(out)],
        check=True,
        capture_output=True,
    )
    assert _sha256(out) == _sha256(path)
    meta = make_capture.meta_path(out).read_text()
    assert f'"connections": {stats.connections}' in meta


def test_valid_pcap_with_exact_packet_count(capture: tuple[Path, object]) -> None:
    path, stats = capture
    data = path.read_bytes()
    magic, vmaj, vmin, _tz, _sig, _snap, linktype = struct.unpack_from("<IHHiIII", data)
    assert (magic, vmaj, vmin, linktype) == (0xA1B2C3D4, 2, 4, 1)  # microseconds, Ethernet
    pos, count, last = 24, 0, 0
    while pos < len(data):
        sec, usec, caplen, wirelen = struct.unpack_from("<IIII", data, pos)
        ts = sec * 1_000_000 + usec
        assert usec < 1_000_000 and caplen == wirelen and ts >= last
        # IPv4 total length must match the frame (14-byte Ethernet header, no padding).
        assert struct.unpack_from("!H", data, pos + 16 + 16)[0] == caplen - 14
        last = ts
        pos += 16 + caplen
        count += 1
    assert pos == len(data)
    assert count == N == stats.packets


def test_content_mix(capture: tuple[Path, object]) -> None:
    _, stats = capture
    assert stats.http_connections > 10 and stats.tls_connections > 10
    assert stats.http_requests > stats.http_connections  # keep-alive reuse
    assert stats.retransmissions > 0 and stats.reordered_segments > 0 and stats.resets > 0
    assert stats.max_open_connections > 50  # overlapping connections


@needs_tshark
def test_tshark_reads_without_malformed_packets_or_bad_checksums(
    capture: tuple[Path, object],
) -> None:
    path, _ = capture
    bad = _tshark(
        path,
        "-Y", "_ws.malformed || _ws.expert.severity == error || ip.checksum.status == 0 || tcp.checksum.status == 0",
    )  # fmt: skip
    assert bad.strip() == ""
    assert len(_tshark(path).splitlines()) == N


@needs_tshark
def test_tshark_finds_the_connections_the_generator_reports(capture: tuple[Path, object]) -> None:
    path, stats = capture
    out = _tshark(path, "-q", "-z", "conv,tcp")
    rows = [ln for ln in out.splitlines() if "<->" in ln]
    assert len(rows) == stats.connections


@needs_tshark
def test_tshark_finds_the_http_requests_and_tls_hellos(capture: tuple[Path, object]) -> None:
    path, stats = capture
    methods = _tshark(
        path, "-Y", "http.request", "-T", "fields", "-e", "http.request.method"
    ).split()
    assert len(methods) == stats.http_requests
    assert set(methods) <= {"GET", "POST"}
    hellos = _tshark(
        path,
        "-Y",
        "tls.handshake.type == 1",
        "-T",
        "fields",
        "-e",
        "tls.handshake.extensions_server_name",
    ).split()
    assert len(hellos) == stats.tls_client_hellos
    assert all(name.count(".") >= 2 for name in hellos)  # every ClientHello carries SNI
    server_hellos = _tshark(
        path, "-Y", "tls.handshake.type == 2", "-T", "fields", "-e", "frame.number"
    ).split()
    assert len(server_hellos) == stats.tls_server_hellos


def test_pcapan_finds_the_http_requests_and_responses(capture: tuple[Path, object]) -> None:
    """pcapan's http table against the generator's own counts: every request written, and every
    response written whole (the capture is cut at N packets, so the last ones may be partial)."""
    import pcapan

    path, stats = capture
    h = pcapan.analyze(path).http
    assert stats.http_requests > 0
    assert int(h.method.notna().sum()) == stats.http_requests
    assert int((h.ts_response_end.notna() & ~h.partial).sum()) == stats.http_responses


# ---- the short mix: 1-3 exchanges per connection, most ending with Connection: close ----------

N_SHORT = 3000


@pytest.fixture(scope="module")
def short_capture(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, object]:
    path = tmp_path_factory.mktemp("bench") / "short.pcap"
    stats = make_capture.write_capture(path, N_SHORT, mix="short")
    return path, stats


def test_short_mix_is_deterministic_and_leaves_the_other_mixes_alone(
    tmp_path: Path, short_capture: tuple[Path, object], capture: tuple[Path, object]
) -> None:
    path, _ = short_capture
    again = tmp_path / "again.pcap"
    make_capture.write_capture(again, N_SHORT, mix="short")
    assert _sha256(again) == _sha256(path)
    # The web capture of the same seed is another file: the mix changed what was drawn.
    assert _sha256(capture[0]) != _sha256(path)


@needs_tshark
def test_short_mix_per_tshark(short_capture: tuple[Path, object]) -> None:
    """tshark, not the generator, counts connections (a SYN without ACK), requests per connection
    and Connection: close headers. On the 3,000-packet capture (seed 20231114) tshark finds 176
    SYNs (74 to port 80), 107 requests on 72 connections (47 with one request, 15 with two, 10
    with three: the last connections are cut before their first request) and 46 responses with
    Connection: close (22 requests carry it too), as counted by hand with
    `tshark -Y http.request -T fields -e tcp.stream | sort | uniq -c`."""
    path, stats = short_capture
    bad = _tshark(
        path, "-Y", "_ws.malformed || _ws.expert.severity == error || tcp.checksum.status == 0"
    )
    assert bad.strip() == ""

    syns = [
        ln.split("\t")
        for ln in _tshark(
            path, "-Y", "tcp.flags.syn==1 && tcp.flags.ack==0", "-T", "fields",
            "-e", "tcp.stream", "-e", "tcp.dstport",
        ).splitlines()
    ]  # fmt: skip
    assert len(syns) == stats.connections
    http_streams = {s for s, port in syns if port == "80"}
    assert len(http_streams) == stats.http_connections > 30
    # Short connections: the real-traffic shape (under 30 packets per connection on average).
    assert N_SHORT / len(syns) < 30
    assert stats.packets_per_connection == round(N_SHORT / len(syns), 2)

    per_stream: dict[str, int] = {}
    for stream in _tshark(path, "-Y", "http.request", "-T", "fields", "-e", "tcp.stream").split():
        per_stream[stream] = per_stream.get(stream, 0) + 1
    assert sum(per_stream.values()) == stats.http_requests
    assert set(per_stream) <= http_streams
    assert set(per_stream.values()) == {1, 2, 3}  # 1-3 requests, and each count occurs
    # Only the connections still opening when the capture is cut have no request yet.
    assert len(per_stream) >= 0.9 * len(http_streams)

    closing = _tshark(
        path, "-Y", 'http.connection == "close"', "-T", "fields",
        "-e", "tcp.stream", "-e", "http.response.code",
    ).splitlines()  # fmt: skip
    responses = [ln.split("\t")[0] for ln in closing if ln.split("\t")[1]]
    requests = [ln.split("\t")[0] for ln in closing if not ln.split("\t")[1]]
    assert len(responses) == stats.http_connection_close
    assert len(set(responses)) == len(responses)  # only the last exchange of a connection
    assert requests and set(requests) <= set(responses)  # client-asked closes are answered
    # Most connections end with Connection: close (70 % by design; a few are cut before it).
    assert len(set(responses)) > 0.5 * len(per_stream)
