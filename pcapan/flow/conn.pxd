# cython: language_level=3
from pcapan.flow.reassembly cimport Reassembler

cdef class Endpoint:
    cdef public int state
    cdef public int prev_state
    cdef public Reassembler stream
    cdef public long long fin_cnt
    cdef public long long rst_cnt
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
    cdef public object _fkey
    cdef public long long missed_bytes
    cdef public bint _z_partial
    cdef public long long _first_seen
    cdef public long long _last_frame
    cdef public list _clean_log
    cdef public long long rtt_id

    cpdef bint _check(self, long long frame_no, long long bit, str letter, bint is_orig)
    cpdef void _add(self, long long frame_no, str letter, bint is_orig)
