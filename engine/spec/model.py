"""The spec model: plain typed data for what a capability file says.

Built and checked once by `engine.spec.loader`; everything downstream (registry, adapters) reads
these objects, never raw YAML. Field names follow the file's keys in snake_case; `where`
remembers the file position so later stages can still point at the source.
"""

from __future__ import annotations

import re
import dataclasses
import operator
import reprlib
from dataclasses import field
from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING, Any

from ..errors import Location

JSON = Any

if TYPE_CHECKING:
    from dataclasses import dataclass
else:

    def dataclass(*, frozen: bool, slots: bool) -> Any:
        """dataclasses' own, writing none of the methods it would compile for each class.

        Its generated `__init__`, `__repr__`, `__eq__`, `__hash__` and frozen `__setattr__` /
        `__delattr__` cost an `exec` each: 16 ms of start-up for these 38 classes. `_quick_inits`
        below writes every model class's `__init__` (all in one `exec`); `_shared_methods` gives each
        the others, built from its field names with no compiling, behaving as dataclasses' do.
        """
        if not (frozen and slots):
            raise TypeError("a model class is a frozen, slotted dataclass")

        def make(cls: type) -> type:
            made = dataclasses.dataclass(init=False, repr=False, eq=False, slots=True)(cls)
            _shared_methods(made)
            return made

        return make


def _shared_methods(cls: type) -> None:
    """`__repr__`, `__eq__`, `__hash__` and the frozen `__setattr__`/`__delattr__` dataclasses would write
    for a frozen class: the same answers (the hash too: that of the fields' tuple), without an `exec`."""
    names = tuple(f.name for f in dataclasses.fields(cls))
    values: Callable[[Any], tuple[Any, ...]]
    if len(names) > 1:
        values = operator.attrgetter(*names)
    else:  # attrgetter gives a lone value, not a tuple, for one name (and takes no empty list)
        values = partial(_few, names)

    @reprlib.recursive_repr()
    def __repr__(self: Any) -> str:
        shown = ", ".join(f"{name}={value!r}" for name, value in zip(names, values(self), strict=True))
        return f"{self.__class__.__qualname__}({shown})"

    def __eq__(self: Any, other: Any) -> Any:
        if other.__class__ is self.__class__:
            return values(self) == values(other)
        return NotImplemented

    def __hash__(self: Any) -> int:
        return hash(values(self))

    def __setattr__(self: Any, name: str, value: Any) -> None:
        if name in names:
            raise dataclasses.FrozenInstanceError(f"cannot assign to field {name!r}")
        object.__setattr__(self, name, value)  # no such slot: AttributeError

    def __delattr__(self: Any, name: str) -> None:
        if name in names:
            raise dataclasses.FrozenInstanceError(f"cannot delete field {name!r}")
        object.__delattr__(self, name)

    for method in (__repr__, __eq__, __hash__, __setattr__, __delattr__):
        method.__qualname__ = f"{cls.__qualname__}.{method.__name__}"
        setattr(cls, method.__name__, method)


def _few(names: tuple[str, ...], obj: Any) -> tuple[Any, ...]:
    return tuple(getattr(obj, name) for name in names)


PATH_VARIABLE = re.compile(r"^\{\{?\s*([A-Za-z_][\w.-]*)\s*\}?\}$")
"""One whole segment of an exposed REST path that is a variable: `{name}` or `{{name}}`."""
GREEDY_VARIABLE = "path"
"""A final `{path}` takes the rest of the path (forward resources)."""


def path_segments(path: str) -> list[str]:
    """The segments of a path as the router sees them: empty ones (trailing or doubled `/`) dropped."""
    return [segment for segment in path.strip("/").split("/") if segment]


def route_shape(path: str) -> tuple[str, ...]:
    """What the router tells apart: literal segments, variables (whatever their names), a final `{path}`."""
    segments = path_segments(path)
    shape: list[str] = []
    for index, segment in enumerate(segments):
        match = PATH_VARIABLE.match(segment) if "{" in segment else None
        if match is None:
            shape.append(segment)
        elif match.group(1) == GREEDY_VARIABLE and index == len(segments) - 1:
            shape.append("{path...}")
        else:
            shape.append("{}")
    return tuple(shape)


@dataclass(frozen=True, slots=True)
class Binding:
    """A `binds` entry: variables read from the environment or from a file."""

    namespace: str
    keys: dict[str, str]
    location: str | None
    description: str | None
    where: Location


@dataclass(frozen=True, slots=True)
class InputParameter:
    """An input parameter, consumed or exposed; the seed's extra type/required keys are kept."""

    name: str
    in_: str
    where: Location
    value: JSON = None
    type: str | None = None
    description: str | None = None
    required: bool = False
    pattern: str | None = None


@dataclass(frozen=True, slots=True)
class OutputParameter:
    """An output parameter: a JSONPath `mapping`, a constant `value`, or nested shape."""

    type: str
    where: Location
    name: str | None = None
    mapping: str | None = None
    value: JSON = None
    const: JSON = None
    properties: dict[str, OutputParameter] | None = None
    items: OutputParameter | None = None
    description: str | None = None  # listed in derived output schemas (MCP outputSchema)


@dataclass(frozen=True, slots=True)
class ResourceServer:
    """An exposed block's `oauth2` authentication: it accepts the access tokens one authorization server issues."""

    authorization_server: str  # authorizationServerUri: the issuer, whose metadata names its keys
    resource: str  # this server's canonical URI (RFC 8707, RFC 9728), the audience unless `audience` is set
    where: Location
    scopes: tuple[str, ...] = ()  # scopes a token must all carry (adapters/oauth.py)
    audience: str | None = None
    token_validation: str = "jwks"  # jwks or introspection


@dataclass(frozen=True, slots=True)
class Authentication:
    type: str
    where: Location
    token: str | None = None
    username: str | None = None
    password: str | None = None
    key: str | None = None
    value: str | None = None
    placement: str | None = None
    extra: dict[str, JSON] = field(default_factory=dict)
    resource_server: ResourceServer | None = None  # an exposed block's oauth2


@dataclass(frozen=True, slots=True)
class Pagination:
    """A consumed operation's `pagination`: how its next page is reached (engine/spec/paging.py)."""

    type: str  # cursor | page | offset | link
    where: Location
    items: str = "$"  # JSONPath to a page's items
    next_cursor: str | None = None  # cursor: JSONPath to the next cursor in the body
    parameter: str | None = None  # the declared input carrying the cursor, page number or offset
    size_parameter: str | None = None  # page/offset: the declared input carrying page_size
    page_size: int | None = None
    first: int = 0  # the first page number (page, default 1) or offset (offset, default 0)
    total: str | None = None  # page/offset: JSONPath to the total number of items
    max_pages: int = 100
    max_items: int = 10_000
    parameter_where: Location | None = None
    size_where: Location | None = None


@dataclass(frozen=True, slots=True)
class Retry:
    """A `resilience.retry` block (engine/spec/resilience.py); None: not written (the namespace's, or the default)."""

    where: Location
    max_attempts: int | None = None
    initial_delay: float | None = None  # seconds
    multiplier: float | None = None
    max_delay: float | None = None  # seconds
    jitter: str | None = None  # full | none
    statuses: tuple[int, ...] | None = None
    idempotent: bool | None = None  # operation level only


@dataclass(frozen=True, slots=True)
class Resilience:
    """A `resilience` block of a consumes namespace or a consumed operation (engine/spec/resilience.py)."""

    where: Location
    connect_timeout: float | None = None  # seconds; namespace level only
    read_timeout: float | None = None
    total_timeout: float | None = None
    retry: Retry | None = None
    failure_threshold: int | None = None  # circuitBreaker, namespace level only
    open_duration: float | None = None
    max_concurrent: int | None = None  # bulkhead, namespace level only
    max_queue: int | None = None
    queue_timeout: float | None = None


@dataclass(frozen=True, slots=True)
class Cache:
    """A `cache` block of a consumes namespace or a consumed operation (engine/spec/caching.py); None: not written."""

    where: Location
    ttl: float | None = None  # seconds
    max_entries: int | None = None  # namespace level only
    max_bytes: int | None = None  # namespace level only
    max_entry_bytes: int | None = None
    respect_cache_control: bool | None = None
    enabled: bool = True  # `cache: false` on an operation: its namespace's cache is off for it
    stale_if_error: float | None = None  # seconds a stale entry may answer for a failed refetch


@dataclass(frozen=True, slots=True)
class ConsumedOperation:
    name: str
    method: str
    where: Location
    label: str | None = None
    description: str | None = None
    input_parameters: tuple[InputParameter, ...] = ()
    output_raw_format: str | None = None
    output_schema: str | None = None
    output_parameters: tuple[OutputParameter, ...] = ()
    body: JSON = None
    output_media_type: str | None = None  # outputMediaType: the answer's Content-Type, whatever the upstream says
    max_binary_size: int | None = None  # maxBinarySize in bytes: a binary answer past it fails
    pagination: Pagination | None = None  # how to reach the next page (engine/spec/paging.py)
    resilience: Resilience | None = None  # retries and timeouts of this operation (engine/spec/resilience.py)
    cache: Cache | None = None  # response caching of this operation (engine/spec/caching.py)


@dataclass(frozen=True, slots=True)
class ConsumedResource:
    name: str
    path: str
    where: Location
    operations: tuple[ConsumedOperation, ...]
    label: str | None = None
    description: str | None = None
    input_parameters: tuple[InputParameter, ...] = ()


@dataclass(frozen=True, slots=True)
class Consumes:
    """An inline `consumes` entry of type http: one upstream API under one namespace."""

    namespace: str
    base_uri: str
    where: Location
    resources: tuple[ConsumedResource, ...]
    description: str | None = None
    input_parameters: tuple[InputParameter, ...] = ()
    authentication: Authentication | None = None
    resilience: Resilience | None = None  # engine/spec/resilience.py
    cache: Cache | None = None  # engine/spec/caching.py


@dataclass(frozen=True, slots=True)
class Import:
    """An entry of `consumes`, `exposes`, `aggregates` or `binds` that brings in one namespaced entry
    of a shared file (`{from, import, as}`; alpha2 writes `location` for `from`). engine/spec/imports.py"""

    location: str
    import_: str
    where: Location
    as_: str | None = None
    kind: str = "consumes"
    description: str | None = None
    places: dict[str, Location] = field(default_factory=dict)  # where `from`, `import`, `as` were written

    def at(self, key: str) -> Location:
        """Where `key` of this entry was written (the entry's own place when it was not)."""
        return self.places.get(key) or self.where.key(key)


@dataclass(frozen=True, slots=True)
class Step:
    """An orchestration step: `call` a consumed operation, or `lookup` in an earlier output."""

    type: str
    name: str
    where: Location
    call: str | None = None
    with_: dict[str, JSON] = field(default_factory=dict)
    index: str | None = None
    match: str | None = None
    lookup_value: str | None = None
    output_parameters: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class StepMapping:
    """`mappings` entry: copy `$.<step>.<path>` to a (dotted) target name."""

    target_name: str
    value: str
    where: Location


@dataclass(frozen=True, slots=True)
class Invocation:
    """What an exposed operation or tool does: call a consumed operation, run steps, or ref."""

    call: str | None = None
    with_: dict[str, JSON] = field(default_factory=dict)
    steps: tuple[Step, ...] = ()
    mappings: tuple[StepMapping, ...] = ()
    ref: str | None = None
    output_parameters: tuple[OutputParameter, ...] = ()
    ref_where: Location | None = None  # where the `ref` value was written, for cycle errors


@dataclass(frozen=True, slots=True)
class ExposedOperation:
    method: str
    where: Location
    invocation: Invocation
    name: str | None = None
    label: str | None = None
    description: str | None = None
    input_parameters: tuple[InputParameter, ...] = ()


@dataclass(frozen=True, slots=True)
class Forward:
    target_namespace: str
    trusted_headers: tuple[str, ...]
    where: Location


@dataclass(frozen=True, slots=True)
class ExposedResource:
    path: str
    where: Location
    operations: tuple[ExposedOperation, ...] = ()
    name: str | None = None
    label: str | None = None
    description: str | None = None
    input_parameters: tuple[InputParameter, ...] = ()
    forward: Forward | None = None


@dataclass(frozen=True, slots=True)
class RestExposes:
    namespace: str
    port: int
    where: Location
    resources: tuple[ExposedResource, ...] = ()
    address: str | None = None
    authentication: Authentication | None = None
    max_binary_size: int | None = None  # maxBinarySize: binary answers of operations without their own
    type: str = "rest"


@dataclass(frozen=True, slots=True)
class ToolHints:
    read_only: bool | None = None
    destructive: bool | None = None
    idempotent: bool | None = None
    open_world: bool | None = None


@dataclass(frozen=True, slots=True)
class ToolParameter:
    name: str
    type: str
    description: str | None
    required: bool
    where: Location


@dataclass(frozen=True, slots=True)
class Tool:
    name: str
    where: Location
    invocation: Invocation
    label: str | None = None
    description: str | None = None
    input_parameters: tuple[ToolParameter, ...] = ()
    hints: ToolHints | None = None


@dataclass(frozen=True, slots=True)
class Resource:
    """An MCP resource: dynamic (an invocation) or static files from `location`."""

    name: str
    uri: str
    where: Location
    label: str | None = None
    description: str | None = None
    mime_type: str | None = None
    invocation: Invocation | None = None
    location: str | None = None


@dataclass(frozen=True, slots=True)
class PromptArgument:
    name: str
    description: str | None
    required: bool
    label: str | None = None


@dataclass(frozen=True, slots=True)
class Prompt:
    name: str
    where: Location
    label: str | None = None
    description: str | None = None
    arguments: tuple[PromptArgument, ...] = ()
    template: tuple[tuple[str, str], ...] = ()  # (role, content)
    location: str | None = None


@dataclass(frozen=True, slots=True)
class McpExposes:
    namespace: str
    where: Location
    tools: tuple[Tool, ...]
    port: int | None = None
    address: str | None = None
    transport: str = "http"
    description: str | None = None
    authentication: Authentication | None = None
    resources: tuple[Resource, ...] = ()
    prompts: tuple[Prompt, ...] = ()
    max_binary_size: int | None = None  # maxBinarySize: binary answers of operations without their own
    type: str = "mcp"


@dataclass(frozen=True, slots=True)
class SkillTool:
    """A skill's tool: derived `from` a sibling REST/MCP action, or an instruction file."""

    name: str
    description: str
    where: Location
    source_namespace: str | None = None
    action: str | None = None
    instruction: str | None = None


@dataclass(frozen=True, slots=True)
class Skill:
    name: str
    description: str
    where: Location
    tools: tuple[SkillTool, ...] = ()
    location: str | None = None
    license: str | None = None
    compatibility: str | None = None
    metadata: dict[str, JSON] = field(default_factory=dict)
    allowed_tools: str | None = None
    argument_hint: str | None = None
    user_invocable: bool = True
    disable_model_invocation: bool = False


@dataclass(frozen=True, slots=True)
class SkillExposes:
    """A read-only catalogue of agent skills; it never runs tools itself."""

    namespace: str
    port: int
    where: Location
    skills: tuple[Skill, ...]
    address: str | None = None
    description: str | None = None
    authentication: Authentication | None = None
    type: str = "skill"


@dataclass(frozen=True, slots=True)
class Observability:
    """A control block's `observability`: what is measured and where it is shown (all on by default)."""

    enabled: bool = True
    metrics: bool = True  # metrics.local.enabled: /metrics
    traces: bool = True  # traces.local.enabled: /traces
    trace_buffer: int = 100  # traces.local.buffer-size: completed traces kept for /traces
    sampling: float = 1.0  # traces.sampling: the share of traces recorded
    propagation: str = "w3c"  # traces.propagation: w3c or b3, for upstream calls
    otlp_endpoint: str | None = None  # exporters.otlp.endpoint (a template over the binds)


@dataclass(frozen=True, slots=True)
class ControlExposes:
    """The management plane on its own port: health, status, metrics, traces (the reference's paths)."""

    port: int
    where: Location
    address: str | None = None
    authentication: Authentication | None = None
    health: bool = True  # management.health: /health/live and /health/ready
    info: bool = False  # management.info: /status
    observability: Observability = field(default_factory=Observability)
    namespace: str = "control"  # blocks are named by namespace; a control block has none of its own
    type: str = "control"


Exposes = RestExposes | McpExposes | SkillExposes | ControlExposes


@dataclass(frozen=True, slots=True)
class Semantics:
    safe: bool | None = None
    idempotent: bool | None = None
    cacheable: bool | None = None


@dataclass(frozen=True, slots=True)
class AggregateFunction:
    """A reusable function that REST operations and MCP tools reach through `ref`."""

    name: str
    description: str | None
    where: Location
    invocation: Invocation
    semantics: Semantics | None = None
    input_parameters: tuple[ToolParameter, ...] = ()


@dataclass(frozen=True, slots=True)
class Aggregate:
    label: str
    namespace: str
    where: Location
    functions: tuple[AggregateFunction, ...]


@dataclass(frozen=True, slots=True)
class Info:
    label: str
    description: str | None = None
    tags: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Capability:
    """One loaded capability file."""

    path: str
    version: str
    where: Location
    info: Info | None = None
    binds: tuple[Binding, ...] = ()
    consumes: tuple[Consumes, ...] = ()
    imports: tuple[Import, ...] = ()  # every kind, already resolved into the tuples here
    exposes: tuple[Exposes, ...] = ()
    aggregates: tuple[Aggregate, ...] = ()
    warnings: tuple[str, ...] = ()


Shareable = Consumes | RestExposes | McpExposes | SkillExposes | ControlExposes | Aggregate | Binding
"""What a shared file holds and a capability imports: one entry of one of the four sections."""


@dataclass(frozen=True, slots=True)
class SharedFile:
    """A standalone (leaf) file: `naftiko:`/`ikanos:` and one of `consumes`, `exposes`, `aggregates`,
    `binds`, with no `capability`. Capabilities import its entries by namespace; it is never served."""

    path: str
    version: str
    where: Location
    kind: str
    entries: tuple[Shareable, ...]
    info: Info | None = None
    warnings: tuple[str, ...] = ()


def _quick_inits(classes: list[type]) -> None:
    """Give the frozen, slotted model classes an `__init__` that sets each slot through its descriptor.

    dataclasses' own goes through `object.__setattr__` for every field (frozen classes forbid
    `self.x = x`): 0.8 against 0.5 us for eight fields, and a 10,000-operation file builds some
    200,000 of these objects. Same signature, defaults and factories; the classes stay frozen.
    All are compiled in one `exec` (one a class would cost ~10 ms at import), and dataclasses
    writes none (`dataclass` above), so the model imports in about the time it did with its own.
    """
    names: dict[str, Any] = {"_FACTORY": _FACTORY}
    source: list[str] = []
    for number, cls in enumerate(classes):
        fields = dataclasses.fields(cls)
        if hasattr(cls, "__post_init__") or any(not f.init or f.kw_only or f.name == "self" for f in fields):
            raise TypeError(f"{cls.__name__}: a model class has plain fields only (no __post_init__, kw_only, init)")
        params, lines = [], []
        for f in fields:
            tag = f"{number}_{f.name}"
            names[f"_set_{tag}"] = cls.__dict__[f.name].__set__
            value = f.name
            if f.default is not dataclasses.MISSING:
                names[f"_default_{tag}"] = f.default
                params.append(f"{f.name}=_default_{tag}")
            elif f.default_factory is not dataclasses.MISSING:
                names[f"_factory_{tag}"] = f.default_factory
                params.append(f"{f.name}=_FACTORY")
                value = f"_factory_{tag}() if {f.name} is _FACTORY else {f.name}"
            else:
                params.append(f.name)
            lines.append(f"    _set_{tag}(self, {value})\n")
        source.append(f"def _init_{number}(self, {', '.join(params)}):\n{''.join(lines) or '    pass'}\n")
    exec("".join(source), names)  # noqa: S102 -- text built above from field names only
    for number, cls in enumerate(classes):
        init = names[f"_init_{number}"]
        init.__name__, init.__qualname__ = "__init__", f"{cls.__qualname__}.__init__"
        cls.__init__ = init  # type: ignore[misc]


_FACTORY: Any = object()  # a parameter left to its default_factory
_quick_inits(
    [
        c
        for c in list(globals().values())
        if isinstance(c, type) and dataclasses.is_dataclass(c) and c.__module__ == __name__
    ]
)
