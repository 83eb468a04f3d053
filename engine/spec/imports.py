"""Imports of single entries from shared (leaf) files: one resolver for the four importable sections.

An entry of `consumes`, `exposes`, `aggregates` or `binds` that says `{from, import, as, description}`
(alpha2 writes `location` for `from`) brings in the entry of that section whose `namespace` is
`import`, from a shared file holding only that section (`from` is relative to the importing file),
renamed to `as` when given. Shared files are leaves: an import inside one is a problem of that file
(transitive imports are not supported, as the Ikanos schema says). Every failure is a positioned
problem at the importing entry's key that names the imported file; problems inside the imported file
keep that file's own lines and columns.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import TypeVar
from collections.abc import Callable

from . import model as spec
from .fields import Context, Map, file_location
from ..errors import CapabilityError, Problem

T = TypeVar("T")

KINDS = ("consumes", "exposes", "aggregates", "binds")
"""The sections a shared file may hold (exactly one of) and a capability may import entries into."""

SharedReader = Callable[[Path], "spec.SharedFile | None"]
"""Reads one shared file (None: the file is not a shared file); raises CapabilityError for a broken one."""


def source_key(dialect: str) -> str:
    """The key naming the imported file: Ikanos's unified `from`, alpha2's `location`."""
    return "from" if dialect == "ikanos" else "location"


def is_import(m: Map, kind: str) -> bool:
    """An import entry rather than an inline one (an alpha2 binding's `location` is its own URI)."""
    return m.has(source_key(m.ctx.dialect)) and (kind != "binds" or m.has("import"))


def import_entry(m: Map, kind: str) -> spec.Import | None:
    """`{from, import, as, description}` read into the model, every key's place kept."""
    source = source_key(m.ctx.dialect)
    m.known(source, "import", "as", "description")
    location, name = m.str(source, required=True), m.str("import", required=True)
    alias, description = m.str("as"), m.str("description")
    if location is None or name is None:
        return None
    places = {key: m.loc(spelled) for key, spelled in (("from", source), ("import", "import"), ("as", "as"))}
    return spec.Import(location, name, m.where, alias, kind, description, places)


def importing(kind: str, build: Callable[[Map], T | None]) -> Callable[[Map], T | spec.Import | None]:
    """A builder of a capability's section: import entries as `Import`, the others with `build`."""

    def read(m: Map) -> T | spec.Import | None:
        return import_entry(m, kind) if is_import(m, kind) else build(m)

    return read


def leaf(kind: str, build: Callable[[Map], T | None]) -> Callable[[Map], T | None]:
    """A builder of a shared file's section: an import there is a problem (files imported are leaves)."""

    def read(m: Map) -> T | None:
        if is_import(m, kind):
            m.ctx.problem(
                m.where.key(source_key(m.ctx.dialect)),
                f"a shared {kind} file cannot import from another file (transitive imports are not supported):"
                " write the entry here, or import it from its own file directly",
            )
            return None
        return build(m)

    return read


def namespace_of(entry: spec.Shareable) -> str:
    return entry.namespace


class Resolver:
    """Resolves the imports of one capability file in place, collecting problems into its `Context`."""

    def __init__(self, ctx: Context, read: SharedReader) -> None:
        self.ctx, self.read = ctx, read
        self.base = Path(ctx.file).parent
        self.imported: list[tuple[spec.Import, spec.Shareable, Path]] = []

    def section(self, built: tuple[T | spec.Import, ...]) -> tuple[T, ...]:
        """`built` with each import replaced by the entry it names (left out when it cannot be resolved)."""
        out: list[T] = []
        for item in built:
            if not isinstance(item, spec.Import):
                out.append(item)
                continue
            try:
                entry, path = self.resolve(item)
            except CapabilityError as exc:
                self.ctx.problems.extend(exc.problems)
                continue
            self.imported.append((item, entry, path))
            out.append(entry)  # type: ignore[arg-type]  # an entry of the section it was imported into
        return tuple(out)

    def resolve(self, entry: spec.Import) -> tuple[spec.Shareable, Path]:
        path = self.path_of(entry.location)
        where = entry.at("from")
        if not path.is_file():
            raise CapabilityError.at(where, f"imported file not found: {path}")
        try:
            shared = self.read(path)
        except CapabilityError as exc:
            summary = Problem(where, f"cannot import '{entry.import_}' from {path}: that file has problems (below)")
            raise CapabilityError([summary, *exc.problems]) from None
        if shared is None or shared.kind != entry.kind:
            what = "a capability or other document" if shared is None else f"a shared {shared.kind} file"
            raise CapabilityError.at(
                where,
                f"{path} is {what}; a '{entry.kind}' entry imports from a shared {entry.kind} file"
                f" (a root '{entry.kind}' list and no 'capability')",
            )
        for found in shared.entries:
            if namespace_of(found) == entry.import_:
                return _rebased(replace(found, namespace=entry.as_ or found.namespace), path), path
        names = ", ".join(namespace_of(e) for e in shared.entries) or "none"
        raise CapabilityError.at(
            entry.at("import"), f"{path} has no {entry.kind} namespace '{entry.import_}' (it has: {names})"
        )

    def path_of(self, location: str) -> Path:
        """`from` as a path: `file://` dropped, relative to the importing file's folder."""
        if location.startswith("file://"):
            location = location[len("file://") :]
            if location.startswith("/./"):
                location = location[1:]
        path = Path(location)
        return path if path.is_absolute() else self.base / path

    def collisions(self, declared: list[spec.Shareable]) -> None:
        """An imported namespace (after `as`) that another entry of the capability already declares.

        `declared` is every entry of the capability; namespaces are unique among its consumes, exposes
        and aggregates, and among its binds."""
        for entry, found, path in self.imported:
            for other in declared:
                same_group = isinstance(other, spec.Binding) == isinstance(found, spec.Binding)
                if other is not found and same_group and other.namespace == found.namespace:
                    key = "as" if entry.as_ else "import"
                    self.ctx.problem(
                        entry.at(key),
                        f"namespace '{found.namespace}' imported from {path} is already declared at {other.where}"
                        f" ({other.where.path}); give the import another name with 'as'",
                    )
                    break


def _rebased(entry: spec.Shareable, leaf_file: Path) -> spec.Shareable:
    """An imported binding's relative `file://` location read next to the file it was written in,
    when the file is there (else as written: next to the capability, then the working directory)."""
    if not isinstance(entry, spec.Binding) or not entry.location or not entry.location.startswith("file://"):
        return entry
    absolute = file_location(entry.location, str(leaf_file))
    if absolute and Path(absolute[len("file://") :]).is_file():
        return replace(entry, location=absolute)
    return entry
