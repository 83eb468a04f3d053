"""HTML bodies: `{"tables": [[{header: cellText}, ...], ...]}` for every table with `<th>` headers.

The headers are those of the first `<thead>` row, else of the first row of each row group. Body
rows holding a `<th>`, or no `<td>`, are skipped; a missing cell is "", an extra one dropped; cell
text is whitespace-normalised as jsoup's `text()` does it (its block tags set apart by a space, the
no-break space as whitespace). `outputSchema` is a CSS selector (`engine.formats.css`): a matching
table is used, a matching element is searched inside, each table once, in document order.

The tokenizer (here) and the tree builder (`html_tree`) are our own and linear: CPython's `html.parser` is
quadratic on inputs such as `'<a'` repeated (100 KB: 6.9 s), and lexbor (selectolax) on deep nesting (40,000
nested `<div>`, 200 KB: 5.8 s). The tokenizer follows HTML5's states where they matter here (an unclosed quote
or tag runs to the end and is dropped, an unclosed comment takes the rest, raw text elements end only at their
end tag) and reads each character once; the tree builder follows HTML5's tree construction (see `html_tree`).
tests/engine/formats/test_formats_differential.py compares the tables read here with those of html5lib's tree
(the HTML5 algorithm itself) on generated documents.
"""

from __future__ import annotations

import re
from html import unescape
from typing import Any
from collections.abc import Callable, Iterator

from .common import Budget, rows_to_objects
from .html_tree import SECTIONS, TEXT_FACTOR, Node, TreeBuilder, quirks_mode

_RAW_TEXT = frozenset(("script", "style", "xmp", "iframe", "noembed", "noframes", "textarea", "title"))
_ESCAPABLE_RAW = frozenset(("textarea", "title"))
_RAW_END = {tag: re.compile(rf"</{tag}(?=[\t\n\f\r />])", re.IGNORECASE) for tag in _RAW_TEXT}
_ATTRIBUTE_GAP = re.compile(r"[\t\n\f\r /]*")
_ATTRIBUTE_NAME = re.compile(r"[^\t\n\f\r />][^\t\n\f\r />=]*")
_SPACE = re.compile(r"[\t\n\f\r ]*")
_UNQUOTED = re.compile(r"[^\t\n\f\r >]*")


# --------------------------------------------------------------------------- tokenizing

_MARKUP = re.compile(r"<(?:(/?)([A-Za-z][^\t\n\f\r />]*)(>?)|(!--)|([!?/]))")


def _tokenize(text: str, builder: TreeBuilder) -> None:
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


def _tag(text: str, position: int, tag: str, is_end: bool, closed: bool, builder: TreeBuilder) -> int:
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


def _data(builder: TreeBuilder, text: str) -> None:
    builder.data(unescape(text) if "&" in text else text)


def parse_html(text: str) -> Node:
    builder = TreeBuilder(quirks_mode(text))
    _tokenize(text, builder)
    root = builder.finish()
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
            elif child.tag in SECTIONS:
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
