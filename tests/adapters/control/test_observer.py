"""The control port's pieces one at a time: trace context, the bounded trace ring, histogram buckets, sampling,
and skill views labelled by route; the upstream is a real loopback server, the apps are called in process."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from naftiko.adapters.apps import block_app
from naftiko.adapters.control import ControlObserver, observe
from naftiko.adapters.control.metrics import BUCKETS, Series
from naftiko.adapters.control.traces import MAX_SPANS, Ids, Span, Trace, TraceBuffer, parse_traceparent
from naftiko.engine import ControlExposes, Location, Observability, Runtime
from tests.support import RecordingUpstream

pytestmark = pytest.mark.anyio

TRACE, SPAN = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"


def test_traceparent_is_read_as_w3c_trace_context_says() -> None:
    assert parse_traceparent(f"00-{TRACE}-{SPAN}-01") == (TRACE, SPAN, True)
    assert parse_traceparent(f" 00-{TRACE.upper()}-{SPAN}-00 ") == (TRACE, SPAN, False)
    for bad in (None, "", "garbage", f"00-{'0' * 32}-{SPAN}-01", f"00-{TRACE}-{'0' * 16}-01", f"00-{TRACE}-{SPAN}"):
        assert parse_traceparent(bad) is None, bad


def test_ids_are_hex_of_the_w3c_lengths_and_differ() -> None:
    ids = Ids()
    traces = {ids.trace() for _ in range(1000)}
    assert len(traces) == 1000 and all(len(t) == 32 and int(t, 16) for t in traces)
    assert all(len(ids.span()) == 16 for _ in range(100))


def _trace(n: int) -> Trace:
    return Trace(f"{n:032x}", True, Span(f"{n:016x}", None, "rest.request", "SERVER", {}))


def test_the_ring_keeps_the_newest_traces_only() -> None:
    ring = TraceBuffer(10)
    for n in range(25):
        ring.add(_trace(n))
    assert len(ring) == 10
    assert [t.trace_id for t in ring.newest_first()] == [f"{n:032x}" for n in range(24, 14, -1)]
    assert ring.find(f"{24:032x}") is not None and ring.find(f"{3:032x}") is None
    with pytest.raises(ValueError):
        TraceBuffer(0)


def test_a_trace_keeps_at_most_max_spans() -> None:
    trace = _trace(1)
    for n in range(MAX_SPANS + 5):
        trace.add(Span(f"{n:016x}", trace.root.span_id, "http.client.GET", "CLIENT", {}))
    detail = trace.detail()
    assert len(detail["spans"]) == MAX_SPANS + 1 and detail["droppedSpans"] == 5


def test_histogram_buckets_count_each_observation_under_its_first_bound_at_or_above_it() -> None:
    series = Series()
    for seconds in (0.0005, 0.001, 0.0011, 59.0, 61.0):
        series.observe(seconds)
    assert series.count == 5 and series.buckets[0] == 2  # le="0.001" includes 0.001 itself
    assert series.buckets[BUCKETS.index(0.0025)] == 1
    assert series.buckets[BUCKETS.index(60.0)] == 1 and series.buckets[-1] == 1  # +Inf


CAPABILITY = """\
naftiko: 1.0.0-alpha2
capability:
  consumes:
    - type: http
      namespace: up
      baseUri: {base}
      resources:
        - name: items
          path: /items
          operations:
            - {{name: list, method: GET}}
  exposes:
    - type: rest
      namespace: api
      port: 18611
      resources:
        - path: /items
          operations:
            - {{name: list, method: GET, call: up.list}}
    - type: skill
      namespace: skills
      port: 18612
      skills:
        - name: lister
          description: lists items
          tools:
            - {{name: list, description: d, from: {{sourceNamespace: api, action: list}}}}
"""


def _runtime(tmp_path: Path, base: str) -> Runtime:
    path = tmp_path / "cap.yaml"
    path.write_text(CAPABILITY.format(base=base))
    return Runtime.load(path)


def _families(observer: ControlObserver) -> dict[str, list[tuple[dict[str, str], float]]]:
    assert observer.metrics is not None
    found: dict[str, list[tuple[dict[str, str], float]]] = {}
    for family in text_string_to_metric_families(observer.metrics.text().decode()):
        for sample in family.samples:
            found.setdefault(sample.name, []).append((sample.labels, sample.value))
    return found


async def test_unsampled_calls_are_counted_and_propagated_but_not_traced(
    tmp_path: Path, upstream: RecordingUpstream
) -> None:
    runtime = _runtime(tmp_path, upstream.url)
    control = ControlExposes(port=0, where=Location("test"), observability=Observability(sampling=0.0))
    observer = observe(runtime, [control])
    assert isinstance(observer, ControlObserver) and runtime.observer is observer
    app = block_app(runtime, runtime.exposes_named("api"))
    async with runtime, httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as http:
        for _ in range(3):
            assert (await http.get("/items")).status_code == 200
            assert upstream.last.headers["traceparent"].endswith("-00")  # not sampled, still one trace upstream
        assert (await http.get("/items", headers={"traceparent": f"00-{TRACE}-{SPAN}-01"})).status_code == 200
        assert upstream.last.headers["traceparent"].startswith(f"00-{TRACE}-")  # the caller's decision wins
    assert observer.traces is not None and [t.trace_id for t in observer.traces.newest_first()] == [TRACE]
    counted = _families(observer)["naftiko_request_total"]
    assert [(labels["naftiko_operation_id"], value) for labels, value in counted] == [("GET /items", 4.0)]


async def test_skill_views_are_labelled_by_route_not_by_path(tmp_path: Path, upstream: RecordingUpstream) -> None:
    runtime = _runtime(tmp_path, upstream.url)
    observer = observe(runtime, [ControlExposes(port=0, where=Location("test"))])
    assert observer is not None
    app = block_app(runtime, runtime.exposes_named("skills"))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as http:
        assert (await http.get("/skills")).status_code == 200
        assert (await http.get("/skills/lister")).status_code == 200
        for name in ("a", "b", "c"):
            assert (await http.get(f"/skills/{name}")).status_code == 404
    counted = {
        (labels["naftiko_operation_id"], labels["status"]): value
        for labels, value in _families(observer)["naftiko_request_total"]
    }
    assert counted == {("GET /skills", "200"): 1, ("GET /skills/{name}", "200"): 1, ("GET /skills/{name}", "404"): 3}


async def test_no_control_block_attaches_no_observer(tmp_path: Path, upstream: RecordingUpstream) -> None:
    runtime = _runtime(tmp_path, upstream.url)
    assert observe(runtime) is None and runtime.observer is None
    disabled = ControlExposes(port=0, where=Location("test"), observability=Observability(enabled=False))
    assert observe(runtime, [disabled]) is None and runtime.observer is None
    app = block_app(runtime, runtime.exposes_named("api"))
    async with runtime, httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as http:
        assert (await http.get("/items")).status_code == 200
    assert "traceparent" not in upstream.last.headers


async def test_readiness_is_degraded_while_a_listener_is_down(tmp_path: Path, upstream: RecordingUpstream) -> None:
    from naftiko.adapters.control.app import AdapterState, ControlApp

    runtime = _runtime(tmp_path, upstream.url)
    control = ControlApp(runtime, ControlExposes(port=0, where=Location("test")))
    up = {"api": True, "skills": False}
    control.watch(
        [
            AdapterState("rest", "api", 18611, lambda: up["api"]),
            AdapterState("skill", "skills", 18612, lambda: up["skills"]),
            AdapterState("control", "control", 18613, lambda: False),  # the control port itself never counts
        ]
    )
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=control), base_url="http://t") as http:
        degraded = await http.get("/health/ready")
        assert degraded.status_code == 503
        assert degraded.json() == {
            "status": "DEGRADED",
            "adapters": [
                {"type": "rest", "namespace": "api", "port": 18611, "state": "started"},
                {"type": "skill", "namespace": "skills", "port": 18612, "state": "stopped"},
                {"type": "control", "namespace": "control", "port": 18613, "state": "stopped"},
            ],
        }
        up["skills"] = True
        ready = await http.get("/health/ready")
        assert ready.status_code == 200 and ready.json()["status"] == "UP"
        assert (await http.get("/health/live")).json() == {"status": "UP"}
