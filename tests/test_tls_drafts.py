"""TLS 1.3 drafts (issue 13): named in the tls table and their handshakes read as TLS 1.3.

The handshakes are the real TLS 1.3 connection of samples/tls-versions.pcap with its hellos
byte-edited for each draft (see tests/tls_drafts.py for exactly how): drafts 22-28 and
Facebook's 0xfb17/0xfb1a keep RFC 8446's layout with the version in supported_versions;
drafts 14-21 put it in ServerHello.server_version and have no session id echo, no compression
method, key_share as extension 40 and no ChangeCipherSpec. Each edited capture is first read
back with tshark, which must see the version, the suite (0x1302, TLS_AES_256_GCM_SHA384, what
s_server chose in the original) and the key share group (29, x25519); pcapan must then give
the row the original TLS 1.3 connection has (tls-versions.pcap's tls13.pcapan.test row:
cipher TLS_AES_256_GCM_SHA384, curve x25519, established, 1 handshake RTT), under the draft's
name. Before the fix, drafts 14-21 lost the ServerHello (tls_bad_handshake, no_server_hello).
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

import pcapan
from pcapan.proto.tls_registry import version_name
from tests.tls_drafts import draft_capture
from tests.tls_streams import TSHARK

DRAFTS = [(0x7F00 + n, f"TLSv13-draft{n}", n) for n in range(14, 29)]
FIZZ = [(0xFB17, "TLSv13-fb-draft23", 23), (0xFB1A, "TLSv13-fb-draft26", 26)]


@pytest.mark.parametrize(("version", "name", "draft"), DRAFTS + FIZZ, ids=lambda v: f"{v}")
def test_draft_handshake_read_as_tls13(tmp_path: Path, version: int, name: str, draft: int) -> None:
    old = version < 0x7F16  # drafts 14-21
    path = draft_capture(tmp_path / "d.pcap", version, old_format=old)
    if TSHARK:
        sh = subprocess.run(
            [
                TSHARK,
                "-r",
                str(path),
                "-Y",
                "tls.handshake.type==2",
                "-T",
                "fields",
                "-e",
                "tls.handshake.version",
                "-e",
                "tls.handshake.extensions.supported_version",
                "-e",
                "tls.handshake.ciphersuite",
                "-e",
                "tls.handshake.extensions_key_share_group",
            ],
            capture_output=True,
            text=True,
            check=True,
            timeout=60,
        ).stdout.split("\t")
        want_legacy, want_sv = (f"0x{version:04x}", "") if old else ("0x0303", f"0x{version:04x}")
        assert [x.strip() for x in sh] == [want_legacy, want_sv, "0x1302", "29"]
    r = pcapan.analyze(path)
    assert len(r.tls) == 1
    row = r.tls.iloc[0]
    assert (row.version, row.cipher, row.curve, bool(row.established), row.handshake_rtts) == (
        name,
        "TLS_AES_256_GCM_SHA384",
        "x25519",
        True,
        1,
    )
    assert row.client_versions == f"{name},TLSv12,TLSv11,TLSv10"
    assert row.key_share_groups == "x25519" and row.server_name == "tls13.pcapan.test"
    assert r.tls.next_protocol.isna().all()  # in TLS 1.3 the selected ALPN is encrypted
    assert r.anomalies.empty


def test_names_follow_wiresharks_draft_numbers(tmp_path: Path) -> None:
    """Wireshark's ssl_versions names 0x7f0e..0x7f1c "TLS 1.3 (draft 14)".."(draft 28)" and
    0xfb17/0xfb1a "TLS 1.3 (Facebook draft 23/26)" (epan/dissectors/packet-tls-utils.c); the
    table spells the same number in Zeek's style (ssl.log: TLSv13-draft23)."""
    for version, name, draft in DRAFTS + FIZZ:
        assert version_name(version) == name and name.endswith(f"draft{draft}")
    if not TSHARK:
        pytest.skip("tshark not installed")
    for version, label in ((0x7F12, "TLS 1.3 (draft 18)"), (0xFB1A, "TLS 1.3 (Facebook draft 26)")):
        path = draft_capture(tmp_path / f"{version:x}.pcap", version, old_format=version < 0x7F16)
        text = subprocess.run(
            [TSHARK, "-r", str(path), "-V", "-Y", "tls.handshake.type==2"],
            capture_output=True,
            text=True,
            check=True,
            timeout=60,
        ).stdout
        assert f"{label} (0x{version:04x})" in text
