"""Candidate capability-file reader measured by bench/yaml_readers.py (issue 13): libyaml's events
(PyYAML's C parser) built into mappings and sequences that remember the position of every key,
value and item as ruamel's `lc` does, without recursion, plain scalars resolved with ruamel's
YAML 1.2 rules (from engine/formats/yaml.py). Not used by the engine: the differential test found
texts libyaml accepts and ruamel refuses, and positions of empty values that differ (see the
README's design notes), so the loader keeps blockyaml. Kept here so the figures can be re-measured.
"""

from __future__ import annotations

import gc
import re
from typing import Any

import yaml as pyyaml
from yaml import events

from naftiko.engine.spec.blockyaml import DEFAULT_MAX_DEPTH, Position, Unsupported
from naftiko.engine.formats.yaml import (
    _BOOL,
    _FLOAT,
    _INT,
    _NULL,
    _RESOLVERS,
    _STR,
    _float,
    _int,
)

_Loader = pyyaml.CBaseLoader if getattr(pyyaml, "__with_libyaml__", False) else pyyaml.BaseLoader
_RESOLVE = _RESOLVERS[(1, 2)]
# Characters libyaml and ruamel read differently or only one of them accepts: tabs, lone CR, NEL, LS,
# PS, C0/C1 controls, DEL, surrogates, byte order marks, U+FFFE/U+FFFF; and a comment right after a
# block scalar's header (`|#x`), which libyaml accepts and ruamel refuses. Such texts go to ruamel.
_ASCII_OK = bytes([10, *range(0x20, 0x7F)])
_STRANGE = re.compile("[^\n\x20-\x7e\xa0-\u2027\u202a-\ud7ff\ue000-\ufefe\uff00-\ufffd\U00010000-\U0010ffff]")
_HEADER_COMMENT = re.compile(r"[|>][-+0-9]*#")


class _MapMarks:
    """ruamel-compatible position lookups of a mapping: libyaml's marks, read only when asked."""

    __slots__ = ("keys", "values")

    def __init__(self) -> None:
        self.keys: dict[Any, Any] = {}
        self.values: dict[Any, Any] = {}

    def key(self, key: Any) -> Position:
        mark = self.keys[key]
        return mark.line, mark.column

    def value(self, key: Any) -> Position:
        mark = self.values[key]
        return mark.line, mark.column


class _SeqMarks:
    """ruamel-compatible position lookups of a sequence."""

    __slots__ = ("items",)

    def __init__(self) -> None:
        self.items: list[Any] = []

    def item(self, index: int) -> Position:
        mark = self.items[index]
        return mark.line, mark.column


class MarkedMap(dict):
    """A mapping that remembers where each key and value was written."""

    __slots__ = ("lc",)


class MarkedSeq(list):
    """A sequence that remembers where each item was written."""

    __slots__ = ("lc",)


def _unsupported(reason: str, mark: Any) -> Unsupported:
    return Unsupported(reason, mark.line, mark.column) if mark is not None else Unsupported(reason)


def _scalar(event: Any, number_length: int) -> Any:
    """A scalar as ruamel's round-trip constructor builds it, or Unsupported."""
    text = event.value
    if event.tag is not None or event.anchor is not None:
        raise _unsupported("a tag or an anchor", event.start_mark)
    if not event.implicit[0]:
        return text  # quoted or block: text as written
    if not text:
        return None
    tag = _STR
    for rule, pattern in _RESOLVE.get(text[0], ()):
        if pattern.match(text):
            tag = rule
            break
    if tag == _STR:
        return text
    if tag == _NULL:
        return None
    if tag == _BOOL:
        return text[0] in "tT"
    if tag == _INT or tag == _FLOAT:
        if len(text) > number_length:
            raise _unsupported("a long number", event.start_mark)
        try:
            return _int(text, (1, 2)) if tag == _INT else _float(text, (1, 2))
        except ValueError:
            raise _unsupported(f"cannot read {text[:40]!r} as a number", event.start_mark) from None
    raise _unsupported(f"a {tag.rpartition(':')[2]} scalar", event.start_mark)


def _build(loader: Any, max_depth: int, number_length: int) -> Any:
    """The single document's value; mappings and sequences with their marks."""
    get_event = loader.get_event
    Scalar, MappingStart, SequenceStart = events.ScalarEvent, events.MappingStartEvent, events.SequenceStartEvent
    MappingEnd, SequenceEnd = events.MappingEndEvent, events.SequenceEndEvent
    pending: Any = None  # the value marks of an empty mapping value, which ruamel puts at the next token
    stack: list[Any] = []  # open collections: [container, marks, pending key, pending key mark]
    result: Any = None
    documents = 0
    while True:
        event = get_event()
        kind = type(event)
        if pending is not None:
            pending[0][pending[1]] = event.start_mark
            pending = None
        if kind is Scalar:
            value: Any = _scalar(event, number_length)
            mark = event.start_mark
        elif kind is MappingStart or kind is SequenceStart:
            if event.tag is not None or event.anchor is not None:
                raise _unsupported("a tag or an anchor", event.start_mark)
            if len(stack) >= max_depth:
                raise _unsupported("nested too deep", event.start_mark)
            if kind is MappingStart:
                marks: Any = _MapMarks()
                container: Any = MarkedMap()
            else:
                marks = _SeqMarks()
                container = MarkedSeq()
            container.lc = marks
            stack.append([container, marks, _NO_KEY, None, event.start_mark])
            continue
        elif kind is MappingEnd or kind is SequenceEnd:
            entry = stack.pop()
            value, mark = entry[0], entry[4]
        elif kind is events.DocumentStartEvent:
            documents += 1
            if documents > 1 or event.version is not None or event.tags:
                raise _unsupported("a directive or a second document", event.start_mark)
            continue
        elif kind is events.StreamEndEvent:
            return result
        elif kind is events.AliasEvent:
            raise _unsupported("an alias", event.start_mark)
        else:
            continue
        if not stack:
            result = value
            continue
        top = stack[-1]
        container = top[0]
        if type(container) is MarkedSeq:
            container.append(value)
            top[1].items.append(mark)
        elif top[2] is _NO_KEY:
            if kind is not Scalar:
                raise _unsupported("a mapping or sequence as a key", event.start_mark)
            if value in container or value in top[1].keys:
                raise _unsupported("a duplicate key", event.start_mark)
            top[2], top[3] = value, mark
        else:
            key = top[2]
            container[key] = value
            top[1].keys[key] = top[3]
            top[1].values[key] = mark
            top[2] = _NO_KEY
            if value is None and kind is Scalar and not event.value and not event.style:
                pending = (top[1].values, key)


_NO_KEY = object()


def _check_characters(text: str) -> None:
    """Unsupported at the first character (or block header comment) that libyaml and ruamel read differently."""
    if text.isascii():
        found = _STRANGE.search(text) if text.encode("ascii").translate(None, _ASCII_OK) else None
    else:
        found = _STRANGE.search(text)
    found = found or _HEADER_COMMENT.search(text)
    if found is not None:
        at = found.start()
        line_start = text.rfind("\n", 0, at) + 1
        raise Unsupported(f"{text[at]!r} at character {at}", text.count("\n", 0, at), at - line_start)


def load(text: str, *, max_depth: int = DEFAULT_MAX_DEPTH, number_length: int = 1000) -> Any:
    """Parse `text`, or raise Unsupported when libyaml refuses it or it needs ruamel to build."""
    if "\r" in text:
        text = text.replace("\r\n", "\n")  # the same lines and columns; a lone CR is left to ruamel
    _check_characters(text)
    loader = _Loader(text)
    enabled = gc.isenabled()
    gc.disable()  # building many small containers: the cycle collector would only slow it down
    try:
        return _build(loader, max_depth, number_length)
    except pyyaml.MarkedYAMLError as exc:
        raise _unsupported(f"{exc.problem or exc.context}", exc.problem_mark or exc.context_mark) from None
    except pyyaml.YAMLError as exc:
        raise Unsupported(str(getattr(exc, "reason", None) or exc)) from None
    finally:
        loader.dispose()
        if enabled:
            gc.enable()
