"""The bounds on what one call may cost, all configurable.

A gateway meets hostile or broken peers on both sides, so every body it reads, inflates or
decodes has a ceiling; past it the call fails with a clear error instead of the process
growing with whatever the peer sends. Each limit can be set by `--limit NAME=VALUE` or the
environment variable `NAFTIKO_MAX_<NAME>` (sizes take `K`, `M`, `G` suffixes, powers of 1024).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, fields, replace
from collections.abc import Mapping

from .errors import NaftikoError

KiB, MiB, GiB = 1024, 1024**2, 1024**3
ENV_PREFIX = "NAFTIKO_MAX_"
_SIZE = re.compile(r"^\s*(\d+)\s*([kmg]?)(?:i?b)?\s*$", re.IGNORECASE)
_UNITS = {"": 1, "k": KiB, "m": MiB, "g": GiB}


@dataclass(frozen=True, slots=True)
class Limits:
    """Ceilings per call. Field names, with `_` as `-`, are the names `--limit` takes."""

    upstream_body: int = 32 * MiB
    """The largest upstream answer read whole (to map it, convert its format, or put it in an MCP
    result), counted after decompression. Streamed answers are not buffered and have no such bound."""
    decompressed_stream: int = 1 * GiB
    """The most a compressed answer that streams through may inflate to."""
    compression_ratio: int = 200
    """The most a compressed answer that streams through may inflate per compressed byte, checked once
    it has produced 1 MiB: a bomb inflates about 1000:1, real JSON and text rarely past 20:1. An answer
    read whole is bounded by `upstream_body` alone (its memory is bounded anyway)."""
    request_body: int = 8 * MiB
    """The largest inbound request body, for REST routes and MCP messages."""
    decoded_items: int = 1_000_000
    """The most values one decoded document (YAML, XML, CSV, HTML, Markdown) may hold, so a small
    body cannot expand into millions of them through YAML aliases or the like."""

    @classmethod
    def from_env(cls, env: Mapping[str, str], overrides: Mapping[str, str] | None = None) -> Limits:
        """Defaults, then `NAFTIKO_MAX_*` variables, then `overrides` (as `--limit` gives them)."""
        values: dict[str, int] = {}
        for field in fields(cls):
            raw = env.get(ENV_PREFIX + field.name.upper())
            if raw is not None:
                values[field.name] = _parse(raw, ENV_PREFIX + field.name.upper())
        for name, raw in (overrides or {}).items():
            key = name.strip().lower().replace("-", "_")
            if key not in {f.name for f in fields(cls)}:
                known = ", ".join(f.name.replace("_", "-") for f in fields(cls))
                raise NaftikoError(f"--limit: no limit named '{name}' (known: {known})")
            values[key] = _parse(raw, f"--limit {name}")
        return replace(cls(), **values)


def _parse(raw: str, what: str) -> int:
    match = _SIZE.match(raw)
    if match is None or int(match.group(1)) == 0:
        raise NaftikoError(f"{what} expects a positive number, optionally with K, M or G; got '{raw}'")
    return int(match.group(1)) * _UNITS[match.group(2).lower()]


def describe(size: int) -> str:
    """A size as people write it (32 MiB), for error messages."""
    for unit, name in ((GiB, "GiB"), (MiB, "MiB"), (KiB, "KiB")):
        if size >= unit and size % unit == 0:
            return f"{size // unit} {name}"
    return f"{size} bytes"


def advice(name: str) -> str:
    """How to raise the limit `name` (a `Limits` field), for the error that says it was reached."""
    option = name.replace("_", "-")
    value = "N" if name == "compression_ratio" or name == "decoded_items" else "SIZE"
    return f"limit {option}; raise it with --limit {option}={value} or {ENV_PREFIX}{name.upper()}"
