"""Output records made by fast_maker are ordinary frozen instances of their class."""

from __future__ import annotations

import dataclasses
import pickle

import pytest

from pcapan.model import ConnRecord, HttpRecord, fast_maker, make_conn_record, make_http_record


@pytest.mark.parametrize(("cls", "make"), [(HttpRecord, make_http_record), (ConnRecord, make_conn_record)])
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
