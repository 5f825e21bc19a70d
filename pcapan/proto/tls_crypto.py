"""TLS record protection, undone with a key log's secrets (``cryptography`` does the ciphers).

* TLS 1.0-1.2 key expansion (RFC 2246 5 / RFC 5246 5, 6.3): the PRF (P_MD5 xor P_SHA1 before
  TLS 1.2, P_SHA256 or the suite's P_SHA384 in 1.2) turns the master secret and both randoms
  into the key block: client MAC key, server MAC key, client key, server key, client IV, server
  IV.
* Record protection: AES-GCM and AES-CCM(-8) with a 4-byte implicit and an 8-byte explicit
  nonce (RFC 5288, RFC 6655), ChaCha20-Poly1305 with the 12-byte IV xor the sequence number
  (RFC 7905), CBC with HMAC, MAC-then-encrypt (RFC 5246 6.2.3.2; TLS 1.0's IV chained from the
  previous record) or encrypt-then-MAC (RFC 7366).
* TLS 1.3 (RFC 8446 7): HKDF-Expand-Label for the traffic keys and IVs, the per-record nonce
  (IV xor sequence number), the record header as additional data, the inner content type after
  the zero padding, and the next traffic secret after a KeyUpdate (7.2).

Every failure raises :class:`DecryptError` whose message names what failed (suite, record
length), never a key, IV, secret or plaintext byte.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import struct
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESCCM, AESGCM, ChaCha20Poly1305

from pcapan.errors import ParserError
from pcapan.proto.tls_registry import CIPHER_SUITES

TLS10, TLS11, TLS12, TLS13 = 0x0301, 0x0302, 0x0303, 0x0304


class DecryptError(ParserError):
    """A record could not be decrypted (wrong key, corrupt record). Never names a secret."""


@dataclass(frozen=True, slots=True)
class SuiteSpec:
    """What decryption needs to know of a cipher suite."""

    code: int
    name: str
    mode: str  # GCM, CCM, CCM_8, POLY1305, CBC
    key_len: int
    mac: str  # AEAD, SHA1, SHA256, SHA384
    prf: str  # hash of the TLS 1.2 PRF / TLS 1.3 HKDF: sha256 or sha384
    tls13: bool

    @property
    def fixed_iv_len(self) -> int:
        """TLS 1.2 implicit IV bytes from the key block."""
        if self.mode == "POLY1305":
            return 12
        return 4 if self.mode in ("GCM", "CCM", "CCM_8") else 16  # (CBC: TLS 1.0 only)

    @property
    def mac_len(self) -> int:
        return {"SHA1": 20, "SHA256": 32, "SHA384": 48}.get(self.mac, 0)

    @property
    def tag_len(self) -> int:
        return 8 if self.mode == "CCM_8" else 16


def suite_spec(code: int) -> SuiteSpec | None:
    """The spec of a suite pcapan can decrypt (AES or ChaCha20 in the modes above); None for
    the others (3DES, RC4, Camellia, ARIA, SM4, NULL, export suites...). Made once per suite
    (asked for at each of a connection's key changes)."""
    try:
        return _SPECS[code]
    except KeyError:
        spec = _SPECS[code] = _suite_spec(code)
        return spec


_SPECS: dict[int, SuiteSpec | None] = {}


def _suite_spec(code: int) -> SuiteSpec | None:
    cs = CIPHER_SUITES.get(code)
    if cs is None:
        return None
    aes = cs.cipher == "AES" and cs.mode in ("GCM", "CCM", "CCM_8", "CBC")
    if not aes and not (cs.cipher == "CHACHA20" and cs.mode == "POLY1305"):
        return None
    if cs.mac not in ("AEAD", "SHA1", "SHA256", "SHA384"):
        return None
    if cs.mode == "CBC" and cs.mac == "AEAD":
        return None
    prf = "sha384" if cs.name.endswith("SHA384") else "sha256"
    return SuiteSpec(code, cs.name, cs.mode, cs.key_bits // 8, cs.mac, prf, cs.tls13_only)


# --- key derivation ------------------------------------------------------------------------------
def _p_hash(name: str, secret: bytes, seed: bytes, n: int) -> bytes:
    """P_hash of RFC 5246 5."""
    out = bytearray()
    a = seed
    while len(out) < n:
        a = hmac.digest(secret, a, name)
        out += hmac.digest(secret, a + seed, name)
    return bytes(out[:n])


def prf(version: int, hash_name: str, secret: bytes, label: bytes, seed: bytes, n: int) -> bytes:
    """The TLS PRF: P_MD5 xor P_SHA1 over the two halves of the secret (TLS 1.0 and 1.1),
    P_<hash> (TLS 1.2)."""
    if version >= TLS12:
        return _p_hash(hash_name, secret, label + seed, n)
    half = (len(secret) + 1) // 2
    md5 = _p_hash("md5", secret[:half], label + seed, n)
    sha = _p_hash("sha1", secret[-half:], label + seed, n)
    return bytes(a ^ b for a, b in zip(md5, sha, strict=True))


def hkdf_expand_label(secret: bytes, label: str, context: bytes, n: int, hash_name: str) -> bytes:
    """HKDF-Expand-Label (RFC 8446 7.1), HKDF-Expand (RFC 5869 2.3) with a "tls13 " label."""
    info = _hkdf_label(label, n) + bytes([len(context)]) + context
    out = bytearray()
    t = b""
    i = 1
    while len(out) < n:
        t = hmac.digest(secret, t + info + bytes([i]), hash_name)
        out += t
        i += 1
    return bytes(out[:n])


@functools.lru_cache(maxsize=64)
def _hkdf_label(label: str, n: int) -> bytes:
    """The HkdfLabel's length and label fields (the same few for every connection)."""
    full = b"tls13 " + label.encode()
    return struct.pack("!HB", n, len(full)) + full


# --- one direction's record protection -----------------------------------------------------------
class RecordCipher:
    """The read state of one direction: keys, IV, sequence number.

    A plain slotted class (one is made per direction and traffic secret, its :meth:`decrypt`
    runs per record): what a record needs (the AEAD object, the tag length, the IV as an integer
    for the per-record nonce) is worked out once here, not per record."""

    __slots__ = (
        "spec",
        "version",
        "key",
        "iv",
        "mac_key",
        "etm",
        "secret",
        "seq",
        "_aead",
        "_iv_int",
        "_iv_len",
        "_tag",
        "_poly",
    )

    def __init__(
        self,
        spec: SuiteSpec,
        version: int,
        key: bytes,
        iv: bytes,
        mac_key: bytes = b"",
        etm: bool = False,  # TLS <= 1.2 CBC: encrypt-then-MAC (RFC 7366) negotiated
        secret: bytes = b"",  # TLS 1.3: the traffic secret (KeyUpdate)
        seq: int = 0,
    ) -> None:
        self.spec = spec
        self.version = version
        self.key = key
        self.iv = iv
        self.mac_key = mac_key
        self.etm = etm
        self.secret = secret
        self.seq = seq
        self._tag = spec.tag_len
        self._poly = spec.mode == "POLY1305"
        self._set_keys(key, iv)

    def _set_keys(self, key: bytes, iv: bytes) -> None:
        self.key, self.iv = key, iv
        self._iv_int = int.from_bytes(iv, "big")
        self._iv_len = len(iv)
        m = self.spec.mode
        aead: object = None
        if m == "GCM":
            aead = AESGCM(key)
        elif m in ("CCM", "CCM_8"):
            aead = AESCCM(key, tag_length=self._tag)
        elif m == "POLY1305":
            aead = ChaCha20Poly1305(key)
        self._aead = aead

    def __repr__(self) -> str:  # (no key material)
        return f"RecordCipher({self.spec.name}, seq={self.seq})"

    def _xor_nonce(self) -> bytes:
        return (self._iv_int ^ self.seq).to_bytes(self._iv_len, "big")

    def decrypt(self, header: bytes, body: bytes) -> tuple[int, bytes]:
        """One record (its 5-byte header and body) -> (content type, plaintext); the sequence
        number advances on success only."""
        if self.version >= TLS13:
            out = self._tls13(header, body)
        elif self._aead is not None:
            out = header[0], self._aead12(header, body)
        else:
            out = header[0], self._cbc(header, body)
        self.seq += 1
        return out

    def _tls13(self, header: bytes, body: bytes) -> tuple[int, bytes]:
        if len(body) < self._tag + 1:
            raise DecryptError(f"record of {len(body)} bytes is shorter than its tag")
        nonce = (self._iv_int ^ self.seq).to_bytes(self._iv_len, "big")
        try:
            pt = self._aead.decrypt(nonce, body, header)  # type: ignore[attr-defined]
        except InvalidTag:
            raise DecryptError(
                f"{self.spec.name}: authentication tag mismatch (record {self.seq})"
            ) from None
        if pt and pt[-1]:  # no padding (the usual case): the content type is the last byte
            return pt[-1], pt[:-1]
        end = len(pt.rstrip(b"\0"))
        if end == 0:
            raise DecryptError("TLS 1.3 record with no content type (all padding)")
        return pt[end - 1], pt[: end - 1]

    def _aead12(self, header: bytes, body: bytes) -> bytes:
        tag = self._tag
        seq = self.seq.to_bytes(8, "big")
        if self._poly:
            nonce, ct = (self._iv_int ^ self.seq).to_bytes(self._iv_len, "big"), body
        else:
            nonce, ct = self.iv + body[:8], body[8:]
        n = len(ct) - tag
        if n < 0:
            raise DecryptError(f"record of {len(body)} bytes is shorter than its tag")
        aad = seq + header[:3] + n.to_bytes(2, "big")
        try:
            return self._aead.decrypt(nonce, ct, aad)  # type: ignore[attr-defined]
        except InvalidTag:
            raise DecryptError(
                f"{self.spec.name}: authentication tag mismatch (record {self.seq})"
            ) from None

    def _mac(self, header: bytes, data: bytes) -> bytes:
        msg = self.seq.to_bytes(8, "big") + header[:3] + len(data).to_bytes(2, "big") + data
        return hmac.digest(self.mac_key, msg, self.spec.mac.lower())

    def _cbc(self, header: bytes, body: bytes) -> bytes:
        ml = self.spec.mac_len
        explicit = self.version >= TLS11
        if self.etm:
            if len(body) < ml + 16 or (len(body) - ml) % 16:
                raise DecryptError(f"CBC record of {len(body)} bytes cannot be whole blocks+MAC")
            ct, mac = body[:-ml], body[-ml:]
            if not hmac.compare_digest(self._mac(header, ct), mac):
                raise DecryptError(f"{self.spec.name}: MAC mismatch (record {self.seq})")
        else:
            ct = body
            if len(ct) < 16 or len(ct) % 16:
                raise DecryptError(f"CBC record of {len(body)} bytes is not whole blocks")
        if explicit:
            iv, data = ct[:16], ct[16:]
        else:
            iv, data = self.iv, ct
            self.iv = ct[-16:]  # TLS 1.0: the next record's IV is this one's last block
        dec = Cipher(algorithms.AES(self.key), modes.CBC(iv)).decryptor()
        pt = dec.update(data) + dec.finalize()
        if not pt:
            raise DecryptError("CBC record with no block after its IV")
        pad = pt[-1]
        if pad + 1 > len(pt) or pt[-1 - pad :] != bytes([pad]) * (pad + 1):
            raise DecryptError(f"{self.spec.name}: bad CBC padding (record {self.seq})")
        pt = pt[: -1 - pad]
        if self.etm:
            return pt
        if len(pt) < ml:
            raise DecryptError(f"{self.spec.name}: record shorter than its MAC")
        data, mac = pt[:-ml], pt[-ml:]
        if not hmac.compare_digest(self._mac(header, data), mac):
            raise DecryptError(f"{self.spec.name}: MAC mismatch (record {self.seq})")
        return data

    def key_update(self) -> None:
        """TLS 1.3 KeyUpdate (RFC 8446 7.2): the next traffic secret, its key and IV."""
        h = self.spec.prf
        n = hashlib.new(h).digest_size
        secret = hkdf_expand_label(self.secret, "traffic upd", b"", n, h)
        key, iv = _tls13_key_iv(self.spec, secret)
        self._set_keys(key, iv)
        self.secret, self.seq = secret, 0


def _tls13_key_iv(spec: SuiteSpec, secret: bytes) -> tuple[bytes, bytes]:
    key = hkdf_expand_label(secret, "key", b"", spec.key_len, spec.prf)
    iv = hkdf_expand_label(secret, "iv", b"", 12, spec.prf)
    return key, iv


def tls13_cipher(spec: SuiteSpec, secret: bytes) -> RecordCipher:
    """The record protection of a TLS 1.3 traffic secret (RFC 8446 7.3)."""
    key, iv = _tls13_key_iv(spec, secret)
    return RecordCipher(spec, TLS13, key, iv, secret=secret)


def tls12_ciphers(
    spec: SuiteSpec,
    version: int,
    master: bytes,
    client_random: bytes,
    server_random: bytes,
    etm: bool,
) -> tuple[RecordCipher, RecordCipher]:
    """(client, server) write states of a TLS 1.0-1.2 session from its master secret."""
    aead = spec.mode != "CBC"
    ml = 0 if aead else spec.mac_len
    iv_len = spec.fixed_iv_len if (aead or version == TLS10) else 0
    n = 2 * (ml + spec.key_len + iv_len)
    kb = prf(version, spec.prf, master, b"key expansion", server_random + client_random, n)
    parts = []
    at = 0
    for ln in (ml, ml, spec.key_len, spec.key_len, iv_len, iv_len):
        parts.append(kb[at : at + ln])
        at += ln
    cmac, smac, ckey, skey, civ, siv = parts
    return (
        RecordCipher(spec, version, ckey, civ, cmac, etm and not aead),
        RecordCipher(spec, version, skey, siv, smac, etm and not aead),
    )
