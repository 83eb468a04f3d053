"""XML bodies: the root element's content, shaped as Jackson's `XmlMapper.readTree` shapes it.

expat reads the document in one linear pass; the callbacks here build the tree with an explicit
stack, count every value against the expansion limit and refuse nesting deeper than `MAX_DEPTH`.
Entity declarations are refused (they only serve entity-expansion attacks in API payloads).
"""

from __future__ import annotations

import codecs
from typing import Any
from xml.parsers import expat

from .common import MAX_DEPTH, Budget, FormatError, too_deep


class _XmlElement:
    """One open element: its fields so far and text not yet placed."""

    __slots__ = ("fields", "text")

    def __init__(self) -> None:
        self.fields: dict[str, Any] = {}
        self.text: list[str] = []

    def flush_text(self) -> None:
        joined = "".join(self.text)
        if joined.strip():
            _put(self.fields, "", joined)
        self.text.clear()

    def value(self) -> Any:
        if not self.fields:
            text = "".join(self.text)
            return text if text.strip() else ""  # a pretty-printed empty element is empty
        self.flush_text()
        return self.fields


def _put(fields: dict[str, Any], key: str, value: Any) -> None:
    """Add a field; a repeated name turns into an array (XML values are never lists otherwise)."""
    if key not in fields:
        fields[key] = value
    elif isinstance(fields[key], list):
        fields[key].append(value)
    else:
        fields[key] = [fields[key], value]


def _local(name: str) -> str:
    return name.rpartition(" ")[2]


class _XmlTreeBuilder:
    """expat callbacks that build the Jackson-shaped tree with an explicit stack (no recursion)."""

    def __init__(self, budget: Budget) -> None:
        self.stack: list[_XmlElement] = []
        self.result: Any = None
        self.budget = budget

    def start(self, name: str, attributes: dict[str, str]) -> None:
        if len(self.stack) >= MAX_DEPTH:
            raise too_deep("xml")
        self.budget.spend(1 + len(attributes))
        if self.stack:
            self.stack[-1].flush_text()  # text before a child is mixed content
        element = _XmlElement()
        for key, value in attributes.items():
            _put(element.fields, _local(key), value)
        self.stack.append(element)

    def end(self, name: str) -> None:
        value = self.stack.pop().value()
        if self.stack:
            _put(self.stack[-1].fields, _local(name), value)
        else:
            self.result = {} if value == "" else value

    def data(self, text: str) -> None:
        if self.stack:
            self.budget.spend()
            self.stack[-1].text.append(text)


_EXPAT_CHARSETS = {"utf-8": "UTF-8", "utf-16": "UTF-16", "iso8859-1": "ISO-8859-1", "ascii": "US-ASCII"}


def _refuse_entities(*_: Any) -> None:
    raise FormatError("xml: entity declarations are not allowed")


def decode_xml(budget: Budget, body: bytes | str, encoding: str | None = None) -> Any:
    if not body.strip():
        return None
    if isinstance(body, bytes) and encoding:
        try:
            encoding = codecs.lookup(encoding).name  # expat only knows a few names itself
        except LookupError:
            raise FormatError(f"unknown response charset {encoding!r}") from None
        if encoding not in _EXPAT_CHARSETS:
            body = body.decode(encoding, errors="replace")
    builder = _XmlTreeBuilder(budget)
    parser = expat.ParserCreate(
        _EXPAT_CHARSETS.get(encoding or "") if isinstance(body, bytes) else None, namespace_separator=" "
    )
    parser.buffer_text = True
    parser.StartElementHandler = builder.start
    parser.EndElementHandler = builder.end
    parser.CharacterDataHandler = builder.data
    parser.EntityDeclHandler = _refuse_entities
    try:
        parser.Parse(body, True)
    except expat.ExpatError as exc:
        raise FormatError(f"xml: {expat.ErrorString(exc.code)} at line {exc.lineno}, column {exc.offset + 1}") from None
    return builder.result
