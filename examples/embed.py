"""naftiko embedded as a library in your own Starlette service.

    .venv/bin/python -m examples.embed

Loads the PostHog capabilities, calls one operation directly, then mounts the REST and MCP
adapters inside an app of our own next to its own route, and serves it for a moment. The
local PostHog stand-in plays the upstream, so no account is needed.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from pathlib import Path

import httpx
import uvicorn
from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Mount, Route

from naftiko import Runtime, build_app
from examples.posthog_standin import create_app as posthog_standin

ROOT = Path(__file__).resolve().parent.parent


def listen() -> socket.socket:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    return sock


async def serve_in_background(app: object, sock: socket.socket) -> tuple[uvicorn.Server, asyncio.Task]:
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
    server.capture_signals = contextlib.nullcontext  # type: ignore[method-assign]
    task = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started:
        await asyncio.sleep(0.01)
    return server, task


async def main() -> None:
    upstream_sock = listen()
    upstream = f"http://127.0.0.1:{upstream_sock.getsockname()[1]}"
    standin, standin_task = await serve_in_background(posthog_standin(), upstream_sock)

    # 1. Load every capability of a folder; secrets and base URIs come from arguments here.
    runtime = Runtime.load(
        ROOT / "capabilities",
        environ={"POSTHOG_API_KEY": "phx_demo_key"},
        base_uris={"posthog-tasks": upstream, "posthog-task-runs": upstream},
    )

    # 2. Mount the generated adapters in our own app; its lifespan owns the runtime.
    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette):
        async with runtime:
            yield

    app = Starlette(
        lifespan=lifespan,
        routes=[
            Route("/health", lambda request: JSONResponse({"ok": True})),
            Mount("/posthog", app=build_app(runtime, "posthog-tasks-rest")),
            Mount("/agents", app=build_app(runtime, "posthog-tasks-mcp")),  # MCP endpoint at /agents/mcp
        ],
    )
    app_sock = listen()
    base = f"http://127.0.0.1:{app_sock.getsockname()[1]}"
    server, server_task = await serve_in_background(app, app_sock)
    try:
        # 3. Call an operation directly, without HTTP in front.
        status, task = await runtime.call(
            "posthog-tasks.taskscreate",
            {"project_id": "@current", "body": {"title": "Embedded", "description": "Created from embed.py"}},
        )
        print("direct call:", status, task["slug"], task["title"])

        # 4. The same API through the mounted REST adapter.
        async with httpx.AsyncClient(base_url=base) as client:
            listed = await client.get("/posthog/v1/api/projects/@current/tasks")
            print("mounted REST:", listed.status_code, [t["title"] for t in listed.json()["results"]])
            tools = await client.post("/agents/mcp", json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"})
            print("mounted MCP:", [tool["name"] for tool in tools.json()["result"]["tools"]][:3], "...")
            print("own route:", (await client.get("/health")).json())
    finally:
        server.should_exit = standin.should_exit = True
        await asyncio.gather(server_task, standin_task)


if __name__ == "__main__":
    asyncio.run(main())
