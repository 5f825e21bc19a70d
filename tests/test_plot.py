"""Plots (issue 6): every kind rendered from a real sample, and what it draws counted against
the tables (computed here from the DataFrame, independently of the plot code where possible)
and, where tshark is installed, against tshark's reading of the same capture."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from matplotlib.collections import LineCollection, PathCollection
from matplotlib.container import BarContainer
from matplotlib.figure import Figure

import pcapan
from pcapan.cli import main
from pcapan.plot import KINDS, Plotter
from pcapan.plot.packets import classify_segments, connection_packets, io_series, time_sequence
from pcapan.plot.tls import strength_color

from .tcpgen import Conv, write

SAMPLES = Path(__file__).resolve().parent.parent / "samples"
needs_tshark = pytest.mark.skipif(shutil.which("tshark") is None, reason="tshark not installed")


def _tshark(path: Path, display_filter: str, *fields: str) -> list[str]:
    cmd = ["tshark", "-n", "-r", str(path), "-Y", display_filter]
    if fields:
        cmd += ["-T", "fields", *(x for f in fields for x in ("-e", f))]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    return [line for line in out.splitlines() if line.strip()]


def _bars(ax) -> dict[str, BarContainer]:  # noqa: ANN001
    return {c.get_label(): c for c in ax.containers if isinstance(c, BarContainer)}


def _lines(ax) -> dict[str, object]:  # noqa: ANN001
    return {ln.get_label(): ln for ln in ax.get_lines()}


@pytest.fixture(scope="module")
def rtt_http() -> pcapan.api.Result:
    return pcapan.analyze(SAMPLES / "rtt-http.pcap")


@pytest.fixture(scope="module")
def rtt_tls() -> pcapan.api.Result:
    return pcapan.analyze(SAMPLES / "rtt-tls.pcap")


def test_import_does_not_load_matplotlib() -> None:
    code = "import sys, pcapan.plot; print('matplotlib' in sys.modules)"
    out = subprocess.run(
        [__import__("sys").executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "False"


def test_result_plot_accessor(rtt_http: pcapan.api.Result) -> None:
    assert isinstance(rtt_http.plot, Plotter)
    fig = rtt_http.plot("waterfall")
    assert isinstance(fig, Figure) and type(fig.canvas).__name__ == "FigureCanvasAgg"
    with pytest.raises(pcapan.errors.PcapanError):
        rtt_http.plot("nope")


# -- rtt -----------------------------------------------------------------------------------------
def test_rtt_cdf_histogram_and_handshake(rtt_http: pcapan.api.Result) -> None:
    """One CDF line and one histogram per direction, each with as many points / counts as the
    rtt table has ack samples in that direction; one scatter point per connection and
    direction with both a handshake and a data RTT."""
    res = rtt_http
    fig = res.plot.rtt()
    cdf, hist, hs = fig.axes
    acks = res.rtt[res.rtt.kind == "ack"]
    want = acks.groupby("direction").size().to_dict()
    assert set(want) == {"orig", "resp"}
    lines = _lines(cdf)
    for d, n in want.items():
        line = lines[f"{d} (n={n})"]
        assert len(line.get_xdata()) == n
        assert np.allclose(
            np.sort(line.get_xdata()), np.sort(acks[acks.direction == d].rtt_s * 1e3)
        )
        assert line.get_ydata()[-1] == 1.0
    assert cdf.get_xlabel() == "RTT (ms)" and cdf.get_ylabel() == "fraction of samples"
    bars = _bars(hist)
    assert {k: int(sum(p.get_height() for p in v)) for k, v in bars.items()} == want
    assert hist.get_ylabel() in ("samples", "samples (log scale)")
    c = res.connections
    points = {
        pc.get_label(): pc.get_offsets() for pc in hs.collections if isinstance(pc, PathCollection)
    }
    assert (
        len(points["orig"]) == int((c.rtt_syn_s.notna() & c.rtt_orig_median_s.notna()).sum()) == 2
    )
    assert (
        len(points["resp"])
        == int((c.rtt_synack_s.notna() & c.rtt_resp_median_s.notna()).sum())
        == 2
    )
    # the delay line: 50 ms to the server, 20 ms to the client (samples/rtt-facts.json)
    assert np.all(np.abs(np.asarray(points["orig"]) - 50) < 5) and np.all(
        np.abs(np.asarray(points["resp"]) - 20) < 5
    )
    assert hs.get_xlabel() == "handshake RTT (ms)" and hs.get_ylabel() == "median data RTT (ms)"


@needs_tshark
def test_rtt_handshake_points_match_tshark(rtt_http: pcapan.api.Result) -> None:
    """The handshake halves of the scatter add up to tshark's tcp.analysis.initial_rtt."""
    _, _, hs = rtt_http.plot.rtt().axes
    pts = {
        pc.get_label(): np.asarray(pc.get_offsets())
        for pc in hs.collections
        if isinstance(pc, PathCollection)
    }
    total = sorted(
        round(float(a + b), 3) for a, b in zip(pts["orig"][:, 0], pts["resp"][:, 0], strict=True)
    )
    irtt = _tshark(
        SAMPLES / "rtt-http.pcap",
        "tcp.analysis.initial_rtt && tcp.flags.syn==0 && tcp.len==0 && tcp.seq==1 && tcp.ack==1",
        "tcp.analysis.initial_rtt",
    )
    want = sorted(round(float(v) * 1e3, 3) for v in dict.fromkeys(irtt))
    assert total == want


def test_rtt_by_server() -> None:
    res = pcapan.analyze([SAMPLES / "rtt-http.pcap", SAMPLES / "rtt-tls.pcap"])
    cdf = res.plot.rtt(by_server=True).axes[0]
    acks = res.rtt[res.rtt.kind == "ack"].merge(res.connections[["uid", "resp_p"]], on="uid")
    want = sorted(acks.groupby(["resp_p", "direction"]).size().tolist())
    assert (
        sorted(len(ln.get_xdata()) for ln in cdf.get_lines()) == want
    )  # one line per server port and direction


# -- budget --------------------------------------------------------------------------------------
def test_budget_stacked_bars(rtt_tls: pcapan.api.Result) -> None:
    """Per server and per label: three stacked bars (TCP, TLS, wait) per group, heights the mean
    of budget_tcp_s, budget_tls_s, budget_ttfb_s over the group's connections."""
    res = rtt_tls
    srv, lab = res.plot.budget().axes
    c = res.connections
    assert c.budget_label.nunique() == 2 and len(c) == 2
    for ax in (srv, lab):
        bars = _bars(ax)
        assert set(bars) == {"TCP", "TLS", "wait"}
        assert all(len(b) == 2 for b in bars.values())  # two servers (ports), two labels
        assert ax.get_xlabel() == "time (ms)"  # horizontal bars: names read level
    bars = _bars(lab)
    ticks = [t.get_text().rsplit(" (n=", 1)[0] for t in lab.get_yticklabels()]
    for i, label in enumerate(ticks):
        row = c[c.budget_label == label].iloc[0]
        assert bars["TCP"][i].get_width() == pytest.approx(row.budget_tcp_s * 1e3)
        assert bars["TLS"][i].get_width() == pytest.approx(row.budget_tls_s * 1e3)
        assert bars["wait"][i].get_width() == pytest.approx(row.budget_ttfb_s * 1e3)
        assert bars["TLS"][i].get_x() == pytest.approx(row.budget_tcp_s * 1e3)  # stacked on TCP
    assert set(ticks) == {"TCP+TLS1.2 full: 4 RTT", "TCP+TLS1.3 full: 3 RTT"}


# -- reuse ---------------------------------------------------------------------------------------
def test_reuse_histogram_and_open_connections(rtt_http: pcapan.api.Result) -> None:
    """rtt-http: one connection with 2 requests (keep-alive), one with 1: two bars of height 1;
    one client-server pair (same client, server and Host), its line has an open and a close per
    connection."""
    res = rtt_http
    h_ax, t_ax = res.plot.reuse().axes
    bars = _bars(h_ax)["connections"]
    per_conn = res.http.groupby("uid").size().value_counts().sort_index()
    assert [round(p.get_x() + p.get_width() / 2) for p in bars] == list(per_conn.index) == [1, 2]
    assert [p.get_height() for p in bars] == list(per_conn.to_numpy()) == [1, 1]
    assert h_ax.get_xlabel() == "requests per connection"
    pairs = res.servers
    lines = t_ax.get_lines()
    assert len(lines) == len(pairs) == 1
    assert len(lines[0].get_xdata()) == 2 * int(
        pairs.connections.iloc[0]
    )  # an open and a close each
    assert t_ax.get_ylabel() == "open connections"


def test_reuse_marks_missed_reuse(tmp_path: Path) -> None:
    """Connection A stays open and idle after its response; B to the same server opens 1 s later:
    one missed-reuse marker, at 2 open connections (as tests/test_webperf.py builds it)."""
    get, ok = (
        b"GET /%d HTTP/1.1\r\nHost: example.test\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello",
    )
    t0 = 1_700_000_000.0
    a = Conv(cport=41000, t=t0)
    a.handshake()
    a.send(True, "PA", get % 1)
    a.send(False, "PA", ok, dt=0.01)
    a.send(True, "A")
    a.t = t0 + 5.0
    a.close()
    b = Conv(cport=41001, t=t0 + 1.0)
    b.handshake()
    b.send(True, "PA", get % 2)
    b.send(False, "PA", ok, dt=0.01)
    b.send(True, "A")
    b.close()
    res = pcapan.analyze(write(tmp_path / "reuse.pcap", [a, b]))
    assert len(res.missed_reuse) == 1
    _, t_ax = res.plot.reuse().axes
    marks = [pc for pc in t_ax.collections if pc.get_label() == "missed reuse"]
    assert len(marks) == 1 and len(marks[0].get_offsets()) == len(res.missed_reuse)
    x, y = marks[0].get_offsets()[0]
    assert x == pytest.approx(1.0) and y == 2
    line = t_ax.get_lines()[0]
    assert max(line.get_ydata()) == res.servers.max_open_connections.iloc[0] == 2


# -- pipelining ----------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["rtt-pipelined.pcap", "http-pipelined.pcap"])
def test_pipelining_depths_and_hol(name: str) -> None:
    """Three GETs in one segment: depths 1, 2, 3 (one request each); the 2nd and 3rd responses
    waited behind the previous one: two HOL bars of hol_wait_s."""
    res = pcapan.analyze(SAMPLES / name)
    d_ax, w_ax = res.plot.pipelining().axes
    bars = _bars(d_ax)["requests"]
    depth = res.http.pipeline_depth.value_counts().sort_index()
    assert [round(p.get_x() + p.get_width() / 2) for p in bars] == list(depth.index) == [1, 2, 3]
    assert [p.get_height() for p in bars] == list(depth) == [1, 1, 1]
    hol = _bars(w_ax)["HOL wait"]
    piped = res.http[res.http.pipelined.fillna(False).astype(bool)].sort_values("trans_depth")
    assert len(hol) == len(piped) == 2
    assert [p.get_width() for p in hol] == pytest.approx(list(piped.hol_wait_s * 1e3))
    assert w_ax.get_xlabel() == "head-of-line wait (ms)"


# -- tls -----------------------------------------------------------------------------------------
def test_tls_versions_ciphers_alpn_resumption() -> None:
    res = pcapan.analyze(
        [SAMPLES / "tls-versions.pcap", SAMPLES / "tls-alpn.pcap", SAMPLES / "tls-resume.pcap"]
    )
    t = res.tls
    fig = res.plot.tls()
    v_ax, a_ax, r_ax, c_ax = fig.axes
    vb = _bars(v_ax)["handshakes"]
    vc = t.version.value_counts().sort_index()
    assert [x.get_text() for x in v_ax.get_xticklabels()] == list(vc.index)
    assert [p.get_height() for p in vb] == list(vc)
    cb = _bars(c_ax)["handshakes"]
    ciphers = (
        t.dropna(subset=["cipher"])
        .groupby("cipher")
        .agg(n=("uid", "size"), cls=("cipher_strength_class", "first"))
    )
    assert len(cb) == len(ciphers)
    names = [x.get_text() for x in c_ax.get_yticklabels()]
    assert sorted(names) == sorted(ciphers.index)
    for name, p in zip(names, cb, strict=True):
        assert p.get_width() == ciphers.loc[name, "n"]
        want = strength_color(ciphers.loc[name, "cls"])[0]
        assert tuple(np.round(p.get_facecolor()[:3], 3)) == tuple(
            np.round(np.array([int(want[i : i + 2], 16) for i in (1, 3, 5)]) / 255, 3)
        )
    ab = _bars(a_ax)
    offered = t.alpn_offered.dropna().str.split(",").explode().value_counts()
    assert [p.get_height() for p in ab["offered"]] == [offered[k] for k in sorted(offered.index)]
    assert sum(p.get_height() for p in ab["selected"]) == t.next_protocol.notna().sum() == 2
    rb = _bars(r_ax)["handshakes"]
    modes = dict(
        zip(
            [x.get_text() for x in r_ax.get_xticklabels()],
            [p.get_height() for p in rb],
            strict=True,
        )
    )
    assert sum(modes.values()) == len(t)
    assert {
        k: modes[k] for k in ("session_id", "ticket", "psk")
    } == t.resumption.value_counts().to_dict()
    assert r_ax.get_xlabel() == "resumption mode" and c_ax.get_ylabel() == "cipher suite"


@needs_tshark
def test_tls_versions_match_tshark() -> None:
    """The version bars of tls-versions.pcap: tshark's ServerHello versions (supported_versions
    for TLS 1.3)."""
    path = SAMPLES / "tls-versions.pcap"
    res = pcapan.analyze(path)
    v_ax = res.plot.tls().axes[0]
    got = {
        x.get_text(): p.get_height()
        for x, p in zip(v_ax.get_xticklabels(), _bars(v_ax)["handshakes"], strict=True)
    }
    rows = _tshark(
        path,
        "tls.handshake.type==2",
        "tls.handshake.version",
        "tls.handshake.extensions.supported_version",
    )
    names = {"0x0303": "TLSv12", "0x0304": "TLSv13"}
    want: dict[str, int] = {}
    for r in rows:
        parts = r.split("\t")
        v = parts[1] if len(parts) > 1 and parts[1] else parts[0]
        want[names[v]] = want.get(names[v], 0) + 1
    assert got == want


def test_plots_of_empty_tables() -> None:
    """No TLS in an HTTP capture, no HTTP in a TLS capture: notes instead of errors."""
    http = pcapan.analyze(SAMPLES / "rtt-http.pcap")
    assert all(not _bars(ax) for ax in http.plot.tls().axes)
    tls = pcapan.analyze(SAMPLES / "rtt-tls.pcap")
    d_ax, w_ax = tls.plot.pipelining().axes
    assert not _bars(d_ax) and any("no HTTP requests" in t.get_text() for t in d_ax.texts)


# -- waterfall -----------------------------------------------------------------------------------
def test_waterfall_http(rtt_http: pcapan.api.Result) -> None:
    """rtt-http: 3 requests on 2 connections. One row per request; TCP bars on the first request
    of each connection (width initial_rtt_s); request/wait/download per request, wait = ttfb_s."""
    res = rtt_http
    (ax,) = res.plot.waterfall().axes
    bars = _bars(ax)
    h = res.http.sort_values(["ts", "trans_depth"])
    assert len(ax.get_yticklabels()) == len(h) == 3
    assert len(bars["TCP"]) == len(res.connections) == 2
    assert "TLS" not in bars
    for phase in ("request", "wait", "download"):
        assert len(bars[phase]) == len(h)
    assert [p.get_width() for p in bars["wait"]] == pytest.approx(list(h.ttfb_s * 1e3), abs=1e-6)
    assert sorted(p.get_width() for p in bars["TCP"]) == pytest.approx(
        sorted(res.connections.initial_rtt_s * 1e3)
    )
    dl = (h.ts_response_end - h.ts_response_start).dt.total_seconds() * 1e3
    assert [p.get_width() for p in bars["download"]] == pytest.approx(list(dl), abs=1e-6)
    assert [t.get_text() for t in ax.get_yticklabels()][0].startswith("GET ")
    assert ax.get_xlabel() == "time since the capture's start (ms)"


@needs_tshark
def test_waterfall_matches_tshark(rtt_http: pcapan.api.Result, rtt_tls: pcapan.api.Result) -> None:
    """Rows = tshark's HTTP requests; TCP bars = SYNs, each as wide as tshark's initial_rtt;
    TLS bars of rtt-tls = its ClientHellos."""
    (ax,) = rtt_http.plot.waterfall().axes
    bars = _bars(ax)
    assert len(ax.get_yticklabels()) == len(_tshark(SAMPLES / "rtt-http.pcap", "http.request"))
    syns = _tshark(SAMPLES / "rtt-http.pcap", "tcp.flags.syn==1 && tcp.flags.ack==0")
    assert len(bars["TCP"]) == len(syns)
    irtt = sorted(
        {
            round(float(v) * 1e3, 3)
            for v in _tshark(
                SAMPLES / "rtt-http.pcap", "tcp.analysis.initial_rtt", "tcp.analysis.initial_rtt"
            )
        }
    )
    assert sorted(round(p.get_width(), 3) for p in bars["TCP"]) == irtt
    (ax,) = rtt_tls.plot.waterfall().axes
    assert (
        len(_bars(ax)["TLS"])
        == len(_tshark(SAMPLES / "rtt-tls.pcap", "tls.handshake.type==1"))
        == 2
    )


def test_waterfall_https_limit_and_uid(rtt_tls: pcapan.api.Result) -> None:
    """HTTPS: one row per connection with TCP, TLS (handshake_s wide), wait (first request to
    first response) and download; limit=1 keeps the first connection; uid= picks one."""
    res = rtt_tls
    (ax,) = res.plot.waterfall().axes
    bars = _bars(ax)
    t = res.tls.sort_values("ts")
    assert [len(bars[p]) for p in ("TCP", "TLS", "wait", "download")] == [2, 2, 2, 2]
    assert [p.get_width() for p in bars["TLS"]] == pytest.approx(
        list(t.handshake_s * 1e3), abs=1e-6
    )
    assert [p.get_width() for p in bars["wait"]] == pytest.approx(
        list(res.connections.sort_values("ts").budget_ttfb_s * 1e3), abs=1e-6
    )
    (ax,) = res.plot.waterfall(limit=1).axes
    assert len(ax.get_yticklabels()) == 1 and len(_bars(ax)["TCP"]) == 1
    last = res.connections.sort_values("ts").uid.iloc[-1]
    (ax,) = res.plot.waterfall(uid=last).axes
    assert len(_bars(ax)["TLS"]) == 1 and "18482" in ax.get_yticklabels()[0].get_text()
    with pytest.raises(pcapan.errors.PcapanError):
        res.plot.waterfall(uid="Cnope")


# -- time-sequence and IO graphs -----------------------------------------------------------------
def _vlines(ax, label: str) -> list:  # noqa: ANN001
    return [c for c in ax.collections if isinstance(c, LineCollection) and c.get_label() == label]


@needs_tshark
@pytest.mark.parametrize("name", ["rtt-http.pcap", "lossy.pcap", "rtt-pipelined.pcap"])
def test_timeseq_counts_match_tshark(name: str) -> None:
    """For the connection with most payload: one vertical line per data segment of the server's
    direction (tshark: tcp.len>0 from the server port to the client port), one ACK-line point
    per client packet with the ACK flag; segments span exactly their payload."""
    path = SAMPLES / name
    res = pcapan.analyze(path)
    c = res.connections
    row = c.loc[(c.orig_bytes + c.resp_bytes).astype("int64").idxmax()]
    (ax,) = res.plot.timeseq(row.uid).axes
    (segs,) = _vlines(ax, "data segments")
    tcp_from_srv = f"tcp.srcport=={row.resp_p} && tcp.dstport=={row.orig_p}"
    data = _tshark(path, f"{tcp_from_srv} && tcp.len>0", "tcp.seq", "tcp.len")
    assert len(segs.get_segments()) == len(data)
    spans = sorted((int(s[0, 1]), int(s[1, 1])) for s in segs.get_segments())
    want = sorted((int(s), int(s) + int(n)) for s, n in (r.split("\t") for r in data))
    assert spans == want  # tshark's relative sequence numbers
    acks = _tshark(
        path, f"tcp.srcport=={row.orig_p} && tcp.dstport=={row.resp_p} && tcp.flags.ack==1"
    )
    assert len(_lines(ax)["ACK"].get_xdata()) == len(acks)
    assert ax.get_ylabel() == "relative sequence number (bytes)"


def test_timeseq_marks_lossy_edits() -> None:
    """lossy.pcap (samples/lossy.edits.json): one dropped segment (a gap of its length at its
    tshark relative seq), two swapped (one out-of-order segment), one duplicated (one
    retransmission)."""
    edits = json.loads((SAMPLES / "lossy.edits.json").read_text())
    res = pcapan.analyze(SAMPLES / "lossy.pcap")
    uid = res.connections.set_index("orig_p").loc[edits["connection"]["client_port"], "uid"]
    (ax,) = res.plot.timeseq(uid, direction="resp").axes
    marks = {
        pc.get_label(): len(pc.get_offsets())
        for pc in ax.collections
        if isinstance(pc, PathCollection)
    }
    assert marks == {"retransmission": 1, "out of order": 1}
    (gap,) = _vlines(ax, "gap (never captured)")
    (seg,) = gap.get_segments()
    lo = edits["dropped"]["tshark_rel_seq"]
    assert (int(seg[0, 1]), int(seg[1, 1])) == (lo, lo + edits["dropped"]["len"])
    # the duplicate is marked at the offset of the copy, the swap at the earlier segment
    ts = time_sequence(connection_packets(SAMPLES / "lossy.pcap", uid), "resp")
    assert int(ts.data_start[ts.retrans][0]) == edits["duplicated"]["tshark_rel_seq"]
    assert int(ts.data_start[ts.out_of_order][0]) == edits["swapped"][0]["tshark_rel_seq"]


def test_classify_segments_by_construction() -> None:
    s = np.array([1, 11, 31, 21, 21, 41])
    e = np.array([11, 21, 41, 31, 31, 51])  # 21..31 arrives late (out of order), then again
    r, o, holes = classify_segments(s, e, 1)
    assert list(r) == [False, False, False, False, True, False]
    assert list(o) == [False, False, False, True, False, False]
    assert holes == []
    r, o, holes = classify_segments(np.array([1, 21]), np.array([11, 31]), 1)
    assert not r.any() and not o.any() and holes == [(1, 11, 21)]


@needs_tshark
def test_io_graph_sums_to_tshark_bytes(rtt_http: pcapan.api.Result) -> None:
    """Per direction the bins add up (bytes/s x bin width) to tshark's sum of tcp.len; without a
    uid, one line for all TCP payload of the capture."""
    path = SAMPLES / "rtt-http.pcap"
    row = rtt_http.connections.iloc[0]
    (ax,) = rtt_http.plot.io(row.uid).axes
    width, series = io_series(path, row.uid, result=rtt_http)
    lines = _lines(ax)
    assert set(lines) == set(series) == {"orig \u2192 resp", "resp \u2192 orig"}
    for label, (sp, dp) in (
        ("orig \u2192 resp", (row.orig_p, row.resp_p)),
        ("resp \u2192 orig", (row.resp_p, row.orig_p)),
    ):
        want = sum(
            int(x) for x in _tshark(path, f"tcp.srcport=={sp} && tcp.dstport=={dp}", "tcp.len")
        )
        assert float(np.sum(lines[label].get_ydata()) * width) == pytest.approx(want)
    assert ax.get_ylabel() == "TCP payload (bytes/s)"
    (ax,) = rtt_http.plot.io().axes
    (line,) = ax.get_lines()
    total = sum(int(x) for x in _tshark(path, "tcp", "tcp.len"))
    width, _ = io_series(path)
    assert float(np.sum(line.get_ydata()) * width) == pytest.approx(total)


def test_packet_plots_without_result() -> None:
    """timeseq/io functions on their own: the capture is analysed to find the uid's 5-tuple."""
    from pcapan.plot import io_graph, timeseq

    res = pcapan.analyze(SAMPLES / "rtt-pipelined.pcap")
    uid = res.connections.uid.iloc[0]
    (ax,) = timeseq(SAMPLES / "rtt-pipelined.pcap", uid).axes
    assert _vlines(ax, "data segments")
    assert len(io_graph(SAMPLES / "rtt-pipelined.pcap", uid, bin_s=0.01).axes[0].get_lines()) == 2
    with pytest.raises(pcapan.errors.PcapanError):
        timeseq(SAMPLES / "rtt-pipelined.pcap", "Cnope")


# -- CLI -----------------------------------------------------------------------------------------
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("kind", KINDS)
def test_cli_writes_png(kind: str, tmp_path: Path) -> None:
    out = tmp_path / f"{kind}.png"
    assert main(["plot", str(SAMPLES / "rtt-http.pcap"), "--kind", kind, "-o", str(out)]) == 0
    data = out.read_bytes()
    assert data[:8] == PNG_MAGIC and data[12:16] == b"IHDR"
    w, h = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    assert w == 1000 and h > 100  # 10 in at 100 dpi


def test_cli_writes_svg_and_options(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import xml.etree.ElementTree as ET

    out = tmp_path / "wf.svg"
    assert (
        main(
            [
                "plot",
                str(SAMPLES / "rtt-tls.pcap"),
                "--kind",
                "waterfall",
                "--limit",
                "1",
                "-o",
                str(out),
            ]
        )
        == 0
    )
    root = ET.parse(out).getroot()
    assert root.tag == "{http://www.w3.org/2000/svg}svg"
    assert "<dc:date>" not in out.read_text()  # no creation date: same capture, same file
    res = pcapan.analyze(SAMPLES / "rtt-tls.pcap")
    uid = res.connections.uid.iloc[1]
    out2 = tmp_path / "ts.svg"
    assert (
        main(
            [
                "plot",
                str(SAMPLES / "rtt-tls.pcap"),
                "--kind",
                "timeseq",
                "--uid",
                uid,
                "--direction",
                "orig",
                "-o",
                str(out2),
            ]
        )
        == 0
    )
    assert ET.parse(out2).getroot().tag.endswith("svg")
    assert (
        main(
            [
                "plot",
                str(SAMPLES / "rtt-http.pcap"),
                "--kind",
                "rtt",
                "--by-server",
                "-o",
                str(tmp_path / "r.png"),
            ]
        )
        == 0
    )
    capsys.readouterr()
    assert (
        main(
            [
                "plot",
                str(SAMPLES / "rtt-http.pcap"),
                "--kind",
                "io",
                "--limit",
                "3",
                "-o",
                str(tmp_path / "x.png"),
            ]
        )
        == 2
    )
    assert "--limit does not apply" in capsys.readouterr().err
    assert (
        main(
            ["plot", str(SAMPLES / "rtt-http.pcap"), "--kind", "tls", "-o", str(tmp_path / "x.txt")]
        )
        == 2
    )
    assert main(["plot", "-", "--kind", "timeseq", "-o", str(tmp_path / "x.png")]) == 2
    assert not (tmp_path / "x.png").exists()


def test_frames_unchanged_by_plotting(rtt_http: pcapan.api.Result) -> None:
    before = rtt_http.connections.copy()
    for kind in ("rtt", "budget", "reuse", "pipelining", "tls", "waterfall"):
        rtt_http.plot(kind)
    pd.testing.assert_frame_equal(before, rtt_http.connections)
