"""The REST and MCP edges of issue 12, against a real `naftiko serve` process and a scripted
upstream on loopback: inbound body limits, upstream errors an agent can act on, MCP binary
resources and upstream failures, 415 for non-JSON posts, aborted streams, and the upstream
released when the caller goes away."""

from __future__ import annotations

import base64
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any
from collections.abc import Iterator

import httpx
import pytest

from tests.support import ROOT, NaftikoProcess, RawUpstream

MODERN = "2026-07-28"
LEGACY = "2025-06-18"
META = {"io.modelcontextprotocol/protocolVersion": MODERN, "io.modelcontextprotocol/clientCapabilities": {}}
PNG = (
    b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00\x1f\x15\xc4\x89"
    b"\x00\x00\x00\rIDATx\x9cc\xf8\xff\xff?\x00\x05\xfe\x02\xfe\xa7\x35\x81\x84\x00\x00\x00\x00IEND\xaeB`\x82"
)
SLOW_SECONDS = 3.0


class ScriptedUpstream(RawUpstream):
    """The raw upstream with the edge cases' behaviours; records when a slow call was left."""

    def __init__(self) -> None:
        super().__init__()
        self.slow_started: list[float] = []
        self.slow_closed: list[float] = []  # when a /slow caller (naftiko) closed the connection early

    def _slow(self, conn: socket.socket, body: bytes) -> bool:
        self.slow_started.append(time.monotonic())
        conn.settimeout(SLOW_SECONDS)
        try:
            if conn.recv(1) == b"":
                self.slow_closed.append(time.monotonic())
                return False
        except TimeoutError:
            pass
        self._answer(conn, "200 OK", b'{"late": true}')
        return True

    def _limited(self, conn: socket.socket, body: bytes) -> None:
        self._answer(conn, "429 Too Many Requests", b'{"detail": "Request was throttled."}', Retry_After="30")

    def _unavailable(self, conn: socket.socket, body: bytes) -> None:
        self._answer(conn, "503 Service Unavailable", b'{"detail": "down for maintenance"}')

    def _verbose(self, conn: socket.socket, body: bytes) -> None:
        self._answer(conn, "500 Internal Server Error", b"E" * 10_000 + b"TAIL", "text/plain")

    def _broken(self, conn: socket.socket, body: bytes) -> bool:
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/x-ndjson\r\nContent-Length: 100000\r\n\r\n")
        conn.sendall(b'{"line": 1}\n' * 50)
        time.sleep(0.1)
        return False  # closes with 99,400 bytes missing


CAPABILITY = """\
naftiko: 1.0.0-alpha2
capability:
  consumes:
    - type: http
      namespace: edge
      baseUri: http://127.0.0.1:1
      resources:
        - {name: slow, path: /slow, operations: [{name: slow, method: GET}]}
        - {name: limited, path: /limited, operations: [{name: limited, method: GET}]}
        - {name: unavailable, path: /unavailable, operations: [{name: unavailable, method: GET}]}
        - {name: verbose, path: /verbose, operations: [{name: verbose, method: GET}]}
        - {name: broken, path: /broken, operations: [{name: broken, method: GET}]}
        - name: echo
          path: /echo
          operations:
            - name: echo
              method: POST
              inputParameters: [{name: body, in: body, type: object}]
    - type: http
      namespace: nowhere
      baseUri: http://127.0.0.1:1
      resources:
        - {name: thing, path: /thing, operations: [{name: thing, method: GET}]}
  exposes:
    - type: rest
      namespace: edge-rest
      port: 9
      resources:
        - {path: /slow, operations: [{method: GET, call: edge.slow}]}
        - {path: /broken, operations: [{method: GET, call: edge.broken}]}
        - {path: /echo, operations: [{method: POST, call: edge.echo}]}
        - path: /fwd/{{path}}
          forward: {targetNamespace: edge}
    - type: mcp
      namespace: edge-mcp
      port: 9
      tools:
        - {name: slow, description: Waits., call: edge.slow}
        - {name: limited, description: Throttled., call: edge.limited}
        - {name: verbose, description: A long error., call: edge.verbose}
        - {name: echo, description: Echo., call: edge.echo}
      resources:
        - {name: status, uri: "edge://status", description: Status., mimeType: application/json, call: edge.unavailable}
        - {name: thing, uri: "edge://thing", description: Unreachable., call: nowhere.thing}
        - {name: files, uri: "edge://files", description: Files., mimeType: text/markdown, location: "file://FILES"}
"""


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("files")
    (folder / "pixel.png").write_bytes(PNG)
    (folder / "notes.md").write_text("# Notes\nZoë\n", encoding="utf-8")
    (folder / "big.md").write_bytes(b"x" * (1536 * 1024))
    return folder


class Edge:
    def __init__(self, process: NaftikoProcess, upstream: ScriptedUpstream) -> None:
        self.process, self.upstream = process, upstream
        urls = process.wait_for("edge-rest", "edge-mcp")
        self.rest, self.mcp = urls["edge-rest"].rstrip("/"), urls["edge-mcp"]

    def rpc(
        self,
        method: str,
        params: dict[str, Any],
        era: str,
        *,
        content_type: str | None = "application/json",
        timeout: float = 20,
    ) -> httpx.Response:
        headers = {"Accept": "application/json, text/event-stream", "MCP-Protocol-Version": era}
        if content_type is not None:
            headers["Content-Type"] = content_type
        if era == MODERN:
            params = {**params, "_meta": META}
            headers["Mcp-Method"] = method
            name = params.get("name") or params.get("uri")
            if name:
                headers["Mcp-Name"] = name
        message = json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": params})
        return httpx.post(self.mcp, content=message, headers=headers, timeout=timeout)

    def tool(self, name: str, era: str, arguments: dict[str, Any] | None = None) -> dict[str, Any]:
        response = self.rpc("tools/call", {"name": name, "arguments": arguments or {}}, era)
        assert response.status_code == 200, response.text
        return response.json()["result"]

    def log(self) -> str:
        return "\n".join(self.process.log)


@pytest.fixture(scope="module")
def edge(tmp_path_factory: pytest.TempPathFactory, files: Path) -> Iterator[Edge]:
    upstream = ScriptedUpstream()
    path = tmp_path_factory.mktemp("edge") / "edge.yaml"
    path.write_text(CAPABILITY.replace("FILES", str(files)))
    process = NaftikoProcess(
        [
            str(path),
            "--base-uri",
            f"edge={upstream.url}",
            "--timeout",
            "10",
            "--limit",
            "request-body=64K",
            "--limit",
            "upstream-body=1M",
            "--port",
            "edge-rest=0",
            "--port",
            "edge-mcp=0",
        ]
    )
    try:
        yield Edge(process, upstream)
    finally:
        process.stop()
        upstream.close()
        assert "Traceback" not in "\n".join(process.log), "\n".join(process.log)


def _raw_exchange(url: str, request: bytes, timeout: float = 5) -> tuple[int, dict[str, str], bytes]:
    """Send raw bytes, read one answer (Content-Length framed); the rest of a body may stay unsent."""
    host, port = url.split("//")[1].split("/")[0].split(":")
    with socket.create_connection((host, int(port)), timeout=timeout) as sock:
        sock.sendall(request)
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = sock.recv(65536)
            assert chunk, "the server closed without answering"
            data += chunk
        head, _, body = data.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        headers = {k.strip().lower(): v.strip() for k, v in (line.split(":", 1) for line in lines[1:])}
        while len(body) < int(headers["content-length"]):
            body += sock.recv(65536)
        return int(lines[0].split(" ")[1]), headers, body


# --------------------------------------------------------------------------- inbound limits


def test_declared_length_over_the_limit_is_413_before_the_body_is_read(edge: Edge) -> None:
    before = len(edge.upstream.paths)
    started = time.monotonic()
    status, headers, body = _raw_exchange(
        edge.rest,
        b"POST /echo HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        b'Content-Type: application/json\r\nContent-Length: 52428800\r\n\r\n{"a":',
    )
    assert time.monotonic() - started < 5  # answered with 50 MB still unsent
    assert status == 413 and headers["content-type"] == "application/json"
    error = json.loads(body)["error"]
    assert error["type"] == "request_too_large" and error["limit"] == 64 * 1024
    assert "64 KiB" in error["message"]
    assert "--limit request-body=SIZE" in error["message"] and "NAFTIKO_MAX_REQUEST_BODY" in error["message"]
    assert len(edge.upstream.paths) == before, "nothing was forwarded"


def test_chunked_body_is_counted_as_it_arrives(edge: Edge) -> None:
    def chunks(total: int) -> Iterator[bytes]:
        yield b'{"a": "'
        for _ in range(total // 4096):
            yield b"x" * 4096
        yield b'"}'

    before = len(edge.upstream.paths)
    response = httpx.post(
        edge.rest + "/echo", content=chunks(1 << 20), headers={"Content-Type": "application/json"}, timeout=10
    )
    assert response.status_code == 413, response.text
    assert response.json()["error"]["type"] == "request_too_large"
    assert len(edge.upstream.paths) == before

    small = httpx.post(edge.rest + "/echo", content=chunks(32 * 1024), headers={"Content-Type": "application/json"})
    assert small.status_code == 200, small.text
    assert json.loads(edge.upstream.bodies["/echo"]) == {"a": "x" * (32 * 1024)}


def test_forward_bodies_are_bounded_too(edge: Edge) -> None:
    response = httpx.post(edge.rest + "/fwd/echo", content=b"y" * (100 * 1024), timeout=10)
    assert response.status_code == 413 and response.json()["error"]["type"] == "request_too_large"
    fine = httpx.post(edge.rest + "/fwd/echo", content=b"y" * 1000)
    assert fine.status_code == 200 and fine.json() == {"size": 1000}


@pytest.mark.parametrize("era", [LEGACY, MODERN])
def test_mcp_body_limit_names_the_limit(edge: Edge, era: str) -> None:
    response = edge.rpc("tools/call", {"name": "echo", "arguments": {"body": {"a": "x" * 70_000}}}, era)
    assert response.status_code == 413
    error = response.json()["error"]
    assert error["code"] == -32600 and "request-body" in error["message"] and error["data"]["limit"] == 65536


def test_stdio_line_limit_follows_the_request_body_limit(tmp_path: Path, files: Path) -> None:
    path = tmp_path / "edge.yaml"
    path.write_text(CAPABILITY.replace("FILES", str(files)))
    env = {**os.environ, "NAFTIKO_MAX_REQUEST_BODY": "16K"}
    ping = b'{"jsonrpc": "2.0", "id": 2, "method": "ping"}\n'
    long_line = b'{"jsonrpc": "2.0", "id": 1, "method": "ping", "params": {"x": "' + b"z" * 40_000 + b'"}}\n'
    proc = subprocess.run(
        [sys.executable, "-m", "naftiko", "serve", str(path), "--stdio", "edge-mcp"],
        input=long_line + ping,
        capture_output=True,
        cwd=ROOT,
        env=env,
        timeout=30,
    )
    replies = [json.loads(line) for line in proc.stdout.splitlines()]
    assert replies[0]["error"]["code"] == -32700 and "too long" in replies[0]["error"]["message"]
    assert replies[1] == {"jsonrpc": "2.0", "id": 2, "result": {}}, "the tail of the long line was skipped"
    assert len(replies) == 2 and b"Traceback" not in proc.stderr


# --------------------------------------------------------------------------- MCP content type


@pytest.mark.parametrize("era", [LEGACY, MODERN])
@pytest.mark.parametrize(
    "content_type", ["text/plain", None, "application/x-www-form-urlencoded", "multipart/form-data"]
)
def test_mcp_post_that_is_not_json_is_415_and_runs_nothing(edge: Edge, era: str, content_type: str | None) -> None:
    before = len(edge.upstream.paths)
    response = edge.rpc("tools/call", {"name": "echo", "arguments": {}}, era, content_type=content_type)
    assert response.status_code == 415
    assert response.json()["error"]["code"] == -32600
    assert len(edge.upstream.paths) == before, "no tool ran"


@pytest.mark.parametrize("era", [LEGACY, MODERN])
def test_mcp_json_with_a_charset_is_accepted(edge: Edge, era: str) -> None:
    response = edge.rpc("tools/list", {}, era, content_type="Application/JSON; charset=utf-8")
    assert response.status_code == 200 and response.json()["result"]["tools"]


# --------------------------------------------------------------------------- upstream errors in MCP


@pytest.mark.parametrize("era", [LEGACY, MODERN])
def test_mcp_throttle_says_status_message_and_when_to_retry(edge: Edge, era: str) -> None:
    result = edge.tool("limited", era)
    assert result["isError"] is True and "structuredContent" not in result
    assert result["content"] == [
        {
            "type": "text",
            "text": "upstream edge answered HTTP 429 Too Many Requests;"
            ' retry after 30 s: {"detail": "Request was throttled."}',
        }
    ]
    assert result["_meta"]["io.naftiko/error"] == {
        "type": "upstream_status",
        "upstream": "edge",
        "status": 429,
        "retryAfter": "30",
        "body": {"detail": "Request was throttled."},
    }


def test_mcp_error_body_is_quoted_within_a_bound(edge: Edge) -> None:
    result = edge.tool("verbose", LEGACY)
    text = result["content"][0]["text"]
    assert text.startswith("upstream edge answered HTTP 500 Internal Server Error: EEE")
    assert len(text) < 2300 and "TAIL" not in text and "10004 bytes in all" in text
    detail = result["_meta"]["io.naftiko/error"]
    assert detail["truncated"] is True and detail["status"] == 500 and len(detail["body"]) < 2100


@pytest.mark.parametrize("era", [LEGACY, MODERN])
def test_mcp_unreachable_upstream_is_an_error_result_with_details(edge: Edge, era: str) -> None:
    response = edge.rpc("tools/call", {"name": "echo", "arguments": {"body": {}}}, era)
    assert response.json()["result"]["isError"] is False  # edge is up; now a namespace that is not
    result = edge.rpc("resources/read", {"uri": "edge://thing"}, era).json()
    assert result["error"]["code"] == -32603
    assert "nowhere" in result["error"]["message"] and "cannot connect" in result["error"]["message"]
    assert result["error"]["data"]["upstream"] == "nowhere" and result["error"]["data"]["uri"] == "edge://thing"


# --------------------------------------------------------------------------- MCP resources


@pytest.mark.parametrize("era", [LEGACY, MODERN])
def test_binary_static_resource_is_a_base64_blob(edge: Edge, era: str) -> None:
    contents = edge.rpc("resources/read", {"uri": "edge://files/pixel.png"}, era).json()["result"]["contents"]
    assert contents == [
        {"uri": "edge://files/pixel.png", "mimeType": "image/png", "blob": base64.b64encode(PNG).decode()}
    ]
    assert base64.b64decode(contents[0]["blob"]) == PNG
    text = edge.rpc("resources/read", {"uri": "edge://files/notes.md"}, era).json()["result"]["contents"]
    assert text == [{"uri": "edge://files/notes.md", "mimeType": "text/markdown", "text": "# Notes\nZoë\n"}]


def test_static_resource_larger_than_the_limit_is_refused(edge: Edge) -> None:
    error = edge.rpc("resources/read", {"uri": "edge://files/big.md"}, LEGACY).json()["error"]
    assert error["code"] == -32603 and "1 MiB" in error["message"] and "upstream-body" in error["message"]


@pytest.mark.parametrize("era", [LEGACY, MODERN])
def test_dynamic_resource_upstream_status_is_an_internal_error_naming_it(edge: Edge, era: str) -> None:
    error = edge.rpc("resources/read", {"uri": "edge://status"}, era).json()["error"]
    assert error["code"] == -32603
    assert "upstream edge answered HTTP 503 Service Unavailable" in error["message"]
    assert error["data"] == {
        "uri": "edge://status",
        "type": "upstream_status",
        "upstream": "edge",
        "status": 503,
        "body": {"detail": "down for maintenance"},
    }
    unknown = edge.rpc("resources/read", {"uri": "edge://nothing"}, era).json()["error"]
    assert unknown["code"] == (-32602 if era == MODERN else -32002), "an unknown resource is still not-found"


# --------------------------------------------------------------------------- broken streams


@pytest.mark.parametrize("path", ["/broken", "/fwd/broken"])
def test_stream_broken_mid_body_is_aborted_with_one_log_line(edge: Edge, path: str) -> None:
    before = len(edge.process.log)
    received = b""
    with pytest.raises(httpx.RemoteProtocolError):
        with httpx.stream("GET", edge.rest + path, timeout=10) as response:
            assert response.status_code == 200
            for chunk in response.iter_raw():
                received += chunk
    assert received.startswith(b'{"line": 1}\n') and len(received) < 100_000
    deadline = time.monotonic() + 2
    while len(edge.process.log) == before and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.2)
    lines = edge.process.log[before:]
    assert len(lines) == 1, lines
    assert "edge" in lines[0] and "broken" in lines[0] and "cut short" in lines[0]
    assert "Traceback" not in lines[0] and "ASGI" not in lines[0]
    assert httpx.post(edge.rest + "/echo", json={"x": 1}).status_code == 200, "the server goes on"


# --------------------------------------------------------------------------- callers that leave


def _leave_early(send: Any) -> None:
    """Start a request, give up after 0.3 s (as a client with a short timeout does)."""
    with pytest.raises(httpx.TimeoutException):
        send(0.3)


def _released(edge: Edge, started: float) -> float:
    """Seconds from the caller's departure until the upstream saw its connection closed."""
    deadline = time.monotonic() + SLOW_SECONDS
    while not edge.upstream.slow_closed and time.monotonic() < deadline:
        time.sleep(0.02)
    assert edge.upstream.slow_closed, "the upstream call was kept until the upstream answered"
    return edge.upstream.slow_closed[-1] - started


@pytest.mark.parametrize("target", ["rest", "forward", LEGACY, MODERN])
def test_caller_gone_releases_the_upstream_connection(edge: Edge, target: str) -> None:
    edge.upstream.slow_closed.clear()

    def send(timeout: float) -> Any:
        if target == "rest":
            return httpx.get(edge.rest + "/slow", timeout=timeout)
        if target == "forward":
            return httpx.get(edge.rest + "/fwd/slow", timeout=timeout)
        return edge.rpc("tools/call", {"name": "slow", "arguments": {}}, target, timeout=timeout)

    before = len(edge.process.log)
    _leave_early(send)
    left = time.monotonic()
    assert _released(edge, left) < 1.0
    assert edge.upstream.slow_started[-1] < left
    time.sleep(0.1)
    assert edge.process.log[before:] == [], "a caller leaving is not an error"
    assert httpx.post(edge.rest + "/echo", json={"x": 1}).status_code == 200, "the server goes on"


def test_a_slow_call_still_answers_a_patient_caller(edge: Edge) -> None:
    response = httpx.get(edge.rest + "/slow", timeout=10)
    assert response.status_code == 200 and response.json() == {"late": True}


def test_a_lone_surrogate_is_the_callers_error(edge: Edge) -> None:
    body = b'{"body": {"text": "\\ud800"}}'
    response = httpx.post(edge.rest + "/echo", content=body, headers={"Content-Type": "application/json"})
    assert response.status_code == 400 and "lone surrogate" in response.json()["error"]["message"]
    message = (
        b'{"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "echo", "arguments": ' + body + b"}}"
    )
    reply = httpx.post(
        edge.mcp, content=message, headers={"Content-Type": "application/json", "MCP-Protocol-Version": LEGACY}
    ).json()
    assert reply["result"]["isError"] is True and "lone surrogate" in reply["result"]["content"][0]["text"]


# --------------------------------------------------------------------------- the watch itself


@pytest.mark.anyio
async def test_the_watch_swallows_only_its_own_cancellation() -> None:
    import asyncio

    from naftiko.adapters.edges import DisconnectWatch

    watch = DisconnectWatch(after=0.01)
    left = asyncio.Event()

    async def receive() -> dict[str, Any]:
        await left.wait()
        return {"type": "http.disconnect"}

    async def request(seconds: float) -> str:
        task = watch.enter(receive)
        try:
            await asyncio.sleep(seconds)
            return "answered"
        except asyncio.CancelledError:
            if watch.gone(task):
                return "caller gone"
            raise
        finally:
            watch.leave(task)

    assert await request(0) == "answered"
    running = asyncio.create_task(request(5))
    await asyncio.sleep(0.05)
    left.set()
    assert await asyncio.wait_for(running, 1) == "caller gone"

    left.clear()
    running = asyncio.create_task(request(5))
    await asyncio.sleep(0.05)
    running.cancel()  # a server shutting down: not the caller leaving
    with pytest.raises(asyncio.CancelledError):
        await running
    assert await request(0.03) == "answered", "a watched call that ends on its own is not disturbed"
