"""engine.formats: each `outputRawFormat` decodes to the JSON shape the reference engine produces.

The sample payloads under tests/data/formats are copies of the reference corpus's
`src/test/resources/schemas/` files, so these tests stand alone.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support import ROOT
from naftiko.engine.formats import (
    KNOWN_FORMATS,
    SUPPORTED_FORMATS,
    FormatError,
    check_format,
    decode,
    decoder_for,
)

DATA = ROOT / "tests" / "data" / "formats"


def sample(name: str) -> bytes:
    return (DATA / name).read_bytes()


# --------------------------------------------------------------- reference samples (NOTES §4.1)


def test_json_is_the_default() -> None:
    assert decode(b'{"a": [1, 2.5, true, null]}', None) == {"a": [1, 2.5, True, None]}
    assert decode(b'{"a": 1}', "json") == {"a": 1}


def test_xml_drops_the_root_and_repeats_become_arrays() -> None:
    data = decode(sample("sample-users.xml"), "xml")
    assert list(data) == ["user"]
    assert len(data["user"]) == 3
    assert data["user"][0] == {"id": "1", "name": "Alice Smith", "email": "alice@example.com"}


def test_yaml_sample() -> None:
    data = decode(sample("sample-users.yaml"), "yaml")
    assert len(data["users"]) == 3
    assert data["users"][2]["name"] == "Carol White"


@pytest.mark.parametrize(
    "fmt, name", [("csv", "sample-users.csv"), ("tsv", "sample-users.tsv"), ("psv", "sample-users.psv")]
)
def test_delimited_samples(fmt: str, name: str) -> None:
    rows = decode(sample(name), fmt)
    assert len(rows) == 3
    assert rows[0] == {"id": "1", "name": "Alice Smith", "email": "alice@example.com"}


def test_html_sample_with_selector() -> None:
    data = decode(sample("sample-products.html"), "html", schema="table.products")
    assert len(data["tables"]) == 1
    rows = data["tables"][0]
    assert len(rows) == 2
    assert rows[0] == {"Name": "Widget", "Price": "$42", "Stock": "150"}
    assert rows[1]["Price"] == "$99"


def test_markdown_sample() -> None:
    data = decode(sample("sample-readme.md"), "markdown")
    assert data["frontMatter"] == {"title": "Product Release Notes", "version": "2.1.0"}
    assert data["tables"] == [
        [{"Feature": "HTML support", "Status": "GA"}, {"Feature": "Markdown support", "Status": "Beta"}]
    ]
    assert data["sections"] == [
        {"heading": "Overview", "level": 2, "content": "This release introduces table extraction for markdown."}
    ]


# --------------------------------------------------------------- labels and errors


@pytest.mark.parametrize("label", ["JSON", "Xml", "YAML", "Csv", "TSV", "pSv", "HTML", "Markdown"])
def test_labels_are_case_insensitive(label: str) -> None:
    check_format(label)
    decoder_for(label)


def test_known_labels() -> None:
    assert SUPPORTED_FORMATS == ("json", "xml", "yaml", "csv", "tsv", "psv", "html", "markdown")
    assert set(KNOWN_FORMATS) == set(SUPPORTED_FORMATS) | {"protobuf", "avro"}
    check_format(None)


def test_unknown_label_names_itself_and_the_supported_ones() -> None:
    with pytest.raises(FormatError) as info:
        check_format("toml")
    message = str(info.value)
    assert "'toml'" in message
    assert "json, xml, yaml, csv, tsv, psv, html, markdown" in message
    with pytest.raises(FormatError, match="'toml'"):
        decode(b"a = 1", "toml")
    assert isinstance(info.value, ValueError)


@pytest.mark.parametrize("label", ["protobuf", "Avro"])
def test_binary_formats_load_but_do_not_decode(label: str) -> None:
    check_format(label)  # the reference corpus loads capabilities declaring them
    with pytest.raises(FormatError, match=f"'{label.lower()}' is not supported by this runtime yet"):
        decode(b"\x08\x01", label, schema="records.proto")


@pytest.mark.parametrize(
    "fmt, body, expected",
    [
        ("json", b'{"a": 1,}', "json: Expecting property name enclosed in double quotes at line 1, column 9"),
        ("json", b"[1, 2", "json: Expecting ',' delimiter at line 1, column 6"),
        ("xml", b"<r><a></r>", "xml: mismatched tag at line 1, column 9"),
        ("xml", b"<r>", "xml: no element found at line 1, column 4"),
        ("yaml", b"a: [1, 2", "yaml: did not find expected ',' or ']' at line 2, column 1"),  # libyaml's words
    ],
)
def test_malformed_bodies_give_short_messages(fmt: str, body: bytes, expected: str) -> None:
    with pytest.raises(FormatError) as info:
        decode(body, fmt)
    assert str(info.value) == expected
    assert info.value.__cause__ is None and info.value.__suppress_context__


def test_empty_bodies() -> None:
    assert decode(b"", "json") is None
    assert decode(b"  \n", "yaml") is None
    assert decode(b"", "xml") is None
    assert decode(b"", "csv") == []
    assert decode(b"", "html") == {"tables": []}
    assert decode(b"", "markdown") == {"frontMatter": {}, "tables": [], "sections": []}


def test_charsets_and_byte_order_marks() -> None:
    assert decode(b'\xef\xbb\xbf{"a": 1}', "json") == {"a": 1}
    assert decode('{"a": "é"}'.encode("utf-16"), "json", encoding="utf-16") == {"a": "é"}
    assert decode("x\ncafé\n".encode("latin-1"), "csv", encoding="ISO-8859-1") == [{"x": "café"}]
    assert decode('{"a": "é"}', "json") == {"a": "é"}  # text is accepted as it is
    with pytest.raises(FormatError, match="unknown response charset 'nope'"):
        decode(b"{}", "json", encoding="nope")


# --------------------------------------------------------------- xml


def test_xml_single_child_is_not_an_array() -> None:
    body = b"<vessels><vessel><code>V001</code><name>Sea Eagle</name></vessel></vessels>"
    assert decode(body, "xml") == {"vessel": {"code": "V001", "name": "Sea Eagle"}}


def test_xml_attributes_become_fields_and_text_sits_under_empty_key() -> None:
    body = b'<r><item id="7" kind="a"><name>x</name></item><tag lang="en">hello</tag></r>'
    assert decode(body, "xml") == {
        "item": {"id": "7", "kind": "a", "name": "x"},
        "tag": {"lang": "en", "": "hello"},
    }


def test_xml_empty_mixed_and_non_adjacent_repeats() -> None:
    body = b"<r><a>1</a><empty/><blank>\n  </blank><b>2</b><a>3</a><p>Hi <i>you</i> there</p></r>"
    assert decode(body, "xml") == {
        "a": ["1", "3"],
        "empty": "",
        "blank": "",
        "b": "2",
        "p": {"": ["Hi ", " there"], "i": "you"},
    }


def test_xml_root_shapes_namespaces_and_cdata() -> None:
    assert decode(b"<r/>", "xml") == {}
    assert decode(b"<r>just text</r>", "xml") == "just text"
    assert decode(b'<r id="1"/>', "xml") == {"id": "1"}
    body = b'<s:r xmlns:s="urn:s" xmlns:x="urn:x"><s:v x:code="1"><![CDATA[<b>]]></s:v></s:r>'
    assert decode(body, "xml") == {"v": {"code": "1", "": "<b>"}}


def test_xml_charset_from_declaration_or_response() -> None:
    declared = '<?xml version="1.0" encoding="ISO-8859-1"?><r><a>café</a></r>'.encode("latin-1")
    assert decode(declared, "xml") == {"a": "café"}
    assert decode("<r><a>café</a></r>".encode("cp1252"), "xml", encoding="windows-1252") == {"a": "café"}


def test_xml_refuses_entity_declarations() -> None:
    body = b'<!DOCTYPE r [<!ENTITY a "aaaaaaaa"><!ENTITY b "&a;&a;&a;&a;">]><r>&b;</r>'
    with pytest.raises(FormatError, match="xml: entity declarations are not allowed"):
        decode(body, "xml")


# --------------------------------------------------------------- yaml


def test_yaml_stays_json_shaped() -> None:
    body = (
        b"day: 2024-01-02\n1: one\ntrue: yes\nk: 1\nk: 2\n"
        b"base: &b {x: 1, y: 2}\nmerged:\n  <<: *b\n  y: 3\n---\nsecond: document\n"
    )
    assert decode(body, "yaml") == {
        "day": "2024-01-02",
        "1": "one",
        "true": "yes",
        "k": 2,
        "base": {"x": 1, "y": 2},
        "merged": {"x": 1, "y": 3},
    }


def test_yaml_unknown_tag_is_an_error() -> None:
    with pytest.raises(FormatError, match="yaml: could not determine a constructor for the tag '!x'"):
        decode(b"a: !x 1", "yaml")


# --------------------------------------------------------------- csv / tsv / psv


def test_csv_quoted_fields_with_separators_quotes_and_newlines() -> None:
    body = b'id,name,note\r\n1,"Smith, Alice","line one\r\nline two"\r\n2,"say ""hi""",\r\n\r\n'
    assert decode(body, "csv") == [
        {"id": "1", "name": "Smith, Alice", "note": "line one\r\nline two"},
        {"id": "2", "name": 'say "hi"', "note": ""},
    ]


def test_tsv_and_psv_quote_too() -> None:
    assert decode(b'a\tb\n"x\ty"\tz\n', "tsv") == [{"a": "x\ty", "b": "z"}]
    assert decode(b'a|b\n"x|y"|z\n', "psv") == [{"a": "x|y", "b": "z"}]


def test_csv_short_rows_and_extra_fields() -> None:
    assert decode(b"a,b,c\n1,2\n", "csv") == [{"a": "1", "b": "2"}]
    assert decode(b"a,b\n1,2,,\n", "csv") == [{"a": "1", "b": "2"}]
    with pytest.raises(FormatError, match="csv: line 2 has 3 fields but the header has 2"):
        decode(b"a,b\n1,2,3\n", "csv")


def test_csv_header_only() -> None:
    assert decode(b"id,name\n", "csv") == []


# --------------------------------------------------------------- html

PAGE = b"""<html><body>
<section id="s1"><table class="first"><thead><tr><th>H</th></tr></thead>
  <tbody><tr><td>a</td></tr></tbody></table></section>
<section id="s2"><p>intro</p>
  <table class="second wide"><tr><th>Key</th><th>Value</th></tr>
    <tr><td>k1</td><td>v1 &amp; <b>more</b><br>text</td></tr>
    <tr><th>row header</th><td>skipped</td></tr>
    <tr><td>k2</td></tr>
  </table>
  <table><tr><td>no header row</td></tr></table>
</section></body></html>"""

FIRST = [{"H": "a"}]
SECOND = [{"Key": "k1", "Value": "v1 & more text"}, {"Key": "k2", "Value": ""}]


@pytest.mark.parametrize(
    "selector, expected",
    [
        (None, [FIRST, SECOND]),
        ("table", [FIRST, SECOND]),
        (".second", [SECOND]),
        ("#s1", [FIRST]),
        ("table.first", [FIRST]),
        ("section#s2", [SECOND]),
        ("section table.wide", [SECOND]),
        ("body > section", [FIRST, SECOND]),
        ("body > table", []),
        ("table.first, #s2", [FIRST, SECOND]),
        ("p", []),
        ("#missing", []),
    ],
)
def test_html_selectors(selector: str | None, expected: list) -> None:
    assert decode(PAGE, "html", schema=selector) == {"tables": expected}


def test_html_implied_end_tags_and_cell_padding() -> None:
    body = b"<table><tr><th>a<th>b<tr><td>1<td>2<td>extra<tr><td>only</table>"
    assert decode(body, "html") == {"tables": [[{"a": "1", "b": "2"}, {"a": "only", "b": ""}]]}


def test_html_nested_tables_keep_their_own_rows() -> None:
    body = (
        b"<table><tr><th>outer</th></tr><tr><td>x<table><tr><th>inner</th></tr>"
        b"<tr><td>y</td></tr></table></td></tr></table>"
    )
    assert decode(body, "html") == {"tables": [[{"outer": "x inner y"}], [{"inner": "y"}]]}


def test_html_fragments_get_html_and_body_like_in_a_browser() -> None:
    fragment = b"<table><tr><th>a</th></tr><tr><td>1</td></tr></table>"
    assert decode(fragment, "html", schema="html > body > table") == {"tables": [[{"a": "1"}]]}
    page = b"<html><head><title>t</title></head><table><tr><th>a</th></tr><tr><td>1</td></tr></table></html>"
    assert decode(page, "html", schema="body > table") == {"tables": [[{"a": "1"}]]}


def test_html_unsupported_selector_is_rejected_at_load() -> None:
    with pytest.raises(FormatError, match=r"unsupported outputSchema selector 'tr:first-child'"):
        check_format("html", schema="tr:first-child")
    check_format("html", schema="div.a > table#b[data-x='1']")


# --------------------------------------------------------------- markdown

DOC = b"""---
title: Notes
released: 2024-05-01
---
Preamble is not a section.

# Guide *one* #

Text with **bold**, `code`, a [link](http://x.example "t"), ![an image](i.png), <span>html</span>,
an entity &amp; an escape \\*; snake_case stays.
Hard break here\x20\x20
next line.

```
# not a heading
| not | a table |
|-----|---------|
```

- first item
- second item

## API Details

| Name | Notes |
|:-----|------:|
| `get` | escaped \\| pipe |
| short |
A line without a pipe is one more row.

Text after the table.

Setext Heading
==============
body
"""


def test_markdown_document() -> None:
    data = decode(DOC, "markdown")
    assert data["frontMatter"] == {"title": "Notes", "released": "2024-05-01"}
    # the line without a pipe continues the table (GFM; commonmark-java 0.24, the reference engine's, reads it so
    # too: its TablesTest.tableWithLazyContinuationLine); a blank line ends it
    assert data["tables"] == [
        [
            {"Name": "get", "Notes": "escaped | pipe"},
            {"Name": "short", "Notes": ""},
            {"Name": "A line without a pipe is one more row.", "Notes": ""},
        ]
    ]
    assert data["sections"] == [
        {
            "heading": "Guide one",
            "level": 1,
            "content": "Text with bold, code, a link, an image, html, an entity & an escape *; snake_case stays. "
            "Hard break here\nnext line.\nfirst item\nsecond item",
        },
        {"heading": "API Details", "level": 2, "content": "Text after the table."},
        {"heading": "Setext Heading", "level": 1, "content": "body"},
    ]


def test_markdown_section_prefix_filter() -> None:
    body = b"## Overview\na\n## Other\nb\n## Overview 2\nc\n"
    sections = decode(body, "markdown", schema="Overview")["sections"]
    assert [s["heading"] for s in sections] == ["Overview", "Overview 2"]
    assert len(decode(body, "markdown", schema=" ")["sections"]) == 3  # blank = no filter


def test_markdown_front_matter_edge_cases() -> None:
    assert decode(b"---\n- a list\n---\n# x\n", "markdown")["frontMatter"] == {}
    assert decode(b"# x\n---\na: 1\n---\n", "markdown")["frontMatter"] == {}
    assert decode(b"---\r\na: 1\r\n---\r\n# x\r\n", "markdown")["frontMatter"] == {"a": 1}
    with pytest.raises(FormatError, match="markdown front matter: "):
        decode(b"---\na: [\n---\n# x\n", "markdown")


def test_markdown_emphasis_is_linear_on_hostile_input() -> None:
    # Regex-based emphasis stripping is quadratic here; the delimiter stack is not.
    data = decode(b"# h\n" + b"*a _b " * 20000, "markdown")
    assert data["sections"][0]["content"].startswith("*a _b *a _b")


# --------------------------------------------------------------- limits and hostile bodies (issue 12)

ALIAS_BOMB = b"a: &a [x, x, x, x, x, x, x, x, x, x]\n" + b"".join(
    b"%c: &%c [%s]\n" % (98 + i, 98 + i, b", ".join([b"*%c" % (97 + i)] * 10)) for i in range(6)
)


def test_yaml_alias_bomb_stops_at_the_expansion_limit() -> None:
    assert len(ALIAS_BOMB) < 400  # expands to 10 ** 7 values
    with pytest.raises(FormatError) as info:
        decode(ALIAS_BOMB, "yaml")
    assert info.value.limit == "decoded_items"
    assert "more than 1,000,000 values" in str(info.value)
    assert "--limit decoded-items=N" in str(info.value) and "NAFTIKO_MAX_DECODED_ITEMS" in str(info.value)


def test_yaml_aliases_within_the_limit_are_expanded_and_counted() -> None:
    body = b"a: &a [1, 2, 3]\nb: *a\nc: [*a, *a]\n"
    assert decode(body, "yaml") == {"a": [1, 2, 3], "b": [1, 2, 3], "c": [[1, 2, 3], [1, 2, 3]]}
    # 1 mapping + 3 keys + 4 (a) + 4 (b) + 1 + 8 (c) = 21 values
    assert decode(body, "yaml", max_items=21)["c"][1] == [1, 2, 3]
    with pytest.raises(FormatError, match="more than 20 values"):
        decode(body, "yaml", max_items=20)


def test_yaml_recursive_structures_are_refused() -> None:
    for body in (b"a: &a [1, *a]", b"&m {x: *m}", b"- &s\n  - *s\n"):
        with pytest.raises(FormatError, match="refers to a collection that contains it"):
            decode(body, "yaml")


def test_yaml_merge_keys_and_their_errors() -> None:
    body = b"a: &a {x: 1, y: 1}\nb: &b {x: 2, z: 2}\nc:\n  <<: [*a, *b]\n  y: 3\n"
    assert decode(body, "yaml")["c"] == {"x": 1, "y": 3, "z": 2}  # the earlier merged mapping wins
    with pytest.raises(FormatError, match="expected a mapping or list of mappings for merging"):
        decode(b"<<: 1", "yaml")
    with pytest.raises(FormatError, match='found duplicate merge key "<<"'):
        decode(b"a: &x {b: 1}\nc:\n  <<: *x\n  <<: *x", "yaml")
    with pytest.raises(FormatError, match="found undefined alias 'nope'"):
        decode(b"a: *nope", "yaml")


def test_yaml_scalars_resolve_as_ruamel_resolves_them() -> None:
    body = (
        b"i: 0x1F\no: 0o17\nd: 017\nf: 1_2.5\ninf: -.Inf\nn: ~\nb: True\ns: '12'\nt: !!int '7'\n"
        b"ts: 2001-12-14t21:59:43.10-05:00\nbin: !!binary |\n  aGVs\n  bG8=\n"
    )
    assert decode(body, "yaml") == {
        "i": 31,
        "o": 15,
        "d": 17,
        "f": 12.5,
        "inf": float("-inf"),
        "n": None,
        "b": True,
        "s": "12",
        "t": 7,
        "ts": "2001-12-14t21:59:43.10-05:00",
        "bin": "aGVsbG8=",
    }
    assert decode(b"%YAML 1.1\n---\na: yes\nb: 017\nc: 1:30\n", "yaml") == {"a": True, "b": 15, "c": 90}
    with pytest.raises(FormatError, match="cannot read '1' \\* 5000|cannot read"):
        decode(b"a: " + b"1" * 5000, "yaml")  # past Python's integer-string limit: an error, not a crash


@pytest.mark.parametrize(
    "fmt, body",
    [
        ("yaml", b"a: " + b"[" * 300 + b"]" * 300),
        ("yaml", b"".join(b"  " * i + b"- \n" for i in range(300))),
        ("xml", b"<a>" * 300 + b"</a>" * 300),
    ],
)
def test_nesting_past_the_depth_bound_is_an_error(fmt: str, body: bytes) -> None:
    with pytest.raises(FormatError, match="nested more than 256 levels deep"):
        decode(body, fmt)


def test_nesting_within_the_depth_bound_decodes() -> None:
    data = decode(b"<r>" + b"<a>" * 250 + b"x" + b"</a>" * 250 + b"</r>", "xml")
    for _ in range(249):
        data = data["a"]
    assert data == {"a": "x"}


def test_xml_counts_elements_attributes_and_text() -> None:
    body = b"<r>" + b'<a k="1">t</a>' * 10 + b"</r>"
    assert len(decode(body, "xml", max_items=31)["a"]) == 10  # root + 10 x (element, attribute, text)
    with pytest.raises(FormatError, match="xml: the document holds more than 30 values") as info:
        decode(body, "xml", max_items=30)
    assert info.value.limit == "decoded_items"


def test_csv_fields_longer_than_the_csv_module_default() -> None:
    field = "x" * 200_000  # the csv module refuses 131,072+ characters unless told otherwise
    assert decode(f'a,b\n"{field}",1\n'.encode(), "csv") == [{"a": field, "b": "1"}]


def test_csv_counts_fields() -> None:
    body = b"a,b\n" + b"1,2\n" * 10
    assert len(decode(body, "csv", max_items=32)) == 10  # header 2 + 10 rows x 3
    with pytest.raises(FormatError, match="csv: the document holds more than 31 values"):
        decode(body, "csv", max_items=31)


def test_html_compound_selector_with_two_ids_matches_nothing() -> None:
    body = b'<div id="a"><table><tr><th>h</th></tr><tr><td>1</td></tr></table></div>'
    assert decode(body, "html", schema="#a") == {"tables": [[{"h": "1"}]]}
    assert decode(body, "html", schema="#b#a") == {"tables": []}
    assert decode(body, "html", schema="div#a#a") == {"tables": [[{"h": "1"}]]}


def test_html_tokenizer_follows_html5_on_broken_markup() -> None:
    table = b"<table><tr><th>h</th></tr><tr><td>%s</td></tr></table>"
    # an unclosed attribute quote swallows the rest of the document, so the tag and the rest are dropped
    assert decode(table % b'a<span title="x>b</td></tr></table>', "html") == {"tables": [[{"h": "a"}]]}
    # raw text elements end only at their own end tag
    assert decode(table % b"<script>x</td><td>y</script>z", "html") == {"tables": [[{"h": "z"}]]}
    # an unclosed comment runs to the end; stray `<` and end tags are text or ignored
    assert decode(table % b"1 < 2</b></i>&lt;3", "html") == {"tables": [[{"h": "1 < 2<3"}]]}
    assert decode(table % b"a<!-- x</td>b", "html") == {"tables": [[{"h": "a"}]]}
    assert decode(b"<" + b"<a" * 1000, "html") == {"tables": []}


def test_html_nesting_is_capped_like_a_browser() -> None:
    table = b"<table><tr><th>h</th></tr><tr><td>deep</td></tr></table>"
    assert decode(b"<div>" * 400 + table, "html") == {"tables": [[{"h": "deep"}]]}
    # past 512 open elements each new one replaces the deepest (Blink flattens there too), so the
    # rows of a table that deep are not inside it any more
    assert decode(b"<div>" * 5000 + table, "html") == {"tables": []}


def test_html_counts_cells_and_bounds_repeated_text() -> None:
    body = b"<table><tr><th>a</th><th>b</th></tr>" + b"<tr><td>1</td><td>2</td></tr>" * 10 + b"</table>"
    assert len(decode(body, "html", max_items=33)["tables"][0]) == 10  # table 1 + 2 headers + 10 x 3
    with pytest.raises(FormatError, match="html: the document holds more than 32 values"):
        decode(body, "html", max_items=32)
    nested = b"<table><tr><th>h</th></tr><tr><td>" * 120 + b"x" * 10_000
    with pytest.raises(FormatError, match="tables' text is more than 4 times the document"):
        decode(nested, "html")


def test_markdown_paragraph_starting_with_an_inline_tag_is_kept() -> None:
    body = (
        b"# Notes\n<b>Note:</b> keep this text\n\n<div>\nan html block\n</div>\n\n<span>x</span>\n\n"
        b"<br/>\nalone on its line: an html block\n"
    )
    assert decode(body, "markdown")["sections"] == [
        {"heading": "Notes", "level": 1, "content": "Note: keep this text\nx"}
    ]


def test_markdown_heading_with_text_that_is_not_a_tag() -> None:
    sections = decode(b"# </a b>\n## a <b>c</b> #\n### x \\#\n", "markdown")["sections"]
    assert [s["heading"] for s in sections] == ["</a b>", "a c", "x #"]


def test_markdown_code_spans_and_comments_through_positions() -> None:
    body = b"# h\n`a` ``b ` c`` ``not closed `x` <!-- gone --> <!-- open\n"
    assert decode(body, "markdown")["sections"][0]["content"] == "a b ` c ``not closed x  <!-- open"


def test_decoder_built_by_the_registry_uses_the_runtime_limit(tmp_path: Path) -> None:
    from naftiko.engine import Runtime, load_capabilities
    from naftiko.engine.limits import Limits

    path = tmp_path / "cap.yaml"
    path.write_text(
        "naftiko: 1.0.0-alpha2\ncapability:\n  consumes:\n    - type: http\n      namespace: ns\n"
        "      baseUri: http://localhost:1\n      resources:\n        - name: r\n          path: /r\n"
        "          operations:\n            - {name: get, method: GET, outputRawFormat: yaml}\n"
    )
    runtime = Runtime(load_capabilities([path]), resolve_environment=False, limits=Limits(decoded_items=5))
    decoder = runtime.registry.get("ns.get").decoder
    assert decoder(b"[1, 2, 3, 4]") == [1, 2, 3, 4]
    with pytest.raises(FormatError, match="more than 5 values"):
        decoder(b"[1, 2, 3, 4, 5]")


def test_a_json_integer_past_the_conversion_limit_is_a_format_error() -> None:
    """Found by fuzzing: Python refuses to build an int of more than 4,300 digits (ValueError)."""
    with pytest.raises(FormatError, match="json: .*digits"):
        decode(b"[" + b"1" * 6000 + b"]", "json")


@pytest.mark.parametrize("scalar", [b"0x" + b"f" * 6000, b"0b" + b"1" * 20000, b"-0o" + b"7" * 6000])
def test_a_yaml_integer_too_large_to_write_out_is_a_format_error(scalar: bytes) -> None:
    """Found by fuzzing: a hex or binary int reads past 4,300 digits, then the JSON encoder refuses it."""
    with pytest.raises(FormatError, match="as int"):
        decode(b"a: " + scalar, "yaml")
    assert decode(b"a: 0x" + b"f" * 100, "yaml") == {"a": 16**100 - 1}


# --------------------------------------------------------------- found by the differential test (issue 13)


def test_markdown_list_items_and_quotes_hold_blocks() -> None:
    """A list item or quote holds blocks, as in CommonMark: a heading in an item is a line of its text, code and
    HTML blocks in it are dropped, a quote ends at a blank line, and a table in a quote is no section text."""
    body = (
        b"# h\n- # in item\n- text\n\n      code in an item\n\n  <!--\n  a comment\n\n"
        b"> - a\n> - b\n>\n> c\n\n> | a | b |\n> |---|---|\n> | 1 | 2 |\n"
    )
    assert decode(body, "markdown") == {
        "frontMatter": {},
        "tables": [],
        "sections": [{"heading": "h", "level": 1, "content": "in item\ntext\na\nb\nc"}],
    }


def test_markdown_inline_text_follows_commonmark() -> None:
    """Emphasis right after a hard break, brackets inside a link's text, the rule of three (`*a**b*` is one
    emphasis), entities only by a full known name, and link reference definitions over several lines."""
    body = b"# h\na\\\n_b_ [a [b] c](u) *a**b* &notit; &amp &copy; [r] and [s][]\n\n[r]:\n/u\n[s]: /v\n'title'\n"
    assert decode(body, "markdown")["sections"][0]["content"] == "a\nb a [b] c a**b &notit; &amp \u00a9 r and s"


def test_markdown_deep_containers_and_long_link_runs_stay_linear() -> None:
    deep = decode(b"- " * 100_000 + b"a\n" + b"\n" * 100_000 + b"b\n", "markdown")
    assert deep["sections"] == []  # (no heading) but read in one pass: nesting stops at MAX_NESTING
    links = decode(b"# h\n" + b"[a](" * 50_000, "markdown")
    assert links["sections"][0]["content"].startswith("[a]([a](")


def test_html_text_is_normalised_as_jsoup_does() -> None:
    """The no-break space is whitespace, zero-width spaces and soft hyphens are dropped, and jsoup's block tags
    (`ins` here) are set apart by a space."""
    body = "<table><tr><th>a&nbsp;b</th><th>&nbsp;</th></tr><tr><td>x\u200by\u00adz</td><td>1<ins>2</ins>3</td></table>"
    assert decode(body.encode(), "html") == {"tables": [[{"a b": "xyz", "": "1 2 3"}]]}


def test_html_builds_tables_as_html5_does() -> None:
    """Content in a table outside its cells goes before the table (foster parenting), so the rows after it stay
    the table's; a cell or row gets the `<tbody>`/`<tr>` HTML5 implies; a table right in a table ends that one."""
    body = (
        b"<table><span>before<tr><th>h</th><th>n</th></tr>stray<td>1<table>junk<tr><th>k</th></tr></table></td>"
        b"<div>d</div><td>2</table><table><tr><th>t</th></tr><table><tr><th>u</th></tr></table>"
        b"<tr><td>lost</td></tr></table>"
    )
    assert decode(body, "html") == {"tables": [[{"h": "1junk k", "n": "2"}], [], [], []]}
    assert decode(body, "html", schema="table > tr") == {"tables": []}  # rows sit in a tbody, as in a browser


def test_html_end_tags_as_html5_reads_them() -> None:
    """An inline end tag does not close a block opened inside it (`<b><p>3</b>4` keeps 4 in the paragraph),
    `</br>` is a line break, `</p>` alone makes an empty paragraph, outside quirks mode a table ends an open
    paragraph, and a heading ends the heading it starts in."""
    row = b"<tr><td><span><p>1</span>2</td><td><b><p>3</b>4</td><td>5</br>6</td><td>7</p>8</td></tr>"
    body = b"<table><tr><th>a</th><th>b</th><th>c</th><th>d</th></tr>" + row + b"</table>"
    assert decode(body, "html") == {"tables": [[{"a": "12", "b": "34", "c": "5 6", "d": "7 8"}]]}
    nested = b"<table><tr><th>h</th></tr><tr><td><p>a<table>b</table></td></tr></table>"
    assert decode(nested, "html") == {"tables": [[{"h": "ab"}]]}  # quirks mode: the table is in the paragraph
    assert decode(b"<!DOCTYPE html>" + nested, "html") == {"tables": [[{"h": "a b"}]]}
    headings = b"<table><tr><th>h</th></tr><tr><td><h3><h3></h3>a</h3>b</td></tr></table>"
    assert decode(headings, "html") == {"tables": [[{"h": "ab"}]]}  # a heading right in a heading ends it
