"""Decrypt one TLS connection with its key log secrets: stream bytes in, plaintext events out.

Sans-IO like :mod:`pcapan.proto.tls`, and fed the same bytes: per direction ``data``/``gap``,
plus :meth:`TlsDecryptor.set_secrets` once the ClientHello random is known (the secrets logged
for it, or none) and :meth:`TlsDecryptor.hello` once the ServerHello named version, suite and
randoms. It frames records itself (record boundaries are all it needs of the cleartext parser's
work) and follows each direction's read state:

* TLS 1.0-1.2: records are plaintext until the direction's ChangeCipherSpec; from then on each
  record is opened with the key block's keys (:mod:`pcapan.proto.tls_crypto`), the sequence
  number counting records from 0.
* TLS 1.3 (RFC 8446 2, 4.4.4, 7): the server's records after its ServerHello use the server
  handshake traffic secret until its Finished, then ``SERVER_TRAFFIC_SECRET_0``; the client's
  use the early traffic secret for 0-RTT records (until EndOfEarlyData), the client handshake
  traffic secret until its Finished, then ``CLIENT_TRAFFIC_SECRET_0``; a KeyUpdate moves its
  sender to the next secret after the record that carried it. When a client's record does not
  open with the early secret it is tried with the handshake secret (the server rejected 0-RTT,
  or the client sent none): the key change a server never announces on the wire.

Decrypted application data comes out as :class:`Plaintext`; decrypted handshake messages as
events: :class:`EncryptedExtensions` (the selected ALPN, early data accepted),
:class:`pcapan.proto.tls.Certificate` (the TLS 1.3 chain, same event as TLS 1.2's),
:class:`pcapan.proto.tls.HandshakeMessage` (CertificateRequest, CertificateVerify, ...),
:class:`SessionTicket` (lifetime, early-data allowance), :class:`KeyUpdate`; alerts as
:class:`pcapan.proto.tls.Alert` with level and description.

Never guessed: after a gap a direction stops (the record boundaries and, in TLS 1.3, the nonce,
which counts records, are lost), and so after the first record that fails to open (wrong key,
corrupt record): one :class:`DecryptAnomaly` each, and :attr:`TlsDecryptor.error` names the
first reason. 0-RTT plaintext is held until the server's EncryptedExtensions (or the client's
EndOfEarlyData) says it was accepted, and dropped when it was not, as the server did.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from dataclasses import dataclass
from itertools import accumulate

from pcapan.config import (
    MAX_TLS_CERTS_PER_CHAIN,
    MAX_TLS_DECRYPT_PENDING_BYTES,
    MAX_TLS_HANDSHAKE_MESSAGE_BYTES,
    MAX_TLS_RECORD_BYTES,
)
from pcapan.errors import ParserError
from pcapan.model import fast_maker
from pcapan.proto.tls import (
    ALERT,
    APPLICATION_DATA,
    CCS,
    CONTENT_TYPES,
    HANDSHAKE,
    Alert,
    Certificate,
    HandshakeMessage,
)
from pcapan.proto.tls_crypto import (
    TLS10,
    TLS13,
    DecryptError,
    RecordCipher,
    suite_spec,
    tls12_ciphers,
    tls13_cipher,
)
from pcapan.proto.tls_keylog import Secrets

HS_END_OF_EARLY_DATA = 5
HS_ENCRYPTED_EXTENSIONS = 8
HS_KEY_UPDATE = 24
_EXT_ALPN = 16
_EXT_EARLY_DATA = 42

# decrypt_error codes (the tls table's column; see the schema)
NO_KEY = "no_key"
MISSING_SECRET = "missing_secret"
BAD_KEY = "bad_key"
UNSUPPORTED = "unsupported"
GAP = "gap"
OVERFLOW = "overflow"


# --- events ---------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Plaintext:
    ts_ns: int  # when the record that carried it was complete
    is_orig: bool  # True: the client's
    data: bytes
    ts_first_ns: int  # when that record's first byte came (a response's first byte)


_make_plaintext = fast_maker(Plaintext)  # positional; one per decrypted record


@dataclass(frozen=True, slots=True)
class EncryptedExtensions:
    ts_ns: int
    extensions: tuple[int, ...]
    alpn: str | None  # the protocol the server selected
    early_data: bool  # the server accepted 0-RTT data


@dataclass(frozen=True, slots=True)
class SessionTicket:
    """A TLS 1.3 NewSessionTicket (RFC 8446 4.6.1)."""

    ts_ns: int
    lifetime_s: int
    ticket_len: int
    max_early_data: int | None  # the early_data extension's max_early_data_size, if any


@dataclass(frozen=True, slots=True)
class KeyUpdate:
    ts_ns: int
    is_orig: bool
    update_requested: bool


@dataclass(frozen=True, slots=True)
class DecryptAnomaly:
    ts_ns: int
    is_orig: bool
    kind: str
    detail: str


DecryptEvent = (
    Plaintext
    | EncryptedExtensions
    | SessionTicket
    | KeyUpdate
    | DecryptAnomaly
    | Certificate
    | HandshakeMessage
    | Alert
)

_ANOMALY_KIND = {
    NO_KEY: "tls_decrypt_no_key",
    MISSING_SECRET: "tls_decrypt_missing_secret",
    BAD_KEY: "tls_decrypt_failed",
    UNSUPPORTED: "tls_decrypt_unsupported",
    GAP: "tls_decrypt_gap",
    OVERFLOW: "tls_decrypt_overflow",
}


class _Side:
    """One direction's decryption state (a plain slotted class: two per connection)."""

    __slots__ = (
        "buf",
        "first",
        "stopped",
        "pending",
        "head_ts",
        "pending_bytes",
        "cipher",
        "phase",
        "hs",
        "records",
    )

    def __init__(self) -> None:
        self.buf = bytearray()
        self.first = True
        self.stopped = False
        # (header, body, time complete, time of the first byte)
        self.pending: list[tuple[bytes, bytes, int, int]] = []
        self.head_ts = 0  # time of the first byte of the record buffered incomplete
        self.pending_bytes = 0
        self.cipher: RecordCipher | None = None
        self.phase = "plain"  # plain | early | handshake | app (TLS 1.3); plain | on (TLS 1.2)
        self.hs = bytearray()
        self.records = 0  # records decrypted


class TlsDecryptor:
    """See the module docstring. ``is_orig`` True is the client, as in the parser."""

    def __init__(self) -> None:
        self._s = {True: _Side(), False: _Side()}
        self._out: list[DecryptEvent] = []
        self.secrets: Secrets | None = None
        self.keyed: bool | None = None  # None until set_secrets
        self.version: int | None = None
        self.cipher: int | None = None
        self.tls13 = False
        self._client_random = b""
        self._server_random = b""
        self._etm = False
        self._early_offered = False
        self._early: list[tuple[bytes, int, int]] = []  # 0-RTT plaintext held (data, ts, ts0)
        self._rec_ts0 = 0  # first-byte time of the record being opened
        self._early_bytes = 0
        self._early_verdict: bool | None = None
        self._hs_cipher: dict[bool, RecordCipher | None] = {}  # TLS 1.3 handshake secrets
        self._tls12: tuple[RecordCipher, RecordCipher] | None = None  # (client, server)
        self.error: str | None = None  # the first reason a direction stopped
        self.alpn: str | None = None

    # -- state from the cleartext parser --------------------------------------------------------
    @property
    def decrypted_records(self) -> int:
        return self._s[True].records + self._s[False].records

    def set_secrets(
        self, secrets: Secrets | None, client_random: bytes, ts_ns: int
    ) -> list[DecryptEvent]:
        """The ClientHello was seen: its random's secrets (None: not in the key log)."""
        self._out = []
        self._client_random = client_random
        self.secrets = secrets
        self.keyed = secrets is not None
        if secrets is None:
            self._fail_all(ts_ns, NO_KEY, "no key log entry for this ClientHello random")
        return self._take()

    def hello(
        self,
        version: int,
        cipher: int,
        server_random: bytes,
        etm: bool,
        early_offered: bool,
        ts_ns: int,
    ) -> list[DecryptEvent]:
        """The ServerHello that negotiated (not a HelloRetryRequest) was seen. Records held
        until now are decrypted."""
        self._out = []
        if self.version is not None or not self.keyed:
            return self._take()
        self.version, self.cipher = version, cipher
        self.tls13 = version == TLS13
        self._server_random, self._etm, self._early_offered = server_random, etm, early_offered
        spec = suite_spec(cipher)
        if not TLS10 <= version <= TLS13:
            self._fail_all(ts_ns, UNSUPPORTED, f"version 0x{version:04x} is not decrypted")
        elif spec is None or spec.tls13 != self.tls13:
            self._fail_all(ts_ns, UNSUPPORTED, f"cipher suite 0x{cipher:04x} is not decrypted")
        elif self.tls13:
            self._start_tls13(ts_ns)
        for c in (True, False):
            s = self._s[c]
            held, s.pending, s.pending_bytes = s.pending, [], 0
            for hdr, body, ts, ts0 in held:
                self._rec_ts0 = ts0
                self._record(s, c, hdr, body, ts)
        return self._take()

    def _secret(self, label: str) -> bytes | None:
        return self.secrets.get(label) if self.secrets is not None else None

    def _start_tls13(self, ts: int) -> None:
        spec = suite_spec(self.cipher or 0)
        assert spec is not None
        for c, label in (
            (True, "CLIENT_HANDSHAKE_TRAFFIC_SECRET"),
            (False, "SERVER_HANDSHAKE_TRAFFIC_SECRET"),
        ):
            sec = self._secret(label)
            self._hs_cipher[c] = tls13_cipher(spec, sec) if sec is not None else None
        early = self._secret("CLIENT_EARLY_TRAFFIC_SECRET")
        cs = self._s[True]
        if self._early_offered:
            cs.phase = "early"
            cs.cipher = tls13_cipher(spec, early) if early is not None else None
        else:
            self._enter(True, "handshake", ts)
        self._enter(False, "handshake", ts)

    def _enter(self, c: bool, phase: str, ts: int) -> None:
        """Move a TLS 1.3 direction to its next traffic secret."""
        s = self._s[c]
        s.phase = phase
        spec = suite_spec(self.cipher or 0)
        assert spec is not None
        if phase == "handshake":
            s.cipher = self._hs_cipher.get(c)
            label = "CLIENT_HANDSHAKE_TRAFFIC_SECRET" if c else "SERVER_HANDSHAKE_TRAFFIC_SECRET"
        else:
            label = "CLIENT_TRAFFIC_SECRET_0" if c else "SERVER_TRAFFIC_SECRET_0"
            sec = self._secret(label)
            s.cipher = tls13_cipher(spec, sec) if sec is not None else None
        if s.cipher is None:
            self._stop(s, c, ts, MISSING_SECRET, f"the key log has no {label}")

    # -- stream contract ------------------------------------------------------------------------
    def data(self, is_orig: bool, chunk: bytes, ts_ns: int) -> list[DecryptEvent]:
        s = self._s[is_orig]
        if s.stopped or self.keyed is False:
            return []
        self._out = []
        self._frame(s, is_orig, chunk, None, [ts_ns])
        return self._take()

    def data_run(
        self, is_orig: bool, mv: memoryview, offs: list[int], lens: list[int], tss: list[int]
    ) -> list[DecryptEvent]:
        """A run of in-order segments (``mv[off:off+len]`` each, ``tss`` their times) in one
        call: each record gets the time of the segment that completed it, as :meth:`data` per
        segment would give it."""
        s = self._s[is_orig]
        if s.stopped or self.keyed is False:
            return []
        self._out = []
        chunk = b"".join([mv[o : o + n] for o, n in zip(offs, lens, strict=True)])
        self._frame(s, is_orig, chunk, list(accumulate(lens)), tss)
        return self._take()

    def _frame(
        self, s: _Side, is_orig: bool, chunk: bytes, ends: list[int] | None, tss: list[int]
    ) -> None:
        """Records out of the direction's buffer plus ``chunk``; ``ends``: where each segment
        of the chunk ends (None: one segment, time ``tss[0]``)."""
        base = len(s.buf)  # chunk offset 0 is at this buffer position
        if base:
            s.buf += chunk
            buf = bytes(s.buf)
        else:
            # (no copy while whole records are in the chunk; slices of bytes are bytes)
            buf = chunk if type(chunk) is bytes else bytes(chunk)
        pos, n = 0, len(buf)
        ts_ns = ts0 = tss[0]
        last = len(tss) - 1
        while n - pos >= 5 and not s.stopped:
            if s.first:
                s.first = False
                if buf[pos] & 0x80:  # SSLv2 ClientHello: nothing to decrypt in it
                    ln = ((buf[pos] & 0x7F) << 8) | buf[pos + 1]
                    if n - pos < 2 + ln:
                        s.first = True
                        break
                    pos += 2 + ln
                    continue
            ctype = buf[pos]
            ln = (buf[pos + 3] << 8) | buf[pos + 4]
            if ctype not in CONTENT_TYPES or buf[pos + 1] != 3 or ln > MAX_TLS_RECORD_BYTES:
                # (the cleartext parser reports the framing; decryption just stops)
                self._stop(s, is_orig, ts_ns, UNSUPPORTED, "record framing lost")
                break
            end = pos + 5 + ln
            if end > n:
                break
            # The time of the segment that completed the record, and of the one holding its
            # first byte (buffered earlier: head_ts).
            if ends is not None:
                ts_ns = tss[min(bisect_left(ends, end - base), last)]
            if pos < base:
                self._rec_ts0 = s.head_ts
            elif ends is None:
                self._rec_ts0 = ts0
            else:
                self._rec_ts0 = tss[min(bisect_right(ends, pos - base), last)]
            hdr = buf[pos : pos + 5]
            body = buf[pos + 5 : end]
            pos = end
            self._record(s, is_orig, hdr, body, ts_ns)
        if s.stopped:
            s.buf.clear()
            return
        if pos < n:
            s.head_ts = self._start_ts(s, pos, base, ends, tss)
        if base:
            del s.buf[:pos]
        elif pos < n:
            s.buf += buf[pos:]

    @staticmethod
    def _start_ts(s: _Side, pos: int, base: int, ends: list[int] | None, tss: list[int]) -> int:
        """Time of the segment holding buffer position ``pos`` (buffered earlier: head_ts)."""
        if pos < base:
            return s.head_ts
        if ends is None:
            return tss[0]
        return tss[min(bisect_right(ends, pos - base), len(tss) - 1)]

    def gap(self, is_orig: bool, nbytes: int, ts_ns: int) -> list[DecryptEvent]:
        s = self._s[is_orig]
        self._out = []
        if not s.stopped and self.keyed:
            self._stop(
                s,
                is_orig,
                ts_ns,
                GAP,
                f"{nbytes} bytes missing: records after them cannot be decrypted",
            )
        return self._take()

    def end(self, is_orig: bool, ts_ns: int) -> list[DecryptEvent]:
        s = self._s[is_orig]
        s.stopped = True
        s.buf.clear()
        s.pending = []
        return []

    # -- records ----------------------------------------------------------------------------------
    def _take(self) -> list[DecryptEvent]:
        out, self._out = self._out, []
        return out

    def _stop(self, s: _Side, c: bool, ts: int, code: str, detail: str) -> None:
        if s.stopped:
            return
        s.stopped = True
        s.pending = []
        if self.error is None:
            self.error = code
        who = "client" if c else "server"
        self._out.append(DecryptAnomaly(ts, c, _ANOMALY_KIND[code], f"{who}: {detail}"))

    def _fail_all(self, ts: int, code: str, detail: str) -> None:
        """A reason that holds for the whole connection: one anomaly, both directions stop."""
        for s in self._s.values():
            s.stopped = True
            s.pending = []
            s.buf.clear()
        if self.error is None:
            self.error = code
        self._out.append(DecryptAnomaly(ts, True, _ANOMALY_KIND[code], detail))

    def _record(self, s: _Side, c: bool, hdr: bytes, body: bytes, ts: int) -> None:
        if s.stopped:
            return
        ctype = hdr[0]
        if self.version is None:
            # Before the suite is known (0-RTT records come before the ServerHello; a live key
            # log may name the secrets only after the handshake): every record is held.
            s.pending.append((hdr, body, ts, self._rec_ts0))
            s.pending_bytes += len(body)
            if s.pending_bytes > MAX_TLS_DECRYPT_PENDING_BYTES:
                self._stop(s, c, ts, OVERFLOW, "records held for a ServerHello that never came")
            return
        cipher = s.cipher
        if self.tls13:
            if ctype != APPLICATION_DATA:
                return  # ClientHello, ServerHello, compatibility CCS, cleartext alerts
            if s.phase == "early":
                self._tls13_record(s, c, hdr, body, ts)
                return
            if cipher is None:
                return
        elif ctype == CCS:
            if s.phase == "on":
                self._stop(s, c, ts, UNSUPPORTED, "renegotiation is not decrypted")
                return
            s.phase = "on"
            s.cipher = self._tls12_cipher(c, ts)
            if s.cipher is None:
                s.stopped = True
            return
        elif s.phase != "on" or cipher is None:
            return  # cleartext handshake before ChangeCipherSpec
        # A record under the direction's current keys (the usual case, per record).
        try:
            inner, pt = cipher.decrypt(hdr, body)
        except DecryptError as e:
            self._stop(s, c, ts, BAD_KEY, str(e))
            return
        s.records += 1
        if inner == APPLICATION_DATA:  # (not early data: that phase went above)
            if pt:
                self._out.append(_make_plaintext(ts, c, pt, self._rec_ts0))
        else:
            self._inner(s, c, inner, pt, ts)

    def _tls12_cipher(self, c: bool, ts: int) -> RecordCipher | None:
        if self._tls12 is not None:
            return self._tls12[0] if c else self._tls12[1]
        master = self.secrets.master_secret if self.secrets is not None else None
        spec = suite_spec(self.cipher or 0)
        if master is None or spec is None:
            self._fail_all(ts, MISSING_SECRET, "the key log has no CLIENT_RANDOM for this session")
            return None
        cl, sv = tls12_ciphers(
            spec,
            self.version or 0,
            master,
            self._client_random,
            self._server_random,
            self._etm,
        )
        self._tls12 = (cl, sv)
        return cl if c else sv

    def _tls13_record(self, s: _Side, c: bool, hdr: bytes, body: bytes, ts: int) -> None:
        """A client record in the early phase (see the module docstring); the other TLS 1.3
        records are opened by :meth:`_record`."""
        cipher = s.cipher
        hs = self._hs_cipher.get(True)
        try:
            if cipher is None:
                raise DecryptError("no early traffic secret")
            inner, pt = cipher.decrypt(hdr, body)
        except DecryptError:
            # Not 0-RTT data (any more): the client's handshake flight, the early data over
            # (rejected, or none sent). The handshake key must open it.
            if hs is None:
                self._enter(True, "handshake", ts)
                return
            try:
                inner, pt = hs.decrypt(hdr, body)
            except DecryptError:
                if cipher is None:
                    # 0-RTT data we have no secret for: skipped, said once
                    if self._early_verdict is None:
                        self._early_verdict = False
                        self._out.append(
                            DecryptAnomaly(
                                ts,
                                c,
                                _ANOMALY_KIND[MISSING_SECRET],
                                "client: the key log has no CLIENT_EARLY_TRAFFIC_SECRET; "
                                "0-RTT records skipped",
                            )
                        )
                    return
                self._stop(s, c, ts, BAD_KEY, "record opens with no client secret")
                return
            s.phase, s.cipher = "handshake", hs
            self._drop_early(ts)
            s.records += 1
            self._inner(s, c, inner, pt, ts)
            return
        s.records += 1
        self._inner(s, c, inner, pt, ts)

    # -- inner content ---------------------------------------------------------------------------
    def _inner(self, s: _Side, c: bool, inner: int, pt: bytes, ts: int) -> None:
        if inner == APPLICATION_DATA:
            if not pt:
                return
            if self.tls13 and c and s.phase == "early":
                self._hold_early(pt, ts)
            else:
                self._out.append(_make_plaintext(ts, c, pt, self._rec_ts0))
        elif inner == HANDSHAKE:
            s.hs += pt
            self._handshake(s, c, ts)
        elif inner == ALERT:
            for i in range(0, len(pt) - 1, 2):
                self._out.append(Alert(ts, c, pt[i], pt[i + 1]))
        # (heartbeat, unknown inner types: nothing to hand on)

    def _hold_early(self, pt: bytes, ts: int) -> None:
        if self._early_verdict is True:
            self._out.append(_make_plaintext(ts, True, pt, self._rec_ts0))
            return
        if self._early_verdict is False:
            return
        self._early.append((pt, ts, self._rec_ts0))
        self._early_bytes += len(pt)
        if self._early_bytes > MAX_TLS_DECRYPT_PENDING_BYTES:
            self._stop(self._s[True], True, ts, OVERFLOW, "0-RTT data held past the bound")

    def _accept_early(self, accepted: bool) -> None:
        if self._early_verdict is not None:
            return
        self._early_verdict = accepted
        held, self._early = self._early, []
        self._early_bytes = 0
        if accepted:
            self._out.extend([_make_plaintext(t, True, d, t0) for d, t, t0 in held])

    def _drop_early(self, ts: int) -> None:
        self._accept_early(False)

    def _handshake(self, s: _Side, c: bool, ts: int) -> None:
        hs = s.hs
        pos = 0
        after: list[str] = []
        while len(hs) - pos >= 4:
            mtype = hs[pos]
            ln = int.from_bytes(hs[pos + 1 : pos + 4], "big")
            if ln > MAX_TLS_HANDSHAKE_MESSAGE_BYTES:
                self._stop(s, c, ts, OVERFLOW, f"handshake message of {ln} bytes")
                return
            if len(hs) - pos - 4 < ln:
                break
            body = bytes(hs[pos + 4 : pos + 4 + ln])
            pos += 4 + ln
            try:
                self._message(c, mtype, body, ts, after)
            except ParserError as e:
                self._out.append(
                    DecryptAnomaly(ts, c, "tls_bad_handshake", f"decrypted type {mtype}: {e}")
                )
        del hs[:pos]
        # Key changes take effect after the record that carried their message.
        for what in after:
            if what == "finished":
                self._enter(c, "app", ts)
            elif what == "eoed":
                self._accept_early(True)
                self._enter(c, "handshake", ts)
            elif what == "update" and s.cipher is not None:
                s.cipher.key_update()

    def _message(self, c: bool, mtype: int, body: bytes, ts: int, after: list[str]) -> None:
        if not self.tls13:
            if mtype in (0, 1, 2):  # HelloRequest, ClientHello, ServerHello: renegotiation
                self._stop(self._s[c], c, ts, UNSUPPORTED, "renegotiation is not decrypted")
            return  # (Finished, the first encrypted message: nothing more to read)
        if mtype == 20:
            if self._s[c].phase == "handshake":
                after.append("finished")
            return
        if mtype == HS_END_OF_EARLY_DATA and c:
            after.append("eoed")
            return
        if mtype == HS_KEY_UPDATE:
            r = _Reader(body)
            req = r.u8()
            self._out.append(KeyUpdate(ts, c, req == 1))
            after.append("update")
            return
        if mtype == HS_ENCRYPTED_EXTENSIONS and not c:
            exts = _extensions(_Reader(body))
            alpn = None
            early = False
            codes = []
            for code, data in exts:
                codes.append(code)
                if code == _EXT_ALPN:
                    r = _Reader(data).sub(2)
                    alpn = r.vec(1).decode("ascii", "replace")
                elif code == _EXT_EARLY_DATA:
                    early = True
            self.alpn = alpn
            self._out.append(EncryptedExtensions(ts, tuple(codes), alpn, early))
            if self._early_offered:
                self._accept_early(early)
            return
        if mtype == 11:
            r = _Reader(body)
            r.vec(1)  # certificate_request_context
            lst = r.sub(3)
            chain: list[bytes] = []
            count = 0
            while lst.left():
                der = lst.vec(3)
                lst.vec(2)  # per-certificate extensions (OCSP, SCT)
                count += 1
                if len(chain) < MAX_TLS_CERTS_PER_CHAIN:
                    chain.append(der)
            self._out.append(Certificate(ts, c, tuple(chain), count))
            return
        if mtype == 4 and not c:
            r = _Reader(body)
            life = r.u32()
            r.u32()  # ticket_age_add
            r.vec(1)  # nonce
            ticket = r.vec(2)
            max_early = None
            for code, data in _extensions(r):
                if code == _EXT_EARLY_DATA:
                    max_early = _Reader(data).u32()
            self._out.append(SessionTicket(ts, life, len(ticket), max_early))
            return
        self._out.append(HandshakeMessage(ts, c, mtype, len(body)))


class _Reader:
    __slots__ = ("b", "i", "end")

    def __init__(self, b: bytes, i: int = 0, end: int | None = None) -> None:
        self.b, self.i, self.end = b, i, len(b) if end is None else end

    def left(self) -> int:
        return self.end - self.i

    def take(self, n: int) -> bytes:
        if n > self.end - self.i:
            raise ParserError(f"needs {n} bytes, {self.end - self.i} left")
        out = self.b[self.i : self.i + n]
        self.i += n
        return out

    def u8(self) -> int:
        return self.take(1)[0]

    def u32(self) -> int:
        return int.from_bytes(self.take(4), "big")

    def vec(self, lenbytes: int) -> bytes:
        return self.take(int.from_bytes(self.take(lenbytes), "big"))

    def sub(self, lenbytes: int) -> _Reader:
        n = int.from_bytes(self.take(lenbytes), "big")
        start = self.i
        self.take(n)
        return _Reader(self.b, start, start + n)


def _extensions(r: _Reader) -> list[tuple[int, bytes]]:
    if not r.left():
        return []
    ext = r.sub(2)
    out = []
    while ext.left():
        code = int.from_bytes(ext.take(2), "big")
        out.append((code, ext.vec(2)))
    return out
