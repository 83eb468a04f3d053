"""Binary answers (`outputRawFormat: binary`, `outputMediaType`, `maxBinarySize`) through REST and MCP.

`naftiko serve` runs as a process against a loopback upstream serving a real PNG, a body relabelled
by `outputMediaType`, bodies past `maxBinarySize` (declared and chunked) and a slow chunked download.
REST streams them through (never buffered, cut short past the limit); MCP answers image, audio or
embedded-resource blob content, read by the official SDK client in both eras.
"""

from __future__ import annotations

import base64
import struct
import time
import zlib
from pathlib import Path
from collections.abc import Iterable, Iterator

import httpx
import pytest
from mcp import Client

from naftiko import CapabilityError, load_capabilities

from tests.support import NaftikoProcess, RecordingUpstream, Reply, ThreadedServer

pytestmark = pytest.mark.anyio

ERAS = [("auto", "2026-07-28"), ("legacy", "2025-11-25")]


def _png() -> bytes:
    """A real 1×1 PNG: signature, IHDR, IDAT, IEND."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", 1, 1, 8, 6, 0, 0, 0)
    pixels = zlib.compress(b"\x00\xff\x00\x00\xff")
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")


PNG = _png()
PDF = b"%PDF-1.4\n" + bytes(range(256)) * 4 + b"\n%%EOF\n"
WAV = b"RIFF\x24\x00\x00\x00WAVEfmt " + bytes(24)
BIG = bytes(range(256)) * 800  # 200 KiB
PIECE = bytes(range(256)) * 64  # 16 KiB

OPERATIONS = {
    # name: (upstream path, extra keys)
    "get-logo": ("/logo.png", ""),
    "get-report": ("/report.bin", "outputMediaType: application/pdf"),
    "get-sound": ("/sound.wav", ""),
    "get-big": ("/big.bin", "maxBinarySize: 64KiB"),
    "get-big-chunked": ("/big-chunked.bin", "maxBinarySize: 64KiB"),
    "get-stream": ("/stream.bin", ""),
    "get-report-allowed": ("/report.bin", "maxBinarySize: 4KiB"),
}
CAPPED = ("get-logo", "get-report", "get-report-allowed")  # served again by blocks with maxBinarySize: 512B


def _routes(names: Iterable[str]) -> str:
    route = "\n        - path: /{0}\n          operations:\n            - method: GET\n              call: files.{0}\n"
    return "".join(route.format(name) for name in names)


def _tools(names: Iterable[str]) -> str:
    return "".join(
        f"\n        - name: {name}\n          description: {name}\n          call: files.{name}\n" for name in names
    )


def _capability() -> str:
    consumed = "".join(
        f"""
        - path: {path}
          name: {name}
          operations:
            - method: GET
              name: {name}
              outputRawFormat: binary
              {extra}
"""
        for name, (path, extra) in OPERATIONS.items()
    )
    routes, tools = _routes(OPERATIONS), _tools(OPERATIONS)
    capped_routes, capped_tools = _routes(CAPPED), _tools(CAPPED)
    return f"""\
naftiko: "1.0.0-alpha2"
capability:
  exposes:
    - type: rest
      port: 9312
      namespace: capped-rest
      maxBinarySize: 512B
      resources:{capped_routes}
    - type: mcp
      port: 9313
      namespace: capped-mcp
      maxBinarySize: 512B
      tools:{capped_tools}
    - type: rest
      port: 9310
      namespace: files-rest
      resources:{routes}
    - type: mcp
      port: 9311
      namespace: files-mcp
      tools:{tools}
  consumes:
    - type: http
      namespace: files
      baseUri: http://localhost:1
      resources:{consumed}
"""


def _replies(upstream: RecordingUpstream) -> None:
    def whole(body: bytes, content_type: str) -> Reply:
        return Reply(body=body, content_type=content_type, headers={"content-length": str(len(body))})

    upstream.reply("GET", "/logo.png", whole(PNG, "image/png"))
    upstream.reply("GET", "/report.bin", whole(PDF, "application/octet-stream"))
    upstream.reply("GET", "/sound.wav", whole(WAV, "audio/wav"))
    upstream.reply("GET", "/big.bin", whole(BIG, "application/octet-stream"))
    upstream.reply("GET", "/big-chunked.bin", Reply(chunks=[PIECE] * 12, content_type="application/octet-stream"))
    upstream.reply(
        "GET", "/stream.bin", Reply(chunks=[PIECE] * 8, interval=0.15, content_type="application/octet-stream")
    )


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[dict[str, str], RecordingUpstream]]:
    recorder = RecordingUpstream()
    path = tmp_path_factory.mktemp("binary") / "files.yaml"
    path.write_text(_capability())
    _replies(recorder)
    with ThreadedServer(recorder) as url:
        recorder.url = url
        args = [str(path), "--base-uri", f"files={url}", "--port", "files-rest=0", "--port", "files-mcp=0"]
        args += ["--port", "capped-rest=0", "--port", "capped-mcp=0"]
        process = NaftikoProcess([*args, "--limit", "upstream-body=96K"])  # so the MCP default bound shows
        try:
            yield process.wait_for("files-rest", "files-mcp", "capped-rest", "capped-mcp"), recorder
        finally:
            process.stop()


# --------------------------------------------------------------------------- REST


def test_rest_streams_a_png_with_its_type_and_length(served: tuple[dict[str, str], RecordingUpstream]) -> None:
    answer = httpx.get(served[0]["files-rest"] + "/get-logo")
    assert answer.status_code == 200
    assert answer.content == PNG
    assert answer.headers["content-type"] == "image/png"
    assert answer.headers["content-length"] == str(len(PNG))


def test_rest_output_media_type_overrides_the_upstream(served: tuple[dict[str, str], RecordingUpstream]) -> None:
    answer = httpx.get(served[0]["files-rest"] + "/get-report")
    assert answer.status_code == 200 and answer.content == PDF
    assert answer.headers["content-type"] == "application/pdf"


def test_rest_refuses_a_declared_length_past_max_binary_size(
    served: tuple[dict[str, str], RecordingUpstream],
) -> None:
    answer = httpx.get(served[0]["files-rest"] + "/get-big")
    assert answer.status_code == 502
    error = answer.json()["error"]
    assert error["type"] == "upstream_error" and error["upstream"] == "files"
    assert "declared 204800 bytes" in error["message"] and "maxBinarySize of 64 KiB" in error["message"]


def test_rest_cuts_a_chunked_answer_short_past_max_binary_size(
    served: tuple[dict[str, str], RecordingUpstream],
) -> None:
    received = b""
    with pytest.raises(httpx.RemoteProtocolError):  # no final chunk: the caller sees it was cut short
        with httpx.stream("GET", served[0]["files-rest"] + "/get-big-chunked") as answer:
            assert answer.status_code == 200  # the head went out before the limit was reached
            for part in answer.iter_bytes():
                received += part
    assert len(received) <= 64 * 1024, "nothing past the limit was passed on"


def test_rest_streams_without_buffering_or_a_limit(served: tuple[dict[str, str], RecordingUpstream]) -> None:
    """Upstream-body (96 KiB here) bounds what is read whole, not a download: 128 KiB pass, the first part early."""
    started = time.monotonic()
    first: float | None = None
    received = b""
    with httpx.stream("GET", served[0]["files-rest"] + "/get-stream") as answer:
        assert answer.status_code == 200 and "content-length" not in answer.headers
        for part in answer.iter_raw():
            first = first if first is not None else time.monotonic() - started
            received += part
    total = time.monotonic() - started
    assert received == PIECE * 8
    assert first is not None and first < total - 0.5, (first, total)  # 8 parts 0.15 s apart: streamed as they came


# --------------------------------------------------------------------------- MCP


@pytest.mark.parametrize("mode,version", ERAS)
async def test_mcp_answers_image_audio_and_blob_content(
    served: tuple[dict[str, str], RecordingUpstream], mode: str, version: str
) -> None:
    async with Client(served[0]["files-mcp"], mode=mode, cache=None) as mcp:
        assert mcp.protocol_version == version
        tools = {tool.name: tool for tool in (await mcp.list_tools()).tools}
        assert all(tool.output_schema is None for tool in tools.values()), "a binary answer has no JSON shape"
        logo = await mcp.call_tool("get-logo", {})
        sound = await mcp.call_tool("get-sound", {})
        report = await mcp.call_tool("get-report", {})
    assert logo.is_error is False and logo.structured_content is None
    (image,) = logo.content
    assert image.type == "image" and image.mime_type == "image/png" and base64.b64decode(image.data) == PNG
    (audio,) = sound.content
    assert audio.type == "audio" and audio.mime_type == "audio/wav" and base64.b64decode(audio.data) == WAV
    (embedded,) = report.content
    assert embedded.type == "resource"
    assert embedded.resource.mime_type == "application/pdf"
    assert base64.b64decode(embedded.resource.blob) == PDF


@pytest.mark.parametrize("mode,version", ERAS)
async def test_mcp_binary_answers_are_bounded(
    served: tuple[dict[str, str], RecordingUpstream], mode: str, version: str
) -> None:
    async with Client(served[0]["files-mcp"], mode=mode, cache=None) as mcp:
        declared = await mcp.call_tool("get-big", {})
        chunked = await mcp.call_tool("get-big-chunked", {})
        default = await mcp.call_tool("get-stream", {})  # no maxBinarySize: upstream-body (96 KiB here)
    for result in (declared, chunked):
        assert result.is_error is True
        assert "maxBinarySize of 64 KiB" in result.content[0].text
    assert default.is_error is True
    assert "more than 96 KiB" in default.content[0].text and "--limit upstream-body" in default.content[0].text


# --------------------------------------------------------------------------- a block's maxBinarySize


def test_rest_a_blocks_limit_bounds_operations_without_their_own(
    served: tuple[dict[str, str], RecordingUpstream],
) -> None:
    capped = served[0]["capped-rest"]
    assert httpx.get(capped + "/get-logo").content == PNG  # under 512 B
    refused = httpx.get(capped + "/get-report")
    assert refused.status_code == 502
    assert "exposes block's maxBinarySize of 512 bytes" in refused.json()["error"]["message"]
    allowed = httpx.get(capped + "/get-report-allowed")  # its own 4 KiB wins over the block's
    assert allowed.status_code == 200 and allowed.content == PDF
    assert httpx.get(served[0]["files-rest"] + "/get-report").status_code == 200  # other blocks unbounded


@pytest.mark.parametrize("mode,version", ERAS)
async def test_mcp_a_blocks_limit_bounds_operations_without_their_own(
    served: tuple[dict[str, str], RecordingUpstream], mode: str, version: str
) -> None:
    async with Client(served[0]["capped-mcp"], mode=mode, cache=None) as mcp:
        logo = await mcp.call_tool("get-logo", {})
        refused = await mcp.call_tool("get-report", {})
        allowed = await mcp.call_tool("get-report-allowed", {})
    assert logo.is_error is False and base64.b64decode(logo.content[0].data) == PNG
    assert refused.is_error is True and "exposes block's maxBinarySize of 512 bytes" in refused.content[0].text
    assert allowed.is_error is False and base64.b64decode(allowed.content[0].resource.blob) == PDF


# --------------------------------------------------------------------------- the file


def test_a_bad_max_binary_size_is_a_positioned_problem(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(_capability().replace("maxBinarySize: 64KiB", "maxBinarySize: lots", 1))
    with pytest.raises(CapabilityError) as caught:
        load_capabilities([path])
    (problem,) = caught.value.problems
    line = next(n for n, text in enumerate(path.read_text().splitlines(), 1) if "maxBinarySize: lots" in text)
    assert (problem.location.line, problem.location.column) == (line, 30)
    assert "'maxBinarySize' must be a positive size such as 512KiB, 10MiB or 1GiB; got 'lots'" in problem.message


def test_sizes_in_either_spelling(tmp_path: Path) -> None:
    text = _capability()
    for written, size in (("1.5MiB", 1572864), ("512K", 524288), ("100B", 100), ("2048", 2048)):
        path = tmp_path / "sizes.yaml"
        path.write_text(text.replace("maxBinarySize: 64KiB", f"maxBinarySize: {written}", 1))
        (capability,) = load_capabilities([path])
        (operation,) = [
            op for c in capability.consumes for r in c.resources for op in r.operations if op.name == "get-big"
        ]
        assert operation.max_binary_size == size and operation.output_raw_format == "binary"
