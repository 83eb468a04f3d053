"""A consumed operation's `pagination` block, read and checked at load.

Four styles reach the next page: `cursor` (a JSONPath to the next cursor in the body, sent back
in a declared parameter), `page` and `offset` (a page number or an item offset in a declared
parameter, with an optional page size), and `link` (the `Link: <...>; rel="next"` header of
RFC 8288). Every problem is positioned; the parameters named must be declared inputs of the
operation, its resource or its namespace (`checked`, run once the namespace is built), because
only declared parameters ever reach the upstream.
"""

from __future__ import annotations

from ..jsonpath import JsonPathError, compile_path
from . import model as spec
from .fields import Context, Map

TYPES = ("cursor", "page", "offset", "link")
DEFAULT_MAX_PAGES = 100
"""Pages one all-pages call fetches at most when the file says nothing (`maxPages`)."""
DEFAULT_MAX_ITEMS = 10_000
"""Items one all-pages call returns at most when the file says nothing (`maxItems`)."""
HIGHEST_MAX_PAGES = 10_000
HIGHEST_MAX_ITEMS = 1_000_000
_KEYS = ("type", "items", "nextCursor", "parameter", "sizeParameter", "pageSize", "firstPage", "total")
_ONLY = {
    "nextCursor": ("cursor",),
    "parameter": ("cursor", "page", "offset"),
    "sizeParameter": ("page", "offset"),
    "pageSize": ("page", "offset"),
    "firstPage": ("page", "offset"),
    "total": ("page", "offset"),
}


def pagination(m: Map) -> spec.Pagination | None:
    """The `pagination` mapping of an operation (`m` is the operation), or None when absent or broken."""
    if not m.has("pagination"):
        return None
    p = m.map("pagination")
    if p is None:
        return None
    p.known(*_KEYS, "maxPages", "maxItems")
    type_ = p.str("type", required=True, choices=TYPES, hint=f"one of {', '.join(TYPES)}")
    items = _path(p, "items") or "$"
    if type_ is None:
        return None
    for key, types in _ONLY.items():
        if p.has(key) and type_ not in types:
            p.bad(key, f"'{key}' is for pagination of type {' or '.join(types)}, not {type_}")
    needs = {"cursor": ("nextCursor", "parameter"), "page": ("parameter",), "offset": ("parameter", "pageSize")}
    for key in needs.get(type_, ()):
        if not p.has(key):
            p.missing(key, f"required by {type_} pagination")
    page_size = p.int("pageSize", high=HIGHEST_MAX_ITEMS)
    if p.has("sizeParameter") and not p.has("pageSize"):
        p.missing("pageSize", "the value 'sizeParameter' sends")
    first = p.int("firstPage", low=0, high=HIGHEST_MAX_ITEMS)
    return spec.Pagination(
        type=type_,
        where=p.where,
        items=items,
        next_cursor=_path(p, "nextCursor"),
        parameter=p.str("parameter"),
        size_parameter=p.str("sizeParameter"),
        page_size=page_size,
        first=first if first is not None else (1 if type_ == "page" else 0),
        total=_path(p, "total"),
        max_pages=p.int("maxPages", high=HIGHEST_MAX_PAGES) or DEFAULT_MAX_PAGES,
        max_items=p.int("maxItems", high=HIGHEST_MAX_ITEMS) or DEFAULT_MAX_ITEMS,
        parameter_where=p.loc("parameter", value=True),
        size_where=p.loc("sizeParameter", value=True),
    )


def _path(p: Map, key: str) -> str | None:
    """A JSONPath value, its syntax checked where it was written."""
    text = p.str(key)
    if text is None:
        return None
    try:
        compile_path(text)
    except JsonPathError as exc:
        p.bad(key, str(exc))
        return None
    return text


def checked(ctx: Context, consumes: spec.Consumes) -> spec.Consumes:
    """`consumes` once every paginated operation's parameters are known to be declared, without a constant."""
    for resource in consumes.resources:
        for operation in resource.operations:
            paging = operation.pagination
            if paging is None:
                continue
            declared = {p.name: p for p in consumes.input_parameters + resource.input_parameters}
            declared.update((p.name, p) for p in operation.input_parameters)
            for name, where, key in (
                (paging.parameter, paging.parameter_where, "parameter"),
                (paging.size_parameter, paging.size_where, "sizeParameter"),
            ):
                if name is None:
                    continue
                param, where = declared.get(name), where or paging.where
                if param is None:
                    ctx.problem(
                        where,
                        f"pagination '{key}' names '{name}', which is not an inputParameter of "
                        f"{consumes.namespace}.{operation.name}; declare it (e.g. in: query)",
                    )
                elif param.value is not None:
                    ctx.problem(where, f"pagination '{key}' names '{name}', whose 'value' is fixed; remove the value")
    return consumes


__all__ = ["pagination", "checked", "DEFAULT_MAX_PAGES", "DEFAULT_MAX_ITEMS"]
