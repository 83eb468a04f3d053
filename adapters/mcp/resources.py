"""A capability's MCP resources: how each is listed and how a URI is read.

A resource is dynamic (an `invocation`: `read_dynamic` runs its call, parameters taken from
the URI by `uri_pattern`) or static (a `location`: `read_location` reads a file below that
folder, safe path segments only, at most the upstream-body limit). Either way the bytes become
one `resources/read` content item: text when they are UTF-8 of a text type, else a
base64 blob.
"""

from __future__ import annotations

import asyncio
import base64
import mimetypes
import re
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

from ...engine import NO_JSON, ExposedCall, Resource, describe, dumps, with_aliases

from .backend import INTERNAL_ERROR, INVALID_PARAMS, McpError, McpResource
from .errors import resource_failure, status_error

__all__ = ["file_path", "mcp_resource", "read_dynamic", "read_location", "uri_pattern"]


def mcp_resource(resource: Resource) -> McpResource:
    """How `resource` is listed: a concrete resource, or a template when its URI has `{var}` parts."""
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


async def read_dynamic(
    call: ExposedCall, namespace: str, mime_type: str | None, uri: str, params: dict[str, Any]
) -> dict[str, Any]:
    """A resource read through its call (`namespace` names the exposes block when it calls no
    upstream). The upstream failing is the server's failure (-32603), naming the upstream; only
    a bad parameter taken from the URI is the caller's (-32602)."""
    if call.operation:
        namespace = call.operation.namespace
    try:
        outcome = await call.invoke(with_aliases(params), parse=False)
    except Exception as exc:
        raise resource_failure(exc, uri) from None
    if outcome.status >= 400:
        text, detail = status_error(namespace, outcome)
        raise McpError(INTERNAL_ERROR, f"reading {uri} failed: {text}", {"uri": uri, **detail})
    if outcome.body is None and outcome.json is not NO_JSON:
        data, media = dumps(outcome.json), "application/json"
    else:
        data, media = outcome.body or b"", outcome.content_type or "application/json"
    return _content(uri, mime_type or media, data)


def uri_pattern(uri: str) -> re.Pattern[str]:
    """The regular expression a templated URI matches, one named group per `{var}` (one path segment)."""
    parts = re.split(r"\{([A-Za-z_][\w-]*)\}", uri)
    regex = "".join(re.escape(p) if i % 2 == 0 else f"(?P<{p.replace('-', '_')}>[^/]+)" for i, p in enumerate(parts))
    return re.compile(f"^{regex}$")


def file_path(location: str) -> Path:
    """The file or folder a `location` names: a `file:` URI or a plain path."""
    parsed = urlparse(location)
    return Path(unquote(parsed.netloc + parsed.path)) if parsed.scheme == "file" else Path(location)


_SAFE_SEGMENT = re.compile(r"^[A-Za-z0-9._-]+$")


async def read_location(resource: Resource, uri: str, limit: int) -> dict[str, Any]:
    """A static resource: a file below the resource's `location` folder, safe segments only, at
    most `limit` bytes (the upstream-body limit: what one MCP result may carry)."""
    root = file_path(resource.location or "")
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
