"""Capability files and folders into the spec model: the spec stage's entry point.

A file is read (`reading`: YAML data with positions), built into the typed `model` by the
builders (`consumed`, `invocations`, `exposed`, and the capability root here), reading every key
through `fields.Map`, and checked (`checks`). Every problem names the file, line, column and key path
(`capability.consumes[0].baseUri`) and says what would be right; `load` reports the problems of
all files together, with the namespaces they declare twice. Unknown keys are warnings, as in the
reference engine, so files written for newer spec versions still load.

A document with no `capability` and one root `consumes`, `exposes`, `aggregates` or `binds` list is a
shared (leaf) file: it is checked as fully as a capability (`load_documents`, for `validate`) but never
served; capabilities import its entries by namespace (`imports`), and a folder's shared files are read
only when imported.
"""

from __future__ import annotations

from pathlib import Path
from collections.abc import Callable, Iterable
from typing import Any

from . import model as spec
from .checks import check_skills, duplicates
from .consumed import consumes
from .exposed import exposes
from .imports import KINDS, Resolver, importing, leaf, namespace_of
from .invocations import aggregate
from .fields import Context, Map, strings
from .reading import READ_LIMITS, ReadLimits, read_document
from ..errors import CapabilityError, Location, Problem

NOT_FOUND = "no capability files found (looked for *.yaml and *.yml starting with 'naftiko:' or 'ikanos:')"


def load(paths: Iterable[str | Path], limits: ReadLimits = READ_LIMITS) -> list[spec.Capability]:
    """Load every capability under `paths`; report all problems of all files together.

    A shared file named on its own is refused (there is nothing to serve in it); in a folder it is
    left for the capabilities that import it."""
    paths = list(paths)
    capabilities, shared = _load(paths, limits, with_shared=False)
    if shared:
        raise CapabilityError([Problem(s.where, _not_served(s)) for s in shared])
    return capabilities


def load_documents(
    paths: Iterable[str | Path], limits: ReadLimits = READ_LIMITS
) -> tuple[list[spec.Capability], list[spec.SharedFile]]:
    """Every capability and every shared file under `paths`, each checked (what `validate` reports)."""
    return _load(list(paths), limits, with_shared=True)


def _load(
    paths: list[str | Path], limits: ReadLimits, with_shared: bool
) -> tuple[list[spec.Capability], list[spec.SharedFile]]:
    capabilities: list[spec.Capability] = []
    shared: list[spec.SharedFile] = []
    problems: list[Problem] = []
    files = expand_paths(paths, shared=with_shared)
    if not files:
        leaves = [] if with_shared else expand_paths(paths, shared=True)
        said = f" (only shared files, which capabilities import: {', '.join(p.name for p in leaves)})" if leaves else ""
        raise CapabilityError.at(Location(", ".join(str(p) for p in paths)), NOT_FOUND + said)
    read = SharedFiles(limits)
    for file in files:
        try:
            document = load_document(file, limits, read)
        except CapabilityError as exc:
            problems.extend(exc.problems)
            continue
        (shared if isinstance(document, spec.SharedFile) else capabilities).append(document)  # type: ignore[arg-type]
    problems.extend(_duplicate_namespaces(capabilities))
    if problems:
        raise CapabilityError(problems)
    return capabilities, shared


def _not_served(shared: spec.SharedFile) -> str:
    return (
        f"{describe_shared(shared)}, with no 'capability': nothing to serve on its own; capabilities import"
        f" its entries ({shared.kind}: - from: {Path(shared.path).name}, import: NAMESPACE): serve those"
    )


def describe_shared(shared: spec.SharedFile) -> str:
    """`shared exposes file: 2 entries (weather-rest, weather-mcp)`."""
    names = ", ".join(namespace_of(e) for e in shared.entries)
    count = len(shared.entries)
    return f"shared {shared.kind} file: {count} {'entry' if count == 1 else 'entries'} ({names})"


def _duplicate_namespaces(capabilities: list[spec.Capability]) -> list[Problem]:
    seen: dict[str, Location] = {}
    problems: list[Problem] = []
    for capability in capabilities:
        declared = [(c.namespace, c.where) for c in capability.consumes]
        declared += [(e.namespace, e.where) for e in capability.exposes if e.namespace]
        declared += [(a.namespace, a.where) for a in capability.aggregates]
        for namespace, where in declared:
            first = seen.setdefault(namespace, where)
            if first is not where:
                problems.append(
                    Problem(
                        where,
                        f"namespace '{namespace}' is already declared at {first}"
                        f" ({first.path}); namespaces must be unique across all loaded files",
                    )
                )
    return problems


def expand_paths(paths: Iterable[str | Path], shared: bool = False) -> list[Path]:
    """Files as given; folders become their `*.yaml`/`*.yml` capability documents (and, with
    `shared`, their shared files), sorted."""
    files: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            candidates = sorted(p for p in path.iterdir() if p.suffix in (".yaml", ".yml") and p.is_file())
            files.extend(p for p in candidates if _member(p, shared))
        else:
            files.append(path)
    return files


def is_capability_document(path: Path) -> bool:
    """A folder member counts when its first key is `naftiko` (or `ikanos`) and it has a `capability`."""
    return _member(path, shared=False)


def _member(path: Path, shared: bool) -> bool:
    try:
        data = read_document(path)
    except CapabilityError:
        return True  # let load_file report the syntax error with its position
    if not isinstance(data, dict) or next(iter(data), None) not in DIALECTS:
        return False
    return "capability" in data or (shared and bool(shared_kinds(data)))


def shared_kinds(data: dict[str, Any]) -> list[str]:
    """The shared sections of a document without `capability` (a shared file has exactly one)."""
    return [] if "capability" in data else [kind for kind in KINDS if kind in data]


class SharedFiles:
    """Shared files read for imports, each once per load (a capability may import several entries)."""

    def __init__(self, limits: ReadLimits) -> None:
        self.limits = limits
        self.read: dict[Path, spec.SharedFile | None | CapabilityError] = {}

    def __call__(self, path: Path) -> spec.SharedFile | None:
        key = path.resolve()
        if key not in self.read:
            try:
                data = read_document(path, self.limits)  # bounded as every capability file is
                kinds = shared_kinds(data) if isinstance(data, dict) else []
                self.read[key] = _shared_file(str(path), data, kinds) if kinds else None
            except CapabilityError as exc:
                self.read[key] = exc
        found = self.read[key]
        if isinstance(found, CapabilityError):
            raise CapabilityError(found.problems)
        return found


def load_file(path: str | Path, limits: ReadLimits = READ_LIMITS) -> spec.Capability:
    """Load and check one capability file (a shared file is refused: it is only imported)."""
    document = load_document(path, limits)
    if isinstance(document, spec.SharedFile):
        raise CapabilityError.at(document.where, _not_served(document))
    return document


def load_document(
    path: str | Path, limits: ReadLimits = READ_LIMITS, read: SharedFiles | None = None
) -> spec.Capability | spec.SharedFile:
    """Load and check one capability file or shared file; a capability's imports are resolved."""
    return _document(path, limits, read or SharedFiles(limits))


def _document(path: str | Path, limits: ReadLimits, read: SharedFiles) -> spec.Capability | spec.SharedFile:
    file = str(path)
    data = read_document(path, limits)
    if not isinstance(data, dict):
        raise CapabilityError.at(
            Location(file, 1, 1), "a capability file must be a YAML mapping that starts with 'naftiko:'"
        )
    kinds = shared_kinds(data)
    if kinds:
        return _shared_file(file, data, kinds)
    ctx = Context(file, dialect_of(data))
    capability = _capability(Map(ctx, data, "", Location(file, 1, 1)), file, Resolver(ctx, read))
    if ctx.problems:
        raise CapabilityError(ctx.problems)
    check_skills(capability)
    return capability


def _shared_file(file: str, data: dict[str, Any], kinds: list[str]) -> spec.SharedFile:
    """A shared file checked as a capability is: every entry built, namespaces unique, no imports."""
    ctx = Context(file, dialect_of(data))
    root = Map(ctx, data, "", Location(file, 1, 1))
    root.known(ctx.dialect, "info", *KINDS)
    version = _version(root)
    kind = kinds[0]
    for extra in kinds[1:]:
        ctx.problem(
            root.loc(extra), f"a shared file holds exactly one of {', '.join(KINDS)}; this one also has '{kind}'"
        )
    if isinstance(data[kind], list) and not data[kind]:
        root.bad(kind, f"'{kind}' must hold at least one entry (a shared {kind} file with nothing to import)")
    entries = root.items(kind, leaf(kind, BUILDERS[kind]), required=True)
    if kind == "exposes":
        _one_control(ctx, entries)  # the exposes builder built them
    duplicates(ctx, "namespace", [(e.namespace, e.where) for e in entries], "in this file")  # imports name them
    if ctx.problems:
        raise CapabilityError(ctx.problems)
    info = root.map("info")
    return spec.SharedFile(
        path=file,
        version=version,
        where=root.loc(kind),  # the section's key: where a problem with the file as a whole points
        kind=kind,
        entries=entries,
        info=_info(info) if info else None,
        warnings=tuple(ctx.warnings),
    )


DIALECTS = {"naftiko": "1.0.0-alpha", "ikanos": "1.0.0-beta"}
"""The root key of each dialect read, and the version prefix it is read as (alpha2, beta5)."""


def dialect_of(data: object) -> str:
    """`ikanos` for a document whose root says `ikanos:` (and not `naftiko:`), else `naftiko`."""
    return "ikanos" if isinstance(data, dict) and "ikanos" in data and "naftiko" not in data else "naftiko"


def _version(root: Map) -> str:
    dialect = root.ctx.dialect
    version = root.str(dialect, required=True) or ""
    if version and not version.startswith(DIALECTS[dialect]):
        known = "1.0.0-alpha2" if dialect == "naftiko" else "1.0.0-beta5"
        root.ctx.warn(root.loc(dialect), f"spec version '{version}' is not {DIALECTS[dialect]}*; reading it as {known}")
    return version


def _capability(root: Map, path: str, imports: Resolver) -> spec.Capability:
    root.known(root.ctx.dialect, "info", "binds", "capability")
    version = _version(root)
    info = root.map("info")
    body = root.map("capability", required=True)
    if body is not None:
        body.known("binds", "exposes", "consumes", "aggregates")

    def section(owner: Map | None, kind: str) -> tuple[Any, ...]:
        return imports.section(owner.items(kind, importing(kind, BUILDERS[kind]))) if owner else ()

    entries: tuple[spec.Consumes, ...] = section(body, "consumes")
    binds: tuple[spec.Binding, ...] = section(root, "binds") + section(body, "binds")
    exposed: tuple[spec.Exposes, ...] = section(body, "exposes")
    aggregates: tuple[spec.Aggregate, ...] = section(body, "aggregates")
    imports.collisions([*entries, *exposed, *aggregates, *binds])
    _one_control(root.ctx, exposed)
    return spec.Capability(
        path=path,
        version=version,
        where=root.where,
        info=_info(info) if info else None,
        binds=binds,
        consumes=entries,
        imports=tuple(entry for entry, _, _ in imports.imported),
        exposes=exposed,
        aggregates=aggregates,
        warnings=tuple(root.ctx.warnings),
    )


def _one_control(ctx: Context, exposed: tuple[spec.Exposes, ...]) -> None:
    """A capability has one management plane, as the reference engine requires."""
    controls = [e for e in exposed if isinstance(e, spec.ControlExposes)]
    for extra in controls[1:]:
        ctx.problem(extra.where, f"a capability has at most one control block; the first is at {controls[0].where}")


def _binding(m: Map) -> spec.Binding | None:
    m.known("namespace", "description", "location", "keys")
    namespace = m.str("namespace", required=True)
    keys = m.map("keys", required=True)
    location = m.str("location")
    if location is not None and "://" not in location:
        m.bad("location", f"'location' must be a URI such as file:///path/secrets.yaml; got '{location}'")
    if namespace is None or keys is None:
        return None
    values = {str(k): keys.str(k, required=True) for k in keys.data}
    return spec.Binding(
        namespace=namespace,
        keys={k: v for k, v in values.items() if v is not None},
        location=location,
        description=m.str("description"),
        where=m.where,
    )


def _info(m: Map) -> spec.Info | None:
    m.known("label", "description", "tags", "created", "modified", "stakeholders")
    label = m.str("label", required=True)
    if label is None:
        return None
    return spec.Info(label=label, description=m.str("description"), tags=strings(m, "tags"))


BUILDERS: dict[str, Callable[[Map], Any]] = {
    "consumes": consumes,
    "exposes": exposes,
    "aggregates": aggregate,
    "binds": _binding,
}
"""The builder of an inline entry of each importable section."""
