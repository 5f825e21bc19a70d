"""pcapan live --keylog (issue 17): the key log file is read again as it grows.

The tests without root replay a sample capture frame by frame the way a live
capture feeds the engine (each frame stamped with the wall clock when it is fed), writing the
key log lines at the moment the client would (after the ClientHello went out, before the
client's Finished). The live tests (root, nginx, curl, openssl: tests/test_live.py's server
fixture) run ``pcapan live --keylog FILE`` on lo while real clients append to FILE.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import pcapan
import pcapan.config
from pcapan.api import Analyzer
from pcapan.io import FrameBatch, open_capture

from .test_live import (  # the nginx fixture (TLS 1.2 and 1.3 on a free port) and helpers
    FILES,
    TLS_NAME,
    Servers,
    _start_cli,
    needs_capture,
    needs_tools,
    servers,  # noqa: F401 (a fixture)
)

D = Path(__file__).resolve().parent.parent / "samples" / "tls-keys"


def _frames_now(path: Path) -> Iterator[tuple[bytes, FrameBatch]]:
    """The capture's frames one per batch, each stamped with the wall clock as it is fed (a live
    capture's packets are stamped by the kernel just before the engine sees them), with the
    frame's bytes."""
    for b in open_capture(path):
        for i in range(len(b)):
            sl = slice(i, i + 1)
            raw = bytes(b.data[int(b.offset[i]) : int(b.offset[i]) + int(b.caplen[i])])
            yield (
                raw,
                FrameBatch(
                    b.data,
                    b.offset[sl],
                    b.caplen[sl],
                    b.wirelen[sl],
                    np.array([time.time_ns()], dtype=np.int64),
                    b.linktype[sl],
                    b.frame_no[sl],
                ),
            )


def _replay(keys_src: Path, pcap: Path, keylog: Path, write_after_hello: bool) -> pcapan.Result:
    """Feed ``pcap`` frame by frame to an analyzer following ``keylog`` (empty at the start);
    the lines of ``keys_src`` are appended right after the ClientHello's frame is fed
    (``write_after_hello``) or only after the last frame."""
    lines = keys_src.read_bytes()
    random = bytes.fromhex(lines.split()[1].decode())  # every line names the same ClientHello
    keylog.write_bytes(b"")
    an = Analyzer()
    an.use_keylog(keylog, follow=True)
    an.start_source("live")
    written = False
    for raw, fb in _frames_now(pcap):
        an.feed(fb)
        if write_after_hello and not written and random in raw:
            with keylog.open("ab") as f:
                f.write(lines)
            written = True
    if not written:
        with keylog.open("ab") as f:
            f.write(lines)
    assert not write_after_hello or written
    return an.finish()


def test_key_logged_after_the_client_hello_is_read_when_the_handshake_ends(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The client logs its secrets after the ClientHello (when it has the ServerHello), so the
    reading at the ClientHello may miss them; when the handshake is over and they are still
    missing, the file is read again if the last reading is older than the packet that ended the
    handshake (its client had logged them before sending it), whatever KEYLOG_REREAD_S says.
    It was once only read again after KEYLOG_REREAD_S: a handshake that took less (every one on
    loopback, most on a LAN) was declared keyless. KEYLOG_REREAD_S is made an hour here so that
    the throttle alone cannot read the file again. Expected rows: the requests the recording
    script checked with tshark (samples/README.md: tls13-aes128.pcap)."""
    monkeypatch.setattr(pcapan.config, "KEYLOG_REREAD_S", 3600.0)
    pcap = D / "tls13-aes128.pcap"
    res = _replay(D / "tls13-aes128.keys", pcap, tmp_path / "keys.log", write_after_hello=True)
    assert res.tls.decrypted.tolist() == [True]
    assert res.tls.decrypt_error.isna().all()
    assert res.http.sort_values("ts").uri.tolist() == ["/index.html", "/medium.bin", "/small.txt"]
    assert res.http.status_code.tolist() == [200] * 3 and res.http.tls.all()
    assert not len(res.anomalies)


def test_tls13_secrets_logged_in_steps_are_taken_once_all_are_there(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A TLS 1.3 client logs its handshake secrets when it has the ServerHello and its
    application traffic secrets when it has the server's Finished (OpenSSL writes them in that
    order), so a reading in between finds some of a connection's secrets. Those are not taken
    as all there is: records wait until both traffic secrets are logged (or the handshake is
    over). It once took the partial set: the handshake decrypted, then each direction stopped
    with missing_secret and no http rows. Here the file is read at every chance
    (KEYLOG_REREAD_S 0), the two handshake secrets are appended after the ClientHello's frame is
    fed, the rest after the ServerHello's (the TLS record 0x16 0x0303 with handshake type 2)."""
    monkeypatch.setattr(pcapan.config, "KEYLOG_REREAD_S", 0.0)
    pcap = D / "tls13-aes128.pcap"
    lines = (D / "tls13-aes128.keys").read_bytes().splitlines(keepends=True)
    first = b"".join(ln for ln in lines if b"HANDSHAKE" in ln)
    rest = b"".join(ln for ln in lines if b"HANDSHAKE" not in ln)
    assert first.count(b"\n") == 2 and rest.count(b"\n") == 3
    random = bytes.fromhex(lines[0].split()[1].decode())
    keylog = tmp_path / "keys.log"
    keylog.write_bytes(b"")
    an = Analyzer()
    an.use_keylog(keylog, follow=True)
    an.start_source("live")
    step = 0
    for raw, fb in _frames_now(pcap):
        an.feed(fb)
        at = raw.find(b"\x16\x03\x03")
        if step == 0 and random in raw:
            keylog.write_bytes(first)
            step = 1
        elif step == 1 and at >= 0 and raw[at + 5 : at + 6] == b"\x02":
            with keylog.open("ab") as f:
                f.write(rest)
            step = 2
    assert step == 2
    res = an.finish()
    assert res.tls.decrypted.tolist() == [True]
    assert res.tls.decrypt_error.isna().all(), res.tls.decrypt_error.tolist()
    assert res.http.sort_values("ts").uri.tolist() == ["/index.html", "/medium.bin", "/small.txt"]
    assert not len(res.anomalies)


def _tcp_src_port(raw: bytes) -> int | None:
    """The TCP source port of an Ethernet/IPv4 frame with payload (None without payload)."""
    ihl = (raw[14] & 0x0F) * 4
    tcp = 14 + ihl
    if len(raw) <= tcp + (raw[tcp + 12] >> 4) * 4:
        return None
    return int.from_bytes(raw[tcp : tcp + 2], "big")


def test_client_traffic_secret_logged_after_the_clients_finished(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """OpenSSL's client logs CLIENT_TRAFFIC_SECRET_0 just after it sent its Finished (it
    switches its write key once the Finished is written), so even a reading after that packet
    may lack it; in tls13-aes128.pcap the server's two NewSessionTickets come before the
    client's next packet (tshark: frames 9 and 10, then the request in 11). The records wait
    until the client sends more. They were once decrypted with what the log held when the
    handshake ended: the client direction stopped (missing_secret) and no http rows (seen once
    in about 100 connections of the live test below). Here every line but that one is appended
    after the ServerHello's frame is fed, that one after the client's Finished (its first
    frame with data after the ServerHello)."""
    monkeypatch.setattr(pcapan.config, "KEYLOG_REREAD_S", 3600.0)
    pcap = D / "tls13-aes128.pcap"
    lines = (D / "tls13-aes128.keys").read_bytes().splitlines(keepends=True)
    last = b"".join(ln for ln in lines if ln.startswith(b"CLIENT_TRAFFIC_SECRET_0 "))
    rest = b"".join(ln for ln in lines if not ln.startswith(b"CLIENT_TRAFFIC_SECRET_0 "))
    assert last.count(b"\n") == 1 and rest.count(b"\n") == 4
    keylog = tmp_path / "keys.log"
    keylog.write_bytes(b"")
    an = Analyzer()
    an.use_keylog(keylog, follow=True)
    an.start_source("live")
    step = 0
    for raw, fb in _frames_now(pcap):
        an.feed(fb)
        at = raw.find(b"\x16\x03\x03")
        if step == 0 and at >= 0 and raw[at + 5 : at + 6] == b"\x02":
            keylog.write_bytes(rest)
            step = 1
        elif step == 1 and _tcp_src_port(raw) not in (None, 19443):
            with keylog.open("ab") as f:
                f.write(last)
            step = 2
    assert step == 2
    res = an.finish()
    assert res.tls.decrypted.tolist() == [True]
    assert res.tls.decrypt_error.isna().all(), res.tls.decrypt_error.tolist()
    assert res.http.sort_values("ts").uri.tolist() == ["/index.html", "/medium.bin", "/small.txt"]
    assert not len(res.anomalies)


@pytest.mark.parametrize("frames", [None, 10])
def test_client_traffic_secret_never_logged(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, frames: int | None
) -> None:
    """The same, but CLIENT_TRAFFIC_SECRET_0 never comes: the records wait until the client
    sends more (its request), or, with the capture cut after the server's NewSessionTickets
    (its first 10 frames, tshark's listing), until the connection ends; then they are decrypted
    with what there is, exactly as a key log without that line gives from the start (file
    mode): the server's records decrypted, the client's stopped with missing_secret."""
    monkeypatch.setattr(pcapan.config, "KEYLOG_REREAD_S", 3600.0)
    pcap = D / "tls13-aes128.pcap"
    lines = (D / "tls13-aes128.keys").read_bytes().splitlines(keepends=True)
    partial = tmp_path / "partial.keys"
    partial.write_bytes(b"".join(ln for ln in lines if b"CLIENT_TRAFFIC_SECRET_0" not in ln))
    keylog = tmp_path / "keys.log"
    keylog.write_bytes(b"")
    followed = Analyzer()
    followed.use_keylog(keylog, follow=True)
    whole = Analyzer(keylog=str(partial))
    for an in (followed, whole):
        an.start_source("live")
    for n, (raw, fb) in enumerate(_frames_now(pcap)):
        if n == frames:
            break
        followed.feed(fb)
        whole.feed(fb)
        at = raw.find(b"\x16\x03\x03")
        if at >= 0 and raw[at + 5 : at + 6] == b"\x02":
            keylog.write_bytes(partial.read_bytes())
    a, b = followed.finish(), whole.finish()
    cols = ["decrypted", "decrypt_error", "decrypted_records", "ticket_issued", "alert"]
    pd.testing.assert_frame_equal(a.tls[cols], b.tls[cols])
    assert a.tls.decrypt_error.tolist() == ["missing_secret"]
    assert a.tls.decrypted_records.iloc[0] > 0 and a.tls.ticket_issued.iloc[0]
    assert a.anomalies.name.tolist() == b.anomalies.name.tolist() == ["tls_decrypt_missing_secret"]
    assert len(a.http) == len(b.http)


def test_key_logged_after_the_handshake_is_not_used(tmp_path: Path) -> None:
    """README, *Decryption with a key log*: records wait for a key until the handshake is over;
    a connection whose key is logged after that is not decrypted (no_key, one anomaly, no http
    rows) even though the key arrives before the capture ends."""
    pcap = D / "tls13-aes128.pcap"
    res = _replay(D / "tls13-aes128.keys", pcap, tmp_path / "keys.log", write_after_hello=False)
    assert res.tls.decrypted.tolist() == [False]
    assert res.tls.decrypt_error.tolist() == ["no_key"]
    assert len(res.http) == 0
    assert res.anomalies.name.tolist() == ["tls_decrypt_no_key"]


# --- a real live capture ---------------------------------------------------------------------
def _curl_keyed(keys: Path, port: int, names: list[str], *opts: str) -> tuple[int, list[str]]:
    """One curl process (one connection: curl reuses it for every URL) with SSLKEYLOGFILE=keys;
    returns its local port and, per URL, "status num_connects" from curl's own -w output."""
    cmd = ["curl", "-sS", "-k", "--max-time", "10", "--http1.1", *opts]
    cmd += ["--resolve", f"{TLS_NAME}:{port}:127.0.0.1"]
    cmd += ["-w", "%{local_port} %{http_code} %{num_connects}\\n"]
    for n in names:
        cmd += ["-o", os.devnull, f"https://{TLS_NAME}:{port}/{n}"]
    env = dict(os.environ, SSLKEYLOGFILE=str(keys))
    out = subprocess.run(cmd, capture_output=True, text=True, check=True, env=env).stdout
    lines = [ln.split(" ", 1) for ln in out.splitlines()]
    assert len({lp for lp, _ in lines}) == 1  # one connection
    return int(lines[0][0]), [rest for _, rest in lines]


def _s_client(keys: Path, port: int, name: str) -> str:
    """openssl s_client -keylogfile: one TLS 1.3 connection, GET /name, Connection: close."""
    req = f"GET /{name} HTTP/1.1\r\nHost: {TLS_NAME}\r\nConnection: close\r\n\r\n"
    cmd = ["openssl", "s_client", "-connect", f"127.0.0.1:{port}", "-servername", TLS_NAME]
    cmd += ["-tls1_3", "-keylogfile", str(keys), "-ign_eof"]
    r = subprocess.run(cmd, input=req.encode(), capture_output=True, timeout=20, check=False)
    return r.stdout.decode("latin-1")


def _randoms(keys: Path) -> set[str]:
    return {ln.split()[1] for ln in keys.read_text().splitlines() if ln and ln[0] != "#"}


@needs_capture
@needs_tools
def test_live_keylog_decrypts_connections_whose_keys_are_logged_during_the_capture(
    servers: Servers,  # noqa: F811 (the fixture imported above)
    tmp_path: Path,
) -> None:
    """pcapan live --keylog FILE on lo while real clients write FILE: it is empty when the
    capture starts, so every key is read from lines appended during the capture.

    - curl TLS 1.3, one connection: GET a.txt, b.txt; curl TLS 1.2: GET c.txt; openssl
      s_client -keylogfile TLS 1.3: GET a.txt; all logging to FILE;
    - curl TLS 1.3 GET b.txt logging to another file, appended to FILE only 3 s after curl
      ended (its handshake long fed to the engine: batches are fed at least every
      LIVE_FEED_INTERVAL_S): README, *Decryption with a key log*: not decrypted, no_key;
    - curl TLS 1.3 GET c.txt logging to FILE again: decrypted (reading goes on).

    Expected rows come from the clients: curl's -w output (status 200, one connection per curl
    process, its local port) and s_client's output (HTTP/1.1 200 OK); bodies are the served
    files' sizes (test_live.FILES). tshark, given the final key log, decrypts all six requests
    from the capture pcapan wrote, so the late key was a right key logged too late."""
    s = servers
    keys, late = tmp_path / "keys.log", tmp_path / "late.log"
    keys.write_text("")
    pcap, out = tmp_path / "live.pcapng", tmp_path / "out"
    proc = _start_cli(
        ["-i", "lo", "--filter", f"tcp port {s.https}", "--keylog", str(keys)]
        + ["--write", str(pcap), "-o", str(out), "--format", "jsonl"]
    )
    try:
        port_a, got_a = _curl_keyed(keys, s.https, ["a.txt", "b.txt"], "--tlsv1.3")
        port_b, got_b = _curl_keyed(keys, s.https, ["c.txt"], "--tls-max", "1.2")
        assert got_a == ["200 1", "200 0"] and got_b == ["200 1"]
        assert "HTTP/1.1 200 OK" in _s_client(keys, s.https, "a.txt")
        port_c, got_c = _curl_keyed(late, s.https, ["b.txt"], "--tlsv1.3")
        assert got_c == ["200 1"]
        time.sleep(3.0)
        with keys.open("a") as f:
            f.write(late.read_text())
        port_d, got_d = _curl_keyed(keys, s.https, ["c.txt"], "--tlsv1.3")
        assert got_d == ["200 1"]
        time.sleep(0.5)  # the last FIN/ACKs reach the socket
    finally:
        proc.send_signal(signal.SIGTERM)
        _out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert "Traceback" not in err
    assert len(_randoms(keys)) == 5  # five ClientHellos logged, all during the capture

    http = pd.read_json(out / "http.jsonl", lines=True).sort_values("ts")
    tls = pd.read_json(out / "tls.jsonl", lines=True).set_index("orig_p")
    anomalies = pd.read_json(out / "anomalies.jsonl", lines=True)
    assert len(tls) == 5
    keyed = [p for p in tls.index if p != port_c]
    assert tls.loc[keyed].decrypted.all() and tls.loc[keyed].decrypt_error.isna().all()
    assert not tls.loc[port_c].decrypted and tls.loc[port_c].decrypt_error == "no_key"
    assert anomalies.name.tolist() == ["tls_decrypt_no_key"]
    assert anomalies.uid.tolist() == [tls.loc[port_c].uid]
    assert tls.loc[[port_a, port_d]].version.tolist() == ["TLSv13", "TLSv13"]
    assert tls.loc[port_b].version == "TLSv12"
    # the http rows: every request the clients made on keyed connections, in order (s_client's
    # connection: the one port that is none of curl's)
    port_s = next(p for p in keyed if p not in (port_a, port_b, port_d))
    want = [(port_a, "a.txt"), (port_a, "b.txt"), (port_b, "c.txt"), (port_s, "a.txt")]
    want.append((port_d, "c.txt"))
    assert list(zip(http.orig_p, http.uri, strict=True)) == [(p, f"/{n}") for p, n in want]
    assert http.method.tolist() == ["GET"] * 5 and http.status_code.tolist() == [200] * 5
    assert http.response_body_len.tolist() == [FILES[n] for _, n in want]
    assert http.trans_depth.tolist() == [1, 2, 1, 1, 1] and http.tls.all()
    # (curl's Host header names the port, s_client's request above does not)
    hosts = [TLS_NAME if p == port_s else f"{TLS_NAME}:{s.https}" for p, _ in want]
    assert http.host.tolist() == hosts

    # tshark reads the written capture with the final key log: six requests, the late one too
    if shutil.which("tshark"):
        cmd = ["tshark", "-r", str(pcap), "-o", f"tls.keylog_file:{keys}"]
        cmd += ["-d", f"tcp.port=={s.https},tls", "-Y", "http.request", "-T", "fields"]
        cmd += ["-e", "tcp.srcport", "-e", "http.request.uri"]
        rows = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout.split("\n")
        reqs = [tuple(r.split("\t")) for r in rows if r]
        assert len(reqs) == 6 and (str(port_c), "/b.txt") in reqs
        theirs = [r for r in reqs if r[0] != str(port_c)]
        assert [u for _, u in theirs] == http.uri.tolist()
        assert [int(p) for p, _ in theirs] == http.orig_p.tolist()


@needs_capture
@needs_tools
def test_live_keylog_back_to_back_connections_all_decrypted(
    servers: Servers,  # noqa: F811 (the fixture imported above)
    tmp_path: Path,
) -> None:
    """20 curl processes one after the other (TLS 1.2 and 1.3 alternating, GET a.txt each),
    logging to the followed key log, while pcapan live feeds the engine every 50 ms
    (--interval 0.05): a ClientHello is often fed before its client logged the secrets, and
    the rest of the handshake within KEYLOG_REREAD_S. Every connection must be decrypted with
    all its secrets (no decrypt_error): the rows are curl's 20 requests (its -w output: 200,
    a new connection each, local port). Before the file was read again at the handshake's end,
    7 to 9 of the 20 were reported no_key here (and a TLS 1.3 one now and then decrypted only
    its handshake: missing_secret, from secrets read half-written)."""
    s = servers
    keys = tmp_path / "keys.log"
    keys.write_text("")
    out = tmp_path / "out"
    proc = _start_cli(
        ["-i", "lo", "--filter", f"tcp port {s.https}", "--keylog", str(keys)]
        + ["-o", str(out), "--format", "jsonl", "--interval", "0.05"]
    )
    ports: list[tuple[int, str]] = []
    try:
        for i in range(20):
            version = "TLSv13" if i % 2 else "TLSv12"
            opts = ("--tlsv1.3",) if i % 2 else ("--tls-max", "1.2")
            port, got = _curl_keyed(keys, s.https, ["a.txt"], *opts)
            assert got == ["200 1"]
            ports.append((port, version))
        time.sleep(0.5)  # the last FIN/ACKs reach the socket
    finally:
        proc.send_signal(signal.SIGTERM)
        _out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    tls = pd.read_json(out / "tls.jsonl", lines=True).sort_values("ts")
    http = pd.read_json(out / "http.jsonl", lines=True).sort_values("ts")
    assert list(zip(tls.orig_p, tls.version, strict=True)) == ports
    assert tls.decrypted.all(), tls.decrypt_error.value_counts().to_dict()
    assert tls.decrypt_error.isna().all(), tls.decrypt_error.value_counts().to_dict()
    assert http.orig_p.tolist() == [p for p, _ in ports]
    assert http.uri.tolist() == ["/a.txt"] * 20 and http.status_code.tolist() == [200] * 20
    assert http.response_body_len.tolist() == [FILES["a.txt"]] * 20 and http.tls.all()
    assert (out / "anomalies.jsonl").read_text().strip() == ""  # no anomaly rows at all
