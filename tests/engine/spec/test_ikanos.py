"""Ikanos 1.0.0-beta5 files read into the same spec model as Naftiko 1.0.0-alpha2 files.

The dialect differs in spelling (`ikanos:` root, `display`, `flows`, `target`, `from` imports) and in
that lists of named entries may be maps keyed by the name. The same capability written both ways must
load into the same model (positions aside); the Ikanos engine's own test capabilities must load, and its
invalid ones fail with a positioned problem.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from naftiko.engine import CapabilityError, Runtime, load_capabilities

from tests.support import ROOT, SHARED, shared_or_skip, spec_shape

DATA = ROOT / "tests" / "data" / "ikanos"
IKANOS_FIXTURES = SHARED / "spec" / "ikanos" / "fixtures"
INVALID = {  # the Ikanos engine's deliberately broken capabilities, and the problem each must name
    "aggregate-invalid-ref.yaml": "capability.exposes[0].tools.bad-tool.ref",
    "baseuri-trailing-slash-capability.yaml": "capability.consumes[0].baseUri",
}


def test_same_capability_in_both_dialects_loads_the_same_model() -> None:
    (ikanos,) = load_capabilities([DATA / "notes.ikanos.yaml"])
    (naftiko,) = load_capabilities([DATA / "notes.naftiko.yaml"])
    assert ikanos.version == "1.0.0-beta5" and naftiko.version == "1.0.0-alpha2"
    assert spec_shape(ikanos) == spec_shape(naftiko)
    assert ikanos.warnings == () and naftiko.warnings == ()
    tool = ikanos.exposes[1].tools[0]  # type: ignore[union-attr]
    assert (tool.name, tool.label) == ("list-notes", "List notes")
    assert ikanos.aggregates[0].functions[0].name == "summary"


def test_a_keyed_entry_is_placed_by_its_key(tmp_path: Path) -> None:
    text = (DATA / "notes.ikanos.yaml").read_text().replace("Every note, optionally by tag.", "[not, text]")
    broken = tmp_path / "broken.yaml"
    broken.write_text(text)
    with pytest.raises(CapabilityError) as raised:
        load_capabilities([broken])
    (problem,) = raised.value.problems
    assert problem.location.path == "capability.exposes[1].tools.list-notes.description"
    line = next(n for n, text in enumerate(text.splitlines(), 1) if "[not, text]" in text)
    assert (problem.location.line, problem.location.column) == (line, 24)
    assert "'description' must be a string" in problem.message


def test_a_keyed_entry_may_not_name_itself_otherwise(tmp_path: Path) -> None:
    text = (
        (DATA / "notes.ikanos.yaml")
        .read_text()
        .replace("        note-summary:\n", "        note-summary:\n          name: other\n")
    )
    broken = tmp_path / "broken.yaml"
    broken.write_text(text)
    with pytest.raises(CapabilityError, match="entry 'note-summary' of 'tools' names itself 'other'") as raised:
        load_capabilities([broken])
    assert raised.value.problems[0].location.path == "capability.exposes[1].tools.note-summary"


def test_each_dialect_keeps_its_own_spellings(tmp_path: Path) -> None:
    """`display` in a Naftiko file is an unknown key, and a keyed map is not a list there."""
    text = (DATA / "notes.naftiko.yaml").read_text().replace("label: List notes", "display: List notes", 1)
    text = text.replace("  label: Notes\n", "  display: Notes\n  label: Notes\n", 1)
    path = tmp_path / "mixed.yaml"
    path.write_text(text)
    (capability,) = load_capabilities([path])
    assert any("unknown key 'display' is ignored" in w for w in capability.warnings)
    keyed = (DATA / "notes.ikanos.yaml").read_text().replace('ikanos: "1.0.0-beta5"', 'naftiko: "1.0.0-alpha2"')
    path.write_text(keyed)
    with pytest.raises(CapabilityError, match="'resources' must be a list; got a mapping"):
        load_capabilities([path])


def test_folders_pick_up_ikanos_files(tmp_path: Path) -> None:
    (tmp_path / "notes.yaml").write_text((DATA / "notes.ikanos.yaml").read_text())
    (tmp_path / "other.yaml").write_text("just: data\n")
    (capability,) = load_capabilities([tmp_path])
    assert capability.info is not None and capability.info.label == "Notes"


def test_ikanos_unified_imports(tmp_path: Path) -> None:
    (tmp_path / "shared.yml").write_text(
        'ikanos: "1.0.0-beta5"\nconsumes:\n  - type: http\n    namespace: weather\n'
        "    baseUri: https://weather.example.com\n    resources:\n      forecasts:\n        path: /f\n"
        "        operations:\n          get-forecast:\n            method: GET\n"
    )
    (tmp_path / "cap.yaml").write_text(
        'ikanos: "1.0.0-beta5"\ncapability:\n  consumes:\n    - from: ./shared.yml\n      import: weather\n'
        "      as: meteo\n  exposes:\n    - type: mcp\n      port: 9402\n      namespace: m\n      tools:\n"
        "        forecast:\n          description: The forecast.\n          call: meteo.get-forecast\n"
    )
    (capability,) = load_capabilities([tmp_path / "cap.yaml"])
    assert [c.namespace for c in capability.consumes] == ["meteo"]
    assert capability.consumes[0].resources[0].operations[0].name == "get-forecast"


def _fixtures() -> list[Path]:
    if not IKANOS_FIXTURES.is_dir():
        return []
    return sorted(p for p in IKANOS_FIXTURES.rglob("*.y*ml") if "capability:" in p.read_text())


@pytest.mark.parametrize("path", _fixtures(), ids=lambda p: str(p.relative_to(IKANOS_FIXTURES)))
def test_the_ikanos_engines_capabilities_load(path: Path) -> None:
    if path.name in INVALID:
        with pytest.raises(CapabilityError) as raised:
            Runtime(load_capabilities([path]), resolve_environment=False)  # as `naftiko validate` checks
        assert [p.location.path for p in raised.value.problems] == [INVALID[path.name]]
        assert all(p.location.line > 1 for p in raised.value.problems)
        return
    (capability,) = load_capabilities([path])
    Runtime([capability], resolve_environment=False)
    assert capability.version.startswith("1.0.0-beta")
    assert capability.exposes or capability.consumes
    unknown = [w for w in capability.warnings if "unknown key" in w]
    assert unknown == [], "every key of the Ikanos engine's own files is read"


def test_the_ikanos_fixtures_are_there() -> None:
    shared_or_skip(IKANOS_FIXTURES)
    assert len(_fixtures()) >= 30
