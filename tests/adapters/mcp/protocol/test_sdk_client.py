"""The official MCP SDK client against our server, over HTTP and stdio, in both eras."""

from __future__ import annotations

import sys
from contextlib import asynccontextmanager
from collections.abc import AsyncIterator

import pytest
from mcp import Client, StdioServerParameters

from tests.adapters.mcp.protocol.conftest import FAKE_SERVER

pytestmark = pytest.mark.anyio

ERAS = [("auto", "2026-07-28"), ("legacy", "2025-11-25")]


@asynccontextmanager
async def http_client(url: str, mode: str) -> AsyncIterator[Client]:
    async with Client(url, mode=mode, cache=None) as client:
        yield client


@asynccontextmanager
async def stdio_client(mode: str, *args: str) -> AsyncIterator[Client]:
    params = StdioServerParameters(command=sys.executable, args=[str(FAKE_SERVER), "--stdio", *args])
    async with Client(params, mode=mode, cache=None) as client:
        yield client


@pytest.mark.parametrize("mode, version", ERAS)
async def test_http_tools(server_url: str, mode: str, version: str) -> None:
    async with http_client(server_url, mode) as client:
        assert client.protocol_version == version
        listed = await client.list_tools()
        assert [t.name for t in listed.tools][:3] == ["add", "list_items", "get_user"]
        assert listed.next_cursor is None
        add = listed.tools[0]
        assert add.title == "Add"
        assert add.input_schema["required"] == ["a", "b"]
        assert add.annotations is not None and add.annotations.read_only_hint is True
        assert listed.tools[1].annotations is None and listed.tools[1].title is None

        result = await client.call_tool("add", {"a": 2, "b": 3})
        assert not result.is_error
        assert result.content[0].text == "5"
        # 2025-x: structuredContent must be an object, so a bare value is wrapped
        assert result.structured_content == (5 if version == "2026-07-28" else {"result": 5})

        items = await client.call_tool("list_items", {})
        expected = ["alpha", "beta"]
        assert items.structured_content == (expected if version == "2026-07-28" else {"result": expected})

        user = await client.call_tool("get_user", {})
        assert user.structured_content == {"id": 7, "name": "Ada"}


@pytest.mark.parametrize("mode, version", ERAS)
async def test_http_tool_errors(server_url: str, mode: str, version: str) -> None:
    async with http_client(server_url, mode) as client:
        failed = await client.call_tool("fail", {})
        assert failed.is_error and failed.structured_content is None
        assert "upstream unavailable" in failed.content[0].text

        boom = await client.call_tool("boom", {})
        assert boom.is_error
        assert boom.content[0].text == "Error: upstream exploded"

        bad = await client.call_tool("add", {"a": "2", "b": True})
        assert bad.is_error
        text = bad.content[0].text
        assert "argument 'a': expected integer, got string" in text
        assert "argument 'b': expected integer, got boolean" in text

        with pytest.raises(Exception) as caught:
            await client.call_tool("nope", {})
        assert "Unknown tool: nope" in str(caught.value)


@pytest.mark.parametrize("mode, version", ERAS)
async def test_http_resources_and_prompts(server_url: str, mode: str, version: str) -> None:
    async with http_client(server_url, mode) as client:
        resources = await client.list_resources()
        assert [r.uri for r in resources.resources] == ["info://about"]
        templates = await client.list_resource_templates()
        assert [t.uri_template for t in templates.resource_templates] == ["greeting://{name}"]
        read = await client.read_resource("greeting://Ada")
        assert read.contents[0].text == "Hello, Ada!"
        prompts = await client.list_prompts()
        assert prompts.prompts[0].name == "greet"
        assert prompts.prompts[0].arguments[0].required is True
        prompt = await client.get_prompt("greet", {"name": "Ada"})
        assert prompt.messages[0].content.text == "Say hello to Ada."


async def test_http_modern_param_header(server_url: str) -> None:
    """The SDK sends `Mcp-Param-Region` for an `x-mcp-header` argument; we check and accept it."""
    async with http_client(server_url, "auto") as client:
        result = await client.call_tool("echo", {"text": "hi", "region": "eu west"})
        assert not result.is_error
        assert result.structured_content == {"text": "hi", "region": "eu west"}


async def test_http_pagination(paged_server_url: str) -> None:
    async with http_client(paged_server_url, "auto") as client:
        names: list[str] = []
        cursor = None
        pages = 0
        while True:
            page = await client.list_tools(cursor=cursor)
            pages += 1
            names += [t.name for t in page.tools]
            cursor = page.next_cursor
            if cursor is None:
                break
        assert pages == 4
        assert len(names) == 32 and len(set(names)) == 32
        assert names[:2] == ["add", "list_items"] and names[-1] == "extra_024"


@pytest.mark.parametrize("mode, version", ERAS)
async def test_stdio(mode: str, version: str) -> None:
    async with stdio_client(mode) as client:
        assert client.protocol_version == version
        listed = await client.list_tools()
        assert "add" in [t.name for t in listed.tools]
        result = await client.call_tool("add", {"a": 40, "b": 2})
        assert result.content[0].text == "42"
        assert result.structured_content == (42 if version == "2026-07-28" else {"result": 42})
        bad = await client.call_tool("add", {"a": 1})
        assert bad.is_error and "missing required argument 'b'" in bad.content[0].text
        read = await client.read_resource("info://about")
        assert read.contents[0].text == "fake server"
        prompt = await client.get_prompt("greet", {"name": "Bo"})
        assert prompt.messages[0].content.text == "Say hello to Bo."
