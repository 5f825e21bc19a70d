# C types for http.py (Cython pure-Python mode; see README, "The compiled core").
# cython: language_level=3
cimport cython
from pcapan.proto.http1 cimport HttpConnection, _Tx

cdef class HttpSession:
    cdef public object ctx
    cdef public object conn
    cdef public object transport
    cdef public bint client_is_orig
    cdef public HttpConnection parser
    cdef public object tunnel
    cdef public tuple ids
    cdef public str source
    cdef public bint in_tunnel
    cdef public bint tls

    cpdef void data(self, bint is_client, object chunk, long long ts_ns)
    cpdef void opaque_views(self, bint is_client, list views, long long ts_ns)
    cpdef void handle(self, list events)
    @cython.locals(shared=dict, rq=dict, rs=dict, has_request=bint, has_response=bint)
    cpdef object _record(self, _Tx tx)


@cython.locals(extra=list, idx=dict, flags=list)
cpdef object _flags(_Tx tx, bint in_tunnel)
cpdef object _text(object s)
cpdef object _shared(dict shared, object s)
cpdef object _first(dict idx, str name)
cpdef object _joined(dict idx, str name)
