"""The control port's routes: health, readiness, status, Prometheus metrics and traces.

Paths and JSON shapes are the reference engine's (`ControlServerAdapter` and its resources), so
its `naftiko health/status/metrics/traces` commands read them:

    GET /health/live       200 {"status": "UP"}                                  management.health
    GET /health/ready      200 {"status": "UP", "adapters": [...]}, or 503 "DEGRADED"
    GET /status            capability, engine, uptime, otel, adapters, namespaces  management.info
    GET /metrics           Prometheus text                                       observability.metrics
    GET /traces            {"traces": [...], "bufferSize", "bufferUsed"}          observability.traces
    GET /traces/{traceId}  one trace with its spans; 404 {"error": ...}

A path the block does not serve is a 404 with a JSON error, another method a 405. Readiness is the
state of every other served block's listener (`watch`), as `naftiko serve` reports it; upstream
probes are not declared by the schema and are not made.
"""

from __future__ import annotations

import platform
import time
from dataclasses import dataclass
from datetime import timedelta
from importlib import metadata
from typing import Any
from collections.abc import Callable, Sequence
from urllib.parse import parse_qsl, unquote

from ...engine import ControlExposes, McpExposes, RestExposes, Runtime, SkillExposes, dumps
from .metrics import CONTENT_TYPE
from .observer import ControlObserver

Send = Callable[[dict[str, Any]], Any]


@dataclass(frozen=True, slots=True)
class AdapterState:
    """A served block as readiness reports it; `started` says whether its listener accepts connections."""

    type: str
    namespace: str | None
    port: int
    started: Callable[[], bool]

    def wire(self) -> dict[str, Any]:
        shown: dict[str, Any] = {"type": self.type}
        if self.namespace is not None:
            shown["namespace"] = self.namespace
        if self.port > 0:
            shown["port"] = self.port
        shown["state"] = "started" if self.started() else "stopped"
        return shown


class ControlApp:
    """ASGI app of one control block."""

    def __init__(self, runtime: Runtime, control: ControlExposes) -> None:
        self.runtime = runtime
        self.control = control
        self.started_at = time.monotonic()
        self.adapters: list[AdapterState] = []
        observer = runtime.observer if isinstance(runtime.observer, ControlObserver) else None
        self.otel = observer.otel_status() if observer is not None else {"status": "inactive"}
        self.metrics = observer.metrics if observer is not None else None
        self.traces = observer.traces if observer is not None else None
        handlers = {
            "/health/live": lambda _: _json(200, {"status": "UP"}),
            "/health/ready": self._ready,
            "/status": self._status,
            "/metrics": self._metrics,
            "/traces": self._trace_list,
        }
        self.routes: dict[str, Callable[[dict[str, Any]], tuple[int, bytes, str]]] = {
            path: handlers[path] for path in endpoints(control)
        }
        self.serves_traces = "/traces" in self.routes

    def watch(self, adapters: Sequence[AdapterState]) -> None:
        """The served blocks whose listeners readiness reports (`naftiko serve` calls it once they are bound)."""
        self.adapters = list(adapters)

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Send) -> None:
        if scope["type"] != "http":
            return
        path = scope["path"].rstrip("/") or "/"
        route = self.routes.get(path)
        if route is None and self.serves_traces and path.startswith("/traces/"):
            route = self._one_trace
        if route is None:
            status, body, media = _error(404, f"no control endpoint {path}")
        elif scope["method"] not in ("GET", "HEAD"):
            status, body, media = _error(405, f"{scope['method']} is not allowed on {path}; use GET")
        else:
            status, body, media = route(scope)
        headers = [(b"content-type", media.encode()), (b"content-length", str(len(body)).encode())]
        if status == 405:
            headers.append((b"allow", b"GET, HEAD"))
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": b"" if scope["method"] == "HEAD" else body})

    # --- the endpoints ----------------------------------------------------------------------------

    def _ready(self, _: dict[str, Any]) -> tuple[int, bytes, str]:
        adapters = [adapter.wire() for adapter in self.adapters]
        ready = all(a["state"] == "started" for a in adapters if a["type"] != "control")
        return _json(200 if ready else 503, {"status": "UP" if ready else "DEGRADED", "adapters": adapters})

    def _status(self, _: dict[str, Any]) -> tuple[int, bytes, str]:
        runtime = self.runtime
        capabilities = [
            {"label": c.info.label if c.info else None, "specVersion": c.version, "path": str(c.path)}
            for c in runtime.capabilities
        ]
        uptime = time.monotonic() - self.started_at
        exposes = runtime.exposes
        return _json(
            200,
            {
                "capability": {k: v for k, v in capabilities[0].items() if k != "path"} if capabilities else {},
                "capabilities": capabilities,
                "engine": {
                    "name": "naftiko",
                    "version": _version(),
                    "python": platform.python_version(),
                    "implementation": platform.python_implementation(),
                },
                "uptime": _duration(uptime),
                "uptimeSeconds": round(uptime, 3),
                "otel": self.otel,
                "observability": {
                    "metrics": self.metrics is not None,
                    "traces": self.traces is not None,
                },
                "adapters": [adapter.wire() for adapter in self.adapters],
                "namespaces": {
                    "consumes": sorted(runtime.registry.namespaces),
                    "exposes": [
                        {"type": _kind(e), "namespace": e.namespace}
                        for e in exposes
                        if not isinstance(e, ControlExposes)
                    ],
                    "aggregates": sorted({key.rpartition(".")[0] for key in runtime.functions}),
                },
            },
        )

    def _metrics(self, _: dict[str, Any]) -> tuple[int, bytes, str]:
        if self.metrics is None:
            return _error(503, "metrics are not recorded: this runtime has no observer (see naftiko.adapters.control)")
        return 200, self.metrics.text(), CONTENT_TYPE

    def _trace_list(self, scope: dict[str, Any]) -> tuple[int, bytes, str]:
        if self.traces is None:
            return _error(503, "traces are not recorded: this runtime has no observer (see naftiko.adapters.control)")
        query = dict(parse_qsl(scope.get("query_string", b"").decode("latin-1")))
        operation, status = query.get("operation"), query.get("status")
        listed = [t.summary() for t in self.traces.newest_first() if t.matches(operation, status)]
        return _json(200, {"traces": listed, "bufferSize": self.traces.capacity, "bufferUsed": len(self.traces)})

    def _one_trace(self, scope: dict[str, Any]) -> tuple[int, bytes, str]:
        if self.traces is None:
            return _error(503, "traces are not recorded: this runtime has no observer (see naftiko.adapters.control)")
        trace_id = unquote(scope["path"].rstrip("/")[len("/traces/") :])
        trace = self.traces.find(trace_id)
        if trace is None:
            return 404, dumps({"error": f"Trace not found: {trace_id[:64]}"}), "application/json"
        return _json(200, trace.detail())


def endpoints(control: ControlExposes) -> list[str]:
    """The paths a control block serves (`/traces` with `/traces/{traceId}`), as its management and
    observability settings say; the reference engine's defaults: health on, info off, the rest on."""
    paths = ["/health/live", "/health/ready"] if control.health else []
    paths += ["/status"] if control.info else []
    wanted = control.observability
    paths += ["/metrics"] if wanted.enabled and wanted.metrics else []
    paths += ["/traces"] if wanted.enabled and wanted.traces else []
    return paths


def _json(status: int, value: Any) -> tuple[int, bytes, str]:
    return status, dumps(value), "application/json"


def _error(status: int, message: str) -> tuple[int, bytes, str]:
    """The error shape of the other adapters: `{"error": {"type", "message"}}`."""
    kinds = {404: "not_found", 405: "method_not_allowed", 503: "unavailable"}
    return _json(status, {"error": {"type": kinds.get(status, "error"), "message": message}})


def _kind(exposes: Any) -> str:
    if isinstance(exposes, RestExposes):
        return "rest"
    if isinstance(exposes, McpExposes):
        return "mcp"
    if isinstance(exposes, SkillExposes):
        return "skill"
    return str(getattr(exposes, "type", "other"))


def _duration(seconds: float) -> str:
    """As Java's `Duration.toString()`: `PT1H2M3.456S`."""
    whole = timedelta(seconds=round(seconds, 3))
    hours, rest = divmod(whole.total_seconds(), 3600)
    minutes, secs = divmod(rest, 60)
    text = "PT" + (f"{int(hours)}H" if hours else "") + (f"{int(minutes)}M" if minutes else "")
    return text + (f"{secs:.3f}".rstrip("0").rstrip(".") + "S" if secs or text == "PT" else "")


def _version() -> str:
    try:
        return metadata.version("naftiko")
    except metadata.PackageNotFoundError:
        return "unknown"


__all__ = ["AdapterState", "ControlApp", "endpoints"]
