"""The fault matrix of issue 12: a hostile upstream and hostile callers against a real
`naftiko serve` process, through REST and both MCP eras.

Each case needs the clear answer (a 4xx/5xx JSON error, or an MCP `isError` result that says
which upstream and why) within a time bound, and over the whole run the server's log holds no
traceback and no secret, and its memory stays bounded by the limits, not by the upstream.
"""

from __future__ import annotations

import json
import socket
import time
import zlib
from pathlib import Path
from typing import Any
from collections.abc import Iterator

import httpx
import pytest

from tests.support import NaftikoProcess, RawUpstream

SECRET = "sk-fault-matrix-0123456789"
MODERN = "2026-07-28"
LEGACY = "2025-06-18"


def _bomb_blocks() -> tuple[bytes, bytes]:
    """A gzip head and a block that each inflate to 1 MiB of zeros (about 1 KB each).

    After a full flush deflate starts afresh, so the same input gives the same bytes: a
    body of N blocks inflates to N MiB without anyone compressing N MiB.
    """
    compressor = zlib.compressobj(9, zlib.DEFLATED, 31)
    zeros = bytes(1 << 20)
    head = compressor.compress(zeros) + compressor.flush(zlib.Z_FULL_FLUSH)
    block = compressor.compress(zeros) + compressor.flush(zlib.Z_FULL_FLUSH)
    assert compressor.compress(zeros) + compressor.flush(zlib.Z_FULL_FLUSH) == block
    return head, block


HEAD, BLOCK = _bomb_blocks()
BOMB_MIB = 4096  # inflates to 4 GiB


class HostileUpstream(RawUpstream):
    """The raw upstream, answering each path with a scripted misbehaviour, one request a connection."""

    keep_alive = False

    def __init__(self) -> None:
        super().__init__()
        self.closed_early: list[str] = []

    @staticmethod
    def _send_head(conn: socket.socket, status: str, headers: dict[str, str]) -> None:
        lines = [f"HTTP/1.1 {status}"] + [f"{k}: {v}" for k, v in headers.items()]
        conn.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())

    def _ok(self, conn: socket.socket, _: bytes) -> None:
        self._answer(conn, "200 OK", b'{"ok": true}')

    def _bomb(self, conn: socket.socket, _: bytes, content_type: str = "application/json") -> None:
        self._send_head(
            conn, "200 OK", {"Content-Type": content_type, "Content-Encoding": "gzip", "Transfer-Encoding": "chunked"}
        )
        for index in range(BOMB_MIB):
            piece = HEAD if index == 0 else BLOCK
            conn.sendall(f"{len(piece):x}\r\n".encode() + piece + b"\r\n")
        conn.sendall(b"0\r\n\r\n")

    def _bomb_stream(self, conn: socket.socket, _: bytes) -> None:
        self._bomb(conn, _, "application/octet-stream")

    def _big(self, conn: socket.socket, _: bytes) -> None:
        self._answer(conn, "200 OK", b'{"items": [' + b",".join(b'"%08d"' % i for i in range(400_000)) + b"]}")  # 4 MB

    def _invalid_json(self, conn: socket.socket, _: bytes) -> None:
        self._answer(conn, "200 OK", b'{"items": [1, 2,')

    def _limited(self, conn: socket.socket, _: bytes) -> None:
        self._answer(conn, "429 Too Many Requests", b'{"detail": "Request was throttled."}', Retry_After="30")

    def _reset(self, conn: socket.socket, _: bytes) -> None:
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")

    def _garbage(self, conn: socket.socket, _: bytes) -> None:
        conn.sendall(b"this is not HTTP at all\r\n\r\n")

    def _broken_stream(self, conn: socket.socket, _: bytes) -> None:
        self._send_head(conn, "200 OK", {"Content-Type": "application/x-ndjson", "Content-Length": "100000"})
        conn.sendall(b'{"line": 1}\n' * 100)
        time.sleep(0.2)

    def _slow(self, conn: socket.socket, _: bytes) -> None:
        conn.settimeout(10)
        try:
            conn.recv(1)  # waits until the client goes away (or 10 s)
        except OSError:
            pass
        self.closed_early.append("/slow")


OPERATIONS = [
    "bomb",
    "bomb-stream",
    "big",
    "invalid-json",
    "limited",
    "reset",
    "garbage",
    "broken-stream",
    "slow",
    "ok",
]


def _capability() -> str:
    resources = "\n".join(
        f"""\
        - name: {name}
          path: /{name}
          operations:
            - name: {name}
              method: GET"""
        for name in OPERATIONS
    )
    mapped = "\n".join(
        f"""\
        - path: /{name}
          operations:
            - method: GET
              call: hostile.{name}
              outputParameters:
                - {{name: items, type: array, mapping: $.items}}"""
        for name in OPERATIONS
    )
    raw = "\n".join(
        f"""\
        - path: /raw/{name}
          operations:
            - method: GET
              call: hostile.{name}"""
        for name in OPERATIONS
    )
    tools = "\n".join(
        f"""\
        - name: {name}
          description: The {name} misbehaviour.
          call: hostile.{name}"""
        for name in OPERATIONS
    )
    return f"""\
naftiko: 1.0.0-alpha2
binds:
  - namespace: env
    keys:
      FAULT_TOKEN: FAULT_TOKEN
capability:
  consumes:
    - type: http
      namespace: hostile
      baseUri: http://127.0.0.1:1
      authentication:
        type: bearer
        token: '{{{{env.FAULT_TOKEN}}}}'
      resources:
{resources}
  exposes:
    - type: rest
      namespace: fault-rest
      port: 9
      resources:
{mapped}
        - path: /echo
          operations:
            - method: POST
              call: hostile.ok
{raw}
    - type: mcp
      namespace: fault-mcp
      port: 9
      tools:
{tools}
"""


def _rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


class Matrix:
    def __init__(self, process: NaftikoProcess, upstream: HostileUpstream) -> None:
        self.process, self.upstream = process, upstream
        urls = process.wait_for("fault-rest", "fault-mcp")
        self.rest, self.mcp = urls["fault-rest"].rstrip("/"), urls["fault-mcp"]
        self.http = httpx.Client(timeout=30)
        self.peak_rss = 0

    def sample(self) -> None:
        self.peak_rss = max(self.peak_rss, _rss_kib(self.process.proc.pid))

    def get(self, path: str) -> httpx.Response:
        started = time.monotonic()
        response = self.http.get(self.rest + path)
        self.sample()
        assert time.monotonic() - started < 20, f"{path} took too long"
        return response

    def tool(self, name: str, era: str) -> dict[str, Any]:
        """One tools/call in the given era, without the SDK's session machinery."""
        headers = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}
        message: dict[str, Any] = {
            "jsonrpc": "2.0",
            "id": 1,
            "method": "tools/call",
            "params": {"name": name, "arguments": {}},
        }
        if era == MODERN:
            headers |= {"MCP-Protocol-Version": MODERN, "Mcp-Method": "tools/call", "Mcp-Name": name}
            message["params"]["_meta"] = {
                "io.modelcontextprotocol/protocolVersion": MODERN,
                "io.modelcontextprotocol/clientCapabilities": {},
                "io.modelcontextprotocol/clientInfo": {"name": "matrix", "version": "1"},
            }
        else:
            headers["MCP-Protocol-Version"] = LEGACY
        started = time.monotonic()
        response = self.http.post(self.mcp, headers=headers, json=message)
        self.sample()
        assert time.monotonic() - started < 20, f"tool {name} took too long"
        assert response.status_code == 200, response.text
        reply = response.json()
        assert "result" in reply, reply
        return reply["result"]


@pytest.fixture(scope="module")
def matrix(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Matrix]:
    upstream = HostileUpstream()
    path = tmp_path_factory.mktemp("fault") / "fault.yaml"
    path.write_text(_capability())
    process = NaftikoProcess(
        [
            str(path),
            "--base-uri",
            f"hostile={upstream.url}",
            "--timeout",
            "2",
            "--limit",
            "upstream-body=2M",
            "--port",
            "fault-rest=0",
            "--port",
            "fault-mcp=0",
        ],
        env={"FAULT_TOKEN": SECRET},
    )
    try:
        yield Matrix(process, upstream)
    finally:
        process.stop()
        upstream.close()
        log = "\n".join(process.log)
        assert "Traceback" not in log, log
        assert SECRET not in log


def _error_of(response: httpx.Response) -> dict[str, Any]:
    body = response.json()
    assert set(body) == {"error"}, body
    assert body["error"]["message"], body
    return body["error"]


def _is_error(result: dict[str, Any], *words: str) -> str:
    assert result.get("isError") is True, result
    text = " ".join(item.get("text", "") for item in result["content"])
    for word in words:
        assert word.lower() in text.lower(), text
    return text


CASES: dict[str, tuple[int, tuple[str, ...]]] = {
    # operation: (REST status, words the REST message and the MCP error text must both hold)
    "bomb": (502, ("hostile", "upstream-body")),
    "big": (502, ("hostile", "upstream-body")),
    "invalid-json": (502, ("hostile", "json")),
    "reset": (502, ("hostile",)),
    "garbage": (502, ("hostile",)),
    "slow": (504, ("hostile", "2s")),
}


@pytest.mark.parametrize("operation", sorted(CASES))
def test_rest_mapped_faults_are_clear_json_errors(matrix: Matrix, operation: str) -> None:
    status, words = CASES[operation]
    response = matrix.get(f"/{operation}")
    assert response.status_code == status, response.text
    error = _error_of(response)
    assert error.get("upstream") == "hostile"
    for word in words:
        assert word.lower() in error["message"].lower(), error
    assert SECRET not in response.text


@pytest.mark.parametrize("era", [LEGACY, MODERN])
@pytest.mark.parametrize("operation", sorted(CASES))
def test_mcp_faults_are_is_error_results(matrix: Matrix, operation: str, era: str) -> None:
    _, words = CASES[operation]
    text = _is_error(matrix.tool(operation, era), *words)
    assert SECRET not in text


@pytest.mark.parametrize("era", [LEGACY, MODERN])
def test_mcp_throttle_says_when_to_retry(matrix: Matrix, era: str) -> None:
    result = matrix.tool("limited", era)
    text = _is_error(result, "hostile", "429", "30")
    assert "retry" in text.lower()
    assert SECRET not in json.dumps(result)


def test_rest_throttle_passes_status_and_retry_after(matrix: Matrix) -> None:
    response = matrix.get("/limited")
    assert response.status_code == 429
    assert response.headers["retry-after"] == "30"


def test_streamed_bomb_is_cut_short_with_bounded_memory(matrix: Matrix) -> None:
    before = _rss_kib(matrix.process.proc.pid)
    received = 0
    with pytest.raises(httpx.HTTPError):
        with matrix.http.stream("GET", matrix.rest + "/raw/bomb-stream") as response:
            assert response.status_code == 200
            for chunk in response.iter_raw():
                received += len(chunk)
                matrix.sample()
    assert received < 4096 << 20  # it did not inflate all 4 GiB for us
    assert matrix.peak_rss - before < 150 * 1024


def test_stream_broken_mid_body_is_aborted_and_logged_once(matrix: Matrix) -> None:
    with pytest.raises(httpx.HTTPError):
        with matrix.http.stream("GET", matrix.rest + "/raw/broken-stream") as response:
            assert response.status_code == 200
            for _ in response.iter_raw():
                pass
    time.sleep(0.3)
    lines = [line for line in matrix.process.log if "broken-stream" in line]
    assert len(lines) == 1, matrix.process.log
    assert "hostile" in lines[0]


def test_inbound_bodies_past_the_limit_are_413(matrix: Matrix) -> None:
    big = b'{"a": "' + b"x" * (9 << 20) + b'"}'
    response = matrix.http.post(matrix.rest + "/echo", content=big, headers={"Content-Type": "application/json"})
    assert response.status_code == 413
    assert "request-body" in _error_of(response)["message"]
    response = matrix.http.post(
        matrix.mcp,
        content=big,
        headers={"Content-Type": "application/json", "Accept": "application/json, text/event-stream"},
    )
    assert response.status_code == 413


def test_mcp_post_that_is_not_json_is_415(matrix: Matrix) -> None:
    message = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "ok"}})
    response = matrix.http.post(
        matrix.mcp,
        content=message,
        headers={"Content-Type": "text/plain", "Accept": "application/json, text/event-stream"},
    )
    assert response.status_code == 415


@pytest.mark.parametrize(
    "path",
    ["/..%2f..%2fetc%2fpasswd", "/%00", "/ok/%ff%fe", "/" + "a" * 8000, "/ok?x=%zz&&=&y", "/raw/../ok", "/%2e%2e/ok"],
)
def test_hostile_paths_never_500(matrix: Matrix, path: str) -> None:
    response = matrix.get(path)
    assert response.status_code < 500 or response.status_code in (502, 504), response.text
    if response.status_code >= 400:
        _error_of(response)


def test_caller_gone_releases_the_upstream(matrix: Matrix) -> None:
    matrix.upstream.closed_early.clear()
    with pytest.raises(httpx.TimeoutException):
        httpx.get(matrix.rest + "/raw/slow", timeout=0.3)
    deadline = time.monotonic() + 1.5
    while "/slow" not in matrix.upstream.closed_early and time.monotonic() < deadline:
        time.sleep(0.05)
    assert "/slow" in matrix.upstream.closed_early


def test_memory_stayed_bounded(matrix: Matrix) -> None:
    assert matrix.peak_rss < 300 * 1024, f"peak RSS {matrix.peak_rss} KiB"


def test_sigterm_stops_cleanly(tmp_path: Path) -> None:
    upstream = HostileUpstream()
    path = tmp_path / "fault.yaml"
    path.write_text(_capability())
    process = NaftikoProcess(
        [str(path), "--base-uri", f"hostile={upstream.url}", "--port", "fault-rest=0", "--port", "fault-mcp=0"],
        env={"FAULT_TOKEN": SECRET},
    )
    try:
        process.wait_for("fault-rest")
        process.proc.terminate()
        assert process.proc.wait(timeout=10) == 0
    finally:
        process.stop()
        upstream.close()
    assert "Traceback" not in "\n".join(process.log)


def test_no_upstream_saw_a_caller_credential(matrix: Matrix) -> None:
    matrix.http.get(matrix.rest + "/ok", headers={"Authorization": "Bearer caller-token"})
    assert not any("caller-token" in head for head in matrix.upstream.heads)
    assert any(f"Bearer {SECRET}" in head for head in matrix.upstream.heads)
