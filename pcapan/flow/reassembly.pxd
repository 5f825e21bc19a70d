# cython: language_level=3
cdef class Reassembler:
    cdef public object sink
    cdef public bint started
    cdef public long long _ref_seq
    cdef public long long _ref_rel
    cdef public long long next_rel
    cdef public long long max_end
    cdef public object fin_rel
    cdef public bint ended
    cdef public list _ooo
    cdef public long long _ooo_pieces
    cdef public long long _ooo_bytes
    cdef public object _tail
    cdef public long long delivered
    cdef public long long gap_bytes
    cdef public long long gaps
    cdef public long long retransmitted
    cdef public long long out_of_order
    cdef public long long conflicts
    cdef public long long after_fin
    cdef public long long keepalives
    cdef public long long before_start

    cpdef void init_isn(self, long long isn)
    cpdef long long rel(self, long long seq)
    cpdef long long seq_of(self, long long rel)
    cpdef tuple reference(self)
    cpdef bint buffered_beyond(self, long long pos)
    cdef void _move_ref(self)
    cpdef void _deliver(self, long long start, long long end, object payload, long long ts_ns)
    cpdef void _gap(self, long long n, long long ts_ns)
    cpdef void _drain(self, long long ts_ns)
    cpdef void _maybe_end(self, long long ts_ns)
