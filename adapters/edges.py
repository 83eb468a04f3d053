"""What the REST and MCP HTTP adapters share at their edge with the caller.

A bounded request body, the caller's early departure noticed (so the upstream call it waits on
is released, as nginx does), and a streamed response aborted without a traceback.
"""

from __future__ import annotations

import asyncio
from typing import Any
from collections.abc import Awaitable, Callable, MutableMapping

from ..engine import RequestTooLarge, describe

Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]

#: How long a call runs before a task starts watching its caller; detection takes at most twice this.
WATCH_AFTER = 0.1
#: The ASGI scope extension through which `naftiko serve` lets an app abort its response.
ABORT_EXTENSION = "naftiko.abort"


BodyTooLarge = RequestTooLarge
"""The request body is larger than the limit: `engine.errors.RequestTooLarge`, under its old name."""


class StatusSend:
    """An ASGI `send` that passes every message on and remembers the response status (for who records calls)."""

    __slots__ = ("send", "status")

    def __init__(self, send: Callable[[Message], Awaitable[None]], status: int = 0) -> None:
        self.send, self.status = send, status

    async def __call__(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self.status = message["status"]
        await self.send(message)


class Disconnected(Exception):
    """The caller went away before its request body was complete.

    Control flow at the edge, not an engine error: there is nobody left to answer.
    """


#: What a call answers when caller text holds a lone surrogate (JSON can escape one, UTF-8 cannot carry it).
UNENCODABLE = (
    "a value holds a lone surrogate (such as \\ud800), which UTF-8 cannot carry, so it cannot be sent upstream"
)


def too_large_message(limit: int) -> str:
    return (
        f"the request body is larger than the {describe(limit)} limit; raise it with"
        " --limit request-body=SIZE or NAFTIKO_MAX_REQUEST_BODY"
    )


async def read_body(receive: Receive, limit: int, declared: bytes | str | None) -> bytes:
    """The whole request body, refused before reading when its declared length is over `limit`,
    and as soon as the bytes that arrived pass it (a chunked body has no declared length)."""
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise RequestTooLarge(too_large_message(limit), limit=limit)
    message = await receive()
    if message["type"] == "http.disconnect":
        raise Disconnected
    body: bytes = message.get("body", b"")
    if not message.get("more_body", False):
        if len(body) > limit:
            raise RequestTooLarge(too_large_message(limit), limit=limit)
        return body
    chunks = [body]
    size = len(body)
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise Disconnected
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise RequestTooLarge(too_large_message(limit), limit=limit)
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


class DisconnectWatch:
    """Cancels a request's wait on an upstream when its caller disconnects.

    ASGI tells of a disconnect only through `receive`, so noticing one needs a task awaiting it.
    Most calls end within a millisecond, so none gets that task up front: a waiting call is an
    entry in a dict (its only cost on the hot path), a timer ticks every `after` seconds while
    any call waits, and a call that was already waiting at the previous tick gets its watching
    task. On `http.disconnect` that task cancels the call's task; the upstream pool aborts the
    connection on cancellation, and `gone()` tells the adapter why it was cancelled.
    """

    __slots__ = ("_after", "_waiting", "_seen", "_watchers", "_gone", "_ticker", "_loop")

    def __init__(self, after: float = WATCH_AFTER) -> None:
        self._after = after
        self._waiting: dict[asyncio.Task[Any], Receive] = {}
        self._seen: set[asyncio.Task[Any]] = set()  # those waiting at the previous tick
        self._watchers: dict[asyncio.Task[Any], asyncio.Task[None]] = {}
        self._gone: set[asyncio.Task[Any]] = set()
        self._ticker: asyncio.TimerHandle | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def enter(self, receive: Receive) -> asyncio.Task[Any] | None:
        """The current task starts waiting; pair with `leave` in a `finally`."""
        loop = self._loop
        task = asyncio.current_task(loop) if loop is not None else None  # with the loop given: a third of the cost
        if task is None:
            task, loop = self._bind()
            if task is None:
                return None
        self._waiting[task] = receive
        if self._ticker is None:
            self._ticker = loop.call_later(self._after, self._tick)  # type: ignore[union-attr]
        return task

    def leave(self, task: asyncio.Task[Any] | None) -> None:
        if task is not None:
            del self._waiting[task]
            if self._watchers:
                watcher = self._watchers.pop(task, None)
                if watcher is not None:
                    watcher.cancel()
            if self._gone:
                self._gone.discard(task)

    def gone(self, task: asyncio.Task[Any] | None) -> bool:
        """After a CancelledError: whether it was this watch's (the caller left) and nothing else's."""
        if task is None or task not in self._gone:
            return False
        self._gone.discard(task)
        return task.uncancel() == 0

    def _bind(self) -> tuple[asyncio.Task[Any] | None, asyncio.AbstractEventLoop]:
        """The running loop (first use, or an app reused on another loop, as tests do) and its task."""
        loop = asyncio.get_running_loop()
        if loop is not self._loop:
            self._loop, self._ticker = loop, None
            self._waiting.clear()
            self._seen.clear()
            self._watchers.clear()
            self._gone.clear()
        return asyncio.current_task(loop), loop

    def _tick(self) -> None:
        loop = asyncio.get_running_loop()
        seen, watchers = self._seen, self._watchers
        for task, receive in self._waiting.items():
            if task in seen and task not in watchers:  # waiting for at least `after` seconds
                watchers[task] = loop.create_task(self._watch(task, receive))
        self._seen = set(self._waiting)
        self._ticker = loop.call_later(self._after, self._tick) if self._waiting else None

    async def _watch(self, task: asyncio.Task[Any], receive: Receive) -> None:
        while (await receive())["type"] != "http.disconnect":
            pass  # the end of a body already read
        if task in self._waiting:
            self._watchers.pop(task, None)
            self._gone.add(task)
            task.cancel()


async def abort(scope: MutableMapping[str, Any], receive: Receive) -> None:
    """End a response that has started without its terminating chunk, so the caller sees it cut short.

    Under `naftiko serve` the connection is closed here and the server sees a disconnect (it logs
    nothing); another server, seeing the app return with its response unfinished, closes the
    connection itself.
    """
    hook = (scope.get("extensions") or {}).get(ABORT_EXTENSION)
    if hook is None:
        return
    hook["close"]()
    for _ in range(8):  # a body message or two may still be queued before the disconnect
        if (await receive())["type"] == "http.disconnect":
            return
