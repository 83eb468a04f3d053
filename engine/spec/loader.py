"""Capability files and folders into the spec model: the spec stage's entry point.

A file is read (`reading`: YAML data with positions), built into the typed `model` by the
builders (`consumed`, `invocations`, `exposed`, and the capability root here), reading every key
through `fields.Map`, and checked (`checks`). Every problem names the file, line, column and key path
(`capability.consumes[0].baseUri`) and says what would be right; `load` reports the problems of
all files together, with the namespaces they declare twice. Unknown keys are warnings, as in the
reference engine, so files written for newer spec versions still load. Imported consumes
(`location` + `import`) are read from their shared file here.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from collections.abc import Iterable

from . import model as spec
from .checks import check_skills
from .consumed import consumes
from .exposed import exposes
from .invocations import aggregate
from .fields import Context, Map, strings
from .reading import READ_LIMITS, ReadLimits, read_document
from ..errors import CapabilityError, Location, Problem


def load(paths: Iterable[str | Path], limits: ReadLimits = READ_LIMITS) -> list[spec.Capability]:
    """Load every capability under `paths`; report all problems of all files together."""
    capabilities: list[spec.Capability] = []
    problems: list[Problem] = []
    files = expand_paths(paths)
    if not files:
        raise CapabilityError.at(
            Location(", ".join(str(p) for p in paths)),
            "no capability files found (looked for *.yaml and *.yml starting with 'naftiko:' or 'ikanos:')",
        )
    for file in files:
        try:
            capabilities.append(load_file(file, limits))
        except CapabilityError as exc:
            problems.extend(exc.problems)
    problems.extend(_duplicate_namespaces(capabilities))
    if problems:
        raise CapabilityError(problems)
    return capabilities


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


def expand_paths(paths: Iterable[str | Path]) -> list[Path]:
    """Files as given; folders become their `*.yaml`/`*.yml` capability documents, sorted."""
    files: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            candidates = sorted(p for p in path.iterdir() if p.suffix in (".yaml", ".yml") and p.is_file())
            files.extend(p for p in candidates if is_capability_document(p))
        else:
            files.append(path)
    return files


def is_capability_document(path: Path) -> bool:
    """A folder member counts when its first key is `naftiko` (or `ikanos`) and it has a `capability`."""
    try:
        data = read_document(path)
    except CapabilityError:
        return True  # let load_file report the syntax error with its position
    return isinstance(data, dict) and next(iter(data), None) in DIALECTS and "capability" in data


def load_file(path: str | Path, limits: ReadLimits = READ_LIMITS) -> spec.Capability:
    """Load and check one capability file."""
    file = str(path)
    data = read_document(path, limits)
    if not isinstance(data, dict):
        raise CapabilityError.at(
            Location(file, 1, 1), "a capability file must be a YAML mapping that starts with 'naftiko:'"
        )
    ctx = Context(file, dialect_of(data))
    capability = _capability(Map(ctx, data, "", Location(file, 1, 1)), file)
    if ctx.problems:
        raise CapabilityError(ctx.problems)
    check_skills(capability)
    if capability.imports:
        imported = tuple(_import(entry, Path(file).parent, limits) for entry in capability.imports)
        capability = replace(capability, consumes=capability.consumes + imported)
    return capability


def _import(entry: spec.ConsumesImport, base: Path, limits: ReadLimits) -> spec.Consumes:
    """Bring in one namespace of a shared consumes file, renamed to `as` when given."""
    location = entry.location
    if location.startswith("file://"):
        location = location[len("file://") :]
    path = Path(location) if Path(location).is_absolute() else base / location
    where = Location(entry.where.file, entry.where.line, entry.where.column, f"{entry.where.path}.location")
    if not path.is_file():
        raise CapabilityError.at(where, f"imported file not found: {path}")
    data = read_document(path, limits)
    if not isinstance(data, dict) or not isinstance(data.get("consumes"), list):
        raise CapabilityError.at(where, f"{path} is not a shared consumes file (it needs a top-level 'consumes' list)")
    ctx = Context(str(path), dialect_of(data))
    entries = Map(ctx, data, "", Location(str(path), 1, 1)).items("consumes", consumes)
    if ctx.problems:
        raise CapabilityError(ctx.problems)
    for found in entries:
        if isinstance(found, spec.Consumes) and found.namespace == entry.import_:
            return replace(found, namespace=entry.as_ or found.namespace)
    names = ", ".join(e.namespace for e in entries if isinstance(e, spec.Consumes)) or "none"
    raise CapabilityError.at(
        Location(entry.where.file, entry.where.line, entry.where.column, f"{entry.where.path}.import"),
        f"{path} has no consumes namespace '{entry.import_}' (it has: {names})",
    )


DIALECTS = {"naftiko": "1.0.0-alpha", "ikanos": "1.0.0-beta"}
"""The root key of each dialect read, and the version prefix it is read as (alpha2, beta5)."""


def dialect_of(data: object) -> str:
    """`ikanos` for a document whose root says `ikanos:` (and not `naftiko:`), else `naftiko`."""
    return "ikanos" if isinstance(data, dict) and "ikanos" in data and "naftiko" not in data else "naftiko"


def _capability(root: Map, path: str) -> spec.Capability:
    dialect = root.ctx.dialect
    root.known(dialect, "info", "binds", "capability", "consumes")
    version = root.str(dialect, required=True) or ""
    if version and not version.startswith(DIALECTS[dialect]):
        known = "1.0.0-alpha2" if dialect == "naftiko" else "1.0.0-beta5"
        root.ctx.warn(root.loc(dialect), f"spec version '{version}' is not {DIALECTS[dialect]}*; reading it as {known}")
    info = root.map("info")
    body = root.map("capability")
    consumes_owner = body if body is not None else root
    if body is None and not root.has("consumes"):
        root.missing("capability", "the capability: its consumes and exposes")
    if body is not None:
        body.known("binds", "exposes", "consumes", "aggregates")
    entries = consumes_owner.items("consumes", consumes)
    binds = root.items("binds", _binding) + (body.items("binds", _binding) if body else ())
    exposed: tuple[spec.Exposes, ...] = body.items("exposes", exposes) if body else ()
    _one_control(root.ctx, exposed)
    return spec.Capability(
        path=path,
        version=version,
        where=root.where,
        info=_info(info) if info else None,
        binds=binds,
        consumes=tuple(e for e in entries if isinstance(e, spec.Consumes)),
        imports=tuple(e for e in entries if isinstance(e, spec.ConsumesImport)),
        exposes=exposed,
        aggregates=body.items("aggregates", aggregate) if body else (),
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
