"""The upstream HTTP/1.1 client against a scripted server on real loopback TCP: framing,
keep-alive, decoding, redirects, flow control, and every failure named as the engine's error."""

from __future__ import annotations

import asyncio
import gzip

import pytest

from naftiko.engine.errors import RequestError, UpstreamError, UpstreamTimeout
from naftiko.engine.upstream.connection import HIGH_WATER
from naftiko.engine.upstream.client import Upstream
from tests.support import ScriptedServer, answer, client, json_answer, ok, send

pytestmark = pytest.mark.anyio


async def test_keep_alive_reuses_one_connection_and_sends_one_well_formed_request() -> None:
    async def handler(head: str, body: bytes, writer: asyncio.StreamWriter, nth: int) -> bool:
        writer.write(json_answer(body or b'{"ok": true}'))
        return True

    async with ScriptedServer(handler) as server:
        async with client(server.url + "/base") as upstream:
            for _ in range(3):
                assert await (await send(upstream)).json() == {"ok": True}
            posted = await send(upstream, "/y?q=1", "POST", [("Content-Type", "application/json")], b'{"a": 1}')
            assert await posted.json() == {"a": 1}
    assert server.connections == 1
    assert server.requests[0].startswith("GET /base/x HTTP/1.1\r\nHost: 127.0.0.1:")
    assert "Content-Length: 8\r\n" in server.requests[3] and server.requests[3].startswith("POST /base/y?q=1 ")


async def test_chunked_gzip_body_is_decoded_and_its_encoding_headers_dropped() -> None:
    payload = gzip.compress(b'{"zipped": "' + b"z" * 5000 + b'"}')

    async def handler(head: str, body: bytes, writer: asyncio.StreamWriter, nth: int) -> bool:
        writer.write(
            answer("200 OK", ["Content-Type: application/json", "Content-Encoding: gzip", "Transfer-Encoding: chunked"])
        )
        for start in range(0, len(payload), 100):
            piece = payload[start : start + 100]
            writer.write(f"{len(piece):x}\r\n".encode() + piece + b"\r\n")
        writer.write(b"0\r\n\r\n")
        return True

    async with ScriptedServer(handler) as server:
        async with client(server.url) as upstream:
            response = await send(upstream)
            assert await response.json() == {"zipped": "z" * 5000}
            names = {k.lower() for k, _ in response.headers()}
            assert "content-encoding" not in names and "content-length" not in names
    assert "Accept-Encoding: gzip, deflate" in server.requests[0]


async def test_body_delimited_by_close_and_head_without_body() -> None:
    async def handler(head: str, body: bytes, writer: asyncio.StreamWriter, nth: int) -> bool:
        if head.startswith("HEAD"):
            writer.write(answer("200 OK", ["Content-Type: text/plain", "Content-Length: 999"]))
            return True
        writer.write(answer("200 OK", ["Content-Type: text/plain", "Connection: close"], b"until the end"))
        return False

    async with ScriptedServer(handler) as server:
        async with client(server.url) as upstream:
            assert await (await send(upstream)).read() == b"until the end"
            head = await send(upstream, method="HEAD")
            assert head.status == 200 and await head.read() == b""
            assert ("content-length", "999") in head.headers()


async def test_a_connection_closed_while_idle_is_retried_for_get_only() -> None:
    async def handler(head: str, body: bytes, writer: asyncio.StreamWriter, nth: int) -> bool:
        if "/again" in head and nth > 0:
            return False  # as if the server's idle timeout fired just as the request arrived
        writer.write(json_answer())
        return True

    async with ScriptedServer(handler) as server:
        async with client(server.url) as upstream:
            await (await send(upstream, "/first")).read()
            assert await (await send(upstream, "/again")).json() == {"ok": True}  # retried on a new connection
            await (await send(upstream, "/first", "POST", body=b"{}")).read()
            with pytest.raises(UpstreamError, match="server closed the connection"):
                await send(upstream, "/again", "POST", body=b"{}")  # not idempotent: never sent twice


async def test_header_with_a_line_break_is_a_request_error_and_nothing_is_sent() -> None:
    async with ScriptedServer(ok) as server:
        async with client(server.url) as upstream:
            for value in ("a\r\nX-Injected: 1", "a\rb", "a\nb"):
                with pytest.raises(RequestError, match="line break"):
                    await send(upstream, headers=[("X-Name", value)])
    assert server.requests == []


async def test_silence_mid_body_is_a_timeout_and_garbage_is_a_broken_response() -> None:
    async def handler(head: str, body: bytes, writer: asyncio.StreamWriter, nth: int) -> bool:
        if "/garbage" in head:
            writer.write(b"NOT HTTP AT ALL\r\n\r\n")
            return True
        writer.write(answer("200 OK", ["Content-Type: application/json", "Content-Length: 100"], b'{"par'))
        await asyncio.sleep(1.5)
        return False

    async with ScriptedServer(handler) as server:
        async with client(server.url, 0.5) as upstream:
            response = await send(upstream)
            with pytest.raises(UpstreamTimeout, match="within 0.5s"):
                await response.read()
            with pytest.raises(UpstreamError, match="malformed response"):
                await send(upstream, "/garbage")


async def test_the_read_timeout_runs_from_each_wait_on_a_reused_connection() -> None:
    """One timer per connection stays armed across exchanges: a slow answer after quick ones
    still times out a whole timeout after its own request, not at an earlier exchange's deadline."""

    async def handler(head: str, body: bytes, writer: asyncio.StreamWriter, nth: int) -> bool:
        if "/slow" in head:
            await asyncio.sleep(0.5)  # answers after 0.5 s: more than 0.3 s after it was asked
        elif "/late" in head:
            await asyncio.sleep(0.2)  # within 0.3 s of its own request
        writer.write(json_answer())
        return True

    async with ScriptedServer(handler) as server:
        async with client(server.url, 0.3) as upstream:
            loop = asyncio.get_running_loop()
            for _ in range(3):  # each arms (or keeps) the connection's timer
                assert await (await send(upstream)).json() == {"ok": True}
            await asyncio.sleep(0.2)  # the timer armed by the first exchange fires while the connection is idle
            assert await (await send(upstream, "/late")).json() == {"ok": True}
            started = loop.time()
            with pytest.raises(UpstreamTimeout, match="within 0.3s"):
                await send(upstream, "/slow")
            assert 0.25 <= loop.time() - started < 0.5
    assert server.connections == 1


async def test_redirects_are_followed_and_credentials_stay_on_their_origin() -> None:
    async with ScriptedServer(ok) as other:

        async def handler(head: str, body: bytes, writer: asyncio.StreamWriter, nth: int) -> bool:
            if "/moved" in head:
                writer.write(answer("302 Found", ["Location: /here", "Content-Length: 0"]))
            elif "/away" in head:
                writer.write(answer("307 Temporary Redirect", [f"Location: {other.url}/there", "Content-Length: 0"]))
            else:
                writer.write(json_answer())
            return True

        async with ScriptedServer(handler) as server:
            async with client(server.url) as upstream:
                assert (await send(upstream, "/moved", headers=[("Authorization", "Bearer k")])).status == 200
                assert (await send(upstream, "/away", headers=[("Authorization", "Bearer k")])).status == 200
    assert server.requests[1].startswith("GET /here ") and "Authorization: Bearer k" in server.requests[1]
    assert other.requests[0].startswith("GET /there ") and "Authorization" not in other.requests[0]


async def test_unreachable_upstream_names_the_namespace_and_reason() -> None:
    server = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    server.close()
    await server.wait_closed()
    upstream = Upstream("billing", f"http://127.0.0.1:{port}", 2.0)
    try:
        with pytest.raises(UpstreamError, match="cannot connect to http://127.0.0.1:.*refused") as caught:
            await send(upstream)
        assert caught.value.namespace == "billing"
    finally:
        await upstream.close()


async def test_a_streamed_body_is_read_with_back_pressure() -> None:
    block = b"x" * 65536
    total = 64 * len(block)  # 4 MiB, far past the high-water mark

    async def handler(head: str, body: bytes, writer: asyncio.StreamWriter, nth: int) -> bool:
        writer.write(answer("200 OK", ["Content-Type: application/octet-stream", f"Content-Length: {total}"]))
        for _ in range(64):
            writer.write(block)
            await writer.drain()
        return True

    async with ScriptedServer(handler) as server:
        async with client(server.url, 5.0) as upstream:
            response = await send(upstream)
            received = 0
            async for chunk in response.chunks():
                received += len(chunk)
                if received == len(chunk):
                    await asyncio.sleep(0.3)  # a slow reader: the client must stop reading the socket
                    # at most one socket read (256 KiB) lands after the pause
                    assert response._response._buffered <= 2 * HIGH_WATER + len(block)
            assert received == total


async def test_a_body_nobody_reads_gives_its_connection_back_after_the_timeout() -> None:
    total = 4 * 1024 * 1024

    async def handler(head: str, body: bytes, writer: asyncio.StreamWriter, nth: int) -> bool:
        writer.write(answer("200 OK", ["Content-Type: application/octet-stream", f"Content-Length: {total}"]))
        writer.write(b"x" * total)
        return True

    async with ScriptedServer(handler) as server:
        async with client(server.url, 0.3) as upstream:
            abandoned = await send(upstream)  # headers in, body left unread: the caller went away
            await asyncio.sleep(0.8)
            assert abandoned._response._connection.closed
            with pytest.raises(UpstreamTimeout):
                await abandoned.read()


async def test_a_connection_paused_by_a_slow_reader_is_readable_again_once_reused() -> None:
    """Regression: a body that ended while reading was paused left the pooled connection deaf."""
    total = HIGH_WATER + 4096  # the last socket read both passes the high-water mark and ends the body

    async def handler(head: str, body: bytes, writer: asyncio.StreamWriter, nth: int) -> bool:
        if "/big" in head:
            writer.write(
                answer("200 OK", ["Content-Type: application/octet-stream", f"Content-Length: {total}"], b"x" * total)
            )
        else:
            writer.write(json_answer())
        return True

    async with ScriptedServer(handler) as server:
        async with client(server.url) as upstream:
            streamed = await send(upstream, "/big")
            await asyncio.sleep(0.2)  # the whole body arrives, past the high-water mark, before anyone reads
            assert sum([len(chunk) async for chunk in streamed.chunks()]) == total
            assert await (await send(upstream, "/small")).json() == {"ok": True}
    assert server.connections == 1


async def test_a_read_cancelled_mid_body_closes_its_connection_at_once() -> None:
    """A caller who leaves while a buffered body trickles in must not hold the upstream."""
    closed = asyncio.Event()

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(answer("200 OK", ["Content-Type: application/json", "Content-Length: 100"], b'{"par'))
        await writer.drain()
        await reader.read()  # b"" once the client closes its side
        closed.set()
        writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        async with client(f"http://127.0.0.1:{port}", 10) as upstream:
            response = await send(upstream)
            reading = asyncio.ensure_future(response.read())
            await asyncio.sleep(0.1)
            reading.cancel()
            with pytest.raises(asyncio.CancelledError):
                await reading
            await asyncio.wait_for(closed.wait(), 1)
    finally:
        server.close()
