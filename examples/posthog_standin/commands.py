"""``command/``: JSON-RPC 2.0 to a run's agent, plus the fake in-sandbox agent server.

``user_message`` is queued through the workflow and works without a sandbox.
Every other method is proxied over HTTP to ``state.sandbox_url + "/command"``,
exactly as production does. While the simulated worker runs, ``sandbox_url``
points at :func:`sandbox_command` on this same server, so the proxy path (and
its 502/504 failures) is exercised for real.
"""

from __future__ import annotations

from typing import Any

import httpx
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from .context import Context, Standin
from .errors import run_error, validation_error
from .store import TaskRun
from .validation import MISSING, Reader

METHODS = ("user_message", "cancel", "close", "permission_response", "set_config_option")


def _non_empty_str(value: Any) -> bool:
    return isinstance(value, str) and bool(value.strip())


def check_params(method: str, params: dict[str, Any]) -> None:
    """Per-method parameter rules; failures are 400 with ``attr: "params"``."""
    if method == "user_message":
        content, artifact_ids = params.get("content"), params.get("artifact_ids")
        ids_ok = isinstance(artifact_ids, list) and bool(artifact_ids) and all(map(_non_empty_str, artifact_ids))
        if artifact_ids is not None and not ids_ok:
            raise validation_error("artifact_ids must be a non-empty list of non-empty strings", "params")
        if content is not None and not _non_empty_str(content):
            raise validation_error("content must be a non-empty string", "params")
        if content is None and artifact_ids is None:
            raise validation_error("user_message requires 'content' or 'artifact_ids'", "params")
    required = {"permission_response": ("requestId", "optionId"), "set_config_option": ("configId", "value")}
    for name in required.get(method, ()):
        if not _non_empty_str(params.get(name)):
            raise validation_error(f"{method} requires a non-empty string '{name}'", "params")


def read_request(body: Reader) -> dict[str, Any]:
    body.choice("jsonrpc", ("2.0",), is_required=True)
    method = body.choice("method", METHODS, is_required=True)
    params = body.mapping("params")
    request_id = body.json("id")
    if request_id is not MISSING and (isinstance(request_id, bool) or not isinstance(request_id, (str, int, float))):
        raise validation_error("id must be a string or number", "id")
    params = {} if params is MISSING else params
    check_params(method, params)
    rpc: dict[str, Any] = {"jsonrpc": "2.0", "method": method, "params": params}
    if request_id is not MISSING:
        rpc["id"] = request_id
    return rpc


async def command(ctx: Context) -> Response:
    _, run = ctx.task_and_run()
    rpc = read_request(await ctx.body())
    if rpc["method"] == "user_message":
        return queue_user_message(ctx, run, rpc)
    return await proxy_to_agent(ctx, run, rpc)


def queue_user_message(ctx: Context, run: TaskRun, rpc: dict[str, Any]) -> Response:
    artifact_ids = rpc["params"].get("artifact_ids") or []
    missing = [i for i in artifact_ids if run.artifact(artifact_id=i) is None]
    if missing:
        raise run_error(400, "Some artifact_ids are invalid for this run", missing_artifact_ids=missing)
    if run.is_terminal:
        raise run_error(409, "Task run workflow has ended")
    run.state.pop("await_user_message", None)
    ctx.standin.simulator.on_user_message(run, rpc["params"].get("content"))
    reply: dict[str, Any] = {"jsonrpc": "2.0", "result": {"queued": True}}
    if "id" in rpc:
        reply["id"] = rpc["id"]
    return JSONResponse(reply)


async def proxy_to_agent(ctx: Context, run: TaskRun, rpc: dict[str, Any]) -> Response:
    sandbox_url = run.state.get("sandbox_url")
    if not isinstance(sandbox_url, str) or not sandbox_url:
        raise run_error(400, "No active sandbox for this task run")
    token = run.state.get("sandbox_connect_token")
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    timeout = ctx.standin.settings.command_timeout_seconds
    try:
        async with httpx.AsyncClient(timeout=timeout) as client:
            reply = await client.post(f"{sandbox_url.rstrip('/')}/command", json=rpc, headers=headers)
    except httpx.TimeoutException:
        raise run_error(504, "Agent server request timed out") from None
    except httpx.HTTPError:
        raise run_error(502, "Agent server is not reachable") from None
    if not reply.is_success:
        raise run_error(502, f"Agent server returned {reply.status_code}")
    try:
        return JSONResponse(reply.json())
    except ValueError:
        raise run_error(502, "Agent server returned an invalid response") from None


# -- the fake agent server inside the "sandbox" ------------------------------------------


def agent_result(standin: Standin, run: TaskRun, method: str, params: dict[str, Any]) -> dict[str, Any]:
    if method == "cancel":
        standin.simulator.cancel(run)
        return {"cancelled": True}
    if method == "close":
        return {"closed": True}
    if method == "permission_response":
        return {"acknowledged": True, "requestId": params.get("requestId")}
    if method == "set_config_option":
        run.state.setdefault("config_options", {})[params["configId"]] = params["value"]
        return {"configId": params["configId"], "value": params["value"]}
    return {"ok": True}


async def sandbox_command(request: Request) -> Response:
    """``POST /_standin/sandbox/{run_id}/command``: answers only while the run is in progress."""
    standin: Standin = request.app.state.standin
    run = standin.store.runs.get(request.path_params["run_id"])
    if run is None or run.status != "in_progress" or run.environment != "cloud":
        return JSONResponse({"error": "sandbox is not running"}, status_code=503)
    try:
        rpc = await request.json()
    except ValueError:
        return JSONResponse({"error": "invalid JSON"}, status_code=400)
    result = agent_result(standin, run, rpc.get("method", ""), rpc.get("params") or {})
    reply: dict[str, Any] = {"jsonrpc": "2.0", "result": result}
    if "id" in rpc:
        reply["id"] = rpc["id"]
    return JSONResponse(reply)
