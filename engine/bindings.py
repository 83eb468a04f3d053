"""Resolve `binds` into values once, at start-up.

A binding without `location` reads environment variables; with `location: file://...` it
reads a YAML or JSON file (relative paths: next to the capability file first, then the
working directory). Each value is exposed both flat (`KEY`) and qualified (`namespace.KEY`).
A value that cannot be found stops start-up with a message naming the variable and file.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from collections.abc import Mapping
from urllib.parse import unquote, urlparse

from .errors import CapabilityError, Location
from .spec.reading import READ_LIMITS, read_document
from .spec.model import Binding, Capability


def resolve(capability: Capability, environ: Mapping[str, str], cwd: Path | None = None) -> dict[str, str]:
    """All binding values of one capability, keyed `KEY` and `namespace.KEY`."""
    values: dict[str, str] = {}
    for binding in capability.binds:
        if binding.location is None:
            found = _from_environment(binding, environ, capability.path)
        else:
            found = _from_file(binding, Path(capability.path).parent, cwd or Path.cwd())
        for key, value in found.items():
            values[key] = value
            values[f"{binding.namespace}.{key}"] = value
    return values


def _from_environment(binding: Binding, environ: Mapping[str, str], file: str) -> dict[str, str]:
    values: dict[str, str] = {}
    for key, variable in binding.keys.items():
        if variable not in environ:
            raise CapabilityError.at(
                _key_location(binding, key),
                f"binding '{binding.namespace}' needs the environment variable {variable} (for {key}),"
                f" which is not set; set it before starting {Path(file).name}",
            )
        values[key] = environ[variable]
    return values


def _from_file(binding: Binding, base: Path, cwd: Path) -> dict[str, str]:
    path = _locate(binding, base, cwd)
    if path.suffix != ".json":
        data = read_document(path)  # bounded as a capability file is: size, depth, aliases
    else:
        try:
            if path.stat().st_size > READ_LIMITS.file_bytes:
                raise ValueError(f"larger than {READ_LIMITS.file_bytes:,} bytes")
            data = json.loads(path.read_bytes())
        except (OSError, ValueError, RecursionError) as exc:
            raise CapabilityError.at(
                binding.where, f"binding '{binding.namespace}' cannot read {path}: {exc}"
            ) from None
    if not isinstance(data, dict):
        raise CapabilityError.at(
            binding.where, f"binding '{binding.namespace}': {path} must hold a mapping of keys to values"
        )
    values: dict[str, str] = {}
    for key, source_key in binding.keys.items():
        if source_key not in data:
            raise CapabilityError.at(
                _key_location(binding, key),
                f"binding '{binding.namespace}': key '{source_key}' (for {key}) not found in {path}",
            )
        values[key] = _stringify(data[source_key])
    return values


def _locate(binding: Binding, base: Path, cwd: Path) -> Path:
    location = binding.location or ""
    parsed = urlparse(location)
    if parsed.scheme != "file":
        raise CapabilityError.at(
            binding.where,
            f"binding '{binding.namespace}': location scheme '{parsed.scheme}' is not supported; use file://",
        )
    raw = unquote(parsed.netloc + parsed.path)
    if raw.startswith("/./"):
        raw = raw[1:]
    path = Path(raw)
    if path.is_absolute():
        candidates = [path]
    else:
        candidates = [base / path, cwd / path]
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    tried = " or ".join(str(c) for c in candidates)
    raise CapabilityError.at(binding.where, f"binding '{binding.namespace}': file not found ({tried})")


def _key_location(binding: Binding, key: str) -> Location:
    where = binding.where
    return Location(where.file, where.line, where.column, f"{where.path}.keys.{key}")


def _stringify(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dict, list)):
        return json.dumps(value, separators=(",", ":"))
    return str(value)
