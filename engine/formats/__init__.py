"""Turn an upstream response body, written in its declared `outputRawFormat`, into JSON-like data.

Output mappings are JSONPath, so every format becomes dicts, lists, strings, numbers, booleans
and None. The shapes follow the reference engine (`Converter.java`):

- `json` (also when no format is declared): the parsed document.
- `xml`: the root element's content (the root itself is dropped), as Jackson's `XmlMapper.readTree`
  builds it: attributes and child elements both become fields (named by local name, namespaces
  dropped), a name seen more than once becomes an array, text stays a string, an empty element is
  `""`, the text of an element that also has attributes or children sits under the key `""`.
  An empty root gives `{}`. Entity declarations are refused (they only serve entity-expansion
  attacks in API payloads).
- `yaml`: the first document. Timestamps and `!!binary` stay strings and mapping keys become
  strings, as they do in JSON. A recursive structure (an alias inside its own anchor) is refused.
- `csv` / `tsv` / `psv`: a list of row objects keyed by the header row, every value a string.
  Quoting per RFC 4180. Blank lines are skipped; a short row leaves its missing columns out (as
  Jackson does); a row with extra non-empty fields is an error.
- `html`: `{"tables": [[{header: cellText}, ...], ...]}` for every table with `<th>` headers
  (those of the first `<thead>` row, else of the first row). The tree is built as HTML5 builds it
  (implied `<tbody>` and `<tr>`, misplaced content fostered out of a table), so `table > tr`
  matches nothing, as in browsers. Body rows holding a `<th>`, or no `<td>`, are skipped; a
  missing cell is "", an extra one dropped; cell text is whitespace-normalised like jsoup's
  `text()`. `outputSchema` is a CSS selector (tag, `*`, `#id`, `.class`, `[attr]`/`[attr=v]`,
  descendant and `>` combinators, `,` groups): a matching table is used, a matching element is
  searched inside, each table once, in document order. Elements nest at most 512 deep.
- `markdown`: `{"frontMatter": {...}, "tables": [...], "sections": [{heading, level, content}]}`.
  Front matter is a leading `---` block of YAML (only a mapping counts). The body is read as
  CommonMark with GFM tables, as commonmark-java reads it. Tables are the top-level ones; a line
  that starts no other block goes on as one more row (commonmark-java 0.24). A section is a
  top-level ATX or setext heading; its content is the plain text (markup, link targets and HTML
  removed) of the paragraphs and headings up to the next top-level heading, in lists and quotes
  too, one per line, without tables, code or HTML blocks. `outputSchema` keeps only the sections
  whose heading starts with it.
- `protobuf` / `avro`: recognised labels, not decoded by this runtime yet.

Bodies may be bytes (decoded with the response charset, UTF-8 by default, bad bytes replaced as
Java readers do; XML honours its own declaration) or already-decoded text. An empty body gives
None for json/yaml/xml and an empty result for the other formats.

Decoding is split into `decoder_for` (once, when a capability is loaded: label lookup, selector
compilation, the expansion limit) and the returned function (per response). `decode` does both
for one-off use.

Every decoder is linear in the body and bounded: the body by `Limits.upstream_body` (the upstream
client stops a larger one before it gets here), the values it decodes to by `Limits.decoded_items`
(YAML aliases, wide CSV rows and table cells all count), nesting by `common.MAX_DEPTH`. Past a
limit the decoder raises a `FormatError` whose `limit` names it. `OFF_LOOP_BYTES` is the size above
which `engine.answers.read_json` decodes in a worker thread, so a large body never holds up the
event loop. One module per format: `xml`, `yaml`, `delimited`, `html` (with `css` selectors),
`markdown`.
"""

from __future__ import annotations

import json
from functools import partial
from typing import Any
from collections.abc import Callable

from .common import DEFAULT_ITEMS, MAX_DEPTH, Budget, FormatError, FormatNotSupported, as_text
from .delimited import SEPARATORS, decode_delimited

# xml, yaml (PyYAML), html (and css) and markdown are imported by `decoder_for`, when a capability names
# them: most files name none, and importing them all took about a tenth of the seed's start-up.

__all__ = [
    "KNOWN_FORMATS",
    "MAX_DEPTH",
    "OFF_LOOP_BYTES",
    "SUPPORTED_FORMATS",
    "Decoder",
    "FormatError",
    "check_format",
    "decode",
    "decoder_for",
]

SUPPORTED_FORMATS: tuple[str, ...] = ("json", "xml", "yaml", "csv", "tsv", "psv", "html", "markdown")
"""Labels this runtime decodes."""

NOT_YET_SUPPORTED: tuple[str, ...] = ("protobuf", "avro")
"""Labels the spec defines but this runtime cannot decode: they load, and fail per call."""

KNOWN_FORMATS: tuple[str, ...] = SUPPORTED_FORMATS + NOT_YET_SUPPORTED
"""Every `outputRawFormat` label the spec defines (matched case-insensitively)."""

OFF_LOOP_BYTES = 4 * 1024
"""Bodies larger than this are decoded in a worker thread. A thread hop (`asyncio.to_thread`)
costs about 0.1 ms here; the decoders read 1 (HTML) to 12 (CSV) KiB per ms, so a body this small
holds the loop at most about 4 ms, less than what handing it over and back would save; a larger
one is decoded while the loop goes on serving (the thread yields the GIL every 5 ms)."""

Decoder = Callable[..., Any]
"""`decoder(body, encoding=None) -> data`, as returned by `decoder_for`."""


# --------------------------------------------------------------------------- entry points


def check_format(fmt: str | None, *, schema: str | None = None) -> None:
    """Reject an unknown `outputRawFormat` label (and a bad HTML selector) at load time."""
    decoder_for(fmt, schema=schema)


def decode(
    body: bytes | str,
    fmt: str | None,
    *,
    schema: str | None = None,
    encoding: str | None = None,
    max_items: int = DEFAULT_ITEMS,
) -> Any:
    """Decode one body; `encoding` is the response charset, UTF-8 when not given."""
    return decoder_for(fmt, schema=schema, max_items=max_items)(body, encoding)


def decoder_for(fmt: str | None, *, schema: str | None = None, max_items: int = DEFAULT_ITEMS) -> Decoder:
    """The decoding function for a label and its `outputSchema`, with all set-up done now.

    `max_items` is the expansion limit (`Limits.decoded_items`): the most values one body may
    decode to.
    """
    label = _resolve(fmt)
    if label == "xml":
        from .xml import decode_xml

        return partial(_decode_bytes, label, max_items, decode_xml)
    if label in NOT_YET_SUPPORTED:
        return partial(_not_supported, label)
    convert = _text_converter(label, schema)
    return partial(_decode_text, label, max_items, convert)


def _decode_bytes(
    label: str, max_items: int, convert: Callable[..., Any], body: bytes | str, encoding: str | None = None
) -> Any:
    return convert(Budget(label, max_items), body, encoding)


def _decode_text(
    label: str, max_items: int, convert: Callable[[Budget, str], Any], body: bytes | str, encoding: str | None = None
) -> Any:
    return convert(Budget(label, max_items), as_text(body, encoding))


def _resolve(fmt: str | None) -> str:
    if fmt is None:
        return "json"
    label = fmt.lower() if isinstance(fmt, str) else fmt
    if label not in KNOWN_FORMATS:
        raise FormatError(f"unsupported outputRawFormat {fmt!r}; expected one of: {', '.join(KNOWN_FORMATS)}")
    return label


def _text_converter(label: str, schema: str | None) -> Callable[[Budget, str], Any]:
    if label == "json":
        return _decode_json
    if label == "yaml":
        return _decode_yaml
    if label in SEPARATORS:
        return partial(decode_delimited, label)
    if label == "html":
        from .css import compile_selector
        from .html import decode_html

        selector = compile_selector(schema) if schema and schema.strip() else None
        return partial(decode_html, selector)
    from .markdown import decode_markdown

    return partial(decode_markdown, schema if schema and schema.strip() else None)


def _not_supported(label: str, body: bytes | str, encoding: str | None = None) -> Any:
    raise FormatNotSupported(f"outputRawFormat {label!r} is not supported by this runtime yet")


def _decode_json(budget: Budget, text: str) -> Any:
    if not text.strip():
        return None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise FormatError(f"json: {exc.msg} at line {exc.lineno}, column {exc.colno}") from None
    except ValueError as exc:  # an integer past Python's 4,300-digit conversion limit
        raise FormatError(f"json: {exc}") from None
    except RecursionError:
        raise FormatError("json: the document is nested too deeply") from None


def _decode_yaml(budget: Budget, text: str) -> Any:
    from .yaml import load_yaml  # imported once `decoder_for` chose yaml: a dictionary lookup here

    return load_yaml(text, "yaml", budget) if text.strip() else None
