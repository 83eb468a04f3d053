"""Capability files into YAML data with positions: the first step of the spec stage.

`read_document` reads a file's bytes (bounded by `ReadLimits`), decodes them as UTF-8 and parses
them with `blockyaml`, the fast reader of plain block YAML, or ruamel.yaml's round-trip reader
for anything else, its composer bounded (depth, alias expansion, number length) and its
constructor's failures placed at the value. Either way the result is dicts and lists whose `lc`
gives every key, value and item its line and column, which `fields.Map` reads; every failure is
a CapabilityError at its place.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.composer import Composer, ComposerError
from ruamel.yaml.constructor import ConstructorError, RoundTripConstructor
from ruamel.yaml.error import MarkedYAMLError, YAMLError
from ruamel.yaml.events import AliasEvent, MappingStartEvent, SequenceStartEvent
from ruamel.yaml.nodes import SequenceNode
from ruamel.yaml.reader import ReaderError

from . import blockyaml
from ..errors import CapabilityError, Location

_MiB = 1024 * 1024


@dataclass(frozen=True, slots=True)
class ReadLimits:
    """What reading one capability file may cost, whatever the file says.

    Capability files are small (the generated 10,000-operation benchmark file is 11 MB), so these
    only ever stop a wrong path or a hostile file, each with a CapabilityError at the place it
    went too far, before the loader spends unbounded time or memory on it.
    """

    file_bytes: int = 16 * _MiB
    """The largest file read at all, checked before it is read."""
    full_yaml_bytes: int = 1 * _MiB
    """The largest file read with ruamel, which any YAML outside the fast block subset needs (flow
    collections, anchors, tabs...): ruamel reads about 200 KB a second and holds some 60 bytes per
    byte read, so 1 MiB costs it about 5 s and 60 MB. Larger files must keep to block YAML, as
    generated ones do (the fast reader takes 11 MB in about 2 s)."""
    depth: int = blockyaml.DEFAULT_MAX_DEPTH
    """The deepest nesting of mappings and sequences (100), aliases counted where they are used.
    Real files nest about 15 levels; every later walk of the document recurses once per level."""
    alias_nodes: int = 250_000
    """The most nodes that aliases may add to the document, each alias counting the nodes it stands
    for. ruamel shares an aliased node instead of copying it, so eight anchor lines can stand for
    43 million nodes that every walk of the document then visits; 250,000 is about a tenth of what
    the 10,000-operation file holds, and far more than any reuse of shared parameters needs."""
    number_length: int = 1000
    """The longest integer or float literal, in characters: Python refuses to turn an integer of
    more than 4,300 digits into text (and the hexadecimal form packs 1.2 digits per character)."""


READ_LIMITS = ReadLimits()


class _Exceeded(ComposerError):
    """A bound of ReadLimits was passed; the message is the whole explanation (it is not a syntax error)."""

    def __init__(self, message: str, mark: Any, path: str) -> None:
        super().__init__(None, None, message, mark)
        self.path = path


class _BoundedComposer(Composer):
    """ruamel's composer with the document's depth, alias expansion and numbers bounded.

    An alias is composed as the anchored node itself, not a copy, so the cost of the expanded
    document only shows later; here each alias is charged the nodes and the depth it stands for,
    and an alias inside its own anchor (a recursive document) is refused.
    """

    def __init__(self, loader: Any = None) -> None:
        super().__init__(loader)
        self.warn_double_anchors = False  # YAML lets a later anchor of the same name win; no Python warning
        self.limits: ReadLimits = getattr(loader, "naftiko_limits", READ_LIMITS)
        self.nesting = 0  # open mappings and sequences
        self.reach = 0  # the deepest nesting reached, aliases counted at their full depth
        self.nodes = 0  # nodes composed, each alias counted as the nodes it stands for
        self.aliased = 0  # nodes added by aliases
        self.anchored: dict[int, tuple[int, int]] = {}  # id(anchored node) -> (its nodes, its depth)
        self.path: list[Any] = []

    def compose_node(self, parent: Any, index: Any) -> Any:
        self.path.append(index if isinstance(parent, SequenceNode) else getattr(index, "value", None))
        try:
            event = self.parser.peek_event()
            if isinstance(event, AliasEvent):
                return self._alias(parent, index, event)
            return self._node(parent, index, event)
        except YAMLError:
            raise
        except (ValueError, TypeError, IndexError, KeyError, OverflowError, RecursionError) as exc:
            mark = self.loader.reader.get_mark() if getattr(self.loader, "reader", None) else None
            raise ComposerError(None, None, f"cannot read this ({exc})", mark) from None
        finally:
            self.path.pop()

    def _node(self, parent: Any, index: Any, event: Any) -> Any:
        base = self.nesting
        if isinstance(event, (MappingStartEvent, SequenceStartEvent)):
            self.nesting += 1
            if self.nesting > self.limits.depth:
                raise self._exceeded(
                    f"nested deeper than {self.limits.depth} levels of mappings and sequences", event.start_mark
                )
        saved_reach, start = self.reach, self.nodes
        self.reach = max(self.reach, self.nesting) if event.anchor is None else self.nesting
        self.nodes += 1
        try:
            node = super().compose_node(parent, index)
        finally:
            self.nesting = base
        if event.anchor is not None:
            self.anchored[id(node)] = (self.nodes - start, self.reach - base)
            self.reach = max(saved_reach, self.reach)
        tag = str(node.tag)
        if (
            tag.endswith((":int", ":float"))
            and isinstance(node.value, str)
            and len(node.value) > self.limits.number_length
        ):
            raise self._exceeded(
                f"a number of {len(node.value):,} characters; numbers may have at most {self.limits.number_length:,}",
                node.start_mark,
            )
        return node

    def _alias(self, parent: Any, index: Any, event: Any) -> Any:
        node = super().compose_node(parent, index)  # ruamel reports an undefined alias
        try:
            nodes, height = self.anchored[id(node)]
        except KeyError:
            raise self._exceeded(
                f"the alias *{event.anchor} is inside the node it refers to; a capability cannot be recursive",
                event.start_mark,
            ) from None
        self.aliased += nodes
        self.nodes += nodes
        if self.aliased > self.limits.alias_nodes:
            raise self._exceeded(
                f"aliases expand this document by more than {self.limits.alias_nodes:,} nodes"
                f" (at *{event.anchor}); write the repeated part out, or repeat it less",
                event.start_mark,
            )
        if self.nesting + height > self.limits.depth:
            raise self._exceeded(
                f"the alias *{event.anchor} nests the document deeper than"
                f" {self.limits.depth} levels of mappings and sequences",
                event.start_mark,
            )
        self.reach = max(self.reach, self.nesting + height)
        return node

    def _exceeded(self, message: str, mark: Any) -> _Exceeded:
        return _Exceeded(message, mark, _key_path(self.path))


class _MarkedConstructor(RoundTripConstructor):
    """ruamel's round-trip constructor; a value it cannot build (`-_`, `2024-13-45`) is an error at that value."""

    def construct_object(self, node: Any, deep: bool = False) -> Any:
        try:
            return super().construct_object(node, deep)
        except YAMLError:
            raise
        except (ValueError, TypeError, IndexError, KeyError, OverflowError, AttributeError) as exc:
            raise ConstructorError(None, None, f"cannot read this value ({exc})", node.start_mark) from None

    def construct_non_recursive_object(self, node: Any, *args: Any, **kwargs: Any) -> Any:
        pending = len(self.state_generators)
        data = super().construct_non_recursive_object(node, *args, **kwargs)
        self.state_generators[pending:] = [_marked(g, node) for g in self.state_generators[pending:]]
        return data


def _marked(generator: Any, node: Any) -> Any:
    """A constructor's deferred work, its builtin errors placed at `node`."""
    try:
        yield from generator
    except YAMLError:
        raise
    except (ValueError, TypeError, IndexError, KeyError, OverflowError, AttributeError) as exc:
        raise ConstructorError(None, None, f"cannot read this value ({exc})", node.start_mark) from None


def _key_path(steps: list[Any]) -> str:
    """`capability.consumes[0].name` from the keys and indexes of the nodes being composed."""
    out = ""
    for step in steps:
        if isinstance(step, int):
            out += f"[{step}]"
        elif step is not None:
            out += f".{step}" if out else str(step)
    return out


def _text_location(file: str, text: str, index: int) -> Location:
    """The 1-based line and column of character `index`."""
    line_start = text.rfind("\n", 0, index) + 1
    return Location(file, text.count("\n", 0, index) + 1, index - line_start + 1)


def _ruamel(text: str, file: str, limits: ReadLimits) -> Any:
    """ruamel's round-trip reading, bounded by `limits`, every error a CapabilityError at its place."""
    yaml = YAML(typ="rt", pure=True)
    yaml.Composer = _BoundedComposer
    yaml.Constructor = _MarkedConstructor
    yaml.naftiko_limits = limits  # type: ignore[attr-defined]
    try:
        return yaml.load(text)
    except ReaderError as exc:
        where = _text_location(file, text, exc.position) if isinstance(exc.position, int) else Location(file)
        char = exc.character if isinstance(exc.character, int) else ord(str(exc.character)[:1] or "\0")
        raise CapabilityError.at(
            where, f"not valid YAML: the character U+{char:04X} is not allowed in YAML text"
        ) from None
    except _Exceeded as exc:
        mark = exc.problem_mark
        where = Location(file, mark.line + 1, mark.column + 1, exc.path) if mark else Location(file, path=exc.path)
        raise CapabilityError.at(where, str(exc.problem)) from None
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = Location(file, mark.line + 1, mark.column + 1) if mark else Location(file)
        raise CapabilityError.at(where, f"not valid YAML: {exc.problem or exc.context}") from None
    except (YAMLError, ValueError, TypeError, IndexError, KeyError, OverflowError, RecursionError) as exc:
        raise CapabilityError.at(Location(file), f"not valid YAML: {exc}") from None  # not seen in fuzzing


def parse_yaml(text: str, file: str, limits: ReadLimits = READ_LIMITS) -> Any:
    """The fast block-YAML reader when the text allows it, bounded ruamel (and its errors) otherwise."""
    try:
        return blockyaml.load(text, max_depth=limits.depth)
    except blockyaml.Unsupported as exc:
        if len(text.encode("utf-8", "surrogatepass")) > limits.full_yaml_bytes:
            where = Location(file, (exc.line or 0) + 1, (exc.column or 0) + 1)
            raise CapabilityError.at(
                where,
                f"a file larger than {limits.full_yaml_bytes:,} bytes must be plain block"
                f" YAML, and here it is not ({exc}); write it in block style, or split it",
            ) from None
    return _ruamel(text, file, limits)


def _decode(data: bytes, file: str) -> str:
    """UTF-8 text, or a CapabilityError at the line and column of the first byte that is not."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line_start = data.rfind(b"\n", 0, exc.start) + 1
        where = Location(
            file, data.count(b"\n", 0, exc.start) + 1, len(data[line_start : exc.start].decode("utf-8", "replace")) + 1
        )
        raise CapabilityError.at(
            where, f"not UTF-8 text: byte 0x{data[exc.start]:02x} ({exc.reason}); capability files are read as UTF-8"
        ) from None


def read_document(path: str | Path, limits: ReadLimits = READ_LIMITS) -> Any:
    """Parse one YAML file, turning I/O and syntax errors into a CapabilityError."""
    file = str(path)
    too_large = f"file too large: more than {limits.file_bytes:,} bytes, the limit for a capability file"
    try:
        with open(path, "rb") as handle:
            if os.fstat(handle.fileno()).st_size > limits.file_bytes:
                raise CapabilityError.at(Location(file), too_large)
            data = handle.read(limits.file_bytes + 1)  # not every file knows its size (pipes, /proc)
    except FileNotFoundError:
        raise CapabilityError.at(Location(file), "file not found") from None
    except OSError as exc:
        raise CapabilityError.at(Location(file), f"cannot read file: {exc.strerror or exc}") from None
    if len(data) > limits.file_bytes:
        raise CapabilityError.at(Location(file), too_large)
    return parse_yaml(_decode(data, file), file, limits)
