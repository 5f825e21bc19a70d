"""Test helper: TLS 1.3 draft handshakes made by byte-editing a real TLS 1.3 handshake.

No tool installed here speaks a TLS 1.3 draft (OpenSSL 3 and curl's nghttp2 build know only
RFC 8446), so the draft handshakes of the tests are the real TLS 1.3 connection of
``samples/tls-versions.pcap`` (openssl s_client -> s_server, SNI tls13.pcapan.test) with its
hellos edited, everything else (the encrypted flights, ACKs, FINs) left as captured:

* ``new_format`` (drafts 22-28 and Facebook's 0xfb17/0xfb1a, which keep RFC 8446's message
  layout): the 0x0304 in the ClientHello's supported_versions and in the ServerHello's
  supported_versions is replaced by the draft's value, in place (same length);
* old format (drafts 14-21): the ServerHello is rebuilt as those drafts define it
  (draft-ietf-tls-tls13-21 4.1.3: ``server_version`` = the draft's value, random,
  cipher_suite, extensions; no legacy_session_id_echo, no compression method, no
  supported_versions extension), key_share has its pre-draft-23 code 40 in both hellos
  (draft-23 renumbered it to 51), and the ChangeCipherSpec records are removed (draft-22
  brought them back for middleboxes; Wireshark flags one in an older draft). Records shrink,
  so every later sequence number of that direction and the peer's acknowledgements of it
  move by the same amount; scapy recomputes the IP/TCP lengths and checksums.

The tests read the result back with tshark (``tls.handshake.version``,
``tls.handshake.extensions.supported_version``) before checking pcapan on it.
"""

from __future__ import annotations

from pathlib import Path

SAMPLE = Path(__file__).resolve().parent.parent / "samples" / "tls-versions.pcap"
TLS13_SNI = b"tls13.pcapan.test"
EXT_SUPPORTED_VERSIONS = 43
EXT_KEY_SHARE = 51
EXT_KEY_SHARE_OLD = 40  # drafts before 23


def _exts(data: bytes) -> list[tuple[int, bytes]]:
    out, i = [], 0
    while i < len(data):
        code, n = int.from_bytes(data[i : i + 2], "big"), int.from_bytes(data[i + 2 : i + 4], "big")
        out.append((code, data[i + 4 : i + 4 + n]))
        i += 4 + n
    return out


def _join(exts: list[tuple[int, bytes]]) -> bytes:
    return b"".join(c.to_bytes(2, "big") + len(d).to_bytes(2, "big") + d for c, d in exts)


def _client_hello(rec: bytes, version: int, old: bool) -> bytes:
    """A ClientHello record (one record, one message) with 0x0304 offered as ``version``."""
    body = rec[9:]
    i = 2 + 32
    i += 1 + body[i]  # session id
    i += 2 + int.from_bytes(body[i : i + 2], "big")  # cipher suites
    i += 1 + body[i]  # compression methods
    exts = _exts(body[i + 2 :])
    new = []
    for code, data in exts:
        if code == EXT_SUPPORTED_VERSIONS:
            data = data.replace(b"\x03\x04", version.to_bytes(2, "big"), 1)
        elif code == EXT_KEY_SHARE and old:
            code = EXT_KEY_SHARE_OLD
        new.append((code, data))
    out = body[:i] + (len(_join(new))).to_bytes(2, "big") + _join(new)
    assert len(out) == len(body)
    return rec[:9] + out


def _server_hello(rec: bytes, version: int, old: bool) -> bytes:
    body = rec[9:]
    rnd = body[2:34]
    sid_len = body[34]
    j = 35 + sid_len
    cipher = body[j : j + 2]
    exts = _exts(body[j + 3 + 2 :])
    if not old:
        new = [
            (c, version.to_bytes(2, "big") if c == EXT_SUPPORTED_VERSIONS else d) for c, d in exts
        ]
        hs = body[: j + 3] + len(_join(new)).to_bytes(2, "big") + _join(new)
    else:
        new = [
            (EXT_KEY_SHARE_OLD if c == EXT_KEY_SHARE else c, d)
            for c, d in exts
            if c != EXT_SUPPORTED_VERSIONS
        ]
        hs = (
            version.to_bytes(2, "big")
            + rnd
            + cipher
            + len(_join(new)).to_bytes(2, "big")
            + _join(new)
        )
    msg = b"\x02" + len(hs).to_bytes(3, "big") + hs
    return rec[:3] + len(msg).to_bytes(2, "big") + msg


def _records(data: bytes) -> list[bytes]:
    out, i = [], 0
    while i < len(data):
        n = 5 + int.from_bytes(data[i + 3 : i + 5], "big")
        out.append(data[i : i + n])
        i += n
    return out


def draft_capture(dst: Path, version: int, *, old_format: bool) -> Path:
    """Write the TLS 1.3 connection of the sample, its hellos edited for ``version``."""
    from scapy.layers.inet import IP, TCP
    from scapy.utils import rdpcap, wrpcap

    pkts = rdpcap(str(SAMPLE))
    ch_i = next(i for i, p in enumerate(pkts) if TCP in p and TLS13_SNI in bytes(p[TCP].payload))
    cport = pkts[ch_i][TCP].sport
    conn = [p for p in pkts if TCP in p and cport in (p[TCP].sport, p[TCP].dport)]
    # Per direction (True: client), the edits so far as (sequence number after the edited
    # segment in the original numbering, bytes added): later sequence numbers of that direction
    # and the other side's acknowledgements of them move by the sum.
    edits: dict[bool, list[tuple[int, int]]] = {True: [], False: []}

    def moved(from_client: bool, x: int) -> int:
        return (x + sum(d for end, d in edits[from_client] if x >= end)) % 2**32

    out = []
    for p in conn:
        p = p.copy()
        tcp = p[TCP]
        data = bytes(tcp.payload)
        from_client = tcp.sport == cport
        seq0 = tcp.seq
        tcp.seq = moved(from_client, tcp.seq)
        if "A" in tcp.flags:
            tcp.ack = moved(not from_client, tcp.ack)
        if data[:1] in (b"\x14", b"\x15", b"\x16", b"\x17"):
            recs = _records(data)
            new = []
            for rec in recs:
                if rec[0] == 22 and rec[5] == 1 and from_client:
                    rec = _client_hello(rec, version, old_format)
                elif rec[0] == 22 and rec[5] == 2 and not from_client:
                    rec = _server_hello(rec, version, old_format)
                elif rec[0] == 20 and old_format:
                    continue  # no ChangeCipherSpec before draft-22 (it came back for middleboxes)
                new.append(rec)
            edited = b"".join(new)
            if len(edited) != len(data):
                edits[from_client].append((seq0 + len(data), len(edited) - len(data)))
            data = edited
        tcp.remove_payload()
        if data:
            tcp.add_payload(data)
        del p[IP].len, p[IP].chksum, tcp.chksum
        out.append(p)
    wrpcap(str(dst), out)
    return dst
