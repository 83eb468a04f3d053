"""JSONPath expressions, compiled once.

`$` and `$.` mean the whole document. A path of plain keys (`$.a.b`, `$['dc:title']`) takes a
fast path of dict lookups; anything else goes through jsonpath-ng. A path that matches nothing
gives None.

Whether a path gives one value or a list is decided on its parsed form, as Jayway JSONPath (the
reference engine's library) decides it, never on its text: a quoted key is one key whatever it
holds (`$['a,b']`, `$['dc:title']`, `$['*']`). Wildcards, filters, slices, recursion and index
lists (`[0,1]`) give a list. A list of keys at the end of a path (`$['a','b']`) is definite: one
object holding those of the keys that are present, as Jayway merges them; before the end
(`$['a','b'].c`) it iterates, so the path gives a list.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any
from collections.abc import Callable

from jsonpath_ng import jsonpath as _ast
from jsonpath_ng.exceptions import JsonPathLexerError, JsonPathParserError
from jsonpath_ng.ext.parser import parse as _parse
from jsonpath_ng.ext.filter import Filter as _Filter
from jsonpath_ng.ext.iterable import SortedThis as _SortedThis

from .errors import JsonPathError as JsonPathError  # raised here, defined in errors.py

_DOTTED = re.compile(r"^\$(?:\.[A-Za-z_][\w-]*)+$")

Extractor = Callable[[Any], Any]

_MANY: tuple[type, ...] = tuple(
    kind
    for kind in (
        _ast.Wildcard,
        _ast.Slice,
        _ast.Descendants,
        _ast.Where,
        _ast.WhereNot,
        _Filter,
        _SortedThis,
        getattr(_ast, "_Union", None),
        getattr(_ast, "_Intersect", None),
    )
    if isinstance(kind, type)
)
"""Parsed nodes that select any number of values (`|` and `&` are `_Union`/`_Intersect` in jsonpath-ng 1.x)."""


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
        parsed: Any = _parse(text)
    except (JsonPathLexerError, JsonPathParserError, Exception) as exc:
        raise JsonPathError(f"invalid JSONPath '{expression}': {exc}") from None
    keys = _plain_keys(parsed)
    if keys is not None:
        return _dotted(keys)
    if isinstance(parsed, _ast.Child) and len(_fields(parsed.right)) > 1:
        return _merged(parsed.left, _fields(parsed.right))
    return _finder(parsed, _definite(parsed))


def _finder(parsed: Any, definite: bool) -> Extractor:
    def extract(document: Any) -> Any:
        matches = [m.value for m in parsed.find(document)]
        if not definite:
            return matches
        return matches[0] if matches else None

    return extract


def _merged(upstream: Any, keys: tuple[str, ...]) -> Extractor:
    """Keys listed at the end of a path: per object reached, one object of those present (Jayway's merge)."""
    definite = _definite(upstream)

    def extract(document: Any) -> Any:
        merged = [
            {k: v[k] for k in keys if k in v} for v in (m.value for m in upstream.find(document)) if isinstance(v, dict)
        ]
        if not definite:
            return merged
        return merged[0] if merged else None

    return extract


def _fields(node: Any) -> tuple[str, ...]:
    """The keys a `Fields` node names (none for any other node)."""
    return tuple(node.fields) if isinstance(node, _ast.Fields) else ()


def _plain_keys(node: Any) -> tuple[str, ...] | None:
    """The keys of a path made only of single keys from the root (`$['dc:title'].b`), else None."""
    keys: list[str] = []
    while isinstance(node, _ast.Child) and len(_fields(node.right)) == 1:
        keys.append(_fields(node.right)[0])
        node = node.left
    return tuple(reversed(keys)) if keys and isinstance(node, _ast.Root) else None


def _definite(node: Any) -> bool:
    """Whether the parsed path selects at most one value (Jayway's `isPathDefinite`)."""
    if isinstance(node, _MANY):
        return False
    if isinstance(node, _ast.Fields):
        return len(node.fields) == 1 and not getattr(node, "_deprecated_wildcard_use", False)
    if isinstance(node, _ast.Index):
        return len(node.indices) == 1
    return all(_definite(part) for part in vars(node).values() if isinstance(part, _ast.JSONPath))


def _dotted(keys: tuple[str, ...]) -> Extractor:
    def extract(document: Any) -> Any:
        for key in keys:
            if not isinstance(document, dict):
                return None
            document = document.get(key)
        return document

    return extract
