"""Run logs: ``append_log/``, raw ``logs/`` (JSONL) and filtered ``session_logs/``.

Logs are stored exactly as production writes its S3 object: one ``json.dumps``
line per entry, ACP ``agent_message_chunk`` updates dropped. Reads span the resume
chain, oldest run first.
"""

from __future__ import annotations

import json
import time
from datetime import datetime
from typing import Any

from starlette.responses import JSONResponse, Response

from .context import Context
from .errors import validation_error
from .serializers import run_json
from .store import TaskRun
from .validation import MISSING, as_dict, parse_timestamp

NO_CACHE = {"Cache-Control": "no-cache"}


def server_timing(started: float, name: str = "storage") -> dict[str, str]:
    return {"Server-Timing": f"{name};dur={(time.perf_counter() - started) * 1000:.1f}"}


def is_streaming_chunk(entry: dict[str, Any]) -> bool:
    """ACP token chunks are streamed live but never persisted."""
    notification = entry.get("notification")
    if not isinstance(notification, dict) or notification.get("method") != "session/update":
        return False
    params = notification.get("params")
    update = params.get("update") if isinstance(params, dict) else None
    return isinstance(update, dict) and update.get("sessionUpdate") == "agent_message_chunk"


def event_type(entry: dict[str, Any]) -> str:
    """``notification.method``, or the ``sessionUpdate`` kind for ``session/update``; ``""`` if none."""
    notification = entry.get("notification")
    if not isinstance(notification, dict):
        return ""
    method = notification.get("method")
    method = method if isinstance(method, str) else ""
    if method == "session/update":
        params = notification.get("params")
        update = params.get("update") if isinstance(params, dict) else None
        kind = update.get("sessionUpdate") if isinstance(update, dict) else None
        return kind if isinstance(kind, str) else method
    return method


async def append_log(ctx: Context) -> Response:
    started = time.perf_counter()
    _, run = ctx.task_and_run()
    body = await ctx.body()
    entries = body.items("entries", is_required=True)
    if not entries:
        raise validation_error("At least one log entry is required", "entries")
    checked = [as_dict(entry, f"entries__{i}") for i, entry in enumerate(entries)]
    ctx.store.append_log(run, [entry for entry in checked if not is_streaming_chunk(entry)])
    return JSONResponse(run_json(ctx, run), headers=server_timing(started))


def chain_text(ctx: Context, run: TaskRun) -> str:
    """Concatenated logs of the resume chain, each chunk newline-terminated."""
    chunks = []
    for link in ctx.store.resume_chain(run):
        text = ctx.store.log_text(link)
        if text:
            chunks.append(text if text.endswith("\n") else text + "\n")
    return "".join(chunks)


async def logs(ctx: Context) -> Response:
    started = time.perf_counter()
    _, run = ctx.task_and_run()
    text = chain_text(ctx, run)
    headers = {**NO_CACHE, **server_timing(started)}
    return Response(text.encode(), media_type="application/jsonl", headers=headers)


def parse_entries(text: str) -> list[dict[str, Any]]:
    entries = []
    for line in text.splitlines():
        try:
            value = json.loads(line)
        except ValueError:
            continue
        if isinstance(value, dict):
            entries.append(value)
    return entries


def _csv(raw: str | None) -> set[str]:
    return {part.strip() for part in (raw or "").split(",") if part.strip()}


def filter_entries(
    entries: list[dict[str, Any]], after: datetime | None, include: set[str], exclude: set[str]
) -> list[dict[str, Any]]:
    """``after`` (strictly later; undated entries dropped), then include, then exclude."""
    if after is not None:
        entries = [e for e in entries if (ts := parse_timestamp(e.get("timestamp"))) is not None and ts > after]
    if include:
        entries = [e for e in entries if event_type(e) in include]
    if exclude:
        entries = [e for e in entries if event_type(e) not in exclude]
    return entries


async def session_logs(ctx: Context) -> Response:
    """A bare JSON array page plus ``X-Total-Count``/``X-Filtered-Count``/``X-Has-More``."""
    started = time.perf_counter()
    _, run = ctx.task_and_run()
    query = ctx.query()
    after = query.datetime("after")
    limit = query.integer("limit", min_value=1, max_value=5000)
    offset = query.integer("offset", min_value=0)
    limit = 1000 if limit is MISSING else limit
    offset = 0 if offset is MISSING else offset
    params = ctx.request.query_params
    entries = parse_entries(chain_text(ctx, run))
    matching = filter_entries(
        entries, None if after is MISSING else after, _csv(params.get("event_types")), _csv(params.get("exclude_types"))
    )
    page = matching[offset : offset + limit]
    headers = {
        **NO_CACHE,
        **server_timing(started),
        "X-Total-Count": str(len(entries)),
        "X-Filtered-Count": str(len(matching)),
        "X-Matching-Count": str(len(matching)),
        "X-Has-More": "true" if offset + limit < len(matching) else "false",
    }
    return JSONResponse(page, headers=headers)
