"""Upstream bodies are bounded: a buffered answer by its decoded size, a streamed compressed one by
what it inflates to and by its ratio; gzip and deflate bombs fail fast with bounded memory, and the
error names the namespace, the operation and the limit (REST 502, MCP isError, end to end)."""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import json
import subprocess
import sys
import textwrap
import time
import zlib
from pathlib import Path
from collections.abc import AsyncIterator

import httpx
import pytest
from mcp import Client

from naftiko.engine.errors import UpstreamError
from naftiko.engine.upstream.connection import HIGH_WATER
from naftiko.engine.upstream.decoders import STEP
from naftiko.engine.limits import Limits, MiB
from naftiko.engine.upstream.client import Upstream
from tests.support import ROOT, RecordingUpstream, Reply
from tests.support import ScriptedServer, answer, json_answer, send

pytestmark = pytest.mark.anyio

BODY_LIMIT = r"\(limit upstream-body; raise it with --limit upstream-body=SIZE or NAFTIKO_MAX_UPSTREAM_BODY\)"
RATIO_LIMIT = r"\(limit compression-ratio; raise it with --limit compression-ratio=N or NAFTIKO_MAX_COMPRESSION_RATIO\)"
STREAM_LIMIT = r"\(limit decompressed-stream; raise it with --limit decompressed-stream=SIZE"


def bomb(mib: int, wbits: int = 31) -> bytes:
    """`mib` MiB of zeros compressed to about 1 KiB per MiB, built without ever holding the zeros.

    Full flushes make every block after the first compress to the same bytes, so the bomb is one
    block repeated; its trailer does not match (a client must give up long before it gets there).
    """
    compressor = zlib.compressobj(9, zlib.DEFLATED, wbits)
    block = bytes(MiB)
    first = compressor.compress(block) + compressor.flush(zlib.Z_FULL_FLUSH)
    same = compressor.compress(block) + compressor.flush(zlib.Z_FULL_FLUSH)
    return first + same * (mib - 1) + compressor.flush()


def compressed(data: bytes, encoding: str) -> bytes:
    if encoding == "gzip":
        return gzip.compress(data)
    if encoding == "deflate":
        return zlib.compress(data)
    compressor = zlib.compressobj(6, zlib.DEFLATED, -15)  # "deflate" as some servers send it: no zlib header
    return compressor.compress(data) + compressor.flush()


def sends(body: bytes, encoding: str | None = None, chunked: bool = False):
    """A handler answering every request with `body`, framed and labelled as asked."""
    headers = ["Content-Type: application/json"]
    if encoding:
        headers.append(f"Content-Encoding: {'deflate' if encoding == 'raw' else encoding}")

    async def handler(head: str, _: bytes, writer: asyncio.StreamWriter, nth: int) -> bool:
        if not chunked:
            writer.write(answer("200 OK", headers + [f"Content-Length: {len(body)}"], body))
            return True
        writer.write(answer("200 OK", headers + ["Transfer-Encoding: chunked"]))
        for start in range(0, len(body), 65536):
            piece = body[start : start + 65536]
            writer.write(f"{len(piece):x}\r\n".encode() + piece + b"\r\n")
            await writer.drain()
        writer.write(b"0\r\n\r\n")
        return True

    return handler


@contextlib.asynccontextmanager
async def client(url: str, limits: Limits, timeout: float = 5.0) -> AsyncIterator[Upstream]:
    upstream = Upstream("t", url, timeout, limits=limits)
    try:
        yield upstream
    finally:
        await upstream.close()


async def test_a_buffered_gzip_bomb_fails_at_the_body_limit_naming_it() -> None:
    payload = gzip.compress(bytes(10 * MiB))  # 10 MB of zeros in about 10 KB
    assert len(payload) < 20_000
    async with ScriptedServer(sends(payload, "gzip")) as server:
        async with client(server.url, Limits(upstream_body=1 * MiB)) as upstream:
            response = await send(upstream)
            with pytest.raises(
                UpstreamError,
                match=r"^upstream t \(op\): answered more than 1 MiB once "
                r"decompressed " + BODY_LIMIT,
            ) as caught:
                await response.read()
            assert (caught.value.namespace, caught.value.operation) == ("t", "op")
            assert not response._response._chunks  # what was inflated is let go at once


@pytest.mark.parametrize("encoding", ["gzip", "deflate", "raw"])
@pytest.mark.parametrize("chunked", [False, True], ids=["length", "chunked"])
async def test_exactly_the_limit_is_read_and_one_byte_more_is_refused(encoding: str, chunked: bool) -> None:
    limit = HIGH_WATER + 3 * STEP + 17  # past the high-water mark, so pausing and inflating in steps both happen
    exact, over = b"a" * limit, b"a" * (limit + 1)

    async def handler(head: str, body: bytes, writer: asyncio.StreamWriter, nth: int) -> bool:
        data = exact if "/exact" in head else over
        return await sends(compressed(data, encoding), encoding, chunked)(head, body, writer, nth)

    async with ScriptedServer(handler) as server:
        async with client(server.url, Limits(upstream_body=limit)) as upstream:
            assert await (await send(upstream, "/exact")).read() == exact
            too_large = rf"answered more than {limit} bytes once decompressed " + BODY_LIMIT
            with pytest.raises(UpstreamError, match=too_large):
                await (await send(upstream, "/over")).read()
            assert await (await send(upstream, "/exact")).read() == exact  # and the client goes on working


@pytest.mark.parametrize("chunked", [False, True], ids=["length", "chunked"])
async def test_a_plain_body_exactly_at_the_limit_is_read_and_one_byte_more_is_refused(chunked: bool) -> None:
    limit = HIGH_WATER + 12345

    async def handler(head: str, body: bytes, writer: asyncio.StreamWriter, nth: int) -> bool:
        data = b"b" * (limit if "/exact" in head else limit + 1)
        return await sends(data, None, chunked)(head, body, writer, nth)

    async with ScriptedServer(handler) as server:
        async with client(server.url, Limits(upstream_body=limit)) as upstream:
            assert await (await send(upstream, "/exact")).read() == b"b" * limit
            with pytest.raises(UpstreamError, match=rf"answered more than {limit} bytes " + BODY_LIMIT):
                await (await send(upstream, "/over")).read()


class Trickle:
    """An upstream that keeps writing a body slowly and notes when the client hangs up."""

    def __init__(self, head: bytes, piece: bytes, seconds: float = 4.0) -> None:
        self.head, self.piece, self.seconds = head, piece, seconds
        self.hung_up_after: float | None = None

    async def __call__(self, head: str, body: bytes, writer: asyncio.StreamWriter, nth: int) -> bool:
        writer.write(self.head)
        started = time.monotonic()
        try:
            while time.monotonic() - started < self.seconds:
                writer.write(self.piece)
                await writer.drain()
                await asyncio.sleep(0.005)
        except ConnectionError:
            self.hung_up_after = time.monotonic() - started
        return False


async def test_a_declared_length_over_the_limit_is_refused_before_the_body_is_read() -> None:
    trickle = Trickle(answer("200 OK", ["Content-Type: application/json", f"Content-Length: {200 * MiB}"]), b" " * 1024)
    async with ScriptedServer(trickle) as server:
        async with client(server.url, Limits(), timeout=10.0) as upstream:
            response = await send(upstream)
            started = time.monotonic()
            with pytest.raises(UpstreamError, match="answered more than 32 MiB " + BODY_LIMIT):
                await response.read()
            assert time.monotonic() - started < 0.5  # nothing of the 200 MB was waited for
            for _ in range(100):  # the connection is closed, so the upstream stops sending
                if trickle.hung_up_after is not None:
                    break
                await asyncio.sleep(0.02)
            assert trickle.hung_up_after is not None and trickle.hung_up_after < 3.0


async def test_a_bomb_that_never_ends_fails_at_the_limit_and_hangs_up() -> None:
    compressor = zlib.compressobj(9, zlib.DEFLATED, 31)
    start = compressor.compress(bytes(MiB)) + compressor.flush(zlib.Z_FULL_FLUSH)
    segment = compressor.compress(bytes(MiB)) + compressor.flush(zlib.Z_FULL_FLUSH)
    head = answer("200 OK", ["Content-Type: application/json", "Content-Encoding: gzip", "Connection: close"], start)
    trickle = Trickle(head, segment * 16)  # 16 MiB inflated per write, for as long as the client listens
    async with ScriptedServer(trickle) as server:
        async with client(server.url, Limits(upstream_body=8 * MiB)) as upstream:
            response = await send(upstream)
            with pytest.raises(UpstreamError, match="answered more than 8 MiB once decompressed " + BODY_LIMIT):
                await response.read()
            assert response._response._connection.closed
            for _ in range(100):
                if trickle.hung_up_after is not None:
                    break
                await asyncio.sleep(0.02)
            assert trickle.hung_up_after is not None and trickle.hung_up_after < 3.0


@pytest.mark.parametrize(
    "wbits,encoding", [(31, "gzip"), (15, "deflate"), (-15, "deflate")], ids=["gzip", "deflate-zlib", "deflate-raw"]
)
async def test_bombs_of_every_encoding_fail_buffered_and_streamed(wbits: int, encoding: str) -> None:
    payload = bomb(256, wbits)  # 256 MiB of zeros in about 260 KB

    async def handler(head: str, body: bytes, writer: asyncio.StreamWriter, nth: int) -> bool:
        writer.write(
            answer(
                "200 OK",
                ["Content-Type: application/json", f"Content-Encoding: {encoding}", f"Content-Length: {len(payload)}"],
                payload,
            )
        )
        return True

    async with ScriptedServer(handler) as server:
        async with client(server.url, Limits(upstream_body=2 * MiB)) as upstream:
            with pytest.raises(UpstreamError, match="answered more than 2 MiB once decompressed " + BODY_LIMIT):
                await (await send(upstream)).read()
            streamed = await send(upstream)
            received = 0
            with pytest.raises(UpstreamError, match="inflates more than 200 times " + RATIO_LIMIT):
                async for chunk in streamed.chunks():
                    received += len(chunk)
            assert received <= 2 * MiB  # the ratio is checked from 1 MiB on


async def test_a_streamed_bomb_stops_at_the_decompressed_stream_limit() -> None:
    payload = bomb(64)

    async def handler(head: str, body: bytes, writer: asyncio.StreamWriter, nth: int) -> bool:
        if "/again" in head:
            writer.write(json_answer())
            return True
        writer.write(
            answer(
                "200 OK",
                ["Content-Type: application/octet-stream", "Content-Encoding: gzip", f"Content-Length: {len(payload)}"],
                payload,
            )
        )
        return True

    async with ScriptedServer(handler) as server:
        limits = Limits(decompressed_stream=4 * MiB, compression_ratio=100_000)
        async with client(server.url, limits) as upstream:
            received = 0
            with pytest.raises(UpstreamError, match="answered more than 4 MiB once decompressed " + STREAM_LIMIT):
                async for chunk in (await send(upstream)).chunks():
                    received += len(chunk)
            assert 3 * MiB < received <= 4 * MiB
            assert await (await send(upstream, "/again")).json() == {"ok": True}  # a new connection serves it


async def test_a_compressed_stream_is_inflated_as_it_is_read_so_its_buffer_stays_small() -> None:
    total = 64 * MiB
    payload = gzip.compress(bytes(total), 1)  # arrives in a few socket reads, inflates 1000-fold

    async def handler(head: str, body: bytes, writer: asyncio.StreamWriter, nth: int) -> bool:
        writer.write(
            answer(
                "200 OK",
                ["Content-Type: application/octet-stream", "Content-Encoding: gzip", f"Content-Length: {len(payload)}"],
                payload,
            )
        )
        return True

    async with ScriptedServer(handler) as server:
        async with client(server.url, Limits(compression_ratio=2000)) as upstream:
            response = await send(upstream)
            await asyncio.sleep(0.2)  # the whole compressed body is in before anyone reads
            received, largest = 0, 0
            async for chunk in response.chunks():
                received += len(chunk)
                largest = max(largest, response._response._buffered)
                assert not chunk.strip(b"\0")
            assert received == total
            assert largest <= HIGH_WATER + STEP  # not the 64 MiB a whole-chunk inflate would hold
            again = await send(upstream, "/next")
            assert sum([len(chunk) async for chunk in again.chunks()]) == total
    assert server.connections == 1  # the connection went back to the pool once the body was in


async def test_a_slow_reader_of_a_compressed_stream_keeps_its_connection_while_it_reads() -> None:
    """The socket stays paused while compressed input waits; reading it is progress, not a stall."""
    total = 16 * MiB
    payload = gzip.compress(bytes(total))
    half = len(payload) // 2

    async def handler(head: str, body: bytes, writer: asyncio.StreamWriter, nth: int) -> bool:
        writer.write(
            answer(
                "200 OK",
                ["Content-Type: application/octet-stream", "Content-Encoding: gzip", f"Content-Length: {len(payload)}"],
                payload[:half],
            )
        )
        await writer.drain()
        await asyncio.sleep(0.5)
        writer.write(payload[half:])
        return True

    async with ScriptedServer(handler) as server:
        async with client(server.url, Limits(compression_ratio=2000), timeout=0.4) as upstream:
            received = 0
            async for chunk in (await send(upstream)).chunks():
                received += len(chunk)
                await asyncio.sleep(0.005)  # 256 chunks: well past the 0.4 s timeout in all
            assert received == total


async def test_a_big_buffered_inflate_lets_the_event_loop_run_between_budgets() -> None:
    total = 16 * MiB
    payload = gzip.compress(bytes(total))  # 16 KB: one socket read, sixteen 1 MiB budgets to inflate

    async with ScriptedServer(sends(payload, "gzip")) as server, client(server.url, Limits()) as upstream:
        response = await send(upstream)
        ticks, done = 0, False

        async def ticker() -> None:
            nonlocal ticks
            while not done:
                ticks += 1
                await asyncio.sleep(0)

        task = asyncio.create_task(ticker())
        body = await response.read()
        done = True
        await task
    assert body == bytes(total)
    assert ticks >= 8  # others ran between the budgets, not once after 16 MiB of inflating


async def test_invalid_deflate_data_is_a_broken_response() -> None:
    async with ScriptedServer(sends(b"\xff" * 100, "deflate")) as server:
        async with client(server.url, Limits()) as upstream:
            with pytest.raises(UpstreamError, match="not valid compressed data"):
                await (await send(upstream)).read()


async def test_small_answers_are_untouched_by_the_limits() -> None:
    async def handler(head: str, body: bytes, writer: asyncio.StreamWriter, nth: int) -> bool:
        writer.write(json_answer())
        return True

    async with ScriptedServer(handler) as server:
        async with client(server.url, Limits(upstream_body=16)) as upstream:
            for _ in range(3):
                assert await (await send(upstream)).json() == {"ok": True}
    assert server.connections == 1


# --- memory, measured in a fresh process --------------------------------------------------

MEASURE = textwrap.dedent("""\
    import asyncio, json, sys, time, zlib
    sys.path.insert(0, sys.argv[1])
    from naftiko.engine.upstream import Prepared
    from naftiko.engine.upstream.client import Upstream

    kind = sys.argv[2]
    MiB = 1024 * 1024

    def status(field):
        with open("/proc/self/status") as lines:
            return next(int(line.split()[1]) for line in lines if line.startswith(field + ":")) / 1024

    def bomb(mib):
        c = zlib.compressobj(9, zlib.DEFLATED, 31)
        first = c.compress(bytes(MiB)) + c.flush(zlib.Z_FULL_FLUSH)
        same = c.compress(bytes(MiB)) + c.flush(zlib.Z_FULL_FLUSH)
        return first + same * (mib - 1) + c.flush()

    async def serve(reader, writer):
        await reader.readuntil(b"\\r\\n\\r\\n")
        try:
            if kind.startswith("bomb"):
                body = bomb(4096)  # 4 GiB of zeros in about 4 MB
                writer.write(b"HTTP/1.1 200 OK\\r\\nContent-Type: application/json\\r\\nContent-Encoding: gzip\\r\\n"
                             + f"Content-Length: {len(body)}\\r\\n\\r\\n".encode())
                for start in range(0, len(body), 65536):
                    writer.write(body[start:start + 65536])
                    await writer.drain()
            else:  # 200 MB of JSON, declared or not
                size = 200 * MiB
                framing = f"Content-Length: {size}" if kind == "json-length" else "Connection: close"
                writer.write(f"HTTP/1.1 200 OK\\r\\nContent-Type: application/json\\r\\n{framing}\\r\\n\\r\\n".encode())
                piece = b" " * MiB
                for _ in range(200):
                    writer.write(piece)
                    await writer.drain()
        except (ConnectionError, asyncio.CancelledError):
            pass
        writer.close()

    async def main():
        server = await asyncio.start_server(serve, "127.0.0.1", 0)
        upstream = Upstream("big", f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}", 30.0)
        before = status("VmRSS")
        with open("/proc/self/clear_refs", "w") as clear:
            clear.write("5")  # the peak (VmHWM) starts again from here
        started = time.monotonic()
        error = None
        try:
            response = await upstream.send("get", Prepared("GET", "/", (), None))
            if kind == "bomb-streamed":
                async for _ in response.chunks():
                    pass
            else:
                await response.read()
        except Exception as exc:
            error = f"{type(exc).__name__}: {exc}"
        seconds = time.monotonic() - started
        growth = status("VmHWM") - before
        await upstream.close()
        server.close()
        print(json.dumps({"error": error, "seconds": seconds, "growth_mib": growth}))

    asyncio.run(main())
""")


@pytest.mark.parametrize(
    "kind,message,most_mib",
    [
        ("bomb-buffered", "answered more than 32 MiB once decompressed " + BODY_LIMIT, 80),
        ("bomb-streamed", "inflates more than 200 times " + RATIO_LIMIT, 24),
        ("json-length", "answered more than 32 MiB " + BODY_LIMIT, 24),
        ("json-until-close", "answered more than 32 MiB " + BODY_LIMIT, 80),
    ],
)
def test_memory_stays_bounded_by_the_limit_not_by_the_upstream(kind: str, message: str, most_mib: int) -> None:
    """4 GiB gzip bombs and 200 MB JSON answers with the default limits, in a fresh process."""
    done = subprocess.run([sys.executable, "-c", MEASURE, str(ROOT), kind], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    outcome = json.loads(done.stdout)
    assert outcome["error"] is not None and outcome["error"].startswith("UpstreamError: upstream big (get): ")
    assert __import__("re").search(message, outcome["error"]), outcome["error"]
    assert outcome["seconds"] < 10
    assert outcome["growth_mib"] < most_mib, outcome


# --- end to end: naftiko serve, a REST route and an MCP tool over a mapped operation ------

CAPABILITY = """\
naftiko: 1.0.0-alpha2
capability:
  exposes:
    - type: rest
      port: 9190
      namespace: shop-rest
      resources:
        - path: /items
          operations:
            - method: GET
              call: shop.list-items
              outputParameters:
                - {name: first, type: string, mapping: '$.items[0].name'}
    - type: mcp
      port: 9191
      namespace: shop-mcp
      description: Items.
      tools:
        - name: list-items
          description: Every item.
          call: shop.list-items
          outputParameters:
            - {name: first, type: string, mapping: '$.items[0].name'}
  consumes:
    - type: http
      namespace: shop
      baseUri: http://localhost:1
      resources:
        - path: /items
          name: items
          operations:
            - {method: GET, name: list-items}
"""


async def test_a_mapped_operation_answering_a_bomb_is_a_502_and_an_mcp_error_naming_the_limit(
    tmp_path: Path, upstream: RecordingUpstream, naftiko
) -> None:
    upstream.reply(
        "GET",
        "/items",
        Reply(body=gzip.compress(b'{"items": [' + b"0, " * (3 * MiB) + b"1]}"), headers={"content-encoding": "gzip"}),
    )
    path = tmp_path / "shop.yaml"
    path.write_text(CAPABILITY)
    process = naftiko(
        str(path),
        "--base-uri",
        f"shop={upstream.url}",
        "--port",
        "shop-rest=0",
        "--port",
        "shop-mcp=0",
        env={"NAFTIKO_MAX_UPSTREAM_BODY": "1M"},
    )
    urls = process.wait_for("shop-rest", "shop-mcp")
    async with httpx.AsyncClient(timeout=10) as http:
        reply = await http.get(urls["shop-rest"] + "/items")
    assert reply.status_code == 502
    message = reply.json()["error"]["message"]
    assert "shop" in message and "list-items" in message
    assert (
        "answered more than 1 MiB once decompressed (limit upstream-body; raise it with --limit "
        "upstream-body=SIZE or NAFTIKO_MAX_UPSTREAM_BODY)" in message
    )

    async with Client(urls["shop-mcp"], cache=None) as mcp:
        result = await mcp.call_tool("list-items", {})
    text = " ".join(getattr(c, "text", "") for c in result.content)
    assert result.is_error and "upstream-body" in text and "shop" in text
    assert "Traceback" not in "\n".join(process.log)
