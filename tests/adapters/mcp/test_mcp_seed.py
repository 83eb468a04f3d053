"""The seed's 19 MCP tools, as real MCP clients see them: `naftiko serve` started as a
process, the official SDK as the client, both protocol eras over HTTP and stdio, each tool
called against a recording upstream that must receive exactly PostHog's request."""

from __future__ import annotations

import json
import os
import sys
from contextlib import asynccontextmanager
from typing import Any
from collections.abc import AsyncIterator, Iterator
from urllib.parse import parse_qs

import anyio
import httpx
import pytest
from mcp import Client, StdioServerParameters

from tests.support import ROOT, SEED, NaftikoProcess, RecordingUpstream, Reply

pytestmark = pytest.mark.anyio

KEY = "phx_mcp_key"
MCP = "posthog-task-runs-mcp"
TASK, RUN = "task-1", "run-9"
RUNS = f"/api/projects/5/tasks/{TASK}/runs"
ERAS = [("auto", "2026-07-28"), ("legacy", "2025-11-25")]
BASE = {"project_id": "5", "task_id": TASK}
RUN_ARGS = {**BASE, "id": RUN}

# tool → (arguments, upstream method, path, query, JSON body)
TOOLS: dict[str, tuple[dict[str, Any], str, str, dict[str, list[str]], Any]] = {
    "list-task-runs": ({**BASE, "limit": 3}, "GET", f"{RUNS}/", {"limit": ["3"]}, None),
    "create-task-run": ({**BASE, "body": {"environment": "cloud"}}, "POST", f"{RUNS}/", {}, {"environment": "cloud"}),
    "api-managing-task-runs-each": (RUN_ARGS, "GET", f"{RUNS}/{RUN}/", {}, None),
    "update-task-run": ({**RUN_ARGS, "body": {"stage": "build"}}, "PATCH", f"{RUNS}/{RUN}/", {}, {"stage": "build"}),
    "append-log-entries": (
        {**RUN_ARGS, "body": {"entries": []}},
        "POST",
        f"{RUNS}/{RUN}/append_log/",
        {},
        {"entries": []},
    ),
    "upload-artifacts-task-run": (
        {**RUN_ARGS, "body": {"artifacts": []}},
        "POST",
        f"{RUNS}/{RUN}/artifacts/",
        {},
        {"artifacts": []},
    ),
    "download-artifact-through-backend": (
        {**RUN_ARGS, "body": {"storage_path": "p"}},
        "POST",
        f"{RUNS}/{RUN}/artifacts/download/",
        {},
        {"storage_path": "p"},
    ),
    "finalize-direct-uploads-task-run": (
        {**RUN_ARGS, "body": {"artifacts": [1]}},
        "POST",
        f"{RUNS}/{RUN}/artifacts/finalize_upload/",
        {},
        {"artifacts": [1]},
    ),
    "prepare-direct-uploads-task-run": (
        {**RUN_ARGS, "body": {"artifacts": [2]}},
        "POST",
        f"{RUNS}/{RUN}/artifacts/prepare_upload/",
        {},
        {"artifacts": [2]},
    ),
    "generate-presigned-url-artifact": (
        {**RUN_ARGS, "body": {"storage_path": "q"}},
        "POST",
        f"{RUNS}/{RUN}/artifacts/presign/",
        {},
        {"storage_path": "q"},
    ),
    "send-command-agent-server": (
        {**RUN_ARGS, "body": {"jsonrpc": "2.0", "method": "cancel"}},
        "POST",
        f"{RUNS}/{RUN}/command/",
        {},
        {"jsonrpc": "2.0", "method": "cancel"},
    ),
    "get-sandbox-connection-token": (RUN_ARGS, "GET", f"{RUNS}/{RUN}/connection_token/", {}, None),
    "get-task-run-logs": (RUN_ARGS, "GET", f"{RUNS}/{RUN}/logs/", {}, None),
    "relay-run-message-slack": (
        {**RUN_ARGS, "body": {"text": "hi"}},
        "POST",
        f"{RUNS}/{RUN}/relay_message/",
        {},
        {"text": "hi"},
    ),
    "resume-task-run-cloud": (RUN_ARGS, "POST", f"{RUNS}/{RUN}/resume_in_cloud/", {}, None),
    "get-filtered-task-run-session": (
        {**RUN_ARGS, "event_types": "a,b", "offset": 2},
        "GET",
        f"{RUNS}/{RUN}/session_logs/",
        {"event_types": ["a,b"], "offset": ["2"]},
        None,
    ),
    "set-run-output": (
        {**RUN_ARGS, "body": {"output": {"x": 1}}},
        "PATCH",
        f"{RUNS}/{RUN}/set_output/",
        {},
        {"output": {"x": 1}},
    ),
    "start-task-run": ({**RUN_ARGS}, "POST", f"{RUNS}/{RUN}/start/", {}, None),
    "api-managing-task-runs-each-2": (RUN_ARGS, "GET", f"{RUNS}/{RUN}/stream/", {}, None),
}


@pytest.fixture
def mcp_url(upstream: RecordingUpstream, naftiko) -> Iterator[str]:
    process: NaftikoProcess = naftiko(
        str(SEED),
        "--base-uri",
        f"posthog-task-runs={upstream.url}",
        "--port",
        f"{MCP}=0",
        "--port",
        "posthog-task-runs-rest=0",
        "--timeout",
        "2",
        env={"POSTHOG_API_KEY": KEY},
    )
    yield process.wait_for(MCP)[MCP]


@asynccontextmanager
async def client(url: str, mode: str) -> AsyncIterator[Client]:
    async with Client(url, mode=mode, cache=None) as connected:
        yield connected


@pytest.mark.parametrize("mode,version", ERAS)
async def test_tools_list_schemas_and_annotations(mcp_url: str, mode: str, version: str) -> None:
    async with client(mcp_url, mode) as mcp:
        assert mcp.protocol_version == version
        tools = {tool.name: tool for tool in (await mcp.list_tools()).tools}
    assert set(tools) == set(TOOLS)
    listing = tools["list-task-runs"]
    assert listing.description == "List task runs"
    assert listing.input_schema == {
        "type": "object",
        "properties": {
            "limit": {"type": "integer", "description": "Number of results to return per page."},
            "offset": {"type": "integer", "description": "The initial index from which to return the results."},
            "task_id": {"type": "string"},
            "project_id": {"type": "string"},
        },
        "required": ["task_id", "project_id"],
    }
    annotations = listing.annotations
    hints = (annotations.read_only_hint, annotations.destructive_hint, annotations.idempotent_hint)
    assert hints == (True, False, True)
    assert annotations.open_world_hint is None, "only the hints the file sets are listed"
    create = tools["create-task-run"].input_schema
    assert create["properties"]["body"] == {"type": "object", "description": "Request body (JSON)."}
    assert create["required"] == ["task_id", "project_id"]
    assert tools["append-log-entries"].input_schema["required"] == ["id", "task_id", "body", "project_id"]


@pytest.mark.parametrize("mode,version", ERAS)
async def test_every_tool_sends_the_exact_upstream_request(
    mcp_url: str, upstream: RecordingUpstream, mode: str, version: str
) -> None:
    async with client(mcp_url, mode) as mcp:
        for name, (arguments, method, path, query, body) in TOOLS.items():
            upstream.reply(method, path, Reply(status=201 if method == "POST" else 200, json={"tool": name}))
            result = await mcp.call_tool(name, arguments)
            assert not result.is_error, (name, result.content)
            assert json.loads(result.content[0].text) == {"tool": name}
            assert result.structured_content == {"tool": name}
            sent = upstream.last
            assert (sent.method, sent.path, parse_qs(sent.query)) == (method, path, query), name
            assert sent.headers["authorization"] == f"Bearer {KEY}"
            if body is None:
                assert sent.body == b"", name
            else:
                assert json.loads(sent.body) == body, name


@pytest.mark.parametrize("mode,version", ERAS)
async def test_errors_are_reported_as_tool_errors(
    mcp_url: str, upstream: RecordingUpstream, mode: str, version: str
) -> None:
    async with client(mcp_url, mode) as mcp:
        upstream.reply("GET", f"{RUNS}/{RUN}/", Reply(status=404, json={"detail": "Not found."}))
        missing = await mcp.call_tool("api-managing-task-runs-each", RUN_ARGS)
        assert missing.is_error and missing.structured_content is None
        assert missing.content[0].text == (
            'upstream posthog-task-runs answered HTTP 404 Not Found: {"detail": "Not found."}'
        )

        bad = await mcp.call_tool("list-task-runs", {**BASE, "limit": "ten"})
        assert bad.is_error and "limit" in bad.content[0].text

        absent = await mcp.call_tool("api-managing-task-runs-each", BASE)
        assert absent.is_error and "id" in absent.content[0].text
        requests_before = len(upstream.requests)

        upstream.reply("GET", f"{RUNS}/{RUN}/logs/", Reply(json={}, delay=3))
        slow = await mcp.call_tool("get-task-run-logs", RUN_ARGS)
        assert slow.is_error and "posthog-task-runs" in slow.content[0].text and "within 2s" in slow.content[0].text
        assert len(upstream.requests) == requests_before + 1

        with pytest.raises(Exception, match="Unknown tool"):
            await mcp.call_tool("no-such-tool", {})


async def test_empty_2xx_is_not_an_error(mcp_url: str, upstream: RecordingUpstream) -> None:
    upstream.reply("POST", f"{RUNS}/{RUN}/resume_in_cloud/", Reply(status=204, body=b""))
    async with client(mcp_url, "legacy") as mcp:
        result = await mcp.call_tool("resume-task-run-cloud", RUN_ARGS)
    assert not result.is_error


@pytest.mark.parametrize("mode,version", ERAS)
async def test_stdio(upstream: RecordingUpstream, mode: str, version: str) -> None:
    env = {**os.environ, "POSTHOG_API_KEY": KEY, "NAFTIKO_BASE_URI_POSTHOG_TASK_RUNS": upstream.url}
    params = StdioServerParameters(
        command=sys.executable, args=["-m", "naftiko", "serve", str(SEED), "--stdio"], env=env, cwd=str(ROOT)
    )
    async with Client(params, mode=mode, cache=None) as mcp:
        assert mcp.protocol_version == version
        assert len((await mcp.list_tools()).tools) == 19
        upstream.reply("GET", f"{RUNS}/", Reply(json={"count": 0, "results": []}))
        result = await mcp.call_tool("list-task-runs", BASE)
    assert result.structured_content == {"count": 0, "results": []}
    assert upstream.last.path == f"{RUNS}/"


def test_dns_rebinding_and_origin_are_refused(mcp_url: str) -> None:
    request = {"jsonrpc": "2.0", "id": 1, "method": "tools/list"}
    headers = {"Accept": "application/json, text/event-stream"}
    assert httpx.post(mcp_url, json=request, headers={**headers, "Host": "evil.example"}).status_code == 421
    assert httpx.post(mcp_url, json=request, headers={**headers, "Origin": "http://evil.example"}).status_code == 403


def test_allow_host_opens_the_mcp_endpoint_to_a_named_host(upstream: RecordingUpstream, naftiko) -> None:
    process = naftiko(
        str(SEED),
        "--base-uri",
        f"posthog-task-runs={upstream.url}",
        "--port",
        f"{MCP}=0",
        "--port",
        "posthog-task-runs-rest=0",
        "--allow-host",
        "mcp.example",
        env={"POSTHOG_API_KEY": KEY},
    )
    url = process.wait_for(MCP)[MCP]
    request = {"jsonrpc": "2.0", "id": 1, "method": "tools/list"}
    listed = httpx.post(url, json=request, headers={"Host": "mcp.example"})
    assert listed.status_code == 200 and len(listed.json()["result"]["tools"]) == 19
    assert httpx.post(url, json=request, headers={"Host": "other.example"}).status_code == 421


# An upstream answer pretty-printed, with an integer beyond 64 bits and non-ASCII text: the
# client must get exactly that JSON, as structuredContent and as text, on one framed line.
PRETTY = '{\n  "count": 1,\n  "results": [{"id": 123456789012345678901234567890, "name": "Zoë"}]\n}\n'.encode()


def _call_tool(url: str, name: str, arguments: dict[str, Any], version: str) -> dict[str, Any]:
    params: dict[str, Any] = {"name": name, "arguments": arguments}
    headers = {"Accept": "application/json, text/event-stream", "MCP-Protocol-Version": version}
    if version == "2026-07-28":
        params["_meta"] = {
            "io.modelcontextprotocol/protocolVersion": version,
            "io.modelcontextprotocol/clientCapabilities": {},
        }
        headers |= {"Mcp-Method": "tools/call", "Mcp-Name": name}
    answer = httpx.post(
        url, json={"jsonrpc": "2.0", "id": 7, "method": "tools/call", "params": params}, headers=headers
    )
    assert answer.status_code == 200
    return json.loads(answer.content)["result"]


@pytest.mark.parametrize("version", ["2026-07-28", "2025-11-25"])
def test_upstream_json_reaches_the_client_exactly(mcp_url: str, upstream: RecordingUpstream, version: str) -> None:
    upstream.reply("GET", f"{RUNS}/", Reply(body=PRETTY))
    result = _call_tool(mcp_url, "list-task-runs", BASE, version)
    assert result["isError"] is False
    assert result["structuredContent"] == json.loads(PRETTY)
    assert result["structuredContent"]["results"][0]["id"] == 123456789012345678901234567890
    assert result["content"] == [{"type": "text", "text": PRETTY.decode()}]

    upstream.reply("GET", f"{RUNS}/", Reply(body=b"[1, 2]"))
    wrapped = _call_tool(mcp_url, "list-task-runs", BASE, version)["structuredContent"]
    assert wrapped == ([1, 2] if version == "2026-07-28" else {"result": [1, 2]})

    upstream.reply("GET", f"{RUNS}/", Reply(body=b'{"count": 1, "results": ['))
    broken = _call_tool(mcp_url, "list-task-runs", BASE, version)
    assert broken["isError"] is True and "structuredContent" not in broken
    assert broken["content"][0]["text"].startswith("upstream posthog-task-runs answered JSON that is not valid")


async def test_stdio_frames_a_pretty_printed_upstream_answer_on_one_line(upstream: RecordingUpstream) -> None:
    env = {**os.environ, "POSTHOG_API_KEY": KEY, "NAFTIKO_BASE_URI_POSTHOG_TASK_RUNS": upstream.url}
    params = StdioServerParameters(
        command=sys.executable, args=["-m", "naftiko", "serve", str(SEED), "--stdio"], env=env, cwd=str(ROOT)
    )
    upstream.reply("GET", f"{RUNS}/", Reply(body=PRETTY))
    with anyio.fail_after(20):  # a broken frame leaves the client waiting for an answer
        async with Client(params, mode="legacy", cache=None) as mcp:
            first = await mcp.call_tool("list-task-runs", BASE)
            second = await mcp.call_tool("list-task-runs", {**BASE, "limit": 1})  # the framing held
    assert first.structured_content == second.structured_content == json.loads(PRETTY)
