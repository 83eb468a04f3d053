"""``GET runs/{id}/stream/``: real server-sent events, delivered as the run progresses.

Frames follow production: unnamed ``data:`` frames with ``id: <ms>-<seq>`` for
events, ``event: keepalive`` after an idle period, ``event: stream-end`` when the
run finishes (the internal sentinel itself is never sent), and ``event: end`` with
``{"type": "rotated"}`` when a connection reaches its lifetime cap. Resume with
``Last-Event-ID``; ``?start=latest`` skips history.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from typing import Any

from starlette.responses import Response, StreamingResponse

from .context import Context, Settings
from .events import RunStream, StreamId, format_id, parse_id


def frame(data: dict[str, Any], *, event: str | None = None, event_id: StreamId | None = None) -> str:
    lines = []
    if event:
        lines.append(f"event: {event}")
    if event_id is not None:
        lines.append(f"id: {format_id(event_id)}")
    lines.append(f"data: {json.dumps(data)}")
    return "\n".join(lines) + "\n\n"


def start_cursor(ctx: Context, stream: RunStream) -> StreamId:
    """Strictly after ``Last-Event-ID``; else after the newest entry for ``start=latest``; else from 0."""
    last_event_id = parse_id(ctx.request.headers.get("last-event-id"))
    if last_event_id is not None:
        return last_event_id
    if ctx.request.query_params.get("start") == "latest":
        return stream.last_id
    return (0, 0)


async def frames(stream: RunStream, cursor: StreamId, settings: Settings) -> AsyncIterator[str]:
    opened = last_sent = time.monotonic()
    while True:
        for entry in stream.read_after(cursor):
            cursor = entry.id
            if entry.is_end:
                yield frame({"status": "complete"}, event="stream-end")
                return
            yield frame(entry.data or {}, event_id=entry.id)
            last_sent = time.monotonic()
        now = time.monotonic()
        if now - opened >= settings.stream_max_seconds:
            yield frame({"type": "rotated"}, event="end")
            return
        if now - last_sent >= settings.stream_keepalive_seconds:
            yield frame({"type": "keepalive"}, event="keepalive")
            last_sent = now
        wait = min(
            settings.stream_keepalive_seconds - (now - last_sent),
            settings.stream_max_seconds - (now - opened),
        )
        await stream.wait(max(wait, 0.01))


async def stream_run(ctx: Context) -> Response:
    _, run = ctx.task_and_run()  # 404s happen before streaming starts
    stream = ctx.store.streams[run.id]
    headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
    body = frames(stream, start_cursor(ctx, stream), ctx.standin.settings)
    return StreamingResponse(body, media_type="text/event-stream", headers=headers)
