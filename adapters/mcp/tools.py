"""A capability's MCP tools: the input schema and hints each is listed with, and its results.

Tools go through the same registry as REST. A tool that declares no `inputParameters` still
gets a truthful input schema, derived from its `with` references and the consumed
operation's parameters (types, descriptions, required; every path variable required). A
call's `Outcome` becomes a `ToolResult` (`tool_result`): text and structured content, or an
upstream's error status as an `isError` result.
"""

from __future__ import annotations

import json
from typing import Any

from ...engine import NO_JSON, ExposedCall, Outcome, Semantics, Tool, ToolHints, ToolParameter, passthrough
from ...engine import answer_shape

from .backend import McpTool, ToolResult
from .errors import ERROR_META, status_error
from .outputs import OutputTool, binary_result, tool_output

__all__ = ["JSON_TYPES", "input_schema", "mcp_tool", "tool_result"]

JSON_TYPES = {"string", "integer", "number", "boolean", "object", "array"}


def mcp_tool(tool: Tool, call: ExposedCall) -> McpTool:
    """How `tool`, served by `call`, is listed: its name, schema, description and hints."""
    function = call.function
    return OutputTool(  # an McpTool with its outputSchema (outputs.py)
        output=tool_output(answer_shape(call, tool.invocation)),
        name=tool.name or (function.name if function else ""),
        input_schema=input_schema(tool.input_parameters, call),
        description=tool.description or (function.description if function else None),
        title=tool.label,
        annotations=_hints(tool.hints, tool.label, function.semantics if function else None),
    )


def _hints(hints: ToolHints | None, title: str | None, semantics: Semantics | None = None) -> dict[str, Any] | None:
    """Only the hints that are set, as the reference engine lists them.

    An aggregate function's semantics give defaults (safe → read-only and not destructive;
    idempotent copied); the tool's own hints override them field by field.
    """
    annotations: dict[str, Any] = {}
    if title:
        annotations["title"] = title
    if semantics is not None:
        if semantics.safe is not None:
            annotations["readOnlyHint"] = semantics.safe
            if semantics.safe:
                annotations["destructiveHint"] = False
        if semantics.idempotent is not None:
            annotations["idempotentHint"] = semantics.idempotent
    if hints is not None:
        pairs = (
            ("readOnlyHint", hints.read_only),
            ("destructiveHint", hints.destructive),
            ("idempotentHint", hints.idempotent),
            ("openWorldHint", hints.open_world),
        )
        annotations.update({key: value for key, value in pairs if value is not None})
    return annotations or None


def _property(type_: str | None, description: str | None) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": type_ if type_ in JSON_TYPES else "string"}
    if description:
        schema["description"] = description
    return schema


def input_schema(declared: tuple[ToolParameter, ...], call: ExposedCall) -> dict[str, Any]:
    """Declared inputParameters win; otherwise derive from `with` and the consumed operation."""
    properties: dict[str, Any] = {}
    required: list[str] = []
    pager = call.pager  # a paginated call offers allPages/maxPages (engine/calls/pages.py)
    if call.function is not None and call.delegate is not None:
        declared = declared or call.function.input_parameters
        call = call.delegate
    if declared:
        for param in declared:
            properties[param.name] = _property(param.type, param.description)
            if param.required:
                required.append(param.name)
    elif call.operation is not None:
        references = call.references()
        fixed = {key for key, _ in call.rules.literals} | {key for key, _ in call.rules.templates}
        for upstream in call.operation.parameters():  # the consumed operation's, not a declared ToolParameter
            if upstream.name in fixed or upstream.template is not None or upstream.constant is not None:
                continue
            name = references.get(upstream.name, upstream.name)
            properties[name] = _property(upstream.type, upstream.description)
            if upstream.required and name not in required:
                required.append(name)
        for _, template in call.rules.templates:
            for name in template.names:
                if "." not in name:
                    properties.setdefault(name, {"type": "string"})
    if pager is not None:
        properties.update(pager.arguments())
    schema: dict[str, Any] = {"type": "object", "properties": properties}
    if required:
        schema["required"] = required
    if not properties:
        schema["additionalProperties"] = False
    return schema


def tool_result(namespace: str, outcome: Outcome) -> ToolResult:
    """Text and structured content; an unmapped JSON answer is both, as its own bytes, never rebuilt."""
    if outcome.status >= 400:
        text, detail = status_error(namespace, outcome)
        return ToolResult.text(text, is_error=True, meta={ERROR_META: detail})
    if outcome.binary:
        return binary_result(outcome, namespace)
    structured = outcome.json if outcome.json is not NO_JSON else None
    utf8 = False  # whether the body decoded strictly, which `passthrough` need not check again
    if outcome.body:
        try:
            text, utf8 = outcome.body.decode("utf-8"), True
        except UnicodeDecodeError:
            text = outcome.body.decode("utf-8", "replace")
    elif structured is not None:
        text = json.dumps(structured, ensure_ascii=False)
    else:
        text = ""
    if structured is None and outcome.content_type == "application/json" and outcome.body and outcome.body.strip():
        try:
            structured = passthrough(outcome.body, utf8)
        except (ValueError, RecursionError) as exc:
            message = f"upstream {namespace} answered JSON that is not valid ({exc})"
            error = {"type": "upstream_error", "upstream": namespace, "message": message}
            return ToolResult.text(message, is_error=True, meta={ERROR_META: error})
    return ToolResult(content=[{"type": "text", "text": text}], structured=structured)
