"""All the pages of a paginated consumed operation, on request, up to a cap.

A `Pager` is compiled once per exposed call of an operation whose file declares `pagination`
(engine/spec/paging.py). Only when the caller asks (`allPages`, or `maxPages=N`) does a call
become a `PageWalk`: the first page is fetched before anything is answered (its error status is
answered as one call's would be); then each page's items are yielded as they arrive, so a
streaming edge sends them before the next page is asked for. The walk stops at the last page
(no next cursor or `Link: rel="next"`, a short or empty page, the declared total reached), at a
cursor or URL seen before (a loop), or at the caps (`maxPages`, `maxItems`); a failure on a
later page is an `UpstreamError` naming the page.

Each page is mapped as one call's answer would be: with outputParameters that map to an array,
the mapped array's elements are the items; with none, the items are what `pagination.items`
selects. Any other mapping (an object) has no items to join, so such calls offer no paging.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, replace
import typing
from typing import Any, Protocol
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from urllib.parse import urljoin, urlsplit

from ..errors import CapabilityError, Location, RequestError, UpstreamError
from ..jsonpath import compile_path
from ..jsoncodec import loads
from ..limits import Limits
from ..registry import Operation, Scope
from ..spec.model import OutputParameter, Pagination
from ..upstream import Prepared, Upstream, UpstreamResponse
from .answers import read_json
from .seam import Upstreams

log = logging.getLogger("naftiko.pages")

ALL_PAGES, MAX_PAGES = "allPages", "maxPages"
"""The caller's arguments (REST query parameters, MCP tool arguments) that ask for every page."""
_TRUE = frozenset({True, "true", "1", "yes", "on"})
_FALSE = frozenset({False, "false", "0", "no", "off", ""})


@typing.runtime_checkable  # (imported whole: calls name no runtime, tests/engine/test_calls_seam.py)
class PagedUpstreams(Upstreams, Protocol):
    """What following a `Link` header needs beyond the seam: a request to a URL the upstream gave."""

    @property
    def limits(self) -> Limits:
        """The runtime's limits: all the pages one answer holds are bounded by `upstream-body`."""
        ...

    def send_url(self, operation: Operation, params: Mapping[str, Any], url: str) -> Awaitable[UpstreamResponse]:
        """`send`, with the request's path and query replaced by `url` (same origin, under the base URI)."""
        ...

    def page_url(self, operation: Operation, params: Mapping[str, Any]) -> str:
        """The absolute URL `send` requests: a relative next-page link resolves against it (RFC 3986)."""
        ...


@dataclass(frozen=True, slots=True)
class _Page:
    status: int
    data: Any
    size: int
    link: str | None


class Pager:
    """How one paginated operation's pages are walked, compiled once."""

    __slots__ = ("operation", "spec", "upstreams", "items", "next_cursor", "total", "mapped", "budget", "where")

    def __init__(
        self, operation: Operation, spec: Pagination, upstreams: Upstreams, mapped: bool, where: Location
    ) -> None:
        self.operation, self.spec, self.upstreams, self.mapped, self.where = operation, spec, upstreams, mapped, where
        self.items = compile_path(spec.items)
        self.next_cursor = compile_path(spec.next_cursor) if spec.next_cursor else None
        self.total = compile_path(spec.total) if spec.total else None
        paged = isinstance(upstreams, PagedUpstreams)
        if spec.type == "link" and not paged:
            raise CapabilityError.at(where, f"{operation.key}: link pagination is not available in this runtime")
        self.budget = upstreams.limits.upstream_body if paged else Limits().upstream_body  # type: ignore[attr-defined]

    def arguments(self) -> dict[str, Any]:
        """The JSON Schema properties a paginated tool is advertised with (MCP input schemas)."""
        cap = self.spec.max_pages
        return {
            ALL_PAGES: {
                "type": "boolean",
                "description": f"Fetch every page (at most {cap}, {self.spec.max_items} items) and answer their items.",
            },
            MAX_PAGES: {
                "type": "integer",
                "minimum": 1,
                "maximum": cap,
                "description": f"Fetch at most this many pages (implies allPages; at most {cap}).",
            },
        }

    def through(self, outputs: Sequence[OutputParameter]) -> Pager | None:
        """This pager for a call delegating here (`ref`) with its own outputs: None when those make an object."""
        if not outputs:
            return self
        if not _listed(outputs):
            return None
        return Pager(self.operation, self.spec, self.upstreams, True, self.where)

    def asked(self, params: dict[str, Any]) -> int | None:
        """The pages the caller asked for (their arguments taken out of `params`), or None for one page."""
        every, most = params.pop(ALL_PAGES, None), params.pop(MAX_PAGES, None)
        cap = self.spec.max_pages
        if most is not None:
            number = most if isinstance(most, int) and not isinstance(most, bool) else _integer(most)
            if number is None or not 1 <= number <= cap:
                message = f"'{MAX_PAGES}' must be an integer from 1 to {cap}; got {most!r}"
                raise RequestError(message, parameter=MAX_PAGES)
            return number if every is None or _flag(every) else None
        return cap if every is not None and _flag(every) else None

    def walk(self, params: dict[str, Any], scope: Scope, map_page: Callable[[Any, Scope], Any], pages: int) -> PageWalk:
        return PageWalk(self, params, scope, map_page, pages)


def _flag(value: Any) -> bool:
    key = value.strip().lower() if isinstance(value, str) else value
    if key in _TRUE:
        return True
    if key in _FALSE:
        return False
    raise RequestError(f"'{ALL_PAGES}' must be true or false; got {value!r}", parameter=ALL_PAGES)


def _integer(value: Any) -> int | None:
    return int(value) if isinstance(value, str) and value.strip().isdigit() else None


def compile_pager(
    operation: Operation | None, upstreams: Upstreams, outputs: Sequence[OutputParameter], where: Location
) -> Pager | None:
    """The pager of an exposed call, when it calls a paginated operation and its answer is a list."""
    if operation is None or operation.spec.pagination is None:
        return None
    mapped = bool(outputs)
    if mapped and not _listed(outputs):
        return None  # an object answer has no items to join: this call answers one page
    return Pager(operation, operation.spec.pagination, upstreams, mapped, where)


def _listed(outputs: Sequence[OutputParameter]) -> bool:
    """Whether outputs map an answer to one array, whose elements a page's items then are."""
    return len(outputs) == 1 and outputs[0].type == "array" and outputs[0].value is None


class PageWalk:
    """One caller's walk over the pages: `first()`, then `async for items in walk`."""

    __slots__ = (
        "pager",
        "params",
        "scope",
        "map_page",
        "limit",
        "pages",
        "count",
        "stopped",
        "_first",
        "_bytes",
        "_url",
    )

    def __init__(
        self, pager: Pager, params: dict[str, Any], scope: Scope, map_page: Callable[[Any, Scope], Any], limit: int
    ) -> None:
        self.pager, self.params, self.scope, self.map_page, self.limit = pager, params, scope, map_page, limit
        self.pages = 0  # fetched so far
        self.count = 0  # items yielded so far
        self.stopped = ""  # why the walk ended: last page, loop, maxPages, maxItems
        self._first: _Page | None = None
        self._bytes = 0
        self._url = ""  # link: the absolute URL of the page read last, which a relative next link is resolved against

    @property
    def namespace(self) -> str:
        return self.pager.operation.namespace

    async def first(self) -> tuple[int, list[tuple[str, str]], bytes, str] | None:
        """Fetch the first page; an error status comes back as (status, headers, body, type) to answer as is."""
        operation, spec = self.pager.operation, self.pager.spec
        params = dict(self.params)
        if spec.type == "page" or spec.type == "offset":
            params.setdefault(spec.parameter or "", spec.first)
            if spec.size_parameter and spec.page_size:
                params.setdefault(spec.size_parameter, spec.page_size)
            self.params = params
        response = await self.pager.upstreams.send(operation, params)
        if response.status >= 400:
            body = await response.read()
            return response.status, response.headers(keep_length=False), body, response.content_type
        self._first = await self._read(response)
        if spec.type == "link":
            assert isinstance(self.pager.upstreams, PagedUpstreams)
            self._url = self.pager.upstreams.page_url(operation, params)
        return None

    def __aiter__(self) -> AsyncIterator[list[Any]]:
        return self._pages()

    async def _pages(self) -> AsyncIterator[list[Any]]:
        """Each page's items (the first page's first), fetched one after the other, never ahead."""
        page = self._first
        assert page is not None, "first() comes first"
        spec = self.pager.spec
        first = self._first_token()
        seen: set[str] = set() if first is None else {first}  # a cursor naming the first page again is a loop
        position = self.params.get(spec.parameter or "", spec.first) if spec.type in ("page", "offset") else 0
        while True:
            self.pages += 1
            items = self._items(page.data)
            room = self.pager.spec.max_items - self.count
            if len(items) >= room:
                items, self.stopped = items[:room], "maxItems"
            self.count += len(items)
            yield items
            if self.stopped:
                return
            following = self._next(page, items, position, seen)
            if following is None:
                self.stopped = self.stopped or "last page"
                return
            if self.pages >= self.limit:
                self.stopped = "maxPages"
                return
            position, page = following[0], await self._fetch(following)

    def _items(self, data: Any) -> list[Any]:
        pager = self.pager
        found = self.map_page(data, self.scope) if pager.mapped else pager.items(data)
        if found is None:
            return []
        if not isinstance(found, list):
            raise UpstreamError(
                self.namespace,
                pager.operation.name,
                f"page {self.pages} has no list of items at {pager.spec.items}",
            )
        return found

    def _next(self, page: _Page, items: list[Any], position: Any, seen: set[str]) -> tuple[Any, str] | None:
        """(the next position, the cursor or URL it is sent with), or None at the last page."""
        spec, pager = self.pager.spec, self.pager
        if spec.type == "cursor":
            assert pager.next_cursor is not None
            cursor = pager.next_cursor(page.data)
            if cursor is None or cursor == "" or isinstance(cursor, (bool, list, dict)):
                return None
            return self._unseen(str(cursor), seen)
        if spec.type == "link":
            if page.link is None:
                return None
            seen.add(self._url)
            return self._unseen(urljoin(self._url, page.link), seen)
        if not items or (spec.page_size is not None and len(items) < spec.page_size):
            return None
        if pager.total is not None:
            total = pager.total(page.data)
            if isinstance(total, int) and not isinstance(total, bool) and self.count >= total:
                return None
        step = 1 if spec.type == "page" else len(items)
        number = _integer(position) if isinstance(position, str) else position
        if not isinstance(number, int):
            raise RequestError(f"'{spec.parameter}' must be an integer to page from; got {position!r}")
        return number + step, str(number + step)

    def _unseen(self, token: str, seen: set[str]) -> tuple[str, str] | None:
        if token in seen:
            log.warning(
                "%s: the upstream named the same next page twice (%s); stopping after page %d",
                self.pager.operation.key,
                token[:200],
                self.pages,
            )
            self.stopped = "loop"
            return None
        seen.add(token)
        return token, token

    def _first_token(self) -> str | None:
        if self.pager.spec.type != "cursor":
            return None
        value = self.params.get(self.pager.spec.parameter or "")
        return None if value is None else str(value)

    async def _fetch(self, following: tuple[Any, str]) -> _Page:
        pager, spec = self.pager, self.pager.spec
        operation = pager.operation
        if spec.type == "link":
            assert isinstance(pager.upstreams, PagedUpstreams)
            response = await pager.upstreams.send_url(operation, self.params, following[1])
            self._url = following[1]
        else:
            response = await pager.upstreams.send(operation, {**self.params, spec.parameter or "": following[0]})
        if response.status >= 400:
            await response.read()
            reason = f"answered HTTP {response.status} for page {self.pages + 1}"
            raise UpstreamError(operation.namespace, operation.name, reason)
        return await self._read(response)

    async def _read(self, response: UpstreamResponse) -> _Page:
        operation = self.pager.operation
        link = _next_link(response.headers()) if self.pager.spec.type == "link" else None
        if operation.decoder is None:
            if not response.is_json:
                await response.read()
                raise UpstreamError(
                    operation.namespace, operation.name, f"answered {response.content_type} for page {self.pages + 1}"
                )
            raw = await response.read()
            self._bytes += len(raw)
            if self._bytes > self.pager.budget:
                raise UpstreamError(
                    operation.namespace,
                    operation.name,
                    f"its pages passed {self.pager.budget} bytes together (limit upstream-body)",
                )
            data = _loads(raw, operation)
            return _Page(response.status, data, len(raw), link)
        return _Page(response.status, await read_json(operation, response), 0, link)


def _loads(raw: bytes, operation: Operation) -> Any:
    if not raw.strip():
        return None
    try:
        return loads(raw)
    except (ValueError, RecursionError) as exc:
        raise UpstreamError(operation.namespace, operation.name, f"answered JSON that is not valid ({exc})") from None


_LINK = re.compile(r"<([^>]*)>((?:\s*;\s*[^;,]*)*)")
_REL = re.compile(r"""(?i)(?:^|;)\s*rel\s*=\s*(?:"([^"]*)"|([^\s;,"]+))""")


def _next_link(headers: Sequence[tuple[str, str]]) -> str | None:
    """The target of the first `rel="next"` link of the `Link` headers (RFC 8288), or None."""
    for name, value in headers:
        if name.lower() != "link":
            continue
        for match in _LINK.finditer(value):
            rel = _REL.search(match.group(2) or "")
            if rel is not None and "next" in (rel.group(1) or rel.group(2) or "").lower().split():
                return match.group(1).strip()
    return None


def link_target(base_uri: str, url: str) -> str | None:
    """The request target (path and query after the base URI's path) for `url`, or None when it is
    on another origin or outside the base URI's path: credentials go only where the file sends them."""
    base = urlsplit(base_uri)
    full = urlsplit(urljoin(base_uri + "/", url))
    default = {"http": 80, "https": 443}
    try:
        same = (
            full.scheme == base.scheme
            and full.hostname == base.hostname
            and (full.port or default.get(full.scheme)) == (base.port or default.get(base.scheme))
        )
    except ValueError:  # a port that is not a number
        return None
    prefix = base.path.rstrip("/")
    if not same or not (full.path == prefix or full.path.startswith(prefix + "/")):
        return None
    rest = full.path[len(prefix) :] or "/"
    return rest + ("?" + full.query if full.query else "")


def follow_link(upstream: Upstream, operation: Operation, prepared: Prepared, url: str) -> Awaitable[UpstreamResponse]:
    """Send `prepared` (its headers and credentials) to the next-page `url`, if it is under the base URI."""
    target = link_target(upstream.base_uri, url)
    if target is None:
        raise UpstreamError(
            operation.namespace,
            operation.name,
            f"named a next page outside {upstream.base_uri} ({url[:200]}); it is not followed",
        )
    return upstream.send(operation.key, replace(prepared, target=target))


__all__ = ["ALL_PAGES", "MAX_PAGES", "PageWalk", "Pager", "PagedUpstreams", "compile_pager", "follow_link"]
