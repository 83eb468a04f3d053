"""Link reference definitions, as commonmark-java reads them off the start of a paragraph, line by line.

`[label]: destination "title"` lines at a paragraph's start define labels and are no text; what a definition
can be decides line by line (a title may come on the next line, or a label span two), as commonmark-java's
`LinkReferenceDefinitionParser` does it, so a paragraph's text lines are known after each line (the block parser
asks for them when a table, setext heading or list item might start) and each line is read once. Labels match
after `normalize_label`; the inline pass (`markdown_inline`) resolves `[text][label]` and `[label]` with them.
"""

from __future__ import annotations

import re

ESCAPABLE = frozenset("!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~")
"""The ASCII punctuation a backslash escapes."""
MAX_PARENS = 32
"""Nesting bound of parentheses in a link destination (commonmark-java and markdown-it stop there too)."""
_SPACES = re.compile(r"[ \t]*")


def normalize_label(label: str) -> str:
    """A link label as commonmark-java matches it: trimmed, inner whitespace collapsed, case folded."""
    return " ".join(label.split()).lower().upper()


_START, _LABEL, _DESTINATION, _START_TITLE, _TITLE, _TEXT = range(6)


class Definitions:
    """commonmark-java's `LinkReferenceDefinitionParser`: definitions at a paragraph's start, read line by line.

    `lines` are the paragraph's lines not (yet) taken by a definition; `finish()` gives the labels defined.
    """

    __slots__ = ("state", "lines", "labels", "label", "valid", "closer")

    def __init__(self) -> None:
        self.state = _START
        self.lines: list[str] = []
        self.labels: list[str] = []
        self.label = ""
        self.valid = False  # the definition being read is complete (a title may still follow)
        self.closer = ""

    def add(self, line: str) -> None:
        self.lines.append(line)
        if self.state == _TEXT or self.state == _START and not line.startswith("["):
            self.state = _TEXT  # (paragraph lines come without their indentation)
            self._complete()
            return
        position = 0
        while self.state != _TEXT and position < len(line):
            position = self._step(line, position)
            if position < 0:
                self.state = _TEXT
                self._complete()

    def finish(self) -> list[str]:
        self._complete()
        return self.labels

    def _complete(self) -> None:
        if self.valid:
            self.labels.append(self.label)
            self.valid = False

    def _step(self, line: str, at: int) -> int:
        state = self.state
        if state == _START:
            self._complete()
            at = _SPACES.match(line, at).end()  # type: ignore[union-attr]
            if not line.startswith("[", at):
                return -1
            self.state, self.label = _LABEL, ""
            return at + 1
        if state == _LABEL:
            end = _label_end(line, at)
            if end < 0:
                return -1
            self.label += line[at:end]
            if end == len(line):
                self.label += "\n"
                return end
            if not line.startswith(":", end + 1) or len(self.label) > 999 or not self.label.strip():
                return -1
            self.state = _DESTINATION
            return _SPACES.match(line, end + 2).end()  # type: ignore[union-attr]
        if state == _DESTINATION:
            at = _SPACES.match(line, at).end()  # type: ignore[union-attr]
            end = _destination_end(line, at)
            if end < 0:
                return -1
            after = _SPACES.match(line, end).end()  # type: ignore[union-attr]
            if after == len(line):
                self.valid = True
                self.lines.clear()
            elif after == end:
                return -1  # the title must be separated from the destination
            self.state = _START_TITLE
            return after
        if state == _START_TITLE:
            at = _SPACES.match(line, at).end()  # type: ignore[union-attr]
            if at == len(line):
                self.state = _START
                return at
            closer = {'"': '"', "'": "'", "(": ")"}.get(line[at])
            if closer is None:
                self.state = _START  # perhaps another definition
                return at
            self.state, self.closer = _TITLE, closer
            return at + 1
        end = _title_end(line, at, self.closer)
        if end < 0:
            return -1
        if end == len(line):
            return end
        after = _SPACES.match(line, end + 1).end()  # type: ignore[union-attr]
        if after != len(line):
            return -1
        self.valid = True
        self.lines.clear()
        self.state = _START
        return after


def _label_end(line: str, at: int) -> int:
    """The position of the `]` ending a label's content (or the line's end), or -1 at an unescaped `[`."""
    length = len(line)
    while at < length:
        char = line[at]
        if char == "\\":
            at += 2 if at + 1 < length and line[at + 1] in ESCAPABLE else 1
        elif char == "]":
            return at
        elif char == "[":
            return -1
        else:
            at += 1
    return length


def _destination_end(line: str, at: int) -> int:
    """The end of a link destination at `at` (`<...>`, or balanced parentheses), or -1."""
    length = len(line)
    if line.startswith("<", at):
        at += 1
        while at < length:
            char = line[at]
            if char == "\\":
                at += 2 if at + 1 < length and line[at + 1] in ESCAPABLE else 1
            elif char == "<":
                return -1
            elif char == ">":
                return at + 1
            else:
                at += 1
        return -1
    start, depth = at, 0
    while at < length:
        char = line[at]
        if char == "\\":
            at += 2 if at + 1 < length and line[at + 1] in ESCAPABLE else 1
        elif char == "(":
            depth += 1
            if depth > MAX_PARENS:
                return -1
            at += 1
        elif char == ")":
            if depth == 0:
                break
            depth -= 1
            at += 1
        elif char <= " " or char == "\x7f":
            break
        else:
            at += 1
    return at if at > start and depth == 0 else -1


def _title_end(line: str, at: int, closer: str) -> int:
    """The position of the title's closing character (or the line's end), or -1 when the title is invalid."""
    length = len(line)
    while at < length:
        char = line[at]
        if char == "\\":
            at += 2 if at + 1 < length and line[at + 1] in ESCAPABLE else 1
        elif char == closer:
            return at
        elif closer == ")" and char == "(":
            return -1
        else:
            at += 1
    return length
