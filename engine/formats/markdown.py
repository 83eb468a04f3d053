"""Markdown bodies: `{"frontMatter": {...}, "tables": [...], "sections": [{heading, level, content}]}`.

Front matter is a leading `---` block of YAML (only a mapping counts). Tables are top-level GFM
pipe tables (a line without a pipe ends one, as in commonmark-java's table extension, which the
reference engine uses). A section is a top-level ATX or setext heading; its content is the plain
text (markup, link targets and HTML removed) of the paragraphs, list items and quotes up to the
next heading, one per line, without tables or code blocks. `outputSchema` keeps only the
sections whose heading starts with it.

This is a subset of CommonMark written for the purpose, and linear: every pattern either is
anchored to one line or cannot backtrack, code spans and inline comments are matched through
positions found once, so no input makes it slower than about 1 s per MB. markdown-it-py, the
library CommonMark port, was measured too: 0.45 s for a 1 MB README, but 15 to 18 s for 1 MB of
`[` or `![a` repeated (linear with a large constant), past the bound decoding must keep.
"""

from __future__ import annotations

import re
import unicodedata
from bisect import bisect_left
from dataclasses import dataclass
from functools import partial
from html import unescape
from typing import Any
from collections.abc import Callable

from .common import Budget, rows_to_objects
from .yaml import load_yaml

_ATX = re.compile(r"^ {0,3}(#{1,6})(?:[ \t]+(.*))?$")  # content and closing `#`s trimmed in code: no backtracking
_SETEXT = re.compile(r"^ {0,3}(=+|-+)[ \t]*$")
_THEMATIC = re.compile(r"^ {0,3}([-*_])(?:[ \t]*\1){2,}[ \t]*$")
_FENCE = re.compile(r"^ {0,3}(`{3,}(?=[^`]*$)|~{3,})")
_LIST_ITEM = re.compile(r"^ {0,3}(?:[-+*]|\d{1,9}[.)])(?:[ \t]+|$)")
_QUOTE = re.compile(r" {0,3}> ?")  # used with match(line, position)
_HTML_ATTRIBUTE = r"""(?:[ \t]+[A-Za-z_:][\w.:-]*(?:[ \t]*=[ \t]*(?:[^\s"'=<>`]+|'[^']*'|"[^"]*"))?)"""
# CommonMark's HTML blocks: 1-5 end at their own marker, 6 (block-level tags) and 7 (a complete
# tag alone on its line, which cannot interrupt a paragraph) at a blank line.
_HTML_BLOCK_ENDS = (
    (
        re.compile(r"^ {0,3}<(?:script|pre|style|textarea)(?:[ \t>]|$)", re.IGNORECASE),
        re.compile(r"</(?:script|pre|style|textarea)>", re.IGNORECASE),
    ),
    (re.compile(r"^ {0,3}<!--"), re.compile(r"-->")),
    (re.compile(r"^ {0,3}<\?"), re.compile(r"\?>")),
    (re.compile(r"^ {0,3}<![A-Za-z]"), re.compile(r">")),
    (re.compile(r"^ {0,3}<!\[CDATA\["), re.compile(r"\]\]>")),
)
_HTML_BLOCK_TAG = re.compile(r"^ {0,3}</?([A-Za-z][A-Za-z0-9-]*)(?:[ \t]|/?>|$)")
_HTML_BLOCK_NAMES = frozenset(
    """address article aside base basefont blockquote body caption center col
    colgroup dd details dialog dir div dl dt fieldset figcaption figure footer form frame frameset h1 h2 h3
    h4 h5 h6 head header hr html iframe legend li link main menu menuitem nav noframes ol optgroup option p
    param search section summary table tbody td tfoot th thead title tr track ul""".split()
)
_HTML_COMPLETE_TAG = re.compile(
    r"^ {0,3}(?:<[A-Za-z][A-Za-z0-9-]*" + _HTML_ATTRIBUTE + r"*[ \t]*/?>|</[A-Za-z][A-Za-z0-9-]*[ \t]*>)[ \t]*$"
)
_LINK_DEFINITION = re.compile(
    r"^ {0,3}\[((?:[^\]\\]|\\.)+)\]:[ \t]*\S+(?:[ \t]+(?:\"[^\"]*\"|'[^']*'|\([^)]*\)))?[ \t]*$"
)
_BLOCK_MARKERS = frozenset("`~#=-*_>+<[0123456789")
"""First characters (after indentation) a fence, heading, rule, quote, list item, HTML block or
link definition starts with; a line starting otherwise, without a pipe, is paragraph text."""
_DELIMITER_CELL = re.compile(r"^[ \t]*:?-+:?[ \t]*$")
_UNESCAPED_PIPE = re.compile(r"(?<!\\)\|")


@dataclass(slots=True)
class _MdHeading:
    level: int
    raw: str


@dataclass(slots=True)
class _MdTable:
    headers: list[str]
    rows: list[list[str]]


@dataclass(slots=True)
class _MdText:
    raw: str


def decode_markdown(prefix: str | None, budget: Budget, text: str) -> dict[str, Any]:
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    front_matter, body = _split_front_matter(text, budget)
    blocks, references = _BlockScanner(body.split("\n")).scan()
    budget.spend(len(blocks))
    plain = partial(_plain_text, references=references)
    tables = []
    for block in blocks:
        if isinstance(block, _MdTable):
            headers = [plain(cell) for cell in block.headers]
            if any(headers):
                budget.spend(1 + len(headers))
                tables.append(rows_to_objects(headers, [[plain(c) for c in row] for row in block.rows], budget))
    return {"frontMatter": front_matter, "tables": tables, "sections": _markdown_sections(blocks, plain, prefix)}


def _split_front_matter(text: str, budget: Budget) -> tuple[dict[str, Any], str]:
    """A leading `---` … `---` block parsed as YAML; only a mapping counts as front matter."""
    if not text.startswith("---\n"):
        return {}, text
    end = text.find("\n---\n", 3)
    if end == -1:
        if not text.endswith("\n---"):
            return {}, text
        end = len(text) - 4
    block, body = text[4:end], text[end + 5 :]
    data = load_yaml(block, "markdown front matter", budget) if block.strip() else None
    return (data if isinstance(data, dict) else {}), body


def _markdown_sections(blocks: list[Any], plain: Callable[[str], str], prefix: str | None) -> list[dict[str, Any]]:
    """Each top-level heading with the text of the blocks up to the next heading (tables left out)."""
    sections: list[dict[str, Any]] = []
    contents: list[list[str]] = []
    for block in blocks:
        if isinstance(block, _MdHeading):
            sections.append({"heading": plain(block.raw), "level": block.level, "content": ""})
            contents.append([])
        elif isinstance(block, _MdText) and sections:
            text = plain(block.raw)
            if text:
                contents[-1].append(text)
    for section, content in zip(sections, contents, strict=True):
        section["content"] = "\n".join(content)
    return [s for s in sections if prefix is None or s["heading"].startswith(prefix)]


class _BlockScanner:
    """Splits markdown lines into headings, tables and text blocks (a subset of CommonMark).

    Code and HTML blocks are dropped, as the reference engine drops them from section text.
    Only top-level headings and tables count: lines in list items and block quotes become
    text. Link reference definitions are collected for the inline pass.
    """

    def __init__(self, lines: list[str]) -> None:
        self.lines = lines
        self.index = 0
        self.blocks: list[_MdHeading | _MdTable | _MdText] = []
        self.references: set[str] = set()
        self.paragraph: list[str] = []
        self.in_list = self.in_quote = False
        self.after_blank = True
        self.rules = (
            self._fence,
            self._heading,
            self._setext,
            self._thematic,
            self._table,
            self._quote,
            self._list_item,
            self._html,
            self._definition,
        )

    def scan(self) -> tuple[list[_MdHeading | _MdTable | _MdText], set[str]]:
        while self.index < len(self.lines):
            self.index += 1
            self._line(self.lines[self.index - 1])
        self._flush()
        return self.blocks, self.references

    def _line(self, line: str) -> None:
        if not line.strip():
            self._flush()
            self.after_blank, self.in_quote = True, False
            return
        indent = len(line[: len(line) - len(line.lstrip(" \t"))].expandtabs(4))
        blank_before, self.after_blank = self.after_blank, False
        if self.in_list and indent == 0 and blank_before:
            self.in_list = False
        if self.in_list and indent > 0:
            self._list_continuation(line.lstrip(), blank_before)
        elif indent >= 4 and not self.paragraph:
            pass  # indented code
        elif (stripped := line.lstrip(" \t"))[0] not in _BLOCK_MARKERS and "|" not in line:
            self.paragraph.append(stripped)  # no block rule can match: a paragraph line
        elif not any(rule(line) for rule in self.rules):
            self.paragraph.append(line.lstrip())

    def _flush(self) -> None:
        if self.paragraph:
            self.blocks.append(_MdText("\n".join(self.paragraph)))
            self.paragraph.clear()

    def _list_continuation(self, line: str, blank_before: bool) -> None:
        if self._fence(line):
            return
        item = _LIST_ITEM.match(line)
        if item or blank_before:
            self._flush()
        self.paragraph.append(line[item.end() :] if item else line)

    def _fence(self, line: str) -> bool:
        fence = _FENCE.match(line)
        if fence:
            self._flush()
            self.index = _skip_fence(self.lines, self.index, fence.group(1))
            self.in_list = False
        return fence is not None

    def _heading(self, line: str) -> bool:
        heading = _ATX.match(line)
        if heading:
            self._flush()
            self.blocks.append(_MdHeading(len(heading.group(1)), _heading_text(heading.group(2))))
            self.in_list = self.in_quote = False
        return heading is not None

    def _setext(self, line: str) -> bool:
        if not self.paragraph or self.in_quote or self.in_list or not _SETEXT.match(line):
            return False
        self.blocks.append(_MdHeading(1 if line.strip()[0] == "=" else 2, "\n".join(self.paragraph)))
        self.paragraph.clear()
        return True

    def _thematic(self, line: str) -> bool:
        if not _THEMATIC.match(line):
            return False
        self._flush()
        self.in_list = self.in_quote = False
        return True

    def _table(self, line: str) -> bool:
        table = _table_at(self.lines, self.index - 1)
        if table is not None:
            self._flush()
            self.index = _read_table_rows(self.lines, self.index + 1, table)
            self.blocks.append(table)
            self.in_list = self.in_quote = False
        return table is not None

    def _quote(self, line: str) -> bool:
        quote = _QUOTE.match(line)
        if quote is None:
            return False
        if not self.in_quote:
            self._flush()
        self.in_quote, self.in_list = True, False
        position = quote.end()
        while (nested := _QUOTE.match(line, position)) is not None and nested.end() > position:
            position = nested.end()
        inner = line[position:]
        if heading := _ATX.match(inner):  # a quoted heading is text, not a section
            self._flush()
            self.paragraph.append(_heading_text(heading.group(2)))
            self._flush()
        elif inner.strip():
            self.paragraph.append(inner.lstrip())
        else:
            self._flush()
        return True

    def _list_item(self, line: str) -> bool:
        item = _LIST_ITEM.match(line)
        if item:
            self._flush()
            self.in_list, self.in_quote = True, False
            if line[item.end() :].strip():
                self.paragraph.append(line[item.end() :])
        return item is not None

    def _html(self, line: str) -> bool:
        for start, end in _HTML_BLOCK_ENDS:
            if start.match(line):
                self._flush()
                self.index = _skip_to(self.lines, self.index - 1, end)
                return True
        tag = _HTML_BLOCK_TAG.match(line)
        if tag and tag.group(1).lower() in _HTML_BLOCK_NAMES or (not self.paragraph and _HTML_COMPLETE_TAG.match(line)):
            self._flush()
            self.index = _skip_html_block(self.lines, self.index - 1)
            return True
        return False

    def _definition(self, line: str) -> bool:
        definition = None if self.paragraph else _LINK_DEFINITION.match(line)
        if definition:
            self.references.add(_reference_label(definition.group(1)))
        return definition is not None


def _skip_fence(lines: list[str], index: int, opener: str) -> int:
    """Index after the closing fence (or the end: an unclosed fence runs to the end)."""
    closing = re.compile(rf"^ {{0,3}}{re.escape(opener[0])}{{{len(opener)},}}[ \t]*$")
    while index < len(lines):
        index += 1
        if closing.match(lines[index - 1]):
            break
    return index


def _skip_html_block(lines: list[str], index: int) -> int:
    """Index after an HTML block that ends at a blank line."""
    while index < len(lines) and lines[index].strip():
        index += 1
    return index


def _skip_to(lines: list[str], index: int, end: re.Pattern[str]) -> int:
    """Index after the line holding `end` (an unclosed block runs to the end)."""
    while index < len(lines) and not end.search(lines[index]):
        index += 1
    return index + 1


def _heading_text(content: str | None) -> str:
    """ATX heading content without its closing `#` sequence (one preceded by a space, or alone)."""
    text = (content or "").rstrip(" \t")
    bare = text.rstrip("#")
    if bare == text:
        return text
    if not bare:
        return ""
    return bare.rstrip(" \t") if bare[-1] in " \t" else text


def _split_row(line: str) -> list[str]:
    """Cells of a pipe-table row: outer pipes dropped, `\\|` kept as a literal pipe."""
    body = line.strip()
    if body.startswith("|"):
        body = body[1:]
    if body.endswith("|") and not body.endswith("\\|"):
        body = body[:-1]
    return [cell.strip().replace("\\|", "|") for cell in _UNESCAPED_PIPE.split(body)]


def _table_at(lines: list[str], index: int) -> _MdTable | None:
    """A table whose header row is `lines[index]`, when a matching delimiter row follows."""
    if index + 1 >= len(lines):
        return None
    header, delimiter = lines[index], lines[index + 1]
    if "|" not in header or "|" not in delimiter or len(delimiter) - len(delimiter.lstrip()) > 3:
        return None
    delimiter_cells = _split_row(delimiter)
    if not all(_DELIMITER_CELL.match(cell) for cell in delimiter_cells):
        return None
    header_cells = _split_row(header)
    if len(header_cells) != len(delimiter_cells):
        return None
    return _MdTable(header_cells, [])


def _read_table_rows(lines: list[str], index: int, table: _MdTable) -> int:
    """Append body rows (lines with a pipe, up to a blank line) and return the next index."""
    while index < len(lines) and "|" in lines[index] and lines[index].strip() != "|":
        table.rows.append(_split_row(lines[index])[: len(table.headers)])
        index += 1
    return index


# Inline markdown → plain text, keeping what commonmark's Text and Code nodes hold.

_INLINE_TOKEN = re.compile(
    r"""
    (?P<escape>\\[!-/:-@\[-`{-~])
  | (?P<hardbreak>(?:\\|(?<![ ])[ ]{2,})\n)
  | (?P<backticks>`+)
  | (?P<comment><!--)
  | <(?P<autolink>[A-Za-z][A-Za-z0-9+.-]{1,31}:[^<>\s]*
        |[A-Za-z0-9.!\#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?)>
  | (?P<html><[A-Za-z][A-Za-z0-9-]*
        (?:\s+[A-Za-z_:][\w.:-]*(?:\s*=\s*(?:[^\s"'=<>`]+|'[^']*'|"[^"]*"))?)*\s*/?>
        |</[A-Za-z][A-Za-z0-9-]*\s*>)
  | (?P<entity>&(?:\#[0-9]{1,7}|\#[xX][0-9a-fA-F]{1,6}|[A-Za-z][A-Za-z0-9]{1,31});)
""",
    re.VERBOSE,
)
_TICK_RUN = re.compile(r"`+")
_INLINE_MARKERS = re.compile(r"[\\`<&\[\]*_\x00]| \n")  # text without these has no inline markup
_PLACEHOLDER = re.compile("\x00(\\d+)\x00")
_LINK_TAIL = r"\((?:[^()\s]|\([^()\s]*\))*(?:\s+(?:\"[^\"]*\"|'[^']*'|\([^()]*\)))?\s*\)"
_IMAGE = re.compile(r"!\[([^\[\]]*)\]" + _LINK_TAIL)
_LINK = re.compile(r"\[([^\[\]]*)\]" + _LINK_TAIL)
_REFERENCE_LINK = re.compile(r"!?\[([^\[\]]+)\](?:\[([^\[\]]*)\])?")
_DELIMITER_RUN = re.compile(r"\*+|_+")


def _reference_label(label: str) -> str:
    return " ".join(label.split()).casefold()


class _TickRuns:
    """Where each length of backtick run starts, so a code span finds its closer without a scan."""

    def __init__(self, text: str) -> None:
        self.starts: dict[int, list[int]] = {}
        for run in _TICK_RUN.finditer(text):
            self.starts.setdefault(run.end() - run.start(), []).append(run.start())

    def closing(self, length: int, after: int) -> int:
        """Start of the first run of exactly `length` backticks at or after `after`, or -1."""
        starts = self.starts.get(length, ())
        index = bisect_left(starts, after)
        return starts[index] if index < len(starts) else -1


def _protect(text: str, kept: list[str]) -> str:
    """Escapes, code spans, autolinks, raw HTML and entities replaced by placeholders of their text."""
    pieces: list[str] = []
    ticks: _TickRuns | None = None
    comments_end = len(text)  # no `-->` after this position
    position = 0
    while (match := _INLINE_TOKEN.search(text, position)) is not None:
        pieces.append(text[position : match.start()])
        kind, end = match.lastgroup, match.end()
        if kind == "backticks":
            ticks = ticks or _TickRuns(text)
            length = end - match.start()
            close = ticks.closing(length, end)
            if close >= 0:
                value, end = _code_span(text[end:close]), close + length
            else:
                value = match.group()
        elif kind == "comment":
            close = text.find("-->", end) if match.start() < comments_end else -1
            if close < 0:
                comments_end = min(comments_end, match.start())
                pieces.append("<")
                position = match.start() + 1
                continue
            value, end = "", close + 3
        elif kind == "escape":
            value = match.group()[1]
        elif kind == "hardbreak":
            value = "\n"
        elif kind == "autolink":
            value = match.group("autolink")
        elif kind == "html":
            value = ""
        else:
            value = unescape(match.group())
        kept.append(value)
        pieces.append(f"\x00{len(kept) - 1}\x00")
        position = end
    pieces.append(text[position:])
    return "".join(pieces)


def _plain_text(raw: str, references: set[str]) -> str:
    """The literal text of inline markdown: markup, link targets and raw HTML removed."""
    if _INLINE_MARKERS.search(raw) is None:
        return " ".join(line.strip(" \t") for line in raw.strip().split("\n"))
    kept: list[str] = []
    text = _protect(raw.replace("\x00", "\ufffd"), kept)
    text = _IMAGE.sub(r"\1", text)
    text = _LINK.sub(r"\1", text)
    text = _REFERENCE_LINK.sub(partial(_resolve_reference, references), text)
    text = _strip_emphasis(text)
    text = " ".join(line.strip(" \t") for line in text.strip().split("\n"))  # soft breaks
    return _PLACEHOLDER.sub(lambda m: kept[int(m.group(1))], text).strip()


class _Run:
    """A run of `*` or `_`: how many of its characters open or close emphasis."""

    __slots__ = ("char", "start", "end", "left", "can_open", "order", "closed", "opened")

    def __init__(self, match: re.Match[str], text: str, order: int) -> None:
        self.char, self.start, self.end, self.order = match.group()[0], match.start(), match.end(), order
        before = text[self.start - 1] if self.start else " "
        after = text[self.end] if self.end < len(text) else " "
        before_gap, after_gap = before.isspace(), after.isspace()
        before_mark, after_mark = _is_punctuation(before), _is_punctuation(after)
        left = not after_gap and (not after_mark or before_gap or before_mark)
        right = not before_gap and (not before_mark or after_gap or after_mark)
        if self.char == "*":
            self.can_open, can_close = left, right
        else:  # `_` does not open or close inside a word
            self.can_open = left and (not right or before_mark)
            can_close = right and (not left or after_mark)
        self.left = (self.end - self.start) if can_close else 0  # characters still able to close
        self.closed = self.opened = 0


def _is_punctuation(char: str) -> bool:
    return unicodedata.category(char)[0] in "PS"


def _strip_emphasis(text: str) -> str:
    """Drop the `*`/`_` characters that CommonMark pairs into emphasis, in one linear pass.

    Nearest-opener matching with the flanking rules; the "rule of three" is not applied.
    """
    runs = [_Run(m, text, i) for i, m in enumerate(_DELIMITER_RUN.finditer(text))]
    openers: dict[str, list[_Run]] = {"*": [], "_": []}
    for run in runs:
        mine, other = openers[run.char], openers["_" if run.char == "*" else "*"]
        while run.left and mine:
            opener = mine[-1]
            available = opener.end - opener.start - opener.closed - opener.opened
            used = 2 if available >= 2 and run.left >= 2 else 1
            opener.opened += used
            run.closed += used
            run.left -= used
            while other and other[-1].order > opener.order:  # delimiters in between are literal
                other.pop()
            if available == used:
                mine.pop()
        if run.can_open and run.end - run.start - run.closed > 0:
            mine.append(run)
    pieces, position = [], 0
    for run in runs:
        if run.closed or run.opened:
            pieces.append(text[position : run.start])
            pieces.append(text[run.start + run.closed : run.end - run.opened])
            position = run.end
    pieces.append(text[position:])
    return "".join(pieces)


def _resolve_reference(references: set[str], match: re.Match[str]) -> str:
    """`[text][label]`, `[text][]` and `[label]` become their text when the label is defined."""
    label = match.group(2) or match.group(1)
    return match.group(1) if _reference_label(label) in references else match.group()


def _code_span(code: str) -> str:
    code = code.replace("\n", " ")
    if len(code) > 2 and code[0] == " " and code[-1] == " " and code.strip():
        return code[1:-1]
    return code
