"""Builders of invocations: what an exposed operation, tool, resource or aggregate function does.

An invocation is a `call` of a consumed operation (with its `with` values), orchestration `steps`
(call, lookup, script) joined by `mappings`, or a `ref` to an aggregate function; `engine.calls`
runs it. Aggregates are here too: named functions, each an invocation with tool parameters, that
exposed tools and operations `ref`. The `exposed` builders read their entries through
`invocation_of` and `tool_parameter`; outputs come from `consumed`, call and mapping checks from `checks`.
"""

from __future__ import annotations

from . import model as spec
from .checks import check_call, check_mapping_targets, check_template, check_with
from .consumed import output_parameter
from .fields import Map, is_required, plain, strings


def _step(m: Map) -> spec.Step | None:
    m.known(
        "type",
        "name",
        "call",
        "with",
        "index",
        "match",
        "lookupValue",
        "outputParameters",
        "language",
        "location",
        "file",
        "dependencies",
    )
    type_ = m.str("type", required=True, choices=("call", "lookup", "script"))
    name = m.str("name", required=True)
    if type_ == "call":
        m.str("call", required=True)
    elif type_ == "lookup":
        for key in ("index", "match", "lookupValue"):
            m.str(key, required=True)
    with_ = m.map("with")
    check_with(m)
    outputs = strings(m, "outputParameters") if type_ == "lookup" else ()
    lookup_value = m.str("lookupValue")
    if lookup_value is not None and not lookup_value.startswith("$."):
        check_template(m, "lookupValue")
    if type_ is None or name is None:
        return None
    return spec.Step(
        type=type_,
        name=name,
        where=m.where,
        call=m.str("call"),
        with_=plain(with_.data) if with_ else {},
        index=m.str("index"),
        match=m.str("match"),
        lookup_value=lookup_value,
        output_parameters=outputs,
    )


def _mapping(m: Map) -> spec.StepMapping | None:
    m.known("targetName", "value")
    target, value = m.str("targetName", required=True), m.str("value", required=True)
    if value is not None and not value.startswith("$."):
        m.bad("value", f"a mapping 'value' must start with '$.<step name>'; got '{value}'")
        return None
    if target is None or value is None:
        return None
    return spec.StepMapping(target_name=target, value=value, where=m.where)


def invocation_of(m: Map) -> spec.Invocation:
    """The invocation an entry holds: its `call` and `with`, `steps` and `mappings`, or `ref`."""
    data = m.data  # its keys read directly: no dialect spells them its own way (fields.IKANOS_SPELLINGS)
    with_ = m.map("with") if "with" in data else None
    if with_ is not None:
        check_with(m)
    mappings = m.items("mappings", _mapping) if "mappings" in data else ()
    if mappings:
        check_mapping_targets(m, mappings)
    return spec.Invocation(
        call=m.str("call"),
        with_=plain(with_.data) if with_ else {},
        steps=m.items("steps", _step) if "steps" in data else (),
        mappings=mappings,
        ref=m.str("ref") if "ref" in data else None,
        output_parameters=m.items("outputParameters", output_parameter),
        ref_where=m.loc("ref", value=True) if "ref" in data else None,
    )


def tool_parameter(m: Map) -> spec.ToolParameter | None:
    """A parameter of an MCP tool or of an aggregate function (which tools `ref`)."""
    m.known("name", "type", "description", "required")
    name = m.str("name", required=True)
    if name is None:
        return None
    return spec.ToolParameter(
        name=name,
        type=m.str("type", default="string") or "string",
        description=m.str("description"),
        required=is_required(m, True),
        where=m.where,
    )


def _aggregate_function(m: Map) -> spec.AggregateFunction | None:
    m.known(
        "name",
        "description",
        "semantics",
        "inputParameters",
        "call",
        "with",
        "steps",
        "mappings",
        "outputParameters",
        "ref",
    )
    name, description = m.str("name", required=True), m.str("description", required=True)
    semantics = m.map("semantics")
    invocation = invocation_of(m)
    check_call(m, invocation)
    if name is None:
        return None
    if semantics is not None:
        semantics.known("safe", "idempotent", "cacheable")
    return spec.AggregateFunction(
        name=name,
        description=description,
        where=m.where,
        invocation=invocation,
        semantics=spec.Semantics(semantics.bool("safe"), semantics.bool("idempotent"), semantics.bool("cacheable"))
        if semantics
        else None,
        input_parameters=m.items("inputParameters", tool_parameter),
    )


def aggregate(m: Map) -> spec.Aggregate | None:
    m.known("label", "namespace", "functions")
    label, namespace = m.str("label", required=True), m.str("namespace", required=True)
    functions = m.items("functions", _aggregate_function, required=True)
    if namespace is None:
        return None
    return spec.Aggregate(label=label or namespace, namespace=namespace, where=m.where, functions=functions)
