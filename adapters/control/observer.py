"""The control port's `Observer`: every call recorded as RED metrics and, when sampled, as a trace.

`ControlObserver` is the engine hook's implementation (`naftiko.engine.Observer`): an adapter
reports an inbound call, which becomes the current call of its task (a context variable, as
OpenTelemetry keeps its current span), and the upstream client reports each exchange, which is
recorded under the current call: a client span in its trace, and the W3C `traceparent` (or B3
headers, `traces.propagation`) sent upstream with a new span id. A caller's own `traceparent`
continues its trace (and its sampling decision); otherwise a new trace is sampled at the
block's `traces.sampling` rate. Metrics are recorded for every call, sampled or not.

Beside metrics and the ring, `sinks` see every call when it ends, with the same ids: the OpenTelemetry
exporter (`otel`) and the access log (`accesslog`). One observer hands out every id, so the
`traceparent` an upstream receives, `/traces` and the spans an OTLP collector receives agree.
"""

from __future__ import annotations

import random
from types import MappingProxyType
from typing import Protocol, TypeVar
from contextvars import ContextVar, Token
from collections.abc import Mapping, Sequence

from ...engine import Observability, Runtime
from .metrics import Metrics
from .traces import Ids, Span, Trace, TraceBuffer, now, parse_traceparent, propagation_headers

_INBOUND_KEYS = ("naftiko.adapter.type", "naftiko.namespace", "naftiko.operation.id")
_UPSTREAM_KEYS = ("naftiko.namespace", "naftiko.operation.id", "http.request.method", "server.address")

S = TypeVar("S")

_CLIENT_SPANS = {m: f"http.client.{m}" for m in ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")}

ROOT_SPANS = {"rest": "rest.request", "mcp": "mcp.tool", "skill": "skill.request"}
"""The root span of an inbound call per adapter, named as the reference engine names them."""


class Sink(Protocol):
    """What else sees every call as it ends (an exporter, a log): `call` gives its ids and labels."""

    def inbound(self, call: _Inbound, status: str, error: str | None, seconds: float) -> None: ...

    def upstream(self, call: _Upstream, status: int | None, error: str | None, seconds: float) -> None: ...

    def close(self) -> None:
        """Flush what is pending and let go (the server calls it once, after the runtime stopped)."""
        ...


class _Inbound:
    """One inbound call being answered (the engine's `InboundCall`)."""

    __slots__ = (
        "observer",
        "block",
        "operation",
        "started",
        "trace_id",
        "span_id",
        "parent",
        "sampled",
        "trace",
        "token",
        "exported",
    )

    def __init__(
        self,
        observer: ControlObserver,
        block: tuple[str, str],
        operation: str,
        trace_id: str,
        sampled: bool,
        trace: Trace | None,
        parent: str | None = None,
    ) -> None:
        self.observer, self.block, self.operation = observer, block, operation
        self.trace_id, self.sampled, self.trace, self.parent = trace_id, sampled, trace, parent
        self.exported: object = None  # a sink's handle on this call's span (OpenTelemetry's span context)
        self.span_id = trace.root.span_id if trace is not None else observer.ids.span()
        if observer.metrics is not None:
            observer.metrics.enter(block)
        self.token: Token[_Inbound | None] | None = observer.current.set(self)
        self.started = now()

    def end(self, status: str, error: str | None = None) -> None:
        seconds = now() - self.started
        observer = self.observer
        if self.token is not None:
            try:
                observer.current.reset(self.token)
            except ValueError:  # ended from another context than it began in: nothing to restore there
                pass
            self.token = None
        if observer.metrics is not None:
            block = self.block
            observer.metrics.inbound(block, (block[0], block[1], self.operation, status), seconds, error)
        trace = self.trace
        if trace is not None and observer.traces is not None:
            trace.root.duration = seconds
            trace.root.status = "ERROR" if error is not None else "OK"
            trace.root.code, trace.root.error = status, error
            observer.traces.add(trace)
        for sink in observer.sinks:
            sink.inbound(self, status, error, seconds)


class _Upstream:
    """One upstream exchange (the engine's `UpstreamCall`)."""

    __slots__ = ("observer", "labels", "started", "headers", "span", "span_id", "inbound")

    def __init__(self, observer: ControlObserver, labels: tuple[str, str, str, str], inbound: _Inbound | None) -> None:
        self.observer, self.labels, self.inbound = observer, labels, inbound
        self.span: Span | None = None
        self.span_id: str | None = None
        self.headers: Sequence[tuple[str, str]] = ()
        if inbound is not None:
            span_id = self.span_id = observer.ids.span()
            self.headers = propagation_headers(observer.propagation, inbound.trace_id, span_id, inbound.sampled)
            if inbound.trace is not None:
                attributes = observer.attributes(labels)
                name = _CLIENT_SPANS.get(labels[2]) or f"http.client.{labels[2]}"
                self.span = Span(span_id, inbound.span_id, name, "CLIENT", attributes)
        self.started = now()

    def end(self, status: int | None, error: str | None = None) -> None:
        seconds = now() - self.started
        observer = self.observer
        if observer.metrics is not None:
            code = str(status) if status is not None else ""
            observer.metrics.upstream((*self.labels, code, error or ""), seconds)
        span = self.span
        if span is not None and self.inbound is not None and self.inbound.trace is not None:
            span.duration = seconds
            span.status = "ERROR" if status is None or status >= 400 else "OK"
            span.code, span.error = status, error
            self.inbound.trace.add(span)
        for sink in observer.sinks:
            sink.upstream(self, status, error, seconds)


class ControlObserver:
    """Metrics and traces of one runtime, as its control block's `observability` asks."""

    def __init__(self, runtime: Runtime, observability: Observability, sinks: Sequence[Sink] = ()) -> None:
        labels = sorted({c.info.label if c.info and c.info.label else str(c.path) for c in runtime.capabilities})
        self.metrics = (
            Metrics(
                lambda: _pools(runtime), labels, resilience=lambda: _resilience(runtime), cache=lambda: _cache(runtime)
            )
            if observability.metrics
            else None
        )
        self.traces = TraceBuffer(observability.trace_buffer) if observability.traces else None
        self.sinks: tuple[Sink, ...] = tuple(sinks)
        self.sampling = observability.sampling
        self.parent_based = True  # a caller's sampled flag decides (OpenTelemetry's parentbased_* samplers)
        self.propagation = observability.propagation
        self.current: ContextVar[_Inbound | None] = ContextVar(f"naftiko-call-{id(self)}", default=None)
        self.incoming: ContextVar[str | None] = ContextVar(f"naftiko-traceparent-{id(self)}", default=None)
        self._random = random.Random()
        self.ids = Ids()
        self._attributes: dict[tuple[str, ...], Mapping[str, str]] = {}

    def inbound(self, adapter: str, namespace: str, operation: str, traceparent: str | None = None) -> _Inbound:
        parent = parse_traceparent(traceparent if traceparent is not None else self.incoming.get())
        if parent is not None:
            trace_id, parent_span, sampled = parent
            if not self.parent_based:
                sampled = self.sampling >= 1.0 or self._random.random() < self.sampling
        else:
            trace_id, parent_span = self.ids.trace(), None
            sampled = self.sampling >= 1.0 or self._random.random() < self.sampling
        trace = None
        if sampled and self.traces is not None:
            attributes = self.attributes((adapter, namespace, operation))
            kind = "INTERNAL" if parent_span is not None else "SERVER"  # a remote parent holds the true SERVER span
            root = Span(self.ids.span(), parent_span, ROOT_SPANS.get(adapter, f"{adapter}.request"), kind, attributes)
            trace = Trace(trace_id, sampled, root)
        return _Inbound(self, (adapter, namespace), operation, trace_id, sampled, trace, parent_span)

    def attributes(self, labels: tuple[str, ...]) -> Mapping[str, str]:
        """The attributes spans of one inbound operation (3 labels) or upstream one (4) share, made once."""
        shared = self._attributes.get(labels)
        if shared is None:
            keys = _INBOUND_KEYS if len(labels) == 3 else _UPSTREAM_KEYS
            shared = self._attributes[labels] = MappingProxyType(dict(zip(keys, labels, strict=True)))
        return shared

    def upstream(self, namespace: str, operation: str, method: str, host: str) -> _Upstream:
        return _Upstream(self, (namespace, operation, method, host), self.current.get())

    def sink(self, kind: type[S]) -> S | None:
        """The sink of that type, if one is attached (the access log middleware finds its recorder so)."""
        return next((s for s in self.sinks if isinstance(s, kind)), None)

    def otel_status(self) -> dict[str, str]:
        """`/status`'s `otel`: active when spans are exported, with the exporter's kind (never its address)."""
        for sink in self.sinks:
            status = getattr(sink, "status", None)
            if callable(status):
                return dict(status())
        return {"status": "inactive"}

    def close(self) -> None:
        """Flush and close every sink (pending spans are exported): after the runtime stopped."""
        for sink in self.sinks:
            sink.close()


def _resilience(runtime: Runtime) -> Mapping[str, tuple[Mapping[tuple[str, str, str], int], int | None]]:
    """Each resilient namespace's retry and refusal counts and circuit state (engine/upstream/resilience.py)."""
    policies = ((namespace, upstream.resilience) for namespace, upstream in runtime.upstreams.items())
    return {namespace: (policy.counts, policy.circuit) for namespace, policy in policies if policy is not None}


def _cache(runtime: Runtime) -> tuple[Mapping[tuple[str, str, str], int], Mapping[str, tuple[int, int]]]:
    """Cache results per (namespace, operation, result), and each in-process store's entries and bytes."""
    namespaces = {key: runtime.operation(key).namespace for key in runtime.caches}
    counts = {
        (namespaces[key], key, result): count
        for key, policy in runtime.caches.items()
        for result, count in policy.counts.items()
    }
    stores = {namespaces[key]: p.store for key, p in runtime.caches.items() if p.shared is None}
    return counts, {namespace: (len(store), store.bytes) for namespace, store in stores.items()}


def _pools(runtime: Runtime) -> Mapping[str, Mapping[str, tuple[int, int]]]:
    return {namespace: upstream.connections() for namespace, upstream in runtime.upstreams.items()}


__all__ = ["ROOT_SPANS", "ControlObserver", "Sink"]
