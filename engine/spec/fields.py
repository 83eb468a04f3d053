"""Typed access to the YAML mappings of a capability file, recording problems instead of raising.

The builders (`consumed`, `exposed`, `loader`) read every key through a `Map`: its getters check
the type (and choices, ranges) of a value, and on a wrong one record a positioned Problem in the
file's `Context` and return a default, so one pass over a file reports all its problems. The
positions come from the `lc` marks `reading` leaves on mappings and sequences.
"""

from __future__ import annotations

import builtins  # the getters of Map named str, int and bool hide these in its annotations
from pathlib import Path
from urllib.parse import unquote
from typing import Any, TypeVar
from collections.abc import Callable, Iterable

from ..errors import Location, Problem
from .blockyaml import MarkedMap, MarkedSeq

T = TypeVar("T")

IKANOS_SPELLINGS = {"label": "display", "functions": "flows", "targetName": "target"}
"""Keys Ikanos 1.0.0-beta5 renamed: the builders ask for the alpha2 name, an Ikanos file is read under its own."""


class Context:
    """Collects problems and warnings for one file while it is read, in the file's dialect.

    An Ikanos file (`ikanos:` at the root) spells some keys its own way (`IKANOS_SPELLINGS`) and may
    write a list of named entries as a map keyed by the name; only that dialect accepts either, so a
    Naftiko file that says `display:` still gets its unknown-key warning.
    """

    def __init__(self, file: str, dialect: str = "naftiko") -> None:
        self.file = file
        self.dialect = dialect
        self.spellings: dict[str, str] = IKANOS_SPELLINGS if dialect == "ikanos" else {}
        self.problems: list[Problem] = []
        self.warnings: list[str] = []

    def problem(self, where: Location, message: str) -> None:
        self.problems.append(Problem(where, message))

    def warn(self, where: Location, message: str) -> None:
        self.warnings.append(str(Problem(where, message)))


class Map:
    """A YAML mapping being read: typed getters that record problems instead of raising."""

    __slots__ = ("ctx", "data", "path", "_where", "_spellings", "_at")

    def __init__(
        self, ctx: Context, data: dict[str, Any], path: str, where: Location | None, at: tuple[Map, str] | None = None
    ) -> None:
        """`where` is the mapping's place; or None, and `at` (its parent and key) finds it when asked."""
        self.ctx, self.data, self.path, self._where, self._at = ctx, data, path, where, at
        self._spellings = ctx.spellings  # read for every key: one attribute, not two

    @property
    def where(self) -> Location:
        """Where the mapping was written (most nested mappings never need it: found on demand)."""
        where = self._where
        if where is None:
            assert self._at is not None
            parent, key = self._at
            where = self._where = parent.loc(key)
        return where

    def spelled(self, key: str) -> str:
        """`key` as this file's dialect writes it."""
        return self._spellings.get(key, key)

    def loc(self, key: str, *, value: bool = False) -> Location:
        """Where `key` (or, with `value`, its value) was written."""
        if self._spellings:
            key = self._spellings.get(key, key)
        child = f"{self.path}.{key}" if self.path else key
        data = self.data
        try:
            if data.__class__ is MarkedMap:  # the fast reader's: its positions read directly
                key_line, line, col = data.place(key)
                if not value:
                    line, col = key_line, data.column
            else:  # ruamel's CommentedMap; a plain dict has no `lc` and falls back below
                marks = data.lc  # type: ignore[attr-defined]
                line, col = marks.value(key) if value else marks.key(key)
            return Location(self.ctx.file, line + 1, col + 1, child)
        except (KeyError, AttributeError, TypeError):
            return Location(self.ctx.file, self.where.line, self.where.column, child)

    def bad(self, key: str, message: str) -> None:
        key = self._spellings.get(key, key)
        self.ctx.problem(self.loc(key, value=True), message)

    def has(self, key: str) -> bool:
        return (self._spellings.get(key, key) if self._spellings else key) in self.data

    def known(self, *keys: str) -> None:
        """Warn about keys this spec version does not define."""
        spellings = self._spellings
        spelled = {spellings.get(key, key) for key in keys} if spellings else keys
        for key in self.data:
            if key not in spelled:
                self.ctx.warn(self.loc(key), f"unknown key '{key}' is ignored")

    def str(
        self,
        key: str,
        *,
        required: bool = False,
        choices: Iterable[str] = (),
        default: str | None = None,
        hint: str = "",
    ) -> str | None:
        if self._spellings:
            key = self._spellings.get(key, key)
        value = self.data.get(key)
        if value is None:
            if required:
                self.missing(key, hint or "a string")
            return default
        if value.__class__ is builtins.str and (not choices or (choices.__class__ is tuple and value in choices)):
            return value  # most values, and the first thing a 10,000-operation file reads
        if isinstance(value, (dict, list)) or isinstance(value, bool):
            self.bad(key, f"'{key}' must be a string, got {kind_of(value)}")
            return default
        text = str(value)
        options = tuple(choices)
        if options and text not in options:
            self.bad(key, f"'{key}' must be one of {', '.join(options)}; got '{text}'")
            return default
        return text

    def int(self, key: builtins.str, *, required: builtins.bool = False, low: int = 1, high: int = 65535) -> int | None:
        key = self._spellings.get(key, key)
        value = self.data.get(key)
        if value is None:
            if required:
                self.missing(key, f"an integer from {low} to {high}")
            return None
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            self.bad(key, f"'{key}' must be an integer from {low} to {high}; got {_shown(value)}")
            return None
        return value

    def bool(self, key: builtins.str, default: builtins.bool | None = None) -> bool | None:
        if self._spellings:
            key = self._spellings.get(key, key)
        value = self.data.get(key)
        if value is None:
            return default
        if not isinstance(value, bool):
            self.bad(key, f"'{key}' must be true or false; got {_shown(value)}")
            return default
        return value

    def map(self, key: builtins.str, *, required: builtins.bool = False) -> Map | None:
        if self._spellings:
            key = self._spellings.get(key, key)
        value = self.data.get(key)
        if value is None:
            if required:
                self.missing(key, "a mapping")
            return None
        if not isinstance(value, dict):
            self.bad(key, f"'{key}' must be a mapping; got {kind_of(value)}")
            return None
        return Map(self.ctx, value, f"{self.path}.{key}" if self.path else key, None, (self, key))

    def items(
        self, key: builtins.str, build: Callable[[Map], T | None], *, required: builtins.bool = False
    ) -> tuple[T, ...]:
        """Build each mapping of a list with `build`, skipping entries that had problems.

        In an Ikanos file the list may be a map of entries keyed by their `name`.
        """
        if self._spellings:
            key = self._spellings.get(key, key)
        value = self.data.get(key)
        if value is None:
            if required:
                self.missing(key, "a list")
            return ()
        if isinstance(value, dict) and self.ctx.dialect == "ikanos":
            return self._keyed(key, value, build)
        if not isinstance(value, list):
            self.bad(key, f"'{key}' must be a list; got {kind_of(value)}")
            return ()
        built: list[T] = []
        base = f"{self.path}.{key}" if self.path else key
        ctx, file = self.ctx, self.ctx.file
        marks: list[tuple[int, int]] | None = value.at if value.__class__ is MarkedSeq else None
        parent: Location | None = None  # where the list is: only a list without positions needs it
        for index, item in enumerate(value):
            if marks is not None:  # the fast reader's positions, read directly
                line, col = marks[index]
                where = Location(file, line + 1, col + 1, f"{base}[{index}]")
            else:
                parent = parent or self.loc(key)
                where = item_loc(file, value, index, f"{base}[{index}]", parent)
            if not isinstance(item, dict):
                ctx.problem(where, f"each entry of '{key}' must be a mapping; got {kind_of(item)}")
                continue
            result = build(Map(ctx, item, where.path, where))
            if result is not None:
                built.append(result)
        return tuple(built)

    def _keyed(self, key: builtins.str, value: dict[Any, Any], build: Callable[[Map], T | None]) -> tuple[T, ...]:
        """An Ikanos keyed map (`tools: {search: {...}}`): each entry built as a list item named by its key."""
        built: list[T] = []
        parent = self.loc(key)
        for name, item in value.items():
            where = value_loc(self.ctx.file, value, name, parent)
            if not isinstance(item, dict):
                self.ctx.problem(where, f"each entry of '{key}' must be a mapping; got {kind_of(item)}")
                continue
            if "name" in item and str(item["name"]) != str(name):
                self.ctx.problem(where, f"entry '{name}' of '{key}' names itself '{item['name']}'; drop its 'name'")
                continue
            item.setdefault("name", str(name))  # positions of `name` fall back to the entry's own
            result = build(Map(self.ctx, item, where.path, where))
            if result is not None:
                built.append(result)
        return tuple(built)

    def plain(self, key: builtins.str, default: Any = None) -> Any:
        if self._spellings:
            key = self._spellings.get(key, key)
        return plain(self.data[key]) if key in self.data else default

    def missing(self, key: builtins.str, what: builtins.str) -> None:
        """Record that the required `key` (`what` it should be) is not there."""
        key = self._spellings.get(key, key)
        self.ctx.problem(
            Location(self.ctx.file, self.where.line, self.where.column, f"{self.path}.{key}" if self.path else key),
            f"missing required key '{key}' ({what})",
        )


def item_loc(file: str, seq: Any, index: int, path: str, fallback: Location) -> Location:
    """Where item `index` of a sequence was written (`fallback`'s place when it has no marks)."""
    try:
        line, col = seq.lc.item(index)
        return Location(file, line + 1, col + 1, path)
    except (KeyError, AttributeError, TypeError):
        return Location(file, fallback.line, fallback.column, path)


def value_loc(file: str, mapping: Any, key: Any, parent: Location) -> Location:
    """Where the value of `key` in a mapping was written (`parent`'s place when it has no marks)."""
    path = f"{parent.path}.{key}" if parent.path else str(key)
    try:
        line, col = mapping.lc.value(key)
        return Location(file, line + 1, col + 1, path)
    except (KeyError, AttributeError, TypeError):
        return Location(file, parent.line, parent.column, path)


def strings(m: Map, key: str) -> tuple[str, ...]:
    """A list of strings (a lone string counts as one); anything else is a problem."""
    value = m.data.get(key)
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,)
    if isinstance(value, list) and all(
        isinstance(item, (str, int, float)) and not isinstance(item, bool) for item in value
    ):
        return tuple(str(item) for item in value)
    m.bad(key, f"'{key}' must be a list of strings; got {kind_of(value)}")
    return ()


def is_required(m: Map, default: bool) -> bool:
    """`required: true|false`; the reference serializer also writes JSON Schema's list of required
    child properties here, which says nothing about the parameter itself."""
    if isinstance(m.data.get("required"), list):
        return default
    return bool(m.bool("required", default))


def file_location(location: str | None, file: str) -> str | None:
    """A `file://` location made absolute: relative paths are read next to the capability file."""
    if location is None or not location.startswith("file://"):
        return location
    raw = unquote(location[len("file://") :])
    if raw.startswith("/./"):
        raw = raw[1:]
    path = Path(raw)
    return "file://" + str(path if path.is_absolute() else (Path(file).parent / path).resolve())


def kind_of(value: Any) -> str:
    """A value as a problem message names it: `a mapping`, `the boolean true`, `int 7`."""
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, bool):
        return f"the boolean {str(value).lower()}"
    return f"{type(value).__name__} {_shown(value)}"


def _shown(value: Any, limit: int = 80) -> str:
    """`repr(value)`, cut short: a problem message quotes the value, not a whole 10 MB string."""
    text = repr(value)
    return text if len(text) <= limit else f"{text[: limit - 5]}...{text[-2:]}"


def plain(value: Any) -> Any:
    """ruamel's commented containers → plain dicts and lists."""
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain(v) for v in value]
    return value
