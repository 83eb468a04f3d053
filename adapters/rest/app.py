"""The REST adapter: an ASGI app generated from one `exposes: type: rest` block.

One route per declared path and method. The upstream status passes through; JSON answers
are mapped; anything else (JSONL logs, server-sent events, downloads) streams through
unbuffered with its headers. Engine errors become JSON error bodies here, at the edge.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, unquote

from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.types import Receive, Scope, Send

from engine.calls import NO_JSON, ExposedCall, NotSupported
from engine.errors import CapabilityError, RequestError, UnknownOperation, UpstreamError, UpstreamTimeout
from engine.jsoncodec import dumps, loads
from engine.jsonpath import compile_path
from engine.params import with_aliases
from engine.runtime import Runtime
from engine.registry import Forwarder
from engine.spec import Forward, InputParameter, RestExposes
from adapters.rest.routing import Router

log = logging.getLogger("naftiko.rest")


def error_response(status: int, type_: str, message: str, **details: Any) -> JSONResponse:
    return JSONResponse({"error": {"type": type_, "message": message, **details}}, status_code=status)


@dataclass(frozen=True, slots=True)
class _Endpoint:
    """One method of one route: its compiled call and the inputs it declares."""

    call: ExposedCall
    inputs: tuple[InputParameter, ...]


class _Route:
    __slots__ = ("path", "methods", "forward", "trusted")

    def __init__(self, path: str) -> None:
        self.path = path
        self.methods: dict[str, _Endpoint] = {}
        self.forward: Forwarder | None = None
        self.trusted: frozenset[str] = frozenset()


class RestApp:
    """ASGI app for one REST exposes block."""

    def __init__(self, runtime: Runtime, exposes: RestExposes) -> None:
        self.runtime = runtime
        self.exposes = exposes
        self.router: Router[_Route] = Router()
        routes: dict[int, _Route] = {}
        for resource in exposes.resources:
            route = self.router.add(resource.path, _Route(resource.path))
            routes.setdefault(id(route), route)
            for operation in resource.operations:
                call = runtime.exposed_call(operation.invocation, operation.where)
                route.methods.setdefault(operation.method, _Endpoint(call, resource.input_parameters + operation.input_parameters))
            if resource.forward is not None:
                route.forward = _forwarder(runtime, resource.forward)
                route.trusted = frozenset(h.lower() for h in resource.forward.trusted_headers)
        self.routes = list(routes.values())

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        response = await self._handle(Request(scope, receive))
        await response(scope, receive, send)

    async def _handle(self, request: Request) -> Response:
        segments = _segments(request.scope)
        matched = self.router.match(segments)
        method = request.method
        if matched is None:
            return error_response(404, "not_found", f"no route for {method} {request.url.path}")
        route, path_params = matched
        endpoint = route.methods.get(method)
        if endpoint is None and route.forward is not None:
            return await self._forward(request, route, path_params)
        if endpoint is None:
            allowed = ", ".join(sorted(route.methods))
            response = error_response(405, "method_not_allowed", f"{method} is not allowed on {route.path}; use {allowed}",
                                      allowed=sorted(route.methods))
            response.headers["Allow"] = allowed
            return response
        try:
            params = await self._params(request, path_params, endpoint.inputs)
            outcome = await endpoint.call.invoke(params, stream=True, parse=False)
        except Exception as exc:
            return _failure(exc, f"{method} {route.path}")
        if outcome.stream is not None:
            return StreamingResponse(outcome.stream.chunks(), status_code=outcome.status,
                                     headers=dict(outcome.headers), media_type=outcome.content_type)
        if outcome.json is not NO_JSON and outcome.body is None:
            body = dumps(outcome.json)
            return _Answer(outcome.status, body, "application/json", outcome.headers)
        return _Answer(outcome.status, outcome.body or b"", outcome.content_type, outcome.headers)

    async def _forward(self, request: Request, route: _Route, path_params: dict[str, str]) -> Response:
        """Pass the request on to the forward target: rest of the path, method, query, body."""
        assert route.forward is not None
        headers = [(k, v) for k, v in request.headers.items() if k in route.trusted or k == "content-type"]
        body = await request.body()
        try:
            response = await self.runtime.forward(route.forward, request.method, path_params.get("path", ""),
                                                  request.scope.get("query_string", b"").decode("latin-1"),
                                                  headers, body or None)
        except Exception as exc:
            return _failure(exc, f"forward {request.method} {route.path}")
        return StreamingResponse(response.chunks(), status_code=response.status, headers=dict(response.headers()),
                                 media_type=response.content_type)

    async def _params(self, request: Request, path_params: dict[str, str],
                      inputs: tuple[InputParameter, ...]) -> dict[str, Any]:
        """Every path and query variable, the JSON body as `body`, and declared inputs."""
        params: dict[str, Any] = {}
        query = request.scope.get("query_string", b"")
        for key, value in parse_qsl(query.decode("latin-1"), keep_blank_values=True) if query else ():
            if key in params:
                previous = params[key]
                params[key] = previous + [value] if isinstance(previous, list) else [previous, value]
            else:
                params[key] = value
        params.update(path_params)
        body = await _json_body(request) if _has_body(request.scope) else None
        if body is not None:
            params["body"] = body
        for param in inputs:
            value = _declared_input(param, request, path_params, body)
            if value is not None:
                params[param.name] = value
        return with_aliases(params)


def _segments(scope: Scope) -> list[str]:
    """Decoded path segments, split before decoding so an encoded '/' stays inside its segment.

    When mounted inside another app, the mount point (`root_path`) is not part of our routes.
    """
    path = (scope.get("raw_path") or scope["path"].encode()).decode("latin-1").split("?")[0]
    root = scope.get("root_path", "")
    if root and path.startswith(root):
        path = path[len(root):]
    return [unquote(s) for s in path.split("/") if s]


def _forwarder(runtime: Runtime, forward: Forward) -> Forwarder:
    try:
        return runtime.registry.forwarder(forward.target_namespace)
    except UnknownOperation as exc:
        raise CapabilityError.at(forward.where, str(exc)) from None


def _failure(exc: Exception, what: str) -> Response:
    """An engine error as the JSON answer a caller can act on; anything else is logged, not shown."""
    if isinstance(exc, RequestError):
        details = {"parameter": exc.parameter} if exc.parameter else {}
        return error_response(400, "bad_request", exc.message, **details)
    if isinstance(exc, UpstreamTimeout):
        return error_response(504, "upstream_timeout", str(exc), upstream=exc.namespace)
    if isinstance(exc, UpstreamError):
        return error_response(502, "upstream_error", str(exc), upstream=exc.namespace)
    if isinstance(exc, NotSupported):
        return error_response(501, "not_implemented", str(exc))
    log.error("unexpected error on %s", what, exc_info=exc)
    return error_response(500, "internal_error", "the runtime failed while handling this request; see its log")


class _Answer:
    """A complete response sent as two raw ASGI messages (the hot path skips Response objects)."""

    __slots__ = ("status", "headers", "body")

    def __init__(self, status: int, body: bytes, content_type: str | None, extra: list[tuple[str, str]]) -> None:
        self.status, self.body = status, body
        self.headers = [(b"content-type", (content_type or "application/octet-stream").encode("latin-1")),
                        (b"content-length", str(len(body)).encode())]
        self.headers += [(k.lower().encode("latin-1"), v.encode("utf-8", "surrogateescape")) for k, v in extra
                         if k.lower() not in ("content-type", "content-length")]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": self.status, "headers": self.headers})
        await send({"type": "http.response.body", "body": self.body})


def _has_body(scope: Scope) -> bool:
    return any(name in (b"content-length", b"transfer-encoding") for name, _ in scope["headers"])


async def _json_body(request: Request) -> Any:
    raw = await request.body()
    if not raw.strip():
        return None
    try:
        return loads(raw)
    except (ValueError, RecursionError) as exc:
        raise RequestError(f"request body is not valid JSON: {exc}") from None


def _declared_input(param: InputParameter, request: Request, path_params: dict[str, str], body: Any) -> Any:
    """A declared exposed input, read where it says (a constant `value` wins)."""
    value = param.value
    if value is not None and not (isinstance(value, str) and value.startswith("$")):
        return value
    if param.in_ == "query":
        return request.query_params.get(param.name)
    if param.in_ == "header":
        return request.headers.get(param.name)
    if param.in_ == "path":
        return path_params.get(param.name)
    if param.in_ == "cookie":
        return request.cookies.get(param.name)
    if param.in_ == "body":
        if isinstance(value, str):
            return compile_path(value)(body)
        if isinstance(body, dict) and param.name in body:
            return body[param.name]
        return body
    return None
