"""Path routing in time that does not grow with the number of routes.

Routes are stored in a tree of path segments; matching walks one node per segment,
preferring a literal segment over a variable one. `{name}` and `{{name}}` are variables
(names may hold `-`, `.`, `_`); a final `{path}` takes the rest of the path, as forward
resources need. Trailing slashes are ignored.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Generic, TypeVar

T = TypeVar("T")

_VARIABLE = re.compile(r"^\{\{?\s*([A-Za-z_][\w.-]*)\s*\}?\}$")
GREEDY = "path"


@dataclass
class _Node(Generic[T]):
    literals: dict[str, "_Node[T]"] = field(default_factory=dict)
    variable: "_Node[T] | None" = None
    variable_name: str = ""
    greedy: "tuple[str, T] | None" = None
    target: T | None = None


def split(path: str) -> list[str]:
    return [segment for segment in path.strip("/").split("/") if segment]


class Router(Generic[T]):
    def __init__(self) -> None:
        self._root: _Node[T] = _Node()

    def add(self, template: str, target: T) -> T:
        """Add a route; adding the same template again returns the target already there."""
        node = self._root
        segments = split(template)
        for index, segment in enumerate(segments):
            match = _VARIABLE.match(segment)
            if match is None:
                node = node.literals.setdefault(segment, _Node())
                continue
            name = match.group(1)
            if name == GREEDY and index == len(segments) - 1:
                if node.greedy is None:
                    node.greedy = (name, target)
                return node.greedy[1]
            if node.variable is None:
                node.variable, node.variable_name = _Node(), name
            elif node.variable_name != name:
                raise ValueError(f"'{template}' names a path variable '{name}' where another route uses"
                                 f" '{node.variable_name}'")
            node = node.variable
        if node.target is None:
            node.target = target
        return node.target

    def match(self, segments: list[str]) -> tuple[T, dict[str, str]] | None:
        """Match already split (and percent-decoded) path segments."""
        params: dict[str, str] = {}
        target = self._walk(self._root, segments, 0, params)
        return (target, params) if target is not None else None

    def _walk(self, node: _Node[T], segments: list[str], index: int, params: dict[str, str]) -> T | None:
        if index == len(segments):
            return node.target
        segment = segments[index]
        child = node.literals.get(segment)
        if child is not None:
            found = self._walk(child, segments, index + 1, params)
            if found is not None:
                return found
        if node.variable is not None:
            params[node.variable_name] = segment
            found = self._walk(node.variable, segments, index + 1, params)
            if found is not None:
                return found
            del params[node.variable_name]
        if node.greedy is not None:
            name, target = node.greedy
            params[name] = "/".join(segments[index:])
            return target
        return None
