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
  strings, as they do in JSON.
- `csv` / `tsv` / `psv`: a list of row objects keyed by the header row, every value a string.
  Quoting per RFC 4180. Blank lines are skipped; a short row leaves its missing columns out (as
  Jackson does); a row with extra non-empty fields is an error.
- `html`: `{"tables": [[{header: cellText}, ...], ...]}` for every table with `<th>` headers
  (those of the first `<thead>` row, else of the first row). Body rows holding a `<th>`, or no
  `<td>`, are skipped; a missing cell is "", an extra one dropped; cell text is whitespace-
  normalised like jsoup's `text()`. `outputSchema` is a CSS selector (tag, `*`, `#id`, `.class`,
  `[attr]`/`[attr=v]`, descendant and `>` combinators, `,` groups): a matching table is used, a
  matching element is searched inside, each table once, in document order.
- `markdown`: `{"frontMatter": {...}, "tables": [...], "sections": [{heading, level, content}]}`.
  Front matter is a leading `---` block of YAML (only a mapping counts). Tables are top-level
  GFM pipe tables. A section is a top-level ATX or setext heading; its content is the plain
  text (markup, link targets and HTML removed) of the paragraphs, list items and quotes up to
  the next heading, one per line, without tables or code blocks. `outputSchema` keeps only the
  sections whose heading starts with it.
- `protobuf` / `avro`: recognised labels, not decoded by this runtime yet.

Bodies may be bytes (decoded with the response charset, UTF-8 by default, bad bytes replaced as
Java readers do; XML honours its own declaration) or already-decoded text. An empty body gives
None for json/yaml/xml and an empty result for the other formats.

Decoding is split into `decoder_for` (once, when a capability is loaded: label lookup, selector
compilation) and the returned function (per response). `decode` does both for one-off use.
"""

from __future__ import annotations

import codecs
import csv
import io
import json
import re
import unicodedata
from dataclasses import dataclass
from functools import partial
from html import unescape
from html.parser import HTMLParser
from typing import Any, Callable, Iterator
from xml.parsers import expat

from ruamel.yaml import YAML
from ruamel.yaml.constructor import ConstructorError, SafeConstructor
from ruamel.yaml.error import MarkedYAMLError, YAMLError
from ruamel.yaml.nodes import MappingNode

from engine.errors import NaftikoError

__all__ = [
    "KNOWN_FORMATS",
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

Decoder = Callable[..., Any]
"""`decoder(body, encoding=None) -> data`, as returned by `decoder_for`."""

_SEPARATORS = {"csv": ",", "tsv": "\t", "psv": "|"}


class FormatError(NaftikoError, ValueError):
    """A body cannot be decoded in its declared format, or the format itself is unusable.

    The message names the format and says what is wrong, without parser internals.
    """


# --------------------------------------------------------------------------- entry points


def check_format(fmt: str | None, *, schema: str | None = None) -> None:
    """Reject an unknown `outputRawFormat` label (and a bad HTML selector) at load time."""
    decoder_for(fmt, schema=schema)


def decode(body: bytes | str, fmt: str | None, *, schema: str | None = None,
           encoding: str | None = None) -> Any:
    """Decode one body; `encoding` is the response charset, UTF-8 when not given."""
    return decoder_for(fmt, schema=schema)(body, encoding)


def decoder_for(fmt: str | None, *, schema: str | None = None) -> Decoder:
    """The decoding function for a label and its `outputSchema`, with all set-up done now."""
    label = _resolve(fmt)
    if label == "xml":
        return _decode_xml
    if label in NOT_YET_SUPPORTED:
        return partial(_not_supported, label)
    convert = _text_converter(label, schema)

    def decode_text(body: bytes | str, encoding: str | None = None) -> Any:
        return convert(_as_text(body, encoding))

    return decode_text


def _resolve(fmt: str | None) -> str:
    if fmt is None:
        return "json"
    label = fmt.lower() if isinstance(fmt, str) else fmt
    if label not in KNOWN_FORMATS:
        raise FormatError(
            f"unsupported outputRawFormat {fmt!r}; expected one of: {', '.join(KNOWN_FORMATS)}"
        )
    return label


def _text_converter(label: str, schema: str | None) -> Callable[[str], Any]:
    if label == "json":
        return _decode_json
    if label == "yaml":
        return _decode_yaml
    if label in _SEPARATORS:
        return partial(_decode_delimited, label, _SEPARATORS[label])
    if label == "html":
        selector = _compile_selector(schema) if schema and schema.strip() else None
        return partial(_decode_html, selector)
    return partial(_decode_markdown, schema if schema and schema.strip() else None)


def _not_supported(label: str, body: bytes | str, encoding: str | None = None) -> Any:
    raise FormatError(f"outputRawFormat {label!r} is not supported by this runtime yet")


def _as_text(body: bytes | str, encoding: str | None) -> str:
    """Bytes → text in the response charset; bad bytes become U+FFFD, as Java readers do."""
    if isinstance(body, str):
        text = body
    else:
        charset = encoding or "utf-8"
        try:
            name = codecs.lookup(charset).name
        except LookupError:
            raise FormatError(f"unknown response charset {charset!r}") from None
        text = body.decode("utf-8-sig" if name == "utf-8" else name, errors="replace")
    return text[1:] if text.startswith("\ufeff") else text


# --------------------------------------------------------------------------- json / yaml


def _decode_json(text: str) -> Any:
    if not text.strip():
        return None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise FormatError(f"json: {exc.msg} at line {exc.lineno}, column {exc.colno}") from None
    except RecursionError:
        raise FormatError("json: the document is nested too deeply") from None


def _json_key(key: Any) -> str:
    if isinstance(key, str):
        return key
    if isinstance(key, bool):
        return "true" if key else "false"
    if key is None:
        return "null"
    return json.dumps(key) if isinstance(key, (list, dict)) else str(key)


def _yaml_text(constructor: SafeConstructor, node: Any) -> str:
    return constructor.construct_scalar(node)


def _yaml_binary(constructor: SafeConstructor, node: Any) -> str:
    return "".join(constructor.construct_scalar(node).split())


class _JsonConstructor(SafeConstructor):
    """Builds JSON types only: string keys, timestamps as written, binary as base64 text."""

    def construct_mapping(self, node: Any, deep: bool = False) -> Any:
        """String keys, a repeated key keeps its last value (merge keys `<<` come first)."""
        if not isinstance(node, MappingNode):
            raise ConstructorError(None, None, f"expected a mapping node, but found {node.id}",
                                   node.start_mark)
        self.flatten_mapping(node)
        return {_json_key(self.construct_object(key, deep=True)): self.construct_object(value, deep=deep)
                for key, value in node.value}


_JsonConstructor.add_constructor("tag:yaml.org,2002:timestamp", _yaml_text)
_JsonConstructor.add_constructor("tag:yaml.org,2002:binary", _yaml_binary)
_JsonConstructor.add_constructor("tag:yaml.org,2002:set", SafeConstructor.construct_yaml_map)
_JsonConstructor.add_constructor("tag:yaml.org,2002:omap", SafeConstructor.construct_yaml_seq)
_JsonConstructor.add_constructor("tag:yaml.org,2002:pairs", SafeConstructor.construct_yaml_seq)


def _load_yaml(text: str, what: str) -> Any:
    """The first YAML document (like Jackson's readTree); None when there is none."""
    yaml = YAML(typ="safe", pure=True)  # per call: a YAML instance is not thread-safe
    yaml.Constructor = _JsonConstructor
    try:
        return next(iter(yaml.load_all(text)), None)
    except MarkedYAMLError as exc:
        mark = exc.problem_mark
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise FormatError(f"{what}: {exc.problem or exc.context}{where}") from None
    except YAMLError as exc:
        raise FormatError(f"{what}: {exc}") from None
    except RecursionError:
        raise FormatError(f"{what}: the document is nested too deeply") from None


def _decode_yaml(text: str) -> Any:
    return _load_yaml(text, "yaml") if text.strip() else None


# --------------------------------------------------------------------------- csv / tsv / psv


def _decode_delimited(label: str, separator: str, text: str) -> list[dict[str, str]]:
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=separator)
    try:
        header = next((row for row in reader if row), None)
        if header is None:
            return []
        width = len(header)
        rows = []
        for row in reader:
            if not row:
                continue
            if len(row) > width and any(row[width:]):
                raise FormatError(f"{label}: line {reader.line_num} has {len(row)} fields "
                                  f"but the header has {width}")
            rows.append(dict(zip(header, row)))
        return rows
    except csv.Error as exc:
        raise FormatError(f"{label}: {exc} (line {reader.line_num})") from None


# --------------------------------------------------------------------------- xml


class _XmlElement:
    """One open element: its fields so far and text not yet placed."""

    __slots__ = ("fields", "text")

    def __init__(self) -> None:
        self.fields: dict[str, Any] = {}
        self.text: list[str] = []

    def flush_text(self) -> None:
        joined = "".join(self.text)
        if joined.strip():
            _put(self.fields, "", joined)
        self.text.clear()

    def value(self) -> Any:
        if not self.fields:
            text = "".join(self.text)
            return text if text.strip() else ""  # a pretty-printed empty element is empty
        self.flush_text()
        return self.fields


def _put(fields: dict[str, Any], key: str, value: Any) -> None:
    """Add a field; a repeated name turns into an array (XML values are never lists otherwise)."""
    if key not in fields:
        fields[key] = value
    elif isinstance(fields[key], list):
        fields[key].append(value)
    else:
        fields[key] = [fields[key], value]


def _local(name: str) -> str:
    return name.rpartition(" ")[2]


class _XmlTreeBuilder:
    """expat callbacks that build the Jackson-shaped tree with an explicit stack (no recursion)."""

    def __init__(self) -> None:
        self.stack: list[_XmlElement] = []
        self.result: Any = None

    def start(self, name: str, attributes: dict[str, str]) -> None:
        if self.stack:
            self.stack[-1].flush_text()  # text before a child is mixed content
        element = _XmlElement()
        for key, value in attributes.items():
            _put(element.fields, _local(key), value)
        self.stack.append(element)

    def end(self, name: str) -> None:
        value = self.stack.pop().value()
        if self.stack:
            _put(self.stack[-1].fields, _local(name), value)
        else:
            self.result = {} if value == "" else value

    def data(self, text: str) -> None:
        if self.stack:
            self.stack[-1].text.append(text)


_EXPAT_CHARSETS = {"utf-8": "UTF-8", "utf-16": "UTF-16", "iso8859-1": "ISO-8859-1", "ascii": "US-ASCII"}


def _refuse_entities(*_: Any) -> None:
    raise FormatError("xml: entity declarations are not allowed")


def _decode_xml(body: bytes | str, encoding: str | None = None) -> Any:
    if not body.strip():
        return None
    if isinstance(body, bytes) and encoding:
        try:
            encoding = codecs.lookup(encoding).name  # expat only knows a few names itself
        except LookupError:
            raise FormatError(f"unknown response charset {encoding!r}") from None
        if encoding not in ("utf-8", "utf-16", "iso8859-1", "ascii"):
            body = body.decode(encoding, errors="replace")
    builder = _XmlTreeBuilder()
    parser = expat.ParserCreate(_EXPAT_CHARSETS.get(encoding or "") if isinstance(body, bytes) else None,
                                namespace_separator=" ")
    parser.buffer_text = True
    parser.StartElementHandler = builder.start
    parser.EndElementHandler = builder.end
    parser.CharacterDataHandler = builder.data
    parser.EntityDeclHandler = _refuse_entities
    try:
        parser.Parse(body, True)
    except expat.ExpatError as exc:
        raise FormatError(f"xml: {expat.ErrorString(exc.code)} at line {exc.lineno}, "
                          f"column {exc.offset + 1}") from None
    return builder.result


# --------------------------------------------------------------------------- html

_VOID = frozenset("area base br col embed hr img input link meta param source track wbr "
                  "basefont bgsound frame keygen".split())
_NO_TEXT = frozenset(("script", "style", "template", "head", "title"))
_BLOCK = frozenset("address article aside blockquote body caption center dd details dialog div dl "
                   "dt fieldset figcaption figure footer form h1 h2 h3 h4 h5 h6 header hr li main "
                   "nav ol p pre section table tbody td tfoot th thead tr ul".split())
_SECTIONS = ("thead", "tbody", "tfoot")
_SPACES = re.compile(r"[ \t\n\r\f]+")


class _Node:
    """A parsed HTML element: tag, attributes, parent and children (elements or text)."""

    __slots__ = ("tag", "attrs", "parent", "children")

    def __init__(self, tag: str, attrs: dict[str, str], parent: _Node | None) -> None:
        self.tag = tag
        self.attrs = attrs
        self.parent = parent
        self.children: list[_Node | str] = []

    def elements(self) -> Iterator[_Node]:
        """Descendant elements in document order."""
        pending = [c for c in reversed(self.children) if isinstance(c, _Node)]
        while pending:
            node = pending.pop()
            yield node
            pending.extend(c for c in reversed(node.children) if isinstance(c, _Node))

    def text(self) -> str:
        """Whitespace-normalised text, blocks and `<br>` separated by a space (like jsoup)."""
        pieces: list[str] = []
        pending: list[_Node | str] = list(reversed(self.children))
        while pending:
            item = pending.pop()
            if isinstance(item, str):
                pieces.append(item)
            elif item.tag not in _NO_TEXT:
                if item.tag in _BLOCK or item.tag == "br":
                    pieces.append(" ")
                    pending.append(" ")
                pending.extend(reversed(item.children))
        return _SPACES.sub(" ", "".join(pieces)).strip()

    def cells(self, tag: str) -> list[_Node]:
        return [c for c in self.children if isinstance(c, _Node) and c.tag == tag]


class _HtmlTreeBuilder(HTMLParser):
    """A forgiving tree builder: void elements, implied cell/row/section ends, table scoping."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.root = _Node("#document", {}, None)
        self.stack = [self.root]

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("td", "th"):
            self._close(("td", "th"), ("tr", "table"))
        elif tag == "tr":
            self._close(("tr",), ("table",) + _SECTIONS)
        elif tag in _SECTIONS:
            self._close(_SECTIONS, ("table",))
        elif tag == "li":
            self._close(("li",), ("ul", "ol", "table"))
        parent = self.stack[-1]
        node = _Node(tag, {k: v or "" for k, v in attrs}, parent)
        parent.children.append(node)
        if tag not in _VOID:
            self.stack.append(node)

    def handle_endtag(self, tag: str) -> None:
        self._close((tag,), () if tag == "table" else ("table",))

    def handle_data(self, data: str) -> None:
        self.stack[-1].children.append(data)

    def _close(self, targets: tuple[str, ...], boundaries: tuple[str, ...]) -> None:
        """Pop through the nearest open element in `targets`, unless a boundary comes first."""
        for index in range(len(self.stack) - 1, 0, -1):
            tag = self.stack[index].tag
            if tag in targets:
                del self.stack[index:]
                return
            if tag in boundaries:
                return


def _parse_html(text: str) -> _Node:
    builder = _HtmlTreeBuilder()
    try:
        builder.feed(text)
        builder.close()
    except Exception as exc:  # html.parser has a few internal failure modes on odd markup
        raise FormatError(f"html: cannot parse the document ({type(exc).__name__})") from None
    root = builder.root
    html = _ensure_child(root, "html", lambda node: True)
    _ensure_child(html, "body", lambda node: not (isinstance(node, _Node) and node.tag == "head"))
    return root


def _ensure_child(parent: _Node, tag: str, adopt: Callable[[_Node | str], bool]) -> _Node:
    """The parent's `tag` child, created around the adoptable children when missing.

    Browsers (and jsoup) always build `html > body`; selectors such as `body > table` rely on it.
    """
    for child in parent.children:
        if isinstance(child, _Node) and child.tag == tag:
            return child
    node = _Node(tag, {}, parent)
    node.children = [child for child in parent.children if adopt(child)]
    parent.children = [child for child in parent.children if not adopt(child)] + [node]
    for child in node.children:
        if isinstance(child, _Node):
            child.parent = node
    return node


def _decode_html(selector: _Selector | None, text: str) -> dict[str, Any]:
    root = _parse_html(text)
    tables = []
    for table in _select_tables(root, selector):
        headers = _html_headers(table)
        if any(headers):
            tables.append(_rows_to_objects(headers, _html_rows(table)))
    return {"tables": tables}


def _select_tables(root: _Node, selector: _Selector | None) -> list[_Node]:
    """Tables matched by the selector, or inside a matched element; every table without one."""
    if selector is None:
        return [node for node in root.elements() if node.tag == "table"]
    return selector.tables(root)


def _table_rows(table: _Node) -> list[_Node]:
    """The table's own rows (not those of nested tables), in document order."""
    rows = []
    for child in table.children:
        if isinstance(child, _Node):
            if child.tag == "tr":
                rows.append(child)
            elif child.tag in _SECTIONS:
                rows.extend(child.cells("tr"))
    return rows


def _html_headers(table: _Node) -> list[str]:
    """`<th>` texts of the first `<thead>` row, else of every first row of its group."""
    rows = _table_rows(table)
    thead_rows = [row for row in rows if row.parent is not None and row.parent.tag == "thead"]
    if thead_rows and thead_rows[0].cells("th"):
        header_cells = thead_rows[0].cells("th")
    else:
        header_cells = []
        groups: set[int] = set()
        for row in rows:
            if id(row.parent) not in groups:
                groups.add(id(row.parent))
                header_cells.extend(row.cells("th"))
    return [cell.text() for cell in header_cells]


def _html_rows(table: _Node) -> list[list[str]]:
    """Body rows (all rows when there is no body) without `<th>` and with at least one `<td>`."""
    rows = _table_rows(table)
    body = [row for row in rows if row.parent is table or row.parent.tag == "tbody"]
    values = []
    for row in body or rows:
        cells = row.cells("td")
        if cells and not row.cells("th"):
            values.append([cell.text() for cell in cells])
    return values


def _rows_to_objects(headers: list[str], rows: list[list[str]]) -> list[dict[str, str]]:
    """One object per row keyed by header; a missing cell is "", an extra one is dropped."""
    return [{header: row[i] if i < len(row) else "" for i, header in enumerate(headers)}
            for row in rows]


# --------------------------------------------------------------------------- css selectors

_SELECTOR_TOKEN = re.compile(r"""
    \s*(?P<combinator>[>,])\s*
  | (?P<space>\s+)
  | (?P<tag>\*|[A-Za-z][A-Za-z0-9-]*)
  | \#(?P<id>(?:[\w-]|\\.)+)
  | \.(?P<cls>(?:[\w-]|\\.)+)
  | \[\s*(?P<attr>[\w:-]+)\s*(?:(?P<op>[~^$*]?=)\s*
        (?:"(?P<dq>[^"]*)"|'(?P<sq>[^']*)'|(?P<uq>[^\s\]"']+))\s*)?\]
""", re.VERBOSE)

_SELECTOR_HELP = "tag, *, #id, .class, [attr], [attr=value] (also ~= ^= $= *=), ' ' and '>' combinators, ','"


@dataclass(frozen=True, slots=True)
class _Compound:
    """One compound selector such as `table.products#main[data-x]`."""

    tag: str | None = None
    id: str | None = None
    classes: tuple[str, ...] = ()
    attrs: tuple[tuple[str, str, str], ...] = ()

    def matches(self, node: _Node) -> bool:
        if self.tag is not None and node.tag != self.tag:
            return False
        if self.id is not None and node.attrs.get("id") != self.id:
            return False
        if self.classes:
            have = node.attrs.get("class", "").lower().split()
            if not all(c in have for c in self.classes):
                return False
        return all(_attr_matches(node.attrs.get(name), op, value) for name, op, value in self.attrs)


def _attr_matches(actual: str | None, op: str, wanted: str) -> bool:
    if actual is None:
        return False
    actual = actual.lower()
    if op == "":
        return True
    if op == "=":
        return actual == wanted
    if op == "~=":
        return wanted in actual.split()
    if op == "^=":
        return bool(wanted) and actual.startswith(wanted)
    if op == "$=":
        return bool(wanted) and actual.endswith(wanted)
    return bool(wanted) and wanted in actual


@dataclass(frozen=True, slots=True)
class _Complex:
    """Compounds joined by combinators; `parts[i]` is joined to `parts[i-1]` by `links[i]`."""

    parts: tuple[_Compound, ...]
    links: tuple[str, ...]

    def step(self, node: _Node, parent: int, ancestors: int) -> int:
        """Bitmask of the prefixes `parts[:i + 1]` that `node` completes.

        `parent` is the parent's mask and `ancestors` the union of all ancestors' masks, so a
        whole document is matched in one top-down pass instead of walking ancestors per element.
        """
        mask = 0
        for index, part in enumerate(self.parts):
            if part.matches(node) and (index == 0 or (
                    (parent if self.links[index] == ">" else ancestors) >> (index - 1)) & 1):
                mask |= 1 << index
        return mask


@dataclass(frozen=True, slots=True)
class _Selector:
    """A selector group: an element matches when any member does."""

    members: tuple[_Complex, ...]

    def tables(self, root: _Node) -> list[_Node]:
        """Tables that match, or sit inside an element that matches, in document order."""
        members, found = self.members, []
        nothing = (0,) * len(members)
        pending = [(child, nothing, nothing, False) for child in reversed(root.children)
                   if isinstance(child, _Node)]
        while pending:
            node, parent, ancestors, inside = pending.pop()
            masks = tuple(m.step(node, p, a) for m, p, a in zip(members, parent, ancestors))
            inside = inside or any(mask >> (len(m.parts) - 1) & 1 for m, mask in zip(members, masks))
            if inside and node.tag == "table":
                found.append(node)
            below = tuple(a | mask for a, mask in zip(ancestors, masks))
            pending.extend((child, masks, below, inside) for child in reversed(node.children)
                           if isinstance(child, _Node))
        return found


def _compile_selector(source: str) -> _Selector:
    """Parse the supported CSS subset once; anything else is a FormatError naming the selector."""

    def bad(reason: str) -> FormatError:
        return FormatError(f"html: unsupported outputSchema selector {source!r} ({reason}); "
                           f"supported: {_SELECTOR_HELP}")

    members: list[_Complex] = []
    parts: list[_Compound] = []
    links: list[str] = [" "]
    current: dict[str, Any] | None = None
    pending_link = " "

    def close_compound() -> None:
        nonlocal current
        if current is not None:
            parts.append(_Compound(current.get("tag"), current.get("id"),
                                   tuple(current.get("classes", ())), tuple(current.get("attrs", ()))))
            current = None

    text = source.strip()
    position = 0
    while position < len(text):
        match = _SELECTOR_TOKEN.match(text, position)
        if match is None:
            raise bad(f"cannot read {text[position:position + 12]!r}")
        position = match.end()
        kind = match.lastgroup if match.lastgroup in ("combinator", "space") else None
        if kind is not None:
            if current is None:
                raise bad("a combinator needs a selector on each side")
            close_compound()
            symbol = match.group("combinator") or " "
            if symbol == ",":
                members.append(_Complex(tuple(parts), tuple(links)))
                parts, links = [], [" "]
            else:
                pending_link = symbol
            continue
        if current is None:
            if parts:
                links.append(pending_link)
            current, pending_link = {}, " "
        if match.group("tag") is not None:
            if current:
                raise bad("a tag name must come first in a compound selector")
            current["tag"] = None if match.group("tag") == "*" else match.group("tag").lower()
        elif match.group("id") is not None:
            current["id"] = _unescape_ident(match.group("id"))
        elif match.group("cls") is not None:
            current.setdefault("classes", []).append(_unescape_ident(match.group("cls")).lower())
        else:
            value = next((v for v in match.group("dq", "sq", "uq") if v is not None), "")
            current.setdefault("attrs", []).append(
                (match.group("attr").lower(), match.group("op") or "", value.lower()))
    if current is None:
        raise bad("it is empty or ends with a combinator")
    close_compound()
    members.append(_Complex(tuple(parts), tuple(links)))
    return _Selector(tuple(members))


def _unescape_ident(ident: str) -> str:
    return re.sub(r"\\(.)", r"\1", ident)


# --------------------------------------------------------------------------- markdown

_ATX = re.compile(r"^ {0,3}(#{1,6})(?:[ \t]+(.*?))?[ \t]*$")
_ATX_CLOSE = re.compile(r"(?:^|[ \t]+)#+$")
_SETEXT = re.compile(r"^ {0,3}(=+|-+)[ \t]*$")
_THEMATIC = re.compile(r"^ {0,3}([-*_])(?:[ \t]*\1){2,}[ \t]*$")
_FENCE = re.compile(r"^ {0,3}(`{3,}(?=[^`]*$)|~{3,})")
_LIST_ITEM = re.compile(r"^ {0,3}(?:[-+*]|\d{1,9}[.)])(?:[ \t]+|$)")
_QUOTE = re.compile(r"^ {0,3}> ?")
_HTML_BLOCK = re.compile(
    r"^ {0,3}(?:<!--|<\?|<![A-Za-z]|<!\[CDATA\[|</?[A-Za-z][A-Za-z0-9-]*(?:[\s/>]|$))")
_LINK_DEFINITION = re.compile(
    r"^ {0,3}\[((?:[^\]\\]|\\.)+)\]:[ \t]*\S+(?:[ \t]+(?:\"[^\"]*\"|'[^']*'|\([^)]*\)))?[ \t]*$")
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


def _decode_markdown(prefix: str | None, text: str) -> dict[str, Any]:
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    front_matter, body = _split_front_matter(text)
    blocks, references = _BlockScanner(body.split("\n")).scan()
    plain = partial(_plain_text, references=references)
    tables = []
    for block in blocks:
        if isinstance(block, _MdTable):
            headers = [plain(cell) for cell in block.headers]
            if any(headers):
                tables.append(_rows_to_objects(headers, [[plain(c) for c in row] for row in block.rows]))
    return {"frontMatter": front_matter, "tables": tables,
            "sections": _markdown_sections(blocks, plain, prefix)}


def _split_front_matter(text: str) -> tuple[dict[str, Any], str]:
    """A leading `---` … `---` block parsed as YAML; only a mapping counts as front matter."""
    if not text.startswith("---\n"):
        return {}, text
    end = text.find("\n---\n", 3)
    if end == -1:
        if not text.endswith("\n---"):
            return {}, text
        end = len(text) - 4
    block, body = text[4:end], text[end + 5:]
    data = _load_yaml(block, "markdown front matter") if block.strip() else None
    return (data if isinstance(data, dict) else {}), body


def _markdown_sections(blocks: list[Any], plain: Callable[[str], str],
                       prefix: str | None) -> list[dict[str, Any]]:
    """Each top-level heading with the text of the blocks up to the next heading (tables left out)."""
    sections: list[dict[str, Any]] = []
    content: list[str] = []
    for block in blocks:
        if isinstance(block, _MdHeading):
            sections.append({"heading": plain(block.raw), "level": block.level, "content": ""})
            content = []
        elif isinstance(block, _MdText) and sections:
            text = plain(block.raw)
            if text:
                content.append(text)
                sections[-1]["content"] = "\n".join(content)
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
        indent = len(line[:len(line) - len(line.lstrip(" \t"))].expandtabs(4))
        blank_before, self.after_blank = self.after_blank, False
        if self.in_list and indent == 0 and blank_before:
            self.in_list = False
        if self.in_list and indent > 0:
            self._list_continuation(line.lstrip(), blank_before)
        elif indent >= 4 and not self.paragraph:
            pass  # indented code
        elif not any(rule(line) for rule in (self._fence, self._heading, self._setext, self._thematic,
                                               self._table, self._quote, self._list_item,
                                               self._html, self._definition)):
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
        self.paragraph.append(line[item.end():] if item else line)

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
            self.blocks.append(_MdHeading(len(heading.group(1)), _ATX_CLOSE.sub("", heading.group(2) or "")))
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
        inner = line[quote.end():]
        while (nested := _QUOTE.match(inner)) is not None:
            inner = inner[nested.end():]
        if heading := _ATX.match(inner):  # a quoted heading is text, not a section
            self._flush()
            self.paragraph.append(_ATX_CLOSE.sub("", heading.group(2) or ""))
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
            if line[item.end():].strip():
                self.paragraph.append(line[item.end():])
        return item is not None

    def _html(self, line: str) -> bool:
        if self.paragraph or not _HTML_BLOCK.match(line):
            return False
        self.index = _skip_html_block(self.lines, self.index - 1)
        return True

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
    """Index after an HTML block: a comment runs to `-->`, anything else to a blank line."""
    if lines[index].lstrip().startswith("<!--"):
        while index < len(lines) and "-->" not in lines[index]:
            index += 1
        return index + 1
    while index < len(lines) and lines[index].strip():
        index += 1
    return index


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
        table.rows.append(_split_row(lines[index])[:len(table.headers)])
        index += 1
    return index


# Inline markdown → plain text, keeping what commonmark's Text and Code nodes hold.

_INLINE_TOKEN = re.compile(r"""
    (?P<escape>\\[!-/:-@\[-`{-~])
  | (?P<hardbreak>(?:\\|[ ]{2,})\n)
  | (?<!`)(?P<ticks>`+)(?!`)(?P<code>.*?[^`])(?P=ticks)(?!`)
  | (?P<backticks>`+)
  | <(?P<autolink>[A-Za-z][A-Za-z0-9+.-]{1,31}:[^<>\s]*
        |[A-Za-z0-9.!\#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?)>
  | (?P<html></?[A-Za-z][A-Za-z0-9-]*
        (?:\s+[A-Za-z_:][\w.:-]*(?:\s*=\s*(?:[^\s"'=<>`]+|'[^']*'|"[^"]*"))?)*\s*/?>
        |<!--.*?-->)
  | (?P<entity>&(?:\#[0-9]{1,7}|\#[xX][0-9a-fA-F]{1,6}|[A-Za-z][A-Za-z0-9]{1,31});)
""", re.VERBOSE | re.DOTALL)
_PLACEHOLDER = re.compile("\x00(\\d+)\x00")
_LINK_TAIL = r"\((?:[^()\s]|\([^()\s]*\))*(?:\s+(?:\"[^\"]*\"|'[^']*'|\([^()]*\)))?\s*\)"
_IMAGE = re.compile(r"!\[([^\[\]]*)\]" + _LINK_TAIL)
_LINK = re.compile(r"\[([^\[\]]*)\]" + _LINK_TAIL)
_REFERENCE_LINK = re.compile(r"!?\[([^\[\]]+)\](?:\[([^\[\]]*)\])?")
_DELIMITER_RUN = re.compile(r"\*+|_+")
_SOFT_BREAK = re.compile(r"[ \t]*\n[ \t]*")


def _reference_label(label: str) -> str:
    return " ".join(label.split()).casefold()


def _plain_text(raw: str, references: set[str]) -> str:
    """The literal text of inline markdown: markup, link targets and raw HTML removed."""
    kept: list[str] = []

    def protect(match: re.Match[str]) -> str:
        kind = match.lastgroup
        if kind == "escape":
            value = match.group()[1]
        elif kind == "hardbreak":
            value = "\n"
        elif kind == "code":
            value = _code_span(match.group("code"))
        elif kind == "autolink":
            value = match.group("autolink")
        elif kind == "html":
            value = ""
        elif kind == "entity":
            value = unescape(match.group())
        else:
            value = match.group()
        kept.append(value)
        return f"\x00{len(kept) - 1}\x00"

    text = _INLINE_TOKEN.sub(protect, raw.replace("\x00", "\ufffd"))
    text = _IMAGE.sub(r"\1", text)
    text = _LINK.sub(r"\1", text)
    text = _REFERENCE_LINK.sub(partial(_resolve_reference, references), text)
    text = _strip_emphasis(text)
    text = _SOFT_BREAK.sub(" ", text.strip())
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
            pieces.append(text[position:run.start])
            pieces.append(text[run.start + run.closed:run.end - run.opened])
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
