"""A `resilience` block (on a consumes namespace or a consumed operation), read and checked at load.

    resilience:                       # `resiliency` (Ikanos' word) is read the same
      timeouts: {connect: 2s, read: 10s, total: 30s}
      retry: {maxAttempts: 3, initialDelay: 100ms, multiplier: 2, maxDelay: 5s, jitter: full,
              statuses: [429, 502, 503, 504], idempotent: true}
      circuitBreaker: {failureThreshold: 5, openDuration: 30s}
      bulkhead: {maxConcurrent: 10, maxQueue: 100, queueTimeout: 5s}

A duration is a number of seconds or a string such as `250ms`, `2s`, `1m`. An operation's block
overrides its namespace's field by field (engine/upstream/resilience.py merges them); connections,
breakers and bulkheads belong to the namespace, so `timeouts.connect`, `circuitBreaker` and
`bulkhead` on an operation are positioned problems, as is `retry.idempotent` on a namespace.
"""

from __future__ import annotations

import re

from . import model as spec
from .fields import Map

KEYS = ("resilience", "resiliency")
HIGHEST_DURATION = 3600.0
"""The longest duration a block may give (seconds): past an hour, a caller has long gone."""
HIGHEST_ATTEMPTS = 10
HIGHEST_CONCURRENT = 10_000
HIGHEST_QUEUE = 100_000
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m)?\s*$")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, None: 1.0}
JITTERS = ("full", "none")


def resilience(m: Map, *, operation: bool) -> spec.Resilience | None:
    """The `resilience` (or `resiliency`) block of `m`, or None when absent or broken."""
    present = [k for k in KEYS if m.has(k)]
    if not present:
        return None
    if len(present) > 1:
        m.bad(present[1], "write 'resilience' or 'resiliency', not both")
    r = m.map(present[0])
    if r is None:
        return None
    r.known("timeouts", "retry", "circuitBreaker", "bulkhead")
    level = "an operation" if operation else "a namespace"
    if operation:
        for key in ("circuitBreaker", "bulkhead"):
            if r.has(key):
                r.bad(key, f"'{key}' belongs to the namespace (one per upstream), not to {level}; move it there")
    t = r.map("timeouts")
    if t is not None:
        t.known("connect", "read", "total")
        if operation and t.has("connect"):
            t.bad("connect", "'connect' belongs to the namespace (connections are shared), not to an operation")
    b = None if operation else r.map("circuitBreaker")
    if b is not None:
        b.known("failureThreshold", "openDuration")
    h = None if operation else r.map("bulkhead")
    if h is not None:
        h.known("maxConcurrent", "maxQueue", "queueTimeout")
    return spec.Resilience(
        where=r.where,
        connect_timeout=duration(t, "connect") if t is not None and not operation else None,
        read_timeout=duration(t, "read") if t is not None else None,
        total_timeout=duration(t, "total") if t is not None else None,
        retry=_retry(r, operation),
        failure_threshold=b.int("failureThreshold", high=10_000) if b is not None else None,
        open_duration=duration(b, "openDuration") if b is not None else None,
        max_concurrent=h.int("maxConcurrent", high=HIGHEST_CONCURRENT) if h is not None else None,
        max_queue=h.int("maxQueue", low=0, high=HIGHEST_QUEUE) if h is not None else None,
        queue_timeout=duration(h, "queueTimeout") if h is not None else None,
    )


def _retry(r: Map, operation: bool) -> spec.Retry | None:
    m = r.map("retry")
    if m is None:
        return None
    m.known("maxAttempts", "initialDelay", "multiplier", "maxDelay", "jitter", "statuses", "idempotent")
    if not operation and m.has("idempotent"):
        m.bad("idempotent", "'idempotent' says what one operation does; write it on the operation")
    multiplier = m.data.get("multiplier")
    if multiplier is not None and (isinstance(multiplier, bool) or not isinstance(multiplier, (int, float))):
        m.bad("multiplier", f"'multiplier' must be a number from 1 to 10; got {multiplier!r}")
        multiplier = None
    elif multiplier is not None and not 1 <= multiplier <= 10:
        m.bad("multiplier", f"'multiplier' must be a number from 1 to 10; got {multiplier}")
        multiplier = None
    return spec.Retry(
        where=m.where,
        max_attempts=m.int("maxAttempts", high=HIGHEST_ATTEMPTS),
        initial_delay=duration(m, "initialDelay", zero=True),
        multiplier=float(multiplier) if multiplier is not None else None,
        max_delay=duration(m, "maxDelay", zero=True),
        jitter=m.str("jitter", choices=JITTERS),
        statuses=_statuses(m),
        idempotent=m.bool("idempotent") if operation else None,
    )


def _statuses(m: Map) -> tuple[int, ...] | None:
    value = m.data.get("statuses")
    if value is None:
        return None
    if not isinstance(value, list) or not all(
        isinstance(s, int) and not isinstance(s, bool) and 400 <= s <= 599 for s in value
    ):
        m.bad("statuses", "'statuses' must be a list of HTTP statuses from 400 to 599, such as [429, 503]")
        return None
    return tuple(value)


def duration(m: Map, key: str, *, zero: bool = False) -> float | None:
    """A duration in seconds: a number, or a string with ms, s or m; a positioned problem when unusable."""
    value = m.data.get(key)
    if value is None:
        return None
    seconds: float | None = None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        seconds = float(value)
    elif isinstance(value, str):
        match = _DURATION.match(value)
        if match:
            seconds = float(match.group(1)) * _UNITS[match.group(2)]
    low = 0.0 if zero else 0.001
    if seconds is None or not low <= seconds <= HIGHEST_DURATION:
        m.bad(
            key,
            f"'{key}' must be a duration from {'0' if zero else '1ms'} to 1h, "
            f"such as 250ms, 2s, 1m or a number of seconds; got {value!r}",
        )
        return None
    return seconds


__all__ = ["resilience", "duration", "HIGHEST_DURATION"]
