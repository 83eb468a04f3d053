"""One pooled HTTP client per consumes namespace, and what it answers.

The wire work is `pool.Pool`'s (HTTP/1.1 keep-alive); this module adds what a namespace needs on top of it:
its base URI, digest and OAuth2 credentials, redirects, and errors that name the namespace.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import os
import re
from typing import Any
from collections.abc import AsyncIterator, Coroutine, Mapping, Sequence
from urllib.parse import urlencode, urljoin, urlsplit

from ..errors import NaftikoError, RequestError, UpstreamError, UpstreamTimeout
from ..jsoncodec import loads
from ..limits import Limits, advice
from ..observe import Observer, UpstreamCall
from .connection import Response
from .request import Origin
from .failures import BodyTooLarge, ConnectFailure, HTTPFailure, ProxyFailure, ReadTimeout
from .pool import Pool
from .proxy import Proxies, ProxyConfigError
from .resilience import Resilient
from .request import Prepared

# Headers that describe one hop, or that we rewrite, and so never pass through.
HOP_HEADERS = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailer",
        "trailers",
        "transfer-encoding",
        "upgrade",
        "server",
        "date",
        "content-length",
    }
)
REDIRECTS = frozenset({301, 302, 303, 307, 308})
MAX_REDIRECTS = 10
Headers = Sequence[tuple[str, str]]


def is_json_type(content_type: str) -> bool:
    return content_type == "application/json" or content_type.endswith("+json")


class _Target:
    """Where a URL's requests go: origin, Host header, and the path and query."""

    __slots__ = ("origin", "host", "path")

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"'{url}' is not an http(s) URL")
        default = 443 if parts.scheme == "https" else 80
        port = parts.port or default
        name = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
        self.origin: Origin = (parts.scheme, parts.hostname, port)
        self.host = name if port == default else f"{name}:{port}"
        self.path = parts.path + ("?" + parts.query if parts.query else "")

    def url(self, path: str) -> str:
        return f"{self.origin[0]}://{self.host}{path}"


def json_body(raw: bytes, namespace: str, operation: str, content_type: str) -> Any:
    """An answer's body parsed as JSON (None when empty); not JSON is an UpstreamError naming the upstream."""
    if not raw.strip():
        return None
    try:
        return loads(raw)
    except (ValueError, RecursionError) as exc:
        raise UpstreamError(namespace, operation, f"answered {content_type} that is not valid JSON ({exc})") from None


class UpstreamResponse:
    """An upstream answer whose body has not been read yet, so it can be streamed."""

    __slots__ = ("_response", "_upstream", "_operation", "status", "content_type", "charset", "_cap")

    def __init__(self, response: Response, upstream: Upstream, operation: str) -> None:
        self._response = response
        self._upstream = upstream
        self._operation = operation
        self._cap: tuple[int, str] | None = None  # set by `limit`
        self.status = response.status
        media, _, params = (response.header("content-type") or "").partition(";")
        self.content_type = media.strip().lower() or "application/octet-stream"
        match = re.search(r'charset="?([^";\s]+)', params, re.IGNORECASE) if params else None
        self.charset: str | None = match.group(1) if match else None

    @property
    def is_json(self) -> bool:
        return is_json_type(self.content_type)

    def headers(self, *, keep_length: bool = True) -> list[tuple[str, str]]:
        """Upstream headers worth passing on (names in lower case); length kept only for an unchanged body."""
        # An upstream's CORS headers state its own policy, not ours: passed on, its
        # `Access-Control-Allow-Origin: *` would let any web page read what we fetched with our credentials.
        kept = [
            (k, v) for k, v in self._response.headers if k not in HOP_HEADERS and not k.startswith("access-control-")
        ]
        length = self._response.header("content-length") if keep_length else None
        if length is not None and self._response.header("transfer-encoding") is None:
            kept.append(("content-length", length))
        return kept

    def _error(self, failure: HTTPFailure) -> UpstreamError:
        if isinstance(failure, ReadTimeout):
            return self._upstream.timeout_error(self._operation)
        if isinstance(failure, BodyTooLarge):
            return self._upstream.too_large(self._operation, failure)
        return UpstreamError(self._upstream.namespace, self._operation, f"broken response: {failure.reason}")

    async def read(self) -> bytes:
        try:
            return await self._response.read()
        except HTTPFailure as failure:
            raise self._error(failure) from None

    async def json(self) -> Any:
        """The parsed JSON body; an empty body gives None."""
        return json_body(await self.read(), self._upstream.namespace, self._operation, self.content_type)

    def limit(self, size: int, reason: str) -> None:
        """Make `chunks` fail (an UpstreamError saying `reason`) once more than `size` bytes came (maxBinarySize)."""
        self._cap = (size, reason)

    async def chunks(self) -> AsyncIterator[bytes]:
        """The body as it arrives, without buffering it."""
        cap, seen = self._cap, 0
        try:
            async for chunk in self._response.chunks():
                if cap is not None:
                    seen += len(chunk)
                    if seen > cap[0]:
                        raise UpstreamError(self._upstream.namespace, self._operation, cap[1])
                yield chunk
        except HTTPFailure as failure:
            raise self._error(failure) from None

    def close(self) -> None:
        self._response.close()


class DigestAuth:
    """HTTP digest credentials (RFC 7616): MD5 or SHA-256, `-sess` variants, qop=auth.

    After the first challenge every request is signed up front with the next nonce count,
    so a digest upstream costs one round trip per call, not two.
    """

    _PARAM = re.compile(r'(\w+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^,\s]+))')

    def __init__(self, username: str, password: str) -> None:
        self.username, self.password = username, password
        self._challenge: dict[str, str] | None = None
        self._count = 0

    def learn(self, header: str | None) -> bool:
        """Take a 401's challenge; False when it is not digest or brings nothing new to try."""
        if not header or not header[:7].lower() == "digest ":
            return False
        challenge = {
            m.group(1).lower(): m.group(2) if m.group(2) is not None else m.group(3)
            for m in self._PARAM.finditer(header[7:])
        }
        fresh = (
            self._challenge is None
            or challenge.get("nonce") != self._challenge.get("nonce")
            or challenge.get("stale", "").lower() == "true"
        )
        if fresh:
            self._challenge, self._count = challenge, 0
        return fresh

    def sign(self, method: str, uri: str) -> str | None:
        challenge = self._challenge
        if challenge is None:
            return None
        algorithm = challenge.get("algorithm", "MD5")
        digest = hashlib.sha256 if algorithm.upper().startswith("SHA-256") else hashlib.md5

        def h(text: str) -> str:
            return digest(text.encode()).hexdigest()

        realm, nonce = challenge.get("realm", ""), challenge.get("nonce", "")
        self._count += 1
        nc, cnonce = f"{self._count:08x}", os.urandom(8).hex()
        ha1 = h(f"{self.username}:{realm}:{self.password}")
        if algorithm.lower().endswith("-sess"):
            ha1 = h(f"{ha1}:{nonce}:{cnonce}")
        ha2 = h(f"{method}:{uri}")
        qops = [q.strip() for q in challenge.get("qop", "").split(",") if q.strip()]
        fields = [
            f'username="{self.username}"',
            f'realm="{realm}"',
            f'nonce="{nonce}"',
            f'uri="{uri}"',
            f"algorithm={algorithm}",
        ]
        if "auth" in qops:
            fields += [
                f'response="{h(f"{ha1}:{nonce}:{nc}:{cnonce}:auth:{ha2}")}"',
                "qop=auth",
                f"nc={nc}",
                f'cnonce="{cnonce}"',
            ]
        else:
            fields.append(f'response="{h(f"{ha1}:{nonce}:{ha2}")}"')
        if "opaque" in challenge:
            fields.append(f'opaque="{challenge["opaque"]}"')
        return "Digest " + ", ".join(fields)


class OAuth2ClientCredentials:
    """OAuth2 client-credentials tokens for one upstream, fetched once and reused until expiry."""

    def __init__(
        self,
        token_endpoint: str,
        client_id: str,
        client_secret: str,
        scopes: list[str],
        audience: str | None,
        namespace: str,
    ) -> None:
        self.token_endpoint, self.client_id, self.client_secret = token_endpoint, client_id, client_secret
        self.scopes, self.audience, self.namespace = scopes, audience, namespace
        self._token: str | None = None
        self._expires = 0.0
        self._lock = asyncio.Lock()

    async def header(self, pool: Pool) -> str:
        loop = asyncio.get_running_loop()
        if self._token is None or loop.time() >= self._expires:
            async with self._lock:
                if self._token is None or loop.time() >= self._expires:
                    await self._fetch(pool, loop.time())
        return f"Bearer {self._token}"

    async def _fetch(self, pool: Pool, now: float) -> None:
        form = {"grant_type": "client_credentials"}
        if self.scopes:
            form["scope"] = " ".join(self.scopes)
        if self.audience:
            form["audience"] = self.audience
        pair = base64.b64encode(f"{self.client_id}:{self.client_secret}".encode()).decode()
        headers = [("Authorization", f"Basic {pair}"), ("Content-Type", "application/x-www-form-urlencoded")]
        try:
            target = _Target(self.token_endpoint)
            response = await pool.request(
                "POST", target.origin, target.host, target.path or "/", headers, urlencode(form).encode()
            )
            body = json.loads(await response.read() or b"null")
        except (HTTPFailure, ValueError) as exc:
            raise UpstreamError(
                self.namespace, "oauth2 token", f"cannot get a token from {self.token_endpoint}: {exc}"
            ) from None
        if response.status >= 400 or not isinstance(body, dict) or "access_token" not in body:
            raise UpstreamError(
                self.namespace, "oauth2 token", f"token endpoint {self.token_endpoint} answered HTTP {response.status}"
            )
        self._token = str(body["access_token"])
        lifetime = float(body.get("expires_in") or 3600)
        self._expires = now + max(lifetime - 30.0, lifetime / 2)


class Upstream:
    """The pooled client of one consumes namespace."""

    def __init__(
        self,
        namespace: str,
        base_uri: str,
        timeout: float,
        *,
        digest: tuple[str, str] | None = None,
        oauth2: OAuth2ClientCredentials | None = None,
        limits: Limits | None = None,
        environ: Mapping[str, str] | None = None,
        observer: Observer | None = None,
        resilience: Resilient | None = None,
    ) -> None:
        self.namespace = namespace
        self.resilience = resilience  # retries, breaker, bulkhead (engine/upstream/resilience.py)
        self.observer = observer
        self.limits = limits or Limits()
        self.environ = os.environ if environ is None else environ
        self.base_uri = base_uri.rstrip("/")
        self.timeout = timeout
        try:
            self._base = _Target(self.base_uri)
        except ValueError as exc:
            raise NaftikoError(f"base URI of '{namespace}': {exc}") from None
        self._digest = DigestAuth(*digest) if digest else None
        self._oauth2 = oauth2
        self._pool: Pool | None = None
        self._proxies = Proxies.from_environ(self.environ)
        if self._proxies is not None:
            try:
                self._proxies.select(self._base.origin)  # an unusable proxy for the base URI stops start-up
            except ProxyConfigError as exc:
                raise NaftikoError(f"proxy of '{namespace}': {exc}") from None

    async def start(self) -> None:
        if self._pool is None:
            policy = self.resilience  # its timeouts.connect, and a read timeout its slowest operation fits in
            self._pool = Pool(
                connect_timeout=(policy.connect if policy is not None else None) or self.timeout,
                read_timeout=self.timeout if policy is None else policy.read_bound(self.timeout),
                limits=self.limits,
                proxies=self._proxies,
                environ=self.environ,
            )

    async def close(self) -> None:
        if self._pool is not None:
            await self._pool.close()
            self._pool = None

    def timeout_error(self, operation: str) -> UpstreamTimeout:
        quiet = self.timeout if self.resilience is None else self.resilience.read_bound(self.timeout)
        return UpstreamTimeout(self.namespace, operation, f"no answer from {self.base_uri} within {quiet:g}s")

    def too_large(self, operation: str, failure: BodyTooLarge) -> UpstreamError:
        """A body past a limit, with the limit named and how to raise it."""
        return UpstreamError(self.namespace, operation, f"{failure.reason} ({advice(failure.limit)})")

    def connections(self) -> dict[str, tuple[int, int]]:
        """Open connections per origin (`scheme://host:port`) as (in use, idle): read when metrics are scraped."""
        return {} if self._pool is None else {f"{s}://{h}:{p}": n for (s, h, p), n in self._pool.sizes().items()}

    def send(self, operation: str, request: Prepared) -> Coroutine[Any, Any, UpstreamResponse]:
        """Send `request`; unobserved, this is `_request`'s own coroutine (a frame less per upstream wait)."""
        if self.resilience is not None:
            return self.resilience.call(operation, request.method, lambda: self._attempt(operation, request))
        return self._attempt(operation, request)

    def _attempt(self, operation: str, request: Prepared) -> Coroutine[Any, Any, UpstreamResponse]:
        if self.observer is not None:
            return self._observed(self.observer, operation, request)
        return self._request(operation, request)

    async def _request(self, operation: str, request: Prepared) -> UpstreamResponse:
        if self._pool is None:
            await self.start()
        assert self._pool is not None
        headers: Headers = request.headers
        try:
            if self._oauth2 is not None:
                headers = (*headers, ("Authorization", await self._oauth2.header(self._pool)))
            response = await self._exchange(
                self._pool, request.method, self._base.path + request.target, headers, request.body
            )
        except ReadTimeout:
            raise self.timeout_error(operation) from None
        except BodyTooLarge as exc:  # an answer read on the way (a redirect, a digest challenge)
            raise self.too_large(operation, exc) from None
        except ProxyFailure as exc:
            raise UpstreamError(self.namespace, operation, exc.reason) from None
        except ConnectFailure as exc:
            raise UpstreamError(self.namespace, operation, f"cannot connect to {self.base_uri}: {exc.reason}") from None
        except HTTPFailure as exc:
            raise UpstreamError(self.namespace, operation, f"request to {self.base_uri} failed: {exc.reason}") from None
        except ValueError as exc:
            raise RequestError(str(exc)) from None
        return UpstreamResponse(response, self, operation)

    async def _observed(self, observer: Observer, operation: str, request: Prepared) -> UpstreamResponse:
        """`send`, reported to the observer: the exchange's status (or failure) and its propagation headers."""
        call: UpstreamCall = observer.upstream(self.namespace, operation, request.method, self._base.host)
        if call.headers:
            names = {name.lower() for name, _ in call.headers}
            kept = tuple((k, v) for k, v in request.headers if k.lower() not in names)
            request = Prepared(request.method, request.target, (*kept, *call.headers), request.body)
        try:
            response = await self._request(operation, request)
        except UpstreamTimeout:
            call.end(None, "timeout")
            raise
        except RequestError:
            call.end(None, "bad_request")
            raise
        except NaftikoError:
            call.end(None, "transport")
            raise
        except BaseException:
            call.end(None, "cancelled")
            raise
        call.end(response.status)
        return response

    async def _exchange(self, pool: Pool, method: str, path: str, headers: Headers, body: bytes | None) -> Response:
        """One request, signed for digest, with redirects followed as a browser would."""
        target = self._base
        for _ in range(MAX_REDIRECTS + 1):
            home = target.origin == self._base.origin
            response = await self._send(pool, method, target, path, headers, body, home)
            if (
                response.status == 401
                and home
                and self._digest is not None
                and self._digest.learn(response.header("www-authenticate"))
            ):
                await response.read()
                response = await self._send(pool, method, target, path, headers, body, home)
            location = response.header("location") if response.status in REDIRECTS else None
            if location is None:
                return response
            await response.read()
            try:
                following = _Target(urljoin(target.url(path), location))
            except ValueError:
                return response  # a redirect to somewhere we cannot follow: the caller sees it
            if response.status == 303 or (response.status in (301, 302) and method == "POST"):
                method, body = ("HEAD" if method == "HEAD" else "GET"), None
                headers = [(k, v) for k, v in headers if k.lower() != "content-type"]
            if following.origin != target.origin:
                headers = [(k, v) for k, v in headers if k.lower() not in ("authorization", "cookie")]
            target, path = following, following.path
        raise HTTPFailure("too many redirects")

    def _send(
        self, pool: Pool, method: str, target: _Target, path: str, headers: Headers, body: bytes | None, home: bool
    ) -> Coroutine[Any, Any, Response]:
        """The pool's own coroutine, not awaited here: one frame less per wait."""
        signed = self._signed(method, path, headers) if home else headers
        return pool.request(method, target.origin, target.host, path or "/", signed, body)

    def _signed(self, method: str, uri: str, headers: Headers) -> Headers:
        signature = self._digest.sign(method, uri or "/") if self._digest is not None else None
        return headers if signature is None else (*headers, ("Authorization", signature))
