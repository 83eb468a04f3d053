"""The `naftiko` command as a user runs it: validate, list and call."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.support import ROOT, SEED, NaftikoProcess, RecordingUpstream, Reply


def naftiko(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    import os

    return subprocess.run(
        [sys.executable, "-m", "naftiko", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        timeout=60,
    )


def test_validate_accepts_the_seed() -> None:
    result = naftiko("validate", str(SEED))
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"ok: {SEED}"


def test_validate_reports_file_line_column(tmp_path: Path) -> None:
    broken = tmp_path / "broken.yaml"
    broken.write_text(SEED.read_text().replace("method: PATCH", "method: PATCHY", 1))
    result = naftiko("validate", str(broken))
    assert result.returncode == 1
    line = next(n for n, text in enumerate(broken.read_text().splitlines(), 1) if "PATCHY" in text)
    assert result.stderr.startswith(f"{broken}:{line}:")
    assert "'method' must be one of GET, POST, PUT, PATCH, DELETE" in result.stderr
    assert "(at capability.consumes[0].resources[1].operations[1].method)" in result.stderr


def test_list_shows_operations_routes_and_tools() -> None:
    result = naftiko("list", str(SEED))
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "consumes posthog-task-runs  <no baseUri: set NAFTIKO_BASE_URI_POSTHOG_TASK_RUNS>" in out
    assert out.count("\n    posthog-task-runs.tasksruns") == 19
    assert "GET    /v1/api/projects/{project-id}/tasks/{task-id}/runs/{id}/stream" in out
    assert "tool list-task-runs" in out
    assert out.count("    tool ") == 19


def test_call_prints_the_json_answer(upstream: RecordingUpstream) -> None:
    runs = "/api/projects/1/tasks/t1/runs/"
    upstream.reply("GET", runs, Reply(json={"count": 0, "results": []}))
    result = naftiko(
        "call",
        "posthog-task-runs.tasksrunslist",
        "project_id=1",
        "task_id=t1",
        "limit:=5",
        "--path",
        str(SEED),
        "--base-uri",
        f"posthog-task-runs={upstream.url}",
        env={"POSTHOG_API_KEY": "k"},
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {"count": 0, "results": []}
    assert (upstream.last.path, upstream.last.query) == (runs, "limit=5")


def test_missing_base_uri_says_how_to_set_it() -> None:
    result = naftiko("serve", str(SEED), env={"POSTHOG_API_KEY": "k"})
    assert result.returncode == 1
    assert (
        "consumes namespace 'posthog-task-runs' has an empty baseUri: pass --base-uri posthog-task-runs=URL"
        " or set NAFTIKO_BASE_URI_POSTHOG_TASK_RUNS" in result.stderr
    )
    assert "Traceback" not in result.stderr


def test_missing_binding_names_the_variable_and_file() -> None:
    env = {"NAFTIKO_BASE_URI_POSTHOG_TASK_RUNS": "http://127.0.0.1:9"}
    import os

    clean = {k: v for k, v in os.environ.items() if k != "POSTHOG_API_KEY"}
    result = subprocess.run(
        [sys.executable, "-m", "naftiko", "serve", str(SEED)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={**clean, **env},
        timeout=60,
    )
    assert result.returncode == 1
    assert "needs the environment variable POSTHOG_API_KEY" in result.stderr
    assert "posthog-task-runs.yaml" in result.stderr
    assert "Traceback" not in result.stderr


def test_missing_required_argument_in_call() -> None:
    result = naftiko(
        "call",
        "posthog-task-runs.tasksrunsretrieve",
        "project_id=1",
        "task_id=t",
        "--path",
        str(SEED),
        "--base-uri",
        "posthog-task-runs=http://127.0.0.1:9",
        env={"POSTHOG_API_KEY": "k"},
    )
    assert result.returncode == 2
    assert "missing required parameter 'id' (path)" in result.stderr


SAME_PORT = """\
naftiko: 1.0.0-alpha2
capability:
  consumes:
    - type: http
      namespace: up
      baseUri: http://127.0.0.1:1
      resources:
        - name: r
          path: /r
          operations:
            - {name: get, method: GET}
  exposes:
    - type: rest
      namespace: one
      port: 18555
      resources:
        - path: /a
          operations:
            - {method: GET, call: up.get}
    - type: mcp
      namespace: two
      port: 18555
      tools:
        - {name: t, description: t, call: up.get}
"""


def test_two_blocks_on_one_port_are_found_by_validate_and_serve(tmp_path: Path) -> None:
    path = tmp_path / "same-port.yaml"
    path.write_text(SAME_PORT)
    result = naftiko("validate", str(path))
    assert result.returncode == 1
    assert f"{path}:20:7: exposes 'two' listens on 127.0.0.1:18555, as 'one' does ({path}:13:7)" in result.stderr
    result = naftiko("serve", str(path))
    assert result.returncode == 1 and "exposes 'two' listens on 127.0.0.1:18555" in result.stderr
    process = NaftikoProcess([str(path), "--port", "one=0", "--port", "two=0"])
    try:
        assert set(process.wait_for("one", "two")) == {"one", "two"}
    finally:
        process.stop()
