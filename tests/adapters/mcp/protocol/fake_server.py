"""A tiny MCP server over a `StaticBackend`, for the protocol tests.

    python tests/adapters/mcp/protocol/fake_server.py --port 8123          # Streamable HTTP on 127.0.0.1
    python tests/adapters/mcp/protocol/fake_server.py --stdio              # stdio

Its tools cover what the protocol layer must get right: an integer schema (`add`), a JSON array
result to wrap (`list_items`), an upstream-style failure with structured output to drop
(`fail`), a backend exception (`boom`) and a richer schema (`echo`). `--extra-tools N` adds
N dummy tools, for pagination.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
from dataclasses import dataclass
from typing import Any


from naftiko.adapters.mcp.backend import (  # noqa: E402
    INVALID_PARAMS,
    McpError,
    McpPrompt,
    McpPromptArgument,
    McpResource,
    McpTool,
    ServerInfo,
    StaticBackend,
    ToolResult,
)

NO_ARGS = {"type": "object", "additionalProperties": False}


async def _add(arguments: dict[str, Any]) -> ToolResult:
    total = arguments["a"] + arguments["b"]
    return ToolResult(content=[{"type": "text", "text": json.dumps(total)}], structured=total)


async def _list_items(arguments: dict[str, Any]) -> ToolResult:
    items = ["alpha", "beta"]
    return ToolResult(content=[{"type": "text", "text": json.dumps(items)}], structured=items)


async def _get_user(arguments: dict[str, Any]) -> ToolResult:
    user = {"id": 7, "name": "Ada"}
    return ToolResult(content=[{"type": "text", "text": json.dumps(user)}], structured=user)


async def _fail(arguments: dict[str, Any]) -> ToolResult:
    body = {"status": 503, "detail": "upstream unavailable"}
    return ToolResult(content=[{"type": "text", "text": json.dumps(body)}], structured=body, is_error=True)


async def _boom(arguments: dict[str, Any]) -> ToolResult:
    raise RuntimeError("upstream exploded\nTraceback (most recent call last): secret")


async def _echo(arguments: dict[str, Any]) -> ToolResult:
    return ToolResult(content=[{"type": "text", "text": json.dumps(arguments)}], structured=arguments)


async def _slow(arguments: dict[str, Any]) -> ToolResult:
    await asyncio.sleep(float(arguments.get("seconds", 1)))
    return ToolResult.text("done")


def _tools(extra: int) -> list[McpTool]:
    tools = [
        McpTool(
            name="add",
            title="Add",
            description="Add two integers.",
            input_schema={
                "type": "object",
                "properties": {"a": {"type": "integer"}, "b": {"type": "integer"}},
                "required": ["a", "b"],
                "additionalProperties": False,
            },
            annotations={"readOnlyHint": True},
        ),
        McpTool(name="list_items", description="Return a JSON array.", input_schema=NO_ARGS),
        McpTool(name="get_user", description="Return a JSON object.", input_schema=NO_ARGS),
        McpTool(name="fail", description="Fail like an upstream 503.", input_schema=NO_ARGS),
        McpTool(name="boom", description="Raise inside the backend.", input_schema=NO_ARGS),
        McpTool(
            name="echo",
            description="Echo validated arguments.",
            input_schema={
                "type": "object",
                "properties": {
                    "text": {"type": "string"},
                    "mode": {"type": "string", "enum": ["upper", "lower"]},
                    "tags": {"type": "array", "items": {"type": "string"}},
                    "limit": {"type": ["integer", "null"]},
                    "region": {"type": "string", "x-mcp-header": "Region"},
                },
                "required": ["text"],
                "additionalProperties": False,
            },
        ),
        McpTool(
            name="slow",
            description="Sleep, then answer.",
            input_schema={"type": "object", "properties": {"seconds": {"type": "number"}}},
        ),
    ]
    tools += [McpTool(name=f"extra_{i:03d}", input_schema=NO_ARGS) for i in range(extra)]
    return tools


@dataclass
class FakeBackend(StaticBackend):
    """`StaticBackend` plus one resource, one template and one prompt."""

    async def read_resource(self, uri: str) -> list[dict[str, Any]]:
        if uri == "info://about":
            return [{"uri": uri, "mimeType": "text/plain", "text": "fake server"}]
        if uri.startswith("greeting://") and len(uri) > len("greeting://"):
            name = uri[len("greeting://") :]
            return [{"uri": uri, "mimeType": "text/plain", "text": f"Hello, {name}!"}]
        raise McpError(INVALID_PARAMS, f"Unknown resource: {uri}")

    async def get_prompt(self, name: str, arguments: dict[str, str]) -> dict[str, Any]:
        if name != "greet":
            raise McpError(INVALID_PARAMS, f"Unknown prompt: {name}")
        text = f"Say hello to {arguments['name']}."
        return {"description": "A greeting", "messages": [{"role": "user", "content": {"type": "text", "text": text}}]}


def build_backend(extra_tools: int = 0) -> FakeBackend:
    handlers = {
        "add": _add,
        "list_items": _list_items,
        "get_user": _get_user,
        "fail": _fail,
        "boom": _boom,
        "echo": _echo,
        "slow": _slow,
    }
    for i in range(extra_tools):
        handlers[f"extra_{i:03d}"] = _get_user
    return FakeBackend(
        info=ServerInfo(name="fake", version="0.0.1", title="Fake server", instructions="Use add to add."),
        tools=_tools(extra_tools),
        resources=[
            McpResource(name="about", uri="info://about", title="About", mime_type="text/plain"),
            McpResource(name="greeting", uri_template="greeting://{name}", description="A greeting"),
        ],
        prompts=[
            McpPrompt(
                name="greet",
                title="Greet",
                description="Greet someone",
                arguments=(McpPromptArgument(name="name", description="Who"),),
            )
        ],
        handlers=handlers,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=8123)
    parser.add_argument("--stdio", action="store_true")
    parser.add_argument("--extra-tools", type=int, default=0)
    parser.add_argument("--page-size", type=int, default=100)
    args = parser.parse_args()
    logging.basicConfig(stream=sys.stderr, level=logging.WARNING)
    backend = build_backend(args.extra_tools)
    if args.stdio:
        from naftiko.adapters.mcp.stdio import serve_stdio

        asyncio.run(serve_stdio(backend, page_size=args.page_size))
        return
    import uvicorn

    from naftiko.adapters.mcp.http import McpHttpApp

    app = McpHttpApp(backend, page_size=args.page_size)
    uvicorn.run(app, host="127.0.0.1", port=args.port, log_level="warning", access_log=False)


if __name__ == "__main__":
    main()
