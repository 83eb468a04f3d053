"""The control port: an `exposes: type: control` block's health, status, metrics and traces.

`naftiko serve` serves a declared control block on its own port (or one `--control-port` adds)
and, when its `observability` asks for metrics or traces, when OpenTelemetry is asked for, or
when access logs are on, attaches one `ControlObserver` to the runtime before any adapter is
built, so every call is reported through the engine's `Observer` hook; without any of them
nothing is reported and nothing is paid. From top to bottom:

    app        ControlApp: /health/live, /health/ready, /status, /metrics, /traces[/{id}] (the reference's shapes)
    wrappers   MCP tool calls and skill views reported to the observer (REST reports from RestApp itself)
    accesslog  one JSON line per request (`--log-format json`): the AccessLog middleware, its recorder, JsonFormatter
    otel       OpenTelemetry spans of the observer's calls, exported over OTLP (the optional `otel` extra)
    observer   ControlObserver (the engine's Observer): RED metrics for every call, a trace per sampled one,
               and its sinks (otel, accesslog), which see every call with the same ids
    metrics    the prometheus_client registry of one runtime, its instruments and the pool-size collector
    traces     W3C/B3 trace context and the bounded ring of completed traces

A library user who serves blocks with `build_app` attaches the observer first:
`naftiko.adapters.control.observe(runtime)`, then `build_app(runtime, "control")`.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Any
from collections.abc import Sequence

from ...engine import ControlExposes, Observability, Runtime

if TYPE_CHECKING:
    from .observer import ControlObserver, Sink


def observe(
    runtime: Runtime, control_blocks: Sequence[ControlExposes] = (), *, access_log: bool | None = None
) -> ControlObserver | None:
    """Attach a `ControlObserver` to `runtime` when anything measures its calls; None when nothing does.

    Metrics and traces as a control block asks; OpenTelemetry when the `OTEL_*` variables or the
    block's `exporters.otlp.endpoint` ask for it (see `otel`; its modules are imported only then);
    access lines when `access_log` (None: `NAFTIKO_LOG_FORMAT=json` in the runtime's environment).
    Call it before building the adapters (they read `runtime.observer` once).
    """
    if runtime.observer is not None:
        from .observer import ControlObserver

        if isinstance(runtime.observer, ControlObserver):
            return runtime.observer
    wanted = _observability(runtime, control_blocks)
    sinks: list[Sink] = []
    sampler: tuple[float, bool] | None = None
    from .otel import otel_settings

    otel = otel_settings(runtime, control_blocks)
    if otel is not None:
        from .otel import start_otel

        exporter = start_otel(runtime, otel)
        if exporter is not None:
            sinks.append(exporter)
            sampler = otel.sampler
    if access_log is None:
        access_log = runtime.environ.get("NAFTIKO_LOG_FORMAT", "").strip().lower() == "json"
    if access_log:
        from .accesslog import AccessRecorder

        sinks.append(AccessRecorder())
    if wanted is None and not sinks:
        return None
    if wanted is None:  # no ring, no metrics: a block's sampling still counts for the exported spans
        blocks = [e for e in runtime.exposes if isinstance(e, ControlExposes)] + list(control_blocks)
        declared = next((b.observability for b in blocks if b.observability.enabled), Observability())
        wanted = replace(declared, metrics=False, traces=False)
    from .observer import ControlObserver  # with prometheus_client: 20 ms of start-up only when observed

    observer = ControlObserver(runtime, wanted, sinks)
    if sampler is not None:
        observer.sampling, observer.parent_based = sampler
    runtime.observe(observer)
    return observer


def _observability(runtime: Runtime, control_blocks: Sequence[ControlExposes] = ()) -> Observability | None:
    """The observability the runtime's first control block asks for (extra blocks given count too); None: off."""
    blocks = [e for e in runtime.exposes if isinstance(e, ControlExposes)] + list(control_blocks)
    for block in blocks:
        wanted = block.observability
        if wanted.enabled and (wanted.metrics or wanted.traces):
            return wanted
    return None


def __getattr__(name: str) -> Any:
    if name == "ControlObserver":  # imported on use, as `observe` does
        from .observer import ControlObserver

        return ControlObserver
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["ControlObserver", "observe"]
