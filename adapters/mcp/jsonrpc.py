"""JSON-RPC 2.0 framing: one message decoded from its JSON text, one encoded for the wire.

Both transports use it: `http` reads a POST body with `decode_message`, `stdio` one line; each
writes back `encode_message(reply)`, whose output never holds a raw newline, so it frames a
stdio line as it is. `error_response` builds the error object every layer answers with.
"""

from __future__ import annotations

from typing import Any, Final

from ...engine import dumps, loads

from .backend import JSON, McpError

__all__ = ["INVALID_REQUEST", "PARSE_ERROR", "decode_message", "encode_message", "error_response"]

PARSE_ERROR: Final = -32700
INVALID_REQUEST: Final = -32600


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
