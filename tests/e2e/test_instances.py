"""One handshake-era MCP session across two `naftiko serve` processes behind a round-robin proxy.

Both processes get one `NAFTIKO_SESSION_SECRET`, as a team scaling out behind a load balancer
sets it; the proxy below sends each HTTP request (not each connection: the client keeps its
connection alive) to the next instance, so every other call of the official SDK client's session
lands on the instance that did not open it. Instances with different secrets refuse each other's
sessions (404, and the client re-initializes), which shows the signature is what is checked.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
from mcp import Client

from tests.support import NaftikoProcess, RecordingUpstream

pytestmark = pytest.mark.anyio

SECRET = "one secret for every instance, 32+ bytes"
MCP = "pair-mcp"
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
    - type: mcp
      namespace: pair-mcp
      port: 9
      tools:
        - name: lookup
          description: Looks a word up.
          call: words.get
"""


@dataclass
class Routed:
    backend: int
    method: str
    session: str | None
    status: int


class RoundRobinProxy:
    """A small HTTP/1.1 proxy on loopback: each request goes to the next backend on a connection of its own.

    Requests are framed by Content-Length (what HTTP clients send for a JSON body; a chunked request
    is refused with 501), answers by Content-Length, chunked coding, or the backend closing.
    """

    def __init__(self, backends: list[str]) -> None:
        self.backends = [(split.hostname or "", split.port or 80) for split in map(urlsplit, backends)]
        self.routed: list[Routed] = []
        self.connections = 0  # from clients: fewer than the requests routed when clients keep theirs open
        self._next = 0
        self._loop = asyncio.new_event_loop()
        self._started = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self.url = ""

    def __enter__(self) -> RoundRobinProxy:
        self._thread.start()
        assert self._started.wait(10), "the proxy did not start"
        return self

    def __exit__(self, *exc: object) -> None:
        self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(10)

    def on(self, backend: int) -> list[Routed]:
        return [r for r in self.routed if r.backend == backend]

    def _run(self) -> None:
        self._loop.run_until_complete(self._serve())

    async def _serve(self) -> None:
        self._stop = asyncio.Event()
        server = await asyncio.start_server(self._connection, "127.0.0.1", 0)
        self.url = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}/mcp"
        self._started.set()
        async with server:
            await self._stop.wait()

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            while True:
                try:
                    head = await reader.readuntil(b"\r\n\r\n")
                except (asyncio.IncompleteReadError, ConnectionError):
                    return  # the client closed its connection between requests
                fields = _fields(head)
                if "transfer-encoding" in fields:
                    writer.write(b"HTTP/1.1 501 Not Implemented\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
                    return
                body = await reader.readexactly(int(fields.get("content-length", "0")))
                backend, self._next = self._next, (self._next + 1) % len(self.backends)
                answer, keep_open = await self._forward(backend, head, body, fields)
                writer.write(answer)
                await writer.drain()
                if not keep_open:
                    return
        finally:
            writer.close()

    async def _forward(self, backend: int, head: bytes, body: bytes, fields: dict[str, str]) -> tuple[bytes, bool]:
        """The backend's whole answer to one request, and whether the client's connection may stay open."""
        reader, writer = await asyncio.open_connection(*self.backends[backend])
        try:
            writer.write(head + body)
            await writer.drain()
            answer_head = await reader.readuntil(b"\r\n\r\n")
            answer = _fields(answer_head)
            keep_open = answer.get("connection", "").lower() != "close"
            if "content-length" in answer:
                answer_body = await reader.readexactly(int(answer["content-length"]))
            elif answer.get("transfer-encoding", "").lower() == "chunked":
                answer_body = await _chunks(reader)
            else:
                answer_body, keep_open = await reader.read(), False
        finally:
            writer.close()
        method = head.split(b" ", 1)[0].decode()
        status = int(answer_head.split(b" ", 2)[1])
        self.routed.append(Routed(backend, method, fields.get("mcp-session-id"), status))
        return answer_head + answer_body, keep_open


def _fields(head: bytes) -> dict[str, str]:
    lines = head.decode("latin-1").split("\r\n")[1:]
    return {name.strip().lower(): value.strip() for name, _, value in (line.partition(":") for line in lines if line)}


async def _chunks(reader: asyncio.StreamReader) -> bytes:
    """A chunked body as it was sent, up to and with its last chunk and trailer."""
    raw = b""
    while True:
        size_line = await reader.readuntil(b"\r\n")
        raw += size_line
        size = int(size_line.split(b";")[0], 16)
        if size == 0:
            return raw + await reader.readuntil(b"\r\n")  # no trailers from the servers we stand before
        raw += await reader.readexactly(size + 2)


@pytest.fixture
def instances(
    tmp_path: Path, upstream: RecordingUpstream, naftiko: Callable[..., NaftikoProcess]
) -> Iterator[Callable[..., tuple[str, str]]]:
    """Starts two `naftiko serve` processes, each with its NAFTIKO_SESSION_SECRET (None: not set)."""
    path = tmp_path / "pair.yaml"
    path.write_text(CAPABILITY)
    processes: list[NaftikoProcess] = []

    def start(*secrets: str | None) -> tuple[str, str]:
        processes[:] = [
            naftiko(
                str(path),
                "--base-uri",
                f"words={upstream.url}",
                "--port",
                f"{MCP}=0",
                env={"NAFTIKO_SESSION_SECRET": secret} if secret else {"NAFTIKO_SESSION_SECRET": ""},
            )
            for secret in secrets
        ]
        first, second = (process.wait_for(MCP)[MCP] for process in processes)
        return first, second

    yield start
    for process in processes:
        log = "\n".join(process.log)
        assert "Traceback" not in log and SECRET not in log, log


@pytest.fixture
def proxy_for() -> Iterator[Callable[[tuple[str, str]], RoundRobinProxy]]:
    proxies: list[RoundRobinProxy] = []

    def start(backends: tuple[str, str]) -> RoundRobinProxy:
        proxy = RoundRobinProxy(list(backends)).__enter__()
        proxies.append(proxy)
        return proxy

    yield start
    for proxy in proxies:
        proxy.__exit__()


async def test_one_session_alternates_between_two_instances_with_one_secret(
    instances: Callable[..., tuple[str, str]],
    proxy_for: Callable[[tuple[str, str]], RoundRobinProxy],
    upstream: RecordingUpstream,
) -> None:
    backends = instances(SECRET, SECRET)
    proxy = proxy_for(backends)
    words = ["alpha", "beta", "gamma", "delta", "epsilon", "zeta"]
    async with Client(proxy.url, mode="legacy", cache=None) as client:
        assert client.protocol_version == "2025-11-25"
        for word in words:
            listed = await client.list_tools()
            assert [tool.name for tool in listed.tools] == ["lookup"]
            result = await client.call_tool("lookup", {"word": word})
            assert not result.is_error, result
            assert result.structured_content == {"echo": {"method": "GET", "path": f"/words/{word}", "query": ""}}
    assert [r.path for r in upstream.requests] == [f"/words/{word}" for word in words]

    opened = proxy.routed[0]
    assert (opened.method, opened.session) == ("POST", None)
    session = next(r.session for r in proxy.routed if r.session)
    in_session = [r for r in proxy.routed if r.method == "POST" and r.session is not None]
    assert all(r.session == session for r in in_session)
    assert len(in_session) >= 1 + 2 * len(words)  # notifications/initialized, then tools/list and tools/call each
    assert {r.status for r in in_session} <= {200, 202}, proxy.routed
    assert {r.backend for r in in_session} == {0, 1}
    assert min(len([r for r in in_session if r.backend == b]) for b in (0, 1)) >= len(words)
    assert proxy.connections < len(in_session) / 2  # the client kept its connections: routing was per request

    # The client ended the session with a DELETE on leaving; one instance saw it.
    [ended] = [r for r in proxy.routed if r.method == "DELETE"]
    assert (ended.session, ended.status) == (session, 200)
    ping = {"jsonrpc": "2.0", "id": 1, "method": "ping"}
    headers = {"Mcp-Session-Id": session, "MCP-Protocol-Version": "2025-11-25"}
    async with httpx.AsyncClient() as http:
        saw_it = await http.post(backends[ended.backend], json=ping, headers=headers)
        assert saw_it.status_code == 404 and saw_it.json()["error"]["message"] == "Session not found"
        # Documented: with no shared store, the instance that did not see the DELETE still accepts the
        # session until it expires (24 h by default); it can only ever name a protocol version.
        other = await http.post(backends[1 - ended.backend], json=ping, headers=headers)
        assert other.status_code == 200 and other.json() == {"jsonrpc": "2.0", "id": 1, "result": {}}


@pytest.mark.parametrize("secrets", [(SECRET, "another secret, also of 32+ bytes"), (None, None)])
async def test_instances_with_different_secrets_refuse_each_others_sessions(
    instances: Callable[..., tuple[str, str]],
    proxy_for: Callable[[tuple[str, str]], RoundRobinProxy],
    secrets: tuple[str | None, str | None],
) -> None:
    """Different secrets, or none (each process then draws its own): a session lives on its instance only."""
    proxy = proxy_for(instances(*secrets))
    initialize = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "initialize",
        "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}},
    }
    ping = {"jsonrpc": "2.0", "id": 2, "method": "ping"}
    async with httpx.AsyncClient() as http:
        opened = await http.post(proxy.url, json=initialize)
        assert opened.status_code == 200
        headers = {"Mcp-Session-Id": opened.headers["mcp-session-id"]}
        elsewhere = await http.post(proxy.url, json=ping, headers=headers)
        assert elsewhere.status_code == 404 and elsewhere.json()["error"]["message"] == "Session not found"
        home = await http.post(proxy.url, json=ping, headers=headers)
        assert home.status_code == 200
        assert (await http.delete(proxy.url, headers=headers)).status_code == 404  # not its session either
    assert [(r.backend, r.status) for r in proxy.routed] == [(0, 200), (1, 404), (0, 200), (1, 404)]
    assert proxy.connections == 1
