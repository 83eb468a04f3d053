"""YAML bodies: the first document as JSON types, built from libyaml's events with a budget.

ruamel.yaml's pure-Python reader takes 5 to 15 s for a 1 MB body, and its constructor builds
aliases as shared references, so a 215-byte body of nested aliases decodes to over a million
values and a self-referencing one (`a: &a [1, *a]`) is a cycle no JSON encoder can write. Here
PyYAML's libyaml parser (C) produces the events and this module builds the values itself, without
recursion: every value made is counted against the expansion limit (an alias counts the whole
value it repeats), an alias to a collection still open is refused as a recursive structure, and
nesting is bounded by `MAX_DEPTH`. Scalars resolve as ruamel.yaml resolves them (YAML 1.2 core
schema, 1.1 under a `%YAML 1.1` directive), so the result is what the previous ruamel-based
decoder gave for every document it could read. Timestamps and `!!binary` stay text, and mapping
keys become strings, as they do in JSON.
"""

from __future__ import annotations

import json
import re
import sys
from typing import Any, TypeVar

import yaml as pyyaml
from yaml import events

from .common import MAX_DEPTH, Budget, FormatError, too_deep

_Loader = pyyaml.CBaseLoader if getattr(pyyaml, "__with_libyaml__", False) else pyyaml.BaseLoader

_TAG = "tag:yaml.org,2002:"
_STR, _INT, _FLOAT, _BOOL, _NULL = (_TAG + name for name in ("str", "int", "float", "bool", "null"))
_MERGE, _VALUE, _TIMESTAMP, _BINARY = (_TAG + name for name in ("merge", "value", "timestamp", "binary"))
_SEQ_TAGS = frozenset(_TAG + name for name in ("seq", "omap", "pairs"))
_MAP_TAGS = frozenset(_TAG + name for name in ("map", "set"))
_SCALAR_TAGS = frozenset((_STR, _INT, _FLOAT, _BOOL, _NULL, _TIMESTAMP, _BINARY))


class _Merge:
    """The value of a plain `<<` key: the mapping's merge marker."""


MERGE = _Merge()

# ruamel.yaml's implicit resolvers (resolver.py), by YAML version, tried in this order.
_RULES_12 = (
    (_BOOL, re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$")),
    (
        _FLOAT,
        re.compile(
            r"""^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+]?[0-9]+)?
        |[-+]?(?:[0-9][0-9_]*)(?:[eE][-+]?[0-9]+)
        |[-+]?\.[0-9_]+(?:[eE][-+][0-9]+)?
        |[-+]?\.(?:inf|Inf|INF)
        |\.(?:nan|NaN|NAN))$""",
            re.X,
        ),
    ),
    (
        _INT,
        re.compile(
            r"""^(?:[-+]?0b[0-1_]+
        |[-+]?0o?[0-7_]+
        |[-+]?[0-9_]+
        |[-+]?0x[0-9a-fA-F_]+)$""",
            re.X,
        ),
    ),
)
_RULES_11 = (
    (
        _BOOL,
        re.compile(
            r"""^(?:y|Y|yes|Yes|YES|n|N|no|No|NO|true|True|TRUE|false|False|FALSE
        |on|On|ON|off|Off|OFF)$""",
            re.X,
        ),
    ),
    (
        _FLOAT,
        re.compile(
            r"""^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+]?[0-9]+)?
        |[-+]?(?:[0-9][0-9_]*)(?:[eE][-+]?[0-9]+)
        |\.[0-9_]+(?:[eE][-+][0-9]+)?
        |[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+\.[0-9_]*
        |[-+]?\.(?:inf|Inf|INF)
        |\.(?:nan|NaN|NAN))$""",
            re.X,
        ),
    ),
    (
        _INT,
        re.compile(
            r"""^(?:[-+]?0b[0-1_]+
        |[-+]?0?[0-7_]+
        |[-+]?(?:0|[1-9][0-9_]*)
        |[-+]?0x[0-9a-fA-F_]+
        |[-+]?[1-9][0-9_]*(?::[0-5]?[0-9])+)$""",
            re.X,
        ),
    ),
)
_COMMON_RULES = (
    (_MERGE, re.compile(r"^(?:<<)$")),
    (_NULL, re.compile(r"^(?:~|null|Null|NULL|)$")),
    (
        _TIMESTAMP,
        re.compile(
            r"""^(?:[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]
        |[0-9][0-9][0-9][0-9]-[0-9][0-9]?-[0-9][0-9]?
        (?:[Tt]|[ \t]+)[0-9][0-9]?:[0-9][0-9]:[0-9][0-9](?:\.[0-9]*)?
        (?:[ \t]*(?:Z|[-+][0-9][0-9]?(?::[0-9][0-9])?))?)$""",
            re.X,
        ),
    ),
    (_VALUE, re.compile(r"^(?:=)$")),
)
_FIRST_12 = {_BOOL: "tTfF", _FLOAT: "-+0123456789.", _INT: "-+0123456789"}
_FIRST_11 = {_BOOL: "yYnNtTfFoO", _FLOAT: "-+0123456789.", _INT: "-+0123456789"}
_FIRST_COMMON = {_MERGE: "<", _NULL: "~nN", _TIMESTAMP: "0123456789", _VALUE: "="}


Rules = tuple[tuple[str, re.Pattern[str]], ...]
"""(tag, pattern) pairs, tried in order."""
_Number = TypeVar("_Number", int, float)


def _by_first_char(rules: Rules, first: dict[str, str]) -> dict[str, Rules]:
    table: dict[str, list[tuple[str, re.Pattern[str]]]] = {}
    for tag, pattern in rules + _COMMON_RULES:
        for char in {**first, **_FIRST_COMMON}[tag]:
            table.setdefault(char, []).append((tag, pattern))
    return {char: tuple(entries) for char, entries in table.items()}


_RESOLVERS = {(1, 2): _by_first_char(_RULES_12, _FIRST_12), (1, 1): _by_first_char(_RULES_11, _FIRST_11)}
_BOOLS_12 = {"true": True, "false": False, "yes": True, "no": False, "y": True, "n": False, "on": True, "off": False}


def _resolve(value: str, resolvers: dict[str, Rules]) -> str:
    """The tag of a plain scalar (`str` unless a resolver for its first character matches)."""
    if not value:
        return _NULL
    for tag, pattern in resolvers.get(value[0], ()):
        if pattern.match(value):
            return tag
    return _STR


#: Python writes out no integer of more than `sys.get_int_max_str_digits()` digits (4,300 by default);
#: a hex or binary scalar is not bound by that when read, so it is bounded here by its size in bits.
_MAX_INT_BITS = int((sys.get_int_max_str_digits() or 1_000_000) * 3.32)


def _int(text: str, version: tuple[int, int]) -> int:
    value = _int_value(text, version)
    if value.bit_length() > _MAX_INT_BITS:
        raise ValueError("an integer too large to write out as JSON")
    return value


def _int_value(text: str, version: tuple[int, int]) -> int:
    digits = text.replace("_", "")
    sign = -1 if digits[:1] == "-" else 1
    digits = digits[1:] if digits[:1] in ("-", "+") else digits
    if digits == "0":
        return 0
    if digits.startswith("0b"):
        return sign * int(digits[2:], 2)
    if digits.startswith("0x"):
        return sign * int(digits[2:], 16)
    if digits.startswith("0o"):
        return sign * int(digits[2:], 8)
    if version == (1, 1) and digits[:1] == "0":
        return sign * int(digits, 8)
    if version == (1, 1) and ":" in digits:
        return sign * _sexagesimal(digits, int)
    return sign * int(digits)


def _float(text: str, version: tuple[int, int]) -> float:
    digits = text.replace("_", "").lower()
    sign = -1 if digits[:1] == "-" else 1
    digits = digits[1:] if digits[:1] in ("-", "+") else digits
    if digits == ".inf":
        return sign * float("inf")
    if digits == ".nan":
        return float("nan")
    if version != (1, 2) and ":" in digits:
        return sign * _sexagesimal(digits, float)
    return sign * float(digits)


def _sexagesimal(digits: str, kind: type[_Number]) -> _Number:
    value, base = kind(0), 1
    for part in reversed(digits.split(":")):
        value += kind(part) * base
        base *= 60
    return value


def _json_key(key: Any) -> str:
    if isinstance(key, str):
        return key
    if isinstance(key, bool):
        return "true" if key else "false"
    if key is None:
        return "null"
    return json.dumps(key) if isinstance(key, (list, dict)) else str(key)


class _Collection:
    """An open sequence or mapping: what it holds so far, and how many values that is."""

    __slots__ = ("items", "is_map", "size", "anchor", "merges", "key", "mark")

    def __init__(self, is_map: bool, anchor: str | None, mark: Any) -> None:
        self.items: list[Any] = []
        self.is_map = is_map
        self.size = 1
        self.anchor = anchor
        self.merges: list[dict[str, Any]] | None = None
        self.key: Any = None
        self.mark = mark


def _error(message: str, mark: Any) -> FormatError:
    where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
    return FormatError(f"{message}{where}")


class _Builder:
    """Values from events, with an explicit stack, the budget and the anchors seen so far."""

    def __init__(self, label: str, budget: Budget) -> None:
        self.label = label
        self.budget = budget
        self.stack: list[_Collection] = []
        self.anchors: dict[str, tuple[Any, int] | _Collection] = {}
        self.resolvers = _RESOLVERS[(1, 2)]
        self.version = (1, 2)
        self.result: Any = None

    def fail(self, message: str, mark: Any) -> FormatError:
        return _error(f"{self.label}: {message}", mark)

    def document(self, version: tuple[int, int] | None) -> None:
        self.version = (1, 1) if version is not None and version[0] == 1 and version[1] < 2 else (1, 2)
        self.resolvers = _RESOLVERS[self.version]

    def scalar(self, event: Any) -> None:
        self.budget.spend()
        tag = event.tag
        if tag is None:
            tag = _resolve(event.value, self.resolvers) if event.implicit[0] else _STR
        elif tag == "!":
            tag = _resolve(event.value, self.resolvers) if not event.style else _STR
        if tag == _VALUE and self.at_key():
            value: Any = event.value  # ruamel reads a `=` key as text
        else:
            value = self.construct(tag, event.value, event.start_mark)
        if event.anchor is not None:
            self.anchors[event.anchor] = (value, 1)
        self.add(value, 1, event.start_mark)

    def at_key(self) -> bool:
        parent = self.stack[-1] if self.stack else None
        return parent is not None and parent.is_map and parent.key is None and not len(parent.items) % 2

    def construct(self, tag: str, text: str, mark: Any) -> Any:
        """A scalar of a known tag, as ruamel.yaml's SafeConstructor builds it."""
        try:
            if tag == _STR or tag == _TIMESTAMP:
                return text
            if tag == _INT:
                return _int(text, self.version)
            if tag == _FLOAT:
                return _float(text, self.version)
            if tag == _BOOL:
                return _BOOLS_12[text.lower()]
            if tag == _NULL:
                return None
            if tag == _BINARY:
                return "".join(text.split())
        except (ValueError, KeyError, IndexError):
            raise self.fail(f"cannot read {text[:40]!r} as {tag.rpartition(':')[2]}", mark) from None
        if tag == _MERGE and self.at_key():
            return MERGE
        if tag in _SEQ_TAGS or tag in _MAP_TAGS:
            raise self.fail(f"expected a {'sequence' if tag in _SEQ_TAGS else 'mapping'} node, but found scalar", mark)
        raise self.fail(f"could not determine a constructor for the tag {tag!r}", mark)

    def start(self, event: Any, is_map: bool) -> None:
        tag = event.tag
        if tag is not None and tag != "!":
            wanted = _MAP_TAGS if is_map else _SEQ_TAGS
            if tag not in wanted:
                found = "mapping" if is_map else "sequence"
                if tag in _SCALAR_TAGS:
                    raise self.fail(f"expected a scalar node, but found {found}", event.start_mark)
                if tag in _MAP_TAGS or tag in _SEQ_TAGS:
                    expected = "sequence" if is_map else "mapping"
                    raise self.fail(f"expected a {expected} node, but found {found}", event.start_mark)
                raise self.fail(f"could not determine a constructor for the tag {tag!r}", event.start_mark)
        if len(self.stack) >= MAX_DEPTH:
            raise too_deep(self.label)
        self.budget.spend()
        collection = _Collection(is_map, event.anchor, event.start_mark)
        if event.anchor is not None:
            self.anchors[event.anchor] = collection
        self.stack.append(collection)

    def end(self) -> None:
        collection = self.stack.pop()
        value = self.mapping(collection) if collection.is_map else collection.items
        if collection.anchor is not None and self.anchors.get(collection.anchor) is collection:
            self.anchors[collection.anchor] = (value, collection.size)
        self.add(value, collection.size, collection.mark)

    def mapping(self, collection: _Collection) -> dict[str, Any]:
        """Merged mappings first (the earlier of several wins), then own keys, a repeat keeping its last value."""
        result: dict[str, Any] = {}
        for merged in reversed(collection.merges or ()):
            result.update(merged)
        items = collection.items
        for index in range(0, len(items), 2):
            result[items[index]] = items[index + 1]
        return result

    def alias(self, event: Any) -> None:
        target = self.anchors.get(event.anchor)
        if target is None:
            raise self.fail(f"found undefined alias {event.anchor!r}", event.start_mark)
        if isinstance(target, _Collection):
            raise self.fail(
                f"alias *{event.anchor} refers to a collection that contains it (a recursive "
                "structure cannot be written as JSON)",
                event.start_mark,
            )
        value, size = target
        self.budget.spend(size)
        self.add(value, size, event.start_mark)

    def add(self, value: Any, size: int, mark: Any) -> None:
        if not self.stack:
            self.result = value
            return
        parent = self.stack[-1]
        parent.size += size
        if not parent.is_map or len(parent.items) % 2:
            parent.items.append(value)
        elif parent.key is MERGE:
            parent.key = None
            parent.merges = self.merged(value, mark)
        elif value is MERGE:
            if parent.merges is not None:
                raise self.fail('found duplicate merge key "<<"', mark)
            parent.key = MERGE
        else:
            parent.items.append(_json_key(value))

    def merged(self, value: Any, mark: Any) -> list[dict[str, Any]]:
        """The mappings a `<<` key merges: one mapping, or a sequence of them."""
        if isinstance(value, dict):
            return [value]
        if not isinstance(value, list):
            raise self.fail("expected a mapping or list of mappings for merging, but found scalar", mark)
        for item in value:
            if not isinstance(item, dict):
                raise self.fail(
                    f"expected a mapping for merging, but found {'sequence' if isinstance(item, list) else 'scalar'}",
                    mark,
                )
        return value


def load_yaml(text: str, label: str, budget: Budget) -> Any:
    """The first YAML document of `text` (like Jackson's readTree); None when there is none."""
    builder = _Builder(label, budget)
    loader = _Loader(text)
    try:
        return _build(loader, builder)
    except pyyaml.MarkedYAMLError as exc:
        raise _error(f"{label}: {exc.problem or exc.context}", exc.problem_mark) from None
    except pyyaml.YAMLError as exc:
        reason = getattr(exc, "reason", None)
        position = getattr(exc, "position", None)
        raise FormatError(
            f"{label}: {reason or 'cannot read the document'}"
            + (f" at character {position + 1}" if isinstance(position, int) else "")
        ) from None
    finally:
        loader.dispose()


def _build(loader: Any, builder: _Builder) -> Any:
    get_event = loader.get_event
    scalar, start, end, alias = builder.scalar, builder.start, builder.end, builder.alias
    Scalar, SequenceStart, MappingStart = events.ScalarEvent, events.SequenceStartEvent, events.MappingStartEvent
    SequenceEnd, MappingEnd, Alias = events.SequenceEndEvent, events.MappingEndEvent, events.AliasEvent
    while True:
        event = get_event()
        kind = type(event)
        if kind is Scalar:
            scalar(event)
        elif kind is MappingStart:
            start(event, True)
        elif kind is SequenceStart:
            start(event, False)
        elif kind is MappingEnd or kind is SequenceEnd:
            end()
        elif kind is Alias:
            alias(event)
        elif kind is events.DocumentStartEvent:
            builder.document(event.version)
        elif kind is events.DocumentEndEvent or kind is events.StreamEndEvent:
            return builder.result
