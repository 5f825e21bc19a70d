"""Output records: one frozen dataclass per table row (rows, never packets)."""

from __future__ import annotations

from array import array
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, fields, make_dataclass
from typing import Any, TypeVar

T = TypeVar("T")


def fast_maker(cls: type[T]) -> Callable[..., T]:
    """A positional constructor for a frozen slots dataclass, ~6x faster than its ``__init__``.

    A frozen class's generated ``__init__`` must set each field through ``object.__setattr__``
    (7-10 us for 47 fields, measured); rows are made once per transaction, so that adds up. A
    mutable twin with the same slots builds the instance and its class is switched to ``cls``
    (CPython allows it: same slots, same base). The result is an ordinary frozen ``cls`` instance:
    equality, hashing, repr and immutability are ``cls``'s. Every field must be given, in order.
    """
    twin: Any = make_dataclass(
        f"_{cls.__name__}Maker",
        [(f.name, f.type) for f in fields(cls)],  # type: ignore[arg-type]
        slots=True,
        eq=False,
        repr=False,
    )
    # (getattr: T is any class to the checker; a class without slots fails here too)
    if twin.__slots__ != getattr(cls, "__slots__", None):  # pragma: no cover - a dataclass change
        raise TypeError(f"{cls.__name__}: slots differ from its maker's")

    def make(*values: object) -> T:
        obj = twin(*values)
        obj.__class__ = cls
        return obj

    return make


@dataclass(frozen=True, slots=True)
class ConnRecord:
    ts_ns: int
    uid: str
    community_id: str
    orig_h: str
    orig_p: int
    resp_h: str
    resp_p: int
    proto: str
    service: str
    duration_s: float
    orig_bytes: int
    resp_bytes: int
    missed_bytes: int
    orig_pkts: int
    resp_pkts: int
    orig_ip_bytes: int
    resp_ip_bytes: int
    conn_state: str
    history: str
    orig_retransmits: int
    resp_retransmits: int
    orig_out_of_order: int
    resp_out_of_order: int
    orig_zero_window_probes: int
    resp_zero_window_probes: int
    orig_dup_acks: int
    resp_dup_acks: int
    orig_zero_windows: int
    resp_zero_windows: int
    orig_keepalives: int
    resp_keepalives: int
    overlap_conflicts: int
    close_reason: str
    ts_close: int | None
    closed_by: str | None
    close_flag: str | None
    orig_mss: int | None
    resp_mss: int | None
    orig_wscale: int | None
    resp_wscale: int | None
    orig_sack_ok: bool
    resp_sack_ok: bool
    orig_ts_ok: bool
    resp_ts_ok: bool
    partial: bool
    flipped: bool
    evicted: bool
    ip_version: int
    tunnel_parents: str | None
    source: str


@dataclass(frozen=True, slots=True)
class AnomalyRecord:
    ts_ns: int
    uid: str
    frame: int
    name: str
    addl: str
    source: str


@dataclass(frozen=True, slots=True)
class HttpRecord:
    """One HTTP/1.x request/response pair (or an orphan half) on a connection."""

    ts_ns: int
    uid: str
    orig_h: str
    orig_p: int
    resp_h: str
    resp_p: int
    trans_depth: int
    method: str | None
    host: str | None
    uri: str | None
    target_form: str | None
    version: str | None
    response_version: str | None
    user_agent: str | None
    referrer: str | None
    request_body_len: int | None
    response_body_len: int | None
    status_code: int | None
    status_msg: str | None
    info_codes: str | None
    content_type: str | None
    content_length: int | None
    transfer_encoding: str | None
    content_encoding: str | None
    chunk_count: int | None
    trailer_names: str | None
    trailer_announced: str | None
    expect: str | None
    upgrade_requested: str | None
    upgrade: str | None
    tunnel: str | None
    request_connection_header: str | None
    response_connection_header: str | None
    keep_alive: bool | None
    pipelined: bool
    pipeline_depth: int | None
    ts_request_start: int | None
    ts_request_end: int | None
    ts_response_start: int | None
    ts_response_end: int | None
    ttfb_s: float | None
    response_time_s: float | None
    resp_body_sha256: str | None
    partial: bool
    http_flags: str | None
    source: str
    tls: bool  # the transaction was read from decrypted TLS (a key log)


@dataclass(frozen=True, slots=True)
class TlsRecord:
    """One TLS handshake on a connection (or inside its CONNECT/Upgrade tunnel)."""

    ts_ns: int
    uid: str
    orig_h: str
    orig_p: int
    resp_h: str
    resp_p: int
    version: str | None
    client_legacy_version: str | None
    client_versions: str | None
    cipher: str | None
    cipher_code: int | None
    cipher_strength_bits: int | None
    cipher_strength_class: int | None
    cipher_forward_secrecy: bool | None
    cipher_aead: bool | None
    cipher_mozilla_level: str | None
    cipher_h2_blocklisted: bool | None
    cipher_insecure: bool | None
    client_ciphers: str | None
    weak_ciphers_offered: int | None
    server_name: str | None
    alpn_offered: str | None
    next_protocol: str | None
    curve: str | None
    dh_prime_bits: int | None
    supported_groups: str | None
    key_share_groups: str | None
    signature_algorithms: str | None
    client_extensions: str | None
    server_extensions: str | None
    session_id_len: int | None
    resumed: bool
    resumption: str | None
    session_ticket_offered: bool | None
    psk_offered: bool | None
    ticket_issued: bool | None
    early_data_offered: bool | None
    early_data_accepted: bool | None
    hello_retry_request: bool
    established: bool
    alert: str | None
    alert_from: str | None
    ech_offered: bool | None
    grease: bool | None
    sslv2_hello: bool
    cert_requested: bool
    client_cert: bool
    cert_chain_len: int | None
    cert_subject_cn: str | None
    cert_san: str | None
    cert_issuer: str | None
    cert_not_before: int | None
    cert_not_after: int | None
    cert_key_type: str | None
    cert_key_bits: int | None
    cert_sig_alg: str | None
    cert_self_signed: bool | None
    ja3: str | None
    ja3s: str | None
    ja4: str | None
    ja4_r: str | None
    ts_client_hello: int | None
    ts_server_hello: int | None
    ts_handshake_done: int | None
    handshake_rtts: int | None
    handshake_s: float | None
    ts_first_request: int | None
    ts_first_response: int | None
    orig_records: int
    resp_records: int
    orig_app_bytes: int
    resp_app_bytes: int
    orig_record_types: str | None
    resp_record_types: str | None
    in_tunnel: bool
    tls_flags: str | None
    source: str
    app_exchanges: int | None
    # Internal (not a column): start, end of each kept exchange in ns, flattened; end -1 when the
    # server had not answered (see analysis.tls and config.MAX_TLS_APP_EXCHANGES).
    app_exchange_times: tuple[int, ...]
    # Decryption with a key log (issue 17)
    decrypted: bool
    decrypt_error: str | None
    decrypted_records: int | None
    ticket_lifetime_s: int | None
    ticket_max_early_data: int | None
    key_updates: int | None
    h2_frames: int | None
    h2_streams: int | None


make_conn_record = fast_maker(ConnRecord)
make_http_record = fast_maker(HttpRecord)
make_tls_record = fast_maker(TlsRecord)
make_anomaly_record = fast_maker(AnomalyRecord)


# -- connection rows, by column ---------------------------------------------------------------
# A record object per connection costs ~0.9 KB (200,000 SYN-scan flows: 184 MB), its strings
# outlive the connection's transient objects and keep the allocator's pools from being freed,
# and the table built from the records held a second copy at the peak. Connections are instead
# appended by column name into typed buffers (no object per row is kept), and the table is made
# from the buffers one column at a time.
CONN_FIELDS: tuple[str, ...] = tuple(f.name for f in fields(ConnRecord))
# The buffer of each annotation: an array typecode, "q?" for an optional int (values + null
# mask), "s" for a string column (dictionary-coded: most repeat), "t" for a unique text column
# (UTF-8 bytes + offsets, as Arrow's large_string).
_CONN_KIND = {
    "int": "q",
    "int | None": "q?",
    "float": "d",
    "bool": "b",
    "str": "s",
    "str | None": "s",
}
_TEXT = ("uid", "community_id")  # one distinct value per row: a dictionary would not shrink them
CONN_KINDS: dict[str, str] = {
    f.name: "t" if f.name in _TEXT else _CONN_KIND[str(f.type)] for f in fields(ConnRecord)
}


class ConnColumns:
    """Finished connections' rows (ConnRecord's fields) in one buffer per column.

    ``buffer(name)`` is ``(main, aux)``: for ints ``(array('q'), None)`` (``'d'`` floats, ``'b'``
    bools), for optional ints ``(array('q'), array('b'))`` (the mask: 1 = None), for string
    columns ``(array('i') codes, dict value -> code)``, for unique text ``(bytearray UTF-8,
    array('q') offsets)``. :meth:`append` takes a row by field name; records are only made on
    demand (``rows[i]``, iteration). Once a table owns the values (:meth:`release`), columns
    are read back from it.
    """

    def __init__(self) -> None:
        self.n = 0
        self.cols: dict[str, Any] = {}
        self.aux: dict[str, Any] = {}
        self._source: Callable[[str], list[Any]] | None = None
        # Per string column, its values in code order (codes are given in first-seen order, so
        # the list only grows): made when read, extended when the dictionary has grown.
        self._keys: dict[str, list[Any]] = {}
        for name, kind in CONN_KINDS.items():
            if kind == "s":
                self.cols[name], self.aux[name] = array("i"), {}
            elif kind == "t":
                self.cols[name], self.aux[name] = bytearray(), array("q", [0])
            else:
                self.cols[name] = array(kind[0])
                self.aux[name] = array("b") if kind == "q?" else None
        self._append = self._make_append()

    def _make_append(self) -> Callable[[dict[str, Any]], None]:
        """``append``, compiled for the columns: one straight line per column, no loop and no
        helper call per value (a finished connection costs ~3 us instead of ~10)."""
        env: dict[str, Any] = {}
        lines = ["def append(row):"]
        for i, (name, kind) in enumerate(CONN_KINDS.items()):
            main, aux = self.cols[name], self.aux[name]
            env[f"p{i}"] = main.extend if kind == "t" else main.append
            v = f"row[{name!r}]"
            if kind == "s":
                env[f"d{i}"], env[f"s{i}"] = aux, aux.setdefault
                lines.append(f"    p{i}(s{i}({v}, len(d{i})))")
            elif kind == "t":
                env[f"m{i}"], env[f"e{i}"] = main, aux.append
                lines.append(f"    p{i}({v}.encode())")
                lines.append(f"    e{i}(len(m{i}))")
            elif kind == "q?":
                env[f"n{i}"] = aux.append
                lines.append(f"    v = {v}")
                lines.append(f"    if v is None:\n        p{i}(0)\n        n{i}(1)")
                lines.append(f"    else:\n        p{i}(v)\n        n{i}(0)")
            else:
                lines.append(f"    p{i}({v})")
        exec("\n".join(lines), env)  # noqa: S102 - code made above from the field names only
        fn: Callable[[dict[str, Any]], None] = env["append"]
        return fn

    def append(self, row: dict[str, Any]) -> None:
        """One connection: a value for every field of ConnRecord, by name."""
        self._append(row)
        self.n += 1

    def __len__(self) -> int:
        return self.n

    def column(self, name: str) -> list[Any]:
        """The Python values of one column (None where null), in row order."""
        if self._source is not None:
            return self._source(name)
        main, aux, kind = self.cols[name], self.aux[name], CONN_KINDS[name]
        if kind == "b":
            return [bool(v) for v in main]
        if kind == "q?":
            return [None if m else v for v, m in zip(main, aux, strict=True)]
        if kind == "s":
            keys = self._codes(name)
            return [keys[c] for c in main]
        if kind == "t":
            return [main[a:b].decode() for a, b in zip(aux[:-1], aux[1:], strict=True)]
        return list(main)

    def _codes(self, name: str) -> list[Any]:
        """String column ``name``'s values by code."""
        values, keys = self.aux[name], self._keys.get(name)
        if keys is None or len(keys) != len(values):
            keys = self._keys[name] = list(values)
        return keys

    def _value(self, name: str, i: int) -> Any:
        main, aux, kind = self.cols[name], self.aux[name], CONN_KINDS[name]
        if kind == "b":
            return bool(main[i])
        if kind == "q?":
            return None if aux[i] else main[i]
        if kind == "s":
            return self._codes(name)[main[i]]
        if kind == "t":
            return main[aux[i] : aux[i + 1]].decode()
        return main[i]

    def records(self) -> list[ConnRecord]:
        """Every row as a ConnRecord (made now: for the few readers that want objects)."""
        return [
            make_conn_record(*vals)
            for vals in zip(*(self.column(f) for f in CONN_FIELDS), strict=True)
        ]

    def __iter__(self) -> Iterator[ConnRecord]:
        return iter(self.records())

    def __getitem__(self, i: int) -> ConnRecord:
        if self._source is not None:
            return self.records()[i]
        if i < 0:
            i += self.n
        if not 0 <= i < self.n:
            raise IndexError(i)
        return make_conn_record(*(self._value(name, i) for name in CONN_FIELDS))

    def buffer(self, name: str) -> tuple[Any, Any]:
        """One column's buffers (see the class), while not released."""
        if self._source is not None:
            raise RuntimeError("connection columns already moved into their table")
        return self.cols[name], self.aux[name]

    def drop(self, name: str) -> None:
        """Free one column's buffers (the table now holds the column; see :meth:`release`)."""
        self.cols[name] = self.aux[name] = None
        self._keys.pop(name, None)

    def release(self, source: Callable[[str], list[Any]]) -> None:
        """The buffers are gone into a table: columns are read back with ``source(name)``."""
        self.cols, self.aux, self._keys = {}, {}, {}
        self._append = _released
        self._source = source

    def extend(self, other: ConnColumns, uids: dict[str, str] | None = None) -> None:
        """Append ``other``'s rows (uids renamed by ``uids`` where given)."""
        if self._source is not None:
            raise RuntimeError("connection columns already moved into their table")
        cols = {name: other.column(name) for name in CONN_FIELDS}
        if uids:
            cols["uid"] = [uids.get(u, u) for u in cols["uid"]]
        for vals in zip(*cols.values(), strict=True):
            self.append(dict(zip(CONN_FIELDS, vals, strict=True)))

    def absorb(self, other: ConnColumns) -> None:
        """Append ``other``'s rows buffer by buffer: no Python object per value (one per distinct
        string value only). How shard results are merged (pcapan.parallel): a merge of millions of
        rows row by row (:meth:`extend`) would cost seconds."""
        if self._source is not None or other._source is not None:
            self.extend(other)  # (a released side: its values are read back from its table)
            return
        for name, kind in CONN_KINDS.items():
            # In place: the compiled append holds these very buffer objects.
            main, aux = self.cols[name], self.aux[name]
            omain, oaux = other.cols[name], other.aux[name]
            if kind == "s":
                # other's codes are its dictionary's insertion order; each gets this one's code.
                remap = [aux.setdefault(v, len(aux)) for v in oaux]
                main.extend(array("i", map(remap.__getitem__, omain)))
            elif kind == "t":
                base = len(main)
                main.extend(omain)
                aux.extend(array("q", (base + x for x in oaux[1:])))
            else:
                main.extend(omain)
                if aux is not None:
                    aux.extend(oaux)
        self.n += other.n

    def copy(self, uids: dict[str, str] | None = None) -> ConnColumns:
        out = ConnColumns()
        out.extend(self, uids)
        return out

    @staticmethod
    def of(records: Iterable[ConnRecord] | ConnColumns) -> ConnColumns:
        """``records`` as columns (a ConnColumns is returned as is)."""
        if isinstance(records, ConnColumns):
            return records
        out = ConnColumns()
        for r in records:
            out.append({name: getattr(r, name) for name in CONN_FIELDS})
        return out

    def __getstate__(self) -> dict[str, Any]:
        if self._source is not None:
            return {"n": self.n, "cols": {f: self.column(f) for f in CONN_FIELDS}, "lists": True}
        return {"n": self.n, "cols": self.cols, "aux": self.aux, "lists": False}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__()  # type: ignore[misc]
        if state["lists"]:
            src = ConnColumns()
            src.n = state["n"]
            src._source = state["cols"].__getitem__
            self.extend(src)
        else:
            self.n, self.cols, self.aux = state["n"], state["cols"], state["aux"]
            self._append = self._make_append()


def _released(row: dict[str, Any]) -> None:
    raise RuntimeError("connection columns already moved into their table")
