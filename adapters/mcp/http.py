"""Streamable HTTP transport for MCP, both protocol eras on one endpoint.

A plain ASGI app (no framework, no pydantic on the hot path): each POST carries one JSON-RPC
message and gets one `application/json` answer. Server-initiated streams are not offered: our
lists never change, so there is nothing to push, and GET answers 405 as the spec allows.

Era per request (mcp.md §1.3, like the official SDK): a `MCP-Protocol-Version` header naming a
2026-07-28-era version, or no header and a body whose `params._meta` carries the envelope keys,
means *modern* (stateless, header-checked); anything else is the *legacy* handshake era.

Legacy sessions: `initialize` mints an `Mcp-Session-Id`. A request that names an unknown or
ended session gets 404 (the client re-initializes), DELETE ends a session. A request with *no*
session id is served anyway: the Java reference engine never checks sessions and some clients
call `tools/call` without a handshake; our sessions hold nothing but the negotiated version, so
requiring them would only break those clients.

Security: `Host` must be allowed (421 otherwise: DNS rebinding) and a present `Origin` must be
allowed or same-origin (403 otherwise). A POST body must be `application/json` (415 otherwise:
a page on any origin may send `text/plain` without a CORS preflight) and at most
`max_body_bytes` (413). Every error body is a JSON-RPC error object.

A caller that disconnects while its request waits (on an upstream, mostly) gets that wait
cancelled, which releases the upstream connection (`adapters.edges.DisconnectWatch`).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import logging
import secrets
from functools import partial
from typing import Any, Final
from collections.abc import Awaitable, Callable, Iterable, MutableMapping, Sequence
from urllib.parse import urlsplit

from ..edges import BodyTooLarge, Disconnected, DisconnectWatch, read_body

from .backend import INVALID_PARAMS, METHOD_NOT_FOUND, McpBackend, McpError
from .protocol import (
    DEFAULT_LEGACY_VERSION,
    HEADER_MISMATCH,
    INVALID_REQUEST,
    LEGACY_VERSIONS,
    MODERN_VERSIONS,
    PARSE_ERROR,
    PROTOCOL_VERSION_KEY,
    CLIENT_CAPABILITIES_KEY,
    UNSUPPORTED_VERSION,
    McpProtocol,
    decode_message,
    encode_message,
    error_response,
)

__all__ = ["McpHttpApp"]

logger = logging.getLogger(__name__)

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

DEFAULT_ALLOWED_HOSTS: Final = ("localhost", "127.0.0.1", "[::1]")
_LOCAL_HOSTNAMES: Final = frozenset({"localhost", "127.0.0.1", "::1"})

#: HTTP status of a JSON-RPC error code (2026-07-28 transport spec, as the SDK maps it).
_MODERN_STATUS: Final = {
    PARSE_ERROR: 400,
    INVALID_REQUEST: 400,
    INVALID_PARAMS: 400,
    HEADER_MISMATCH: 400,
    -32021: 400,
    UNSUPPORTED_VERSION: 400,
    METHOD_NOT_FOUND: 404,
}
#: In the handshake era only an unusable envelope is an HTTP error; the rest is a 200 answer.
_LEGACY_STATUS: Final = {PARSE_ERROR: 400, INVALID_REQUEST: 400}

_NAME_PARAM: Final = {"tools/call": "name", "prompts/get": "name", "resources/read": "uri"}
_PARAM_PREFIX: Final = b"mcp-param-"
_ROUTING_HEADERS: Final = frozenset({b"mcp-protocol-version", b"mcp-method", b"mcp-name"})

_JSON_TYPE: Final = (b"content-type", b"application/json")
_HOST_VERDICTS: Final = 64  # Host values whose check is remembered
_ANSWERED: Final = object()  # a request already answered (with an error) while it was read
_SESSION_HEADER: Final = b"mcp-session-id"


class _Headers:
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


_ParamHeader = tuple[tuple[str, ...], str, str, Any]  # (path, lowercase header, header, type)


def _param_headers(schema: Any) -> tuple[_ParamHeader, ...]:
    """The `x-mcp-header` annotations of an input schema, reached through `properties` only."""
    found: list[_ParamHeader] = []
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


class McpHttpApp:
    """An ASGI app serving one MCP backend over Streamable HTTP at `paths`.

    `allowed_hosts` entries are host names (any port) or `host:port` (that port only); `"*"`
    allows any. `allowed_origins` entries are origins such as `"https://app.example"`, or
    `"*"`; by default only local origins (localhost, 127.0.0.1, [::1], any port) are allowed.
    A same-origin request (Origin matching the Host) is always allowed.
    """

    def __init__(
        self,
        backend: McpBackend,
        *,
        allowed_hosts: Iterable[str] | None = None,
        allowed_origins: Iterable[str] | None = None,
        page_size: int = 100,
        paths: Iterable[str] = ("/mcp", "/mcp/", "/"),
        max_body_bytes: int = 4 * 1024 * 1024,
        max_sessions: int = 10_000,
        ttl_ms: int = 0,
        cache_scope: str = "private",
    ) -> None:
        self.protocol = McpProtocol(backend, page_size=page_size, ttl_ms=ttl_ms, cache_scope=cache_scope)
        self._paths = frozenset(paths)
        self._max_body = max_body_bytes
        self._watch = DisconnectWatch()
        self._max_sessions = max_sessions
        self._sessions: dict[str, str] = {}  # session id -> negotiated legacy version
        hosts = [h.strip().lower() for h in (allowed_hosts if allowed_hosts is not None else DEFAULT_ALLOWED_HOSTS)]
        self._any_host = "*" in hosts
        self._hosts_exact = frozenset(h for h in hosts if _has_port(h))
        self._hosts_any_port = frozenset(h for h in hosts if not _has_port(h))
        self._host_verdicts: dict[str, bool] = {}
        self._origins: frozenset[str] | None = None
        self._any_origin = False
        if allowed_origins is not None:
            origins = [o.strip().lower().rstrip("/") for o in allowed_origins]
            self._any_origin = "*" in origins
            self._origins = frozenset(origins)
        self._param_headers = {
            tool.name: found for tool in backend.tools if (found := _param_headers(tool.input_schema))
        }

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        # Flat on purpose: every wait for an upstream resumes through each coroutine frame above it.
        if scope["type"] != "http":
            if scope["type"] == "lifespan":
                await _lifespan(receive, send)
            return
        headers = _Headers(scope["headers"])
        refusal = self._refusal(scope, headers)
        if refusal is not None:
            await _send_error(send, refusal[0], INVALID_REQUEST, refusal[1])
        elif scope["method"] != "POST":
            await self._not_post(scope["method"], headers, send)
        else:
            message = await self._read_message(headers, receive, send)
            if message is _ANSWERED:
                return
            extra: Iterable[tuple[bytes, bytes]] = ()
            if self._is_modern(headers.version, message):
                statuses = _MODERN_STATUS
                pending = self._modern(headers, message)
            elif headers.version is not None and headers.version not in LEGACY_VERSIONS:
                await _send_error(
                    send,
                    400,
                    INVALID_REQUEST,
                    f"Bad Request: unsupported MCP-Protocol-Version {headers.version!r}",
                    {"supported": [*LEGACY_VERSIONS, *MODERN_VERSIONS], "requested": headers.version},
                )
                return
            else:
                version = self._legacy_version(headers, message)
                if version is None:
                    await _send_error(send, 404, INVALID_REQUEST, "Session not found")
                    return
                statuses = _LEGACY_STATUS
                pending = self.protocol.handle(message, modern=False, version=version)
            watch = self._watch
            task = watch.enter(receive)
            try:
                reply = await pending
            except asyncio.CancelledError:
                if watch.gone(task):
                    return  # the caller went away: its upstream call was released, nobody to answer
                raise
            finally:
                watch.leave(task)
            if (
                statuses is _LEGACY_STATUS
                and reply is not None
                and "result" in reply
                and isinstance(message, dict)
                and message.get("method") == "initialize"
            ):
                extra = [(_SESSION_HEADER, self._new_session(reply["result"]["protocolVersion"]).encode())]
            await _send_reply(send, reply, statuses, extra)

    # ----------------------------------------------------------------- routing

    def _refusal(self, scope: Scope, headers: _Headers) -> tuple[int, str] | None:
        """Why a request is turned away before its method is looked at (wrong path, Host, Origin)."""
        if _route_path(scope) not in self._paths:
            return 404, "Not Found: the MCP endpoint is /mcp"
        if not self._host_allowed(headers.host):
            return 421, "Invalid Host header"
        if headers.origin is not None and not self._origin_allowed(headers.origin, headers.host):
            return 403, "Invalid Origin header"
        return None

    async def _not_post(self, method: str, headers: _Headers, send: Send) -> None:
        if headers.version in MODERN_VERSIONS:
            await _send_error(send, 405, INVALID_REQUEST, "Method Not Allowed", allow=b"POST")
        elif method == "DELETE":
            await self._delete(headers, send)
        else:
            await _send_error(send, 405, INVALID_REQUEST, "Method Not Allowed", allow=b"POST, DELETE")

    async def _read_message(self, headers: _Headers, receive: Receive, send: Send) -> Any:
        """The decoded JSON-RPC message, or `_ANSWERED` once an error has been sent instead.

        Only `application/json` is read: a page on another origin can POST `text/plain` (or no
        type at all) without a CORS preflight, and must not reach a tool that way.
        """
        if not _accepts_json(headers.accept):
            await _send_error(send, 406, INVALID_REQUEST, "Not Acceptable: the client must accept application/json")
            return _ANSWERED
        if headers.content_type != b"application/json" and not _is_json_type(headers.content_type):
            await _send_error(
                send, 415, INVALID_REQUEST, "Unsupported Media Type: the request body must be sent as application/json"
            )
            return _ANSWERED
        try:
            body = await read_body(receive, self._max_body, headers.content_length)
        except Disconnected:
            return _ANSWERED
        except BodyTooLarge as exc:
            await _send_error(send, 413, INVALID_REQUEST, f"Request body too large: {exc}", {"limit": exc.limit})
            return _ANSWERED
        try:
            return decode_message(body)
        except McpError as exc:
            await _send_error(send, 400, exc.code, exc.message)
            return _ANSWERED

    @staticmethod
    def _is_modern(version: str | None, message: Any) -> bool:
        if version is not None:
            if version in MODERN_VERSIONS:
                return True
            if version in LEGACY_VERSIONS:
                return False
        # no header, or an unknown one: the body decides
        params = message.get("params") if isinstance(message, dict) else None
        meta = params.get("_meta") if isinstance(params, dict) else None
        return isinstance(meta, dict) and (PROTOCOL_VERSION_KEY in meta or CLIENT_CAPABILITIES_KEY in meta)

    # ----------------------------------------------------------------- legacy era

    def _legacy_version(self, headers: _Headers, message: Any) -> str | None:
        """The version a handshake-era request speaks: its session's, else its header's; None for an unknown session."""
        is_initialize = isinstance(message, dict) and message.get("method") == "initialize"
        if headers.session_id is not None and not is_initialize:
            return self._sessions.get(headers.session_id)
        return headers.version or DEFAULT_LEGACY_VERSION

    def _new_session(self, version: str) -> str:
        while len(self._sessions) >= self._max_sessions:  # forget the oldest session
            del self._sessions[next(iter(self._sessions))]
        session_id = secrets.token_urlsafe(24)
        self._sessions[session_id] = version
        return session_id

    async def _delete(self, headers: _Headers, send: Send) -> None:
        if headers.session_id is None:
            await _send_error(send, 400, INVALID_REQUEST, "Bad Request: Mcp-Session-Id header is required")
        elif self._sessions.pop(headers.session_id, None) is None:
            await _send_error(send, 404, INVALID_REQUEST, "Session not found")
        else:
            await _send_empty(send, 200)

    # ----------------------------------------------------------------- modern era

    def _modern(self, headers: _Headers, message: Any) -> Awaitable[dict[str, Any] | None]:
        """The reply to a modern message; a request's is the protocol's own coroutine (a frame less)."""
        if isinstance(message, dict) and "id" not in message:
            return self._modern_notification(headers, message)
        return self.protocol.handle(message, modern=True, check_headers=partial(self._check_modern_headers, headers))

    async def _modern_notification(self, headers: _Headers, message: dict[str, Any]) -> dict[str, Any] | None:
        """Nothing to act on in a stateless exchange (cancelling is closing the response stream),
        but a version we could not have served either is refused."""
        reply = await self.protocol.handle(message)
        if reply is None and headers.version not in MODERN_VERSIONS:
            reply = error_response(
                None,
                UNSUPPORTED_VERSION,
                f"Unsupported protocol version: {headers.version}",
                {"supported": list(MODERN_VERSIONS), "requested": headers.version},
            )
        return reply

    def _check_modern_headers(self, headers: _Headers, body: dict[str, Any], version: Any) -> None:
        """`MCP-Protocol-Version`, `Mcp-Method`, `Mcp-Name` and `Mcp-Param-*` must match the body."""
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
            annotated = self._param_headers.get(value)
            if annotated:
                _check_param_headers(annotated, params.get("arguments"), headers.params)

    # ----------------------------------------------------------------- security

    def _host_allowed(self, host: str | None) -> bool:
        if host is None or self._any_host:
            return True  # no Host header: nothing a rebinding attack could have set
        verdict = self._host_verdicts.get(host)
        if verdict is None:
            lowered = host.lower()
            verdict = (
                lowered in self._hosts_any_port
                or lowered in self._hosts_exact
                or _strip_port(lowered) in self._hosts_any_port
            )
            if len(self._host_verdicts) < _HOST_VERDICTS:  # a client can send any Host: keep few
                self._host_verdicts[host] = verdict
        return verdict

    def _origin_allowed(self, origin: str, host: str | None) -> bool:
        if self._any_origin:
            return True
        origin = origin.lower().rstrip("/")
        if self._origins is not None and origin in self._origins:
            return True
        try:
            parts = urlsplit(origin)
            hostname, netloc = parts.hostname, parts.netloc
        except ValueError:
            return False
        if host is not None and netloc and netloc == host.lower():
            return True  # same origin as the (already validated) Host
        return self._origins is None and parts.scheme in ("http", "https") and hostname in _LOCAL_HOSTNAMES


def _check_param_headers(annotated: tuple[_ParamHeader, ...], arguments: Any, sent: dict[str, str]) -> None:
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


# --------------------------------------------------------------------------- small helpers


def _route_path(scope: Scope) -> str:
    """The path below any mount point (ASGI `path` includes `root_path`)."""
    path: str = scope["path"]
    root: str = scope.get("root_path", "")
    if root and path.startswith(root):
        return path[len(root) :] or "/"
    return path


def _has_port(host: str) -> bool:
    return host.rsplit("]", 1)[-1].count(":") == 1


def _strip_port(host: str) -> str:
    if host.startswith("["):
        end = host.find("]")
        return host[: end + 1] if end > 0 else host
    return host.split(":", 1)[0]


def _accepts_json(accept: str | None) -> bool:
    """Only an Accept header that clearly rules JSON out is refused."""
    if not accept or "json" in accept or "*/*" in accept:
        return True
    return any(part.split(";", 1)[0].strip().lower() == "application/*" for part in accept.split(","))


def _is_json_type(content_type: bytes | None) -> bool:
    """`application/json`, with parameters (a charset) or not, in any case."""
    if content_type == b"application/json":
        return True
    if content_type is None:
        return False
    return content_type.split(b";", 1)[0].strip().lower() == b"application/json"


async def _send_json(send: Send, status: int, body: bytes, extra: Iterable[tuple[bytes, bytes]] = ()) -> None:
    headers = [_JSON_TYPE, (b"content-length", str(len(body)).encode())]
    headers.extend(extra)
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def _send_reply(
    send: Send, reply: dict[str, Any] | None, statuses: dict[int, int], extra: Iterable[tuple[bytes, bytes]] = ()
) -> None:
    """A JSON-RPC reply, its HTTP status read from its error code; none at all is a 202."""
    if reply is None:
        await _send_empty(send, 202)
        return
    status = statuses.get(reply["error"]["code"], 200) if "error" in reply else 200
    await _send_json(send, status, encode_message(reply), extra)


async def _send_error(
    send: Send, status: int, code: int, message: str, data: Any = None, *, allow: bytes | None = None
) -> None:
    extra = [(b"allow", allow)] if allow is not None else []
    await _send_json(send, status, encode_message(error_response(None, code, message, data)), extra)


async def _send_empty(send: Send, status: int) -> None:
    await send({"type": "http.response.start", "status": status, "headers": [(b"content-length", b"0")]})
    await send({"type": "http.response.body", "body": b""})


async def _lifespan(receive: Receive, send: Send) -> None:
    """Nothing to set up; acknowledge so servers do not warn about a missing lifespan."""
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return
