"""Which HTTP server `naftiko serve` runs, and its NAFTIKO_HTTP_* limits, in real processes.

naftiko's own server (adapters/http1.py) is the default; NAFTIKO_HTTP=uvicorn chooses uvicorn for
one release. They answer alike; a malformed request tells them apart (naftiko's JSON error body).
"""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import pytest

from tests.support import ROOT, NaftikoProcess, RecordingUpstream, Reply, ThreadedServer

BENCH = ROOT / "bench" / "capabilities" / "bench.yaml"


@contextmanager
def serving(env: dict[str, str]) -> Iterator[str]:
    """The bench capability's REST block, in front of a loopback upstream; its base URL."""
    upstream = RecordingUpstream()
    upstream.reply("GET", "/small", Reply(json={"id": 1, "name": "small"}))
    with ThreadedServer(upstream) as url:
        args = [str(BENCH), "--port", "bench-rest=0", "--port", "bench-mcp=0", "--base-uri", f"bench={url}"]
        process = NaftikoProcess(args, env)
        try:
            yield process.wait_for("bench-rest")["bench-rest"]
        finally:
            process.stop()


def _raw(url: str, data: bytes, wait: float = 0.0) -> tuple[bytes, bool]:
    """What the server answers to `data`, and whether it closed the connection within `wait` s after."""
    host, port = url.removeprefix("http://").rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=5) as sock:
        sock.sendall(data)
        answer = b""
        while b"\r\n\r\n" not in answer:
            answer += sock.recv(65536)
        head, _, body = answer.partition(b"\r\n\r\n")
        length = next(
            (int(line.split(b":")[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length:")), 0
        )
        while len(body) < length:
            body += sock.recv(65536)
        sock.settimeout(wait or 0.01)
        try:
            closed = sock.recv(1) == b""
        except TimeoutError:
            closed = False
    return head + b"\r\n\r\n" + body, closed


@pytest.mark.parametrize("http", ["naftiko", "uvicorn"])
def test_either_server_serves_the_routes(http: str) -> None:
    env = {} if http == "naftiko" else {"NAFTIKO_HTTP": "uvicorn"}
    with serving(env) as url:
        answer = httpx.get(f"{url}/small", timeout=10)
        assert answer.status_code == 200 and answer.json() == {"id": 1, "name": "small"}
        refused, closed = _raw(url, b"NOT HTTP\r\n\r\n", wait=2)
        assert refused.startswith(b"HTTP/1.1 400 ") and closed
        body = refused.partition(b"\r\n\r\n")[2]
        if http == "naftiko":  # the default: naftiko's JSON error body
            assert json.loads(body)["error"]["type"] == "bad_request"
        else:
            with pytest.raises(ValueError):
                json.loads(body)


def test_the_keep_alive_limit_comes_from_the_environment() -> None:
    request = b"GET /small HTTP/1.1\r\nHost: x\r\n\r\n"
    with serving({"NAFTIKO_HTTP_KEEP_ALIVE": "0.3"}) as url:
        answer, closed = _raw(url, request, wait=3)
        assert answer.startswith(b"HTTP/1.1 200 ") and closed  # idle past 0.3 s: closed
    with serving({}) as url:
        started = time.monotonic()
        answer, closed = _raw(url, request, wait=1)
        assert answer.startswith(b"HTTP/1.1 200 ") and not closed and time.monotonic() - started >= 1  # 5 s default


def test_the_head_limit_comes_from_the_environment() -> None:
    with serving({"NAFTIKO_HTTP_MAX_HEAD": "1K"}) as url:
        answer, closed = _raw(url, b"GET /small HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 2000 + b"\r\n\r\n", wait=2)
        assert answer.startswith(b"HTTP/1.1 431 ") and closed
        assert "1024-byte limit" in json.loads(answer.partition(b"\r\n\r\n")[2])["error"]["message"]


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"NAFTIKO_HTTP": "hypercorn"}, "NAFTIKO_HTTP expects naftiko or uvicorn; got 'hypercorn'"),
        ({"NAFTIKO_HTTP_KEEP_ALIVE": "soon"}, "NAFTIKO_HTTP_KEEP_ALIVE expects seconds; got 'soon'"),
        ({"NAFTIKO_HTTP_MAX_HEADERS": "0"}, "max_headers must be at least 1"),
    ],
)
def test_a_wrong_server_setting_stops_start_up_with_its_name(env: dict[str, str], message: str) -> None:
    process = NaftikoProcess([str(BENCH), "--base-uri", "bench=http://127.0.0.1:9"], env)
    code = process.proc.wait(timeout=30)
    process._ready.wait(5)
    assert code != 0
    assert any(message in line for line in process.log), process.log
