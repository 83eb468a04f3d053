"""HTML bodies: `{"tables": [[{header: cellText}, ...], ...]}` for every table with `<th>` headers.

The headers are those of the first `<thead>` row, else of the first row of each row group. Body
rows holding a `<th>`, or no `<td>`, are skipped; a missing cell is "", an extra one dropped; cell
text is whitespace-normalised like jsoup's `text()`. `outputSchema` is a CSS selector
(`engine.formats.css`): a matching table is used, a matching element is searched inside, each
table once, in document order.

The tokenizer and tree builder are our own and linear: CPython's `html.parser` is quadratic on
inputs such as `'<a'` repeated (100 KB: 6.9 s), and lexbor (selectolax) on deep nesting (40,000
nested `<div>`, 200 KB: 5.8 s). The tokenizer follows HTML5's states where they matter here (an
unclosed quote or tag runs to the end and is dropped, an unclosed comment takes the rest, raw
text elements end only at their end tag) and reads each character once. The tree builder finds
the element an end tag closes through an index of open elements by tag, and, as browsers do,
stops nesting at `MAX_HTML_DEPTH` (deeper elements become siblings).
"""

from __future__ import annotations

import re
from html import unescape
from typing import Any
from collections.abc import Callable, Iterator

from .common import Budget, FormatError, rows_to_objects

MAX_HTML_DEPTH = 512
"""Open elements nest at most this deep (Blink's parser limit); deeper ones become siblings."""

TEXT_FACTOR = 4
"""Reading cell text may visit at most this many nodes and characters per character of the document
(plus 64 KiB): a cell's text includes the text of tables nested in it, so deep nesting would
otherwise repeat the work and the text once per level."""

_VOID = frozenset(
    "area base br col embed hr img input link meta param source track wbr basefont bgsound frame keygen".split()
)
_NO_TEXT = frozenset(("script", "style", "template", "head", "title"))
_BLOCK = frozenset(
    "address article aside blockquote body caption center dd details dialog div dl "
    "dt fieldset figcaption figure footer form h1 h2 h3 h4 h5 h6 header hr li main "
    "nav ol p pre section table tbody td tfoot th thead tr ul".split()
)
_RAW_TEXT = frozenset(("script", "style", "xmp", "iframe", "noembed", "noframes", "textarea", "title"))
_ESCAPABLE_RAW = frozenset(("textarea", "title"))
_RAW_END = {tag: re.compile(rf"</{tag}(?=[\t\n\f\r />])", re.IGNORECASE) for tag in _RAW_TEXT}
_SECTIONS = ("thead", "tbody", "tfoot")
_SPACES = re.compile(r"[ \t\n\r\f]+")
_TAG_NAME = re.compile(r"[^\t\n\f\r />]*")
_ATTRIBUTE_GAP = re.compile(r"[\t\n\f\r /]*")
_ATTRIBUTE_NAME = re.compile(r"[^\t\n\f\r />][^\t\n\f\r />=]*")
_SPACE = re.compile(r"[\t\n\f\r ]*")
_UNQUOTED = re.compile(r"[^\t\n\f\r >]*")


class Node:
    """A parsed HTML element: tag, attributes, parent and children (elements or text)."""

    __slots__ = ("tag", "attrs", "parent", "children")

    def __init__(self, tag: str, attrs: dict[str, str], parent: Node | None) -> None:
        self.tag = tag
        self.attrs = attrs
        self.parent = parent
        self.children: list[Node | str] = []

    def elements(self) -> Iterator[Node]:
        """Descendant elements in document order."""
        pending = [c for c in reversed(self.children) if isinstance(c, Node)]
        while pending:
            node = pending.pop()
            yield node
            pending.extend(c for c in reversed(node.children) if isinstance(c, Node))

    def text(self, allowance: list[int]) -> str:
        """Whitespace-normalised text, blocks and `<br>` separated by a space (like jsoup).

        Every node visited and character taken is charged to `allowance[0]` (see TEXT_FACTOR).
        """
        pieces: list[str] = []
        pending: list[Node | str] = list(reversed(self.children))
        visits = 0
        while pending:
            item = pending.pop()
            visits += 1
            if isinstance(item, str):
                pieces.append(item)
                visits += len(item)
            elif item.tag not in _NO_TEXT:
                if item.tag in _BLOCK or item.tag == "br":
                    pieces.append(" ")
                    pending.append(" ")
                pending.extend(reversed(item.children))
        allowance[0] -= visits
        if allowance[0] < 0:
            raise FormatError(
                f"html: the tables' text is more than {TEXT_FACTOR} times the document "
                "(nested tables repeat their text in every enclosing cell)"
            )
        return _SPACES.sub(" ", "".join(pieces)).strip()

    def cells(self, tag: str) -> list[Node]:
        return [c for c in self.children if isinstance(c, Node) and c.tag == tag]


# --------------------------------------------------------------------------- tree building


_IMPLIED_ENDS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "td": (("td", "th"), ("tr", "table")),
    "th": (("td", "th"), ("tr", "table")),
    "tr": (("tr",), ("table",) + _SECTIONS),
    "li": (("li",), ("ul", "ol", "table")),
    **{section: (_SECTIONS, ("table",)) for section in _SECTIONS},
}
"""Start tags that close an open element first: (what they close, what stops the search)."""


class _TreeBuilder:
    """A forgiving tree builder: void elements, implied cell/row/section ends, table scoping.

    `open` maps a tag to the stack positions of its open elements, so closing the nearest one
    (unless a boundary element is nearer) costs no walk down the stack.
    """

    def __init__(self) -> None:
        self.root = Node("#document", {}, None)
        self.stack = [self.root]
        self.open: dict[str, list[int]] = {}

    def start(self, tag: str, attrs: dict[str, str]) -> None:
        implied = _IMPLIED_ENDS.get(tag)
        if implied is not None:
            self.close(*implied)
        stack = self.stack
        parent = stack[-1]
        if tag in _VOID:
            parent.children.append(Node(tag, attrs, parent))
            return
        if len(stack) >= MAX_HTML_DEPTH:
            self.pop_to(len(stack) - 1)
            parent = stack[-1]
        node = Node(tag, attrs, parent)
        parent.children.append(node)
        positions = self.open.get(tag)
        if positions is None:
            self.open[tag] = [len(stack)]
        else:
            positions.append(len(stack))
        stack.append(node)

    def end(self, tag: str) -> None:
        positions = self.open.get(tag)
        if positions:
            tables = self.open.get("table") if tag != "table" else None
            if not tables or tables[-1] < positions[-1]:
                self.pop_to(positions[-1])

    def data(self, text: str) -> None:
        self.stack[-1].children.append(text)

    def close(self, targets: tuple[str, ...], boundaries: tuple[str, ...]) -> None:
        """Pop through the nearest open element in `targets`, unless a boundary comes first."""
        target = boundary = 0
        for tag in targets:
            positions = self.open.get(tag)
            if positions and positions[-1] > target:
                target = positions[-1]
        if not target:
            return
        for tag in boundaries:
            positions = self.open.get(tag)
            if positions and positions[-1] > boundary:
                boundary = positions[-1]
        if target > boundary:
            self.pop_to(target)

    def pop_to(self, position: int) -> None:
        """Close the elements from stack position `position` up."""
        stack, open_ = self.stack, self.open
        while len(stack) > position:
            open_[stack.pop().tag].pop()


# --------------------------------------------------------------------------- tokenizing

_MARKUP = re.compile(r"<(?:(/?)([A-Za-z][^\t\n\f\r />]*)(>?)|(!--)|([!?/]))")


def _tokenize(text: str, builder: _TreeBuilder) -> None:
    """One pass over the document, feeding start tags, end tags and text to the builder."""
    length = len(text)
    position = 0
    search = _MARKUP.search
    while position < length:
        match = search(text, position)
        if match is None:
            _data(builder, text[position:])
            return
        lt = match.start()
        if lt > position:
            _data(builder, text[position:lt])
        slash, name, closed, comment, other = match.groups()
        if name is not None:
            position = _tag(text, match.end(), name.lower(), bool(slash), bool(closed), builder)
        elif comment is not None:
            position = _comment(text, lt)
        elif other == "/":  # `</` not followed by a letter
            after = text[lt + 2 : lt + 3]
            if after == ">":
                position = lt + 3
            elif after == "":
                _data(builder, "</")
                position = length
            else:
                position = _until(text, ">", lt + 2)  # a bogus comment
        else:  # doctype, CDATA outside foreign content, processing instructions: bogus comments
            position = _until(text, ">", lt + 2)


def _comment(text: str, lt: int) -> int:
    for empty in ("<!-->", "<!--->"):
        if text.startswith(empty, lt):
            return lt + len(empty)
    return _until(text, "-->", lt + 4)


def _until(text: str, marker: str, start: int) -> int:
    """The position after the next `marker`, or the end (an unclosed construct takes the rest)."""
    end = text.find(marker, start)
    return len(text) if end < 0 else end + len(marker)


def _tag(text: str, position: int, tag: str, is_end: bool, closed: bool, builder: _TreeBuilder) -> int:
    """A start or end tag whose name ends at `position`; the position after it."""
    attrs: dict[str, str] = {}
    if not closed:
        position = _attributes(text, position, None if is_end else attrs)  # an end tag's are ignored
        if position < 0:
            return len(text)  # a tag the document ends in is dropped, as HTML5 drops it
    if is_end:
        builder.end(tag)
        return position
    builder.start(tag, attrs)
    if tag in _RAW_TEXT:
        closing = _RAW_END[tag].search(text, position)
        stop = closing.start() if closing else len(text)
        if stop > position:
            raw = text[position:stop]
            builder.data(unescape(raw) if tag in _ESCAPABLE_RAW and "&" in raw else raw)
        return stop
    return position


def _attributes(text: str, position: int, attrs: dict[str, str] | None) -> int:
    """Read attributes up to the closing `>`; its end, or -1 when the document ends first."""
    length = len(text)
    while True:
        # _ATTRIBUTE_GAP, _SPACE and _UNQUOTED match the empty string, so their match is never None (not said
        # with an assert: this runs for every attribute of every decoded document).
        position = _ATTRIBUTE_GAP.match(text, position).end()  # type: ignore[union-attr]
        if position >= length:
            return -1
        if text[position] == ">":
            return position + 1
        name = _ATTRIBUTE_NAME.match(text, position)  # never None here; a leading `=` is part of the name
        assert name is not None
        position = _SPACE.match(text, name.end()).end()  # type: ignore[union-attr]
        value = ""
        if position < length and text[position] == "=":
            position = _SPACE.match(text, position + 1).end()  # type: ignore[union-attr]
            if position >= length:
                return -1
            quote = text[position]
            if quote in "\"'":
                close = text.find(quote, position + 1)
                if close < 0:
                    return -1
                value, position = text[position + 1 : close], close + 1
            else:
                unquoted = _UNQUOTED.match(text, position)
                value, position = unquoted.group(), unquoted.end()  # type: ignore[union-attr]
        if attrs is not None:
            key = name.group().lower()
            if key not in attrs:  # the first of repeated attributes wins
                attrs[key] = unescape(value) if "&" in value else value


def _data(builder: _TreeBuilder, text: str) -> None:
    builder.data(unescape(text) if "&" in text else text)


def parse_html(text: str) -> Node:
    builder = _TreeBuilder()
    _tokenize(text, builder)
    root = builder.root
    html = _ensure_child(root, "html", lambda node: True)
    _ensure_child(html, "body", lambda node: not (isinstance(node, Node) and node.tag == "head"))
    return root


def _ensure_child(parent: Node, tag: str, adopt: Callable[[Node | str], bool]) -> Node:
    """The parent's `tag` child, created around the adoptable children when missing.

    Browsers (and jsoup) always build `html > body`; selectors such as `body > table` rely on it.
    """
    for child in parent.children:
        if isinstance(child, Node) and child.tag == tag:
            return child
    node = Node(tag, {}, parent)
    node.children = [child for child in parent.children if adopt(child)]
    parent.children = [child for child in parent.children if not adopt(child)] + [node]
    for child in node.children:
        if isinstance(child, Node):
            child.parent = node
    return node


# --------------------------------------------------------------------------- tables


def decode_html(selector: Any, budget: Budget, text: str) -> dict[str, Any]:
    root = parse_html(text)
    tables = []
    allowance = [TEXT_FACTOR * len(text) + 65536]
    for table in (
        selector.tables(root) if selector is not None else [node for node in root.elements() if node.tag == "table"]
    ):
        headers = [cell.text(allowance) for cell in _header_cells(table)]
        if any(headers):
            budget.spend(1 + len(headers))
            tables.append(rows_to_objects(headers, list(_html_rows(table, allowance)), budget))
    return {"tables": tables}


def _table_rows(table: Node) -> list[Node]:
    """The table's own rows (not those of nested tables), in document order."""
    rows = []
    for child in table.children:
        if isinstance(child, Node):
            if child.tag == "tr":
                rows.append(child)
            elif child.tag in _SECTIONS:
                rows.extend(child.cells("tr"))
    return rows


def _header_cells(table: Node) -> list[Node]:
    """`<th>` cells of the first `<thead>` row, else of every first row of its group."""
    rows = _table_rows(table)
    thead_rows = [row for row in rows if row.parent is not None and row.parent.tag == "thead"]
    if thead_rows and thead_rows[0].cells("th"):
        return thead_rows[0].cells("th")
    header_cells = []
    groups: set[int] = set()
    for row in rows:
        if id(row.parent) not in groups:
            groups.add(id(row.parent))
            header_cells.extend(row.cells("th"))
    return header_cells


def _html_rows(table: Node, allowance: list[int]) -> Iterator[list[str]]:
    """Body rows (all rows when there is no body) without `<th>` and with at least one `<td>`."""
    rows = _table_rows(table)
    body = [row for row in rows if row.parent is table or (row.parent is not None and row.parent.tag == "tbody")]
    for row in body or rows:
        cells = row.cells("td")
        if cells and not row.cells("th"):
            yield [cell.text(allowance) for cell in cells]
