"""Structured access logs: one JSON line per HTTP request a served block answers (`--log-format json`).

`AccessLog` sits outermost in front of a block's app (outside its authentication and CORS), so
every request is logged, the ones refused before any adapter saw them included (a 401, a 403 for
its Origin, a 404). What only the adapter knows (the operation: route template or tool name, the
trace id, how many upstream calls it made and how long they took) reaches the line through
`AccessRecorder`, a sink of the runtime's `ControlObserver` that fills the request's record. A line:

    {"time": "2026-12-03T19:20:01.123Z", "level": "info", "logger": "naftiko.access", "adapter": "rest",
     "namespace": "api", "method": "GET", "operation": "GET /items/{id}", "status": 200,
     "duration_ms": 1.42, "trace_id": "4bf9…", "upstream_calls": 1, "upstream_ms": 0.9,
     "client": "127.0.0.1"}

Never a secret: no header, no body, no path (its values may be ids or keys) and no query string (an
API key may be placed there) are logged; `operation` is a label from the capability file, null
when no adapter routed the request. A line is a record of the `naftiko.access` logger, so where
lines go is logging's configuration; `JsonFormatter` makes the server's own lines JSON too.
Nothing here is installed unless asked for: the default text mode costs nothing per request.
"""

from __future__ import annotations

import logging
import time
import traceback
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any
from collections.abc import Mapping

from ...engine import Exposes, Runtime, dumps
from ..edges import StatusSend

if TYPE_CHECKING:
    from .observer import _Inbound, _Upstream

ACCESS_LOGGER = "naftiko.access"

_RECORD_ATTRIBUTES = frozenset(logging.makeLogRecord({}).__dict__) | {"message", "asctime", "access"}


def rfc3339(moment: float) -> str:
    """A POSIX time as RFC 3339 in UTC, to the millisecond: `2026-12-03T19:20:01.123Z`.

    The second's text is kept from the call before (lines come many a second): 0.4 µs against 1.9 µs."""
    global _second
    whole = int(moment)
    if whole != _second[0]:
        _second = (whole, time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(whole)))
    return f"{_second[1]}.{int((moment - whole) * 1000):03d}Z"


_second: tuple[int, str] = (-1, "")


class JsonFormatter(logging.Formatter):
    """One JSON object per record: `time`, `level`, `logger`, then the access fields or `message`.

    A record's extra fields are kept (as strings when JSON cannot hold them); an exception's
    traceback is one string field, so a line is always one line. `fields` go into every line
    (a worker's number: `{"worker": 2}`).
    """

    def __init__(self, fields: Mapping[str, Any] | None = None) -> None:
        super().__init__()
        self.fields = dict(fields or {})

    def format(self, record: logging.LogRecord) -> str:
        access = getattr(record, "access", None)
        if isinstance(access, dict):  # its own time: when the request came in
            line: dict[str, Any] = {"time": access["time"], "level": "info", "logger": record.name, **self.fields}
            line.update(access)
        else:
            line = {"time": rfc3339(record.created), "level": record.levelname.lower(), "logger": record.name}
            line.update(self.fields)
            line["message"] = record.getMessage()
            for key, value in record.__dict__.items():
                if key not in _RECORD_ATTRIBUTES and not key.startswith("_"):
                    line[key] = value if isinstance(value, (str, int, float, bool, type(None))) else str(value)
        if record.exc_info:
            line["exception"] = "".join(traceback.format_exception(*record.exc_info)).rstrip()
        elif record.exc_text:
            line["exception"] = record.exc_text
        return dumps(line).decode()


class _Record:
    """What one request's line says beyond its HTTP layer, filled by the observer's calls inside it."""

    __slots__ = ("operation", "trace_id", "calls", "upstream_seconds")

    def __init__(self) -> None:
        self.operation: str | None = None
        self.trace_id: str | None = None
        self.calls = 0
        self.upstream_seconds = 0.0


class _Line:
    """The access fields as the record's message: JSON under any formatter, built only when formatted."""

    __slots__ = ("fields",)

    def __init__(self, fields: dict[str, Any]) -> None:
        self.fields = fields

    def __str__(self) -> str:
        return dumps(self.fields).decode()


class AccessRecorder:
    """The observer's sink that tells the current request's record its operation and upstream calls."""

    def __init__(self, logger: logging.Logger | None = None) -> None:
        self.logger = logger or logging.getLogger(ACCESS_LOGGER)
        self.current: ContextVar[_Record | None] = ContextVar(f"naftiko-access-{id(self)}", default=None)

    def inbound(self, call: _Inbound, status: str, error: str | None, seconds: float) -> None:
        record = self.current.get()
        if record is not None:
            record.operation, record.trace_id = call.operation, call.trace_id

    def upstream(self, call: _Upstream, status: int | None, error: str | None, seconds: float) -> None:
        record = self.current.get()
        if record is not None:
            record.calls += 1
            record.upstream_seconds += seconds

    def close(self) -> None:
        pass

    def write(self, fields: dict[str, Any]) -> None:
        """One record, made without looking for the caller's frame (nobody reads it; it cost 1.5 µs a line)."""
        logger = self.logger
        record = logger.makeRecord(logger.name, logging.INFO, "", 0, "%s", (_Line(fields),), None)
        record.access = fields
        logger.handle(record)


class AccessLog:
    """ASGI middleware: one access line per HTTP request of one served block (see the module's docstring)."""

    def __init__(self, app: Any, recorder: AccessRecorder, adapter: str, namespace: str) -> None:
        self.app, self.recorder, self.adapter, self.namespace = app, recorder, adapter, namespace

    def __getattr__(self, name: str) -> Any:
        return getattr(self.app, name)

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or not self.recorder.logger.isEnabledFor(logging.INFO):
            await self.app(scope, receive, send)
            return
        record = _Record()
        token = self.recorder.current.set(record)
        sending = StatusSend(send)
        started_at, started = time.time(), time.perf_counter()
        try:
            await self.app(scope, receive, sending)
        except BaseException:
            sending.status = sending.status or 500
            raise
        finally:
            self.recorder.current.reset(token)
            elapsed = time.perf_counter() - started
            self.recorder.write(self._fields(scope, record, sending.status, started_at, elapsed))

    def _fields(self, scope: Any, record: _Record, status: int, started_at: float, seconds: float) -> dict[str, Any]:
        client = scope.get("client")
        return {
            "time": rfc3339(started_at),
            "adapter": self.adapter,
            "namespace": self.namespace,
            "method": scope["method"],
            "operation": record.operation,
            "status": status or 499,  # 499: the caller went away before any answer (nginx's code)
            "duration_ms": round(seconds * 1000, 3),
            "trace_id": record.trace_id,
            "upstream_calls": record.calls,
            "upstream_ms": round(record.upstream_seconds * 1000, 3),
            "client": client[0] if client else None,
        }


def access_recorder(runtime: Runtime) -> AccessRecorder | None:
    """The access recorder of the runtime's observer, if access logs are on."""
    sinks = getattr(runtime.observer, "sinks", ())
    return next((s for s in sinks if isinstance(s, AccessRecorder)), None)


def access_logged(runtime: Runtime, exposes: Exposes, app: Any) -> Any:
    """`app` behind `AccessLog` when the runtime's access log is on (not for the control port: probes
    and scrapes every few seconds are not calls); `app` itself otherwise, which costs nothing."""
    recorder = access_recorder(runtime)
    if recorder is None or exposes.type == "control" or isinstance(app, AccessLog):
        return app
    return AccessLog(app, recorder, exposes.type, exposes.namespace)


__all__ = [
    "ACCESS_LOGGER",
    "AccessLog",
    "AccessRecorder",
    "JsonFormatter",
    "access_logged",
    "access_recorder",
    "rfc3339",
]
