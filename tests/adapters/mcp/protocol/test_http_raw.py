"""Streamable HTTP edge cases, sent raw with httpx to the fake server subprocess."""

from __future__ import annotations

import base64
from typing import Any

import httpx
import pytest

from tests.adapters.mcp.protocol.conftest import META, MODERN


def rpc(method: str, params: dict[str, Any] | None = None, id: Any = 1) -> dict[str, Any]:
    message: dict[str, Any] = {"jsonrpc": "2.0", "id": id, "method": method}
    if params is not None:
        message["params"] = params
    return message


def modern(method: str, params: dict[str, Any] | None = None, **extra: str) -> tuple[dict, dict]:
    """A well-formed 2026-07-28 request and its headers."""
    body = rpc(method, {**(params or {}), "_meta": META})
    headers = {"MCP-Protocol-Version": MODERN, "Mcp-Method": method, **extra}
    name = (params or {}).get("name") or (params or {}).get("uri")
    if name is not None and method in ("tools/call", "prompts/get", "resources/read"):
        headers.setdefault("Mcp-Name", name)
    return body, headers


def initialize(http: httpx.Client, version: str = "2025-11-25") -> str:
    response = http.post(
        "/mcp",
        json=rpc(
            "initialize", {"protocolVersion": version, "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}
        ),
    )
    assert response.status_code == 200
    return response.headers["mcp-session-id"]


def error_of(response: httpx.Response) -> dict[str, Any]:
    assert response.headers["content-type"] == "application/json"
    return response.json()["error"]


# ------------------------------------------------------------------ legacy era


def test_initialize_negotiates_and_mints_session(http: httpx.Client) -> None:
    response = http.post("/mcp", json=rpc("initialize", {"protocolVersion": "2025-06-18", "capabilities": {}}))
    result = response.json()["result"]
    assert result["protocolVersion"] == "2025-06-18"
    assert result["capabilities"] == {"tools": {}, "resources": {}, "prompts": {}}
    assert result["serverInfo"] == {"name": "fake", "version": "0.0.1", "title": "Fake server"}
    assert result["instructions"] == "Use add to add."
    session = response.headers["mcp-session-id"]
    assert len(session) >= 32 and all(0x21 <= ord(c) <= 0x7E for c in session)

    other = http.post("/mcp", json=rpc("initialize", {"protocolVersion": "1999-01-01"}))
    assert other.json()["result"]["protocolVersion"] == "2025-11-25"
    assert other.headers["mcp-session-id"] != session
    old = http.post("/mcp", json=rpc("initialize", {"protocolVersion": "2024-11-05"}))
    assert old.json()["result"]["protocolVersion"] == "2024-11-05"


def test_session_lifecycle(http: httpx.Client) -> None:
    session = initialize(http)
    headers = {"Mcp-Session-Id": session, "MCP-Protocol-Version": "2025-11-25"}
    note = http.post("/mcp", json={"jsonrpc": "2.0", "method": "notifications/initialized"}, headers=headers)
    assert note.status_code == 202 and note.content == b""
    assert http.post("/mcp", json=rpc("ping"), headers=headers).json() == {"jsonrpc": "2.0", "id": 1, "result": {}}

    assert http.delete("/mcp", headers=headers).status_code == 200
    gone = http.post("/mcp", json=rpc("tools/list"), headers=headers)
    assert gone.status_code == 404 and error_of(gone)["message"] == "Session not found"
    assert http.delete("/mcp", headers=headers).status_code == 404


def test_unknown_session_is_404_but_no_session_is_served(http: httpx.Client) -> None:
    unknown = http.post("/mcp", json=rpc("tools/list"), headers={"Mcp-Session-Id": "nope"})
    assert unknown.status_code == 404
    sessionless = http.post("/mcp", json=rpc("tools/call", {"name": "add", "arguments": {"a": 1, "b": 2}}))
    assert sessionless.status_code == 200
    assert sessionless.json()["result"]["structuredContent"] == {"result": 3}
    assert http.delete("/mcp").status_code == 400


def test_get_is_405(http: httpx.Client) -> None:
    response = http.get("/mcp", headers={"Accept": "text/event-stream"})
    assert response.status_code == 405
    assert response.headers["allow"] == "POST, DELETE"
    assert error_of(response)["code"] == -32600


def test_notifications_and_client_responses_get_202(http: httpx.Client) -> None:
    for body in (
        {"jsonrpc": "2.0", "method": "notifications/initialized"},
        {"jsonrpc": "2.0", "method": "notifications/whatever", "params": {}},
        {"jsonrpc": "2.0", "id": 5, "result": {}},
    ):
        response = http.post("/mcp", json=body)
        assert response.status_code == 202 and response.content == b""


def test_parse_error(http: httpx.Client) -> None:
    for body in (b"{not json", b"", b'{"a": NaN}', b"\xff\xfe"):
        response = http.post("/mcp", content=body, headers={"content-type": "application/json"})
        assert response.status_code == 400
        assert response.json() == {"jsonrpc": "2.0", "id": None, "error": {"code": -32700, "message": "Parse error"}}


@pytest.mark.parametrize(
    "body, id",
    [
        ({"jsonrpc": "1.0", "id": 3, "method": "ping"}, 3),
        ({"id": 3, "method": "ping"}, 3),
        ([{"jsonrpc": "2.0", "id": 1, "method": "ping"}], None),
        ({"jsonrpc": "2.0", "id": 4}, 4),
        ({"jsonrpc": "2.0", "id": None, "method": "ping"}, None),
        ("just a string", None),
    ],
)
def test_invalid_request(http: httpx.Client, body: Any, id: Any) -> None:
    response = http.post("/mcp", json=body)
    assert response.status_code == 400
    payload = response.json()
    assert payload["id"] == id and payload["error"]["code"] == -32600


def test_unknown_method_and_bad_params(http: httpx.Client) -> None:
    unknown = http.post("/mcp", json=rpc("tools/frobnicate", id="x"))
    assert unknown.status_code == 200
    assert unknown.json() == {
        "jsonrpc": "2.0",
        "id": "x",
        "error": {"code": -32601, "message": "Method not found: tools/frobnicate"},
    }
    assert error_of(http.post("/mcp", json=rpc("server/discover")))["code"] == -32601
    assert error_of(http.post("/mcp", json=rpc("tools/call", [1, 2])))["code"] == -32602
    assert error_of(http.post("/mcp", json=rpc("tools/call", {})))["message"] == "Invalid params: name is required"
    unknown_tool = error_of(http.post("/mcp", json=rpc("tools/call", {"name": "nope"})))
    assert unknown_tool == {"code": -32602, "message": "Unknown tool: nope"}
    args = error_of(http.post("/mcp", json=rpc("tools/call", {"name": "add", "arguments": [1]})))
    assert args["code"] == -32602


def test_argument_validation_is_a_tool_error(http: httpx.Client) -> None:
    def call(arguments: Any) -> dict[str, Any]:
        return http.post("/mcp", json=rpc("tools/call", {"name": "echo", "arguments": arguments})).json()["result"]

    ok = call({"text": "hi", "mode": "upper", "tags": ["a"], "limit": 3.0})
    assert ok["isError"] is False
    assert ok["structuredContent"] == {"text": "hi", "mode": "upper", "tags": ["a"], "limit": 3}

    bad = call({"mode": "sideways", "tags": ["a", 2], "limit": "3", "extra": 1})
    assert bad["isError"] is True and "structuredContent" not in bad
    text = bad["content"][0]["text"]
    assert text.startswith("Invalid arguments for tool 'echo': ")
    for fragment in (
        "missing required argument 'text'",
        "argument 'mode': 'sideways' is not one of 'upper', 'lower'",
        "argument 'tags[1]': expected string, got integer",
        "argument 'limit': expected integer or null, got string",
        "unexpected argument 'extra'",
    ):
        assert fragment in text
    assert call({"text": "x", "limit": None})["isError"] is False
    assert call({"text": "x", "limit": 2.5})["isError"] is True


def test_resources_and_prompts_errors(http: httpx.Client) -> None:
    missing = error_of(http.post("/mcp", json=rpc("resources/read", {})))
    assert missing == {"code": -32602, "message": "Invalid params: uri is required"}
    unknown = error_of(http.post("/mcp", json=rpc("resources/read", {"uri": "nope://x"})))
    assert unknown["code"] == -32002 and unknown["data"] == {"uri": "nope://x"}
    assert error_of(http.post("/mcp", json=rpc("prompts/get", {})))["code"] == -32602
    assert error_of(http.post("/mcp", json=rpc("prompts/get", {"name": "greet"})))["code"] == -32602
    assert error_of(http.post("/mcp", json=rpc("prompts/get", {"name": "nope"})))["code"] == -32602
    assert error_of(http.post("/mcp", json=rpc("resources/subscribe", {"uri": "info://about"})))["code"] == -32601


def test_invalid_cursor(http: httpx.Client) -> None:
    for cursor in ("garbage", 12, ""):
        error = error_of(http.post("/mcp", json=rpc("tools/list", {"cursor": cursor})))
        assert error == {"code": -32602, "message": "Invalid params: invalid cursor"}


def test_pagination_raw(paged_server_url: str) -> None:
    seen: list[str] = []
    cursor = None
    with httpx.Client(timeout=10) as client:
        while True:
            params = {"cursor": cursor} if cursor else {}
            result = client.post(paged_server_url, json=rpc("tools/list", params)).json()["result"]
            seen += [t["name"] for t in result["tools"]]
            assert len(result["tools"]) <= 10
            cursor = result.get("nextCursor")
            if cursor is None:
                assert "nextCursor" not in result
                break
    assert len(seen) == 32 and len(set(seen)) == 32


def test_protocol_version_header(http: httpx.Client) -> None:
    bad = http.post("/mcp", json=rpc("tools/list"), headers={"MCP-Protocol-Version": "banana"})
    assert bad.status_code == 400 and error_of(bad)["code"] == -32600
    ok = http.post("/mcp", json=rpc("tools/list"), headers={"MCP-Protocol-Version": "2025-06-18"})
    assert ok.status_code == 200 and "resultType" not in ok.json()["result"]


def test_accept_header(http: httpx.Client) -> None:
    refused = http.post("/mcp", json=rpc("ping"), headers={"Accept": "text/event-stream"})
    assert refused.status_code == 406 and error_of(refused)["code"] == -32600
    for accept in ("application/json, text/event-stream", "*/*", "application/*;q=0.5"):
        assert http.post("/mcp", json=rpc("ping"), headers={"Accept": accept}).status_code == 200


def test_origin_and_host(http: httpx.Client, server_url: str) -> None:
    evil = http.post("/mcp", json=rpc("ping"), headers={"Origin": "http://evil.example"})
    assert evil.status_code == 403 and error_of(evil)["message"] == "Invalid Origin header"
    assert http.post("/mcp", json=rpc("ping"), headers={"Origin": "null"}).status_code == 403
    for origin in ("http://localhost:3000", "http://127.0.0.1:6274", "https://[::1]"):
        assert http.post("/mcp", json=rpc("ping"), headers={"Origin": origin}).status_code == 200
    same = server_url.removesuffix("/mcp")
    assert http.post("/mcp", json=rpc("ping"), headers={"Origin": same}).status_code == 200

    rebound = http.post("/mcp", json=rpc("ping"), headers={"Host": "evil.example"})
    assert rebound.status_code == 421 and error_of(rebound)["message"] == "Invalid Host header"
    assert http.post("/mcp", json=rpc("ping"), headers={"Host": "localhost:9"}).status_code == 200
    assert http.get("/mcp", headers={"Host": "evil.example:80"}).status_code == 421


def test_paths(http: httpx.Client) -> None:
    assert http.post("/", json=rpc("ping")).json()["result"] == {}
    other = http.post("/elsewhere", json=rpc("ping"))
    assert other.status_code == 404 and error_of(other)["code"] == -32600


# ------------------------------------------------------------------ modern era


def test_modern_discover(http: httpx.Client) -> None:
    body, headers = modern("server/discover")
    response = http.post("/mcp", json=body, headers=headers)
    assert response.status_code == 200 and "mcp-session-id" not in response.headers
    result = response.json()["result"]
    assert result["supportedVersions"] == [MODERN]
    assert result["capabilities"] == {"tools": {}, "resources": {}, "prompts": {}}
    assert result["instructions"] == "Use add to add."
    assert result["ttlMs"] == 0 and result["cacheScope"] == "private"
    assert result["resultType"] == "complete"
    assert result["_meta"]["io.modelcontextprotocol/serverInfo"]["name"] == "fake"


def test_modern_results(http: httpx.Client) -> None:
    body, headers = modern("tools/list")
    result = http.post("/mcp", json=body, headers=headers).json()["result"]
    assert result["resultType"] == "complete" and result["cacheScope"] == "private" and result["ttlMs"] == 0
    assert "nextCursor" not in result

    body, headers = modern("tools/call", {"name": "list_items", "arguments": {}})
    result = http.post("/mcp", json=body, headers=headers).json()["result"]
    assert result["structuredContent"] == ["alpha", "beta"] and result["resultType"] == "complete"

    body, headers = modern("resources/read", {"uri": "info://about"})
    result = http.post("/mcp", json=body, headers=headers).json()["result"]
    assert result["contents"][0]["text"] == "fake server" and result["ttlMs"] == 0

    body, headers = modern("resources/read", {"uri": "nope://x"})
    response = http.post("/mcp", json=body, headers=headers)
    assert response.status_code == 400 and error_of(response)["code"] == -32602


@pytest.mark.parametrize("method", ["initialize", "ping", "logging/setLevel", "resources/subscribe", "tools/nope"])
def test_modern_legacy_only_methods_are_404(http: httpx.Client, method: str) -> None:
    body, headers = modern(method)
    response = http.post("/mcp", json=body, headers=headers)
    assert response.status_code == 404
    assert error_of(response)["code"] == -32601


def test_modern_header_mismatch(http: httpx.Client) -> None:
    body, headers = modern("tools/call", {"name": "add", "arguments": {"a": 1, "b": 2}})
    cases = [
        {**headers, "Mcp-Method": "tools/list"},
        {k: v for k, v in headers.items() if k != "Mcp-Method"},
        {**headers, "Mcp-Name": "list_items"},
        {k: v for k, v in headers.items() if k != "Mcp-Name"},
    ]
    for case in cases:
        response = http.post("/mcp", json=body, headers=case)
        assert response.status_code == 400, case
        assert error_of(response)["code"] == -32020
    # header present but body version absent from the header: -32020 before anything else
    _, plain = modern("tools/list")
    response = http.post("/mcp", json=rpc("tools/list", {"_meta": META}), headers={"Mcp-Method": "tools/list"})
    assert response.status_code == 400 and error_of(response)["code"] == -32020
    # duplicated routing header
    raw = list(plain.items()) + [("Mcp-Method", "tools/list")]
    response = http.post("/mcp", json=rpc("tools/list", {"_meta": META}), headers=raw)
    assert response.status_code == 400 and error_of(response)["code"] == -32020
    # header names are case-insensitive
    ok = http.post("/mcp", json=body, headers={k.upper(): v for k, v in headers.items()})
    assert ok.status_code == 200 and ok.json()["result"]["structuredContent"] == 3


def test_modern_base64_name_header(http: httpx.Client) -> None:
    uri = "greeting://Zoë"
    encoded = "=?base64?" + base64.b64encode(uri.encode()).decode() + "?="
    body, headers = modern("resources/read", {"uri": uri}, **{"Mcp-Name": encoded})
    response = http.post("/mcp", json=body, headers=headers)
    assert response.status_code == 200
    assert response.json()["result"]["contents"][0]["text"] == "Hello, Zoë!"
    bad = http.post("/mcp", json=body, headers={**headers, "Mcp-Name": "=?base64?!!!?="})
    assert bad.status_code == 400 and error_of(bad)["code"] == -32020


def test_modern_param_headers(http: httpx.Client) -> None:
    arguments = {"text": "hi", "region": "eu-west"}
    body, headers = modern("tools/call", {"name": "echo", "arguments": arguments})
    assert http.post("/mcp", json=body, headers={**headers, "Mcp-Param-Region": "eu-west"}).status_code == 200
    for case in (headers, {**headers, "Mcp-Param-Region": "us-east"}):
        response = http.post("/mcp", json=body, headers=case)
        assert response.status_code == 400 and error_of(response)["code"] == -32020
    body, headers = modern("tools/call", {"name": "echo", "arguments": {"text": "hi"}})
    response = http.post("/mcp", json=body, headers={**headers, "Mcp-Param-Region": "eu-west"})
    assert response.status_code == 400


def test_modern_unsupported_version(http: httpx.Client) -> None:
    meta = {**META, "io.modelcontextprotocol/protocolVersion": "2099-01-01"}
    body = rpc("tools/list", {"_meta": meta})
    headers = {"MCP-Protocol-Version": "2099-01-01", "Mcp-Method": "tools/list"}
    response = http.post("/mcp", json=body, headers=headers)
    assert response.status_code == 400
    error = error_of(response)
    assert error["code"] == -32022
    assert error["data"] == {"supported": [MODERN], "requested": "2099-01-01"}


def test_modern_missing_meta(http: httpx.Client) -> None:
    headers = {"MCP-Protocol-Version": MODERN, "Mcp-Method": "tools/list"}
    for params in ({}, {"_meta": {}}, {"_meta": {"io.modelcontextprotocol/protocolVersion": MODERN}}):
        response = http.post("/mcp", json=rpc("tools/list", params), headers=headers)
        assert response.status_code == 400
        assert error_of(response)["code"] == -32602


def test_modern_get_delete_405_and_notifications(http: httpx.Client) -> None:
    for method in ("GET", "DELETE"):
        response = http.request(method, "/mcp", headers={"MCP-Protocol-Version": MODERN})
        assert response.status_code == 405 and response.headers["allow"] == "POST"
    note = http.post(
        "/mcp",
        json={"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"requestId": 1}},
        headers={"MCP-Protocol-Version": MODERN, "Mcp-Method": "notifications/cancelled"},
    )
    assert note.status_code == 202
    # a modern request ignores any session id
    body, headers = modern("tools/list")
    response = http.post("/mcp", json=body, headers={**headers, "Mcp-Session-Id": "unknown"})
    assert response.status_code == 200


def test_modern_parse_error(http: httpx.Client) -> None:
    response = http.post(
        "/mcp", content=b"[", headers={"MCP-Protocol-Version": MODERN, "Content-Type": "application/json"}
    )
    assert response.status_code == 400 and error_of(response)["code"] == -32700
