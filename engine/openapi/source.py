"""OpenAPI documents read from a file or an http(s) URL, within a size and a time bound, and their local `$ref`s.

A document is data from somewhere else: it is read at most `document_bytes` (checked before a file
is read and while a download streams in), a download must finish within `fetch_seconds`, YAML is
parsed with the capability reader's bounds (depth, aliases), and `$ref` chains are followed at most
`ref_depth` deep, a cycle standing for an open schema instead of looping.
"""

from __future__ import annotations

import json
import re
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from ..errors import CapabilityError, OpenApiError
from ..spec.reading import ReadLimits, parse_yaml

_MiB = 1024 * 1024
_UNITS = {"": 1, "K": 1024, "M": _MiB, "G": 1024 * _MiB}


@dataclass(frozen=True)
class ImportLimits:
    """What importing one OpenAPI document may cost, whatever the document says."""

    document_bytes: int = 16 * _MiB
    """The largest document read (a file is checked before reading, a download while it streams in)."""
    fetch_seconds: float = 30.0
    """How long a download may take in all (connect, and every read)."""
    ref_depth: int = 32
    """How many `$ref`s one schema may pass through, nested or chained; deeper ones are left open."""
    full_yaml_bytes: int = 4 * _MiB
    """The largest YAML document read with ruamel (flow style, anchors...; about 200 KB a second); a larger one
    must be plain block YAML, or JSON, which is read at any size up to `document_bytes`."""

    @classmethod
    def from_options(
        cls, environ: Mapping[str, str], size: str | None = None, seconds: float | None = None
    ) -> ImportLimits:
        """The command line's limits: a flag, else `NAFTIKO_IMPORT_MAX_SIZE` / `NAFTIKO_IMPORT_TIMEOUT`, else
        the defaults."""
        size = size or environ.get("NAFTIKO_IMPORT_MAX_SIZE")
        raw_seconds = environ.get("NAFTIKO_IMPORT_TIMEOUT")
        limits = cls()
        if size:
            limits = replace(limits, document_bytes=_size(size))
        if seconds is None and raw_seconds:
            try:
                seconds = float(raw_seconds)
            except ValueError:
                raise OpenApiError(f"NAFTIKO_IMPORT_TIMEOUT expects seconds; got {raw_seconds!r}") from None
        if seconds is not None:
            if not seconds > 0:
                raise OpenApiError(f"the import timeout must be positive; got {seconds:g}")
            limits = replace(limits, fetch_seconds=seconds)
        return limits


def _size(raw: str) -> int:
    match = re.fullmatch(r"\s*(\d+)\s*([KMG]?)i?B?\s*", raw, re.IGNORECASE)
    if match is None or int(match.group(1)) == 0:
        raise OpenApiError(f"the import size limit expects a positive number, optionally with K, M or G; got {raw!r}")
    return int(match.group(1)) * _UNITS[match.group(2).upper()]


def read_source(spec: str, limits: ImportLimits) -> tuple[str, str]:
    """The document's text and the name to report it by: a file path or an http(s) URL."""
    if spec.startswith(("http://", "https://")):
        return _download(spec, limits), spec
    path = Path(spec)
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise OpenApiError(f"{spec}: cannot read the OpenAPI document ({exc.strerror})") from None
    if size > limits.document_bytes:
        raise OpenApiError(_too_large(spec, limits))
    with path.open("rb") as handle:
        data = handle.read(limits.document_bytes + 1)
    if len(data) > limits.document_bytes:
        raise OpenApiError(_too_large(spec, limits))
    return _decode(data, spec), spec


def _too_large(spec: str, limits: ImportLimits) -> str:
    return f"{spec}: the OpenAPI document is larger than {limits.document_bytes} bytes (the import limit)"


class _HttpRedirects(urllib.request.HTTPRedirectHandler):
    """Redirects followed only to http(s) URLs (urllib would also follow one to ftp)."""

    def redirect_request(self, req: Any, fp: Any, code: int, msg: str, headers: Any, newurl: str) -> Any:
        if not newurl.startswith(("http://", "https://")):
            raise OpenApiError(f"{req.full_url}: redirected to {newurl!r}, which is not an http(s) URL")
        return super().redirect_request(req, fp, code, msg, headers, newurl)


def _download(url: str, limits: ImportLimits) -> str:
    """The document at `url`: proxies from the environment as urllib reads them, redirects to http(s) only."""
    deadline = time.monotonic() + limits.fetch_seconds
    request = urllib.request.Request(url, headers={"Accept": "application/json, application/yaml;q=0.9, */*;q=0.5"})
    opener = urllib.request.build_opener(_HttpRedirects())
    chunks: list[bytes] = []
    total = 0
    try:
        with opener.open(request, timeout=limits.fetch_seconds) as answer:
            declared = answer.headers.get("Content-Length")
            if declared and declared.isdigit() and int(declared) > limits.document_bytes:
                raise OpenApiError(_too_large(url, limits))
            while chunk := answer.read(65536):
                total += len(chunk)
                if total > limits.document_bytes:
                    raise OpenApiError(_too_large(url, limits))
                if time.monotonic() > deadline:
                    raise OpenApiError(f"{url}: the download took longer than {limits.fetch_seconds:g} s")
                chunks.append(chunk)
    except urllib.error.HTTPError as exc:
        raise OpenApiError(f"{url}: the server answered {exc.code} {exc.reason}") from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise OpenApiError(f"{url}: cannot download the OpenAPI document ({reason})") from None
    return _decode(b"".join(chunks), url)


def _decode(data: bytes, name: str) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise OpenApiError(f"{name}: the OpenAPI document is not UTF-8 (byte {exc.start})") from None


def parse_document(text: str, name: str, limits: ImportLimits) -> dict[str, Any]:
    """JSON or YAML into data; a document that is neither, or not an object, is an OpenApiError."""
    data: Any
    if text.lstrip().startswith("{"):
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise OpenApiError(f"{name}: not valid JSON ({exc})") from None
    else:
        try:
            bounds = ReadLimits(file_bytes=limits.document_bytes, full_yaml_bytes=limits.full_yaml_bytes)
            data = parse_yaml(text, name, bounds)
        except CapabilityError as exc:
            raise OpenApiError(f"cannot read the YAML: {exc.problems[0]}") from None
    if not isinstance(data, dict):
        raise OpenApiError(f"{name}: an OpenAPI document is a mapping at the top")
    if not any(key in data for key in ("openapi", "swagger")):
        raise OpenApiError(f"{name}: neither `openapi` nor `swagger` is set: not an OpenAPI document")
    return data


class Refs:
    """Local `$ref`s (`#/...` JSON pointers) looked up in one document, with a depth bound and cycles stopped."""

    def __init__(self, root: dict[str, Any], depth: int) -> None:
        self.root = root
        self.depth = depth

    def follow(self, node: Any, seen: tuple[str, ...] = ()) -> tuple[Any, tuple[str, ...]]:
        """The node a `$ref` chain ends at and the refs passed through; `{}` past the bound or at a cycle."""
        while isinstance(node, dict) and isinstance(node.get("$ref"), str):
            ref = node["$ref"]
            if ref in seen or len(seen) >= self.depth or not ref.startswith("#"):
                return {}, seen
            seen = (*seen, ref)
            node = self._pointer(ref)
        return node, seen

    def _pointer(self, ref: str) -> Any:
        node: Any = self.root
        for raw in ref[1:].split("/")[1:]:
            step = raw.replace("~1", "/").replace("~0", "~")
            if isinstance(node, dict) and step in node:
                node = node[step]
            elif isinstance(node, list) and step.isdigit() and int(step) < len(node):
                node = node[int(step)]
            else:
                return {}
        return node
