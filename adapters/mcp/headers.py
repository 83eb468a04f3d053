"""The request headers the Streamable HTTP transport reads, and the modern era's rule that they repeat the body.

`Headers` reads the ones `http.McpHttpApp` looks at from the ASGI list, once per request. In the
2026-07-28 era a request names its version, method and tool (or prompt, or resource) in headers
too, so a proxy can route on them, and a tool may ask for arguments in `Mcp-Param-*` headers
(`x-mcp-header` in its input schema); `check_modern_headers` refuses a request whose headers
and body disagree (-32020), with values that are not header-safe sent as `=?base64?...?=`.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any, Final
from collections.abc import Sequence

from .backend import McpError
from .eras import HEADER_MISMATCH

__all__ = ["Headers", "ParamHeader", "check_modern_headers", "decode_header_value", "param_headers"]

_NAME_PARAM: Final = {"tools/call": "name", "prompts/get": "name", "resources/read": "uri"}
_PARAM_PREFIX: Final = b"mcp-param-"
_ROUTING_HEADERS: Final = frozenset({b"mcp-protocol-version", b"mcp-method", b"mcp-name"})


class Headers:
    """The request headers this transport looks at, read once from the ASGI list."""

    __slots__ = (
        "host",
        "origin",
        "accept",
        "content_type",
        "content_length",
        "version",
        "session_id",
        "method",
        "name",
        "_raw",
        "_repeats",
    )

    host: str | None
    origin: str | None
    accept: str | None
    content_type: bytes | None
    content_length: str | None
    version: str | None  # MCP-Protocol-Version
    session_id: str | None
    method: str | None  # Mcp-Method
    name: str | None  # Mcp-Name

    def __init__(self, raw: Sequence[tuple[bytes, bytes]]) -> None:
        found = dict(raw)
        self._raw = raw
        self._repeats = len(found) < len(raw)
        self.host = None if (value := found.get(b"host")) is None else value.decode("latin-1")
        self.origin = None if (value := found.get(b"origin")) is None else value.decode("latin-1")
        self.accept = None if (value := found.get(b"accept")) is None else value.decode("latin-1")
        self.content_type = found.get(b"content-type")
        self.content_length = None if (value := found.get(b"content-length")) is None else value.decode("latin-1")
        self.version = None if (value := found.get(b"mcp-protocol-version")) is None else value.decode("latin-1")
        self.session_id = None if (value := found.get(b"mcp-session-id")) is None else value.decode("latin-1")
        self.method = None if (value := found.get(b"mcp-method")) is None else value.decode("latin-1")
        self.name = None if (value := found.get(b"mcp-name")) is None else value.decode("latin-1")

    @property
    def params(self) -> dict[str, str]:
        """`Mcp-Param-*` values by lowercase name (read only for tools that declare such headers)."""
        return {
            key.decode("latin-1"): value.decode("latin-1") for key, value in self._raw if key.startswith(_PARAM_PREFIX)
        }

    @property
    def duplicate(self) -> str | None:
        """A routing or `Mcp-Param-*` header sent more than once."""
        if not self._repeats:
            return None
        seen: set[bytes] = set()
        for key, _ in self._raw:
            if key in _ROUTING_HEADERS or key.startswith(_PARAM_PREFIX):
                if key in seen:
                    return key.decode("latin-1")
                seen.add(key)
        return None


def decode_header_value(value: str | None) -> str | None:
    """Undo the `=?base64?...?=` wrapping of header values that are not header-safe.

    A malformed wrapper yields `None`, so it never matches a body value by accident.
    """
    if value is None or not (value.startswith("=?base64?") and value.endswith("?=")):
        return value
    payload = value[9:-2]
    try:
        return base64.b64decode(payload, validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None


ParamHeader = tuple[tuple[str, ...], str, str, Any]  # (path, lowercase header, header, type)


def param_headers(schema: Any) -> tuple[ParamHeader, ...]:
    """The `x-mcp-header` annotations of an input schema, reached through `properties` only."""
    found: list[ParamHeader] = []
    stack: list[tuple[tuple[str, ...], Any]] = [((), schema)]
    while stack:
        path, node = stack.pop()
        if not isinstance(node, dict):
            continue
        token = node.get("x-mcp-header")
        if path and isinstance(token, str) and token:
            header = f"Mcp-Param-{token}"
            found.append((path, header.lower(), header, node.get("type")))
        properties = node.get("properties")
        if isinstance(properties, dict):
            stack.extend(((*path, key), sub) for key, sub in properties.items())
    return tuple(found)


def _render(value: Any) -> str | None:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (str, int)):
        return str(value)
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else repr(value)
    return None


def _param_matches(kind: Any, value: Any, header: str) -> bool:
    """Compare an `Mcp-Param-*` value with the body argument (integers compared numerically)."""
    if kind == "integer" and not isinstance(value, bool) and isinstance(value, (int, float)):
        whole, _, fraction = header.partition(".")
        if fraction.strip("0") or not whole.lstrip("-").isdigit():
            return False
        return int(whole) == value
    return header == _render(value)


def check_modern_headers(
    annotated: dict[str, tuple[ParamHeader, ...]], headers: Headers, body: dict[str, Any], version: Any
) -> None:
    """`MCP-Protocol-Version`, `Mcp-Method`, `Mcp-Name` and `Mcp-Param-*` must match the body.

    `annotated` holds the `param_headers` of each tool that declares some; the transport binds it
    and the request's headers with `functools.partial`, which makes this an `eras.HeaderCheck`.
    """
    if headers.duplicate is not None:
        raise McpError(HEADER_MISMATCH, f"Header mismatch: {headers.duplicate} appears more than once")
    if headers.version is None or headers.version != version:
        raise McpError(
            HEADER_MISMATCH, "Header mismatch: MCP-Protocol-Version does not match params._meta protocol version"
        )
    method = body.get("method")
    if not isinstance(method, str) or headers.method is None or decode_header_value(headers.method) != method:
        raise McpError(HEADER_MISMATCH, "Header mismatch: Mcp-Method does not match the request method")
    key = _NAME_PARAM.get(method)
    if key is None:
        return
    params = body.get("params") or {}
    value = params.get(key)
    if value is not None and decode_header_value(headers.name) != value:
        raise McpError(HEADER_MISMATCH, f"Header mismatch: Mcp-Name does not match params.{key}")
    if method == "tools/call" and isinstance(value, str):
        declared = annotated.get(value)
        if declared:
            _check_param_headers(declared, params.get("arguments"), headers.params)


def _check_param_headers(annotated: tuple[ParamHeader, ...], arguments: Any, sent: dict[str, str]) -> None:
    """Each `x-mcp-header` argument and its `Mcp-Param-*` header are present and equal, or both absent."""
    for path, key, header, kind in annotated:
        value: Any = arguments
        for step in path:
            value = value.get(step) if isinstance(value, dict) else None
        raw = sent.get(key)
        rendered = _render(value) if value is not None else None
        if rendered is None:
            if raw is not None:
                raise McpError(HEADER_MISMATCH, f"Header mismatch: {header} is sent but the argument is absent")
            continue
        if raw is None:
            raise McpError(HEADER_MISMATCH, f"Header mismatch: {header} is missing")
        decoded = decode_header_value(raw)
        if decoded is None or not _param_matches(kind, value, decoded):
            raise McpError(HEADER_MISMATCH, f"Header mismatch: {header} does not match the argument")
