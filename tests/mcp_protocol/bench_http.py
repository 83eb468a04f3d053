"""Rough throughput of `tools/call` (not a test; run by hand).

    python tests/mcp_protocol/bench_http.py inproc            # the ASGI app alone, no sockets
    python tests/mcp_protocol/bench_http.py http URL [N] [C]  # aiohttp client against a server

Both send the modern (2026-07-28) `add` call; `legacy` as a third argument to `inproc` sends the
handshake-era form instead.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from adapters.mcp.http import McpHttpApp  # noqa: E402
from tests.mcp_protocol.fake_server import build_backend  # noqa: E402

META = {"io.modelcontextprotocol/protocolVersion": "2026-07-28", "io.modelcontextprotocol/clientCapabilities": {}}
BODY_MODERN = json.dumps(
    {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "add", "arguments": {"a": 2, "b": 3}, "_meta": META}}
).encode()
BODY_LEGACY = json.dumps(
    {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "add", "arguments": {"a": 2, "b": 3}}}
).encode()
HEADERS_MODERN = {
    "content-type": "application/json",
    "accept": "application/json, text/event-stream",
    "mcp-protocol-version": "2026-07-28",
    "mcp-method": "tools/call",
    "mcp-name": "add",
}


async def inproc(n: int, legacy: bool) -> None:
    app = McpHttpApp(build_backend())
    body = BODY_LEGACY if legacy else BODY_MODERN
    headers = [(b"host", b"127.0.0.1:8000"), (b"content-type", b"application/json")]
    if not legacy:
        headers += [(k.encode(), v.encode()) for k, v in HEADERS_MODERN.items() if k != "content-type"]
    scope = {"type": "http", "method": "POST", "path": "/mcp", "headers": headers}
    request = {"type": "http.request", "body": body, "more_body": False}
    statuses = []

    async def receive() -> dict:
        return request

    async def send(message: dict) -> None:
        if message["type"] == "http.response.start":
            statuses.append(message["status"])

    started = time.perf_counter()
    for _ in range(n):
        await app(scope, receive, send)
    elapsed = time.perf_counter() - started
    assert set(statuses) == {200}, set(statuses)
    print(f"in-process {'legacy' if legacy else 'modern'} tools/call: {n / elapsed:,.0f}/s ({elapsed / n * 1e6:.1f} µs each)")


async def over_http(url: str, n: int, concurrency: int) -> None:
    import aiohttp

    async with aiohttp.ClientSession(headers=HEADERS_MODERN) as session:
        async def worker(count: int) -> None:
            for _ in range(count):
                async with session.post(url, data=BODY_MODERN) as response:
                    assert response.status == 200
                    await response.read()

        await worker(50)  # warm up
        started = time.perf_counter()
        await asyncio.gather(*(worker(n // concurrency) for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
    print(f"HTTP tools/call, {concurrency} in flight: {n / elapsed:,.0f}/s")


if __name__ == "__main__":
    if sys.argv[1] == "inproc":
        asyncio.run(inproc(50_000, legacy=len(sys.argv) > 2 and sys.argv[2] == "legacy"))
    else:
        asyncio.run(over_http(sys.argv[2], int(sys.argv[3]) if len(sys.argv) > 3 else 20_000,
                              int(sys.argv[4]) if len(sys.argv) > 4 else 32))
