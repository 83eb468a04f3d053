"""MCP peer (f): FastMCP's `from_openapi` server over the upstream's OpenAPI document.

The document (bench/servers/upstream-openapi.json) declares the same two GET operations the
capability consumes. Served over streamable HTTP, stateless, JSON answers, under uvicorn with
httptools and uvloop. Usage: python fastmcp_server.py PORT UPSTREAM_URL
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import httpx2
import uvicorn
from fastmcp import FastMCP

UPSTREAM = sys.argv[2] if len(sys.argv) > 2 else "http://127.0.0.1:18001"

if __name__ == "__main__":
    spec = json.loads((Path(__file__).parent / "upstream-openapi.json").read_text())
    spec["servers"] = [{"url": UPSTREAM}]
    client = httpx2.AsyncClient(base_url=UPSTREAM, timeout=30)
    mcp = FastMCP.from_openapi(openapi_spec=spec, client=client, name="fastmcp-bench")
    app = mcp.http_app(path="/mcp", json_response=True, stateless_http=True)
    uvicorn.run(
        app,
        host="127.0.0.1",
        port=int(sys.argv[1]),
        http="httptools",
        loop="uvloop",
        log_level="warning",
        access_log=False,
    )
