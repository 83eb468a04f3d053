"""Routing, authentication order, error rendering and the ``create_app`` factory.

Every API path is registered with and without its trailing slash (PostHog's
router uses ``/?``). Each path maps HTTP methods to a handler plus the scope it
needs; one dispatcher applies the checks in PostHog's order: bearer key (401),
project (404/403), method (405), scope (403), throttle (429).
"""

from __future__ import annotations

import secrets
import shutil
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from . import artifacts, commands, logs, runs, storage, stream, tasks
from .auth import READ, WRITE, RateLimiter, authenticate, build_keys, require_scope, resolve_project
from .context import Context, Settings, Standin
from .errors import ApiError, endpoint_not_found, envelope, method_not_allowed
from .simulator import SANDBOX_PREFIX, RunSimulator
from .storage import S3_PREFIX, BlobStore
from .store import Store

Handler = Callable[[Context], Awaitable[Response]]
ALL_METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]

TASKS = "/api/projects/{project_id}/tasks"
TASK = TASKS + "/{task_id}"
RUNS = TASK + "/runs"
RUN = RUNS + "/{run_id}"


@dataclass(frozen=True)
class Action:
    handler: Handler
    scope: str


def resource(path: str, **actions: Action) -> list[BaseRoute]:
    """Routes for ``path`` and ``path/`` dispatching HTTP methods to actions."""
    allowed = [*actions, *(["HEAD"] if "GET" in actions else []), "OPTIONS"]

    async def endpoint(request: Request) -> Response:
        standin: Standin = request.app.state.standin
        try:
            key = authenticate(request, standin.keys)
            resolve_project(request.path_params["project_id"], standin.settings.project_id)
            method = "GET" if request.method == "HEAD" else request.method
            if method == "OPTIONS":
                return JSONResponse(
                    {"name": path, "renders": ["application/json"], "parses": ["application/json"]},
                    headers={"Allow": ", ".join(allowed)},
                )
            action = actions.get(method)
            if action is None:
                raise method_not_allowed(request.method, allowed)
            require_scope(key, action.scope)
            standin.limiter.hit(key.value)
            return await action.handler(Context(request, standin, key))
        except ApiError as exc:
            return exc.response()

    return [Route(path, endpoint, methods=ALL_METHODS), Route(path + "/", endpoint, methods=ALL_METHODS)]


def api_routes() -> list[BaseRoute]:
    """The Tasks API surface; literal task-level paths come before ``{task_id}``."""
    r, w = READ, WRITE
    table = [
        resource(TASKS, GET=Action(tasks.list_tasks, r), POST=Action(tasks.create_task, w)),
        resource(TASKS + "/repositories", GET=Action(tasks.repositories, r)),
        resource(TASKS + "/repository_readiness", GET=Action(tasks.repository_readiness, r)),
        resource(TASKS + "/summaries", POST=Action(tasks.summaries, r)),
        resource(
            TASK,
            GET=Action(tasks.retrieve_task, r),
            PATCH=Action(tasks.update_task, w),
            PUT=Action(tasks.update_task, w),
            DELETE=Action(tasks.delete_task, w),
        ),
        resource(TASK + "/run", POST=Action(tasks.run_task, w)),
        resource(RUNS, GET=Action(runs.list_runs, r), POST=Action(runs.create_run, w)),
        resource(RUN, GET=Action(runs.retrieve_run, r), PATCH=Action(runs.update_run, w)),
        resource(RUN + "/start", POST=Action(runs.start_run, w)),
        resource(RUN + "/set_output", PATCH=Action(runs.set_output, w)),
        resource(RUN + "/resume_in_cloud", POST=Action(runs.resume_in_cloud, w)),
        resource(RUN + "/connection_token", GET=Action(runs.connection_token, w)),
        resource(RUN + "/relay_message", POST=Action(runs.relay_message, w)),
        resource(RUN + "/append_log", POST=Action(logs.append_log, w)),
        resource(RUN + "/logs", GET=Action(logs.logs, r)),
        resource(RUN + "/session_logs", GET=Action(logs.session_logs, r)),
        resource(RUN + "/command", POST=Action(commands.command, w)),
        resource(RUN + "/stream", GET=Action(stream.stream_run, r)),
        resource(RUN + "/artifacts", POST=Action(artifacts.upload, w)),
        resource(RUN + "/artifacts/prepare_upload", POST=Action(artifacts.prepare_upload, w)),
        resource(RUN + "/artifacts/finalize_upload", POST=Action(artifacts.finalize_upload, w)),
        resource(RUN + "/artifacts/presign", POST=Action(artifacts.presign, r)),
        resource(RUN + "/artifacts/download", POST=Action(artifacts.download, r)),
    ]
    return [route for routes in table for route in routes]


def standin_routes() -> list[BaseRoute]:
    """Unauthenticated helpers that play S3 and the sandbox agent server."""
    return [
        Route(S3_PREFIX + "/", storage.s3_post, methods=["POST"]),
        Route(S3_PREFIX + "/{key:path}", storage.s3_get, methods=["GET"]),
        Route(SANDBOX_PREFIX + "/{run_id}/command", commands.sandbox_command, methods=["POST"]),
        Route("/", index, methods=["GET"]),
    ]


async def index(request: Request) -> Response:
    """Stand-in only: a pointer for humans who open the root URL."""
    standin: Standin = request.app.state.standin
    return JSONResponse(
        {
            "service": "PostHog Tasks API stand-in",
            "project_id": standin.settings.project_id,
            "tasks": f"{str(request.base_url).rstrip('/')}/api/projects/@current/tasks/",
            "auth": "Authorization: Bearer <personal API key>",
        }
    )


async def http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if exc.status_code == 404:
        return endpoint_not_found().response()
    if exc.status_code == 405:
        allowed = (exc.headers or {}).get("Allow", "")
        return method_not_allowed(request.method, allowed.split(", ")).response()
    return JSONResponse(envelope("invalid_request", "error", str(exc.detail)), status_code=exc.status_code)


async def server_error(request: Request, exc: Exception) -> Response:
    return JSONResponse(envelope("server_error", "error", "A server error occurred."), status_code=500)


def create_app(
    *,
    api_keys: Mapping[str, Sequence[str]] | None = None,
    project_id: int = 1,
    rate_limit_per_minute: int | None = None,
    run_step_seconds: float = 0.4,
    artifact_dir: str | None = None,
    stream_keepalive_seconds: float = 20.0,
    stream_max_seconds: float = 900.0,
    command_timeout_seconds: float = 10.0,
) -> Starlette:
    """Build one independent stand-in of PostHog's Tasks API.

    Args:
        api_keys: personal API key → scopes (``task:read``, ``task:write``, ``*``; an
            empty list is a legacy all-access key). Default: ``phx_demo_key`` with
            ``task:write``.
        project_id: the one project that exists; ``@current`` resolves to it.
        rate_limit_per_minute: per-key request budget (429 + ``Retry-After`` beyond
            it); ``None`` (default) disables throttling.
        run_step_seconds: delay between the simulated worker's steps; a started
            cloud run completes after four steps (~1.6 s by default).
        artifact_dir: where artifact bytes are kept; a temp dir (removed on
            shutdown) when omitted.
        stream_keepalive_seconds: idle time before an SSE ``keepalive`` frame.
        stream_max_seconds: lifetime of one SSE connection before ``end``/``rotated``.
        command_timeout_seconds: timeout when proxying ``command/`` to the agent.
    """
    owns_dir = artifact_dir is None
    root = Path(tempfile.mkdtemp(prefix="posthog-standin-") if owns_dir else artifact_dir)
    root.mkdir(parents=True, exist_ok=True)
    secret = secrets.token_bytes(32)
    store = Store(project_id)
    standin = Standin(
        settings=Settings(
            project_id=project_id,
            run_step_seconds=run_step_seconds,
            stream_keepalive_seconds=stream_keepalive_seconds,
            stream_max_seconds=stream_max_seconds,
            command_timeout_seconds=command_timeout_seconds,
        ),
        store=store,
        keys=build_keys(api_keys),
        limiter=RateLimiter(rate_limit_per_minute),
        blobs=BlobStore(root, secret),
        simulator=RunSimulator(store, run_step_seconds),
        secret=secret,
    )

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        try:
            yield
        finally:
            await standin.simulator.shutdown()
            if owns_dir:
                shutil.rmtree(root, ignore_errors=True)

    app = Starlette(
        routes=[*api_routes(), *standin_routes()],
        exception_handlers={HTTPException: http_error, Exception: server_error},
        lifespan=lifespan,
    )
    app.state.standin = standin
    return app
