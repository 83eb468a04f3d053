"""The tree an HTML body parses into: elements (`Node`) built as HTML5's tree construction builds them.

`TreeBuilder` takes the tokenizer's start tags, end tags and text (`html`) and follows HTML5's tree
construction where it decides which cell holds what: the table insertion modes (a cell or row gets the
`<tbody>`/`<tr>` HTML5 implies, content in a table outside its cells is foster-parented before the table, a
table right in a table ends that one), implied ends (cells, rows, paragraphs, list items), and the end tags a
block opened inside keeps open (the adoption agency algorithm's effect on where text goes). `Node.text` is
jsoup's `text()`: its block tags set apart by a space, whitespace (with the no-break space) collapsed.

Linear: the builder finds the element an end tag closes, and the innermost open cell, row or table, through an
index of open elements by tag, never walking the stack; as browsers do, it stops nesting at `MAX_HTML_DEPTH`.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from .common import FormatError

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
    """html head body frameset script noscript style meta link title frame noframes section nav aside hgroup header
    footer p h1 h2 h3 h4 h5 h6 br button ul ol pre div blockquote hr address figure figcaption form fieldset ins del
    dl dt dd li table caption thead tfoot tbody colgroup col tr th td video audio canvas details menu plaintext
    template article main center dir applet marquee listing""".split()
)
"""jsoup 1.21's block tags (`TagSet.initHtmlDefault`, `<br>` among them): its `text()` puts a space around each."""
SECTIONS = ("thead", "tbody", "tfoot")
_SPACES = re.compile("[ \t\n\r\f\xa0]+")  # jsoup's `isActuallyWhitespace`: HTML's five and the no-break space
_INVISIBLE = dict.fromkeys(map(ord, "\u200b\u00ad"))  # jsoup's `isInvisibleChar`: zero-width space, soft hyphen
_JAVA_TRIM = "".join(map(chr, range(33)))  # what Java's `String.trim()` removes (the reference trims cell text)


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
                if item.tag in _BLOCK:
                    pieces.append(" ")
                    pending.append(" ")
                pending.extend(reversed(item.children))
        allowance[0] -= visits
        if allowance[0] < 0:
            raise FormatError(
                f"html: the tables' text is more than {TEXT_FACTOR} times the document "
                "(nested tables repeat their text in every enclosing cell)"
            )
        text = _SPACES.sub(" ", "".join(pieces))
        if "\u200b" in text or "\u00ad" in text:
            text = text.translate(_INVISIBLE)
        return text.strip(_JAVA_TRIM)

    def cells(self, tag: str) -> list[Node]:
        return [c for c in self.children if isinstance(c, Node) and c.tag == tag]


_TABLE_CONTEXT = frozenset(("table", "tbody", "thead", "tfoot", "tr"))
"""Current nodes under which HTML5 foster-parents other content: it goes right before the table instead."""
_TABLE_PARTS = frozenset(("caption", "colgroup", "col", "tbody", "thead", "tfoot", "tr", "td", "th"))
_IN_TABLE_CONTEXT = frozenset(("script", "style", "template", "input", "form"))
"""Start tags HTML5 keeps in the table (not foster-parented); a form there is left empty."""
_SPECIAL = frozenset(
    """address applet area article aside base basefont bgsound blockquote body br button caption center col colgroup
    dd details dir div dl dt embed fieldset figcaption figure footer form frame frameset h1 h2 h3 h4 h5 h6 head header
    hgroup hr html iframe img input keygen li link listing main marquee menu meta nav noembed noframes noscript object
    ol p param plaintext pre script search section select source style summary table tbody td template textarea tfoot
    th thead title tr track ul wbr xmp""".split()
)
"""HTML5's special elements. The end tag of any other element is ignored while one of these, opened inside it, is
still open: the text that follows stays in that block, as the adoption agency algorithm keeps it there."""
_HEADINGS = ("h1", "h2", "h3", "h4", "h5", "h6")
_CLOSES_P = frozenset(
    """address article aside blockquote center details dialog dir div dl fieldset figcaption figure footer header
    hgroup main menu nav ol p search section summary ul h1 h2 h3 h4 h5 h6 pre listing form plaintext hr xmp li dd dt
    table""".split()
)
"""Start tags that first end an open `<p>` (a table only outside quirks mode)."""
_BUTTON_SCOPE = ("applet", "caption", "html", "table", "td", "th", "marquee", "object", "template", "button")
_DOCTYPE = re.compile(r"[\t\n\f\r ]*(?:<!--.*?-->[\t\n\f\r ]*)*<!doctype([^>]*)>", re.IGNORECASE | re.DOTALL)
_QUIRKY_PUBLIC_IDS = (
    "-//ietf//dtd html",
    "-//w3c//dtd html 3",
    "-//w3c//dtd html 4.0 transitional//",
    "-//w3c//dtd html 4.0 frameset//",
    "-//w3c//dtd w3 html//",
    "-//w3o//dtd w3 html",
    "-//netscape comm. corp.//dtd",
    "-//microsoft//dtd internet explorer",
    "-//softquad",
    "-//spyglass//dtd html",
    "-//sun microsystems corp.//dtd hotjava html",
    "-//webtechs//dtd mozilla html",
    "-//o'reilly and associates//dtd html",
    "-//metrius//dtd metrius presentational",
    "-//sq//dtd html 2.0",
    "-//as//dtd html 3.0",
    "-//advasoft ltd//dtd html 3.0",
)
_QUIRKY_WITHOUT_SYSTEM_ID = ("-//w3c//dtd html 4.01 transitional//", "-//w3c//dtd html 4.01 frameset//")


def quirks_mode(text: str) -> bool:
    """Whether HTML5 parses `text` in quirks mode: no `<!DOCTYPE html>` first, or a legacy one (the common public
    identifiers of HTML5's list). It decides one thing here: in quirks mode a table does not end an open `<p>`."""
    match = _DOCTYPE.match(text)
    if match is None:
        return True
    words = match.group(1).lower().split(None, 1)
    if not words or words[0] != "html":
        return True
    if len(words) == 1 or not words[1].startswith("public"):
        return False
    quoted = re.findall(r"\"([^\"]*)\"|'([^']*)'", words[1])
    public = (quoted[0][0] or quoted[0][1]) if quoted else ""
    return public.startswith(_QUIRKY_PUBLIC_IDS) or (len(quoted) < 2 and public.startswith(_QUIRKY_WITHOUT_SYSTEM_ID))


_TABLE_PART, _MERGED, _ENDS_P, _EMPTY, _STAYS_IN_TABLE, _IS_SPECIAL = 1, 2, 4, 8, 16, 32
_PREPARED = _TABLE_PART | _MERGED | _ENDS_P
_START_KINDS: dict[str, int] = {
    tag: sum(flag for names, flag in kinds if tag in names)
    for kinds in [
        (
            (_TABLE_PARTS | {"table"}, _TABLE_PART),
            (frozenset(("html", "body", "head")), _MERGED),
            (_CLOSES_P, _ENDS_P),
            (_VOID, _EMPTY),
            (_IN_TABLE_CONTEXT, _STAYS_IN_TABLE),
            (_SPECIAL, _IS_SPECIAL),
        )
    ]
    for names, _ in kinds
    for tag in names
}
"""What a start tag needs beyond being inserted, as flags: one lookup per start tag."""
_UNUSUAL_ENDS = frozenset(("body", "html", "br") + _HEADINGS)


class TreeBuilder:
    """A forgiving tree builder after HTML5's: void elements, table scoping and the table insertion modes.

    In a table, a row or a cell starts in the right place whatever is open (cells and rows get the `<tbody>` and
    `<tr>` HTML5 implies), a `<table>` outside a cell ends the open table, and other content is foster-parented
    (put before the table). `open` maps a tag to the stack positions of its open elements, and `specials` lists the
    positions of open special elements, so neither a closing nor an end-tag check walks down the stack.
    """

    def __init__(self, quirks: bool = True) -> None:
        self.quirks = quirks
        self.root = Node("#document", {}, None)
        self.stack = [self.root]
        self.open: dict[str, list[int]] = {}
        self.specials: list[int] = []
        self.fostered: dict[int, tuple[Node, list[Node | str]]] = {}  # by table: what goes right before it

    def start(self, tag: str, attrs: dict[str, str]) -> None:
        kind = _START_KINDS.get(tag, 0)
        if kind & _PREPARED and self._prepare(tag, attrs, kind):
            return
        stack = self.stack
        parent = stack[-1]
        if parent.tag in _TABLE_CONTEXT:
            if not kind & _STAYS_IN_TABLE:
                self._foster(Node(tag, attrs, None), push=not kind & _EMPTY)
                return
            if tag == "form":
                kind = _EMPTY  # a form in a table is left empty
        if kind & _EMPTY:
            parent.children.append(Node(tag, attrs, parent))
            return
        if len(stack) >= MAX_HTML_DEPTH:  # (what _push does, written out: this runs for most elements)
            self.pop_to(len(stack) - 1)
            parent = stack[-1]
        node = Node(tag, attrs, parent)
        parent.children.append(node)
        positions = self.open.get(tag)
        if positions is None:
            self.open[tag] = [len(stack)]
        else:
            positions.append(len(stack))
        if kind & _IS_SPECIAL:
            self.specials.append(len(stack))
        stack.append(node)

    def _prepare(self, tag: str, attrs: dict[str, str], kind: int) -> bool:
        """What a start tag does before it is inserted; True when that placed it (or dropped it)."""
        if kind & _TABLE_PART and self._table_part(tag, attrs):
            return True
        if kind & _MERGED and self.open.get(tag):
            return True  # HTML5 merges a repeated html or body into the open one
        if tag == "li":
            self._close_li()
        if kind & _ENDS_P and self.open.get("p") and (tag != "table" or not self.quirks):
            paragraph = self.open["p"][-1]
            if paragraph > self._innermost(_BUTTON_SCOPE):
                self.pop_to(paragraph)
        if tag in _HEADINGS and self.stack[-1].tag in _HEADINGS:
            self.pop_to(len(self.stack) - 1)  # a heading right in a heading ends it
        return False

    def end(self, tag: str) -> None:
        if tag in _UNUSUAL_ENDS:
            if tag == "br":
                self.start("br", {})  # `</br>` is read as `<br>`
            if tag not in _HEADINGS:
                return  # and `</body>`, `</html>` close nothing: what follows still goes where it would have
            position = max((self.open[h][-1] for h in _HEADINGS if self.open.get(h)), default=0)
        else:
            positions = self.open.get(tag)
            position = positions[-1] if positions else 0
        tables = self.open.get("table") if tag != "table" else None
        if not position or (tables and tables[-1] > position):
            if tag == "p":  # `</p>` with no paragraph open makes an empty one
                self.start("p", {})
                self.pop_to(len(self.stack) - 1)
            return
        if tag not in _SPECIAL and self.specials and self.specials[-1] > position:
            return
        self.pop_to(position)

    def data(self, text: str) -> None:
        top = self.stack[-1]
        if top.tag in _TABLE_CONTEXT and text.strip("\t\n\f\r "):
            self._foster(text, push=False)
        else:
            top.children.append(text)

    def finish(self) -> Node:
        """The tree, with foster-parented content put in place (before its table)."""
        by_parent: dict[int, Node] = {}
        for table, _ in self.fostered.values():
            if table.parent is not None:
                by_parent[id(table.parent)] = table.parent
        for parent in by_parent.values():
            children: list[Node | str] = []
            for child in parent.children:
                if isinstance(child, Node) and id(child) in self.fostered:
                    children.extend(self.fostered[id(child)][1])
                children.append(child)
            parent.children = children
        return self.root

    # ----------------------------------------------------------------- tables

    def _table_part(self, tag: str, attrs: dict[str, str]) -> bool:
        """Place a table start tag as HTML5's table modes do; False when it is to be inserted as usual."""
        top = self.stack[-1].tag
        if (tag == "td" or tag == "th") and top == "tr" or tag == "tr" and top in SECTIONS:
            self._push(tag, attrs)  # the usual case: a cell right in its row, a row right in its row group
            return True
        tables = self.open.get("table")
        table = tables[-1] if tables else 0
        if not table:
            return tag != "table"  # a row or cell outside any table is ignored
        cell = self._innermost(("td", "th", "caption"))
        if cell > table:
            if tag == "table":
                return False  # a table in a cell nests
            self.pop_to(cell)  # a row or cell start tag in a cell ends the cell first
        if tag == "table":
            self.pop_to(table)  # a table right in a table ends that one
            return False
        row, section = self._innermost(("tr",)), self._innermost(SECTIONS)
        if tag in ("td", "th"):
            if row > table:
                self.pop_to(row + 1)
            else:
                self._row_group(table, section)
                self._push("tr", {})
            self._push(tag, attrs)
        elif tag == "tr":
            if row > table:
                self.pop_to(row)
            self._row_group(table, section)
            self._push("tr", attrs)
        else:
            self.pop_to(table + 1)
            if tag == "col":
                self.stack[-1].children.append(Node(tag, attrs, self.stack[-1]))
            else:
                self._push(tag, attrs)
        return True

    def _row_group(self, table: int, section: int) -> None:
        """Leave the open row group as the current node, or open the `<tbody>` HTML5 implies."""
        if section > table:
            self.pop_to(section + 1)
        else:
            self.pop_to(table + 1)
            self._push("tbody", {})

    def _innermost(self, tags: tuple[str, ...]) -> int:
        """The stack position of the innermost open element among `tags`, or 0."""
        position = 0
        for tag in tags:
            positions = self.open.get(tag)
            if positions and positions[-1] > position:
                position = positions[-1]
        return position

    def _foster(self, item: Node | str, push: bool) -> None:
        """Put `item` right before the innermost table (HTML5's foster parenting)."""
        tables = self.open.get("table")
        if not tables:  # a row group left without its table, past the nesting cap: no fostering then
            if isinstance(item, str):
                self.stack[-1].children.append(item)
            else:
                self.stack[-1].children.append(item)
                item.parent = self.stack[-1]
                if push:
                    self._enter(item)
            return
        table = self.stack[tables[-1]]
        parent = table.parent
        if isinstance(item, Node):
            item.parent = parent
        self.fostered.setdefault(id(table), (table, []))[1].append(item)
        if push and isinstance(item, Node):
            self._enter(item)

    def _close_li(self) -> None:
        """A `<li>` ends the open list item, unless a list or table opened inside it comes first."""
        item = self._innermost(("li",))
        if item and item > self._innermost(("ul", "ol", "table")):
            self.pop_to(item)

    # ----------------------------------------------------------------- the stack

    def _push(self, tag: str, attrs: dict[str, str]) -> None:
        stack = self.stack
        if len(stack) >= MAX_HTML_DEPTH:
            self.pop_to(len(stack) - 1)
        parent = stack[-1]
        node = Node(tag, attrs, parent)
        parent.children.append(node)
        positions = self.open.get(tag)  # (what _enter does, written out: this runs for every element)
        if positions is None:
            self.open[tag] = [len(stack)]
        else:
            positions.append(len(stack))
        if tag in _SPECIAL:
            self.specials.append(len(stack))
        stack.append(node)

    def _enter(self, node: Node) -> None:
        stack = self.stack
        positions = self.open.get(node.tag)
        if positions is None:
            self.open[node.tag] = [len(stack)]
        else:
            positions.append(len(stack))
        if node.tag in _SPECIAL:
            self.specials.append(len(stack))
        stack.append(node)

    def pop_to(self, position: int) -> None:
        """Close the elements from stack position `position` up."""
        stack, open_, specials = self.stack, self.open, self.specials
        while len(stack) > position:
            open_[stack.pop().tag].pop()
        while specials and specials[-1] >= position:
            specials.pop()
