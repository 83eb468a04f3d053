"""What naftiko's own code costs per call, without sockets: `bench/.venv-naftiko/bin/python bench/inprocess.py`.

The REST route and the MCP tool (modern era) of bench/capabilities/bench.yaml are called as
ASGI apps in a loop; the upstream answer is canned (the operation is still prepared, so only
the network exchange is left out). Alternates the two, 5 rounds, and prints µs per call.
`--as-served`: on uvloop, each call in a task of its own, as a server runs a request
(bench/mcp_gap.py reports it beside the out-of-process figures).
"""

from __future__ import annotations

import asyncio
import json
import statistics
import sys
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


async def timings(calls: int = 20_000, rounds: int = 5, as_served: bool = False) -> dict[str, float]:
    """µs per call of each target, the median of `rounds` alternated rounds."""
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
    loop = asyncio.get_running_loop()
    measured: dict[str, list[float]] = {name: [] for name in targets}
    for _ in range(rounds):
        for name, (app, make_scope, receive) in targets.items():
            start = time.perf_counter()
            for _ in range(calls):
                if as_served:
                    await loop.create_task(app(make_scope(), receive, send))
                else:
                    await app(make_scope(), receive, send)
                sent.clear()
            measured[name].append((time.perf_counter() - start) / calls * 1e6)
    return {name: statistics.median(values) for name, values in measured.items()}


def run(as_served: bool = False, calls: int = 20_000, rounds: int = 5) -> dict[str, float]:
    if not as_served:
        return asyncio.run(timings(calls, rounds))
    import uvloop

    return uvloop.run(timings(calls, rounds, as_served=True))


if __name__ == "__main__":
    as_served = "--as-served" in sys.argv[1:]
    for name, value in run(as_served).items():
        how = "on uvloop, a task per call" if as_served else "asyncio"
        print(f"{name}: {value:.1f} µs per call ({how}; median of 5 rounds of 20,000)")
