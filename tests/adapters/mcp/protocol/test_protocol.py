"""In-process checks of the dispatcher, the schema validator and the HTTP app's options."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from naftiko.adapters.mcp.backend import McpError, McpTool, ServerInfo, StaticBackend, ToolResult
from naftiko.adapters.mcp.eras import is_modern_message
from naftiko.adapters.mcp.http import McpHttpApp
from naftiko.adapters.mcp.jsonrpc import decode_message, encode_message
from naftiko.adapters.mcp.protocol import McpProtocol
from naftiko.adapters.mcp.schema import compile_schema

from tests.adapters.mcp.protocol.conftest import META
from tests.adapters.mcp.protocol.fake_server import build_backend

pytestmark = pytest.mark.anyio


def rpc(method: str, params: dict[str, Any] | None = None, id: Any = 1) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": id, "method": method, **({"params": params} if params is not None else {})}


# ------------------------------------------------------------------ dispatcher


async def test_capabilities_follow_the_backend() -> None:
    bare = McpProtocol(StaticBackend(info=ServerInfo(name="bare")))
    reply = await bare.handle(rpc("initialize", {"protocolVersion": "2025-03-26"}))
    assert reply is not None
    assert reply["result"] == {
        "protocolVersion": "2025-03-26",
        "capabilities": {"tools": {}},
        "serverInfo": {"name": "bare", "version": "1.0.0"},
    }
    assert await bare.handle(rpc("resources/list")) == {"jsonrpc": "2.0", "id": 1, "result": {"resources": []}}


async def test_pages_and_cursors() -> None:
    protocol = McpProtocol(build_backend(extra_tools=3), page_size=4)
    first = (await protocol.handle(rpc("tools/list")))["result"]
    assert len(first["tools"]) == 4
    second = (await protocol.handle(rpc("tools/list", {"cursor": first["nextCursor"]})))["result"]
    assert "nextCursor" in second
    third = (await protocol.handle(rpc("tools/list", {"cursor": second["nextCursor"]})))["result"]
    assert "nextCursor" not in third
    names = [t["name"] for page in (first, second, third) for t in page["tools"]]
    assert names == [t.name for t in build_backend(extra_tools=3).tools]
    # a tools cursor means nothing to another list
    other = await protocol.handle(rpc("prompts/list", {"cursor": first["nextCursor"]}))
    assert other["error"]["code"] == -32602


async def test_tool_object_omits_absent_fields() -> None:
    protocol = McpProtocol(build_backend())
    tools = (await protocol.handle(rpc("tools/list")))["result"]["tools"]
    assert tools[0] == {
        "name": "add",
        "title": "Add",
        "description": "Add two integers.",
        "inputSchema": tools[0]["inputSchema"],
        "annotations": {"readOnlyHint": True},
    }
    assert set(tools[1]) == {"name", "description", "inputSchema"}


async def test_structured_content_rules() -> None:
    results = {
        "obj": ToolResult(content=[], structured={"a": 1}),
        "arr": ToolResult(content=[], structured=[1]),
        "num": ToolResult(content=[], structured=0),
        "none": ToolResult(content=[]),
        "err": ToolResult(content=[], structured={"a": 1}, is_error=True),
    }

    def handler(name: str) -> Any:
        async def call(arguments: dict[str, Any]) -> ToolResult:
            return results[name]

        return call

    backend = StaticBackend(
        info=ServerInfo(name="s"),
        tools=[McpTool(name=n, input_schema={"type": "object"}) for n in results],
        handlers={n: handler(n) for n in results},
    )
    protocol = McpProtocol(backend)

    async def call(name: str, modern: bool) -> dict[str, Any]:
        params: dict[str, Any] = {"name": name}
        if modern:
            params["_meta"] = META
        return (await protocol.handle(rpc("tools/call", params), modern=modern))["result"]

    assert (await call("obj", False))["structuredContent"] == {"a": 1}
    assert (await call("arr", False))["structuredContent"] == {"result": [1]}
    assert (await call("num", False))["structuredContent"] == {"result": 0}
    assert (await call("arr", True))["structuredContent"] == [1]
    assert (await call("num", True))["structuredContent"] == 0
    assert "structuredContent" not in await call("none", True)
    err = await call("err", False)
    assert err == {"content": [], "isError": True}


async def test_backend_mcp_error_becomes_jsonrpc_error() -> None:
    async def refuse(arguments: dict[str, Any]) -> ToolResult:
        raise McpError(-32602, "Invalid params: unresolved template")

    backend = StaticBackend(
        info=ServerInfo(name="s"), tools=[McpTool(name="t", input_schema={"type": "object"})], handlers={"t": refuse}
    )
    reply = await McpProtocol(backend).handle(rpc("tools/call", {"name": "t"}))
    assert reply["error"] == {"code": -32602, "message": "Invalid params: unresolved template"}


async def test_modern_envelope_on_a_headerless_transport() -> None:
    protocol = McpProtocol(build_backend())
    message = rpc("server/discover", {})
    assert is_modern_message(message)
    reply = await protocol.handle(message, modern=True)
    assert reply["error"]["code"] == -32602
    bad_version = {**META, "io.modelcontextprotocol/protocolVersion": 20260728}
    reply = await protocol.handle(rpc("tools/list", {"_meta": bad_version}), modern=True)
    assert reply["error"]["code"] == -32602
    assert not is_modern_message(rpc("tools/list"))
    assert is_modern_message(rpc("tools/list", {"_meta": META}))


def test_framing() -> None:
    encoded = encode_message({"text": "a\nb\u2028é"})
    assert b"\n" not in encoded and "é".encode() in encoded
    with pytest.raises(McpError) as caught:
        decode_message(b'{"x": Infinity}')
    assert caught.value.code == -32700


# ------------------------------------------------------------------ schema validator


def test_schema_types() -> None:
    validate = compile_schema({"type": "object", "properties": {"n": {"type": "integer"}}})
    assert validate({"n": 3}) == ({"n": 3}, [])
    value, problems = validate({"n": 3.0})
    assert value == {"n": 3} and type(value["n"]) is int and not problems
    for bad, got in (("3", "string"), (True, "boolean"), (3.5, "number"), (None, "null"), ([3], "array")):
        assert validate({"n": bad})[1] == [f"argument 'n': expected integer, got {got}"]

    number = compile_schema({"type": "number"})
    assert number(2)[1] == [] and number(2.5)[1] == [] and number(False)[1]
    union = compile_schema({"type": ["string", "null"]})
    assert union(None)[1] == [] and union("x")[1] == []
    assert union(1)[1] == ["arguments: expected string or null, got integer"]
    assert compile_schema({"type": "boolean"})(0)[1] == ["arguments: expected boolean, got integer"]


def test_schema_structure() -> None:
    validate = compile_schema(
        {
            "type": "object",
            "properties": {
                "pet": {
                    "type": "object",
                    "properties": {
                        "kind": {"enum": ["cat", "dog"]},
                        "ages": {"type": "array", "items": {"type": "integer"}},
                    },
                    "required": ["kind"],
                },
                "flag": {"enum": [1, "one"]},
            },
            "required": ["pet"],
            "additionalProperties": False,
        }
    )
    value, problems = validate({"pet": {"kind": "cat", "ages": [1, 2.0]}})
    assert problems == [] and value == {"pet": {"kind": "cat", "ages": [1, 2]}}
    _, problems = validate({"pet": {"ages": [1, "2"]}, "flag": True, "x": 0})
    assert problems == [
        "missing required argument 'pet.kind'",
        "argument 'pet.ages[1]': expected integer, got string",
        "argument 'flag': true is not one of 1, 'one'",
        "unexpected argument 'x'",
    ]
    assert validate({"pet": {"kind": "cat"}, "flag": 1.0})[1] == []


def test_schema_bounds_and_permissiveness() -> None:
    validate = compile_schema(
        {"type": "object", "properties": {"n": {"type": "integer", "minimum": 1, "maximum": 3}, "s": {"maxLength": 2}}}
    )
    assert validate({"n": 0, "s": "abc"})[1] == [
        "argument 'n': must be at least 1, got 0",
        "argument 's': must be at most 2 characters long",
    ]
    anything = compile_schema({"anyOf": [{"type": "string"}], "format": "uri"})
    assert anything(12)[1] == []
    assert compile_schema({"type": "object"})({"free": object()})[1] == []
    original = {"n": 2}
    assert compile_schema({"type": "object", "properties": {"n": {"type": "integer"}}})(original)[0] is original


# ------------------------------------------------------------------ HTTP app options


def client(app: McpHttpApp, host: str = "127.0.0.1:8000") -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=f"http://{host}")


async def test_configured_hosts_and_origins() -> None:
    app = McpHttpApp(
        build_backend(), allowed_hosts=["api.example.com", "internal:8080"], allowed_origins=["https://app.example.com"]
    )
    async with client(app, "api.example.com:443") as http:
        assert (await http.post("/mcp", json=rpc("ping"))).status_code == 200
        ok = await http.post("/mcp", json=rpc("ping"), headers={"Origin": "https://app.example.com"})
        assert ok.status_code == 200
        assert (await http.post("/mcp", json=rpc("ping"), headers={"Origin": "http://localhost"})).status_code == 403
    async with client(app, "internal:8080") as http:
        assert (await http.post("/mcp", json=rpc("ping"))).status_code == 200
    async with client(app, "internal:8081") as http:
        assert (await http.post("/mcp", json=rpc("ping"))).status_code == 421
    async with client(app, "localhost:8000") as http:
        assert (await http.post("/mcp", json=rpc("ping"))).status_code == 421
    async with client(McpHttpApp(build_backend(), allowed_hosts=["*"]), "anything.example") as http:
        assert (await http.post("/mcp", json=rpc("ping"))).status_code == 200


async def test_ended_session_cap_and_body_limit() -> None:
    app = McpHttpApp(build_backend(), max_ended_sessions=2, max_body_bytes=200)
    async with client(app) as http:
        sessions = []
        for _ in range(3):
            response = await http.post("/mcp", json=rpc("initialize", {"protocolVersion": "2025-11-25"}))
            sessions.append(response.headers["mcp-session-id"])
            assert (await http.delete("/mcp", headers={"Mcp-Session-Id": sessions[-1]})).status_code == 200
        statuses = [
            (await http.post("/mcp", json=rpc("ping"), headers={"Mcp-Session-Id": s})).status_code for s in sessions
        ]
        assert statuses == [200, 404, 404]  # two ended ids remembered: the earliest is dropped first
        big = await http.post("/mcp", json=rpc("tools/call", {"name": "echo", "arguments": {"text": "x" * 500}}))
        assert big.status_code == 413 and big.json()["error"]["code"] == -32600


async def test_mounted_under_starlette() -> None:
    from starlette.applications import Starlette
    from starlette.routing import Mount

    outer = Starlette(routes=[Mount("/tools", app=McpHttpApp(build_backend()))])
    async with client(outer) as http:  # type: ignore[arg-type]
        response = await http.post("/tools/mcp", json=rpc("ping"))
        assert response.status_code == 200 and response.json()["result"] == {}
        assert (await http.post("/tools/other", json=rpc("ping"))).status_code == 404
