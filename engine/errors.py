"""The engine's typed errors: one hierarchy, mapped to answers only at the adapters' edge.

Our exception hierarchy:

* NaftikoError                  anything the engine raises on purpose
  x CapabilityError             a capability file cannot be used as written (`.problems`, each positioned)
  x TemplateError               a template is not valid Mustache (also a ValueError)
  x JsonPathError               an expression is not valid JSONPath (also a ValueError)
  x ProxyConfigError            a proxy variable that applies cannot be used
  x UnknownOperation            no consumed operation has that `namespace.operation` name
  x MissingValue                a strict render found a name with no value (also a LookupError)
  x RequestError                the caller's input is wrong: never sent upstream
    + RequestTooLarge           the request body is past the `request-body` limit (`.limit`)
  x UpstreamError               the upstream could not be reached or answered something unusable
    + UpstreamTimeout           the upstream went quiet for longer than the timeout
    + UpstreamUnavailable       refused without trying: circuit open or bulkhead full (`.retry_after`)
  x FormatError                 a body cannot be decoded in its format (also a ValueError; `.limit`)
    + FormatNotSupported        a format the runtime recognises but cannot decode yet (also NotSupported)
  x NotSupported                a feature a file uses that this runtime does not run yet
  x OpenApiError                an OpenAPI document cannot be fetched, read or imported

Each adapter holds one table from these classes to what its caller gets (REST: a status and a
JSON error `type`, `adapters/rest/app.py`; MCP: an `isError` result or a JSON-RPC error,
`adapters/mcp/errors.py`; the CLI: an exit code, `adapters/cli.py`), looked up with
`answer_for`, which walks the exception's MRO so the most specific kind wins. Anything not in a
table is a bug: logged, and answered as a 500 / -32603 without its traceback.

Left out on purpose, as httpx keeps its transport exceptions apart: the wire-level failures of
the HTTP/1.1 client (`engine.http1.HTTPFailure` and its kinds), which `engine.upstream` turns
into `UpstreamError`s before anyone else sees them; and private control flow that never leaves
its module (`engine.spec.blockyaml.Unsupported`: "let ruamel read this file"; `engine.spec.reading._Exceeded`:
a read bound, turned into a CapabilityError; `engine.registry._EmptySegment`; and
`adapters.edges.Disconnected`: the caller left, nobody to answer). Protocol-level MCP failures
(`adapters.mcp.backend.McpError`, carrying their JSON-RPC code) belong to the MCP adapter.

Messages are written for the person reading them and never carry secret values.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeVar
from collections.abc import Mapping

T = TypeVar("T")


class NaftikoError(Exception):
    """Base of every error the engine raises on purpose."""


@dataclass(frozen=True, slots=True)
class Location:
    """Where something was written: file, 1-based line and column, and its key path."""

    file: str
    line: int = 0
    column: int = 0
    path: str = ""

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column}" if self.line else self.file

    def key(self, key: str) -> Location:
        """The same place, one key deeper in the key path (for a value written at its key)."""
        return Location(self.file, self.line, self.column, f"{self.path}.{key}" if self.path else key)


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong with a capability file."""

    location: Location
    message: str

    def __str__(self) -> str:
        where = f" (at {self.location.path})" if self.location.path else ""
        return f"{self.location}: {self.message}{where}"


class CapabilityError(NaftikoError):
    """A capability file (or the set of them) cannot be used as written.

    Carries every problem found, so `naftiko validate` can list them all at once.
    """

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))

    @classmethod
    def at(cls, location: Location, message: str) -> CapabilityError:
        return cls([Problem(location, message)])


class TemplateError(NaftikoError, ValueError):
    """The template is not valid Mustache; the message says what to write instead.

    Raised when a template is compiled; the loader turns it into a positioned CapabilityError.
    """


class JsonPathError(NaftikoError, ValueError):
    """The expression is not valid JSONPath (raised when it is compiled, at load)."""


class ProxyConfigError(NaftikoError):
    """A proxy variable that applies to a request cannot be used (bad URL, unsupported scheme)."""


class UnknownOperation(NaftikoError):
    """No consumed operation has that `<namespace>.<operation>` name."""


class MissingValue(NaftikoError, LookupError):
    """A strict render found a name with no value; `name` is that name."""

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.name = name


class RequestError(NaftikoError):
    """The caller's input is wrong (a missing or malformed parameter): a 400, never upstream."""

    def __init__(self, message: str, *, parameter: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.parameter = parameter


class RequestTooLarge(RequestError):
    """The request body is larger than the limit (declared, or counted as it arrived): a 413.

    `limit` is the limit in bytes; the message says how to raise it.
    """

    def __init__(self, message: str, *, limit: int) -> None:
        super().__init__(message)
        self.limit = limit


class UpstreamError(NaftikoError):
    """The upstream could not be reached or answered something unusable: a 502."""

    def __init__(self, namespace: str, operation: str, reason: str) -> None:
        super().__init__(f"upstream {namespace} ({operation}): {reason}")
        self.namespace = namespace
        self.operation = operation
        self.reason = reason


class UpstreamTimeout(UpstreamError):
    """The upstream did not answer in time: a 504."""


class UpstreamUnavailable(UpstreamError):
    """Not sent: the namespace's circuit is open or its bulkhead is full (a 503; engine/upstream/resilience.py).

    `retry_after` is the seconds until the circuit lets a call through again, when known.
    """

    def __init__(self, namespace: str, operation: str, reason: str, *, retry_after: float | None = None) -> None:
        super().__init__(namespace, operation, reason)
        self.retry_after = retry_after


class NotSupported(NaftikoError):
    """A feature the file uses that this runtime does not run yet (a 501)."""


class OpenApiError(NaftikoError):
    """An OpenAPI document cannot be fetched, read or imported (`naftiko import openapi`)."""


class FormatError(NaftikoError, ValueError):
    """A body cannot be decoded in its declared format, or the format itself is unusable.

    The message names the format and says what is wrong, without parser internals. `limit` is
    the `Limits` field the body went past, when that is why it was refused.
    """

    def __init__(self, message: str, limit: str | None = None) -> None:
        super().__init__(message)
        self.limit = limit


class FormatNotSupported(FormatError, NotSupported):
    """A format the spec defines and this runtime recognises but does not decode yet (protobuf, avro).

    A FormatError to the decoders' callers; a NotSupported (a 501) once it reaches an edge.
    """


def answer_for(table: Mapping[type[BaseException], T], exc: BaseException) -> T | None:
    """The entry of `table` for the most specific class of `exc` it holds, or None (a bug: log it).

    Walking the MRO keeps each table a plain dict, one entry per kind, with subclasses winning
    over their bases whatever the order. Only the error path pays for it.
    """
    for kind in type(exc).__mro__:
        answer = table.get(kind)
        if answer is not None:
            return answer
    return None


__all__ = [
    "CapabilityError",
    "FormatError",
    "FormatNotSupported",
    "JsonPathError",
    "Location",
    "MissingValue",
    "NaftikoError",
    "NotSupported",
    "Problem",
    "ProxyConfigError",
    "RequestError",
    "RequestTooLarge",
    "TemplateError",
    "UnknownOperation",
    "UpstreamError",
    "UpstreamTimeout",
    "UpstreamUnavailable",
    "answer_for",
]
