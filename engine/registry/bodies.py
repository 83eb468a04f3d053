"""Request bodies of consumed operations, compiled once and rendered per call into bytes and a content type.

`compile_body` reads every `body` form of the spec (a raw template, or `{type, data}`: JSON,
form-urlencoded, multipart, text, XML, SPARQL) into a `BodyPlan`; `Operation.prepare` renders it
with the call's `Scope`. Structured data keeps its types: a lone `{{name}}` leaf stays a number or
a list, other string leaves are templates.
"""

from __future__ import annotations

import json
import secrets
from typing import Any
from collections.abc import Callable
from urllib.parse import urlencode

from ..templates import MISSING, Template, to_text
from .params import Scope


class _Data:
    """Structured data whose string leaves are templates; a lone `{{name}}` keeps its type."""

    __slots__ = ("render",)

    def __init__(self, data: Any) -> None:
        self.render = _compile_data(data)


def _compile_data(data: Any) -> Callable[[Scope], Any]:
    if isinstance(data, str):
        template = Template.compile(data)
        if template.is_constant:
            return lambda scope: data
        if template.single_name is not None:
            name = template.single_name
            return lambda scope: None if (value := scope.get(name)) is MISSING else value
        return template.render
    if isinstance(data, dict):
        fields = [(str(k), _compile_data(v)) for k, v in data.items()]
        return lambda scope: {k: render(scope) for k, render in fields}
    if isinstance(data, list):
        items = [_compile_data(v) for v in data]
        return lambda scope: [render(scope) for render in items]
    return lambda scope: data


class BodyPlan:
    """A declared `body`, compiled: rendered per call into bytes and a content type."""

    __slots__ = ("kind", "content_type", "template", "data", "parts")

    def __init__(
        self,
        kind: str,
        content_type: str,
        template: Template | None = None,
        data: _Data | None = None,
        parts: list[tuple[str, Template, str | None, str | None]] | None = None,
    ) -> None:
        self.kind, self.content_type = kind, content_type
        self.template, self.data, self.parts = template, data, parts

    def render(self, scope: Scope) -> tuple[bytes, str]:
        if self.kind == "json":
            assert self.data is not None
            text = json.dumps(self.data.render(scope), separators=(",", ":"), ensure_ascii=False)
            return text.encode(), self.content_type
        if self.kind == "form":
            assert self.data is not None
            return urlencode({k: to_text(v) for k, v in self.data.render(scope).items()}).encode(), self.content_type
        if self.kind == "multipart":
            return _multipart(self.parts or [], scope)
        assert self.template is not None
        return self.template.render(scope).encode(), self.content_type


def _multipart(parts: list[tuple[str, Template, str | None, str | None]], scope: Scope) -> tuple[bytes, str]:
    boundary = "naftiko-" + secrets.token_hex(12)
    chunks: list[bytes] = []
    for name, value, filename, content_type in parts:
        disposition = f'form-data; name="{name}"' + (f'; filename="{filename}"' if filename else "")
        head = f"--{boundary}\r\nContent-Disposition: {disposition}\r\n"
        if content_type:
            head += f"Content-Type: {content_type}\r\n"
        chunks.append(head.encode() + b"\r\n" + value.render(scope).encode() + b"\r\n")
    chunks.append(f"--{boundary}--\r\n".encode())
    return b"".join(chunks), f"multipart/form-data; boundary={boundary}"


_TEXT_TYPES = {"text": "text/plain; charset=utf-8", "xml": "application/xml", "sparql": "application/sparql-query"}


def compile_body(body: Any) -> BodyPlan | None:
    """Every RequestBody form of the spec: a raw template, or {type, data}."""
    if body is None:
        return None
    if isinstance(body, str):
        return BodyPlan("raw", "application/json", template=Template.compile(body))
    if not (isinstance(body, dict) and "type" in body):
        return BodyPlan("json", "application/json", data=_Data(body))
    kind, data = body.get("type"), body.get("data")
    if kind == "formUrlEncoded":
        if isinstance(data, dict):
            return BodyPlan("form", "application/x-www-form-urlencoded", data=_Data(data))
        return BodyPlan("raw", "application/x-www-form-urlencoded", template=Template.compile(str(data or "")))
    if kind == "multipartForm":
        parts = [
            (str(p.get("name")), Template.compile(str(p.get("value", ""))), p.get("filename"), p.get("contentType"))
            for p in (data if isinstance(data, list) else ())
            if isinstance(p, dict)
        ]
        return BodyPlan("multipart", "multipart/form-data", parts=parts)
    if kind in _TEXT_TYPES:
        return BodyPlan("raw", _TEXT_TYPES[kind], template=Template.compile(str(data or "")))
    if isinstance(data, str):
        return BodyPlan("raw", "application/json", template=Template.compile(data))
    return BodyPlan("json", "application/json", data=_Data(data))


__all__ = ["BodyPlan", "compile_body"]
