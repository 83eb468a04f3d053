"""Inline markdown → plain text: what the reference engine keeps of a leaf block (commonmark's Text and Code nodes).

The reference engine collects the literals of commonmark-java's Text and Code nodes, a soft line break as a
space and a hard one as a line break. This module produces that string without building the nodes: it is
CommonMark's inline algorithm (spec 0.31.2, appendix; the commonmark.js / commonmark-java parser) run over
pieces of text. Delimiter runs (`*`, `_`) and brackets (`[`, `![`) are pieces whose fate is settled later: a
bracket that closes a link or image loses its markup (text kept, destination and title dropped), and the emphasis
algorithm (openers bottom per kind, the rule of three) decides how many characters of each run stay literal.
Code spans, autolinks, entities and escapes keep their text; raw HTML is dropped.

Linear: every scan either moves forward or is bounded (link labels 999 characters, destination parentheses 32
deep); code-span closers come from an index of backtick runs, and the closers of comments, processing
instructions, declarations and CDATA are found once per kind (`_Closers`), so no input rescans the text.
"""

from __future__ import annotations

import re
import unicodedata
from bisect import bisect_left
from collections.abc import Callable
from html.entities import html5

from .markdown_links import ESCAPABLE as _ESCAPABLE
from .markdown_links import MAX_PARENS, normalize_label

JAVA_SPACE = "".join(map(chr, range(33)))
"""What Java's `String.trim()` removes (the reference engine trims every text it collects)."""

_SPECIAL = re.compile(r"[\n\\`*_\[\]!<&]")
_TICKS = re.compile(r"`+")
_RUN = re.compile(r"\*+|_+")
_ENTITY = re.compile(r"&(?:#[xX]([0-9a-fA-F]{1,6})|#([0-9]{1,7})|([A-Za-z][A-Za-z0-9]{1,31}));")
_AUTOLINK = re.compile(r"<([A-Za-z][A-Za-z0-9.+-]{1,31}:[^<>\x00-\x20]*)>")
_EMAIL = re.compile(
    r"<([a-zA-Z0-9.!#$%&'*+/=?^_`{|}~-]+@[a-zA-Z0-9](?:[a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?"
    r"(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?)*)>"
)
_ATTRIBUTE = r"""(?:\s+[a-zA-Z_:][a-zA-Z0-9:._-]*(?:\s*=\s*(?:[^"'=<>`\x00-\x20]+|'[^']*'|"[^"]*"))?)"""
_TAG = re.compile(r"<[A-Za-z][A-Za-z0-9-]*" + _ATTRIBUTE + r"*\s*/?>|</[A-Za-z][A-Za-z0-9-]*\s*>")
_CLOSED_BY = (("<!-->", ""), ("<!--->", ""), ("<!--", "-->"), ("<?", "?>"), ("<![CDATA[", "]]>"))
_DECLARATION = re.compile(r"<![A-Za-z]")
_LABEL = re.compile(r"\[((?:[^\\\[\]]|\\.){0,999})\]", re.DOTALL)
_SPACE_NEWLINE = re.compile(r"[ \t]*(?:\n[ \t]*)?")
_ANGLE_DESTINATION = re.compile(r"<(?:[^<>\n\\]|\\.)*>")
_PLAIN_DESTINATION = re.compile(r"(?:[^\x00-\x20\x7f()\\]|\\[!-/:-@\[-`{-~]|\\)*")
_PARENTHESES = re.compile(r"\\[!-/:-@\[-`{-~]|[()]")
_DESTINATION_STOP = re.compile(r"[\x00-\x20\x7f]")
_TITLE = re.compile(r"\"(?:[^\"\\]|\\.)*\"|'(?:[^'\\]|\\.)*'|\((?:[^()\\]|\\.)*\)", re.DOTALL)


def is_space(char: str) -> bool:
    """CommonMark's Unicode whitespace: tab, line feed, form feed, carriage return, or category Zs."""
    return char in "\t\n\f\r " or char > "\x7f" and unicodedata.category(char) == "Zs"


def is_punctuation(char: str) -> bool:
    """CommonMark's Unicode punctuation: the P and S categories (all ASCII punctuation is in them)."""
    return char in _ESCAPABLE or char > "\x7f" and unicodedata.category(char)[0] in "PS"


class _Delimiter:
    """A run of `*` or `_`: its piece, how many characters are left, and whether it may open or close."""

    __slots__ = ("char", "piece", "count", "length", "can_open", "can_close", "previous", "next")

    def __init__(self, char: str, piece: int, length: int, can_open: bool, can_close: bool) -> None:
        self.char, self.piece, self.count, self.length = char, piece, length, length
        self.can_open, self.can_close = can_open, can_close
        self.previous: _Delimiter | None = None
        self.next: _Delimiter | None = None


_Bracket = tuple[int, int, bool, int, int]
"""An opening `[` or `![`: its piece, where its text starts, whether it is an image, how many delimiters lie
below it, and its serial number among the brackets (one opened after it, if any, has a higher one)."""


class _Closers:
    """The next position of each closing marker (`-->`, `?>`, `>`, `]]>`), each found once per stretch of text."""

    __slots__ = ("text", "found")

    def __init__(self, text: str) -> None:
        self.text = text
        self.found: dict[str, tuple[int, int]] = {}

    def after(self, marker: str, start: int) -> int:
        """The end of the first `marker` at or after `start`, or -1."""
        searched, at = self.found.get(marker, (-1, -2))
        if searched <= start and (at == -1 or at >= start):
            return at if at < 0 else at + len(marker)
        at = self.text.find(marker, start)
        self.found[marker] = (start, at)
        return at if at < 0 else at + len(marker)


class _Parentheses:
    """The unescaped parentheses of a text, so a link destination finds where it ends without a scan.

    A destination holding parentheses ends at the first `)` that closes more than it opened, fails when they nest
    `MAX_PARENS + 1` deep, and otherwise stops at the next space or control character. With the running balance
    of every parenthesis indexed by value, each of those is a lookup: an input of many `](` openers, each
    followed by parentheses, stays linear.
    """

    __slots__ = ("text", "positions", "balances", "by_balance", "stop")

    def __init__(self, text: str) -> None:
        self.text = text
        self.positions: list[int] = []
        self.balances: list[int] = []
        self.by_balance: dict[int, list[int]] = {}
        balance = 0
        for match in _PARENTHESES.finditer(text):
            char = match.group()
            if char in "()":
                balance += 1 if char == "(" else -1
                self.by_balance.setdefault(balance, []).append(len(self.positions))
                self.positions.append(match.start())
                self.balances.append(balance)
        self.stop = (-1, -1)  # (searched from, the first stop character found there, or len(text))

    def destination_end(self, start: int, first: int) -> int:
        """The end of a destination starting at `start` whose first parenthesis is the `(` at `first`, or -1."""
        positions, balances, by_balance = self.positions, self.balances, self.by_balance
        index = bisect_left(positions, first)
        base = balances[index - 1] if index else 0
        stop = self._stop(start)
        close = deep = len(self.text)
        indices = by_balance.get(base - 1)
        if indices and (at := bisect_left(indices, index)) < len(indices):
            close = positions[indices[at]]  # the first `)` closing more than the destination opened
        indices = by_balance.get(base + MAX_PARENS + 1)
        if indices and (at := bisect_left(indices, index)) < len(indices):
            deep = positions[indices[at]]  # the first `(` nesting too deep
        if deep < close and deep < stop:
            return -1
        if close < stop:
            return close
        last = bisect_left(positions, stop) - 1
        return stop if (balances[last] if last >= 0 else 0) == base else -1

    def _stop(self, start: int) -> int:
        searched, found = self.stop
        if not (searched <= start <= found):
            match = _DESTINATION_STOP.search(self.text, start)
            found = match.start() if match is not None else len(self.text)
            self.stop = (start, found)
        return found


class _TickRuns:
    """Where each length of backtick run starts, so a code span finds its closer without a scan."""

    __slots__ = ("starts",)

    def __init__(self, text: str) -> None:
        self.starts: dict[int, list[int]] = {}
        for run in _TICKS.finditer(text):
            self.starts.setdefault(run.end() - run.start(), []).append(run.start())

    def closing(self, length: int, after: int) -> int:
        """Start of the first run of exactly `length` backticks at or after `after`, or -1."""
        starts = self.starts.get(length, ())
        index = bisect_left(starts, after)
        return starts[index] if index < len(starts) else -1


def plain_text(raw: str, references: set[str]) -> str:
    """The text commonmark-java's Text and Code nodes hold for `raw` (a leaf's inline content), trimmed."""
    if _SPECIAL.search(raw) is None:
        return raw.strip(JAVA_SPACE)
    return _Inline(raw, references).run().strip(JAVA_SPACE)


class _Inline:
    """One pass over a leaf's inline content (see the module docstring)."""

    def __init__(self, text: str, references: set[str]) -> None:
        self.text = text
        self.references = references
        self.pieces: list[str] = []
        self.text_last = False  # the last piece is plain text (a hard break looks at its trailing spaces)
        self.delimiters: list[_Delimiter] = []
        self.brackets: list[_Bracket] = []
        self.opened = 0  # brackets opened so far
        self.inactive_below = 0  # link openers below this stack height are inside a link: they cannot open one
        self.ticks: _TickRuns | None = None
        self.parentheses: _Parentheses | None = None
        self.closers = _Closers(text)

    def run(self) -> str:
        text, length, position = self.text, len(self.text), 0
        search = _SPECIAL.search
        while position < length:
            match = search(text, position)
            if match is None:
                self._text(text[position:].rstrip(" \t"))
                break
            if match.start() > position:
                self._text(text[position : match.start()])
            position = _HANDLERS[match.group()](self, match.start())
        self._emphasis(0)
        return "".join(self.pieces)

    def _text(self, value: str) -> None:
        if value:
            self.pieces.append(value)
            self.text_last = True

    def _literal(self, value: str) -> None:
        self.pieces.append(value)
        self.text_last = False

    def _bracket(self, at: int) -> int:
        length = len(self.text)
        while True:  # a run of brackets in one go
            self._open(at, at + 1, image=False)
            at += 1
            if at >= length or self.text[at] != "[":
                return at

    def _bang(self, at: int) -> int:
        if self.text.startswith("[", at + 1):
            self._open(at, at + 2, image=True)
            return at + 2
        self._text("!")
        return at + 1

    def _line_break(self, at: int) -> int:
        hard = False
        if self.text_last and self.pieces[-1].endswith(" "):
            last = self.pieces[-1]
            stripped = last.rstrip(" ")
            hard = len(last) - len(stripped) >= 2
            self.pieces[-1] = stripped
        self._literal("\n" if hard else " ")
        return at + 1

    def _backslash(self, at: int) -> int:
        following = self.text[at + 1 : at + 2]
        if following == "\n":
            self._literal("\n")
            return at + 2
        if following in _ESCAPABLE and following:
            self._literal(following)
            return at + 2
        self._text("\\")
        return at + 1

    def _code_span(self, at: int) -> int:
        run = _TICKS.match(self.text, at)
        assert run is not None
        length, end = run.end() - at, run.end()
        self.ticks = self.ticks or _TickRuns(self.text)
        close = self.ticks.closing(length, end)
        if close < 0:
            self._text(run.group())
            return end
        code = self.text[end:close].replace("\n", " ")
        if code.startswith(" ") and code.endswith(" ") and code.strip(" "):
            code = code[1:-1]
        self._literal(code)
        return close + length

    def _run(self, at: int) -> int:
        text = self.text
        match = _RUN.match(text, at)
        assert match is not None
        end = match.end()
        before_space, before_mark = _kind(text[at - 1]) if at else (True, False)
        after_space, after_mark = _kind(text[end]) if end < len(text) else (True, False)
        left = not after_space and (not after_mark or before_space or before_mark)
        right = not before_space and (not before_mark or after_space or after_mark)
        char = match.group()[0]
        if char == "_":
            can_open, can_close = left and (not right or before_mark), right and (not left or after_mark)
        else:
            can_open, can_close = left, right
        self._literal(match.group())
        self.delimiters.append(_Delimiter(char, len(self.pieces) - 1, end - at, can_open, can_close))
        return end

    def _open(self, at: int, after: int, image: bool) -> None:
        pieces = self.pieces
        pieces.append("![" if image else "[")
        self.text_last = False
        self.opened += 1
        self.brackets.append((len(pieces) - 1, after, image, len(self.delimiters), self.opened))

    def _close(self, at: int) -> int:
        """A `]`: close the nearest bracket as a link or image when a destination or a defined label follows."""
        if not self.brackets:
            self._text("]")
            return at + 1
        piece, start, image, delimiters, serial = self.brackets[-1]
        if not image and len(self.brackets) <= self.inactive_below:
            self._pop_bracket()
            self._text("]")
            return at + 1
        end = self._inline_link(at + 1)
        if end < 0 and self.references:
            end = self._reference(start, serial < self.opened, at)
        if end < 0:
            self._pop_bracket()
            self._text("]")
            return at + 1
        self.pieces[piece] = ""
        self._emphasis(delimiters)
        self._pop_bracket()
        if not image:
            self.inactive_below = len(self.brackets)
        self.text_last = False
        return end

    def _pop_bracket(self) -> None:
        self.brackets.pop()
        self.inactive_below = min(self.inactive_below, len(self.brackets))

    def _inline_link(self, at: int) -> int:
        """The end of `(destination "title")` at `at`, or -1."""
        text = self.text
        if not text.startswith("(", at):
            return -1
        position = _SPACE_NEWLINE.match(text, at + 1).end()  # type: ignore[union-attr]
        destination_end = self._destination(position)
        if destination_end < 0:
            return -1
        position = _SPACE_NEWLINE.match(text, destination_end).end()  # type: ignore[union-attr]
        if position > destination_end and (title := _TITLE.match(text, position)) is not None:
            position = _SPACE_NEWLINE.match(text, title.end()).end()  # type: ignore[union-attr]
        return position + 1 if text.startswith(")", position) else -1

    def _destination(self, position: int) -> int:
        """The end of a link destination at `position` (`<...>` or balanced parentheses), or -1."""
        text = self.text
        if text.startswith("<", position):
            angle = _ANGLE_DESTINATION.match(text, position)
            return angle.end() if angle is not None else -1
        end = _PLAIN_DESTINATION.match(text, position).end()  # type: ignore[union-attr]
        if text.startswith("(", end):
            self.parentheses = self.parentheses or _Parentheses(text)
            end = self.parentheses.destination_end(position, end)
            return end if end >= 0 else -1
        return end if end > position or text.startswith(")", end) else -1

    def _reference(self, start: int, bracket_after: bool, at: int) -> int:
        """The end of a full, collapsed or shortcut reference whose label is defined, or -1.

        `start` is where the opener's text starts; `bracket_after`, whether a bracket was opened after it (its
        text is then no label: a label holds no unescaped bracket).
        """
        label = _LABEL.match(self.text, at + 1)
        end = at + 1
        if label is not None and label.group(1):
            name, end = label.group(1), label.end()
        elif bracket_after or at - start > 999:
            return -1
        else:
            name = self.text[start:at]
            if label is not None:
                end = label.end()  # `[]`: a collapsed reference
        return end if normalize_label(name) in self.references and name.strip() else -1

    def _angle(self, at: int) -> int:
        text = self.text
        for pattern in (_AUTOLINK, _EMAIL):
            if (link := pattern.match(text, at)) is not None:
                self._literal(link.group(1))
                return link.end()
        if (tag := _TAG.match(text, at)) is not None:
            self._literal("")
            return tag.end()
        for opener, closer in _CLOSED_BY:
            if text.startswith(opener, at):
                end = self.closers.after(closer, at + len(opener)) if closer else at + len(opener)
                if end >= 0:
                    self._literal("")
                    return end
                break
        else:
            if _DECLARATION.match(text, at) and (end := self.closers.after(">", at + 2)) >= 0:
                self._literal("")
                return end
        self._text("<")
        return at + 1

    def _entity(self, at: int) -> int:
        match = _ENTITY.match(self.text, at)
        value = _entity_text(match) if match is not None else None
        if value is None:
            self._text("&")
            return at + 1
        self._literal(value)
        return match.end()  # type: ignore[union-attr]

    def _emphasis(self, bottom: int) -> None:
        """CommonMark's `process emphasis` over the delimiters from `bottom` up, which are then dropped."""
        run = self.delimiters[bottom:]
        del self.delimiters[bottom:]
        for previous, following in zip(run, run[1:], strict=False):
            previous.next, following.previous = following, previous
        if run:
            run[0].previous = None
        floors: dict[tuple[str, bool, int], _Delimiter | None] = {}
        closer = run[0] if run else None
        while closer is not None:
            if not closer.can_close:
                closer = closer.next
                continue
            key = (closer.char, closer.can_open, closer.length % 3)
            floor = floors.get(key)
            opener = closer.previous
            while opener is not None and opener is not floor:
                if (
                    opener.char == closer.char
                    and opener.can_open
                    and not (
                        (closer.can_open or opener.can_close)
                        and closer.length % 3
                        and (opener.length + closer.length) % 3 == 0
                    )
                ):
                    break
                opener = opener.previous
            if opener is None or opener is floor:
                floors[key] = closer.previous
                after = closer.next
                if not closer.can_open:
                    _unlink(closer)
                closer = after
                continue
            used = 2 if closer.count >= 2 and opener.count >= 2 else 1
            opener.count -= used
            closer.count -= used
            opener.next, closer.previous = closer, opener  # the delimiters in between stay literal
            if opener.count == 0:
                _unlink(opener)
            if closer.count == 0:
                after = closer.next
                _unlink(closer)
                closer = after
        pieces = self.pieces
        for delimiter in run:
            pieces[delimiter.piece] = delimiter.char * delimiter.count


_HANDLERS: dict[str, Callable[[_Inline, int], int]] = {
    "\n": _Inline._line_break,
    "\\": _Inline._backslash,
    "`": _Inline._code_span,
    "*": _Inline._run,
    "_": _Inline._run,
    "[": _Inline._bracket,
    "!": _Inline._bang,
    "]": _Inline._close,
    "<": _Inline._angle,
    "&": _Inline._entity,
}
"""What each character `_SPECIAL` finds starts."""

_ASCII_KINDS = {chr(code): (is_space(chr(code)), is_punctuation(chr(code))) for code in range(128)}


def _kind(char: str) -> tuple[bool, bool]:
    """(whitespace, punctuation) of a character next to a delimiter run, as CommonMark's flanking rules see it."""
    kind = _ASCII_KINDS.get(char)
    return kind if kind is not None else (is_space(char), is_punctuation(char))


def _unlink(delimiter: _Delimiter) -> None:
    if delimiter.previous is not None:
        delimiter.previous.next = delimiter.next
    if delimiter.next is not None:
        delimiter.next.previous = delimiter.previous


def _entity_text(match: re.Match[str]) -> str | None:
    """The character an entity stands for (as commonmark-java decodes it), or None when it is not one."""
    hexadecimal, decimal, name = match.groups()
    if name is not None:
        return html5.get(name + ";")
    code = int(hexadecimal, 16) if hexadecimal is not None else int(decimal)
    if code == 0 or code > 0x10FFFF or 0xD800 <= code <= 0xDFFF:
        return "\ufffd"
    return chr(code)
