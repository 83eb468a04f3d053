"""A fast reader for the block-style YAML that capability files are written in.

ruamel.yaml's round-trip loader, which gives every key its line and column, reads about ten
thousand lines a second here: a generated capability with 10,000 operations (390,000 lines)
took a minute to load. This reader handles the plain subset such files use (block mappings and
sequences, plain and quoted one-line scalars, literal and folded block scalars, comments) in
one pass over the lines, with the same 0-based positions ruamel records (`data.lc.key(k)`,
`data.lc.value(k)`, `seq.lc.item(i)`). Anything outside that subset (flow collections,
anchors, tags, multi-line plain scalars, duplicate keys...) raises `Unsupported`, and the
loader falls back to ruamel, which also produces the error messages for broken files.
"""

from __future__ import annotations

import gc
import re
from typing import Any

Position = tuple[int, int]


class Unsupported(Exception):
    """The text uses YAML this reader does not handle; read it with ruamel instead."""


class _MapMarks:
    """ruamel-compatible position lookups of a mapping (0-based line and column)."""

    __slots__ = ("keys", "values")

    def __init__(self) -> None:
        self.keys: dict[Any, Position] = {}
        self.values: dict[Any, Position] = {}

    def key(self, key: Any) -> Position:
        return self.keys[key]

    def value(self, key: Any) -> Position:
        return self.values[key]


class _SeqMarks:
    """ruamel-compatible position lookups of a sequence."""

    __slots__ = ("items",)

    def __init__(self) -> None:
        self.items: list[Position] = []

    def item(self, index: int) -> Position:
        return self.items[index]


class MarkedMap(dict):
    """A mapping that remembers where each key and value was written."""

    __slots__ = ("lc",)


class MarkedSeq(list):
    """A sequence that remembers where each item was written."""

    __slots__ = ("lc",)


_NULL = {"", "~", "null", "Null", "NULL"}
_BOOL = {"true": True, "True": True, "TRUE": True, "false": False, "False": False, "FALSE": False}
_INT = re.compile(r"^[-+]?[0-9]+$")
_FLOAT = re.compile(r"^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$")
_SPECIAL = re.compile(r"^[-+]?\.(inf|Inf|INF)$|^\.(nan|NaN|NAN)$|^0o[0-7]+$|^0x[0-9a-fA-F]+$")
_KEY = re.compile(r"""^([^\s'"#&*!|>%@`{}\[\],?:-][^:#]*?|-[^\s:#][^:#]*?|'[^']*'|"[^"\\]*")\s*:(?:\s+|$)""")
_ESCAPES = {"n": "\n", "t": "\t", "\\": "\\", '"': '"', "/": "/", "0": "\0", "r": "\r", "b": "\b", "f": "\f",
            " ": " ", "e": "\x1b", "a": "\x07", "v": "\x0b"}


def _plain(text: str) -> Any:
    """Resolve a plain scalar the way YAML 1.2's core schema does."""
    if text in _NULL:
        return None
    if text in _BOOL:
        return _BOOL[text]
    if _INT.match(text):
        return int(text, 10)
    if _FLOAT.match(text):
        return float(text)
    if _SPECIAL.match(text):
        raise Unsupported("special number")
    if text[0] in "&*!|>%@`{[" or text[:2] in ("- ", "? ", ": ") or ": " in text or " #" in text or text.endswith(":"):
        raise Unsupported("plain scalar with indicators")
    return text


def _double(text: str) -> str:
    out: list[str] = []
    index = 0
    while index < len(text):
        char = text[index]
        if char != "\\":
            out.append(char)
            index += 1
            continue
        code = text[index + 1:index + 2]
        if code in _ESCAPES:
            out.append(_ESCAPES[code])
            index += 2
        elif code in ("x", "u", "U"):
            width = {"x": 2, "u": 4, "U": 8}[code]
            out.append(chr(int(text[index + 2:index + 2 + width], 16)))
            index += 2 + width
        else:
            raise Unsupported("escape")
    return "".join(out)


def _scalar(text: str) -> Any:
    """A one-line scalar: quoted or plain, with any trailing comment already removed."""
    if text == "[]":
        empty: Any = MarkedSeq()
        empty.lc = _SeqMarks()
        return empty
    if text == "{}":
        empty = MarkedMap()
        empty.lc = _MapMarks()
        return empty
    if text.startswith("'"):
        if len(text) < 2 or not text.endswith("'") or "'" in text[1:-1].replace("''", ""):
            raise Unsupported("quoted scalar")
        return text[1:-1].replace("''", "'")
    if text.startswith('"'):
        body = text[1:-1]
        if len(text) < 2 or not text.endswith('"') or re.search(r'(?<!\\)(\\\\)*"', body):
            raise Unsupported("quoted scalar")
        return _double(body)
    return _plain(text)


def _strip_comment(text: str) -> str:
    """Drop a trailing ` # comment` that is not inside quotes."""
    if "#" not in text:
        return text.rstrip()
    quote = ""
    for index, char in enumerate(text):
        if quote:
            if char == quote:
                quote = ""
        elif char in "'\"" and (index == 0 or text[index - 1] in " \t:-[{,"):
            quote = char
        elif char == "#" and (index == 0 or text[index - 1] in " \t"):
            return text[:index].rstrip()
    return text.rstrip()


class _Reader:
    def __init__(self, text: str) -> None:
        if "\r" in text:
            text = text.replace("\r\n", "\n")
        self.raw = text.split("\n")
        # [line number, indent, content] of every line that is not blank or a comment
        self.lines: list[list[Any]] = []
        append = self.lines.append
        for number, line in enumerate(self.raw):
            stripped = line.lstrip(" ")
            if not stripped or stripped[0] == "#":
                continue
            if stripped[0] == "\t":
                if not stripped.strip():
                    continue
                raise Unsupported("tab indentation")
            indent = len(line) - len(stripped)
            if indent == 0 and stripped[0] in "-.%" and stripped.startswith(("---", "...", "%")):
                if stripped.rstrip() in ("---", "...") and not self.lines:
                    continue
                raise Unsupported("several documents or directives")
            append([number, indent, stripped])
        self.index = 0
        self.scalars: dict[str, Any] = {}  # repeated keys and values resolve once

    def scalar(self, text: str) -> Any:
        try:
            return self.scalars[text]
        except KeyError:
            value = _scalar(text)
            if not isinstance(value, list | dict):
                self.scalars[text] = value
            return value

    def document(self) -> Any:
        if not self.lines:
            return None
        node = self.node(self.lines[0][1])
        if self.index != len(self.lines):
            raise Unsupported("content after the document")
        return node

    def node(self, indent: int) -> Any:
        number, column, content = self.lines[self.index]
        if column != indent:
            raise Unsupported("indentation")
        if content == "-" or content.startswith("- "):
            return self.sequence(indent)
        if _KEY.match(content):
            return self.mapping(indent)
        raise Unsupported("top-level scalar")

    def mapping(self, indent: int) -> MarkedMap:
        result = MarkedMap()
        marks = result.lc = _MapMarks()
        while self.index < len(self.lines):
            number, column, content = self.lines[self.index]
            if column < indent:
                break
            if column > indent:
                raise Unsupported("indentation")
            match = _KEY.match(content)
            if match is None:
                if content == "-" or content.startswith("- "):
                    break
                raise Unsupported("not a key")
            key = self.scalar(match.group(1).rstrip())
            if key in result:
                raise Unsupported("duplicate key")
            marks.keys[key] = (number, column)
            rest = content[match.end():]
            self.index += 1
            result[key] = self.value(rest, indent, number, column + match.end(), marks, key)
        return result

    def value(self, rest: str, indent: int, number: int, column: int, marks: _MapMarks, key: Any) -> Any:
        """The value after `key:`; nested blocks are read from the following lines."""
        text = _strip_comment(rest)
        if text and text[0] in "|>":
            marks.values[key] = (number, column)
            return self.block_scalar(text, indent)
        if text:
            marks.values[key] = (number, column)
            self.no_continuation(indent)
            return self.scalar(text)
        if self.index < len(self.lines):
            next_number, next_column, next_content = self.lines[self.index]
            is_item = next_content == "-" or next_content.startswith("- ")
            if next_column > indent or (next_column == indent and is_item):
                marks.values[key] = (next_number, next_column)
                return self.node(next_column)
            marks.values[key] = (next_number, next_column)  # where ruamel puts an empty value
            return None
        marks.values[key] = (number, column)
        return None

    def no_continuation(self, indent: int) -> None:
        if self.index < len(self.lines) and self.lines[self.index][1] > indent:
            raise Unsupported("multi-line plain scalar")

    def sequence(self, indent: int) -> MarkedSeq:
        result = MarkedSeq()
        marks = result.lc = _SeqMarks()
        while self.index < len(self.lines):
            line = self.lines[self.index]
            number, column, content = line
            if column != indent or not (content == "-" or content.startswith("- ")):
                if column > indent:
                    raise Unsupported("indentation")
                break
            body = content[1:].lstrip(" ")
            if not _strip_comment(body):
                self.index += 1
                if self.index < len(self.lines) and self.lines[self.index][1] > indent:
                    marks.items.append((self.lines[self.index][0], self.lines[self.index][1]))
                    result.append(self.node(self.lines[self.index][1]))
                else:
                    marks.items.append((number, column + 1))
                    result.append(None)
                continue
            inner = column + len(content) - len(body)
            marks.items.append((number, inner))
            if body == "-" or body.startswith("- ") or _KEY.match(body):
                line[1], line[2] = inner, body  # the item is a block that starts on this line
                result.append(self.node(inner))
            else:
                self.index += 1
                text = _strip_comment(body)
                if text[0] in "|>":
                    result.append(self.block_scalar(text, column))
                else:
                    self.no_continuation(column)
                    result.append(self.scalar(text))
        return result

    def block_scalar(self, header: str, indent: int) -> str:
        """`|` / `>` with optional chomping (`-`, `+`); no explicit indentation indicator."""
        style, chomp = header[0], header[1:].strip()
        if chomp not in ("", "-", "+"):
            raise Unsupported("block scalar header")
        first = self.lines[self.index - 1][0] + 1
        end = first
        block_indent = None
        while end < len(self.raw):
            line = self.raw[end]
            stripped = line.lstrip(" ")
            if stripped.strip():
                width = len(line) - len(stripped)
                if width <= indent:
                    break
                if block_indent is None:
                    block_indent = width
                elif width < block_indent:
                    raise Unsupported("block scalar indentation")
            end += 1
        body = [self.raw[n][block_indent:] if block_indent else "" for n in range(first, end)]
        while self.index < len(self.lines) and self.lines[self.index][0] < end:
            self.index += 1
        trailing = 0
        while body and not body[-1].strip():
            body.pop()
            trailing += 1
        if style == "|":
            text = "\n".join(body)
        else:
            text = _fold(body)
        if chomp == "-":
            return text
        if chomp == "+":
            return text + "\n" * (1 + trailing) if body else "\n" * trailing
        return text + "\n" if body else ""


def _fold(lines: list[str]) -> str:
    out = ""
    previous_blank = True
    for line in lines:
        if not line.strip():
            out += "\n"
            previous_blank = True
        elif line.startswith((" ", "\t")):
            raise Unsupported("more-indented folded lines")
        else:
            out += ("" if previous_blank else " ") + line
            previous_blank = False
    return out


def load(text: str) -> Any:
    """Parse `text`, or raise Unsupported when it leaves the subset."""
    if text.startswith("\ufeff"):
        raise Unsupported("byte order mark")
    enabled = gc.isenabled()
    gc.disable()  # building many small containers: the cycle collector would only slow it down
    try:
        return _Reader(text).document()
    except (IndexError, ValueError) as exc:
        raise Unsupported(str(exc)) from None
    finally:
        if enabled:
            gc.enable()
