"""A large upstream JSON answer through MCP `tools/call`, as the official SDK client sees it.

The answer is the upstream's own body, so naftiko splices its bytes into the reply as
`structuredContent` after one syntax check and sends its text JSON-escaped once (issue 16;
engine/jsoncodec.py `passthrough`). What must hold in both eras: the client gets exactly the
upstream's data, as structured content and as text, whatever the strings hold (non-ASCII, quotes,
backslashes, control characters, line separators); a body that is not JSON, or not valid JSON,
keeps its old answers; and the upstream-body limit still bounds what is read.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from mcp import Client

from naftiko.engine import RawJSON, dumps, passthrough
from tests.support import NaftikoProcess, RecordingUpstream, Reply

pytestmark = pytest.mark.anyio

ERAS = [("auto", "2026-07-28"), ("legacy", "2025-11-25")]
MCP = "big-mcp"

CAPABILITY = """\
naftiko: 1.0.0-alpha2
info:
  label: large answers
  description: One upstream whose answers are large JSON documents, exposed as MCP tools.
capability:
  consumes:
    - type: http
      namespace: big
      baseUri: ''
      description: The test's upstream.
      resources:
        - name: doc
          path: /doc
          operations:
            - name: doc
              method: GET
              description: A large JSON document
        - name: listed
          path: /listed
          operations:
            - name: listed
              method: GET
              description: A large JSON array
  exposes:
    - type: mcp
      namespace: big-mcp
      port: 18999
      transport: http
      description: The large answers over MCP.
      tools:
        - name: doc
          description: The document, mapped with $. as the bench's tool is
          call: big.doc
          outputParameters:
            - type: object
              mapping: $.
        - name: plain
          description: The document, as the upstream answered it (no outputParameters)
          call: big.doc
        - name: listed
          description: The array, as the upstream answered it
          call: big.listed
"""

# Every kind of character a JSON string may hold, escaped or not.
AWKWARD = 'Zoë 中文 😀 "quoted" back\\slash /slash \x00\x01\x1f\x7f tab\t cr\r nl\n \u2028\u2029 \ufeff end'


def document(records: int = 6000) -> dict[str, Any]:
    """About 1 MB of nested records, every one holding the awkward text."""
    items = [
        {
            "id": i,
            "name": f"item-{i} {AWKWARD}",
            "value": i * 1.5,
            "active": i % 2 == 0,
            "nested": {"tags": ["x", AWKWARD[i % len(AWKWARD) :]], "none": None, "deep": [[{"n": -i}]]},
        }
        for i in range(records)
    ]
    return {"name": "large", "count": records, "items": items}


@pytest.fixture(scope="module")
def large() -> tuple[dict[str, Any], bytes]:
    data = document()
    body = json.dumps(data, ensure_ascii=False, indent=1).encode()  # pretty: newlines between tokens
    assert len(body) > 1024 * 1024
    return data, body


def serve(naftiko: Any, upstream: RecordingUpstream, tmp_path: Path, *flags: str) -> str:
    file = tmp_path / "large.yaml"
    file.write_text(CAPABILITY)
    process: NaftikoProcess = naftiko(
        str(file), "--base-uri", f"big={upstream.url}", "--port", f"{MCP}=0", "--timeout", "10", *flags
    )
    return process.wait_for(MCP)[MCP]


@pytest.fixture
def mcp_url(naftiko: Any, upstream: RecordingUpstream, tmp_path: Path) -> Iterator[str]:
    yield serve(naftiko, upstream, tmp_path)


@asynccontextmanager
async def client(url: str, mode: str) -> AsyncIterator[Client]:
    async with Client(url, mode=mode, cache=None) as connected:
        yield connected


@pytest.mark.parametrize("mode,version", ERAS)
async def test_a_large_answer_is_the_upstream_data_as_structured_content_and_text(
    mcp_url: str, upstream: RecordingUpstream, large: tuple[dict[str, Any], bytes], mode: str, version: str
) -> None:
    data, body = large
    upstream.reply("GET", "/doc", Reply(body=body))
    async with client(mcp_url, mode) as mcp:
        assert mcp.protocol_version == version
        for tool in ("doc", "plain"):
            result = await mcp.call_tool(tool, {})
            assert result.is_error is False, result.content
            assert result.structured_content == data, tool
            assert len(result.content) == 1 and result.content[0].type == "text"
            assert result.content[0].text == body.decode(), "the text is the upstream's own, white space and all"
            assert json.loads(result.content[0].text) == data


@pytest.mark.parametrize("mode,version", ERAS)
async def test_a_large_array_is_wrapped_only_in_the_handshake_era(
    mcp_url: str, upstream: RecordingUpstream, large: tuple[dict[str, Any], bytes], mode: str, version: str
) -> None:
    items = large[0]["items"]
    upstream.reply("GET", "/listed", Reply(body=json.dumps(items, ensure_ascii=False).encode()))
    async with client(mcp_url, mode) as mcp:
        result = await mcp.call_tool("listed", {})
    assert result.is_error is False
    assert result.structured_content == (items if version == "2026-07-28" else {"result": items})
    assert json.loads(result.content[0].text) == items


def _call(url: str, tool: str, version: str) -> dict[str, Any]:
    """One tools/call by hand, so the raw reply (one framed JSON text) can be looked at too."""
    params: dict[str, Any] = {"name": tool, "arguments": {}}
    headers = {"Accept": "application/json, text/event-stream", "MCP-Protocol-Version": version}
    if version == "2026-07-28":
        params["_meta"] = {
            "io.modelcontextprotocol/protocolVersion": version,
            "io.modelcontextprotocol/clientCapabilities": {},
        }
        headers |= {"Mcp-Method": "tools/call", "Mcp-Name": tool}
    else:
        init = {"protocolVersion": version, "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}
        opened = httpx.post(url, json={"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": init})
        headers["Mcp-Session-Id"] = opened.headers["mcp-session-id"]
    request = {"jsonrpc": "2.0", "id": 7, "method": "tools/call", "params": params}
    answer = httpx.post(url, json=request, headers=headers, timeout=30)
    assert answer.status_code == 200 and b"\n" not in answer.content, "one JSON text, no raw newline"
    return json.loads(answer.content)["result"]


@pytest.mark.parametrize("version", ["2026-07-28", "2025-11-25"])
def test_bodies_that_are_not_valid_json_keep_their_answers(
    mcp_url: str, upstream: RecordingUpstream, large: tuple[dict[str, Any], bytes], version: str
) -> None:
    _, body = large
    upstream.reply("GET", "/doc", Reply(body=body[:-2]))  # cut short
    broken = _call(mcp_url, "plain", version)
    assert broken["isError"] is True and "structuredContent" not in broken
    assert "not valid" in broken["content"][0]["text"]

    upstream.reply("GET", "/doc", Reply(body=b'{"name": "caf\xe9"}'))  # Latin-1, not UTF-8
    assert _call(mcp_url, "plain", version)["isError"] is True

    upstream.reply("GET", "/doc", Reply(body=body, content_type="text/plain"))  # not declared JSON: text only
    text = _call(mcp_url, "plain", version)
    assert text["isError"] is False and "structuredContent" not in text
    assert text["content"] == [{"type": "text", "text": body.decode()}]

    # a lone surrogate is JSON orjson refuses and the standard library reads: still answered
    upstream.reply("GET", "/doc", Reply(body=b'{"s": "\\ud800", "big": 123456789012345678901234567890}'))
    odd = _call(mcp_url, "plain", version)
    assert odd["isError"] is False
    assert odd["structuredContent"] == {"s": "\ud800", "big": 123456789012345678901234567890}


async def test_the_upstream_body_limit_still_applies(
    naftiko: Any, upstream: RecordingUpstream, tmp_path: Path, large: tuple[dict[str, Any], bytes]
) -> None:
    url = serve(naftiko, upstream, tmp_path, "--limit", "upstream-body=512K")
    upstream.reply("GET", "/doc", Reply(body=large[1]))
    async with client(url, "auto") as mcp:
        result = await mcp.call_tool("plain", {})
    assert result.is_error is True and result.structured_content is None
    assert "upstream-body" in result.content[0].text


@pytest.mark.parametrize(
    "raw",
    [
        b'{"a": [1, 2.5e3, -0, true, false, null, "x\\u00e9\\n"]}',
        b" \r\n\t[1, {}]\n",
        b'"just a string"',
        b'{"big": 123456789012345678901234567890}',
        '{"é": "😀"}'.encode(),
    ],
)
def test_valid_utf8_json_is_kept_as_its_own_bytes(raw: bytes) -> None:
    kept = passthrough(raw)
    assert isinstance(kept, RawJSON) and kept.raw is raw
    assert kept.is_object == isinstance(json.loads(raw), dict)
    assert json.loads(dumps({"s": kept})) == {"s": json.loads(raw)}


@pytest.mark.parametrize(
    "raw",
    [b'{"a": 1,}', b'{"a": 1} {"b": 2}', b'{"a": "\xff"}', b'{"a": "\x01"}', b"[" * 5000 + b"]" * 5000, b"NaN", b""],
)
def test_what_is_not_json_is_refused(raw: bytes) -> None:
    with pytest.raises((ValueError, RecursionError)):
        passthrough(raw)
