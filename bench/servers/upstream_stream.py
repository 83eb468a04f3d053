"""The streaming upstream: server-sent events stamped with the send time, and a large download.

Raw ASGI under granian, so the upstream costs as little as possible.
- GET /sse?n=200&interval_ms=10: `n` events, one every `interval_ms`; each carries
  `time.monotonic_ns()` at the moment it is written (CLOCK_MONOTONIC is one clock for every
  process on the machine, so a client can subtract it from its own arrival time).
- GET /download?mb=1024: `mb` MiB of bytes made on the fly (application/octet-stream), so
  the upstream holds no file and no buffer: memory growth downstream is the proxy's own.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any
from collections.abc import Callable
from urllib.parse import parse_qs

CHUNK = b"x" * 65536


def _query(scope: dict[str, Any]) -> dict[str, int]:
    return {k: int(v[0]) for k, v in parse_qs(scope["query_string"].decode()).items()}


async def app(scope: dict[str, Any], receive: Callable, send: Callable) -> None:
    if scope["type"] != "http":
        return
    query = _query(scope)
    if scope["path"] == "/sse":
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"text/event-stream"), (b"cache-control", b"no-cache")],
            }
        )
        interval = query.get("interval_ms", 10) / 1000
        for i in range(query.get("n", 100)):
            event = f'id: {i}\ndata: {{"i": {i}, "t": {time.monotonic_ns()}}}\n\n'.encode()
            await send({"type": "http.response.body", "body": event, "more_body": True})
            await asyncio.sleep(interval)
        await send({"type": "http.response.body", "body": b""})
    elif scope["path"] == "/download":
        total = query.get("mb", 1024) * 1024 * 1024
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"application/octet-stream"), (b"content-length", str(total).encode())],
            }
        )
        for _ in range(total // len(CHUNK)):
            await send({"type": "http.response.body", "body": CHUNK, "more_body": True})
        await send({"type": "http.response.body", "body": b""})
    else:
        await send({"type": "http.response.start", "status": 404, "headers": [(b"content-type", b"text/plain")]})
        await send({"type": "http.response.body", "body": b"not found"})
