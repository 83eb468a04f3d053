"""An MCP backend built from an `exposes: type: mcp` block of a loaded runtime.

`CapabilityBackend` is the `backend.McpBackend` the protocol layer serves: it lists the block's
tools (`tools`), resources (`resources`) and prompts (`prompts`) once, and answers a call by
name or URI, every error kind of a call answered from the one table in `errors`. The entry
points at the bottom serve one block over Streamable HTTP (`http`) or stdio (`stdio`).
"""

from __future__ import annotations

from typing import Any
from collections.abc import Callable, Coroutine
from urllib.parse import unquote

from ...engine import MISSING, ExposedCall, McpExposes, Resource, Runtime, Tool, with_aliases

from .backend import INVALID_PARAMS, McpBackend, McpError, McpTool, ServerInfo, ToolResult
from .errors import tool_failure
from .prompts import mcp_prompt, render
from .resources import mcp_resource, read_dynamic, read_location, uri_pattern
from .tools import input_schema, mcp_tool, tool_result

_VERSION = "0.1.0"


class CapabilityBackend:
    """Serves one MCP exposes block: tools, resources and prompts from the spec model."""

    def __init__(self, runtime: Runtime, exposes: McpExposes) -> None:
        self.runtime = runtime
        self.exposes = exposes
        self.info = ServerInfo(name=exposes.namespace, version=_VERSION, instructions=exposes.description)
        self._calls: dict[str, tuple[ExposedCall, Tool]] = {}
        tools: list[McpTool] = []
        for tool in exposes.tools:
            call = runtime.exposed_call(tool.invocation, tool.where)
            listed = mcp_tool(tool, call)
            self._calls[listed.name] = (call, tool)
            tools.append(listed)
        self.tools = tuple(tools)
        self._resources = {r.uri: r for r in exposes.resources}
        self.resources = tuple(mcp_resource(r) for r in exposes.resources)
        self._templates = [(uri_pattern(r.uri), r) for r in exposes.resources if "{" in r.uri]
        self._prompts = {p.name: p for p in exposes.prompts}
        self.prompts = tuple(mcp_prompt(p) for p in exposes.prompts)

    def call_tool(self, name: str, arguments: dict[str, Any]) -> Coroutine[Any, Any, ToolResult]:
        """The call's own coroutine, not one wrapping it: a frame less for every upstream wait."""
        entry = self._calls.get(name)
        if entry is None:
            raise McpError(INVALID_PARAMS, f"Unknown tool: {name}")
        return self._invoke(entry[0], arguments)

    async def _invoke(self, call: ExposedCall, arguments: dict[str, Any]) -> ToolResult:
        namespace = call.operation.namespace if call.operation else self.exposes.namespace
        try:
            outcome = await call.invoke(with_aliases(arguments), parse=False)
        except Exception as exc:
            return tool_failure(exc)
        return tool_result(namespace, outcome)

    async def read_resource(self, uri: str) -> list[dict[str, Any]]:
        resource, params = self._match_resource(uri)
        if resource.invocation is not None:
            call = self.runtime.exposed_call(resource.invocation, resource.where)
            return [await read_dynamic(call, self.exposes.namespace, resource.mime_type, uri, params)]
        if resource.location is not None:
            return [await read_location(resource, uri, self.runtime.limits.upstream_body)]
        raise McpError(INVALID_PARAMS, f"Resource has no content: {uri}")

    def _match_resource(self, uri: str) -> tuple[Resource, dict[str, Any]]:
        resource = self._resources.get(uri)
        if resource is not None and "{" not in uri:
            return resource, {}
        for pattern, candidate in self._templates:
            match = pattern.match(uri)
            if match:
                return candidate, {k: unquote(v) for k, v in match.groupdict().items()}
        for candidate in self._resources.values():
            if candidate.location is not None and uri.startswith(candidate.uri.rstrip("/") + "/"):
                return candidate, {}
        raise McpError(INVALID_PARAMS, f"Resource not found: {uri}")

    async def get_prompt(self, name: str, arguments: dict[str, str]) -> dict[str, Any]:
        prompt = self._prompts.get(name)
        if prompt is None:
            raise McpError(INVALID_PARAMS, f"Unknown prompt: {name}")
        return render(prompt, arguments)


def mcp_http_app(
    runtime: Runtime,
    exposes: McpExposes,
    *,
    wrap: Callable[[McpBackend], McpBackend] | None = None,
    **options: Any,
) -> Any:
    """The Streamable HTTP ASGI app of one MCP exposes block; `wrap` decorates its backend (observation)."""
    from .http import McpHttpApp

    options.setdefault("max_body_bytes", runtime.limits.request_body)
    backend: McpBackend = CapabilityBackend(runtime, exposes)
    return McpHttpApp(backend if wrap is None else wrap(backend), **options)


def pick_mcp(runtime: Runtime, namespace: str | None) -> McpExposes:
    blocks = [e for e in runtime.exposes if isinstance(e, McpExposes)]
    if namespace:
        exposes = runtime.exposes_named(namespace)
        if not isinstance(exposes, McpExposes):
            raise ValueError(f"exposes '{namespace}' is not an MCP block")
        return exposes
    stdio = [e for e in blocks if e.transport == "stdio"]
    if stdio or blocks:
        return (stdio or blocks)[0]
    raise ValueError("no MCP exposes block in the loaded files")


async def serve_stdio(runtime: Runtime, namespace: str | None = None) -> None:
    """Serve one MCP block over stdin/stdout until stdin closes."""
    from .stdio import serve_stdio as run

    backend = CapabilityBackend(runtime, pick_mcp(runtime, namespace))
    async with runtime:
        await run(backend, line_limit=runtime.limits.request_body)


__all__ = ["CapabilityBackend", "input_schema", "mcp_http_app", "serve_stdio", "MISSING"]
