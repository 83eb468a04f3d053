"""Reading an upstream answer as data: JSON, or the format its operation declares.

Below both the exposed calls and the steps, which read answers the same way.
"""

from __future__ import annotations

import asyncio
from typing import Any

from ..errors import FormatNotSupported, NotSupported, UpstreamError
from ..formats import OFF_LOOP_BYTES, FormatError
from ..jsoncodec import loads
from ..registry.operations import Operation
from ..upstream.client import UpstreamResponse


def decodes(operation: Operation, response: UpstreamResponse) -> bool:
    """Whether the answer is read as data (JSON, or a declared non-JSON format) or passed on raw."""
    return response.is_json if operation.decoder is None else True


async def read_json(operation: Operation, response: UpstreamResponse) -> Any:
    """The answer as JSON-like data (None when empty or not data), converting declared formats.

    A body over `OFF_LOOP_BYTES` is decoded in a worker thread: the decoders are linear and
    bounded, but a large body still takes them a while, and the event loop keeps serving others.
    """
    if operation.decoder is None:
        if response.is_json:
            return await response.json()
        await response.read()
        return None
    raw = await response.read()
    if not raw.strip():
        return None
    try:
        if len(raw) > OFF_LOOP_BYTES:
            return await asyncio.to_thread(operation.decoder, raw, response.charset)
        return operation.decoder(raw, response.charset)
    except FormatNotSupported as exc:  # protobuf, avro: the file is fine, this runtime cannot decode them yet
        raise NotSupported(f"{operation.namespace}.{operation.name}: {exc}") from None
    except FormatError as exc:
        reason = f"answered a body past a limit: {exc}" if exc.limit else f"answered a body that is not valid {exc}"
        raise UpstreamError(operation.namespace, operation.name, reason) from None


def parse_json(raw: bytes, operation: Operation) -> Any:
    """Upstream JSON bytes as data; JSON that is not valid is the upstream's failure."""
    try:
        return loads(raw)
    except (ValueError, RecursionError) as exc:
        raise UpstreamError(operation.namespace, operation.name, f"answered JSON that is not valid ({exc})") from None
