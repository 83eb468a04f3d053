"""The MCP and skill adapters, reported to a runtime's observer (REST reports from inside `RestApp`).

An MCP tool call is recorded where its name and outcome are known, at the backend: `ObservedBackend`
wraps the backend the protocol answers from, one inbound call per `tools/call` of a declared tool
(`OK`, or `ERROR` for an `isError` result, with the error's type). The caller's `traceparent`
header reaches it through `TraceHeaders`, a shim in front of the MCP app that puts the header in
the observer's context for the request. A skill view is recorded by `ObservedSkills`, labelled
by its route (`/skills/{name}/contents/{file}`), never by the raw path. Nothing here is installed
when the runtime has no observer.
"""

from __future__ import annotations

from contextvars import ContextVar
from typing import Any
from collections.abc import Sequence

from ...engine import Observer
from ..edges import StatusSend
from ..mcp.backend import McpBackend, McpPrompt, McpResource, McpTool, ServerInfo, ToolResult
from ..mcp.errors import ERROR_META
from .observer import ControlObserver


class ObservedBackend:
    """An MCP backend whose tool calls are reported to `observer`."""

    def __init__(self, backend: McpBackend, observer: Observer, namespace: str) -> None:
        self.backend, self.observer, self.namespace = backend, observer, namespace
        self.known = frozenset(tool.name for tool in backend.tools)

    @property
    def info(self) -> ServerInfo:
        return self.backend.info

    @property
    def tools(self) -> Sequence[McpTool]:
        return self.backend.tools

    @property
    def resources(self) -> Sequence[McpResource]:
        return self.backend.resources

    @property
    def prompts(self) -> Sequence[McpPrompt]:
        return self.backend.prompts

    async def call_tool(self, name: str, arguments: dict[str, Any]) -> ToolResult:
        if name not in self.known:  # an unknown name is a protocol error, and no label of ours
            return await self.backend.call_tool(name, arguments)
        call = self.observer.inbound("mcp", self.namespace, name)
        try:
            result = await self.backend.call_tool(name, arguments)
        except BaseException as exc:
            call.end("ERROR", type(exc).__name__)
            raise
        if result.is_error:
            detail = (result.meta or {}).get(ERROR_META)
            call.end("ERROR", str(detail.get("type")) if isinstance(detail, dict) else "handled_error")
        else:
            call.end("OK")
        return result

    async def read_resource(self, uri: str) -> list[dict[str, Any]]:
        return await self.backend.read_resource(uri)

    async def get_prompt(self, name: str, arguments: dict[str, str]) -> dict[str, Any]:
        return await self.backend.get_prompt(name, arguments)


def trace_context(observer: Observer) -> ContextVar[str | None] | None:
    """Where an observer takes a request's `traceparent` from for the calls made inside it (None: nowhere)."""
    return observer.incoming if isinstance(observer, ControlObserver) else None


class TraceHeaders:
    """In front of an MCP app: the request's `traceparent` is the caller's trace for the tool calls it makes."""

    def __init__(self, app: Any, observer: Observer) -> None:
        incoming = trace_context(observer)
        if incoming is None:
            raise TypeError(f"{type(observer).__name__} takes no trace context from requests")
        self.app, self.incoming = app, incoming

    def __getattr__(self, name: str) -> Any:
        return getattr(self.app, name)

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        header = None
        if scope["type"] == "http":
            header = next((v for k, v in scope["headers"] if k == b"traceparent"), None)
        if header is None:
            await self.app(scope, receive, send)
            return
        token = self.incoming.set(header.decode("latin-1"))
        try:
            await self.app(scope, receive, send)
        finally:
            self.incoming.reset(token)


_SKILL_ROUTES = ("/skills", "/skills/{name}", "/skills/{name}/{view}", "/skills/{name}/contents/{file}")


class ObservedSkills:
    """A skill catalogue app whose requests are reported to `observer`, labelled by route."""

    def __init__(self, app: Any, observer: Observer, namespace: str) -> None:
        self.app, self.observer, self.namespace = app, observer, namespace

    def __getattr__(self, name: str) -> Any:
        return getattr(self.app, name)

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        traceparent = next((v.decode("latin-1") for k, v in scope["headers"] if k == b"traceparent"), None)
        call = self.observer.inbound("skill", self.namespace, _skill_route(scope), traceparent)
        recording = StatusSend(send, 500)
        try:
            await self.app(scope, receive, recording)
        except BaseException as exc:
            call.end("500", type(exc).__name__)
            raise
        status = recording.status
        call.end(str(status), f"http_{status}" if status >= 500 else None)


def _skill_route(scope: Any) -> str:
    """`METHOD /skills/{name}/...`: the route a path falls under, from a fixed list (bounded labels)."""
    segments = [s for s in scope["path"].split("/") if s]
    if not segments or segments[0] != "skills":
        route = "(unrouted)"
    elif len(segments) <= 2:
        route = _SKILL_ROUTES[len(segments) - 1]
    elif len(segments) == 3 and segments[2] in ("contents", "download"):
        route = f"/skills/{{name}}/{segments[2]}"
    elif segments[2] == "contents":
        route = _SKILL_ROUTES[3]
    else:
        route = "(unrouted)"
    method = scope["method"] if scope["method"] in ("GET", "HEAD") else "OTHER"
    return f"{method} {route}"


__all__ = ["ObservedBackend", "ObservedSkills", "TraceHeaders", "trace_context"]
