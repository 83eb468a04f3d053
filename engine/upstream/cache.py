"""An in-process cache of upstream answers, one bounded LRU store per consumes namespace.

Only GET and HEAD answers with status 200 are stored, and only when their body is fully read and no
larger than `maxEntryBytes` (a body without a Content-Length, or a larger one, streams through
untouched). The key is a SHA-256 of the method, the full target and *every* request header, so two
callers with different credentials (Authorization, Cookie, an API key in a header or the query) never
share an entry. With `respectCacheControl` the upstream's `Cache-Control` (no-store, private,
no-cache, s-maxage, max-age), `Age` and `Expires` can shorten the file's `ttl`, never lengthen it.
A stale entry with an `ETag` or `Last-Modified` is revalidated with If-None-Match / If-Modified-Since:
a 304 refreshes it and answers the stored body.

Concurrent misses for one key send one request; the others wait for its entry (at most the operation's
call time). With a stale window (`staleIfError`, or the upstream's `stale-if-error`), a refetch that
fails (transport error, refusal, 5xx) is answered with the stale entry. Each operation counts its
results (`counts`, read by the control port's metrics). With `NAFTIKO_CACHE_REDIS_URL` the entries
live in Redis (rediscache.py, imported only then) instead of the in-process store.

This stage does not import the spec model: `CachedOperation.build` reads any object shaped like
`spec.Cache` (the `CacheBlock` protocol).
"""

from __future__ import annotations

import asyncio
import hashlib
import re
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable, Coroutine, Mapping
from dataclasses import replace
from email.utils import parsedate_to_datetime
from typing import Any, Protocol

from ..errors import CapabilityError, Location, Problem, UpstreamError, UpstreamTimeout
from ..limits import advice, describe
from .client import Upstream, UpstreamResponse, is_json_type, json_body
from .failures import BodyTooLarge
from .entries import UNAVAILABLE, Entry, SharedStore, Unavailable
from .request import Prepared

DEFAULT_TTL = 60.0
DEFAULT_MAX_ENTRIES = 1000
DEFAULT_MAX_BYTES = 16 * 1024 * 1024
DEFAULT_MAX_ENTRY_BYTES = 1024 * 1024
CACHEABLE_METHODS = frozenset({"GET", "HEAD"})
_DIRECTIVE = re.compile(r"\s*([a-z-]+)\s*(?:=\s*\"?(\d+)\"?)?\s*", re.IGNORECASE)


class CacheBlock(Protocol):
    """What a `cache` block gives (engine/spec/model.py `Cache`); None: not written."""

    @property
    def ttl(self) -> float | None: ...
    @property
    def max_entries(self) -> int | None: ...
    @property
    def max_bytes(self) -> int | None: ...
    @property
    def max_entry_bytes(self) -> int | None: ...
    @property
    def respect_cache_control(self) -> bool | None: ...
    @property
    def enabled(self) -> bool: ...
    @property
    def stale_if_error(self) -> float | None: ...


class Store:
    """An LRU bounded by entries and total bytes; an entry larger than the whole store is refused."""

    def __init__(self, max_entries: int, max_bytes: int) -> None:
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self.bytes = 0
        self.evictions = 0
        self._entries: OrderedDict[str, Entry] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: str) -> Entry | None:
        entry = self._entries.get(key)
        if entry is not None:
            self._entries.move_to_end(key)
        return entry

    def put(self, key: str, entry: Entry) -> bool:
        """Store `entry` (the most recently used), evicting the least recently used past the bounds."""
        self.drop(key)
        if entry.size > self.max_bytes:
            return False
        self._entries[key] = entry
        self.bytes += entry.size
        while len(self._entries) > self.max_entries or self.bytes > self.max_bytes:
            _, old = self._entries.popitem(last=False)
            self.bytes -= old.size
            self.evictions += 1
        return True

    def drop(self, key: str) -> None:
        old = self._entries.pop(key, None)
        if old is not None:
            self.bytes -= old.size


def cache_key(request: Prepared, origin: str = "") -> str:
    """SHA-256 over the method, target and every header: different credentials never share an entry.

    `origin` (the base URI) separates namespaces in a store they share (Redis)."""
    digest = hashlib.sha256(origin.encode() + b"\0")
    digest.update(request.method.encode())
    digest.update(b"\0" + request.target.encode())
    for name, value in sorted((k.lower(), v) for k, v in request.headers):
        digest.update(b"\0" + name.encode() + b":" + value.encode())
    return digest.hexdigest()


def directives(value: str | None) -> dict[str, int | None]:
    """`Cache-Control` read as {directive: seconds or None}, names in lower case."""
    found: dict[str, int | None] = {}
    for part in (value or "").split(","):
        match = _DIRECTIVE.fullmatch(part)
        if match:
            found[match.group(1).lower()] = int(match.group(2)) if match.group(2) else None
    return found


def lifetime(headers: dict[str, str], ttl: float, respect: bool, wall: float) -> float | None:
    """How long an answer with `headers` stays fresh (seconds, at most `ttl`); None: it must not be stored.

    An answer setting a cookie is never stored, whatever the file says: replayed, it would hand one
    caller's session to the next."""
    if "set-cookie" in headers:
        return None
    if not respect:
        return ttl
    control = directives(headers.get("cache-control"))
    if "no-store" in control or "private" in control or headers.get("vary", "").strip() == "*":
        return None
    if "no-cache" in control:
        return 0.0
    age = _seconds(headers.get("age")) or 0
    for name in ("s-maxage", "max-age"):
        if name in control:
            return max(0.0, min(ttl, float(control[name] or 0) - age))
    expires = headers.get("expires")
    if expires is not None:
        when, now = _date(expires), _date(headers.get("date")) or wall
        return max(0.0, min(ttl, (when or 0.0) - now))  # an unreadable Expires is already expired
    return ttl


def _pick(block: CacheBlock | None, namespace: CacheBlock | None, name: str) -> Any:
    """The operation's field when written, else the namespace's (None: neither wrote it)."""
    mine = getattr(block, name) if block is not None else None
    return mine if mine is not None else (getattr(namespace, name) if namespace is not None else None)


def _seconds(value: str | None) -> int | None:
    return int(value) if value is not None and value.strip().isdigit() else None


def _date(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return parsedate_to_datetime(value).timestamp()
    except (TypeError, ValueError, IndexError):
        return None


class CachedResponse(UpstreamResponse):
    """A stored answer replayed with the interface callers use on `UpstreamResponse`."""

    __slots__ = ("_entry", "_namespace", "_op", "state")

    def __init__(self, entry: Entry, namespace: str, operation: str, state: str) -> None:
        self._entry = entry
        self._namespace = namespace
        self._op = operation
        self._cap = None
        self.state = state  # hit | miss | revalidated | stale: how this answer was got
        self.status = entry.status
        self.content_type = entry.content_type
        self.charset = entry.charset

    @property
    def is_json(self) -> bool:
        return is_json_type(self.content_type)

    def headers(self, *, keep_length: bool = True) -> list[tuple[str, str]]:
        kept = list(self._entry.headers)
        if keep_length and not self._entry.head:
            kept.append(("content-length", str(len(self._entry.body))))
        return kept

    async def read(self) -> bytes:
        return self._entry.body

    async def json(self) -> Any:
        return json_body(self._entry.body, self._namespace, self._op, self.content_type)

    def limit(self, size: int, reason: str) -> None:
        self._cap = (size, reason)

    async def chunks(self) -> AsyncIterator[bytes]:
        if self._cap is not None and len(self._entry.body) > self._cap[0]:
            raise UpstreamError(self._namespace, self._op, self._cap[1])
        if self._entry.body:
            yield self._entry.body

    def close(self) -> None:
        return None


class Spliced(UpstreamResponse):
    """An answer of unknown length found too large to store: the part already read, then the rest of its stream."""

    __slots__ = ("_original", "_head", "_rest", "_body_limit", "_namespace", "_op")

    def __init__(
        self,
        original: UpstreamResponse,
        head: list[bytes],
        rest: AsyncIterator[bytes],
        body_limit: int,
        namespace: str,
        operation: str,
    ) -> None:
        self._original, self._head, self._rest, self._body_limit = original, head, rest, body_limit
        self._namespace, self._op = namespace, operation
        self._cap = None
        self.status, self.content_type, self.charset = original.status, original.content_type, original.charset

    @property
    def is_json(self) -> bool:
        return is_json_type(self.content_type)

    def headers(self, *, keep_length: bool = True) -> list[tuple[str, str]]:
        return self._original.headers(keep_length=keep_length)

    async def read(self) -> bytes:
        """The whole body, still within the `upstream_body` limit a plain read keeps."""
        parts, size = list(self._head), sum(len(c) for c in self._head)
        async for chunk in self._rest:
            size += len(chunk)
            if size > self._body_limit:
                self.close()
                failure = BodyTooLarge(f"answered more than {describe(self._body_limit)}", "upstream_body")
                raise UpstreamError(self._namespace, self._op, f"{failure.reason} ({advice(failure.limit)})")
            parts.append(chunk)
        return b"".join(parts)

    async def json(self) -> Any:
        return json_body(await self.read(), self._namespace, self._op, self.content_type)

    def limit(self, size: int, reason: str) -> None:
        self._cap = (size, reason)

    async def chunks(self) -> AsyncIterator[bytes]:
        seen = 0
        for source in (self._head, self._rest):
            async for chunk in _each(source):
                seen += len(chunk)
                if self._cap is not None and seen > self._cap[0]:
                    self.close()
                    raise UpstreamError(self._namespace, self._op, self._cap[1])
                yield chunk

    def close(self) -> None:
        self._original.close()


async def _each(source: list[bytes] | AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    if isinstance(source, list):
        for chunk in source:
            yield chunk
    else:
        async for chunk in source:
            yield chunk


RESULTS = ("hit", "miss", "revalidated", "stored", "bypass", "stale")
"""What `CachedOperation.counts` counts (the `result` label of `naftiko_upstream_cache_total`)."""


class CachedOperation:
    """One consumed operation's cache policy over its namespace's store: `send` looks up, revalidates, stores.

    Concurrent misses for one key send one request (the first); the others wait for its entry, at most
    the operation's call time, and send their own when it is not storable. With `stale_if_error`, a stale
    entry answers (with `Age` and `Warning`) when the refetch fails (a transport error or a 5xx)."""

    __slots__ = (
        "store",
        "ttl",
        "max_entry_bytes",
        "respect",
        "stale_if_error",
        "shared",
        "clock",
        "wall",
        "counts",
        "pending",
    )

    def __init__(
        self,
        store: Store,
        ttl: float,
        max_entry_bytes: int,
        respect: bool,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
        stale_if_error: float | None = None,
        shared: SharedStore | None = None,
    ) -> None:
        self.store = store
        self.ttl = ttl
        self.max_entry_bytes = max_entry_bytes
        self.respect = respect
        self.stale_if_error = stale_if_error
        self.shared = shared  # when set, entries live there (many instances) instead of in `store`
        self.clock = clock
        self.wall = wall
        self.counts: dict[str, int] = {}
        """result (RESULTS) -> how often; read by the control port's metrics at scrape time."""
        self.pending: dict[str, asyncio.Future[tuple[Entry, str] | None]] = {}
        """key -> the entry the request in flight for it will give (None: not storable; send your own)."""

    def _count(self, result: str) -> None:
        self.counts[result] = self.counts.get(result, 0) + 1

    @staticmethod
    def build(
        namespace: CacheBlock | None,
        operations: dict[str, CacheBlock | None],
        implied: frozenset[str] = frozenset(),
        shared: SharedStore | None = None,
        **clocks: Callable[[], float],
    ) -> dict[str, CachedOperation]:
        """The policies of one namespace's operations (keyed `ns.op`), the operation's fields over the namespace's.

        Operations with no block of their own and none on the namespace, or with `cache: false`, get none,
        unless `implied` names them (a function declared `cacheable` calls them): those get the defaults.
        """
        wanted = {
            key
            for key, block in operations.items()
            if (block is not None and block.enabled) or (block is None and (namespace is not None or key in implied))
        }
        if not wanted:
            return {}
        store = Store(
            (namespace.max_entries if namespace else None) or DEFAULT_MAX_ENTRIES,
            (namespace.max_bytes if namespace else None) or DEFAULT_MAX_BYTES,
        )
        built: dict[str, CachedOperation] = {}
        for key in sorted(wanted):
            block = operations[key]
            ttl, entry_bytes = _pick(block, namespace, "ttl"), _pick(block, namespace, "max_entry_bytes")
            respect = _pick(block, namespace, "respect_cache_control")
            built[key] = CachedOperation(
                store,
                DEFAULT_TTL if ttl is None else ttl,
                DEFAULT_MAX_ENTRY_BYTES if entry_bytes is None else entry_bytes,
                True if respect is None else respect,
                stale_if_error=_pick(block, namespace, "stale_if_error"),
                shared=shared,
                **clocks,
            )
        return built

    def send(self, upstream: Upstream, operation: str, request: Prepared) -> Coroutine[Any, Any, UpstreamResponse]:
        if request.method not in CACHEABLE_METHODS:
            return upstream.send(operation, request)
        return self._send(upstream, operation, request)

    # --- the store, local or shared -------------------------------------------------------------------

    async def _get(self, key: str) -> Entry | None | Unavailable:
        if self.shared is None:
            return self.store.get(key)
        found = await self.shared.get(key)
        return _rebased(found, self.wall(), self.clock()) if isinstance(found, Entry) else found

    async def _put(self, key: str, entry: Entry) -> bool:
        """Store `entry`; False when the store refused it (larger than the whole store, or Redis failing)."""
        if self.shared is None:
            return self.store.put(key, entry)
        now = self.clock()
        keep = max(entry.stale_until, entry.fresh_until) - now
        if entry.etag or entry.last_modified:
            keep += self.ttl  # kept a while past its freshness so that it can be revalidated
        return await self.shared.put(key, _rebased(entry, now, self.wall()), max(1.0, keep))

    async def _drop(self, key: str) -> None:
        if self.shared is None:
            self.store.drop(key)
        else:
            await self.shared.drop(key)

    # --- one call --------------------------------------------------------------------------------------

    async def _send(self, upstream: Upstream, operation: str, request: Prepared) -> UpstreamResponse:
        key = cache_key(request, upstream.base_uri if self.shared is not None else "")
        entry = await self._get(key)
        if isinstance(entry, Unavailable):
            self._count("bypass")
            return await upstream.send(operation, request)
        if entry is not None and entry.fresh_until > self.clock():
            self._count("hit")
            return CachedResponse(entry, upstream.namespace, operation, "hit")
        waiting = self.pending.get(key)
        if waiting is not None:
            got = await self._wait(waiting, upstream, operation)
            if got is not None:
                self._count("hit")
                return _answer(got, upstream.namespace, operation, self.clock())
        self._count("miss")
        if key in self.pending:  # another waiter took over: no coalescing for this one
            response, _ = await self._fetch(key, entry, request, upstream, operation)
            return response
        future: asyncio.Future[tuple[Entry, str] | None] = asyncio.get_running_loop().create_future()
        self.pending[key] = future
        result: tuple[Entry, str] | None = None
        try:
            response, result = await self._fetch(key, entry, request, upstream, operation)
            return response
        finally:
            del self.pending[key]
            future.set_result(result)

    async def _wait(
        self, waiting: asyncio.Future[tuple[Entry, str] | None], upstream: Upstream, operation: str
    ) -> tuple[Entry, str] | None:
        """The entry of the same request in flight, waited for at most the operation's call time."""
        bound = _call_time(upstream, operation)
        try:
            return await asyncio.wait_for(asyncio.shield(waiting), bound)
        except TimeoutError:
            raise UpstreamTimeout(
                upstream.namespace, operation, f"the same request already in flight took more than {bound:g} s"
            ) from None

    async def _fetch(
        self, key: str, entry: Entry | None, request: Prepared, upstream: Upstream, operation: str
    ) -> tuple[UpstreamResponse, tuple[Entry, str] | None]:
        """Ask upstream (conditionally, for a stale entry with validators); the answer and what was stored."""
        sent = request
        if entry is not None and (entry.etag or entry.last_modified):
            extra = [("If-None-Match", entry.etag)] if entry.etag else []
            extra += [("If-Modified-Since", entry.last_modified)] if entry.last_modified else []
            sent = replace(request, headers=(*request.headers, *extra))
        try:
            response = await upstream.send(operation, sent)
        except UpstreamError:
            if entry is None or entry.stale_until <= self.clock():
                raise
            return self._stale(entry, upstream.namespace, operation)
        if entry is not None and response.status >= 500 and entry.stale_until > self.clock():
            response.close()
            return self._stale(entry, upstream.namespace, operation)
        if entry is not None and sent is not request and response.status == 304:
            await response.read()
            renewed = await self._refreshed(key, entry, response)
            self._count("revalidated")
            return CachedResponse(renewed, upstream.namespace, operation, "revalidated"), (renewed, "revalidated")
        if entry is not None:
            await self._drop(key)
        return await self._stored(key, response, request.method, upstream, operation)

    def _stale(self, entry: Entry, namespace: str, operation: str) -> tuple[UpstreamResponse, tuple[Entry, str] | None]:
        self._count("stale")
        return _answer((entry, "stale"), namespace, operation, self.clock()), (entry, "stale")

    async def _refreshed(self, key: str, entry: Entry, answer: UpstreamResponse) -> Entry:
        """A 304: the stored body, its freshness (and validators) renewed from the 304's headers."""
        headers = dict(answer.headers(keep_length=False))
        fresh = lifetime(headers, self.ttl, self.respect, self.wall())
        now = self.clock()
        renewed = replace(
            entry,
            fresh_until=now + (fresh or 0.0),
            stale_until=now + (fresh or 0.0) + self._stale_window(headers),
            stored_at=now,
            etag=headers.get("etag", entry.etag),
            last_modified=headers.get("last-modified", entry.last_modified),
        )
        if fresh is None:
            await self._drop(key)
        else:
            await self._put(key, renewed)
        return renewed

    def _stale_window(self, headers: dict[str, str]) -> float:
        """How long past its freshness an entry may answer for a failed refetch: the file's, or the upstream's
        `stale-if-error` (when respected; the file's caps it); none with must-revalidate."""
        mine = self.stale_if_error
        if not self.respect:
            return mine or 0.0
        control = directives(headers.get("cache-control"))
        if "must-revalidate" in control or "proxy-revalidate" in control:
            return 0.0
        theirs = control.get("stale-if-error")
        if theirs is None:
            return mine or 0.0
        return float(theirs) if mine is None else min(mine, float(theirs))

    async def _stored(
        self, key: str, response: UpstreamResponse, method: str, upstream: Upstream, operation: str
    ) -> tuple[UpstreamResponse, tuple[Entry, str] | None]:
        """A fresh answer: stored (and replayed) when it may be; otherwise passed on unread."""
        if response.status != 200:
            self._count("bypass")
            return response, None
        headers = response.headers(keep_length=method == "HEAD")
        named = dict(headers)
        length = _seconds(dict(response.headers()).get("content-length"))
        fresh = lifetime(named, self.ttl, self.respect, self.wall())
        validators = named.get("etag") or named.get("last-modified")
        if fresh is None or (fresh <= 0 and not validators):
            self._count("bypass")
            return response, None
        if method == "GET" and length is not None and length > self.max_entry_bytes:
            self._count("bypass")
            return response, None
        if method == "GET" and length is None:  # chunked: read up to maxEntryBytes, then stream the rest
            stream, head, size = response.chunks(), [], 0
            while size <= self.max_entry_bytes:
                try:
                    chunk = await anext(stream)
                except StopAsyncIteration:
                    break
                head.append(chunk)
                size += len(chunk)
            else:
                self._count("bypass")
                limit = upstream.limits.upstream_body
                return Spliced(response, head, stream, limit, upstream.namespace, operation), None
            body = b"".join(head)
        else:
            body = await response.read()
        now = self.clock()
        entry = Entry(
            response.status,
            response.content_type,
            response.charset,
            headers,
            body,
            now + fresh,
            named.get("etag"),
            named.get("last-modified"),
            method == "HEAD",
            now + fresh + self._stale_window(named),
            now,
        )
        self._count("stored" if await self._put(key, entry) else "bypass")
        return CachedResponse(entry, upstream.namespace, operation, "miss"), (entry, "hit")


REDIS_URL_ENV = "NAFTIKO_CACHE_REDIS_URL"


def shared_store(environ: Mapping[str, str]) -> SharedStore | None:
    """The Redis store `NAFTIKO_CACHE_REDIS_URL` names (None: unset); redis is imported only then.

    Raised at start-up: the variable set without the `redis` extra installed, or a bad timeout."""
    url = environ.get(REDIS_URL_ENV, "").strip()
    if not url:
        return None
    try:
        from .rediscache import RedisStore
    except ImportError:
        problem = "is set but the redis package is missing: pip install 'naftiko[redis]' (or unset it)"
        raise CapabilityError([Problem(Location(REDIS_URL_ENV), problem)]) from None
    try:
        return RedisStore.from_env({**environ, REDIS_URL_ENV: url})
    except ValueError as exc:
        raise CapabilityError([Problem(Location(REDIS_URL_ENV), str(exc))]) from None


def _answer(got: tuple[Entry, str], namespace: str, operation: str, now: float) -> CachedResponse:
    """A stored entry replayed; a stale one says how old it is and that revalidation failed (RFC 9111, 5861)."""
    entry, state = got
    if state != "stale":
        return CachedResponse(entry, namespace, operation, state)
    age = str(max(0, int(now - entry.stored_at)))
    kept = [(k, v) for k, v in entry.headers if k not in ("age", "warning")]
    headers = [*kept, ("age", age), ("warning", '111 - "Revalidation Failed"')]
    return CachedResponse(replace(entry, headers=headers), namespace, operation, "stale")


def _rebased(entry: Entry, before: float, after: float) -> Entry:
    """`entry` with its times moved from one clock (now = `before`) to another (now = `after`)."""
    shift = after - before
    return replace(
        entry,
        fresh_until=entry.fresh_until + shift,
        stale_until=entry.stale_until + shift,
        stored_at=entry.stored_at + shift,
    )


def _call_time(upstream: Upstream, operation: str) -> float:
    """The longest one call of `operation` may take: its resilience `total`, else the upstream timeout."""
    policy = upstream.resilience
    if policy is not None:
        total = policy.operations.get(operation, policy.default).total
        if total is not None:
            return total
    return upstream.timeout


__all__ = [
    "CachedOperation",
    "CachedResponse",
    "Spliced",
    "CacheBlock",
    "Entry",
    "Store",
    "SharedStore",
    "UNAVAILABLE",
    "Unavailable",
    "RESULTS",
    "cache_key",
    "shared_store",
    "REDIS_URL_ENV",
    "lifetime",
]
