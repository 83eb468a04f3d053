"""Fuzzing what `naftiko validate` does with mutated capability files.

Real capability files (ours, the test data, and the reference engine's fixtures when
`../shared` is there) are mutated: values swapped for other types, keys deleted or renamed,
entries doubled, names crossed, deep nesting, alias bombs, huge numbers, odd unicode, NUL and
bytes that are not UTF-8, lines spliced, doubled or shifted. Each result must either load and
compile (`load_capabilities` then `Runtime(..., resolve_environment=False)`) or raise
`CapabilityError` whose every problem names the file and, when it is at a place in the file, its
line and column. Nothing else may come out, and each document must be done within 5 s and
without growing the process by more than 200 MB. Derandomized: CI sees the same cases every run.
"""

from __future__ import annotations

import re
import resource
import time
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from ruamel.yaml import YAML

from naftiko.engine import CapabilityError, Runtime, load_capabilities
from tests.support import ROOT, SHARED


def fuzz(examples: int) -> settings:
    return settings(
        derandomize=True,
        max_examples=examples,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )


TIME_BOUND = 5.0
MEMORY_BOUND = 200 * 1024 * 1024
# Problems that are about the file as a whole, not a place in it.
FILE_LEVEL = ("file too large", "file not found", "cannot read file", "no capability files found")


def seed_files() -> list[Path]:
    files = sorted((ROOT / "capabilities").glob("*.yaml")) + sorted((ROOT / "tests" / "data").rglob("*.y*ml"))
    files += [ROOT / "tests" / "e2e" / "conformance" / "capability.yaml"]
    fixtures = SHARED / "spec" / "fixtures"
    if fixtures.is_dir():
        files += sorted(fixtures.rglob("*.y*ml"))
    return [f for f in files if f.is_file() and re.search(r"^naftiko:", f.read_text(encoding="utf-8"), re.MULTILINE)]


SEEDS = sorted((path.read_text(encoding="utf-8") for path in seed_files()), key=len)  # the small ones first


def plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain(v) for v in value]
    for kind in (bool, int, float, str):  # ruamel's scalar subclasses as the base types
        if isinstance(value, kind):
            return kind(value)
    return None if value is None else str(value)


TREES = [plain(YAML(typ="rt", pure=True).load(text)) for text in SEEDS]


def dump(tree: Any) -> str:
    from io import StringIO

    out = StringIO()
    yaml = YAML(typ="rt", pure=True)  # keys stay in their order
    yaml.width = 4096  # long values on one line: most dumps take the fast reader, as real files do
    yaml.dump(tree, out)
    return out.getvalue()


def strings_of(tree: Any) -> list[str]:
    """Every key and string value of a tree: names to cross-reference (refs, calls, namespaces)."""
    found: list[str] = []
    if isinstance(tree, dict):
        for key, value in tree.items():
            found.append(key)
            found.extend(strings_of(value))
    elif isinstance(tree, list):
        for value in tree:
            found.extend(strings_of(value))
    elif isinstance(tree, str):
        found.append(tree)
    return found


def deep(levels: int, leaf: Any) -> Any:
    for index in range(levels):
        leaf = [leaf] if index % 2 else {"k": leaf}
    return leaf


ODD_VALUES: list[Any] = [
    None,
    True,
    False,
    0,
    -1,
    1,
    65535,
    65536,
    10**40,
    -(10**19),
    1.5,
    float("inf"),
    "",
    " ",
    "x",
    "GET",
    "get",
    "string",
    "object",
    "array",
    "integer",
    "{{/a}}",
    "{{#x}}",
    "{{#x}}{{/y}}",
    "{{#x}}{{name}}",
    "{{",
    "}}",
    "{{}}",
    "{{ }}",
    "{{.}}",
    "{{> p}}",
    "{{! c}}",
    "{{{x}}}",
    "{{^x}}{{/x}}",
    "{% for i in x %}",
    "$",
    "$.",
    "$[",
    "$..*",
    "$.a[?(@.b)]",
    "$.a[",
    "/",
    "//",
    "/a/{id}",
    "/a/{key}/b",
    "/a/{}",
    "{x}",
    "{",
    "}",
    "<<env.X>>",
    "<<",
    "ns.op",
    "a.b.c",
    "http://",
    "https://x/",
    "file://./x.yaml",
    "file:///etc",
    "\x00",
    "a\x00b",
    "é😀",
    "\u202eevil",
    "\ud800",
    "\ufeff",
    "\x85",
    "\u2028",
    "x" * 5000,
    [],
    {},
    [1, 2],
    [None],
    [[]],
    {"a": 1},
    {"name": "x"},
    [{"name": "x", "type": "string"}],
    deep(150, "x"),
    deep(60, "x"),
]


@st.composite
def tree_mutations(draw: st.DrawFn) -> str:
    """A seed parsed, changed at one to four places, written back as YAML."""
    seed = draw(st.integers(0, len(TREES) - 1))
    tree = _copy(TREES[seed])
    names = strings_of(tree)
    for _ in range(draw(st.integers(1, 4))):
        parent, key = _pick(draw, tree)
        if parent is None:
            continue
        action = draw(
            st.sampled_from(["odd", "odd", "odd", "delete", "delete", "swap", "name", "rename", "double", "graft"])
        )
        value = parent[key]
        if action == "odd":
            parent[key] = _copy(draw(st.sampled_from(ODD_VALUES)))
        elif action == "delete":
            del parent[key]
        elif action == "swap":
            if isinstance(value, dict):
                parent[key] = list(value.values()) or [value]
            elif isinstance(value, list):
                parent[key] = {str(i): v for i, v in enumerate(value)}
            else:
                parent[key] = draw(st.sampled_from([[value], {"value": value}, str(value), None]))
        elif action == "name" and names:
            parent[key] = draw(st.sampled_from(names))
        elif action == "rename" and isinstance(parent, dict) and names:
            new = draw(st.sampled_from(names))
            parent[new] = parent.pop(key)
        elif action == "double" and isinstance(parent, list):
            parent.insert(key, _copy(value))
        elif action == "graft":
            other_parent, other_key = _pick(draw, tree)
            if other_parent is not None:
                parent[key] = _copy(other_parent[other_key])
    return dump(tree)


def _copy(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_copy(v) for v in value]
    return value


def _pick(draw: st.DrawFn, tree: Any) -> tuple[Any, Any]:
    """A (container, key-or-index) anywhere in the tree; the last ones first, as hypothesis leans to index 0."""
    slots: list[tuple[Any, Any]] = []
    stack = [tree]
    while stack:
        node = stack.pop()
        children = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
        for key, child in children:
            slots.append((node, key))
            stack.append(child)
    if not slots:
        return None, None
    return slots[-1 - draw(st.integers(0, len(slots) - 1))]


BAD_BYTES = [
    b"\x00",
    b"\xff",
    b"\xc3",
    b"\xed\xa0\x80",
    b"\xef\xbb\xbf",
    b"\x85",
    b"\t",
    b"\r",
    b"\x1b",
    b"\xe2\x80\xa8",
    "é".encode(),
    "😀".encode(),
    "\u202e".encode(),
    b"\xc2\xa0",
    b"&a ",
    b"*a",
    b"!!binary ",
    b"? ",
    b"%YAML 1.1\n",
    b"---\n",
    b"...\n",
    b"<<: ",
    b"[",
    b"{",
    b"]",
    b"'",
    b'"',
    b"\\",
    b"#",
    b": ",
    b"- ",
    b"|",
    b">",
]


def alias_bomb(levels: int, fan: int) -> bytes:
    lines = [f"b0: &b0 [{','.join(['x'] * fan)}]"]
    lines += [f"b{i}: &b{i} [{','.join([f'*b{i - 1}'] * fan)}]" for i in range(1, levels)]
    return ("\n".join(lines) + "\n").encode()


@st.composite
def text_mutations(draw: st.DrawFn) -> bytes:
    """A seed's bytes with one to three edits: odd bytes, splices, shifted or doubled lines, bombs."""
    data = draw(st.sampled_from(SEEDS)).encode("utf-8")
    for _ in range(draw(st.integers(1, 3))):
        at = draw(st.integers(0, len(data)))
        line_start = data.rfind(b"\n", 0, at) + 1
        line_end = data.find(b"\n", at)
        line_end = len(data) if line_end < 0 else line_end + 1
        action = draw(
            st.sampled_from(["bytes", "bytes", "splice", "cut", "indent", "double", "bomb", "number", "nest"])
        )
        if action == "bytes":
            data = data[:at] + draw(st.sampled_from(BAD_BYTES)) + data[at:]
        elif action == "splice":
            start = draw(st.integers(0, len(data)))
            piece = data[start : start + draw(st.integers(1, 200))]
            data = data[:at] + piece + data[at:]
        elif action == "cut":
            data = data[:at] + data[at + draw(st.integers(1, 300)) :]
        elif action == "indent":
            shift = draw(st.integers(-4, 4))
            line = data[line_start:line_end]
            line = b" " * shift + line if shift >= 0 else line[min(-shift, len(line) - len(line.lstrip(b" "))) :]
            data = data[:line_start] + line + data[line_end:]
        elif action == "double":
            data = data[:line_end] + data[line_start:line_end] * draw(st.integers(1, 3)) + data[line_end:]
        elif action == "bomb":
            bomb = alias_bomb(draw(st.integers(2, 9)), draw(st.integers(2, 12)))
            data = bomb + data + b"\nextra: *b" + str(draw(st.integers(0, 1))).encode() + b"\n"
            colon = data.find(b": ", len(bomb) + draw(st.integers(0, max(0, len(data) - len(bomb) - 1))))
            if colon > 0:
                end = data.find(b"\n", colon)
                data = data[: colon + 2] + b"*b" + str(draw(st.integers(0, 8))).encode() + data[end:]
        elif action == "number":
            number = draw(
                st.sampled_from(
                    [
                        b"0x" + b"f" * 4000,
                        b"9" * 5000,
                        b"1e400",
                        b"-0",
                        b"0o777",
                        b"1_0",
                        b"0b" + b"1" * 5000,
                        b".nan",
                        b"2024-13-45",
                        b"-_",
                        b"9" * 999,
                    ]
                )
            )
            colon = data.find(b": ", at)
            if colon > 0:
                end = data.find(b"\n", colon)
                data = data[: colon + 2] + number + data[end if end > 0 else len(data) :]
        else:
            levels = draw(st.sampled_from([50, 99, 101, 150, 400]))
            nest = (b"[" * levels + b"]" * levels) if draw(st.booleans()) else b"{a: " * levels + b"1" + b"}" * levels
            colon = data.find(b": ", at)
            if colon > 0:
                end = data.find(b"\n", colon)
                data = data[: colon + 2] + nest + data[end if end > 0 else len(data) :]
    return data


# --- the check ----------------------------------------------------------------------------------


def max_rss() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def validate(path: Path, data: bytes) -> None:
    """What `naftiko validate` does; only a well-placed CapabilityError may come out, in time and memory."""
    path.write_bytes(data)
    before, started = max_rss(), time.monotonic()
    try:
        Runtime(load_capabilities([path]), resolve_environment=False)
    except CapabilityError as exc:
        assert exc.problems, "a CapabilityError without problems"
        for problem in exc.problems:
            where = problem.location
            assert where.file and Path(where.file).is_relative_to(path.parent), f"no file: {problem}"
            if not problem.message.startswith(FILE_LEVEL):
                assert where.line >= 1 and where.column >= 1, f"no line and column: {problem}"
            assert "Traceback" not in problem.message
    elapsed = time.monotonic() - started
    assert elapsed < TIME_BOUND, f"took {elapsed:.1f} s"
    assert max_rss() - before < MEMORY_BOUND, f"grew by {(max_rss() - before) / 1e6:.0f} MB"


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("fuzz")


def test_the_seeds_are_real_capability_files() -> None:
    assert len(SEEDS) >= 3
    assert all(re.search(r"^naftiko:", text, re.MULTILINE) for text in SEEDS)


@fuzz(200)
@given(tree_mutations())
def test_structurally_mutated_files_load_or_fail_with_positions(workdir: Path, text: str) -> None:
    validate(workdir / "capability.yaml", text.encode("utf-8", "surrogatepass"))


@fuzz(300)
@given(text_mutations())
def test_textually_mutated_files_load_or_fail_with_positions(workdir: Path, data: bytes) -> None:
    validate(workdir / "capability.yaml", data)


@pytest.mark.parametrize("index", range(len(SEEDS)), ids=lambda i: f"seed{i}")
def test_every_seed_unchanged_loads_or_fails_with_positions(workdir: Path, index: int) -> None:
    validate(workdir / f"seed{index}.yaml", SEEDS[index].encode("utf-8"))
