"""The shape of the package: one import name, every folder shipped, and imports that flow one way.

The layer contracts in pyproject.toml (`lint-imports`) say which stage may import which; these tests say
what they cannot: that no module of engine/ or adapters/ is in an import cycle of its own (function-level
imports included), that the wheel installs `naftiko` and nothing else at the top, and that it works from
there without the source tree.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import grimp
import pytest

from tests.support import ROOT, SEED

PACKAGED = ("engine", "adapters")


def package_folders() -> set[str]:
    found = {"naftiko"}
    for top in PACKAGED:
        for init in (ROOT / top).rglob("__init__.py"):
            found.add(".".join(("naftiko", *init.parent.relative_to(ROOT).parts)))
    return found


def test_pyproject_ships_every_package_folder() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    assert config["package-dir"] == {"naftiko": "."}
    assert sorted(config["packages"]) == sorted(package_folders())


def _cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    cycles: list[list[str]] = []
    state: dict[str, int] = {}

    def visit(module: str, path: list[str]) -> None:
        state[module] = 1
        path.append(module)
        for target in sorted(edges[module]):
            if state.get(target) == 1:
                cycles.append([*path[path.index(target) :], target])
            elif target not in state:
                visit(target, path)
        path.pop()
        state[module] = 2

    for module in sorted(edges):
        if module not in state:
            visit(module, [])
    return cycles


def test_cycle_finder_finds_a_cycle() -> None:
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c", "a"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_cycle_in_engine_or_adapters() -> None:
    graph = grimp.build_graph("naftiko", exclude_type_checking_imports=True)
    ours = {m for m in graph.modules if m.startswith(("naftiko.engine", "naftiko.adapters"))}
    assert "naftiko.engine.spec.model" in ours and "naftiko.adapters.mcp.http" in ours
    edges = {m: graph.find_modules_directly_imported_by(m) & ours for m in ours}
    assert _cycles(edges) == []


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--quiet",
            "--no-deps",
            "--disable-pip-version-check",
            "-w",
            str(out),
            str(ROOT),
        ],
        check=True,
        capture_output=True,
        timeout=300,
    )
    (built,) = out.glob("naftiko-*.whl")
    return built


def test_the_wheel_installs_naftiko_and_nothing_else_at_the_top(wheel: Path) -> None:
    names = zipfile.ZipFile(wheel).namelist()
    tops = {name.split("/")[0] for name in names}
    assert {top for top in tops if not top.endswith(".dist-info")} == {"naftiko"}
    assert "naftiko/__init__.py" in names and "naftiko/engine/spec/model.py" in names
    assert "naftiko/adapters/mcp/protocol.py" in names
    assert not any(name.startswith(("naftiko/tests/", "naftiko/bench/", "naftiko/examples/")) for name in names)


def test_the_installed_wheel_runs_without_the_source_tree(wheel: Path, tmp_path: Path) -> None:
    target = tmp_path / "site"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-deps",
            "--disable-pip-version-check",
            "--target",
            str(target),
            str(wheel),
        ],
        check=True,
        capture_output=True,
        timeout=300,
    )
    # The wheel's copy comes first on the path; the editable install's finder only answers after it.
    env = {**os.environ, "PYTHONPATH": str(target)}
    probe = (
        "import importlib.util, naftiko; from naftiko import Runtime, build_app, serve; "
        "print(naftiko.__file__); print(importlib.util.find_spec('engine'), importlib.util.find_spec('adapters'))"
    )
    shown = subprocess.run(
        [sys.executable, "-c", probe], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60, check=True
    ).stdout.splitlines()
    assert shown == [str(target / "naftiko" / "__init__.py"), "None None"]
    result = subprocess.run(
        [sys.executable, "-m", "naftiko", "validate", str(SEED)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert f"ok: {SEED}" in result.stdout
