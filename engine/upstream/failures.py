"""The ways an exchange with an upstream fails, below everything that raises them.

The connection, the decoder and the pool raise these; `engine.upstream.client` turns each into the
engine's `UpstreamError` kinds (`engine.errors`), naming the namespace and the operation.

    HTTPFailure           the exchange failed (a malformed answer, a closed connection, ...)
    ├── ConnectFailure    no connection could be opened
    │   └── ProxyFailure  the proxy could not be reached, refused, or is not usable
    ├── ReadTimeout       the upstream went quiet for longer than the timeout
    └── BodyTooLarge      a body passed one of the `Limits`
"""

from __future__ import annotations


class HTTPFailure(Exception):
    """The exchange failed. `reason` says why, without the URL (its query may hold a key)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class ConnectFailure(HTTPFailure):
    """No connection could be opened."""


class ProxyFailure(ConnectFailure):
    """The proxy could not be reached, refused, or is not usable; `reason` is a sentence naming it."""


class ReadTimeout(HTTPFailure):
    """The upstream went quiet for longer than the timeout."""


class BodyTooLarge(HTTPFailure):
    """The body passed a limit; `limit` is the `Limits` field that stopped it."""

    def __init__(self, reason: str, limit: str) -> None:
        super().__init__(reason)
        self.limit = limit
