"""An MCP backend built from an `exposes: type: mcp` block of a loaded runtime.

Tools go through the same registry as REST. A tool that declares no `inputParameters` still
gets a truthful input schema, derived from its `with` references and the consumed
operation's parameters (types, descriptions, required; every path variable required).
"""

from __future__ import annotations

import asyncio
import base64
import json
import mimetypes
import re
from http import HTTPStatus
from pathlib import Path
from typing import Any
from collections.abc import Callable, Coroutine, Iterable
from urllib.parse import unquote, urlparse

from ..edges import UNENCODABLE
from ...engine import (
    MISSING,
    NO_JSON,
    ExposedCall,
    McpExposes,
    NotSupported,
    Outcome,
    Prompt,
    RequestError,
    Resource,
    Runtime,
    Semantics,
    Tool,
    ToolHints,
    ToolParameter,
    UpstreamError,
    UpstreamTimeout,
    answer_for,
    describe,
    dumps,
    loads,
    passthrough,
    with_aliases,
)

from .backend import (
    INTERNAL_ERROR,
    INVALID_PARAMS,
    McpError,
    McpPrompt,
    McpPromptArgument,
    McpResource,
    McpTool,
    ServerInfo,
    ToolResult,
)

JSON_TYPES = {"string", "integer", "number", "boolean", "object", "array"}
_VERSION = "0.1.0"
#: The `_meta` key of an error result's machine-readable details (MCP `_meta` keys are `prefix/name`).
ERROR_META = "io.naftiko/error"
#: The most of an upstream's error body quoted in a result: enough for its message, not a page.
QUOTE_LIMIT = 2048


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
    schema: dict[str, Any] = {"type": "object", "properties": properties}
    if required:
        schema["required"] = required
    if not properties:
        schema["additionalProperties"] = False
    return schema


def _tool_result(namespace: str, outcome: Outcome) -> ToolResult:
    """Text and structured content; an unmapped JSON answer is both, as its own bytes, never rebuilt."""
    if outcome.status >= 400:
        text, detail = _status_error(namespace, outcome)
        return ToolResult.text(text, is_error=True, meta={ERROR_META: detail})
    structured = outcome.json if outcome.json is not NO_JSON else None
    if outcome.body:
        text = outcome.body.decode("utf-8", "replace")
    elif structured is not None:
        text = json.dumps(structured, ensure_ascii=False)
    else:
        text = ""
    if structured is None and outcome.content_type == "application/json" and outcome.body and outcome.body.strip():
        try:
            structured = passthrough(outcome.body)
        except (ValueError, RecursionError) as exc:
            message = f"upstream {namespace} answered JSON that is not valid ({exc})"
            error = {"type": "upstream_error", "upstream": namespace, "message": message}
            return ToolResult.text(message, is_error=True, meta={ERROR_META: error})
    return ToolResult(content=[{"type": "text", "text": text}], structured=structured)


def _status_error(namespace: str, outcome: Outcome) -> tuple[str, dict[str, Any]]:
    """An upstream's error status as an agent can act on it: status, the upstream's own message
    (quoted up to QUOTE_LIMIT) and when to retry; the same as data for a program."""
    try:
        phrase = " " + HTTPStatus(outcome.status).phrase
    except ValueError:
        phrase = ""
    retry_after = next((v.strip() for k, v in outcome.headers if k.lower() == "retry-after"), None)
    detail: dict[str, Any] = {"type": "upstream_status", "upstream": namespace, "status": outcome.status}
    text = f"upstream {namespace} answered HTTP {outcome.status}{phrase}"
    if retry_after:
        detail["retryAfter"] = retry_after
        text += f"; retry after {retry_after} s" if retry_after.isdigit() else f"; retry after {retry_after}"
    raw = outcome.body if outcome.body is not None else (b"" if outcome.json is NO_JSON else dumps(outcome.json))
    if raw.strip():
        quoted = raw[:QUOTE_LIMIT].decode("utf-8", "ignore")
        if len(raw) > QUOTE_LIMIT:
            quoted += f"... ({len(raw)} bytes in all)"
            detail["body"], detail["truncated"] = quoted, True
        else:
            detail["body"] = _json_or_text(raw, quoted)
        text += f": {quoted}"
    return text, detail


def _json_or_text(raw: bytes, text: str) -> Any:
    try:
        return loads(raw)
    except (ValueError, RecursionError):
        return text


def _bad_request(exc: RequestError) -> tuple[str, dict[str, Any]]:
    detail: dict[str, Any] = {"type": "bad_request", "message": exc.message}
    if exc.parameter:
        detail["parameter"] = exc.parameter
    return exc.message, detail


def _upstream(kind: str) -> Callable[[UpstreamError], tuple[str, dict[str, Any]]]:
    return lambda e: (str(e), {"type": kind, "upstream": e.namespace, "operation": e.operation, "message": str(e)})


Failure = tuple[bool, Callable[[Any], "tuple[str, dict[str, Any]]"]]
"""Whether the caller is at fault, and the error's message and `_meta` details."""

ERRORS: dict[type[BaseException], Failure] = {
    RequestError: (True, _bad_request),
    # Caught here, not looked for in every message: it is rare.
    UnicodeEncodeError: (True, lambda e: (UNENCODABLE, {"type": "bad_request", "message": UNENCODABLE})),
    UpstreamError: (False, _upstream("upstream_error")),
    UpstreamTimeout: (False, _upstream("upstream_timeout")),
    NotSupported: (False, lambda e: (str(e), {"type": "not_implemented", "message": str(e)})),
}
"""What an MCP caller gets for each error kind a call raises, looked up by the exception's MRO.

A tool call answers an `isError` result, its text prefixed with "invalid arguments: " when the
caller is at fault, the details in `_meta["io.naftiko/error"]`. A resource read answers a JSON-RPC
error: -32602 (the caller's fault: a bad parameter taken from the URI) or -32603 (the server's,
naming the upstream). Any other exception is a bug the protocol layer logs and answers without
its traceback (an `isError` "Error: ..." result, or -32603)."""


def _tool_failure(exc: Exception) -> ToolResult:
    """A call's error as the `isError` result of its tool; raises `exc` again if it is not in ERRORS."""
    failure = answer_for(ERRORS, exc)
    if failure is None:
        raise exc
    caller, describe_failure = failure
    message, detail = describe_failure(exc)
    return ToolResult.text(
        f"invalid arguments: {message}" if caller else message, is_error=True, meta={ERROR_META: detail}
    )


def _resource_failure(exc: Exception, uri: str) -> McpError:
    """A call's error as the JSON-RPC error of the resource read; raises `exc` again if it is not in ERRORS."""
    failure = answer_for(ERRORS, exc)
    if failure is None:
        raise exc
    caller, describe_failure = failure
    message, detail = describe_failure(exc)
    if caller:
        return McpError(INVALID_PARAMS, f"Invalid params: {message}", {"uri": uri})
    return McpError(INTERNAL_ERROR, f"reading {uri} failed: {message}", {"uri": uri, **detail})


class CapabilityBackend:
    """Serves one MCP exposes block: tools, resources and prompts from the spec model."""

    def __init__(self, runtime: Runtime, exposes: McpExposes) -> None:
        self.runtime = runtime
        self.exposes = exposes
        self.info = ServerInfo(name=exposes.namespace, version=_VERSION, instructions=exposes.description)
        self._calls: dict[str, tuple[ExposedCall, Tool]] = {}
        tools: list[McpTool] = []
        for tool in exposes.tools:
            call = runtime.exposed_call(tool.invocation, tool.where)
            function = call.function
            name = tool.name or (function.name if function else "")
            self._calls[name] = (call, tool)
            tools.append(
                McpTool(
                    name=name,
                    input_schema=input_schema(tool.input_parameters, call),
                    description=tool.description or (function.description if function else None),
                    title=tool.label,
                    annotations=_hints(tool.hints, tool.label, function.semantics if function else None),
                )
            )
        self.tools = tuple(tools)
        self._resources = {r.uri: r for r in exposes.resources}
        self.resources = tuple(self._resource(r) for r in exposes.resources)
        self._templates = [(_uri_pattern(r.uri), r) for r in exposes.resources if "{" in r.uri]
        self._prompts = {p.name: p for p in exposes.prompts}
        self.prompts = tuple(
            McpPrompt(
                name=p.name,
                description=p.description,
                title=p.label,
                arguments=tuple(McpPromptArgument(a.name, a.description, a.label, a.required) for a in p.arguments),
            )
            for p in exposes.prompts
        )

    @staticmethod
    def _resource(resource: Resource) -> McpResource:
        templated = "{" in resource.uri
        mime = resource.mime_type
        if mime is None:
            mime = mimetypes.guess_type(resource.location)[0] if resource.location else "application/json"
        return McpResource(
            name=resource.name,
            uri=None if templated else resource.uri,
            uri_template=resource.uri if templated else None,
            title=resource.label,
            description=resource.description,
            mime_type=mime,
        )

    def call_tool(self, name: str, arguments: dict[str, Any]) -> Coroutine[Any, Any, ToolResult]:
        """The call's own coroutine, not one wrapping it: a frame less for every upstream wait."""
        entry = self._calls.get(name)
        if entry is None:
            raise McpError(INVALID_PARAMS, f"Unknown tool: {name}")
        return self._invoke(entry[0], arguments)

    async def _invoke(self, call: ExposedCall, arguments: dict[str, Any]) -> ToolResult:
        namespace = call.operation.namespace if call.operation else self.exposes.namespace
        try:
            outcome = await call.invoke(with_aliases(arguments), parse=False)
        except Exception as exc:
            return _tool_failure(exc)
        return _tool_result(namespace, outcome)

    async def read_resource(self, uri: str) -> list[dict[str, Any]]:
        resource, params = self._match_resource(uri)
        if resource.invocation is not None:
            return [await self._read_dynamic(resource, uri, params)]
        if resource.location is not None:
            return [await _read_location(resource, uri, self.runtime.limits.upstream_body)]
        raise McpError(INVALID_PARAMS, f"Resource has no content: {uri}")

    async def _read_dynamic(self, resource: Resource, uri: str, params: dict[str, Any]) -> dict[str, Any]:
        """A resource read through its call. The upstream failing is the server's failure (-32603),
        naming the upstream; only a bad parameter taken from the URI is the caller's (-32602)."""
        assert resource.invocation is not None
        call = self.runtime.exposed_call(resource.invocation, resource.where)
        namespace = call.operation.namespace if call.operation else self.exposes.namespace
        try:
            outcome = await call.invoke(with_aliases(params), parse=False)
        except Exception as exc:
            raise _resource_failure(exc, uri) from None
        if outcome.status >= 400:
            text, detail = _status_error(namespace, outcome)
            raise McpError(INTERNAL_ERROR, f"reading {uri} failed: {text}", {"uri": uri, **detail})
        if outcome.body is None and outcome.json is not NO_JSON:
            data, media = dumps(outcome.json), "application/json"
        else:
            data, media = outcome.body or b"", outcome.content_type or "application/json"
        return _content(uri, resource.mime_type or media, data)

    def _match_resource(self, uri: str) -> tuple[Resource, dict[str, Any]]:
        resource = self._resources.get(uri)
        if resource is not None and "{" not in uri:
            return resource, {}
        for pattern, candidate in self._templates:
            match = pattern.match(uri)
            if match:
                return candidate, {k: unquote(v) for k, v in match.groupdict().items()}
        for candidate in self._resources.values():
            if candidate.location is not None and uri.startswith(candidate.uri.rstrip("/") + "/"):
                return candidate, {}
        raise McpError(INVALID_PARAMS, f"Resource not found: {uri}")

    async def get_prompt(self, name: str, arguments: dict[str, str]) -> dict[str, Any]:
        prompt = self._prompts.get(name)
        if prompt is None:
            raise McpError(INVALID_PARAMS, f"Unknown prompt: {name}")
        missing = [a.name for a in prompt.arguments if a.required and a.name not in arguments]
        if missing:
            raise McpError(INVALID_PARAMS, f"Missing required argument(s) for prompt {name}: {', '.join(missing)}")
        messages = [
            {"role": role, "content": {"type": "text", "text": _substitute(content, arguments)}}
            for role, content in _prompt_messages(prompt)
        ]
        result: dict[str, Any] = {"messages": messages}
        if prompt.description:
            result["description"] = prompt.description
        return result


_PLACEHOLDER = re.compile(r"\{\{([a-zA-Z0-9_]+)\}\}")


def _substitute(text: str, arguments: dict[str, str]) -> str:
    """Prompt arguments: `{{name}}` only, unknown placeholders left as written."""
    return _PLACEHOLDER.sub(lambda m: str(arguments[m.group(1)]) if m.group(1) in arguments else m.group(0), text)


def _prompt_messages(prompt: Prompt) -> Iterable[tuple[str, str]]:
    if prompt.template:
        return prompt.template
    if prompt.location:
        path = _file_path(prompt.location)
        try:
            return [("user", path.read_text(encoding="utf-8"))]
        except OSError as exc:
            raise McpError(INVALID_PARAMS, f"prompt {prompt.name} cannot read its file: {exc.strerror}") from None
    return []


def _uri_pattern(uri: str) -> re.Pattern[str]:
    parts = re.split(r"\{([A-Za-z_][\w-]*)\}", uri)
    regex = "".join(re.escape(p) if i % 2 == 0 else f"(?P<{p.replace('-', '_')}>[^/]+)" for i, p in enumerate(parts))
    return re.compile(f"^{regex}$")


def _file_path(location: str) -> Path:
    parsed = urlparse(location)
    return Path(unquote(parsed.netloc + parsed.path)) if parsed.scheme == "file" else Path(location)


_SAFE_SEGMENT = re.compile(r"^[A-Za-z0-9._-]+$")


async def _read_location(resource: Resource, uri: str, limit: int) -> dict[str, Any]:
    """A static resource: a file below the resource's `location` folder, safe segments only, at
    most `limit` bytes (the upstream-body limit: what one MCP result may carry)."""
    root = _file_path(resource.location or "")
    relative = uri[len(resource.uri.rstrip("/")) :].strip("/")
    segments = [s for s in relative.split("/") if s]
    if any(not _SAFE_SEGMENT.match(s) or s in (".", "..") for s in segments):
        raise McpError(INVALID_PARAMS, f"Resource not found: {uri}")
    path = root.joinpath(*segments) if segments else root  # a location may name one file
    if not path.is_file():
        raise McpError(INVALID_PARAMS, f"Resource not found: {uri}")
    try:
        size = path.stat().st_size
        if size > limit:
            raise McpError(
                INTERNAL_ERROR,
                f"resource {uri} is a file larger than the {describe(limit)} limit;"
                " raise it with --limit upstream-body=SIZE or NAFTIKO_MAX_UPSTREAM_BODY",
                {"uri": uri},
            )
        data = _read_file(path, limit) if size <= _INLINE_READ else await asyncio.to_thread(_read_file, path, limit)
    except OSError as exc:
        raise McpError(INTERNAL_ERROR, f"resource {uri} cannot be read: {exc.strerror or exc}", {"uri": uri}) from None
    guessed = mimetypes.guess_type(path.name)[0]
    return _content(uri, resource.mime_type or guessed, data, guessed)


_INLINE_READ = 256 * 1024  # larger files are read off the event loop


def _read_file(path: Path, limit: int) -> bytes:
    with path.open("rb") as file:
        data = file.read(limit + 1)
    if len(data) > limit:  # it grew since it was measured
        raise OSError(f"larger than {describe(limit)}")
    return data


_TEXT_TYPES = frozenset(
    {
        "application/json",
        "application/xml",
        "application/yaml",
        "application/x-yaml",
        "application/javascript",
        "application/ecmascript",
        "application/x-ndjson",
        "application/ndjson",
        "application/jsonl",
        "application/sql",
        "application/graphql",
        "application/toml",
        "application/x-sh",
        "application/xhtml+xml",
        "image/svg+xml",
    }
)


def _is_text_type(mime: str) -> bool:
    base = mime.partition(";")[0].strip().lower()
    return base.startswith("text/") or base in _TEXT_TYPES or base.endswith(("+json", "+xml", "+yaml"))


def _content(uri: str, mime: str | None, data: bytes, guessed: str | None = None) -> dict[str, Any]:
    """A `resources/read` content item: `text` for a text type (or no known type) that is UTF-8,
    else the bytes as a base64 `blob`, so a PNG arrives as it is."""
    if mime is None or _is_text_type(mime):
        try:
            return {"uri": uri, "mimeType": mime or "text/plain", "text": data.decode("utf-8")}
        except UnicodeDecodeError:
            mime = guessed if guessed and not _is_text_type(guessed) else "application/octet-stream"
    return {"uri": uri, "mimeType": mime, "blob": base64.b64encode(data).decode("ascii")}


def mcp_http_app(runtime: Runtime, exposes: McpExposes, **options: Any) -> Any:
    """The Streamable HTTP ASGI app of one MCP exposes block."""
    from .http import McpHttpApp

    options.setdefault("max_body_bytes", runtime.limits.request_body)
    return McpHttpApp(CapabilityBackend(runtime, exposes), **options)


def pick_mcp(runtime: Runtime, namespace: str | None) -> McpExposes:
    blocks = [e for e in runtime.exposes if isinstance(e, McpExposes)]
    if namespace:
        exposes = runtime.exposes_named(namespace)
        if not isinstance(exposes, McpExposes):
            raise ValueError(f"exposes '{namespace}' is not an MCP block")
        return exposes
    stdio = [e for e in blocks if e.transport == "stdio"]
    if stdio or blocks:
        return (stdio or blocks)[0]
    raise ValueError("no MCP exposes block in the loaded files")


async def serve_stdio(runtime: Runtime, namespace: str | None = None) -> None:
    """Serve one MCP block over stdin/stdout until stdin closes."""
    from .stdio import serve_stdio as run

    backend = CapabilityBackend(runtime, pick_mcp(runtime, namespace))
    async with runtime:
        await run(backend, line_limit=runtime.limits.request_body)


__all__ = ["CapabilityBackend", "input_schema", "mcp_http_app", "serve_stdio", "MISSING"]
