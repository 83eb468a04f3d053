"""Streamable HTTP transport for MCP, both protocol eras on one endpoint.

A plain ASGI app (no framework, no pydantic on the hot path): each POST carries one JSON-RPC
message and gets one `application/json` answer. Server-initiated streams are not offered: our
lists never change, so there is nothing to push, and GET answers 405 as the spec allows.

A request goes through, in order: `guards` (path, Host, Origin; then Accept and Content-Type),
the body read (`edges.read_body`, at most `max_body_bytes`: 413) and decoded (`jsonrpc`), its
era decided (`eras.is_modern_request`), then `protocol.McpProtocol`: a modern request with its
headers checked against the body (`headers`), a legacy one in the version of its session
(`sessions`: a signed id, so every instance given the same secret accepts it). The answer's
HTTP status is read from its JSON-RPC error code, per era. Every error body is a JSON-RPC
error object.

A caller that disconnects while its request waits (on an upstream, mostly) gets that wait
cancelled, which releases the upstream connection (`adapters.edges.DisconnectWatch`).
"""

from __future__ import annotations

import asyncio
import logging
from functools import partial
from typing import Any, Final
from collections.abc import Awaitable, Callable, Iterable, MutableMapping

from ..edges import BodyTooLarge, Disconnected, DisconnectWatch, read_body

from .backend import INVALID_PARAMS, METHOD_NOT_FOUND, McpBackend, McpError
from .eras import HEADER_MISMATCH, LEGACY_VERSIONS, MODERN_VERSIONS, UNSUPPORTED_VERSION, is_modern_request
from .guards import Guard, accepts_json, is_json_type
from .headers import Headers, check_modern_headers, param_headers
from .jsonrpc import INVALID_REQUEST, PARSE_ERROR, decode_message, encode_message, error_response
from .protocol import McpProtocol
from .sessions import DEFAULT_SESSION_TTL, SESSION_HEADER, Sessions

__all__ = ["McpHttpApp"]

logger = logging.getLogger(__name__)

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

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

_JSON_TYPE: Final = (b"content-type", b"application/json")
_ANSWERED: Final = object()  # a request already answered (with an error) while it was read


class McpHttpApp:
    """An ASGI app serving one MCP backend over Streamable HTTP at `paths`.

    `allowed_hosts` entries are host names (any port) or `host:port` (that port only); `"*"`
    allows any. `allowed_origins` entries are origins such as `"https://app.example"`, or
    `"*"`; by default only local origins (localhost, 127.0.0.1, [::1], any port) are allowed.
    A same-origin request (Origin matching the Host) is always allowed.

    Handshake-era session ids are signed with `session_secret` (`sessions.Sessions`): instances
    given the same one accept each other's sessions; None draws a random one for this app. A
    session lasts `session_ttl` seconds after `initialize`; at most `max_ended_sessions` ids
    ended by DELETE are remembered (here) until they expire.
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
        session_secret: bytes | None = None,
        session_ttl: float = DEFAULT_SESSION_TTL,
        max_ended_sessions: int = 10_000,
        ttl_ms: int = 0,
        cache_scope: str = "private",
    ) -> None:
        self.protocol = McpProtocol(backend, page_size=page_size, ttl_ms=ttl_ms, cache_scope=cache_scope)
        self._guard = Guard(paths, allowed_hosts, allowed_origins)
        self._max_body = max_body_bytes
        self._watch = DisconnectWatch()
        self._sessions = Sessions(
            session_secret, scope=backend.info.name, ttl=session_ttl, max_ended=max_ended_sessions
        )
        self._param_headers = {
            tool.name: found for tool in backend.tools if (found := param_headers(tool.input_schema))
        }

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        # Flat on purpose: every wait for an upstream resumes through each coroutine frame above it.
        if scope["type"] != "http":
            if scope["type"] == "lifespan":
                await _lifespan(receive, send)
            return
        headers = Headers(scope["headers"])
        refusal = self._guard.refusal(scope, headers)
        if refusal is not None:
            await _send_error(send, refusal[0], INVALID_REQUEST, refusal[1])
        elif scope["method"] != "POST":
            await self._not_post(scope["method"], headers, send)
        else:
            message = await self._read_message(headers, receive, send)
            if message is _ANSWERED:
                return
            extra: Iterable[tuple[bytes, bytes]] = ()
            if is_modern_request(headers.version, message):
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
                version = self._sessions.version(headers.session_id, headers.version, message)
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
                extra = [(SESSION_HEADER, self._sessions.open(reply["result"]["protocolVersion"]).encode())]
            await _send_reply(send, reply, statuses, extra)

    # ----------------------------------------------------------------- the request

    async def _not_post(self, method: str, headers: Headers, send: Send) -> None:
        if headers.version in MODERN_VERSIONS:
            await _send_error(send, 405, INVALID_REQUEST, "Method Not Allowed", allow=b"POST")
        elif method == "DELETE":
            await self._delete(headers, send)
        else:
            await _send_error(send, 405, INVALID_REQUEST, "Method Not Allowed", allow=b"POST, DELETE")

    async def _read_message(self, headers: Headers, receive: Receive, send: Send) -> Any:
        """The decoded JSON-RPC message, or `_ANSWERED` once an error has been sent instead.

        Only `application/json` is read: a page on another origin can POST `text/plain` (or no
        type at all) without a CORS preflight, and must not reach a tool that way.
        """
        if not accepts_json(headers.accept):
            await _send_error(send, 406, INVALID_REQUEST, "Not Acceptable: the client must accept application/json")
            return _ANSWERED
        if headers.content_type != b"application/json" and not is_json_type(headers.content_type):
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

    # ----------------------------------------------------------------- legacy era

    async def _delete(self, headers: Headers, send: Send) -> None:
        if headers.session_id is None:
            await _send_error(send, 400, INVALID_REQUEST, "Bad Request: Mcp-Session-Id header is required")
        elif not self._sessions.end(headers.session_id):
            await _send_error(send, 404, INVALID_REQUEST, "Session not found")
        else:
            await _send_empty(send, 200)

    # ----------------------------------------------------------------- modern era

    def _modern(self, headers: Headers, message: Any) -> Awaitable[dict[str, Any] | None]:
        """The reply to a modern message; a request's is the protocol's own coroutine (a frame less)."""
        if isinstance(message, dict) and "id" not in message:
            return self._modern_notification(headers, message)
        return self.protocol.handle(
            message, modern=True, check_headers=partial(check_modern_headers, self._param_headers, headers)
        )

    async def _modern_notification(self, headers: Headers, message: dict[str, Any]) -> dict[str, Any] | None:
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


# --------------------------------------------------------------------------- answers


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
