"""Tool output schemas derived from outputParameters, over real MCP with the official SDK client.

`naftiko serve` runs as a process against a recording upstream. Every tool is listed and called in
both protocol eras; the SDK client itself validates `structuredContent` against `outputSchema`, and
the test validates it again with `jsonschema` (2020-12), so a schema that lies or a result that does
not fit fails here twice.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any
from collections.abc import Iterator

import jsonschema
import pytest
from mcp import Client, StdioServerParameters

from naftiko import Runtime, load_capabilities
from naftiko.adapters.mcp.capability import CapabilityBackend
from naftiko.adapters.mcp.outputs import OutputTool
from naftiko.engine import McpExposes

from tests.support import NaftikoProcess, ROOT, RecordingUpstream, Reply, SEED, SHARED, ThreadedServer, shared_or_skip

pytestmark = pytest.mark.anyio

ERAS = [("auto", "2026-07-28"), ("legacy", "2025-11-25")]

CAPABILITY = """\
naftiko: "1.0.0-alpha2"
capability:
  aggregates:
    - label: Users
      namespace: users
      functions:
        - name: lookup
          description: One user, reduced.
          call: api.get-user
          outputParameters:
            - type: object
              properties:
                login: {type: string, mapping: $.name}
                active: {type: boolean, mapping: $.active}
        - name: greet
          description: A mock.
          inputParameters:
            - {name: who, type: string, description: Who to greet}
          outputParameters:
            - name: message
              type: string
              value: "Hello, {{who}}!"
            - name: source
              type: string
              value: mock
  exposes:
    - type: mcp
      port: 9300
      namespace: shapes-mcp
      tools:
        - name: get-user
          description: One user.
          call: api.get-user
          outputParameters:
            - type: object
              properties:
                id: {type: integer, mapping: $.id, description: The user's number.}
                name: {type: string, mapping: $.name}
                score: {type: number, mapping: $.score}
                tags:
                  type: array
                  mapping: $.tags
                  items: {type: string}
                address:
                  type: object
                  properties:
                    city: {type: string, mapping: $.address.city}
                kind: {type: string, const: user}
        - name: list-users
          description: Every user.
          call: api.list-users
          outputParameters:
            - type: array
              mapping: $.results
              items:
                type: object
                properties:
                  id: {type: integer, mapping: $.id}
                  name: {type: string, mapping: $.name}
        - name: count-users
          description: How many.
          call: api.list-users
          outputParameters:
            - type: integer
              mapping: $.count
        - name: lookup-user
          description: Through an aggregate function.
          ref: users.lookup
        - name: greet
          ref: users.greet
        - name: user-and-list
          description: Steps with mappings.
          steps:
            - type: call
              name: one
              call: api.get-user
            - type: call
              name: all
              call: api.list-users
          mappings:
            - targetName: user.name
              value: $.one.name
            - targetName: total
              value: $.all.count
        - name: raw-user
          description: The upstream's own answer, no shape.
          call: api.get-user
  consumes:
    - type: http
      namespace: api
      baseUri: http://localhost:1
      resources:
        - path: /users/1
          name: user
          operations:
            - method: GET
              name: get-user
        - path: /users
          name: users
          operations:
            - method: GET
              name: list-users
"""

USER = {"id": 1, "name": "Ada", "score": 9.5, "tags": ["a", "b"], "address": {"city": "Paris"}, "active": True}
USERS = {"count": 2, "results": [{"id": 1, "name": "Ada"}, {"id": 2, "name": "Bob", "extra": 1}]}


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, RecordingUpstream]]:
    recorder = RecordingUpstream()
    path = tmp_path_factory.mktemp("shapes") / "shapes.yaml"
    path.write_text(CAPABILITY)
    with ThreadedServer(recorder) as url:
        recorder.url = url
        process = NaftikoProcess([str(path), "--base-uri", f"api={url}", "--port", "shapes-mcp=0"])
        try:
            yield process.wait_for("shapes-mcp")["shapes-mcp"], recorder
        finally:
            process.stop()


@pytest.fixture
def upstream(served: tuple[str, RecordingUpstream]) -> RecordingUpstream:
    recorder = served[1]
    recorder.replies.clear()
    recorder.reply("GET", "/users/1", Reply(json=USER))
    recorder.reply("GET", "/users", Reply(json=USERS))
    return recorder


def _validate(schema: dict[str, Any], value: Any) -> None:
    jsonschema.Draft202012Validator.check_schema(schema)
    jsonschema.Draft202012Validator(schema).validate(value)


async def _listed(url: str, mode: str) -> dict[str, Any]:
    async with Client(url, mode=mode, cache=None) as mcp:
        return {tool.name: tool.output_schema for tool in (await mcp.list_tools()).tools}


@pytest.mark.parametrize("mode,version", ERAS)
async def test_listed_schemas(served: tuple[str, RecordingUpstream], mode: str, version: str) -> None:
    schemas = await _listed(served[0], mode)
    nullable_string = {"type": ["string", "null"]}
    assert schemas["get-user"] == {
        "type": "object",
        "properties": {
            "id": {"type": ["integer", "null"], "description": "The user's number."},
            "name": nullable_string,
            "score": {"type": ["number", "null"]},
            "tags": {"type": ["array", "null"], "items": nullable_string},
            "address": {"type": "object", "properties": {"city": nullable_string}, "required": ["city"]},
            "kind": {"type": "string", "const": "user"},
        },
        "required": ["id", "name", "score", "tags", "address", "kind"],
    }
    users = {
        "type": ["array", "null"],
        "items": {
            "type": "object",
            "properties": {"id": {"type": ["integer", "null"]}, "name": nullable_string},
            "required": ["id", "name"],
        },
    }
    count = {"type": ["integer", "null"]}
    if version == "2026-07-28":  # any schema at the root
        assert schemas["list-users"] == users and schemas["count-users"] == count
    else:  # an object root: the answer goes under "result"
        assert schemas["list-users"] == {"type": "object", "properties": {"result": users}, "required": ["result"]}
        assert schemas["count-users"]["properties"] == {"result": count}
    assert schemas["lookup-user"]["properties"] == {"login": nullable_string, "active": {"type": ["boolean", "null"]}}
    assert schemas["greet"]["properties"] == {
        "message": {"type": "string"},
        "source": {"type": "string", "const": "mock"},
    }
    assert schemas["user-and-list"] == {
        "type": "object",
        "properties": {"user": {"type": "object", "properties": {"name": {}}}, "total": {}},
    }
    assert schemas["raw-user"] is None, "the upstream's own answer has no known shape"
    for schema in schemas.values():
        if schema is not None:
            jsonschema.Draft202012Validator.check_schema(schema)
            assert version == "2026-07-28" or schema["type"] == "object"


EXPECTED: dict[str, Any] = {
    "get-user": {**{k: USER[k] for k in ("id", "name", "score", "tags", "address")}, "kind": "user"},
    "list-users": [{"id": 1, "name": "Ada"}, {"id": 2, "name": "Bob"}],
    "count-users": 2,
    "lookup-user": {"login": "Ada", "active": True},
    "greet": {"message": "Hello, Nina!", "source": "mock"},
    "user-and-list": {"user": {"name": "Ada"}, "total": 2},
    "raw-user": USER,
}


@pytest.mark.parametrize("mode,version", ERAS)
async def test_every_result_conforms(
    served: tuple[str, RecordingUpstream], upstream: RecordingUpstream, mode: str, version: str
) -> None:
    async with Client(served[0], mode=mode, cache=None) as mcp:
        schemas = {tool.name: tool.output_schema for tool in (await mcp.list_tools()).tools}
        for name, expected in EXPECTED.items():
            result = await mcp.call_tool(name, {"who": "Nina"} if name == "greet" else {})  # the SDK validates
            assert result.is_error is False, (name, result.content)
            wrapped = version != "2026-07-28" and not isinstance(expected, dict)
            assert result.structured_content == ({"result": expected} if wrapped else expected), name
            assert json.loads(result.content[0].text) == expected, "the text stays the answer's JSON"
            if schemas[name] is not None:
                _validate(schemas[name], result.structured_content)


@pytest.mark.parametrize("mode,version", ERAS)
async def test_missing_values_are_null_and_conform(
    served: tuple[str, RecordingUpstream], upstream: RecordingUpstream, mode: str, version: str
) -> None:
    upstream.reply("GET", "/users/1", Reply(json={"id": 3}))
    upstream.reply("GET", "/users", Reply(json={"results": "not a list"}))
    async with Client(served[0], mode=mode, cache=None) as mcp:
        schemas = {tool.name: tool.output_schema for tool in (await mcp.list_tools()).tools}
        user = await mcp.call_tool("get-user", {})
        listed = await mcp.call_tool("list-users", {})
        counted = await mcp.call_tool("count-users", {})
    assert user.structured_content == {
        "id": 3,
        "name": None,
        "score": None,
        "tags": None,
        "address": {"city": None},
        "kind": "user",
    }
    expected_null = None if version == "2026-07-28" else {"result": None}
    assert listed.is_error is False and listed.structured_content == expected_null
    assert counted.is_error is False and counted.structured_content == expected_null
    for name, result in (("get-user", user), ("list-users", listed), ("count-users", counted)):
        _validate(schemas[name], result.structured_content)


@pytest.mark.parametrize("mode,version", ERAS)
async def test_an_empty_answer_stands_for_the_blank_shape(
    served: tuple[str, RecordingUpstream], upstream: RecordingUpstream, mode: str, version: str
) -> None:
    upstream.reply("GET", "/users/1", Reply(status=200, body=b"", content_type="application/json"))
    async with Client(served[0], mode=mode, cache=None) as mcp:
        schemas = {tool.name: tool.output_schema for tool in (await mcp.list_tools()).tools}
        result = await mcp.call_tool("get-user", {})
    assert result.is_error is False
    blank = {"id": None, "name": None, "score": None, "tags": None, "address": {"city": None}, "kind": "user"}
    assert result.structured_content == blank and json.loads(result.content[0].text) == blank
    _validate(schemas["get-user"], result.structured_content)


@pytest.mark.parametrize("mode,version", ERAS)
async def test_an_answer_that_does_not_fit_is_a_tool_error(
    served: tuple[str, RecordingUpstream], upstream: RecordingUpstream, mode: str, version: str
) -> None:
    upstream.reply("GET", "/users/1", Reply(json={**USER, "id": "one"}))
    upstream.reply("GET", "/users", Reply(json={"results": [{"id": 1}, {"id": 2.5}]}))
    async with Client(served[0], mode=mode, cache=None) as mcp:
        user = await mcp.call_tool("get-user", {})
        listed = await mcp.call_tool("list-users", {})
        upstream.reply("GET", "/users/1", Reply(body=b"<html>maintenance</html>", content_type="text/html"))
        html = await mcp.call_tool("get-user", {})
    assert user.is_error is True and user.structured_content is None
    assert user.content[0].text == (
        "the answer does not match the tool's outputSchema at 'id': expected integer or null, got string"
    )
    assert listed.is_error is True and "at '[1].id': expected integer or null, got number" in listed.content[0].text
    assert html.is_error is True and "not JSON" in html.content[0].text
    assert user.meta is not None and user.meta["io.naftiko/error"]["type"] == "output_mismatch"


@pytest.mark.parametrize("mode", ["auto", "legacy"])
async def test_over_stdio(
    served: tuple[str, RecordingUpstream], upstream: RecordingUpstream, tmp_path: Path, mode: str
) -> None:
    path = tmp_path / "shapes.yaml"
    path.write_text(CAPABILITY)
    env = {**os.environ, "NAFTIKO_BASE_URI_API": upstream.url}
    params = StdioServerParameters(
        command=sys.executable, args=["-m", "naftiko", "serve", str(path), "--stdio"], env=env, cwd=str(ROOT)
    )
    async with Client(params, mode=mode, cache=None) as mcp:
        schemas = {tool.name: tool.output_schema for tool in (await mcp.list_tools()).tools}
        for name in ("get-user", "list-users", "count-users"):
            result = await mcp.call_tool(name, {})  # validated by the SDK client against the listed schema
            assert result.is_error is False
            _validate(schemas[name], result.structured_content)


def _backends(paths: list[Path]) -> Iterator[CapabilityBackend]:
    runtime = Runtime(load_capabilities(paths), resolve_environment=False)
    for exposes in runtime.exposes:
        if isinstance(exposes, McpExposes):
            yield CapabilityBackend(runtime, exposes)


def test_the_seed_tools_answer_the_upstream_as_it_is() -> None:
    """The seed maps `$.` with no shape: the upstream's own body, so no tool claims a schema it cannot keep."""
    tools = [tool for backend in _backends([SEED]) for tool in backend.tools]
    assert len(tools) == 19
    assert all(isinstance(tool, OutputTool) and tool.output is None for tool in tools)


def test_every_shared_fixture_lists_valid_schemas() -> None:
    """Every MCP tool of the reference fixtures that loads lists valid 2020-12 schemas, object-rooted in 2025."""
    fixtures = shared_or_skip(SHARED / "spec" / "fixtures")
    counted = 0
    for path in sorted(fixtures.rglob("*.y*ml")):
        try:
            backends = list(_backends([path]))
        except Exception:  # fixtures that must fail, or need what this test does not give
            continue
        for backend in backends:
            for tool in backend.tools:
                assert isinstance(tool, OutputTool)
                if tool.output is not None:
                    counted += 1
                    jsonschema.Draft202012Validator.check_schema(tool.output.modern_schema)
                    jsonschema.Draft202012Validator.check_schema(tool.output.legacy_schema)
                    assert tool.output.legacy_schema["type"] == "object"
    assert counted > 0
