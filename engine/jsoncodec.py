"""JSON out, and upstream JSON passed on without being rebuilt.

Encoding is orjson's (about 10× faster than the standard library on a tool-call answer,
bench/README.md), with the standard library as the fallback for what orjson refuses (integers
beyond 64 bits, lone surrogates, nesting deeper than 254). Decoding of what callers send stays
with the standard library: orjson reads integers beyond 64 bits as floats, and a caller's
number must reach the upstream exactly as it was written.

An upstream's JSON answer that only needs to be checked, not read, becomes `RawJSON`: its bytes
go into the encoded answer as they came, so a large answer is never parsed into objects and
encoded again.
"""

from __future__ import annotations

import json
from typing import Any

import orjson

__all__ = ["RawJSON", "dumps", "passthrough"]


class RawJSON:
    """One valid JSON text, kept as the bytes it arrived as (UTF-8)."""

    __slots__ = ("raw", "is_object")

    def __init__(self, raw: bytes, is_object: bool) -> None:
        self.raw = raw
        self.is_object = is_object

    def value(self) -> Any:
        return json.loads(self.raw)


def _fragment(value: Any) -> Any:
    if isinstance(value, RawJSON):
        return orjson.Fragment(value.raw)
    raise TypeError(f"{type(value).__name__} is not JSON")


def _parsed(value: Any) -> Any:
    if isinstance(value, RawJSON):
        return value.value()
    raise TypeError(f"{type(value).__name__} is not JSON")


# ASCII escapes, so a lone surrogate (which UTF-8 cannot carry) still encodes.
_fallback = json.JSONEncoder(separators=(",", ":"), allow_nan=False, default=_parsed)


def dumps(value: Any) -> bytes:
    """Compact UTF-8 JSON; `RawJSON` values are spliced in as they are."""
    try:
        return orjson.dumps(value, default=_fragment)
    except TypeError:  # orjson.JSONEncodeError included
        return _fallback.encode(value).encode("ascii")


def passthrough(raw: bytes) -> Any:
    """An upstream JSON body to pass on: `RawJSON` when it is UTF-8 JSON, else its parsed value.

    Raises ValueError when it is not JSON at all. orjson checks it (what it reads is thrown
    away, so its rounding of integers beyond 64 bits does not matter); what orjson refuses but
    the standard library reads (a UTF-16 body, `1e400`, a lone surrogate) is parsed instead.
    """
    try:
        checked = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return json.loads(raw)
    return RawJSON(raw, isinstance(checked, dict))
