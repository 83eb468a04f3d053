"""CORS: which browser pages on other origins may call an exposed block, as the Fetch standard says.

`Cors` wraps a block's app outermost (outside its authentication), so a preflight never meets a
401 and a 401 still reads in the page. It is installed only when origins are configured
(`--cors-origin`, `NAFTIKO_CORS_ORIGINS`); a request without `Origin` costs one header scan.

The rules, for an `Origin` that is allowed:

- an origin listed by name (`https://app.example`; scheme and host compared case-insensitively,
  `:443`/`:80` the same as none) is echoed with `Access-Control-Allow-Credentials: true`, so its
  pages may send cookies or browser-managed HTTP authentication (`credentials: "include"`);
- any other origin, when `*` is configured, is answered with a literal `*` and never with
  `-Allow-Credentials`. A browser then reads the answer to a request made without credentials
  (a token the page sets in `Authorization` itself is not a credential to Fetch) and refuses a
  credentialed one, so `*` can never hand a user's cookies or browser-held login to any page.
  Echoing the origin without `-Allow-Credentials` would allow exactly the same, at a `Vary` more;
- a preflight (OPTIONS with `Access-Control-Request-Method`) is a 204 naming the methods, echoing
  the requested headers (an allowed page may send any header the block reads: `Authorization`,
  API keys, `Mcp-Session-Id`, `Mcp-Param-*`, trusted forward headers) and `Max-Age`
  (`DEFAULT_MAX_AGE`); the private-network preflight of Chromium is granted too;
- every answer (errors and 401s too) carries `Access-Control-Allow-Origin`, `Vary: Origin`
  where the answer depends on the origin, and `Access-Control-Expose-Headers`: the names in
  `EXPOSED`, which a credentialed request reads, and `*`, which Fetch honours (every header) only
  for a request without credentials.

A preflight from an origin that is not allowed is a 403 with a JSON body naming it and never
reaches the app; any other request from it goes on without CORS headers (so the browser keeps its
answer from the page), and the MCP Guard refuses it as it refuses every foreign origin. An allowed
request is marked in the ASGI scope (`ALLOWED_ORIGIN`), so the MCP Guard's DNS-rebinding Origin
check lets exactly the origins CORS allows through. `Access-Control-*` headers the app's answer
already holds (an upstream's own CORS policy, passed on by a REST route) are dropped whenever the
request has an `Origin`: they describe the upstream, not this server.
"""

from __future__ import annotations

import json
import re
from typing import Any, Final
from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from urllib.parse import urlsplit

from ..engine import NaftikoError

__all__ = ["ALLOWED_ORIGIN", "DEFAULT_MAX_AGE", "EXPOSED", "Cors", "origin_key"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

#: Seconds a browser may reuse a preflight's answer (Chromium caps it at 7200, Firefox at 86400).
DEFAULT_MAX_AGE: Final = 600
#: The scope key set on a request whose Origin CORS allows (read by `mcp.guards.Guard`).
ALLOWED_ORIGIN: Final = "naftiko.cors_allowed"
#: Response headers a page may read: MCP's session and version, the 401 challenge, what a REST route passes on.
EXPOSED: Final = (
    "Mcp-Session-Id",
    "MCP-Protocol-Version",
    "WWW-Authenticate",
    "Retry-After",
    "Content-Disposition",
    "Location",
    "Link",
    "ETag",
)
ALLOWED_METHODS: Final = "GET, POST, PUT, PATCH, DELETE, OPTIONS"

_DEFAULT_PORTS: Final = {"http": 80, "https": 443}
_HOST: Final = re.compile(r"[a-z0-9._~-]+|\[[0-9a-f:.]+\]")
_SCHEME: Final = re.compile(r"[a-z][a-z0-9+.-]*")
_HEADER_LIST: Final = re.compile(rb"[!#$%&'*+.^_`|~0-9A-Za-z-]+(?:[ \t]*,[ \t]*[!#$%&'*+.^_`|~0-9A-Za-z-]+)*")
_SHOWN: Final = 200  # characters of a refused origin quoted in the 403 body
_CORS_PREFIX: Final = b"access-control-"
_PREFLIGHT_VARY: Final = (b"vary", b"Origin, Access-Control-Request-Method, Access-Control-Request-Headers")
_ODD_ENDINGS: Final = (b":443", b":80", b"/")  # an origin ending so may be a named one written otherwise


def origin_key(text: str) -> str | None:
    """`text` as a browser serializes an origin (lower-case scheme and host, no default port), or None.

    `https://App.Example:443/` gives `https://app.example`; a path, query, user or pattern is no origin.
    """
    text = text.strip()
    if text.endswith("/"):
        text = text[:-1]
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError:
        return None
    scheme, host = parts.scheme.lower(), parts.hostname
    if not _SCHEME.fullmatch(scheme) or not host or parts.path or parts.query or parts.fragment or "@" in parts.netloc:
        return None
    if not host.isascii():
        try:
            host = host.encode("idna").decode("ascii")
        except UnicodeError:
            return None
    host = f"[{host}]" if ":" in host else host
    if not _HOST.fullmatch(host):
        return None
    if port is None or _DEFAULT_PORTS.get(scheme) == port:
        return f"{scheme}://{host}"
    return f"{scheme}://{host}:{port}"


def _configured(origins: Iterable[str]) -> tuple[frozenset[bytes], bool]:
    """The named origins (as browsers send them) and whether `*` is among them; a bad entry stops start-up."""
    named: set[bytes] = set()
    wildcard = False
    for raw in origins:
        if raw.strip() == "*":
            wildcard = True
            continue
        key = origin_key(raw)
        if key is None:
            raise NaftikoError(f"CORS origin {raw!r} (--cors-origin, NAFTIKO_CORS_ORIGINS) is not usable: {_why(raw)}")
        named.add(key.encode("latin-1"))
    return frozenset(named), wildcard


def _why(raw: str) -> str:
    if "*" in raw:
        return "patterns are not supported: list each origin, or give '*' alone"
    if raw.strip().lower() == "null":
        return "'null' would let in every sandboxed page and local file"
    return "an origin is scheme://host[:port], with no path"


class Cors:
    """ASGI middleware answering preflights and adding CORS headers to every answer, as the module says.

    `origins` holds serialized origins (`https://app.example`) and/or `*`; `max_age` is how many
    seconds a browser may cache a preflight's answer.
    """

    __slots__ = ("app", "_named", "_wildcard", "_vary", "_named_extra", "_wildcard_extra", "_preflight_tail")

    def __init__(self, app: Any, origins: Iterable[str], *, max_age: int = DEFAULT_MAX_AGE) -> None:
        if max_age < 0:
            raise NaftikoError(f"CORS max_age must be 0 seconds or more; got {max_age}")
        self.app = app
        self._named, self._wildcard = _configured((origins,) if isinstance(origins, str) else origins)
        # With only `*`, every Origin gets the same answer; with names, the answer depends on it.
        self._vary: list[tuple[bytes, bytes]] = [(b"vary", b"Origin")] if self._named else []
        exposed = ", ".join((*EXPOSED, "*")).encode()
        self._named_extra = [
            (b"access-control-allow-credentials", b"true"),
            (b"access-control-expose-headers", exposed),
            (b"vary", b"Origin"),
        ]
        self._wildcard_extra = [
            (b"access-control-allow-origin", b"*"),
            (b"access-control-expose-headers", exposed),
            *self._vary,
        ]
        self._preflight_tail = [
            (b"access-control-allow-methods", ALLOWED_METHODS.encode()),
            (b"access-control-max-age", str(max_age).encode()),
        ]

    def __getattr__(self, name: str) -> Any:
        return getattr(self.app, name)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        origin: bytes | None = None
        for key, value in scope["headers"]:
            if key == b"origin":
                origin = value
                break
        if origin is None:  # a server-to-server caller, or a same-origin GET: nothing to add
            await self.app(scope, receive, send)
            return
        named = self._is_named(origin)
        allowed = named or self._wildcard
        if scope["method"] == "OPTIONS" and _header(scope, b"access-control-request-method") is not None:
            await (self._preflight(scope, origin, named, send) if allowed else self._refuse(origin, send))
            return
        if not allowed:
            await self.app(scope, receive, _without_cors(send, self._vary))
            return
        scope[ALLOWED_ORIGIN] = True
        extra = [(b"access-control-allow-origin", origin), *self._named_extra] if named else self._wildcard_extra
        await self.app(scope, receive, _with_cors(send, extra))

    def _is_named(self, origin: bytes) -> bool:
        if origin in self._named:
            return True
        if not self._named or (origin.islower() and not origin.endswith(_ODD_ENDINGS)):
            return False  # written as a browser writes it, so normalising would not change it
        key = origin_key(origin.decode("latin-1"))  # not as a browser writes it: compare it normalised
        return key is not None and key.encode("latin-1") in self._named

    async def _preflight(self, scope: Scope, origin: bytes, named: bool, send: Send) -> None:
        headers = (
            [(b"access-control-allow-origin", origin), (b"access-control-allow-credentials", b"true")]
            if named
            else [(b"access-control-allow-origin", b"*")]
        )
        requested = _header(scope, b"access-control-request-headers")
        if requested is not None and requested.strip():
            if not _HEADER_LIST.fullmatch(requested.strip()):
                await _json(
                    send,
                    400,
                    "bad_preflight",
                    "Access-Control-Request-Headers is not a comma-separated list of header names",
                    self._vary,
                )
                return
            headers.append((b"access-control-allow-headers", requested.strip()))
        headers.extend(self._preflight_tail)
        if _header(scope, b"access-control-request-private-network") == b"true":
            headers.append((b"access-control-allow-private-network", b"true"))
        headers.append(_PREFLIGHT_VARY)
        await send({"type": "http.response.start", "status": 204, "headers": headers})
        await send({"type": "http.response.body", "body": b""})

    async def _refuse(self, origin: bytes, send: Send) -> None:
        shown = origin.decode("latin-1")
        shown = shown if len(shown) <= _SHOWN else shown[:_SHOWN] + "…"
        await _json(
            send,
            403,
            "origin_not_allowed",
            f"origin {shown!r} may not call this server from a browser: it is not one of its CORS origins",
            self._vary,
            origin=shown,
        )


def _header(scope: Scope, name: bytes) -> bytes | None:
    for key, value in scope["headers"]:
        if key == name:
            return value  # type: ignore[no-any-return]
    return None


def _with_cors(send: Send, extra: list[tuple[bytes, bytes]]) -> Send:
    """`send`, with the app's own Access-Control-* headers replaced by `extra` on the response start."""

    async def sender(message: Message) -> None:
        if message["type"] == "http.response.start":  # a new message: an app may send one it keeps
            kept = [h for h in message.get("headers", ()) if not h[0].startswith(_CORS_PREFIX)]
            message = {**message, "headers": kept + extra}
        await send(message)

    return sender


def _without_cors(send: Send, extra: list[tuple[bytes, bytes]]) -> Send:
    """`send`, with any Access-Control-* header of the app's answer dropped, so the browser keeps it from the page."""

    async def sender(message: Message) -> None:
        if message["type"] == "http.response.start":
            headers = message.get("headers", ())
            if extra or any(h[0].startswith(_CORS_PREFIX) for h in headers):
                message = {**message, "headers": [h for h in headers if not h[0].startswith(_CORS_PREFIX)] + extra}
        await send(message)

    return sender


async def _json(
    send: Send, status: int, kind: str, message: str, extra: list[tuple[bytes, bytes]], **fields: Any
) -> None:
    body = json.dumps({"error": {"type": kind, "message": message, **fields}}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()), *extra]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
