"""naftiko's own HTTP/1.1 server: an asyncio protocol on httptools serving one ASGI 3 app per port.

Why: uvicorn's per-request Python was most of our REST server's CPU (bench/README.md, "server
layer"). This module keeps the hot path short (a GET with a small answer: a scope dict, one task,
one write) and still does what a production server must, each behaviour covered by
tests/adapters/test_http1.py: keep-alive and pipelining (one request at a time per connection, in
order), request bodies streamed with backpressure, `Expect: 100-continue`, response framing
(Content-Length, chunked, close-delimited), write backpressure, bounded heads and pipelines,
timeouts for idle and slow clients, and a graceful shutdown. HTTP scope only: no websockets, no
lifespan (`serve()` starts and stops the runtime itself).

`Http1Server` has the interface adapters/server.py uses of a uvicorn server: `serve(sockets=...)`,
`started`, `should_exit` and `server_state.tasks` (the requests in flight, for the reload drain);
it reads `slot.app` once per request, so a reload swaps apps between two requests.
"""

from __future__ import annotations

import asyncio
import http
import logging
import re
import socket
import time
from collections import deque
from dataclasses import dataclass, fields
from email.utils import formatdate
from typing import Any
from collections.abc import Awaitable, Callable, Iterable, Mapping, MutableMapping
from urllib.parse import unquote

import httptools

from .edges import ABORT_EXTENSION

log = logging.getLogger("naftiko")

Message = MutableMapping[str, Any]
App = Callable[[Message, Callable[[], Awaitable[Message]], Callable[[Message], Awaitable[None]]], Awaitable[None]]

ASGI = {"version": "3.0", "spec_version": "2.3"}  # as uvicorn: send() after a disconnect is a no-op
STATUS_LINES = {s.value: f"HTTP/1.1 {s.value} {s.phrase}\r\n".encode() for s in http.HTTPStatus}
CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"
#: What a response's header block must look like once names are lower-cased (no CR/LF smuggled in a value).
HEADER_BLOCK = re.compile(rb"(?:[!#$%&'*+\-.^_`|~0-9a-z]+: [^\x00-\x08\x0a-\x1f\x7f]*\r\n)*")
NO_BODY_STATUSES = frozenset((204, 304))
ENV_PREFIX = "NAFTIKO_HTTP_"
_COUNT = re.compile(r"^\s*(\d+)\s*([km]?)(?:i?b)?\s*$", re.IGNORECASE)
_SECONDS = re.compile(r"^\s*(\d+(?:\.\d*)?|\.\d+)()\s*$")
_SCALE = {"": 1, "k": 1024, "m": 1024 * 1024}
JOIN_BELOW = 65536  # a body smaller than this is copied onto its head (one buffer); a larger one goes by writev


@dataclass(frozen=True, slots=True)
class Limits:
    """What one server accepts from its callers, and how long it waits for them.

    Every field is a constructor argument with the default shown; `naftiko serve` passes its own.
    """

    max_head: int = 65536  # request line and headers, bytes (431 beyond)
    max_url: int = 8192  # request target, bytes (414 beyond)
    max_headers: int = 100  # header fields in one request (431 beyond)
    max_pipelined: int = 16  # requests parsed and waiting behind the running one; more: answered, then closed
    body_buffer: int = 65536  # request body bytes unread by the app before the socket stops being read
    write_buffer: int = 65536  # response bytes the transport holds before the app's send() waits
    keep_alive: float = 5.0  # seconds an idle keep-alive connection stays open (uvicorn's default)
    head_timeout: float = 10.0  # seconds a caller gets to send a whole request head (slowloris)
    shutdown_timeout: float = 30.0  # seconds requests in flight get to finish after should_exit, then cut

    def __post_init__(self) -> None:
        for name in ("max_head", "max_url", "max_headers", "max_pipelined", "body_buffer", "write_buffer"):
            if getattr(self, name) < 1:
                raise ValueError(f"the HTTP server's {name} must be at least 1")
        for name in ("keep_alive", "head_timeout", "shutdown_timeout"):
            if getattr(self, name) <= 0:
                raise ValueError(f"the HTTP server's {name} must be more than 0 seconds")

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> Limits:
        """The defaults, with `NAFTIKO_HTTP_<FIELD>` variables over them (sizes take K or M; times are seconds).

        `shutdown_timeout` is not read here: `serve` gives the drain of `--grace`."""
        values: dict[str, Any] = {}
        for item in fields(cls):
            name = ENV_PREFIX + item.name.upper()
            raw = environ.get(name)
            if raw is None or item.name == "shutdown_timeout":
                continue
            match = (_SECONDS if item.type == "float" else _COUNT).match(raw)
            if match is None:
                kind = "seconds" if item.type == "float" else "a whole number (K and M allowed)"
                raise ValueError(f"{name} expects {kind}; got '{raw}'")
            number = float(match.group(1))
            values[item.name] = number if item.type == "float" else int(number) * _SCALE[match.group(2).lower()]
        return cls(**values)

    @property
    def tick(self) -> float:
        """How often timeouts are checked: a fraction of the shortest, at most every 0.5 s."""
        return max(0.01, min(0.5, self.keep_alive / 5, self.head_timeout / 5))


class _Refused(Exception):
    """A request this server answers itself, with `status`, then closes the connection."""

    def __init__(self, status: int, kind: str, message: str) -> None:
        super().__init__(message)
        self.status, self.kind, self.message = status, kind, message


class _Overflow(Exception):
    """More pipelined requests than the limit: stop parsing; those parsed are answered, then the connection closes."""


def error_answer(date: bytes, status: int, kind: str, message: str) -> bytes:
    """A whole answer with naftiko's JSON error body, closing the connection."""
    import json

    body = json.dumps({"error": {"type": kind, "message": message}}).encode()
    return b"".join(
        (
            STATUS_LINES.get(status) or b"HTTP/1.1 %d \r\n" % status,
            date,
            b"content-type: application/json\r\ncontent-length: %d\r\nconnection: close\r\n\r\n" % len(body),
            body,
        )
    )


class ServerState:
    """What the connections of one server share: the Date header, the clock, who is connected and running."""

    __slots__ = ("date", "now", "tasks", "connections")

    def __init__(self) -> None:
        self.date = b""
        self.now = 0.0
        self.tasks: set[asyncio.Task[None]] = set()
        self.connections: set[Connection] = set()
        self.update(time.time(), 0.0)

    def update(self, wall: float, now: float) -> None:
        self.now = now
        self.date = b"date: " + formatdate(wall, usegmt=True).encode() + b"\r\n"


def _address(info: Any) -> tuple[str, int] | None:
    return (str(info[0]), int(info[1])) if isinstance(info, (tuple, list)) and len(info) >= 2 else None


class Connection(asyncio.Protocol):
    """One caller's connection: parses requests and runs the app for them, one at a time, in order."""

    def __init__(self, server: Http1Server, loop: asyncio.AbstractEventLoop) -> None:
        self.server, self.loop, self.limits, self.state = server, loop, server.limits, server.server_state
        self.parser = httptools.HttpRequestParser(self)
        self.transport: asyncio.Transport | None = None
        self.client: tuple[str, int] | None = None
        self.local: tuple[str, int] | None = None
        self.extensions: dict[str, Any] = {}
        # the request being parsed
        self.url = b""
        self.headers: list[tuple[bytes, bytes]] = []
        self.head_size = 0
        self.head_fed = 0
        self.in_head = False
        self.expect = False
        self.parsing: Cycle | None = None
        # the requests
        self.active: Cycle | None = None
        self.queue: deque[Cycle | bytes] = deque()  # waiting behind the active one; bytes: a refusal to send
        self.closing = False  # answer what runs and what waits, then close (overflow, upgrade, a refusal)
        self.stopping = False  # the server shuts down: close once the answer being written is done
        # flow control
        self.read_paused = False
        self.write_paused = False
        self.drained: asyncio.Future[None] | None = None
        # timeouts, read by the server's tick
        self.head_since: float | None = None
        self.idle_since: float | None = None

    # the connection
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's transports are not asyncio.Transport subclasses
        transport.set_write_buffer_limits(high=self.limits.write_buffer)  # type: ignore[attr-defined]
        self.client = _address(transport.get_extra_info("peername"))
        self.local = _address(transport.get_extra_info("sockname"))
        self.extensions = {ABORT_EXTENSION: {"close": self.close}}
        self.state.connections.add(self)
        self.idle_since = self.state.now

    def connection_lost(self, exc: Exception | None) -> None:
        self.state.connections.discard(self)
        self.transport = None
        self.queue.clear()
        for cycle in (self.active, self.parsing):
            if cycle is not None:
                cycle.disconnected = True
                cycle.wake()
        self._wake_writer()

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()

    def data_received(self, data: bytes) -> None:
        self.idle_since = None
        was_in_head = self.in_head
        try:
            self.parser.feed_data(data)
        except _Refused as refused:
            self._refuse(refused)
            return
        except _Overflow:
            self.closing = True
            self._pause_reading()
        except httptools.HttpParserUpgrade:
            self._upgrade_ignored()
        except httptools.HttpParserError as exc:
            cause = exc.__cause__ or exc.__context__
            if isinstance(cause, _Refused):
                self._refuse(cause)
            elif isinstance(cause, _Overflow):
                self.closing = True
                self._pause_reading()
            else:
                self._refuse(_Refused(400, "bad_request", f"malformed HTTP request: {_reason(exc)}"))
            return
        if self.in_head and was_in_head:
            self.head_fed += len(data)  # bytes httptools holds for a header not yet complete
            if self.head_fed > self.limits.max_head:
                self._refuse(_head_too_large(self.limits))

    def eof_received(self) -> bool | None:
        return None  # the transport closes itself; connection_lost tells the app

    def pause_writing(self) -> None:
        self.write_paused = True

    def resume_writing(self) -> None:
        self.write_paused = False
        self._wake_writer()

    def _wake_writer(self) -> None:
        if self.drained is not None:
            if not self.drained.done():
                self.drained.set_result(None)
            self.drained = None

    async def drain(self) -> None:
        """Wait until the transport's buffer is below its low-water mark (or the caller is gone)."""
        if self.drained is None:
            self.drained = self.loop.create_future()
        await self.drained

    # parser callbacks
    def on_message_begin(self) -> None:
        self.url = b""
        self.headers = []
        self.head_size = self.head_fed = 0
        self.in_head = True
        self.expect = False
        self.head_since = self.state.now

    def on_url(self, url: bytes) -> None:
        self.url += url
        if len(self.url) > self.limits.max_url:
            raise _Refused(
                414, "uri_too_long", f"the request target is longer than the {self.limits.max_url}-byte limit"
            )

    def on_header(self, name: bytes, value: bytes) -> None:
        self.head_size += len(name) + len(value) + 4
        if self.head_size > self.limits.max_head:
            raise _head_too_large(self.limits)
        if len(self.headers) >= self.limits.max_headers:
            raise _Refused(
                431, "request_header_fields_too_large", f"the request has more than {self.limits.max_headers} headers"
            )
        name = name.lower()
        value = value.rstrip(b" \t")  # llhttp keeps trailing whitespace, which is not part of the value
        if name == b"expect" and value.lower() == b"100-continue":
            self.expect = True
        self.headers.append((name, value))

    def on_headers_complete(self) -> None:
        self.in_head = False
        self.head_since = None
        parser = self.parser
        parsed = httptools.parse_url(self.url)
        raw_path: bytes = parsed.path
        try:
            path = raw_path.decode("ascii")
        except UnicodeDecodeError:
            raise _Refused(400, "bad_request", "malformed HTTP request: the path is not ASCII") from None
        version = parser.get_http_version()
        scope: Message = {
            "type": "http",
            "asgi": ASGI,
            "http_version": version,
            "server": self.local,
            "client": self.client,
            "scheme": "http",
            "method": parser.get_method().decode("ascii"),
            "root_path": "",
            "path": unquote(path) if "%" in path else path,
            "raw_path": raw_path,
            "query_string": parsed.query or b"",
            "headers": self.headers,
            "extensions": self.extensions,
        }
        keep_alive = parser.should_keep_alive() and not self.closing
        cycle = Cycle(self, scope, keep_alive, version == "1.0", self.expect)
        self.parsing = cycle
        if self.active is None:
            self._start(cycle)
        else:
            if len(self.queue) >= self.limits.max_pipelined:
                self.parsing = None
                raise _Overflow
            self.queue.append(cycle)
            self._pause_reading()

    def on_body(self, body: bytes) -> None:
        cycle = self.parsing
        if cycle is None or cycle.complete:
            return  # the app answered without reading it all: the rest is dropped
        cycle.body.append(body)
        cycle.unread += len(body)
        if cycle.unread > self.limits.body_buffer:
            self._pause_reading()
        cycle.wake()

    def on_message_complete(self) -> None:
        cycle = self.parsing
        if cycle is not None:
            cycle.more_body = False
            cycle.wake()
            self.parsing = None

    # running the requests
    def _start(self, cycle: Cycle) -> None:
        self.active = cycle
        app: App = self.server.slot.app  # the app served now: a reload swaps it between two requests
        task = self.loop.create_task(cycle.run(app))
        cycle.task = task
        self.state.tasks.add(task)

    def done(self, cycle: Cycle) -> None:
        """`cycle`'s answer is complete: close, or go on with the next request."""
        if self.active is not cycle:
            return
        self.active = None
        if not cycle.keep_alive or self.transport is None or self.stopping:
            self.close()
            return
        if self.queue:
            waiting = self.queue.popleft()
            if isinstance(waiting, bytes):
                self._write_and_close(waiting)
                return
            self._start(waiting)
        elif self.closing:
            self.close()
            return
        elif self.parsing is None and not self.in_head:
            self.idle_since = self.state.now
        self._maybe_resume_reading()

    def _refuse(self, refused: _Refused) -> None:
        """A request the server answers itself (after those before it), then the connection closes."""
        if refused.status >= 500 or refused.status == 400:
            log.info("refused a request from %s: %s", self.client, refused.message)
        answer = error_answer(self.state.date, refused.status, refused.kind, refused.message)
        self.closing = True
        self.in_head = False
        self.head_since = None
        parsing, self.parsing = self.parsing, None
        if parsing is not None:
            parsing.keep_alive = False
        self._pause_reading()
        if parsing is not None and parsing is self.active:
            # the body of the request being served is broken: the app sees the caller leave
            if parsing.started:
                self.close()
            else:
                self._write_and_close(answer)
        elif self.active is None:
            self._write_and_close(answer)
        else:
            self.queue.append(answer)

    def _write_and_close(self, answer: bytes) -> None:
        if self.transport is not None:
            self.transport.write(answer)
            self.transport.close()

    def _upgrade_ignored(self) -> None:
        """An Upgrade request (h2c, websocket) is answered as plain HTTP/1.1; the connection closes after it."""
        self.closing = True
        for cycle in (self.parsing, self.active):
            if cycle is not None and not cycle.started:
                cycle.keep_alive = False
        if self.parsing is not None:
            self.on_message_complete()

    def _pause_reading(self) -> None:
        if not self.read_paused and self.transport is not None:
            self.read_paused = True
            self.transport.pause_reading()

    def _maybe_resume_reading(self) -> None:
        if not self.read_paused or self.transport is None or self.queue or self.closing:
            return
        parsing = self.parsing
        if parsing is not None and not parsing.complete and parsing.unread > self.limits.body_buffer:
            return
        self.read_paused = False
        self.transport.resume_reading()

    def timed_out(self, now: float) -> None:
        """Called by the server's tick: close an idle connection, refuse a head that takes too long."""
        if self.idle_since is not None and now - self.idle_since >= self.limits.keep_alive:
            self.idle_since = None
            self.close()
        elif self.head_since is not None and now - self.head_since >= self.limits.head_timeout:
            self.head_since = None
            self._refuse(
                _Refused(
                    408, "request_timeout", f"the request head did not arrive within {self.limits.head_timeout:g} s"
                )
            )

    def shutdown(self) -> None:
        """The server stops: close now when idle, else after the answer being written."""
        self.closing = self.stopping = True
        if self.active is None:
            self.close()
        elif not self.active.started:
            self.active.keep_alive = False


def _head_too_large(limits: Limits) -> _Refused:
    return _Refused(
        431, "request_header_fields_too_large", f"the request head is larger than the {limits.max_head}-byte limit"
    )


def _reason(exc: Exception) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text[:200]


class Cycle:
    """One request: its `receive` and `send`, and how its answer is framed."""

    __slots__ = (
        "conn",
        "scope",
        "keep_alive",
        "http10",
        "expect",
        "task",
        "body",
        "unread",
        "more_body",
        "delivered",
        "waiter",
        "disconnected",
        "started",
        "complete",
        "chunked",
        "no_body",
        "remaining",
        "head",
    )

    def __init__(self, conn: Connection, scope: Message, keep_alive: bool, http10: bool, expect: bool) -> None:
        self.conn, self.scope, self.keep_alive, self.http10, self.expect = conn, scope, keep_alive, http10, expect
        self.task: asyncio.Task[None] | None = None
        self.body: list[bytes] = []
        self.unread = 0
        self.more_body = True
        self.delivered = False  # the last http.request message was received
        self.waiter: asyncio.Future[None] | None = None
        self.disconnected = self.started = self.complete = self.chunked = self.no_body = False
        self.remaining: int | None = None  # Content-Length bytes still to send
        self.head: bytes | None = None  # a response head not written yet (joined with the first body part)

    async def run(self, app: App) -> None:
        try:
            await app(self.scope, self.receive, self.send)
        except BaseException as exc:
            self._failed(exc)
            if not isinstance(exc, Exception):
                raise
        else:
            if not self.started and not self.disconnected:
                log.error("%s %s: the app returned without answering", self.scope["method"], self.scope["path"])
                self._internal_error()
            elif not self.complete and not self.disconnected:
                log.error(
                    "%s %s: the app returned before its answer was complete", self.scope["method"], self.scope["path"]
                )
                self.conn.close()
        finally:
            if self.task is not None:
                self.conn.state.tasks.discard(self.task)

    def _failed(self, exc: BaseException) -> None:
        if isinstance(exc, asyncio.CancelledError):
            self.conn.close()
            return
        log.error("%s %s: the app failed", self.scope["method"], self.scope["path"], exc_info=exc)
        if not self.started and not self.disconnected:
            self._internal_error()
        else:
            self.conn.close()

    def _internal_error(self) -> None:
        conn = self.conn
        self.started = self.complete = True
        self.keep_alive = False
        if conn.transport is not None:
            conn.transport.write(
                error_answer(conn.state.date, 500, "internal_error", "internal error; the server's log has the details")
            )
        conn.done(self)

    def wake(self) -> None:
        waiter = self.waiter
        if waiter is not None:
            self.waiter = None
            if not waiter.done():
                waiter.set_result(None)

    async def receive(self) -> Message:
        conn = self.conn
        if self.expect:
            self.expect = False
            if not self.started and conn.transport is not None and self.more_body:
                conn.transport.write(CONTINUE)
        if self.delivered and not self.disconnected and not self.complete:
            await self._wait()  # the whole body was read: wait for the caller to leave, or the answer to end
        while not self.body and self.more_body and not self.disconnected and not self.complete:
            await self._wait()
        if self.disconnected or self.complete or self.delivered:
            return {"type": "http.disconnect"}
        if len(self.body) == 1:
            body = self.body[0]
        else:
            body = b"".join(self.body)
        self.body = []
        self.unread = 0
        self.delivered = not self.more_body
        if conn.read_paused:
            conn._maybe_resume_reading()
        return {"type": "http.request", "body": body, "more_body": self.more_body}

    async def _wait(self) -> None:
        conn = self.conn
        if conn.read_paused and conn.parsing is self:
            conn._maybe_resume_reading()
        if self.waiter is None:  # shared: an app may wait in two tasks (one watching for the caller to leave)
            self.waiter = conn.loop.create_future()
        await self.waiter

    async def send(self, message: Message) -> None:
        conn = self.conn
        if conn.write_paused and not self.disconnected:
            await conn.drain()
        if self.disconnected or conn.transport is None:
            return
        kind = message["type"]
        if not self.started:
            if kind != "http.response.start":
                raise RuntimeError(f"expected ASGI message 'http.response.start', got '{kind}'")
            self._start(message["status"], message.get("headers", ()))
        elif self.complete:
            raise RuntimeError(f"unexpected ASGI message '{kind}' after the response was complete")
        elif kind == "http.response.body":
            self._body(message.get("body", b""), message.get("more_body", False))
        else:
            raise RuntimeError(f"expected ASGI message 'http.response.body', got '{kind}'")

    def _start(self, status: int, headers: Iterable[tuple[bytes, bytes]]) -> None:
        if self.expect and self.more_body:
            self.keep_alive = False  # the caller may or may not send the body it announced: do not guess
        self.expect = False
        parts = [STATUS_LINES.get(status) or b"HTTP/1.1 %d \r\n" % status, self.conn.state.date]
        has_close = False
        chunked = False
        for name, value in headers:
            name = name.lower()
            if name == b"content-length":
                if self.remaining is None and not chunked:
                    self.remaining = int(value)
            elif name == b"transfer-encoding":
                if value.lower().endswith(b"chunked"):
                    chunked = True
                    self.remaining = None
            elif name == b"connection" and b"close" in value.lower():
                self.keep_alive = False
                has_close = True
            parts += (name, b": ", value, b"\r\n")
        lines = (len(parts) - 2) // 4
        add_chunked = False
        if self.scope["method"] == "HEAD" or status in NO_BODY_STATUSES or status < 200:
            self.no_body = True
            self.remaining = None  # a HEAD answer's Content-Length is the GET answer's
        elif self.remaining is None and not chunked:
            if self.http10:
                self.keep_alive = False  # close-delimited: HTTP/1.0 knows no chunked framing
            else:
                chunked = add_chunked = True
        if not self.keep_alive:
            if not has_close:
                parts.append(b"connection: close\r\n")
        elif self.http10:
            parts.append(b"connection: keep-alive\r\n")
        if add_chunked:
            parts.append(b"transfer-encoding: chunked\r\n")
        lines += len(parts) - 2 - lines * 4
        parts.append(b"\r\n")
        head = b"".join(parts)
        begin, end = len(parts[0]) + len(parts[1]), len(head) - 2
        if HEADER_BLOCK.fullmatch(head, begin, end) is None or head.count(b"\r\n", begin, end) != lines:
            raise RuntimeError("invalid HTTP response header name or value")  # a CR or LF would split a header
        self.started = True
        self.chunked = chunked
        self.head = head
        self.conn.loop.call_soon(self._flush_head)

    def _flush_head(self) -> None:
        head, self.head = self.head, None
        transport = self.conn.transport
        if head is not None and transport is not None and not self.disconnected:
            transport.write(head)

    def _body(self, body: bytes, more: bool) -> None:
        conn = self.conn
        transport = conn.transport
        assert transport is not None
        head, self.head = self.head, None
        if self.no_body:
            out: list[bytes] = [head] if head else []
        elif self.chunked:
            out = [head] if head else []
            if body:
                out += (b"%x\r\n" % len(body), body, b"\r\n")
            if not more:
                out.append(b"0\r\n\r\n")
        else:
            if self.remaining is not None:
                self.remaining -= len(body)
                if self.remaining < 0:
                    raise RuntimeError("the response body is longer than its Content-Length")
            if head is None:
                out = [body] if body else []
            elif len(body) < JOIN_BELOW:
                out = [head + body]  # one buffer: head and small body in one packet
            else:
                out = [head, body]  # one writev: a large body is not copied
        if len(out) == 1:
            transport.write(out[0])
        elif out:
            transport.writelines(out)
        if not more:
            if self.remaining:
                raise RuntimeError("the response body is shorter than its Content-Length")
            self.complete = True
            self.body = []  # what the app did not read is dropped, and so is what still arrives
            self.unread = 0
            self.wake()
            conn.done(self)


class Http1Server:
    """Serves `slot.app` on the sockets given to `serve`, until `should_exit` is set.

    Shutting down as uvicorn does: stop accepting, close idle connections, let the requests in
    flight finish (at most `limits.shutdown_timeout` s), then cancel what is left.
    """

    def __init__(self, slot: Any, limits: Limits | None = None, protocol: type[Connection] | None = None) -> None:
        self.slot = slot  # anything with an `app` attribute, read once per request
        self.limits = limits or Limits()
        self.protocol = protocol or Connection  # tests watch the writes through a subclass
        self.server_state = ServerState()
        self.started = False
        self.should_exit = False
        self.servers: list[asyncio.AbstractServer] = []

    async def serve(self, sockets: list[socket.socket]) -> None:
        loop = asyncio.get_running_loop()
        self.server_state.update(time.time(), loop.time())
        try:
            for sock in sockets:
                self.servers.append(
                    await loop.create_server(lambda: self.protocol(self, loop), sock=sock, backlog=2048)
                )
            self.started = True
            tick = self.limits.tick
            swept = loop.time()
            while not self.should_exit:
                await asyncio.sleep(min(tick, 0.1))  # should_exit is seen within 0.1 s, as uvicorn does
                now = loop.time()
                if now - swept >= tick:
                    swept = now
                    self._tick(now)
        finally:
            await self.shutdown(sockets)

    def _tick(self, now: float) -> None:
        self.server_state.update(time.time(), now)
        for conn in list(self.server_state.connections):
            conn.timed_out(now)

    async def shutdown(self, sockets: list[socket.socket]) -> None:
        for server in self.servers:
            server.close()
        for sock in sockets:
            sock.close()
        state = self.server_state
        for conn in list(state.connections):
            conn.shutdown()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.limits.shutdown_timeout
        while (state.connections or state.tasks) and loop.time() < deadline:
            await asyncio.sleep(0.05)
        if state.tasks:
            log.warning("%d request(s) still running at shutdown: cancelled", len(state.tasks))
            for task in list(state.tasks):
                task.cancel()
            await asyncio.gather(*state.tasks, return_exceptions=True)
            state.tasks.clear()
        for conn in list(state.connections):
            conn.close()
        for server in self.servers:
            await server.wait_closed()
