"""The control port as an operator meets it: `naftiko serve` with REST, MCP and control blocks against a
recording upstream, called over REST and through the official MCP SDK; /metrics parsed by prometheus_client's
own parser, /health, /status and /traces in the reference engine's shapes, bearer authentication enforced."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from collections.abc import Callable, Iterator

import httpx
import pytest
from mcp import Client
from prometheus_client.parser import text_string_to_metric_families

from tests.support import NaftikoProcess, RecordingUpstream, Reply, control_url

pytestmark = pytest.mark.anyio

TOKEN = "control-secret"

CAPABILITY = """\
naftiko: 1.0.0-alpha2
info:
  label: Control test
binds:
  - namespace: env
    keys:
      CONTROL_TOKEN: CONTROL_TOKEN
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
        - name: broken
          path: /broken
          operations:
            - {name: get-broken, method: GET}
  exposes:
    - type: rest
      namespace: api
      port: 18601
      resources:
        - path: /items/{id}
          operations:
            - {method: GET, call: up.get-item, with: {id: "{{id}}"}}
        - path: /broken
          operations:
            - {method: GET, call: up.get-broken}
    - type: mcp
      namespace: tools
      port: 18602
      tools:
        - name: get-item
          description: one item
          call: up.get-item
          with: {id: "{{id}}"}
          inputParameters:
            - {name: id, type: string, description: the id, required: true}
        - {name: broken, description: always fails, call: up.get-broken}
"""

CONTROL = """\
    - type: control
      port: 18603
{extra}"""


PORTS = ("--port", "api=0", "--port", "tools=0")  # the file's ports are placeholders: every block picks a free one


def _capability(tmp_path: Path, control: str | None) -> Path:
    text = CAPABILITY + (control or "")
    path = tmp_path / "control.yaml"
    path.write_text(text)
    return path


@pytest.fixture
def served(tmp_path: Path, upstream: RecordingUpstream, naftiko: Callable[..., NaftikoProcess]) -> Iterator[Any]:
    """Start `naftiko serve` with the given control block text (None: only `--control-port 0`)."""

    def start(control: str | None, *flags: str) -> tuple[dict[str, str], str]:
        path = _capability(tmp_path, control)
        process = naftiko(
            str(path),
            "--base-uri",
            f"up={upstream.url}",
            "--timeout",
            "2",
            *PORTS,
            *(("--port", "control=0") if control else ()),
            *flags,
            env={"CONTROL_TOKEN": TOKEN},
        )
        urls = process.wait_for("api", "tools")
        return urls, control_url(process)

    yield start


def _samples(text: str) -> dict[str, list[tuple[dict[str, str], float]]]:
    """Every sample of a Prometheus text exposition, by sample name, as prometheus_client parses it."""
    found: dict[str, list[tuple[dict[str, str], float]]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found.setdefault(sample.name, []).append((sample.labels, sample.value))
    return found


def _value(samples: dict[str, list[tuple[dict[str, str], float]]], name: str, **labels: str) -> float:
    return sum(v for found, v in samples.get(name, []) if all(found.get(k) == w for k, w in labels.items()))


async def test_metrics_count_rest_and_mcp_calls_with_their_statuses(served: Any, upstream: RecordingUpstream) -> None:
    urls, control = served(CONTROL.format(extra=""))
    upstream.reply("GET", "/broken", Reply(status=500, json={"detail": "down"}))
    async with httpx.AsyncClient() as http:
        for item in ("1", "2", "3"):
            assert (await http.get(f"{urls['api']}/items/{item}")).status_code == 200
        assert (await http.get(f"{urls['api']}/broken")).status_code == 500  # the upstream's status passes through
        assert (await http.get(f"{urls['api']}/nowhere")).status_code == 404
    async with Client(urls["tools"], mode="legacy", cache=None) as mcp:
        for item in ("a", "b"):
            assert not (await mcp.call_tool("get-item", {"id": item})).is_error
        assert (await mcp.call_tool("broken", {})).is_error
    async with httpx.AsyncClient() as http:
        scraped = await http.get(f"{control}/metrics")
    assert scraped.status_code == 200 and scraped.headers["content-type"].startswith("text/plain")
    samples = _samples(scraped.text)
    rest = {"naftiko_adapter_type": "rest", "naftiko_namespace": "api"}
    assert _value(samples, "naftiko_request_total", **rest, naftiko_operation_id="GET /items/{id}", status="200") == 3
    assert _value(samples, "naftiko_request_total", **rest, naftiko_operation_id="GET /broken", status="500") == 1
    assert _value(samples, "naftiko_request_total", **rest, naftiko_operation_id="(unrouted)", status="404") == 1
    assert _value(samples, "naftiko_request_errors_total", **rest, error_type="upstream_status") == 1
    mcp_labels = {"naftiko_adapter_type": "mcp", "naftiko_namespace": "tools"}
    assert _value(samples, "naftiko_request_total", **mcp_labels, naftiko_operation_id="get-item", status="OK") == 2
    assert _value(samples, "naftiko_request_total", **mcp_labels, naftiko_operation_id="broken", status="ERROR") == 1
    assert _value(samples, "naftiko_request_errors_total", **mcp_labels, naftiko_operation_id="broken") == 1
    histogram = "naftiko_request_duration_seconds_count"
    assert _value(samples, histogram, **mcp_labels, naftiko_operation_id="get-item") == 2
    buckets = [v for labels, v in samples["naftiko_request_duration_seconds_bucket"] if labels.get("le") == "+Inf"]
    assert sum(buckets) == 8  # every call made (5 REST, 3 MCP), routed or not, once
    client = {"naftiko_namespace": "up"}
    assert _value(samples, "naftiko_http_client_total", **client, naftiko_operation_id="up.get-item") == 5
    assert (
        _value(
            samples,
            "naftiko_http_client_total",
            **client,
            naftiko_operation_id="up.get-broken",
            http_response_status_code="500",
        )
        == 2
    )
    assert _value(samples, "naftiko_http_client_duration_seconds_count", **client) == 7
    assert _value(samples, "naftiko_request_in_flight") == 0
    assert _value(samples, "naftiko_capability_active", naftiko_capability="Control test") == 1
    connections = samples["naftiko_upstream_connections"]
    assert {labels["state"] for labels, _ in connections} == {"in_use", "idle"}
    assert sum(v for labels, v in connections if labels["state"] == "idle") >= 1  # kept alive after the calls


async def test_an_unreachable_upstream_is_a_502_counted_as_an_error(
    served: Any, tmp_path: Path, naftiko: Callable[..., NaftikoProcess]
) -> None:
    path = _capability(tmp_path, CONTROL.format(extra=""))
    process = naftiko(
        str(path), "--base-uri", "up=http://127.0.0.1:9", *PORTS, "--control-port", "0", env={"CONTROL_TOKEN": TOKEN}
    )
    urls = process.wait_for("api", "tools")
    control = control_url(process)
    async with httpx.AsyncClient() as http:
        answer = await http.get(f"{urls['api']}/items/1")
        assert answer.status_code == 502 and answer.json()["error"]["type"] == "upstream_error"
        samples = _samples((await http.get(f"{control}/metrics")).text)
    labels = {"naftiko_adapter_type": "rest", "naftiko_operation_id": "GET /items/{id}"}
    assert _value(samples, "naftiko_request_total", **labels, status="502") == 1
    assert _value(samples, "naftiko_request_errors_total", **labels, error_type="upstream_error") == 1
    assert _value(samples, "naftiko_http_client_total", error_type="transport", http_response_status_code="") == 1


async def test_health_ready_and_status_in_the_reference_shapes(served: Any) -> None:
    urls, control = served(CONTROL.format(extra="      management: {health: true, info: true}\n"))
    async with httpx.AsyncClient() as http:
        live = await http.get(f"{control}/health/live")
        assert live.status_code == 200 and live.json() == {"status": "UP"}
        ready = await http.get(f"{control}/health/ready")
        assert ready.status_code == 200
        body = ready.json()
        assert body["status"] == "UP"
        by_namespace = {a.get("namespace"): a for a in body["adapters"]}
        assert by_namespace["api"]["type"] == "rest" and by_namespace["api"]["state"] == "started"
        assert by_namespace["api"]["port"] == int(urls["api"].rsplit(":", 1)[1])
        assert by_namespace["tools"]["type"] == "mcp"
        assert by_namespace["control"]["type"] == "control"
        status = (await http.get(f"{control}/status")).json()
        assert status["capability"] == {"label": "Control test", "specVersion": "1.0.0-alpha2"}
        assert status["engine"]["name"] == "naftiko" and status["engine"]["version"]
        assert status["engine"]["python"].count(".") == 2
        assert status["uptime"].startswith("PT") and status["uptime"].endswith("S")
        assert status["uptimeSeconds"] >= 0
        assert status["namespaces"]["consumes"] == ["up"]
        assert {"type": "rest", "namespace": "api"} in status["namespaces"]["exposes"]
        assert len(status["adapters"]) == 3
        missing = await http.get(f"{control}/nowhere")
        assert missing.status_code == 404 and missing.json()["error"]["type"] == "not_found"
        refused = await http.post(f"{control}/health/live")
        assert refused.status_code == 405 and refused.headers["allow"] == "GET, HEAD"


async def test_traces_hold_the_calls_and_their_upstream_spans(served: Any, upstream: RecordingUpstream) -> None:
    urls, control = served(CONTROL.format(extra="      observability: {traces: {local: {buffer-size: 10}}}\n"))
    trace_id, parent = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
    async with httpx.AsyncClient() as http:
        headers = {"traceparent": f"00-{trace_id}-{parent}-01"}
        assert (await http.get(f"{urls['api']}/items/7", headers=headers)).status_code == 200
        sent = upstream.last.headers["traceparent"]
        version, sent_trace, sent_span, flags = sent.split("-")
        assert (version, sent_trace, flags) == ("00", trace_id, "01") and sent_span != parent
        assert (await http.get(f"{urls['api']}/items/8")).status_code == 200
        fresh = upstream.last.headers["traceparent"].split("-")[1]
        assert fresh != trace_id and len(fresh) == 32
    async with Client(urls["tools"], mode="legacy", cache=None) as mcp:
        assert not (await mcp.call_tool("get-item", {"id": "9"})).is_error
    async with httpx.AsyncClient() as http:
        listed = (await http.get(f"{control}/traces")).json()
        assert listed["bufferSize"] == 10 and listed["bufferUsed"] == 3
        newest, _, first = listed["traces"]
        assert newest["operation"] == "mcp.tool" and newest["operationId"] == "get-item"
        assert first["traceId"] == trace_id and first["operation"] == "rest.request"
        assert first["status"] == "OK" and first["spanCount"] == 2 and first["timestamp"].endswith("Z")
        detail = (await http.get(f"{control}/traces/{trace_id}")).json()
        root, client = detail["spans"]
        assert root["parentSpanId"] == parent and root["kind"] == "INTERNAL"  # the caller holds the SERVER span
        assert root["attributes"]["naftiko.operation.id"] == "GET /items/{id}"
        assert client["name"] == "http.client.GET" and client["kind"] == "CLIENT"
        assert client["spanId"] == sent_span and client["parentSpanId"] == root["spanId"]
        assert client["attributes"]["http.response.status_code"] == 200
        assert client["durationMs"] <= root["durationMs"]
        only_mcp = (await http.get(f"{control}/traces", params={"operation": "mcp"})).json()["traces"]
        assert [t["operationId"] for t in only_mcp] == ["get-item"]
        assert (await http.get(f"{control}/traces", params={"status": "ERROR"})).json()["traces"] == []
        unknown = await http.get(f"{control}/traces/{'0' * 32}")
        assert unknown.status_code == 404 and unknown.json() == {"error": f"Trace not found: {'0' * 32}"}


async def test_the_trace_buffer_keeps_only_the_newest(served: Any) -> None:
    urls, control = served(CONTROL.format(extra="      observability: {traces: {local: {buffer-size: 10}}}\n"))
    async with httpx.AsyncClient() as http:
        for item in range(15):
            await http.get(f"{urls['api']}/items/{item}")
        listed = (await http.get(f"{control}/traces")).json()
    assert listed["bufferUsed"] == 10 and len(listed["traces"]) == 10


async def test_observability_disabled_serves_health_but_no_metrics_or_traces(
    served: Any, upstream: RecordingUpstream
) -> None:
    urls, control = served(CONTROL.format(extra="      observability: {enabled: false}\n"))
    async with httpx.AsyncClient() as http:
        assert (await http.get(f"{urls['api']}/items/1")).status_code == 200
        assert "traceparent" not in upstream.last.headers  # nothing observes, nothing is propagated
        assert (await http.get(f"{control}/health/live")).status_code == 200
        assert (await http.get(f"{control}/metrics")).status_code == 404
        assert (await http.get(f"{control}/traces")).status_code == 404
        assert (await http.get(f"{control}/status")).status_code == 404  # management.info defaults to false


async def test_control_port_flag_serves_every_endpoint(served: Any) -> None:
    urls, control = served(None, "--control-port", "0")
    async with httpx.AsyncClient() as http:
        assert (await http.get(f"{urls['api']}/items/1")).status_code == 200
        for path in ("/health/live", "/health/ready", "/status", "/traces"):
            assert (await http.get(f"{control}{path}")).status_code == 200, path
        samples = _samples((await http.get(f"{control}/metrics")).text)
    assert _value(samples, "naftiko_request_total", naftiko_namespace="api") == 1


async def test_a_control_block_bearer_authentication_is_enforced(served: Any) -> None:
    block = CONTROL.format(
        extra="      authentication: {type: bearer, token: '{{CONTROL_TOKEN}}'}\n      management: {info: true}\n"
    )
    _, control = served(block)
    async with httpx.AsyncClient() as http:
        for path in ("/health/live", "/metrics", "/traces", "/status"):
            refused = await http.get(f"{control}{path}")
            assert refused.status_code == 401 and refused.headers["www-authenticate"].startswith("Bearer"), path
            assert TOKEN not in refused.text
        wrong = await http.get(f"{control}/metrics", headers={"Authorization": "Bearer nope"})
        assert wrong.status_code == 401
        allowed = await http.get(f"{control}/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
        assert allowed.status_code == 200 and "# TYPE naftiko_request_total counter" in allowed.text


def test_validate_finds_a_control_port_that_another_block_listens_on(tmp_path: Path) -> None:
    import subprocess
    import sys

    path = tmp_path / "clash.yaml"
    path.write_text(CAPABILITY + CONTROL.replace("18603", "18601").format(extra=""))
    result = subprocess.run(
        [sys.executable, "-m", "naftiko", "validate", str(path)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 1
    assert f"{path}:47:7: exposes 'control' listens on 127.0.0.1:18601, as 'api' does ({path}:26:7)" in result.stderr
    listed = subprocess.run([sys.executable, "-m", "naftiko", "list", str(path)], capture_output=True, text=True)
    assert "exposes control  port 18601: /health/live, /health/ready, /metrics, /traces" in listed.stdout


async def test_a_call_in_flight_is_seen_in_the_gauge_and_the_pool(served: Any, upstream: RecordingUpstream) -> None:
    import anyio

    urls, control = served(CONTROL.format(extra=""))
    upstream.reply("GET", "/items/slow", Reply(json={"ok": True}, delay=1.5))
    async with httpx.AsyncClient() as http, anyio.create_task_group() as group:
        group.start_soon(http.get, f"{urls['api']}/items/slow")
        for _ in range(100):  # until the call reached the upstream
            await anyio.sleep(0.02)
            if any(r.path == "/items/slow" for r in upstream.requests):
                break
        samples = _samples((await http.get(f"{control}/metrics")).text)
        assert _value(samples, "naftiko_request_in_flight", naftiko_adapter_type="rest", naftiko_namespace="api") == 1
        in_use = _value(samples, "naftiko_upstream_connections", naftiko_namespace="up", state="in_use")
        assert in_use == 1
    async with httpx.AsyncClient() as http:
        samples = _samples((await http.get(f"{control}/metrics")).text)
    assert _value(samples, "naftiko_request_in_flight") == 0
    assert _value(samples, "naftiko_upstream_connections", state="in_use") == 0
    assert _value(samples, "naftiko_upstream_connections", state="idle") == 1
