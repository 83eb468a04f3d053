"""What a tool answers: its `outputSchema` in each protocol era, results held to it, binary content.

A tool whose answer has a shape known at load time (`naftiko.engine.answer_shape`: mapped
outputParameters, through `ref` and `steps`/`mappings`) is listed with an `outputSchema`. The two
eras differ (mcp.md §1.6–1.7): in 2025-x the schema's root must be an object and so must
`structuredContent`, so an answer that is not always an object (an array, a scalar, something that
may be null) is listed and sent as `{"result": ...}`, as the SDK's FastMCP does; 2026-07-28
allows any schema and any JSON value, so there the schema and the value are the answer's own.

Both schemas are built once; per call `conform` checks only what the mapper could not guarantee
(the types of extracted values), and an answer that does not fit is an `isError` result naming the
place, never structured content a strict client would reject. An empty answer stands for the
shape's `blank()` (null, or the object with its keys null); a body that is not JSON cannot be a
structured answer and is an error too.

A binary answer (`outputRawFormat: binary`) becomes image or audio content by its media type,
otherwise an embedded resource `blob`, base64 in every case.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Any, Final
from collections.abc import Callable

from ...engine import Outcome, RawJSON, Shape, compile_fits, dumps

from .backend import McpTool, ToolResult
from .errors import ERROR_META

__all__ = ["OutputTool", "ToolOutput", "binary_result", "conform", "tool_output"]

_NULL: Final = RawJSON(b"null", False)  # structuredContent that is present and null (2026-07-28)


@dataclass(frozen=True, slots=True)
class ToolOutput:
    """A tool's answer shape and its `outputSchema` in each era, built once."""

    shape: Shape
    legacy_schema: dict[str, Any]  # 2025-x: root type object; `{"result": ...}` when the answer is not always one
    modern_schema: dict[str, Any]  # 2026-07-28: the answer's own schema
    fits: Callable[[Any], bool]  # `shape.check(value) is None`, compiled: the per-call check

    @property
    def wrapped(self) -> bool:
        return not self.shape.is_object


@dataclass(frozen=True, slots=True)
class OutputTool(McpTool):
    """A listed tool with what it answers (None: no outputSchema)."""

    output: ToolOutput | None = None


def tool_output(shape: Shape | None) -> ToolOutput | None:
    """The output of a tool answering `shape`; None when the shape is not known."""
    if shape is None:
        return None
    schema = shape.schema()
    if shape.is_object:
        return ToolOutput(shape, schema, schema, compile_fits(shape))
    legacy = {"type": "object", "properties": {"result": schema}, "required": ["result"]}
    return ToolOutput(shape, legacy, schema, compile_fits(shape))


def conform(output: ToolOutput, result: ToolResult, modern: bool) -> ToolResult:
    """`result` with structured content that fits `output` in this era, or an isError result saying why not."""
    if result.is_error:
        return result
    structured = result.structured
    if structured is None:
        texts = [item for item in result.content if item.get("type") == "text"]
        if any(item.get("text") for item in texts) or len(texts) != len(result.content):
            return _mismatch("the upstream answered a body that is not JSON, so the declared output cannot be built")
        value = output.shape.blank()
        result.content = [{"type": "text", "text": dumps(value).decode()}]
    else:
        value = structured.value() if isinstance(structured, RawJSON) else structured
        if not output.fits(value):  # the message (with the path) is built only for an answer that fails
            return _mismatch(f"the answer does not match the tool's outputSchema {output.shape.check(value)}")
    if not modern and output.wrapped:
        result.structured = {"result": value}
    elif value is None:
        result.structured = _NULL
    elif structured is None:
        result.structured = value
    return result


def _mismatch(message: str) -> ToolResult:
    return ToolResult.text(message, is_error=True, meta={ERROR_META: {"type": "output_mismatch", "message": message}})


def binary_result(outcome: Outcome, namespace: str) -> ToolResult:
    """A binary answer as MCP content: image or audio by its media type, else an embedded resource blob."""
    media = outcome.content_type or "application/octet-stream"
    data = base64.b64encode(outcome.body or b"").decode("ascii")
    major = media.split("/", 1)[0]
    if major in ("image", "audio"):
        return ToolResult(content=[{"type": major, "data": data, "mimeType": media}])
    resource = {"uri": f"naftiko://{namespace}/answer", "mimeType": media, "blob": data}
    return ToolResult(content=[{"type": "resource", "resource": resource}])
