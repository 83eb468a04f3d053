"""One keep-alive HTTP/1.1 connection and the answer it carries, one exchange at a time.

`Connection` is the asyncio protocol: httptools parses what arrives and its callbacks feed the
current `Response`, which the caller reads whole (`read`) or as it arrives (`chunks`). A connection
whose answer is complete goes straight back to its pool, so a slow reader of a buffered body never
holds one; a streamed body is read with flow control (the socket pauses past `HIGH_WATER`).

Every body is bounded (`engine.limits.Limits`): a buffered one by its decoded size, a streamed
compressed one by what it inflates to and by its ratio (`engine.upstream.decoders`).
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import Protocol
from collections.abc import AsyncIterator

import httptools

from ..limits import Limits, describe
from .decoders import Decoder
from .failures import BodyTooLarge, HTTPFailure, ReadTimeout
from .request import Origin

HIGH_WATER = 256 * 1024  # bytes buffered before reading from the socket pauses
BUDGET = 1024 * 1024  # the most a whole read inflates before it lets the event loop run others
UNBOUNDED = 1 << 62  # a ratio no stream reaches: buffered bodies are bounded by size alone


class Response:
    """An answer whose headers have arrived; its body arrives through `read` or `chunks`."""

    __slots__ = (
        "status",
        "headers",
        "_connection",
        "_head",
        "_chunks",
        "_buffered",
        "complete",
        "_error",
        "_waiter",
        "_deadline",
        "_decoder",
        "_timeout",
        "_named",
        "_loop",
        "_pausable",
        "until_close",
        "_limits",
        "_mark",
        "_length",
    )

    def __init__(self, connection: Connection, head: bool, timeout: float, limits: Limits) -> None:
        self.status = 0
        self.headers: list[tuple[str, str]] = []  # names in lower case
        self._connection = connection
        self._head = head
        self._chunks: deque[bytes] = deque()
        self._buffered = 0
        self.complete = False  # the whole answer has arrived (a paused stream may still hold compressed input)
        self._error: HTTPFailure | None = None
        self._waiter: asyncio.Future[None] | None = None
        self._deadline = 0.0  # when the current wait times out (the connection's timer checks it)
        self._named: dict[str, str] = {}  # the first value of each header, once the headers are in
        self._decoder: Decoder | None = None
        self._timeout = timeout
        self._loop = connection.loop
        self._pausable = True
        self.until_close = False
        self._limits = limits
        self._mark = HIGH_WATER  # past this many buffered bytes: pause (streamed) or fail (read whole)
        self._length: str | None = None

    def header(self, name: str) -> str | None:
        return self._named.get(name.lower())

    # --- fed by the connection -------------------------------------------------------------

    def _headers_done(self, status: int) -> None:
        self.status = status
        self._named = dict(reversed(self.headers))
        length = self.header("content-length")
        self.until_close = length is None and self.header("transfer-encoding") is None
        self._length = None if self._head or status == 304 else length  # no body follows those
        encoding = (self.header("content-encoding") or "").strip().lower()
        if encoding in ("gzip", "x-gzip", "deflate"):
            self._decoder = Decoder(encoding, self._limits)
            self.headers = [(k, v) for k, v in self.headers if k not in ("content-encoding", "content-length")]
            self._named.pop("content-encoding")
            self._named.pop("content-length", None)
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
        if (decoder.pending or (self._pausable and self._buffered > HIGH_WATER)) and self._connection.response is self:
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
        """Until the connection reports progress, or the read timeout passes (`Connection.watch`)."""
        waiter = self._waiter = self._loop.create_future()
        self._deadline = self._loop.time() + self._timeout
        if self._connection.response is self:
            self._connection.watch(self._deadline)
        try:
            await waiter
        finally:
            self._waiter = None

    def _expire(self) -> None:
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


class Keeper(Protocol):
    """What a connection needs of the pool that opened it (`engine.upstream.pool.Pool`)."""

    read_timeout: float

    def _release(self, connection: Connection) -> None: ...

    def _lost(self, connection: Connection) -> None: ...


class Connection(asyncio.Protocol):
    """One keep-alive connection; it carries one exchange at a time."""

    def __init__(self, pool: Keeper, origin: Origin) -> None:
        self.pool, self.origin = pool, origin
        self.loop = asyncio.get_running_loop()
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.response: Response | None = None
        self.closed = False
        self.paused = False
        self.stalled: asyncio.TimerHandle | None = None
        self.timer: asyncio.TimerHandle | None = None  # see `watch`
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

    def watch(self, deadline: float) -> None:
        """Time the current answer's wait out at `deadline`.

        One timer per connection, not one per wait: arming and cancelling a timer for every
        exchange costs more than the rest of the bookkeeping together. The timer stays armed
        across exchanges and, when it fires early, moves itself to the answer's deadline.
        """
        if self.timer is None or self.timer.when() > deadline:
            if self.timer is not None:
                self.timer.cancel()
            self.timer = self.loop.call_at(deadline, self._check)

    def _check(self) -> None:
        self.timer = None
        response = self.response
        if response is None or response._waiter is None or response._waiter.done():
            return  # nothing waits now; the next wait arms the timer again
        if response._deadline > self.loop.time():
            self.timer = self.loop.call_at(response._deadline, self._check)
        else:
            response._expire()

    def pause(self) -> None:
        if not self.paused and self.transport is not None:
            self.paused = True
            self.transport.pause_reading()
            # A body nobody reads (its caller went away) must not hold the connection forever.
            self.stalled = self.loop.call_later(
                self.pool.read_timeout, self.abort, ReadTimeout("the body was not read within the timeout")
            )

    def touch(self) -> None:
        """The reader made progress on what was buffered while paused: the stall timer starts again."""
        if self.stalled is not None:
            self.stalled.cancel()
            self.stalled = self.loop.call_later(
                self.pool.read_timeout, self.abort, ReadTimeout("the body was not read within the timeout")
            )

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
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        response, self.response = self.response, None
        if response is not None and error is not None:
            response._fail(error)
        if not self.closed:
            self.closed = True
            if self.transport is not None:
                self.transport.close()
            self.pool._lost(self)
