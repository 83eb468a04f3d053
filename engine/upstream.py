"""One pooled HTTP client per consumes namespace, and what it answers.

aiohttp carries the hot path: measured on this kind of machine it sustains about 15× the
requests per second of httpx under concurrency (see the README's design notes). Connection
failures and timeouts become UpstreamError / UpstreamTimeout naming the namespace.
"""

from __future__ import annotations

import asyncio
import base64
import json
from typing import Any, AsyncIterator

import aiohttp
from yarl import URL

from engine.errors import UpstreamError, UpstreamTimeout
from engine.registry import Prepared

# Headers that describe one hop, or that we rewrite, and so never pass through.
HOP_HEADERS = frozenset({
    "connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailer",
    "trailers", "transfer-encoding", "upgrade", "server", "date", "content-length", "content-encoding",
})


def _reason(exc: aiohttp.ClientError) -> str:
    """Why a request failed, without the URL (its query may carry an API key)."""
    if isinstance(exc, aiohttp.ServerDisconnectedError):
        return "the server closed the connection"
    if isinstance(exc, aiohttp.ClientPayloadError):
        return "the response body was cut short or malformed"
    if isinstance(exc, aiohttp.TooManyRedirects):
        return "too many redirects"
    if isinstance(exc, aiohttp.ClientResponseError):
        return f"HTTP {exc.status} {exc.message}"
    return type(exc).__name__


def is_json_type(content_type: str) -> bool:
    return content_type == "application/json" or content_type.endswith("+json")


class UpstreamResponse:
    """An upstream answer whose body has not been read yet, so it can be streamed."""

    __slots__ = ("_response", "_upstream", "_operation", "status", "content_type")

    def __init__(self, response: aiohttp.ClientResponse, upstream: "Upstream", operation: str) -> None:
        self._response = response
        self._upstream = upstream
        self._operation = operation
        self.status = response.status
        self.content_type = response.content_type

    @property
    def charset(self) -> str | None:
        return self._response.charset

    @property
    def is_json(self) -> bool:
        return is_json_type(self.content_type)

    def headers(self, *, keep_length: bool = True) -> list[tuple[str, str]]:
        """Upstream headers worth passing on; length kept only for an unchanged identity body."""
        kept = [(k, v) for k, v in self._response.headers.items() if k.lower() not in HOP_HEADERS]
        length = self._response.headers.get("Content-Length")
        if keep_length and length is not None and "Content-Encoding" not in self._response.headers:
            kept.append(("Content-Length", length))
        return kept

    async def read(self) -> bytes:
        try:
            return await self._response.read()
        except asyncio.TimeoutError:
            raise self._upstream.timeout_error(self._operation) from None
        except aiohttp.ClientError as exc:
            raise UpstreamError(self._upstream.namespace, self._operation, f"broken response: {_reason(exc)}") from None
        finally:
            self._response.release()

    async def json(self) -> Any:
        """The parsed JSON body; an empty body gives None."""
        raw = await self.read()
        if not raw.strip():
            return None
        try:
            return json.loads(raw)
        except (ValueError, UnicodeDecodeError) as exc:
            raise UpstreamError(self._upstream.namespace, self._operation,
                                f"answered {self.content_type} that is not valid JSON ({exc})") from None

    async def chunks(self) -> AsyncIterator[bytes]:
        """The body as it arrives, without buffering it."""
        try:
            async for chunk in self._response.content.iter_any():
                yield chunk
        finally:
            self._response.release()

    def close(self) -> None:
        self._response.release()


class OAuth2ClientCredentials:
    """OAuth2 client-credentials tokens for one upstream, fetched once and reused until expiry."""

    def __init__(self, token_endpoint: str, client_id: str, client_secret: str, scopes: list[str],
                 audience: str | None, namespace: str) -> None:
        self.token_endpoint, self.client_id, self.client_secret = token_endpoint, client_id, client_secret
        self.scopes, self.audience, self.namespace = scopes, audience, namespace
        self._token: str | None = None
        self._expires = 0.0
        self._lock = asyncio.Lock()

    async def header(self, session: aiohttp.ClientSession) -> str:
        loop = asyncio.get_running_loop()
        if self._token is None or loop.time() >= self._expires:
            async with self._lock:
                if self._token is None or loop.time() >= self._expires:
                    await self._fetch(session, loop.time())
        return f"Bearer {self._token}"

    async def _fetch(self, session: aiohttp.ClientSession, now: float) -> None:
        form = {"grant_type": "client_credentials"}
        if self.scopes:
            form["scope"] = " ".join(self.scopes)
        if self.audience:
            form["audience"] = self.audience
        pair = base64.b64encode(f"{self.client_id}:{self.client_secret}".encode()).decode()
        try:
            async with session.post(self.token_endpoint, data=form, headers={"Authorization": f"Basic {pair}"}) as response:
                body = await response.json(content_type=None)
                if response.status >= 400 or not isinstance(body, dict) or "access_token" not in body:
                    raise UpstreamError(self.namespace, "oauth2 token",
                                        f"token endpoint {self.token_endpoint} answered HTTP {response.status}")
        except (aiohttp.ClientError, asyncio.TimeoutError, ValueError) as exc:
            raise UpstreamError(self.namespace, "oauth2 token", f"cannot get a token from {self.token_endpoint}: {exc}") from None
        self._token = str(body["access_token"])
        lifetime = float(body.get("expires_in") or 3600)
        self._expires = now + max(lifetime - 30.0, lifetime / 2)


class Upstream:
    """The pooled client of one consumes namespace."""

    def __init__(self, namespace: str, base_uri: str, timeout: float, *,
                 digest: tuple[str, str] | None = None, oauth2: OAuth2ClientCredentials | None = None) -> None:
        self.namespace = namespace
        self.base_uri = base_uri.rstrip("/")
        self.timeout = timeout
        self._digest = digest
        self._oauth2 = oauth2
        self._session: aiohttp.ClientSession | None = None

    async def start(self) -> None:
        if self._session is None:
            connector = aiohttp.TCPConnector(limit=256, ttl_dns_cache=300)
            timeout = aiohttp.ClientTimeout(total=None, connect=self.timeout, sock_read=self.timeout)
            middlewares = (aiohttp.DigestAuthMiddleware(*self._digest, preemptive=True),) if self._digest else ()
            self._session = aiohttp.ClientSession(connector=connector, timeout=timeout, auto_decompress=True,
                                                  middlewares=middlewares)

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    def timeout_error(self, operation: str) -> UpstreamTimeout:
        return UpstreamTimeout(self.namespace, operation, f"no answer from {self.base_uri} within {self.timeout:g}s")

    async def send(self, operation: str, request: Prepared) -> UpstreamResponse:
        if self._session is None:
            await self.start()
        assert self._session is not None
        url = URL(self.base_uri + request.target, encoded=True)
        headers: Any = request.headers
        if self._oauth2 is not None:
            headers = (*headers, ("Authorization", await self._oauth2.header(self._session)))
        try:
            response = await self._session.request(request.method, url, headers=headers, data=request.body)
        except asyncio.TimeoutError:
            raise self.timeout_error(operation) from None
        except aiohttp.ClientConnectorError as exc:
            reason = exc.os_error.strerror if exc.os_error and exc.os_error.strerror else str(exc)
            raise UpstreamError(self.namespace, operation, f"cannot connect to {self.base_uri}: {reason}") from None
        except aiohttp.ClientError as exc:
            raise UpstreamError(self.namespace, operation, f"request to {self.base_uri} failed: {_reason(exc)}") from None
        return UpstreamResponse(response, self, operation)
