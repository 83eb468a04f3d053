"""Upstream pagination in the engine: a broken `pagination` block is a positioned load problem
(file:line:col and key path), and the page walk per style against a real loopback upstream, driven
through the exposed call the adapters use (engine/calls/pages.py)."""

from __future__ import annotations

import json
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import pytest

from naftiko.engine import CapabilityError, Location, Runtime, UpstreamError, load_capabilities
from naftiko.engine.calls.pages import _next_link, link_target
from naftiko.engine.limits import Limits
from naftiko.engine.spec.model import Invocation, OutputParameter
from tests.support import ThreadedServer, read_body

pytestmark = pytest.mark.anyio

CAPABILITY = """\
naftiko: "1.0.0-alpha2"
capability:
  exposes:
    - type: rest
      port: 9330
      namespace: pages-rest
      resources:
        - path: /items
          operations:
            - method: GET
              call: up.items
  consumes:
    - type: http
      namespace: up
      baseUri: http://localhost:1/api
      resources:
        - path: /items
          name: items
          operations:
            - method: GET
              name: items
              inputParameters:
                - name: cursor
                  in: query
                - name: fixed
                  in: query
                  value: "1"
              pagination:
{block}
"""


def _write(tmp_path: Path, block: str) -> tuple[Path, str]:
    text = CAPABILITY.format(block=textwrap.indent(textwrap.dedent(block).strip("\n"), " " * 16))
    path = tmp_path / "paged.yaml"
    path.write_text(text)
    return path, text


def _problems(tmp_path: Path, block: str) -> tuple[list[Any], str]:
    path, text = _write(tmp_path, block)
    with pytest.raises(CapabilityError) as caught:
        Runtime(load_capabilities([path]), resolve_environment=False)
    for problem in caught.value.problems:
        assert problem.location.file == str(path) and problem.location.line > 0 and problem.location.column > 0
    return list(caught.value.problems), text


BROKEN = [
    ("items: $.results", "missing required key 'type'", "pagination:", "pagination.type"),
    ("type: pages", "one of cursor, page, offset, link", "pages", "pagination.type"),
    ("type: cursor\nparameter: cursor", "missing required key 'nextCursor'", "pagination:", "pagination.nextCursor"),
    ("type: offset\nparameter: cursor", "missing required key 'pageSize'", "pagination:", "pagination.pageSize"),
    ("type: link\npageSize: 10", "'pageSize' is for pagination of type page or offset, not link", "10", "pageSize"),
    ("type: link\nnextCursor: $.n", "'nextCursor' is for pagination of type cursor", "$.n", "nextCursor"),
    ("type: page\nparameter: cursor\nsizeParameter: cursor", "missing required key 'pageSize'", "pagination:", ""),
    ("type: link\nitems: $[", "invalid JSONPath '$['", "$[", "items"),
    ("type: cursor\nnextCursor: $.next\nparameter: page", "names 'page', which is not an inputParameter", "page", ""),
    ("type: cursor\nnextCursor: $.next\nparameter: fixed", "whose 'value' is fixed", "fixed", ""),
    ("type: link\nmaxPages: 20000", "maxPages", "20000", "maxPages"),
    ("type: link\nmaxItems: 0", "maxItems", "0", "maxItems"),
    ("type: page\nparameter: cursor\npageSize: -1", "pageSize", "-1", "pageSize"),
]


@pytest.mark.parametrize("block,message,written,key", BROKEN)
def test_a_broken_block_is_a_positioned_problem(
    tmp_path: Path, block: str, message: str, written: str, key: str
) -> None:
    problems, text = _problems(tmp_path, block)
    assert len(problems) == 1, [str(p) for p in problems]
    (problem,) = problems
    assert message in problem.message, str(problem)
    line = text.splitlines()[problem.location.line - 1]
    assert line[problem.location.column - 1 :].startswith(written), (str(problem), line)
    assert "consumes" in problem.location.path and "pagination" in (problem.location.path + line), str(problem)
    if key:
        assert problem.location.path.endswith(key), str(problem)


def test_an_unknown_key_is_a_positioned_warning(tmp_path: Path) -> None:
    path, text = _write(tmp_path, "type: link\npagesize: 10")
    (capability,) = load_capabilities([path])
    operation = capability.consumes[0].resources[0].operations[0]  # type: ignore[union-attr]
    assert operation.pagination is not None and operation.pagination.type == "link"
    line = next(n for n, written in enumerate(text.splitlines(), 1) if "pagesize" in written)
    (warning,) = capability.warnings
    assert warning.startswith(f"{path}:{line}:17: unknown key 'pagesize' is ignored"), warning


def test_defaults(tmp_path: Path) -> None:
    path, _ = _write(tmp_path, "type: page\nparameter: cursor")
    (capability,) = load_capabilities([path])
    paging = capability.consumes[0].resources[0].operations[0].pagination  # type: ignore[union-attr]
    assert paging is not None
    assert (paging.items, paging.first, paging.max_pages, paging.max_items) == ("$", 1, 100, 10_000)


# --------------------------------------------------------------------------- Link headers


@pytest.mark.parametrize(
    "header,target",
    [
        ('<https://a.test/x?page=2>; rel="next"', "https://a.test/x?page=2"),
        ('<https://a.test/1>; rel="prev", <https://a.test/3>; rel="next"', "https://a.test/3"),
        ('<https://a.test/3>; title="a; b"; rel=next', "https://a.test/3"),
        ('<https://a.test/9>; rel="next last"', "https://a.test/9"),
        ('<https://a.test/1>; rel="prev"', None),
        ('<https://a.test/1>; rel="nextpage"', None),
    ],
)
def test_the_next_link_of_a_link_header(header: str, target: str | None) -> None:
    assert _next_link([("Content-Type", "application/json"), ("Link", header)]) == target


@pytest.mark.parametrize(
    "url,target",
    [
        ("http://h.test/api/items?page=2", "/items?page=2"),
        ("http://h.test:80/api/items", "/items"),
        ("/api", "/"),
        ("http://h.test/apix/items", None),  # a sibling path sharing the prefix
        ("http://h.test/other", None),
        ("https://h.test/api/items", None),
        ("http://h.test:8080/api/items", None),
        ("http://evil.test/api/items", None),
        ("//evil.test/api/items", None),
        ("http://h.test:x/api", None),
    ],
)
def test_a_next_url_is_followed_only_under_the_base_uri(url: str, target: str | None) -> None:
    assert link_target("http://h.test/api", url) == target


# --------------------------------------------------------------------------- the walk, per style


class Pages:
    """An upstream answering by path and query through `answer`; records every (path, query)."""

    def __init__(self, answer: Callable[[str, dict[str, str]], tuple[int, Any, dict[str, str]]]) -> None:
        self.answer, self.seen = answer, []  # type: list[tuple[str, dict[str, str]]]

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        if scope["type"] != "http":
            return
        await read_body(receive)
        query = {k: v[0] for k, v in parse_qs(scope["query_string"].decode()).items()}
        self.seen.append((scope["path"], query))
        status, body, headers = self.answer(scope["path"], query)
        head = [(b"content-type", b"application/json"), *((k.encode(), v.encode()) for k, v in headers.items())]
        await send({"type": "http.response.start", "status": status, "headers": head})
        await send({"type": "http.response.body", "body": json.dumps(body).encode()})


def _consumed(block: str, inputs: tuple[str, ...]) -> str:
    params = "".join(f"\n                - name: {p}\n                  in: query" for p in inputs) or " []"
    paging = textwrap.indent(textwrap.dedent(block).strip("\n"), " " * 16)
    return f"""\
naftiko: "1.0.0-alpha2"
capability:
  exposes:
    - type: rest
      port: 9331
      namespace: pages-rest
      resources:
        - path: /items
          operations:
            - method: GET
              call: up.items
  consumes:
    - type: http
      namespace: up
      baseUri: http://localhost:1/api
      resources:
        - path: /items
          name: items
          operations:
            - method: GET
              name: items
              inputParameters:{params}
              pagination:
{paging}
"""


@pytest.fixture
def walk(tmp_path: Path) -> Iterator[Callable[..., Any]]:
    """Serve `answer`, load `block`, and walk the pages of `up.items` as an exposed call would."""
    servers: list[ThreadedServer] = []

    async def run(
        answer: Callable[[str, dict[str, str]], tuple[int, Any, dict[str, str]]],
        block: str,
        inputs: tuple[str, ...] = (),
        params: dict[str, Any] | None = None,
        outputs: tuple[OutputParameter, ...] = (),
        limits: Limits | None = None,
    ) -> tuple[list[list[Any]], Pages, Any]:
        upstream = Pages(answer)
        server = ThreadedServer(upstream)
        servers.append(server)
        url = server.__enter__()
        path = tmp_path / "walk.yaml"
        path.write_text(_consumed(block, inputs))
        runtime = Runtime(load_capabilities([path]), base_uris={"up": url + "/api"}, limits=limits)
        call = runtime.exposed_call(Invocation(call="up.items", output_parameters=outputs), Location(str(path)))
        outcome = await call.invoke(dict(params or {"allPages": "true"}), stream=True)
        if outcome.pages is None:
            return [], upstream, outcome
        return [items async for items in outcome.pages], upstream, outcome.pages

    yield run
    for server in servers:
        server.__exit__(None, None, None)


async def test_cursor_pages_until_no_cursor(walk: Callable[..., Any]) -> None:
    def answer(path: str, q: dict[str, str]) -> tuple[int, Any, dict[str, str]]:
        n = int(q.get("after", 0))
        return 200, {"data": {"rows": [n, n + 1]}, "meta": {"after": n + 2 if n < 4 else None}}, {}

    pages, upstream, page_walk = await walk(
        answer, "type: cursor\nitems: $.data.rows\nnextCursor: $.meta.after\nparameter: after", ("after",)
    )
    assert pages == [[0, 1], [2, 3], [4, 5]]
    assert [q for _, q in upstream.seen] == [{}, {"after": "2"}, {"after": "4"}]  # a number cursor, sent as text
    assert (page_walk.pages, page_walk.count, page_walk.stopped) == (3, 6, "last page")


async def test_an_empty_cursor_ends_and_the_callers_first_cursor_is_sent(walk: Callable[..., Any]) -> None:
    def answer(path: str, q: dict[str, str]) -> tuple[int, Any, dict[str, str]]:
        return 200, {"items": [q["c"]], "next": {"x": "y", "y": ""}[q["c"]]}, {}

    pages, upstream, _ = await walk(
        answer, "type: cursor\nitems: $.items\nnextCursor: $.next\nparameter: c", ("c",), {"c": "x", "allPages": "1"}
    )
    assert pages == [["x"], ["y"]] and len(upstream.seen) == 2


async def test_a_cursor_naming_the_first_page_again_is_a_loop(walk: Callable[..., Any]) -> None:
    def answer(path: str, q: dict[str, str]) -> tuple[int, Any, dict[str, str]]:
        return 200, {"items": [q["c"]], "next": {"a": "b", "b": "a"}[q["c"]]}, {}

    pages, upstream, page_walk = await walk(
        answer, "type: cursor\nitems: $.items\nnextCursor: $.next\nparameter: c", ("c",), {"c": "a", "allPages": True}
    )
    assert pages == [["a"], ["b"]] and page_walk.stopped == "loop" and len(upstream.seen) == 2


async def test_page_numbers_stop_at_the_declared_total(walk: Callable[..., Any]) -> None:
    def answer(path: str, q: dict[str, str]) -> tuple[int, Any, dict[str, str]]:
        n = int(q["p"])
        return 200, {"total": 4, "list": [2 * n, 2 * n + 1]}, {}  # never a short page: only the total stops it

    pages, upstream, _ = await walk(
        answer,
        "type: page\nitems: $.list\nparameter: p\nsizeParameter: n\npageSize: 2\nfirstPage: 0\ntotal: $.total",
        ("p", "n"),
    )
    assert pages == [[0, 1], [2, 3]]
    assert [q for _, q in upstream.seen] == [{"p": "0", "n": "2"}, {"p": "1", "n": "2"}]


async def test_offsets_step_by_the_items_read_and_stop_at_an_empty_page(walk: Callable[..., Any]) -> None:
    def answer(path: str, q: dict[str, str]) -> tuple[int, Any, dict[str, str]]:
        start = int(q["o"])
        return 200, list(range(10))[start : start + 4], {}

    pages, upstream, _ = await walk(answer, "type: offset\nparameter: o\npageSize: 4", ("o",), {"maxPages": "9"})
    assert pages == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]
    assert [q["o"] for _, q in upstream.seen] == ["0", "4", "8"]  # no sizeParameter: nothing sent for the size


async def test_a_mapped_array_gives_the_items(walk: Callable[..., Any]) -> None:
    def answer(path: str, q: dict[str, str]) -> tuple[int, Any, dict[str, str]]:
        n = int(q.get("c") or 0)
        return 200, {"rows": [{"id": n, "secret": "x"}], "next": str(n + 1) if n < 2 else None}, {}

    here = Location("t")
    item = OutputParameter(
        type="object", where=here, properties={"key": OutputParameter(type="number", where=here, mapping="$.id")}
    )
    outputs = (OutputParameter(type="array", where=here, mapping="$.rows", items=item),)
    pages, _, _ = await walk(answer, "type: cursor\nnextCursor: $.next\nparameter: c", ("c",), outputs=outputs)
    assert pages == [[{"key": 0}], [{"key": 1}], [{"key": 2}]]


async def test_link_pages_resolve_relative_targets_against_the_page_before(walk: Callable[..., Any]) -> None:
    links = {
        ("/api/items", ""): "<?page=2>; rel=next",
        ("/api/items", "2"): '<more/3>; rel="next"',
        ("/api/more/3", ""): '<../items?page=4>; rel="next"',
        ("/api/items", "4"): "",
    }

    def answer(path: str, q: dict[str, str]) -> tuple[int, Any, dict[str, str]]:
        link = links[(path, q.get("page", ""))]
        return 200, [path + "?" + q.get("page", "")], {"Link": link} if link else {}

    pages, upstream, _ = await walk(answer, "type: link")
    assert [p for p, _ in upstream.seen] == ["/api/items", "/api/items", "/api/more/3", "/api/items"]
    assert len(pages) == 4


async def test_a_link_back_to_the_first_page_is_a_loop(walk: Callable[..., Any]) -> None:
    def answer(path: str, q: dict[str, str]) -> tuple[int, Any, dict[str, str]]:
        return 200, [1], {"Link": "<items>; rel=next" if q else "<items?again=1>; rel=next"}

    pages, upstream, page_walk = await walk(answer, "type: link")
    assert pages == [[1], [1]] and page_walk.stopped == "loop" and len(upstream.seen) == 2


async def test_a_link_off_the_base_uri_fails_the_walk(walk: Callable[..., Any]) -> None:
    def answer(path: str, q: dict[str, str]) -> tuple[int, Any, dict[str, str]]:
        return 200, [1], {"Link": "</elsewhere>; rel=next"}

    with pytest.raises(UpstreamError, match="outside .*/api"):
        await walk(answer, "type: link")


async def test_a_first_page_error_is_answered_as_one_call(walk: Callable[..., Any]) -> None:
    def answer(path: str, q: dict[str, str]) -> tuple[int, Any, dict[str, str]]:
        return 404, {"message": "gone"}, {}

    pages, upstream, outcome = await walk(answer, "type: link")
    assert pages == [] and outcome.status == 404 and json.loads(outcome.body) == {"message": "gone"}


async def test_all_pages_together_are_bounded_by_upstream_body(walk: Callable[..., Any]) -> None:
    def answer(path: str, q: dict[str, str]) -> tuple[int, Any, dict[str, str]]:
        n = int(q.get("c") or 0)
        return 200, {"rows": ["x" * 400], "next": str(n + 1)}, {}

    with pytest.raises(UpstreamError, match="upstream-body"):
        await walk(
            answer,
            "type: cursor\nitems: $.rows\nnextCursor: $.next\nparameter: c",
            ("c",),
            limits=Limits(upstream_body=1000),
        )


async def test_a_non_list_at_items_fails_naming_the_page(walk: Callable[..., Any]) -> None:
    def answer(path: str, q: dict[str, str]) -> tuple[int, Any, dict[str, str]]:
        return 200, {"rows": {"not": "a list"}}, {}

    with pytest.raises(UpstreamError, match="page 1 has no list of items at \\$.rows"):
        await walk(answer, "type: link\nitems: $.rows")
