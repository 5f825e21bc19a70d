"""Sans-IO TLS parser for one connection, both directions, fed stream bytes incrementally.

``TlsConnection.data(is_orig, chunk, ts_ns)`` returns the events the new bytes complete;
``gap()`` and ``end()`` close a direction. "Need more bytes" is no event. Malformed input never
raises: it becomes a :class:`TlsAnomaly` event (and parsing of that direction stops when the
record framing itself is lost), per the stream contract in DESIGN.md.

What is parsed: the record layer (type, version, length; records counted per type and
direction; application-data bytes per direction), the SSLv2-format ClientHello, and cleartext
handshake messages gathered across records and across ``data()`` calls: ClientHello,
ServerHello / HelloRetryRequest, Certificate, ServerKeyExchange, CertificateRequest,
ServerHelloDone, ClientKeyExchange, NewSessionTicket, Finished (when visible), plus
ChangeCipherSpec and Alerts. Once TLS 1.3 is negotiated everything after the ServerHello is
encrypted, so from then on records are only counted.

Fingerprints: JA3 and JA3S (salesforce/ja3, BSD-3-Clause) and JA4 for the client (FoxIO,
BSD-3-Clause). JA4S and the rest of JA4+ are under a non-commercial licence and left out.
"""

from __future__ import annotations

import functools
import hashlib
import struct
from bisect import bisect_right
from dataclasses import dataclass
from itertools import accumulate
from typing import Any

from pcapan.config import (
    FINGERPRINT_CACHE_SIZE,
    MAX_TLS_CERTS_PER_CHAIN,
    MAX_TLS_HANDSHAKE_MESSAGE_BYTES,
    MAX_TLS_RECORD_BYTES,
)
from pcapan.errors import ParserError
from pcapan.model import fast_maker
from pcapan.proto.text import wire_text
from pcapan.proto.tls_registry import CIPHER_SUITES, is_grease

# Record content types (RFC 8446 B.1; 24 = heartbeat, RFC 6520).
CCS, ALERT, HANDSHAKE, APPLICATION_DATA, HEARTBEAT = 20, 21, 22, 23, 24
CONTENT_TYPES = {
    CCS: "change_cipher_spec",
    ALERT: "alert",
    HANDSHAKE: "handshake",
    APPLICATION_DATA: "application_data",
    HEARTBEAT: "heartbeat",
}

# Handshake message types (RFC 8446 4, RFC 5246 7.4).
HS_CLIENT_HELLO = 1
HS_SERVER_HELLO = 2
HS_NEW_SESSION_TICKET = 4
HS_CERTIFICATE = 11
HS_SERVER_KEY_EXCHANGE = 12
HS_CERTIFICATE_REQUEST = 13
HS_SERVER_HELLO_DONE = 14
HS_CERTIFICATE_VERIFY = 15
HS_CLIENT_KEY_EXCHANGE = 16
HS_FINISHED = 20
HS_CERTIFICATE_STATUS = 22
_KNOWN_HS = {0, 1, 2, 3, 4, 5, 8, 11, 12, 13, 14, 15, 16, 20, 21, 22, 23, 24, 25, 67, 254}

# ServerHello.random of a HelloRetryRequest: SHA-256("HelloRetryRequest") (RFC 8446 4.1.3).
HRR_RANDOM = bytes.fromhex("CF21AD74E59A6111BE1D8C021E65B891C2A211167ABB8C5E079E09E2C8A8339C")

# Extension code points decoded here.
EXT_SERVER_NAME = 0
EXT_STATUS_REQUEST = 5
EXT_SUPPORTED_GROUPS = 10
EXT_EC_POINT_FORMATS = 11
EXT_SIGNATURE_ALGORITHMS = 13
EXT_ALPN = 16
EXT_PADDING = 21
EXT_ENCRYPT_THEN_MAC = 22
EXT_EXTENDED_MASTER_SECRET = 23
EXT_COMPRESS_CERTIFICATE = 27
EXT_RECORD_SIZE_LIMIT = 28
EXT_SESSION_TICKET = 35
EXT_PRE_SHARED_KEY = 41
EXT_EARLY_DATA = 42
EXT_SUPPORTED_VERSIONS = 43
EXT_PSK_KEY_EXCHANGE_MODES = 45
EXT_KEY_SHARE = 51
# key_share's code in TLS 1.3 drafts before 23 (draft-23 renumbered it to 51 because
# middleboxes choked on 40; IANA lists 40 as reserved for that reason; Wireshark's
# SSL_HND_HELLO_EXT_KEY_SHARE_OLD). Read as key_share wherever it appears.
EXT_KEY_SHARE_OLD = 40
EXT_ECH = 0xFE0D
EXT_RENEGOTIATION_INFO = 0xFF01

TLS13 = 0x0304

# RFC 8701 GREASE values as a set (a membership test per value beats a call per value).
_GREASE = frozenset(0x0A0A + 0x1010 * i for i in range(16))

# ClientHello extensions whose content is decoded (the others are only listed).
_CH_DECODED = frozenset(
    {
        EXT_SERVER_NAME,
        EXT_ALPN,
        EXT_SUPPORTED_VERSIONS,
        EXT_SUPPORTED_GROUPS,
        EXT_KEY_SHARE,
        EXT_KEY_SHARE_OLD,
        EXT_SIGNATURE_ALGORITHMS,
        EXT_EC_POINT_FORMATS,
        EXT_PRE_SHARED_KEY,
        EXT_PSK_KEY_EXCHANGE_MODES,
        EXT_RECORD_SIZE_LIMIT,
        EXT_COMPRESS_CERTIFICATE,
    }
)
# Facebook's Fizz variants of TLS 1.3 drafts 23 and 26 (fizz/record/Types.h: tls_1_3_23_fb,
# tls_1_3_26_fb; Wireshark: "TLS 1.3 (Facebook draft 23/26)"): TLS 1.3 on the wire, only the
# version number differs.
TLS13_FIZZ = (0xFB17, 0xFB1A)


def is_draft_before_22(version: int) -> bool:
    """A TLS 1.3 draft older than 22 (0x7f00 .. 0x7f15): its ServerHello is
    ``server_version, random, cipher_suite, extensions`` (no legacy_session_id_echo and no
    compression method, which draft-22 added for middlebox compatibility; Wireshark: "No
    Session ID with TLS 1.3 on Server Hello before draft -22"), and the version it selects is
    that server_version (supported_versions moved into the ServerHello in draft-22 too)."""
    return 0x7F00 < version < 0x7F16


def is_tls13(version: int) -> bool:
    """TLS 1.3, one of its drafts (0x7fNN), a BoringSSL experiment (0x7eNN) or a Fizz variant."""
    return version == TLS13 or (version >> 8) in (0x7F, 0x7E) or version in TLS13_FIZZ


# opaque_bytes() of a direction no longer parsed: every byte that comes is skipped.
_UNBOUNDED = 1 << 62


# --- events -----------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class ClientHello:
    ts_ns: int
    legacy_version: int  # ClientHello.client_version (0x0303 for every TLS 1.3 client)
    random: bytes
    session_id: bytes
    ciphers: tuple[int, ...]  # offered, in order, GREASE removed
    compression_methods: tuple[int, ...]
    extensions: tuple[int, ...]  # in order, GREASE removed
    server_name: str | None
    alpn: tuple[str, ...]
    supported_versions: tuple[int, ...]
    supported_groups: tuple[int, ...]
    key_share_groups: tuple[int, ...]
    signature_algorithms: tuple[int, ...]
    ec_point_formats: tuple[int, ...]
    session_ticket: bytes | None  # None: extension absent; b"": asks for a new ticket
    psk_identities: int  # identities offered in pre_shared_key (0: extension absent)
    psk_key_exchange_modes: tuple[int, ...]
    early_data: bool
    extended_master_secret: bool
    renegotiation_info: bool
    encrypt_then_mac: bool
    status_request: bool
    record_size_limit: int | None
    compress_certificate: tuple[int, ...]
    encrypted_client_hello: bool
    padding_len: int | None
    grease: bool  # any GREASE value seen
    sslv2: bool  # SSLv2-format ClientHello (no extensions)
    ja3: str  # the JA3 string; ja3_hash is its MD5
    ja4: str
    ja4_r: str

    @property
    def ja3_hash(self) -> str:
        return _md5_hex(self.ja3)

    @property
    def max_version(self) -> int:
        """Highest version offered (supported_versions when present, else legacy_version)."""
        return max(self.supported_versions) if self.supported_versions else self.legacy_version


_make_client_hello = fast_maker(ClientHello)  # positional; a hello per connection adds up


@dataclass(frozen=True, slots=True)
class ServerHello:
    ts_ns: int
    legacy_version: int
    version: int  # negotiated: supported_versions when present, else legacy_version
    random: bytes
    session_id: bytes
    cipher: int
    compression_method: int
    extensions: tuple[int, ...]
    alpn: str | None  # selected ALPN protocol (TLS <= 1.2 only: in 1.3 it is encrypted)
    key_share_group: int | None  # TLS 1.3: the group of the server's share (HRR: the one asked for)
    psk_selected: int | None  # TLS 1.3: index of the accepted PSK identity
    extended_master_secret: bool
    renegotiation_info: bool
    encrypt_then_mac: bool
    session_ticket: bool  # TLS 1.2: server will send a NewSessionTicket
    hello_retry_request: bool
    ja3s: str

    @property
    def ja3s_hash(self) -> str:
        return _md5_hex(self.ja3s)


@dataclass(frozen=True, slots=True)
class CertInfo:
    subject_cn: str | None
    subject: str
    issuer: str
    san: tuple[str, ...]
    not_before: Any  # datetime (UTC)
    not_after: Any
    key_type: str  # RSA, EC, DSA, Ed25519, Ed448, ...
    key_bits: int | None
    signature_algorithm: str | None
    self_signed: bool


@dataclass(frozen=True, slots=True)
class Certificate:
    ts_ns: int
    is_orig: bool  # True: a client certificate
    chain: tuple[bytes, ...]  # DER, leaf first (at most MAX_TLS_CERTS_PER_CHAIN kept)
    chain_len: int  # certificates in the message

    def leaf(self) -> CertInfo | None:
        """The leaf parsed with ``cryptography`` (imported here only); None when unparseable."""
        return parse_certificate(self.chain[0]) if self.chain else None


@dataclass(frozen=True, slots=True)
class ServerKeyExchange:
    ts_ns: int
    kx: str  # DHE, ECDHE, RSA (export), other
    dh_prime_bits: int | None
    curve: int | None  # named group of an ECDHE exchange


@dataclass(frozen=True, slots=True)
class HandshakeMessage:
    """A handshake message with nothing decoded beyond its type (CertificateRequest,
    ServerHelloDone, ClientKeyExchange, CertificateVerify, CertificateStatus, ...)."""

    ts_ns: int
    is_orig: bool
    msg_type: int
    length: int


@dataclass(frozen=True, slots=True)
class NewSessionTicket:
    ts_ns: int
    lifetime_hint: int
    ticket_len: int


@dataclass(frozen=True, slots=True)
class Finished:
    ts_ns: int
    is_orig: bool
    visible: bool  # False: the encrypted handshake record after ChangeCipherSpec (TLS <= 1.2)


@dataclass(frozen=True, slots=True)
class ChangeCipherSpec:
    ts_ns: int
    is_orig: bool


@dataclass(frozen=True, slots=True)
class Alert:
    ts_ns: int
    is_orig: bool
    level: int | None  # None when the alert is encrypted
    description: int | None


@dataclass(frozen=True, slots=True)
class Resumed:
    ts_ns: int
    how: str  # "session_id", "ticket" or "psk"


@dataclass(frozen=True, slots=True)
class HandshakeDone:
    """The handshake is over: both Finished seen (TLS <= 1.2), the client's first encrypted
    record after the ServerHello (TLS 1.3: its Finished), or the first application data."""

    ts_ns: int


@dataclass(frozen=True, slots=True)
class TlsAnomaly:
    ts_ns: int
    is_orig: bool
    kind: str
    detail: str


Event = (
    ClientHello
    | ServerHello
    | Certificate
    | ServerKeyExchange
    | HandshakeMessage
    | NewSessionTicket
    | Finished
    | ChangeCipherSpec
    | Alert
    | Resumed
    | HandshakeDone
    | TlsAnomaly
)

# Positional makers (model.fast_maker): a frozen dataclass's __init__ sets each field through
# object.__setattr__, and the parser makes several events per connection.
_make_server_hello = fast_maker(ServerHello)
_make_certificate = fast_maker(Certificate)
_make_handshake_message = fast_maker(HandshakeMessage)
_make_finished = fast_maker(Finished)
_make_ccs = fast_maker(ChangeCipherSpec)
_make_alert = fast_maker(Alert)
_make_resumed = fast_maker(Resumed)
_make_done = fast_maker(HandshakeDone)
_make_anomaly = fast_maker(TlsAnomaly)
_make_ticket = fast_maker(NewSessionTicket)


@functools.lru_cache(maxsize=FINGERPRINT_CACHE_SIZE)
def _md5_hex(text: str) -> str:
    """JA3 / JA3S hash of a fingerprint string (the same few strings on every connection)."""
    return hashlib.md5(text.encode()).hexdigest()


# --- byte reader ------------------------------------------------------------------------------
class _R:
    """Bounds-checked big-endian reader; a short read raises ParserError."""

    __slots__ = ("b", "i", "end")

    def __init__(self, b: bytes | memoryview, i: int = 0, end: int | None = None) -> None:
        self.b = b
        self.i = i
        self.end = len(b) if end is None else end

    def left(self) -> int:
        return self.end - self.i

    def take(self, n: int) -> bytes:
        i = self.i
        if n > self.end - i:
            raise ParserError(f"need {n} bytes, {self.end - i} left")
        self.i = i + n
        return bytes(self.b[i : i + n])

    # The integer readers index the buffer directly: a ClientHello makes ~70 reads, and a
    # bytes object per read was most of its parsing time.
    def u8(self) -> int:
        i = self.i
        if i >= self.end:
            raise ParserError("need 1 byte, 0 left")
        self.i = i + 1
        return self.b[i]

    def u16(self) -> int:
        i = self.i
        if i + 2 > self.end:
            raise ParserError(f"need 2 bytes, {self.end - i} left")
        self.i = i + 2
        b = self.b
        return (b[i] << 8) | b[i + 1]

    def u24(self) -> int:
        i = self.i
        if i + 3 > self.end:
            raise ParserError(f"need 3 bytes, {self.end - i} left")
        self.i = i + 3
        b = self.b
        return (b[i] << 16) | (b[i + 1] << 8) | b[i + 2]

    def u32(self) -> int:
        return int.from_bytes(self.take(4), "big")

    def vec(self, lenbytes: int) -> bytes:
        n = self.u8() if lenbytes == 1 else self.u16() if lenbytes == 2 else self.u24()
        return self.take(n)

    def sub(self, lenbytes: int) -> _R:
        data = self.vec(lenbytes)
        return _R(data)


def _u16_list(data: bytes) -> list[int]:
    if len(data) % 2:
        raise ParserError("odd length in a list of 16-bit values")
    return list(struct.unpack(f">{len(data) // 2}H", data))


# --- fingerprints -----------------------------------------------------------------------------
def _ja4_version(v: int) -> str:
    return {
        0x0304: "13",
        0x0303: "12",
        0x0302: "11",
        0x0301: "10",
        0x0300: "s3",
        0x0002: "s2",
        0xFEFF: "d1",
        0xFEFD: "d2",
        0xFEFC: "d3",
    }.get(v, "00")


def _isalnum(c: int) -> bool:
    return 0x30 <= c <= 0x39 or 0x41 <= c <= 0x5A or 0x61 <= c <= 0x7A


def ja4_fingerprint(
    version: int,
    sni: bool,
    ciphers: list[int],
    exts: list[int],
    first_alpn: bytes | None,
    sigalgs: list[int],
    quic: bool = False,
) -> tuple[str, str]:
    """JA4 and JA4_r (raw) per the FoxIO JA4 specification (BSD-3-Clause part).

    ``ciphers``, ``exts`` and ``sigalgs`` must already be free of GREASE; ``version`` is the
    highest supported_versions value (or the legacy version without that extension)."""
    if not first_alpn:
        alpn = "00"
    elif _isalnum(first_alpn[0]) and _isalnum(first_alpn[-1]):
        alpn = chr(first_alpn[0]) + chr(first_alpn[-1])
    else:  # non-alphanumeric: first and last character of the hex of the value
        h = first_alpn.hex()
        alpn = h[0] + h[-1]
    a = (
        ("q" if quic else "t")
        + _ja4_version(version)
        + ("d" if sni else "i")
        + f"{min(len(ciphers), 99):02d}"
        + f"{min(len(exts), 99):02d}"
        + alpn
    )
    cs = ",".join(sorted(f"{c:04x}" for c in ciphers))
    es = ",".join(sorted(f"{e:04x}" for e in exts if e not in (EXT_SERVER_NAME, EXT_ALPN)))
    sa = ",".join(f"{s:04x}" for s in sigalgs)
    c_raw = es + ("_" + sa if sa else "")

    def h12(s: str) -> str:
        return hashlib.sha256(s.encode()).hexdigest()[:12] if s else "000000000000"

    b = h12(cs)
    c = h12(c_raw) if es or sa else "000000000000"
    return f"{a}_{b}_{c}", f"{a}_{cs}_{c_raw}"


@functools.lru_cache(maxsize=FINGERPRINT_CACHE_SIZE)
def _fingerprints(
    ver: int,
    ciphers: tuple[int, ...],
    exts: tuple[int, ...],
    groups: tuple[int, ...],
    pf: tuple[int, ...],
    max_ver: int,
    sni: bool,
    first_alpn: bytes | None,
    sigalgs: tuple[int, ...],
) -> tuple[str, str, str]:
    """(JA3 string, JA4, JA4_r) of a ClientHello. Cached: the clients of a capture send the same
    few hellos over and over (only randoms, session ids and key shares differ), and the hashing
    and sorting were a fifth of a ClientHello's parsing time."""
    ja3 = ",".join(
        [
            str(ver),
            "-".join(map(str, ciphers)),
            "-".join(map(str, exts)),
            "-".join(map(str, groups)),
            "-".join(map(str, pf)),
        ]
    )
    ja4, ja4_r = ja4_fingerprint(max_ver, sni, list(ciphers), list(exts), first_alpn, list(sigalgs))
    return ja3, ja4, ja4_r


# --- certificates (lazy) ----------------------------------------------------------------------
@functools.lru_cache(maxsize=FINGERPRINT_CACHE_SIZE)  # a server sends the same leaf to every client
def parse_certificate(der: bytes) -> CertInfo | None:
    """Parse one DER certificate with ``cryptography``; None if it is not installed or the
    certificate does not parse (a certificate is data, not a reason to stop)."""
    try:
        from cryptography import x509
        from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519, rsa
        from cryptography.x509.oid import NameOID
    except ImportError:  # pragma: no cover - optional dependency
        return None
    try:
        cert = x509.load_der_x509_certificate(der)
        cns = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
        cn = str(cns[0].value) if cns else None
        try:
            ext = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName)
            san = tuple(ext.value.get_values_for_type(x509.DNSName))
        except x509.ExtensionNotFound:
            san = ()
        try:
            key = cert.public_key()
        except Exception:  # unknown key algorithm  # noqa: BLE001
            key = None
        if isinstance(key, rsa.RSAPublicKey):
            kt, kb = "RSA", key.key_size
        elif isinstance(key, ec.EllipticCurvePublicKey):
            kt, kb = "EC", key.curve.key_size
        elif isinstance(key, dsa.DSAPublicKey):
            kt, kb = "DSA", key.key_size
        elif isinstance(key, ed25519.Ed25519PublicKey):
            kt, kb = "Ed25519", 256
        elif isinstance(key, ed448.Ed448PublicKey):
            kt, kb = "Ed448", 456
        else:
            kt, kb = "unknown", None
        try:
            sig = cert.signature_algorithm_oid._name
        except Exception:  # noqa: BLE001
            sig = None
        return CertInfo(
            subject_cn=cn,
            subject=cert.subject.rfc4514_string(),
            issuer=cert.issuer.rfc4514_string(),
            san=san,
            not_before=cert.not_valid_before_utc,
            not_after=cert.not_valid_after_utc,
            key_type=kt,
            key_bits=kb,
            signature_algorithm=sig,
            self_signed=cert.subject == cert.issuer,
        )
    except Exception:  # cryptography raises ValueError and others on malformed DER  # noqa: BLE001
        return None


# --- the parser -------------------------------------------------------------------------------
class _Dir:
    """One direction's parsing state (a plain slotted class: two per connection)."""

    __slots__ = (
        "buf",
        "skip",
        "hs",
        "encrypted",
        "stopped",
        "hs_stopped",
        "first",
        "finished",
        "records",
        "app_bytes",
        "bytes_seen",
    )

    def __init__(self) -> None:
        self.buf = bytearray()  # unparsed record bytes
        self.skip = 0  # body bytes of the current record still to skip (not buffered)
        self.hs = bytearray()  # handshake bytes across records
        self.encrypted = False  # after this side's ChangeCipherSpec / TLS 1.3 ServerHello
        self.stopped = False  # framing lost: count nothing more
        self.hs_stopped = False  # handshake content no longer parsed
        self.first = True  # nothing seen yet (SSLv2 ClientHello check)
        self.finished = False
        self.records: dict[int, int] = {}
        self.app_bytes = 0
        self.bytes_seen = 0


class TlsConnection:
    """Both directions of one TLS connection. ``is_orig`` True is the client (TCP originator)."""

    def __init__(self) -> None:
        self._d = {True: _Dir(), False: _Dir()}
        self._out: list[Event] = []
        self.skimmed: list[tuple[int, int, int, int]] = []  # the headers the last skim() walked
        self.client_hello: ClientHello | None = None
        self.server_hello: ServerHello | None = None
        self.version: int | None = None  # negotiated (set by the ServerHello)
        self.cipher: int | None = None
        self.tls13 = False
        self.hello_retry = False
        self.resumed: str | None = None  # session_id | ticket | psk
        self.done = False
        self.alpn_selected: str | None = None
        self._server_cert_seen = False
        self._server_ccs_after_hello = False
        # 0-RTT: application_data records the client sent before the ServerHello, and the length
        # of its first encrypted record after it (EndOfEarlyData when the server accepted).
        self.early_data_records = 0
        self.client_first_encrypted_len: int | None = None

    # -- counters for the analyze layer --------------------------------------------------------
    def records(self, is_orig: bool) -> dict[int, int]:
        """Records seen per content type in one direction."""
        return dict(self._d[is_orig].records)

    def app_data_bytes(self, is_orig: bool) -> int:
        """Bytes of application_data record bodies (in TLS 1.3 this includes the encrypted
        handshake, which travels in application_data records too)."""
        return self._d[is_orig].app_bytes

    def opaque_bytes(self, is_orig: bool) -> int:
        """How many of the next bytes of this direction the parser would skip unread (the rest
        of a record body it does not parse), so that a driver may count them without a copy."""
        d = self._d[is_orig]
        if d.stopped:
            return _UNBOUNDED
        return 0 if d.buf else d.skip

    def skip_opaque(self, is_orig: bool, nbytes: int) -> None:
        """Take ``nbytes`` (at most :meth:`opaque_bytes`) as skipped, without seeing them."""
        d = self._d[is_orig]
        if d.stopped:
            return
        if nbytes > d.skip or d.buf:
            raise ValueError(f"{nbytes} opaque bytes offered, {0 if d.buf else d.skip} skippable")
        d.skip -= nbytes
        d.bytes_seen += nbytes

    def skim(
        self, is_orig: bool, mv: memoryview, offs: list[int], lens: list[int], tss: list[int]
    ) -> list[Event] | None:
        """Count the records of a run of segments (``mv[off:off+len]`` each, in stream order,
        ``tss`` their timestamps) by walking their headers only, when nothing in this direction
        needs reading any more (encrypted, no partial header pending): one step per record, not
        per segment. Each record's events carry the time of the segment that completed its
        header (of its body byte for a ChangeCipherSpec), as :meth:`data` would give them.
        Returns the events, or None when the run must go through :meth:`data` instead; the
        headers walked are left in :attr:`skimmed` as (run position, body length, content
        type, segment index), the last with length and type -1 where framing was lost."""
        d = self._d[is_orig]
        if d.stopped or d.buf or d.first or not d.encrypted:
            return None
        self._out = []
        marks: list[tuple[int, int, int, int]] = []
        self.skimmed = marks
        total = sum(lens)
        d.bytes_seen += total
        at = d.skip  # run position of the next record header
        if at >= total:
            d.skip = at - total
            return []
        # Segment starts in run positions, to find the segment holding a header byte.
        starts = list(accumulate(lens, initial=0))
        k = bisect_right(starts, at) - 1
        while at < total:
            while starts[k + 1] <= at:
                k += 1
            o = offs[k] + at - starts[k]
            hdr: memoryview | bytes
            if at + 5 <= starts[k + 1]:
                hdr = mv[o : o + 5]
                kh = k  # the segment that completes the header
            else:  # the header straddles segments (or the run's end)
                parts = []
                p, j, need = at, k, 5
                while need and j < len(lens):
                    seg_o = offs[j] + p - starts[j]
                    take = min(need, starts[j + 1] - p)
                    parts.append(bytes(mv[seg_o : seg_o + take]))
                    need -= take
                    p += take
                    j += 1
                hdr = b"".join(parts)
                if len(hdr) < 5:
                    d.buf += hdr  # completed by the next bytes, through data()
                    d.skip = 0
                    return self._take_out()
                kh = j - 1
            ts_ns = tss[kh]
            ctype, ln = hdr[0], (hdr[3] << 8) | hdr[4]
            if ctype not in CONTENT_TYPES or hdr[1] != 3 or hdr[2] > 4 or ln > MAX_TLS_RECORD_BYTES:
                marks.append((at, -1, -1, kh))  # (framing lost here)
                d.stopped = True
                d.buf.clear()
                self._anomaly(
                    ts_ns,
                    is_orig,
                    "tls_bad_record",
                    f"not a TLS record header: {bytes(hdr).hex()}"
                    if ctype not in CONTENT_TYPES or hdr[1] != 3 or hdr[2] > 4
                    else f"record length {ln} > {MAX_TLS_RECORD_BYTES}",
                )
                return self._take_out()
            if ctype == CCS and at + 5 + ln > total:
                # A ChangeCipherSpec is read whole (data() counts it once its last byte is in):
                # its header and the body bytes so far wait there, so that a gap before the
                # rest is a gap in the record, as when the segments come one by one.
                j = k
                while j < len(lens):
                    lo = max(at, starts[j]) - starts[j]
                    d.buf += mv[offs[j] + lo : offs[j] + lens[j]]
                    j += 1
                d.skip = 0
                return self._take_out()
            d.records[ctype] = d.records.get(ctype, 0) + 1
            if ctype == APPLICATION_DATA:
                d.app_bytes += ln
            marks.append((at, ln, ctype, kh))
            if ctype == CCS:
                # (its body is not read; data() takes the record once its last byte is in)
                kb = max(kh, bisect_right(starts, at + 4 + ln) - 1)
                self._ccs(d, is_orig, tss[min(kb, len(tss) - 1)])
            else:
                self._opaque_record(d, is_orig, ctype, ln, ts_ns)
            at += 5 + ln
        d.skip = at - total
        return self._take_out()

    def _take_out(self) -> list[Event]:
        out, self._out = self._out, []
        return out

    # -- stream contract -----------------------------------------------------------------------
    def data(self, is_orig: bool, chunk: bytes, ts_ns: int) -> list[Event]:
        d = self._d[is_orig]
        if d.stopped or not chunk:
            return []
        self._out = []
        try:
            self._feed(d, is_orig, chunk, ts_ns)
        except ParserError as e:  # framing lost; _feed raises only for that
            d.stopped = True
            d.buf.clear()
            self._anomaly(ts_ns, is_orig, "tls_bad_record", str(e))
        out, self._out = self._out, []
        return out

    def gap(self, is_orig: bool, nbytes: int, ts_ns: int) -> list[Event]:
        d = self._d[is_orig]
        if d.stopped:
            return []
        # Record boundaries are lost with the bytes: stop this direction (no resync), and say so.
        if d.skip >= nbytes and not d.buf:
            # The gap lies wholly inside a record body we were skipping anyway: nothing lost.
            d.skip -= nbytes
            return []
        d.stopped = True
        d.buf.clear()
        d.hs.clear()
        return [
            _make_anomaly(
                ts_ns, is_orig, "tls_gap", f"{nbytes} bytes missing; direction no longer parsed"
            )
        ]

    def end(self, is_orig: bool, ts_ns: int) -> list[Event]:
        d = self._d[is_orig]
        out: list[Event] = []
        if not d.stopped and (d.buf or d.skip or d.hs):
            out.append(
                _make_anomaly(
                    ts_ns,
                    is_orig,
                    "tls_truncated",
                    f"stream ended inside a record ({len(d.buf) + d.skip} bytes short"
                    f" or pending, {len(d.hs)} handshake bytes pending)",
                )
            )
        d.stopped = True
        d.buf.clear()
        d.hs.clear()
        return out

    # -- record layer --------------------------------------------------------------------------
    def _anomaly(self, ts: int, is_orig: bool, kind: str, detail: str) -> None:
        self._out.append(_make_anomaly(ts, is_orig, kind, detail))

    def _feed(self, d: _Dir, is_orig: bool, chunk: bytes, ts: int) -> None:
        d.bytes_seen += len(chunk)
        if d.skip:
            n = min(d.skip, len(chunk))
            d.skip -= n
            chunk = chunk[n:]
            if not chunk:
                return
        d.buf += chunk
        buf = d.buf
        pos = 0
        n = len(buf)
        while n - pos >= 5 or (d.first and n - pos >= 2):
            if d.first:
                if buf[pos] & 0x80:
                    # SSLv2 record header: 2 bytes, high bit set (RFC 6101 E.2 / SSL 2.0 spec)
                    ln = ((buf[pos] & 0x7F) << 8) | buf[pos + 1]
                    if n - pos < 2 + ln:
                        break
                    d.first = False
                    self._sslv2_hello(bytes(buf[pos + 2 : pos + 2 + ln]), is_orig, ts)
                    d.records[0] = d.records.get(0, 0) + 1
                    pos += 2 + ln
                    continue
                if n - pos < 5:
                    break
                d.first = False
            ctype = buf[pos]
            ln = (buf[pos + 3] << 8) | buf[pos + 4]
            if ctype not in CONTENT_TYPES or buf[pos + 1] != 3 or buf[pos + 2] > 4:
                del buf[:pos]
                raise ParserError(f"not a TLS record header: {bytes(buf[:5]).hex()}")
            if ln > MAX_TLS_RECORD_BYTES:
                del buf[:pos]
                raise ParserError(f"record length {ln} > {MAX_TLS_RECORD_BYTES}")
            d.records[ctype] = d.records.get(ctype, 0) + 1
            if ctype == APPLICATION_DATA:
                d.app_bytes += ln
            need_body = ctype == CCS or (not d.encrypted and ctype in (HANDSHAKE, ALERT))
            if not need_body or (ctype == HANDSHAKE and d.hs_stopped):
                self._opaque_record(d, is_orig, ctype, ln, ts)
                avail = n - pos - 5
                if avail >= ln:
                    pos += 5 + ln
                    continue
                d.skip = ln - avail
                pos = n
                break
            if n - pos - 5 < ln:
                d.records[ctype] -= 1  # counted again when complete
                break
            body = bytes(buf[pos + 5 : pos + 5 + ln])
            pos += 5 + ln
            if ctype == HANDSHAKE:
                d.hs += body
                self._handshake(d, is_orig, ts)
            elif ctype == ALERT:
                self._alert(d, is_orig, body, ts)
            else:
                self._ccs(d, is_orig, ts)
        del buf[:pos]

    def _opaque_record(self, d: _Dir, is_orig: bool, ctype: int, ln: int, ts: int) -> None:
        """A record whose body we do not read (encrypted, or application data)."""
        if ctype == APPLICATION_DATA:
            if is_orig and self.server_hello is None and not self.hello_retry:
                self.early_data_records += 1
            if self.tls13 and is_orig and self.server_hello is not None and not d.finished:
                self.client_first_encrypted_len = ln
                # TLS 1.3: the client's first encrypted record after the ServerHello is its
                # Finished (0-RTT data goes before the ServerHello).
                d.finished = True
                self._out.append(_make_finished(ts, is_orig, False))
                self._handshake_done(ts)
            elif not self.tls13 and self.server_hello is not None:
                self._handshake_done(ts)
        elif ctype == HANDSHAKE and d.encrypted and not self.tls13 and not d.finished:
            d.finished = True
            self._out.append(_make_finished(ts, is_orig, False))
            other = self._d[not is_orig]
            if other.finished:
                self._handshake_done(ts)
        elif ctype == ALERT and d.encrypted:
            self._out.append(_make_alert(ts, is_orig, None, None))

    def _handshake_done(self, ts: int) -> None:
        if not self.done:
            self.done = True
            self._out.append(_make_done(ts))

    def _alert(self, d: _Dir, is_orig: bool, body: bytes, ts: int) -> None:
        if len(body) % 2 or not body:
            self._anomaly(ts, is_orig, "tls_bad_alert", f"alert record of {len(body)} bytes")
            return
        for i in range(0, len(body), 2):
            self._out.append(_make_alert(ts, is_orig, body[i], body[i + 1]))

    def _ccs(self, d: _Dir, is_orig: bool, ts: int) -> None:
        self._out.append(_make_ccs(ts, is_orig))
        if self.tls13 or self.hello_retry:
            return  # middlebox-compatibility CCS (RFC 8446 D.4): changes nothing
        d.encrypted = True
        if not is_orig and self.server_hello is not None and not self._server_cert_seen:
            # Server CCS straight after its hello: an abbreviated (resumed) TLS <= 1.2 handshake.
            ch = self.client_hello
            if self.resumed is None:
                how = "ticket" if ch is not None and ch.session_ticket else "session_id"
                self.resumed = how
                self._out.append(_make_resumed(ts, how))

    def _sslv2_hello(self, msg: bytes, is_orig: bool, ts: int) -> None:
        try:
            r = _R(msg)
            if r.u8() != 1:
                raise ParserError("SSLv2 record is not a CLIENT-HELLO")
            ver = r.u16()
            cs_len, sid_len, ch_len = r.u16(), r.u16(), r.u16()
            specs = r.take(cs_len)
            sid = r.take(sid_len)
            challenge = r.take(ch_len)
        except ParserError as e:
            self._anomaly(ts, is_orig, "tls_bad_sslv2_hello", str(e))
            return
        ciphers = [
            int.from_bytes(specs[i + 1 : i + 3], "big")
            for i in range(0, len(specs) - 2, 3)
            if specs[i] == 0
        ]  # 3-byte specs with a zero first byte are TLS suites
        grease = any(is_grease(c) for c in ciphers)
        ciphers = [c for c in ciphers if not is_grease(c)]
        ja3 = f"{ver},{'-'.join(map(str, ciphers))},,,"
        ja4, ja4_r = ja4_fingerprint(ver, False, ciphers, [], None, [])
        ch = ClientHello(
            ts,
            ver,
            challenge.rjust(32, b"\0")[-32:],
            sid,
            tuple(ciphers),
            (0,),
            (),
            None,
            (),
            (),
            (),
            (),
            (),
            (),
            None,
            0,
            (),
            False,
            False,
            False,
            False,
            False,
            None,
            (),
            False,
            None,
            grease,
            True,
            ja3,
            ja4,
            ja4_r,
        )
        self.client_hello = ch
        self._out.append(ch)

    # -- handshake layer -----------------------------------------------------------------------
    def _handshake(self, d: _Dir, is_orig: bool, ts: int) -> None:
        hs = d.hs
        pos = 0
        while len(hs) - pos >= 4 and not d.hs_stopped:
            mtype = hs[pos]
            ln = int.from_bytes(hs[pos + 1 : pos + 4], "big")
            if ln > MAX_TLS_HANDSHAKE_MESSAGE_BYTES:
                self._anomaly(
                    ts,
                    is_orig,
                    "tls_handshake_too_large",
                    f"handshake type {mtype} of {ln} bytes > {MAX_TLS_HANDSHAKE_MESSAGE_BYTES}",
                )
                d.hs_stopped = True
                break
            if len(hs) - pos - 4 < ln:
                break
            body = bytes(hs[pos + 4 : pos + 4 + ln])
            pos += 4 + ln
            try:
                self._message(d, is_orig, mtype, body, ts)
            except ParserError as e:
                self._anomaly(ts, is_orig, "tls_bad_handshake", f"type {mtype}: {e}")
        if d.hs_stopped:
            hs.clear()
        else:
            del hs[:pos]

    def _message(self, d: _Dir, is_orig: bool, mtype: int, body: bytes, ts: int) -> None:
        if mtype == HS_CLIENT_HELLO and is_orig:
            self._client_hello(body, ts)
        elif mtype == HS_SERVER_HELLO and not is_orig:
            self._server_hello(body, ts)
        elif mtype == HS_CERTIFICATE:
            r = _R(body)
            lst = r.sub(3)
            chain: list[bytes] = []
            count = 0
            while lst.left():
                der = lst.vec(3)
                count += 1
                if len(chain) < MAX_TLS_CERTS_PER_CHAIN:
                    chain.append(der)
            if not is_orig:
                self._server_cert_seen = True
            self._out.append(_make_certificate(ts, is_orig, tuple(chain), count))
        elif mtype == HS_SERVER_KEY_EXCHANGE and not is_orig:
            self._server_key_exchange(body, ts)
        elif mtype == HS_NEW_SESSION_TICKET and not is_orig:
            r = _R(body)
            life = r.u32()
            ticket = r.vec(2)
            self._out.append(_make_ticket(ts, life, len(ticket)))
        elif mtype == HS_FINISHED:
            self._out.append(_make_finished(ts, is_orig, True))
            d.finished = True
        elif mtype in _KNOWN_HS:
            if mtype == HS_SERVER_HELLO_DONE and not is_orig:
                self._server_cert_seen = True  # a full handshake, even without a certificate
            self._out.append(_make_handshake_message(ts, is_orig, mtype, len(body)))
        else:
            self._anomaly(
                ts, is_orig, "tls_unknown_handshake_type", f"type {mtype}, {len(body)} bytes"
            )

    def _extensions(self, r: _R) -> list[tuple[int, bytes]]:
        if not r.left():
            return []  # extensions are optional (SSLv3, old TLS 1.0 clients)
        ext = r.sub(2)
        out = []
        while ext.left():
            code = ext.u16()
            out.append((code, ext.vec(2)))
        if r.left():
            raise ParserError(f"{r.left()} bytes after the extensions")
        return out

    def _client_hello(self, body: bytes, ts: int) -> None:
        r = _R(body)
        ver = r.u16()
        rnd = r.take(32)
        sid = r.vec(1)
        cs_raw = _u16_list(r.vec(2))
        comp = tuple(r.vec(1))
        exts = self._extensions(r)
        grease = not _GREASE.isdisjoint(cs_raw)
        ciphers = [c for c in cs_raw if c not in _GREASE] if grease else cs_raw
        ext_codes: list[int] = []
        sni = None
        alpn: list[bytes] = []
        sv: list[int] = []
        groups: list[int] = []
        ks_groups: list[int] = []
        sigalgs: list[int] = []
        pf: list[int] = []
        ticket = None
        psk_ids = 0
        psk_modes: tuple[int, ...] = ()
        flags = {
            EXT_EARLY_DATA: False,
            EXT_EXTENDED_MASTER_SECRET: False,
            EXT_RENEGOTIATION_INFO: False,
            EXT_ENCRYPT_THEN_MAC: False,
            EXT_STATUS_REQUEST: False,
            EXT_ECH: False,
        }
        rsl = None
        ccert: list[int] = []
        padding = None
        for code, data in exts:
            if code in _GREASE:
                grease = True
                continue
            ext_codes.append(code)
            if code in flags:
                flags[code] = True
            if code not in _CH_DECODED:  # only listed, or kept whole (no reader needed)
                if code == EXT_SESSION_TICKET:
                    ticket = data
                elif code == EXT_PADDING:
                    padding = len(data)
                continue
            x = _R(data)
            if code == EXT_SERVER_NAME and data:
                names = x.sub(2)
                while names.left():
                    kind = names.u8()
                    host = names.vec(2)
                    if kind == 0 and sni is None:
                        sni = wire_text(host)
            elif code == EXT_ALPN:
                lst = x.sub(2)
                while lst.left():
                    alpn.append(lst.vec(1))
            elif code == EXT_SUPPORTED_VERSIONS:
                vs = _u16_list(x.vec(1))
                g_in = not _GREASE.isdisjoint(vs)
                grease |= g_in
                sv = [v for v in vs if v not in _GREASE] if g_in else vs
            elif code == EXT_SUPPORTED_GROUPS:
                gs = _u16_list(x.vec(2))
                g_in = not _GREASE.isdisjoint(gs)
                grease |= g_in
                groups = [g for g in gs if g not in _GREASE] if g_in else gs
            elif code in (EXT_KEY_SHARE, EXT_KEY_SHARE_OLD):
                shares = x.sub(2)
                while shares.left():
                    g = shares.u16()
                    shares.vec(2)
                    if not is_grease(g):
                        ks_groups.append(g)
            elif code == EXT_SIGNATURE_ALGORITHMS:
                sa = _u16_list(x.vec(2))
                sigalgs = [s for s in sa if not is_grease(s)]
            elif code == EXT_EC_POINT_FORMATS:
                pf = list(x.vec(1))
            elif code == EXT_PRE_SHARED_KEY:
                ids = x.sub(2)
                while ids.left():
                    ids.vec(2)
                    ids.u32()
                    psk_ids += 1
            elif code == EXT_PSK_KEY_EXCHANGE_MODES:
                psk_modes = tuple(x.vec(1))
            elif code == EXT_RECORD_SIZE_LIMIT:
                rsl = x.u16()
            elif code == EXT_COMPRESS_CERTIFICATE:
                ccert = _u16_list(x.vec(1))
        ja3, ja4, ja4_r = _fingerprints(
            ver,
            tuple(ciphers),
            tuple(ext_codes),
            tuple(groups),
            tuple(pf),
            max(sv) if sv else ver,
            sni is not None,
            alpn[0] if alpn else None,
            tuple(sigalgs),
        )
        ch = _make_client_hello(
            ts,
            ver,
            rnd,
            sid,
            tuple(ciphers),
            comp,
            tuple(ext_codes),
            sni,
            tuple([wire_text(a) for a in alpn]),
            tuple(sv),
            tuple(groups),
            tuple(ks_groups),
            tuple(sigalgs),
            tuple(pf),
            ticket,
            psk_ids,
            psk_modes,
            flags[EXT_EARLY_DATA],
            flags[EXT_EXTENDED_MASTER_SECRET],
            flags[EXT_RENEGOTIATION_INFO],
            flags[EXT_ENCRYPT_THEN_MAC],
            flags[EXT_STATUS_REQUEST],
            rsl,
            tuple(ccert),
            flags[EXT_ECH],
            padding,
            grease,
            False,
            ja3,
            ja4,
            ja4_r,
        )
        if self.client_hello is not None and not self.hello_retry:
            self._anomaly(
                ts,
                True,
                "tls_repeated_client_hello",
                "a second ClientHello without a HelloRetryRequest",
            )
        self.client_hello = ch
        self._out.append(ch)

    def _server_hello(self, body: bytes, ts: int) -> None:
        r = _R(body)
        ver = r.u16()
        rnd = r.take(32)
        if is_draft_before_22(ver):
            sid, cipher, comp = b"", r.u16(), 0
        else:
            sid = r.vec(1)
            cipher = r.u16()
            comp = r.u8()
        exts = self._extensions(r)
        negotiated = ver
        alpn = None
        ks = None
        psk = None
        flags = {
            EXT_EXTENDED_MASTER_SECRET: False,
            EXT_RENEGOTIATION_INFO: False,
            EXT_ENCRYPT_THEN_MAC: False,
            EXT_SESSION_TICKET: False,
        }
        codes: list[int] = []
        for code, data in exts:
            codes.append(code)
            if code in flags:
                flags[code] = True
            x = _R(data)
            if code == EXT_SUPPORTED_VERSIONS:
                negotiated = x.u16()
            elif code == EXT_ALPN:
                lst = x.sub(2)
                if lst.left():
                    alpn = wire_text(lst.vec(1))
            elif code in (EXT_KEY_SHARE, EXT_KEY_SHARE_OLD):
                ks = x.u16()  # ServerHello: group + share; HRR: selected group only
            elif code == EXT_PRE_SHARED_KEY:
                psk = x.u16()
        hrr = rnd == HRR_RANDOM
        ja3s = f"{ver},{cipher},{'-'.join(map(str, codes))}"
        sh = _make_server_hello(
            ts,
            ver,
            negotiated,
            rnd,
            sid,
            cipher,
            comp,
            tuple(codes),
            alpn,
            ks,
            psk,
            flags[EXT_EXTENDED_MASTER_SECRET],
            flags[EXT_RENEGOTIATION_INFO],
            flags[EXT_ENCRYPT_THEN_MAC],
            flags[EXT_SESSION_TICKET],
            hrr,
            ja3s,
        )
        self._out.append(sh)
        if hrr:
            self.hello_retry = True
            return
        self.server_hello = sh
        self.version = negotiated
        self.cipher = cipher
        self.alpn_selected = alpn
        if cipher not in CIPHER_SUITES and not is_grease(cipher):
            self._anomaly(ts, False, "tls_unknown_cipher", f"server chose 0x{cipher:04x}")
        if is_tls13(negotiated):
            # TLS 1.3 (or a draft/variant): everything after this message is encrypted, both ways.
            self.tls13 = True
            for d in self._d.values():
                d.encrypted = True
                d.hs_stopped = True
            if psk is not None:
                self.resumed = "psk"
                self._out.append(_make_resumed(ts, "psk"))
        else:
            ch = self.client_hello
            if ch is not None and ch.session_id and sid == ch.session_id:
                # Session id echoed: the server resumes the cached session (RFC 5246 7.4.1.3).
                how = "ticket" if ch.session_ticket else "session_id"
                self.resumed = how
                self._out.append(_make_resumed(ts, how))

    def _server_key_exchange(self, body: bytes, ts: int) -> None:
        c = CIPHER_SUITES.get(self.cipher or -1)
        kx = c.kx if c is not None else ""
        r = _R(body)
        if kx in ("DHE", "DH"):
            p = r.vec(2)
            self._out.append(
                ServerKeyExchange(ts, "DHE", int.from_bytes(p, "big").bit_length(), None)
            )
        elif kx in ("ECDHE", "ECDH"):
            curve_type = r.u8()
            group = r.u16() if curve_type == 3 else None  # 3 = named_curve (RFC 8422 5.4)
            self._out.append(ServerKeyExchange(ts, "ECDHE", None, group))
        else:
            self._out.append(ServerKeyExchange(ts, kx or "other", None, None))
