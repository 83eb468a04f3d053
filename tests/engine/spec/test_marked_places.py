"""The fast reader's places, kept as one flat list a container, answer as ruamel's `lc` does."""

from __future__ import annotations

import pytest

from naftiko.engine.spec import blockyaml
from naftiko.engine.spec.fields import Context, Map
from naftiko.engine.errors import Location

TEXT = """\
name: demo
nested:
  inner: 1
  list:
    - a
    - b: 2
      c: 3
empty:
last: x
"""


def test_each_key_has_its_own_place_in_reading_order() -> None:
    data = blockyaml.load(TEXT)
    assert [data.place(k) for k in data] == [(0, 0, 6), (1, 2, 2), (7, 8, 0), (8, 8, 6)]
    nested = data["nested"]
    assert (nested.lc.key("list"), nested.lc.value("list")) == ((3, 2), (4, 4))
    assert nested["list"].lc.item(1) == (5, 6)
    assert nested["list"][1].place("c") == (6, 6, 9)


def test_a_key_added_after_reading_has_no_place_and_falls_back_to_the_mapping() -> None:
    data = blockyaml.load(TEXT)["nested"]["list"][1]
    data.setdefault("name", "added")  # as an Ikanos keyed entry gets its name
    with pytest.raises(KeyError):
        data.place("name")
    with pytest.raises(KeyError):
        data.place("absent")
    where = Location("f.yaml", 6, 7, "list[1]")
    assert Map(Context("f.yaml"), data, "list[1]", where).loc("name") == Location("f.yaml", 6, 7, "list[1].name")
    assert Map(Context("f.yaml"), data, "list[1]", where).loc("c", value=True) == Location("f.yaml", 7, 10, "list[1].c")
