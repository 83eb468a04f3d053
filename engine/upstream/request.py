"""The request model at the bottom of the wire: what the registry prepares and an upstream client sends."""

from __future__ import annotations

from dataclasses import dataclass

Origin = tuple[str, str, int]  # scheme, host, port: what a pooled connection is keyed by


@dataclass(frozen=True, slots=True)
class Prepared:
    """A request ready to send: the path and query are already encoded."""

    method: str
    target: str  # path + query, appended to the namespace's base URI
    headers: tuple[tuple[str, str], ...]
    body: bytes | None
