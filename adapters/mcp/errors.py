"""The one error table of the MCP edge: what a caller gets for each error kind a call raises.

A tool call answers an `isError` result (`tool_failure`), a resource read a JSON-RPC error
(`resource_failure`), both from `ERRORS`; an upstream's error status, which is an answer and
not an exception, becomes the same kind of details (`status_error`). The details go to the
result's `_meta["io.naftiko/error"]` (`ERROR_META`), for a program to act on.
"""

from __future__ import annotations

from http import HTTPStatus
from typing import Any
from collections.abc import Callable

from ..edges import UNENCODABLE
from ...engine import (
    NO_JSON,
    NotSupported,
    Outcome,
    RequestError,
    UpstreamError,
    UpstreamTimeout,
    UpstreamUnavailable,
    answer_for,
    dumps,
    loads,
)

from .backend import INTERNAL_ERROR, INVALID_PARAMS, McpError, ToolResult

__all__ = ["ERROR_META", "ERRORS", "QUOTE_LIMIT", "Failure", "resource_failure", "status_error", "tool_failure"]

#: The `_meta` key of an error result's machine-readable details (MCP `_meta` keys are `prefix/name`).
ERROR_META = "io.naftiko/error"
#: The most of an upstream's error body quoted in a result: enough for its message, not a page.
QUOTE_LIMIT = 2048


def _bad_request(exc: RequestError) -> tuple[str, dict[str, Any]]:
    detail: dict[str, Any] = {"type": "bad_request", "message": exc.message}
    if exc.parameter:
        detail["parameter"] = exc.parameter
    return exc.message, detail


def _upstream(kind: str) -> Callable[[UpstreamError], tuple[str, dict[str, Any]]]:
    return lambda e: (str(e), {"type": kind, "upstream": e.namespace, "operation": e.operation, "message": str(e)})


def _unavailable(exc: UpstreamUnavailable) -> tuple[str, dict[str, Any]]:
    text, detail = _upstream("upstream_unavailable")(exc)
    if exc.retry_after is not None:
        detail["retryAfter"] = exc.retry_after
    return text, detail


Failure = tuple[bool, Callable[[Any], "tuple[str, dict[str, Any]]"]]
"""Whether the caller is at fault, and the error's message and `_meta` details."""

ERRORS: dict[type[BaseException], Failure] = {
    RequestError: (True, _bad_request),
    # Caught here, not looked for in every message: it is rare.
    UnicodeEncodeError: (True, lambda e: (UNENCODABLE, {"type": "bad_request", "message": UNENCODABLE})),
    UpstreamError: (False, _upstream("upstream_error")),
    UpstreamTimeout: (False, _upstream("upstream_timeout")),
    UpstreamUnavailable: (False, _unavailable),  # circuit open or bulkhead full: not sent (upstream/resilience.py)
    NotSupported: (False, lambda e: (str(e), {"type": "not_implemented", "message": str(e)})),
}
"""What an MCP caller gets for each error kind a call raises, looked up by the exception's MRO.

A tool call answers an `isError` result, its text prefixed with "invalid arguments: " when the
caller is at fault, the details in `_meta["io.naftiko/error"]`. A resource read answers a JSON-RPC
error: -32602 (the caller's fault: a bad parameter taken from the URI) or -32603 (the server's,
naming the upstream). Any other exception is a bug the protocol layer logs and answers without
its traceback (an `isError` "Error: ..." result, or -32603)."""


def tool_failure(exc: Exception) -> ToolResult:
    """A call's error as the `isError` result of its tool; raises `exc` again if it is not in ERRORS."""
    failure = answer_for(ERRORS, exc)
    if failure is None:
        raise exc
    caller, describe_failure = failure
    message, detail = describe_failure(exc)
    return ToolResult.text(
        f"invalid arguments: {message}" if caller else message, is_error=True, meta={ERROR_META: detail}
    )


def resource_failure(exc: Exception, uri: str) -> McpError:
    """A call's error as the JSON-RPC error of the resource read; raises `exc` again if it is not in ERRORS."""
    failure = answer_for(ERRORS, exc)
    if failure is None:
        raise exc
    caller, describe_failure = failure
    message, detail = describe_failure(exc)
    if caller:
        return McpError(INVALID_PARAMS, f"Invalid params: {message}", {"uri": uri})
    return McpError(INTERNAL_ERROR, f"reading {uri} failed: {message}", {"uri": uri, **detail})


def status_error(namespace: str, outcome: Outcome) -> tuple[str, dict[str, Any]]:
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
