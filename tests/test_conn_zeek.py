"""Zeek's TCP rules in pcapan.flow.conn, one packet at a time (as Zeek sees them).

Each case is a situation met in the conformance corpus (tests/test_corpus_conn.py), reduced to
the packets that matter and fed straight to ``Connection.packet`` in capture order. Every
expected value is worked out from Zeek's source in the comments: TCPSessionAdapter::Process
(init_endpoint, update_history, update_window, init_peer, update_ack_seq, update_last_seq),
TCP_Endpoint::Size and TCP_Reassembler::AckReceived/Gap.
"""

from __future__ import annotations

from pcapan.flow.conn import Connection, FlowKey

F, S, R, P, A = 0x01, 0x02, 0x04, 0x08, 0x10
ISN_O, ISN_R = 1000, 5000


class Drive:
    def __init__(self) -> None:
        key = FlowKey(4, bytes([10, 0, 0, 1]), 40000, bytes([10, 0, 0, 2]), 80)
        self.c = Connection("Ctest", key, True, 1_000_000, 0)
        self.frame = 0

    def pkt(
        self,
        orig: bool,
        flags: int,
        seq: int,
        ack: int = 0,
        length: int = 0,
        win: int = 65535,
        caplen: int | None = None,
    ) -> int:
        self.frame += 1
        self.c.packet(
            orig,
            flags,
            seq,
            ack,
            win,
            length,
            None,
            None,
            40 + length,
            1_000_000 + self.frame * 1000,
            self.frame,
            caplen=caplen,
        )
        return self.frame

    def handshake(self) -> None:
        self.pkt(True, S, ISN_O)
        self.pkt(False, S | A, ISN_R, ISN_O + 1)
        self.pkt(True, A, ISN_O + 1, ISN_R + 1)

    def end(self) -> Connection:
        t = 1_000_000 + self.frame * 1000
        self.c.apply_acks(t)
        self.c.finish("end_of_capture", t)
        return self.c


def test_pure_ack_beyond_missed_data_makes_the_resent_data_a_retransmission() -> None:
    # connect-with-smtp.pcap frames 10-11: a pure ACK carries seq 124 although bytes 104-123
    # were never seen; Zeek's last_seq moves to 124 (update_last_seq, delta > 0), so the data
    # segment 104-124 that follows has delta_last == 0 with len > 0: DidRxmit, 'T'.
    d = Drive()
    d.handshake()
    d.pkt(True, P | A, ISN_O + 1, ISN_R + 1, 103)
    d.pkt(False, A, ISN_R + 1, ISN_O + 104)
    d.pkt(True, A, ISN_O + 124, ISN_R + 1)
    d.pkt(True, P | A, ISN_O + 104, ISN_R + 1, 20)
    c = d.end()
    assert c.history_str() == "ShADaT"
    # Size: last_seq is 124 relative to the ISN, minus the SYN: 123 bytes.
    assert c.orig.size() == 123
    assert c.missed_bytes == 0


def test_truncated_payload_becomes_a_content_gap_when_acknowledged() -> None:
    # retransmit-fast009.pcap (snap length 54): Zeek's DataSent skips a segment whose payload
    # is not all captured, so the responder's ACK of it trims a hole: content_gap (missed_bytes)
    # and, both sides being established, 'G' for the originator at that ACK.
    d = Drive()
    d.handshake()
    d.pkt(True, P | A, ISN_O + 1, ISN_R + 1, 474, caplen=0)
    d.pkt(False, A, ISN_R + 1, ISN_O + 475)
    d.pkt(False, A, ISN_R + 1, ISN_O + 475, 100, caplen=0)
    d.pkt(True, A, ISN_O + 475, ISN_R + 101)
    d.pkt(True, R | A, ISN_O + 475, ISN_R + 101)
    c = d.end()
    assert c.history_str() == "ShADaGdgR"
    assert c.missed_bytes == 574
    assert (c.orig.size(), c.resp.size()) == (474, 100)
    assert c.conn_state() == "RSTO"


def test_captured_payload_is_no_gap() -> None:
    d = Drive()
    d.handshake()
    d.pkt(True, P | A, ISN_O + 1, ISN_R + 1, 474)  # caplen unknown: all captured
    d.pkt(False, A, ISN_R + 1, ISN_O + 475)
    c = d.end()
    assert c.history_str() == "ShADa"
    assert c.missed_bytes == 0


def test_silent_peer_numbering_restarts_at_every_ack() -> None:
    # mixed-vlan-mpls.pcap, 10.1.2.1:11001 -> :23: the responder never sends; Zeek's init_peer
    # restarts its sequence space at each ACK the originator sends (peer still INACTIVE), so
    # the responder's size is 0 and no gap is ever found although the acks move on.
    d = Drive()
    d.pkt(True, S, ISN_O)
    d.pkt(True, A, ISN_O + 1, 777)
    d.pkt(True, P | A, ISN_O + 1, 777, 9)
    d.pkt(True, A, ISN_O + 10, 789)
    d.pkt(True, P | A, ISN_O + 10, 826, 3)
    d.pkt(True, F | P | A, ISN_O + 13, 827)
    c = d.end()
    assert c.history_str() == "SADF"
    assert c.conn_state() == "SH"
    assert (c.orig.size(), c.resp.size()) == (12, 0)
    assert c.missed_bytes == 0
    assert c.resp.stream.gap_bytes == 0


def test_gap_in_a_partial_connection_is_not_counted() -> None:
    # Picked up mid-stream: both endpoints are PARTIAL, not "established or cleanly closing",
    # so Zeek neither raises content_gap nor adds 'G'. The reassembler still tells the parser.
    d = Drive()
    d.pkt(True, P | A, ISN_O + 1, ISN_R + 1, 100)
    d.pkt(False, P | A, ISN_R + 1, ISN_O + 201, 10)
    c = d.end()
    assert c.history_str() == "Dd"
    assert c.conn_state() == "OTH"
    assert c.missed_bytes == 0
    assert c.orig.stream.gap_bytes == 100


def test_unacknowledged_hole_at_the_end_is_not_missed() -> None:
    # Zeek finds gaps only through acks (TrimToSeq); data buffered above a hole that nobody
    # acknowledged is not a content gap at the end of the connection.
    d = Drive()
    d.handshake()
    d.pkt(True, P | A, ISN_O + 101, ISN_R + 1, 50)
    c = d.end()
    assert c.history_str() == "ShAD"
    assert c.missed_bytes == 0
    assert c.orig.size() == 150  # last_seq 151 relative, minus the SYN


def test_zero_window_on_a_syn_counts() -> None:
    # update_window runs for every packet, SYNs included, after update_history.
    d = Drive()
    d.pkt(True, S, ISN_O, win=0)
    c = d.end()
    assert c.history_str() == "SW"
    assert c.conn_state() == "S0"


def test_rst_with_payload_at_last_seq_is_a_retransmission() -> None:
    # A RST's payload is not sequence space (get_segment_len), so last_seq does not move and
    # delta_last <= 0 with len > 0: Zeek's DidRxmit gives 'T' (update_last_seq runs after
    # update_history has added the 'R', and before the state turns RESET).
    d = Drive()
    d.handshake()
    d.pkt(True, R | A, ISN_O + 1, ISN_R + 1, 10)
    c = d.end()
    assert c.history_str() == "ShART"
    assert c.conn_state() == "RSTO"


def test_folded_ack_moves_its_letter_back_to_its_frame() -> None:
    # The engine folds pure ACKs in at the end of a batch; a later pure ACK of the same side
    # may already have gone through packet(). Zeek, in capture order, puts 'a' at the first.
    d = Drive()
    d.pkt(True, S, ISN_O)
    d.pkt(False, S | A, ISN_R, ISN_O + 1)
    d.frame += 1  # frame 3: the folded pure ACK from the responder, see below
    d.pkt(True, P | A, ISN_O + 1, ISN_R + 1, 10)
    d.pkt(False, A, ISN_R + 1, ISN_O + 11)  # frame 5, through packet()
    assert d.c.history_str() == "ShDa"
    d.c.pure_acks(False, 1, 40, 1_003_000, 1_003_000, 1, 3)
    c = d.end()
    assert c.history_str() == "ShaD"


def test_gap_letter_belongs_to_the_first_ack_that_revealed_it() -> None:
    # Acks are applied at the end of a batch, in frame order, whatever order they came in.
    d = Drive()
    d.handshake()
    d.pkt(True, P | A, ISN_O + 1, ISN_R + 1, 10, caplen=0)
    d.frame += 1  # frame 5: a folded pure ACK of the responder acks the 10 bytes
    d.pkt(False, P | A, ISN_R + 1, ISN_O + 11, 5)  # frame 6 acks them too
    assert d.c.history_str() == "ShADd"
    d.c.pure_acks(False, 1, 40, 1_005_000, 1_005_000, 11, 5)
    c = d.end()
    assert c.history_str() == "ShADaGd"
    assert c.missed_bytes == 10
