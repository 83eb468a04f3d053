"""DRF ``LimitOffsetPagination`` as PostHog configures it (default 50, max 100)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TypeVar
from urllib.parse import urlencode

from starlette.requests import Request

DEFAULT_LIMIT = 50
MAX_LIMIT = 100

T = TypeVar("T")


def _positive_int(raw: str | None, *, strict: bool, cutoff: int | None = None) -> int | None:
    """DRF's helper: ``None`` when absent or invalid (callers fall back to the default)."""
    if raw is None:
        return None
    try:
        value = int(raw)
    except ValueError:
        return None
    if value < 0 or (strict and value == 0):
        return None
    return min(value, cutoff) if cutoff else value


def limit_offset(request: Request) -> tuple[int, int]:
    limit = _positive_int(request.query_params.get("limit"), strict=True, cutoff=MAX_LIMIT) or DEFAULT_LIMIT
    offset = _positive_int(request.query_params.get("offset"), strict=False) or 0
    return limit, offset


def _page_url(request: Request, limit: int, offset: int | None) -> str:
    """Absolute URL with the slash-terminated path and the original query, re-paged."""
    path = request.url.path if request.url.path.endswith("/") else request.url.path + "/"
    params = [(k, v) for k, v in request.query_params.multi_items() if k not in ("limit", "offset")]
    params.append(("limit", str(limit)))
    if offset:
        params.append(("offset", str(offset)))
    base = str(request.base_url).rstrip("/")
    return f"{base}{path}?{urlencode(params)}"


def paginate(request: Request, items: Sequence[T], render: Callable[[T], Any]) -> dict[str, Any]:
    """``{"count", "next", "previous", "results"}``; ``previous`` drops ``offset`` on the first page."""
    limit, offset = limit_offset(request)
    count = len(items)
    page = items[offset : offset + limit]
    next_url = _page_url(request, limit, offset + limit) if offset + limit < count else None
    if offset <= 0:
        previous_url = None
    else:
        previous_url = _page_url(request, limit, max(offset - limit, 0) or None)
    return {"count": count, "next": next_url, "previous": previous_url, "results": [render(i) for i in page]}
