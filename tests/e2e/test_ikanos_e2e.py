"""One capability written in Ikanos 1.0.0-beta5 and in Naftiko 1.0.0-alpha2, served by real
`naftiko serve` processes: the same REST answers and, over the official MCP SDK client in both
protocol eras, the same tools and the same results (the Ikanos engine itself speaks only 2026-07-28).
"""

from __future__ import annotations

import json
from typing import Any
from collections.abc import Iterator

import httpx
import pytest
from mcp import Client

from tests.support import ROOT, NaftikoProcess, RecordingUpstream, Reply, ThreadedServer

pytestmark = pytest.mark.anyio

DATA = ROOT / "tests" / "data" / "ikanos"
ERAS = ["auto", "legacy"]  # 2026-07-28 and the handshake era
NOTE = {"id": "n1", "title": "Groceries", "body": "milk"}
NOTES = {"count": 2, "results": [NOTE, {"id": "n2", "title": "Books"}]}


@pytest.fixture(scope="module")
def upstream() -> Iterator[tuple[str, RecordingUpstream]]:
    recorder = RecordingUpstream()
    recorder.reply("GET", "/notes/n1", Reply(json=NOTE))
    recorder.reply("GET", "/notes", Reply(json=NOTES))
    with ThreadedServer(recorder) as url:
        yield url, recorder


@pytest.fixture(scope="module", params=["ikanos", "naftiko"])
def served(request: pytest.FixtureRequest, upstream: tuple[str, RecordingUpstream]) -> Iterator[dict[str, str]]:
    path = DATA / f"notes.{request.param}.yaml"
    process = NaftikoProcess(
        [str(path), "--base-uri", f"notes-api={upstream[0]}", "--port", "notes-rest=0", "--port", "notes-mcp=0"]
    )
    try:
        yield process.wait_for("notes-rest", "notes-mcp")
    finally:
        process.stop()


async def _rest(urls: dict[str, str], recorder: RecordingUpstream) -> list[Any]:
    async with httpx.AsyncClient(base_url=urls["notes-rest"].rstrip("/")) as http:
        listed = await http.get("/notes", params={"tag": "home"})
        sent = recorder.last
        one = await http.get("/notes/n1")
    assert (sent.path, sent.query, sent.headers["accept"]) == ("/notes", "tag=home", "application/json")
    return [listed.status_code, listed.json(), one.status_code, one.json()]


async def _mcp(url: str, mode: str) -> dict[str, Any]:
    async with Client(url, mode=mode, cache=None) as mcp:
        tools = {
            t.name: (t.title, t.description, t.input_schema, t.output_schema) for t in (await mcp.list_tools()).tools
        }
        results = {}
        for name, arguments in [
            ("list-notes", {"tag": "x"}),
            ("note-summary", {"note_id": "n1"}),
            ("note-and-list", {"note_id": "n1"}),
        ]:
            result = await mcp.call_tool(name, arguments)
            assert result.is_error is False, (name, result.content)
            results[name] = (json.loads(result.content[0].text), result.structured_content)
    return {"tools": tools, "results": results}


async def test_rest_answers_alike(served: dict[str, str], upstream: tuple[str, RecordingUpstream]) -> None:
    answers = await _rest(served, upstream[1])
    assert answers == [200, NOTES, 200, {"id": "n1", "title": "Groceries"}]


@pytest.mark.parametrize("mode", ERAS)
async def test_mcp_tools_and_results_alike(served: dict[str, str], mode: str) -> None:
    seen = await _mcp(served["notes-mcp"], mode)
    title, description, schema, _ = seen["tools"]["list-notes"]
    assert (title, description) == ("List notes", "Every note, optionally by tag.")
    assert schema["properties"]["tag"] == {"type": "string", "description": "Only notes with this tag"}
    assert seen["tools"]["note-summary"][1] == "One note, summarised.", "a ref'd flow lends its description"
    assert seen["results"]["note-summary"][0] == {"id": "n1", "title": "Groceries"}
    assert seen["results"]["note-and-list"][0] == {"note": {"title": "Groceries"}, "total": 2}
    assert seen["results"]["list-notes"][0] == NOTES


@pytest.mark.parametrize("mode", ERAS)
async def test_both_dialects_serve_the_same_mcp(upstream: tuple[str, RecordingUpstream], mode: str) -> None:
    seen = []
    for dialect in ("ikanos", "naftiko"):
        process = NaftikoProcess(
            [
                str(DATA / f"notes.{dialect}.yaml"),
                "--base-uri",
                f"notes-api={upstream[0]}",
                "--port",
                "notes-mcp=0",
                "--port",
                "notes-rest=0",
            ]
        )
        try:
            urls = process.wait_for("notes-mcp", "notes-rest")
            seen.append((await _mcp(urls["notes-mcp"], mode), await _rest(urls, upstream[1])))
        finally:
            process.stop()
    assert seen[0] == seen[1]
