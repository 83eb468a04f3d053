"""The parameter map of one call, and the `with` rules that fill it.

Names match loosely on purpose: `project-id` and `project_id` are the same name, and a
caller reference such as `rest.limit`, `tools.limit`, `mcp.limit` or `<exposes ns>.limit`
means "the caller's parameter `limit`". Bindings are looked up first so no caller input can
stand in for a secret.
"""

from __future__ import annotations

import os
from typing import Any
from collections.abc import Iterable, Mapping, Sequence

from ..errors import CapabilityError, Location
from ..templates import MISSING, Template, TemplateError

CALLER_PREFIXES = frozenset({"rest", "tools", "mcp"})


def canonical(name: str) -> str:
    return name.replace("-", "_")


def with_aliases(values: Mapping[str, Any]) -> dict[str, Any]:
    """A copy where every dashed name is also present in its underscore form."""
    result = dict(values)
    for key, value in values.items():
        if "-" in key:
            result.setdefault(canonical(key), value)
    return result


class Scope:
    """Name lookup for templates: bindings, then resolved values, then the caller's params."""

    __slots__ = ("bindings", "params", "prefixes")

    def __init__(self, bindings: Mapping[str, str], params: Mapping[str, Any], prefixes: frozenset[str]) -> None:
        self.bindings = bindings
        self.params = params
        self.prefixes = prefixes

    def get(self, name: str) -> Any:
        value = self.bindings.get(name, MISSING)
        if value is not MISSING:
            return value
        value = lookup(self.params, name)
        if value is not MISSING:
            return value
        head, dot, rest = name.partition(".")
        if dot:
            if head in self.prefixes:
                return lookup(self.params, rest)
            if head == "env":
                return os.environ.get(rest, MISSING)
            parent = lookup(self.params, head)
            return walk(parent, rest.split(".")) if parent is not MISSING else MISSING
        return MISSING


def lookup(params: Mapping[str, Any], name: str) -> Any:
    value = params.get(name, MISSING)
    if value is MISSING and "-" in name:
        value = params.get(canonical(name), MISSING)
    return value


def walk(value: Any, keys: Sequence[str]) -> Any:
    """Follow dict keys; MISSING as soon as one is absent."""
    for key in keys:
        if not isinstance(value, dict) or key not in value:
            return MISSING
        value = value[key]
    return value


class WithRules:
    """A compiled `with` block: each entry is a caller reference, a template or a literal."""

    __slots__ = ("refs", "templates", "literals")

    def __init__(
        self, with_: Mapping[str, Any], prefixes: Iterable[str], where: Location | None = None, under: str = ""
    ) -> None:
        """`where` is the `with` block's position, for the (rare) template the loader did not check;
        or, with `under`, the position of the entry holding the block under that key (the block's own
        place is then made only for a problem: 20,000 calls at load make none)."""
        if isinstance(prefixes, frozenset) and CALLER_PREFIXES <= prefixes:
            known = prefixes  # the runtime's, which holds them already: no new set for each of 20,000 calls
        else:
            known = CALLER_PREFIXES | frozenset(prefixes)
        self.refs: list[tuple[str, str]] = []
        self.templates: list[tuple[str, Template]] = []
        self.literals: list[tuple[str, Any]] = []
        for name, value in with_.items():
            if isinstance(value, str):
                head, dot, rest = value.partition(".")
                if dot and head in known and rest and " " not in value:
                    self.refs.append((name, rest))
                    continue
                if "{{" in value or "<<" in value:
                    try:
                        self.templates.append((name, Template.compile(value)))
                    except TemplateError as exc:
                        at = (where.key(under) if under else where) if where else Location("with")
                        raise CapabilityError.at(at.key(name), f"invalid template: {exc}") from None
                    continue
            self.literals.append((name, value))

    def apply(self, params: dict[str, Any], scope: Scope) -> dict[str, Any]:
        """The call's parameters: the caller's, overlaid with what `with` says."""
        result = dict(params)
        for key, source in self.refs:
            value = lookup(params, source)
            if value is not MISSING:
                result[key] = value
        for key, template in self.templates:
            value = template.evaluate(scope)
            if value is not MISSING:
                result[key] = value
        for key, value in self.literals:
            result[key] = value
        return result

    def references(self) -> dict[str, str]:
        """`with` key → the caller parameter it reads (for building MCP input schemas)."""
        return dict(self.refs)
