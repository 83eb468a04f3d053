"""The model's shared methods answer as dataclasses' generated ones would (repr, ==, hash, frozenness)."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from naftiko.engine.errors import Location
from naftiko.engine.spec import model

CLASSES = [
    c
    for c in vars(model).values()
    if isinstance(c, type) and dataclasses.is_dataclass(c) and c.__module__ == model.__name__
]


def _reference(cls: type) -> type:
    """The class as dataclasses itself writes it: frozen, slotted, every method generated."""
    names = [f.name for f in dataclasses.fields(cls)]
    made = dataclasses.make_dataclass(cls.__name__, names, frozen=True, slots=True)
    made.__qualname__ = cls.__qualname__
    return made


def _values(cls: type, seed: int) -> dict[str, Any]:
    where = Location("f.yaml", seed, 2, "a.b")
    return {f.name: (where if f.name == "where" else (f"v{seed}", f.name)) for f in dataclasses.fields(cls)}


def test_there_are_model_classes() -> None:
    assert len(CLASSES) > 30


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c.__name__)
def test_repr_eq_hash_and_frozenness_match_dataclasses(cls: type) -> None:
    ref = _reference(cls)
    one, same, other = cls(**_values(cls, 1)), cls(**_values(cls, 1)), cls(**_values(cls, 2))
    ref_one, ref_same, ref_other = ref(**_values(cls, 1)), ref(**_values(cls, 1)), ref(**_values(cls, 2))
    assert repr(one) == repr(ref_one)
    assert hash(one) == hash(ref_one) and hash(one) == hash(same)
    assert (one == same, one == other, one != other) == (ref_one == ref_same, ref_one == ref_other, True)
    assert one.__eq__(ref_one) is NotImplemented and (one == object()) is False
    assert len({one, same, other}) == 2
    first = dataclasses.fields(cls)[0].name
    for act in (lambda o: setattr(o, first, None), lambda o: delattr(o, first)):
        with pytest.raises(dataclasses.FrozenInstanceError) as ours:
            act(one)
        with pytest.raises(dataclasses.FrozenInstanceError) as theirs:
            act(ref_one)
        assert str(ours.value) == str(theirs.value)
    with pytest.raises(AttributeError):  # no such slot (3.11's own frozen-slots class fails with a TypeError)
        one.undeclared = 1
    assert dataclasses.replace(one, **{first: "new"}) == cls(**{**_values(cls, 1), first: "new"})


def test_a_value_holding_itself_reprs_as_dataclasses_do() -> None:
    outer = model.Info(label="x", description=None, tags=[])  # type: ignore[arg-type]
    outer.tags.append(outer)  # type: ignore[attr-defined]
    assert repr(outer) == "Info(label='x', description=None, tags=[...])"
