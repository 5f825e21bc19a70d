"""Parallel analysis (pcapan.parallel): processes and a real Dask LocalCluster give exactly the
tables of one process.

The oracle is pcapan's own single-process run, itself checked against tshark and Zeek by the
other test files: these tests check that splitting the work by flow changes nothing (every table
compared exactly, in order, and the summary), on every sample and on corpus captures chosen for
anomalies, fragments, tunnels and many connections. The Dask tests start one LocalCluster of two
worker processes on loopback for the whole session (a cluster costs seconds to start).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

import pcapan
from pcapan.api import PARTITIONED_TABLES, Result
from pcapan.model import ConnColumns

REPO = Path(__file__).resolve().parent.parent
SAMPLES = REPO / "samples"
CORPUS = REPO.parent / "shared" / "corpus"
ALL_SAMPLES = sorted(p for p in SAMPLES.rglob("*") if p.suffix in (".pcap", ".pcapng"))
# Corpus captures: many anomalies (methods: 31, tls-handshake: 55), IPv6 fragments
# (ipv6-http-atomic-frag), gzip and 1000 requests on one connection, VLAN/MPLS, VXLAN, many
# connections (http1.pcapng: 56, tls-handshake: 59), pcapng from browsers.
CORPUS_CAPTURES = [
    "zeek/testing/btest/Traces/http/methods.pcap",
    "zeek/testing/btest/Traces/ipv6-http-atomic-frag.pcap",
    "zeek/testing/btest/Traces/http/1000-requests-one-dropped-response.pcap.gz",
    "zeek/testing/btest/Traces/mixed-vlan-mpls.pcap",
    "zeek/testing/btest/Traces/tunnels/vxlan-encapsulated-http.pcap",
    "zeek/testing/btest/Traces/wikipedia.pcap",
    "ja4/pcap/tls-handshake.pcapng",
    "ja4/pcap/http1.pcapng",
    "ndpi/tests/cfgs/default/pcap/chrome.pcap",
    "ndpi/tests/cfgs/default/pcap/safari.pcap",
]
TABLES = ["connections", "http", "tls", "rtt", "anomalies", "servers", "clients", "missed_reuse"]


def assert_same(a: Result, b: Result) -> None:
    """Every table equal, exactly (values to the last bit, dtypes, row order), and the summary."""
    for name in TABLES:
        pd.testing.assert_frame_equal(
            getattr(a, name), getattr(b, name), check_exact=True, obj=name
        )
    assert a.summary() == b.summary()


def analyze(paths: Any, **kw: Any) -> Result:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # (duplicate-source warnings are part of the result)
        return pcapan.analyze(paths, **kw)


@pytest.fixture(scope="session")
def dask_client() -> Iterator[Any]:
    distributed = pytest.importorskip("distributed", reason="pip install 'pcapan[dask]'")
    with (
        distributed.LocalCluster(
            n_workers=2,
            processes=True,
            threads_per_worker=1,
            host="127.0.0.1",
            dashboard_address=None,
        ) as cluster,
        distributed.Client(cluster) as client,
    ):
        yield client


# -- processes ---------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ALL_SAMPLES, ids=lambda p: str(p.relative_to(SAMPLES)))
def test_two_workers_equal_one_process_on_every_sample(path: Path) -> None:
    assert_same(analyze(path), analyze(path, workers=2))


@pytest.mark.corpus
@pytest.mark.skipif(not CORPUS.is_dir(), reason=f"conformance corpus not found at {CORPUS}")
@pytest.mark.parametrize("rel", CORPUS_CAPTURES)
def test_workers_equal_one_process_on_corpus(rel: str) -> None:
    path = CORPUS / rel
    one = analyze(path)
    # Something to compare: each of these has connections (checked against tshark's conversation
    # count by the corpus tests); 3 workers on a few as well, for another split of the flows.
    assert len(one.connections) > 0
    assert_same(one, analyze(path, workers=2))
    if rel in CORPUS_CAPTURES[:3]:
        assert_same(one, analyze(path, workers=3))


def test_merge_of_shards_counts_the_capture_once() -> None:
    # The decoder's figures are the whole capture's in every shard: kept once, not summed.
    # rtt-http.pcap: 269 frames (capinfos -c), all TCP over IPv4.
    path = SAMPLES / "rtt-http.pcap"
    res = analyze(path, workers=2)
    assert res.stats["frames"] == 269
    assert res.stats["ip_packets"] == {"tcp": 269}
    assert res.stats["first_ts_ns"] == analyze(path).stats["first_ts_ns"]
    # The same when the user splits by hand: Result.merge of analyze(shard=(i, n)).
    for n in (2, 3):
        merged = Result.merge([analyze(path, shard=(i, n)) for i in range(n)])
        assert_same(analyze(path), merged)
        assert merged.stats["frames"] == 269


def test_whole_capture_anomalies_counted_once(tmp_path: Path) -> None:
    # A capture cut in the middle of a record: the reader's truncation anomaly (no uid) and the
    # warning come from every shard's reader, and must appear once.
    data = (SAMPLES / "http-keepalive.pcap").read_bytes()
    cut = tmp_path / "cut.pcap"
    cut.write_bytes(data[: len(data) - 100])
    one = analyze(cut)
    uidless = one.anomalies[one.anomalies.uid.isna() | (one.anomalies.uid == "")]
    assert len(uidless) >= 1 and len(one.warnings) == 1
    assert_same(one, analyze(cut, workers=2))
    assert_same(one, analyze(cut, workers=3))


def test_rotated_files_keep_a_connection_whole(tmp_path: Path) -> None:
    # rtt-http.pcap: 2 connections over 269 frames (tshark -q -z conv,tcp lists 2); frames 1-130
    # and 131-269 as two rotated files (editcap -r) cut the first connection in the middle.
    if shutil.which("editcap") is None:
        pytest.skip("editcap not installed")
    src = SAMPLES / "rtt-http.pcap"
    a, b = tmp_path / "rot-00.pcap", tmp_path / "rot-01.pcap"
    subprocess.run(["editcap", "-r", str(src), str(a), "1-130"], check=True)
    subprocess.run(["editcap", "-r", str(src), str(b), "131-269"], check=True)
    one = analyze([a, b])
    whole = analyze(src)
    assert len(one.connections) == len(whole.connections) == 2
    cols = ["uid", "orig_pkts", "resp_pkts", "orig_bytes", "resp_bytes", "conn_state", "history"]
    pd.testing.assert_frame_equal(one.connections[cols], whole.connections[cols])
    par = analyze([a, b], workers=2)
    assert_same(one, par)
    # The cut connection is one row whose packets come from both files.
    assert int(par.connections.orig_pkts.sum() + par.connections.resp_pkts.sum()) == 269


def test_fragments_of_a_datagram_land_in_one_shard(tmp_path: Path) -> None:
    # http-keepalive.pcap with every IPv4 packet over 600 bytes cut into fragments of at most
    # 512 payload bytes (scapy's fragment()), the two fragments of each datagram in reverse
    # order: the decoder reassembles them before the shard filter, so each shard gets whole
    # segments and the tables match the unfragmented capture's.
    from scapy.layers.inet import IP, fragment
    from scapy.layers.l2 import Ether
    from scapy.utils import rdpcap, wrpcap

    out = []
    nfrag = 0
    for pkt in rdpcap(str(SAMPLES / "http-keepalive.pcap")):  # (Ethernet: capinfos -E)
        if IP in pkt and len(pkt[IP]) > 600:
            frags = fragment(pkt[IP], fragsize=512)
            nfrag += len(frags)
            for f in reversed(frags):
                q = Ether(src=pkt[Ether].src, dst=pkt[Ether].dst, type=0x0800) / f
                q.time = pkt.time
                out.append(q)
        else:
            out.append(pkt)
    frag_path = tmp_path / "frag.pcap"
    wrpcap(str(frag_path), out)
    plain = analyze(SAMPLES / "http-keepalive.pcap")
    one = analyze(frag_path)
    assert one.stats["ip_fragments"] == nfrag > 0
    assert one.stats["ip_reassembled"] > 0
    cols = ["uid", "orig_bytes", "resp_bytes", "orig_pkts", "resp_pkts", "history"]
    pd.testing.assert_frame_equal(one.connections[cols], plain.connections[cols])
    assert len(one.http) == len(plain.http)
    for n in (2, 3):
        par = analyze(frag_path, workers=n)
        assert_same(one, par)


def test_progress_aggregates_workers() -> None:
    path = SAMPLES / "synscan.pcap"
    size = path.stat().st_size
    seen: list[tuple[str, int, int | None]] = []
    analyze(path, workers=2, progress=lambda n, d, t: seen.append((n, d, t)))
    assert seen and all(t == size for _, _, t in seen)
    assert seen[-1][1] == size  # full at the end
    assert all(0 <= d <= size for _, d, _ in seen)


def test_stdin_is_refused_in_parallel() -> None:
    from pcapan.errors import ParallelError

    with (
        pytest.raises(ParallelError, match="file paths"),
        open(SAMPLES / "tls.pcap", "rb") as f,
    ):
        pcapan.analyze(f, workers=2)


def test_shard_result_travels_as_rows() -> None:
    # A worker's part crosses a pipe (process pool) or a socket (Dask) pickled: its HTTP, TLS and
    # anomaly records go as tuples of field values (pickling each frozen slots record by its
    # fields cost 0.13 s out and 0.15 s in per half of the real capture) and come back equal,
    # of their own classes and frozen. rst.pcap has an anomaly of a connection (the only sample
    # with one), tls.pcap TLS rows, http-keepalive.pcap HTTP rows.
    import dataclasses
    import pickle

    from pcapan.api import _Wire
    from pcapan.model import AnomalyRecord, HttpRecord, TlsRecord

    paths = [SAMPLES / "rst.pcap", SAMPLES / "tls.pcap", SAMPLES / "http-keepalive.pcap"]
    res = analyze(paths)
    assert res.http_records and res.tls_records and any(a.uid for a in res.anomaly_records)
    wire = pickle.dumps(_Wire(res))
    for cls in (AnomalyRecord, HttpRecord, TlsRecord):
        assert cls.__name__.encode() not in wire  # no record object pickled as itself
    back = pickle.loads(wire).result
    for name, cls in (
        ("anomaly_records", AnomalyRecord),
        ("http_records", HttpRecord),
        ("tls_records", TlsRecord),
    ):
        got, want = getattr(back, name), getattr(res, name)
        assert got == want and all(type(r) is cls for r in got)
    with pytest.raises(dataclasses.FrozenInstanceError):
        back.http_records[0].uid = "x"  # type: ignore[misc]
    assert back.stats == res.stats and back.warnings == res.warnings
    assert_same(analyze(paths), back)


def test_absorb_equals_row_by_row_extend() -> None:
    # The merge's buffer-level append against the row-by-row one, on connections with strings
    # (dictionary-coded), unique text (uids), optional ints (None) and floats.
    parts = [analyze(p).connection_records for p in ALL_SAMPLES[:6]]
    a, b = ConnColumns(), ConnColumns()
    for p in parts:
        a.absorb(p)
        b.extend(p)
    assert len(a) == len(b) == sum(len(p) for p in parts) > 0
    assert a.records() == b.records()


def test_extract_in_parallel_writes_the_same_files(tmp_path: Path) -> None:
    path = SAMPLES / "http-keepalive.pcap"
    _, m1 = pcapan.extract(path, tmp_path / "one")
    _, m2 = pcapan.extract(path, tmp_path / "two", workers=2)
    assert len(m1) > 0
    pd.testing.assert_frame_equal(m1, m2)
    assert sorted(p.name for p in (tmp_path / "two").iterdir()) == sorted(
        p.name for p in (tmp_path / "one").iterdir()
    )


# -- command line ------------------------------------------------------------------------------


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pcapan.cli", *args], capture_output=True, text=True, cwd=REPO
    )


def test_cli_workers_same_output() -> None:
    f = str(SAMPLES / "tls.pcap")
    for verb in ("connections", "tls", "rtt"):
        one = cli(verb, f, "--format", "csv")
        two = cli(verb, f, "--format", "csv", "--workers", "2")
        assert one.returncode == two.returncode == 0, two.stderr
        assert one.stdout == two.stdout and one.stdout.count("\n") > 1


def test_cli_workers_refuses_stdin_in_one_line() -> None:
    p = subprocess.run(
        [sys.executable, "-m", "pcapan.cli", "connections", "-", "--workers", "2"],
        stdin=open(SAMPLES / "tls.pcap", "rb"),  # noqa: SIM115
        capture_output=True,
        text=True,
        cwd=REPO,
    )
    assert p.returncode == 2
    assert p.stderr.startswith("pcapan: error:") and p.stderr.count("\n") == 1


def test_cli_partitioned_parquet_export(tmp_path: Path) -> None:
    files = [str(SAMPLES / "rtt-http.pcap"), str(SAMPLES / "tls.pcap")]
    p = cli("export", *files, "--workers", "2", "--format", "parquet", "-o", str(tmp_path))
    assert p.returncode == 0, p.stderr
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert manifest["partitioned"] is True
    one = analyze(files)
    for name in PARTITIONED_TABLES:
        parts = sorted((tmp_path / name).glob("part-*.parquet"))
        assert [x.name for x in parts] == ["part-0000.parquet", "part-0001.parquet"]
        back = pd.concat([pd.read_parquet(x) for x in parts], ignore_index=True)
        assert manifest["tables"][name]["rows"] == len(back) == len(getattr(one, name))
    conns = pd.concat(
        [pd.read_parquet(x) for x in sorted((tmp_path / "connections").glob("*.parquet"))]
    )
    conns = conns.sort_values(["ts", "uid"], ignore_index=True)
    ref = one.connections
    assert list(conns.uid) == list(ref.uid)
    pd.testing.assert_series_equal(conns.orig_bytes, ref.orig_bytes, check_exact=True)


# -- Dask --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name", ["tls.pcap", "rtt-http.pcap", "synscan.pcap", "http-pipelined.pcap", "rst.pcap"]
)
def test_dask_cluster_equals_one_process(dask_client: Any, name: str) -> None:
    path = SAMPLES / name
    assert_same(analyze(path), analyze(path, client=dask_client))


@pytest.mark.corpus
@pytest.mark.skipif(not CORPUS.is_dir(), reason=f"conformance corpus not found at {CORPUS}")
def test_dask_cluster_equals_one_process_on_corpus(dask_client: Any) -> None:
    for rel in CORPUS_CAPTURES[:4]:
        path = CORPUS / rel
        assert_same(analyze(path), analyze(path, client=dask_client))


def test_dask_rotated_files_and_progress(dask_client: Any, tmp_path: Path) -> None:
    if shutil.which("editcap") is None:
        pytest.skip("editcap not installed")
    src = SAMPLES / "rtt-http.pcap"
    a, b = tmp_path / "rot-00.pcap", tmp_path / "rot-01.pcap"
    subprocess.run(["editcap", "-r", str(src), str(a), "1-130"], check=True)
    subprocess.run(["editcap", "-r", str(src), str(b), "131-269"], check=True)
    seen: list[tuple[str, int, int | None]] = []
    par = analyze([a, b], client=dask_client, progress=lambda n, d, t: seen.append((n, d, t)))
    assert_same(analyze([a, b]), par)
    assert len(par.connections) == 2
    # Both files reported, each full at the end.
    last = {n: (d, t) for n, d, t in seen}
    assert {Path(n).name for n in last} == {"rot-00.pcap", "rot-01.pcap"}
    assert all(d == t for d, t in last.values())


def test_dask_partitioned_parquet_reads_back_with_dask(dask_client: Any, tmp_path: Path) -> None:
    dd = pytest.importorskip("dask.dataframe")
    files = [SAMPLES / "rtt-http.pcap", SAMPLES / "tls.pcap", SAMPLES / "synscan.pcap"]
    res, paths = pcapan.api.export_parts(files, tmp_path, client=dask_client)
    assert res.summary()["tcp_connections"] == 0  # rows stayed in the parts
    assert res.stats["frames"] == sum(analyze(f).stats["frames"] for f in files)
    one = analyze(files)
    for name in PARTITIONED_TABLES:
        ddf = dd.read_parquet(str(tmp_path / name))
        assert ddf.npartitions == 2
        back = ddf.compute().reset_index(drop=True)
        assert len(back) == len(getattr(one, name))
    conns = dd.read_parquet(str(tmp_path / "connections")).compute()
    conns = conns.sort_values(["ts", "uid"], ignore_index=True)
    assert list(conns.uid) == list(one.connections.uid)


def test_cli_scheduler_address(dask_client: Any) -> None:
    addr = dask_client.scheduler.address
    f = str(SAMPLES / "tls.pcap")
    one = cli("tls", f, "--format", "csv")
    two = cli("tls", f, "--format", "csv", "--scheduler", addr)
    assert two.returncode == 0, two.stderr
    assert one.stdout == two.stdout and one.stdout.count("\n") > 1
