"""Exposed calls: what a REST operation, an MCP tool or an aggregate function does when called.

`invocation.ExposedCall` is compiled once per exposed operation into one of four modes (call a
consumed operation, run `steps`, delegate to a function, answer a mock); `outputs` maps the JSON
answer; `answers` reads an upstream answer as data. Calls reach the registry and the wire only
through the narrow `Upstreams` seam, which the Runtime provides.
"""

from .invocation import NO_JSON, ExposedCall, Outcome

__all__ = ["ExposedCall", "Outcome", "NO_JSON"]
