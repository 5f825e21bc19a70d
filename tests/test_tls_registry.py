"""Registry tables: classifications checked against named members of the published lists."""

from __future__ import annotations

import subprocess
import sys

import pytest

from pcapan.proto import tls_registry as r


def S(name: str) -> r.CipherSuite:
    return r.CIPHER_BY_NAME[name]


def test_generated_module_is_current() -> None:
    # The committed tls_registry.py must be exactly what the generator makes from data/.
    rc = subprocess.run(
        [sys.executable, "-m", "pcapan.proto._gen_tls_registry", "--check"]
    ).returncode
    assert rc == 0, "run python -m pcapan.proto._gen_tls_registry"


def test_tls13_aes128() -> None:
    c = S("TLS_AES_128_GCM_SHA256")
    assert c.code == 0x1301 and c.strength_bits == 128 and c.strength_class == 128
    assert c.mozilla_level == "modern" and c.aead and c.forward_secrecy and c.tls13_only
    assert not c.h2_blocklisted and not c.insecure


def test_3des() -> None:
    c = S("TLS_RSA_WITH_3DES_EDE_CBC_SHA")
    assert c.code == 0x000A and c.insecure and c.strength_bits == 112 and c.strength_class == 112
    assert not c.forward_secrecy and c.h2_blocklisted and c.openssl_name == "DES-CBC3-SHA"
    assert c.mozilla_level == "old"  # the last entry of Mozilla's old list


@pytest.mark.parametrize(
    "name",
    [
        # Members of RFC 7540 Appendix A, picked from its start, middle and end.
        "TLS_NULL_WITH_NULL_NULL",
        "TLS_RSA_WITH_AES_128_CBC_SHA",
        "TLS_RSA_WITH_AES_128_GCM_SHA256",
        "TLS_DH_RSA_WITH_AES_256_GCM_SHA384",
        "TLS_PSK_WITH_AES_128_GCM_SHA256",
        "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256",
        "TLS_ECDH_ECDSA_WITH_AES_128_GCM_SHA256",
        "TLS_RSA_WITH_AES_128_CCM",
        "TLS_PSK_WITH_AES_256_CCM_8",
        "TLS_EMPTY_RENEGOTIATION_INFO_SCSV",
        "TLS_DH_anon_WITH_AES_128_GCM_SHA256",
        "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA",
    ],
)
def test_h2_blocklisted(name: str) -> None:
    assert S(name).h2_blocklisted


@pytest.mark.parametrize(
    "name",
    [
        # Not on the list: ephemeral key exchange with an AEAD cipher (RFC 7540 9.2.2), and TLS 1.3.
        "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
        "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
        "TLS_DHE_RSA_WITH_AES_128_GCM_SHA256",
        "TLS_DHE_RSA_WITH_AES_128_CCM",
        "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256",
        "TLS_DHE_PSK_WITH_AES_128_GCM_SHA256",
        "TLS_AES_256_GCM_SHA384",
    ],
)
def test_h2_allowed(name: str) -> None:
    assert not S(name).h2_blocklisted


def test_mozilla_levels() -> None:
    assert S("TLS_CHACHA20_POLY1305_SHA256").mozilla_level == "modern"
    assert S("TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256").mozilla_level == "intermediate"
    assert S("TLS_DHE_RSA_WITH_AES_256_GCM_SHA384").mozilla_level == "intermediate"
    assert S("TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA").mozilla_level == "old"
    assert S("TLS_RSA_WITH_AES_256_GCM_SHA384").mozilla_level == "old"
    assert S("TLS_AES_128_CCM_SHA256").mozilla_level == "none"
    assert S("TLS_RSA_WITH_CAMELLIA_128_CBC_SHA").mozilla_level == "none"
    levels = [c.mozilla_level for c in r.CIPHER_SUITES.values()]
    # Mozilla 5.7: 3 TLS 1.3 suites; 9 intermediate; old = those 9 + 17 more.
    assert (levels.count("modern"), levels.count("intermediate"), levels.count("old")) == (3, 9, 17)


@pytest.mark.parametrize(
    "name,bits,cls",
    [
        ("TLS_RSA_EXPORT_WITH_RC4_40_MD5", 40, 0),
        ("TLS_RSA_WITH_DES_CBC_SHA", 56, 0),
        ("TLS_RSA_WITH_RC4_128_SHA", 128, 128),
        ("TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384", 256, 256),
        ("TLS_RSA_WITH_NULL_SHA256", 0, 0),
    ],
)
def test_strength(name: str, bits: int, cls: int) -> None:
    assert (S(name).strength_bits, S(name).strength_class) == (bits, cls)


@pytest.mark.parametrize(
    "name",
    [
        "TLS_RSA_WITH_NULL_SHA",
        "TLS_RSA_EXPORT_WITH_DES40_CBC_SHA",
        "TLS_DH_anon_WITH_AES_128_CBC_SHA",
        "TLS_ECDHE_RSA_WITH_RC4_128_SHA",
        "TLS_RSA_WITH_DES_CBC_SHA",
        "TLS_KRB5_WITH_IDEA_CBC_MD5",
    ],
)
def test_insecure(name: str) -> None:
    assert S(name).insecure


def test_not_insecure() -> None:
    for name in (
        "TLS_RSA_WITH_AES_128_CBC_SHA",
        "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
        "TLS_EMPTY_RENEGOTIATION_INFO_SCSV",
    ):
        assert not S(name).insecure


def test_other_tables() -> None:
    for alpn in (
        "http/1.1",
        "spdy/1",
        "spdy/2",
        "spdy/3",
        "stun.turn",
        "stun.nat-discovery",
        "h2",
        "h2c",
        "webrtc",
        "c-webrtc",
        "ftp",
        "h3",
        "acme-tls/1",
        "dot",
    ):
        assert alpn in r.ALPN_PROTOCOLS
    assert r.NAMED_GROUPS[29] == "x25519" and r.NAMED_GROUPS[0x11EC] == "X25519MLKEM768"
    assert r.SIGNATURE_SCHEMES[0x0804] == "rsa_pss_rsae_sha256"
    assert (
        r.EXTENSION_TYPES[0] == "server_name"
        and r.EXTENSION_TYPES[65037] == "encrypted_client_hello"
    )
    assert r.EXTENSION_TYPES[65281] == "renegotiation_info"
    assert r.ALERT_DESCRIPTIONS[40] == "handshake_failure"
    assert r.version_name(0x0303) == "TLSv12" and r.version_name(0x7F17) == "TLSv13-draft23"


def test_grease() -> None:
    grease = [v for v in range(0x10000) if r.is_grease(v)]
    assert grease == [0x0A0A + 0x1010 * i for i in range(16)]
    assert r.cipher_name(0x2A2A) == "GREASE" and not r.is_grease(0x0A0B)
