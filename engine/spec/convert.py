"""One capability file rewritten into the other dialect: Naftiko 1.0.0-alpha2 ⇄ Ikanos 1.0.0-beta5.

The document is read and written with ruamel.yaml's round-trip mode, so comments, key order and
quoting survive where ruamel keeps them (a comment on a list entry that becomes a keyed map entry
moves with its mapping). What changes: the root key and version, the keys Ikanos renamed
(`fields.IKANOS_SPELLINGS`, and `location` ⇄ `from` in imports), and lists of named entries ⇄ maps
keyed by the name. Names inside data (`with`, `properties`, bind `keys`, bodies, values) are never
renamed. A list whose entries do not all carry distinct names stays a list, which both dialects read.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq

from ..errors import CapabilityError, Location
from .fields import IKANOS_SPELLINGS
from .reading import read_document

VERSIONS = {"naftiko": "1.0.0-alpha2", "ikanos": "1.0.0-beta5"}
KEYED = {"resources", "operations", "tools", "prompts", "arguments", "skills", "inputParameters", "steps", "flows"}
"""Lists of named entries that Ikanos writes as maps keyed by the name (also `functions`, spelled `flows`)."""
NAFTIKO_SPELLINGS = {ikanos: naftiko for naftiko, ikanos in IKANOS_SPELLINGS.items()}
VERBATIM = {"with", "keys", "body", "data", "value", "const", "metadata", "headers", "semantics"}
"""Keys whose values are data, copied as written."""


def convert_text(text: str, to: str, source: str = "<text>") -> str:
    """`text`, a capability file in either dialect, written in the dialect `to` (`ikanos` or `naftiko`)."""
    if to not in VERSIONS:
        raise ValueError(f"unknown dialect {to!r}; choose ikanos or naftiko")
    yaml = YAML()
    yaml.preserve_quotes = True
    yaml.width = 4096
    yaml.indent(mapping=2, sequence=4, offset=2)
    data = yaml.load(text)
    if not isinstance(data, CommentedMap) or not ({"naftiko", "ikanos"} & set(data)):
        raise CapabilityError.at(
            Location(source, 1, 1), "not a capability file: it starts with neither naftiko: nor ikanos:"
        )
    origin = "ikanos" if "ikanos" in data and "naftiko" not in data else "naftiko"
    if origin != to:
        data = _root(data, origin, to)
    out = io.StringIO()
    yaml.dump(data, out)
    return out.getvalue()


def convert_file(path: str | Path, to: str) -> str:
    """The file at `path` in the dialect `to`; a file that cannot be read is a positioned CapabilityError."""
    read_document(path)  # the loader's own checks and messages (missing file, bad YAML, size bounds)
    return convert_text(Path(path).read_text(encoding="utf-8"), to, str(path))


def _root(data: CommentedMap, origin: str, to: str) -> CommentedMap:
    renamed = _rename(data, origin, to, to == "ikanos")
    renamed[to] = VERSIONS[to]
    return renamed


def _spelling(key: str, to_ikanos: bool, in_import: bool) -> str:
    if in_import:
        return {"location": "from"}.get(key, key) if to_ikanos else {"from": "location"}.get(key, key)
    if to_ikanos:
        return IKANOS_SPELLINGS.get(key, key)
    return NAFTIKO_SPELLINGS.get(key, key)


def _rename(node: CommentedMap, origin: str, to: str, to_ikanos: bool) -> CommentedMap:
    """A spec object with its keys in the other dialect's spelling, each value converted in turn."""
    in_import = "import" in node and ("location" in node or "from" in node)
    out = CommentedMap()
    for key, value in node.items():
        name = to if key == origin else _spelling(str(key), to_ikanos, in_import)
        out[name] = _value(str(key), value, origin, to, to_ikanos)
        _carry_comment(node, out, key, name)
    if node.ca.comment:
        out.ca.comment = node.ca.comment
    return out


def _carry_comment(node: CommentedMap, out: CommentedMap, key: Any, name: str) -> None:
    """The comment ruamel holds on `key` of `node`, kept on its new spelling `name` in `out`."""
    if key in node.ca.items:
        out.ca.items[name] = node.ca.items[key]


def _value(key: str, value: Any, origin: str, to: str, to_ikanos: bool) -> Any:
    if key in VERBATIM:
        return value
    if key == "properties" and isinstance(value, CommentedMap):
        converted = CommentedMap()
        for name, prop in value.items():
            converted[name] = _rename(prop, origin, to, to_ikanos) if isinstance(prop, CommentedMap) else prop
            _carry_comment(value, converted, name, name)
        return converted
    if to_ikanos and key in KEYED | {"functions"} and isinstance(value, CommentedSeq):
        return _keyed(value, origin, to)
    if not to_ikanos and key in KEYED | {"outputParameters"} and isinstance(value, CommentedMap):
        return _listed(value, origin, to)  # Ikanos may key named outputs too; alpha2 lists them
    if isinstance(value, CommentedMap):
        return _rename(value, origin, to, to_ikanos)
    if isinstance(value, CommentedSeq):
        items = CommentedSeq(
            _rename(item, origin, to, to_ikanos) if isinstance(item, CommentedMap) else item for item in value
        )
        items.ca.items.update(value.ca.items)
        return items
    return value


def _keyed(entries: CommentedSeq, origin: str, to: str) -> Any:
    """A list of named entries as a map keyed by name; left a list when a name is missing or repeated."""
    names = [entry.get("name") if isinstance(entry, CommentedMap) else None for entry in entries]
    if not names or None in names or len(set(map(str, names))) != len(names):
        return _value("", entries, origin, to, True)
    keyed = CommentedMap()
    for name, entry in zip(names, entries, strict=True):
        body = CommentedMap((k, v) for k, v in entry.items() if k != "name")
        body.ca.items.update({k: v for k, v in entry.ca.items.items() if k != "name"})
        keyed[str(name)] = _rename(body, origin, to, True)
    return keyed


def _listed(entries: CommentedMap, origin: str, to: str) -> CommentedSeq:
    """A keyed map as a list of entries, each with its `name` first."""
    listed = CommentedSeq()
    for name, entry in entries.items():
        item = CommentedMap([("name", name)])
        if isinstance(entry, CommentedMap):
            for key, value in _rename(entry, origin, to, False).items():
                if key != "name":
                    item[key] = value
            item.ca.items.update(entry.ca.items)
        listed.append(item)
    return listed


__all__ = ["convert_file", "convert_text"]
