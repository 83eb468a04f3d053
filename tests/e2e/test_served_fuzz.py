"""Fuzzing the served seed capability (issue 12, point 7): random REST requests and random MCP
arguments must never give a 500, an internal error or a traceback in the log.

The seed's REST and MCP apps are driven straight through ASGI, as uvicorn would call them (raw
path bytes, any header values a server lets through, bodies in one piece or in chunks), so the
inputs are not tidied up by an HTTP client first; the upstream is the recording stand-in on real
loopback HTTP. Hypothesis runs derandomized with a bounded number of examples, so CI is
deterministic and each test takes a few seconds.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
from dataclasses import dataclass
from typing import Any
from collections.abc import Iterator
from urllib.parse import quote, unquote

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from naftiko.adapters import exposes_app
from naftiko.engine import Runtime
from naftiko.engine.limits import Limits
from tests.support import SEED, Answer, RecordingUpstream, ThreadedServer

KEY = "phx_fuzz_key_0123456789"
REST, MCP = "posthog-task-runs-rest", "posthog-task-runs-mcp"
BODY_LIMIT = 16 * 1024
MODERN, LEGACY = "2026-07-28", "2025-06-18"
FUZZ = settings(
    derandomize=True,
    database=None,
    deadline=None,
    max_examples=250,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@dataclass
class Served:
    loop: asyncio.AbstractEventLoop
    rest: Any
    mcp: Any
    tools: dict[str, dict[str, Any]]  # name -> inputSchema properties

    def call(
        self,
        app: Any,
        method: str,
        raw_path: bytes,
        query: bytes,
        headers: list[tuple[bytes, bytes]],
        chunks: list[bytes],
    ) -> Answer:
        return self.loop.run_until_complete(asyncio.wait_for(_asgi(app, method, raw_path, query, headers, chunks), 15))


async def _asgi(
    app: Any, method: str, raw_path: bytes, query: bytes, headers: list[tuple[bytes, bytes]], chunks: list[bytes]
) -> Answer:
    """One request through an ASGI app, as uvicorn's httptools protocol builds it."""
    path = raw_path.decode("ascii")
    scope = {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": unquote(path) if "%" in path else path,
        "raw_path": raw_path,
        "query_string": query,
        "root_path": "",
        "headers": headers,
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8080),
        "state": {},
    }
    pending = [
        {"type": "http.request", "body": chunk, "more_body": index < len(chunks) - 1}
        for index, chunk in enumerate(chunks or [b""])
    ]
    done = asyncio.Event()
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        if pending:
            return pending.pop(0)
        await done.wait()
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)
        if message["type"] == "http.response.body" and not message.get("more_body"):
            done.set()

    await app(scope, receive, send)
    assert sent and sent[0]["type"] == "http.response.start", f"no response: {sent}"
    assert done.is_set(), "the response was not completed"
    body = b"".join(m.get("body", b"") for m in sent[1:])
    return Answer(sent[0]["status"], dict(sent[0]["headers"]), body)


@pytest.fixture(scope="module")
def served() -> Iterator[Served]:
    upstream = RecordingUpstream()
    with ThreadedServer(upstream) as url:
        upstream.url = url
        runtime = Runtime.load(
            SEED,
            base_uris={"posthog-task-runs": url},
            environ={"POSTHOG_API_KEY": KEY},
            limits=Limits(request_body=BODY_LIMIT),
            timeout=10,
        )
        loop = asyncio.new_event_loop()
        rest, mcp = exposes_app(runtime, REST), exposes_app(runtime, MCP)
        tools = {tool.name: tool.input_schema.get("properties", {}) for tool in mcp.protocol.backend.tools}
        loop.run_until_complete(runtime.start())
        try:
            yield Served(loop, rest, mcp, tools)
        finally:
            loop.run_until_complete(runtime.stop())
            loop.close()


def _no_trouble_logged(caplog: pytest.LogCaptureFixture) -> None:
    trouble = [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]
    caplog.clear()
    assert not trouble, [r.getMessage() for r in trouble]
    assert "Traceback" not in caplog.text


# --------------------------------------------------------------------------- strategies

ODD = st.characters(codec="utf-8", exclude_categories=("Cs",))  # any code point UTF-8 can carry
ANY = st.characters()  # lone surrogates too: JSON can escape them (\ud800), UTF-8 cannot carry them
JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**40), max_value=10**40)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(ODD, max_size=40)
    | st.text(ANY, max_size=5)
    | st.sampled_from(["\ud800", "x\udfffy", "\udc00\ud800", "\U0001f600"]),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(ODD, max_size=10), inner, max_size=5),
    max_leaves=20,
)

SEGMENT_TEXT = st.one_of(
    st.sampled_from(
        [
            "..",
            ".",
            "",
            "%",
            "%zz",
            "%2e%2e",
            "%2F",
            "%00",
            "%ff%fe",
            "~",
            "@",
            ";x=1",
            "runs",
            "v1",
            "@current",
            "0f5f6c87-9b53-4a3c-bb2a-2b8a6f7c1d10",
        ]
    ),
    st.text(ODD, max_size=20).map(lambda s: quote(s, safe="")),
    st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E, exclude_characters="?#"), max_size=20),
    st.integers(min_value=1000, max_value=9000).map(lambda n: "a" * n),
)
ROUTES = [
    ("GET", ""),
    ("POST", ""),
    ("GET", "/{id}"),
    ("PATCH", "/{id}"),
    ("POST", "/{id}/append-log"),
    ("POST", "/{id}/artifacts"),
    ("POST", "/{id}/artifacts/download"),
    ("POST", "/{id}/artifacts/finalize-upload"),
    ("POST", "/{id}/artifacts/prepare-upload"),
    ("POST", "/{id}/artifacts/presign"),
    ("POST", "/{id}/command"),
    ("GET", "/{id}/connection-token"),
    ("GET", "/{id}/logs"),
    ("POST", "/{id}/relay-message"),
    ("POST", "/{id}/resume-in-cloud"),
    ("GET", "/{id}/session-logs"),
    ("PATCH", "/{id}/set-output"),
    ("POST", "/{id}/start"),
    ("GET", "/{id}/stream"),
]
METHODS = st.sampled_from(["GET", "POST", "PATCH", "PUT", "DELETE", "HEAD", "OPTIONS", "BREW"])


@st.composite
def rest_targets(draw: st.DrawFn) -> tuple[str, bytes]:
    """A method and raw path: mostly a declared route with hostile variable values, else anything."""
    if draw(st.integers(0, 3)):
        method, suffix = draw(st.sampled_from(ROUTES))
        variable = SEGMENT_TEXT.filter(bool)
        path = f"/v1/api/projects/{draw(variable)}/tasks/{draw(variable)}/runs" + suffix.replace("{id}", draw(variable))
    else:
        method = draw(METHODS)
        path = "/" + "/".join(draw(st.lists(SEGMENT_TEXT, max_size=8)))
    if draw(st.booleans()):
        path += "/"
    return method, path.encode("ascii")


QUERY_TEXT = st.text(ODD, max_size=30)


@st.composite
def queries(draw: st.DrawFn) -> bytes:
    kind = draw(st.integers(0, 2))
    if kind == 0:
        pairs = draw(
            st.lists(
                st.tuples(
                    st.sampled_from(["limit", "offset", "after", "event_types", "body", "id", "project_id", "x"])
                    | QUERY_TEXT,
                    QUERY_TEXT,
                ),
                max_size=6,
            )
        )
        return "&".join(f"{quote(k, safe='')}={quote(v, safe='')}" for k, v in pairs).encode()
    if kind == 1:
        return draw(
            st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E, exclude_characters="#"), max_size=60)
        ).encode()
    return ("limit=" + "9" * draw(st.integers(1, 5000))).encode()


HEADER_NAMES = st.sampled_from(
    [
        b"x-custom",
        b"authorization",
        b"cookie",
        b"accept",
        b"x-forwarded-for",
        b"origin",
        b"accept-encoding",
        b"if-none-match",
        b"x-" + b"h" * 200,
    ]
)
HEADER_VALUES = st.binary(max_size=300).map(lambda b: bytes(c for c in b if c not in (10, 13, 0)))
CONTENT_TYPES = st.sampled_from(
    [
        b"application/json",
        b"text/plain",
        b"application/x-www-form-urlencoded",
        b"multipart/form-data; boundary=x",
        b"application/json; charset=latin-1",
        b"\xff\xfe",
        b"",
    ]
)


@st.composite
def bodies(draw: st.DrawFn) -> bytes | None:
    kind = draw(st.integers(0, 5))
    if kind == 0:
        return None
    if kind == 1:
        return json.dumps(draw(JSON_VALUES), ensure_ascii=draw(st.booleans())).encode("utf-8", "surrogatepass")
    if kind == 2:
        return draw(st.binary(max_size=200))
    if kind == 3:
        return draw(
            st.sampled_from(
                [
                    b"{",
                    b'{"a": ',
                    b"[" * 5000,
                    b'"\\ud800"',
                    b"NaN",
                    b"1e999999",
                    b'{"a": 1, "a": 2}',
                    b"\xef\xbb\xbf{}",
                    b"null",
                    b" ",
                ]
            )
        )
    if kind == 4:
        return b'{"text": "' + b"x" * draw(st.integers(BODY_LIMIT - 100, BODY_LIMIT + 100)) + b'"}'
    return json.dumps(
        {
            "entries": [{"type": "t", "message": draw(st.text(ODD, max_size=50))}],
            "status": draw(JSON_VALUES),
            "output": draw(JSON_VALUES),
        }
    ).encode()  # ASCII escapes


def _framed(body: bytes | None, chunked: bool, pieces: int) -> tuple[list[tuple[bytes, bytes]], list[bytes]]:
    """Framing headers and body messages: Content-Length, or chunks with Transfer-Encoding."""
    if body is None:
        return [], [b""]
    if chunked:
        size = max(1, len(body) // pieces)
        return [(b"transfer-encoding", b"chunked")], [body[i : i + size] for i in range(0, len(body), size)] or [b""]
    return [(b"content-length", str(len(body)).encode())], [body]


# --------------------------------------------------------------------------- REST


@FUZZ
@given(
    target=rest_targets(),
    query=queries(),
    extra=st.lists(st.tuples(HEADER_NAMES, HEADER_VALUES), max_size=4),
    content_type=CONTENT_TYPES,
    body=bodies(),
    chunked=st.booleans(),
    pieces=st.integers(1, 4),
)
def test_random_rest_requests_never_fail_the_server(
    served: Served,
    caplog: pytest.LogCaptureFixture,
    target: tuple[str, bytes],
    query: bytes,
    extra: list[tuple[bytes, bytes]],
    content_type: bytes,
    body: bytes | None,
    chunked: bool,
    pieces: int,
) -> None:
    caplog.set_level(logging.WARNING)
    method, path = target
    framing, chunks = _framed(body, chunked, pieces)
    headers = [(b"host", b"127.0.0.1:8080"), *framing, *extra]
    if content_type:
        headers.append((b"content-type", content_type))
    answer = served.call(served.rest, method, path, query, headers, chunks)
    event(f"HTTP {answer.status}")
    assert answer.status < 500, (answer.status, answer.body[:500])
    if answer.status >= 400:  # the stand-in upstream answers 200: every error is naftiko's own, in JSON
        error = json.loads(answer.body)["error"]
        assert error["type"] and error["message"], error
        assert KEY not in answer.body.decode("utf-8", "replace")
    if body is not None and len(body) > BODY_LIMIT and answer.status != 404 and answer.status != 405:
        assert answer.status == 413, (answer.status, answer.body[:300])
    _no_trouble_logged(caplog)


# --------------------------------------------------------------------------- MCP


def _mcp_request(served: Served, message: Any, era: str, name: str | None, *, raw: bytes | None = None) -> Answer:
    body = raw if raw is not None else json.dumps(message).encode()
    headers = [
        (b"host", b"127.0.0.1:9090"),
        (b"content-type", b"application/json"),
        (b"accept", b"application/json, text/event-stream"),
        (b"content-length", str(len(body)).encode()),
        (b"mcp-protocol-version", era.encode()),
    ]
    if era == MODERN and isinstance(message, dict):
        headers.append((b"mcp-method", str(message.get("method")).encode("utf-8", "replace")))
        if name is not None:
            headers.append(
                (
                    b"mcp-name",
                    name.encode("utf-8") if name.isascii() else b"=?base64?" + base64.b64encode(name.encode()) + b"?=",
                )
            )
    return served.call(served.mcp, "POST", b"/mcp", b"", headers, [body])


@st.composite
def tool_calls(draw: st.DrawFn, tools: list[str]) -> tuple[str, Any]:
    name = draw(st.sampled_from(tools))
    known = [
        "project_id",
        "project-id",
        "task_id",
        "task-id",
        "id",
        "limit",
        "offset",
        "body",
        "after",
        "event_types",
        "exclude_types",
        "entries",
        "status",
        "output",
    ]
    arguments = draw(
        st.one_of(
            st.dictionaries(st.sampled_from(known) | st.text(ODD, max_size=12), JSON_VALUES, max_size=6),
            st.fixed_dictionaries(
                {
                    "project_id": SEGMENT_TEXT.map(unquote),
                    "task_id": SEGMENT_TEXT.map(unquote),
                    "id": SEGMENT_TEXT.map(unquote) | st.sampled_from(["\ud800", "a/\udfff"]),
                },
                optional={"body": JSON_VALUES, "limit": JSON_VALUES, "after": st.text(ODD)},
            ),
            JSON_VALUES,  # not an object at all
        )
    )
    return name, arguments


def _check_mcp(answer: Answer) -> dict[str, Any]:
    assert answer.status < 500, (answer.status, answer.body[:500])
    assert answer.content_type == b"application/json"
    reply = json.loads(answer.body)
    assert reply["jsonrpc"] == "2.0" and ("result" in reply) != ("error" in reply), reply
    if "error" in reply:
        assert reply["error"]["code"] != -32603, reply
    return reply


SEED_TOOLS = sorted(tool.name or "" for tool in Runtime.load(SEED, resolve_environment=False).exposes_named(MCP).tools)


@pytest.mark.parametrize("era", [LEGACY, MODERN])
@FUZZ
@given(call=tool_calls(SEED_TOOLS))
def test_random_tool_arguments_give_a_result_or_an_error_never_a_failure(
    served: Served, caplog: pytest.LogCaptureFixture, era: str, call: tuple[str, Any]
) -> None:
    caplog.set_level(logging.WARNING)
    name, arguments = call
    params: dict[str, Any] = {"name": name, "arguments": arguments}
    if era == MODERN:
        params["_meta"] = {
            "io.modelcontextprotocol/protocolVersion": MODERN,
            "io.modelcontextprotocol/clientCapabilities": {},
        }
    reply = _check_mcp(
        _mcp_request(served, {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": params}, era, name)
    )
    event("isError" if reply.get("result", {}).get("isError") else "result" if "result" in reply else "error")
    if "result" in reply:
        result = reply["result"]
        assert isinstance(result["content"], list) and isinstance(result["isError"], bool)
        text = " ".join(item.get("text", "") for item in result["content"])
        assert not text.startswith("Error:"), text  # the protocol's catch-all for a tool that raised
        assert KEY not in text
    _no_trouble_logged(caplog)


ENVELOPES = st.one_of(
    st.binary(max_size=200),
    JSON_VALUES.map(lambda v: json.dumps(v).encode()),
    st.fixed_dictionaries(
        {
            "jsonrpc": st.sampled_from(["2.0", "1.0", None]),
            "id": JSON_VALUES,
            "method": st.sampled_from(
                [
                    "tools/call",
                    "tools/list",
                    "resources/read",
                    "prompts/get",
                    "initialize",
                    "ping",
                    "server/discover",
                    "nope",
                ]
            )
            | JSON_VALUES,
            "params": JSON_VALUES,
        }
    ).map(lambda m: json.dumps(m).encode()),
)


@pytest.mark.parametrize("era", [LEGACY, MODERN])
@FUZZ
@given(raw=ENVELOPES)
def test_random_mcp_messages_are_answered_as_json_rpc(
    served: Served, caplog: pytest.LogCaptureFixture, era: str, raw: bytes
) -> None:
    caplog.set_level(logging.WARNING)
    try:
        message = json.loads(raw)
    except ValueError:
        message = None
    name = None
    if isinstance(message, dict) and isinstance(message.get("params"), dict):
        found = message["params"].get("name") or message["params"].get("uri")
        name = found if isinstance(found, str) else None
    answer = _mcp_request(served, message, era, name, raw=raw)
    event(f"HTTP {answer.status}")
    if answer.status == 202:  # a notification or a response: accepted, nothing to say
        assert answer.body == b""
    else:
        _check_mcp(answer)
    _no_trouble_logged(caplog)
