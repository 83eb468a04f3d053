"""A `cache` block (on a consumes namespace or a consumed operation), read and checked at load.

    cache:
      ttl: 30s                   # the longest an answer is served from the cache (a number of seconds, 250ms, 1m)
      maxEntries: 1000           # namespace only: the namespace's store holds at most this many answers
      maxBytes: 16MiB            # namespace only: ... and at most this many body bytes in all
      maxEntryBytes: 1MiB        # a larger answer is passed through, never stored
      respectCacheControl: true  # the upstream's Cache-Control / Expires may shorten (never lengthen) ttl
      staleIfError: 5m           # a stale entry answers (for this long past its freshness) when a refetch fails

`cache: false` on an operation turns its namespace's cache off for it. An operation's block overrides
its namespace's field by field (engine/upstream/cache.py merges them); the store belongs to the
namespace, so `maxEntries` and `maxBytes` on an operation are positioned problems, and so is a block on
an operation whose method is not GET or HEAD (its answers are never stored).

Without any block, a consumed GET/HEAD operation that an aggregate function with `semantics.cacheable:
true` calls (directly or as a step) gets the default policy: `implied` finds them.
"""

from __future__ import annotations

from collections.abc import Iterable

from . import model as spec
from .fields import Map
from .resilience import duration
from .sizes import byte_size

KEY = "cache"
HIGHEST_ENTRIES = 1_000_000
"""The most answers one namespace's store may be told to hold."""
_NAMESPACE_ONLY = ("maxEntries", "maxBytes")
CACHED_METHODS = ("GET", "HEAD")


def cache(m: Map, *, operation: bool) -> spec.Cache | None:
    """The `cache` block of `m`, or None when absent or broken; `cache: false` (operation): no caching."""
    if not m.has(KEY):
        return None
    if m.data.get(KEY) is False and operation:
        return spec.Cache(where=m.loc(KEY), enabled=False)
    c = m.map(KEY)
    if c is None:
        return None
    c.known("ttl", "maxEntries", "maxBytes", "maxEntryBytes", "respectCacheControl", "staleIfError")
    method = str(m.data.get("method") or "GET").upper()
    if operation and method not in CACHED_METHODS:
        m.bad(KEY, f"a {method} answer is never cached (only GET and HEAD are); remove 'cache' or write 'cache: false'")
    if operation:
        for key in _NAMESPACE_ONLY:
            if c.has(key):
                c.bad(key, f"'{key}' bounds the namespace's store (one per upstream), not an operation; move it there")
    return spec.Cache(
        where=c.where,
        ttl=duration(c, "ttl"),
        max_entries=None if operation else c.int("maxEntries", high=HIGHEST_ENTRIES),
        max_bytes=None if operation else byte_size(c, "maxBytes"),
        max_entry_bytes=byte_size(c, "maxEntryBytes"),
        respect_cache_control=c.bool("respectCacheControl"),
        stale_if_error=duration(c, "staleIfError"),
    )


def implied(capabilities: Iterable[spec.Capability]) -> frozenset[str]:
    """The consumed GET/HEAD operations (`ns.op`) an aggregate function declared `cacheable` calls.

    Both dialects put `semantics` on aggregate functions (flows), not on consumed operations: a function
    that says its answer may be cached vouches for the reads it is made of."""
    if not any(
        f.semantics is not None and f.semantics.cacheable
        for cap in capabilities
        for a in cap.aggregates
        for f in a.functions
    ):
        return frozenset()  # no function vouches for its reads: no table of 10,000 methods to build
    methods = {
        f"{c.namespace}.{o.name}": o.method
        for cap in capabilities
        for c in cap.consumes
        for r in c.resources
        for o in r.operations
    }
    called: set[str] = set()
    for cap in capabilities:
        for aggregate in cap.aggregates:
            for function in aggregate.functions:
                if function.semantics is None or not function.semantics.cacheable:
                    continue
                invocation = function.invocation
                called.update(k for k in (invocation.call, *(s.call for s in invocation.steps)) if k)
    return frozenset(k for k in called if methods.get(k) in CACHED_METHODS)


__all__ = ["cache", "implied", "KEY", "CACHED_METHODS"]
