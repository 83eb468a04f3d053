"""Access logs as an operator reads them: the served blocks over real loopback HTTP (uvicorn, as `naftiko serve`
runs them), REST calls and MCP tool calls through the official SDK; every line parsed as JSON, its fields the
calls made, an API key placed in the query string never in the output; the JSON formatter of the server's own
lines; nothing installed when access logs are off."""

from __future__ import annotations

import io
import json
import logging
import re
from datetime import datetime
from pathlib import Path
from typing import Any
from collections.abc import Callable, Iterator

import httpx
import pytest
from mcp import Client

from naftiko.adapters.apps import block_app
from naftiko.adapters.control import observe
from naftiko.adapters.control.accesslog import ACCESS_LOGGER, AccessLog, JsonFormatter, access_logged
from naftiko.engine import Runtime, load_capabilities
from tests.support import NaftikoProcess, RecordingUpstream, Reply, ThreadedServer

pytestmark = pytest.mark.anyio

KEY = "k3y-in-the-query-5ecret"

CAPABILITY = """\
naftiko: 1.0.0-alpha2
info:
  label: Access log test
binds:
  - namespace: env
    keys:
      API_KEY: API_KEY
capability:
  consumes:
    - type: http
      namespace: up
      baseUri: http://127.0.0.1:1
      resources:
        - name: items
          path: /items/{{id}}
          operations:
            - name: get-item
              method: GET
              inputParameters:
                - {name: id, in: path}
  exposes:
    - type: rest
      namespace: api
      port: 18801
      authentication: {type: apikey, key: apikey, value: "{{API_KEY}}", placement: query}
      resources:
        - path: /items/{id}
          operations:
            - {method: GET, call: up.get-item, with: {id: "{{id}}"}}
    - type: mcp
      namespace: tools
      port: 18802
      tools:
        - name: get-item
          description: one item
          call: up.get-item
          with: {id: "{{id}}"}
          inputParameters:
            - {name: id, type: string, description: the id, required: true}
"""


class Lines:
    """What the `naftiko.access` logger and the `naftiko` logger wrote, through `JsonFormatter`."""

    def __init__(self) -> None:
        self.stream = io.StringIO()
        self.handler = logging.StreamHandler(self.stream)
        self.handler.setFormatter(JsonFormatter())

    def text(self) -> str:
        return self.stream.getvalue()

    def parsed(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.text().splitlines()]

    def access(self) -> list[dict[str, Any]]:
        return [line for line in self.parsed() if line["logger"] == ACCESS_LOGGER]


@pytest.fixture
def lines() -> Iterator[Lines]:
    captured = Lines()
    loggers = [logging.getLogger(ACCESS_LOGGER), logging.getLogger("naftiko")]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.addHandler(captured.handler)
        logger.setLevel(logging.INFO)
    logging.getLogger(ACCESS_LOGGER).propagate = False  # into `lines` once, not again through `naftiko`
    yield captured
    for logger, level in zip(loggers, levels, strict=True):
        logger.removeHandler(captured.handler)
        logger.setLevel(level)
    logging.getLogger(ACCESS_LOGGER).propagate = True


def _runtime(tmp_path: Path, upstream: RecordingUpstream) -> Runtime:
    path = tmp_path / "access.yaml"
    path.write_text(CAPABILITY)
    return Runtime(load_capabilities([path]), base_uris={"up": upstream.url}, environ={"API_KEY": KEY})


@pytest.fixture
def served(tmp_path: Path, upstream: RecordingUpstream) -> Iterator[dict[str, str]]:
    """The REST and MCP blocks, each behind its access log as `naftiko serve --log-format json` serves them."""
    runtime = _runtime(tmp_path, upstream)
    assert observe(runtime, access_log=True) is not None
    apps = {e.namespace: access_logged(runtime, e, block_app(runtime, e)) for e in runtime.exposes}
    assert all(isinstance(app, AccessLog) for app in apps.values())

    async def both(scope: Any, receive: Any, send: Any) -> None:
        """One server (one event loop, as the runtime's pools need): /mcp is the MCP block, the rest REST."""
        app = apps["tools"] if scope["type"] == "http" and scope["path"].startswith("/mcp") else apps["api"]
        await app(scope, receive, send)

    with ThreadedServer(both) as url:
        yield {"api": url, "tools": f"{url}/mcp"}


RFC3339 = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


async def test_a_line_per_rest_request_with_its_route_status_and_upstream_calls(
    served: dict[str, str], upstream: RecordingUpstream, lines: Lines
) -> None:
    upstream.reply("GET", "/items/9", Reply(status=503, json={"detail": "down"}))
    async with httpx.AsyncClient() as http:
        assert (await http.get(f"{served['api']}/items/42", params={"apikey": KEY, "q": "x"})).status_code == 200
        traceparent = upstream.last.headers["traceparent"]
        assert (await http.get(f"{served['api']}/items/9", params={"apikey": KEY})).status_code == 503
        assert (await http.get(f"{served['api']}/items/42", params={"apikey": "wrong"})).status_code == 401
        assert (await http.get(f"{served['api']}/nowhere/{KEY}", params={"apikey": KEY})).status_code == 404
    ok, failed, refused, unrouted = lines.access()
    assert set(ok) == {
        "time",
        "level",
        "logger",
        "adapter",
        "namespace",
        "method",
        "operation",
        "status",
        "duration_ms",
        "trace_id",
        "upstream_calls",
        "upstream_ms",
        "client",
    }
    assert RFC3339.match(ok["time"]) and datetime.fromisoformat(ok["time"].replace("Z", "+00:00"))
    assert ok["level"] == "info" and ok["logger"] == "naftiko.access"
    assert (ok["adapter"], ok["namespace"], ok["method"]) == ("rest", "api", "GET")
    assert (ok["operation"], ok["status"], ok["upstream_calls"]) == ("GET /items/{id}", 200, 1)
    assert ok["trace_id"] == traceparent.split("-")[1]  # the trace the upstream was told of
    assert 0 < ok["upstream_ms"] <= ok["duration_ms"]
    assert ok["client"] == "127.0.0.1"
    assert (failed["status"], failed["upstream_calls"], failed["operation"]) == (503, 1, "GET /items/{id}")
    # refused by the block's authentication before any adapter saw it: logged, with no operation
    assert (refused["status"], refused["operation"], refused["upstream_calls"], refused["trace_id"]) == (
        401,
        None,
        0,
        None,
    )
    assert (unrouted["status"], unrouted["operation"]) == (404, "(unrouted)")
    assert KEY not in lines.text() and "wrong" not in lines.text()  # no query string, no raw path, ever
    assert "/items/42" not in lines.text() and "q=x" not in lines.text()


async def test_a_line_per_mcp_request_the_tool_call_named(
    served: dict[str, str], upstream: RecordingUpstream, lines: Lines
) -> None:
    async with Client(served["tools"], mode="legacy", cache=None) as mcp:
        assert not (await mcp.call_tool("get-item", {"id": "7"})).is_error
    logged = lines.access()
    assert all(line["adapter"] == "mcp" and line["namespace"] == "tools" for line in logged)
    calls = [line for line in logged if line["operation"] == "get-item"]
    assert len(calls) == 1
    call = calls[0]
    assert (call["method"], call["status"], call["upstream_calls"]) == ("POST", 200, 1)
    assert call["trace_id"] == upstream.last.headers["traceparent"].split("-")[1]
    others = [line for line in logged if line["operation"] is None]  # initialize, its notification, DELETE...
    assert others and all(line["upstream_calls"] == 0 for line in others)
    assert len(logged) == len(calls) + len(others)
    assert "mcp-session-id" not in lines.text().lower()  # no header is logged


def test_access_logs_off_install_nothing(tmp_path: Path, upstream: RecordingUpstream) -> None:
    runtime = _runtime(tmp_path, upstream)
    assert observe(runtime) is None and runtime.observer is None  # NAFTIKO_LOG_FORMAT unset: no observer
    for exposes in runtime.exposes:
        app = block_app(runtime, exposes)
        assert access_logged(runtime, exposes, app) is app


def test_the_log_format_variable_turns_access_logs_on(tmp_path: Path, upstream: RecordingUpstream) -> None:
    path = tmp_path / "access.yaml"
    path.write_text(CAPABILITY)
    environ = {"API_KEY": KEY, "NAFTIKO_LOG_FORMAT": "json"}
    runtime = Runtime(load_capabilities([path]), base_uris={"up": upstream.url}, environ=environ)
    observer = observe(runtime)
    assert observer is not None and observer.metrics is None and observer.traces is None
    exposes = runtime.exposes[0]
    assert isinstance(access_logged(runtime, exposes, block_app(runtime, exposes)), AccessLog)


def test_the_json_formatter_writes_one_object_per_record_tracebacks_included() -> None:
    formatter = JsonFormatter()
    logger = logging.getLogger("naftiko.test-json")
    record = logger.makeRecord("naftiko", logging.WARNING, __file__, 1, "upstream %s failed", ("up",), None)
    line = json.loads(formatter.format(record))
    assert line["message"] == "upstream up failed" and line["level"] == "warning" and line["logger"] == "naftiko"
    assert RFC3339.match(line["time"])
    try:
        raise ValueError("bad\nthing")
    except ValueError:
        import sys

        failing = logger.makeRecord("naftiko", logging.ERROR, __file__, 1, "boom", (), sys.exc_info())
    failing.__dict__["route"] = "GET /x"
    failing.__dict__["pool"] = object()
    text = formatter.format(failing)
    assert "\n" not in text
    parsed = json.loads(text)
    assert "ValueError: bad\nthing" in parsed["exception"] and parsed["route"] == "GET /x"
    assert parsed["pool"].startswith("<object")


def test_the_json_formatter_adds_its_fields_to_every_line() -> None:
    formatter = JsonFormatter({"worker": 2})
    record = logging.makeLogRecord({"name": "naftiko", "levelno": logging.INFO, "levelname": "INFO", "msg": "up"})
    assert json.loads(formatter.format(record))["worker"] == 2
    access = logging.makeLogRecord({"name": ACCESS_LOGGER, "msg": "%s", "args": ("x",)})
    access.access = {"time": "2026-01-01T00:00:00.000Z", "status": 200}
    line = json.loads(formatter.format(access))
    assert (line["worker"], line["status"], line["time"]) == (2, 200, "2026-01-01T00:00:00.000Z")


def _json_lines(process: NaftikoProcess) -> list[dict[str, Any]]:
    return [json.loads(line) for line in process.log if line.strip()]


async def test_serve_log_format_json_writes_every_line_as_json_and_one_access_line_per_request(
    tmp_path: Path, upstream: RecordingUpstream, naftiko: Callable[..., NaftikoProcess]
) -> None:
    """`naftiko serve --log-format json` as an operator runs it: its own lines and the access lines, all JSON."""
    path = tmp_path / "access.yaml"
    path.write_text(CAPABILITY)
    process = naftiko(
        str(path),
        "--base-uri",
        f"up={upstream.url}",
        "--port",
        "api=0",
        "--port",
        "tools=0",
        "--log-format",
        "json",
        env={"API_KEY": KEY},
    )
    urls = process.wait_for("api", "tools")
    async with httpx.AsyncClient() as http:
        assert (await http.get(f"{urls['api']}/items/42", params={"apikey": KEY})).status_code == 200
        assert (await http.get(f"{urls['api']}/items/42")).status_code == 401
    async with Client(urls["tools"], mode="legacy", cache=None) as mcp:
        assert not (await mcp.call_tool("get-item", {"id": "7"})).is_error
    assert process.stop() == 0
    lines = _json_lines(process)  # every line parses: json.loads raises on any other
    own = [line for line in lines if line["logger"] != ACCESS_LOGGER]
    assert any("REST api" in line["message"] for line in own) and any(line["message"] == "stopped" for line in own)
    access = [line for line in lines if line["logger"] == ACCESS_LOGGER]
    rest = [line for line in access if line["adapter"] == "rest"]
    assert [(line["status"], line["operation"], line["upstream_calls"]) for line in rest] == [
        (200, "GET /items/{id}", 1),
        (401, None, 0),
    ]
    tools = [line for line in access if line["adapter"] == "mcp" and line["operation"] == "get-item"]
    assert len(tools) == 1 and tools[0]["upstream_calls"] == 1
    assert all(RFC3339.match(line["time"]) for line in lines)
    assert KEY not in "\n".join(process.log)


async def test_the_log_format_variable_does_what_the_flag_does(
    tmp_path: Path, upstream: RecordingUpstream, naftiko: Callable[..., NaftikoProcess]
) -> None:
    path = tmp_path / "access.yaml"
    path.write_text(CAPABILITY)
    process = naftiko(
        str(path),
        "--base-uri",
        f"up={upstream.url}",
        "--port",
        "api=0",
        "--port",
        "tools=0",
        env={"API_KEY": KEY, "NAFTIKO_LOG_FORMAT": "json"},
    )
    urls = process.wait_for("api", "tools")
    async with httpx.AsyncClient() as http:
        assert (await http.get(f"{urls['api']}/items/1", params={"apikey": KEY})).status_code == 200
    assert process.stop() == 0
    assert [line["status"] for line in _json_lines(process) if line["logger"] == ACCESS_LOGGER] == [200]
