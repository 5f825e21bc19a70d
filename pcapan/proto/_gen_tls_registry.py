"""Generate ``pcapan/proto/tls_registry.py`` from the registry files in ``pcapan/proto/data/``.

Run ``python -m pcapan.proto._gen_tls_registry`` after updating a file under ``data/``; the output
is committed, so importing the registry never parses CSV. A test checks that the committed module
is what this script produces.

Where each input comes from (this machine had no general internet; each file says in the
registry module docstring where it was taken from):

- ``tls-parameters-4.csv`` IANA TLS Cipher Suites (Value, Description, Recommended columns; the
  unassigned, reserved and GREASE rows left out: GREASE is recognised by rule, RFC 8701).
- ``tls-parameters-8.csv`` IANA TLS Supported Groups; ``tls-signaturescheme.csv`` IANA
  TLS SignatureScheme; ``tls-parameters-6.csv`` IANA TLS Alerts;
  ``tls-extensiontype-values-1.csv`` IANA TLS ExtensionType Values;
  ``alpn-protocol-ids.csv`` IANA TLS ALPN Protocol IDs.
- ``openssl-ciphers-V.txt``: ``openssl ciphers -V 'ALL:COMPLEMENTOFALL:@SECLEVEL=0'`` (OpenSSL
  3.0.19) for the OpenSSL names of the suites.
- ``mozilla-server-side-tls.json``: the cipher lists of Mozilla's server-side TLS guidelines 5.7.

Everything else (key exchange, authentication, cipher, key bits, mode, MAC, the HTTP/2 block
list, insecure) is derived from the IANA suite name by the rules below, so a new suite in the
CSV is classified without hand edits.
"""

from __future__ import annotations

import csv
import json
import re
import sys
from pathlib import Path

DATA = Path(__file__).with_name("data")
OUT = Path(__file__).with_name("tls_registry.py")

# (kx, auth) for the part of a suite name between "TLS_" and "_WITH_".
_KX_AUTH: dict[str, tuple[str, str]] = {
    "NULL": ("NULL", "NULL"),
    "RSA": ("RSA", "RSA"),
    "DH_DSS": ("DH", "DSS"),
    "DH_RSA": ("DH", "RSA"),
    "DHE_DSS": ("DHE", "DSS"),
    "DHE_RSA": ("DHE", "RSA"),
    "DH_anon": ("DH", "anon"),
    "ECDH_ECDSA": ("ECDH", "ECDSA"),
    "ECDHE_ECDSA": ("ECDHE", "ECDSA"),
    "ECDH_RSA": ("ECDH", "RSA"),
    "ECDHE_RSA": ("ECDHE", "RSA"),
    "ECDH_anon": ("ECDH", "anon"),
    "KRB5": ("KRB5", "KRB5"),
    "PSK": ("PSK", "PSK"),
    "DHE_PSK": ("DHE", "PSK"),
    "PSK_DHE": ("DHE", "PSK"),  # RFC 6655 spells two suites this way round
    "RSA_PSK": ("RSA", "PSK"),
    "ECDHE_PSK": ("ECDHE", "PSK"),
    "SRP_SHA": ("SRP", "SRP"),
    "SRP_SHA_RSA": ("SRP", "RSA"),
    "SRP_SHA_DSS": ("SRP", "DSS"),
    "ECCPWD": ("ECCPWD", "ECCPWD"),
    "GOSTR341112_256": ("GOST", "GOST"),
}

# Suites that only exist in TLS 1.3 although some have a "_WITH_" name (RFC 9367 GOST suites).
_TLS13_ONLY = {0x00C6, 0x00C7, 0xC0B4, 0xC0B5, 0xC103, 0xC104, 0xC105, 0xC106} | set(
    range(0x1301, 0x1308)
)

# Ephemeral key exchanges: the session keys do not follow from a long-term key (forward secrecy).
# ECCPWD (RFC 8492) derives keys from ephemeral values too.
_FS_KX = {"DHE", "ECDHE", "ECCPWD", "any"}

_AEAD_MODES = {"GCM", "CCM", "CCM_8", "POLY1305", "MGM", "AEGIS"}

# cipher spec (regex over the words between "_WITH_" and the MAC) -> (cipher, key bits, mode)
_CIPHERS: list[tuple[str, str, int, str]] = [
    (r"NULL", "NULL", 0, ""),
    (r"RC4_(40|128)", "RC4", -1, "stream"),
    (r"RC2_CBC_40", "RC2", 40, "CBC"),
    (r"DES40_CBC|DES_CBC_40", "DES", 40, "CBC"),
    (r"DES_CBC", "DES", 56, "CBC"),
    (r"3DES_EDE_CBC", "3DES", 168, "CBC"),
    (r"IDEA_CBC", "IDEA", 128, "CBC"),
    (r"SEED_CBC", "SEED", 128, "CBC"),
    (r"(AES|CAMELLIA|ARIA)_(128|256)_(CBC|GCM|CCM_8|CCM)", "", -1, ""),
    (r"CHACHA20_POLY1305", "CHACHA20", 256, "POLY1305"),
    (r"SM4_(GCM|CCM)", "SM4", 128, ""),
    (r"AEGIS_256", "AEGIS-256", 256, "AEGIS"),
    (r"AEGIS_128L", "AEGIS-128L", 128, "AEGIS"),
    (r"KUZNYECHIK_(CTR|MGM)", "KUZNYECHIK", 256, ""),
    (r"MAGMA_(CTR|MGM)", "MAGMA", 256, ""),
    (r"28147_CNT", "GOST28147", 256, "CNT"),
]

_MACS = {
    "SHA": "SHA1",
    "SHA256": "SHA256",
    "SHA384": "SHA384",
    "MD5": "MD5",
    "NULL": "NULL",
    "SM3": "SM3",
    "OMAC": "OMAC",
    "IMIT": "IMIT",
    "L": "",
    "S": "",
}

# Security levels (bits) a suite can be classed in; below 64 is class 0 (broken).
STRENGTH_LEVELS = (64, 80, 96, 112, 128, 256)


def _parse_cipher(spec: str) -> tuple[str, int, str, str]:
    """``AES_128_GCM_SHA256`` -> (cipher, key bits, mode, mac)."""
    for pattern, cipher, bits, mode in _CIPHERS:
        m = re.match(pattern + r"(?:_|$)", spec)
        if not m:
            continue
        rest = spec[m.end() :]
        if pattern.startswith("(AES"):
            cipher, bits, mode = m.group(1), int(m.group(2)), m.group(3)
        elif cipher == "RC4":
            bits = int(m.group(1))
        elif cipher == "SM4" or cipher in ("KUZNYECHIK", "MAGMA"):
            mode = m.group(1)
        mac = _MACS.get(rest, rest) if rest else ""
        if mode in _AEAD_MODES:
            mac = "AEAD"
        elif cipher == "GOST28147":
            mac = "IMIT"
        return cipher, bits, mode, mac
    raise ValueError(f"unknown cipher spec {spec!r}")


def _security_bits(cipher: str, key_bits: int) -> int:
    # 3DES: 168-bit key, 112-bit security (meet-in-the-middle); everything else as its key.
    return 112 if cipher == "3DES" else key_bits


def strength_class(bits: int) -> int:
    return max((lvl for lvl in STRENGTH_LEVELS if lvl <= bits), default=0)


# OpenSSL names of suites that OpenSSL 3 no longer builds (so ``openssl ciphers`` cannot list
# them), from OpenSSL 1.0.2's ssl/s3_lib.c; needed for Mozilla's "old" list (DES-CBC3-SHA) and
# for reading older captures.
_OPENSSL_LEGACY_NAMES = {
    0x0003: "EXP-RC4-MD5",
    0x0004: "RC4-MD5",
    0x0005: "RC4-SHA",
    0x0007: "IDEA-CBC-SHA",
    0x0008: "EXP-DES-CBC-SHA",
    0x0009: "DES-CBC-SHA",
    0x000A: "DES-CBC3-SHA",
    0x0013: "EDH-DSS-DES-CBC3-SHA",
    0x0015: "EDH-RSA-DES-CBC-SHA",
    0x0016: "EDH-RSA-DES-CBC3-SHA",
    0xC007: "ECDHE-ECDSA-RC4-SHA",
    0xC008: "ECDHE-ECDSA-DES-CBC3-SHA",
    0xC011: "ECDHE-RSA-RC4-SHA",
    0xC012: "ECDHE-RSA-DES-CBC3-SHA",
}


def _openssl_names() -> dict[int, str]:
    out: dict[int, str] = dict(_OPENSSL_LEGACY_NAMES)
    for line in (DATA / "openssl-ciphers-V.txt").read_text().splitlines():
        m = re.match(r"\s*0x([0-9A-F]{2}),0x([0-9A-F]{2}) - (\S+)", line)
        if m:
            out[int(m.group(1) + m.group(2), 16)] = m.group(3)
    return out


def cipher_rows() -> list[tuple]:
    ossl = _openssl_names()
    moz = json.loads((DATA / "mozilla-server-side-tls.json").read_text())
    rows = []
    with open(DATA / "tls-parameters-4.csv", newline="") as f:
        for rec in csv.DictReader(f):
            hi, lo = rec["Value"].split(",")
            code = int(hi, 16) << 8 | int(lo, 16)
            name = rec["Description"]
            recommended = rec["Recommended"] == "Y"
            body = name[4:]  # drop "TLS_"
            export = False
            scsv = name.endswith("_SCSV")
            tls13 = code in _TLS13_ONLY
            if scsv:
                kx = auth = cipher = mode = mac = ""
                bits = 0
            elif "_WITH_" in body:
                kxa, spec = body.split("_WITH_", 1)
                if "_EXPORT" in kxa:
                    export = True
                    kxa = kxa.replace("_EXPORT", "")
                kx, auth = _KX_AUTH[kxa]
                cipher, bits, mode, mac = _parse_cipher(spec)
                if tls13:
                    kx = auth = "any"
            else:  # TLS 1.3 style: cipher and HKDF hash only
                kx = auth = "any"
                if body in ("SHA256_SHA256", "SHA384_SHA384"):  # RFC 9150 integrity-only
                    cipher, bits, mode, mac = "NULL", 0, "", "HMAC-" + body.split("_")[0]
                else:
                    cipher, bits, mode, mac = _parse_cipher(body)
            aead = mac == "AEAD"
            fs = kx in _FS_KX
            sec = _security_bits(cipher, bits)
            if export:
                sec = min(sec, 40 if cipher != "DES" or bits <= 40 else 56)
            h2_block = not tls13 and not (kx in ("DHE", "ECDHE") and aead)
            insecure = (not scsv) and (
                cipher in ("NULL", "RC4", "DES", "3DES", "RC2")
                or export
                or auth == "anon"
                or mac == "MD5"
            )
            ossl_name = ossl.get(code, name if tls13 else "")
            if name in moz["modern"]:
                level = "modern"
            elif ossl_name and ossl_name in moz["intermediate"]:
                level = "intermediate"
            elif ossl_name and ossl_name in moz["old"]:
                level = "old"
            else:
                level = "none"
            rows.append(
                (
                    code,
                    name,
                    ossl_name,
                    kx,
                    auth,
                    cipher,
                    bits,
                    mode,
                    mac,
                    aead,
                    fs,
                    tls13,
                    sec,
                    strength_class(sec),
                    h2_block,
                    level,
                    insecure,
                    export,
                    scsv,
                    recommended,
                )
            )
    return rows


def _simple(fname: str, key: str, val: str, base: int = 0) -> list[tuple[int, str]]:
    out = []
    with open(DATA / fname, newline="") as f:
        for rec in csv.DictReader(f):
            out.append((int(rec[key], base), rec[val]))
    return out


# Common extension code points outside the IANA registry (seen in real ClientHellos).
_UNREGISTERED_EXTENSIONS = [
    (13172, "next_protocol_negotiation"),  # NPN, draft-agl-tls-nextprotoneg
    (17513, "application_settings_old"),  # ALPS (Chrome), draft-vvv-tls-alps
    (17613, "application_settings"),  # ALPS new code point (Chrome 133+)
    (30032, "channel_id"),  # draft-balfanz-tls-channelid
]


def _legacy_sigalgs() -> list[tuple[int, str]]:
    # TLS 1.2 (hash, signature) pairs (RFC 5246 7.4.1.4.1) that the TLS 1.3 registry keeps only
    # as "reserved for backward compatibility"; named so that a 1.2 ClientHello reads well.
    hashes = {1: "md5", 2: "sha1", 3: "sha224", 4: "sha256", 5: "sha384", 6: "sha512"}
    sigs = {1: "rsa_pkcs1", 2: "dsa", 3: "ecdsa"}
    return [((h << 8) | s, f"{sn}_{hn}") for h, hn in hashes.items() for s, sn in sigs.items()]


def render() -> str:
    ciphers = cipher_rows()
    groups = _simple("tls-parameters-8.csv", "Value", "Description")
    sigs = dict(_legacy_sigalgs())
    sigs.update(_simple("tls-signaturescheme.csv", "Value", "Description", 16))
    exts = dict(_UNREGISTERED_EXTENSIONS)
    exts.update(_simple("tls-extensiontype-values-1.csv", "Value", "Extension Name"))
    alerts = _simple("tls-parameters-6.csv", "Value", "Description")
    alpn = []
    with open(DATA / "alpn-protocol-ids.csv", newline="") as f:
        for rec in csv.DictReader(f):
            alpn.append((rec["Identification Sequence"], rec["Protocol"]))

    lines = [TEMPLATE_HEAD]
    lines.append(
        "# code, IANA name, OpenSSL name, kx, auth, cipher, key bits, mode, mac, aead, forward secrecy,"
    )
    lines.append(
        "# TLS 1.3 only, security bits, strength class, HTTP/2 blocklisted, Mozilla level, insecure,"
    )
    lines.append("# export, SCSV, IANA recommended")
    lines.append("_CIPHER_ROWS: tuple[tuple, ...] = (")
    for r in ciphers:
        lines.append(f"    (0x{r[0]:04X}, {repr(r[1:])[1:-1]}),")
    lines.append(")\n")

    def table(
        name: str, doc: str, items: list[tuple[int, str]] | dict[int, str], hexfmt: bool
    ) -> None:
        lines.append(f"# {doc}")
        lines.append(f"{name}: dict[int, str] = {{")
        for k, v in sorted(dict(items).items()):
            key = f"0x{k:04X}" if hexfmt else str(k)
            lines.append(f"    {key}: {v!r},")
        lines.append("}\n")

    table("NAMED_GROUPS", "IANA TLS Supported Groups (tls-parameters-8).", groups, False)
    table(
        "SIGNATURE_SCHEMES",
        "IANA TLS SignatureScheme, plus named TLS 1.2 hash/signature pairs.",
        sigs,
        True,
    )
    table(
        "EXTENSION_TYPES",
        "IANA TLS ExtensionType Values, plus a few common unregistered ones.",
        exts,
        False,
    )
    table("ALERT_DESCRIPTIONS", "IANA TLS Alerts (tls-parameters-6).", alerts, False)
    lines.append("# IANA TLS ALPN Protocol IDs: identification sequence -> protocol.")
    lines.append("ALPN_PROTOCOLS: dict[str, str] = {")
    for k, v in alpn:
        lines.append(f"    {k!r}: {v!r},")
    lines.append("}\n")
    lines.append(TEMPLATE_TAIL)
    return "\n".join(lines)


TEMPLATE_HEAD = '''"""TLS registries as Python tables: cipher suites with their classification, named groups,
signature schemes, extension types, alert descriptions, ALPN protocol IDs, GREASE.

GENERATED by ``python -m pcapan.proto._gen_tls_registry`` from ``pcapan/proto/data/``; do not
edit by hand. Sources of the data files:

- IANA "Transport Layer Security (TLS) Parameters" and "TLS ExtensionType Values" registries
  (https://www.iana.org/assignments/tls-parameters/, .../tls-extensiontype-values/): cipher
  suites (tls-parameters-4.csv, copied from the IANA CSV as vendored in the public GitHub
  repository AnoyingShulkerMC/BootlegTLS at 921d744, which includes the 2023 AEGIS suites),
  supported groups (tls-parameters-8.csv) and signature schemes (tls-signaturescheme.csv)
  copied from the IANA CSVs vendored in Emmdoz/Info-Security-Assessment-Tool at f5b4255;
  alerts, extension types and ALPN IDs transcribed from the IANA registry pages (cross-checked
  against the ALPN list in FD.io VPP's transport_types.h). Unassigned and reserved rows are
  left out; GREASE values (RFC 8701) are recognised by rule (``is_grease``).
- OpenSSL names: ``openssl ciphers -V 'ALL:COMPLEMENTOFALL:@SECLEVEL=0'`` of OpenSSL 3.0.19.
- Mozilla levels: the cipher lists of https://ssl-config.mozilla.org/guidelines/5.7.json.

Derived classifications (rules in ``_gen_tls_registry.py``):

- ``strength_bits``: the security of the bulk cipher in bits (key bits; 112 for 3DES; 40/56 for
  export and DES), ``strength_class`` the highest of 64/80/96/112/128/256 not above it (0 below
  64: broken).
- ``h2_blocklisted``: RFC 7540 Appendix A (kept by RFC 9113) lists every TLS 1.2 suite that is
  not an ephemeral (EC)DHE key exchange with an AEAD cipher; the same rule applied to the whole
  registry (TLS 1.3 suites are never blocked).
- ``mozilla_level``: the strictest Mozilla configuration whose list has the suite (modern,
  intermediate, old), else ``none``.
- ``insecure``: NULL encryption, EXPORT, anonymous authentication, RC4, RC2, DES, 3DES or an
  MD5 MAC.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class CipherSuite:
    code: int
    name: str  # IANA name
    openssl_name: str  # "" when OpenSSL does not implement it
    kx: str  # key exchange: RSA, DH, DHE, ECDH, ECDHE, PSK, SRP, KRB5, ECCPWD, GOST, NULL, any (TLS 1.3)
    auth: str  # authentication: RSA, DSS, ECDSA, anon, PSK, ..., any (TLS 1.3)
    cipher: str  # bulk cipher: AES, CHACHA20, 3DES, RC4, NULL, ...
    key_bits: int
    mode: str  # CBC, GCM, CCM, CCM_8, POLY1305, stream, ...
    mac: str  # AEAD, SHA1, SHA256, SHA384, MD5, NULL, ...
    aead: bool
    forward_secrecy: bool
    tls13_only: bool
    strength_bits: int
    strength_class: int
    h2_blocklisted: bool
    mozilla_level: str  # modern | intermediate | old | none
    insecure: bool
    export: bool
    scsv: bool  # a signalling value, not a real suite
    recommended: bool  # IANA "Recommended" column


'''

TEMPLATE_TAIL = '''CIPHER_SUITES: dict[int, CipherSuite] = {r[0]: CipherSuite(*r) for r in _CIPHER_ROWS}
CIPHER_BY_NAME: dict[str, CipherSuite] = {c.name: c for c in CIPHER_SUITES.values()}
CIPHER_BY_OPENSSL_NAME: dict[str, CipherSuite] = {
    c.openssl_name: c for c in CIPHER_SUITES.values() if c.openssl_name
}

TLS_VERSIONS: dict[int, str] = {
    0x0002: "SSLv2", 0x0300: "SSLv3", 0x0301: "TLSv10", 0x0302: "TLSv11", 0x0303: "TLSv12",
    0x0304: "TLSv13", 0xFEFF: "DTLSv10", 0xFEFD: "DTLSv12", 0xFEFC: "DTLSv13",
}


def version_name(v: int) -> str:
    """Zeek's spelling (TLSv12), with TLS 1.3 drafts (0x7fNN) and unknown values spelt out."""
    if v in TLS_VERSIONS:
        return TLS_VERSIONS[v]
    if v >> 8 == 0x7F:
        return f"TLSv13-draft{v & 0xFF}"
    if v >> 8 == 0x7E:  # BoringSSL/Chrome TLS 1.3 experiment versions
        return f"TLSv13-exp{v & 0xFF}"
    if v >> 8 == 0xFB:  # Facebook Fizz variants of drafts (0xfb17: draft 23, 0xfb1a: draft 26)
        return f"TLSv13-fb-draft{v & 0xFF}"
    return f"unknown-0x{v:04x}"


def is_grease(v: int) -> bool:
    """RFC 8701 GREASE values: 0x0A0A, 0x1A1A, ..., 0xFAFA (cipher suites, groups, extensions,
    versions, signature algorithms all use the same 16 values)."""
    return (v & 0x0F0F) == 0x0A0A and (v >> 8) == (v & 0xFF)


def cipher_name(code: int) -> str:
    c = CIPHER_SUITES.get(code)
    if c is not None:
        return c.name
    return "GREASE" if is_grease(code) else f"unknown-0x{code:04x}"


def group_name(code: int) -> str:
    if code in NAMED_GROUPS:
        return NAMED_GROUPS[code]
    return "GREASE" if is_grease(code) else f"unknown-{code}"


def sigscheme_name(code: int) -> str:
    if code in SIGNATURE_SCHEMES:
        return SIGNATURE_SCHEMES[code]
    return "GREASE" if is_grease(code) else f"unknown-0x{code:04x}"


def extension_name(code: int) -> str:
    if code in EXTENSION_TYPES:
        return EXTENSION_TYPES[code]
    return "GREASE" if is_grease(code) else f"unknown-{code}"


def alert_name(code: int) -> str:
    return ALERT_DESCRIPTIONS.get(code, f"unknown-{code}")


def is_weak_cipher(code: int) -> bool:
    """Insecure, or below 112-bit security (what NIST SP 800-131A still allows)."""
    c = CIPHER_SUITES.get(code)
    return c is not None and not c.scsv and (c.insecure or c.strength_bits < 112)
'''


def main(argv: list[str]) -> int:
    text = render()
    if argv[1:2] == ["--check"]:
        return 0 if OUT.read_text() == text else 1
    OUT.write_text(text)
    print(f"wrote {OUT} ({len(text)} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
