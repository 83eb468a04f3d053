"""A fast reader for the block-style YAML that capability files are written in.

ruamel.yaml's round-trip loader, which gives every key its line and column, reads about ten
thousand lines a second here: a generated capability with 10,000 operations (390,000 lines)
took a minute to load. This reader handles the plain subset such files use (block mappings and
sequences, plain and quoted one-line scalars, literal and folded block scalars, comments) in
one pass over the lines, with the same 0-based positions ruamel records (`data.lc.key(k)`,
`data.lc.value(k)`, `seq.lc.item(i)`). Anything outside that subset (flow collections,
anchors, tags, multi-line plain scalars, duplicate keys, tabs, control characters, line breaks
other than `\n` and `\r\n`, numbers beyond the plain decimal forms, dates...) raises
`Unsupported`, and the loader falls back to ruamel, which also produces the error messages for
broken files. For every text it accepts, it returns what ruamel returns (values, their base
types, positions): `tests/engine/spec/test_yaml_differential.py` checks that. Plain scalars are typed
with ruamel's own table of YAML 1.2 tags, so a scalar ruamel reads as a number, a date or a
merge key never comes back from here as a string.
"""

from __future__ import annotations

import gc
import re
from re import Pattern
from typing import Any

from ruamel.yaml.resolver import implicit_resolvers as _RUAMEL_IMPLICIT
from ruamel.yaml.scanner import Scanner as _RuamelScanner

Position = tuple[int, int]


class Unsupported(Exception):
    """The text uses YAML this reader does not handle; read it with ruamel instead.

    `line` and `column` (0-based) say where the reader stopped, when it got that far.
    """

    def __init__(self, reason: str, line: int | None = None, column: int | None = None) -> None:
        super().__init__(reason)
        self.line, self.column = line, column


class _MapMarks:
    """ruamel-compatible position lookups of a mapping (0-based line and column), made when asked for."""

    __slots__ = ("marked",)

    def __init__(self, marked: MarkedMap) -> None:
        self.marked = marked

    def key(self, key: Any) -> Position:
        return self.marked.place(key)[0], self.marked.column

    def value(self, key: Any) -> Position:
        _, line, column = self.marked.place(key)
        return line, column


class _SeqMarks:
    """ruamel-compatible position lookups of a sequence, made when asked for."""

    __slots__ = ("at",)

    def __init__(self, at: list[Position]) -> None:
        self.at = at

    def item(self, index: int) -> Position:
        return self.at[index]


class MarkedMap(dict[Any, Any]):
    """A mapping that remembers where each key and value was written.

    `at` holds three numbers a key, in the order the keys were read: the key's line, its value's
    line and column; `column` is the keys' column, the same for every key of a block mapping. One
    flat list a mapping, not a tuple a key in a dict: fewer objects to build, and to free (the
    10,000-operation file: 0.575 -> 0.552 s CPU to read and free). A key's place is found by its
    index, which only a problem or a nested mapping's own place asks for.
    """

    __slots__ = ("at", "column")
    at: list[int]
    column: int

    def place(self, key: Any) -> tuple[int, int, int]:
        """`key`'s line, its value's line and column; KeyError for a key the reader did not read here."""
        for index, known in enumerate(self):
            if known is key or known == key:
                at, start = self.at, 3 * index
                if start + 3 > len(at):  # added after reading (an Ikanos entry's `name`): no place of its own
                    break
                return at[start], at[start + 1], at[start + 2]
        raise KeyError(key)

    @property
    def lc(self) -> _MapMarks:
        return _MapMarks(self)


class MarkedSeq(list[Any]):
    """A sequence that remembers where each item was written."""

    __slots__ = ("at",)
    at: list[Position]

    @property
    def lc(self) -> _SeqMarks:
        return _SeqMarks(self.at)


DEFAULT_MAX_DEPTH = 100
"""Nested mappings and sequences beyond this are left to the loader, which refuses them with a position."""

_LONGEST_NUMBER = 100  # longer numbers go to ruamel, where the loader bounds them
_INT = re.compile(r"^[-+]?[0-9]+$")
_FLOAT = re.compile(r"^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$")
_KEY = re.compile(r"""^([^\s'"#&*!|>%@`{}\[\],?:-][^:#]*?|-[^\s:#][^:#]*?|'[^']*'|"[^"\\]*") *:(?: +|$)""")
_MARKER = re.compile(r"\n(?:---|\.\.\.|%)")
_NOT_SEEN: Any = object()  # a scalar the reader has not resolved yet (None is a resolved one)
_NESTED: Any = object()  # a remembered line `key:` whose value is on the lines after it
_ESCAPES: dict[str, str] = dict(_RuamelScanner.ESCAPE_REPLACEMENTS)
_ESCAPE_CODES: dict[str, int] = dict(_RuamelScanner.ESCAPE_CODES)
_HEX = frozenset("0123456789abcdefABCDEF")
# Characters this reader leaves to ruamel: tabs, CR, NEL, LS, PS, C0/C1 controls, DEL, surrogates,
# byte order marks and U+FFFE/U+FFFF (which ruamel refuses, or reads as line breaks or separators).
_ASCII_OK = bytes([10, *range(0x20, 0x7F)])
_STRANGE = re.compile("[\x00-\x09\x0b-\x1f\x7f-\x9f\u2028\u2029\ud800-\udfff\ufeff\ufffe\uffff]")  # 0.3 ms to compile
_STRANGE_WIDE = "[^\n\x20-\x7e\xa0-\u2027\u202a-\ud7ff\ue000-\ufefe\uff00-\ufffd\U00010000-\U0010ffff]"
"""The same characters, as the ranges allowed: 6 ms to compile (re caches it), 3x faster to search."""
_WIDE_FROM = 1 << 20  # characters of text from which that search pays for its compilation


def _implicit_tags() -> dict[str, list[tuple[str, Pattern[str]]]]:
    """ruamel's YAML 1.2 tags of plain scalars by first character, in the order its resolver tries them."""
    table: dict[str, list[tuple[str, Pattern[str]]]] = {}
    for versions, tag, regexp, first in _RUAMEL_IMPLICIT:
        if (1, 2) in versions:
            for char in first:
                # ruamel's pattern is a lazy proxy: compile the real one (from re's cache) once here
                table.setdefault(char, []).append((tag.rsplit(":", 1)[-1], re.compile(regexp.pattern, regexp.flags)))
    return table


_TAGS = _implicit_tags()


def _plain(text: str) -> Any:
    """Resolve a plain scalar exactly as ruamel does, or leave the rarer types to it."""
    for tag, regexp in _TAGS.get(text[0], ()):
        if regexp.match(text):
            if tag == "null":
                return None
            if tag == "bool":
                return text[0] in "tT"
            if tag == "int" and len(text) <= _LONGEST_NUMBER and _INT.match(text):
                return int(text, 10)
            if tag == "float" and len(text) <= _LONGEST_NUMBER and _FLOAT.match(text):
                return float(text)
            raise Unsupported(f"plain scalar of type {tag}")
    if (
        text[0] in "&*!|>%@`{[]},"
        or text in ("-", "?", ":")
        or text[:2] in ("- ", "? ", ": ")
        or ": " in text
        or " #" in text
        or text.endswith(":")
    ):
        raise Unsupported("plain scalar with indicators")
    return text


def _double(text: str) -> str:
    """The inside of a one-line double-quoted scalar, with ruamel's escapes."""
    if "\\" not in text:
        return text
    out: list[str] = []
    index = 0
    while index < len(text):
        char = text[index]
        if char != "\\":
            out.append(char)
            index += 1
            continue
        code = text[index + 1 : index + 2]
        if code in _ESCAPES:
            out.append(_ESCAPES[code])
            index += 2
        elif code in _ESCAPE_CODES:
            width = _ESCAPE_CODES[code]
            digits = text[index + 2 : index + 2 + width]
            if len(digits) != width or not _HEX.issuperset(digits):
                raise Unsupported("escape")
            out.append(chr(int(digits, 16)))
            index += 2 + width
        else:
            raise Unsupported("escape")
    return "".join(out)


def _quote_end(text: str) -> int:
    """The index just after the quoted scalar that starts `text`."""
    quote, index = text[0], 1
    while True:
        found = text.find(quote, index)
        if found < 0:
            raise Unsupported("quoted scalar")
        if quote == "'":
            if text[found + 1 : found + 2] == "'":
                index = found + 2
                continue
            return found + 1
        backslashes = len(text[index:found]) - len(text[index:found].rstrip("\\"))
        if backslashes % 2:
            index = found + 1
            continue
        return found + 1


def _strip_comment(text: str) -> str:
    """The scalar text of a value: quotes kept, a trailing ` # comment` and spaces dropped."""
    if not text:
        return text
    first = text[0]
    if first == "'" or first == '"':
        end = _quote_end(text)
        tail = text[end:].lstrip(" ")
        if tail and (tail[0] != "#" or end == len(text) - len(tail)):
            raise Unsupported("text after a quoted scalar")
        return text[:end]
    if "#" not in text:
        return text.rstrip(" ")
    if first == "#":
        return ""
    found = text.find(" #")
    return (text[:found] if found >= 0 else text).rstrip(" ")


def _scalar(text: str) -> Any:
    """A one-line scalar: quoted or plain, with any trailing comment already removed."""
    if text == "[]":
        empty: Any = MarkedSeq()
        empty.at = []
        return empty
    if text == "{}":
        empty = MarkedMap()
        empty.at, empty.column = [], 0
        return empty
    if text[0] == "'":
        if _quote_end(text) != len(text):
            raise Unsupported("quoted scalar")
        return text[1:-1].replace("''", "'")
    if text[0] == '"':
        if _quote_end(text) != len(text):
            raise Unsupported("quoted scalar")
        return _double(text[1:-1])
    return _plain(text)


def _has_marker(text: str) -> bool:
    """Whether a line starts with `---`, `...` or `%` (`_MARKER` has a literal head: 7x faster than `^` with re.M)."""
    return text.startswith(("---", "...", "%")) or _MARKER.search(text) is not None


def _is_item(content: str) -> bool:
    return content == "-" or content.startswith("- ")


class _Reader:
    def __init__(self, text: str, max_depth: int) -> None:
        self.raw = text.split("\n")
        if self.raw[-1] == "":
            self.raw.pop()  # the text ends with a line break: there is no line after it
            self.final_break = True
        else:
            self.final_break = False
        # [line number, indent, content] of every line that is not blank or a comment
        if not _has_marker(text):  # no line starts with `---`, `...` or `%`: one comprehension does it
            self.lines: list[list[Any]] = [
                [number, len(line) - len(stripped), stripped]
                for number, line in enumerate(self.raw)
                if (stripped := line.lstrip(" ")) and stripped[0] != "#"
            ]
        else:
            self.lines = self._marked_lines()
        self.index = 0
        self.max_depth = max_depth
        self.scalars: dict[str, Any] = {}  # repeated keys and values resolve once
        self.seen: dict[str, tuple[Any, int, Any]] = {}  # repeated `key: plain value` lines too
        self.items: dict[str, tuple[int, str, re.Match[str]]] = {}  # and `- key: ...` lines

    def _marked_lines(self) -> list[list[Any]]:
        """The significant lines of a text with document markers or directives: only one leading `---` is read."""
        lines: list[list[Any]] = []
        started = False  # a document start marker `---` was seen
        for number, line in enumerate(self.raw):
            stripped = line.lstrip(" ")
            if not stripped or stripped[0] == "#":
                continue
            indent = len(line) - len(stripped)
            if indent == 0 and stripped[0] in "-.%" and stripped.startswith(("---", "...", "%")):
                if _strip_comment(stripped) == "---" and not lines and not started:
                    started = True
                    continue
                raise Unsupported("several documents or directives", number, 0)
            lines.append([number, indent, stripped])
        return lines

    def scalar(self, text: str, depth: int) -> Any:
        try:
            return self.scalars[text]
        except KeyError:
            value = _scalar(text)
            if isinstance(value, list | dict):
                if depth > self.max_depth:
                    raise Unsupported("nested too deep") from None
            else:
                self.scalars[text] = value
            return value

    def where(self) -> Position:
        """The line and column the reader is at."""
        number, column, _ = self.lines[min(self.index, len(self.lines) - 1)]
        return number, column

    def document(self) -> Any:
        if not self.lines:
            return None
        node = self.node(self.lines[0][1], 1)
        if self.index != len(self.lines):
            raise Unsupported("content after the document")
        return node

    def node(self, indent: int, depth: int) -> Any:
        if depth > self.max_depth:
            raise Unsupported("nested too deep")
        _, column, content = self.lines[self.index]
        if column != indent:
            raise Unsupported("indentation")
        if content == "-" or content.startswith("- "):
            return self.sequence(indent, depth)
        first = _KEY.match(content)
        if first:
            return self.mapping(indent, depth, first)
        raise Unsupported("top-level scalar")

    def mapping(self, indent: int, depth: int, first: re.Match[str] | None = None) -> MarkedMap:
        """A block mapping at `indent` (`first`: its first line's key match, when the caller has it).

        The hottest loop of the reader: a key with a plain one-line value (most lines of a capability)
        is read here without a call. `self.index` is only written where something else reads it: a
        call, a raise (`where` reports it), the return.
        """
        result = MarkedMap()
        result.column = indent
        at: list[int] = []
        result.at = at
        lines, count, match_key = self.lines, len(self.lines), _KEY.match
        scalars, seen, inner, index, match = self.scalars, self.seen, depth + 1, self.index, first
        plain = False  # the line before was `key: plain scalar`: a deeper line now would continue it
        while index < count:
            number, column, content = lines[index]
            if column != indent:
                self.index = index
                if column < indent:
                    return result
                raise Unsupported("multi-line plain scalar" if plain else "indentation")
            known = seen.get(content)
            if known is not None:  # a line read before (`type: string`, `operations:`): key, value, value's place
                key, end, value = known
                if key in result:
                    self.index = index
                    raise Unsupported("duplicate key")
                index += 1
                match = None
                if value is not _NESTED:
                    at += (number, number, column + end)
                    result[key] = value
                    plain = True
                    continue
                rest = ""
            else:
                if match is None:
                    match = match_key(content)
                    if match is None:
                        self.index = index
                        if content == "-" or content.startswith("- "):
                            return result
                        raise Unsupported("not a key")
                text = match.group(1)  # the lazy key pattern leaves no trailing space in it
                key = scalars.get(text, _NOT_SEEN)
                if key is _NOT_SEEN:
                    self.index = index
                    key = self.scalar(text, inner)
                if key in result:
                    self.index = index
                    raise Unsupported("duplicate key")
                end = match.end()
                match = None
                index += 1
                rest = content[end:]
                if rest and rest[0] not in "'\"|>" and "#" not in rest:  # a plain scalar, no comment: `value` inlined
                    at += (number, number, column + end)
                    text = rest.rstrip(" ")
                    value = scalars.get(text, _NOT_SEEN)
                    if value is _NOT_SEEN:
                        self.index = index
                        self.no_continuation(indent)  # before the scalar's own problems, as `value` does
                        value = self.scalar(text, inner)
                        if text in scalars:  # not an empty `[]` / `{}`, which each place gets afresh
                            seen[content] = (key, end, value)
                    else:
                        seen[content] = (key, end, value)
                    result[key] = value
                    plain = True
                    continue
                if not rest:
                    seen[content] = (key, end, _NESTED)
            if not rest and index < count and lines[index][1] > indent:  # a nested block: `value` inlined
                next_number, next_column, next_content = lines[index]
                at += (number, next_number, next_column)
                self.index = index
                if next_content == "-" or next_content.startswith("- ") or inner > self.max_depth:
                    result[key] = self.node(next_column, inner)
                elif nested := match_key(next_content):  # `node` inlined for the usual nested mapping
                    result[key] = self.mapping(next_column, inner, nested)
                else:
                    raise Unsupported("top-level scalar")
                index, plain = self.index, False
            else:
                self.index = index
                result[key] = self.value(rest, indent, depth, number, column + end, at, key)
                index, plain = self.index, False
        self.index = index
        return result

    def value(
        self,
        rest: str,
        indent: int,
        depth: int,
        number: int,
        column: int,
        at: list[int],
        key: Any,
    ) -> Any:
        """The value after `key:`; nested blocks are read from the following lines."""
        text = _strip_comment(rest)
        if text and text[0] in "|>":
            at += (number, number, column)
            return self.block_scalar(text, indent)
        if text:
            at += (number, number, column)
            self.no_continuation(indent)
            return self.scalar(text, depth + 1)
        if self.index < len(self.lines):
            next_number, next_column, next_content = self.lines[self.index]
            is_item = next_content == "-" or next_content.startswith("- ")
            if next_column > indent or (next_column == indent and is_item):
                at += (number, next_number, next_column)
                return self.node(next_column, depth + 1)
            if rest and next_column == indent:  # `key: # comment`, then the next key: ruamel stays after the colon
                at += (number, number, len(self.raw[number][:column].rstrip(" ")))
            else:
                at += (number, next_number, next_column)  # where ruamel puts an empty value
            return None
        at += (number, *self.end())
        return None

    def end(self) -> Position:
        """Where the text ends, as ruamel marks it."""
        if self.final_break:
            return (len(self.raw), 0)
        return (len(self.raw) - 1, len(self.raw[-1]))

    def no_continuation(self, indent: int) -> None:
        if self.index < len(self.lines) and self.lines[self.index][1] > indent:
            raise Unsupported("multi-line plain scalar")

    def sequence(self, indent: int, depth: int) -> MarkedSeq:
        result = MarkedSeq()
        at: list[Position] = []
        result.at = at
        lines, count, inner_depth, items = self.lines, len(self.lines), depth + 1, self.items
        while self.index < count:
            line = lines[self.index]
            number, column, content = line
            if column != indent or not (content == "-" or content.startswith("- ")):
                if column > indent:
                    raise Unsupported("indentation")
                break
            known = items.get(content)
            if known is not None:  # an item line read before (`- name: id`): a mapping's first key
                offset, body, first = known
                inner = column + offset
                at.append((number, inner))
                line[1], line[2] = inner, body
                if inner_depth > self.max_depth:
                    raise Unsupported("nested too deep")
                result.append(self.mapping(inner, inner_depth, first))
                continue
            body = content[1:].lstrip(" ")
            text = _strip_comment(body)
            if not text:
                self.index += 1
                if self.index < count and lines[self.index][1] > indent:
                    next_number, next_column, _ = lines[self.index]
                    at.append((next_number, next_column))
                    result.append(self.node(next_column, inner_depth))
                else:
                    at.append((number, column + 1))
                    result.append(None)
                continue
            inner = column + len(content) - len(body)
            at.append((number, inner))
            if body == "-" or body.startswith("- "):
                line[1], line[2] = inner, body  # the item is a block that starts on this line
                result.append(self.node(inner, inner_depth))
            elif key := _KEY.match(body):
                items[content] = (inner - column, body, key)
                line[1], line[2] = inner, body  # the item is a mapping that starts on this line
                if inner_depth > self.max_depth:
                    raise Unsupported("nested too deep")
                result.append(self.mapping(inner, inner_depth, key))
            else:
                self.index += 1
                if text[0] in "|>":
                    result.append(self.block_scalar(text, column))
                else:
                    self.no_continuation(column)
                    result.append(self.scalar(text, inner_depth))
        return result

    def block_scalar(self, header: str, indent: int) -> str:
        """`|` / `>` with optional chomping (`-`, `+`); no explicit indentation indicator."""
        style, chomp = header[0], header[1:]
        if chomp not in ("", "-", "+"):
            raise Unsupported("block scalar header")
        first = self.lines[self.index - 1][0] + 1
        end = first
        block_indent = 0
        longest_blank = 0
        raw = self.raw
        while end < len(raw):
            line = raw[end]
            stripped = line.lstrip(" ")
            if stripped:
                width = len(line) - len(stripped)
                if width <= indent:
                    break
                if not block_indent:
                    block_indent = width
                elif width < block_indent:
                    raise Unsupported("block scalar indentation")
            elif line and not block_indent:
                raise Unsupported("block scalar that starts with spaces-only lines")  # ruamel has its own rule
            elif len(line) > longest_blank:
                longest_blank = len(line)
            end += 1
        if end == len(raw) and not self.final_break:
            raise Unsupported("block scalar at the end of a text without a final line break")
        if longest_blank > max(block_indent, indent):
            raise Unsupported("block scalar with spaces-only lines longer than its indentation")
        body = [raw[n][block_indent:] if block_indent else "" for n in range(first, end)]
        while self.index < len(self.lines) and self.lines[self.index][0] < end:
            self.index += 1
        trailing = 0
        while body and not body[-1]:
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
        if not line:
            out += "\n"
            previous_blank = True
        elif line[0] == " ":
            raise Unsupported("more-indented folded lines")
        else:
            out += ("" if previous_blank else " ") + line
            previous_blank = False
    return out


def _plain_characters(text: str) -> bool:
    """Whether every character is one this reader reads exactly as ruamel does."""
    if text.isascii():
        return not text.encode("ascii").translate(None, _ASCII_OK)
    return _strange(text).search(text) is None


def _strange(text: str) -> Pattern[str]:
    """The pattern that finds a character this reader leaves to ruamel, the faster one for `text`."""
    return re.compile(_STRANGE_WIDE) if len(text) >= _WIDE_FROM else _STRANGE


def load(text: str, *, max_depth: int = DEFAULT_MAX_DEPTH) -> Any:
    """Parse `text`, or raise Unsupported when it leaves the subset (or nests deeper than `max_depth`)."""
    if text.startswith("\ufeff"):
        raise Unsupported("byte order mark")
    if "\r" in text:
        text = text.replace("\r\n", "\n")
    if not _plain_characters(text):
        found = _strange(text).search(text)
        at = found.start() if found else 0
        line_start = text.rfind("\n", 0, at) + 1
        raise Unsupported(f"the character U+{ord(text[at]):04X}", text.count("\n", 0, at), at - line_start)
    enabled = gc.isenabled()
    gc.disable()  # building many small containers: the cycle collector would only slow it down
    reader: _Reader | None = None
    try:
        reader = _Reader(text, max_depth)
        return reader.document()
    except Unsupported as exc:
        if exc.line is None and reader is not None:
            exc.line, exc.column = reader.where()
        raise
    except (IndexError, ValueError, RecursionError) as exc:
        raise Unsupported(str(exc), *(reader.where() if reader else (None, None))) from None
    finally:
        if enabled:
            gc.enable()
