"""`naftiko serve --workers 2` as a user runs it: one supervisor, two worker processes on the same ports.

Which worker served a connection is read from /proc, as an operator would with `ss -tp`: the
worker holding the server side of that TCP connection (or, for calls that went upstream, the
client side of the upstream connection it keeps in its pool). Nothing in naftiko's answers says.
"""

from __future__ import annotations

import collections
import os
import re
import signal
import socket
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from tests.support import NaftikoProcess, RecordingUpstream, ThreadedServer, free_port

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")

REST, MCP = "words-rest", "words-mcp"
CAPABILITY = """\
naftiko: 1.0.0-alpha2
capability:
  consumes:
    - type: http
      namespace: words
      baseUri: http://127.0.0.1:1
      resources:
        - name: word
          path: /words/{word}
          operations:
            - name: get
              method: GET
  exposes:
    - type: rest
      namespace: words-rest
      port: 9
      resources:
        - path: /w/{word}
          operations:
            - method: GET
              call: words.get
    - type: mcp
      namespace: words-mcp
      port: 9
      tools:
        - name: lookup
          description: Looks a word up.
          call: words.get
"""


def tcp_connections() -> dict[tuple[int, int], int]:
    """Established TCP connections on this machine: (local port, remote port) -> socket inode."""
    found: dict[tuple[int, int], int] = {}
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(table) as lines:
            next(lines)
            for line in lines:
                fields = line.split()
                if fields[3] == "01":
                    ports = (int(fields[1].rsplit(":", 1)[1], 16), int(fields[2].rsplit(":", 1)[1], 16))
                    found[ports] = int(fields[9])
    return found


def socket_owners(pids: list[int]) -> dict[int, int]:
    """Socket inode -> the pid (of `pids`) holding it."""
    owners: dict[int, int] = {}
    for pid in pids:
        for fd in os.listdir(f"/proc/{pid}/fd"):
            try:
                link = os.readlink(f"/proc/{pid}/fd/{fd}")
            except OSError:
                continue
            if link.startswith("socket:["):
                owners[int(link[8:-1])] = pid
    return owners


def worker_pids(process: NaftikoProcess, count: int, timeout: float = 20) -> dict[int, int]:
    """Worker index -> pid of the last `worker N serving (pid P)` line of each."""
    deadline = time.monotonic() + timeout
    while True:
        pids = {int(i): int(p) for i, p in re.findall(r"worker (\d+) serving \(pid (\d+)\)", "\n".join(process.log))}
        if len(pids) == count:
            return pids
        assert time.monotonic() < deadline, "\n".join(process.log)
        time.sleep(0.05)


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return not Path(f"/proc/{pid}/stat").read_text().split(")")[1].split()[0] == "Z"


class PortRecorder:
    """The upstream, recording the client port of every request (the worker's pooled connection)."""

    def __init__(self, app: RecordingUpstream) -> None:
        self.app = app
        self.ports: list[int] = []

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            self.ports.append(scope["client"][1])
        await self.app(scope, receive, send)


@pytest.fixture
def recorded() -> Iterator[tuple[RecordingUpstream, PortRecorder, int]]:
    upstream = RecordingUpstream()
    recorder = PortRecorder(upstream)
    with ThreadedServer(recorder) as url:
        upstream.url = url
        yield upstream, recorder, int(url.rsplit(":", 1)[1])


@pytest.fixture
def workers(
    tmp_path: Path, recorded: tuple[RecordingUpstream, PortRecorder, int], naftiko: Callable[..., NaftikoProcess]
) -> Callable[..., tuple[NaftikoProcess, dict[str, str]]]:
    path = tmp_path / "words.yaml"
    path.write_text(CAPABILITY)
    upstream = recorded[0]

    def start(*flags: str, env: dict[str, str] | None = None) -> tuple[NaftikoProcess, dict[str, str]]:
        process = naftiko(
            str(path),
            "--base-uri",
            f"words={upstream.url}",
            "--port",
            f"{REST}=0",
            "--port",
            f"{MCP}=0",
            *flags,
            env={"NAFTIKO_SESSION_SECRET": "", **(env or {})},
        )
        return process, process.wait_for(REST, MCP)

    return start


def test_new_connections_are_spread_over_both_workers(workers: Callable[..., Any]) -> None:
    process, urls = workers("--workers", "2")
    pids = worker_pids(process, 2)
    port = int(urls[REST].rsplit(":", 1)[1])
    assert sum(1 for line in process.log if f"at {urls[REST]}" in line) == 1  # the listeners logged once
    held: list[socket.socket] = []
    try:
        for _ in range(60):  # one request per new connection, each kept open to see who holds it
            sock = socket.create_connection(("127.0.0.1", port))
            sock.sendall(b"GET /w/x HTTP/1.1\r\nHost: localhost\r\n\r\n")
            assert sock.recv(65536).startswith(b"HTTP/1.1 200 ")
            held.append(sock)
        connections, owners = tcp_connections(), socket_owners(list(pids.values()))
        served = collections.Counter(owners.get(connections[port, sock.getsockname()[1]]) for sock in held)
    finally:
        for sock in held:
            sock.close()
    assert set(served) == set(pids.values()), served  # both, and nobody else (the supervisor never accepts)
    assert min(served.values()) >= 15, served  # one socket per worker (SO_REUSEPORT): 47-53 of 100 measured
    assert process.stop() == 0
    assert not any(alive(pid) for pid in pids.values())


@pytest.mark.anyio
async def test_a_legacy_mcp_session_works_across_workers(
    workers: Callable[..., Any], recorded: tuple[RecordingUpstream, PortRecorder, int]
) -> None:
    """No NAFTIKO_SESSION_SECRET: the supervisor draws one for both workers, or this session would 404."""
    process, urls = workers("--workers", "2")
    pids = worker_pids(process, 2)
    upstream, recorder, upstream_port = recorded
    seen: list[tuple[str, str | None, int]] = []

    async def record(response: httpx.Response) -> None:
        request = response.request
        seen.append((request.method, request.headers.get("mcp-session-id"), response.status_code))

    # No kept-alive connection: each request of the session meets whichever worker accepts it.
    http = httpx.AsyncClient(limits=httpx.Limits(max_keepalive_connections=0), event_hooks={"response": [record]})
    words = [f"w{i}" for i in range(16)]
    async with Client(streamable_http_client(urls[MCP], http_client=http), mode="legacy", cache=None) as client:
        assert client.protocol_version == "2025-11-25"
        for word in words:
            result = await client.call_tool("lookup", {"word": word})
            assert not result.is_error and result.structured_content["echo"]["path"] == f"/words/{word}", result
        # Who made each upstream call: the worker holding the pooled connection it came from.
        connections, owners = tcp_connections(), socket_owners(list(pids.values()))
        callers = collections.Counter(owners.get(connections.get((port, upstream_port), -1)) for port in recorder.ports)
    await http.aclose()
    assert [r.path for r in upstream.requests] == [f"/words/{word}" for word in words]
    assert set(callers) == set(pids.values()), callers  # the one session's calls were served by both workers
    # One session from initialize to DELETE, never refused (a 404 would have made the client start another);
    # the GET for a server-sent stream is a 405: this server sends none.
    assert {session for _, session, _ in seen if session} == {seen[1][1]}, seen
    assert {(method, status) for method, _, status in seen} == {
        ("POST", 200),
        ("POST", 202),
        ("GET", 405),
        ("DELETE", 200),
    }
    assert "one secret" not in "\n".join(process.log)


def test_a_killed_worker_is_restarted_and_sigterm_stops_all(workers: Callable[..., Any]) -> None:
    process, urls = workers("--workers", "2", "--control-port", "0")
    pids = worker_pids(process, 2)
    os.kill(pids[1], signal.SIGKILL)
    restarted = worker_pids_after(process, 1, pids[1])
    assert any(
        re.search(r"worker 1 \(pid \d+\) exited \(signal SIGKILL\); restarting it in 0.5 s", line)
        for line in process.log
    )
    for _ in range(20):  # served throughout, whichever worker takes the connection
        assert httpx.get(f"{urls[REST]}/w/x").status_code == 200
    control = urls["control"]
    assert httpx.get(f"{control}/health/ready").json()["status"] == "UP"  # served by worker 0
    process.proc.send_signal(signal.SIGTERM)
    assert process.proc.wait(15) == 0
    for pid in (pids[0], restarted):
        assert not alive(pid), f"worker {pid} outlived its supervisor"
    assert "Traceback" not in "\n".join(process.log)


def worker_pids_after(process: NaftikoProcess, index: int, old: int, timeout: float = 20) -> int:
    deadline = time.monotonic() + timeout
    while True:
        pid = worker_pids(process, 2).get(index)
        if pid is not None and pid != old:
            return pid
        assert time.monotonic() < deadline, "\n".join(process.log)
        time.sleep(0.05)


def test_workers_stop_when_their_supervisor_is_killed(workers: Callable[..., Any]) -> None:
    process, _ = workers("--workers", "2")
    pids = worker_pids(process, 2)
    process.proc.kill()  # SIGKILL: no chance to stop them
    process.proc.wait(5)
    deadline = time.monotonic() + 10
    while any(alive(pid) for pid in pids.values()):
        assert time.monotonic() < deadline, "orphan workers"
        time.sleep(0.05)


def test_a_broken_file_or_a_busy_port_stops_before_any_worker_starts(
    tmp_path: Path, naftiko: Callable[..., NaftikoProcess]
) -> None:
    broken = tmp_path / "broken.yaml"
    broken.write_text(CAPABILITY.replace("call: words.get\n    - type: mcp", "call: words.nope\n    - type: mcp"))
    process = naftiko(str(broken), "--base-uri", "words=http://127.0.0.1:1", "--workers", "2")
    assert process.proc.wait(20) == 1
    log = "\n".join(process.log)
    assert re.search(rf"{re.escape(str(broken))}:\d+:\d+: no consumed operation 'words.nope'", log), log
    assert "worker" not in log

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        good = tmp_path / "good.yaml"
        good.write_text(CAPABILITY)
        process = naftiko(
            str(good),
            "--base-uri",
            "words=http://127.0.0.1:1",
            "--port",
            f"{REST}={port}",
            "--port",
            f"{MCP}={free_port()}",
            "--workers",
            "2",
        )
        assert process.proc.wait(20) == 1
    log = "\n".join(process.log)
    assert f"cannot listen on 127.0.0.1:{port} for '{REST}'" in log and "worker" not in log, log


def test_sighup_to_the_supervisor_reloads_every_worker(
    workers: Callable[..., Any], tmp_path: Path, recorded: tuple[RecordingUpstream, PortRecorder, int]
) -> None:
    process, urls = workers("--workers", "2")
    worker_pids(process, 2)
    path = tmp_path / "words.yaml"
    path.write_text(CAPABILITY.replace("path: /words/{word}", "path: /v2/{word}"))
    process.proc.send_signal(signal.SIGHUP)
    deadline = time.monotonic() + 20
    while sum("reloaded: REST words-rest" in line for line in process.log) < 2:
        assert time.monotonic() < deadline, "\n".join(process.log)
        time.sleep(0.05)
    for _ in range(20):  # new connections: both workers answer with the new file
        assert httpx.get(f"{urls[REST]}/w/x", headers={"Connection": "close"}).json()["echo"]["path"] == "/v2/x"
    path.write_text(CAPABILITY.replace("call: words.get\n    - type: mcp", "call: words.nope\n    - type: mcp"))
    process.proc.send_signal(signal.SIGHUP)
    deadline = time.monotonic() + 20
    while not any("refused; the workers keep serving" in line for line in process.log):
        assert time.monotonic() < deadline, "\n".join(process.log)
        time.sleep(0.05)
    problems = [line for line in process.log if "words.nope" in line]
    assert len(problems) == 1 and problems[0].startswith(f"naftiko: {path}:"), problems  # once, by the supervisor
    assert httpx.get(f"{urls[REST]}/w/x").json()["echo"]["path"] == "/v2/x"
    assert process.stop() == 0


def test_reload_with_workers_is_watched_by_the_supervisor(workers: Callable[..., Any], tmp_path: Path) -> None:
    process, urls = workers("--workers", "2", "--reload", "--reload-interval", "0.1")
    worker_pids(process, 2)
    (tmp_path / "words.yaml").write_text(CAPABILITY.replace("path: /words/{word}", "path: /v2/{word}"))
    deadline = time.monotonic() + 20
    while sum("reloaded: REST words-rest" in line for line in process.log) < 2:
        assert time.monotonic() < deadline, "\n".join(process.log)
        time.sleep(0.05)
    assert (
        sum("capability files changed" in line for line in process.log) == 1
    )  # the supervisor watches, not the workers
    answers = {
        httpx.get(f"{urls[REST]}/w/x", headers={"Connection": "close"}).json()["echo"]["path"] for _ in range(20)
    }
    assert answers == {"/v2/x"}
    assert process.stop() == 0
