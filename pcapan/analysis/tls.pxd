# cython: language_level=3
# C types for tls.py (Cython pure-Python mode; see README, "The compiled core"): the session,
# which every TLS connection has and whose methods run per stream call and per event, as a C
# class with typed counters; the stream sinks stay Python classes (StreamSink is an ABC).
cimport cython
from pcapan.proto.tls cimport TlsConnection


cdef class TlsSession:
    cdef public object ctx
    cdef public object conn
    cdef public bint client_is_orig
    cdef public tuple ids
    cdef public object source
    cdef public bint in_tunnel
    cdef public TlsConnection parser
    cdef public object first_ts
    cdef public object ch
    cdef public object first_ch
    cdef public object first_ch_ts
    cdef public object ske
    cdef public object cert
    cdef public bint cert_requested
    cdef public bint client_cert
    cdef public bint nst
    cdef public object alert
    cdef public object alert_from
    cdef public object done_ts
    cdef public long long rtts
    cdef public object last_from_client
    cdef public long long ends
    cdef public list flags
    cdef public bint emitted
    cdef public object req_ts
    cdef public object resp_ts
    cdef public object ex_start
    cdef public object ex_client
    cdef public object ex_end
    cdef public long long ex_count
    cdef public list ex_times
    cdef public object transport
    cdef public object dec
    # live --keylog: waiting for a followed key log's TLS 1.3 secrets (0, 1, 2; see
    # TlsSession._wait_for_key)
    cdef public long long key_wait
    cdef public object plain
    cdef public list plain_gap
    cdef public object alpn13
    cdef public bint nst13
    cdef public object ticket_life
    cdef public object ticket_early
    cdef public long long key_updates
    cdef public object h2
    cdef object __weakref__

    cpdef tuple sinks(self)
    cpdef void bytes_from(self, bint is_client, object ts_ns) except *
    cpdef void app_data(self, bint is_client, object first_ns, object last_ns, long long grew, long long skip) except *
    cpdef void _close_exchange(self) except *
    cpdef tuple _exchanges(self)
    cpdef void decrypt(self, bint is_client, object chunk, object ts_ns) except *
    cpdef void decrypt_gap(self, bint is_client, object nbytes, object ts_ns) except *
    cpdef void decrypt_end(self, bint is_client, object ts_ns) except *
    cpdef void handle_decrypted(self, list events) except *
    @cython.locals(d=bint, sink=object)
    cpdef void _plaintext(self, bint is_client, object data, object ts_ns, object ts_first_ns) except *
    cpdef void handle(self, list events) except *
    cpdef void _flag(self, str name) except *
    cpdef void ended(self, bint is_client) except *
    cpdef void emit(self) except *
    @cython.locals(p=TlsConnection, tls13=bint, rec_c="long long", rec_s="long long",
                   app_c="long long", app_s="long long", orig_is_client=bint)
    cpdef object _record(self)
    cpdef object _types(self, bint is_client)
