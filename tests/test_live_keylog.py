"""pcapan live --keylog (issue 17): the key log file is read again as it grows.

The tests without root replay a sample capture frame by frame the way a live
capture feeds the engine (each frame stamped with the wall clock when it is fed), writing the
key log lines at the moment the client would (after the ClientHello went out, before the
client's Finished).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

import pcapan
import pcapan.config
from pcapan.api import Analyzer
from pcapan.io import FrameBatch, open_capture

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
