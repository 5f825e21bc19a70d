# cython: language_level=3
# C types for tls.py (Cython pure-Python mode; see README, "The compiled core"). The readers and
# the per-record walk are typed; events stay Python dataclasses, module constants Python values
# (other modules import them). Indexing stays bounds-checked (hostile bytes).
cimport cython


@cython.final
cdef class _R:
    cdef bytes b
    cdef Py_ssize_t i
    cdef Py_ssize_t end

    cpdef Py_ssize_t left(self)
    @cython.locals(i=Py_ssize_t)
    cpdef bytes take(self, Py_ssize_t n)
    @cython.locals(i=Py_ssize_t)
    cpdef long u8(self) except? -1
    @cython.locals(i=Py_ssize_t, b=bytes)
    cpdef long u16(self) except? -1
    @cython.locals(i=Py_ssize_t, b=bytes)
    cpdef long u24(self) except? -1
    cpdef object u32(self)
    @cython.locals(n=Py_ssize_t)
    cpdef bytes vec(self, int lenbytes)
    cpdef _R sub(self, int lenbytes)


@cython.final
cdef class _Dir:
    cdef public bytearray buf
    cdef public long long skip
    cdef public bytearray hs
    cdef public bint encrypted
    cdef public bint stopped
    cdef public bint hs_stopped
    cdef public bint first
    cdef public bint finished
    cdef public dict records
    cdef public long long app_bytes
    cdef public long long bytes_seen


cdef class TlsConnection:
    cdef public dict _d
    cdef public list _out
    cdef public list skimmed
    cdef public object client_hello
    cdef public object server_hello
    cdef public object version
    cdef public object cipher
    cdef public bint tls13
    cdef public bint hello_retry
    cdef public object resumed
    cdef public bint done
    cdef public object alpn_selected
    cdef public bint _server_cert_seen
    cdef public bint _server_ccs_after_hello
    cdef public long long early_data_records
    cdef public object client_first_encrypted_len

    @cython.locals(
        d=_Dir, total="long long", at="long long", k=Py_ssize_t, o=Py_ssize_t, kh=Py_ssize_t,
        ctype=long, ln="long long", j=Py_ssize_t, p="long long", need="long long",
        take="long long", seg_o=Py_ssize_t, lo="long long", kb=Py_ssize_t, nlens=Py_ssize_t,
        marks=list, starts=list,
    )
    cpdef object skim(self, bint is_orig, object mv, list offs, list lens, list tss)
    cpdef list _take_out(self)
    @cython.locals(d=_Dir)
    cpdef list data(self, bint is_orig, object chunk, object ts_ns)
    cpdef void _anomaly(self, object ts, bint is_orig, str kind, str detail) except *
    @cython.locals(buf=bytearray, pos=Py_ssize_t, n=Py_ssize_t, ln=Py_ssize_t, ctype=long,
                   avail=Py_ssize_t, need_body=bint, body=bytes)
    cpdef void _feed(self, _Dir d, bint is_orig, object chunk, object ts) except *
    cpdef void _opaque_record(self, _Dir d, bint is_orig, long ctype, long long ln, object ts) except *
    cpdef void _handshake_done(self, object ts) except *
    @cython.locals(hs=bytearray, pos=Py_ssize_t, mtype=long, ln=Py_ssize_t, body=bytes)
    cpdef void _handshake(self, _Dir d, bint is_orig, object ts) except *
    @cython.locals(r=_R, lst=_R, count=Py_ssize_t, chain=list)
    cpdef void _message(self, _Dir d, bint is_orig, long mtype, bytes body, object ts) except *
    @cython.locals(ext=_R, code=long, out=list)
    cpdef list _extensions(self, _R r)
    @cython.locals(
        r=_R, x=_R, names=_R, lst=_R, shares=_R, ids=_R, ver=long, code=long, g=long, kind=long,
        grease=bint, g_in=bint, psk_ids=Py_ssize_t, ext_codes=list, alpn=list, ks_groups=list,
        exts=list, flags=dict, data=bytes,
    )
    cpdef void _client_hello(self, bytes body, object ts) except *
    @cython.locals(r=_R, x=_R, lst=_R, ver=long, cipher=long, comp=long, code=long, codes=list,
                   exts=list, flags=dict, data=bytes, hrr=bint)
    cpdef void _server_hello(self, bytes body, object ts) except *
