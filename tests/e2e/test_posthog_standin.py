"""End-to-end tests of the PostHog Tasks stand-in over real loopback HTTP.

Servers run under uvicorn (a background thread, or a real ``python -m`` process
for the CLI test) on free 127.0.0.1 ports; every request goes through httpx.
"""

from __future__ import annotations

import base64
import json
import re
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

from examples.posthog_standin import create_app

REPO_ROOT = Path(__file__).resolve().parents[2]
STEP = 0.15  # simulated worker step; a started run completes after 4 steps
WRITE_KEY = "phx_demo_key"
READ_KEY = "phx_read_only"
TASKS = "/api/projects/@current/tasks/"


@contextmanager
def serve(**app_options: Any) -> Iterator[str]:
    """Run ``create_app(**app_options)`` under uvicorn in a thread; yield its base URL."""
    server = uvicorn.Server(uvicorn.Config(create_app(**app_options), host="127.0.0.1", port=0, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline, "stand-in did not start"
        time.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


@pytest.fixture(scope="module")
def base_url() -> Iterator[str]:
    keys = {WRITE_KEY: ["task:write"], READ_KEY: ["task:read"]}
    with serve(api_keys=keys, run_step_seconds=STEP) as url:
        yield url


@pytest.fixture()
def client(base_url: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=base_url, headers={"Authorization": f"Bearer {WRITE_KEY}"}, timeout=10) as c:
        yield c


def create_task(client: httpx.Client, **fields: Any) -> dict[str, Any]:
    response = client.post(TASKS, json={"description": "Fix the flaky login test", **fields})
    assert response.status_code == 201, response.text
    return response.json()


def create_run(client: httpx.Client, task_id: str, **fields: Any) -> dict[str, Any]:
    response = client.post(f"{TASKS}{task_id}/runs/", json=fields)
    assert response.status_code == 201, response.text
    return response.json()


def run_url(run: dict[str, Any], action: str = "") -> str:
    return f"{TASKS}{run['task']}/runs/{run['id']}/{action}"


def wait_for_status(client: httpx.Client, run: dict[str, Any], status: str, timeout: float = 5) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        current = client.get(run_url(run)).json()
        if current["status"] == status:
            return current
        assert time.monotonic() < deadline, f"run stayed {current['status']}, wanted {status}"
        time.sleep(0.03)


def read_sse(client: httpx.Client, url: str, headers: dict[str, str] | None = None) -> list[dict[str, Any]]:
    """Read an SSE response to its end; each frame records when it arrived."""
    frames: list[dict[str, Any]] = []
    current: dict[str, Any] = {}
    with client.stream("GET", url, headers=headers or {}) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        assert response.headers["cache-control"] == "no-cache"
        for line in response.iter_lines():
            if not line:
                if current:
                    frames.append({**current, "at": time.monotonic()})
                current = {}
                continue
            field, _, value = line.partition(": ")
            current[field] = json.loads(value) if field == "data" else value
    return frames


# -- tasks ---------------------------------------------------------------------------------


def test_task_create_list_and_pagination(client: httpx.Client) -> None:
    repo = "Acme/Pagination"
    created = [create_task(client, title=f"Task {i}", repository=repo) for i in range(5)]
    assert created[0]["repository"] == "acme/pagination"
    assert created[0]["title_manually_set"] is True
    numbers = [t["task_number"] for t in created]
    assert numbers == list(range(numbers[0], numbers[0] + 5))
    assert created[0]["slug"] == f"DEM-{numbers[0]}"

    page1 = client.get(TASKS.rstrip("/"), params={"repository": repo, "limit": 2})
    assert page1.status_code == 200
    body = page1.json()
    assert body["count"] == 5 and body["previous"] is None
    assert [t["title"] for t in body["results"]] == ["Task 4", "Task 3"]  # newest first
    assert "/tasks/?" in body["next"] and "limit=2" in body["next"] and "offset=2" in body["next"]

    page2 = client.get(body["next"]).json()
    assert [t["title"] for t in page2["results"]] == ["Task 2", "Task 1"]
    assert "offset" not in page2["previous"]  # first page link drops offset, as DRF does
    page3 = client.get(page2["next"]).json()
    assert [t["title"] for t in page3["results"]] == ["Task 0"] and page3["next"] is None

    clamped = client.get(TASKS, params={"limit": 1000, "repository": repo}).json()
    assert len(clamped["results"]) == 5 and clamped["next"] is None
    assert client.get(TASKS, params={"search": f"DEM-{numbers[2]}"}).json()["results"][0]["title"] == "Task 2"


def test_task_update_delete_and_actions(client: httpx.Client) -> None:
    task = create_task(client, description="A" * 70, repository="acme/widgets")
    assert task["title"] == "A" * 57 + "..." and task["title_manually_set"] is False
    bad = client.post(TASKS, json={"description": "x", "repository": "not-a-repo"})
    assert bad.status_code == 400
    assert bad.json() == {
        "type": "validation_error",
        "code": "invalid_input",
        "detail": "Repository must be in the format organization/repository",
        "attr": "repository",
    }
    bad_origin = client.post(TASKS, json={"origin_product": "nope"}).json()
    assert (bad_origin["code"], bad_origin["attr"]) == ("invalid_choice", "origin_product")

    updated = client.put(f"{TASKS}{task['id']}", json={"title": "Renamed"}).json()
    assert updated["title"] == "Renamed" and updated["title_manually_set"] is True
    assert "acme/widgets" in client.get(f"{TASKS}repositories/").json()["repositories"]

    readiness = client.get(f"{TASKS}repository_readiness", params={"repository": "Acme/Widgets"}).json()
    assert readiness["repository"] == "acme/widgets" and readiness["overall"] == "needs_setup"
    summary = client.post(f"{TASKS}summaries/", json={"ids": [task["id"]]}).json()
    assert summary["count"] == 1 and summary["results"][0]["title"] == "Renamed"

    assert client.delete(f"{TASKS}{task['id']}/").status_code == 204
    assert client.get(f"{TASKS}{task['id']}/").status_code == 404
    assert client.get(f"{TASKS}{task['id']}/runs/").status_code == 404


# -- runs, stream, state ---------------------------------------------------------------------


def test_started_run_streams_progressively_until_completion(client: httpx.Client) -> None:
    task = create_task(client, repository="acme/stream")
    run = create_run(client, task["id"], environment="cloud", runtime_adapter="claude", model="claude-sonnet-4-6")
    assert (run["status"], run["environment"], run["provider"]) == ("queued", "cloud", "anthropic")

    started = client.post(run_url(run, "start/"), json={"pending_user_message": "  go  "})
    assert started.status_code == 200
    assert started.json()["id"] == task["id"]  # start/ answers with the Task
    opened = time.monotonic()
    frames = read_sse(client, run_url(run, "stream/"))

    data_frames = [f for f in frames if "event" not in f]
    assert all(re.fullmatch(r"\d+-\d+", f["id"]) for f in data_frames)
    statuses = [f["data"]["status"] for f in data_frames if f["data"].get("type") == "task_run_state"]
    assert statuses[0] == "queued" and statuses[-1] == "completed" and "in_progress" in statuses
    assert frames[-1]["event"] == "stream-end" and frames[-1]["data"] == {"status": "complete"}
    kinds = [f["data"].get("notification", {}).get("method") for f in data_frames]
    assert "_posthog/console" in kinds and "session/update" in kinds

    # Events arrive as the run progresses, not in one batch at the end.
    first_progress = next(f for f in data_frames if f["data"].get("status") == "in_progress")
    completed = next(f for f in data_frames if f["data"].get("status") == "completed")
    assert completed["at"] - first_progress["at"] >= 2 * STEP * 0.8
    assert completed["at"] - opened >= 3 * STEP * 0.8

    final = client.get(run_url(run)).json()
    assert final["status"] == "completed" and final["completed_at"]
    assert final["output"]["pr_url"].startswith("https://github.com/acme/stream/pull/")
    assert final["state"]["pending_user_message"] == "go"

    resumed = read_sse(client, run_url(run, "stream"), headers={"Last-Event-ID": first_progress["id"]})
    assert resumed[0]["id"] > first_progress["id"] and resumed[-1]["event"] == "stream-end"

    again = client.post(run_url(run, "start/"))
    assert again.status_code == 400
    assert again.json() == {"error": "Only queued or not_started cloud runs can be started (current status: completed)"}


def test_task_run_action_and_resume_chain(client: httpx.Client) -> None:
    task = create_task(client)
    refreshed = client.post(f"{TASKS}{task['id']}/run/", json={"mode": "interactive", "branch": "main"})
    assert refreshed.status_code == 200
    first = refreshed.json()["latest_run"]
    assert (first["status"], first["environment"], first["state"]["mode"]) == ("queued", "cloud", "interactive")
    wait_for_status(client, first, "completed")

    follow = client.post(f"{TASKS}{task['id']}/run/", json={"resume_from_run_id": first["id"]}).json()["latest_run"]
    assert follow["id"] != first["id"] and follow["branch"] == "main"
    wait_for_status(client, follow, "completed")
    chained = client.get(run_url(follow, "logs/")).text.splitlines()
    assert len(chained) == len(client.get(run_url(first, "logs/")).text.splitlines()) * 2

    bad = client.post(f"{TASKS}{task['id']}/run/", json={"resume_from_run_id": "00000000-0000-0000-0000-000000000000"})
    assert bad.status_code == 400 and bad.json() == {"detail": "Invalid resume_from_run_id"}
    effort = client.post(
        f"{TASKS}{task['id']}/run/", json={"runtime_adapter": "codex", "model": "gpt-5", "reasoning_effort": "max"}
    ).json()
    assert effort["attr"] == "reasoning_effort" and "Supported values: low, medium, high" in effort["detail"]


def test_patch_state_output_and_set_output(client: httpx.Client) -> None:
    schema = {"type": "object", "required": ["pr_url"], "properties": {"pr_url": {"type": "string"}}}
    task = create_task(client, json_schema=schema)
    run = create_run(client, task["id"], pr_authorship_mode="bot")
    assert run["environment"] == "local" and run["state"]["pr_authorship_mode"] == "bot"

    patched = client.patch(
        run_url(run),
        json={"state": {"a": 1, "nested": {"x": 1}, "sandbox_id": "evil"}, "output": {"k": 1}, "stage": "build"},
    ).json()
    assert patched["state"]["a"] == 1 and "sandbox_id" not in patched["state"] and patched["stage"] == "build"
    patched = client.patch(
        run_url(run),
        json={"state": {"nested": {"y": 2}}, "state_remove_keys": ["a", "pr_authorship_mode"], "output": {"j": 2}},
    ).json()
    assert patched["state"]["nested"] == {"y": 2} and "a" not in patched["state"]
    assert patched["state"]["pr_authorship_mode"] == "bot"  # protected keys survive silently
    assert patched["output"] == {"k": 1, "j": 2}
    empty = client.patch(run_url(run), json={"state_remove_keys": []})
    assert empty.status_code == 400 and empty.json()["code"] == "empty"

    invalid = client.patch(run_url(run, "set_output/"), json={"output": {"pr_url": 5}})
    assert invalid.status_code == 400 and invalid.json()["error"].startswith("Output validation error:")
    missing = client.patch(run_url(run, "set_output/"), json={}).json()
    assert (missing["code"], missing["attr"]) == ("required", "output")
    replaced = client.patch(run_url(run, "set_output"), json={"output": {"pr_url": "https://x/1"}}).json()
    assert replaced["output"] == {"pr_url": "https://x/1"}

    done = client.patch(run_url(run), json={"status": "failed", "error_message": "boom"}).json()
    assert done["status"] == "failed" and done["completed_at"] and done["error_message"] == "boom"
    local = client.post(run_url(run, "start/"))
    assert local.json() == {"error": "Only cloud runs can be started via this endpoint"}
    resumed = client.post(run_url(run, "resume_in_cloud/")).json()
    assert (resumed["status"], resumed["environment"], resumed["completed_at"]) == ("queued", "cloud", None)
    assert resumed["state"]["handoff_resumed"] is True
    assert client.post(run_url(run, "resume_in_cloud/")).json() == {"error": "Run is already active in cloud"}


# -- logs ---------------------------------------------------------------------------------------


def entry(method: str, ts: str, update: str | None = None) -> dict[str, Any]:
    params: dict[str, Any] = {"sessionId": "s"}
    if update:
        params["update"] = {"sessionUpdate": update}
    notification = {"jsonrpc": "2.0", "method": method, "params": params}
    return {"type": "notification", "timestamp": ts, "notification": notification}


def test_append_log_logs_and_session_log_filters(client: httpx.Client) -> None:
    run = create_run(client, create_task(client)["id"])
    missing = client.post(run_url(run, "append_log/"), json={})
    assert missing.status_code == 400
    assert missing.json() == {
        "type": "validation_error",
        "code": "required",
        "detail": "This field is required.",
        "attr": "entries",
    }
    empty = client.post(run_url(run, "append_log/"), json={"entries": []})
    assert empty.json()["detail"] == "At least one log entry is required"

    entries = [
        entry("_posthog/console", "2025-01-01T00:00:01Z"),
        entry("session/update", "2025-01-01T00:00:02Z", "agent_message_chunk"),  # dropped
        entry("session/update", "2025-01-01T00:00:03Z", "agent_message"),
        entry("session/update", "2025-01-01T00:00:04Z", "tool_call"),
        entry("_posthog/progress", "2025-01-01T00:00:05+00:00"),
        {"type": "raw", "text": "no notification, no timestamp"},
    ]
    appended = client.post(run_url(run, "append_log"), json={"entries": entries})
    assert appended.status_code == 200 and "server-timing" in appended.headers

    raw = client.get(run_url(run, "logs/"))
    assert raw.headers["content-type"] == "application/jsonl" and raw.headers["cache-control"] == "no-cache"
    lines = raw.text.splitlines()
    assert len(lines) == 5 and raw.text.endswith("\n")
    assert lines[0] == json.dumps(entries[0])
    log_url = client.get(run_url(run)).json()["log_url"]
    assert httpx.get(log_url).text == raw.text.rstrip("\n")  # presigned object, stored without trailing newline

    def session_logs(**params: Any) -> httpx.Response:
        return client.get(run_url(run, "session_logs/"), params=params)

    everything = session_logs()
    assert len(everything.json()) == 5 and everything.headers["x-total-count"] == "5"
    only = session_logs(event_types="agent_message,tool_call")
    updates = [e["notification"]["params"]["update"]["sessionUpdate"] for e in only.json()]
    assert updates == ["agent_message", "tool_call"]
    assert only.headers["x-filtered-count"] == "2" == only.headers["x-matching-count"]
    excluded = session_logs(exclude_types="_posthog/console,")
    assert len(excluded.json()) == 4  # the undated entry has event type "" and stays
    after = session_logs(after="2025-01-01T00:00:03Z")
    assert [e["timestamp"] for e in after.json()] == ["2025-01-01T00:00:04Z", "2025-01-01T00:00:05+00:00"]
    page = session_logs(limit=2, offset=1)
    assert len(page.json()) == 2 and page.headers["x-has-more"] == "true"
    assert page.json()[0] == entries[2]
    last = session_logs(limit=2, offset=4)
    assert len(last.json()) == 1 and last.headers["x-has-more"] == "false"
    bad = session_logs(limit=0).json()
    assert (bad["code"], bad["attr"]) == ("min_value", "limit")
    assert session_logs(after="yesterday").json()["attr"] == "after"


# -- artifacts -------------------------------------------------------------------------------------


def test_artifact_presigned_round_trip(client: httpx.Client) -> None:
    run = create_run(client, create_task(client)["id"])
    payload = bytes(range(256)) * 4 + b"\r\n--not-a-boundary\r\n"
    prepared = client.post(
        run_url(run, "artifacts/prepare_upload/"),
        json={
            "artifacts": [
                {"name": "dir/plan.bin", "type": "plan", "size": len(payload), "content_type": "application/x-test"}
            ]
        },
    )
    assert prepared.status_code == 200, prepared.text
    slot = prepared.json()["artifacts"][0]
    assert slot["name"] == "plan.bin" and slot["expires_in"] == 3600
    assert slot["storage_path"].endswith(f"/run_{run['id']}/{slot['id'][:8]}_plan.bin")

    post = slot["presigned_post"]
    assert post["url"].startswith(str(client.base_url))
    uploaded = httpx.post(post["url"], data=post["fields"], files={"file": ("plan.bin", payload, "application/x-test")})
    assert uploaded.status_code == 204, uploaded.text
    tampered = dict(post["fields"], key=post["fields"]["key"] + "x")
    assert httpx.post(post["url"], data=tampered, files={"file": ("f", b"x")}).status_code == 403

    final_item = {k: slot[k] for k in ("id", "name", "type", "storage_path", "content_type")}
    finalized = client.post(run_url(run, "artifacts/finalize_upload/"), json={"artifacts": [final_item]}).json()
    assert finalized["artifacts"][0]["size"] == len(payload)
    again = client.post(run_url(run, "artifacts/finalize_upload/"), json={"artifacts": [final_item]}).json()
    assert again == finalized  # echoed, not duplicated
    assert len(client.get(run_url(run)).json()["artifacts"]) == 1

    presigned = client.post(run_url(run, "artifacts/presign/"), json={"storage_path": slot["storage_path"]}).json()
    fetched = httpx.get(presigned["url"])
    assert fetched.status_code == 200 and fetched.content == payload
    downloaded = client.post(run_url(run, "artifacts/download/"), json={"storage_path": slot["storage_path"]})
    assert downloaded.content == payload and downloaded.headers["content-type"] == "application/x-test"
    assert downloaded.headers["content-disposition"] == 'attachment; filename="plan.bin"'

    unknown = client.post(run_url(run, "artifacts/download/"), json={"storage_path": "tasks/nope"})
    assert unknown.status_code == 404 and unknown.json() == {"error": "Artifact not found on this run"}
    foreign = dict(final_item, id="f" * 32, storage_path="tasks/artifacts/elsewhere/x")
    rejected = client.post(run_url(run, "artifacts/finalize_upload/"), json={"artifacts": [foreign]})
    assert rejected.status_code == 400 and rejected.json() == {"error": "Artifact storage path is invalid for this run"}

    inline = client.post(
        run_url(run, "artifacts/"),
        json={
            "artifacts": [
                {
                    "name": "notes.md",
                    "type": "context",
                    "content": base64.b64encode(b"# hi").decode(),
                    "content_encoding": "base64",
                }
            ]
        },
    ).json()
    assert [a["name"] for a in inline["artifacts"]] == ["plan.bin", "notes.md"]  # whole manifest
    broken = client.post(
        run_url(run, "artifacts/"),
        json={"artifacts": [{"name": "x", "type": "context", "content": "@@@", "content_encoding": "base64"}]},
    ).json()
    assert broken["attr"] == "artifacts__0__content"


# -- commands ---------------------------------------------------------------------------------------


def test_command_json_rpc_and_errors(client: httpx.Client) -> None:
    task = create_task(client)
    run = create_run(client, task["id"])

    def command(body: dict[str, Any]) -> httpx.Response:
        return client.post(run_url(run, "command/"), json=body)

    no_params = command({"jsonrpc": "2.0", "method": "user_message", "params": {}})
    assert no_params.status_code == 400 and no_params.json()["attr"] == "params"
    assert command({"jsonrpc": "2.0", "method": "rm -rf"}).json()["code"] == "invalid_choice"
    bad_id = command({"jsonrpc": "2.0", "method": "cancel", "id": True})
    assert bad_id.json()["detail"] == "id must be a string or number"
    assert command({"jsonrpc": "2.0", "method": "cancel"}).json() == {"error": "No active sandbox for this task run"}
    unknown_artifact = command({"jsonrpc": "2.0", "method": "user_message", "params": {"artifact_ids": ["zz"]}})
    assert unknown_artifact.json() == {
        "error": "Some artifact_ids are invalid for this run",
        "missing_artifact_ids": ["zz"],
    }
    queued = command({"jsonrpc": "2.0", "method": "user_message", "params": {"content": "hi"}, "id": 7})
    assert queued.json() == {"jsonrpc": "2.0", "result": {"queued": True}, "id": 7}

    cloud = client.post(f"{TASKS}{task['id']}/run/").json()["latest_run"]
    wait_for_status(client, cloud, "in_progress")
    cancel = client.post(run_url(cloud, "command/"), json={"jsonrpc": "2.0", "method": "cancel", "id": "c1"})
    assert cancel.status_code == 200 and cancel.json() == {"jsonrpc": "2.0", "result": {"cancelled": True}, "id": "c1"}
    assert client.get(run_url(cloud)).json()["status"] == "cancelled"
    ended = client.post(
        run_url(cloud, "command/"), json={"jsonrpc": "2.0", "method": "user_message", "params": {"content": "x"}}
    )
    assert ended.status_code == 409
    gone = client.post(run_url(cloud, "command/"), json={"jsonrpc": "2.0", "method": "close"})
    assert gone.status_code == 502  # sandbox no longer answers

    token = client.get(run_url(run, "connection_token/")).json()["token"]
    claims = json.loads(base64.urlsafe_b64decode(token.split(".")[1] + "=="))
    assert claims["run_id"] == run["id"] and claims["aud"] == "posthog:sandbox_connection"
    assert client.post(run_url(run, "relay_message/"), json={"text": "hello"}).json() == {"status": "skipped"}


# -- auth, errors, throttling ---------------------------------------------------------------------------


def test_auth_scopes_and_error_shapes(base_url: str, client: httpx.Client) -> None:
    anonymous = httpx.get(f"{base_url}{TASKS}")
    assert anonymous.status_code == 401 and anonymous.json()["code"] == "not_authenticated"
    wrong = httpx.get(f"{base_url}{TASKS}", headers={"Authorization": "Bearer phx_wrong"})
    assert wrong.status_code == 401 and wrong.json()["code"] == "authentication_failed"

    reader = {"Authorization": f"Bearer {READ_KEY}"}
    denied = httpx.post(f"{base_url}{TASKS}", headers=reader, json={"description": "x"})
    assert denied.status_code == 403
    assert denied.json() == {
        "type": "authentication_error",
        "code": "permission_denied",
        "detail": "API key missing required scope 'task:write'",
        "attr": None,
    }
    task = create_task(client)
    run = create_run(client, task["id"])
    assert httpx.post(f"{base_url}{TASKS}summaries/", headers=reader, json={"ids": [task["id"]]}).status_code == 200
    assert httpx.get(f"{base_url}{run_url(run, 'connection_token/')}", headers=reader).status_code == 403
    assert httpx.get(f"{base_url}{run_url(run)}", headers=reader).status_code == 200

    other_project = client.get("/api/projects/2/tasks/")
    assert other_project.status_code == 403 and "ID 2." in other_project.json()["detail"]
    assert client.get("/api/projects/1/tasks/").status_code == 200

    unknown = client.get(f"{TASKS}{'1' * 8}-1111-4111-8111-{'1' * 12}/")
    assert unknown.status_code == 404 and unknown.json()["code"] == "not_found"
    assert client.get(f"{TASKS}not-a-uuid/").status_code == 404
    assert client.get(f"{TASKS}{task['id']}/runs/not-a-uuid/logs/").status_code == 404
    assert client.get("/api/projects/1/nothing/").json()["detail"] == "Endpoint not found."

    for method in ("DELETE", "PUT"):
        refused = client.request(method, run_url(run))
        assert refused.status_code == 405
        assert refused.json() == {
            "type": "invalid_request",
            "code": "method_not_allowed",
            "detail": f'Method "{method}" not allowed.',
            "attr": None,
        }
    garbage = client.post(TASKS, content=b"{nope", headers={"Content-Type": "application/json"})
    assert garbage.status_code == 400 and garbage.json()["code"] == "parse_error"


def test_stream_keepalive_rotation_and_start_latest() -> None:
    with serve(stream_keepalive_seconds=0.1, stream_max_seconds=0.45) as url:
        with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {WRITE_KEY}"}) as c:
            run = create_run(c, create_task(c)["id"])  # a local run: nothing drives it
            frames = read_sse(c, run_url(run, "stream/"))
            assert frames[0]["data"]["status"] == "queued"
            assert any(f.get("event") == "keepalive" and f["data"] == {"type": "keepalive"} for f in frames)
            assert frames[-1]["event"] == "end" and frames[-1]["data"] == {"type": "rotated"}
            latest = read_sse(c, run_url(run, "stream/") + "?start=latest")
            assert all("event" in f for f in latest)  # history skipped: only keepalives and the rotation


def test_rate_limit_answers_429_with_retry_after() -> None:
    with serve(rate_limit_per_minute=3) as url:
        with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {WRITE_KEY}"}) as limited:
            assert [limited.get(TASKS).status_code for _ in range(3)] == [200, 200, 200]
            throttled = limited.get(TASKS)
            assert throttled.status_code == 429
            assert 0 < int(throttled.headers["retry-after"]) <= 60
            body = throttled.json()
            assert (body["type"], body["code"]) == ("throttled_error", "throttled")
            assert body["detail"].startswith("Request was throttled. Expected available in ")


def test_cli_process_serves_on_announced_url() -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "examples.posthog_standin", "--port", "0", "--api-key", "phx_cli:task:read"],
        cwd=REPO_ROOT,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stderr is not None
        line = process.stderr.readline()
        match = re.search(r"http://127\.0\.0\.1:\d+", line)
        assert match, line
        url = match.group(0)
        listed = httpx.get(f"{url}/api/projects/@current/tasks", headers={"Authorization": "Bearer phx_cli"})
        assert listed.status_code == 200 and listed.json()["count"] == 0
        write = httpx.post(f"{url}/api/projects/@current/tasks/", headers={"Authorization": "Bearer phx_cli"}, json={})
        assert write.status_code == 403
        assert httpx.get(f"{url}/api/projects/@current/tasks/").status_code == 401
    finally:
        process.terminate()
        process.wait(timeout=10)
        if process.stderr is not None:
            process.stderr.close()
