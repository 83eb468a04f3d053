"""The runnable examples keep working: they are the README's promises."""

from __future__ import annotations

import subprocess
import sys

from tests.support import ROOT


def test_embed_example_runs() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "examples.embed"], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "direct call: 201 DEM-0 Embedded"
    assert lines[1] == "mounted REST: 200 ['Embedded']"
    assert lines[2] == "mounted MCP: ['list-tasks', 'create-task', 'get-task'] ..."
    assert lines[3] == "own route: {'ok': True}"
