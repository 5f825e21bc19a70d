# cython: language_level=3
# C types for tls_decrypt.py (Cython pure-Python mode; see README, "The compiled core"): the
# per-record framing and opening of a keyed connection. Events stay Python dataclasses.
cimport cython


@cython.final
cdef class _Side:
    cdef public bytearray buf
    cdef public bint first
    cdef public bint stopped
    cdef public list pending
    cdef public object head_ts
    cdef public long long pending_bytes
    cdef public object cipher
    cdef public str phase
    cdef public bytearray hs
    cdef public long long records


cdef class TlsDecryptor:
    cdef public dict _s
    cdef public list _out
    cdef public object secrets
    cdef public object keyed
    cdef public object version
    cdef public object cipher
    cdef public bint tls13
    cdef public bytes _client_random
    cdef public bytes _server_random
    cdef public bint _etm
    cdef public bint _early_offered
    cdef public list _early
    cdef public object _rec_ts0
    cdef public long long _early_bytes
    cdef public object _early_verdict
    cdef public dict _hs_cipher
    cdef public object _tls12
    cdef public object error
    cdef public object alpn

    @cython.locals(s=_Side)
    cpdef list data(self, bint is_orig, object chunk, object ts_ns)
    @cython.locals(s=_Side)
    cpdef list data_run(self, bint is_orig, object mv, list offs, list lens, list tss)
    @cython.locals(base=Py_ssize_t, pos=Py_ssize_t, n=Py_ssize_t, last=Py_ssize_t, ctype=long,
                   ln=Py_ssize_t, end=Py_ssize_t, buf=bytes, hdr=bytes, body=bytes)
    cpdef void _frame(self, _Side s, bint is_orig, object chunk, object ends, list tss) except *
    cpdef list _take(self)
    cpdef void _stop(self, _Side s, bint c, object ts, str code, str detail) except *
    @cython.locals(ctype=long, inner=long)
    cpdef void _record(self, _Side s, bint c, bytes hdr, bytes body, object ts) except *
    cpdef void _inner(self, _Side s, bint c, long inner, bytes pt, object ts) except *
