"""Mustache-style templates, compiled once at load.

Capability files write `{{name}}` where `name` may hold dots and dashes (`{{env.API_KEY}}`,
`{{voyage-id}}`), which are not expressions of any template language; so the template is
split into literal text and variable names here, and rendering is a join over that list.
The rare template with Mustache sections (`{{#x}}…{{/x}}`, `{{^x}}…{{/x}}`) becomes a small
tree of literal text, variables and sections, rendered by a short recursive walk: capability
text is only ever data, never code of another engine (it used to be translated into Jinja2,
where literal `{% … %}` in a file could run).

A template that is not valid (an unclosed, unopened or mismatched section) raises
`TemplateError` when it is compiled, so the loader can point at it. Bounds: sections nest at
most `MAX_SECTION_DEPTH` deep (checked when compiling), and one render expands at most
`MAX_SECTION_ITEMS` section bodies (a caller's list of a million items, or sections nested
over the same list, cannot make one render run away; past it the call is a RequestError).

Values render the way the reference engine renders them: missing → "", booleans as
`true`/`false`, lists and objects as compact JSON.
"""

from __future__ import annotations

import json
import re
from typing import Any, Protocol
from collections.abc import Callable

from .errors import MissingValue as MissingValue  # raised here, defined in errors.py
from .errors import RequestError
from .errors import TemplateError as TemplateError  # raised here, defined in errors.py

_TAG = re.compile(r"\{\{\{\s*([^{}]+?)\s*\}\}\}|\{\{\s*([#^/!&]?)\s*([^{}]*?)\s*\}\}|<<\s*([\w.-]+)\s*>>")
_COMMENT = re.compile(r"\{\{!.*?\}\}", re.DOTALL)
_TAG_OR_BRACE = re.compile(_TAG.pattern + r"|\{([A-Za-z_][\w.-]*)\}")

MAX_SECTION_DEPTH = 32
MAX_SECTION_ITEMS = 100_000

MISSING: Any = object()


class Scope(Protocol):
    def get(self, name: str) -> Any:
        """The value bound to `name`, or MISSING."""
        ...


def to_text(value: Any) -> str:
    if value is None or value is MISSING:
        return ""
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, str):
        return value
    if isinstance(value, (list, tuple, dict)):
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    return str(value)


class Template:
    """A compiled template: literal strings alternating with variable names, or a section tree."""

    __slots__ = ("source", "parts", "names", "_tree")

    def __init__(self, source: str, parts: tuple[str, ...], tree: tuple[_Node, ...] | None = None) -> None:
        self.source = source
        self.parts = parts  # even indexes: literal text; odd indexes: variable names
        self.names = tuple(parts[1::2])
        self._tree = tree

    @classmethod
    def compile(cls, source: str, *, single_braces: bool = False) -> Template:
        """Compile `source`; with `single_braces`, `{name}` counts as `{{name}}` (paths).

        Raises TemplateError for a section that is unclosed, unopened or closed by another
        name, and for sections in a path (each path value is encoded on its own).
        """
        pattern = _TAG_OR_BRACE if single_braces else _TAG
        text = _COMMENT.sub("", source)
        parts: list[str] = []
        last = 0
        for match in pattern.finditer(text):
            triple, sigil, name, angle = match.group(1, 2, 3, 4)
            if sigil in ("#", "^", "/"):
                if single_braces:
                    raise TemplateError(
                        f"a path cannot hold Mustache sections ('{match.group(0)}'): each path"
                        " value is encoded as one segment"
                    )
                tree = _parse_sections(text)
                return cls(source, (), tree)
            parts.append(text[last : match.start()])
            parts.append(triple or name or angle or (match.group(5) if single_braces else None) or "")
            last = match.end()
        parts.append(text[last:])
        return cls(source, tuple(parts))

    @property
    def is_constant(self) -> bool:
        return self._tree is None and len(self.parts) == 1

    @property
    def single_name(self) -> str | None:
        """The name when the whole template is one variable, so its value can keep its type."""
        if self._tree is None and len(self.parts) == 3 and not self.parts[0] and not self.parts[2]:
            return self.parts[1]
        return None

    def render(self, scope: Scope, *, strict: bool = False, encode: Callable[[str], str] | None = None) -> str:
        """Render against `scope`; `strict` raises MissingValue instead of writing ""."""
        if self._tree is not None:
            out: list[str] = []
            _render(self._tree, scope, out, [MAX_SECTION_ITEMS])
            return "".join(out)
        parts = self.parts
        if len(parts) == 1:
            return parts[0]
        out = [parts[0]]
        for index in range(1, len(parts), 2):
            value = scope.get(parts[index])
            if value is MISSING and strict:
                raise MissingValue(parts[index])
            text = to_text(value)
            out.append(encode(text) if encode else text)
            out.append(parts[index + 1])
        return "".join(out)

    def evaluate(self, scope: Scope) -> Any:
        """Like render, but a lone `{{name}}` gives the bound value itself (or MISSING)."""
        name = self.single_name
        return scope.get(name) if name is not None else self.render(scope)

    def __repr__(self) -> str:
        return f"Template({self.source!r})"


def check(source: str) -> None:
    """Raise TemplateError if `source` is not a valid template (cheap for text with no tags)."""
    if "{{" in source:
        Template.compile(source)


# --- sections ---------------------------------------------------------------------------------


class _Var:
    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name


class _Section:
    """`{{#name}}…{{/name}}` (each item of a list, or once for a truthy value) or, inverted, `{{^name}}`."""

    __slots__ = ("name", "inverted", "body")

    def __init__(self, name: str, inverted: bool, body: tuple[_Node, ...]) -> None:
        self.name, self.inverted, self.body = name, inverted, body


_Node = str | _Var | _Section


def _parse_sections(text: str) -> tuple[_Node, ...]:
    """The template as a tree; every tag is checked, so a broken one fails here, not per call."""
    root: list[_Node] = []
    stack: list[tuple[str, bool, int, list[_Node]]] = []  # (name, inverted, offset, parent's nodes)
    nodes = root
    last = 0
    for match in _TAG.finditer(text):
        triple, sigil, name, angle = match.group(1, 2, 3, 4)
        if match.start() > last:
            nodes.append(text[last : match.start()])
        last = match.end()
        if sigil in ("#", "^"):
            if not name:
                raise TemplateError(f"'{match.group(0)}' at character {match.start() + 1} needs a section name")
            if len(stack) >= MAX_SECTION_DEPTH:
                raise TemplateError(f"sections are nested more than {MAX_SECTION_DEPTH} deep")
            stack.append((name, sigil == "^", match.start(), nodes))
            nodes = []
        elif sigil == "/":
            if not stack:
                raise TemplateError(
                    f"'{match.group(0)}' at character {match.start() + 1} closes a section that was never opened"
                )
            opened, inverted, offset, parent = stack.pop()
            if name != opened:
                raise TemplateError(
                    f"'{match.group(0)}' at character {match.start() + 1} closes"
                    f" '{{{{{'^' if inverted else '#'}{opened}}}}}' (opened at character"
                    f" {offset + 1}); write '{{{{/{opened}}}}}'"
                )
            parent.append(_Section(opened, inverted, tuple(nodes)))
            nodes = parent
        else:
            nodes.append(_Var(triple or name or angle or ""))
    if stack:
        opened, inverted, offset, _ = stack[-1]
        raise TemplateError(
            f"'{{{{{'^' if inverted else '#'}{opened}}}}}' at character {offset + 1} is never"
            f" closed; add '{{{{/{opened}}}}}'"
        )
    if last < len(text):
        nodes.append(text[last:])
    return tuple(root)


class _Frame:
    """Mustache context stack: names resolve in the innermost section value first."""

    __slots__ = ("value", "parent")

    def __init__(self, value: Any, parent: Scope) -> None:
        self.value, self.parent = value, parent

    def get(self, name: str) -> Any:
        if name == ".":
            return self.value
        if isinstance(self.value, dict) and name in self.value:
            return self.value[name]
        return self.parent.get(name)


def _render(nodes: tuple[_Node, ...], scope: Scope, out: list[str], budget: list[int]) -> None:
    for node in nodes:
        if node.__class__ is str:
            out.append(node)
        elif node.__class__ is _Var:
            out.append(to_text(scope.get(node.name)))
        else:
            _render_section(node, scope, out, budget)  # type: ignore[arg-type]


def _render_section(section: _Section, scope: Scope, out: list[str], budget: list[int]) -> None:
    value = scope.get(section.name)
    empty = value is MISSING or not value
    if section.inverted:
        if empty:
            _render(section.body, scope, out, budget)
        return
    if empty:
        return
    items = value if isinstance(value, (list, tuple)) else (value,)
    budget[0] -= len(items)
    if budget[0] < 0:
        raise RequestError(f"a template section would render more than {MAX_SECTION_ITEMS} items")
    for item in items:
        _render(section.body, _Frame(item, scope), out, budget)
