"""Conformance of naftiko's own HTTP/1.1 server (adapters/http1.py), on real loopback sockets.

Each test starts an `Http1Server` in a thread of its own (on uvloop, as `naftiko serve` runs, and on
asyncio's loop) and talks to it with raw sockets, with h11 as a strict client, or with httpx.
"""

from __future__ import annotations

import asyncio
import json
import logging
import socket
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import h11
import httptools
import httpx
import pytest

from naftiko.adapters.edges import ABORT_EXTENSION
from naftiko.adapters.http1 import Connection, Http1Server, Limits
from tests.support import Answer

Scope = dict[str, Any]
App = Callable[[Scope, Callable[[], Awaitable[Any]], Callable[[Any], Awaitable[None]]], Awaitable[None]]
FAST = Limits(keep_alive=1.0, head_timeout=1.0, shutdown_timeout=2.0)  # timeouts checked every 0.2 s


class Slot:
    def __init__(self, app: App) -> None:
        self.app = app


class Counting(Connection):
    """A connection that counts the transport writes (write/writelines calls) of each answer."""

    writes: list[int] = []

    def connection_made(self, transport: Any) -> None:
        super().connection_made(_Counter(transport))


class _Counter:
    def __init__(self, transport: Any) -> None:
        self._transport = transport

    def write(self, data: bytes) -> None:
        Counting.writes.append(1)
        self._transport.write(data)

    def writelines(self, data: list[bytes]) -> None:
        Counting.writes.append(len(data))
        self._transport.writelines(data)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


@dataclass
class Running:
    server: Http1Server
    port: int
    loop: asyncio.AbstractEventLoop
    thread: threading.Thread
    slot: Slot
    errors: list[BaseException] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def connect(self, rcvbuf: int | None = None) -> socket.socket:
        sock = socket.socket()
        if rcvbuf is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        sock.settimeout(5)
        sock.connect(("127.0.0.1", self.port))
        return sock

    def call(self, fn: Callable[[], Any]) -> Any:
        """Run `fn` on the server's loop and return its result (to read its state safely)."""
        done = threading.Event()
        out: list[Any] = []
        self.loop.call_soon_threadsafe(lambda: (out.append(fn()), done.set()))
        assert done.wait(5)
        return out[0]

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(10)
        assert not self.thread.is_alive()


def _loop_factory(kind: str) -> Callable[[], asyncio.AbstractEventLoop]:
    if kind == "uvloop":
        uvloop = pytest.importorskip("uvloop")
        return uvloop.new_event_loop  # type: ignore[no-any-return]
    return asyncio.new_event_loop


@pytest.fixture(params=["uvloop", "asyncio"])
def start(request: pytest.FixtureRequest) -> Iterator[Callable[..., Running]]:
    started: list[Running] = []

    def run(app: App, limits: Limits = FAST, protocol: type[Connection] | None = None) -> Running:
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        sock.listen(128)
        sock.setblocking(False)
        slot = Slot(app)
        server = Http1Server(slot, limits, protocol)
        ready = threading.Event()
        holder: list[asyncio.AbstractEventLoop] = []

        def main() -> None:
            async def go() -> None:
                holder.append(asyncio.get_running_loop())
                ready.set()
                await server.serve([sock])

            with asyncio.Runner(loop_factory=_loop_factory(request.param)) as runner:
                runner.run(go())

        thread = threading.Thread(target=main, daemon=True)
        thread.start()
        assert ready.wait(5)
        deadline = time.monotonic() + 5
        while not server.started and time.monotonic() < deadline:
            time.sleep(0.005)
        running = Running(server, sock.getsockname()[1], holder[0], thread, slot)
        started.append(running)
        return running

    yield run
    for running in started:
        if running.thread.is_alive():
            running.stop()


# apps


def answer(body: bytes = b'{"ok":true}', status: int = 200, headers: list[tuple[bytes, bytes]] | None = None) -> App:
    async def app(scope: Scope, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": status, "headers": headers or _length(body)})
        await send({"type": "http.response.body", "body": body})

    return app


def _length(body: bytes) -> list[tuple[bytes, bytes]]:
    return [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))]


async def read_all(receive: Any) -> tuple[bytes, list[dict[str, Any]]]:
    body, messages = b"", []
    while True:
        message = await receive()
        messages.append(message)
        body += message.get("body", b"")
        if not message.get("more_body"):
            return body, messages


def echo_path() -> App:
    async def app(scope: Scope, receive: Any, send: Any) -> None:
        body, _ = await read_all(receive)
        out = json.dumps({"path": scope["path"], "size": len(body)}).encode()
        await send({"type": "http.response.start", "status": 200, "headers": _length(out)})
        await send({"type": "http.response.body", "body": out})

    return app


# a raw-socket client that parses answers with httptools


class Reader:
    """Answers parsed off a raw socket, in order (for pipelining and malformed requests)."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.parser = httptools.HttpResponseParser(self)
        self.done: list[Answer] = []
        self.closed = False
        self._headers: dict[bytes, bytes] = {}
        self._body = b""

    def on_header(self, name: bytes, value: bytes) -> None:
        self._headers[name.lower()] = value

    def on_body(self, body: bytes) -> None:
        self._body += body

    def on_message_complete(self) -> None:
        self.done.append(Answer(self.parser.get_status_code(), self._headers, self._body))
        self._headers, self._body = {}, b""

    def answers(self, count: int, timeout: float = 5) -> list[Answer]:
        self.sock.settimeout(timeout)
        while len(self.done) < count:
            data = self.sock.recv(65536)
            if not data:
                self.closed = True
                break
            self.parser.feed_data(data)
        return self.done

    def at_eof(self, timeout: float = 5) -> bool:
        """Whether the server closes the connection (after what it had to send)."""
        self.sock.settimeout(timeout)
        try:
            while True:
                data = self.sock.recv(65536)
                if not data:
                    return True
                self.parser.feed_data(data)
        except TimeoutError:
            return False
        except ConnectionResetError:
            return True


def exchange(running: Running, raw: bytes, count: int = 1) -> tuple[list[Answer], Reader]:
    sock = running.connect()
    sock.sendall(raw)
    reader = Reader(sock)
    return reader.answers(count), reader


GET = b"GET / HTTP/1.1\r\nHost: t\r\n\r\n"


# the scope


def test_scope_matches_what_uvicorn_gives_the_apps(start: Callable[..., Running]) -> None:
    seen: list[Scope] = []

    async def app(scope: Scope, receive: Any, send: Any) -> None:
        seen.append(scope)
        await answer()(scope, receive, send)

    running = start(app)
    raw = b"GET /a%20b/c%2Fd?x=1&y=%20 HTTP/1.1\r\nHost: t\r\nX-Mixed-Case: v  \r\n\r\n"
    (got,), _ = exchange(running, raw)
    assert got.status == 200 and got.json == {"ok": True}
    scope = seen[0]
    assert scope["type"] == "http" and scope["asgi"] == {"version": "3.0", "spec_version": "2.3"}
    assert scope["http_version"] == "1.1" and scope["method"] == "GET" and scope["scheme"] == "http"
    assert scope["path"] == "/a b/c/d" and scope["raw_path"] == b"/a%20b/c%2Fd"
    assert scope["query_string"] == b"x=1&y=%20" and scope["root_path"] == ""
    assert (b"x-mixed-case", b"v") in scope["headers"]  # lower-cased names, trailing whitespace gone
    assert [name for name, _ in scope["headers"]][0] == b"host"  # in the order received
    assert scope["client"][0] == "127.0.0.1" and scope["server"] == ("127.0.0.1", running.port)
    assert callable(scope["extensions"][ABORT_EXTENSION]["close"])


def test_answer_headers_are_uvicorns(start: Callable[..., Running]) -> None:
    running = start(answer(headers=[(b"Content-Type", b"application/json"), (b"content-length", b"11")]))
    (got,), _ = exchange(running, GET)
    assert list(got.headers) == [b"date", b"content-type", b"content-length"]  # date first, names lower-cased
    assert got.headers[b"date"].endswith(b" GMT") and got.body == b'{"ok":true}'


# keep-alive and pipelining


def test_keep_alive_serves_several_requests_on_one_connection(start: Callable[..., Running]) -> None:
    running = start(echo_path())
    sock = running.connect()
    reader = Reader(sock)
    for i in range(3):
        sock.sendall(b"GET /r%d HTTP/1.1\r\nHost: t\r\n\r\n" % i)
        assert reader.answers(i + 1)[i].json == {"path": f"/r{i}", "size": 0}
    assert b"connection" not in reader.done[0].headers
    assert not reader.at_eof(timeout=0.2)


def test_http10_closes_unless_asked_to_keep_alive(start: Callable[..., Running]) -> None:
    running = start(answer())
    (got,), reader = exchange(running, b"GET / HTTP/1.0\r\n\r\n")
    assert got.headers[b"connection"] == b"close" and reader.at_eof()
    (got,), reader = exchange(running, b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
    assert got.headers[b"connection"] == b"keep-alive" and not reader.at_eof(timeout=0.2)
    reader.sock.sendall(b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
    assert reader.answers(2)[1].status == 200


def test_connection_close_from_the_client_and_from_the_app(start: Callable[..., Running]) -> None:
    running = start(answer())
    (got,), reader = exchange(running, b"GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
    assert got.headers[b"connection"] == b"close" and reader.at_eof()
    running.slot.app = answer(headers=[(b"content-length", b"11"), (b"connection", b"close")])
    (got,), reader = exchange(running, GET)
    assert got.headers[b"connection"] == b"close" and reader.at_eof()


def test_pipelined_requests_are_answered_in_order_one_at_a_time(start: Callable[..., Running]) -> None:
    running_now = [0]
    most = [0]

    async def app(scope: Scope, receive: Any, send: Any) -> None:
        running_now[0] += 1
        most[0] = max(most[0], running_now[0])
        await asyncio.sleep({"/a": 0.2, "/b": 0.0, "/c": 0.05}[scope["path"]])
        running_now[0] -= 1
        await echo_path()(scope, receive, send)

    running = start(app)
    raw = b"".join(b"GET /%s HTTP/1.1\r\nHost: t\r\n\r\n" % p for p in (b"a", b"b", b"c"))
    raw += b"POST /c HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\nhello"
    got, _ = exchange(running, raw, 4)
    assert [a.json for a in got] == [
        {"path": "/a", "size": 0},
        {"path": "/b", "size": 0},
        {"path": "/c", "size": 0},
        {"path": "/c", "size": 5},
    ]
    assert most[0] == 1


def test_an_upgrade_request_is_answered_as_http11_then_closed(start: Callable[..., Running]) -> None:
    running = start(answer())
    raw = (
        b"GET / HTTP/1.1\r\nHost: t\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\n"
        b"HTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n\r\n"
    )
    (got,), reader = exchange(running, raw)
    assert got.status == 200 and got.headers[b"connection"] == b"close" and reader.at_eof()


def test_an_unread_body_does_not_stall_the_connection(start: Callable[..., Running]) -> None:
    running = start(answer(status=413, body=b"{}"), Limits(body_buffer=1024))
    body = b"x" * 300_000
    raw = b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body)
    got, _ = exchange(running, raw + GET, 2)
    assert [a.status for a in got] == [413, 413]  # the unread body was dropped, the next request served


def test_pipelined_requests_beyond_the_limit_close_the_connection(start: Callable[..., Running]) -> None:
    running = start(echo_path(), Limits(max_pipelined=2))
    got, reader = exchange(running, GET * 10, 10)
    assert 1 < len(got) < 10 and all(a.status == 200 for a in got)
    assert reader.closed


# request bodies


def test_a_chunked_request_body_streams_to_the_app(start: Callable[..., Running]) -> None:
    parts: list[tuple[bytes, bool]] = []
    first = asyncio.Event()

    async def app(scope: Scope, receive: Any, send: Any) -> None:
        while True:
            message = await receive()
            parts.append((message["body"], message["more_body"]))
            if not message["more_body"]:
                break
        await answer()(scope, receive, send)

    running = start(app)
    sock = running.connect()
    sock.sendall(b"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n")
    time.sleep(0.2)
    assert parts == [(b"hello", True)]  # the app has the first chunk before the body is complete
    sock.sendall(b"6\r\n world\r\n0\r\n\r\n")
    assert Reader(sock).answers(1)[0].status == 200
    assert b"".join(body for body, _ in parts) == b"hello world" and parts[-1][1] is False
    del first


def test_unread_request_body_pauses_reading(start: Callable[..., Running]) -> None:
    go = threading.Event()
    size = 32 * 1024 * 1024  # more than the socket buffers of both ends can hold

    async def app(scope: Scope, receive: Any, send: Any) -> None:
        while not go.is_set():
            await asyncio.sleep(0.01)
        body, _ = await read_all(receive)
        out = b"%d" % len(body)
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"%d" % len(out))]})
        await send({"type": "http.response.body", "body": out})

    running = start(app, Limits(body_buffer=16384))
    sock = running.connect()
    sock.sendall(b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: %d\r\n\r\n" % size)
    sender = threading.Thread(target=sock.sendall, args=(b"x" * size,), daemon=True)
    sender.start()
    time.sleep(0.5)

    def state() -> tuple[bool, int]:
        (conn,) = running.server.server_state.connections
        assert conn.active is not None
        return conn.read_paused, conn.active.unread

    paused, unread = running.call(state)
    assert paused and unread <= 16384 + 262144  # the limit, plus at most one read of the transport
    assert sender.is_alive()  # the caller is held back by TCP, not buffered by the server
    go.set()
    sender.join(10)
    assert Reader(sock).answers(1)[0].body == b"%d" % size


def test_receive_says_disconnect_when_the_caller_leaves(start: Callable[..., Running]) -> None:
    seen: list[str] = []

    async def app(scope: Scope, receive: Any, send: Any) -> None:
        await read_all(receive)
        seen.append((await receive())["type"])  # waits: the whole body was read, the caller is still there

    running = start(app)
    sock = running.connect()
    sock.sendall(GET)
    time.sleep(0.1)
    assert seen == []
    sock.close()
    deadline = time.monotonic() + 3
    while not seen and time.monotonic() < deadline:
        time.sleep(0.01)
    assert seen == ["http.disconnect"]


def test_receive_says_disconnect_when_the_caller_leaves_mid_body(start: Callable[..., Running]) -> None:
    seen: list[dict[str, Any]] = []

    async def app(scope: Scope, receive: Any, send: Any) -> None:
        while not seen or seen[-1]["type"] == "http.request":
            seen.append(await receive())

    running = start(app)
    sock = running.connect()
    sock.sendall(b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 100\r\n\r\nhalf")
    time.sleep(0.1)
    sock.close()
    deadline = time.monotonic() + 3
    while (not seen or seen[-1]["type"] != "http.disconnect") and time.monotonic() < deadline:
        time.sleep(0.01)
    assert [m["type"] for m in seen] == ["http.request", "http.disconnect"]
    assert seen[0] == {"type": "http.request", "body": b"half", "more_body": True}


def test_limits_are_checked() -> None:
    with pytest.raises(ValueError, match="keep_alive"):
        Limits(keep_alive=0)
    with pytest.raises(ValueError, match="max_head"):
        Limits(max_head=0)


def test_receive_says_disconnect_once_the_answer_is_done(start: Callable[..., Running]) -> None:
    seen: list[str] = []

    async def app(scope: Scope, receive: Any, send: Any) -> None:
        await answer()(scope, receive, send)
        seen.append((await receive())["type"])
        seen.append((await receive())["type"])

    running = start(app)
    assert httpx.get(running.url).status_code == 200
    time.sleep(0.1)
    assert seen == ["http.disconnect", "http.disconnect"]


def test_expect_100_continue_is_sent_when_the_app_first_reads(start: Callable[..., Running]) -> None:
    async def app(scope: Scope, receive: Any, send: Any) -> None:
        await asyncio.sleep(0.3)
        await echo_path()(scope, receive, send)

    running = start(app)
    sock = running.connect()
    sock.sendall(b"POST /x HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n")
    sock.settimeout(0.15)
    with pytest.raises(TimeoutError):
        sock.recv(100)
    sock.settimeout(5)
    assert sock.recv(100) == b"HTTP/1.1 100 Continue\r\n\r\n"
    sock.sendall(b"hello")
    assert Reader(sock).answers(1)[0].json == {"path": "/x", "size": 5}


def test_expect_100_continue_answered_without_reading_closes(start: Callable[..., Running]) -> None:
    running = start(answer(status=413, body=b"{}"))
    (got,), reader = exchange(
        running, b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n"
    )
    assert got.status == 413 and got.headers[b"connection"] == b"close" and reader.at_eof()


# answers


def streamed(parts: list[bytes], status: int = 200) -> App:
    async def app(scope: Scope, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": status, "headers": [(b"content-type", b"text/plain")]})
        for part in parts:
            await send({"type": "http.response.body", "body": part, "more_body": True})
        await send({"type": "http.response.body", "body": b""})

    return app


def h11_get(running: Running, method: str = "GET") -> tuple[h11.Response, bytes, bool]:
    """One request through h11 (strict framing); the answer, its body, and whether the server closed."""
    sock = running.connect()
    client = h11.Connection(h11.CLIENT)
    sock.sendall(client.send(h11.Request(method=method, target="/", headers=[("Host", "t")])))
    sock.sendall(client.send(h11.EndOfMessage()))
    response, body = None, b""
    while True:
        event = client.next_event()
        if event is h11.NEED_DATA:
            client.receive_data(sock.recv(65536))
            continue
        if isinstance(event, h11.Response):
            response = event
        elif isinstance(event, h11.Data):
            body += event.data
        elif isinstance(event, h11.EndOfMessage):
            break
    assert response is not None
    return response, body, client.our_state is h11.MUST_CLOSE or Reader(sock).at_eof(0.3)


def test_an_answer_without_length_is_chunked_or_close_delimited(start: Callable[..., Running]) -> None:
    running = start(streamed([b"ab", b"", b"cd" * 40000]))
    response, body, closed = h11_get(running)
    assert dict(response.headers)[b"transfer-encoding"] == b"chunked" and body == b"ab" + b"cd" * 40000
    assert not closed
    sock = running.connect()
    sock.sendall(b"GET / HTTP/1.0\r\n\r\n")
    data = b""
    while chunk := sock.recv(65536):
        data += chunk  # close-delimited: the body ends where the connection does
    head, _, body = data.partition(b"\r\n\r\n")
    assert b"transfer-encoding" not in head and b"connection: close" in head and body == b"ab" + b"cd" * 40000


def test_head_204_and_304_carry_no_body(start: Callable[..., Running]) -> None:
    running = start(answer(body=b"0123456789"))
    response, body, closed = h11_get(running, method="HEAD")
    assert dict(response.headers)[b"content-length"] == b"10" and body == b"" and not closed
    for status in (204, 304):
        running.slot.app = streamed([b"ignored"], status=status)
        response, body, closed = h11_get(running)
        assert response.status_code == status and body == b"" and not closed
        assert b"transfer-encoding" not in dict(response.headers)


def test_head_and_body_leave_in_one_write(start: Callable[..., Running]) -> None:
    Counting.writes = []
    running = start(answer(), protocol=Counting)
    assert httpx.get(running.url).status_code == 200
    assert Counting.writes == [1]  # one write() of head and body joined
    Counting.writes = []
    running.slot.app = answer(body=b"x" * 1_000_000)
    assert len(httpx.get(running.url).content) == 1_000_000
    assert Counting.writes == [2]  # one writelines([head, body]): the large body is not copied


def test_a_slow_reader_holds_the_app_back(start: Callable[..., Running]) -> None:
    sent = [0]
    chunk = b"z" * 65536
    total = 64 * 1024 * 1024

    async def app(scope: Scope, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"%d" % total)]})
        while sent[0] < total:
            await send({"type": "http.response.body", "body": chunk, "more_body": sent[0] + len(chunk) < total})
            sent[0] += len(chunk)

    running = start(app)
    sock = running.connect(rcvbuf=65536)
    sock.sendall(GET)
    time.sleep(0.5)
    held = sent[0]
    assert held < 16 * 1024 * 1024  # socket buffers and the write buffer, not the whole answer
    received = 0
    while received < total:
        data = sock.recv(1 << 20)
        assert data
        received += len(data)
    assert received - total < 1024  # the head


def test_abort_extension_closes_the_connection_mid_answer(start: Callable[..., Running]) -> None:
    async def app(scope: Scope, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"partial", "more_body": True})
        scope["extensions"][ABORT_EXTENSION]["close"]()

    running = start(app)
    with pytest.raises(httpx.RemoteProtocolError):
        httpx.get(running.url)


# limits and malformed requests


@pytest.mark.parametrize(
    ("raw", "status"),
    [
        (b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\nHost: t\r\n\r\n", 414),
        (b"GET / HTTP/1.1\r\nHost: t\r\nX-Big: " + b"v" * 70000 + b"\r\n\r\n", 431),
        (b"GET / HTTP/1.1\r\nHost: t\r\n" + b"".join(b"X-%d: v\r\n" % i for i in range(101)) + b"\r\n", 431),
        (b"GET / HTTP/1.1\r\nHost: t\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", 400),
        (b"NOT HTTP AT ALL\r\n\r\n", 400),
        (b"GET / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", 400),
    ],
)
def test_refused_requests_get_a_json_error_and_a_close(start: Callable[..., Running], raw: bytes, status: int) -> None:
    running = start(answer())
    (got,), reader = exchange(running, raw)
    assert got.status == status and got.headers[b"content-type"] == b"application/json"
    assert got.headers[b"connection"] == b"close" and set(got.json["error"]) == {"type", "message"}
    assert reader.at_eof()


def test_a_huge_header_is_refused_before_it_is_complete(start: Callable[..., Running]) -> None:
    running = start(answer(), Limits(max_head=8192))
    sock = running.connect()
    sock.sendall(b"GET / HTTP/1.1\r\nHost: t\r\nX-Huge: ")
    for _ in range(4):
        sock.sendall(b"v" * 4096)
        time.sleep(0.05)
    (got,) = Reader(sock).answers(1)
    assert got.status == 431


def test_a_refusal_waits_for_the_answer_in_flight(start: Callable[..., Running]) -> None:
    async def app(scope: Scope, receive: Any, send: Any) -> None:
        await asyncio.sleep(0.2)
        await answer()(scope, receive, send)

    running = start(app)
    got, reader = exchange(running, GET + b"BROKEN\r\n\r\n", 2)
    assert [a.status for a in got] == [200, 400] and reader.at_eof()


def test_an_idle_keep_alive_connection_is_closed(start: Callable[..., Running]) -> None:
    running = start(answer(), Limits(keep_alive=0.3))
    (got,), reader = exchange(running, GET)
    began = time.monotonic()
    assert got.status == 200 and reader.at_eof(timeout=3)
    assert 0.2 < time.monotonic() - began < 1.5
    silent = running.connect()
    assert Reader(silent).at_eof(timeout=3)  # a connection that never sends anything too


def test_a_slow_head_gets_408(start: Callable[..., Running]) -> None:
    running = start(answer(), Limits(head_timeout=0.3))
    sock = running.connect()
    sock.sendall(b"GET / HTTP/1.1\r\nHost: t\r\n")  # and never the blank line
    began = time.monotonic()
    (got,) = Reader(sock).answers(1)
    assert got.status == 408 and 0.2 < time.monotonic() - began < 1.5


# app failures


def test_an_app_failing_before_its_answer_gets_500_and_a_log(
    start: Callable[..., Running], caplog: pytest.LogCaptureFixture
) -> None:
    async def app(scope: Scope, receive: Any, send: Any) -> None:
        raise ValueError("secret detail")

    running = start(app)
    with caplog.at_level(logging.ERROR, logger="naftiko"):
        response = httpx.get(running.url)
    assert response.status_code == 500 and response.json()["error"]["type"] == "internal_error"
    assert "secret" not in response.text and response.headers["connection"] == "close"
    assert any(r.exc_info and "secret detail" in str(r.exc_info[1]) for r in caplog.records if r.name == "naftiko")


def test_an_app_returning_without_answering_gets_500(start: Callable[..., Running]) -> None:
    async def app(scope: Scope, receive: Any, send: Any) -> None:
        return None

    running = start(app)
    assert httpx.get(running.url).status_code == 500


def test_an_app_failing_mid_answer_closes_the_connection(start: Callable[..., Running]) -> None:
    async def app(scope: Scope, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"partial", "more_body": True})
        raise ValueError("boom")

    running = start(app)
    with pytest.raises(httpx.RemoteProtocolError):
        httpx.get(running.url)


@pytest.mark.parametrize(
    "headers",
    [[(b"x-evil", b"a\r\nset-cookie: b")], [(b"bad name", b"v")]],
)
def test_an_invalid_answer_header_is_an_app_error(start: Callable[..., Running], headers: list[Any]) -> None:
    running = start(answer(headers=headers))
    response = httpx.get(running.url)
    assert response.status_code == 500 and "set-cookie" not in response.headers


def test_a_body_longer_than_its_length_closes(start: Callable[..., Running]) -> None:
    running = start(answer(body=b"0123456789", headers=[(b"content-length", b"3")]))
    got, reader = exchange(running, GET)
    assert got == [] and reader.closed  # never 10 bytes under a 3-byte length


# the server: reloads and shutdown


def test_the_slot_is_read_for_each_request(start: Callable[..., Running]) -> None:
    running = start(answer(b"old"))
    with httpx.Client() as client:
        assert client.get(running.url).content == b"old"
        running.slot.app = answer(b"new")
        assert client.get(running.url).content == b"new"  # the same keep-alive connection


def test_requests_in_flight_are_in_server_state_tasks(start: Callable[..., Running]) -> None:
    release = threading.Event()

    async def app(scope: Scope, receive: Any, send: Any) -> None:
        while not release.is_set():
            await asyncio.sleep(0.01)
        await answer()(scope, receive, send)

    running = start(app)
    sock = running.connect()
    sock.sendall(GET)
    time.sleep(0.1)
    assert running.call(lambda: len(running.server.server_state.tasks)) == 1
    release.set()
    assert Reader(sock).answers(1)[0].status == 200
    time.sleep(0.05)
    assert running.call(lambda: len(running.server.server_state.tasks)) == 0


def test_shutdown_lets_requests_finish_and_closes_idle_connections(start: Callable[..., Running]) -> None:
    async def app(scope: Scope, receive: Any, send: Any) -> None:
        await asyncio.sleep(0.4 if scope["path"] == "/slow" else 0)
        await answer()(scope, receive, send)

    running = start(app)
    idle = running.connect()
    idle.sendall(GET)
    idle_reader = Reader(idle)
    assert idle_reader.answers(1)[0].status == 200
    busy = running.connect()
    busy.sendall(b"GET /slow HTTP/1.1\r\nHost: t\r\n\r\n")
    time.sleep(0.1)
    running.server.should_exit = True
    assert idle_reader.at_eof(timeout=1)
    (got,) = Reader(busy).answers(1)
    assert got.status == 200 and got.headers[b"connection"] == b"close"
    running.thread.join(5)
    assert not running.thread.is_alive()
    with pytest.raises(OSError):
        running.connect()


def test_shutdown_cuts_requests_after_its_timeout(start: Callable[..., Running]) -> None:
    cancelled = threading.Event()

    async def app(scope: Scope, receive: Any, send: Any) -> None:
        try:
            await asyncio.sleep(60)
        except asyncio.CancelledError:
            cancelled.set()
            raise

    running = start(app, Limits(shutdown_timeout=0.3))
    sock = running.connect()
    sock.sendall(GET)
    time.sleep(0.1)
    began = time.monotonic()
    running.server.should_exit = True
    running.thread.join(5)
    assert not running.thread.is_alive() and cancelled.is_set()
    assert time.monotonic() - began < 2
    assert Reader(sock).at_eof(timeout=1)
