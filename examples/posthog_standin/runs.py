"""Handlers for ``tasks/{task_id}/runs/`` and the run-level actions that change run state.

Logs, artifacts, commands and the event stream have their own modules.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from typing import Any

from starlette.responses import JSONResponse, Response

from .context import Context
from .errors import detail_error, run_error
from .pagination import paginate
from .run_options import check_references, initial_state, read_run_options
from .schema import output_error
from .serializers import run_json, task_json
from .store import DEMO_USER, RUN_STATUSES, TaskRun, utcnow
from .validation import MISSING

# Keys only the server may write; PATCH drops them silently (200, not 400).
PROTECTED_STATE_KEYS = frozenset({"github_credential_source", "pr_authorship_mode", "sandbox_id"})
TOKEN_TTL_SECONDS = 24 * 3600


async def list_runs(ctx: Context) -> Response:
    runs = ctx.store.runs_of(ctx.task())
    return JSONResponse(paginate(ctx.request, runs, lambda r: run_json(ctx, r)))


async def create_run(ctx: Context) -> Response:
    """Bootstrap a ``queued`` run without starting it (``local`` unless told otherwise)."""
    task = ctx.task()
    options = read_run_options(await ctx.body(), task_run=False)
    check_references(ctx.store, task, options)
    run = ctx.store.create_run(
        task,
        environment=options.get("environment", "local"),
        state=initial_state(options),
        branch=options.get("branch"),
    )
    return JSONResponse(run_json(ctx, run), status_code=201)


async def retrieve_run(ctx: Context) -> Response:
    _, run = ctx.task_and_run()
    return JSONResponse(run_json(ctx, run))


async def update_run(ctx: Context) -> Response:
    """PATCH: protected keys dropped, ``state_remove_keys`` applied, then ``state`` shallow-merged."""
    _, run = ctx.task_and_run()
    body = await ctx.body()
    changes = {
        "status": body.choice("status", RUN_STATUSES),
        "branch": body.string("branch", nullable=True, max_length=255),
        "stage": body.string("stage", nullable=True, max_length=100),
        "output": body.json("output"),
        "state": body.mapping("state"),
        "state_remove_keys": body.string_list("state_remove_keys", allow_empty=False),
        "error_message": body.string("error_message", nullable=True),
        "environment": body.choice("environment", ("local",)),
    }
    changes = {name: value for name, value in changes.items() if value is not MISSING}
    _apply_state(run, changes.pop("state", None), changes.pop("state_remove_keys", None))
    if "output" in changes:
        run.output = _merged_output(run.output, changes.pop("output"))
    if changes.pop("environment", None) == "local" and run.environment == "cloud":
        ctx.standin.simulator.release(run)  # hand-off to the desktop client
        run.environment = "local"
    for name in ("branch", "stage", "error_message"):
        if name in changes:
            setattr(run, name, changes[name])
    if "status" in changes:
        ctx.store.set_status(run, changes["status"])
        if run.is_terminal:
            ctx.standin.simulator.release(run)
    ctx.store.changed(run)
    return JSONResponse(run_json(ctx, run))


def _apply_state(run: TaskRun, incoming: dict[str, Any] | None, remove: list[str] | None) -> None:
    for key in remove or []:
        if key not in PROTECTED_STATE_KEYS:
            run.state.pop(key, None)
    for key, value in (incoming or {}).items():
        if key not in PROTECTED_STATE_KEYS:
            run.state[key] = value


def _merged_output(current: Any, incoming: Any) -> Any:
    """A dict is shallow-merged into an existing dict; anything else replaces."""
    if isinstance(incoming, dict) and isinstance(current, dict):
        return {**current, **incoming}
    return incoming


async def set_output(ctx: Context) -> Response:
    """Replace ``output``, validated against the task's ``json_schema`` if it has one."""
    task, run = ctx.task_and_run()
    output = (await ctx.body()).json("output", is_required=True)
    problem = output_error(task.json_schema, output)
    if problem:
        raise run_error(400, f"Output validation error: {problem}")
    run.output = output
    ctx.store.changed(run)
    return JSONResponse(run_json(ctx, run))


async def start_run(ctx: Context) -> Response:
    """Launch the workflow of a queued cloud run; the status itself is left to the worker."""
    task, run = ctx.task_and_run()
    body = await ctx.body()
    message = body.string("pending_user_message", nullable=True)
    artifact_ids = body.string_list("pending_user_artifact_ids", blank=False)
    if run.environment != "cloud":
        raise run_error(400, "Only cloud runs can be started via this endpoint")
    if run.status not in ("not_started", "queued"):
        raise run_error(400, f"Only queued or not_started cloud runs can be started (current status: {run.status})")
    artifact_ids = artifact_ids or []
    missing = [i for i in artifact_ids if run.artifact(artifact_id=i) is None]
    if missing:
        raise detail_error(400, "Some pending_user_artifact_ids are invalid or expired", missing_artifact_ids=missing)
    if message and message.strip():
        run.state["pending_user_message"] = message.strip()
    if artifact_ids:
        run.state["pending_user_artifact_ids"] = artifact_ids
    run.updated_at = utcnow()
    ctx.standin.simulator.start(run, ctx.base_url)
    return JSONResponse(task_json(ctx, task))


async def resume_in_cloud(ctx: Context) -> Response:
    """Requeue a finished or local run in the cloud as an interactive hand-off."""
    _, run = ctx.task_and_run()
    if run.environment == "cloud" and run.status in ("queued", "in_progress"):
        raise run_error(400, "Run is already active in cloud")
    run.status, run.environment = "queued", "cloud"
    run.completed_at = run.error_message = None
    run.state.update({"handoff_resumed": True, "mode": "interactive"})
    run.state.pop("pending_user_message", None)
    ctx.store.changed(run)
    ctx.standin.simulator.start(run, ctx.base_url)
    return JSONResponse(run_json(ctx, run))


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


async def connection_token(ctx: Context) -> Response:
    """A JWT-shaped sandbox token with the real claims (signed HS256-style, not RS256)."""
    task, run = ctx.task_and_run()
    header = {"alg": "RS256", "typ": "JWT", "kid": "posthog-standin"}
    claims = {
        "run_id": run.id,
        "task_id": task.id,
        "team_id": ctx.store.project_id,
        "user_id": DEMO_USER["id"],
        "distinct_id": DEMO_USER["distinct_id"],
        "mode": run.state.get("mode", "background"),
        "exp": int(time.time()) + TOKEN_TTL_SECONDS,
        "aud": "posthog:sandbox_connection",
    }
    signing_input = f"{_b64url(json.dumps(header).encode())}.{_b64url(json.dumps(claims).encode())}"
    signature = hmac.new(ctx.standin.secret, signing_input.encode(), hashlib.sha256).digest()
    return JSONResponse({"token": f"{signing_input}.{_b64url(signature)}"})


async def relay_message(ctx: Context) -> Response:
    """No Slack here, so every relay is ``skipped`` (as production does without a thread)."""
    ctx.task_and_run()
    body = await ctx.body()
    body.string("text", is_required=True, max_length=10_000)
    body.string("message_id", nullable=True)
    return JSONResponse({"status": "skipped"})
