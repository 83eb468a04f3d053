"""MCP over stdio: newline-delimited JSON-RPC on stdin/stdout, both protocol eras.

stdout carries MCP messages only (compact JSON, one per line); logs go to stderr through
`logging`. The era is decided per message (`is_modern_message`): a legacy client's `initialize`
fixes the connection's negotiated version, a modern message carries its own in `_meta`.

Requests run concurrently, so a slow tool does not hold up a `tools/list`; responses may
therefore come out of order, as JSON-RPC allows. `notifications/cancelled` cancels an in-flight
request, which then gets no response (as the spec asks). On stdin EOF the server lets in-flight
requests finish for at most `grace_seconds`, then returns.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import os
import stat
import sys
import threading
from typing import Any, Protocol

from .backend import McpBackend, McpError
from .eras import DEFAULT_LEGACY_VERSION, is_modern_message
from .jsonrpc import decode_message, encode_message, error_response
from .protocol import McpProtocol

__all__ = ["serve_stdio"]

logger = logging.getLogger(__name__)

#: Longest accepted line by default (asyncio's 64 KiB is too small for real tool arguments);
#: `naftiko serve --stdio` passes the runtime's request-body limit instead.
LINE_LIMIT = 8 * 1024 * 1024


class LineWriter(Protocol):
    """What `serve_stdio` writes to: an `asyncio.StreamWriter` fits."""

    def write(self, data: bytes) -> Any: ...

    async def drain(self) -> None: ...


async def serve_stdio(
    backend: McpBackend,
    reader: asyncio.StreamReader | None = None,
    writer: LineWriter | None = None,
    *,
    page_size: int = 100,
    grace_seconds: float = 5.0,
    line_limit: int = LINE_LIMIT,
) -> None:
    """Serve `backend` until `reader` (default: stdin) reaches EOF.

    `writer` defaults to stdout. Both can be given to embed the server in an asyncio program
    or to test it without a process. `line_limit` bounds one message read from stdin (a given
    `reader` has its own limit); a longer line is skipped with a parse error.
    """
    if reader is None:
        reader = await _stdin_reader(line_limit)
    if writer is None:
        writer = await _stdout_writer()
    connection = _StdioConnection(McpProtocol(backend, page_size=page_size), writer)
    await connection.run(reader, grace_seconds)


class _StdioConnection:
    """One stdio client: its negotiated legacy version and its in-flight requests."""

    def __init__(self, protocol: McpProtocol, writer: LineWriter) -> None:
        self._protocol = protocol
        self._writer = writer
        self._write_lock = asyncio.Lock()
        self._version = DEFAULT_LEGACY_VERSION
        self._in_flight: dict[Any, asyncio.Task[None]] = {}

    async def run(self, reader: asyncio.StreamReader, grace_seconds: float) -> None:
        while True:
            line = await _read_line(reader)
            if line is None:
                logger.warning("dropping an over-long stdin line")
                await self._write(error_response(None, -32700, "Parse error: message too long"))
                continue
            if not line:
                break
            if line.strip():
                await self._receive(line)
        await self._finish(grace_seconds)

    async def _receive(self, line: bytes) -> None:
        try:
            message = decode_message(line)
        except McpError as exc:
            await self._write(error_response(None, exc.code, exc.message))
            return
        if not isinstance(message, dict) or "id" not in message or "method" not in message:
            self._notice(message)
            reply = await self._protocol.handle(message, version=self._version)
            if reply is not None:
                await self._write(reply)
            return
        if message["method"] == "initialize":
            await self._answer(message)  # inline: later requests depend on the version it fixes
            return
        task = asyncio.create_task(self._answer(message))
        key = _key(message["id"])
        if key is not None:
            self._in_flight[key] = task
            task.add_done_callback(functools.partial(self._forget, key))

    def _forget(self, key: Any, task: asyncio.Task[None]) -> None:
        if self._in_flight.get(key) is task:
            del self._in_flight[key]

    def _notice(self, message: Any) -> None:
        """Act on the one notification that matters here: cancellation of a request."""
        if not isinstance(message, dict) or message.get("method") != "notifications/cancelled":
            return
        params = message.get("params")
        key = _key(params.get("requestId")) if isinstance(params, dict) else None
        task = self._in_flight.get(key) if key is not None else None
        if task is not None:
            task.cancel()

    async def _answer(self, message: dict[str, Any]) -> None:
        try:
            modern = is_modern_message(message)
            reply = await self._protocol.handle(message, modern=modern, version=self._version)
        except asyncio.CancelledError:
            return  # cancelled by the client: no response
        except Exception:  # the protocol turns backend failures into replies; this is a bug
            logger.exception("failed to answer %r", message.get("method"))
            reply = error_response(message.get("id"), -32603, "Internal error")
        if reply is None:
            return
        if message.get("method") == "initialize" and "result" in reply:
            self._version = reply["result"]["protocolVersion"]
        await self._write(reply)

    async def _write(self, reply: dict[str, Any]) -> None:
        data = encode_message(reply) + b"\n"
        async with self._write_lock:
            self._writer.write(data)
            await self._writer.drain()

    async def _finish(self, grace_seconds: float) -> None:
        pending = list(self._in_flight.values())
        if pending:
            _done, late = await asyncio.wait(pending, timeout=grace_seconds)
            for task in late:
                task.cancel()
            if late:
                await asyncio.wait(late)


async def _read_line(reader: asyncio.StreamReader) -> bytes | None:
    """The next line (b"" at EOF), or None for one past the reader's limit, skipped to its end
    with no more than the limit held at once."""
    try:
        return await reader.readuntil(b"\n")
    except asyncio.IncompleteReadError as exc:
        return exc.partial  # the last line, without its newline
    except asyncio.LimitOverrunError as exc:
        consumed = exc.consumed
    while True:
        if consumed:
            await reader.readexactly(consumed)  # bytes already buffered: dropped, not kept
        try:
            await reader.readuntil(b"\n")
            return None
        except asyncio.IncompleteReadError:
            return None
        except asyncio.LimitOverrunError as exc:
            consumed = exc.consumed


def _key(request_id: Any) -> Any:
    """A hashable form of a request id (str or number), or None."""
    if isinstance(request_id, (str, int, float)) and not isinstance(request_id, bool):
        return request_id
    return None


# --------------------------------------------------------------------------- real stdin/stdout


def _is_pipe(fd: int) -> bool:
    """Whether the event loop can watch `fd` (a pipe or socket; not a file, a tty or /dev/null)."""
    try:
        mode = os.fstat(fd).st_mode
    except OSError:
        return False
    return stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode)


async def _stdin_reader(limit: int) -> asyncio.StreamReader:
    """An asyncio reader over stdin: a pipe transport when possible, else a reading thread."""
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=limit)
    fd = sys.stdin.fileno()
    if _is_pipe(fd):
        await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin.buffer)
    else:
        threading.Thread(target=_pump, args=(loop, reader, fd), daemon=True).start()
    return reader


def _pump(loop: asyncio.AbstractEventLoop, reader: asyncio.StreamReader, fd: int) -> None:
    while True:
        try:
            chunk = os.read(fd, 65536)
        except OSError:
            chunk = b""
        if not chunk:
            loop.call_soon_threadsafe(reader.feed_eof)
            return
        loop.call_soon_threadsafe(reader.feed_data, chunk)


class _BlockingWriter:
    """Stdout writer for when stdout is not a pipe (a file, a tty): plain blocking writes."""

    def __init__(self, stream: Any) -> None:
        self._stream = stream

    def write(self, data: bytes) -> None:
        self._stream.write(data)
        self._stream.flush()

    async def drain(self) -> None:
        return None


async def _stdout_writer() -> LineWriter:
    if not _is_pipe(sys.stdout.fileno()):
        return _BlockingWriter(sys.stdout.buffer)
    loop = asyncio.get_running_loop()
    transport, protocol = await loop.connect_write_pipe(asyncio.streams.FlowControlMixin, sys.stdout.buffer)
    return asyncio.StreamWriter(transport, protocol, None, loop)
