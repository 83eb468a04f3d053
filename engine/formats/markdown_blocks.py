"""The block phase of Markdown: lines into the leaves `markdown` reads (paragraphs, headings, tables).

CommonMark's two-phase algorithm (spec 0.31.2 appendix) in commonmark-java's form, one line at a time: the line
first continues the open blocks (quotes by their marker, list items by indentation, a paragraph by not being
blank), then may start new ones (in commonmark-java's order: table, quote, heading, fence, HTML, rule, list item,
indented code), and what is left is paragraph text, lazily continuing an open paragraph or table. Leaves are
emitted in document order as they close, each marked top-level or not; code and HTML blocks consume their lines
and emit nothing. Tables are GFM's: the delimiter row under a paragraph's last line holding a pipe, as many cells
as that header, rows going on while a line holds a pipe or starts no other block.

Linear and bounded: quotes and list items nest at most `MAX_NESTING` deep, so a line costs at most that many
continuation checks, and a blank line after a blank line (which can change nothing) none.
"""

from __future__ import annotations

import re

from .markdown_links import Definitions, normalize_label

MAX_NESTING = 100
"""Quotes and list items nest at most this deep; a marker past it is paragraph text."""

_BLOCK_START = frozenset("#`~*+_=<>-|:0123456789")
"""First characters (after indentation) of a line that can start a block or be a table's delimiter row; a
line starting otherwise is paragraph text."""
_ATX = re.compile(r"(#{1,6})(?:[ \t]+|$)")
_SETEXT = re.compile(r"(?:=+|-+)[ \t]*$")
_THEMATIC = re.compile(r"(?:(?:\*[ \t]*){3,}|(?:-[ \t]*){3,}|(?:_[ \t]*){3,})$")
_FENCE = re.compile(r"`{3,}(?=[^`]*$)|~{3,}")
_BULLET = re.compile(r"[-+*](?=[ \t]|$)|(\d{1,9})[.)](?=[ \t]|$)")
_HTML_TAG = r"""(?:<[A-Za-z][A-Za-z0-9-]*(?:\s+[a-zA-Z_:][a-zA-Z0-9:._-]*(?:\s*=\s*(?:[^"'=<>`\x00-\x20]+|'[^']*'|"[^"]*"))?)*\s*/?>|</[A-Za-z][A-Za-z0-9-]*\s*>)"""  # noqa: E501
_HTML_BLOCKS = (
    (
        re.compile(r"<(?:script|pre|style|textarea)(?:[ \t>]|$)", re.IGNORECASE),
        re.compile(r"</(?:script|pre|style|textarea)>", re.IGNORECASE),
    ),
    (re.compile(r"<!--"), re.compile(r"-->")),
    (re.compile(r"<\?"), re.compile(r"\?>")),
    (re.compile(r"<![A-Za-z]"), re.compile(r">")),
    (re.compile(r"<!\[CDATA\["), re.compile(r"\]\]>")),
    (
        re.compile(
            r"</?(?:address|article|aside|base|basefont|blockquote|body|caption|center|col|colgroup|dd|details"
            r"|dialog|dir|div|dl|dt|fieldset|figcaption|figure|footer|form|frame|frameset|h[1-6]|head|header|hr"
            r"|html|iframe|legend|li|link|main|menu|menuitem|nav|noframes|ol|optgroup|option|p|param|search"
            r"|section|summary|table|tbody|td|tfoot|th|thead|title|tr|track|ul)(?:[ \t]|/?>|$)",
            re.IGNORECASE,
        ),
        None,
    ),
    (re.compile(_HTML_TAG + r"[ \t]*$"), None),
)
"""CommonMark's HTML blocks 1-7: the start condition, and the end condition (None: a blank line ends it)."""
_DELIMITER_CELL = re.compile(r"[ \t]*:?-+:?[ \t]*$")
_UNESCAPED_PIPE = re.compile(r"(?<!\\)\|")


class Leaf:
    """An emitted paragraph or heading: its raw inline text; `level` 0 for a paragraph."""

    __slots__ = ("level", "raw", "top")

    def __init__(self, level: int, raw: str, top: bool) -> None:
        self.level, self.raw, self.top = level, raw, top


class _Container:
    """The document, a block quote or a list item (`indent`: the columns its content is indented by)."""

    __slots__ = ("kind", "indent", "empty")

    def __init__(self, kind: str, indent: int = 0) -> None:
        self.kind, self.indent = kind, indent
        self.empty = True  # no child block yet (a list item that starts blank ends at a second blank line)


class _Paragraph(Definitions):
    """Paragraph lines (`lines`: those that are text), the link reference definitions at its start read off as
    they come (`Definitions`)."""

    __slots__ = ()


class _Skipped:
    """A block whose lines give no text: a heading (its one line, `leaf`), a thematic break, a fenced or
    indented code block, an HTML block (`end`: the pattern of its last line, None when a blank line ends it)."""

    __slots__ = ("kind", "char", "length", "indent", "end", "done", "leaf")

    def __init__(
        self,
        kind: str,
        char: str = "",
        length: int = 0,
        indent: int = 0,
        end: re.Pattern[str] | None = None,
        leaf: Leaf | None = None,
    ) -> None:
        self.kind, self.char, self.length, self.indent, self.end, self.leaf = kind, char, length, indent, end, leaf
        self.done = False


class Table:
    """A GFM table: the header cells and the rows' cells (raw inline text)."""

    __slots__ = ("header", "rows", "top", "lazy")

    def __init__(self, header: list[str], top: bool) -> None:
        self.header, self.top = header, top
        self.rows: list[list[str]] = []
        self.lazy = True  # a line that starts no block is one more row (commonmark-java's lazy continuation)


_Block = _Container | _Paragraph | _Skipped | Table
_CONTINUED, _ENDED, _CONSUMED = 1, 0, 2


class BlockParser:
    """CommonMark's block phase, one line at a time (see the module docstring)."""

    def __init__(self) -> None:
        self.open: list[_Block] = [_Container("document")]
        self.events: list[Leaf | Table] = []
        self.references: set[str] = set()
        self.text = ""
        self.index = self.column = 0  # where the line is read; the column counts tabs to the next stop of 4
        self.next_nonspace = self.next_column = self.indent = 0
        self.blank = False
        self.run_from, self.run_has_tab = 1, False  # the run of spaces last scanned (see _find_next_nonspace)
        self.after_blank = True  # the document starts as if after a blank line
        self.thematic_from = -1  # (see _thematic)

    def finish(self) -> list[Leaf | Table]:
        self._close(1)
        return self.events

    # ----------------------------------------------------------------- one line

    def line(self, text: str) -> None:
        if not text.strip(" \t"):
            self._blank_line()
            return
        self.after_blank = False
        self.text, self.index, self.column = text, 0, 0
        self.run_from = len(text) + 1  # no run of spaces scanned yet on this line
        self.thematic_from = -1
        open_ = self.open
        matched = 1
        while matched < len(open_):
            self._find_next_nonspace()
            result = self._continue(open_[matched])
            if result == _CONSUMED:
                self._close(matched)
                return
            if result == _ENDED:
                break
            matched += 1
        unmatched = len(open_) - matched
        block = open_[matched - 1]
        started = False
        while isinstance(block, _Container | _Paragraph):
            self._find_next_nonspace()
            if self.blank or (self.indent < 4 and text[self.next_nonspace] not in _BLOCK_START):
                self._set_index(self.next_nonspace)
                break
            new = self._start(block)
            if new is None:
                self._set_index(self.next_nonspace)
                break
            started = True
            if unmatched:
                self._close(len(open_) - unmatched)
                unmatched = 0
            self._add(new)
            block = new
        tip = open_[-1]
        if not started and not self.blank and (isinstance(tip, _Paragraph) or isinstance(tip, Table) and tip.lazy):
            self._add_line(tip)  # a lazy continuation line
            return
        if unmatched:
            self._close(len(open_) - unmatched)
        block = open_[-1]
        if not isinstance(block, _Container):
            if not (started and isinstance(block, Table)):  # a table's first line is its delimiter row
                self._add_line(block)
        elif not self.blank:
            paragraph = _Paragraph()
            self._add(paragraph)
            self._add_line(paragraph)

    def _blank_line(self) -> None:
        """A blank line ends the first open block that a blank line ends, and the ones in it.

        Nothing else can happen (no block starts on a blank line), and the blocks a blank line left open all
        go on through another one, so a blank line right after a blank line changes nothing.
        """
        if self.after_blank:
            return
        self.after_blank = True
        open_ = self.open
        for depth in range(1, len(open_)):
            block = open_[depth]
            if isinstance(block, _Container):
                ends = block.kind == "quote" or block.empty
            elif isinstance(block, _Skipped):
                ends = block.kind not in ("fence", "code") and (block.kind != "html" or block.done or block.end is None)
            else:
                ends = True
            if ends:
                self._close(depth)
                return

    def _add_line(self, block: _Block) -> None:
        rest = self.text[self.index :]
        if isinstance(block, _Paragraph):
            block.add(rest)
        elif isinstance(block, Table):
            block.rows.append(_split_row(rest)[: len(block.header)])
        elif isinstance(block, _Skipped) and block.end is not None and block.end.search(rest):
            block.done = True

    # ----------------------------------------------------------------- continuing open blocks

    def _continue(self, block: _Block) -> int:
        if isinstance(block, _Container):
            return self._continue_container(block)
        if isinstance(block, _Paragraph):
            return _ENDED if self.blank else _CONTINUED
        if isinstance(block, Table):
            pipe = self.text.find("|", self.next_nonspace)
            if pipe < 0:
                return _ENDED
            if pipe == self.next_nonspace and not self.text[pipe + 1 :].strip(" \t"):
                block.lazy = False  # a lone pipe ends the table and is not a row
                return _ENDED
            return _CONTINUED
        return self._continue_skipped(block)

    def _continue_container(self, block: _Container) -> int:
        if block.kind == "quote":
            if self.indent < 4 and self.text.startswith(">", self.next_nonspace):
                column = self.column + self.indent + 1
                if self.text[self.next_nonspace + 1 : self.next_nonspace + 2] in (" ", "\t"):
                    column += 1
                self._set_column(column)
                return _CONTINUED
            return _ENDED
        if self.blank:
            if block.empty:
                return _ENDED
            self._set_index(self.next_nonspace)
            return _CONTINUED
        if self.indent >= block.indent:
            self._set_column(self.column + block.indent)
            return _CONTINUED
        return _ENDED

    def _continue_skipped(self, block: _Skipped) -> int:
        if block.kind == "fence":
            if self.indent < 4 and self.text.startswith(block.char, self.next_nonspace):
                run = len(self.text) - len(self.text[self.next_nonspace :].lstrip(block.char)) - self.next_nonspace
                if run >= block.length and not self.text[self.next_nonspace + run :].strip(" \t"):
                    return _CONSUMED
            skip = 0
            while skip < block.indent and self.text.startswith(" ", self.index):
                self.index += 1
                skip += 1
            return _CONTINUED
        if block.kind in ("heading", "rule"):
            return _ENDED
        if block.kind == "code":
            if self.indent >= 4:
                self._set_column(self.column + 4)
            elif self.blank:
                self._set_index(self.next_nonspace)
            else:
                return _ENDED
            return _CONTINUED
        if block.done or (self.blank and block.end is None):
            return _ENDED
        return _CONTINUED

    # ----------------------------------------------------------------- starting new blocks

    def _start(self, matched: _Container | _Paragraph) -> _Block | None:
        """The block this line starts inside `matched` (in commonmark-java's order), or None."""
        text, at, indent = self.text, self.next_nonspace, self.indent
        char = text[at]
        paragraph = matched if isinstance(matched, _Paragraph) else None
        if indent < 4:
            if paragraph is not None and char in "|-:" and (table := self._table(paragraph)) is not None:
                return table
            nested = len(self.open) <= MAX_NESTING
            if char == ">" and nested:
                column = self.column + indent + 1
                if text[at + 1 : at + 2] in (" ", "\t"):
                    column += 1
                self._set_column(column)
                return _Container("quote")
            if char == "#" and (atx := _ATX.match(text, at)) is not None:
                self.index = len(text)
                return _Skipped("heading", leaf=Leaf(len(atx.group(1)), _heading_text(text[atx.end() :]), False))
            if paragraph is not None and char in "=-" and paragraph.lines and _SETEXT.match(text, at):
                self.index = len(text)
                return _Skipped("heading", leaf=self._setext(paragraph, 1 if char == "=" else 2))
            if char in "`~" and (fence := _FENCE.match(text, at)) is not None:
                self.index = len(text)
                return _Skipped("fence", char, fence.end() - at, indent)
            if char == "<" and (html := self._html(paragraph)) is not None:
                return html
            if char in "*-_" and self._thematic(at):
                self.index = len(text)
                return _Skipped("rule")
            if nested and (item := self._list_item(paragraph)) is not None:
                return item
        elif not self.blank and not isinstance(self.open[-1], _Paragraph):
            self._set_column(self.column + 4)
            return _Skipped("code")
        return None

    def _thematic(self, at: int) -> bool:
        """A thematic break from `at` on; a line is looked at once, however many list markers start it."""
        if self.thematic_from < 0:
            self.thematic_from = len(self.text.rstrip(" \t*-_"))  # nothing else may follow a break's first mark
        return at >= self.thematic_from and _THEMATIC.match(self.text, at) is not None

    def _table(self, paragraph: _Paragraph) -> Table | None:
        """A table whose header is the paragraph's last line, when this line is a matching delimiter row."""
        lines = paragraph.lines
        if not lines or "|" not in lines[-1] or "|" not in self.text[self.index :]:
            return None
        delimiter = _split_row(self.text[self.next_nonspace :])
        if not all(_DELIMITER_CELL.match(cell) for cell in delimiter):
            return None
        header = _split_row(lines[-1])
        if len(header) != len(delimiter):
            return None
        lines.pop()
        self.index = len(self.text)
        return Table(header, False)

    def _setext(self, paragraph: _Paragraph, level: int) -> Leaf:
        """The heading the paragraph becomes (its definitions kept; the paragraph, now empty, closes)."""
        raw = "\n".join(paragraph.lines)
        paragraph.lines.clear()
        return Leaf(level, raw, False)

    def _html(self, paragraph: _Paragraph | None) -> _Skipped | None:
        rest = self.text[self.next_nonspace :]
        tip = self.open[-1]
        lazy_tip = isinstance(tip, _Paragraph) or isinstance(tip, Table) and tip.lazy
        for kind, (start, end) in enumerate(_HTML_BLOCKS, 1):
            if kind == 7 and (paragraph is not None or lazy_tip):
                break  # a complete tag alone cannot interrupt a paragraph, not even a lazy one
            if start.match(rest):
                return _Skipped("html", end=end)
        return None

    def _list_item(self, paragraph: _Paragraph | None) -> _Container | None:
        text, at = self.text, self.next_nonspace
        marker = _BULLET.match(text, at)
        if marker is None:
            return None
        after = marker.end()
        marker_column = self.column + self.indent
        content_column = column_after = marker_column + after - at
        position = after
        while position < len(text) and text[position] in " \t":
            content_column += 4 - content_column % 4 if text[position] == "\t" else 1
            position += 1
        has_content = position < len(text)
        if (
            paragraph is not None
            and paragraph.lines
            and (not has_content or (marker.group(1) is not None and int(marker.group(1)) != 1))
        ):
            return None  # an empty item, or one numbered other than 1, cannot interrupt a paragraph
        if not has_content or content_column - column_after > 4:
            content_column = column_after + 1
        item = _Container("item", content_column - self.column)
        self._set_column(content_column)
        return item

    # ----------------------------------------------------------------- the tree of open blocks

    def _add(self, block: _Block) -> None:
        """Append `block` to the innermost open container, closing the leaves above it (so leaves are emitted
        in document order); a heading is emitted now, a table and a paragraph when they close."""
        open_ = self.open
        depth = len(open_)
        while not isinstance(open_[depth - 1], _Container):
            depth -= 1
        self._close(depth)
        parent = open_[-1]
        assert isinstance(parent, _Container)
        parent.empty = False
        top = depth == 1
        if isinstance(block, Table):
            block.top = top
        elif isinstance(block, _Skipped) and block.leaf is not None:
            block.leaf.top = top
            self.events.append(block.leaf)
        open_.append(block)

    def _close(self, depth: int) -> None:
        """Close the open blocks from `depth` up, emitting their leaves."""
        open_ = self.open
        while len(open_) > depth:
            block = open_.pop()
            if isinstance(block, _Paragraph):
                self._remember(block)
                if block.lines:
                    self.events.append(Leaf(0, "\n".join(block.lines), len(open_) == 1))
            elif isinstance(block, Table):
                self.events.append(block)

    def _remember(self, paragraph: _Paragraph) -> None:
        labels = paragraph.finish()
        if labels:
            self.references.update(normalize_label(label) for label in labels)

    # ----------------------------------------------------------------- columns (tabs count to the next stop of 4)

    def _find_next_nonspace(self) -> None:
        """Where the next non-space is, scanning each run of spaces once per line.

        Every open container asks again from a little further on; rescanning the run would make a
        line under n nested lists cost n² (1,000 levels: 5.6 s a MB).
        """
        text, position, column = self.text, self.index, self.column
        if self.run_from <= position <= self.next_nonspace and not self.run_has_tab:
            self.next_column = column + self.next_nonspace - position
            self.indent = self.next_column - column
            return
        self.run_from, self.run_has_tab = position, False
        length = len(text)
        while position < length:
            char = text[position]
            if char == " ":
                column += 1
            elif char == "\t":
                column += 4 - column % 4
                self.run_has_tab = True
            else:
                break
            position += 1
        self.blank = position >= length
        self.next_nonspace, self.next_column = position, column
        self.indent = column - self.column

    def _set_index(self, index: int) -> None:
        if index >= self.next_nonspace:
            self.index, self.column = self.next_nonspace, self.next_column
        while self.index < index and self.index < len(self.text):
            self._advance()

    def _set_column(self, column: int) -> None:
        if column >= self.next_column:
            self.index, self.column = self.next_nonspace, self.next_column
        while self.column < column and self.index < len(self.text):
            self._advance()
        if self.column > column:  # inside a tab: stay on it, with the columns left
            self.index -= 1
            self.column = column

    def _advance(self) -> None:
        char = self.text[self.index]
        self.index += 1
        self.column += 4 - self.column % 4 if char == "\t" else 1


def _heading_text(content: str) -> str:
    """ATX heading content without its closing `#` sequence (one preceded by a space, or alone)."""
    text = content.rstrip(" \t")
    bare = text.rstrip("#")
    if bare == text:
        return text
    if not bare.strip(" \t"):
        return ""
    return bare.rstrip(" \t") if bare[-1] in " \t" else text


def _split_row(line: str) -> list[str]:
    """Cells of a pipe-table row: outer pipes dropped, `\\|` kept as a literal pipe."""
    body = line.strip(" \t")
    if body.startswith("|"):
        body = body[1:]
    if body.endswith("|") and not body.endswith("\\|"):
        body = body[:-1]
    return [cell.strip(" \t").replace("\\|", "|") for cell in _UNESCAPED_PIPE.split(body)]
