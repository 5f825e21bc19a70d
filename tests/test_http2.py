"""Cleartext HTTP/2 (issue 13, 9d): the frame walker (pcapan.proto.http2) and its analysis.

Unit inputs are built frame by frame here (RFC 9113 4.1: 24-bit length, type, flags, 31-bit
stream id), so every expected count follows from how they are built. The sample
``samples/plain-h2c.pcap`` is real traffic (curl 7.88 with --http2-prior-knowledge to nginx 1.22
``listen ... http2``, and curl --http2 to hypercorn, which answers the h2c upgrade with 101);
its counts were read with tshark (see the test).
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

import pcapan
from pcapan.proto.detect import H2_PREFACE
from pcapan.proto.http2 import H2Anomaly, H2Connection

SAMPLES = Path(__file__).resolve().parent.parent / "samples"


def frame(ftype: int, sid: int, payload: bytes = b"", flags: int = 0) -> bytes:
    return (
        len(payload).to_bytes(3, "big") + bytes([ftype, flags]) + sid.to_bytes(4, "big") + payload
    )


SETTINGS = frame(4, 0, bytes(12))
SETTINGS_ACK = frame(4, 0, flags=1)
CLIENT = (
    H2_PREFACE
    + SETTINGS
    + frame(8, 0, b"\x00\x01\x00\x00")  # WINDOW_UPDATE
    + SETTINGS_ACK
    + frame(1, 1, b"h" * 30, flags=5)  # HEADERS, stream 1
    + frame(1, 3, b"h" * 20, flags=5)  # HEADERS, stream 3
    + frame(3, 1, b"\x00\x00\x00\x08")  # RST_STREAM on 1: not a new stream
)  # 6 frames, streams 1 and 3
SERVER = (
    SETTINGS
    + SETTINGS_ACK
    + frame(5, 1, b"\x00\x00\x00\x02" + b"p" * 10, flags=4)  # PUSH_PROMISE of stream 2, on 1
    + frame(1, 1, b"r" * 40, flags=4)
    + frame(0, 1, b"d" * 3000, flags=1)  # DATA, END_STREAM
    + frame(1, 2, b"r" * 10, flags=4)  # the pushed stream 2
    + frame(0, 3, b"x" * 100, flags=1)
)  # 7 frames, new stream 2 (1 and 3 already counted)


def run(
    client: bytes, server: bytes, cuts: tuple[int, int] | None = None
) -> tuple[int, int, int, list]:
    """Feed the client's bytes, then the server's, each whole, cut at ``cuts`` or byte by byte."""
    h2 = H2Connection()
    events: list[H2Anomaly] = []
    for is_client, data in ((True, client), (False, server)):
        if cuts == (-1, -1):
            parts = [data[i : i + 1] for i in range(len(data))]
        elif cuts is None:
            parts = [data]
        else:
            c = cuts[0] if is_client else cuts[1]
            parts = [data[:c], data[c:]]
        for p in parts:
            events += h2.data(is_client, p, 1)
        events += h2.end(is_client, 2)
    return h2.frames(True), h2.frames(False), h2.streams, events


def test_frames_and_streams_counted() -> None:
    assert run(CLIENT, SERVER) == (6, 7, 3, [])


def test_every_split_point_and_byte_by_byte() -> None:
    whole = run(CLIENT, SERVER)
    assert run(CLIENT, SERVER, (-1, -1)) == whole
    for i in range(1, max(len(CLIENT), len(SERVER))):
        assert run(CLIENT, SERVER, (min(i, len(CLIENT)), min(i, len(SERVER)))) == whole, i


def test_bad_preface_stops_the_direction() -> None:
    c, s, streams, ev = run(b"PRI * HTTP/2.0\r\n\r\nXX\r\n\r\n" + SETTINGS, SERVER)
    assert (c, s, streams) == (0, 7, 3)  # the server's frames still count (streams 1, 2, 3)
    assert [e.kind for e in ev] == ["http2_bad_preface"]


def test_first_frame_not_settings_is_an_anomaly_but_counted() -> None:
    c, s, _, ev = run(H2_PREFACE + frame(1, 1, b"h"), frame(8, 0, bytes(4)))
    assert (c, s) == (1, 1)
    assert [(e.kind, e.is_client) for e in ev] == [
        ("http2_no_settings_first", True),
        ("http2_no_settings_first", False),
    ]


def test_gap_inside_a_payload_keeps_sync_elsewhere_stops() -> None:
    h2 = H2Connection()
    data = frame(4, 0) + frame(0, 1, b"d" * 100) + frame(0, 1, b"e" * 10)
    assert h2.data(False, data[: 9 + 9 + 20], 1) == []
    assert h2.gap(False, 50, 2) == []  # 50 of the 80 bytes left in the DATA payload
    assert h2.data(False, data[9 + 9 + 70 :], 3) == []
    assert h2.frames(False) == 3
    assert [e.kind for e in h2.gap(False, 5, 4)] == ["http2_gap"]  # at a frame boundary
    assert h2.data(False, frame(0, 1, b"x"), 5) == [] and h2.frames(False) == 3


def test_end_inside_a_frame_is_truncated() -> None:
    h2 = H2Connection()
    h2.data(False, frame(4, 0) + frame(0, 1, b"d" * 10)[:12], 1)
    assert [e.kind for e in h2.end(False, 2)] == ["http2_truncated"]


def test_garbage_never_raises() -> None:
    import random

    rnd = random.Random(13)
    for _ in range(300):
        blob = bytes(rnd.randrange(256) for _ in range(rnd.randrange(1, 200)))
        h2 = H2Connection()
        for is_client in (True, False):
            h2.data(is_client, H2_PREFACE + blob if rnd.random() < 0.5 else blob, 1)
            h2.gap(is_client, rnd.randrange(1, 100), 2)
            h2.end(is_client, 3)


# --- the real capture -------------------------------------------------------------------------
# samples/plain-h2c.pcap, read with
#   tshark -r samples/plain-h2c.pcap -d tcp.port==18097,http2 -Y http2 \
#          -T fields -e tcp.stream -e tcp.srcport -e http2.type -e http2.streamid
# (tshark reads the h2c upgrade on 18098 by itself, from the 101; the -d is only for the
# prior-knowledge port it does not know):
#   connection 0 (prior knowledge, nginx :18097): 9 frames (client SETTINGS, WINDOW_UPDATE,
#     HEADERS 1, SETTINGS ACK; server SETTINGS, WINDOW_UPDATE, SETTINGS ACK, HEADERS 1, DATA 1),
#     streams {1};
#   connection 1 (h2c upgrade, hypercorn :18098): 13 frames, streams {1, 3} (stream 1 is the
#     upgraded GET /one, answered in h2; GET /two is stream 3).
# Total 22 frames, 3 streams; tshark shows one HTTP/1.1 request (GET /one, Upgrade: h2c) and its
# 101 on connection 1, nothing HTTP/1 on connection 0.
H2_SAMPLE_FRAMES = 22
H2_SAMPLE_STREAMS = 3


def test_sample_http2_recognised_and_counted() -> None:
    r = pcapan.analyze(SAMPLES / "plain-h2c.pcap")
    conns = r.connections.sort_values("resp_p")
    assert conns[["resp_p", "service"]].values.tolist() == [[18097, "http2"], [18098, "http,http2"]]
    s = r.summary()
    assert (s["http2_connections"], s["http2_frames"], s["http2_streams"]) == (
        2,
        H2_SAMPLE_FRAMES,
        H2_SAMPLE_STREAMS,
    )
    # No HTTP/1 PRI transaction and no anomaly: before issue 13 the preface was a "PRI" row
    # with bad_request_line / bad_status_line anomalies.
    assert r.http[["method", "uri", "status_code", "upgrade"]].values.tolist() == [
        ["GET", "/one", 101, "h2c"]
    ]
    assert len(r.anomalies) == 0


def test_sample_http2_counts_agree_with_tshark() -> None:
    if subprocess.run(["which", "tshark"], capture_output=True).returncode:
        pytest.skip("tshark not installed")
    out = subprocess.run(
        [
            "tshark",
            "-r",
            str(SAMPLES / "plain-h2c.pcap"),
            "-d",
            "tcp.port==18097,http2",
            "-o",
            "tcp.reassemble_out_of_order:TRUE",
            "-Y",
            "http2",
            "-T",
            "fields",
            "-e",
            "tcp.stream",
            "-e",
            "http2.streamid",
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout
    frames, streams = 0, set()
    for line in out.splitlines():
        conn, ids = line.split("\t")
        for sid in ids.split(","):
            frames += 1
            if sid != "0":
                streams.add((conn, sid))
    assert (frames, len(streams)) == (H2_SAMPLE_FRAMES, H2_SAMPLE_STREAMS)
