"""One error taxonomy (`engine/errors.py`, drawn in its docstring) and one table per edge: what a REST
caller, an MCP caller and the CLI get for each kind; anything else stays a logged 500 / -32603."""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path
from typing import Any
from collections.abc import Iterator

import httpx
import pytest

from naftiko.adapters import cli
from naftiko.adapters.edges import UNENCODABLE
from naftiko.adapters.mcp.backend import INTERNAL_ERROR, INVALID_PARAMS, McpError
from naftiko.adapters.mcp.errors import ERROR_META, resource_failure, tool_failure
from naftiko.adapters.rest.app import _failure
from naftiko.engine import errors
from naftiko.engine.errors import (
    CapabilityError,
    FormatError,
    FormatNotSupported,
    Location,
    NaftikoError,
    NotSupported,
    RequestError,
    RequestTooLarge,
    UnknownOperation,
    UpstreamError,
    UpstreamTimeout,
    answer_for,
)
from tests.support import NaftikoProcess, RecordingUpstream, Reply

SECRET = "s3cr3t-value"


# --------------------------------------------------------------------------- the taxonomy


def _drawn_tree() -> dict[str, str | None]:
    """Each class named in the module docstring's tree, with the class it is drawn under."""
    parents: dict[str, str | None] = {}
    stack: list[tuple[int, str]] = []
    for line in (errors.__doc__ or "").splitlines():
        match = re.match(r"^(\s*)[*x+-] (\w+)\b", line)
        if not match:
            continue
        depth, name = len(match.group(1)), match.group(2)
        while stack and stack[-1][0] >= depth:
            stack.pop()
        parents[name] = stack[-1][1] if stack else None
        stack.append((depth, name))
    return parents


def test_the_docstring_draws_the_real_hierarchy() -> None:
    drawn = _drawn_tree()
    defined = {
        name for name, value in vars(errors).items() if isinstance(value, type) and issubclass(value, NaftikoError)
    }
    assert set(drawn) == defined, "every NaftikoError kind is drawn, and only those"
    for name, parent in drawn.items():
        kind = getattr(errors, name)
        if parent is None:
            assert kind is NaftikoError
        else:
            assert getattr(errors, parent) in kind.__bases__, f"{name} is drawn under {parent}"


def test_errors_keep_the_builtin_bases_callers_catch() -> None:
    assert issubclass(errors.TemplateError, ValueError) and issubclass(errors.JsonPathError, ValueError)
    assert issubclass(FormatError, ValueError) and issubclass(errors.MissingValue, LookupError)
    assert issubclass(FormatNotSupported, FormatError) and issubclass(FormatNotSupported, NotSupported)


def test_the_most_specific_entry_wins_whatever_the_order() -> None:
    table = {NaftikoError: "base", UpstreamError: "upstream", UpstreamTimeout: "timeout"}
    assert answer_for(table, UpstreamTimeout("ns", "op", "late")) == "timeout"
    assert answer_for(table, UpstreamError("ns", "op", "down")) == "upstream"
    assert answer_for(table, UnknownOperation("x")) == "base"
    assert answer_for(table, RuntimeError("bug")) is None
    assert answer_for({FormatError: "format", NotSupported: "501"}, FormatNotSupported("avro")) == "format"


# --------------------------------------------------------------------------- REST


def _rest(exc: Exception) -> tuple[int, dict[str, Any]]:
    response = _failure(exc, "GET /things")
    return response.status_code, json.loads(response.body)["error"]


@pytest.mark.parametrize(
    "exc, status, body",
    [
        (
            RequestError("limit must be a number", parameter="limit"),
            400,
            {"type": "bad_request", "message": "limit must be a number", "parameter": "limit"},
        ),
        (RequestError("no body"), 400, {"type": "bad_request", "message": "no body"}),
        (
            RequestTooLarge("too large", limit=1024),
            413,
            {"type": "request_too_large", "message": "too large", "limit": 1024},
        ),
        (
            UnicodeEncodeError("utf-8", "\ud800", 0, 1, "surrogates not allowed"),
            400,
            {"type": "bad_request", "message": UNENCODABLE},
        ),
        (
            UpstreamError("api", "get", "connection refused"),
            502,
            {"type": "upstream_error", "message": "upstream api (get): connection refused", "upstream": "api"},
        ),
        (
            UpstreamTimeout("api", "get", "no answer within 1s"),
            504,
            {"type": "upstream_timeout", "message": "upstream api (get): no answer within 1s", "upstream": "api"},
        ),
        (NotSupported("script steps"), 501, {"type": "not_implemented", "message": "script steps"}),
        (
            FormatNotSupported("outputRawFormat 'avro'"),
            501,
            {"type": "not_implemented", "message": "outputRawFormat 'avro'"},
        ),
    ],
)
def test_rest_table(exc: Exception, status: int, body: dict[str, Any]) -> None:
    assert _rest(exc) == (status, body)


@pytest.mark.parametrize(
    "exc",
    [RuntimeError(f"bug holding {SECRET}"), KeyError(SECRET), CapabilityError.at(Location("x.yaml", 1, 1), SECRET)],
)
def test_rest_anything_else_is_a_logged_500_without_its_text(exc: Exception, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.ERROR, logger="naftiko.rest"):
        status, body = _rest(exc)
    assert status == 500 and body["type"] == "internal_error"
    assert SECRET not in json.dumps(body)
    assert [r.exc_info[1] for r in caplog.records if r.exc_info] == [exc], "logged once, with its traceback"


# --------------------------------------------------------------------------- MCP


@pytest.mark.parametrize(
    "exc, text, detail",
    [
        (
            RequestError("bad id", parameter="id"),
            "invalid arguments: bad id",
            {"type": "bad_request", "message": "bad id", "parameter": "id"},
        ),
        (
            UnicodeEncodeError("utf-8", "\ud800", 0, 1, "surrogates not allowed"),
            f"invalid arguments: {UNENCODABLE}",
            {"type": "bad_request", "message": UNENCODABLE},
        ),
        (
            UpstreamError("api", "get", "refused"),
            "upstream api (get): refused",
            {"type": "upstream_error", "upstream": "api", "operation": "get", "message": "upstream api (get): refused"},
        ),
        (
            UpstreamTimeout("api", "get", "late"),
            "upstream api (get): late",
            {"type": "upstream_timeout", "upstream": "api", "operation": "get", "message": "upstream api (get): late"},
        ),
        (NotSupported("avro"), "avro", {"type": "not_implemented", "message": "avro"}),
    ],
)
def test_mcp_table(exc: Exception, text: str, detail: dict[str, Any]) -> None:
    result = tool_failure(exc)
    assert result.is_error and result.content == [{"type": "text", "text": text}]
    assert result.meta == {ERROR_META: detail}
    error = resource_failure(exc, "x://r")
    if detail["type"] == "bad_request":
        assert (error.code, error.data) == (INVALID_PARAMS, {"uri": "x://r"})
        assert error.message == f"Invalid params: {text.removeprefix('invalid arguments: ')}"
    else:
        assert (error.code, error.data) == (INTERNAL_ERROR, {"uri": "x://r", **detail})
        assert error.message == f"reading x://r failed: {text}"


def test_mcp_anything_else_is_left_to_the_protocol_layer() -> None:
    bug = RuntimeError(SECRET)
    with pytest.raises(RuntimeError) as caught:
        tool_failure(bug)
    assert caught.value is bug
    with pytest.raises(RuntimeError):
        resource_failure(bug, "x://r")
    with pytest.raises(McpError):  # protocol errors are not engine errors: never mapped here
        tool_failure(McpError(INVALID_PARAMS, "Unknown tool"))


# --------------------------------------------------------------------------- CLI


@pytest.mark.parametrize(
    "exc, code, lines",
    [
        (
            CapabilityError.at(Location("a.yaml", 3, 5, "capability.x"), "wrong"),
            1,
            ["a.yaml:3:5: wrong (at capability.x)"],
        ),
        (RequestError("limit must be a number"), 2, ["naftiko: limit must be a number"]),
        (UnknownOperation("no operation api.nope"), 2, ["naftiko: no operation api.nope"]),
        (UpstreamTimeout("api", "get", "late"), 1, ["naftiko: upstream api (get): late"]),
        (NaftikoError("cannot listen"), 1, ["naftiko: cannot listen"]),
        (KeyboardInterrupt(), 130, []),
    ],
)
def test_cli_table(exc: BaseException, code: int, lines: list[str]) -> None:
    answer = answer_for(cli.EXIT_CODES, exc)
    assert answer is not None
    assert (answer[0], answer[1](exc)) == (code, lines)
    assert answer_for(cli.EXIT_CODES, RuntimeError("bug")) is None, "a bug keeps its traceback"


CAPABILITY = """\
naftiko: 1.0.0-alpha2
capability:
  consumes:
    - type: http
      namespace: bin
      baseUri: http://127.0.0.1:1
      resources:
        - name: records
          path: /records
          operations: [{name: records, method: GET, outputRawFormat: protobuf}]
  exposes:
    - type: rest
      namespace: bin-rest
      port: 9
      resources:
        - {path: /records, operations: [{method: GET, call: bin.records}]}
    - type: mcp
      namespace: bin-mcp
      port: 9
      tools:
        - {name: records, description: Records., call: bin.records}
      resources:
        - {name: records, uri: "bin://records", description: Records., call: bin.records}
"""


def test_cli_main_exits_with_the_table_code(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "bin.yaml"
    path.write_text(CAPABILITY)
    assert cli.main(["call", "bin.nope", "--path", str(path)]) == 2  # UnknownOperation: the command line was wrong
    err = capsys.readouterr().err
    assert err.startswith("naftiko: ") and "bin.nope" in err
    path.write_text(CAPABILITY.replace("method: GET, out", "method: GOT, out"))
    assert cli.main(["validate", str(path)]) == 1  # CapabilityError: one positioned line per problem
    assert capsys.readouterr().err.startswith(f"{path}:10:48: 'method' must be one of")


# --------------------------------------------------------------------------- end to end: NotSupported is raised


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str, NaftikoProcess]]:
    from tests.support import ThreadedServer

    upstream = RecordingUpstream()
    upstream.reply("GET", "/records", Reply(body=b"\x08\x01\x12\x03abc", content_type="application/x-protobuf"))
    with ThreadedServer(upstream) as url:
        path = tmp_path_factory.mktemp("bin") / "bin.yaml"
        path.write_text(CAPABILITY)
        process = NaftikoProcess([str(path), "--base-uri", f"bin={url}", "--port", "bin-rest=0", "--port", "bin-mcp=0"])
        try:
            urls = process.wait_for("bin-rest", "bin-mcp")
            yield urls["bin-rest"].rstrip("/"), urls["bin-mcp"], process
        finally:
            process.stop()


def _rpc(url: str, method: str, params: dict[str, Any]) -> dict[str, Any]:
    headers = {
        "Accept": "application/json, text/event-stream",
        "MCP-Protocol-Version": "2025-06-18",
        "Content-Type": "application/json",
    }
    message = {"jsonrpc": "2.0", "id": 1, "method": method, "params": params}
    response = httpx.post(url, content=json.dumps(message), headers=headers, timeout=20)
    assert response.status_code == 200, response.text
    return response.json()


def test_a_format_not_decoded_yet_is_not_implemented_at_every_edge(served: tuple[str, str, NaftikoProcess]) -> None:
    rest, mcp, process = served
    response = httpx.get(f"{rest}/records", timeout=20)
    assert response.status_code == 501
    assert response.json() == {
        "error": {
            "type": "not_implemented",
            "message": "bin.records: outputRawFormat 'protobuf' is not supported by this runtime yet",
        }
    }
    result = _rpc(mcp, "tools/call", {"name": "records", "arguments": {}})["result"]
    assert result["isError"] is True and "structuredContent" not in result
    assert result["_meta"][ERROR_META]["type"] == "not_implemented"
    assert "outputRawFormat 'protobuf' is not supported" in result["content"][0]["text"]
    error = _rpc(mcp, "resources/read", {"uri": "bin://records"})["error"]
    assert error["code"] == INTERNAL_ERROR and error["data"]["type"] == "not_implemented"
    assert "Traceback" not in "\n".join(process.log)
