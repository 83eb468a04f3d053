"""The seam between exposed calls and what sends their upstream requests.

Calls and steps are compiled against this protocol, never against the object that owns the
registry and the wire (the Runtime satisfies it structurally, and passes itself). Everything a
call needs from outside is here: the consumed operation a `call` names, at build time; then,
per call, the bindings and caller prefixes its templates render with, and `send`, which
prepares the operation's request and hands it to its namespace's upstream. A test can drive a
call with a few lines of fake.
"""

from __future__ import annotations

from typing import Any, Protocol
from collections.abc import Awaitable, Mapping

from ..registry import Operation
from ..upstream import UpstreamResponse


class Upstreams(Protocol):
    """Consumed operations by key, and sending one of them with its parameters."""

    @property
    def prefixes(self) -> frozenset[str]:
        """The names a `with` value or template may start with to reach the caller's own values."""
        ...

    def operation(self, key: str) -> Operation:
        """The consumed operation `namespace.name` (at build time); `UnknownOperation` when there is none."""
        ...

    def bindings_for(self, namespace: str | None) -> Mapping[str, str]:
        """The `binds` values templates of `namespace` render with (None: every capability's)."""
        ...

    def send(self, operation: Operation, params: Mapping[str, Any]) -> Awaitable[UpstreamResponse]:
        """Prepare and send `operation` with `params`; the answer's body is left unread."""
        ...


__all__ = ["Upstreams"]
