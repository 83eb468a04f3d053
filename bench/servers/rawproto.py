"""A PROTOTYPE HTTP/1.1 server: an asyncio protocol on httptools serving one ASGI app.

Written to measure what uvicorn's protocol costs per request on the hot path (GET, small JSON,
keep-alive), not to serve anything: bench/server_options.py runs it side by side with today's
server. What it skips, and a real replacement would need, is listed in bench/README.md
("Server layer options"): flow control, Expect: 100-continue, request body backpressure, a
keep-alive timeout, header size limits, a graceful drain, and the hooks adapters/server.py uses.

It does: keep-alive, pipelined requests answered in order, request bodies (buffered whole),
`http.disconnect` on `receive` once the caller is gone, a `Date` header (uvicorn sends one),
`Content-Length` answers in one write (head and body joined) and chunked ones otherwise, and the
`naftiko.abort` scope extension.
"""

from __future__ import annotations

import asyncio
import http
import time
from collections import deque
from email.utils import formatdate
from typing import Any
from collections.abc import Awaitable, Callable

import httptools

ABORT_EXTENSION = "naftiko.abort"
App = Callable[
    [dict[str, Any], Callable[[], Awaitable[dict[str, Any]]], Callable[[dict[str, Any]], Awaitable[None]]],
    Awaitable[None],
]

STATUS_LINES = {s.value: f"HTTP/1.1 {s.value} {s.phrase}\r\n".encode() for s in http.HTTPStatus}
BAD_REQUEST = (
    b"HTTP/1.1 400 Bad Request\r\ncontent-type: text/plain\r\ncontent-length: 11\r\n"
    b"connection: close\r\n\r\nbad request"
)
ERROR = b"HTTP/1.1 500 Internal Server Error\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"


class _Clock:
    """The `Date` header, formatted at most once a second."""

    __slots__ = ("second", "header")

    def __init__(self) -> None:
        self.second = 0
        self.header = b""

    def date(self) -> bytes:
        now = int(time.time())
        if now != self.second:
            self.second = now
            self.header = b"date: " + formatdate(now, usegmt=True).encode() + b"\r\n"
        return self.header


class _Request:
    """One parsed request waiting for (or in) its ASGI cycle."""

    __slots__ = ("scope", "body", "keep_alive")

    def __init__(self, scope: dict[str, Any], body: bytes, keep_alive: bool) -> None:
        self.scope, self.body, self.keep_alive = scope, body, keep_alive


class RawProtocol(asyncio.Protocol):
    """One connection: parse with httptools, run the app per request, one write per answer."""

    def __init__(self, app: App, clock: _Clock, server: tuple[str, int], loop: asyncio.AbstractEventLoop) -> None:
        self.app, self.clock, self.server, self.loop = app, clock, server, loop
        self.parser = httptools.HttpRequestParser(self)
        self.transport: asyncio.Transport | None = None
        self.client: tuple[str, int] | None = None
        self.url = b""
        self.headers: list[tuple[bytes, bytes]] = []
        self.body: list[bytes] = []
        self.queue: deque[_Request] = deque()
        self.running = False
        self.gone: asyncio.Future[None] | None = None
        self.extensions: dict[str, Any] = {}

    # connection
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's is not an asyncio.Transport subclass
        peer = transport.get_extra_info("peername")
        self.client = (peer[0], peer[1]) if peer else None
        self.extensions = {ABORT_EXTENSION: {"close": transport.close}}

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None
        if self.gone is not None and not self.gone.done():
            self.gone.set_result(None)

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._fail(BAD_REQUEST)
        except httptools.HttpParserError:
            self._fail(BAD_REQUEST)

    def _fail(self, answer: bytes) -> None:
        if self.transport is not None:
            self.transport.write(answer)
            self.transport.close()

    # parser callbacks
    def on_message_begin(self) -> None:
        self.url = b""
        self.headers = []
        self.body = []

    def on_url(self, url: bytes) -> None:
        self.url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers.append((name.lower(), value))

    def on_body(self, body: bytes) -> None:
        self.body.append(body)

    def on_message_complete(self) -> None:
        parsed = httptools.parse_url(self.url)
        raw_path = parsed.path
        scope = {
            "type": "http",
            "asgi": {"version": "3.0", "spec_version": "2.4"},
            "http_version": self.parser.get_http_version(),
            "method": self.parser.get_method().decode("ascii"),
            "scheme": "http",
            "path": raw_path.decode("latin-1") if b"%" not in raw_path else _unquote(raw_path),
            "raw_path": raw_path,
            "query_string": parsed.query or b"",
            "root_path": "",
            "headers": self.headers,
            "server": self.server,
            "client": self.client,
            "extensions": self.extensions,
        }
        body = b"".join(self.body) if self.body else b""
        self.queue.append(_Request(scope, body, self.parser.should_keep_alive()))
        if not self.running:
            self.running = True
            self.loop.create_task(self._serve())  # get_running_loop() would cost a getpid() per request

    # the ASGI cycles, one at a time, in order (pipelining)
    async def _serve(self) -> None:
        while self.queue and self.transport is not None:
            request = self.queue.popleft()
            cycle = _Cycle(self, request)
            try:
                await self.app(request.scope, cycle.receive, cycle.send)
            except Exception:
                if not cycle.started and self.transport is not None:
                    self._fail(ERROR)
                elif self.transport is not None:
                    self.transport.close()
                break
            if not cycle.complete and self.transport is not None:
                self.transport.close()  # the app ended without finishing its answer
            if not request.keep_alive and self.transport is not None:
                self.transport.close()
        self.running = False

    def disconnected(self) -> asyncio.Future[None]:
        if self.gone is None:
            self.gone = self.loop.create_future()
            if self.transport is None:
                self.gone.set_result(None)
        return self.gone


class _Cycle:
    """`receive` and `send` of one request."""

    __slots__ = ("proto", "request", "read", "started", "complete", "head", "chunked")

    def __init__(self, proto: RawProtocol, request: _Request) -> None:
        self.proto, self.request = proto, request
        self.read = False
        self.started = self.complete = self.chunked = False
        self.head = b""

    async def receive(self) -> dict[str, Any]:
        if not self.read:
            self.read = True
            return {"type": "http.request", "body": self.request.body, "more_body": False}
        await self.proto.disconnected()
        return {"type": "http.disconnect"}

    async def send(self, message: dict[str, Any]) -> None:
        transport = self.proto.transport
        if transport is None:
            raise OSError("the caller is gone")  # ASGI 2.4: send fails once the caller is gone
        kind = message["type"]
        if kind == "http.response.start":
            status = message["status"]
            parts = [STATUS_LINES.get(status) or f"HTTP/1.1 {status} \r\n".encode(), self.proto.clock.date()]
            has_length = False
            for name, value in message.get("headers", ()):
                if name.lower() == b"content-length":
                    has_length = True
                parts += (name, b": ", value, b"\r\n")
            if not has_length:
                self.chunked = True
                parts.append(b"transfer-encoding: chunked\r\n")
            if not self.request.keep_alive:
                parts.append(b"connection: close\r\n")
            parts.append(b"\r\n")
            self.head = b"".join(parts)
            self.started = True
        elif kind == "http.response.body":
            body = message.get("body", b"")
            more = message.get("more_body", False)
            if self.chunked:
                out = [self.head] if self.head else []
                if body:
                    out += (b"%x\r\n" % len(body), body, b"\r\n")
                if not more:
                    out.append(b"0\r\n\r\n")
            elif self.head and len(body) < 65536:
                out = [self.head + body]  # one write of one buffer: head and small body joined
            else:
                out = [self.head, body] if self.head else [body]  # one writev: a large body is not copied
            self.head = b""
            transport.writelines(out) if len(out) > 1 else transport.write(out[0])
            if not more:
                self.complete = True


def _unquote(raw: bytes) -> str:
    from urllib.parse import unquote

    return unquote(raw.decode("ascii", "replace"))  # as uvicorn: percent-decoded, UTF-8


async def serve_raw(app: App, host: str, port: int) -> asyncio.Server:
    """Listen on host:port, serving `app` (returns the asyncio server; close it to stop)."""
    loop = asyncio.get_running_loop()
    clock = _Clock()
    server = (host, port)
    return await loop.create_server(lambda: RawProtocol(app, clock, server, loop), host, port, backlog=2048)
