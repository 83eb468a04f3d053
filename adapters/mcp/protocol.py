"""JSON-RPC 2.0 dispatch for MCP over an `McpBackend`, in both protocol eras.

Transport-agnostic: a transport decodes a message (`jsonrpc.decode_message`), decides its era
(`eras`), calls `McpProtocol.handle` and writes back whatever it returns (`None` means "no
response": a notification, or a response the client posted).

One dispatcher serves both eras: `handle` checks the JSON-RPC envelope, a modern request's
`_meta` (`eras.check_envelope`), routes the method to its handler and stamps a modern result.
The handlers answer the lifecycle methods, the four paginated lists (`listings`), tools/call
(arguments checked by `schema` before the backend runs), resources/read and prompts/get.

Everything the backend lists is fixed at construction, so the wire form of tools, resources,
prompts and pages is built once here; a call only builds its own result.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Final
from collections.abc import Awaitable, Callable

from ...engine import RawJSON

from .backend import INTERNAL_ERROR, INVALID_PARAMS, METHOD_NOT_FOUND, McpBackend, McpError, McpTool, ToolResult
from .eras import (
    DEFAULT_LEGACY_VERSION,
    LATEST_LEGACY_VERSION,
    LEGACY_ONLY,
    LEGACY_VERSIONS,
    MODERN_VERSIONS,
    RESOURCE_NOT_FOUND,
    SERVER_INFO_KEY,
    HeaderCheck,
    check_envelope,
)
from .jsonrpc import INVALID_REQUEST, error_response
from .listings import Pages, prompt_wire, put, resource_wire, tool_wire
from .outputs import OutputTool, ToolOutput, conform
from .schema import ArgumentValidator, compile_schema

__all__ = ["McpProtocol"]

logger = logging.getLogger(__name__)

_MISSING: Final = object()

_Handler = Callable[[dict[str, Any], bool], Awaitable[dict[str, Any]]]


@dataclass(frozen=True, slots=True)
class _ToolEntry:
    tool: McpTool
    validate: ArgumentValidator
    output: ToolOutput | None = None  # its outputSchema, which every result is held to (outputs.py)


# --------------------------------------------------------------------------- the dispatcher


class McpProtocol:
    """Answers decoded JSON-RPC messages for one backend, in either protocol era.

    `page_size` bounds every list page. `ttl_ms`/`cache_scope` are the caching hints of modern
    list and discover results; the lists are fixed, but they default to the conservative
    `0`/`"private"` so a restarted server with a changed capability is seen at once.
    """

    def __init__(
        self,
        backend: McpBackend,
        *,
        page_size: int = 100,
        ttl_ms: int = 0,
        cache_scope: str = "private",
    ) -> None:
        if page_size < 1:
            raise ValueError("page_size must be at least 1")
        if ttl_ms < 0 or cache_scope not in ("private", "public"):
            raise ValueError("ttl_ms must be >= 0 and cache_scope 'private' or 'public'")
        self.backend = backend
        self._ttl_ms = ttl_ms
        self._cache_scope = cache_scope
        compiled: dict[str, ArgumentValidator] = {}  # tools with one input schema share its check
        self._tools = {
            tool.name: _ToolEntry(
                tool, _validator(tool.input_schema, compiled), tool.output if isinstance(tool, OutputTool) else None
            )
            for tool in backend.tools
        }
        resources = [r for r in backend.resources if r.uri_template is None]
        templates = [r for r in backend.resources if r.uri_template is not None]
        self._prompt_names = {prompt.name: prompt for prompt in backend.prompts}
        self._pages = {
            "tools/list": Pages("tools", "tools", [tool_wire(t) for t in backend.tools], page_size),
            "resources/list": Pages("resources", "resources", [resource_wire(r) for r in resources], page_size),
            "resources/templates/list": Pages(
                "templates", "resourceTemplates", [resource_wire(r) for r in templates], page_size
            ),
            "prompts/list": Pages("prompts", "prompts", [prompt_wire(p) for p in backend.prompts], page_size),
        }
        info = backend.info
        self._server_info: dict[str, Any] = {"name": info.name, "version": info.version}
        put(self._server_info, "title", info.title)
        self._instructions = info.instructions
        self._server_meta = {SERVER_INFO_KEY: self._server_info}
        self._capabilities: dict[str, Any] = {"tools": {}}
        if backend.resources:
            self._capabilities["resources"] = {}
        if backend.prompts:
            self._capabilities["prompts"] = {}
        self._handlers: dict[str, _Handler] = {
            "initialize": self._initialize,
            "ping": self._ping,
            "server/discover": self._discover,
            "tools/call": self._call_tool,
            "resources/read": self._read_resource,
            "prompts/get": self._get_prompt,
        }
        for method in self._pages:
            self._handlers[method] = self._list_handler(method)
        # 2026-07-28 lists each outputSchema as it is; the 2025 versions need an object root (outputs.py)
        self._modern_tools = Pages("tools", "tools", [tool_wire(t, modern=True) for t in backend.tools], page_size)

    async def handle(
        self,
        message: Any,
        *,
        modern: bool = False,
        version: str = DEFAULT_LEGACY_VERSION,
        check_headers: HeaderCheck | None = None,
    ) -> dict[str, Any] | None:
        """Answer one decoded message; `None` when nothing must be sent back.

        `version` is the legacy version in force (negotiated or assumed); it is ignored for
        modern messages, which carry their own.
        """
        if not isinstance(message, dict):
            if isinstance(message, list):
                return error_response(None, INVALID_REQUEST, "Invalid Request: batch requests are not supported")
            return error_response(None, INVALID_REQUEST, "Invalid Request: expected a JSON-RPC object")
        request_id = message.get("id", _MISSING)
        reply_id = None if request_id is _MISSING or not _valid_id(request_id) else request_id
        if message.get("jsonrpc") != "2.0":
            return error_response(reply_id, INVALID_REQUEST, 'Invalid Request: jsonrpc must be "2.0"')
        method = message.get("method")
        if not isinstance(method, str):
            if request_id is not _MISSING and ("result" in message or "error" in message):
                return None  # a client's answer to a server request; we never send any
            return error_response(reply_id, INVALID_REQUEST, "Invalid Request: method is required")
        if request_id is _MISSING:
            return None  # a notification: never answered
        if reply_id is None:
            return error_response(None, INVALID_REQUEST, "Invalid Request: id must be a string or a number")
        params = message.get("params")
        if params is None:
            params = {}
        elif not isinstance(params, dict):
            return error_response(request_id, INVALID_PARAMS, "Invalid params: params must be an object")
        try:
            if modern:
                check_envelope(message, params, check_headers)
                if method in LEGACY_ONLY:
                    raise McpError(METHOD_NOT_FOUND, f"Method not found: {method}")
            elif method == "server/discover":
                raise McpError(METHOD_NOT_FOUND, f"Method not found: {method}")
            handler = self._handlers.get(method)
            if handler is None:
                raise McpError(METHOD_NOT_FOUND, f"Method not found: {method}")
            result = await handler(params, modern)
        except McpError as exc:
            return error_response(request_id, exc.code, exc.message, exc.data)
        if modern:
            result["resultType"] = "complete"
            meta = result.get("_meta")
            result["_meta"] = {**meta, **self._server_meta} if isinstance(meta, dict) else self._server_meta
        return {"jsonrpc": "2.0", "id": request_id, "result": result}

    # ----------------------------------------------------------------- lifecycle

    async def _initialize(self, params: dict[str, Any], modern: bool) -> dict[str, Any]:
        requested = params.get("protocolVersion")
        version = requested if requested in LEGACY_VERSIONS else LATEST_LEGACY_VERSION
        result: dict[str, Any] = {
            "protocolVersion": version,
            "capabilities": self._capabilities,
            "serverInfo": self._server_info,
        }
        put(result, "instructions", self._instructions)
        return result

    async def _ping(self, params: dict[str, Any], modern: bool) -> dict[str, Any]:
        return {}

    async def _discover(self, params: dict[str, Any], modern: bool) -> dict[str, Any]:
        result: dict[str, Any] = {
            "supportedVersions": list(MODERN_VERSIONS),
            "capabilities": self._capabilities,
        }
        put(result, "instructions", self._instructions)
        result["ttlMs"] = self._ttl_ms
        result["cacheScope"] = self._cache_scope
        return result

    # ----------------------------------------------------------------- lists

    def _list_handler(self, method: str) -> _Handler:
        """The handler of one of the four paginated list methods."""
        pages = self._pages[method]

        async def handler(params: dict[str, Any], modern: bool) -> dict[str, Any]:
            result = (self._modern_tools if modern and method == "tools/list" else pages).page(params)
            if modern:
                result["ttlMs"] = self._ttl_ms
                result["cacheScope"] = self._cache_scope
            return result

        return handler

    # ----------------------------------------------------------------- tools

    async def _call_tool(self, params: dict[str, Any], modern: bool) -> dict[str, Any]:
        name, arguments = _name_and_arguments(params)
        entry = self._tools.get(name)
        if entry is None:
            raise McpError(INVALID_PARAMS, f"Unknown tool: {name}")
        arguments, problems = entry.validate(arguments)
        if problems:
            text = f"Invalid arguments for tool '{name}': " + "; ".join(problems)
            return {"content": [{"type": "text", "text": text}], "isError": True}
        try:
            outcome = await self.backend.call_tool(name, arguments)
        except McpError:
            raise
        except Exception as exc:
            logger.exception("tool %r failed", name)
            return {"content": [{"type": "text", "text": _failure_text(exc)}], "isError": True}
        if entry.output is not None:
            outcome = conform(entry.output, outcome, modern)
        return _tool_result(outcome, modern)

    # ----------------------------------------------------------------- resources and prompts

    async def _read_resource(self, params: dict[str, Any], modern: bool) -> dict[str, Any]:
        uri = params.get("uri")
        if not isinstance(uri, str) or not uri:
            raise McpError(INVALID_PARAMS, "Invalid params: uri is required")
        try:
            contents = await self.backend.read_resource(uri)
        except McpError as exc:
            raise _resource_error(exc, uri, modern) from None
        except Exception:
            logger.exception("reading resource %r failed", uri)
            raise McpError(INTERNAL_ERROR, "Internal error while reading the resource") from None
        result: dict[str, Any] = {"contents": contents}
        if modern:
            result["ttlMs"] = 0  # contents come from upstreams: never assume they can be cached
            result["cacheScope"] = "private"
        return result

    async def _get_prompt(self, params: dict[str, Any], modern: bool) -> dict[str, Any]:
        name, arguments = _name_and_arguments(params)
        prompt = self._prompt_names.get(name)
        if prompt is None:
            raise McpError(INVALID_PARAMS, f"Unknown prompt: {name}")
        for key, value in arguments.items():
            if not isinstance(value, str):
                raise McpError(INVALID_PARAMS, f"Invalid params: prompt argument '{key}' must be a string")
        for argument in prompt.arguments:
            if argument.required and argument.name not in arguments:
                raise McpError(INVALID_PARAMS, f"Invalid params: missing required argument '{argument.name}'")
        try:
            result = await self.backend.get_prompt(name, arguments)
        except McpError:
            raise
        except Exception:
            logger.exception("prompt %r failed", name)
            raise McpError(INTERNAL_ERROR, "Internal error while rendering the prompt") from None
        return dict(result)


def _validator(schema: Any, compiled: dict[str, ArgumentValidator]) -> ArgumentValidator:
    """The compiled check of an input schema, compiled once per distinct schema: JSON data's `repr`
    tells equal schemas apart (10,000 tools of one shape: the protocol is built in 25 ms, not 60)."""
    key = repr(schema)
    found = compiled.get(key)
    if found is None:
        found = compiled[key] = compile_schema(schema)
    return found


def _name_and_arguments(params: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """The `name` and `arguments` that tools/call and prompts/get share, checked."""
    name = params.get("name")
    if not isinstance(name, str) or not name:
        raise McpError(INVALID_PARAMS, "Invalid params: name is required")
    arguments = params.get("arguments")
    if arguments is None:
        return name, {}
    if not isinstance(arguments, dict):
        raise McpError(INVALID_PARAMS, "Invalid params: arguments must be an object")
    return name, arguments


def _valid_id(request_id: Any) -> bool:
    return isinstance(request_id, (str, int, float)) and not isinstance(request_id, bool)


def _failure_text(exc: Exception) -> str:
    """A one-line message for a tool that raised: the model sees it, a traceback it must not."""
    detail = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    if len(detail) > 300:
        detail = detail[:297] + "..."
    return f"Error: {detail}"


def _tool_result(outcome: ToolResult, modern: bool) -> dict[str, Any]:
    result: dict[str, Any] = {"content": outcome.content}
    structured = outcome.structured
    if structured is not None and not outcome.is_error:
        is_object = structured.is_object if isinstance(structured, RawJSON) else isinstance(structured, dict)
        if not modern and not is_object:
            structured = {"result": structured}
        result["structuredContent"] = structured
    result["isError"] = bool(outcome.is_error)
    if outcome.meta is not None:
        result["_meta"] = outcome.meta
    return result


def _resource_error(exc: McpError, uri: str, modern: bool) -> McpError:
    """Unknown resources are -32002 in the handshake era and -32602 in 2026-07-28, with data.uri."""
    if exc.code not in (INVALID_PARAMS, RESOURCE_NOT_FOUND):
        return exc
    code = INVALID_PARAMS if modern else RESOURCE_NOT_FOUND
    return McpError(code, exc.message, exc.data if exc.data is not None else {"uri": uri})
