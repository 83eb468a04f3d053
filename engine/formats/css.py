"""The CSS selectors an HTML `outputSchema` may use, compiled once and matched in one pass.

Supported: tag, `*`, `#id`, `.class`, `[attr]`, `[attr=v]` (also `~=`, `^=`, `$=`, `*=`), the
descendant and `>` combinators and `,` groups. Tag names, classes and attribute values compare
case-insensitively, as jsoup compares them; anything else is refused when the capability loads.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from .common import FormatError
from .html_tree import Node

_SELECTOR_TOKEN = re.compile(
    r"""
    \s*(?P<combinator>[>,])\s*
  | (?P<space>\s+)
  | (?P<tag>\*|[A-Za-z][A-Za-z0-9-]*)
  | \#(?P<id>(?:[\w-]|\\.)+)
  | \.(?P<cls>(?:[\w-]|\\.)+)
  | \[\s*(?P<attr>[\w:-]+)\s*(?:(?P<op>[~^$*]?=)\s*
        (?:"(?P<dq>[^"]*)"|'(?P<sq>[^']*)'|(?P<uq>[^\s\]"']+))\s*)?\]
""",
    re.VERBOSE,
)

_SELECTOR_HELP = "tag, *, #id, .class, [attr], [attr=value] (also ~= ^= $= *=), ' ' and '>' combinators, ','"


@dataclass(frozen=True, slots=True)
class _Compound:
    """One compound selector such as `table.products#main[data-x]`."""

    tag: str | None = None
    ids: tuple[str, ...] = ()
    classes: tuple[str, ...] = ()
    attrs: tuple[tuple[str, str, str], ...] = ()

    def matches(self, node: Node) -> bool:
        if self.tag is not None and node.tag != self.tag:
            return False
        if self.ids and not all(node.attrs.get("id") == wanted for wanted in self.ids):
            return False  # `#b#a` asks for two ids at once: nothing has both
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

    def step(self, node: Node, parent: int, ancestors: int) -> int:
        """Bitmask of the prefixes `parts[:i + 1]` that `node` completes.

        `parent` is the parent's mask and `ancestors` the union of all ancestors' masks, so a
        whole document is matched in one top-down pass instead of walking ancestors per element.
        """
        mask = 0
        for index, part in enumerate(self.parts):
            if part.matches(node) and (
                index == 0 or ((parent if self.links[index] == ">" else ancestors) >> (index - 1)) & 1
            ):
                mask |= 1 << index
        return mask


@dataclass(frozen=True, slots=True)
class Selector:
    """A selector group: an element matches when any member does."""

    members: tuple[_Complex, ...]

    def tables(self, root: Node) -> list[Node]:
        """Tables that match, or sit inside an element that matches, in document order."""
        members, found = self.members, []
        nothing = (0,) * len(members)
        pending = [(child, nothing, nothing, False) for child in reversed(root.children) if isinstance(child, Node)]
        while pending:
            node, parent, ancestors, inside = pending.pop()
            masks = tuple(m.step(node, p, a) for m, p, a in zip(members, parent, ancestors, strict=True))
            inside = inside or any(mask >> (len(m.parts) - 1) & 1 for m, mask in zip(members, masks, strict=True))
            if inside and node.tag == "table":
                found.append(node)
            below = tuple(a | mask for a, mask in zip(ancestors, masks, strict=True))
            pending.extend(
                (child, masks, below, inside) for child in reversed(node.children) if isinstance(child, Node)
            )
        return found


def compile_selector(source: str) -> Selector:
    """Parse the supported CSS subset once; anything else is a FormatError naming the selector."""

    def bad(reason: str) -> FormatError:
        return FormatError(
            f"html: unsupported outputSchema selector {source!r} ({reason}); supported: {_SELECTOR_HELP}"
        )

    members: list[_Complex] = []
    parts: list[_Compound] = []
    links: list[str] = [" "]
    current: dict[str, Any] | None = None
    pending_link = " "

    def close_compound() -> None:
        nonlocal current
        if current is not None:
            parts.append(
                _Compound(
                    current.get("tag"),
                    tuple(current.get("ids", ())),
                    tuple(current.get("classes", ())),
                    tuple(current.get("attrs", ())),
                )
            )
            current = None

    text = source.strip()
    position = 0
    while position < len(text):
        match = _SELECTOR_TOKEN.match(text, position)
        if match is None:
            raise bad(f"cannot read {text[position : position + 12]!r}")
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
            current.setdefault("ids", []).append(_unescape_ident(match.group("id")))
        elif match.group("cls") is not None:
            current.setdefault("classes", []).append(_unescape_ident(match.group("cls")).lower())
        else:
            value = next((v for v in match.group("dq", "sq", "uq") if v is not None), "")
            current.setdefault("attrs", []).append(
                (match.group("attr").lower(), match.group("op") or "", value.lower())
            )
    if current is None:
        raise bad("it is empty or ends with a combinator")
    close_compound()
    members.append(_Complex(tuple(parts), tuple(links)))
    return Selector(tuple(members))


def _unescape_ident(ident: str) -> str:
    return re.sub(r"\\(.)", r"\1", ident)
