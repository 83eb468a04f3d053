"""naftiko's engine: capability files → spec model → operation registry → exposed calls → runtime.

The stages, in the order data flows through them:

    spec/        YAML files read into the typed spec model, every problem found once, with its position
    registry/    every consumed operation compiled: parameters, bodies, credentials, addressable as `ns.op`
    upstream/    the wire: the prepared request, the HTTP/1.1 pool, proxies, upstream auth
    formats/     the answer formats an operation may declare (XML, YAML, CSV, HTML, Markdown) as data
    calls/       what an exposed operation, tool or function does: one call, steps, output mapping
    bindings.py  `binds` resolved into values at start-up
    runtime.py   the Runtime, owning all of the above for one set of capability files

Beside them, used by every stage: `errors` (the one hierarchy), `limits`, `observe` (the hook metrics
and traces sit behind), `templates` (Mustache),
`jsonpath` and `jsoncodec`. Imports go one way, checked by `lint-imports` (pyproject.toml):
runtime over calls and bindings, over the registry, over upstream, spec and formats, over the shared
modules; no stage imports the runtime.

Adapters import only from this module: the names below are the seam between the engine and the
edges (REST, MCP, skills, the command line). Library users want `naftiko` itself.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from .calls import NO_JSON, ExposedCall, Outcome
from .calls.pages import PageWalk
from .calls.shapes import Shape, answer_shape, compile_fits
from .errors import (
    CapabilityError,
    Location,
    NaftikoError,
    NotSupported,
    Problem,
    RequestError,
    RequestTooLarge,
    UnknownOperation,
    UpstreamError,
    UpstreamTimeout,
    UpstreamUnavailable,
    OpenApiError,
    answer_for,
)
from .jsoncodec import RawJSON, dumps, loads, passthrough
from .jsonpath import compile_path
from .limits import Limits, describe
from .observe import InboundCall, Observer, UpstreamCall
from .openapi.exporter import export_openapi, rest_blocks
from .registry import Forwarder, Scope, with_aliases
from .runtime import Runtime, base_uri_variable, gc_paused
from .spec import (
    GREEDY_VARIABLE,
    PATH_VARIABLE,
    Authentication,
    Capability,
    Exposes,
    Forward,
    InputParameter,
    ControlExposes,
    describe_shared,
    load_documents,
    McpExposes,
    Observability,
    Prompt,
    ReadLimits,
    Resource,
    ResourceServer,
    RestExposes,
    Semantics,
    Skill,
    SkillExposes,
    SkillTool,
    Tool,
    ToolHints,
    ToolParameter,
    load_capabilities,
    path_segments,
)
from .templates import MISSING, MissingValue, Template
from .upstream import UpstreamResponse

__all__ = [
    # loading and running
    "Runtime",
    "load_capabilities",
    "load_documents",
    "describe_shared",
    "ReadLimits",
    "Limits",
    "describe",
    "base_uri_variable",
    "gc_paused",
    # observing calls (metrics, traces)
    "Observer",
    "InboundCall",
    "UpstreamCall",
    # the spec model the adapters mount
    "Capability",
    "Exposes",
    "RestExposes",
    "ControlExposes",
    "McpExposes",
    "Observability",
    "SkillExposes",
    "Authentication",
    "InputParameter",
    "Forward",
    "Tool",
    "ToolHints",
    "ToolParameter",
    "Resource",
    "ResourceServer",
    "Prompt",
    "Semantics",
    "Skill",
    "SkillTool",
    "GREEDY_VARIABLE",
    "PATH_VARIABLE",
    "path_segments",
    # calling
    "ExposedCall",
    "Outcome",
    "PageWalk",  # every page of a paginated call, streamed (engine/calls/pages.py)
    "NO_JSON",
    "Shape",  # what a call answers, as JSON Schema (MCP outputSchema)
    "answer_shape",
    "compile_fits",
    "export_openapi",  # OpenAPI 3.1 of a REST exposes block (engine/openapi/exporter.py)
    "rest_blocks",
    "convert_file",  # Naftiko ⇄ Ikanos (engine/spec/convert.py)
    "convert_text",
    "Forwarder",
    "UpstreamResponse",
    "Scope",
    "with_aliases",
    "Template",
    "MISSING",
    "MissingValue",
    "compile_path",
    # JSON in and out
    "dumps",
    "loads",
    "passthrough",
    "RawJSON",
    # errors
    "NaftikoError",
    "CapabilityError",
    "Problem",
    "Location",
    "RequestError",
    "RequestTooLarge",
    "UnknownOperation",
    "UpstreamError",
    "UpstreamTimeout",
    "UpstreamUnavailable",
    "NotSupported",
    "answer_for",
    # OpenAPI in (engine/openapi/importer.py)
    "import_openapi",
    "Imported",
    "ImportLimits",
    "OpenApiError",
]

if TYPE_CHECKING:
    from .openapi.importer import Imported, import_openapi
    from .openapi.source import ImportLimits
    from .spec.convert import convert_file, convert_text

_ON_USE = {
    "Imported": ".openapi.importer",
    "import_openapi": ".openapi.importer",
    "ImportLimits": ".openapi.source",
    "convert_file": ".spec.convert",
    "convert_text": ".spec.convert",
}
"""The command line's one-off jobs (import, convert), imported when first asked for: urllib, email and
ruamel's writer are not worth a serving process's start-up (about 12 ms)."""


def __getattr__(name: str) -> Any:
    module = _ON_USE.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value
