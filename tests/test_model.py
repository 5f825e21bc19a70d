"""Output records made by fast_maker are ordinary frozen instances of their class."""

from __future__ import annotations

import dataclasses
import pickle

import pytest

from pcapan.model import ConnRecord, HttpRecord, fast_maker, make_conn_record, make_http_record


@pytest.mark.parametrize(
    ("cls", "make"), [(HttpRecord, make_http_record), (ConnRecord, make_conn_record)]
)
def test_fast_maker_equals_init(cls: type, make) -> None:  # noqa: ANN001
    values = [f"v{i}" for i, _ in enumerate(dataclasses.fields(cls))]
    a, b = make(*values), cls(*values)
    assert type(a) is cls and a == b and hash(a) == hash(b) and repr(a) == repr(b)
    assert pickle.loads(pickle.dumps(a)) == b
    with pytest.raises(dataclasses.FrozenInstanceError):
        a.uid = "changed"  # type: ignore[misc]
    assert dataclasses.astuple(a) == tuple(values)


def test_fast_maker_needs_every_field() -> None:
    with pytest.raises(TypeError):
        make_http_record("only one")


def test_fast_maker_rejects_non_slots() -> None:
    @dataclasses.dataclass(frozen=True)
    class Plain:
        a: int

    with pytest.raises((TypeError, AttributeError)):
        fast_maker(Plain)


def test_conn_columns_round_trip() -> None:
    """Rows appended by name come back as the same records (nulls, bools, strings, text), also
    pickled, copied with uids renamed, and after the table took the buffers (read back from it,
    in the original row order although the table is sorted by time)."""
    import pcapan
    from pcapan.model import CONN_FIELDS, ConnColumns

    res = pcapan.analyze("samples/http-keepalive.pcap")
    base = list(res.connection_records)
    assert len(base) == 2
    rows = [
        dataclasses.replace(
            base[0], ts_ns=base[1].ts_ns + 5, uid="Czzz", orig_mss=None, tunnel_parents="x"
        ),
        base[1],
        base[0],
    ]
    store = ConnColumns()
    for r in rows:
        store.append({f: getattr(r, f) for f in CONN_FIELDS})
    assert len(store) == 3 and list(store) == rows and store[-1] == rows[-1]
    assert store[0].orig_mss is None and isinstance(store[0].partial, bool)
    assert list(pickle.loads(pickle.dumps(store))) == rows
    assert [r.uid for r in store.copy({"Czzz": "Cnew"})] == ["Cnew", rows[1].uid, rows[2].uid]
    res2 = type(res)(rows, [])
    table = res2.connections
    assert table.uid.tolist() == [rows[2].uid, rows[1].uid, "Czzz"]  # sorted by ts, uid
    assert list(res2.connection_records) == rows and res2.summary()["tcp_connections"] == 3
    assert list(pickle.loads(pickle.dumps(res2.connection_records))) == rows
