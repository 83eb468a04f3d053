"""The start-up shortcuts of issue 16 change nothing a file or a caller can see.

The block reader remembers lines it has read (`key: value`, `key:` before a nested block,
`- key: ...` items) and reuses what it found; the same line in another place must still get its
own position, and a remembered line must still be refused where it breaks the file. The model's
dataclasses get generated `__init__`s: same signatures, defaults, fresh default factories, frozen.
"""

from __future__ import annotations

import dataclasses
import inspect

import pytest

from naftiko.engine.spec import blockyaml, model
from tests.engine.spec.test_yaml_differential import check

REPEATED = """\
consumes:
  - name: a
    operations:
      - name: id
        type: string
      - name: id
        type: string
  - name: b
    operations:
      - name: id
        in: path
    with:
      name: id
  - name: id
    operations: []
exposes:
    operations:
      - name: id
        type: string
    with:
        name: id
"""


def test_repeated_lines_read_as_ruamel_reads_them() -> None:
    assert check(REPEATED)


# the reasons and places the reader gave before it remembered lines (checked against that version)
@pytest.mark.parametrize(
    ("text", "reason", "line", "column"),
    [
        ("a:\n  type: string\nb:\n  type: string\n    more\n", "multi-line plain scalar", 4, 4),
        ("a:\n  type: string\nb:\n  type: string\n  type: string\n", "duplicate key", 4, 2),
        ("s:\n  - name: id\n  - name: id\n      x: 1\n", "multi-line plain scalar", 3, 6),
        ("a:\n  x:\n    y: 1\nb:\n  x:\n    - 1\n  x:\n    y: 1\n", "duplicate key", 6, 2),
    ],
)
def test_a_remembered_line_is_refused_where_it_breaks_the_file(text: str, reason: str, line: int, column: int) -> None:
    with pytest.raises(blockyaml.Unsupported) as caught:
        blockyaml.load(text)
    assert (str(caught.value), caught.value.line, caught.value.column) == (reason, line, column)


def _model_classes() -> list[type]:
    return [
        c
        for c in vars(model).values()
        if isinstance(c, type) and dataclasses.is_dataclass(c) and c.__module__ == model.__name__
    ]


def test_model_inits_keep_the_dataclass_signature() -> None:
    classes = _model_classes()
    assert len(classes) > 30
    for cls in classes:
        params = list(inspect.signature(cls.__init__).parameters.values())[1:]
        fields = dataclasses.fields(cls)
        assert [p.name for p in params] == [f.name for f in fields], cls
        for param, f in zip(params, fields, strict=True):
            if f.default is not dataclasses.MISSING:
                assert param.default is f.default, (cls, f.name)
            elif f.default_factory is dataclasses.MISSING:
                assert param.default is inspect.Parameter.empty, (cls, f.name)


def test_model_inits_set_every_field_and_stay_frozen() -> None:
    where = model.Location("f.yaml", 3, 5)
    one = model.Capability("f.yaml", "1.0.0-alpha2", where)
    assert (one.path, one.version, one.where, one.consumes, one.info) == ("f.yaml", "1.0.0-alpha2", where, (), None)
    assert one == model.Capability(path="f.yaml", version="1.0.0-alpha2", where=where)
    with pytest.raises(dataclasses.FrozenInstanceError):
        one.path = "g.yaml"  # type: ignore[misc]
    with pytest.raises(TypeError):
        model.Capability("f.yaml")  # type: ignore[call-arg]
    factories = [
        (cls, f)
        for cls in _model_classes()
        for f in dataclasses.fields(cls)
        if f.default_factory is not dataclasses.MISSING
    ]
    assert factories
    for cls, f in factories:
        required = {
            g.name: None for g in dataclasses.fields(cls) if g.default is g.default_factory is dataclasses.MISSING
        }
        first, second = cls(**required), cls(**required)
        assert getattr(first, f.name) == f.default_factory()
        assert getattr(first, f.name) is not getattr(second, f.name), (cls, f.name)  # one each, as dataclasses do
