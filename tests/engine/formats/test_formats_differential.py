"""The format decoders against the reference libraries, on generated documents.

Our Markdown and HTML decoders are hand-written (README, design notes: markdown-it-py takes 15–18 s per MB of
`[`, selectolax is quadratic on deep nesting), so this suite shows that they read documents the way the reference
libraries do. Each test generates documents (hypothesis, derandomized, bounded), decodes them with ours and with
the reference library, turns the library's result into our output shape with the rules our docstrings state, and
compares the two whole:

- Markdown: markdown-it-py (CommonMark, with its GFM `table` rule), its token stream read into sections and tables.
- HTML tables: html5lib (the HTML5 tree-building algorithm, pure Python: the spec's algorithm itself rather than a
  fast engine's reading of it; jsoup builds trees by the same algorithm), its tree read into tables.
- CSV/TSV/PSV: Python's `csv` module (RFC 4180 quoting); XML: `xml.etree.ElementTree` read into Jackson's shape.

The Markdown generator leaves out the few shapes where markdown-it-py and commonmark-java (the reference engine's
parser, which ours follows) read a document differently, each with its reason where it is left out: a table row
that starts another block while holding a pipe, a one-column table without a pipe in its delimiter row, a
delimiter row `- | -` (`pipe_table`); an indented line under a link reference definition or a quote (`separator`).
Nothing else is left out; the HTML, CSV and XML generators leave out nothing.
"""

from __future__ import annotations

import csv
import io
import re
import xml.etree.ElementTree as ET
from typing import Any

import html5lib
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from markdown_it import MarkdownIt
from markdown_it.token import Token

from naftiko.engine.formats import FormatError, decode
from naftiko.engine.formats.delimited import SEPARATORS

DIFFERENTIAL = settings(
    derandomize=True,
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
"""Fixed examples (the same every run), a few seconds per test; html5lib is slower, so HTML takes fewer."""


# --------------------------------------------------------------------------- markdown: the reference reading

MARKDOWN = MarkdownIt("commonmark").enable("table")
JAVA_SPACE = "".join(map(chr, range(33)))  # what Java's String.trim() removes: the reference engine trims texts


def md_plain(inline: Token) -> str:
    """The plain text of an inline token: text and code kept, markup, link targets and HTML dropped, a soft
    break a space, a hard break a line break (our rules, `engine/formats/markdown.py`)."""
    pieces: list[str] = []
    for child in inline.children or ():
        if child.type in ("text", "code_inline"):
            pieces.append(child.content)
        elif child.type == "softbreak":
            pieces.append(" ")
        elif child.type == "hardbreak":
            pieces.append("\n")
        elif child.type == "image":
            pieces.append(md_plain(child))
    return "".join(pieces).strip(JAVA_SPACE)


def md_reference(body: str) -> dict[str, Any]:
    """`{"tables", "sections"}` from markdown-it-py's tokens: a level-0 heading opens a section, a level-0 table
    is a table, and the text of every other paragraph or heading (in lists and quotes too) is a content line."""
    tokens = MARKDOWN.parse(body)
    tables: list[list[dict[str, str]]] = []
    sections: list[dict[str, Any]] = []
    contents: list[list[str]] = []
    rows: list[list[str]] = []
    table_depth = 0
    for index, token in enumerate(tokens):
        if token.type == "table_open":
            table_depth += 1
            if table_depth == 1:
                rows = []
        elif token.type == "table_close":
            table_depth -= 1
            if table_depth == 0 and token.level == 0 and any(rows[0]):
                tables.append([dict(zip(rows[0], row, strict=True)) for row in rows[1:]])
        elif token.type == "tr_open" and table_depth:
            rows.append([])
        elif token.type == "inline" and table_depth:
            rows[-1].append(md_plain(token))
        elif token.type == "heading_open" and token.level == 0:
            sections.append({"heading": md_plain(tokens[index + 1]), "level": int(token.tag[1]), "content": ""})
            contents.append([])
        elif token.type == "inline" and not (tokens[index - 1].type == "heading_open" and token.level == 1):
            if sections and (text := md_plain(token)):
                contents[-1].append(text)
    for section, lines in zip(sections, contents, strict=True):
        section["content"] = "\n".join(lines)
    return {"tables": tables, "sections": sections}


# --------------------------------------------------------------------------- markdown: documents

WORDS = st.sampled_from(["alpha", "beta", "Gamma", "x1", "snake_case", "a-b", "3.5", "über", "q?", "end."])
INLINE_MARKUP = st.one_of(
    WORDS.map(lambda w: f"*{w}*"),
    WORDS.map(lambda w: f"_{w}_"),
    WORDS.map(lambda w: f"**{w}**"),
    WORDS.map(lambda w: f"__{w}__"),
    WORDS.map(lambda w: f"***{w}***"),
    WORDS.map(lambda w: f"`{w}`"),
    WORDS.map(lambda w: f"`` a ` {w} ``"),
    WORDS.map(lambda w: f'[{w}](http://x.example/{w} "title")'),
    WORDS.map(lambda w: f"![{w}](i.png)"),
    WORDS.map(lambda w: f"[{w}][ref]"),
    st.just("[ref]"),
    st.just("[undefined]"),
    st.just("<http://auto.example/p>"),
    st.just("<a@b.example>"),
    WORDS.map(lambda w: f"<b>{w}</b>"),
    st.just("<b>Note:</b>"),
    WORDS.map(lambda w: f'<span class="c">{w}</span>'),
    st.just("<br/>"),
    st.just("<!-- a comment -->"),
    st.sampled_from(["&amp;", "&#35;", "&#x41;", "&copy;", "&bogus;", "\\*", "\\#", "\\_", "\\`", "\\[", "\\\\"]),
)
STRAY = st.sampled_from(["*", "_", "**", "[", "]", "<", ">", "`", "&", "!", "\\", "(", ")", "#", "|", "~", "-"])
inline_line = st.lists(st.one_of(WORDS, WORDS, INLINE_MARKUP, STRAY), min_size=1, max_size=8).map(" ".join)
plain_line = st.tuples(WORDS, inline_line).map(" ".join)
"""A line that is paragraph text wherever it stands (it starts with a word)."""


def paragraph_of(lines: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    """One to three lines joined by soft breaks or by hard ones (two spaces, or a backslash)."""
    return st.lists(lines, min_size=1, max_size=3).flatmap(
        lambda chosen: st.sampled_from(["\n", "  \n", "\\\n"]).map(lambda br: br.join(chosen))
    )


@st.composite
def atx_heading(draw: st.DrawFn) -> str:
    marks = "#" * draw(st.integers(1, 6))
    closing = draw(st.sampled_from(["", " #", " ###", "#"]))
    return f"{marks} {draw(inline_line)}{closing}"


@st.composite
def setext_heading(draw: st.DrawFn) -> str:
    text = draw(paragraph_of(inline_line))
    underline = draw(st.sampled_from(["=", "==========", "-", "---", "  ---  "]))
    if "|" in text.split("\n")[-1] and "-" in underline:
        underline = "==="  # a pipe over dashes: a one-column table in markdown-it-py (see `pipe_table`)
    return f"{text}\n{underline}"


@st.composite
def bullet_list(draw: st.DrawFn) -> str:
    marker = draw(st.sampled_from(["-", "*", "+", "1.", "2)"]))
    gap = draw(st.sampled_from(["\n", "\n\n"]))
    pad = draw(st.sampled_from(["   ", "   ", "\t"]))  # continuation indent: spaces, or a tab (to column 4)
    items = []
    for _ in range(draw(st.integers(1, 3))):
        item = f"{marker} {draw(inline_line)}"
        extra = draw(st.sampled_from(["", "continued", "lazy", "nested", "paragraph", "heading", "code", "quote"]))
        if extra == "continued":
            item += f"\n{pad}{draw(inline_line)}"
        elif extra == "lazy":
            item += f"\n{draw(plain_line)}"
        elif extra == "nested":
            item += f"\n{pad}- {draw(inline_line)}"
        elif extra == "paragraph":
            item += f"\n\n{pad}{draw(inline_line)}"
        elif extra == "heading":
            item += f"\n{pad}## {draw(inline_line)}"
        elif extra == "code":
            item += "\n\n       indented code in an item"
        elif extra == "quote":
            item += f"\n{pad}> {draw(inline_line)}"
        items.append(item)
    return gap.join(items)


@st.composite
def block_quote(draw: st.DrawFn) -> str:
    lines = draw(
        st.lists(st.one_of(inline_line, atx_heading(), st.just(""), st.just("- an item")), min_size=1, max_size=3)
    )
    prefix = draw(st.sampled_from(["> ", ">", "> > "]))
    quoted = "\n".join((prefix + line).rstrip() for line in lines)
    if draw(st.booleans()):
        quoted += "\n" + draw(plain_line)  # a lazy continuation line (or the start of a paragraph)
    return quoted


@st.composite
def fenced_code(draw: st.DrawFn) -> str:
    fence = draw(st.sampled_from(["```", "~~~", "````"]))
    info = draw(st.sampled_from(["", "python", "md"]))
    code = draw(st.sampled_from(["# not a heading", "| not | a table |\n|---|---|", "x = 1", "*not emphasis*"]))
    return f"{fence}{info}\n{code}\n{fence}"


@st.composite
def pipe_table(draw: st.DrawFn) -> str:
    width = draw(st.integers(1, 4))
    cell = st.one_of(
        WORDS, INLINE_MARKUP, st.just(""), st.just("a \\| b"), st.lists(WORDS, min_size=2, max_size=3).map(" ".join)
    )
    # Rows without outer pipes start with a word: a row line starting another block (`<!--`, `#`, `>`, ...)
    # while holding a pipe continues the table in commonmark-java (a line with a pipe is a row) but ends it in
    # markdown-it-py (GFM: a block start ends the table); ours follows commonmark-java, as it did before.
    # A one-column table always has outer pipes: commonmark-java requires a pipe in the delimiter row
    # (`| a |` over `---` is a setext heading there, a table in markdown-it-py); ours follows commonmark-java.
    outer = draw(st.booleans()) or width == 1

    def row(cells: list[str], first: str) -> str:
        inner = " | ".join(cells)
        return f"| {inner} |" if outer else " | ".join([first, *cells[1:]]) if len(cells) > 1 else f"{first} |"

    header = row([draw(cell) for _ in range(width)], draw(WORDS))
    # A delimiter row without outer pipes does not start with a lone `-` cell: `- | -` is a delimiter row in
    # commonmark-java (and ours), a list item in markdown-it-py.
    aligns = ["---", ":---", "---:", ":-:", "-"] if outer else ["---", ":---", "---:", ":-:"]
    delimiter = row([draw(st.sampled_from(aligns)) for _ in range(width)], draw(st.sampled_from(aligns[:4])))
    body = [
        row(draw(st.lists(cell, min_size=1, max_size=width + 1)), draw(WORDS)) for _ in range(draw(st.integers(0, 3)))
    ]
    return "\n".join([header, delimiter, *body])


BLOCKS = st.one_of(
    atx_heading().map(lambda b: ("heading", b)),
    atx_heading().map(lambda b: ("heading", b)),
    setext_heading().map(lambda b: ("setext", b)),
    paragraph_of(inline_line).map(lambda b: ("text", b)),
    paragraph_of(plain_line).map(lambda b: ("plain", b)),
    bullet_list().map(lambda b: ("list", b)),
    block_quote().map(lambda b: ("quote", b)),
    fenced_code().map(lambda b: ("fence", b)),
    st.sampled_from(["    # not a heading", "    code *x*", "    | a | b |", "\tcode\ttab"]).map(lambda b: ("code", b)),
    pipe_table().map(lambda b: ("table", b)),
    pipe_table().map(lambda b: ("table", b)),
    st.sampled_from(["---", "***", "___", "* * *"]).map(lambda b: ("rule", b)),
    st.sampled_from(["<div>\nan *html* block\n</div>", "<!-- a comment\nover lines -->", "<br/>"]).map(
        lambda b: ("html", b)
    ),
    st.just('[ref]: http://x.example/ref "Ref"').map(lambda b: ("definition", b)),
)


def separator(before: tuple[str, str], after: tuple[str, str], adjacent: bool) -> str:
    """How two generated blocks are joined: a blank line, or (when `adjacent`) a single line break.

    Two adjacencies always get the blank line, each a departure of markdown-it-py from what ours and commonmark-java
    (and commonmark.js) read:

    - an indented line right under a link reference definition, or under a quote (or a list, whose items hold
      quotes): CommonMark reads a definition off the start of a paragraph, and an indented line cannot interrupt
      a paragraph, so it is that paragraph's text, lazily continued; markdown-it-py reads a definition as a block
      of its own (the line is then indented code) and takes `    > b` or `    # b` under a quote as quote content.
    - a block start holding a pipe, right after a table: the row difference described in `pipe_table` (a table
      is followed directly only by a plain paragraph without a pipe, which both read as one more row).
    """
    if not adjacent:
        return "\n\n"
    if after[0] == "code" and before[0] in ("definition", "quote", "list"):
        return "\n\n"
    if before[0] == "table" and not (after[0] == "plain" and "|" not in after[1].split("\n")[0]):
        return "\n\n"
    if after[1] == "---" and "|" in before[1].split("\n")[-1]:
        return "\n\n"  # a pipe over `---`: a one-column table in markdown-it-py (see `pipe_table`)
    return "\n"


@st.composite
def markdown_documents(draw: st.DrawFn) -> str:
    blocks = draw(st.lists(BLOCKS, min_size=1, max_size=8))
    text = blocks[0][1]
    for before, after in zip(blocks, blocks[1:], strict=False):
        text += separator(before, after, draw(st.booleans())) + after[1]
    if text.startswith("---\n"):
        text = "intro\n\n" + text  # a leading `---` line opens front matter (the reference engine's rule)
    return text + "\n"


def test_reference_reading_of_the_sample() -> None:
    body = "## Overview\nThis *is* `x`.\n\n| A | B |\n|---|---|\n| 1 | 2 |\n"
    assert md_reference(body) == {
        "tables": [[{"A": "1", "B": "2"}]],
        "sections": [{"heading": "Overview", "level": 2, "content": "This is x."}],
    }


@settings(DIFFERENTIAL, max_examples=500)
@given(markdown_documents())
def test_markdown_reads_as_markdown_it_reads(body: str) -> None:
    ours = decode(body, "markdown")
    assert {"tables": ours["tables"], "sections": ours["sections"]} == md_reference(body), body


SOUP = st.sampled_from(
    [
        "*",
        "**",
        "_",
        "__",
        "***",
        "[",
        "]",
        "(",
        ")",
        "![",
        "`",
        "``",
        "<",
        ">",
        "&amp;",
        "\\",
        "a",
        "b",
        " ",
        "  ",
        "\n",
        "http://x",
        ":",
        "!",
        '"',
        "'",
        "<a>",
        "</a>",
        "<!--",
        "-->",
        "[ref]",
        "&#35;",
        "\\*",
        "foo",
        "-",
        "1.",
        "#",
        "<b c='d'>",
        "[x]:",
        " /u",
        "&notin;",
    ]
)


@settings(DIFFERENTIAL, max_examples=500)
@given(st.lists(SOUP, min_size=1, max_size=30).map("".join))
def test_markdown_inline_soup_reads_as_markdown_it_reads(soup: str) -> None:
    """Markup characters in any order under a heading: emphasis, brackets, code spans, autolinks, raw HTML,
    entities and escapes, with one link reference defined."""
    body = "# h\n" + soup + "\n\n[ref]: /r\n"
    ours = decode(body, "markdown")
    assert {"tables": ours["tables"], "sections": ours["sections"]} == md_reference(body), body


@DIFFERENTIAL
@given(st.dictionaries(st.sampled_from(["title", "version", "tags"]), WORDS, min_size=1), markdown_documents())
def test_markdown_front_matter(front: dict[str, str], body: str) -> None:
    text = "---\n" + yaml.safe_dump(front, sort_keys=False) + "---\n" + body
    ours = decode(text, "markdown")
    assert ours["frontMatter"] == front
    assert {"tables": ours["tables"], "sections": ours["sections"]} == md_reference(body), text


# --------------------------------------------------------------------------- html: the reference reading

# jsoup 1.21.2's block tags (`TagSet.initHtmlDefault`): its `text()` puts a space around each of them.
JSOUP_BLOCK = frozenset(
    """html head body frameset script noscript style meta link title frame noframes section nav
    aside hgroup header footer p h1 h2 h3 h4 h5 h6 br button ul ol pre div blockquote hr address figure figcaption
    form fieldset ins del dl dt dd li table caption thead tfoot tbody colgroup col tr th td video audio canvas details
    menu plaintext template article main center dir applet marquee listing""".split()
)
NO_TEXT = frozenset(("script", "style", "template", "head", "title"))
JSOUP_SPACE = re.compile("[ \t\n\f\r\xa0]+")  # jsoup's `isActuallyWhitespace`: HTML's five and the no-break space
JSOUP_INVISIBLE = re.compile("[\u200b\u00ad]")  # jsoup's `isInvisibleChar`: dropped from text
ROW_GROUPS = ("thead", "tbody", "tfoot")


def h5_children(element: Any) -> list[Any]:
    """An html5lib etree element's children as elements and strings (text and tails), comments left out."""
    children: list[Any] = [element.text] if element.text else []
    for child in element:
        if isinstance(child.tag, str):
            children.append(child)
        if child.tail:
            children.append(child.tail)
    return children


def h5_text(element: Any) -> str:
    """jsoup-like text: text nodes in order, a space around block elements and `<br>`, whitespace runs (with
    the no-break space) one space, invisible characters dropped, trimmed."""
    pieces: list[str] = []
    pending: list[Any] = list(reversed(h5_children(element)))
    while pending:
        item = pending.pop()
        if isinstance(item, str):
            pieces.append(item)
        elif item.tag not in NO_TEXT:
            block = item.tag in JSOUP_BLOCK
            if block:
                pieces.append(" ")
                pending.append(" ")
            pending.extend(reversed(h5_children(item)))
    text = JSOUP_INVISIBLE.sub("", JSOUP_SPACE.sub(" ", "".join(pieces)))
    return text.strip(JAVA_SPACE)


def h5_rows(table: Any) -> list[tuple[Any, Any]]:
    """The table's own rows (not those of nested tables), each with the element holding it: the table itself
    or its row group."""
    rows: list[tuple[Any, Any]] = []
    for child in table:
        if child.tag == "tr":
            rows.append((table, child))
        elif child.tag in ROW_GROUPS:
            rows.extend((child, row) for row in child if row.tag == "tr")
    return rows


def h5_cells(row: Any, tag: str) -> list[Any]:
    return [cell for cell in row if cell.tag == tag]


def html_reference(text: str) -> dict[str, Any]:
    """Our table rules (`engine/formats/html.py`) applied to html5lib's tree of `text`: every table in document
    order; headers from the first `<thead>` row, else from the first row of each row group; body rows those of
    the table and its `<tbody>`s (all rows when there are none) holding a `<td>` and no `<th>`."""
    root = html5lib.parse(text, treebuilder="etree", namespaceHTMLElements=False)
    tables = []
    for table in root.iter("table"):
        rows = h5_rows(table)
        thead = [row for holder, row in rows if holder.tag == "thead"]
        if thead and h5_cells(thead[0], "th"):
            header_cells = h5_cells(thead[0], "th")
        else:
            groups: set[int] = set()
            header_cells = []
            for holder, row in rows:
                if id(holder) not in groups:
                    groups.add(id(holder))
                    header_cells.extend(h5_cells(row, "th"))
        headers = [h5_text(cell) for cell in header_cells]
        if not any(headers):
            continue
        body = [row for holder, row in rows if holder is table or holder.tag == "tbody"] or [row for _, row in rows]
        tables.append(
            [
                {header: values[i] if i < len(values) else "" for i, header in enumerate(headers)}
                for row in body
                if h5_cells(row, "td") and not h5_cells(row, "th")
                for values in [[h5_text(cell) for cell in h5_cells(row, "td")]]
            ]
        )
    return {"tables": tables}


# --------------------------------------------------------------------------- html: documents

HTML_TEXT = st.sampled_from(
    [
        "alpha",
        "Beta 2",
        "  spaced   out  ",
        "\n line\tbreak \n",
        "a &amp; b",
        "&lt;tag&gt;",
        "x&nbsp;y",
        "&nbsp;",
        "&copy; 2024",
        "&#x41;&#66;",
        "café",
        "&notit;",
        "&amp",
        "soft\u00adhyphen",
        "zero\u200bwidth",
        "1 < 2",
        "3 > 2",
        " ",
        "",
    ]
)
INLINE_TAGS = st.sampled_from(["b", "i", "em", "strong", "span", "a", "code", "small", "sub", "sup", "B", "Span"])
BLOCK_TAGS = st.sampled_from(["p", "div", "h3", "li", "blockquote", "P", "DIV"])
ATTRIBUTES = st.sampled_from(["", ' class="c"', " id=x", " title='a > b'", ' data-x="1" hidden'])


def html_content(depth: int) -> st.SearchStrategy[str]:
    """What goes in a cell: text, inline and block elements (closed or not), line breaks, comments, scripts."""
    leaf = st.one_of(
        HTML_TEXT,
        HTML_TEXT,
        st.sampled_from(
            [
                "<br>",
                "<br/>",
                "<!-- note -->",
                "<script>x<y</script>",
                "<style>td{}</style>",
                "<img src=i.png alt=i>",
                "<wbr>",
            ]
        ),
    )
    if depth == 0:
        return leaf

    def wrap(parts: tuple[str, str, str, list[str], bool]) -> str:
        tag, attrs, _, inner, closed = parts
        return f"<{tag}{attrs}>{''.join(inner)}" + (f"</{tag}>" if closed else "")

    inner = st.lists(html_content(depth - 1), max_size=3)
    element = st.tuples(st.one_of(INLINE_TAGS, BLOCK_TAGS), ATTRIBUTES, st.just(""), inner, st.booleans()).map(wrap)
    return st.one_of(leaf, leaf, element)


@st.composite
def html_table(draw: st.DrawFn, depth: int = 1) -> str:
    """A table with optional caption, head and body groups; cells may be `th` or `td`, closed or not, rows of
    any width, and a cell may hold a nested table."""

    def cell(header: bool) -> str:
        tag = "th" if header else draw(st.sampled_from(["td", "td", "td", "th", "TD"]))
        content = "".join(draw(st.lists(html_content(2), max_size=3)))
        if depth and draw(st.integers(0, 7)) == 0:
            content += draw(html_table(depth=0))
        return f"<{tag}{draw(ATTRIBUTES)}>{content}" + (f"</{tag}>" if draw(st.booleans()) else "")

    def row(header: bool) -> str:
        cells = "".join(cell(header) for _ in range(draw(st.integers(0, 4))))
        return (
            draw(st.sampled_from(["<tr>", "<TR>", "<tr class=r>"])) + cells + ("</tr>" if draw(st.booleans()) else "")
        )

    # between rows: whitespace, or content HTML5 foster-parents (puts before the table), or cells it puts in an
    # implied row, or a table that ends this one
    space = st.sampled_from(
        [
            "",
            "\n",
            "  ",
            "\n  ",
            "",
            "\n",
            "stray text",
            "<b>bold",
            "<span>s</span>",
            "<form>",
            "<div>d</div>",
            "<input type=hidden>",
            "<td>direct cell",
            "<th>direct head</th>",
            "<p>para",
            "<table><tr><th>sibling</th></tr></table>",
        ]
    )
    parts = ["<table" + draw(ATTRIBUTES) + ">", draw(space)]
    if draw(st.booleans()):
        parts.append("<caption>" + draw(HTML_TEXT) + "</caption>")
    if draw(st.booleans()):
        parts.append(
            "<thead>"
            + "".join(row(draw(st.booleans())) for _ in range(draw(st.integers(1, 2))))
            + draw(st.sampled_from(["</thead>", ""]))
        )
    body = "".join(row(draw(st.booleans())) + draw(space) for _ in range(draw(st.integers(0, 4))))
    style = draw(st.sampled_from(["plain", "tbody", "tbodies"]))
    if style == "tbody":
        body = "<tbody>" + body + draw(st.sampled_from(["</tbody>", ""]))
    elif style == "tbodies":
        body = "<tbody>" + body + "</tbody><tbody>" + row(False) + "</tbody>"
    parts += [body, draw(space), draw(st.sampled_from(["</table>", "</TABLE>", "</table>"]))]
    return "".join(parts)


@st.composite
def html_documents(draw: st.DrawFn) -> str:
    before = "".join(draw(st.lists(html_content(2), max_size=3)))
    tables = draw(st.lists(html_table(), min_size=1, max_size=3))
    around = draw(st.sampled_from(["", "<div>", "<section id=s>", "<p>", "<b>", "<ul><li>"]))
    body = before + around + "".join(t + "".join(draw(st.lists(html_content(1), max_size=2))) for t in tables)
    page = draw(st.sampled_from(["fragment", "page", "doctype"]))
    if page == "fragment":
        return body
    head = "<head><title>t</title><meta charset=utf-8></head>"
    return ("<!DOCTYPE html>" if page == "doctype" else "") + f"<html>{head}<body>{body}</body></html>"


def test_html_reference_reading_of_a_sample() -> None:
    body = "<table><tr><th>A<th>B</tr><tr><td>1<td>x&nbsp;<b>y</b><br>z</table>"
    assert html_reference(body) == {"tables": [[{"A": "1", "B": "x y z"}]]}


@settings(DIFFERENTIAL, max_examples=120)
@given(html_documents())
def test_html_tables_read_as_html5lib_builds_them(body: str) -> None:
    assert decode(body, "html") == html_reference(body), body


# --------------------------------------------------------------------------- csv, tsv, psv: Python's csv writer

CSV_FIELDS = st.text(alphabet=st.sampled_from(list("ab ,\t|\"'\n\r;x1é")), max_size=6)


@DIFFERENTIAL
@given(
    st.sampled_from(sorted(SEPARATORS)),
    st.lists(CSV_FIELDS, min_size=1, max_size=4),
    st.lists(st.lists(CSV_FIELDS, min_size=1, max_size=5), max_size=5),
    st.sampled_from(["minimal", "all"]),
    st.sampled_from(["\r\n", "\n"]),
)
def test_delimited_rows_read_as_the_csv_module_writes_them(
    label: str, header: list[str], rows: list[list[str]], quoting: str, line_end: str
) -> None:
    """Rows written with RFC 4180 quoting (the csv module's writer) read back as our rules say: keyed by the header,
    a short row without its missing columns, extra empty fields dropped (extra non-empty ones are an error)."""
    out = io.StringIO(newline="")
    # minimal quoting quotes a field holding a character of the line terminator: with `\n` alone a field's `\r`
    # would go unquoted (the writer's output would not be RFC 4180), so `\n` line ends go with quoting all fields
    writer = csv.writer(
        out,
        delimiter=SEPARATORS[label],
        lineterminator=line_end if quoting == "all" else "\r\n",
        quoting=csv.QUOTE_ALL if quoting == "all" else csv.QUOTE_MINIMAL,
    )
    writer.writerows([header, *rows])
    width = len(header)
    if any(len(row) > width and any(row[width:]) for row in rows):
        with pytest.raises(FormatError, match="fields but the header has"):
            decode(out.getvalue(), label)
        return
    assert decode(out.getvalue(), label) == [dict(zip(header, row[:width], strict=False)) for row in rows]


# --------------------------------------------------------------------------- xml: ElementTree in Jackson's shape


def jackson_shape(element: ET.Element) -> Any:
    """What Jackson's `XmlMapper.readTree` makes of an element, by our docstring's rules: attributes and child
    elements as fields by local name, repeated names as arrays, text alone as a string (blank: ""), text beside
    attributes or children under "" (each non-blank run, in order)."""
    fields: dict[str, Any] = {}

    def put(key: str, value: Any) -> None:
        if key not in fields:
            fields[key] = value
        elif isinstance(fields[key], list):
            fields[key].append(value)
        else:
            fields[key] = [fields[key], value]

    for key, value in element.attrib.items():
        put(key.rpartition("}")[2], value)
    if not len(element):
        text = element.text or ""
        if not fields:
            return text if text.strip() else ""
        if text.strip():
            put("", text)
        return fields
    if element.text and element.text.strip():
        put("", element.text)
    for child in element:
        put(child.tag.rpartition("}")[2], jackson_shape(child))
        if child.tail and child.tail.strip():
            put("", child.tail)
    return fields


XML_NAMES = st.sampled_from(["a", "b", "item", "x:c", "d"])
XML_TEXT = st.sampled_from(
    ["", " ", "v", "two words", "&amp;", "&lt;b&gt;", "&#233;", "<![CDATA[<raw> & ]]>", "\n  ", "1"]
)


@st.composite
def xml_element(draw: st.DrawFn, depth: int = 3) -> str:
    name = draw(XML_NAMES)
    attrs = "".join(
        f' {key}="{draw(st.sampled_from(["1", "a b", "&amp;", ""]))}"'
        for key in draw(st.lists(st.sampled_from(["id", "k", "x:t"]), unique=True, max_size=2))
    )
    if depth == 0 or draw(st.integers(0, 3)) == 0:
        text = draw(XML_TEXT)
        return f"<{name}{attrs}>{text}</{name}>" if text or draw(st.booleans()) else f"<{name}{attrs}/>"
    parts = [draw(XML_TEXT)]
    for child in draw(st.lists(xml_element(depth - 1), max_size=4)):
        parts += [child, draw(XML_TEXT)]
    return f"<{name}{attrs}>{''.join(parts)}</{name}>"


@DIFFERENTIAL
@given(xml_element())
def test_xml_reads_as_elementtree_in_jacksons_shape(element: str) -> None:
    document = f'<?xml version="1.0"?>\n<root xmlns:x="urn:x">{element}</root>'
    root = ET.fromstring(document)
    expected = jackson_shape(root)
    assert decode(document.encode(), "xml") == ({} if expected == "" else expected), document
