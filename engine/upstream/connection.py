"""A lean HTTP/1.1 client: keep-alive connections per origin, one socket write per request.

The upstream call is most of what a proxied request costs. aiohttp took about half of naftiko's
time per request in the benchmark (bench/README.md); this client does only what an upstream
call needs (httptools parses, bodies stay bytes), and REST throughput roughly doubled with it.
Connections whose answer is complete go straight back to the pool, so a slow reader of a
buffered body never holds one; a streamed body is read with flow control (pause/resume).

Every body is bounded (`engine.limits.Limits`): a buffered one by its decoded size, a streamed
compressed one by what it inflates to and by its ratio. Decompression runs in steps of at most
`STEP` bytes, so a small bomb chunk can neither allocate much nor hold the event loop, and a
paused stream keeps its input compressed until the reader wants more. Requests may go through
an HTTP proxy (`engine.proxy`): absolute-form targets for http, a CONNECT tunnel for https.
"""

from __future__ import annotations

import asyncio
import os
import socket
import ssl
import zlib
from collections import deque
from http import HTTPStatus
from typing import TYPE_CHECKING
from collections.abc import AsyncIterator, Mapping, Sequence

import httptools

from ..errors import NaftikoError
from ..limits import Limits, describe

if TYPE_CHECKING:
    from .proxy import Proxies, Proxy

HIGH_WATER = 256 * 1024  # bytes buffered before reading from the socket pauses
IDLE_SECONDS = 15.0  # an idle keep-alive connection older than this is not reused
IDEMPOTENT = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE", "TRACE"})
STEP = 64 * 1024  # the most one decompression step produces
BUDGET = 1024 * 1024  # the most a whole read inflates before it lets the event loop run others
RATIO_FLOOR = 1024 * 1024  # the compression ratio is checked once this much has been inflated
UNBOUNDED = 1 << 62  # a ratio no stream reaches: buffered bodies are bounded by size alone
TUNNEL_HEAD = 16 * 1024  # the largest answer head a proxy may give to CONNECT
ROUTES = 1024  # proxy decisions remembered per pool (one per origin)
Origin = tuple[str, str, int]  # scheme, host, port


class HTTPFailure(Exception):
    """The exchange failed. `reason` says why, without the URL (its query may hold a key)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class ConnectFailure(HTTPFailure):
    """No connection could be opened."""


class ProxyFailure(ConnectFailure):
    """The proxy could not be reached, refused, or is not usable; `reason` is a sentence naming it."""


class ReadTimeout(HTTPFailure):
    """The upstream went quiet for longer than the timeout."""


class BodyTooLarge(HTTPFailure):
    """The body passed a limit; `limit` is the `Limits` field that stopped it."""

    def __init__(self, reason: str, limit: str) -> None:
        super().__init__(reason)
        self.limit = limit


class _Decoder:
    """gzip or deflate (zlib-wrapped or raw) decoding in bounded steps, checked against its limits.

    Input waits in `_input` (zlib's unconsumed tail) until `step` is called, so the reader decides
    how much is inflated; `produced` and `consumed` count decoded and compressed bytes.
    """

    __slots__ = ("_gzip", "_inflate", "_started", "_input", "_more", "produced", "consumed", "limit",
                 "limit_name", "ratio")

    def __init__(self, encoding: str, limits: Limits) -> None:
        self._gzip = encoding in ("gzip", "x-gzip")
        self._inflate = zlib.decompressobj(47 if self._gzip else 15)
        self._started = False
        self._input = b""
        self._more = False  # the last step filled its output: zlib may hold more without new input
        self.produced = 0
        self.consumed = 0
        self.limit, self.limit_name = limits.decompressed_stream, "decompressed_stream"
        self.ratio = limits.compression_ratio

    @property
    def pending(self) -> bool:
        return bool(self._input) or self._more

    def push(self, data: bytes) -> None:
        self._input = self._input + data if self._input else data

    def step(self) -> bytes:
        """At most STEP decoded bytes of the pending input; BodyTooLarge past a limit."""
        data = self._input
        try:
            out = self._inflate.decompress(data, STEP)
        except zlib.error:
            if self._gzip or self._started:
                raise HTTPFailure("the response body is not valid compressed data") from None
            self._started = True  # one retry as raw deflate ("deflate" sent without its zlib header)
            self._inflate = zlib.decompressobj(-15)
            return self.step()
        self._started = True
        inflate = self._inflate
        self._input = inflate.unconsumed_tail
        self._more = len(out) == STEP and not inflate.eof
        if inflate.eof:
            self._input = b""  # anything after the end of the stream is not body
        self.consumed += len(data) - len(self._input)
        produced = self.produced = self.produced + len(out)
        if produced > self.limit:
            raise BodyTooLarge(f"answered more than {describe(self.limit)} once decompressed", self.limit_name)
        if produced > RATIO_FLOOR and produced > self.ratio * self.consumed:
            raise BodyTooLarge(f"answered compressed data that inflates more than {self.ratio} times",
                               "compression_ratio")
        return out


class Response:
    """An answer whose headers have arrived; its body arrives through `read` or `chunks`."""

    __slots__ = ("status", "headers", "_connection", "_head", "_chunks", "_buffered", "complete", "_error",
                 "_waiter", "_decoder", "_timeout", "_loop", "_pausable", "until_close", "_limits", "_mark",
                 "_length")

    def __init__(self, connection: _Connection, head: bool, timeout: float, limits: Limits) -> None:
        self.status = 0
        self.headers: list[tuple[str, str]] = []  # names in lower case
        self._connection = connection
        self._head = head
        self._chunks: deque[bytes] = deque()
        self._buffered = 0
        self.complete = False  # the whole answer has arrived (a paused stream may still hold compressed input)
        self._error: HTTPFailure | None = None
        self._waiter: asyncio.Future[None] | None = None
        self._decoder: _Decoder | None = None
        self._timeout = timeout
        self._loop = connection.loop
        self._pausable = True
        self.until_close = False
        self._limits = limits
        self._mark = HIGH_WATER  # past this many buffered bytes: pause (streamed) or fail (read whole)
        self._length: str | None = None

    def header(self, name: str) -> str | None:
        name = name.lower()
        for key, value in self.headers:
            if key == name:
                return value
        return None

    # --- fed by the connection -------------------------------------------------------------

    def _headers_done(self, status: int) -> None:
        self.status = status
        length = self.header("content-length")
        self.until_close = length is None and self.header("transfer-encoding") is None
        self._length = None if self._head or status == 304 else length  # no body follows those
        encoding = (self.header("content-encoding") or "").strip().lower()
        if encoding in ("gzip", "x-gzip", "deflate"):
            self._decoder = _Decoder(encoding, self._limits)
            self.headers = [(k, v) for k, v in self.headers if k not in ("content-encoding", "content-length")]
        self._wake()

    def _feed(self, data: bytes) -> None:
        if self._decoder is not None:
            self._decoder.push(data)
            self._inflate()
            return
        if data:
            self._chunks.append(data)
            self._buffered += len(data)
            if self._buffered > self._mark:
                self._over()
        self._wake()

    def _over(self) -> None:
        """More is buffered than the mark: a stream pauses its socket, a whole read fails."""
        if self._pausable:
            self._connection.pause()
        else:
            limit = self._limits.upstream_body
            self._abort(BodyTooLarge(f"answered more than {describe(limit)}", "upstream_body"))

    def _inflate(self) -> None:
        """Decode pending input in bounded steps: a stream up to the high-water mark, a whole read one
        budget at a time (`read` yields to the loop between budgets); the rest waits compressed, with
        the socket paused."""
        decoder = self._decoder
        assert decoder is not None
        ceiling = HIGH_WATER if self._pausable else self._buffered + BUDGET
        try:
            while decoder.pending and self._buffered <= ceiling:
                out = decoder.step()
                if out:
                    self._chunks.append(out)
                    self._buffered += len(out)
        except HTTPFailure as exc:
            self._abort(exc)
            return
        if (decoder.pending or (self._pausable and self._buffered > HIGH_WATER)) \
                and self._connection.response is self:
            self._connection.pause()
        self._wake()

    def _refill(self) -> None:
        """The reader wants more of a compressed stream: inflate what waits (a paused socket is still busy)."""
        self._inflate()
        if self._connection.response is self:
            self._connection.touch()

    def _finish(self) -> None:
        self.complete = True
        self._wake()

    def _fail(self, error: HTTPFailure) -> None:
        if not self.complete:
            self._error = error
            self._wake()

    def _abort(self, error: HTTPFailure) -> None:
        """Fail this answer and free what it holds; an unfinished one costs its connection."""
        self._chunks.clear()
        self._buffered = 0
        if self._connection.response is self:
            self._connection.abort(error)
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
        """The whole body, at most `upstream_body` bytes once decoded; BodyTooLarge as soon as it is past."""
        self._pausable = False
        limit = self._mark = self._limits.upstream_body
        decoder = self._decoder
        if decoder is not None:
            decoder.limit, decoder.limit_name, decoder.ratio = limit, "upstream_body", UNBOUNDED
            if decoder.produced > limit:
                self._abort(BodyTooLarge(f"answered more than {describe(limit)} once decompressed", "upstream_body"))
        elif self._buffered > limit or (self._length is not None and _declared(self._length) > limit):
            self._abort(BodyTooLarge(f"answered more than {describe(limit)}", "upstream_body"))
        if self._connection.response is self:
            self._connection.resume(0)
        try:
            while True:
                if self._error is not None:
                    raise self._error
                if decoder is not None and decoder.pending:
                    self._refill()  # one budget, then the loop runs others: inflating 32 MiB takes a while
                    if not decoder.pending and self._connection.response is self:
                        self._connection.resume(0)
                    await asyncio.sleep(0)
                elif self.complete:
                    break
                else:
                    await self._wait()
        except asyncio.CancelledError:
            self.close()  # the caller went away: the rest of the body costs the connection, at once
            raise
        data = b"".join(self._chunks)
        self._chunks.clear()
        return data

    async def chunks(self) -> AsyncIterator[bytes]:
        """The body as it arrives; a compressed one is inflated as it is read, within its limits."""
        try:
            while True:
                while self._chunks:
                    data = self._chunks.popleft()
                    self._buffered -= len(data)
                    if self._decoder is not None and self._buffered < HIGH_WATER // 4 and self._decoder.pending:
                        self._refill()
                    if self._connection.response is self:
                        self._connection.resume(self._buffered)
                    yield data
                if self._error is not None:
                    raise self._error
                if self._decoder is not None and self._decoder.pending:
                    self._refill()
                    continue
                if self.complete:
                    return
                await self._wait()
        finally:
            self.close()

    def close(self) -> None:
        """Drop the rest of the body; an unfinished answer costs its connection."""
        self._chunks.clear()
        if not self.complete:
            self._connection.abort(HTTPFailure("the response was abandoned"))


def _declared(length: str) -> int:
    try:
        return int(length)
    except ValueError:
        return 0  # httptools refuses a malformed Content-Length before we see it


class _Connection(asyncio.Protocol):
    """One keep-alive connection; it carries one exchange at a time."""

    def __init__(self, pool: Pool, origin: Origin) -> None:
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

    def touch(self) -> None:
        """The reader made progress on what was buffered while paused: the stall timer starts again."""
        if self.stalled is not None:
            self.stalled.cancel()
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
    """Keep-alive connections to any number of origins, at most `limit` exchanges at once.

    `proxies` (from `engine.proxy`) sends requests through a proxy; connections stay keyed by the
    upstream origin, which fixes the proxy too. `environ` may name extra CA certificates
    (`SSL_CERT_FILE`, `SSL_CERT_DIR`) beyond what OpenSSL reads from the process environment.
    """

    def __init__(self, *, connect_timeout: float, read_timeout: float, limit: int = 256,
                 limits: Limits | None = None, proxies: Proxies | None = None,
                 environ: Mapping[str, str] | None = None) -> None:
        self.connect_timeout = connect_timeout
        self.read_timeout = read_timeout
        self.limits = limits or Limits()
        self._idle: dict[Origin, list[_Connection]] = {}
        self._slots = asyncio.Semaphore(limit)
        self._busy: set[_Connection] = set()
        self._ssl: ssl.SSLContext | None = None
        self._proxies = proxies
        self._routes: dict[Origin, Proxy | None] = {}
        self._environ = environ

    async def request(self, method: str, origin: Origin, host_header: str, target: str,
                      headers: Sequence[tuple[str, str]], body: bytes | None) -> Response:
        """Send one request; the answer's headers are in, its body is still to read."""
        proxy = None if self._proxies is None else self._route(origin)
        if proxy is not None and origin[0] == "http":  # forwarded by the proxy: absolute-form target
            target = f"http://{host_header}{target}"
            if proxy.authorization:
                headers = (*headers, ("Proxy-Authorization", proxy.authorization))
        data = _encode(method, host_header, target, headers, body)
        connection, reused = await self._connection(origin, proxy)
        try:
            try:
                response = self._send(connection, method, data)
                await response._until_headers()
            except HTTPFailure as failure:
                retry = reused and not connection.received and method in IDEMPOTENT
                if isinstance(failure, ReadTimeout) or not retry:
                    raise
                # The server closed an idle connection just as it was reused: one fresh attempt.
                connection, _ = await self._connection(origin, proxy, fresh=True)
                response = self._send(connection, method, data)
                await response._until_headers()
            if proxy is not None and response.status == 407 and origin[0] == "http":
                raise ProxyFailure(f"the proxy {proxy} (from {proxy.source}) refused the request: {_status(407)}")
            return response
        except BaseException as exc:
            connection.abort(exc if isinstance(exc, HTTPFailure) else HTTPFailure("the request was cancelled"))
            raise

    def _send(self, connection: _Connection, method: str, data: bytes) -> Response:
        """Write the request; its answer arrives into the Response returned."""
        response = Response(connection, method == "HEAD", self.read_timeout, self.limits)
        connection.send(data, response)
        return response

    def _route(self, origin: Origin) -> Proxy | None:
        """The proxy of an origin, decided once per origin."""
        try:
            return self._routes[origin]
        except KeyError:
            pass
        assert self._proxies is not None
        try:
            proxy = self._proxies.select(origin)
        except NaftikoError as exc:
            raise ProxyFailure(str(exc)) from None
        if len(self._routes) >= ROUTES:
            self._routes.clear()
        self._routes[origin] = proxy
        return proxy

    async def _connection(self, origin: Origin, proxy: Proxy | None,
                          fresh: bool = False) -> tuple[_Connection, bool]:
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
            connection = await self._open(origin, proxy)
        except BaseException:
            self._slots.release()
            raise
        self._busy.add(connection)
        return connection, False

    async def _open(self, origin: Origin, proxy: Proxy | None) -> _Connection:
        try:
            opening = self._direct(origin) if proxy is None else self._through(proxy, origin)
            return await asyncio.wait_for(opening, self.connect_timeout)
        except TimeoutError:
            raise ReadTimeout("no connection within the timeout") from None
        except ssl.SSLError as exc:
            raise ConnectFailure(f"TLS failed ({exc.reason or exc})") from None
        except OSError as exc:
            raise ConnectFailure(_why(exc)) from None

    async def _direct(self, origin: Origin) -> _Connection:
        scheme, host, port = origin
        context = self._context() if scheme == "https" else None
        _, connection = await asyncio.get_running_loop().create_connection(
            lambda: _Connection(self, origin), host, port, ssl=context, server_hostname=host if context else None)
        return connection

    async def _through(self, proxy: Proxy, origin: Origin) -> _Connection:
        """A connection to the origin through the proxy: the proxy's own for http, a CONNECT tunnel for https."""
        scheme, host, port = origin
        loop = asyncio.get_running_loop()
        context = self._context() if proxy.scheme == "https" else None
        label = f"the proxy {proxy} (from {proxy.source})"
        try:
            if scheme == "http":
                _, connection = await loop.create_connection(
                    lambda: _Connection(self, origin), proxy.host, proxy.port, ssl=context,
                    server_hostname=proxy.host if context else None)
                return connection
            transport, tunnel = await loop.create_connection(
                lambda: _Tunnel(label), proxy.host, proxy.port, ssl=context,
                server_hostname=proxy.host if context else None)
        except ssl.SSLError as exc:
            raise ProxyFailure(f"TLS with {label} failed ({exc.reason or exc})") from None
        except OSError as exc:
            raise ProxyFailure(f"cannot connect to {label}: {_why(exc)}") from None
        try:
            authority = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
            status = await tunnel.open(authority, proxy.authorization)
            if not 200 <= status < 300:
                raise ProxyFailure(f"{label} refused the tunnel to {authority}: {_status(status)}")
            connection = _Connection(self, origin)
            secure = await loop.start_tls(transport, connection, self._context(), server_hostname=host)
        except BaseException:
            transport.close()
            raise
        if secure is None:
            raise ConnectFailure("the tunnel closed during the TLS handshake")
        connection.connection_made(secure)
        return connection

    def _context(self) -> ssl.SSLContext:
        """One TLS context per pool: OpenSSL's defaults (which read SSL_CERT_FILE and SSL_CERT_DIR from the
        process environment) plus the CA files the runtime's own environment names, if it differs."""
        if self._ssl is None:
            context = ssl.create_default_context()
            extra = {name: value for name in ("SSL_CERT_FILE", "SSL_CERT_DIR")
                     if (value := (self._environ or {}).get(name)) and value != os.environ.get(name)}
            if extra:
                try:
                    context.load_verify_locations(cafile=extra.get("SSL_CERT_FILE"), capath=extra.get("SSL_CERT_DIR"))
                except (OSError, ssl.SSLError) as exc:
                    where = " and ".join(f"{k}={v}" for k, v in extra.items())
                    raise ConnectFailure(f"cannot load the CA certificates of {where} ({exc})") from None
            self._ssl = context
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


class _Tunnel(asyncio.Protocol):
    """The CONNECT exchange with a proxy, before the connection carries TLS to the origin."""

    def __init__(self, label: str) -> None:
        self.label = label
        self.transport: asyncio.Transport | None = None
        self.head = bytearray()
        self.answer: asyncio.Future[int] = asyncio.get_running_loop().create_future()

    async def open(self, authority: str, authorization: str | None) -> int:
        """Ask for the tunnel; the proxy's status."""
        assert self.transport is not None
        lines = [f"CONNECT {authority} HTTP/1.1", f"Host: {authority}", "User-Agent: naftiko"]
        if authorization:
            lines.append(f"Proxy-Authorization: {authorization}")
        self.transport.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
        return await self.answer

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        if self.answer.done():
            return
        self.head += data
        end = self.head.find(b"\r\n\r\n")
        if end < 0:
            if len(self.head) > TUNNEL_HEAD:
                self._fail("answered CONNECT with an oversized head")
            return
        status_line = bytes(self.head[:self.head.find(b"\r\n")])
        parts = status_line.split(None, 2)
        if len(parts) < 2 or not parts[0].startswith(b"HTTP/1.") or not parts[1].isdigit():
            return self._fail("answered CONNECT with something that is not HTTP")
        status = int(parts[1])
        if 200 <= status < 300 and end + 4 != len(self.head):
            return self._fail("sent data before the tunnel was open")
        self.answer.set_result(status)

    def connection_lost(self, exc: Exception | None) -> None:
        self._fail("closed the connection during CONNECT")

    def _fail(self, what: str) -> None:
        if not self.answer.done():
            self.answer.set_exception(ProxyFailure(f"{self.label} {what}"))


def _status(status: int) -> str:
    try:
        return f"HTTP {status} {HTTPStatus(status).phrase}"
    except ValueError:
        return f"HTTP {status}"


def _why(exc: OSError) -> str:
    if isinstance(exc, socket.gaierror):
        return exc.strerror or str(exc)
    return os.strerror(exc.errno) if exc.errno else str(exc)


def _encode(method: str, host_header: str, target: str, headers: Sequence[tuple[str, str]],
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
