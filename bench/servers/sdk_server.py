"""MCP peer (g): a server written with the official `mcp` SDK (v2 `MCPServer`).

Two tools, `small` and `large`, each one GET on the upstream with a pooled aiohttp session,
returning the parsed JSON object (the SDK turns it into structured content plus a text block).
Served as `streamable_http_app(json_response=True, stateless_http=True)` under uvicorn with
httptools and uvloop (mcp.md §2.2/§2.3). Usage: python sdk_server.py PORT UPSTREAM_URL
"""

from __future__ import annotations

import sys
from typing import Any

import aiohttp
import uvicorn
from mcp.server import MCPServer

UPSTREAM = sys.argv[2] if len(sys.argv) > 2 else "http://127.0.0.1:18001"
server = MCPServer("sdk-bench")
_session: aiohttp.ClientSession | None = None


async def _get(path: str) -> dict[str, Any]:
    global _session
    if _session is None:  # created inside the running loop; no await before the assignment
        _session = aiohttp.ClientSession(UPSTREAM, connector=aiohttp.TCPConnector(limit=512))
    async with _session.get(path) as response:
        response.raise_for_status()
        return await response.json()


@server.tool(description="A small JSON answer")
async def small() -> dict[str, Any]:
    return await _get("/small")


@server.tool(description="A 1 MB JSON answer")
async def large() -> dict[str, Any]:
    return await _get("/large")


if __name__ == "__main__":
    app = server.streamable_http_app(json_response=True, stateless_http=True)
    uvicorn.run(
        app,
        host="127.0.0.1",
        port=int(sys.argv[1]),
        http="httptools",
        loop="uvloop",
        log_level="warning",
        access_log=False,
    )
