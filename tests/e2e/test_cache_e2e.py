"""The cache block end to end: a real `naftiko serve` process in front of a loopback upstream that counts
every request. A second call is a hit, an entry expires after its ttl, `no-store` is never cached, a stale
entry with an ETag is revalidated (the upstream sees If-None-Match and answers 304), and two callers with
different bearer tokens never share an entry, over REST and over MCP (the official SDK client)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from mcp import Client

from tests.support import NaftikoProcess, RecordingUpstream, Reply, ThreadedServer, get_resources


def _routes(*names: str) -> str:
    return "".join(
        f"""
        - path: /up/{name}
          operations:
            - method: GET
              call: up.{name}
              inputParameters:
                - name: token
                  in: header
                  type: string
                  required: true"""
        for name in names
    )


NAMES = ("fresh", "short", "secret", "tagged", "mine")
CAPABILITY = f"""\
naftiko: "1.0.0-alpha2"
capability:
  exposes:
    - type: rest
      port: 9340
      namespace: cache-rest
      resources:{_routes(*NAMES)}
    - type: mcp
      port: 9341
      namespace: cache-mcp
      tools:
        - name: mine
          description: the caller's own answer
          call: up.mine
          inputParameters:
            - name: token
              type: string
              required: true
              description: the caller's bearer token
  consumes:
    - type: http
      namespace: up
      baseUri: http://localhost:1/api
      authentication:
        type: bearer
        token: "{{{{token}}}}"
      cache: {{ttl: 30s, maxEntries: 100, maxBytes: 1MiB, maxEntryBytes: 64KiB}}
      resources:{get_resources(*NAMES)}
"""
# `short` gets its ttl from the operation's own block, over the namespace's
CAPABILITY = CAPABILITY.replace(
    "              name: short", "              name: short\n              cache: {ttl: 500ms}"
)

Served = tuple[dict[str, str], RecordingUpstream]


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    upstream = RecordingUpstream()
    upstream.reply("GET", "/api/secret", Reply(json={"secret": 1}, headers={"cache-control": "no-store"}))
    upstream.reply("GET", "/api/tagged", Reply(json={"v": 1}, headers={"etag": '"v1"', "cache-control": "max-age=1"}))
    path: Path = tmp_path_factory.mktemp("cache") / "cache.yaml"
    path.write_text(CAPABILITY)
    with ThreadedServer(upstream) as url:
        args = [str(path), "--port", "cache-rest=0", "--port", "cache-mcp=0", "--base-uri", f"up={url}/api"]
        process = NaftikoProcess(args)
        try:
            yield process.wait_for("cache-rest", "cache-mcp"), upstream
        finally:
            process.stop()


def _count(served: Served, name: str) -> int:
    return sum(1 for r in served[1].requests if r.path == f"/api/{name}")


def _get(served: Served, name: str, token: str = "alice") -> httpx.Response:
    answer = httpx.get(f"{served[0]['cache-rest']}/up/{name}", headers={"token": token}, timeout=15)
    assert answer.status_code == 200, answer.text
    return answer


def test_a_second_call_is_answered_from_the_cache(served: Served) -> None:
    first, second = _get(served, "fresh"), _get(served, "fresh")
    assert first.json() == second.json() == {"echo": {"method": "GET", "path": "/api/fresh", "query": ""}}
    assert _count(served, "fresh") == 1
    assert served[1].last.headers["authorization"] == "Bearer alice"


def test_an_entry_expires_after_its_ttl(served: Served) -> None:
    _get(served, "short")
    _get(served, "short")
    assert _count(served, "short") == 1
    time.sleep(0.6)
    _get(served, "short")
    assert _count(served, "short") == 2


def test_no_store_is_never_cached(served: Served) -> None:
    for _ in range(3):
        assert _get(served, "secret").json() == {"secret": 1}
    assert _count(served, "secret") == 3


def test_a_stale_entry_is_revalidated_with_its_etag(served: Served) -> None:
    upstream = served[1]
    assert _get(served, "tagged").json() == {"v": 1}
    assert "if-none-match" not in upstream.last.headers
    time.sleep(1.1)
    upstream.reply("GET", "/api/tagged", Reply(status=304, body=b"", headers={"etag": '"v1"'}))
    assert _get(served, "tagged").json() == {"v": 1}  # the stored body, after a 304
    assert _count(served, "tagged") == 2 and upstream.last.headers["if-none-match"] == '"v1"'
    assert _get(served, "tagged").json() == {"v": 1}  # refreshed: a hit again
    assert _count(served, "tagged") == 2


@pytest.mark.anyio
async def test_different_tokens_never_share_an_entry_over_rest_and_mcp(served: Served) -> None:
    upstream = served[1]
    upstream.reply("GET", "/api/mine", Reply(json={"owner": "whoever asked"}))
    await asyncio.to_thread(_get, served, "mine", "alice")
    await asyncio.to_thread(_get, served, "mine", "bob")
    assert _count(served, "mine") == 2
    assert [r.headers["authorization"] for r in upstream.requests if r.path == "/api/mine"] == [
        "Bearer alice",
        "Bearer bob",
    ]
    await asyncio.to_thread(_get, served, "mine", "alice")
    assert _count(served, "mine") == 2  # alice's own entry
    async with Client(served[0]["cache-mcp"], cache=None) as mcp:
        hit = await mcp.call_tool("mine", {"token": "bob"})
        assert hit.is_error is False and _count(served, "mine") == 2  # bob's REST entry serves his MCP call
        other = await mcp.call_tool("mine", {"token": "carol"})
    assert other.is_error is False and _count(served, "mine") == 3
    assert upstream.last.headers["authorization"] == "Bearer carol"
    assert "whoever asked" in hit.content[0].text and "whoever asked" in other.content[0].text
