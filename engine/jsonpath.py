"""JSONPath expressions, compiled once.

`$` and `$.` mean the whole document. Plain dotted paths (`$.a.b`) take a fast path of dict
lookups; anything else goes through jsonpath-ng. A path that matches nothing gives None.
Paths with wildcards, filters, slices or recursion give a list, as Jayway JSONPath does.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any, Callable

from jsonpath_ng.exceptions import JsonPathLexerError, JsonPathParserError
from jsonpath_ng.ext import parse as _parse

from engine.errors import JsonPathError as JsonPathError  # re-exported: its home was here

_DOTTED = re.compile(r"^\$(?:\.[A-Za-z_][\w-]*)+$")
_INDEFINITE = re.compile(r"\*|\.\.|\[\?|\[[^\]]*[:,][^\]]*\]")

Extractor = Callable[[Any], Any]


def _identity(document: Any) -> Any:
    return document


@lru_cache(maxsize=4096)
def compile_path(expression: str) -> Extractor:
    """Return a function document → value for `expression` (pure, so memoised)."""
    text = expression.strip()
    if text in ("$", "$."):
        return _identity
    if _DOTTED.match(text):
        return _dotted(tuple(text[2:].split(".")))
    try:
        parsed = _parse(text)
    except (JsonPathLexerError, JsonPathParserError, Exception) as exc:
        raise JsonPathError(f"invalid JSONPath '{expression}': {exc}") from None
    many = bool(_INDEFINITE.search(text))

    def extract(document: Any) -> Any:
        matches = [m.value for m in parsed.find(document)]
        if many:
            return matches
        return matches[0] if matches else None

    return extract


def _dotted(keys: tuple[str, ...]) -> Extractor:
    def extract(document: Any) -> Any:
        for key in keys:
            if not isinstance(document, dict):
                return None
            document = document.get(key)
        return document

    return extract
