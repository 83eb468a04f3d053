"""PostHog's Tasks API used through naftiko only, as an agent would: the stand-in and
`naftiko serve capabilities/` both run as real processes; every call below goes through
our REST or MCP adapter (except the presigned upload, which by design goes to storage)."""

from __future__ import annotations

import asyncio
import re
import subprocess
import sys
import threading
import time
from collections.abc import Iterator

import httpx
import pytest
from mcp import Client

from tests.support import ROOT, NaftikoProcess

KEY = "phx_e2e_key"
P = "/v1/api/projects/@current"


class Standin:
    """`python -m examples.posthog_standin` as a process; its URL read from stderr."""

    def __init__(self, *args: str) -> None:
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "examples.posthog_standin",
                "--port",
                "0",
                "--api-key",
                KEY,
                "--run-step-seconds",
                "0.3",
                *args,
            ],
            cwd=ROOT,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.url = ""
        ready = threading.Event()

        def read() -> None:
            assert self.proc.stderr is not None
            for line in self.proc.stderr:
                found = re.search(r"(http://127\.0\.0\.1:\d+)", line)
                if found and not self.url:
                    self.url = found.group(1)
                    ready.set()

        threading.Thread(target=read, daemon=True).start()
        if not ready.wait(15):
            self.proc.kill()
            raise RuntimeError("the stand-in did not start")

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=10)


def start_stack(naftiko, *standin_args: str) -> tuple[Standin, dict[str, str]]:
    standin = Standin(*standin_args)
    process: NaftikoProcess = naftiko(
        "capabilities",
        "--base-uri",
        f"posthog-tasks={standin.url}",
        "--base-uri",
        f"posthog-task-runs={standin.url}",
        *(
            arg
            for ns in ("posthog-tasks-rest", "posthog-tasks-mcp", "posthog-task-runs-rest", "posthog-task-runs-mcp")
            for arg in ("--port", f"{ns}=0")
        ),
        env={"POSTHOG_API_KEY": KEY},
    )
    return standin, process.wait_for(
        "posthog-tasks-rest", "posthog-tasks-mcp", "posthog-task-runs-rest", "posthog-task-runs-mcp"
    )


@pytest.fixture
def stack(naftiko) -> Iterator[dict[str, str]]:
    standin, urls = start_stack(naftiko)
    yield urls
    standin.stop()


def test_agent_session_over_rest(stack: dict[str, str]) -> None:
    tasks, runs = stack["posthog-tasks-rest"] + P + "/tasks", stack["posthog-task-runs-rest"] + P + "/tasks"
    created = httpx.post(
        tasks, json={"title": "Fix flaky test", "description": "Stabilise test_login", "repository": "Acme/Web"}
    )
    assert created.status_code == 201, created.text
    task = created.json()
    assert task["repository"] == "acme/web" and task["title"] == "Fix flaky test"
    assert httpx.get(tasks, params={"search": "flaky"}).json()["count"] == 1

    run = httpx.post(f"{runs}/{task['id']}/runs", json={"environment": "cloud"}).json()
    assert run["status"] == "queued"
    run_path = f"{runs}/{task['id']}/runs/{run['id']}"

    # watch the run through our REST adapter's stream: events must arrive as the run progresses
    arrivals: list[tuple[float, str]] = []
    started = time.monotonic()
    with httpx.stream("GET", f"{run_path}/stream", timeout=20) as stream:
        assert stream.headers["content-type"].startswith("text/event-stream")
        assert httpx.post(f"{run_path}/start", json={}).status_code == 200
        for line in stream.iter_lines():
            if line.startswith("event:") or line.startswith("data:"):
                arrivals.append((time.monotonic() - started, line))
            if "stream-end" in line:
                break
    assert any("in_progress" in text for _, text in arrivals)
    assert arrivals[-1][0] - arrivals[0][0] > 0.5, "events were buffered instead of streamed"
    assert httpx.get(run_path).json()["status"] == "completed"

    appended = httpx.post(
        f"{run_path}/append-log",
        json={
            "entries": [
                {
                    "type": "notification",
                    "timestamp": "2030-01-01T00:00:00Z",
                    "notification": {"jsonrpc": "2.0", "method": "_posthog/console", "params": {"message": "hello"}},
                }
            ]
        },
    )
    assert appended.status_code == 200
    logs = httpx.get(f"{run_path}/logs")
    assert logs.headers["content-type"].startswith("application/jsonl")
    assert '"hello"' in logs.text.splitlines()[-1]
    filtered = httpx.get(f"{run_path}/session-logs", params={"event_types": "_posthog/console", "limit": 5})
    assert filtered.status_code == 200
    assert [e["notification"]["params"]["message"] for e in filtered.json()][-1] == "hello"
    assert "x-total-count" in filtered.headers

    payload = b"artifact bytes \x00\x01"
    slot = httpx.post(
        f"{run_path}/artifacts/prepare-upload",
        json={
            "artifacts": [
                {"name": "notes.bin", "type": "plan", "size": len(payload), "content_type": "application/x-test"}
            ]
        },
    ).json()["artifacts"][0]
    post = slot["presigned_post"]
    assert httpx.post(post["url"], data=post["fields"], files={"file": ("notes.bin", payload)}).status_code == 204
    item = {k: slot[k] for k in ("id", "name", "type", "storage_path", "content_type")}
    assert httpx.post(f"{run_path}/artifacts/finalize-upload", json={"artifacts": [item]}).status_code == 200
    downloaded = httpx.post(f"{run_path}/artifacts/download", json={"storage_path": slot["storage_path"]})
    assert downloaded.status_code == 200 and downloaded.content == payload
    assert downloaded.headers["content-disposition"] == 'attachment; filename="notes.bin"'

    output = httpx.patch(f"{run_path}/set-output", json={"output": {"pr_url": "https://example.test/pr/1"}})
    assert output.status_code == 200 and output.json()["output"]["pr_url"] == "https://example.test/pr/1"

    missing = httpx.get(f"{runs}/{task['id']}/runs/00000000-0000-0000-0000-000000000000")
    assert missing.status_code == 404 and missing.json()["detail"] == "Not found."


@pytest.mark.anyio
async def test_agent_session_over_mcp(stack: dict[str, str]) -> None:
    async with (
        Client(stack["posthog-tasks-mcp"], cache=None) as tasks,
        Client(stack["posthog-task-runs-mcp"], mode="legacy", cache=None) as runs,
    ):
        created = await tasks.call_tool(
            "create-task",
            {
                "project_id": "@current",
                "body": {
                    "title": "Add dark mode",
                    "description": "Support prefers-color-scheme",
                    "repository": "acme/web",
                },
            },
        )
        assert not created.is_error, created.content
        task = created.structured_content
        started = await tasks.call_tool("run-task", {"project_id": "@current", "id": task["id"], "body": {}})
        run = started.structured_content["latest_run"]
        ids = {"project_id": "@current", "task_id": task["id"], "id": run["id"]}
        statuses = []
        for _ in range(40):
            got = await runs.call_tool("api-managing-task-runs-each", ids)
            statuses.append(got.structured_content["status"])
            if statuses[-1] == "completed":
                break
            await asyncio.sleep(0.1)
        assert statuses[-1] == "completed" and "in_progress" in statuses
        logs = await runs.call_tool("get-task-run-logs", ids)
        assert not logs.is_error and logs.structured_content is None
        assert len(logs.content[0].text.splitlines()) >= 2
        missing = await tasks.call_tool(
            "get-task", {"project_id": "@current", "id": "00000000-0000-0000-0000-000000000000"}
        )
        assert missing.is_error
        assert missing.content[0].text.startswith("upstream posthog-tasks answered HTTP 404 Not Found:")


def test_rate_limit_is_reported_clearly(naftiko) -> None:
    standin, urls = start_stack(naftiko, "--rate-limit", "3")
    try:
        tasks = urls["posthog-tasks-rest"] + P + "/tasks"
        answers = [httpx.get(tasks) for _ in range(5)]
    finally:
        standin.stop()
    limited = answers[-1]
    assert limited.status_code == 429
    assert int(limited.headers["retry-after"]) >= 1
    assert limited.json()["type"] == "throttled_error"
