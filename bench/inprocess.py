"""What naftiko's own code costs per call, without sockets: `bench/.venv-naftiko/bin/python bench/inprocess.py`.

The REST route and the MCP tool (modern era) of bench/capabilities/bench.yaml are called as
ASGI apps in a loop; the upstream answer is canned (the operation is still prepared, so only
the network exchange is left out). Alternates the two, 5 rounds, and prints µs per call.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import time
from pathlib import Path
from typing import Any

from naftiko.adapters import exposes_app
from naftiko.engine import Runtime

ROOT = Path(__file__).resolve().parent.parent

SMALL = json.dumps(
    {"id": 42, "name": "naftiko-bench", "ok": True, "tags": ["a", "b"], "score": 0.5}, separators=(",", ":")
).encode()
MODERN = "2026-07-28"
CALL = json.dumps(
    {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "tools/call",
        "params": {
            "name": "small",
            "arguments": {},
            "_meta": {
                "io.modelcontextprotocol/protocolVersion": MODERN,
                "io.modelcontextprotocol/clientCapabilities": {},
            },
        },
    },
    separators=(",", ":"),
).encode()


class CannedAnswer:
    """What `Runtime.send` returns, answering the small JSON body at once."""

    status, content_type, charset, is_json = 200, "application/json", None, True

    def headers(self, keep_length: bool = True) -> list[tuple[str, str]]:
        return [("content-type", "application/json"), ("etag", '"1"')]

    async def read(self) -> bytes:
        return SMALL


class CannedRuntime(Runtime):
    async def send(self, operation: Any, params: Any) -> Any:  # type: ignore[override]
        operation.prepare(params, self.bindings_for(operation.namespace), self.prefixes)
        return CannedAnswer()


def scope(method: str, path: str, headers: list[tuple[bytes, bytes]]) -> dict[str, Any]:
    return {
        "type": "http",
        "method": method,
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": headers,
    }


async def main(calls: int = 20_000, rounds: int = 5) -> None:
    runtime = CannedRuntime.load(
        ROOT / "bench" / "capabilities" / "bench.yaml", base_uris={"bench": "http://127.0.0.1:9"}
    )
    rest, mcp = exposes_app(runtime, "bench-rest"), exposes_app(runtime, "bench-mcp")
    mcp_headers = [
        (b"host", b"127.0.0.1:18090"),
        (b"content-type", b"application/json"),
        (b"accept", b"application/json, text/event-stream"),
        (b"mcp-protocol-version", MODERN.encode()),
        (b"mcp-method", b"tools/call"),
        (b"mcp-name", b"small"),
        (b"content-length", str(len(CALL)).encode()),
    ]
    sent: list[Any] = []

    async def send(message: Any) -> None:
        sent.append(message)

    async def no_body() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def call_body() -> dict[str, Any]:
        return {"type": "http.request", "body": CALL, "more_body": False}

    targets = {
        "rest": (rest, lambda: scope("GET", "/small", [(b"host", b"127.0.0.1:18080")]), no_body),
        "mcp": (mcp, lambda: scope("POST", "/mcp", mcp_headers), call_body),
    }
    for name, (app, make_scope, receive) in targets.items():  # check the answer once
        await app(make_scope(), receive, send)
        assert sent[0]["status"] == 200 and b"naftiko-bench" in sent[-1]["body"], (name, sent)
        sent.clear()
    timings: dict[str, list[float]] = {name: [] for name in targets}
    for _ in range(rounds):
        for name, (app, make_scope, receive) in targets.items():
            start = time.perf_counter()
            for _ in range(calls):
                await app(make_scope(), receive, send)
                sent.clear()
            timings[name].append((time.perf_counter() - start) / calls * 1e6)
    for name, values in timings.items():
        print(f"{name}: {statistics.median(values):.1f} µs per call (median of {rounds} rounds of {calls:,})")


if __name__ == "__main__":
    asyncio.run(main())
