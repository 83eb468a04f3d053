"""Markdown bodies: `{"frontMatter": {...}, "tables": [...], "sections": [{heading, level, content}]}`.

Front matter is a leading `---` block of YAML (only a mapping counts). The body is read as CommonMark with GFM
tables, as the reference engine reads it with commonmark-java: tables are the top-level ones; a section is a
top-level heading, and its content the plain text of the paragraphs and headings up to the next top-level
heading, in lists and quotes too, one per line, without tables, code or HTML blocks. `outputSchema` keeps only
the sections whose heading starts with it.

The reading goes in two passes, as CommonMark's: `markdown_blocks` turns the lines into leaves (with the link
reference definitions `markdown_links` reads off paragraphs), then `markdown_inline` turns each leaf's inline
markup into the text commonmark-java's Text and Code nodes hold, once every label is known. Both are our own and
linear: markdown-it-py, the library CommonMark port, was measured too: 0.45 s for a 1 MB README, but 15 to 18 s
for 1 MB of `[` or `![a` repeated, past the bound decoding must keep. tests/engine/formats/
test_formats_differential.py compares what this reads with what markdown-it-py reads, on generated documents.
"""

from __future__ import annotations

from typing import Any

from .common import Budget, rows_to_objects
from .markdown_blocks import BlockParser, Table
from .markdown_inline import plain_text
from .yaml import load_yaml


def decode_markdown(prefix: str | None, budget: Budget, text: str) -> dict[str, Any]:
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    front_matter, body = _split_front_matter(text, budget)
    parser = BlockParser()
    for line in body.replace("\x00", "\ufffd").split("\n"):
        parser.line(line)
    events = parser.finish()
    budget.spend(len(events))
    references = parser.references
    tables: list[list[dict[str, str]]] = []
    sections: list[dict[str, Any]] = []
    contents: list[list[str]] = []
    for event in events:
        if isinstance(event, Table):
            if event.top:
                _add_table(tables, event, references, budget)
        elif event.level and event.top:
            sections.append({"heading": plain_text(event.raw, references), "level": event.level, "content": ""})
            contents.append([])
        elif sections and (line := plain_text(event.raw, references)):
            contents[-1].append(line)
    for section, lines in zip(sections, contents, strict=True):
        section["content"] = "\n".join(lines)
    return {
        "frontMatter": front_matter,
        "tables": tables,
        "sections": [s for s in sections if prefix is None or s["heading"].startswith(prefix)],
    }


def _add_table(tables: list[list[dict[str, str]]], table: Table, references: set[str], budget: Budget) -> None:
    headers = [plain_text(cell, references) for cell in table.header]
    if any(headers):
        budget.spend(1 + len(headers))
        rows = [[plain_text(cell, references) for cell in row] for row in table.rows]
        tables.append(rows_to_objects(headers, rows, budget))


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
