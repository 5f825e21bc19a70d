# C types for bulk_runs.py (Cython pure-Python mode; see README, "The compiled core").
cimport cython
from pcapan.flow.conn cimport Connection, Endpoint
from pcapan.flow.reassembly cimport Reassembler


cdef class BulkRuns:
    cdef public object tp
    cdef public object mv
    cdef public long long fb
    cdef public object order_kd
    cdef public object pos
    cdef public object b
    cdef public object cs_len
    cdef public object cs_ip
    cdef public object cs_cnt
    cdef public object group
    cdef public object gstart
    cdef public object gend
    cdef public object gkd
    cdef public object kd_sorted
    cdef public list dmax
    cdef public object dmax_at
    cdef public list first_ack
    cdef public dict applied
    cdef public list cnt_l
    cdef public list gstart_l
    cdef public list gend_l
    cdef public dict gidx
    cdef public list order_l
    cdef public list bulk_pos
    cdef public list bulk_idx
    cdef public list bulk_seq
    cdef public list bulk_ts
    cdef public list bulk_win
    cdef public list bulk_frame
    cdef public list bulk_off
    cdef public list bulk_len
    cdef public list len_l
    cdef public list ip_l

    cpdef void flush_before(
        self, Py_ssize_t p, Py_ssize_t g, Py_ssize_t p2, long long k, bint ais, bint both,
        Connection conn,
    )

    @cython.locals(
        ga="Py_ssize_t", gb="Py_ssize_t", pa="Py_ssize_t", pb="Py_ssize_t", ea="Py_ssize_t",
        eb="Py_ssize_t", na="Py_ssize_t", nb="Py_ssize_t", ia="long long", ib="long long",
        cut="Py_ssize_t", ol=list, cl=list, bidx=list,
    )
    cpdef void flush_ordered(self, long long k, long long lim, Connection conn)

    @cython.locals(g="Py_ssize_t")
    cpdef void flush_rest(self, long long k, Connection conn)

    @cython.locals(lo="Py_ssize_t")
    cpdef void _flush(self, Py_ssize_t g, Py_ssize_t hi, Connection conn, bint ais)

    @cython.locals(
        b0="Py_ssize_t", b1="Py_ssize_t", j="Py_ssize_t", p0="Py_ssize_t", last="Py_ssize_t",
        is_orig=bint, future=bint, delivered=bint, seqs=list, ep=Endpoint, peer=Endpoint,
        st=Reassembler, ps=Reassembler, start="long long", t_last="long long", top="long long",
        a="long long",
    )
    cpdef void _fold(self, Py_ssize_t lo, Py_ssize_t hi, Connection conn, bint ais)


@cython.locals(st=Reassembler)
cpdef void slow_segment(
    Connection conn, bint is_orig, Py_ssize_t i, object tp, object mv, long long frame_base
)
