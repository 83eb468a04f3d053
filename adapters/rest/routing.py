"""Path routing in time that does not grow with the number of routes.

Routes are stored in a tree of path segments; matching walks one node per segment,
preferring a literal segment over a variable one. `{name}` and `{{name}}` are variables
(names may hold `-`, `.`, `_`); a final `{path}` takes the rest of the path, as forward
resources need. Trailing slashes are ignored.

A variable node is shared by every route that has a variable at that place, whatever its
name (`/a/{id}` and `/a/{key}/b`): values are collected by position while walking, and the
route that matched names them, so each route sees its own variable names. Routes of the same
shape (`/a/{id}` and `/a/{key}`) end at one target, which then sees the value under each name.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Generic, TypeVar

from ...engine import GREEDY_VARIABLE, PATH_VARIABLE, path_segments

T = TypeVar("T")

GREEDY = GREEDY_VARIABLE
split = path_segments


@dataclass(slots=True)
class _End(Generic[T]):
    """Where routes end: the target, the names the walk binds (those of the first route through
    each variable node), and the names of every route ending here when they differ."""

    target: T
    walked: tuple[str, ...]
    names: tuple[tuple[str, ...], ...] = ()  # route names that differ from `walked`
    binds_walked: bool = False  # whether a route ending here has exactly the walked names

    def add_names(self, names: tuple[str, ...]) -> None:
        if names == self.walked:
            self.binds_walked = True
        elif names not in self.names:
            self.names += (names,)

    def rename(self, params: dict[str, str]) -> dict[str, str]:
        """The walk's values under each route's own names (only needed when they differ)."""
        values = [params[name] for name in self.walked]
        renamed = dict(params) if self.binds_walked else {}
        for names in self.names:
            renamed.update(zip(names, values, strict=True))  # routes of one shape
        return renamed


@dataclass(slots=True)
class _Node(Generic[T]):
    literals: dict[str, _Node[T]] = field(default_factory=dict)
    variable: _Node[T] | None = None
    variable_name: str = ""
    greedy: _End[T] | None = None
    end: _End[T] | None = None


class Router(Generic[T]):
    def __init__(self) -> None:
        self._root: _Node[T] = _Node()

    def add(self, template: str, target: T) -> T:
        """Add a route; a route of a shape already there returns the target already there."""
        node = self._root
        segments = split(template)
        names: list[str] = []
        walked: list[str] = []
        for index, segment in enumerate(segments):
            match = PATH_VARIABLE.match(segment) if "{" in segment else None  # most segments are literal
            if match is None:
                child = node.literals.get(segment)
                if child is None:  # a node only for a new segment, not one made and dropped per route
                    child = node.literals[segment] = _Node()
                node = child
                continue
            names.append(match.group(1))
            if names[-1] == GREEDY and index == len(segments) - 1:
                node.greedy = _end(node.greedy, target, tuple(walked + [GREEDY]), tuple(names))
                return node.greedy.target
            if node.variable is None:
                node.variable, node.variable_name = _Node(), names[-1]
            walked.append(node.variable_name)
            node = node.variable
        node.end = _end(node.end, target, tuple(walked), tuple(names))
        return node.end.target

    def match(self, segments: list[str]) -> tuple[T, dict[str, str]] | None:
        """Match already split (and percent-decoded) path segments."""
        params: dict[str, str] = {}
        end = self._walk(self._root, segments, 0, params)
        if end is None:
            return None
        return end.target, (end.rename(params) if end.names else params)

    def _walk(self, node: _Node[T], segments: list[str], index: int, params: dict[str, str]) -> _End[T] | None:
        if index == len(segments):
            return node.end
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
            params[GREEDY] = "/".join(segments[index:])
            return node.greedy
        return None


def _end(end: _End[T] | None, target: T, walked: tuple[str, ...], names: tuple[str, ...]) -> _End[T]:
    if end is None:
        end = _End(target, walked)
    end.add_names(names)
    return end
