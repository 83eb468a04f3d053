"""JSON in and out, exactly as the standard library reads and writes it, but faster.

orjson encodes (a tool call's answer about 7× faster: README, design notes) and msgspec decodes
(as fast as orjson, and it reads integers beyond 64 bits exactly, where orjson makes them
floats, so no text needs a look for long digit runs first: a tool call's request 0.83 -> 0.52
µs, a 1 MiB answer 5.5 -> 4.5 ms). The standard library takes over where they would differ:
encoding what orjson refuses (integers beyond 64 bits, lone surrogates, deep nesting), and
decoding what msgspec refuses that it reads (a lone surrogate, 1e400, UTF-16 or UTF-32). NaN
and Infinity are not JSON: reading them is refused (a NaN float written out becomes null).

An upstream's JSON answer that only needs to be checked, not read, becomes `RawJSON`: its bytes
go into the encoded answer as they came, so a large answer is never parsed into objects and
encoded again. The check is msgspec's: it scans the text without building a Python object (a
1 MiB list of 13,394 records: about 0.8 ms, against about 5-7 ms for `orjson.loads`, which builds
and frees some 70,000 objects), and a strict UTF-8 decode covers what it skips over.
"""

from __future__ import annotations

import json
from functools import cache
from typing import Any
from collections.abc import Callable

import orjson

__all__ = ["RawJSON", "dumps", "loads", "passthrough"]


class RawJSON:
    """One valid JSON text, kept as the bytes it arrived as (UTF-8)."""

    __slots__ = ("raw", "is_object")

    def __init__(self, raw: bytes, is_object: bool) -> None:
        self.raw = raw
        self.is_object = is_object

    def value(self) -> Any:
        return loads(self.raw)


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


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


_strict = json.JSONDecoder(parse_constant=_refuse_constant)


def _standard(raw: bytes) -> Any:
    """What the standard library reads (UTF-8, -16 or -32), NaN and Infinity refused."""
    return _strict.decode(raw.decode(json.detect_encoding(raw), "surrogatepass"))


@cache
def _msgspec() -> tuple[Callable[[bytes], Any], Callable[[bytes], Any], type[Exception]]:
    """msgspec's decoder, its syntax check (one JSON text, nothing after it, nothing built) and
    its error, imported on first use: about 10 ms of start-up that a process never needs before
    its first JSON text."""
    import msgspec

    return msgspec.json.Decoder().decode, msgspec.json.Decoder(msgspec.Raw).decode, msgspec.DecodeError


def loads(raw: bytes) -> Any:
    """One JSON text; ValueError (or RecursionError) when it is not JSON."""
    decode, _, refused = _msgspec()
    try:
        return decode(raw)
    except (refused, RecursionError):  # its ValidationError too (1e400), and nesting deeper than the stack
        return _standard(raw)


_SPACE = b" \t\r\n"


def passthrough(raw: bytes, utf8: bool = False) -> Any:
    """An upstream JSON body to pass on: `RawJSON` when it is UTF-8 JSON, else its parsed value.

    Raises ValueError (or RecursionError) when it is not JSON at all. msgspec checks the
    syntax, and a strict decode the UTF-8, which msgspec does not look for inside strings
    (`utf8`: the caller has decoded `raw` strictly already). Nothing is built. What that check
    refuses goes to orjson, then to the standard library, which reads a few texts both refuse (a
    UTF-16 body, a lone surrogate) into their parsed value, and raises for the rest. A number
    too large for a float (`1e400`) passes as it is written.
    """
    _, scan, refused = _msgspec()
    try:
        scan(raw)
        if not utf8:
            raw.decode("utf-8")
    except (refused, UnicodeDecodeError, RecursionError):
        return _checked(raw)
    return RawJSON(raw, raw.lstrip(_SPACE)[:1] == b"{")


def _checked(raw: bytes) -> Any:
    """What `passthrough` did before msgspec: orjson's check, then the standard library's parse."""
    try:
        checked = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return _standard(raw)
    return RawJSON(raw, isinstance(checked, dict))
