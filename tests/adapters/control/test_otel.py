"""OpenTelemetry as an operator meets it: `naftiko serve` with `OTEL_EXPORTER_OTLP_ENDPOINT` pointing at an
OTLP/HTTP collector stand-in (a loopback server decoding `POST /v1/traces` with the OTLP protobuf), a REST call
and an MCP tool call through the official SDK; the spans' names, kinds, attributes, parent links and trace ids
checked against the `traceparent` the upstream received; SIGTERM flushes what is queued; a plain serve imports
no OpenTelemetry module at all; the settings read from the standard variables and the control block."""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from collections.abc import Callable, Iterator

import httpx
import pytest
from mcp import Client
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from naftiko.adapters.control import observe
from naftiko.adapters.control.otel import otel_settings
from naftiko.engine import CapabilityError, Runtime, load_capabilities
from tests.support import ROOT, NaftikoProcess, RecordingUpstream

pytestmark = pytest.mark.anyio

CAPABILITY = """\
naftiko: 1.0.0-alpha2
info:
  label: Otel test
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
      port: 18701
      resources:
        - path: /items/{id}
          operations:
            - {method: GET, call: up.get-item, with: {id: "{{id}}"}}
    - type: mcp
      namespace: tools
      port: 18702
      tools:
        - name: get-item
          description: one item
          call: up.get-item
          with: {id: "{{id}}"}
          inputParameters:
            - {name: id, type: string, description: the id, required: true}
"""

PORTS = ("--port", "api=0", "--port", "tools=0")


class Collector:
    """An OTLP/HTTP traces receiver: every span of every `POST /v1/traces`, decoded, with its resource."""

    def __init__(self) -> None:
        self.spans: list[dict[str, Any]] = []
        self.requests = 0
        self._lock = threading.Lock()
        collector = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's name)
                body = self.rfile.read(int(self.headers["Content-Length"]))
                if self.path == "/v1/traces" and self.headers["Content-Type"] == "application/x-protobuf":
                    collector.receive(body)
                    self.send_response(200)
                    self.send_header("Content-Type", "application/x-protobuf")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                else:
                    self.send_error(404)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def receive(self, body: bytes) -> None:
        request = ExportTraceServiceRequest.FromString(body)
        with self._lock:
            self.requests += 1
            for resource_spans in request.resource_spans:
                resource = {a.key: a.value.string_value for a in resource_spans.resource.attributes}
                for scope_spans in resource_spans.scope_spans:
                    for span in scope_spans.spans:
                        self.spans.append(_span(span, resource, scope_spans.scope.name))

    def wait(self, count: int, timeout: float = 15) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                if len(self.spans) >= count:
                    return list(self.spans)
            time.sleep(0.05)
        raise AssertionError(f"the collector got {len(self.spans)} spans, not {count}: {self.spans}")

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def _span(span: Any, resource: dict[str, str], scope: str) -> dict[str, Any]:
    attributes: dict[str, Any] = {}
    for attribute in span.attributes:
        value = attribute.value
        attributes[attribute.key] = value.int_value if value.HasField("int_value") else value.string_value
    return {
        "name": span.name,
        "kind": span.kind,
        "trace_id": span.trace_id.hex(),
        "span_id": span.span_id.hex(),
        "parent": span.parent_span_id.hex() or None,
        "status": span.status.code,
        "attributes": attributes,
        "resource": resource,
        "scope": scope,
        "duration_ns": span.end_time_unix_nano - span.start_time_unix_nano,
    }


SERVER, CLIENT = 2, 3  # opentelemetry.proto.trace.v1.Span.SpanKind
ERROR = 2  # Status.STATUS_CODE_ERROR


@pytest.fixture
def collector() -> Iterator[Collector]:
    receiver = Collector()
    yield receiver
    receiver.close()


@pytest.fixture
def capability(tmp_path: Path) -> Path:
    path = tmp_path / "otel.yaml"
    path.write_text(CAPABILITY)
    return path


def _serve(
    naftiko: Callable[..., NaftikoProcess], capability: Path, upstream: RecordingUpstream, env: dict[str, str]
) -> tuple[NaftikoProcess, dict[str, str]]:
    process = naftiko(str(capability), "--base-uri", f"up={upstream.url}", *PORTS, env=env)
    return process, process.wait_for("api", "tools")


async def test_rest_and_mcp_calls_reach_the_collector_as_server_and_client_spans(
    collector: Collector, capability: Path, upstream: RecordingUpstream, naftiko: Callable[..., NaftikoProcess]
) -> None:
    env = {"OTEL_EXPORTER_OTLP_ENDPOINT": collector.url, "OTEL_BSP_SCHEDULE_DELAY": "100", "OTEL_SERVICE_NAME": ""}
    process, urls = _serve(naftiko, capability, upstream, env)
    async with httpx.AsyncClient() as http:
        assert (await http.get(f"{urls['api']}/items/42?apikey=sekrit")).status_code == 200
    rest_traceparent = upstream.last.headers["traceparent"]
    async with Client(urls["tools"], mode="legacy", cache=None) as mcp:
        assert not (await mcp.call_tool("get-item", {"id": "7"})).is_error
    mcp_traceparent = upstream.last.headers["traceparent"]
    spans = collector.wait(4)
    assert len(spans) == 4
    by_trace: dict[str, list[dict[str, Any]]] = {}
    for span in spans:
        by_trace.setdefault(span["trace_id"], []).append(span)
    for traceparent, root_name in ((rest_traceparent, "rest.request"), (mcp_traceparent, "mcp.tool")):
        _, trace_id, client_span_id, flags = traceparent.split("-")
        assert flags == "01"
        trace = {s["name"]: s for s in by_trace[trace_id]}  # the trace the upstream saw is the one exported
        assert set(trace) == {root_name, "http.client.GET"}
        root, client = trace[root_name], trace["http.client.GET"]
        assert root["kind"] == SERVER and root["parent"] is None
        assert client["kind"] == CLIENT and client["parent"] == root["span_id"]
        assert client["span_id"] == client_span_id  # the traceparent's parent id is the client span
        assert client["attributes"]["server.address"] == "127.0.0.1"
        assert client["attributes"]["server.port"] == int(upstream.url.rsplit(":", 1)[1])
        assert client["attributes"]["http.request.method"] == "GET"
        assert client["attributes"]["http.response.status_code"] == 200
        assert client["attributes"]["naftiko.operation.id"] == "up.get-item"
        assert 0 < client["duration_ns"] <= root["duration_ns"]
        assert root["resource"]["service.name"] == "naftiko-otel-test"  # naftiko-<label> when none is set
        assert root["scope"] == "naftiko"
    rest = next(s for s in spans if s["name"] == "rest.request")
    assert rest["attributes"] == {
        "naftiko.adapter.type": "rest",
        "naftiko.namespace": "api",
        "naftiko.operation.id": "GET /items/{id}",
        "naftiko.capability": "Otel test",
        "http.request.method": "GET",
        "http.route": "/items/{id}",
        "http.response.status_code": 200,
    }
    tool = next(s for s in spans if s["name"] == "mcp.tool")
    assert tool["attributes"]["gen_ai.tool.name"] == "get-item"
    assert tool["attributes"]["naftiko.namespace"] == "tools"
    assert "sekrit" not in repr(spans) and "/items/42" not in repr(spans)  # no query, no path with its values
    assert process.stop() == 0


async def test_a_callers_traceparent_is_continued_and_an_upstream_failure_is_an_error_span(
    collector: Collector, capability: Path, upstream: RecordingUpstream, naftiko: Callable[..., NaftikoProcess]
) -> None:
    from tests.support import Reply

    env = {"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": f"{collector.url}/v1/traces", "OTEL_BSP_SCHEDULE_DELAY": "100"}
    _, urls = _serve(naftiko, capability, upstream, env)
    upstream.reply("GET", "/items/9", Reply(status=503, json={"detail": "down"}))
    caller_trace, caller_span = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
    async with httpx.AsyncClient() as http:
        answer = await http.get(
            f"{urls['api']}/items/9", headers={"traceparent": f"00-{caller_trace}-{caller_span}-01"}
        )
    assert answer.status_code == 503
    assert upstream.last.headers["traceparent"].split("-")[1] == caller_trace
    spans = {s["name"]: s for s in collector.wait(2)}
    root, client = spans["rest.request"], spans["http.client.GET"]
    assert root["trace_id"] == client["trace_id"] == caller_trace
    assert root["parent"] == caller_span and root["kind"] == SERVER
    assert client["status"] == ERROR and client["attributes"]["error.type"] == "503"
    assert root["attributes"]["http.response.status_code"] == 503


async def test_sigterm_exports_the_spans_still_queued(
    collector: Collector, capability: Path, upstream: RecordingUpstream, naftiko: Callable[..., NaftikoProcess]
) -> None:
    env = {"OTEL_EXPORTER_OTLP_ENDPOINT": collector.url, "OTEL_BSP_SCHEDULE_DELAY": "600000"}  # no timed export
    process, urls = _serve(naftiko, capability, upstream, env)
    async with httpx.AsyncClient() as http:
        for item in range(3):
            assert (await http.get(f"{urls['api']}/items/{item}")).status_code == 200
    time.sleep(0.3)
    assert collector.spans == []  # queued, not sent yet
    process.proc.send_signal(signal.SIGTERM)
    assert process.proc.wait(timeout=15) == 0
    assert len(collector.wait(6, timeout=1)) == 6


async def test_sampled_out_calls_send_a_traceparent_and_export_nothing(
    collector: Collector, capability: Path, upstream: RecordingUpstream, naftiko: Callable[..., NaftikoProcess]
) -> None:
    env = {
        "OTEL_EXPORTER_OTLP_ENDPOINT": collector.url,
        "OTEL_BSP_SCHEDULE_DELAY": "100",
        "OTEL_TRACES_SAMPLER": "always_off",
    }
    process, urls = _serve(naftiko, capability, upstream, env)
    async with httpx.AsyncClient() as http:
        assert (await http.get(f"{urls['api']}/items/1")).status_code == 200
    assert upstream.last.headers["traceparent"].endswith("-00")
    process.proc.send_signal(signal.SIGTERM)
    assert process.proc.wait(timeout=15) == 0
    assert collector.spans == []


def test_a_plain_serve_imports_no_opentelemetry(capability: Path, upstream: RecordingUpstream) -> None:
    """Zero cost when not asked for: after a plain `naftiko serve` started and answered, no module of it is loaded."""
    script = (
        "import sys, threading, time, urllib.request\n"
        "from naftiko.adapters import cli\n"
        "def probe():\n"
        "    deadline = time.monotonic() + 15\n"
        "    while time.monotonic() < deadline:\n"
        "        try:\n"
        f"            urllib.request.urlopen('http://127.0.0.1:{{port}}/items/1').read(); break\n"
        "        except OSError: time.sleep(0.05)\n"
        "    loaded = sorted(m for m in sys.modules if m.split('.')[0] == 'opentelemetry')\n"
        "    print('LOADED', loaded, flush=True)\n"
        "    import os, signal; os.kill(os.getpid(), signal.SIGTERM)\n"
        "threading.Thread(target=probe, daemon=True).start()\n"
        f"sys.exit(cli.main(['serve', {str(capability)!r}, '--base-uri', 'up={upstream.url}',"
        " '--port', 'api={port}', '--port', 'tools=0']))\n"
    )
    port = _free_port()
    env = {k: v for k, v in __import__("os").environ.items() if not k.startswith("OTEL_")}
    done = subprocess.run(
        [sys.executable, "-c", script.replace("{port}", str(port))],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert "LOADED []" in done.stdout, done.stdout + done.stderr
    assert upstream.requests, "the probe's call never reached the upstream"


def _free_port() -> int:
    from tests.support import free_port

    return free_port()


def _runtime(tmp_path: Path, text: str, environ: dict[str, str]) -> Runtime:
    path = tmp_path / "c.yaml"
    path.write_text(text)
    return Runtime(load_capabilities([path]), environ=environ, base_uris={"up": "http://127.0.0.1:1"})


CONTROL = """\
binds:
  - namespace: otel
    keys:
      COLLECTOR_HOST: COLLECTOR_HOST
"""

CONTROL_BLOCK = """\
    - type: control
      port: 18703
      observability:
        metrics: {local: {enabled: false}}
        traces: {local: {enabled: false}}
        exporters:
          otlp:
            endpoint: "http://{{COLLECTOR_HOST}}:4318"
"""


def test_when_opentelemetry_is_asked_for(tmp_path: Path) -> None:
    """On only when asked: an exporter named, or an endpoint given by a variable or the control block."""
    plain = CAPABILITY
    with_block = CAPABILITY.replace("capability:\n", CONTROL + "capability:\n") + CONTROL_BLOCK
    assert otel_settings(_runtime(tmp_path, plain, {})) is None
    assert otel_settings(_runtime(tmp_path, plain, {"OTEL_SERVICE_NAME": "x", "OTEL_TRACES_SAMPLER": "x"})) is None
    asked = otel_settings(_runtime(tmp_path, plain, {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318"}))
    assert asked is not None and asked.endpoint is None and asked.exporter == "otlp"  # the exporter reads it
    assert otel_settings(_runtime(tmp_path, plain, {"OTEL_TRACES_EXPORTER": "otlp"})) is not None
    for off in ({"OTEL_TRACES_EXPORTER": "none"}, {"OTEL_SDK_DISABLED": "true"}):
        assert otel_settings(_runtime(tmp_path, plain, {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c", **off})) is None
    block = otel_settings(_runtime(tmp_path, with_block, {"COLLECTOR_HOST": "collector.local"}))
    assert block is not None and block.endpoint == "http://collector.local:4318/v1/traces"
    env_wins = {"COLLECTOR_HOST": "collector.local", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://other:4318"}
    overridden = otel_settings(_runtime(tmp_path, with_block, env_wins))
    assert overridden is not None and overridden.endpoint is None
    sampled = otel_settings(
        _runtime(
            tmp_path,
            plain,
            {"OTEL_TRACES_EXPORTER": "otlp", "OTEL_TRACES_SAMPLER": "traceidratio", "OTEL_TRACES_SAMPLER_ARG": "0.25"},
        )
    )
    assert sampled is not None and sampled.sampler == (0.25, False)


def test_the_observer_applies_the_sampler_and_reports_otel_active(tmp_path: Path) -> None:
    environ = {"OTEL_TRACES_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:9", "X": "1"}
    environ |= {"OTEL_TRACES_SAMPLER": "parentbased_traceidratio", "OTEL_TRACES_SAMPLER_ARG": "0.5"}
    runtime = _runtime(tmp_path, CAPABILITY, environ)
    observer = observe(runtime)
    assert observer is not None and runtime.observer is observer
    assert (observer.sampling, observer.parent_based) == (0.5, True)
    assert observer.metrics is None and observer.traces is None  # no control block: spans only
    assert observer.otel_status() == {"status": "active", "exporter": "otlp (http/protobuf)"}
    observer.close()
    assert observe(_runtime(tmp_path, CAPABILITY, {})) is None  # nothing asked: no observer, nothing paid


def test_the_extra_absent_is_a_warning_and_no_observer(tmp_path: Path) -> None:
    """With OTEL_* set but the SDK not importable, serve starts, says what to install, and measures nothing."""
    script = (
        "import sys, logging\n"
        "sys.modules['opentelemetry.sdk'] = None\n"  # as if naftiko[otel] were not installed
        "sys.modules['opentelemetry.sdk.trace'] = None\n"
        "sys.modules['opentelemetry.sdk.trace.export'] = None\n"
        "logging.basicConfig(format='%(message)s')\n"
        "from naftiko.adapters.control import observe\n"
        "from naftiko.engine import Runtime, load_capabilities\n"
        f"r = Runtime(load_capabilities([{str(tmp_path / 'c.yaml')!r}]), base_uris={{'up': 'http://127.0.0.1:1'}},"
        " environ={'OTEL_EXPORTER_OTLP_ENDPOINT': 'http://c:4318'})\n"
        "print('OBSERVER', observe(r))\n"
    )
    (tmp_path / "c.yaml").write_text(CAPABILITY)
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=30)
    assert "OBSERVER None" in done.stdout, done.stdout + done.stderr
    assert "pip install 'naftiko[otel]'" in done.stderr and "OTEL_EXPORTER_OTLP_ENDPOINT" in done.stderr


async def test_the_control_ports_traces_and_the_exported_spans_are_the_same_spans(
    collector: Collector, capability: Path, upstream: RecordingUpstream, naftiko: Callable[..., NaftikoProcess]
) -> None:
    """With /traces and OTLP both on, one observer names every span: ids, parents and names agree."""
    env = {"OTEL_EXPORTER_OTLP_ENDPOINT": collector.url, "OTEL_BSP_SCHEDULE_DELAY": "100"}
    process = naftiko(str(capability), "--base-uri", f"up={upstream.url}", *PORTS, "--control-port", "0", env=env)
    urls = process.wait_for("api", "tools", "control")
    async with httpx.AsyncClient() as http:
        assert (await http.get(f"{urls['api']}/items/5")).status_code == 200
        listed = (await http.get(f"{urls['control']}/traces")).json()["traces"]
        assert len(listed) == 1
        local = (await http.get(f"{urls['control']}/traces/{listed[0]['traceId']}")).json()
    exported = collector.wait(2)
    assert {s["trace_id"] for s in exported} == {local["traceId"]}
    assert {(s["span_id"], s["parent"], s["name"]) for s in exported} == {
        (s["spanId"], s.get("parentSpanId"), s["name"]) for s in local["spans"]
    }


def test_an_endpoint_naming_a_missing_binding_stops_start_up_at_the_block(tmp_path: Path) -> None:
    text = CAPABILITY + CONTROL_BLOCK.replace("COLLECTOR_HOST", "NOBODY_BINDS_THIS")
    with pytest.raises(CapabilityError) as raised:
        otel_settings(_runtime(tmp_path, text, {}))
    problem = raised.value.problems[0]
    assert "NOBODY_BINDS_THIS" in problem.message and problem.location.line > 1


async def test_status_says_otel_is_active_and_a_plain_control_port_that_it_is_not(
    collector: Collector, capability: Path, upstream: RecordingUpstream, naftiko: Callable[..., NaftikoProcess]
) -> None:
    for env, shown in (
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": collector.url}, {"status": "active", "exporter": "otlp (http/protobuf)"}),
        ({}, {"status": "inactive"}),
    ):
        process = naftiko(str(capability), "--base-uri", f"up={upstream.url}", *PORTS, "--control-port", "0", env=env)
        urls = process.wait_for("api", "tools", "control")
        async with httpx.AsyncClient() as http:
            assert (await http.get(f"{urls['control']}/status")).json()["otel"] == shown
        assert process.stop() == 0
