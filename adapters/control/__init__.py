"""The control port: an `exposes: type: control` block's health, status, metrics and traces.

`naftiko serve` serves a declared control block on its own port (or one `--control-port` adds)
and, when its `observability` asks for metrics or traces, attaches a `ControlObserver` to the
runtime before any adapter is built, so every call is reported through the engine's `Observer`
hook; without one nothing is reported and nothing is paid. From top to bottom:

    app        ControlApp: /health/live, /health/ready, /status, /metrics, /traces[/{id}] (the reference's shapes)
    wrappers   MCP tool calls and skill views reported to the observer (REST reports from RestApp itself)
    observer   ControlObserver (the engine's Observer): RED metrics for every call, a trace per sampled one
    metrics    the prometheus_client registry of one runtime, its instruments and the pool-size collector
    traces     W3C/B3 trace context and the bounded ring of completed traces

A library user who serves blocks with `build_app` attaches the observer first:
`naftiko.adapters.control.observe(runtime)`, then `build_app(runtime, "control")`.
"""

from .observer import ControlObserver, observe

__all__ = ["ControlObserver", "observe"]
