"""stdio framing: raw lines to the fake server process, and `serve_stdio` embedded in-process."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from typing import Any

import pytest

from naftiko.adapters.mcp.stdio import serve_stdio

from tests.adapters.mcp.protocol.conftest import FAKE_SERVER, META
from tests.adapters.mcp.protocol.fake_server import build_backend

pytestmark = pytest.mark.anyio


def line(message: Any) -> bytes:
    return json.dumps(message).encode() + b"\n"


def call(request_id: int | str, tool: str, arguments: dict[str, Any]) -> dict[str, Any]:
    params = {"name": tool, "arguments": arguments}
    return {"jsonrpc": "2.0", "id": request_id, "method": "tools/call", "params": params}


def test_stdio_process_lines_and_eof() -> None:
    lines = [
        line({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {"protocolVersion": "2025-06-18"}}),
        line({"jsonrpc": "2.0", "method": "notifications/initialized"}),
        b"\n",
        b"{oops\n",
        line({"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {"name": "list_items"}}),
        line({"jsonrpc": "2.0", "id": 3, "method": "tools/call", "params": {"name": "list_items", "_meta": META}}),
        line({"jsonrpc": "2.0", "id": 4, "method": "ping", "params": {"_meta": META}}),
        line([1]),
        line(
            {
                "jsonrpc": "2.0",
                "id": 5,
                "method": "tools/call",
                "params": {"name": "echo", "arguments": {"text": "a\nb"}},
            }
        ),
    ]
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, str(FAKE_SERVER), "--stdio"], input=b"".join(lines), capture_output=True, timeout=20
    )
    assert time.monotonic() - started < 10
    assert done.returncode == 0
    out = done.stdout.decode().splitlines()
    replies = [json.loads(x) for x in out]
    assert len(replies) == 7  # no answer to the notification or the blank line
    by_id = {r["id"]: r for r in replies if r["id"] is not None}
    assert by_id[1]["result"]["protocolVersion"] == "2025-06-18"
    assert by_id[2]["result"]["structuredContent"] == {"result": ["alpha", "beta"]}
    assert by_id[3]["result"]["structuredContent"] == ["alpha", "beta"]
    assert by_id[3]["result"]["resultType"] == "complete"
    assert by_id[4]["error"]["code"] == -32601
    assert json.loads(by_id[5]["result"]["content"][0]["text"]) == {"text": "a\nb"}
    nulls = sorted(r["error"]["code"] for r in replies if r["id"] is None)
    assert nulls == [-32700, -32600]
    assert done.stderr == b""  # nothing was logged: all of these are ordinary answers


class Collector:
    """An in-memory line writer."""

    def __init__(self) -> None:
        self.data = bytearray()
        self.arrived = asyncio.Event()

    def write(self, data: bytes) -> None:
        self.data += data
        self.arrived.set()

    async def drain(self) -> None:
        return None

    def messages(self) -> list[dict[str, Any]]:
        return [json.loads(x) for x in bytes(self.data).splitlines()]


async def test_serve_stdio_in_process_concurrency_and_cancel() -> None:
    reader = asyncio.StreamReader()
    writer = Collector()
    server = asyncio.create_task(serve_stdio(build_backend(), reader, writer))
    reader.feed_data(line(call("slow", "slow", {"seconds": 30})))
    reader.feed_data(line(call("fast", "add", {"a": 1, "b": 1})))
    await asyncio.wait_for(writer.arrived.wait(), 5)
    assert [m["id"] for m in writer.messages()] == ["fast"]  # not held up by the slow call
    reader.feed_data(line({"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"requestId": "slow"}}))
    reader.feed_eof()
    await asyncio.wait_for(server, 5)
    assert [m["id"] for m in writer.messages()] == ["fast"]  # a cancelled request gets no answer


async def test_serve_stdio_waits_briefly_for_in_flight_calls() -> None:
    reader = asyncio.StreamReader()
    writer = Collector()
    reader.feed_data(line(call(1, "slow", {"seconds": 0.1})))
    reader.feed_data(line(call(2, "slow", {"seconds": 30})))
    reader.feed_eof()
    started = asyncio.get_running_loop().time()
    await asyncio.wait_for(serve_stdio(build_backend(), reader, writer, grace_seconds=0.5), 5)
    assert asyncio.get_running_loop().time() - started < 2
    assert [m["id"] for m in writer.messages()] == [1]


def test_stdio_with_files_and_dev_null(tmp_path: Any) -> None:
    """stdin/stdout that the event loop cannot watch (/dev/null, regular files) still work."""
    command = [sys.executable, str(FAKE_SERVER), "--stdio"]
    assert subprocess.run(command, stdin=subprocess.DEVNULL, capture_output=True, timeout=10).returncode == 0
    source = tmp_path / "in.jsonl"
    source.write_bytes(line({"jsonrpc": "2.0", "id": 1, "method": "ping"}).rstrip(b"\n"))  # no final newline
    target = tmp_path / "out.jsonl"
    with source.open("rb") as stdin, target.open("wb") as stdout:
        assert subprocess.run(command, stdin=stdin, stdout=stdout, timeout=10).returncode == 0
    assert json.loads(target.read_bytes()) == {"jsonrpc": "2.0", "id": 1, "result": {}}
