"""What every format decoder shares: its errors (defined in `engine.errors`), its budget of values, and text
decoding."""

from __future__ import annotations

import codecs

from ..errors import FormatError as FormatError  # raised here, defined in errors.py
from ..errors import FormatNotSupported as FormatNotSupported
from ..limits import Limits, advice

DEFAULT_ITEMS = Limits().decoded_items
"""The expansion limit when a decoder is built without one (`Limits.decoded_items`)."""

MAX_DEPTH = 256
"""The deepest nesting a decoded XML or YAML value may have (libxml2's default): deeper data
could not be mapped or encoded again without running out of stack, and no real payload needs it."""


class Budget:
    """Counts the values one document decodes to and stops it at the expansion limit.

    Counting is done where values are made, so a small body that expands (YAML aliases, wide CSV
    rows, many table cells) fails as soon as it passes the limit, before it is built whole.
    """

    __slots__ = ("label", "limit", "left")

    def __init__(self, label: str, limit: int) -> None:
        self.label = label
        self.limit = limit
        self.left = limit

    def spend(self, count: int = 1) -> None:
        self.left -= count
        if self.left < 0:
            raise self.exceeded()

    def exceeded(self) -> FormatError:
        return FormatError(
            f"{self.label}: the document holds more than {self.limit:,} values ({advice('decoded_items')})",
            "decoded_items",
        )


def too_deep(label: str) -> FormatError:
    return FormatError(f"{label}: the document is nested more than {MAX_DEPTH} levels deep")


def as_text(body: bytes | str, encoding: str | None) -> str:
    """Bytes → text in the response charset; bad bytes become U+FFFD, as Java readers do."""
    if isinstance(body, str):
        text = body
    else:
        charset = encoding or "utf-8"
        try:
            name = codecs.lookup(charset).name
        except LookupError:
            raise FormatError(f"unknown response charset {charset!r}") from None
        text = body.decode("utf-8-sig" if name == "utf-8" else name, errors="replace")
    return text[1:] if text.startswith("\ufeff") else text


def rows_to_objects(headers: list[str], rows: list[list[str]], budget: Budget) -> list[dict[str, str]]:
    """One object per row keyed by header; a missing cell is "", an extra one is dropped."""
    budget.spend(len(rows) * (len(headers) + 1))
    return [{header: row[i] if i < len(row) else "" for i, header in enumerate(headers)} for row in rows]
