"""A stored upstream answer and the protocol of a store many instances share: what the in-process
cache (cache.py) and the Redis store (rediscache.py) both speak, kept apart so neither imports the other
at load (cache.py imports rediscache only when `NAFTIKO_CACHE_REDIS_URL` is set)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(slots=True)
class Entry:
    """One stored answer: what `CachedResponse` replays, and when it goes stale."""

    status: int
    content_type: str
    charset: str | None
    headers: list[tuple[str, str]]  # as `UpstreamResponse.headers(keep_length=False)` gave them
    body: bytes
    fresh_until: float  # on the store's clock
    etag: str | None
    last_modified: str | None
    head: bool = False  # a HEAD answer: no body, its headers keep the length a GET would have
    stale_until: float = 0.0  # until then a failed refetch may be answered with it (stale-if-error)
    stored_at: float = 0.0  # when it was stored or last revalidated (its `Age` when served stale)

    @property
    def size(self) -> int:
        """What the entry counts against `maxBytes`: its body and headers."""
        return len(self.body) + sum(len(k) + len(v) for k, v in self.headers) + 64


class Unavailable:
    """A shared store that could not answer (down, slow, refused): the call goes upstream uncached."""


UNAVAILABLE = Unavailable()


class SharedStore(Protocol):
    """A store many instances share (engine/upstream/rediscache.py); times in entries are wall-clock seconds.

    It never raises: a failure answers UNAVAILABLE (get) or False (put), and is logged by the store."""

    async def get(self, key: str) -> Entry | None | Unavailable: ...
    async def put(self, key: str, entry: Entry, keep: float) -> bool: ...
    async def drop(self, key: str) -> None: ...
    async def close(self) -> None: ...


__all__ = ["Entry", "SharedStore", "UNAVAILABLE", "Unavailable"]
