"""The fixed lists a backend serves, in their wire form and cut into pages.

`protocol.McpProtocol` builds the wire form of every tool, resource, resource template and
prompt once, at construction (the lists never change), and answers each `*/list` request
with one `Pages.page`: a slice of those dicts and the cursor of the next.
"""

from __future__ import annotations

import base64
from typing import Any

from .backend import INVALID_PARAMS, McpError, McpPrompt, McpResource, McpTool
from .outputs import OutputTool

__all__ = ["Pages", "prompt_wire", "put", "resource_wire", "tool_wire"]


def put(target: dict[str, Any], key: str, value: Any) -> None:
    """Set `key` only to a value: a wire form leaves out the fields that are not set."""
    if value is not None:
        target[key] = value


def tool_wire(tool: McpTool, modern: bool = False) -> dict[str, Any]:
    wire: dict[str, Any] = {"name": tool.name}
    put(wire, "title", tool.title)
    put(wire, "description", tool.description)
    wire["inputSchema"] = tool.input_schema
    if isinstance(tool, OutputTool) and tool.output is not None:  # each era's own root rule (outputs.py)
        wire["outputSchema"] = tool.output.modern_schema if modern else tool.output.legacy_schema
    if tool.annotations:
        wire["annotations"] = tool.annotations
    return wire


def resource_wire(resource: McpResource) -> dict[str, Any]:
    wire: dict[str, Any] = {}
    if resource.uri_template is not None:
        wire["uriTemplate"] = resource.uri_template
    else:
        wire["uri"] = resource.uri
    wire["name"] = resource.name
    put(wire, "title", resource.title)
    put(wire, "description", resource.description)
    put(wire, "mimeType", resource.mime_type)
    return wire


def prompt_wire(prompt: McpPrompt) -> dict[str, Any]:
    wire: dict[str, Any] = {"name": prompt.name}
    put(wire, "title", prompt.title)
    put(wire, "description", prompt.description)
    if prompt.arguments:
        arguments = []
        for argument in prompt.arguments:
            item: dict[str, Any] = {"name": argument.name}
            put(item, "title", argument.title)
            put(item, "description", argument.description)
            item["required"] = argument.required
            arguments.append(item)
        wire["arguments"] = arguments
    return wire


class Pages:
    """A fixed list cut into pages, addressed by opaque cursors.

    The lists never change, so every valid cursor is known up front: a cursor is simply a key
    of `_offsets`, and anything else is invalid (-32602).
    """

    def __init__(self, kind: str, key: str, items: list[dict[str, Any]], page_size: int) -> None:
        self.key = key
        self._items = items
        self._size = page_size
        self._offsets = {self._cursor(kind, o): o for o in range(page_size, len(items), page_size)}
        self._next = {o: c for c, o in self._offsets.items()}

    @staticmethod
    def _cursor(kind: str, offset: int) -> str:
        return base64.urlsafe_b64encode(f"{kind}:{offset}".encode()).decode().rstrip("=")

    def page(self, params: dict[str, Any]) -> dict[str, Any]:
        cursor = params.get("cursor")
        if cursor is None:
            offset = 0
        else:
            offset = self._offsets.get(cursor, -1) if isinstance(cursor, str) else -1
            if offset < 0:
                raise McpError(INVALID_PARAMS, "Invalid params: invalid cursor")
        end = offset + self._size
        result: dict[str, Any] = {self.key: self._items[offset:end]}
        following = self._next.get(end)
        if following is not None:
            result["nextCursor"] = following
        return result
