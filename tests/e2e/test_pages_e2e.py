"""Upstream pagination end to end: a real `naftiko serve` process in front of a loopback upstream that
pages in each style (cursor, page, offset, Link rel=next), counting its requests. REST `?allPages=true`
answers JSON lines read as they come; MCP `allPages`/`maxPages` answers one array, through the official
SDK client in both protocol eras."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import httpx
import pytest
from mcp import Client

from tests.support import NaftikoProcess, ThreadedServer, read_body

ERAS = [("auto", "2026-07-28"), ("legacy", "2025-11-25")]
ITEMS = [{"id": n} for n in range(1, 8)]  # seven items: pages of three are 3, 3, 1


@dataclass
class PagingUpstream:
    """Answers each paging style under /api; records (path, query) of every request it was sent."""

    seen: list[tuple[str, dict[str, str]]] = field(default_factory=list)
    gate: threading.Event = field(default_factory=threading.Event)
    dropped: int = 0  # page requests whose connection naftiko closed before they were answered
    url: str = ""

    def count(self, path: str) -> int:
        return sum(1 for p, _ in self.seen if p == path)

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        if scope["type"] != "http":
            return
        await read_body(receive)
        path = scope["path"]
        query = {k: v[0] for k, v in parse_qs(scope["query_string"].decode()).items()}
        self.seen.append((path, query))
        if path == "/api/held" and query.get("cursor") == "2":  # answers only when naftiko lets go of it
            message = await asyncio.wait_for(receive(), 10)
            self.dropped += message["type"] == "http.disconnect"
            return
        status, body, headers = await self._answer(path, query)
        raw = json.dumps(body).encode()
        head = [(b"content-type", b"application/json"), *((k.encode(), v.encode()) for k, v in headers.items())]
        await send({"type": "http.response.start", "status": status, "headers": head})
        await send({"type": "http.response.body", "body": raw})

    async def _answer(self, path: str, q: dict[str, str]) -> tuple[int, Any, dict[str, str]]:
        if path == "/api/cursor":  # "" -> c2 -> c3 -> end
            following = {"": "c2", "c2": "c3", "c3": None}[q.get("cursor", "")]
            page = {"": ITEMS[:3], "c2": ITEMS[3:6], "c3": ITEMS[6:]}[q.get("cursor", "")]
            return 200, {"results": page, "next": following}, {}
        if path == "/api/endless":  # always a next cursor: two items a page
            n = int(q.get("cursor") or 0)
            return 200, {"results": [{"id": 2 * n}, {"id": 2 * n + 1}], "next": str(n + 1)}, {}
        if path == "/api/loop":  # names the same next cursor again and again
            return 200, {"results": [{"at": q.get("cursor", "")}], "next": "again"}, {}
        if path == "/api/gated":  # the second page waits for the test's signal
            if q.get("cursor") == "2":
                await asyncio.to_thread(self.gate.wait, 10)
                return 200, {"results": [{"id": 2}], "next": None}, {}
            return 200, {"results": [{"id": 1}], "next": "2"}, {}
        if path == "/api/held":
            return 200, {"results": [{"id": 1}], "next": "2"}, {}
        if path == "/api/failing":  # the second page fails
            if q.get("cursor") == "2":
                return 503, {"message": "down"}, {}
            return 200, {"results": [{"id": 1}], "next": "2"}, {}
        if path == "/api/page":
            number, size = int(q["page"]), int(q["size"])
            return 200, {"data": ITEMS[(number - 1) * size : number * size], "count": len(ITEMS)}, {}
        if path == "/api/offset":
            start, size = int(q["offset"]), int(q["limit"])
            return 200, ITEMS[start : start + size], {}
        if path.startswith("/api/v1/"):  # Link: ?page=2 (query), then items3 (path), then an absolute path
            steps = {
                ("/api/v1/items", ""): ('<?page=2>; rel="next"', ITEMS[:2]),
                ("/api/v1/items", "2"): ('<items3>; rel="next"', ITEMS[2:4]),
                ("/api/v1/items3", ""): ('</api/v1/items4?x=1>; rel="next", </api/v1/items>; rel="first"', ITEMS[4:6]),
                ("/api/v1/items4", ""): ("", ITEMS[6:]),
            }
            link, page = steps[(path, q.get("page", ""))]
            return 200, page, {"link": link} if link else {}
        if path == "/api/cross":
            return 200, [{"id": 1}], {"link": '<http://127.0.0.2:9/api/cross?page=2>; rel="next"'}
        return 404, {"message": "no such page"}, {}


CURSOR = "type: cursor\nitems: $.results\nnextCursor: $.next\nparameter: cursor"
OPERATIONS = {
    "cursor": CURSOR,
    "endless": CURSOR + "\nmaxPages: 5\nmaxItems: 7",
    "loop": CURSOR,
    "gated": CURSOR,
    "failing": CURSOR,
    "held": CURSOR,
    "page": "type: page\n  items: $.data\n  parameter: page\n  sizeParameter: size\n  pageSize: 3\n  total: $.count",
    "offset": "type: offset\n  parameter: offset\n  sizeParameter: limit\n  pageSize: 3",
    "v1/items": "type: link",
    "cross": "type: link",
    "missing": "type: link",
}
PARAMS = {"cursor": ["cursor"], "endless": ["cursor"], "loop": ["cursor"], "gated": ["cursor"]}
PARAMS.update({"failing": ["cursor"], "held": ["cursor"], "page": ["page", "size"], "offset": ["offset", "limit"]})


def _name(path: str) -> str:
    return path.replace("/", "-")


# `ref` to a function calling a paginated operation pages too; the route's own array mapping maps each page.
REF_OUTPUTS = """
              outputParameters:
                - type: array
                  mapping: $.results
                  items:
                    type: object
                    properties:
                      key:
                        type: number
                        mapping: $.id
"""
REF_ROUTE = (
    "\n        - path: /ref-cursor\n          operations:\n            - method: GET\n"
    "              ref: listing.cursor-items" + REF_OUTPUTS
)
REF_TOOL = "\n        - name: ref-cursor\n          description: through ref\n          ref: listing.cursor-items\n"


def _capability() -> str:
    consumed, routes, tools = "", "", ""
    for path, paging in OPERATIONS.items():
        inputs = "".join(f"\n                - name: {p}\n                  in: query" for p in PARAMS.get(path, []))
        block = "\n                ".join(line.strip() for line in paging.splitlines())
        consumed += f"""
        - path: /{path}
          name: {_name(path)}
          operations:
            - method: GET
              name: {_name(path)}
              inputParameters:{inputs or " []"}
              pagination:
                {block}
"""
        routes += f"""
        - path: /{_name(path)}
          operations:
            - method: GET
              call: up.{_name(path)}
"""
        tools += (
            f"\n        - name: {_name(path)}\n          description: {path} pages\n          call: up.{_name(path)}\n"
        )
    routes += REF_ROUTE
    tools += REF_TOOL
    return f"""\
naftiko: "1.0.0-alpha2"
capability:
  aggregates:
    - label: Listing
      namespace: listing
      functions:
        - name: cursor-items
          description: The cursor pages, through an aggregate function
          call: up.cursor
  exposes:
    - type: rest
      port: 9320
      namespace: pages-rest
      resources:{routes}
    - type: mcp
      port: 9321
      namespace: pages-mcp
      tools:{tools}
  consumes:
    - type: http
      namespace: up
      baseUri: http://localhost:1/api
      resources:{consumed}
"""


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[dict[str, str], PagingUpstream]]:
    upstream = PagingUpstream()
    path: Path = tmp_path_factory.mktemp("pages") / "pages.yaml"
    path.write_text(_capability())
    with ThreadedServer(upstream) as url:
        upstream.url = url
        args = [str(path), "--base-uri", f"up={url}/api", "--port", "pages-rest=0", "--port", "pages-mcp=0"]
        process = NaftikoProcess(args)
        try:
            yield process.wait_for("pages-rest", "pages-mcp"), upstream
        finally:
            process.stop()


def _lines(answer: httpx.Response) -> list[Any]:
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"] == "application/x-ndjson"
    return [json.loads(line) for line in answer.text.splitlines()]


def _get(served: tuple[dict[str, str], PagingUpstream], name: str, **query: str) -> httpx.Response:
    return httpx.get(f"{served[0]['pages-rest']}/{name}", params=query, timeout=15)


# --------------------------------------------------------------------------- REST, per style


@pytest.mark.parametrize("name,path", [("cursor", "/api/cursor"), ("page", "/api/page"), ("offset", "/api/offset")])
def test_every_page_as_json_lines(served: tuple[dict[str, str], PagingUpstream], name: str, path: str) -> None:
    before = served[1].count(path)
    assert _lines(_get(served, name, allPages="true")) == ITEMS
    assert served[1].count(path) - before == 3


def test_a_ref_to_a_paginated_function_pages_with_its_own_mapping(
    served: tuple[dict[str, str], PagingUpstream],
) -> None:
    before = served[1].count("/api/cursor")
    assert _lines(_get(served, "ref-cursor", allPages="true")) == [{"key": item["id"]} for item in ITEMS]
    assert served[1].count("/api/cursor") - before == 3
    one = _get(served, "ref-cursor")
    assert one.status_code == 200 and one.json() == [{"key": item["id"]} for item in ITEMS[:3]]


def test_page_and_offset_send_their_numbers_and_size(served: tuple[dict[str, str], PagingUpstream]) -> None:
    upstream = served[1]
    _get(served, "page", allPages="true")
    assert [q for p, q in upstream.seen if p == "/api/page"][-3:] == [{"page": str(n), "size": "3"} for n in (1, 2, 3)]
    _get(served, "offset", allPages="true")
    offsets = [q for p, q in upstream.seen if p == "/api/offset"][-3:]
    assert offsets == [{"offset": str(n), "limit": "3"} for n in (0, 3, 6)]


def test_link_relative_targets_resolve_against_the_previous_page(
    served: tuple[dict[str, str], PagingUpstream],
) -> None:
    upstream = served[1]
    before = len(upstream.seen)
    assert _lines(_get(served, "v1-items", allPages="true")) == ITEMS
    walked = [(p, q) for p, q in upstream.seen[before:]]
    assert walked == [
        ("/api/v1/items", {}),
        ("/api/v1/items", {"page": "2"}),  # <?page=2> against /api/v1/items
        ("/api/v1/items3", {}),  # <items3> against /api/v1/items?page=2
        ("/api/v1/items4", {"x": "1"}),  # an absolute path, still under the base URI
    ]


def test_without_asking_one_page_is_fetched(served: tuple[dict[str, str], PagingUpstream]) -> None:
    upstream = served[1]
    before = upstream.count("/api/cursor")
    answer = _get(served, "cursor")
    assert answer.status_code == 200 and answer.headers["content-type"].startswith("application/json")
    assert answer.json()["results"] == ITEMS[:3]
    assert upstream.count("/api/cursor") - before == 1
    assert _get(served, "cursor", allPages="false").json()["results"] == ITEMS[:3]
    assert _get(served, "cursor", allPages="false", maxPages="3").json()["results"] == ITEMS[:3]
    assert upstream.count("/api/cursor") - before == 3


def test_a_first_page_failure_answers_as_one_call_would(served: tuple[dict[str, str], PagingUpstream]) -> None:
    single, every = _get(served, "missing"), _get(served, "missing", allPages="true")
    assert single.status_code >= 400 and every.status_code == single.status_code
    assert every.headers["content-type"] == single.headers["content-type"] and every.json() == single.json()


def test_first_line_arrives_before_the_last_page_is_served(served: tuple[dict[str, str], PagingUpstream]) -> None:
    upstream = served[1]
    upstream.gate.clear()
    url = f"{served[0]['pages-rest']}/gated"
    with httpx.stream("GET", url, params={"allPages": "true"}, timeout=15) as answer:
        lines = answer.iter_lines()
        assert json.loads(next(lines)) == {"id": 1}  # the upstream is still holding page 2
        assert not upstream.gate.is_set()
        upstream.gate.set()
        assert [json.loads(line) for line in lines if line] == [{"id": 2}]


def test_a_caller_going_away_releases_the_page_in_flight(served: tuple[dict[str, str], PagingUpstream]) -> None:
    upstream = served[1]
    with httpx.stream("GET", f"{served[0]['pages-rest']}/held", params={"allPages": "true"}, timeout=15) as answer:
        assert json.loads(next(answer.iter_lines())) == {"id": 1}
    deadline = time.monotonic() + 5
    while upstream.dropped == 0 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert upstream.dropped == 1, "the second page's upstream request was left open"
    assert _lines(_get(served, "cursor", allPages="true")) == ITEMS


def test_max_pages_asked_and_caps_declared(served: tuple[dict[str, str], PagingUpstream]) -> None:
    upstream = served[1]
    before = upstream.count("/api/endless")
    assert _lines(_get(served, "endless", maxPages="2")) == [{"id": n} for n in range(4)]
    assert upstream.count("/api/endless") - before == 2
    # allPages: the file's maxItems (7) ends it on page 4, before its maxPages (5)
    assert _lines(_get(served, "endless", allPages="true")) == [{"id": n} for n in range(7)]
    assert upstream.count("/api/endless") - before == 6
    too_many = _get(served, "endless", maxPages="6")
    assert too_many.status_code == 400
    assert "'maxPages' must be an integer from 1 to 5" in too_many.text


def test_a_repeated_cursor_stops_the_walk(served: tuple[dict[str, str], PagingUpstream]) -> None:
    upstream = served[1]
    before = upstream.count("/api/loop")
    assert _lines(_get(served, "loop", allPages="true")) == [{"at": ""}, {"at": "again"}]
    assert upstream.count("/api/loop") - before == 2


def test_a_cross_origin_link_ends_with_an_error_line(served: tuple[dict[str, str], PagingUpstream]) -> None:
    lines = _lines(_get(served, "cross", allPages="true"))
    assert lines[0] == {"id": 1}
    error = lines[-1]["error"]
    assert len(lines) == 2 and error["upstream"] == "up" and error["type"] == "upstream_error"
    assert "outside" in error["message"] and "not followed" in error["message"]


def test_a_later_page_failure_ends_with_an_error_line(served: tuple[dict[str, str], PagingUpstream]) -> None:
    lines = _lines(_get(served, "failing", allPages="true"))
    assert lines[0] == {"id": 1}
    error = lines[1]["error"]
    assert len(lines) == 2 and error["upstream"] == "up" and error["pages"] == 1
    assert "503" in error["message"] and "page 2" in error["message"]


def test_a_bad_all_pages_value_is_a_400(served: tuple[dict[str, str], PagingUpstream]) -> None:
    answer = _get(served, "cursor", allPages="maybe")
    assert answer.status_code == 400 and "'allPages' must be true or false" in answer.text


# --------------------------------------------------------------------------- MCP


@pytest.mark.anyio
@pytest.mark.parametrize("mode,version", ERAS)
async def test_mcp_all_pages_and_max_pages(
    served: tuple[dict[str, str], PagingUpstream], mode: str, version: str
) -> None:
    upstream = served[1]
    async with Client(served[0]["pages-mcp"], mode=mode, cache=None) as mcp:
        assert mcp.protocol_version == version
        tools = {tool.name: tool for tool in (await mcp.list_tools()).tools}
        schema = tools["endless"].input_schema["properties"]
        assert schema["allPages"]["type"] == "boolean" and schema["maxPages"]["maximum"] == 5
        before = upstream.count("/api/cursor")
        every = await mcp.call_tool("cursor", {"allPages": True})
        assert upstream.count("/api/cursor") - before == 3
        one = await mcp.call_tool("cursor", {})
        assert upstream.count("/api/cursor") - before == 4
        two = await mcp.call_tool("endless", {"maxPages": 2})
        failing = await mcp.call_tool("failing", {"allPages": True})
        through = await mcp.call_tool("ref-cursor", {"allPages": True})
        assert "allPages" in tools["ref-cursor"].input_schema["properties"]
    assert every.is_error is False and json.loads(every.content[0].text) == ITEMS
    assert one.is_error is False and json.loads(one.content[0].text)["results"] == ITEMS[:3]
    assert json.loads(two.content[0].text) == [{"id": n} for n in range(4)]
    assert failing.is_error is True and "page 2" in failing.content[0].text
    assert through.is_error is False and json.loads(through.content[0].text) == ITEMS
