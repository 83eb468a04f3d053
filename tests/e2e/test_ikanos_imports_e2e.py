"""A capability built from shared files, served by a real `naftiko serve`: its REST block, MCP block,
aggregate and binding are imported (tests/data/ikanos/imports), and a loopback upstream sees the calls.
The command line on the shared files themselves: `validate` says what they are, `serve` refuses them,
a folder serves only its capabilities, and `convert` rewrites them both ways.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from collections.abc import Iterator

import httpx
import pytest
from mcp import Client

from tests.support import ROOT, NaftikoProcess, RecordingUpstream, Reply, ThreadedServer

pytestmark = pytest.mark.anyio

DATA = ROOT / "tests" / "data" / "ikanos" / "imports"
WEATHER = DATA / "weather.ikanos.yaml"
OSLO = {"city": "Oslo", "high": 4, "low": -2}
TOKEN = "Bearer test-token-5f2c"  # tests/data/ikanos/imports/shared/weather-secrets.yaml, through the imported bind


@pytest.fixture(scope="module")
def upstream() -> Iterator[tuple[str, RecordingUpstream]]:
    recorder = RecordingUpstream()
    recorder.reply("GET", "/forecasts/oslo", Reply(json=OSLO))
    with ThreadedServer(recorder) as url:
        yield url, recorder


def _serve(path: Path, base: str) -> NaftikoProcess:
    return NaftikoProcess(
        [str(path), "--base-uri", f"weather-api={base}", "--port", "forecast-rest=0", "--port", "weather-mcp=0"]
    )


@pytest.fixture(scope="module")
def served(upstream: tuple[str, RecordingUpstream]) -> Iterator[dict[str, str]]:
    process = _serve(WEATHER, upstream[0])
    try:
        yield process.wait_for("forecast-rest", "weather-mcp")
    finally:
        process.stop()


def _naftiko(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "naftiko", *args], cwd=ROOT, capture_output=True, text=True, timeout=60
    )


async def test_the_imported_rest_route_answers_with_the_bound_token(
    served: dict[str, str], upstream: tuple[str, RecordingUpstream]
) -> None:
    async with httpx.AsyncClient(base_url=served["forecast-rest"].rstrip("/")) as http:
        answer = await http.get("/forecast/oslo")
    assert (answer.status_code, answer.json()) == (200, OSLO)
    seen = upstream[1].last
    assert (seen.method, seen.path, seen.headers["authorization"]) == ("GET", "/forecasts/oslo", TOKEN)


async def test_the_imported_mcp_tool_runs_the_imported_aggregate(
    served: dict[str, str], upstream: tuple[str, RecordingUpstream]
) -> None:
    async with Client(served["weather-mcp"], mode="auto", cache=None) as mcp:
        tools = {t.name: t.description for t in (await mcp.list_tools()).tools}
        result = await mcp.call_tool("forecast", {"city": "oslo"})
    assert tools == {"forecast": "The forecast for a city."}  # the aggregate flow's description
    assert result.is_error is False, result.content
    assert json.loads(result.content[0].text) == {"city": "Oslo", "high": 4}  # the flow's outputParameters
    assert result.structured_content == {"city": "Oslo", "high": 4}
    assert upstream[1].last.headers["authorization"] == TOKEN


def test_a_folder_serves_its_capability_and_not_its_shared_files(
    tmp_path: Path, upstream: tuple[str, RecordingUpstream]
) -> None:
    for path in [WEATHER, *sorted((DATA / "shared").iterdir())]:
        (tmp_path / path.name).write_text(path.read_text().replace("./shared/", "./"))
    process = _serve(tmp_path, upstream[0])
    try:
        urls = process.wait_for("forecast-rest", "weather-mcp")
        assert httpx.get(urls["forecast-rest"].rstrip("/") + "/forecast/oslo").json() == OSLO
    finally:
        process.stop()
    listening = [line for line in process.log if " at http://" in line]
    assert len(listening) == 2 and set(urls) == {"forecast-rest", "weather-mcp"}, process.log


def test_validate_names_each_shared_file_and_serve_refuses_one() -> None:
    checked = _naftiko("validate", str(DATA), str(DATA / "shared"))
    assert checked.returncode == 0, checked.stderr
    assert checked.stdout.splitlines() == [
        f"ok: {WEATHER}",
        f"ok: {DATA / 'shared' / 'forecast.aggregates.yml'}: shared aggregates file: 1 entry (forecast)",
        f"ok: {DATA / 'shared' / 'weather.binds.yml'}: shared binds file: 1 entry (weather-secrets)",
        f"ok: {DATA / 'shared' / 'weather.exposes.yml'}: shared exposes file: 2 entries (weather-rest, weather-mcp)",
    ]
    leaf = DATA / "shared" / "weather.exposes.yml"
    refused = _naftiko("serve", str(leaf))
    assert refused.returncode == 1
    assert refused.stderr.startswith(f"{leaf}:3:1: shared exposes file: 2 entries (weather-rest, weather-mcp)")
    assert "nothing to serve on its own" in refused.stderr and "Traceback" not in refused.stderr
    empty = _naftiko("serve", str(DATA / "shared"))
    assert empty.returncode == 1 and "no capability files found" in empty.stderr
    assert "(only shared files, which capabilities import: forecast.aggregates.yml, weather.binds.yml" in empty.stderr


def test_convert_a_shared_file_both_ways(tmp_path: Path) -> None:
    leaf = DATA / "shared" / "weather.exposes.yml"
    naftiko, ikanos = tmp_path / "weather.exposes.yaml", tmp_path / "back.yml"
    assert _naftiko("convert", str(leaf), "--to", "naftiko", "-o", str(naftiko)).returncode == 0
    assert 'naftiko: "1.0.0-alpha2"' in naftiko.read_text()
    assert _naftiko("convert", str(naftiko), "--to", "ikanos", "-o", str(ikanos)).returncode == 0
    assert ikanos.read_text() == leaf.read_text()  # keyed maps and comments come back as written
    checked = _naftiko("validate", str(naftiko), str(ikanos))
    assert checked.returncode == 0 and checked.stdout.count("shared exposes file: 2 entries") == 2, checked.stderr
