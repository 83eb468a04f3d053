"""The REST adapter: an ASGI app generated from one `exposes: type: rest` block.

One route per declared path and method. The upstream status passes through; JSON answers
are mapped; anything else (JSONL logs, server-sent events, downloads) streams through
unbuffered with its headers. Engine errors become JSON error bodies here, at the edge.

A request body larger than the runtime's request-body limit is a 413 (a declared length is
refused before reading). A caller who disconnects while its upstream call is pending releases
that call (`adapters.edges.DisconnectWatch`); an upstream that breaks in the middle of a
streamed answer is logged in one line and the response is aborted, never completed.
"""

from __future__ import annotations

import asyncio
import logging
import math
from dataclasses import dataclass
from typing import Any
from collections.abc import Callable
from urllib.parse import parse_qsl, unquote

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.types import Receive, Scope, Send

from ...engine import (
    NO_JSON,
    CapabilityError,
    ExposedCall,
    Forward,
    Forwarder,
    InputParameter,
    NotSupported,
    Observer,
    RequestError,
    RequestTooLarge,
    RestExposes,
    Runtime,
    UnknownOperation,
    UpstreamError,
    UpstreamResponse,
    UpstreamTimeout,
    UpstreamUnavailable,
    answer_for,
    compile_path,
    dumps,
    loads,
    with_aliases,
)
from ..edges import UNENCODABLE, Disconnected, DisconnectWatch, abort, read_body
from .openapi import OpenApiRoutes
from .pages import PageLines
from .routing import Router

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
                parameters = resource.input_parameters + operation.input_parameters
                route.methods.setdefault(operation.method, _Endpoint(call, parameters))
            if resource.forward is not None:
                route.forward = _forwarder(runtime, resource.forward)
                route.trusted = frozenset(h.lower() for h in resource.forward.trusted_headers)
        self.routes = list(routes.values())
        self.body_limit = runtime.limits.request_body
        self.watch = DisconnectWatch()
        self.observer = runtime.observer  # read once: None (the rule) costs one check per request
        self.openapi = OpenApiRoutes(runtime, exposes)  # /openapi.json and /docs, where no route of ours is

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        if self.observer is not None:
            await self._observed(self.observer, scope, receive, send)
            return
        response = await self._handle(Request(scope, receive))
        if response is not None:  # None: the caller went away, nobody to answer
            await response(scope, receive, send)

    async def _observed(self, observer: Observer, scope: Scope, receive: Receive, send: Send) -> None:
        """`__call__`, reported to the observer: the route (`GET /tasks/{id}`, never the raw path) and the
        status the caller got; a 5xx counts as an error of the JSON error's type (or `upstream_status`)."""
        call = observer.inbound("rest", self.exposes.namespace, self._operation(scope), _traceparent(scope))
        status = 499  # nginx's "client closed request": the caller went away before any answer
        try:
            response = await self._handle(Request(scope, receive))
            if response is not None:
                answered = isinstance(response, (_Answer, _Stream, PageLines))
                status = response.status if answered else response.status_code
                await response(scope, receive, send)
        except BaseException as exc:
            call.end("500", type(exc).__name__)
            raise
        call.end(str(status), _error_type(response) if status >= 500 else None)

    def _operation(self, scope: Scope) -> str:
        """The route a request is labelled with: its declared path and method, from the capability file."""
        matched = self.router.match(_segments(scope))
        if matched is None:
            return "(unrouted)"
        route, method = matched[0], scope["method"]
        known = method in route.methods or (route.forward is not None and method in _METHODS)
        return f"{method if known else 'OTHER'} {route.path}"

    async def _handle(self, request: Request) -> Any:
        segments = _segments(request.scope)
        matched = self.router.match(segments)
        method = request.method
        if matched is None:
            own = self.openapi.answer(method, segments, request.scope)  # adapters/rest/openapi.py
            if own is not None:
                return own
            return error_response(404, "not_found", f"no route for {method} {request.scope['path']}")
        route, path_params = matched
        endpoint = route.methods.get(method)
        if endpoint is None and route.forward is not None:
            return await self._forward(request, route, path_params)
        if endpoint is None:
            allowed = ", ".join(sorted(route.methods))
            response = error_response(
                405,
                "method_not_allowed",
                f"{method} is not allowed on {route.path}; use {allowed}",
                allowed=sorted(route.methods),
            )
            response.headers["Allow"] = allowed
            return response
        try:
            params = await self._params(request, path_params, endpoint.inputs)
        except Disconnected:
            return None
        except Exception as exc:
            return _failure(exc, f"{method} {route.path}")
        watch = self.watch
        task = watch.enter(request.receive)
        try:
            outcome = await endpoint.call.invoke(params, stream=True, parse=False)
        except asyncio.CancelledError:
            if watch.gone(task):
                return None
            raise
        except Exception as exc:
            return _failure(exc, f"{method} {route.path}")
        finally:
            watch.leave(task)
        if outcome.pages is not None:  # allPages: every page as JSON lines (adapters/rest/pages.py)
            return PageLines(outcome.pages, f"{method} {route.path}", watch)
        if outcome.stream is not None:
            return _Stream(
                outcome.stream, outcome.status, outcome.headers, outcome.content_type, f"{method} {route.path}", watch
            )
        if outcome.json is not NO_JSON and outcome.body is None:
            body = dumps(outcome.json)
            return _Answer(outcome.status, body, "application/json", outcome.headers)
        return _Answer(outcome.status, outcome.body or b"", outcome.content_type, outcome.headers)

    async def _forward(self, request: Request, route: _Route, path_params: dict[str, str]) -> Any:
        """Pass the request on to the forward target: rest of the path, method, query, body."""
        assert route.forward is not None
        what = f"forward {request.method} {route.path}"
        headers = [(k, v) for k, v in request.headers.items() if k in route.trusted or k == "content-type"]
        try:
            body = await self._body(request)
        except Disconnected:
            return None
        except RequestTooLarge as exc:
            return _failure(exc, what)
        watch = self.watch
        task = watch.enter(request.receive)
        try:
            response = await self.runtime.forward(
                route.forward,
                request.method,
                path_params.get("path", ""),
                request.scope.get("query_string", b"").decode("latin-1"),
                headers,
                body or None,
            )
        except asyncio.CancelledError:
            if watch.gone(task):
                return None
            raise
        except Exception as exc:
            return _failure(exc, what)
        finally:
            watch.leave(task)
        return _Stream(response, response.status, response.headers(), response.content_type, what, watch)

    async def _body(self, request: Request) -> bytes:
        """The request body, bounded by the request-body limit (b"" when the request has none)."""
        has_body, declared = _framing(request.scope["headers"])
        return await read_body(request.receive, self.body_limit, declared) if has_body else b""

    async def _params(
        self, request: Request, path_params: dict[str, str], inputs: tuple[InputParameter, ...]
    ) -> dict[str, Any]:
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
        has_body, declared = _framing(request.scope["headers"])
        body = _json_body(await read_body(request.receive, self.body_limit, declared)) if has_body else None
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
        path = path[len(root) :]
    return [unquote(s) for s in path.split("/") if s]


_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
"""Methods a forward route is labelled with; any other is `OTHER`, so a caller cannot mint label values."""


def _traceparent(scope: Scope) -> str | None:
    for name, value in scope["headers"]:
        if name == b"traceparent":
            return value.decode("latin-1")
    return None


def _error_type(response: Any) -> str:
    """Our JSON error's `type` (`upstream_error`, `upstream_timeout`...), or `upstream_status` (an upstream's 5xx)."""
    if isinstance(response, JSONResponse):
        try:
            return str(loads(bytes(response.body))["error"]["type"])
        except (ValueError, KeyError, TypeError):
            pass
    return "upstream_status"


def _forwarder(runtime: Runtime, forward: Forward) -> Forwarder:
    try:
        return runtime.registry.forwarder(forward.target_namespace)
    except UnknownOperation as exc:
        raise CapabilityError.at(forward.where, str(exc)) from None


Details = Callable[[Any], "tuple[str, dict[str, Any]]"]
"""An error's message and the extra fields of its JSON error body."""


def _upstream(exc: UpstreamError) -> tuple[str, dict[str, Any]]:
    return str(exc), {"upstream": exc.namespace}


def _unavailable(exc: UpstreamUnavailable) -> tuple[str, dict[str, Any]]:
    """Refused without trying (circuit open, bulkhead full): when to try again, if known."""
    return str(exc), {"upstream": exc.namespace, "retryAfter": exc.retry_after}


ERRORS: dict[type[BaseException], tuple[int, str, Details]] = {
    RequestError: (400, "bad_request", lambda e: (e.message, {"parameter": e.parameter} if e.parameter else {})),
    RequestTooLarge: (413, "request_too_large", lambda e: (str(e), {"limit": e.limit})),
    # Caught here, not looked for in every body: it is rare.
    UnicodeEncodeError: (400, "bad_request", lambda e: (UNENCODABLE, {})),
    UpstreamError: (502, "upstream_error", _upstream),
    UpstreamTimeout: (504, "upstream_timeout", _upstream),
    UpstreamUnavailable: (503, "upstream_unavailable", _unavailable),
    NotSupported: (501, "not_implemented", lambda e: (str(e), {})),
}
"""What a REST caller gets for each error kind: status, JSON error `type`, message and fields.
Looked up by the exception's MRO (`engine.errors.answer_for`): the most specific kind wins."""


def _failure(exc: Exception, what: str) -> Response:
    """An engine error as the JSON answer a caller can act on; anything else is logged, not shown."""
    answer = answer_for(ERRORS, exc)
    if answer is None:
        log.error("unexpected error on %s", what, exc_info=exc)
        return error_response(500, "internal_error", "the runtime failed while handling this request; see its log")
    status, type_, details = answer
    message, fields = details(exc)
    response = error_response(status, type_, message, **fields)
    if isinstance(exc, UpstreamUnavailable) and exc.retry_after is not None:
        response.headers["Retry-After"] = str(math.ceil(exc.retry_after))  # whole seconds (RFC 9110)
    return response


class _Answer:
    """A complete response sent as two raw ASGI messages (the hot path skips Response objects)."""

    __slots__ = ("status", "headers", "body")

    def __init__(self, status: int, body: bytes, content_type: str | None, extra: list[tuple[str, str]]) -> None:
        self.status, self.body = status, body
        self.headers = [
            (b"content-type", (content_type or "application/octet-stream").encode("latin-1")),
            (b"content-length", str(len(body)).encode()),
        ]
        self.headers += [
            (k.lower().encode("latin-1"), v.encode("utf-8", "surrogateescape"))
            for k, v in extra
            if k.lower() not in ("content-type", "content-length")
        ]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": self.status, "headers": self.headers})
        await send({"type": "http.response.body", "body": self.body})


class _Stream:
    """An upstream answer streamed through as it arrives.

    The upstream breaking mid-body is one log line (what, namespace, operation, reason) and an
    aborted response: the caller sees the connection end without the terminating chunk, never a
    complete-looking truncated answer. A caller that goes away releases the upstream connection.
    """

    __slots__ = ("response", "status", "headers", "what", "watch")

    def __init__(
        self,
        response: UpstreamResponse,
        status: int,
        headers: list[tuple[str, str]],
        content_type: str | None,
        what: str,
        watch: DisconnectWatch,
    ) -> None:
        self.response, self.status, self.what, self.watch = response, status, what, watch
        self.headers = [(k.lower().encode("latin-1"), v.encode("utf-8", "surrogateescape")) for k, v in headers]
        if not any(name == b"content-type" for name, _ in self.headers):  # the upstream's own, charset and all
            self.headers.append((b"content-type", (content_type or "application/octet-stream").encode("latin-1")))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        response, watch = self.response, self.watch
        failure: UpstreamError | None = None
        task = watch.enter(receive)
        try:
            await send({"type": "http.response.start", "status": self.status, "headers": self.headers})
            async for chunk in response.chunks():
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
        except asyncio.CancelledError:
            if watch.gone(task):
                return
            raise
        except UpstreamError as exc:
            failure = exc
        except OSError:
            return  # a server that reports the caller gone by failing `send` (ASGI 2.4)
        finally:
            watch.leave(task)
            response.close()
        if failure is not None:
            log.warning("%s: %s; the streamed response was cut short", self.what, failure)
            await abort(scope, receive)
            return
        await send({"type": "http.response.body", "body": b"", "more_body": False})


def _framing(headers: list[tuple[bytes, bytes]]) -> tuple[bool, bytes | None]:
    """Whether the request has a body, and its declared length."""
    has_body, declared = False, None
    for name, value in headers:
        if name == b"content-length":
            has_body, declared = True, value
        elif name == b"transfer-encoding":
            has_body = True
    return has_body, declared


def _json_body(raw: bytes) -> Any:
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
