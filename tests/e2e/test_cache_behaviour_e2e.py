"""The cache's second round end to end, through a real `naftiko serve` process with a control block, in
front of a loopback upstream that counts every request: results and store sizes on `/metrics`, caching
implied by an aggregate function's `semantics.cacheable` (and `cache: false` still winning), ten parallel
misses sent upstream once, and a stale entry answered (with Age and Warning) while the upstream fails."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support import NaftikoProcess, RecordingUpstream, Reply, ThreadedServer, get_resources, metric_value


def _routes(**targets: str) -> str:
    return "".join(
        f"""
        - path: /{path}
          operations:
            - method: GET
              {target}"""
        for path, target in targets.items()
    )


CAPABILITY = f"""\
naftiko: "1.0.0-alpha2"
capability:
  aggregates:
    - namespace: reads
      label: Reads
      functions:
        - name: listed
          description: a read whose answer may be cached
          semantics: {{safe: true, cacheable: true}}
          call: plain.listed
        - name: refused
          description: declared cacheable, but its operation says cache false
          semantics: {{cacheable: true}}
          call: plain.refused
        - name: unmarked
          description: a read that says nothing about caching
          call: plain.unmarked
  exposes:
    - type: rest
      port: 9350
      namespace: cache-two
      resources:{
    _routes(
        listed="ref: reads.listed",
        refused="ref: reads.refused",
        unmarked="ref: reads.unmarked",
        slow="call: up.slow",
        flaky="call: up.flaky",
    )
}
    - type: control
      port: 9352
  consumes:
    - type: http
      namespace: plain
      baseUri: http://localhost:1/api
      resources:{get_resources("listed", "refused", "unmarked")}
    - type: http
      namespace: up
      baseUri: http://localhost:1/api
      cache: {{ttl: 30s, staleIfError: 5m}}
      resources:{get_resources("slow", "flaky")}
"""
CAPABILITY = CAPABILITY.replace(
    "              name: refused", "              name: refused\n              cache: false"
).replace("              name: flaky", "              name: flaky\n              cache: {ttl: 300ms}")

Served = tuple[dict[str, str], RecordingUpstream]


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    upstream = RecordingUpstream()
    upstream.reply("GET", "/api/slow", Reply(json={"slow": True}, delay=0.5))
    path: Path = tmp_path_factory.mktemp("cache-two") / "cache.yaml"
    path.write_text(CAPABILITY)
    with ThreadedServer(upstream) as url:
        args = [str(path), "--port", "cache-two=0", "--port", "control=0"]
        args += ["--base-uri", f"plain={url}/api", "--base-uri", f"up={url}/api"]
        process = NaftikoProcess(args)
        try:
            urls = process.wait_for("cache-two", "control")
            yield urls, upstream
        finally:
            process.stop()


def _count(served: Served, name: str) -> int:
    return sum(1 for r in served[1].requests if r.path == f"/api/{name}")


def _get(served: Served, name: str) -> httpx.Response:
    answer = httpx.get(f"{served[0]['cache-two']}/{name}", timeout=15)
    assert answer.status_code == 200, answer.text
    return answer


def _metric(served: Served, name: str, **labels: str) -> float:
    return metric_value(served[0]["control"], name, **labels)


def test_a_function_declared_cacheable_caches_the_read_it_calls(served: Served) -> None:
    for _ in range(3):
        assert _get(served, "listed").json() == {"echo": {"method": "GET", "path": "/api/listed", "query": ""}}
    assert _count(served, "listed") == 1
    for name in ("refused", "unmarked"):  # `cache: false` wins over semantics; no semantics, no cache
        for _ in range(2):
            _get(served, name)
        assert _count(served, name) == 2


def test_metrics_count_results_and_show_the_store(served: Served) -> None:
    labels = {"naftiko_namespace": "plain", "naftiko_operation_id": "plain.listed"}
    before = {r: _metric(served, "naftiko_upstream_cache_total", result=r, **labels) for r in ("hit", "miss")}
    _get(served, "listed")
    _get(served, "listed")
    assert _metric(served, "naftiko_upstream_cache_total", result="hit", **labels) == before["hit"] + 2
    assert _metric(served, "naftiko_upstream_cache_total", result="miss", **labels) == before["miss"]
    assert _metric(served, "naftiko_upstream_cache_total", result="stored", **labels) == 1
    assert _metric(served, "naftiko_upstream_cache_entries", naftiko_namespace="plain") == 1
    assert _metric(served, "naftiko_upstream_cache_bytes", naftiko_namespace="plain") > 50
    text = httpx.get(f"{served[0]['control']}/metrics", timeout=15).text
    assert (
        'naftiko_upstream_cache_total{naftiko_namespace="plain",naftiko_operation_id="plain.listed",result="hit"}'
        in text
    )


@pytest.mark.anyio
async def test_ten_parallel_misses_send_one_upstream_request(served: Served) -> None:
    async with httpx.AsyncClient(timeout=15) as client:
        answers = await asyncio.gather(*(client.get(f"{served[0]['cache-two']}/slow") for _ in range(10)))
    assert [a.status_code for a in answers] == [200] * 10
    assert all(a.json() == {"slow": True} for a in answers)
    assert _count(served, "slow") == 1
    labels = {"naftiko_namespace": "up", "naftiko_operation_id": "up.slow"}
    assert await asyncio.to_thread(_metric, served, "naftiko_upstream_cache_total", result="miss", **labels) == 1
    assert await asyncio.to_thread(_metric, served, "naftiko_upstream_cache_total", result="hit", **labels) == 9


def test_a_stale_entry_answers_while_the_upstream_fails(served: Served) -> None:
    upstream = served[1]
    upstream.reply("GET", "/api/flaky", Reply(json={"v": 1}))
    assert _get(served, "flaky").json() == {"v": 1}
    time.sleep(0.4)  # past its 300 ms: stale, within staleIfError
    upstream.reply("GET", "/api/flaky", Reply(status=503, json={"down": True}))
    stale = _get(served, "flaky")
    assert stale.json() == {"v": 1} and _count(served, "flaky") == 2
    assert stale.headers["warning"] == '111 - "Revalidation Failed"' and int(stale.headers["age"]) >= 0
    labels = {"naftiko_namespace": "up", "naftiko_operation_id": "up.flaky"}
    assert _metric(served, "naftiko_upstream_cache_total", result="stale", **labels) == 1
    upstream.reply("GET", "/api/flaky", Reply(json={"v": 2}))
    assert _get(served, "flaky").json() == {"v": 2}  # recovered: refetched and stored again
    assert _count(served, "flaky") == 3
