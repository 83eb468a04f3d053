"""RED metrics of one runtime, shown through a `prometheus_client` registry of its own (never the global one).

Names are the reference engine's (`EngineMetrics`) in Prometheus form, labels its attribute names
with dots as underscores, so its Grafana dashboard and alerts read them:

    naftiko_request_total{naftiko_adapter_type, naftiko_namespace, naftiko_operation_id, status}
    naftiko_request_duration_seconds{...the same}            histogram of inbound calls
    naftiko_request_errors_total{naftiko_adapter_type, naftiko_namespace, naftiko_operation_id, error_type}
    naftiko_request_in_flight{naftiko_adapter_type, naftiko_namespace}
    naftiko_http_client_total{naftiko_namespace, naftiko_operation_id, http_request_method, server_address,
                              http_response_status_code, error_type}
    naftiko_http_client_duration_seconds{...the same}        histogram, request sent to answer head
    naftiko_upstream_connections{naftiko_namespace, origin, state}   in_use / idle, read at scrape time
    naftiko_capability_active{naftiko_capability}
    naftiko_upstream_retries_total{naftiko_namespace, naftiko_operation_id, reason}   a status, transport, timeout
    naftiko_upstream_rejected_total{naftiko_namespace, naftiko_operation_id, reason}  circuit_open, bulkhead_full
    naftiko_circuit_state{naftiko_namespace}   0 closed, 1 half-open, 2 open; read at scrape time

`status` is the HTTP status a REST or skill caller got, `OK`/`ERROR` for an MCP tool (as the
reference labels it). An upstream exchange that got no answer has an empty
`http_response_status_code` and an `error_type` (`transport`, `timeout`): an empty label is no
label to PromQL, as in the reference. Every label value is a name from the capability files or
a status, so the number of series is bounded by what was loaded, never by what callers send.

A call is recorded as plain numbers (a count, a sum, one bucket), without prometheus_client's
per-value locks: everything that records runs on the one event loop. They become metric families
when scraped (`Collector.collect`), so a call costs about 0.5 µs to record instead of about 4 µs
with prometheus_client's own instruments.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Callable, Iterable, Iterator, Mapping

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
"""Seconds: from a loopback call (well under a millisecond) to the default upstream timeout (30 s)."""

INBOUND = ("naftiko_adapter_type", "naftiko_namespace", "naftiko_operation_id", "status")
ERRORS = ("naftiko_adapter_type", "naftiko_namespace", "naftiko_operation_id", "error_type")
IN_FLIGHT = ("naftiko_adapter_type", "naftiko_namespace")
CLIENT = (
    "naftiko_namespace",
    "naftiko_operation_id",
    "http_request_method",
    "server_address",
    "http_response_status_code",
    "error_type",
)

Pools = Callable[[], Mapping[str, Mapping[str, tuple[int, int]]]]
"""Open connections at scrape time: {consumes namespace: {origin: (in use, idle)}}."""
Resilience = Callable[[], Mapping[str, tuple[Mapping[tuple[str, str, str], int], int | None]]]
"""At scrape time, per namespace with a resilience block: its (operation, event, reason) counts and circuit state."""
Cache = Callable[[], tuple[Mapping[tuple[str, str, str], int], Mapping[str, tuple[int, int]]]]
"""At scrape time: (namespace, operation, result) counts and {namespace: (entries, bytes)} (upstream/cache.py)."""


class Series:
    """One label set's count, sum and buckets (non-cumulative; the last one is +Inf)."""

    __slots__ = ("count", "total", "buckets")

    def __init__(self) -> None:
        self.count = 0
        self.total = 0.0
        self.buckets = [0] * (len(BUCKETS) + 1)

    def observe(self, seconds: float) -> None:
        self.count += 1
        self.total += seconds
        self.buckets[bisect_left(BUCKETS, seconds)] += 1  # the first bound >= seconds: Prometheus' `le`


class Metrics(Collector):
    """What a runtime's calls recorded, and the registry `/metrics` is generated from."""

    def __init__(
        self,
        pools: Pools,
        capabilities: Iterable[str] = (),
        resilience: Resilience | None = None,
        cache: Cache | None = None,
    ) -> None:
        self.pools = pools
        self.resilience = resilience  # engine/upstream/resilience.py, read at scrape time
        self.cache = cache  # engine/upstream/cache.py, read at scrape time
        self.capabilities = tuple(capabilities)
        self.requests: dict[tuple[str, ...], Series] = {}
        self.errors: dict[tuple[str, ...], int] = {}
        self.in_flight: dict[tuple[str, str], int] = {}
        self.client: dict[tuple[str, ...], Series] = {}
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(self)

    # --- recording (once per call) ----------------------------------------------------------------

    def enter(self, key: tuple[str, str]) -> None:
        self.in_flight[key] = self.in_flight.get(key, 0) + 1

    def inbound(
        self, key: tuple[str, str], labels: tuple[str, str, str, str], seconds: float, error: str | None
    ) -> None:
        self.in_flight[key] -= 1
        series = self.requests.get(labels)
        if series is None:
            series = self.requests[labels] = Series()
        series.observe(seconds)
        if error is not None:
            failed = (labels[0], labels[1], labels[2], error)
            self.errors[failed] = self.errors.get(failed, 0) + 1

    def upstream(self, labels: tuple[str, str, str, str, str, str], seconds: float) -> None:
        series = self.client.get(labels)
        if series is None:
            series = self.client[labels] = Series()
        series.observe(seconds)

    # --- scraping -----------------------------------------------------------------------------------

    def collect(self) -> Iterator[Metric]:
        yield from _red(
            "naftiko_request",
            "Total number of requests handled by the engine",
            "naftiko_request_duration_seconds",
            "Duration of request handling in seconds",
            INBOUND,
            self.requests,
        )
        errors = CounterMetricFamily("naftiko_request_errors", "Total number of request errors", labels=ERRORS)
        for labels, count in self.errors.items():
            errors.add_metric(labels, count)
        yield errors
        flight = GaugeMetricFamily("naftiko_request_in_flight", "Requests being handled now", labels=IN_FLIGHT)
        for key, count in self.in_flight.items():
            flight.add_metric(key, count)
        yield flight
        yield from _red(
            "naftiko_http_client",
            "Total number of outbound HTTP client calls",
            "naftiko_http_client_duration_seconds",
            "Duration of outbound HTTP client calls in seconds (request sent to answer head)",
            CLIENT,
            self.client,
        )
        pools = GaugeMetricFamily(
            "naftiko_upstream_connections",
            "Open upstream connections by consumes namespace, origin and state (in_use, idle)",
            labels=("naftiko_namespace", "origin", "state"),
        )
        for namespace, origins in self.pools().items():
            for origin, (busy, idle) in origins.items():
                pools.add_metric((namespace, origin, "in_use"), busy)
                pools.add_metric((namespace, origin, "idle"), idle)
        yield pools
        if self.resilience is not None:
            yield from _resilience(self.resilience())
        if self.cache is not None:
            yield from _cache(*self.cache())
        active = GaugeMetricFamily(
            "naftiko_capability_active", "Number of active capabilities", labels=("naftiko_capability",)
        )
        for name in self.capabilities:
            active.add_metric((name,), 1)
        yield active

    def text(self) -> bytes:
        """The Prometheus text exposition of everything recorded."""
        return generate_latest(self.registry)


def _resilience(
    namespaces: Mapping[str, tuple[Mapping[tuple[str, str, str], int], int | None]],
) -> Iterator[Metric]:
    """Retries and refusals by reason, and each breaker's state (engine/upstream/resilience.py)."""
    labels = ("naftiko_namespace", "naftiko_operation_id", "reason")
    retries = CounterMetricFamily("naftiko_upstream_retries", "Upstream attempts retried, by cause", labels=labels)
    rejected = CounterMetricFamily(
        "naftiko_upstream_rejected", "Upstream calls refused unsent (circuit open, bulkhead full)", labels=labels
    )
    state = GaugeMetricFamily(
        "naftiko_circuit_state", "Circuit breaker state: 0 closed, 1 half-open, 2 open", labels=("naftiko_namespace",)
    )
    for namespace, (counts, circuit) in namespaces.items():
        for (operation, event, reason), count in counts.items():
            (retries if event == "retry" else rejected).add_metric((namespace, operation, reason), count)
        if circuit is not None:
            state.add_metric((namespace,), circuit)
    yield from (retries, rejected, state)


def _cache(counts: Mapping[tuple[str, str, str], int], stores: Mapping[str, tuple[int, int]]) -> Iterator[Metric]:
    """Cache lookups by result, and what each namespace's in-process store holds (engine/upstream/cache.py)."""
    total = CounterMetricFamily(
        "naftiko_upstream_cache",
        "Cached upstream calls by result: hit, miss, revalidated, stored, bypass (not storable), stale",
        labels=("naftiko_namespace", "naftiko_operation_id", "result"),
    )
    for labels, count in counts.items():
        total.add_metric(labels, count)
    entries = GaugeMetricFamily(
        "naftiko_upstream_cache_entries", "Answers in the namespace's cache", labels=("naftiko_namespace",)
    )
    size = GaugeMetricFamily(
        "naftiko_upstream_cache_bytes", "Bytes the namespace's cached answers take", labels=("naftiko_namespace",)
    )
    for namespace, (count, held) in stores.items():
        entries.add_metric((namespace,), count)
        size.add_metric((namespace,), held)
    yield from (total, entries, size)


def _red(
    name: str,
    help_: str,
    histogram: str,
    histogram_help: str,
    labels: tuple[str, ...],
    series: Mapping[tuple[str, ...], Series],
) -> Iterator[Metric]:
    """A counter and a duration histogram over the same label sets."""
    total = CounterMetricFamily(name, help_, labels=labels)
    durations = HistogramMetricFamily(histogram, histogram_help, labels=labels, unit="")
    for key, values in series.items():
        total.add_metric(key, values.count)
        cumulative, buckets = 0, []
        for bound, count in zip((*map(str, BUCKETS), "+Inf"), values.buckets, strict=True):
            cumulative += count
            buckets.append((bound, float(cumulative)))
        durations.add_metric(key, buckets, values.total)
    yield total
    yield durations


__all__ = ["BUCKETS", "CONTENT_TYPE", "Metrics", "Series"]
