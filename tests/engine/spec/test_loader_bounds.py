"""Reading a capability file is bounded: a hostile or broken file is a CapabilityError at its
place (file, line, column, key path when known), quickly and in little memory, never a builtin
exception, a hang or gigabytes."""

from __future__ import annotations

import subprocess
import sys
import time
import tracemalloc
from collections.abc import Iterator
from pathlib import Path

import pytest

from naftiko.engine import CapabilityError, Runtime, load_capabilities
from naftiko.engine.errors import Problem
from naftiko.engine.spec.loader import load_file
from naftiko.engine.spec.reading import READ_LIMITS, ReadLimits, read_document
from tests.support import ROOT

HEAD = "naftiko: 1.0.0-alpha2\ncapability:\n"
GOOD = (
    HEAD
    + """\
  consumes:
    - type: http
      namespace: shop
      baseUri: https://api.example.com
      resources:
        - name: items
          path: /items
          operations:
            - name: list-items
              method: GET
"""
)
LOL = "".join(f"lol{i}: &lol{i} [" + ",".join([f"*lol{i - 1}"] * 9) + "]\n" for i in range(2, 8))
BOMB = HEAD + "  consumes: []\nlol1: &lol1 [a,a,a,a,a,a,a,a,a]\n" + LOL + "body: *lol7\n"


def write(tmp_path: Path, text: str | bytes, name: str = "cap.yaml") -> Path:
    path = tmp_path / name
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def bounded() -> Iterator[None]:
    """Each case must finish within 5 s and 50 MB of Python allocations."""
    tracemalloc.start()
    started = time.monotonic()
    yield
    elapsed = time.monotonic() - started
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert elapsed < 5, f"took {elapsed:.1f} s"
    assert peak < 50 * 1024 * 1024, f"allocated {peak / 1e6:.0f} MB"


def only_problem(path: Path, limits: ReadLimits = READ_LIMITS) -> Problem:
    with pytest.raises(CapabilityError) as caught:
        load_file(path, limits)
    (problem,) = caught.value.problems
    assert problem.location.file == str(path)
    return problem


def at(problem: Problem) -> tuple[int, int, str]:
    return problem.location.line, problem.location.column, problem.location.path


def test_the_alias_bomb_of_issue_12_is_refused_at_the_alias(tmp_path: Path, bounded: None) -> None:
    problem = only_problem(write(tmp_path, BOMB))
    assert "aliases expand this document by more than 250,000 nodes" in problem.message
    assert at(problem) == (9, 26, "lol6[2]")  # the third *lol5 of lol6 passes the budget


def test_the_alias_bomb_through_naftiko_validate(tmp_path: Path) -> None:
    path = write(tmp_path, BOMB)
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-m", "naftiko", "validate", str(path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert time.monotonic() - started < 10
    assert result.returncode == 1
    assert result.stderr.startswith(f"{path}:9:26: aliases expand this document")
    assert "Traceback" not in result.stderr + result.stdout


def test_aliases_within_the_budget_load(tmp_path: Path) -> None:
    text = GOOD.replace(
        "              method: GET\n",
        """\
              method: GET
              inputParameters: &page
                - name: limit
                  in: query
            - name: more-items
              method: GET
              inputParameters: *page
""",
    )
    capability = load_file(write(tmp_path, text))
    first, second = capability.consumes[0].resources[0].operations
    assert [p.name for p in first.input_parameters] == [p.name for p in second.input_parameters] == ["limit"]


def test_the_alias_budget_is_configurable(tmp_path: Path) -> None:
    text = HEAD + "  consumes: []\nx: &x [1, 2, 3, 4]\ny: [*x, *x]\n"
    assert load_file(write(tmp_path, text), ReadLimits(alias_nodes=10)).consumes == ()
    problem = only_problem(write(tmp_path, text), ReadLimits(alias_nodes=9))
    assert at(problem) == (5, 9, "y[1]") and "more than 9 nodes" in problem.message


@pytest.mark.parametrize(
    "text, line, column, path",
    [
        (HEAD + "  a: &a [1, *a]\n", 3, 13, "capability.a[1]"),
        (HEAD + "  consumes: &c\n    - x: *c\n", 4, 10, "capability.consumes[0].x"),
    ],
)
def test_a_recursive_alias_is_refused(tmp_path: Path, text: str, line: int, column: int, path: str) -> None:
    problem = only_problem(write(tmp_path, text))
    assert "is inside the node it refers to" in problem.message
    assert at(problem) == (line, column, path)


def test_aliases_cannot_nest_past_the_depth_limit(tmp_path: Path, bounded: None) -> None:
    chain = "".join(f"a{i}: &a{i} " + "[" * 10 + (f"*a{i - 1}" if i else "x") + "]" * 10 + "\n" for i in range(20))
    problem = only_problem(write(tmp_path, HEAD + "  consumes: []\n" + chain))
    assert "nests the document deeper than 100 levels" in problem.message
    assert problem.location.line == 13  # a9: ten levels inside *a8, which holds 90


def nested_maps(levels: int) -> str:
    """`levels` block mappings inside `capability`, which is itself level 1."""
    return HEAD + "".join("  " * (i + 1) + f"k{i}:\n" for i in range(levels - 2)) + "  " * (levels - 1) + "v: 1\n"


def test_340_nested_block_mappings_are_refused_with_a_position(tmp_path: Path, bounded: None) -> None:
    problem = only_problem(write(tmp_path, nested_maps(340)))
    assert "nested deeper than 100 levels" in problem.message
    assert problem.location.line == 102 and problem.location.column == 201
    assert problem.location.path.startswith("capability.k0.k1.") and problem.location.path.endswith(".k98")


def test_the_depth_limit_is_exact_on_both_readers(tmp_path: Path) -> None:
    root = nested_maps(100)  # the fast reader
    assert load_file(write(tmp_path, root)).version == "1.0.0-alpha2"
    assert "deeper than 100" in only_problem(write(tmp_path, nested_maps(101))).message
    flow = HEAD.replace("capability:\n", "capability: ") + "[" * 99 + "]" * 99 + "\n"  # ruamel
    with pytest.raises(CapabilityError, match="'capability' must be a mapping"):
        load_file(write(tmp_path, flow))
    problem = only_problem(write(tmp_path, flow.replace("[", "[[", 1).replace("]", "]]", 1)))
    assert "deeper than 100" in problem.message and problem.location.line == 2
    assert "deeper than 3" in only_problem(write(tmp_path, nested_maps(4)), ReadLimits(depth=3)).message


def test_500_nested_flow_sequences_are_refused_with_a_position(tmp_path: Path, bounded: None) -> None:
    problem = only_problem(write(tmp_path, HEAD.replace("capability:\n", "capability: ") + "[" * 500 + "\n"))
    assert "nested deeper than 100 levels" in problem.message
    assert (problem.location.line, problem.location.column) == (2, 112)  # the 100th `[`, level 101
    assert problem.location.path == "capability" + "[0]" * 99


@pytest.mark.parametrize("number", ["0x" + "f" * 4000, "1" * 5000, "0b" + "1" * 20000, "1." + "5" * 2000])
def test_huge_numbers_are_refused_where_they_are(tmp_path: Path, number: str, bounded: None) -> None:
    text = GOOD.replace("namespace: shop", f"namespace: {number}")
    problem = only_problem(write(tmp_path, text))
    assert problem.message == f"a number of {len(number):,} characters; numbers may have at most 1,000"
    assert at(problem) == (5, 18, "capability.consumes[0].namespace")


def test_a_long_number_within_the_limit_is_read(tmp_path: Path) -> None:
    text = GOOD.replace("namespace: shop", "namespace: 0x" + "f" * 998)
    capability = load_file(write(tmp_path, text))
    assert capability.consumes[0].namespace == str(int("f" * 998, 16))


def test_a_byte_that_is_not_utf8_is_reported_at_its_line_and_column(tmp_path: Path) -> None:
    data = GOOD.replace("list-items", "list-\udcffitems").encode("utf-8", "surrogateescape")
    problem = only_problem(write(tmp_path, data))
    assert at(problem) == (11, 26, "")
    assert problem.message.startswith("not UTF-8 text: byte 0xff (invalid start byte)")
    problem = only_problem(write(tmp_path, "naftiko: 1.0.0-alpha2\n# é\ncap: 'é".encode() + b"\xc3"))
    assert at(problem) == (3, 8, "") and "unexpected end of data" in problem.message


@pytest.mark.parametrize("char", ["\x00", "\x07", "\x1b", "\ufffe", "\x9f"])
@pytest.mark.parametrize("template", ["    - x: a{}b\n", "    - x: 'a{}b'\n", "    # note a{}b\n"])
def test_a_control_character_is_reported_at_its_line_and_column(tmp_path: Path, char: str, template: str) -> None:
    text = HEAD + "  consumes:\n" + template.format(char)
    problem = only_problem(write(tmp_path, text))
    column = template.index("{}") + 1
    assert at(problem) == (4, column, "")
    assert problem.message == f"not valid YAML: the character U+{ord(char):04X} is not allowed in YAML text"


@pytest.mark.parametrize(
    "value, column, message",
    [
        ("-_", 18, "cannot read this value (string index out of range)"),  # ruamel's int pattern takes it
        ("2024-13-45", 18, "cannot read this value (month must be in 1..12)"),  # and its date pattern this
        ("0b_", 18, "cannot read this value (string index out of range)"),
        ('"\\U00110000"', 21, "cannot read this (chr() arg not in range(0x110000))"),  # found while scanning
    ],
)
def test_values_ruamel_cannot_build_are_errors_at_the_value(
    tmp_path: Path, value: str, column: int, message: str
) -> None:
    problem = only_problem(write(tmp_path, GOOD.replace("namespace: shop", f"namespace: {value}")))
    assert (problem.location.line, problem.location.column) == (5, column)
    assert problem.message == f"not valid YAML: {message}"


def test_a_huge_file_is_refused_before_it_is_read(tmp_path: Path, bounded: None) -> None:
    path = tmp_path / "huge.yaml"
    with path.open("wb") as handle:
        handle.write(GOOD.encode())
        handle.truncate(50 * 1024 * 1024)  # sparse: 50 MB that would take ruamel minutes
    problem = only_problem(path)
    assert problem.message == "file too large: more than 16,777,216 bytes, the limit for a capability file"
    assert problem.location.line == 0  # not at a place in the file


def test_the_size_limit_is_configurable_and_exact(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD)
    size = len(GOOD.encode())
    assert read_document(path, ReadLimits(file_bytes=size))["naftiko"] == "1.0.0-alpha2"
    with pytest.raises(CapabilityError, match=f"more than {size - 1:,} bytes"):
        read_document(path, ReadLimits(file_bytes=size - 1))


def test_a_large_file_outside_the_fast_subset_is_refused_where_it_leaves_it(tmp_path: Path) -> None:
    """ruamel would take about 6 s and 70 MB over these 1.2 MB; the fast reader says where it stopped."""
    operation = "            - name: op{0}\n              method: GET\n"
    text = GOOD.replace("              method: GET\n", "".join(operation.format(i) for i in range(22_000)))
    lines = text.count("\n")
    text += "  extra: [flow]\n"
    assert len(text) > 1024 * 1024
    started = time.monotonic()
    problem = only_problem(write(tmp_path, text))
    assert time.monotonic() - started < 5
    assert problem.message == (
        "a file larger than 1,048,576 bytes must be plain block YAML, and here it is not"
        " (plain scalar with indicators); write it in block style, or split it"
    )
    assert (problem.location.line, problem.location.column) == (lines + 1, 3)
    problem = only_problem(write(tmp_path, text.replace("extra: [flow]", "extra:\tx")))
    assert (problem.location.line, problem.location.column) == (lines + 1, 9)
    assert "(the character U+0009)" in problem.message


def test_the_full_yaml_limit_is_configurable(tmp_path: Path) -> None:
    flow = write(tmp_path, HEAD.replace("capability:\n", "capability: {consumes: []}\n"))
    assert load_file(flow).consumes == ()
    problem = only_problem(flow, ReadLimits(full_yaml_bytes=40))
    assert problem.message.startswith("a file larger than 40 bytes must be plain block YAML")


def test_a_file_without_a_size_is_bounded_too(tmp_path: Path) -> None:
    problem = only_problem(Path("/dev/zero"), ReadLimits(file_bytes=1000))
    assert problem.message.startswith("file too large: more than 1,000 bytes")


def test_a_folder_given_as_a_file_is_a_clear_error(tmp_path: Path) -> None:
    problem = only_problem(tmp_path)
    assert problem.message.startswith("cannot read file: ")


def test_bounded_files_in_a_folder_are_reported_with_the_rest(tmp_path: Path) -> None:
    write(tmp_path, GOOD, "a.yaml")
    bomb = write(tmp_path, BOMB, "b.yaml")
    with pytest.raises(CapabilityError) as caught:
        load_capabilities([tmp_path])
    assert [str(p.location) for p in caught.value.problems] == [f"{bomb}:9:26"]


def test_validate_then_runtime_never_meets_a_builtin_error_on_these(tmp_path: Path) -> None:
    """What `naftiko validate` does, on every case above: only CapabilityError comes out."""
    cases = [
        BOMB,
        nested_maps(340),
        HEAD + "  a: &a [1, *a]\n",
        GOOD.replace("shop", "0x" + "f" * 4000, 1),
        GOOD.replace("GET", "GE\x00T"),
    ]
    for index, text in enumerate(cases):
        path = write(tmp_path, text, f"case{index}.yaml")
        with pytest.raises(CapabilityError):
            Runtime(load_capabilities([path]), resolve_environment=False)


def test_a_secrets_file_is_read_with_the_same_bounds(tmp_path: Path, bounded: None) -> None:
    """A `binds` file is YAML too: an alias bomb in it is a positioned error, not a hang."""
    write(tmp_path, "lol1: &lol1 [a,a,a,a,a,a,a,a,a]\n" + LOL + "TOKEN: *lol7\n", "secrets.yaml")
    capability = (
        HEAD.replace(
            "capability:\n",
            "binds:\n  - namespace: secrets\n    location: file://./secrets.yaml\n"
            "    keys: {TOKEN: TOKEN}\ncapability:\n",
        )
        + GOOD[len(HEAD) :]
    )
    capabilities = load_capabilities([write(tmp_path, capability)])
    with pytest.raises(CapabilityError) as caught:
        Runtime(capabilities, environ={})
    (problem,) = caught.value.problems
    assert problem.location.file == str(tmp_path / "secrets.yaml")
    assert (problem.location.line, problem.location.column) == (6, 26)  # the third *lol5 of lol6
    assert "aliases" in problem.message


def test_load_capabilities_takes_read_limits(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD)
    assert load_capabilities([path])
    with pytest.raises(CapabilityError, match="file too large"):
        load_capabilities([path], limits=ReadLimits(file_bytes=64))
