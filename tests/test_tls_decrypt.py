"""TLS decryption units: the key log parser, the key schedules and record protection, and the
per-connection decryptor, against RFC 8448 (TLS 1.3 example handshake traces).

RFC 8448 section 3 ("Simple 1-RTT Handshake", TLS_AES_128_GCM_SHA256) publishes every record of
the exchange with the secrets that protect them. The values below are copied from the RFC's
text (its "complete record" and "expanded" lines, spaces removed); they are not produced by
pcapan. Every AEAD open checks the record's 16-byte tag, so a single wrong byte in a record, a
secret, or in our HKDF-Expand-Label / nonce / additional data would fail the tests.
"""

from __future__ import annotations

import hashlib

import pytest

from pcapan.proto.tls import Alert, Certificate, HandshakeMessage, TlsConnection
from pcapan.proto.tls_crypto import (
    TLS10,
    TLS11,
    TLS12,
    DecryptError,
    RecordCipher,
    hkdf_expand_label,
    prf,
    suite_spec,
    tls12_ciphers,
    tls13_cipher,
)
from pcapan.proto.tls_decrypt import (
    DecryptAnomaly,
    EncryptedExtensions,
    Plaintext,
    SessionTicket,
    TlsDecryptor,
)
from pcapan.proto.tls_keylog import KeyLog

H = bytes.fromhex

# --- RFC 8448 section 3 -------------------------------------------------------------------------
CLIENT_RANDOM = H("cb34ecb1e78163ba1c38c6dacb196a6dffa21a8d9912ec18a2ef6283024dece7")
CLIENT_HS_SECRET = H("b3eddb126e067f35a780b3abf45e2d8f3b1a950738f52e9600746a0e27a55a21")
SERVER_HS_SECRET = H("b67b7d690cc16c4e75e54213cb2d37b4e9c912bcded9105d42befd59d391ad38")
CLIENT_AP_SECRET = H("9e40646ce79a7f9dc05af8889bce6552875afa0b06df0087f792ebb7c17504a5")
SERVER_AP_SECRET = H("a11af9f05531f856ad47116b45a950328204b4f44bfb6b3a4b4f1f3fcb631643")
# {server} derive write traffic keys for handshake data: key / iv expanded
SERVER_HS_KEY = H("3fce516009c21727d0f2e4e86ee403bc")
SERVER_HS_IV = H("5d313eb2671276ee13000b30")
# {client} derive write traffic keys for application data
CLIENT_AP_KEY = H("17422dda596ed5d9acd890e3c63f5051")
CLIENT_AP_IV = H("5b78923dee08579033e523d9")
# {server} derive write traffic keys for application data
SERVER_AP_KEY = H("9f02283b6c9c07efc26bb9f2ac92e356")
SERVER_AP_IV = H("cf782b88dd83549aadf1e984")

CLIENT_HELLO_RECORD = H(
    "16030100c4010000c00303cb34ecb1e78163ba1c38c6dacb196a6dffa21a8d9912ec18a2ef6283024dece7"
    "000006130113031302010000910000000b0009000006736572766572ff01000100000a00140012001d0017"
    "001800190100010101020103010400230000003300260024001d002099381de560e4bd43d23d8e435a7dba"
    "feb3c06e51c13cae4d5413691e529aaf2c002b0003020304000d0020001e04030503060302030804080508"
    "0604010501060102010402050206020202002d00020101001c00024001"
)
SERVER_HELLO_RECORD = H(
    "160303005a020000560303a6af06a4121860dc5e6e60249cd34c95930c8ac5cb1434dac155772ed3e26928"
    "00130100002e00330024001d0020c9828876112095fe66762bdbf7c672e156d6cc253b833df1dd69b1b04e"
    "751f0f002b00020304"
)
# {server} send handshake record: EncryptedExtensions, Certificate, CertificateVerify, Finished
SERVER_FLIGHT_RECORD = H(
    "17030302a2d1ff334a56f5bff6594a07cc87b580233f500f45e489e7f33af35edf7869fcf40aa40aa2b8ea"
    "73f848a7ca07612ef9f945cb960b4068905123ea78b111b429ba9191cd05d2a389280f526134aadc7fc78c"
    "4b729df828b5ecf7b13bd9aefb0e57f271585b8ea9bb355c7c79020716cfb9b1183ef3ab20e37d57a6b9d7"
    "477609aee6e122a4cf51427325250c7d0e509289444c9b3a648f1d71035d2ed65b0e3cdd0cbae8bf2d0b22"
    "7812cbb360987255cc744110c453baa4fcd610928d809810e4b7ed1a8fd991f06aa6248204797e36a6a73b"
    "70a2559c09ead686945ba246ab66e5edd8044b4c6de3fcf2a89441ac66272fd8fb330ef8190579b3684596"
    "c960bd596eea520a56a8d650f563aad27409960dca63d3e688611ea5e22f4415cf9538d51a200c27034272"
    "968a264ed6540c84838d89f72c24461aad6d26f59ecaba9acbbb317b66d902f4f292a36ac1b639c637ce34"
    "3117b659622245317b49eeda0c6258f100d7d961ffb138647e92ea330faeea6dfa31c7a84dc3bd7e1b7a6c"
    "7178af36879018e3f252107f243d243dc7339d5684c8b0378bf30244da8c87c843f5e56eb4c5e8280a2b48"
    "052cf93b16499a66db7cca71e4599426f7d461e66f99882bd89fc50800becca62d6c74116dbd2972fda1fa"
    "80f85df881edbe5a37668936b335583b599186dc5c6918a396fa48a181d6b6fa4f9d62d513afbb992f2b99"
    "2f67f8afe67f76913fa388cb5630c8ca01e0c65d11c66a1e2ac4c85977b7c7a6999bbf10dc35ae69f55156"
    "14636c0b9b68c19ed2e31c0b3b66763038ebba42f3b38edc0399f3a9f23faa63978c317fc9fa66a73f60f0"
    "504de93b5b845e275592c12335ee340bbc4fddd502784016e4b3be7ef04dda49f4b440a30cb5d2af939828"
    "fd4ae3794e44f94df5a631ede42c1719bfdabf0253fe5175be898e750edc53370d2b"
)
# {client} send handshake record: Finished
CLIENT_FINISHED_RECORD = H(
    "170303003575ec4dc238cce60b298044a71e219c56cc77b0517fe9b93c7a4bfc44d87f38f80338ac98fc46"
    "deb384bd1caeacab6867d726c40546"
)
# {server} send handshake record: NewSessionTicket (under the server application keys, seq 0)
SERVER_TICKET_RECORD = H(
    "17030300de3a6b8f90414a97d6959c3487680de5134a2b240e6cffac116e95d41d6af8f6b580dcf3d11d63"
    "c758db289a015940252f55713e061dc13e078891a38efbcf5753ad8ef170ad3c7353d16d9da773b9ca7f2b"
    "9fa1b6c0d4a3d03f75e09c30ba1e62972ac46f75f7b981be63439b2999ce13064615139891d5e4c5b406f1"
    "6e3fc181a77ca475840025db2f0a77f81b5ab05b94c01346755f69232c86519d86cbeeac87aac347d143f9"
    "605d64f650db4d023e70e952ca49fe5137121c74bc2697687e248746d6df353005f3bce18696129c815355"
    "6b3b6c6779b37bf15985684f"
)
# {client} / {server} send application_data record: payload 00 01 .. 31 (50 octets)
CLIENT_DATA_RECORD = H(
    "1703030043a23f7054b62c94d0affafe8228ba55cbefacea42f914aa66bcab3f2b9819a8a5b46b395bd54a"
    "9a20441e2b62974e1f5a6292a2977014bd1e3deae63aeebb21694915e4"
)
SERVER_DATA_RECORD = H(
    "17030300432e937e11ef4ac740e538ad36005fc4a46932fc3225d05f82aa1b36e30efaf97d90e6dffc602d"
    "cb501a59a8fcc49c4bf2e5f0a21c0047c2abf332540dd032e167c2955d"
)
# {client} send alert record: close_notify (01 00)
CLIENT_ALERT_RECORD = H("1703030013c9872760655666b74d7ff1153efd6db6d0b0e3")
PAYLOAD = bytes(range(0x32))

RFC8448_KEYLOG = "\n".join(
    [
        "# RFC 8448 section 3 secrets, as an NSS key log",
        f"CLIENT_HANDSHAKE_TRAFFIC_SECRET {CLIENT_RANDOM.hex()} {CLIENT_HS_SECRET.hex()}",
        f"SERVER_HANDSHAKE_TRAFFIC_SECRET {CLIENT_RANDOM.hex()} {SERVER_HS_SECRET.hex()}",
        f"CLIENT_TRAFFIC_SECRET_0 {CLIENT_RANDOM.hex()} {CLIENT_AP_SECRET.hex()}",
        f"SERVER_TRAFFIC_SECRET_0 {CLIENT_RANDOM.hex()} {SERVER_AP_SECRET.hex()}",
        "",
    ]
)


def test_hkdf_expand_label_gives_the_rfc_traffic_keys() -> None:
    for secret, key, iv in (
        (SERVER_HS_SECRET, SERVER_HS_KEY, SERVER_HS_IV),
        (CLIENT_AP_SECRET, CLIENT_AP_KEY, CLIENT_AP_IV),
        (SERVER_AP_SECRET, SERVER_AP_KEY, SERVER_AP_IV),
    ):
        assert hkdf_expand_label(secret, "key", b"", 16, "sha256") == key
        assert hkdf_expand_label(secret, "iv", b"", 12, "sha256") == iv


def test_tls13_records_open_with_the_rfc_secrets() -> None:
    spec = suite_spec(0x1301)
    assert spec is not None
    srv = tls13_cipher(spec, SERVER_HS_SECRET)
    ctype, pt = srv.decrypt(SERVER_FLIGHT_RECORD[:5], SERVER_FLIGHT_RECORD[5:])
    # RFC 8448: the flight's plaintext is 657 octets, EncryptedExtensions (type 8) first, then
    # Certificate (11), CertificateVerify (15), Finished (20).
    assert ctype == 22 and len(pt) == 657 and pt[0] == 8
    cl = tls13_cipher(spec, CLIENT_AP_SECRET)
    assert cl.decrypt(CLIENT_DATA_RECORD[:5], CLIENT_DATA_RECORD[5:]) == (23, PAYLOAD)
    assert cl.seq == 1
    # the server's data is its second record under its application keys (the ticket first)
    sap = tls13_cipher(spec, SERVER_AP_SECRET)
    ctype, ticket = sap.decrypt(SERVER_TICKET_RECORD[:5], SERVER_TICKET_RECORD[5:])
    assert ctype == 22 and ticket[0] == 4
    assert sap.decrypt(SERVER_DATA_RECORD[:5], SERVER_DATA_RECORD[5:]) == (23, PAYLOAD)
    assert cl.decrypt(CLIENT_ALERT_RECORD[:5], CLIENT_ALERT_RECORD[5:]) == (21, b"\x01\x00")


def test_tls13_wrong_sequence_or_key_fails_the_tag() -> None:
    spec = suite_spec(0x1301)
    assert spec is not None
    sap = tls13_cipher(spec, SERVER_AP_SECRET)
    with pytest.raises(DecryptError) as e:  # seq 0, but the data record is seq 1
        sap.decrypt(SERVER_DATA_RECORD[:5], SERVER_DATA_RECORD[5:])
    assert sap.seq == 0  # not advanced by a failure
    # no key material in the message
    for secret in (SERVER_AP_SECRET, SERVER_AP_KEY, SERVER_AP_IV):
        assert secret.hex() not in str(e.value) and secret.hex() not in repr(sap)
    bad = tls13_cipher(spec, bytes(32))
    with pytest.raises(DecryptError):
        bad.decrypt(CLIENT_DATA_RECORD[:5], CLIENT_DATA_RECORD[5:])


def _run_rfc8448(keylog_text: str) -> tuple[list, TlsDecryptor]:
    """Feed RFC 8448 section 3 as two byte streams through the cleartext parser and the
    decryptor, as the analysis layer does: client random from the parsed ClientHello, the
    ServerHello's fields once it is parsed."""
    kl = KeyLog()
    kl.add(keylog_text)
    p = TlsConnection()
    d = TlsDecryptor()
    out: list = []
    client = CLIENT_HELLO_RECORD
    server = SERVER_HELLO_RECORD + SERVER_FLIGHT_RECORD + SERVER_TICKET_RECORD
    steps = [
        (True, client, 1),
        (False, server, 2),
        (True, CLIENT_FINISHED_RECORD + CLIENT_DATA_RECORD, 3),
        (False, SERVER_DATA_RECORD, 4),
        (True, CLIENT_ALERT_RECORD, 5),
    ]
    for is_client, chunk, ts in steps:
        p.data(is_client, chunk, ts)
        if d.keyed is None and p.client_hello is not None:
            out += d.set_secrets(kl.lookup(p.client_hello.random), p.client_hello.random, ts)
        sh = p.server_hello
        if sh is not None and d.version is None:
            out += d.hello(sh.version, sh.cipher, sh.random, sh.encrypt_then_mac, False, ts)
        # byte by byte: framing across chunk boundaries
        for i in range(len(chunk)):
            out += d.data(is_client, chunk[i : i + 1], ts)
    return out, d


def test_decryptor_follows_the_rfc8448_key_schedule() -> None:
    out, d = _run_rfc8448(RFC8448_KEYLOG)
    assert not [e for e in out if isinstance(e, DecryptAnomaly)]
    ee = [e for e in out if isinstance(e, EncryptedExtensions)]
    # RFC 8448 EncryptedExtensions: supported_groups (10), record_size_limit (28),
    # server_name (0); no ALPN, no early_data
    assert len(ee) == 1 and ee[0].extensions == (10, 28, 0) and ee[0].alpn is None
    certs = [e for e in out if isinstance(e, Certificate)]
    assert len(certs) == 1 and not certs[0].is_orig and certs[0].chain_len == 1
    assert certs[0].leaf() is not None and certs[0].leaf().subject_cn == "rsa"  # type: ignore[union-attr]
    assert [e.msg_type for e in out if isinstance(e, HandshakeMessage)] == [15]
    tickets = [e for e in out if isinstance(e, SessionTicket)]
    # RFC 8448 NewSessionTicket: ticket_lifetime 00 00 00 1e (30 s), and an early_data
    # extension (00 2a 00 04 00 00 04 00: max_early_data_size 1024)
    assert [(t.lifetime_s, t.max_early_data) for t in tickets] == [(30, 1024)]
    assert [(e.is_orig, e.data) for e in out if isinstance(e, Plaintext)] == [
        (True, PAYLOAD),
        (False, PAYLOAD),
    ]
    assert [(e.is_orig, e.level, e.description) for e in out if isinstance(e, Alert)] == [
        (True, 1, 0)
    ]
    # server: flight, ticket, data; client: Finished, data, alert
    assert d.decrypted_records == 6 and d.error is None


def test_decryptor_wrong_key_stops_that_direction_once() -> None:
    bad = RFC8448_KEYLOG.replace(
        f"SERVER_TRAFFIC_SECRET_0 {CLIENT_RANDOM.hex()} {SERVER_AP_SECRET.hex()}",
        f"SERVER_TRAFFIC_SECRET_0 {CLIENT_RANDOM.hex()} {hashlib.sha256(b'x').hexdigest()}",
    )
    out, d = _run_rfc8448(bad)
    anomalies = [e for e in out if isinstance(e, DecryptAnomaly)]
    assert [(a.kind, a.is_orig) for a in anomalies] == [("tls_decrypt_failed", False)]
    assert "tag mismatch" in anomalies[0].detail
    assert SERVER_AP_SECRET.hex() not in anomalies[0].detail
    # the client's direction still decrypts; the server's data never comes out
    assert [e.is_orig for e in out if isinstance(e, Plaintext)] == [True]
    assert d.error == "bad_key"


def test_decryptor_without_key_says_so_and_emits_nothing() -> None:
    out, d = _run_rfc8448("# nothing\n")
    assert [e.kind for e in out if isinstance(e, DecryptAnomaly)] == ["tls_decrypt_no_key"]
    assert not [e for e in out if isinstance(e, Plaintext)]
    assert d.error == "no_key" and d.decrypted_records == 0


def test_decryptor_missing_application_secret() -> None:
    text = "\n".join(ln for ln in RFC8448_KEYLOG.splitlines() if "TRAFFIC_SECRET_0" not in ln)
    out, d = _run_rfc8448(text)
    kinds = [(e.kind, e.is_orig) for e in out if isinstance(e, DecryptAnomaly)]
    assert kinds == [("tls_decrypt_missing_secret", False), ("tls_decrypt_missing_secret", True)]
    # the handshake was still decrypted: the certificate is there
    assert [e for e in out if isinstance(e, Certificate)]
    assert d.error == "missing_secret"


def test_gap_stops_a_direction_never_guesses() -> None:
    kl = KeyLog()
    kl.add(RFC8448_KEYLOG)
    d = TlsDecryptor()
    p = TlsConnection()
    p.data(True, CLIENT_HELLO_RECORD, 1)
    d.set_secrets(kl.lookup(CLIENT_RANDOM), CLIENT_RANDOM, 1)
    p.data(False, SERVER_HELLO_RECORD, 2)
    sh = p.server_hello
    assert sh is not None
    d.hello(sh.version, sh.cipher, sh.random, False, False, 2)
    d.data(False, SERVER_HELLO_RECORD + SERVER_FLIGHT_RECORD, 2)
    out = d.gap(False, len(SERVER_TICKET_RECORD), 3)
    assert [e.kind for e in out if isinstance(e, DecryptAnomaly)] == ["tls_decrypt_gap"]
    # the data record after the hole would open (seq 1) if we guessed the count: we do not
    assert d.data(False, SERVER_DATA_RECORD, 4) == []


# --- TLS 1.2 ----------------------------------------------------------------------------------
def test_tls12_prf_sha256_known_answer() -> None:
    # The widely used TLS 1.2 PRF (SHA-256) test vector posted to the IETF TLS list (Ilari
    # Liusvaara's set, also in Go's crypto/tls prf_test.go: "tls12 SHA256"):
    secret = H("9bbe436ba940f017b17652849a71db35")
    seed = H("a0ba9f936cda311827a6f796ffd5198c")
    out = prf(TLS12, "sha256", secret, b"test label", seed, 100)
    assert out.hex() == (
        "e3f229ba727be17b8d122620557cd453c2aab21d07c3d495329b52d4e61edb5a6b301791e90d35c9c9a4"
        "6b4e14baf9af0fa022f7077def17abfd3797c0564bab4fbc91666e9def9b97fce34f796789baa48082d1"
        "22ee42c5a72e5a5110fff70187347b66"
    )


def test_tls10_prf_md5_sha1_known_answer() -> None:
    # The TLS 1.0/1.1 PRF (RFC 2246 5: P_MD5 over the secret's first half xor P_SHA1 over its
    # second half) against OpenSSL's test vectors "TLS1 PRF tests (from NIST test vectors)",
    # openssl/openssl test/recipes/30-test_evp_data/evpkdf_tls11_prf.txt (KDF = TLS1-PRF,
    # digest MD5-SHA1; its seed is the label then the randoms in the order listed): the master
    # secret from a 48-byte pre-master secret, then a 104-byte key block from that master secret.
    # A swapped half, a wrong split or P_SHA1 on the whole secret changes every byte.
    pms = H(
        "bded7fa5c1699c010be23dd06ada3a48349f21e5f86263d512c0c5cc379f0e78"
        "0ec55d9844b2f1db02a96453513568d0"
    )
    cr = H("e5acaf549cd25c22d964c0d930fa4b5261d2507fad84c33715b7b9a864020693")
    sr = H("135e4d557fdf3aa6406d82975d5c606a9734c9334b42136e96990fbd5358cdb2")
    master = prf(TLS10, "sha256", pms, b"master secret", cr + sr, 48)  # (hash unused < 1.2)
    assert master.hex() == (
        "2f6962dfbc744c4b2138bb6b3d33054c5ecc14f24851d9896395a44ab3964efc"
        "2090c5bf51a0891209f46c1e1e998f62"
    )
    sr2 = H("67267e650eb32444119d222a368c191af3082888dc35afe8368e638c828874be")
    cr2 = H("d58a7b1cd4fedaa232159df652ce188f9d997e061b9bf48e83b62990440931f6")
    kb = prf(TLS11, "sha256", master, b"key expansion", sr2 + cr2, 104)
    assert kb.hex() == (
        "3088825988e77fce68d19f756e18e43eb7fe672433504feaf99b3c503d9091b1"
        "64f166db301d70c9fc0870b4a94563907bee1a61fb786cb717576890bcc51cb9"
        "ead97e01d0a2fea99c953377b195205ff07b369589178796edc963fd80fdbe51"
        "8a2fc1c35c18ae8d"
    )


def test_tls12_aead_and_cbc_round_trip_through_cryptography() -> None:
    """Records sealed with the key block of an independent implementation (cryptography's
    primitives driven by the RFC formulas written out here) open with RecordCipher."""
    import hmac as _hmac

    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    master = bytes(range(48))
    cr, sr = bytes(range(32)), bytes(range(32, 64))
    gcm = suite_spec(0xC02F)
    assert gcm is not None
    cl, _ = tls12_ciphers(gcm, TLS12, master, cr, sr, False)
    kb = prf(TLS12, "sha256", master, b"key expansion", sr + cr, 40)
    key, iv = kb[:16], kb[32:36]
    explicit = (7).to_bytes(8, "big")
    pt = b"GET / HTTP/1.1\r\n\r\n"
    aad = (0).to_bytes(8, "big") + b"\x17\x03\x03" + len(pt).to_bytes(2, "big")
    body = explicit + AESGCM(key).encrypt(iv + explicit, pt, aad)
    assert cl.decrypt(b"\x17\x03\x03" + len(body).to_bytes(2, "big"), body) == (23, pt)

    cbc = suite_spec(0xC027)  # ECDHE-RSA-AES128-SHA256, MAC-then-encrypt
    assert cbc is not None
    cl2, _ = tls12_ciphers(cbc, TLS12, master, cr, sr, False)
    kb = prf(TLS12, "sha256", master, b"key expansion", sr + cr, 96)
    mac_key, key = kb[:32], kb[64:80]
    mac = _hmac.digest(
        mac_key,
        (0).to_bytes(8, "big") + b"\x17\x03\x03" + len(pt).to_bytes(2, "big") + pt,
        "sha256",
    )
    data = pt + mac
    pad = 15 - len(data) % 16
    data += bytes([pad]) * (pad + 1)
    rec_iv = bytes(16)
    enc = Cipher(algorithms.AES(key), modes.CBC(rec_iv)).encryptor()
    body = rec_iv + enc.update(data) + enc.finalize()
    hdr = b"\x17\x03\x03" + len(body).to_bytes(2, "big")
    assert cl2.decrypt(hdr, body) == (23, pt)
    # a flipped bit in the last block breaks padding or MAC: an error, not garbage
    cl3, _ = tls12_ciphers(cbc, TLS12, master, cr, sr, False)
    with pytest.raises(DecryptError):
        cl3.decrypt(hdr, body[:-1] + bytes([body[-1] ^ 1]))


def test_unsupported_suites_are_named_not_guessed() -> None:
    assert suite_spec(0x000A) is None  # 3DES
    assert suite_spec(0x0005) is None  # RC4
    assert suite_spec(0xC0AC) is not None and suite_spec(0xC0AC).mode == "CCM"  # type: ignore[union-attr]
    assert suite_spec(0x1305) is not None and suite_spec(0x1305).tag_len == 8  # type: ignore[union-attr]


# --- key log ------------------------------------------------------------------------------------
def test_keylog_parses_counts_and_never_prints_secrets() -> None:
    kl = KeyLog()
    secret = "ab" * 48
    text = (
        "# comment\n\n"
        f"CLIENT_RANDOM {'11' * 32} {secret}\n"
        f"CLIENT_RANDOM {'22' * 32}\n"  # 2 fields
        f"CLIENT_RANDOM {'zz' * 32} {secret}\n"  # not hex
        f"CLIENT_RANDOM {'33' * 31} {secret}\n"  # short random
        f"CLIENT_RANDOM {'44' * 32} {'ab' * 47}\n"  # short master secret
        f"RSA {'55' * 8} {'66' * 48}\n"  # a label we do not use
        f"EARLY_TRAFFIC_SECRET {'11' * 32} {'cd' * 32}\n"  # alias
        f"SERVER_TRAFFIC_SECRET_0 {'11' * 32} {'ef' * 32}"  # no final newline
    )
    assert kl.add(text) == 3
    assert (kl.lines, kl.comments, kl.bad_lines) == (10, 2, 4)
    assert kl.unknown_labels == {"RSA": 1}
    assert [b.split(":")[0] for b in kl.bad] == ["line 4", "line 5", "line 6", "line 7"]
    s = kl.lookup(bytes.fromhex("11" * 32))
    assert s is not None and s.master_secret == bytes.fromhex(secret)
    assert s.get("CLIENT_EARLY_TRAFFIC_SECRET") == bytes.fromhex("cd" * 32)
    for text_out in (repr(kl), repr(s), str(s), " ".join(kl.bad)):
        assert secret not in text_out and "cd" * 8 not in text_out
    assert kl.lookup(bytes(32)) is None


def test_keylog_incremental_lines_wait_for_their_end() -> None:
    kl = KeyLog()
    line = f"CLIENT_RANDOM {'11' * 32} {'ab' * 48}\n"
    assert kl.add(line[:50], final=False) == 0
    assert kl.add(line[50:], final=False) == 1
    assert kl.bad_lines == 0 and len(kl) == 1


def test_record_cipher_repr_has_no_key() -> None:
    spec = suite_spec(0x1301)
    assert spec is not None
    c = RecordCipher(spec, 0x0304, SERVER_HS_KEY, SERVER_HS_IV)
    assert SERVER_HS_KEY.hex() not in repr(c) and "seq=0" in repr(c)


def test_pcapng_decryption_secrets_block_is_read() -> None:
    """samples/tls-keys/tls13-dsb.pcapng is tls13-aes128.pcap with tls13-aes128.keys injected
    by ``editcap --inject-secrets tls,...``: the block's text is that file, byte for byte, and
    the packets are the same 36 frames (tshark -r ... | wc -l)."""
    from pathlib import Path

    from pcapan.io import open_capture
    from pcapan.io.pcapng import DSB_TLS_KEY_LOG

    d = Path(__file__).resolve().parent.parent / "samples" / "tls-keys"
    opened = open_capture(d / "tls13-dsb.pcapng")
    frames = sum(len(b) for b in opened)
    reader = opened.reader
    assert frames == 36
    assert reader.secrets == [(DSB_TLS_KEY_LOG, (d / "tls13-aes128.keys").read_bytes())]  # type: ignore[attr-defined]


# --- robustness -----------------------------------------------------------------------------
from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

_STREAMS = {
    True: CLIENT_HELLO_RECORD + CLIENT_FINISHED_RECORD + CLIENT_DATA_RECORD + CLIENT_ALERT_RECORD,
    False: SERVER_HELLO_RECORD + SERVER_FLIGHT_RECORD + SERVER_TICKET_RECORD + SERVER_DATA_RECORD,
}


@settings(max_examples=300, deadline=None)
@given(
    flips=st.lists(st.tuples(st.booleans(), st.integers(0, 1100), st.integers(1, 255)), max_size=4),
    cuts=st.lists(st.integers(1, 200), max_size=6),
    gap_at=st.one_of(st.none(), st.tuples(st.booleans(), st.integers(0, 1100))),
)
def test_decryptor_on_mutated_streams_never_raises_nor_invents(flips, cuts, gap_at) -> None:
    """RFC 8448's streams with flipped bytes, random segmentation and a hole: events or
    anomalies only; a direction gives no plaintext after its first anomaly, and plaintext that
    comes out is the RFC's (an AEAD tag guards every record, so a flipped ciphertext byte can
    only stop a direction, never change what it says)."""
    kl = KeyLog()
    kl.add(RFC8448_KEYLOG)
    streams = {c: bytearray(b) for c, b in _STREAMS.items()}
    for c, i, x in flips:
        if i < len(streams[c]):
            streams[c][i] ^= x
    p = TlsConnection()
    d = TlsDecryptor()
    out: list = []
    pos = {True: 0, False: 0}
    step = 0
    order = [True, False, True, False, True, False, True, False]
    while pos[True] < len(streams[True]) or pos[False] < len(streams[False]):
        c = order[step % len(order)]
        n = cuts[step % len(cuts)] if cuts else 300
        step += 1
        chunk = bytes(streams[c][pos[c] : pos[c] + n])
        if not chunk:
            continue
        if gap_at is not None and gap_at[0] == c and pos[c] <= gap_at[1] < pos[c] + n:
            out += d.gap(c, len(chunk), step)
            p.gap(c, len(chunk), step)
            pos[c] += n
            continue
        pos[c] += n
        p.data(c, chunk, step)
        ch = p.client_hello
        if d.keyed is None and ch is not None:
            out += d.set_secrets(kl.lookup(ch.random), ch.random, step)
        sh = p.server_hello
        if sh is not None and d.version is None and d.keyed:
            out += d.hello(sh.version, sh.cipher, sh.random, sh.encrypt_then_mac, False, step)
        out += d.data(c, chunk, step)
    stopped = {True: False, False: False}
    for ev in out:
        if isinstance(ev, DecryptAnomaly):
            if ev.kind in ("tls_decrypt_no_key", "tls_decrypt_unsupported") and not (
                ev.detail.startswith(("client", "server"))
            ):
                stopped = {True: True, False: True}
            else:
                stopped[ev.is_orig] = True
        elif isinstance(ev, Plaintext):
            assert not stopped[ev.is_orig]
            assert ev.data == PAYLOAD
