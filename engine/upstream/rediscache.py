"""A cache store in Redis, shared by every instance pointed at it (`NAFTIKO_CACHE_REDIS_URL`).

Imported only when that variable is set, so a runtime without the `redis` extra never imports redis.
One Redis string per entry, under `naftiko:cache:<sha256>` (the key `cache.cache_key` makes, with the
base URI in it): a short JSON head (status, media type, the headers the cache keeps, validators and
wall-clock times) and the body, with a Redis TTL of the entry's freshness plus its stale window (plus
`ttl` again when it can be revalidated). Redis is never allowed to fail a call: a command that errs or
takes longer than the timeout makes the store UNAVAILABLE for `retry` seconds (calls go upstream
uncached, counted as bypass), logged once when it goes and once when it comes back. At most
`connections` commands run at once (the pool's bound); a call that finds none free within the timeout
goes upstream uncached too.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Mapping
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from .entries import UNAVAILABLE, Entry, Unavailable

log = logging.getLogger("naftiko.cache")

URL_ENV = "NAFTIKO_CACHE_REDIS_URL"
TIMEOUT_ENV = "NAFTIKO_CACHE_REDIS_TIMEOUT"
RETRY_ENV = "NAFTIKO_CACHE_REDIS_RETRY"
CONNECTIONS_ENV = "NAFTIKO_CACHE_REDIS_CONNECTIONS"
DEFAULT_TIMEOUT = 0.5
"""Seconds for a connect or one command: far above a loopback or LAN round trip, far below an upstream call."""
DEFAULT_RETRY = 5.0
"""Seconds Redis is left alone after a failure before it is tried again."""
DEFAULT_CONNECTIONS = 32
"""Commands in flight at once (so connections open) per runtime; a call finding none free within the timeout
goes upstream uncached without marking Redis down."""
PREFIX = "naftiko:cache:"
_MAGIC = b"naftiko-cache-1\n"


class RedisStore:
    """`cache.SharedStore` over one Redis connection pool (the client connects on first use)."""

    def __init__(
        self,
        url: str,
        timeout: float = DEFAULT_TIMEOUT,
        retry: float = DEFAULT_RETRY,
        connections: int = DEFAULT_CONNECTIONS,
    ) -> None:
        self.url = url
        self.timeout = timeout
        self.retry = retry
        self.client: Any = aioredis.Redis.from_url(
            url,
            socket_timeout=timeout,
            socket_connect_timeout=timeout,
            retry_on_timeout=False,
            max_connections=connections,
        )
        self.slots = asyncio.Semaphore(connections)  # never more commands at once than the pool has connections
        self.down_until = 0.0  # on time.monotonic(): until then, do not ask
        self.failures = 0

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> RedisStore:
        return cls(
            environ[URL_ENV],
            _seconds(environ, TIMEOUT_ENV, DEFAULT_TIMEOUT),
            _seconds(environ, RETRY_ENV, DEFAULT_RETRY),
            _count(environ, CONNECTIONS_ENV, DEFAULT_CONNECTIONS),
        )

    async def _run(self, command: str, *args: Any, **options: Any) -> Any:
        """One command within a free slot; `_Busy` when none frees up within the timeout."""
        try:
            await asyncio.wait_for(self.slots.acquire(), self.timeout)
        except TimeoutError:
            raise _Busy from None
        try:
            return await getattr(self.client, command)(*args, **options)
        finally:
            self.slots.release()

    def _usable(self) -> bool:
        return time.monotonic() >= self.down_until

    def _failed(self, exc: BaseException) -> None:
        self.failures += 1
        if self.down_until == 0.0:
            log.warning(
                "Redis cache at %s unavailable (%s); calling upstreams uncached, retrying every %g s",
                _safe(self.url),
                type(exc).__name__,
                self.retry,
            )
        self.down_until = time.monotonic() + self.retry

    def _worked(self) -> None:
        if self.down_until != 0.0:
            log.warning("Redis cache at %s is back", _safe(self.url))
            self.down_until = 0.0

    async def get(self, key: str) -> Entry | None | Unavailable:
        if not self._usable():
            return UNAVAILABLE
        try:
            raw = await self._run("get", PREFIX + key)
        except _Busy:
            return UNAVAILABLE
        except (RedisError, OSError, TimeoutError) as exc:
            self._failed(exc)
            return UNAVAILABLE
        self._worked()
        return decode(raw) if raw is not None else None

    async def put(self, key: str, entry: Entry, keep: float) -> bool:
        if not self._usable():
            return False
        try:
            await self._run("set", PREFIX + key, encode(entry), px=max(1, int(keep * 1000)))
        except _Busy:
            return False
        except (RedisError, OSError, TimeoutError) as exc:
            self._failed(exc)
            return False
        self._worked()
        return True

    async def drop(self, key: str) -> None:
        if not self._usable():
            return
        try:
            await self._run("delete", PREFIX + key)
        except _Busy:
            return
        except (RedisError, OSError, TimeoutError) as exc:
            self._failed(exc)

    async def close(self) -> None:
        try:
            await self.client.aclose()
        except (RedisError, OSError, TimeoutError):
            pass


def encode(entry: Entry) -> bytes:
    """The entry as one Redis value: a magic line, a 4-byte head length, the JSON head, the body."""
    head = json.dumps(
        {
            "status": entry.status,
            "type": entry.content_type,
            "charset": entry.charset,
            "headers": entry.headers,
            "fresh": entry.fresh_until,
            "stale": entry.stale_until,
            "stored": entry.stored_at,
            "etag": entry.etag,
            "modified": entry.last_modified,
            "head": entry.head,
        },
        separators=(",", ":"),
    ).encode()
    return _MAGIC + len(head).to_bytes(4, "big") + head + entry.body


def decode(raw: bytes) -> Entry | None:
    """An entry `encode` wrote; None for anything else (another version's, or not ours)."""
    if not raw.startswith(_MAGIC):
        return None
    at = len(_MAGIC)
    size = int.from_bytes(raw[at : at + 4], "big")
    try:
        head = json.loads(raw[at + 4 : at + 4 + size])
        return Entry(
            int(head["status"]),
            str(head["type"]),
            head["charset"],
            [(str(k), str(v)) for k, v in head["headers"]],
            raw[at + 4 + size :],
            float(head["fresh"]),
            head["etag"],
            head["modified"],
            bool(head["head"]),
            float(head["stale"]),
            float(head["stored"]),
        )
    except (ValueError, KeyError, TypeError):
        return None


def _seconds(environ: Mapping[str, str], name: str, default: float) -> float:
    value = environ.get(name)
    if value is None or not value.strip():
        return default
    try:
        seconds = float(value)
    except ValueError:
        seconds = -1.0
    if not 0 < seconds <= 3600:
        raise ValueError(f"{name} must be a number of seconds from 0 to 3600; got '{value}'")
    return seconds


def _count(environ: Mapping[str, str], name: str, default: int) -> int:
    value = environ.get(name, "").strip()
    if not value:
        return default
    if not value.isdigit() or not 1 <= int(value) <= 10_000:
        raise ValueError(f"{name} must be a whole number from 1 to 10000; got '{value}'")
    return int(value)


class _Busy(Exception):
    """Every connection is in use: this call goes without Redis, which is not down for it."""


def _safe(url: str) -> str:
    """The URL without its password, for logs."""
    if "@" not in url:
        return url
    scheme, _, rest = url.partition("://")
    return f"{scheme}://***@{rest.rsplit('@', 1)[1]}"


__all__ = [
    "RedisStore",
    "URL_ENV",
    "TIMEOUT_ENV",
    "RETRY_ENV",
    "CONNECTIONS_ENV",
    "DEFAULT_TIMEOUT",
    "DEFAULT_RETRY",
    "DEFAULT_CONNECTIONS",
    "encode",
    "decode",
]
