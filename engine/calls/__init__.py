"""Exposed calls: what a REST operation, an MCP tool or an aggregate function does when called.

`invocation.ExposedCall` is compiled once per exposed operation into one of four modes (call a
consumed operation, run `steps`, delegate to a function, answer a mock); `outputs` maps the JSON
answer; `answers` reads an upstream answer as data; `binary` passes a binary answer on within
`maxBinarySize`; `shapes` says at load what a call answers, as JSON Schema (MCP `outputSchema`).
Calls reach the registry and the wire only through the narrow `seam.Upstreams` protocol
(operations by key, bindings, caller prefixes, `send`), widened by `invocation.CallContext` with
the aggregate functions a `ref` delegates to; the Runtime satisfies both structurally.
"""

from .invocation import NO_JSON, CallContext, ExposedCall, Outcome
from .seam import Upstreams

__all__ = ["ExposedCall", "Outcome", "NO_JSON", "CallContext", "Upstreams"]
