"""The resilience block end to end: a real `naftiko serve` process in front of a loopback upstream that
fails, throttles with Retry-After, goes down and recovers, counting every request it was sent. Retries
over REST, the circuit breaker (open -> fast fail -> half-open probe -> closed) over REST and MCP (through
the official SDK client), and the bulkhead under parallel calls."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from mcp import Client

from tests.support import NaftikoProcess, ThreadedServer, control_url, get_resources, metric_value, read_body


@dataclass
class Unreliable:
    """Scripted failures per path: `fail[path]` 5xx answers to give before a 200; `down` paths always 500."""

    seen: list[str] = field(default_factory=list)
    fail: dict[str, int] = field(default_factory=dict)
    down: set[str] = field(default_factory=set)

    def count(self, path: str) -> int:
        return self.seen.count(path)

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        if scope["type"] != "http":
            return
        await read_body(receive)
        path = scope["path"]
        self.seen.append(path)
        status, headers = 200, [(b"content-type", b"application/json")]
        if path == "/api/slow":
            await asyncio.sleep(0.6)
        if path in self.down:
            status = 500
        elif self.fail.get(path, 0) > 0:
            self.fail[path] -= 1
            status = 429 if path == "/api/throttled" else 503
            if status == 429:
                headers.append((b"retry-after", b"1"))
        body = json.dumps({"path": path, "status": status}).encode()
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})


def _routes(namespace: str, *names: str) -> str:
    return "".join(
        f"""
        - path: /{namespace}/{name}
          operations:
            - method: GET
              call: {namespace}.{name}"""
        for name in names
    )


CAPABILITY = f"""\
naftiko: "1.0.0-alpha2"
capability:
  exposes:
    - type: rest
      port: 9330
      namespace: res-rest
      resources:{_routes("up", "flaky", "throttled")}{_routes("fragile", "state")}{_routes("narrow", "slow")}
    - type: mcp
      port: 9331
      namespace: res-mcp
      tools:
        - name: state
          description: the fragile upstream's state
          call: fragile.state
    - type: control
      port: 9332
  consumes:
    - type: http
      namespace: up
      baseUri: http://localhost:1/api
      resilience:
        retry: {{maxAttempts: 3, initialDelay: 50ms, maxDelay: 2s}}
      resources:{get_resources("flaky", "throttled")}
    - type: http
      namespace: fragile
      baseUri: http://localhost:1/api
      resilience:
        circuitBreaker: {{failureThreshold: 2, openDuration: 1s}}
      resources:{get_resources("state")}
    - type: http
      namespace: narrow
      baseUri: http://localhost:1/api
      resilience:
        bulkhead: {{maxConcurrent: 1, maxQueue: 0}}
      resources:{get_resources("slow")}
"""

Served = tuple[dict[str, str], Unreliable]


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    upstream = Unreliable()
    path: Path = tmp_path_factory.mktemp("resilience") / "resilience.yaml"
    path.write_text(CAPABILITY)
    with ThreadedServer(upstream) as url:
        args = [str(path), "--port", "res-rest=0", "--port", "res-mcp=0", "--port", "control=0"]
        for namespace in ("up", "fragile", "narrow"):
            args += ["--base-uri", f"{namespace}={url}/api"]
        process = NaftikoProcess(args)
        try:
            urls = process.wait_for("res-rest", "res-mcp")
            yield {**urls, "control": control_url(process)}, upstream
        finally:
            process.stop()


def _get(served: Served, route: str) -> httpx.Response:
    return httpx.get(f"{served[0]['res-rest']}/{route}", timeout=15)


def test_failures_are_retried_until_the_upstream_recovers(served: Served) -> None:
    upstream = served[1]
    upstream.fail["/api/flaky"] = 2
    answer = _get(served, "up/flaky")
    assert answer.status_code == 200, answer.text
    assert upstream.count("/api/flaky") == 3  # two 503s, then the 200
    upstream.fail["/api/flaky"] = 5  # more failures than attempts: the last answer passes through
    assert _get(served, "up/flaky").status_code != 200
    assert upstream.count("/api/flaky") == 6


def test_a_throttled_call_waits_for_retry_after(served: Served) -> None:
    upstream = served[1]
    upstream.fail["/api/throttled"] = 1
    started = time.monotonic()
    answer = _get(served, "up/throttled")
    assert answer.status_code == 200, answer.text
    assert time.monotonic() - started >= 0.95  # Retry-After: 1, not the 50ms backoff
    assert upstream.count("/api/throttled") == 2


def _reset(served: Served) -> None:
    """Whatever an earlier test left: the upstream back up, the cool-down over, a probe closing the circuit."""
    served[1].down.discard("/api/state")
    time.sleep(1.1)
    assert _get(served, "fragile/state").status_code == 200


def _trip(served: Served) -> None:
    """Two failures in a row open the fragile namespace's circuit."""
    upstream = served[1]
    upstream.down.add("/api/state")
    for _ in range(2):
        assert _get(served, "fragile/state").status_code not in (200, 503)


def test_the_breaker_opens_fails_fast_probes_and_closes(served: Served) -> None:
    upstream = served[1]
    _reset(served)
    before = upstream.count("/api/state")
    _trip(served)
    refused = _get(served, "fragile/state")
    assert refused.status_code == 503
    error = refused.json()["error"]
    assert error["type"] == "upstream_unavailable" and error["upstream"] == "fragile"
    assert "circuit open after 2 consecutive failures" in error["message"]
    assert 0 < error["retryAfter"] <= 1
    assert refused.headers["retry-after"] == "1", "the wait in whole seconds, for clients that read the header"
    assert upstream.count("/api/state") == before + 2  # the fast fail never reached the upstream
    upstream.down.discard("/api/state")
    time.sleep(1.1)
    assert _get(served, "fragile/state").status_code == 200  # the half-open probe
    assert _get(served, "fragile/state").status_code == 200  # closed again
    assert upstream.count("/api/state") == before + 4


def test_a_failed_probe_opens_the_circuit_again(served: Served) -> None:
    upstream = served[1]
    _reset(served)
    _trip(served)
    time.sleep(1.1)
    before = upstream.count("/api/state")
    assert _get(served, "fragile/state").status_code not in (200, 503)  # the probe, still failing
    assert _get(served, "fragile/state").status_code == 503
    assert upstream.count("/api/state") == before + 1
    upstream.down.discard("/api/state")


@pytest.mark.anyio
async def test_mcp_answers_an_open_circuit_as_is_error(served: Served) -> None:
    upstream = served[1]
    await asyncio.to_thread(_reset, served)
    await asyncio.to_thread(_trip, served)
    async with Client(served[0]["res-mcp"], cache=None) as mcp:
        result = await mcp.call_tool("state", {})
    upstream.down.discard("/api/state")
    assert result.is_error is True
    assert "fragile" in result.content[0].text and "circuit open" in result.content[0].text
    detail = (result.meta or {})["io.naftiko/error"]
    assert detail["type"] == "upstream_unavailable" and detail["upstream"] == "fragile"
    assert detail["retryAfter"] > 0


@pytest.mark.anyio
async def test_the_bulkhead_refuses_calls_past_its_size(served: Served) -> None:
    upstream = served[1]
    before = upstream.count("/api/slow")
    async with httpx.AsyncClient(timeout=15) as client:
        answers = await asyncio.gather(*(client.get(f"{served[0]['res-rest']}/narrow/slow") for _ in range(4)))
    statuses = sorted(a.status_code for a in answers)
    assert statuses == [200, 503, 503, 503]
    refused = next(a for a in answers if a.status_code == 503)
    assert "bulkhead" in refused.text and "narrow" in refused.text
    assert upstream.count("/api/slow") - before == 1


def _metric(served: Served, name: str, **labels: str) -> float:
    return metric_value(served[0]["control"], name, **labels)


def test_metrics_count_retries_refusals_and_show_the_circuit(served: Served) -> None:
    upstream = served[1]
    retried = _metric(served, "naftiko_upstream_retries_total", naftiko_namespace="up", reason="503")
    upstream.fail["/api/flaky"] = 1
    assert _get(served, "up/flaky").status_code == 200
    assert _metric(served, "naftiko_upstream_retries_total", naftiko_namespace="up", reason="503") == retried + 1
    _reset(served)
    assert _metric(served, "naftiko_circuit_state", naftiko_namespace="fragile") == 0
    _trip(served)
    assert _metric(served, "naftiko_circuit_state", naftiko_namespace="fragile") == 2
    refused = _metric(served, "naftiko_upstream_rejected_total", naftiko_namespace="fragile", reason="circuit_open")
    assert _get(served, "fragile/state").status_code == 503
    after = _metric(served, "naftiko_upstream_rejected_total", naftiko_namespace="fragile", reason="circuit_open")
    assert after == refused + 1
    assert _metric(served, "naftiko_circuit_state", naftiko_namespace="narrow") == 0  # no breaker: no series
    _reset(served)
