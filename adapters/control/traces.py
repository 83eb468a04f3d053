"""Trace context (W3C `traceparent`, B3) and the bounded ring of completed traces `/traces` shows.

A trace is one inbound call (its root span) and the upstream exchanges made for it (client spans).
Only completed traces enter the ring, which holds at most `trace_buffer` of them (the control
block's `traces.local.buffer-size`, 10 to 10,000, default 100); a trace keeps at most
`MAX_SPANS` spans, so a call with many steps cannot grow one without bound. Only sampled calls
are traced (`traces.sampling`, or the caller's own `traceparent` flag). The JSON shapes are
the reference engine's (`TracesResource`): what its `naftiko traces` command reads.
"""

from __future__ import annotations

import random
import re
import time
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from collections.abc import Mapping

MAX_SPANS = 32
"""Spans kept per trace; past it further upstream exchanges are counted (`droppedSpans`), not kept.
A span holds its ids, times and outcome, and shares its attributes with every span of the same
operation, so the ring holds at most `buffer-size` × 33 spans. Measured (tracemalloc): a trace
of one call and one upstream exchange 0.67 KB, one of 33 spans 6.9 KB; so the default 100 traces
take under 0.7 MB, and the largest buffer (10,000) 6.7 MB, or 69 MB if every trace is that long."""

_TRACEPARENT = re.compile(r"^[0-9a-f]{2}-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$")


class Ids:
    """Random trace and span ids (W3C: 16 and 8 bytes, never all zeros), from a PRNG seeded by the OS.

    They identify, they do not protect, as in OpenTelemetry's SDKs: `os.urandom` cost a system call
    (about 1 µs) per id, three per traced call.
    """

    def __init__(self) -> None:
        self._bits = random.Random().getrandbits

    def trace(self) -> str:
        return f"{self._bits(128) or 1:032x}"

    def span(self) -> str:
        return f"{self._bits(64) or 1:016x}"


def parse_traceparent(header: str | None) -> tuple[str, str, bool] | None:
    """(trace id, parent span id, sampled) from a W3C `traceparent`; None when absent or malformed."""
    if not header:
        return None
    match = _TRACEPARENT.match(header.strip().lower())
    if match is None or match.group(1) == "0" * 32 or match.group(2) == "0" * 16:
        return None
    return match.group(1), match.group(2), bool(int(match.group(3), 16) & 1)


def propagation_headers(style: str, trace_id: str, span_id: str, sampled: bool) -> tuple[tuple[str, str], ...]:
    """The headers that carry the trace to an upstream: W3C `traceparent`, or B3 multi-header."""
    if style == "b3":
        return (("X-B3-TraceId", trace_id), ("X-B3-SpanId", span_id), ("X-B3-Sampled", "1" if sampled else "0"))
    return (("traceparent", f"00-{trace_id}-{span_id}-{'01' if sampled else '00'}"),)


@dataclass(slots=True)
class Span:
    """One span; `attributes` is shared by the spans of one operation (never changed), the outcome is its own."""

    span_id: str
    parent_span_id: str | None
    name: str
    kind: str
    attributes: Mapping[str, Any]
    duration: float = 0.0
    status: str = "OK"
    code: str | int | None = None  # the HTTP status (a caller's, an upstream's) or a tool's OK/ERROR
    error: str | None = None

    def wire(self) -> dict[str, Any]:
        shown: dict[str, Any] = {"spanId": self.span_id}
        if self.parent_span_id is not None:
            shown["parentSpanId"] = self.parent_span_id
        attributes = dict(self.attributes)
        if self.code is not None:
            attributes["http.response.status_code" if self.kind == "CLIENT" else "status"] = self.code
        if self.error is not None:
            attributes["error.type"] = self.error
        shown.update(
            name=self.name,
            kind=self.kind,
            durationMs=round(self.duration * 1000, 3),
            status=self.status,
            attributes=attributes,
        )
        return shown


@dataclass(slots=True)
class Trace:
    """One inbound call being traced: its root span first, then the spans of its upstream exchanges."""

    trace_id: str
    sampled: bool
    root: Span
    started: float = field(default_factory=time.time)  # wall clock, shown as `timestamp`
    spans: list[Span] = field(default_factory=list)
    dropped: int = 0

    def add(self, span: Span) -> bool:
        if len(self.spans) >= MAX_SPANS:
            self.dropped += 1
            return False
        self.spans.append(span)
        return True

    @property
    def operation(self) -> str:
        return self.root.name

    def summary(self) -> dict[str, Any]:
        """The reference's list item, plus where the call came in (`adapter`, `namespace`, `operationId`)."""
        return {
            "traceId": self.trace_id,
            "operation": self.root.name,
            "durationMs": round(self.root.duration * 1000, 3),
            "status": self.root.status,
            "spanCount": 1 + len(self.spans),
            "timestamp": _instant(self.started),
            "adapter": self.root.attributes.get("naftiko.adapter.type"),
            "namespace": self.root.attributes.get("naftiko.namespace"),
            "operationId": self.root.attributes.get("naftiko.operation.id"),
        }

    def detail(self) -> dict[str, Any]:
        """The reference's `/traces/{traceId}` answer."""
        detail: dict[str, Any] = {
            "traceId": self.trace_id,
            "operation": self.root.name,
            "durationMs": round(self.root.duration * 1000, 3),
            "status": self.root.status,
            "timestamp": _instant(self.started),
            "spans": [self.root.wire(), *(span.wire() for span in self.spans)],
        }
        if self.dropped:
            detail["droppedSpans"] = self.dropped
        return detail

    def matches(self, operation: str | None, status: str | None) -> bool:
        """The reference's filters: `operation` a substring of the root span's name (or of the operation id)."""
        if (
            operation
            and operation not in self.root.name
            and operation not in str(self.root.attributes.get("naftiko.operation.id"))
        ):
            return False
        return not status or self.root.status.lower() == status.lower()


class TraceBuffer:
    """The last `capacity` completed traces, newest first when listed; one event loop appends, no lock."""

    def __init__(self, capacity: int) -> None:
        if capacity < 1:
            raise ValueError(f"a trace buffer holds at least 1 trace; got {capacity}")
        self.capacity = capacity
        self._traces: deque[Trace] = deque(maxlen=capacity)

    def add(self, trace: Trace) -> None:
        self._traces.append(trace)

    def __len__(self) -> int:
        return len(self._traces)

    def newest_first(self) -> list[Trace]:
        return list(reversed(self._traces))

    def find(self, trace_id: str) -> Trace | None:
        for trace in reversed(self._traces):
            if trace.trace_id == trace_id:
                return trace
        return None


def _instant(moment: float) -> str:
    """As Java's `Instant.toString()`: ISO 8601 in UTC with a `Z`."""
    return datetime.fromtimestamp(moment, UTC).isoformat().replace("+00:00", "Z")


now = time.perf_counter
"""The clock durations are measured with."""


__all__ = [
    "MAX_SPANS",
    "Ids",
    "Span",
    "Trace",
    "TraceBuffer",
    "now",
    "parse_traceparent",
    "propagation_headers",
]
