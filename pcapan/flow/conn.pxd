cimport cython
# cython: language_level=3
from pcapan.flow.reassembly cimport Reassembler

cdef class Endpoint:
    cdef public int state
    cdef public int prev_state
    cdef public Reassembler stream
    cdef public long long fin_cnt
    cdef public long long pkts
    cdef public long long ip_bytes
    cdef public object mss
    cdef public object wscale
    cdef public bint sack_ok
    cdef public bint ts_ok
    cdef public long long window
    cdef public bint did_close
    cdef public long long hist_last_syn
    cdef public long long hist_last_fin
    cdef public long long hist_last_rst
    cdef public long long rxmt_cnt
    cdef public long long zw_cnt
    cdef public long long gap_cnt
    cdef public long long rxmt_thresh
    cdef public long long zw_thresh
    cdef public long long gap_thresh
    cdef public long long max_ack_rel
    cdef public bint syn_seen
    cdef public long long first_ts
    cdef public long long last_ts
    cdef public long long zero_window_probes
    cdef public Endpoint peer
    cdef public long long z_start
    cdef public long long z_last
    cdef public long long z_ack
    cdef public list acks
    cdef public long long ack_front
    cdef public long long ack_hi

    cpdef void set_state(self, int s)
    cpdef long long z_rel(self, long long seq, long long ref)
    cpdef void z_init(self, long long start, long long last_rel)


cdef class Connection:
    cdef public object uid
    cdef public object key
    cdef public Endpoint orig
    cdef public Endpoint resp
    cdef public bint orig_is_a
    cdef public long long start_ns
    cdef public long long last_ns
    cdef public list history
    cdef public long long _hist_seen
    cdef public dict _hist_pos
    cdef public bint flipped
    cdef public bint partial
    cdef public object close_reason
    cdef public long long closed_ns
    cdef public list anomalies
    cdef public long long first_close_ns
    cdef public object first_close_by
    cdef public object first_close_flag
    cdef public object service
    cdef public long long n
    cdef public object fkey
    cdef public long long missed_bytes
    cdef public bint _z_partial
    cdef public long long _first_seen
    cdef public long long _last_frame
    cdef public list _clean_log
    cdef public long long rtt_id
    cdef public object source

    cpdef bint _check(self, long long frame_no, long long bit, str letter, bint is_orig)
    @cython.locals(
        ep=Endpoint, peer=Endpoint, st=Reassembler, ps=Reassembler,
        syn=bint, fin=bint, rst=bint, has_ack=bint,
        seg_len="long long", one_past="long long", s="long long", z_last="long long",
        rel_seq="long long", bits="long long", scale="long long", rel_ack="long long",
        d="long long", a="long long", d_last="long long", new_last="long long",
        data_len="long long", data_seq="long long",
    )
    cpdef str packet(self, bint is_orig, long long flags, long long seq, long long ack, long long win, long long length, object payload, object options, long long ip_len, long long ts_ns, long long frame_no, object caplen=*)
    cpdef void _add(self, long long frame_no, str letter, bint is_orig)

# Module constants as C values (none is imported by another module; INACTIVE is, so the code
# uses its C twin _INACTIVE).
cdef long long _INACTIVE, SYN_SENT, SYN_ACK_SENT, PARTIAL, ESTABLISHED, CLOSED, RESET
cdef long long FIN, SYN, RST, ACK
cdef long long _H_SYN, _H_SYN_ACK, _H_FIN, _H_RST, _H_DATA, _H_ACK, _H_MULTI, _H_FIN_RST
cdef long long _M32, _HALF, _TOO_LARGE_SEQ_DELTA

cpdef long long _delta(long long a, long long b)
cpdef long long _abs_seq(Reassembler st, long long rel)
cpdef bint stream_empty(Reassembler st)
cpdef bint _is_clean(Endpoint e)
