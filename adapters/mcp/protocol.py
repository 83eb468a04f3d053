"""JSON-RPC 2.0 dispatch for MCP over an `McpBackend`, in both protocol eras.

Transport-agnostic: a transport decodes a message, decides its era (see `is_modern_message` and
`adapters.mcp.http`), calls `McpProtocol.handle` and writes back whatever it returns (`None`
means "no response": a notification, or a response the client posted).

Two eras share one dispatcher:

- *legacy* (2024-11-05 … 2025-11-25): `initialize` negotiates a version, `ping` works, results
  are plain, `structuredContent` must be an object, an unknown resource is -32002;
- *modern* (2026-07-28): stateless; every request carries its version and client capabilities
  in `params._meta`, `server/discover` replaces `initialize`, every result carries
  `resultType` and a `serverInfo` stamp, list results carry `ttlMs`/`cacheScope`, and the
  handshake-only methods answer -32601.

Everything the backend lists is fixed at construction, so the wire form of tools, resources,
prompts and pages is built once here; a call only builds its own result.
"""

from __future__ import annotations

import base64
import logging
from dataclasses import dataclass
from typing import Any, Final
from collections.abc import Awaitable, Callable

from ...engine import RawJSON, dumps, loads

from .backend import (
    INTERNAL_ERROR,
    INVALID_PARAMS,
    METHOD_NOT_FOUND,
    JSON,
    McpBackend,
    McpError,
    McpPrompt,
    McpResource,
    McpTool,
    ToolResult,
)
from .schema import ArgumentValidator, compile_schema

__all__ = [
    "CLIENT_CAPABILITIES_KEY",
    "DEFAULT_LEGACY_VERSION",
    "HEADER_MISMATCH",
    "INVALID_REQUEST",
    "LATEST_LEGACY_VERSION",
    "LEGACY_VERSIONS",
    "MODERN_VERSIONS",
    "PARSE_ERROR",
    "PROTOCOL_VERSION_KEY",
    "RESOURCE_NOT_FOUND",
    "UNSUPPORTED_VERSION",
    "HeaderCheck",
    "McpProtocol",
    "decode_message",
    "encode_message",
    "error_response",
    "is_modern_message",
]

logger = logging.getLogger(__name__)

LEGACY_VERSIONS: Final = ("2024-11-05", "2025-03-26", "2025-06-18", "2025-11-25")
MODERN_VERSIONS: Final = ("2026-07-28",)
LATEST_LEGACY_VERSION: Final = LEGACY_VERSIONS[-1]
#: What an HTTP client that sent neither a session nor a version header speaks (spec 2025-06-18).
DEFAULT_LEGACY_VERSION: Final = "2025-03-26"

PROTOCOL_VERSION_KEY: Final = "io.modelcontextprotocol/protocolVersion"
CLIENT_CAPABILITIES_KEY: Final = "io.modelcontextprotocol/clientCapabilities"
SERVER_INFO_KEY: Final = "io.modelcontextprotocol/serverInfo"

PARSE_ERROR: Final = -32700
INVALID_REQUEST: Final = -32600
RESOURCE_NOT_FOUND: Final = -32002
HEADER_MISMATCH: Final = -32020
UNSUPPORTED_VERSION: Final = -32022

#: Methods that exist only in the handshake era; a modern-headed call gets -32601.
_LEGACY_ONLY: Final = frozenset(
    {"initialize", "ping", "logging/setLevel", "resources/subscribe", "resources/unsubscribe"}
)

#: Called between the `_meta` check and the version check of a modern request, so a transport
#: can compare its headers with the body (it raises `McpError(HEADER_MISMATCH, ...)`).
HeaderCheck = Callable[[dict[str, Any], Any], None]

_MISSING: Final = object()

_Handler = Callable[[dict[str, Any], bool], Awaitable[dict[str, Any]]]


# --------------------------------------------------------------------------- framing helpers


def decode_message(data: bytes | str) -> Any:
    """Decode one JSON text (UTF-8 when bytes); raises `McpError(PARSE_ERROR)` on anything that is not JSON."""
    try:
        return loads(data.encode("utf-8") if isinstance(data, str) else data)
    except (ValueError, RecursionError) as exc:  # JSONDecodeError and UnicodeDecodeError included
        raise McpError(PARSE_ERROR, "Parse error", None) from exc


def encode_message(message: dict[str, Any]) -> bytes:
    """Compact UTF-8 JSON; never contains a raw newline (safe for stdio framing).

    A spliced upstream text (`RawJSON`) may hold newlines, but only as white space between
    tokens (valid JSON has none inside strings), so a space can stand in for each.
    """
    data = dumps(message)
    return data.replace(b"\n", b" ") if b"\n" in data else data


def error_response(request_id: Any, code: int, message: str, data: JSON = None) -> dict[str, Any]:
    """A JSON-RPC error response object."""
    error: dict[str, Any] = {"code": code, "message": message}
    if data is not None:
        error["data"] = data
    return {"jsonrpc": "2.0", "id": request_id, "error": error}


def is_modern_message(message: Any) -> bool:
    """Whether a header-less message (stdio) speaks the 2026-07-28 per-request envelope.

    It does when its `params._meta` carries either envelope key, or when it calls the
    modern-only `server/discover` (which then fails the `_meta` check if the keys are missing).
    """
    if not isinstance(message, dict):
        return False
    params = message.get("params")
    if isinstance(params, dict):
        meta = params.get("_meta")
        if isinstance(meta, dict) and (PROTOCOL_VERSION_KEY in meta or CLIENT_CAPABILITIES_KEY in meta):
            return True
    return message.get("method") == "server/discover"


# --------------------------------------------------------------------------- wire forms


def _put(target: dict[str, Any], key: str, value: Any) -> None:
    if value is not None:
        target[key] = value


def _tool_wire(tool: McpTool) -> dict[str, Any]:
    wire: dict[str, Any] = {"name": tool.name}
    _put(wire, "title", tool.title)
    _put(wire, "description", tool.description)
    wire["inputSchema"] = tool.input_schema
    if tool.annotations:
        wire["annotations"] = tool.annotations
    return wire


def _resource_wire(resource: McpResource) -> dict[str, Any]:
    wire: dict[str, Any] = {}
    if resource.uri_template is not None:
        wire["uriTemplate"] = resource.uri_template
    else:
        wire["uri"] = resource.uri
    wire["name"] = resource.name
    _put(wire, "title", resource.title)
    _put(wire, "description", resource.description)
    _put(wire, "mimeType", resource.mime_type)
    return wire


def _prompt_wire(prompt: McpPrompt) -> dict[str, Any]:
    wire: dict[str, Any] = {"name": prompt.name}
    _put(wire, "title", prompt.title)
    _put(wire, "description", prompt.description)
    if prompt.arguments:
        arguments = []
        for argument in prompt.arguments:
            item: dict[str, Any] = {"name": argument.name}
            _put(item, "title", argument.title)
            _put(item, "description", argument.description)
            item["required"] = argument.required
            arguments.append(item)
        wire["arguments"] = arguments
    return wire


class _Pages:
    """A fixed list cut into pages, addressed by opaque cursors.

    The lists never change, so every valid cursor is known up front: a cursor is simply a key
    of `_offsets`, and anything else is invalid (-32602).
    """

    def __init__(self, kind: str, key: str, items: list[dict[str, Any]], page_size: int) -> None:
        self.key = key
        self._items = items
        self._size = page_size
        self._offsets = {self._cursor(kind, o): o for o in range(page_size, len(items), page_size)}
        self._next = {o: c for c, o in self._offsets.items()}

    @staticmethod
    def _cursor(kind: str, offset: int) -> str:
        return base64.urlsafe_b64encode(f"{kind}:{offset}".encode()).decode().rstrip("=")

    def page(self, params: dict[str, Any]) -> dict[str, Any]:
        cursor = params.get("cursor")
        if cursor is None:
            offset = 0
        else:
            offset = self._offsets.get(cursor, -1) if isinstance(cursor, str) else -1
            if offset < 0:
                raise McpError(INVALID_PARAMS, "Invalid params: invalid cursor")
        end = offset + self._size
        result: dict[str, Any] = {self.key: self._items[offset:end]}
        following = self._next.get(end)
        if following is not None:
            result["nextCursor"] = following
        return result


@dataclass(frozen=True, slots=True)
class _ToolEntry:
    tool: McpTool
    validate: ArgumentValidator


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
        self._tools = {tool.name: _ToolEntry(tool, compile_schema(tool.input_schema)) for tool in backend.tools}
        resources = [r for r in backend.resources if r.uri_template is None]
        templates = [r for r in backend.resources if r.uri_template is not None]
        self._prompt_names = {prompt.name: prompt for prompt in backend.prompts}
        self._pages = {
            "tools/list": _Pages("tools", "tools", [_tool_wire(t) for t in backend.tools], page_size),
            "resources/list": _Pages("resources", "resources", [_resource_wire(r) for r in resources], page_size),
            "resources/templates/list": _Pages(
                "templates", "resourceTemplates", [_resource_wire(r) for r in templates], page_size
            ),
            "prompts/list": _Pages("prompts", "prompts", [_prompt_wire(p) for p in backend.prompts], page_size),
        }
        info = backend.info
        self._server_info: dict[str, Any] = {"name": info.name, "version": info.version}
        _put(self._server_info, "title", info.title)
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
                self._check_envelope(message, params, check_headers)
                if method in _LEGACY_ONLY:
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

    # ----------------------------------------------------------------- modern envelope

    def _check_envelope(
        self, message: dict[str, Any], params: dict[str, Any], check_headers: HeaderCheck | None
    ) -> None:
        """The 2026-07-28 ladder: `_meta` keys, then transport headers, then the version."""
        meta = params.get("_meta")
        if not isinstance(meta, dict):
            raise McpError(
                INVALID_PARAMS,
                f"Invalid params: params._meta must carry '{PROTOCOL_VERSION_KEY}' and '{CLIENT_CAPABILITIES_KEY}'",
            )
        missing = [k for k in (PROTOCOL_VERSION_KEY, CLIENT_CAPABILITIES_KEY) if k not in meta]
        if missing:
            raise McpError(INVALID_PARAMS, f"Invalid params: params._meta is missing {', '.join(missing)}")
        version = meta[PROTOCOL_VERSION_KEY]
        if check_headers is not None:
            check_headers(message, version)
        if not isinstance(version, str):
            raise McpError(INVALID_PARAMS, "Invalid params: the protocol version must be a string")
        if version not in MODERN_VERSIONS:
            raise McpError(
                UNSUPPORTED_VERSION,
                f"Unsupported protocol version: {version}",
                {"supported": list(MODERN_VERSIONS), "requested": version},
            )
        if not isinstance(meta[CLIENT_CAPABILITIES_KEY], dict):
            raise McpError(INVALID_PARAMS, "Invalid params: client capabilities must be an object")

    # ----------------------------------------------------------------- lifecycle

    async def _initialize(self, params: dict[str, Any], modern: bool) -> dict[str, Any]:
        requested = params.get("protocolVersion")
        version = requested if requested in LEGACY_VERSIONS else LATEST_LEGACY_VERSION
        result: dict[str, Any] = {
            "protocolVersion": version,
            "capabilities": self._capabilities,
            "serverInfo": self._server_info,
        }
        _put(result, "instructions", self._instructions)
        return result

    async def _ping(self, params: dict[str, Any], modern: bool) -> dict[str, Any]:
        return {}

    async def _discover(self, params: dict[str, Any], modern: bool) -> dict[str, Any]:
        result: dict[str, Any] = {
            "supportedVersions": list(MODERN_VERSIONS),
            "capabilities": self._capabilities,
        }
        _put(result, "instructions", self._instructions)
        result["ttlMs"] = self._ttl_ms
        result["cacheScope"] = self._cache_scope
        return result

    # ----------------------------------------------------------------- lists

    def _list_handler(self, method: str) -> _Handler:
        """The handler of one of the four paginated list methods."""
        pages = self._pages[method]

        async def handler(params: dict[str, Any], modern: bool) -> dict[str, Any]:
            result = pages.page(params)
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
