"""Every page of a paginated call, streamed to a REST caller as JSON lines (`application/x-ndjson`).

One item a line, each page's lines sent as one chunk as soon as that page is read, before the
next page is asked for. The status (200) is sent with the first page, so a failure on a later
page cannot change it: the stream then ends normally with a last line
`{"error": {"type", "message", "upstream"}}` naming the upstream, and the failure is logged.
A caller that goes away releases the upstream call in flight.
"""

from __future__ import annotations

import asyncio
import logging

from starlette.types import Receive, Scope, Send

from ...engine import NaftikoError, PageWalk, UpstreamError, UpstreamTimeout, dumps
from ..edges import DisconnectWatch

log = logging.getLogger("naftiko.rest")

CONTENT_TYPE = b"application/x-ndjson"


class PageLines:
    """The ASGI response streaming a `PageWalk` as JSON lines."""

    __slots__ = ("walk", "what", "watch", "status")

    def __init__(self, walk: PageWalk, what: str, watch: DisconnectWatch) -> None:
        self.walk, self.what, self.watch, self.status = walk, what, watch, 200

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        walk, watch = self.walk, self.watch
        headers = [(b"content-type", CONTENT_TYPE), (b"x-content-type-options", b"nosniff")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        last = b""
        task = watch.enter(receive)
        try:
            async for items in walk:
                if items:
                    body = b"".join(dumps(item) + b"\n" for item in items)
                    await send({"type": "http.response.body", "body": body, "more_body": True})
        except asyncio.CancelledError:
            if watch.gone(task):
                return
            raise
        except OSError:
            return  # the caller is gone (ASGI 2.4 servers fail `send`)
        except NaftikoError as exc:
            last = _error_line(exc, walk.namespace, walk.pages)
            log.warning("%s: %s; the page stream ended after %d pages", self.what, exc, walk.pages)
        finally:
            watch.leave(task)
        await send({"type": "http.response.body", "body": last, "more_body": False})


def _error_line(exc: NaftikoError, namespace: str, pages: int) -> bytes:
    """The last line of a stream a failure ended: what an error body would have said, and the pages sent."""
    kind = "upstream_timeout" if isinstance(exc, UpstreamTimeout) else "upstream_error"
    if not isinstance(exc, UpstreamError):
        kind = "bad_request" if type(exc).__name__ == "RequestError" else "error"
    error = {"type": kind, "message": str(exc), "upstream": getattr(exc, "namespace", namespace), "pages": pages}
    return dumps({"error": error}) + b"\n"


__all__ = ["PageLines", "CONTENT_TYPE"]
