"""`naftiko convert`: a capability file rewritten into the other dialect describes the same capability.

The seed goes to Ikanos and back: the model is unchanged, the YAML data is identical, and its comments
survive. The Ikanos engine's own capabilities go to Naftiko and load there.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from ruamel.yaml import YAML

from naftiko.engine import CapabilityError, convert_file, convert_text, load_capabilities

from tests.support import ROOT, SEED, SHARED, spec_shape

DATA = ROOT / "tests" / "data" / "ikanos"

IKANOS_FIXTURES = SHARED / "spec" / "ikanos" / "fixtures"


def _data(text: str) -> object:
    return YAML(typ="safe").load(text)


def test_seed_to_ikanos_and_back(tmp_path: Path) -> None:
    ikanos = convert_file(SEED, "ikanos")
    assert ikanos.startswith("ikanos: 1.0.0-beta5\n")
    assert "  display: PostHog API" in ikanos and "label:" not in ikanos
    (tmp_path / "seed.ikanos.yaml").write_text(ikanos)
    back = convert_text(ikanos, "naftiko")
    (tmp_path / "seed.naftiko.yaml").write_text(back)
    (original,) = load_capabilities([SEED])
    (as_ikanos,) = load_capabilities([tmp_path / "seed.ikanos.yaml"])
    (round_trip,) = load_capabilities([tmp_path / "seed.naftiko.yaml"])
    assert spec_shape(as_ikanos) == spec_shape(original) == spec_shape(round_trip)
    assert _data(back) == _data(SEED.read_text())


def test_comments_and_data_names_are_kept() -> None:
    text = (
        (DATA / "notes.naftiko.yaml")
        .read_text()
        .replace("      namespace: notebook\n", "      namespace: notebook  # the flows' home\n")
    )
    ikanos = convert_text(text, "ikanos")
    assert "# The same capability as notes.ikanos.yaml" in ikanos
    assert "namespace: notebook  # the flows' home" in ikanos
    assert "    flows:\n" in ikanos and "target: note.title" in ikanos and "functions" not in ikanos
    assert _data(ikanos) == _data((DATA / "notes.ikanos.yaml").read_text())


def test_a_list_without_names_stays_a_list() -> None:
    text = (
        'naftiko: "1.0.0-alpha2"\ncapability:\n  exposes:\n    - type: mcp\n      namespace: m\n'
        "      tools:\n        - description: no name\n"
    )
    assert "      tools:\n        - description: no name\n" in convert_text(text, "ikanos")


def test_a_file_that_is_no_capability_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "x.yaml"
    path.write_text("a: 1\n")
    with pytest.raises(CapabilityError, match="x.yaml:1:1: not a capability file"):
        convert_file(path, "ikanos")


def test_the_command_line(tmp_path: Path) -> None:
    out = tmp_path / "seed.ikanos.yaml"
    done = subprocess.run(
        [sys.executable, "-m", "naftiko", "convert", str(SEED), "--to", "ikanos", "-o", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    assert subprocess.run([sys.executable, "-m", "naftiko", "validate", str(out)], cwd=ROOT).returncode == 0
    missing = subprocess.run(
        [sys.executable, "-m", "naftiko", "convert", str(tmp_path / "nope.yaml"), "--to", "naftiko"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert missing.returncode == 1 and "nope.yaml: file not found" in missing.stderr
    assert "Traceback" not in missing.stderr


def _capabilities() -> list[Path]:
    if not IKANOS_FIXTURES.is_dir():
        return []
    return sorted(
        p
        for p in IKANOS_FIXTURES.rglob("*.y*ml")
        if "capability:" in p.read_text() and not p.name.startswith(("aggregate-invalid", "baseuri-trailing"))
    )


@pytest.mark.parametrize("path", _capabilities(), ids=lambda p: p.name)
def test_ikanos_fixtures_convert_to_naftiko(path: Path, tmp_path: Path) -> None:
    converted = tmp_path / path.name
    converted.write_text(convert_file(path, "naftiko"))
    (written,) = load_capabilities([converted])
    (source,) = load_capabilities([path])
    assert written.version == "1.0.0-alpha2"
    assert spec_shape(written) == spec_shape(source)
