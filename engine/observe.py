"""The narrow hook through which calls are reported to whoever measures them (metrics, traces).

A `Runtime` holds at most one `Observer` (None by default). Every place that reports checks
`observer is None` first, so an unobserved runtime pays one attribute read per call and nothing
else. An observer is told when an inbound call starts (`inbound`, by the REST, MCP and skill
adapters) and when an upstream exchange starts (`upstream`, by `upstream.Upstream.send`); each
returns a handle whose `end` is called once with the outcome. The handles tie the two together
however the observer likes (the control port's uses a context variable, as OpenTelemetry does), so
an OpenTelemetry span recorder can sit behind the same two calls.

The engine never imports an implementation: they live with the adapters (`adapters.control`).
"""

from __future__ import annotations

from typing import Protocol
from collections.abc import Sequence


class InboundCall(Protocol):
    """One call an adapter is answering: a REST route, an MCP tool, a skill view."""

    def end(self, status: str, error: str | None = None) -> None:
        """The call is answered: `status` as the adapter labels it (an HTTP status, `OK`/`ERROR` for a
        tool); `error` names the kind of failure when the call failed on our side or upstream."""
        ...


class UpstreamCall(Protocol):
    """One exchange with an upstream; `headers` go out with it (trace propagation: `traceparent`)."""

    @property
    def headers(self) -> Sequence[tuple[str, str]]: ...

    def end(self, status: int | None, error: str | None = None) -> None:
        """The answer's head arrived with `status`, or no answer came (`status` None, `error` says why)."""
        ...


class Observer(Protocol):
    """What measures a runtime's calls. Labels are names from the capability files, never raw input."""

    def inbound(self, adapter: str, namespace: str, operation: str, traceparent: str | None = None) -> InboundCall:
        """An inbound call starts; `traceparent` is the caller's W3C trace context header, if it sent one."""
        ...

    def upstream(self, namespace: str, operation: str, method: str, host: str) -> UpstreamCall:
        """An upstream exchange of consumes `namespace` starts (`operation` is the consumed operation's key)."""
        ...


__all__ = ["InboundCall", "Observer", "UpstreamCall"]
