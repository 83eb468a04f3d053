"""Mustache-style templates, compiled once at load.

Capability files write `{{name}}` where `name` may hold dots and dashes (`{{env.API_KEY}}`,
`{{voyage-id}}`), which are not Jinja expressions; so the template is split into literal
text and variable names here, and rendering is a join over that list. The rare template with
Mustache sections (`{{#x}}…{{/x}}`, `{{^x}}…{{/x}}`) is translated into a Jinja2 template,
compiled once as well.

Values render the way the reference engine renders them: missing → "", booleans as
`true`/`false`, lists and objects as compact JSON.
"""

from __future__ import annotations

import json
import re
from typing import Any, Callable, Iterator, Protocol

import jinja2

_TAG = re.compile(r"\{\{\{\s*([^{}]+?)\s*\}\}\}|\{\{\s*([#^/!&]?)\s*([^{}]*?)\s*\}\}|<<\s*([\w.-]+)\s*>>")
_COMMENT = re.compile(r"\{\{!.*?\}\}", re.DOTALL)
_TAG_OR_BRACE = re.compile(_TAG.pattern + r"|\{([A-Za-z_][\w.-]*)\}")

MISSING: Any = object()


class Scope(Protocol):
    def get(self, name: str) -> Any:
        """The value bound to `name`, or MISSING."""
        ...


class MissingValue(LookupError):
    """A strict render found a name with no value."""

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.name = name


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
    """A compiled template: literal strings alternating with variable names."""

    __slots__ = ("source", "parts", "names", "_jinja")

    def __init__(self, source: str, parts: tuple[str, ...], jinja: jinja2.Template | None = None) -> None:
        self.source = source
        self.parts = parts  # even indexes: literal text; odd indexes: variable names
        self.names = tuple(parts[1::2])
        self._jinja = jinja

    @classmethod
    def compile(cls, source: str, *, single_braces: bool = False) -> "Template":
        """Compile `source`; with `single_braces`, `{name}` counts as `{{name}}` (paths)."""
        pattern = _TAG_OR_BRACE if single_braces else _TAG
        text = _COMMENT.sub("", source)
        parts: list[str] = []
        last = 0
        for match in pattern.finditer(text):
            triple, sigil, name, angle = match.group(1, 2, 3, 4)
            if sigil in ("#", "^", "/"):
                return cls(source, (), _compile_sections(text))
            parts.append(text[last:match.start()])
            parts.append(triple or name or angle or (match.group(5) if single_braces else None) or "")
            last = match.end()
        parts.append(text[last:])
        return cls(source, tuple(parts))

    @property
    def is_constant(self) -> bool:
        return self._jinja is None and len(self.parts) == 1

    @property
    def single_name(self) -> str | None:
        """The name when the whole template is one variable, so its value can keep its type."""
        if self._jinja is None and len(self.parts) == 3 and not self.parts[0] and not self.parts[2]:
            return self.parts[1]
        return None

    def render(self, scope: Scope, *, strict: bool = False, encode: Callable[[str], str] | None = None) -> str:
        """Render against `scope`; `strict` raises MissingValue instead of writing ""."""
        if self._jinja is not None:
            return self._jinja.render(_scope=scope)
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


# --- sections, through Jinja2 ----------------------------------------------------------------

_JINJA = jinja2.Environment(autoescape=False, undefined=jinja2.StrictUndefined, keep_trailing_newline=True)


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


def _section_items(scope: Scope, name: str) -> Iterator[Scope]:
    value = scope.get(name)
    if value is MISSING or not value:
        return iter(())
    if isinstance(value, (list, tuple)):
        return (_Frame(item, scope) for item in value)
    return iter((_Frame(value, scope),))


def _is_empty(scope: Scope, name: str) -> bool:
    value = scope.get(name)
    return value is MISSING or not value


_JINJA.globals.update(_v=lambda scope, name: to_text(scope.get(name)), _sec=_section_items, _empty=_is_empty)


def _compile_sections(source: str) -> jinja2.Template:
    out: list[str] = []
    last = 0
    open_sections: list[str] = []
    for match in _TAG.finditer(source):
        triple, sigil, name, angle = match.group(1, 2, 3, 4)
        out.append(_jinja_literal(source[last:match.start()]))
        last = match.end()
        if sigil == "#":
            open_sections.append("for")
            out.append(f"{{% for _scope in _sec(_scope, {name!r}) %}}")
        elif sigil == "^":
            open_sections.append("if")
            out.append(f"{{% if _empty(_scope, {name!r}) %}}")
        elif sigil == "/":
            if not open_sections:
                raise ValueError(f"closing tag {{{{/{name}}}}} has no opening section")
            out.append("{% endfor %}" if open_sections.pop() == "for" else "{% endif %}")
        else:
            out.append(f"{{{{ _v(_scope, {(triple or name or angle)!r}) }}}}")
    if open_sections:
        raise ValueError("a section is opened but never closed")
    out.append(_jinja_literal(source[last:]))
    return _JINJA.from_string("".join(out))


def _jinja_literal(text: str) -> str:
    return "{% raw %}" + text + "{% endraw %}" if text else ""
