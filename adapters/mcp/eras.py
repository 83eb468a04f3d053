"""The two MCP protocol eras: which one a message speaks, and the modern era's envelope.

- *legacy* (2024-11-05 … 2025-11-25): `initialize` negotiates a version, `ping` works, results
  are plain, `structuredContent` must be an object, an unknown resource is -32002;
- *modern* (2026-07-28): stateless; every request carries its version and client capabilities
  in `params._meta`, `server/discover` replaces `initialize`, every result carries
  `resultType` and a `serverInfo` stamp, list results carry `ttlMs`/`cacheScope`, and the
  handshake-only methods answer -32601.

A transport decides the era of each message (`is_modern_request` over HTTP, where a header may
say it; `is_modern_message` over stdio, where only the body can), and `protocol.McpProtocol`
answers it in that era, checking a modern request with `check_envelope` first.
"""

from __future__ import annotations

from typing import Any, Final
from collections.abc import Callable

from .backend import INVALID_PARAMS, McpError

__all__ = [
    "CLIENT_CAPABILITIES_KEY",
    "DEFAULT_LEGACY_VERSION",
    "HEADER_MISMATCH",
    "LATEST_LEGACY_VERSION",
    "LEGACY_ONLY",
    "LEGACY_VERSIONS",
    "MODERN_VERSIONS",
    "PROTOCOL_VERSION_KEY",
    "RESOURCE_NOT_FOUND",
    "SERVER_INFO_KEY",
    "UNSUPPORTED_VERSION",
    "HeaderCheck",
    "check_envelope",
    "is_modern_message",
    "is_modern_request",
]

LEGACY_VERSIONS: Final = ("2024-11-05", "2025-03-26", "2025-06-18", "2025-11-25")
MODERN_VERSIONS: Final = ("2026-07-28",)
LATEST_LEGACY_VERSION: Final = LEGACY_VERSIONS[-1]
#: What an HTTP client that sent neither a session nor a version header speaks (spec 2025-06-18).
DEFAULT_LEGACY_VERSION: Final = "2025-03-26"

PROTOCOL_VERSION_KEY: Final = "io.modelcontextprotocol/protocolVersion"
CLIENT_CAPABILITIES_KEY: Final = "io.modelcontextprotocol/clientCapabilities"
SERVER_INFO_KEY: Final = "io.modelcontextprotocol/serverInfo"

RESOURCE_NOT_FOUND: Final = -32002
HEADER_MISMATCH: Final = -32020
UNSUPPORTED_VERSION: Final = -32022

#: Methods that exist only in the handshake era; a modern-headed call gets -32601.
LEGACY_ONLY: Final = frozenset(
    {"initialize", "ping", "logging/setLevel", "resources/subscribe", "resources/unsubscribe"}
)

#: Called between the `_meta` check and the version check of a modern request, so a transport
#: can compare its headers with the body (it raises `McpError(HEADER_MISMATCH, ...)`).
HeaderCheck = Callable[[dict[str, Any], Any], None]


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


def is_modern_request(version: str | None, message: Any) -> bool:
    """Whether an HTTP request speaks the modern era (mcp.md §1.3, like the official SDK).

    A `MCP-Protocol-Version` header naming a known version decides; with no header, or an
    unknown one, the body does: its `params._meta` carries an envelope key.
    """
    if version is not None:
        if version in MODERN_VERSIONS:
            return True
        if version in LEGACY_VERSIONS:
            return False
    # no header, or an unknown one: the body decides
    params = message.get("params") if isinstance(message, dict) else None
    meta = params.get("_meta") if isinstance(params, dict) else None
    return isinstance(meta, dict) and (PROTOCOL_VERSION_KEY in meta or CLIENT_CAPABILITIES_KEY in meta)


def check_envelope(message: dict[str, Any], params: dict[str, Any], check_headers: HeaderCheck | None) -> None:
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
