"""`naftiko import openapi` as a user runs it: a document fetched from a loopback HTTP server, the file written,
`naftiko validate`d and served by a real `naftiko serve` process against an upstream stand-in, with one REST
route and one MCP tool (the official SDK client) reaching the upstream with the right path, query and token."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import httpx
import pytest
from mcp import Client

from tests.support import ROOT, RecordingUpstream, ThreadedServer, read_body

POSTHOG = ROOT / "tests" / "data" / "openapi" / "posthog-tasks-3.0.yaml"


def documents(routes: dict[str, tuple[bytes, dict[str, str]]]) -> Callable[..., Any]:
    """An ASGI app serving fixed bodies by path (and 404 otherwise): where a user's OpenAPI URL points."""

    async def app(scope: dict, receive: Callable, send: Callable) -> None:
        if scope["type"] != "http":
            return
        await read_body(receive)
        body, headers = routes.get(scope["path"], (b"not found", {}))
        status = int(headers.get(":status", "200")) if scope["path"] in routes else 404
        raw = [(k.encode(), v.encode()) for k, v in headers.items() if not k.startswith(":")]
        await send({"type": "http.response.start", "status": status, "headers": raw})
        if headers.get("transfer-encoding") == "chunked" or "content-length" not in headers:
            for start in range(0, len(body), 1 << 20):  # streamed without a declared length
                await send({"type": "http.response.body", "body": body[start : start + (1 << 20)], "more_body": True})
            await send({"type": "http.response.body", "body": b""})
        else:
            await send({"type": "http.response.body", "body": body})

    return app


def naftiko_cli(*args: str, cwd: Path = ROOT, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "naftiko", *args]
    return subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=60, env=env)


@pytest.fixture
def served_document() -> Iterator[str]:
    text = POSTHOG.read_bytes()
    big = b"openapi: 3.0.3\n" + b"# padding\n" * 300_000  # 3 MB
    routes = {
        "/openapi.yaml": (text, {"content-type": "application/yaml", "content-length": str(len(text))}),
        "/big.yaml": (big, {"content-type": "application/yaml", "content-length": str(len(big))}),
        "/big-streamed.yaml": (big, {"content-type": "application/yaml"}),
        "/moved": (b"", {":status": "302", "location": "/openapi.yaml", "content-length": "0"}),
        "/to-ftp": (b"", {":status": "302", "location": "ftp://127.0.0.1/openapi.yaml", "content-length": "0"}),
    }
    with ThreadedServer(documents(routes)) as url:
        yield url


@pytest.mark.anyio
async def test_import_from_url_validate_and_serve(
    tmp_path: Path, served_document: str, naftiko, upstream: RecordingUpstream
) -> None:
    out = tmp_path / "posthog.yaml"
    imported = naftiko_cli("import", "openapi", f"{served_document}/openapi.yaml", "-o", str(out))
    assert imported.returncode == 0, imported.stderr
    assert "wrote" in imported.stderr and "namespace posthog-tasks" in imported.stderr
    checked = naftiko_cli("validate", str(out))
    assert (checked.returncode, checked.stderr) == (0, ""), checked.stderr
    assert "BEARER_TOKEN" in out.read_text() and "phx_" not in out.read_text()

    process = naftiko(
        str(out),
        "--base-uri",
        f"posthog-tasks={upstream.url}",
        "--port",
        "posthog-tasks-rest=0",
        "--port",
        "posthog-tasks-mcp=0",
        env={"BEARER_TOKEN": "phx_test_token"},
    )
    urls = process.wait_for("posthog-tasks-rest", "posthog-tasks-mcp")

    async with httpx.AsyncClient(timeout=10) as http:
        answer = await http.get(
            f"{urls['posthog-tasks-rest']}/api/projects/42/tasks", params={"limit": 5, "search": "bug"}
        )
    assert answer.status_code == 200, answer.text
    seen = upstream.last
    assert (seen.method, seen.path) == ("GET", "/api/projects/42/tasks/")
    assert parse_qs(seen.query) == {"limit": ["5"], "search": ["bug"]}
    assert seen.headers["authorization"] == "Bearer phx_test_token"

    async with Client(urls["posthog-tasks-mcp"], cache=None) as mcp:
        tools = {tool.name: tool for tool in (await mcp.list_tools()).tools}
        assert tools["tasks-runs-list"].description == "List task runs"
        assert set(tools["tasks-runs-list"].input_schema["required"]) == {"project_id", "task_id"}
        result = await mcp.call_tool("tasks-runs-list", {"project_id": "42", "task_id": "t-1", "limit": 2})
        assert not result.is_error, result.content
        created = await mcp.call_tool(
            "tasks-runs-create", {"project_id": "42", "task_id": "t-1", "environment": "cloud", "branch": "main"}
        )
        assert not created.is_error, created.content
    listed, posted = upstream.requests[-2:]
    assert (listed.method, listed.path, parse_qs(listed.query)) == (
        "GET",
        "/api/projects/42/tasks/t-1/runs/",
        {"limit": ["2"]},
    )
    assert listed.headers["authorization"] == "Bearer phx_test_token"
    assert (posted.method, posted.path) == ("POST", "/api/projects/42/tasks/t-1/runs/")
    assert json.loads(posted.body) == {"environment": "cloud", "branch": "main"}
    assert posted.headers["content-type"].startswith("application/json")


def test_oversized_documents_are_refused(tmp_path: Path, served_document: str) -> None:
    for name in ("big.yaml", "big-streamed.yaml"):  # declared too long, and found too long while streaming
        refused = naftiko_cli("import", "openapi", f"{served_document}/{name}", "--max-size", "1M", "-o", "-")
        assert refused.returncode == 1
        assert refused.stderr.strip() == (
            f"naftiko: {served_document}/{name}: the OpenAPI document is larger than 1048576 bytes (the import limit)"
        )
        assert refused.stdout == ""
    missing = naftiko_cli("import", "openapi", f"{served_document}/nothing.yaml", "-o", "-")
    assert (missing.returncode, missing.stderr.strip()) == (
        1,
        f"naftiko: {served_document}/nothing.yaml: the server answered 404 Not Found",
    )
    assert "Traceback" not in missing.stderr


def test_default_output_file_is_never_overwritten(tmp_path: Path) -> None:
    first = naftiko_cli("import", "openapi", str(POSTHOG), cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    assert (tmp_path / "posthog-tasks.yaml").is_file()
    again = naftiko_cli("import", "openapi", str(POSTHOG), cwd=tmp_path)
    assert again.returncode == 2
    assert "posthog-tasks.yaml exists" in again.stderr


def test_redirects_are_followed_to_http_only(served_document: str) -> None:
    moved = naftiko_cli("import", "openapi", f"{served_document}/moved", "-o", "-")
    assert moved.returncode == 0, moved.stderr
    assert "namespace: posthog-tasks" in moved.stdout
    ftp = naftiko_cli("import", "openapi", f"{served_document}/to-ftp", "-o", "-")
    assert (ftp.returncode, ftp.stderr.strip()) == (
        1,
        f"naftiko: {served_document}/to-ftp: redirected to 'ftp://127.0.0.1/openapi.yaml', which is not an http(s) URL",
    )
