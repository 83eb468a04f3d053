"""Binary answers (`outputRawFormat: binary`): the upstream's bytes, never decoded, within `maxBinarySize`.

A streamed answer (a REST download) is passed on as it arrives: a declared length past
`maxBinarySize` is refused before any of the body is read, and an undeclared one fails the
stream as soon as it passes the limit, so nothing is ever buffered. An answer read whole (an MCP
result, which is in memory) is bound by `maxBinarySize` and by the `upstream-body` limit, the
smaller of the two. `outputMediaType`, when the file gives one, is the answer's Content-Type.
"""

from __future__ import annotations

from ..errors import UpstreamError
from ..limits import advice, describe
from ..registry import Operation
from ..upstream import UpstreamResponse


def binary_headers(
    operation: Operation, response: UpstreamResponse, stream: bool, block_limit: int | None = None
) -> tuple[str, list[tuple[str, str]]]:
    """The answer's media type and headers; raises (and drops the answer) when its declared length is too large.

    `block_limit` is the exposes block's maxBinarySize, for operations without their own.
    """
    media = operation.spec.output_media_type or response.content_type
    headers = [(k, v) for k, v in response.headers() if k != "content-type"]
    headers.append(("content-type", media))
    limit = _limit(operation, stream, block_limit)
    declared = next((v for k, v in headers if k == "content-length"), None)
    if limit is not None:
        past = _past(operation, limit, block_limit)
        if declared is not None and declared.isdigit() and int(declared) > limit:
            response.close()
            raise UpstreamError(operation.namespace, operation.name, f"declared {declared} bytes, {past}")
        response.limit(limit, f"answered {past}")
    return media, headers


async def read_binary(operation: Operation, response: UpstreamResponse) -> bytes:
    """The whole answer, failing as soon as it passes its limit (the bytes already read are dropped)."""
    parts: list[bytes] = []
    try:
        async for chunk in response.chunks():
            parts.append(chunk)
    finally:
        response.close()
    return b"".join(parts)


def _limit(operation: Operation, stream: bool, block_limit: int | None) -> int | None:
    """The operation's own maxBinarySize, else its exposes block's; read whole, also upstream-body."""
    if operation.max_binary is not None or block_limit is None:
        return operation.max_binary if stream else operation.max_buffered_binary
    return block_limit if stream else min(block_limit, operation.max_buffered_binary)


def _past(operation: Operation, limit: int, block_limit: int | None) -> str:
    """Which limit a binary answer passed: a maxBinarySize, or upstream-body and how to raise it."""
    if operation.max_binary is not None and limit == operation.max_binary:
        return f"more than its maxBinarySize of {describe(limit)}"
    if operation.max_binary is None and limit == block_limit:
        return f"more than its exposes block's maxBinarySize of {describe(limit)}"
    return f"more than {describe(limit)} ({advice('upstream_body')})"


__all__ = ["binary_headers", "read_binary"]
