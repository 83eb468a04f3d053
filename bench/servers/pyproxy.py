"""The "pure proxy" reference: the least a Python pass-through can do per request.

Raw ASGI (no framework) under granian with uvloop, one pooled aiohttp session with keep-alive
to the upstream. It forwards method, path and query, reads the answer and returns it with its
status and content type. Nothing is parsed or mapped: this is the floor for a Python proxy.
Run: granian --interface asgi --loop uvloop --workers 1 bench.servers.pyproxy:app
"""

from __future__ import annotations

import os
from typing import Any
from collections.abc import Awaitable, Callable

import aiohttp

UPSTREAM = os.environ["BENCH_UPSTREAM"]  # e.g. http://127.0.0.1:18001
_session: aiohttp.ClientSession | None = None


async def _lifespan(receive: Callable[[], Awaitable[dict]], send: Callable[[dict], Awaitable[None]]) -> None:
    global _session
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            _session = aiohttp.ClientSession(UPSTREAM, connector=aiohttp.TCPConnector(limit=512), auto_decompress=False)
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            if _session is not None:
                await _session.close()
            await send({"type": "lifespan.shutdown.complete"})
            return


async def app(scope: dict[str, Any], receive: Callable, send: Callable) -> None:
    if scope["type"] == "lifespan":
        await _lifespan(receive, send)
        return
    if scope["type"] != "http" or _session is None:
        return
    target = scope["path"] + ("?" + scope["query_string"].decode("latin-1") if scope["query_string"] else "")
    async with _session.request(scope["method"], target) as response:
        body = await response.read()
        headers = [
            (b"content-type", response.headers.get("Content-Type", "application/octet-stream").encode()),
            (b"content-length", str(len(body)).encode()),
        ]
        await send({"type": "http.response.start", "status": response.status, "headers": headers})
        await send({"type": "http.response.body", "body": body})
