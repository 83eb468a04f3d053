"""A lean HTTP/1.1 client: keep-alive connections per origin, one socket write per request.

The upstream call is most of what a proxied request costs. aiohttp took about half of naftiko's
time per request in the benchmark (bench/README.md); this client does only what an upstream
call needs (httptools parses, bodies stay bytes), and REST throughput roughly doubled with it.
Connections whose answer is complete go straight back to the pool, so a slow reader of a
buffered body never holds one; a streamed body is read with flow control (pause/resume).
"""

from __future__ import annotations

import asyncio
import os
import socket
import ssl
import zlib
from collections import deque
from typing import AsyncIterator, Callable

import httptools

HIGH_WATER = 256 * 1024  # bytes buffered before reading from the socket pauses
IDLE_SECONDS = 15.0  # an idle keep-alive connection older than this is not reused
IDEMPOTENT = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE", "TRACE"})
Origin = tuple[str, str, int]  # scheme, host, port


class HTTPFailure(Exception):
    """The exchange failed. `reason` says why, without the URL (its query may hold a key)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class ConnectFailure(HTTPFailure):
    """No connection could be opened."""


class ReadTimeout(HTTPFailure):
    """The upstream went quiet for longer than the timeout."""


class _Decoder:
    """gzip or deflate (zlib-wrapped or raw) content decoding."""

    def __init__(self, encoding: str) -> None:
        self._gzip = encoding in ("gzip", "x-gzip")
        self._inflate = zlib.decompressobj(47 if self._gzip else 15)
        self._started = False

    def feed(self, data: bytes) -> bytes:
        try:
            out = self._inflate.decompress(data)
        except zlib.error:
            if self._gzip or self._started:
                raise HTTPFailure("the response body is not valid compressed data") from None
            self._inflate = zlib.decompressobj(-15)  # "deflate" sent without its zlib header
            return self.feed(data)
        self._started = True
        return out

    def flush(self) -> bytes:
        return self._inflate.flush()


class Response:
    """An answer whose headers have arrived; its body arrives through `read` or `chunks`."""

    __slots__ = ("status", "headers", "_connection", "_head", "_chunks", "_buffered", "complete", "_error",
                 "_waiter", "_decoder", "_timeout", "_loop", "_pausable", "until_close")

    def __init__(self, connection: "_Connection", head: bool, timeout: float) -> None:
        self.status = 0
        self.headers: list[tuple[str, str]] = []  # names in lower case
        self._connection = connection
        self._head = head
        self._chunks: deque[bytes] = deque()
        self._buffered = 0
        self.complete = False
        self._error: HTTPFailure | None = None
        self._waiter: asyncio.Future[None] | None = None
        self._decoder: _Decoder | None = None
        self._timeout = timeout
        self._loop = connection.loop
        self._pausable = True
        self.until_close = False

    def header(self, name: str) -> str | None:
        name = name.lower()
        for key, value in self.headers:
            if key == name:
                return value
        return None

    # --- fed by the connection -------------------------------------------------------------

    def _headers_done(self, status: int) -> None:
        self.status = status
        self.until_close = self.header("content-length") is None and self.header("transfer-encoding") is None
        encoding = (self.header("content-encoding") or "").strip().lower()
        if encoding in ("gzip", "x-gzip", "deflate"):
            self._decoder = _Decoder(encoding)
            self.headers = [(k, v) for k, v in self.headers if k not in ("content-encoding", "content-length")]
        self._wake()

    def _feed(self, data: bytes) -> None:
        if self._decoder is not None:
            try:
                data = self._decoder.feed(data)
            except HTTPFailure as exc:
                self._connection.abort(exc)
                return
        if data:
            self._chunks.append(data)
            self._buffered += len(data)
            if self._buffered > HIGH_WATER and self._pausable:
                self._connection.pause()
        self._wake()

    def _finish(self) -> None:
        if self._decoder is not None:
            tail = self._decoder.flush()
            if tail:
                self._chunks.append(tail)
        self.complete = True
        self._wake()

    def _fail(self, error: HTTPFailure) -> None:
        if not self.complete:
            self._error = error
            self._wake()

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    # --- read by the caller ----------------------------------------------------------------

    async def _wait(self) -> None:
        """Until the connection reports progress, or the read timeout passes."""
        waiter = self._waiter = self._loop.create_future()
        handle = self._loop.call_later(self._timeout, self._expire, waiter)
        try:
            await waiter
        finally:
            handle.cancel()
            self._waiter = None

    def _expire(self, waiter: asyncio.Future[None]) -> None:
        if not waiter.done():
            self._error = ReadTimeout("no answer within the timeout")
            self._connection.abort(self._error)

    async def _until_headers(self) -> None:
        while not self.status and self._error is None:
            await self._wait()
        if self._error is not None:
            raise self._error

    async def read(self) -> bytes:
        self._pausable = False
        if self._connection.response is self:
            self._connection.resume(0)
        while not self.complete:
            if self._error is not None:
                raise self._error
            await self._wait()
        data = b"".join(self._chunks)
        self._chunks.clear()
        return data

    async def chunks(self) -> AsyncIterator[bytes]:
        try:
            while True:
                while self._chunks:
                    data = self._chunks.popleft()
                    self._buffered -= len(data)
                    if self._connection.response is self:
                        self._connection.resume(self._buffered)
                    yield data
                if self.complete:
                    return
                if self._error is not None:
                    raise self._error
                await self._wait()
        finally:
            self.close()

    def close(self) -> None:
        """Drop the rest of the body; an unfinished answer costs its connection."""
        self._chunks.clear()
        if not self.complete:
            self._connection.abort(HTTPFailure("the response was abandoned"))


class _Connection(asyncio.Protocol):
    """One keep-alive connection; it carries one exchange at a time."""

    def __init__(self, pool: "Pool", origin: Origin) -> None:
        self.pool, self.origin = pool, origin
        self.loop = asyncio.get_running_loop()
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.response: Response | None = None
        self.closed = False
        self.paused = False
        self.stalled: asyncio.TimerHandle | None = None
        self.idle_since = 0.0
        self.received = False

    # asyncio.Protocol
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.received = True
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self.abort(HTTPFailure("the server switched protocols"))
        except httptools.HttpParserError as exc:
            self.abort(HTTPFailure(f"malformed response ({exc})"))

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        response = self.response
        if response is not None and response.status and response.until_close:
            response._finish()  # a body without length or chunks ends when the connection does
        elif response is not None and not response.complete:
            response._fail(HTTPFailure("the server closed the connection"))
        self.pool._lost(self)

    # httptools callbacks
    def on_header(self, name: bytes, value: bytes) -> None:
        assert self.response is not None
        self.response.headers.append((name.lower().decode("latin-1"), value.decode("latin-1")))

    def on_headers_complete(self) -> None:
        response = self.response
        assert response is not None
        status = self.parser.get_status_code()
        if status < 200:  # an interim answer (103 Early Hints): the real one follows
            response.headers.clear()
            return
        response._headers_done(status)
        if response._head:
            self._complete(reuse=False)  # no body follows; the parser cannot know that

    def on_body(self, body: bytes) -> None:
        if self.response is not None:
            self.response._feed(body)

    def on_message_complete(self) -> None:
        if self.response is not None and self.response.status:
            self._complete(reuse=self.parser.should_keep_alive())

    # used by Response and Pool
    def _complete(self, reuse: bool) -> None:
        response, self.response = self.response, None
        assert response is not None
        response._finish()
        if reuse and not self.closed:
            self._unpause()  # the answer is whole in its buffer; the next one must be readable
            self.pool._release(self)
        else:
            self.abort(None)

    def send(self, data: bytes, response: Response) -> None:
        assert self.transport is not None
        self.response = response
        self.received = False
        self.transport.write(data)

    def pause(self) -> None:
        if not self.paused and self.transport is not None:
            self.paused = True
            self.transport.pause_reading()
            # A body nobody reads (its caller went away) must not hold the connection forever.
            self.stalled = self.loop.call_later(self.pool.read_timeout, self.abort,
                                                ReadTimeout("the body was not read within the timeout"))

    def resume(self, buffered: int) -> None:
        if buffered < HIGH_WATER // 4:
            self._unpause()

    def _unpause(self) -> None:
        if self.paused and not self.closed and self.transport is not None:
            self.paused = False
            if self.stalled is not None:
                self.stalled.cancel()
                self.stalled = None
            self.transport.resume_reading()

    def abort(self, error: HTTPFailure | None) -> None:
        if self.stalled is not None:
            self.stalled.cancel()
        response, self.response = self.response, None
        if response is not None and error is not None:
            response._fail(error)
        if not self.closed:
            self.closed = True
            if self.transport is not None:
                self.transport.close()
            self.pool._lost(self)


class Pool:
    """Keep-alive connections to any number of origins, at most `limit` exchanges at once."""

    def __init__(self, *, connect_timeout: float, read_timeout: float, limit: int = 256) -> None:
        self.connect_timeout = connect_timeout
        self.read_timeout = read_timeout
        self._idle: dict[Origin, list[_Connection]] = {}
        self._slots = asyncio.Semaphore(limit)
        self._busy: set[_Connection] = set()
        self._ssl: ssl.SSLContext | None = None

    async def request(self, method: str, origin: Origin, host_header: str, target: str,
                      headers: tuple[tuple[str, str], ...] | list[tuple[str, str]], body: bytes | None) -> Response:
        """Send one request; the answer's headers are in, its body is still to read."""
        data = _encode(method, host_header, target, headers, body)
        connection, reused = await self._connection(origin)
        try:
            try:
                response = self._send(connection, method, data)
                await response._until_headers()
            except HTTPFailure as failure:
                if isinstance(failure, ReadTimeout) or not (reused and not connection.received and method in IDEMPOTENT):
                    raise
                # The server closed an idle connection just as it was reused: one fresh attempt.
                connection, _ = await self._connection(origin, fresh=True)
                response = self._send(connection, method, data)
                await response._until_headers()
            return response
        except BaseException as exc:
            connection.abort(exc if isinstance(exc, HTTPFailure) else HTTPFailure("the request was cancelled"))
            raise

    def _send(self, connection: _Connection, method: str, data: bytes) -> Response:
        """Write the request; its answer arrives into the Response returned."""
        response = Response(connection, method == "HEAD", self.read_timeout)
        connection.send(data, response)
        return response

    async def _connection(self, origin: Origin, fresh: bool = False) -> tuple[_Connection, bool]:
        """An idle connection to the origin, or a new one; it holds one of the pool's slots."""
        await self._slots.acquire()
        try:
            idle = None if fresh else self._idle.get(origin)
            while idle:
                connection = idle.pop()
                if not connection.closed and connection.loop.time() - connection.idle_since < IDLE_SECONDS:
                    self._busy.add(connection)
                    return connection, True
                connection.abort(None)
            connection = await self._open(origin)
        except BaseException:
            self._slots.release()
            raise
        self._busy.add(connection)
        return connection, False

    async def _open(self, origin: Origin) -> _Connection:
        scheme, host, port = origin
        loop = asyncio.get_running_loop()
        context = self._context() if scheme == "https" else None
        try:
            _, connection = await asyncio.wait_for(
                loop.create_connection(lambda: _Connection(self, origin), host, port, ssl=context,
                                       server_hostname=host if context else None),
                self.connect_timeout)
        except asyncio.TimeoutError:
            raise ReadTimeout("no connection within the timeout") from None
        except ssl.SSLError as exc:
            raise ConnectFailure(f"TLS failed ({exc.reason or exc})") from None
        except socket.gaierror as exc:
            raise ConnectFailure(exc.strerror or str(exc)) from None
        except OSError as exc:
            raise ConnectFailure(os.strerror(exc.errno) if exc.errno else str(exc)) from None
        return connection

    def _context(self) -> ssl.SSLContext:
        if self._ssl is None:
            self._ssl = ssl.create_default_context()
        return self._ssl

    def _release(self, connection: _Connection) -> None:
        if connection in self._busy:
            self._busy.discard(connection)
            self._slots.release()
        connection.idle_since = connection.loop.time()
        self._idle.setdefault(connection.origin, []).append(connection)

    def _lost(self, connection: _Connection) -> None:
        if connection in self._busy:
            self._busy.discard(connection)
            self._slots.release()

    async def close(self) -> None:
        for connections in self._idle.values():
            for connection in connections:
                connection.abort(None)
        self._idle.clear()
        for connection in list(self._busy):
            connection.abort(HTTPFailure("the client was closed"))


def _encode(method: str, host_header: str, target: str, headers: tuple[tuple[str, str], ...] | list[tuple[str, str]],
            body: bytes | None) -> bytes:
    """The request head and body as one buffer; a line break inside a header is refused."""
    lines = [f"{method} {target} HTTP/1.1", f"Host: {host_header}"]
    seen = set()
    for name, value in headers:
        lines.append(f"{name}: {value}")
        seen.add(name.lower())
    if "accept" not in seen:
        lines.append("Accept: */*")
    if "accept-encoding" not in seen:
        lines.append("Accept-Encoding: gzip, deflate")
    if "user-agent" not in seen:
        lines.append("User-Agent: naftiko")
    if body is not None or method in ("POST", "PUT", "PATCH"):
        lines.append(f"Content-Length: {len(body) if body else 0}")
    lines.append("\r\n")
    head = "\r\n".join(lines)
    if head.count("\n") != len(lines) or head.count("\r") != len(lines):
        raise ValueError("a request header contains a line break")
    data = head.encode("utf-8")
    return data + body if body else data
