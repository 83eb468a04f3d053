"""Byte sizes written in a capability file, such as `maxBinarySize: 5MiB`.

Ikanos writes a size with a mandatory unit (`512KiB`, `5MiB`, `1GiB`, `100B`, decimals allowed:
`1.5MiB`); naftiko's own `--limit` sizes take `K`, `M`, `G` (powers of 1024) or no unit (bytes).
Both are read here, so one file works in either runtime's spelling.
"""

from __future__ import annotations

import re

from .fields import Map

_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(B|KiB|MiB|GiB|K|M|G|KB|MB|GB)?\s*$", re.IGNORECASE)
_UNITS = {"b": 1, "k": 1024, "kib": 1024, "kb": 1024, "m": 1024**2, "mib": 1024**2, "mb": 1024**2}
_UNITS |= {"g": 1024**3, "gib": 1024**3, "gb": 1024**3}


def parse_size(text: str) -> int | None:
    """The number of bytes `text` names, or None when it is not a positive size."""
    match = _SIZE.match(text)
    if match is None:
        return None
    size = int(float(match.group(1)) * _UNITS[(match.group(2) or "b").lower()])
    return size if size > 0 else None


def byte_size(m: Map, key: str) -> int | None:
    """`key` read as a byte size; a wrong one is a problem at its value, saying what would be right."""
    if not m.has(key):
        return None
    raw = m.data[key]
    size = parse_size(str(raw)) if isinstance(raw, (str, int)) and not isinstance(raw, bool) else None
    if size is None:
        m.bad(key, f"'{key}' must be a positive size such as 512KiB, 10MiB or 1GiB; got '{raw}'")
    return size


__all__ = ["byte_size", "parse_size"]
