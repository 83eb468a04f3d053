"""What the tests share: the repository's paths, upstreams on real loopback (a recording HTTP server, a
raw-TCP one for hostile answers, a scripted asyncio one for the HTTP/1.1 client) and `naftiko serve` run as
a real process the way a user starts it."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import os
import re
import signal
import socket
import ssl
import subprocess
import textwrap
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from collections.abc import AsyncIterator, Awaitable, Callable

import uvicorn

from naftiko.engine import Runtime
from naftiko.engine.upstream import Prepared, Upstream

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared"
SEED = ROOT / "capabilities" / "posthog-task-runs.yaml"


def shared_or_skip(path: Path) -> Path:
    """`path` under ../shared, or a clean skip on a machine without that folder (the project never copies it)."""
    if not path.exists():
        import pytest

        pytest.skip(f"{path} is absent (the shared spec folder is not on this machine)")
    return path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class JsonBody:
    """`.json` for the records below that carry a raw `body`."""

    body: bytes

    @property
    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Answer(JsonBody):
    """An HTTP answer as the raw-socket and in-process test clients read it."""

    status: int
    headers: dict[bytes, bytes]
    body: bytes

    @property
    def content_type(self) -> bytes:
        return self.headers.get(b"content-type", b"")


@dataclass
class Recorded(JsonBody):
    method: str
    path: str  # raw, still percent-encoded
    query: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Reply:
    status: int = 200
    json: Any = None
    body: bytes | None = None
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)
    chunks: list[bytes] | None = None  # streamed with `interval` seconds between them
    interval: float = 0.0
    delay: float = 0.0


async def read_body(receive: Callable) -> bytes:
    """An ASGI request's whole body (for the test servers here)."""
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            return body


class RecordingUpstream:
    """An upstream API stand-in: records every request, answers what the test set up.

    By default it answers 200 with a JSON echo of the request it received.
    """

    def __init__(self) -> None:
        self.requests: list[Recorded] = []
        self.replies: dict[tuple[str, str], Reply] = {}
        self.url = ""

    def reply(self, method: str, path: str, reply: Reply) -> None:
        self.replies[(method, path)] = reply

    @property
    def last(self) -> Recorded:
        assert self.requests, "the upstream received no request"
        return self.requests[-1]

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        if scope["type"] != "http":
            return
        body = await read_body(receive)
        raw_path = scope["raw_path"].decode().split("?")[0]
        record = Recorded(
            scope["method"],
            raw_path,
            scope["query_string"].decode(),
            {k.decode().lower(): v.decode() for k, v in scope["headers"]},
            body,
        )
        self.requests.append(record)
        reply = self.replies.get((scope["method"], raw_path)) or Reply(
            json={"echo": {"method": record.method, "path": record.path, "query": record.query}}
        )
        if reply.delay:
            await asyncio.sleep(reply.delay)
        headers = [(b"content-type", reply.content_type.encode())]
        headers += [(k.encode(), v.encode()) for k, v in reply.headers.items()]
        await send({"type": "http.response.start", "status": reply.status, "headers": headers})
        if reply.chunks is not None:
            for chunk in reply.chunks:
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
                await asyncio.sleep(reply.interval)
            await send({"type": "http.response.body", "body": b""})
            return
        if reply.body is not None:
            payload = reply.body
        else:
            payload = json.dumps(reply.json).encode() if reply.json is not None else b""
        await send({"type": "http.response.body", "body": payload})


class ThreadedServer:
    """uvicorn serving an ASGI app on a free loopback port in a background thread."""

    def __init__(self, app: Any) -> None:
        self.port = free_port()
        config = uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning", lifespan="off")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> str:
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("test server did not start")
            time.sleep(0.01)
        return f"http://127.0.0.1:{self.port}"

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


class RawUpstream:
    """A raw TCP upstream for faults no HTTP server would commit: each request goes to the
    method named after its path's last segment (`/bomb-stream` → `_bomb_stream(conn, body)`,
    `_ok` when there is none); a method returning False ends the connection. Records the paths,
    bodies and heads it saw."""

    keep_alive = True  # False: one request per connection, closed after its answer

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.paths: list[str] = []
        self.heads: list[str] = []
        self.bodies: dict[str, bytes] = {}
        threading.Thread(target=self._accept, daemon=True).start()

    def close(self) -> None:
        self.sock.close()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        with conn:
            data = b""
            while True:
                while b"\r\n\r\n" not in data:
                    chunk = conn.recv(65536)
                    if not chunk:
                        return
                    data += chunk
                head, _, data = data.partition(b"\r\n\r\n")
                lines = head.decode("latin-1").split("\r\n")
                path = lines[0].split(" ")[1].split("?")[0]
                length = next(
                    (int(line.split(":", 1)[1]) for line in lines if line.lower().startswith("content-length:")), 0
                )
                while len(data) < length:
                    data += conn.recv(65536)
                body, data = data[:length], data[length:]
                self.paths.append(path)
                self.heads.append(head.decode("latin-1"))
                self.bodies[path] = body
                handler = getattr(self, "_" + path.strip("/").split("/")[-1].replace("-", "_"), self._ok)
                try:
                    if handler(conn, body) is False or not self.keep_alive:
                        return
                except OSError:
                    return

    @staticmethod
    def _answer(
        conn: socket.socket, status: str, body: bytes, content_type: str = "application/json", **headers: str
    ) -> None:
        head = [f"HTTP/1.1 {status}", f"Content-Type: {content_type}", f"Content-Length: {len(body)}"]
        head += [f"{k.replace('_', '-')}: {v}" for k, v in headers.items()]
        conn.sendall(("\r\n".join(head) + "\r\n\r\n").encode() + body)

    def _ok(self, conn: socket.socket, body: bytes) -> None:
        self._answer(conn, "200 OK", json.dumps({"size": len(body)}).encode())


_LISTENING = re.compile(r'(REST|MCP|SKILL|CONTROL) (\S+): .* at (http://[^\s"]+)')


class NaftikoProcess:
    """`naftiko serve ...` as a real subprocess; URLs read from its log lines."""

    def __init__(self, args: list[str], env: dict[str, str] | None = None) -> None:
        full_env = {**os.environ, **(env or {})}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "naftiko", "serve", *args],
            cwd=ROOT,
            env=full_env,
            stderr=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        self.urls: dict[str, str] = {}
        self.log: list[str] = []
        self._ready = threading.Event()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.log.append(line.rstrip())
            match = _LISTENING.search(line)
            if match:
                self.urls[match.group(2)] = match.group(3)
        self._ready.set()

    def wait_for(self, *namespaces: str, timeout: float = 15) -> dict[str, str]:
        deadline = time.monotonic() + timeout
        while not all(ns in self.urls for ns in namespaces):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                time.sleep(0.1)
                raise RuntimeError("naftiko serve did not start:\n" + "\n".join(self.log))
            time.sleep(0.02)
        return self.urls

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
        try:
            return self.proc.wait(timeout=10)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()


def yaml_positions(value: Any, path: str = "") -> dict[str, tuple[int, int]]:
    """Every key's, value's and item's recorded position in ruamel-style data, by key path (keys by repr)."""
    found: dict[str, tuple[int, int]] = {}
    if isinstance(value, dict):
        for key, child in value.items():
            found[f"{path}.{key!r}"] = tuple(value.lc.key(key))
            found[f"{path}.{key!r}="] = tuple(value.lc.value(key))
            found.update(yaml_positions(child, f"{path}.{key!r}"))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            found[f"{path}[{index}]"] = tuple(value.lc.item(index))
            found.update(yaml_positions(child, f"{path}[{index}]"))
    return found


# --- a scripted raw-socket server for the HTTP/1.1 client -----------------------------------------------

# A handler gets the request head, its body and its index on the connection; it writes what it
# likes, and returning False closes the connection.
Handler = Callable[[str, bytes, asyncio.StreamWriter, int], Awaitable[bool]]


class ScriptedServer:
    """Reads requests off raw sockets and lets a test answer byte by byte."""

    def __init__(self, handler: Handler, tls: ssl.SSLContext | None = None) -> None:
        self.handler = handler
        self.tls = tls
        self.connections = 0
        self.requests: list[str] = []
        self.url = ""
        self.port = 0
        self._server: asyncio.Server | None = None

    async def __aenter__(self) -> ScriptedServer:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0, ssl=self.tls)
        self.port = self._server.sockets[0].getsockname()[1]
        self.url = f"{'https' if self.tls else 'http'}://127.0.0.1:{self.port}"
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        nth = 0
        try:
            while True:
                head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1")
                length = next(
                    (
                        int(line.split(":", 1)[1])
                        for line in head.split("\r\n")
                        if line.lower().startswith("content-length:")
                    ),
                    0,
                )
                body = await reader.readexactly(length) if length else b""
                self.requests.append(head)
                if not await self.handler(head, body, writer, nth):
                    break
                nth += 1
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()


def answer(status: str, headers: list[str], body: bytes = b"") -> bytes:
    return ("HTTP/1.1 " + status + "\r\n" + "".join(h + "\r\n" for h in headers) + "\r\n").encode() + body


def json_answer(body: bytes = b'{"ok": true}') -> bytes:
    return answer("200 OK", ["Content-Type: application/json", f"Content-Length: {len(body)}"], body)


async def ok(head: str, body: bytes, writer: asyncio.StreamWriter, nth: int) -> bool:
    """A handler that answers every request with a small JSON object."""
    writer.write(json_answer())
    return True


@contextlib.asynccontextmanager
async def client(url: str, timeout: float = 2.0) -> AsyncIterator[Upstream]:
    upstream = Upstream("t", url, timeout)
    try:
        yield upstream
    finally:
        await upstream.close()


async def send(upstream: Upstream, target: str = "/x", method: str = "GET", headers=(), body: bytes | None = None):
    return await upstream.send("op", Prepared(method, target, tuple(headers), body))


def spec_shape(value: Any) -> Any:
    """A loaded model as plain data without positions, so two files can be compared."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {
            f.name: spec_shape(getattr(value, f.name))
            for f in dataclasses.fields(value)
            if f.name not in ("where", "ref_where", "path", "version", "warnings")
        }
    if isinstance(value, (list, tuple)):
        return [spec_shape(v) for v in value]
    if isinstance(value, dict):
        return {k: spec_shape(v) for k, v in value.items()}
    return value


def control_url(process: NaftikoProcess, timeout: float = 15) -> str:
    """The control listener's URL from its log line (`CONTROL control: ... at http://...`)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for line in list(process.log):
            match = re.search(r"CONTROL (\S+): .* at (http://\S+)", line)
            if match:
                return match.group(2)
        if process.proc.poll() is not None:
            break
        time.sleep(0.02)
    raise RuntimeError("no control listener:\n" + "\n".join(process.log))


def metric_value(control_url: str, name: str, **labels: str) -> float:
    """The sum of a control port's `/metrics` samples named `name` with these labels (0 when none)."""
    import httpx
    from prometheus_client.parser import text_string_to_metric_families

    text = httpx.get(f"{control_url}/metrics", timeout=15).text
    return sum(
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items())
    )


def get_resources(*names: str) -> str:
    """Consumed resources (indent 8), each one GET operation of its own name: the cache tests' upstream."""
    return "".join(
        f"""
        - path: /{name}
          name: {name}
          operations:
            - method: GET
              name: {name}"""
        for name in names
    )


BLOCKS_CAPABILITY = """\
naftiko: 1.0.0-alpha2
capability:
  consumes:
    - type: http
      namespace: up
      baseUri: http://127.0.0.1:1
      {namespace}
      resources:
        - name: things
          path: /things
          operations:
            - name: get-things
              method: GET
              {operation}
            - name: other
              method: GET
  exposes:
    - type: rest
      namespace: r
      port: 9000
      resources:
        - path: /things
          operations:
            - method: GET
              call: up.get-things
"""
"""One consumed namespace `up` of two GET operations (`get-things`, `other`) and a REST route to the first:
`{namespace}` and `{operation}` take a namespace block and an operation block (`with_blocks`)."""


def blocks_file(tmp_path: Path, namespace: str = "", operation: str = "") -> Path:
    """`BLOCKS_CAPABILITY` with these blocks, written to `tmp_path/cap.yaml`."""
    path = tmp_path / "cap.yaml"
    path.write_text(with_blocks(BLOCKS_CAPABILITY, namespace, operation))
    return path


def load_with_blocks(tmp_path: Path, namespace: str = "", operation: str = "") -> Runtime:
    """The Runtime of `blocks_file`: what a namespace or operation block (cache, resilience...) builds."""
    return Runtime.load(blocks_file(tmp_path, namespace, operation))


def with_blocks(template: str, namespace: str = "", operation: str = "") -> str:
    """A capability template with a namespace block (indent 6) and an operation block (indent 14) filled in."""

    def block(text: str, indent: int) -> str:
        return textwrap.indent(textwrap.dedent(text), " " * indent).strip()

    return template.format(namespace=block(namespace, 6), operation=block(operation, 14))
