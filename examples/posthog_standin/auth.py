"""Personal-API-key authentication, ``task:*`` scopes, project access and throttling.

Mirrors PostHog's order of checks: authenticate the bearer key (401), resolve the
project (404/403), then the scope for the action (403), then the per-key throttle
(429 with ``Retry-After``).
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from starlette.requests import Request

from .errors import authentication_failed, not_authenticated, not_found, permission_denied, throttled

READ = "task:read"
WRITE = "task:write"
DEFAULT_API_KEYS: dict[str, list[str]] = {"phx_demo_key": [WRITE]}


@dataclass(frozen=True)
class ApiKey:
    value: str
    scopes: frozenset[str]

    def allows(self, scope: str) -> bool:
        """``*`` and legacy scope-less keys pass everything; ``task:write`` implies ``task:read``."""
        if not self.scopes or "*" in self.scopes or scope in self.scopes:
            return True
        return scope == READ and WRITE in self.scopes


def build_keys(api_keys: Mapping[str, Sequence[str]] | None) -> dict[str, ApiKey]:
    source = DEFAULT_API_KEYS if api_keys is None else api_keys
    return {value: ApiKey(value, frozenset(scopes)) for value, scopes in source.items()}


def authenticate(request: Request, keys: Mapping[str, ApiKey]) -> ApiKey:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise not_authenticated()
    key = keys.get(token.strip())
    if key is None:
        raise authentication_failed()
    return key


def require_scope(key: ApiKey, scope: str) -> None:
    if not key.allows(scope):
        raise permission_denied(f"API key missing required scope '{scope}'")


def resolve_project(raw: str, project_id: int) -> int:
    """``@current`` or the stand-in's numeric id; other numbers are projects the key cannot see."""
    if raw == "@current":
        return project_id
    if not raw.isdigit():
        raise not_found("Project not found.")
    requested = int(raw)
    if requested != project_id:
        raise permission_denied(f"API key does not have access to the requested project: ID {requested}.")
    return requested


class RateLimiter:
    """Sliding one-minute window per key, like DRF's ``SimpleRateThrottle``.

    Only admitted requests count, and the wait is the time until the oldest one
    leaves the window.
    """

    def __init__(self, per_minute: int | None, window_seconds: float = 60.0) -> None:
        self.per_minute = per_minute
        self.window = window_seconds
        self._history: dict[str, deque[float]] = {}

    def hit(self, key: str) -> None:
        if self.per_minute is None:
            return
        now = time.monotonic()
        history = self._history.setdefault(key, deque())
        while history and history[0] <= now - self.window:
            history.popleft()
        if len(history) >= self.per_minute:
            wait = self.window - (now - history[0])
            raise throttled(max(1, math.ceil(wait)))
        history.append(now)
