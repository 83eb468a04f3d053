"""The boundary between the MCP protocol layer and whatever answers it.

The protocol code (JSON-RPC dispatch, both protocol eras, HTTP and stdio transports) only sees
this plain data and the `McpBackend` protocol, so it can be tested with a tiny fake and knows
nothing about capability files. `adapters.mcp.capability` builds a backend from an `exposes:
type: mcp` block of a loaded runtime.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol
from collections.abc import Sequence

JSON = Any


@dataclass(frozen=True, slots=True)
class McpTool:
    """A tool as listed by tools/list; `annotations` holds only the hints that are set."""

    name: str
    input_schema: dict[str, JSON]
    description: str | None = None
    title: str | None = None
    annotations: dict[str, JSON] | None = None


@dataclass(frozen=True, slots=True)
class McpResource:
    """A concrete resource (`uri`) or a template (`uri_template` with `{var}` parts)."""

    name: str
    uri: str | None = None
    uri_template: str | None = None
    title: str | None = None
    description: str | None = None
    mime_type: str | None = None


@dataclass(frozen=True, slots=True)
class McpPromptArgument:
    name: str
    description: str | None = None
    title: str | None = None
    required: bool = True


@dataclass(frozen=True, slots=True)
class McpPrompt:
    name: str
    description: str | None = None
    title: str | None = None
    arguments: tuple[McpPromptArgument, ...] = ()


@dataclass(slots=True)  # made once per call: a frozen dataclass costs twice as much to build
class ToolResult:
    """What a tool call produced.

    `content` holds MCP content items (`{"type": "text", "text": ...}`). `structured` is the
    JSON value the upstream answered, when it answered JSON (None otherwise); the protocol
    layer wraps it in an object where the negotiated protocol version requires one, and
    drops it when `is_error` is true (strict clients reject an error whose structured content
    does not match the tool's output schema). `meta` becomes the result's `_meta`: it is where
    an error's machine-readable details go, in every protocol era.
    """

    content: list[dict[str, JSON]]
    structured: JSON = None
    is_error: bool = False
    meta: dict[str, JSON] | None = None

    @staticmethod
    def text(text: str, *, is_error: bool = False, meta: dict[str, JSON] | None = None) -> ToolResult:
        return ToolResult(content=[{"type": "text", "text": text}], is_error=is_error, meta=meta)


class McpError(Exception):
    """A protocol-level failure that becomes a JSON-RPC error (unknown tool, bad params...)."""

    def __init__(self, code: int, message: str, data: JSON = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.data = data


INVALID_PARAMS = -32602
METHOD_NOT_FOUND = -32601
INTERNAL_ERROR = -32603


@dataclass(frozen=True, slots=True)
class ServerInfo:
    name: str
    version: str = "1.0.0"
    title: str | None = None
    instructions: str | None = None


class McpBackend(Protocol):
    """What an MCP server serves. Lists are fixed at construction (they never vary per call)."""

    # Read-only (properties), so a backend may hold them as tuples or lists.
    @property
    def info(self) -> ServerInfo: ...

    @property
    def tools(self) -> Sequence[McpTool]: ...

    @property
    def resources(self) -> Sequence[McpResource]: ...

    @property
    def prompts(self) -> Sequence[McpPrompt]: ...

    async def call_tool(self, name: str, arguments: dict[str, JSON]) -> ToolResult:
        """Run a tool whose arguments were already validated against its input schema.

        Upstream failures come back as `ToolResult(is_error=True)`; only protocol problems
        (an unknown tool) raise `McpError`.
        """
        ...

    async def read_resource(self, uri: str) -> list[dict[str, JSON]]:
        """Return `contents` items (`{uri, mimeType, text}` or `{uri, mimeType, blob}`).

        Raises `McpError(INVALID_PARAMS, ...)` for an unknown URI.
        """
        ...

    async def get_prompt(self, name: str, arguments: dict[str, str]) -> dict[str, JSON]:
        """Return `{"description"?: ..., "messages": [...]}`; unknown prompt → McpError."""
        ...


@dataclass
class StaticBackend:
    """A backend over fixed tools and a call function: handy for tests and embedding."""

    info: ServerInfo
    tools: Sequence[McpTool] = ()
    resources: Sequence[McpResource] = ()
    prompts: Sequence[McpPrompt] = ()
    handlers: dict[str, Any] = field(default_factory=dict)

    async def call_tool(self, name: str, arguments: dict[str, JSON]) -> ToolResult:
        handler = self.handlers.get(name)
        if handler is None:
            raise McpError(INVALID_PARAMS, f"Unknown tool: {name}")
        return await handler(arguments)

    async def read_resource(self, uri: str) -> list[dict[str, JSON]]:
        raise McpError(INVALID_PARAMS, f"Unknown resource: {uri}")

    async def get_prompt(self, name: str, arguments: dict[str, str]) -> dict[str, JSON]:
        raise McpError(INVALID_PARAMS, f"Unknown prompt: {name}")
