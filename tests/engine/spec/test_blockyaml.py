"""The fast block-YAML reader must read exactly what ruamel reads, positions included, and
hand anything outside its subset back to ruamel."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML

from naftiko.engine.spec import blockyaml
from tests.support import ROOT, SHARED, yaml_positions


def ruamel(text: str) -> Any:
    return YAML(typ="rt", pure=True).load(text)


def plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain(v) for v in value]
    return value


def same_as_ruamel(text: str) -> None:
    fast, slow = blockyaml.load(text), ruamel(text)
    assert plain(fast) == plain(slow)
    assert yaml_positions(fast) == yaml_positions(slow)


def yaml_files() -> list[Path]:
    files = sorted((ROOT / "capabilities").glob("*.yaml"))
    files += sorted((ROOT / "tests" / "e2e" / "conformance").glob("*.yaml"))
    fixtures = SHARED / "spec" / "fixtures"
    if fixtures.is_dir():
        files += sorted(p for p in fixtures.rglob("*.y*ml") if p.parent.name != "openapi")
    return files


@pytest.mark.parametrize("path", yaml_files(), ids=lambda p: p.name)
def test_files_read_the_same_or_fall_back(path: Path) -> None:
    text = path.read_text()
    try:
        fast = blockyaml.load(text)
    except blockyaml.Unsupported:
        assert path.parent.name != "capabilities", "our own capability files must take the fast path"
        return
    assert plain(fast) == plain(ruamel(text))
    assert yaml_positions(fast) == yaml_positions(ruamel(text))


@pytest.mark.parametrize(
    "text",
    [
        "a: 1\nb: -2.5e3\nc: true\nd: ~\ne: null\nf: ''\ng: 'it''s'\n"
        'h: "tab\\there \\u00e9"\ni: plain text # comment\n',
        "list:\n- a\n- b: 1\n  c: 2\n-\n  - nested\n- - inline\n",
        "body: |\n  line one\n    indented\n\n  last\nnext: >-\n  folded\n  text\n\n  para\nkeep: |+\n  x\n\nend: 1\n",
        "# leading comment\n---\nkey: value   # trailing\nurl: http://example.com/a#frag\nempty:\nafter: x\n",
        'seq:\n  - name: a\n    in: path\n  - name: b\n    body: |\n      {"x": "{{y}}"}\n',
    ],
)
def test_subset_cases(text: str) -> None:
    same_as_ruamel(text)


@pytest.mark.parametrize(
    "text",
    [
        "a: {b: 1}\n",
        "a: [1, 2]\n",
        "a: &x 1\nb: *x\n",
        "a: !tag 1\n",
        "a: 1\na: 2\n",
        "a: multi\n  line\n",
        "a: b: c\n",
        "? complex\n: key\n",
        "a: 1\n---\nb: 2\n",
        "a:\n\t- x\n",
        "a: 'unclosed\n",
        "- a\nb: 1\n",
    ],
)
def test_outside_the_subset_falls_back(text: str) -> None:
    with pytest.raises(blockyaml.Unsupported):
        blockyaml.load(text)
