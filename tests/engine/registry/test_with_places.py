"""A `with` block's place is made only for a problem: the one it names must be the same as before."""

from __future__ import annotations

import pytest

from naftiko.engine import CapabilityError
from naftiko.engine.errors import Location
from naftiko.engine.registry import WithRules


def _problem(*args: object) -> str:
    with pytest.raises(CapabilityError) as caught:
        WithRules({"ok": "rest.id", "bad": "{{#open}}"}, ["rest"], *args)  # type: ignore[arg-type]
    (problem,) = caught.value.problems
    return f"{problem.location} {problem.location.path}"


def test_an_entry_and_its_key_place_a_broken_template_as_the_blocks_own_place_does() -> None:
    entry = Location("cap.yaml", 12, 7, "capability.exposes[0].tools[3]")
    assert _problem(entry, "with") == _problem(entry.key("with"))
    assert _problem(entry, "with") == "cap.yaml:12:7 capability.exposes[0].tools[3].with.bad"


def test_without_a_place_the_problem_names_the_block_and_key() -> None:
    assert _problem() == "with bad"  # Location("with"), then the key, as before
