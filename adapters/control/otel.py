"""OpenTelemetry export of the observer's calls: a server span per inbound call, a client span per upstream one.

Optional (`pip install 'naftiko[otel]'`) and asked for explicitly: `otel_settings` reads the standard
variables and the control block's `observability.exporters.otlp.endpoint` without importing
OpenTelemetry, so a runtime that does not ask for it never loads a module of it. It is on when
`OTEL_SDK_DISABLED` is not `true` and either `OTEL_TRACES_EXPORTER` names `otlp` (or `console`), or
it is unset and a traces endpoint is given (`OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`,
`OTEL_EXPORTER_OTLP_ENDPOINT`, or the block's endpoint, a template over the binds); the variables
win over the file, as in the reference engine. `OTEL_SERVICE_NAME` and `OTEL_RESOURCE_ATTRIBUTES`
name the service (else `naftiko-<label>` of the first capability); `OTEL_TRACES_SAMPLER(_ARG)`
replaces the block's `traces.sampling`, and the exporter's own variables (headers, timeout,
compression, certificates) are read by the exporter.

The spans are made here, not by the SDK's tracer: the one `ControlObserver` gives every call its
trace and span ids, so the `traceparent` sent upstream, `/traces` and what the collector receives
name the same spans; a finished call becomes a `ReadableSpan` handed to a `BatchSpanProcessor`
(a bounded queue, exported from its own thread: the event loop never waits for the collector).
Each runtime has its own processor and exporter, never the process's global provider, so two
runtimes in one process export apart and nothing else in the process is changed. `close` flushes
what is pending (the server calls it after the runtime stopped; an `atexit` hook covers an exit
that skips it).

No secret reaches a span: attributes are labels from the capability files (route templates, tool
names, namespaces), methods, hosts and statuses; never a path with its values, a query or a header.
"""

from __future__ import annotations

import atexit
import importlib
import logging
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from collections.abc import Mapping, Sequence
from urllib.parse import urlsplit

from ...engine import CapabilityError, ControlExposes, MissingValue, Runtime, Scope, Template

if TYPE_CHECKING:  # only for the checker: importing this module loads no OpenTelemetry
    from opentelemetry.sdk.trace import ReadableSpan
    from opentelemetry.sdk.trace.export import SpanProcessor

    from .observer import _Inbound, _Upstream

log = logging.getLogger("naftiko")

_SAMPLERS = {
    "always_on": (1.0, False),
    "always_off": (0.0, False),
    "traceidratio": (None, False),
    "parentbased_always_on": (1.0, True),
    "parentbased_always_off": (0.0, True),
    "parentbased_traceidratio": (None, True),
}
"""The standard samplers naftiko applies: (ratio, or None for OTEL_TRACES_SAMPLER_ARG; parent-based)."""

_TRUE = ("true", "1", "yes", "on")


@dataclass(frozen=True, slots=True)
class OtelSettings:
    """What `OTEL_*` and the control block ask for; `endpoint` None lets the exporter read its variables."""

    exporter: str  # otlp | console
    endpoint: str | None
    protocol: str  # http/protobuf | grpc
    sampler: tuple[float, bool] | None  # (ratio, parent-based), None: the control block's sampling
    asked_by: str  # what turned it on, for the log line


def otel_settings(runtime: Runtime, blocks: Sequence[ControlExposes] = ()) -> OtelSettings | None:
    """Whether OpenTelemetry is asked for, and how; None: not asked (nothing of it is imported)."""
    env = runtime.environ
    if env.get("OTEL_SDK_DISABLED", "").strip().lower() in _TRUE:
        return None
    block_endpoint = _block_endpoint(runtime, blocks)
    traces_endpoint = env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "").strip()
    base_endpoint = env.get("OTEL_EXPORTER_OTLP_ENDPOINT", "").strip()
    wanted = [e.strip().lower() for e in env.get("OTEL_TRACES_EXPORTER", "").split(",") if e.strip()]
    if wanted:
        exporters = [e for e in wanted if e in ("otlp", "console")]
        unknown = [e for e in wanted if e not in ("otlp", "console", "none")]
        if unknown:
            log.warning("OTEL_TRACES_EXPORTER %s: naftiko exports to otlp or console only", ",".join(unknown))
        if not exporters:
            return None
        exporter, asked_by = exporters[0], "OTEL_TRACES_EXPORTER"
    elif traces_endpoint or base_endpoint or block_endpoint:
        exporter = "otlp"
        asked_by = (
            "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"
            if traces_endpoint
            else "OTEL_EXPORTER_OTLP_ENDPOINT"
            if base_endpoint
            else "observability.exporters.otlp.endpoint"
        )
    else:
        return None
    protocol = env.get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL") or env.get("OTEL_EXPORTER_OTLP_PROTOCOL") or ""
    protocol = protocol.strip().lower() or "http/protobuf"
    endpoint = None  # the variables: the exporter reads them itself
    if not traces_endpoint and not base_endpoint and block_endpoint:
        endpoint = _signal_url(block_endpoint) if protocol != "grpc" else block_endpoint
    return OtelSettings(exporter, endpoint, protocol, _sampler(env), asked_by)


def _block_endpoint(runtime: Runtime, blocks: Sequence[ControlExposes]) -> str | None:
    """The first enabled control block's OTLP endpoint, rendered over the binds (as server secrets are)."""
    controls = [e for e in runtime.exposes if isinstance(e, ControlExposes)] + list(blocks)
    for block in controls:
        wanted = block.observability
        if wanted.enabled and wanted.otlp_endpoint:
            scope = Scope(runtime.bindings_for(None), {}, runtime.prefixes)
            try:
                return Template.compile(wanted.otlp_endpoint).render(scope, strict=True).strip() or None
            except MissingValue as exc:
                raise CapabilityError.at(
                    block.where,
                    f"observability.exporters.otlp.endpoint uses {{{{{exc.name}}}}}, which no binding provides",
                ) from None
    return None


def _signal_url(base: str) -> str:
    """A base OTLP/HTTP endpoint gets the traces path, as the standard variable's value does."""
    return base.rstrip("/") + "/v1/traces"


def _sampler(env: Mapping[str, str]) -> tuple[float, bool] | None:
    name = env.get("OTEL_TRACES_SAMPLER", "").strip().lower()
    if not name:
        return None
    if name not in _SAMPLERS:
        log.warning("OTEL_TRACES_SAMPLER %s is not one naftiko applies; using parentbased_always_on", name)
        return 1.0, True
    ratio, parent_based = _SAMPLERS[name]
    if ratio is None:
        raw = env.get("OTEL_TRACES_SAMPLER_ARG", "1.0")
        try:
            ratio = min(1.0, max(0.0, float(raw)))
        except ValueError:
            log.warning("OTEL_TRACES_SAMPLER_ARG %r is not a number from 0 to 1; using 1.0", raw)
            ratio = 1.0
    return ratio, parent_based


def start_otel(runtime: Runtime, settings: OtelSettings) -> OtelSink | None:
    """The exporter `settings` ask for, or None (logged) when the extra is not installed."""
    try:
        from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter, SimpleSpanProcessor
    except ImportError:
        log.warning(
            "OpenTelemetry is asked for (%s) but not installed: pip install 'naftiko[otel]'; no spans are exported",
            settings.asked_by,
        )
        return None
    exporter: Any
    if settings.exporter == "console":
        exporter = ConsoleSpanExporter()
        return OtelSink(runtime, SimpleSpanProcessor(exporter), "console")
    try:
        if settings.protocol == "grpc":
            grpc = importlib.import_module("opentelemetry.exporter.otlp.proto.grpc.trace_exporter")  # not in the extra
            exporter = grpc.OTLPSpanExporter(endpoint=settings.endpoint)
        elif settings.protocol == "http/protobuf":
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

            exporter = OTLPSpanExporter(endpoint=settings.endpoint)
        else:
            log.warning("OTLP protocol %s is not supported: use http/protobuf or grpc; no spans", settings.protocol)
            return None
    except ImportError:
        log.warning(
            "OTLP over %s is asked for but its exporter is not installed (naftiko[otel] brings http/protobuf)",
            settings.protocol,
        )
        return None
    return OtelSink(runtime, BatchSpanProcessor(exporter), f"otlp ({settings.protocol})")


class OtelSink:
    """The observer's sink that turns finished calls into OpenTelemetry spans (see the module's docstring)."""

    def __init__(self, runtime: Runtime, processor: SpanProcessor, exporter: str) -> None:
        from opentelemetry.sdk.resources import SERVICE_NAME, Resource
        from opentelemetry.sdk.trace import ReadableSpan
        from opentelemetry.sdk.util.instrumentation import InstrumentationScope
        from opentelemetry.trace import SpanContext, SpanKind, Status, StatusCode, TraceFlags

        resource = Resource.create()
        if str(resource.attributes.get(SERVICE_NAME, "")).startswith("unknown_service"):
            labels = [c.info.label for c in runtime.capabilities if c.info and c.info.label]
            name = "naftiko-" + labels[0].lower().replace(" ", "-") if labels else "naftiko"
            resource = resource.merge(Resource({SERVICE_NAME: name}))
        self.resource = resource
        self.scope = InstrumentationScope("naftiko", _version())
        self.processor = processor
        self.exporter = exporter
        self._span, self._context, self._sampled = ReadableSpan, SpanContext, TraceFlags(TraceFlags.SAMPLED)
        self._server, self._client = SpanKind.SERVER, SpanKind.CLIENT
        self._ok, self._error_code, self._status = Status(StatusCode.UNSET), StatusCode.ERROR, Status
        self._inbound: dict[tuple[str, str, str], dict[str, Any]] = {}
        self._upstream: dict[tuple[str, str, str, str], dict[str, Any]] = {}
        self._capabilities = {
            e.namespace: c.info.label for c in runtime.capabilities if c.info and c.info.label for e in c.exposes
        }
        self._closed = False
        atexit.register(self.close)

    def status(self) -> dict[str, str]:
        return {"status": "active", "exporter": self.exporter}

    def inbound(self, call: _Inbound, status: str, error: str | None, seconds: float) -> None:
        if not call.sampled:
            return
        adapter, namespace = call.block
        key = (adapter, namespace, call.operation)
        shared = self._inbound.get(key)
        if shared is None:
            shared = self._inbound[key] = self._inbound_attributes(key)
        attributes = dict(shared)
        if status.isdigit():
            attributes["http.response.status_code"] = int(status)
        if error is not None:
            attributes["error.type"] = error
        parent = call.parent
        context = self._own(call)
        parent_context = (
            self._context(context.trace_id, int(parent, 16), True, self._sampled) if parent is not None else None
        )
        name = _ROOT_SPANS.get(adapter) or f"{adapter}.request"
        self._end(name, context, parent_context, self._server, attributes, error, seconds)

    def _own(self, call: _Inbound) -> Any:
        """The inbound call's span context, made once for it and the client spans under it."""
        context = call.exported
        if context is None:
            context = call.exported = self._context(int(call.trace_id, 16), int(call.span_id, 16), False, self._sampled)
        return context

    def upstream(self, call: _Upstream, status: int | None, error: str | None, seconds: float) -> None:
        inbound = call.inbound
        if inbound is None or not inbound.sampled or call.span_id is None:
            return
        shared = self._upstream.get(call.labels)
        if shared is None:
            shared = self._upstream[call.labels] = _upstream_attributes(call.labels)
        attributes = dict(shared)
        failed = None
        if status is not None:
            attributes["http.response.status_code"] = status
            failed = str(status) if status >= 400 else None
        if error is not None:
            failed = error
        if failed is not None:
            attributes["error.type"] = failed
        parent_context = self._own(inbound)
        context = self._context(parent_context.trace_id, int(call.span_id, 16), False, self._sampled)
        name = f"http.client.{call.labels[2]}"
        self._end(name, context, parent_context, self._client, attributes, failed, seconds)

    def _end(
        self,
        name: str,
        context: Any,
        parent: Any,
        kind: Any,
        attributes: dict[str, Any],
        error: str | None,
        seconds: float,
    ) -> None:
        end = time.time_ns()
        status = self._ok if error is None else self._status(self._error_code, error)
        span: ReadableSpan = self._span(
            name,
            context=context,
            parent=parent,
            resource=self.resource,
            attributes=attributes,
            kind=kind,
            status=status,
            start_time=end - int(seconds * 1e9),
            end_time=end,
            instrumentation_scope=self.scope,
        )
        self.processor.on_end(span)

    def _inbound_attributes(self, key: tuple[str, str, str]) -> dict[str, Any]:
        adapter, namespace, operation = key
        attributes: dict[str, Any] = {
            "naftiko.adapter.type": adapter,
            "naftiko.namespace": namespace,
            "naftiko.operation.id": operation,
        }
        capability = self._capabilities.get(namespace)
        if capability is not None:
            attributes["naftiko.capability"] = capability
        if adapter == "mcp":
            attributes.update({"mcp.method.name": "tools/call", "gen_ai.tool.name": operation})
            attributes["gen_ai.operation.name"] = "execute_tool"
        else:
            method, _, route = operation.partition(" ")
            if route.startswith("/"):  # "GET /tasks/{id}": the declared route, never the path with its values
                attributes.update({"http.request.method": method, "http.route": route})
        return attributes

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        atexit.unregister(self.close)
        self.processor.shutdown()  # exports what is queued, then stops the worker thread


_ROOT_SPANS = {"rest": "rest.request", "mcp": "mcp.tool", "skill": "skill.request"}


def _upstream_attributes(labels: tuple[str, str, str, str]) -> dict[str, Any]:
    namespace, operation, method, host = labels
    address, port = _host_port(host)
    attributes: dict[str, Any] = {
        "naftiko.namespace": namespace,
        "naftiko.operation.id": operation,
        "http.request.method": method,
        "server.address": address,
    }
    if port is not None:
        attributes["server.port"] = port
    return attributes


def _host_port(host: str) -> tuple[str, int | None]:
    """`example.com:8443` → (`example.com`, 8443); a default port is not in `host` (see upstream._Target)."""
    try:
        parts = urlsplit(f"//{host}")
        return (parts.hostname or host), parts.port
    except ValueError:
        return host, None


def _version() -> str:
    from importlib import metadata

    try:
        return metadata.version("naftiko")
    except metadata.PackageNotFoundError:
        return "unknown"


__all__ = ["OtelSettings", "OtelSink", "otel_settings", "start_otel"]
