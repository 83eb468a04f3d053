"""Answer shapes against jsonschema, the reference: for every shape and value here, the compiled check
(`compile_fits`), the explaining one (`Shape.check`) and jsonschema's 2020-12 validator of the listed
schema agree, and `blank()` always fits."""

from __future__ import annotations

import itertools
from typing import Any

import jsonschema
import pytest

from naftiko.engine import Location, Shape, compile_fits
from naftiko.engine.calls.shapes import outputs_shape
from naftiko.engine.spec.model import OutputParameter

HERE = Location("test.yaml", 1, 1, "")


def out(type_: str, **fields: Any) -> OutputParameter:
    return OutputParameter(type=type_, where=HERE, **fields)


SHAPES: dict[str, Shape | None] = {
    "object": outputs_shape(
        [
            out(
                "object",
                properties={
                    "id": out("integer", mapping="$.id"),
                    "ok": out("boolean", mapping="$.ok"),
                    "n": out("number", mapping="$.n"),
                    "tags": out("array", mapping="$.tags", items=out("string")),
                    "inner": out("object", properties={"name": out("string", mapping="$.name")}),
                    "kind": out("string", const="k"),
                    "raw": out("object", mapping="$.raw"),
                },
            )
        ]
    ),
    "array": outputs_shape(
        [out("array", mapping="$.items", items=out("object", properties={"id": out("integer", mapping="$.id")}))]
    ),
    "scalar": outputs_shape([out("string", mapping="$.s")]),
    "first-non-null": outputs_shape([out("integer", mapping="$.a"), out("array", mapping="$.b")]),
}

VALUES: list[Any] = [
    None,
    0,
    1.0,
    1.5,
    True,
    "x",
    [],
    [1, "a"],
    [{"id": 1}, {"id": "1"}],
    [{"id": None}],
    {},
    {"id": 1, "ok": True, "n": 2, "tags": ["a"], "inner": {"name": "x"}, "kind": "k", "raw": {"a": 1}},
    {"id": "1", "ok": True, "n": 2, "tags": None, "inner": {"name": None}, "kind": "k", "raw": None},
    {"id": 1, "ok": 1, "n": 2, "tags": [None, "b"], "inner": {"name": 3}, "kind": "k", "raw": []},
    {"id": True, "ok": None, "n": True, "tags": [1], "inner": None, "kind": "k", "raw": {}},
    {"id": 1, "ok": True, "n": 2, "tags": ["a"], "inner": {"name": "x"}, "kind": "other", "raw": None},
    {"id": 1, "ok": True, "n": 2, "tags": ["a"], "inner": {"name": "x"}, "raw": None},
]


@pytest.mark.parametrize("name", SHAPES)
def test_the_checks_agree_with_jsonschema(name: str) -> None:
    shape = SHAPES[name]
    assert shape is not None
    schema = shape.schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    validator = jsonschema.Draft202012Validator(schema)
    fits = compile_fits(shape)
    for value in VALUES:
        expected = validator.is_valid(value)
        assert fits(value) is expected, (name, value)
        assert (shape.check(value) is None) is expected, (name, value, shape.check(value))
    assert validator.is_valid(shape.blank())


def test_shapes_of_nested_values_in_every_combination() -> None:
    """Objects of arrays of objects of scalars, each type with and without a value that fits."""
    for type_ in ("string", "integer", "number", "boolean"):
        leaf = out(type_, mapping="$.v")
        shape = outputs_shape(
            [
                out(
                    "object",
                    properties={"list": out("array", mapping="$.l", items=out("object", properties={"v": leaf}))},
                )
            ]
        )
        assert shape is not None
        validator = jsonschema.Draft202012Validator(shape.schema())
        fits = compile_fits(shape)
        for a, b in itertools.product(VALUES[:6], repeat=2):
            value = {"list": [{"v": a}, {"v": b}]}
            assert fits(value) is validator.is_valid(value), (type_, value)


def test_passthrough_has_no_shape() -> None:
    assert outputs_shape([out("object", mapping="$.")]) is None
    assert outputs_shape([out("object", mapping="$")]) is None
    assert outputs_shape([]) is None
