"""The keep-alive pool of HTTP/1.1 connections: origins, slots, connecting, TLS and proxy tunnels.

The upstream call is most of what a proxied request costs. aiohttp took about half of naftiko's
time per request in the benchmark (bench/README.md); this client does only what an upstream
call needs (httptools parses, bodies stay bytes), and REST throughput roughly doubled with it.
`Pool.request` encodes the request head and body into one buffer, takes an idle connection to
the origin (or opens one) and writes it in one go; the answer arrives into a `Response`
(`engine.upstream.connection`). Requests may go through an HTTP proxy (`engine.upstream.proxy`):
absolute-form targets for http, a CONNECT tunnel for https.
"""

from __future__ import annotations

import asyncio
import os
import socket
import ssl
from http import HTTPStatus
from typing import TYPE_CHECKING
from collections.abc import Mapping, Sequence

from ..errors import NaftikoError
from ..limits import Limits
from .connection import Connection, Response
from .request import Origin
from .failures import ConnectFailure, HTTPFailure, ProxyFailure, ReadTimeout

if TYPE_CHECKING:
    from .proxy import Proxies, Proxy

IDLE_SECONDS = 15.0  # an idle keep-alive connection older than this is not reused
IDEMPOTENT = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE", "TRACE"})
TUNNEL_HEAD = 16 * 1024  # the largest answer head a proxy may give to CONNECT
ROUTES = 1024  # proxy decisions remembered per pool (one per origin)


class Pool:
    """Keep-alive connections to any number of origins, at most `limit` exchanges at once.

    `proxies` (from `engine.proxy`) sends requests through a proxy; connections stay keyed by the
    upstream origin, which fixes the proxy too. `environ` may name extra CA certificates
    (`SSL_CERT_FILE`, `SSL_CERT_DIR`) beyond what OpenSSL reads from the process environment.
    """

    def __init__(
        self,
        *,
        connect_timeout: float,
        read_timeout: float,
        limit: int = 256,
        limits: Limits | None = None,
        proxies: Proxies | None = None,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        self.connect_timeout = connect_timeout
        self.read_timeout = read_timeout
        self.limits = limits or Limits()
        self._idle: dict[Origin, list[Connection]] = {}
        self._slots = asyncio.Semaphore(limit)
        self._busy: set[Connection] = set()
        self._ssl: ssl.SSLContext | None = None
        self._proxies = proxies
        self._routes: dict[Origin, Proxy | None] = {}
        self._environ = environ

    async def request(
        self,
        method: str,
        origin: Origin,
        host_header: str,
        target: str,
        headers: Sequence[tuple[str, str]],
        body: bytes | None,
    ) -> Response:
        """Send one request; the answer's headers are in, its body is still to read."""
        proxy = None if self._proxies is None else self._route(origin)
        if proxy is not None and origin[0] == "http":  # forwarded by the proxy: absolute-form target
            target = f"http://{host_header}{target}"
            if proxy.authorization:
                headers = (*headers, ("Proxy-Authorization", proxy.authorization))
        data = _encode(method, host_header, target, headers, body)
        connection, reused = await self._connection(origin, proxy)
        try:
            try:
                response = self._send(connection, method, data)
                await response._until_headers()
            except HTTPFailure as failure:
                retry = reused and not connection.received and method in IDEMPOTENT
                if isinstance(failure, ReadTimeout) or not retry:
                    raise
                # The server closed an idle connection just as it was reused: one fresh attempt.
                connection, _ = await self._connection(origin, proxy, fresh=True)
                response = self._send(connection, method, data)
                await response._until_headers()
            if proxy is not None and response.status == 407 and origin[0] == "http":
                raise ProxyFailure(f"the proxy {proxy} (from {proxy.source}) refused the request: {_status(407)}")
            return response
        except BaseException as exc:
            connection.abort(exc if isinstance(exc, HTTPFailure) else HTTPFailure("the request was cancelled"))
            raise

    def _send(self, connection: Connection, method: str, data: bytes) -> Response:
        """Write the request; its answer arrives into the Response returned."""
        response = Response(connection, method == "HEAD", self.read_timeout, self.limits)
        connection.send(data, response)
        return response

    def _route(self, origin: Origin) -> Proxy | None:
        """The proxy of an origin, decided once per origin."""
        try:
            return self._routes[origin]
        except KeyError:
            pass
        assert self._proxies is not None
        try:
            proxy = self._proxies.select(origin)
        except NaftikoError as exc:
            raise ProxyFailure(str(exc)) from None
        if len(self._routes) >= ROUTES:
            self._routes.clear()
        self._routes[origin] = proxy
        return proxy

    async def _connection(self, origin: Origin, proxy: Proxy | None, fresh: bool = False) -> tuple[Connection, bool]:
        """An idle connection to the origin, or a new one; it holds one of the pool's slots."""
        await self._slots.acquire()
        try:
            idle = None if fresh else self._idle.get(origin)
            while idle:
                connection = idle.pop()
                if not connection.closed and connection.loop.time() - connection.idle_since < IDLE_SECONDS:
                    self._busy.add(connection)
                    return connection, True
                connection.abort(None)
            connection = await self._open(origin, proxy)
        except BaseException:
            self._slots.release()
            raise
        self._busy.add(connection)
        return connection, False

    async def _open(self, origin: Origin, proxy: Proxy | None) -> Connection:
        try:
            opening = self._direct(origin) if proxy is None else self._through(proxy, origin)
            return await asyncio.wait_for(opening, self.connect_timeout)
        except TimeoutError:
            raise ReadTimeout("no connection within the timeout") from None
        except ssl.SSLError as exc:
            raise ConnectFailure(f"TLS failed ({exc.reason or exc})") from None
        except OSError as exc:
            raise ConnectFailure(_why(exc)) from None

    async def _direct(self, origin: Origin) -> Connection:
        scheme, host, port = origin
        context = self._context() if scheme == "https" else None
        _, connection = await asyncio.get_running_loop().create_connection(
            lambda: Connection(self, origin), host, port, ssl=context, server_hostname=host if context else None
        )
        return connection

    async def _through(self, proxy: Proxy, origin: Origin) -> Connection:
        """A connection to the origin through the proxy: the proxy's own for http, a CONNECT tunnel for https."""
        scheme, host, port = origin
        loop = asyncio.get_running_loop()
        context = self._context() if proxy.scheme == "https" else None
        label = f"the proxy {proxy} (from {proxy.source})"
        try:
            if scheme == "http":
                _, connection = await loop.create_connection(
                    lambda: Connection(self, origin),
                    proxy.host,
                    proxy.port,
                    ssl=context,
                    server_hostname=proxy.host if context else None,
                )
                return connection
            transport, tunnel = await loop.create_connection(
                lambda: _Tunnel(label),
                proxy.host,
                proxy.port,
                ssl=context,
                server_hostname=proxy.host if context else None,
            )
        except ssl.SSLError as exc:
            raise ProxyFailure(f"TLS with {label} failed ({exc.reason or exc})") from None
        except OSError as exc:
            raise ProxyFailure(f"cannot connect to {label}: {_why(exc)}") from None
        try:
            authority = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
            status = await tunnel.open(authority, proxy.authorization)
            if not 200 <= status < 300:
                raise ProxyFailure(f"{label} refused the tunnel to {authority}: {_status(status)}")
            connection = Connection(self, origin)
            secure = await loop.start_tls(transport, connection, self._context(), server_hostname=host)
        except BaseException:
            transport.close()
            raise
        if secure is None:
            raise ConnectFailure("the tunnel closed during the TLS handshake")
        connection.connection_made(secure)
        return connection

    def _context(self) -> ssl.SSLContext:
        """One TLS context per pool: OpenSSL's defaults (which read SSL_CERT_FILE and SSL_CERT_DIR from the
        process environment) plus the CA files the runtime's own environment names, if it differs."""
        if self._ssl is None:
            context = ssl.create_default_context()
            extra = {
                name: value
                for name in ("SSL_CERT_FILE", "SSL_CERT_DIR")
                if (value := (self._environ or {}).get(name)) and value != os.environ.get(name)
            }
            if extra:
                try:
                    context.load_verify_locations(cafile=extra.get("SSL_CERT_FILE"), capath=extra.get("SSL_CERT_DIR"))
                except (OSError, ssl.SSLError) as exc:
                    where = " and ".join(f"{k}={v}" for k, v in extra.items())
                    raise ConnectFailure(f"cannot load the CA certificates of {where} ({exc})") from None
            self._ssl = context
        return self._ssl

    def _release(self, connection: Connection) -> None:
        if connection in self._busy:
            self._busy.discard(connection)
            self._slots.release()
        connection.idle_since = connection.loop.time()
        self._idle.setdefault(connection.origin, []).append(connection)

    def _lost(self, connection: Connection) -> None:
        if connection in self._busy:
            self._busy.discard(connection)
            self._slots.release()

    def sizes(self) -> dict[Origin, tuple[int, int]]:
        """(in use, open idle) connections per origin, for a metrics scrape."""
        sizes: dict[Origin, list[int]] = {}
        for connection in self._busy:
            sizes.setdefault(connection.origin, [0, 0])[0] += 1
        for origin, idle in self._idle.items():
            open_idle = sum(1 for connection in idle if not connection.closed)
            if open_idle:
                sizes.setdefault(origin, [0, 0])[1] += open_idle
        return {origin: (busy, idle) for origin, (busy, idle) in sizes.items()}

    async def close(self) -> None:
        for connections in self._idle.values():
            for connection in connections:
                connection.abort(None)
        self._idle.clear()
        for connection in list(self._busy):
            connection.abort(HTTPFailure("the client was closed"))


class _Tunnel(asyncio.Protocol):
    """The CONNECT exchange with a proxy, before the connection carries TLS to the origin."""

    def __init__(self, label: str) -> None:
        self.label = label
        self.transport: asyncio.Transport | None = None
        self.head = bytearray()
        self.answer: asyncio.Future[int] = asyncio.get_running_loop().create_future()

    async def open(self, authority: str, authorization: str | None) -> int:
        """Ask for the tunnel; the proxy's status."""
        assert self.transport is not None
        lines = [f"CONNECT {authority} HTTP/1.1", f"Host: {authority}", "User-Agent: naftiko"]
        if authorization:
            lines.append(f"Proxy-Authorization: {authorization}")
        self.transport.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
        return await self.answer

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        if self.answer.done():
            return
        self.head += data
        end = self.head.find(b"\r\n\r\n")
        if end < 0:
            if len(self.head) > TUNNEL_HEAD:
                self._fail("answered CONNECT with an oversized head")
            return
        status_line = bytes(self.head[: self.head.find(b"\r\n")])
        parts = status_line.split(None, 2)
        if len(parts) < 2 or not parts[0].startswith(b"HTTP/1.") or not parts[1].isdigit():
            return self._fail("answered CONNECT with something that is not HTTP")
        status = int(parts[1])
        if 200 <= status < 300 and end + 4 != len(self.head):
            return self._fail("sent data before the tunnel was open")
        self.answer.set_result(status)

    def connection_lost(self, exc: Exception | None) -> None:
        self._fail("closed the connection during CONNECT")

    def _fail(self, what: str) -> None:
        if not self.answer.done():
            self.answer.set_exception(ProxyFailure(f"{self.label} {what}"))


def _status(status: int) -> str:
    try:
        return f"HTTP {status} {HTTPStatus(status).phrase}"
    except ValueError:
        return f"HTTP {status}"


def _why(exc: OSError) -> str:
    if isinstance(exc, socket.gaierror):
        return exc.strerror or str(exc)
    return os.strerror(exc.errno) if exc.errno else str(exc)


def _encode(
    method: str, host_header: str, target: str, headers: Sequence[tuple[str, str]], body: bytes | None
) -> bytes:
    """The request head and body as one buffer; a line break inside a header is refused."""
    lines = [f"{method} {target} HTTP/1.1", f"Host: {host_header}"]
    seen = set()
    for name, value in headers:
        lines.append(f"{name}: {value}")
        seen.add(name.lower())
    if "accept" not in seen:
        lines.append("Accept: */*")
    if "accept-encoding" not in seen:
        lines.append("Accept-Encoding: gzip, deflate")
    if "user-agent" not in seen:
        lines.append("User-Agent: naftiko")
    if body is not None or method in ("POST", "PUT", "PATCH"):
        lines.append(f"Content-Length: {len(body) if body else 0}")
    lines.append("\r\n")
    head = "\r\n".join(lines)
    if head.count("\n") != len(lines) or head.count("\r") != len(lines):
        raise ValueError("a request header contains a line break")
    data = head.encode("utf-8")
    return data + body if body else data
