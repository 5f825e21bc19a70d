# C types for http1.py (Cython pure-Python mode; see README, "The compiled core").
# Hostile bytes: boundscheck and wraparound stay on (setup.py). Sizes that come from the wire
# and may exceed 64 bits (a chunk size has up to 16 hex digits) stay Python ints (object).
# cython: language_level=3
cimport cython

cdef int _S_START, _S_BODY_LEN, _S_CHUNK_SIZE, _S_CHUNK_DATA, _S_CHUNK_CRLF, _S_TRAILERS
cdef int _S_BODY_CLOSE, _S_PAUSED, _S_TUNNEL, _S_RESYNC, _S_DEAD
cdef list _NO_FIELDS
cdef dict _NO_INDEX

cpdef dict _index(object headers)
cpdef list _list_values(dict idx, str name)
cpdef object _framing(dict idx, object request_method, object status_code)
@cython.locals(n_crlf=Py_ssize_t, bare=bint, out=list, lines=list)
cpdef list _parse_lines(bytes raw, bint blank_bare, list flags)
cpdef list _parse_fields(object lines, list flags)
@cython.locals(nl=Py_ssize_t, start=bytes, block=bytes, text=str, pairs=list)
cpdef tuple _parse_head(bytes raw, bint blank_bare, list flags)
cpdef object _first(dict idx, str name)
cpdef object _joined(dict idx, str name)
cpdef bint _persistent(tuple version, object connection) except -1


cdef class _Tx:
    cdef public long long depth
    cdef public object method
    cdef public object uri
    cdef public object target_form
    cdef public object host
    cdef public object req_version
    cdef public object resp_version
    cdef public list req_headers
    cdef public list resp_headers
    cdef public object req_body_len
    cdef public object resp_body_len
    cdef public object status
    cdef public object reason
    cdef public list info
    cdef public object content_length
    cdef public object chunk_count
    cdef public list trailers
    cdef public object upgrade
    cdef public object tunnel
    cdef public bint pipelined
    cdef public long long pipeline_depth
    cdef public object ts_req_start
    cdef public object ts_req_end
    cdef public object ts_resp_start
    cdef public object ts_resp_end
    cdef public object hasher
    cdef public bint partial
    cdef public list flags
    cdef public bint req_done
    cdef public bint resp_done
    cdef public bint resp_close
    cdef public bint has_request
    cdef public dict req_idx
    cdef public dict resp_idx

    cpdef tuple connection_headers(self)
    cpdef object keep_alive(self, object rq_conn, object rs_conn)
    cpdef object body_sha256(self)


cdef class _Side:
    cdef public bint is_orig
    cdef public bytearray buf
    cdef public int state
    cdef public object remaining
    cdef public Py_ssize_t scan
    cdef public bint started
    cdef public long long msg_ts
    cdef public long long outstanding
    cdef public _Tx tx
    cdef public long long last_ts
    cdef public bint ended
    cdef public bint resynced
    cdef public list msg_flags
    cdef public bint checked
    cdef public _Tx paused_for
    cdef public bint midline
    cdef public object early_ts
    cdef public object first_line


cdef class HttpConnection:
    cdef readonly _Side _req
    cdef readonly _Side _resp
    cdef object _awaiting
    cdef object _txs
    cdef long long _depth
    cdef list _out
    cdef bint _tunnel
    cdef object _on_body
    cdef bint _raw

    @cython.locals(side=_Side, st=int)
    cpdef list data(self, bint is_orig, object chunk, long long ts_ns)
    @cython.locals(side=_Side, st=int)
    cpdef object opaque_bytes(self, bint is_orig)
    @cython.locals(side=_Side)
    cpdef list opaque_data(self, bint is_orig, object views, long long ts_ns)
    @cython.locals(side=_Side)
    cpdef list gap(self, bint is_orig, long long nbytes, long long ts_ns)
    @cython.locals(side=_Side)
    cpdef list end(self, bint is_orig, long long ts_ns)

    cdef list _take(self)
    cdef void _anomaly(self, _Side side, str kind, str detail, long long ts)
    @cython.locals(st=int)
    cdef bint _step(self, _Side side, long long ts) except -1
    @cython.locals(progressed=bint)
    cdef void _run(self, _Side side, long long ts)
    cdef void _error(self, _Side side, object e, long long ts)
    @cython.locals(tx=_Tx)
    cdef void _break(self, _Side side, str kind, long long ts)
    @cython.locals(tx=_Tx)
    cdef void _flush(self)
    @cython.locals(n=Py_ssize_t, rtx=_Tx)
    cdef Py_ssize_t _outstanding(self) except -1
    @cython.locals(i=Py_ssize_t, n=Py_ssize_t, buf=bytearray, blank_bare=bint, raw=bytes)
    cdef bint _start(self, _Side side, long long ts) except -1
    @cython.locals(ls=Py_ssize_t, be=Py_ssize_t, end=Py_ssize_t, is_orig=bint, text=str,
                   fields=list, flags=list)
    cdef bint _fast_head(self, _Side side, bytearray buf, long long ts) except -1
    cdef bint _answers_http09(self) except -1
    @cython.locals(buf=bytearray, nl=Py_ssize_t)
    cdef bint _decide_http09(self, _Side side, long long ts, bint final=*) except -1
    @cython.locals(tx=_Tx, req=_Side)
    cdef void _simple_response(self, _Side side, long long ts, object status_line)
    @cython.locals(nl=Py_ssize_t, line=bytes, ok=bint)
    cdef void _check_first_line(self, _Side side)
    @cython.locals(nl=Py_ssize_t)
    cdef void _discard_line(self, _Side side)
    @cython.locals(tx=_Tx, old=_Tx)
    cdef _Tx _new_request_tx(self, _Side side)
    @cython.locals(tx=_Tx)
    cdef _Tx _response_tx(self)
    @cython.locals(tx=_Tx, idx=dict, method=str, target=str, hosts=list, cached=object)
    cdef void _request_head(self, _Side side, bytes start, list fields, list flags, long long ts,
                            object parsed=*)
    @cython.locals(tx=_Tx, req=_Side, idx=dict, code=int, cl1=object, version=tuple)
    cdef void _response_head(self, _Side side, bytes start, list fields, list flags,
                             long long ts, object status=*)
    @cython.locals(req=_Side)
    cdef void _unpause(self)
    cdef void _begin_body(self, _Side side, _Tx tx, object framing, long long ts)
    @cython.locals(tx=_Tx)
    cdef void _message_done(self, _Side side, long long ts)
    @cython.locals(tx=_Tx)
    cdef void _request_done(self, _Side side, long long ts)
    @cython.locals(tx=_Tx)
    cdef void _body(self, _Side side, object chunk)
    @cython.locals(buf=bytearray)
    cdef bint _body_len(self, _Side side, long long ts) except -1
    @cython.locals(buf=bytearray, nl=Py_ssize_t, line=bytes, tx=_Tx)
    cdef bint _chunk_size(self, _Side side, long long ts) except -1
    @cython.locals(buf=bytearray)
    cdef bint _chunk_crlf(self, _Side side, long long ts) except -1
    @cython.locals(buf=bytearray, tx=_Tx, flags=list)
    cdef bint _trailers(self, _Side side, long long ts) except -1
    cdef bint _body_close(self, _Side side, long long ts) except -1
    cdef bint _paused(self, _Side side, long long ts) except -1
    cdef bint _tunnel_data(self, _Side side, long long ts) except -1
    cdef bint _dead(self, _Side side, long long ts) except -1
    @cython.locals(buf=bytearray, nl=Py_ssize_t, s=Py_ssize_t)
    cdef bint _resync(self, _Side side, long long ts) except -1
    @cython.locals(st=int, tx=_Tx)
    cdef void _gap(self, _Side side, long long n, long long ts)
    @cython.locals(st=int, tx=_Tx, t=_Tx)
    cdef void _end(self, _Side side, long long ts)
    @cython.locals(resp=_Side, req=_Side, t=_Tx, s=_Side)
    cdef void _open_tunnel(self, _Tx tx, int code, long long ts)
