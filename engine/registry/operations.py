"""The operation registry: every consumed operation, compiled and addressable as `ns.op`.

Compiling does all the per-file work once (templates, parameter plans, auth); preparing a
request is then a walk over small tuples. One registry serves every adapter.
"""

from __future__ import annotations

import base64
import json
import re
import secrets
from dataclasses import dataclass
from typing import Any
from collections.abc import Callable, Iterator, Mapping
from urllib.parse import quote, urlencode

from .. import formats
from ..errors import CapabilityError, Problem, RequestError, UnknownOperation
from ..limits import Limits
from .params import Scope, lookup
from ..spec.model import Authentication, ConsumedOperation, ConsumedResource, Consumes, InputParameter
from ..upstream.request import Prepared
from ..templates import MISSING, MissingValue, Template, TemplateError, to_text

_INTEGER = re.compile(r"^[+-]?\d+$")


@dataclass(frozen=True, slots=True)
class OperationParameter:
    """A consumed input parameter with its `value` compiled."""

    name: str
    in_: str
    template: Template | None
    constant: Any
    type: str | None
    required: bool
    description: str | None

    def value(self, scope: Scope) -> Any:
        if self.template is not None:
            try:
                if self.template.single_name is not None:
                    return scope.get(self.template.single_name)
                return self.template.render(scope, strict=True)
            except MissingValue:
                return MISSING
        if self.constant is not None:
            return self.constant
        return scope.get(self.name)


class Operation:
    """One consumed operation, compiled."""

    __slots__ = ("key", "namespace", "name", "method", "spec", "resource", "params", "path",
                 "path_names", "body_plan", "auth", "output_format", "decoder")

    def __init__(self, consumes: Consumes, resource: ConsumedResource, op: ConsumedOperation,
                 limits: Limits | None = None) -> None:
        self.key = f"{consumes.namespace}.{op.name}"
        self.namespace = consumes.namespace
        self.name = op.name
        self.method = op.method
        self.spec = op
        self.resource = resource
        declared = consumes.input_parameters + resource.input_parameters + op.input_parameters
        self.params = tuple(_compile_param(p) for p in declared)
        path = resource.path if resource.path.startswith("/") else "/" + resource.path
        self.path = Template.compile(path, single_braces=True)
        self.path_names = self.path.names
        self.body_plan = _compile_body(op.body)
        self.auth = _compile_auth(consumes.authentication)
        self.output_format = (op.output_raw_format or "json").lower()
        self.decoder = None if self.output_format == "json" else _decoder(op, limits or Limits())

    @property
    def description(self) -> str | None:
        return self.spec.description or self.spec.label

    def parameters(self) -> list[OperationParameter]:
        """Declared parameters plus path-template names nobody declared (always required)."""
        params = list(self.params)
        declared = {p.name for p in params}
        for name in self.path_names:
            if name not in declared:
                params.append(OperationParameter(name, "path", None, None, "string", True, None))
        return params

    def prepare(self, params: Mapping[str, Any], bindings: Mapping[str, str], prefixes: frozenset[str]) -> Prepared:
        """Build the upstream request; a missing or malformed input is a RequestError."""
        values = dict(params)
        scope = Scope(bindings, values, prefixes)
        plan = _Placed.resolve(self.params, scope, values)
        target = self._render_path(scope)
        body, content_type = self._body(plan.body, scope)
        if content_type and not any(name.lower() == "content-type" for name, _ in plan.headers):
            plan.headers.append(("Content-Type", content_type))
        if self.auth is not None:
            self.auth.apply(scope, plan.headers, plan.query)
        if plan.query:
            target += "?" + urlencode(plan.query)
        return Prepared(self.method, target, tuple(plan.headers), body)

    def _render_path(self, scope: Scope) -> str:
        try:
            return self.path.render(scope, strict=True, encode=_encode_segment)
        except MissingValue as exc:
            raise RequestError(f"missing required path parameter '{exc.name}'", parameter=exc.name) from None
        except _EmptySegment as exc:
            raise RequestError(f"path parameter must not be empty ({self.resource.path})") from exc

    def _body(self, values: dict[str, Any], scope: Scope) -> tuple[bytes | None, str | None]:
        if self.body_plan is not None:
            return self.body_plan.render(scope)
        if not values:
            return None, None
        if "body" in values:
            payload = values["body"]
        elif len(values) == 1 and sum(p.in_ == "body" for p in self.params) == 1:
            payload = next(iter(values.values()))
        else:
            payload = values
        return json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode(), "application/json"


@dataclass(slots=True)
class _Placed:
    """Parameter values sorted by where they go in the request."""

    query: list[tuple[str, str]]
    headers: list[tuple[str, str]]
    body: dict[str, Any]

    @classmethod
    def resolve(cls, params: tuple[OperationParameter, ...], scope: Scope, values: dict[str, Any]) -> _Placed:
        """Resolve each declared parameter in order, writing it back so later ones can use it."""
        placed = cls([], [], {})
        cookies: list[str] = []
        for param in params:
            value = param.value(scope)
            if value is MISSING or value is None:
                if param.required:
                    raise RequestError(f"missing required parameter '{param.name}' ({param.in_})", parameter=param.name)
                continue
            _check_type(param, value)
            values[param.name] = value
            if param.in_ == "query":
                placed.query.extend((param.name, to_text(v)) for v in (value if isinstance(value, list) else (value,)))
            elif param.in_ == "header":
                placed.headers.append((param.name, to_text(value)))
            elif param.in_ == "cookie":
                cookies.append(f"{param.name}={quote(to_text(value), safe='')}")
            elif param.in_ == "body":
                placed.body[param.name] = value
        if cookies:
            placed.headers.append(("Cookie", "; ".join(cookies)))
        return placed


class Forwarder:
    """A consumes namespace used as a `forward` target: its own parameters and auth, any path."""

    __slots__ = ("namespace", "params", "auth")

    def __init__(self, consumes: Consumes) -> None:
        self.namespace = consumes.namespace
        self.params = tuple(_compile_param(p) for p in consumes.input_parameters)
        self.auth = _compile_auth(consumes.authentication)

    def prepare(self, method: str, path: str, query: str, headers: list[tuple[str, str]], body: bytes | None,
                bindings: Mapping[str, str], prefixes: frozenset[str]) -> Prepared:
        values: dict[str, Any] = {}
        scope = Scope(bindings, values, prefixes)
        plan = _Placed.resolve(self.params, scope, values)
        plan.headers[:0] = headers
        if self.auth is not None:
            self.auth.apply(scope, plan.headers, plan.query)
        extra = urlencode(plan.query)
        joined = "&".join(part for part in (query, extra) if part)
        target = "/" + "/".join(_encode_segment(segment) for segment in path.split("/") if segment)
        return Prepared(method, target + ("?" + joined if joined else ""), tuple(plan.headers), body)


def _decoder(op: ConsumedOperation, limits: Limits) -> formats.Decoder:
    """The operation's format decoder, built now with the expansion limit it enforces per body."""
    try:
        return formats.decoder_for(op.output_raw_format, schema=op.output_schema, max_items=limits.decoded_items)
    except formats.FormatError as exc:
        raise CapabilityError.at(op.where, str(exc)) from None


class _EmptySegment(ValueError):
    pass


_UNRESERVED = re.compile(r"[A-Za-z0-9_~-][A-Za-z0-9._~-]*")


def _encode_segment(text: str) -> str:
    """Percent-encode a path value so it can never add, remove or climb a segment."""
    if _UNRESERVED.fullmatch(text):
        return text  # the common case: nothing to encode
    if not text:
        raise _EmptySegment()
    if text in (".", ".."):
        return text.replace(".", "%2E")
    return quote(text, safe="")


def _check_type(param: OperationParameter, value: Any) -> None:
    """Text that claims a numeric or boolean type must parse as one (REST gives text)."""
    if not isinstance(value, str) or param.type not in ("integer", "number", "boolean"):
        return
    if not _TYPE_CHECKS[param.type](value.strip()):
        article = "an" if param.type == "integer" else "a"
        raise RequestError(f"parameter '{param.name}' must be {article} {param.type}; got {value!r}",
                           parameter=param.name)


def _is_number(text: str) -> bool:
    try:
        float(text)
        return True
    except ValueError:
        return False


# Built once, not per parameter checked.
_TYPE_CHECKS: dict[str, Callable[[str], bool]] = {
    "integer": lambda v: bool(_INTEGER.match(v)),
    "number": _is_number,
    "boolean": lambda v: v in ("true", "false"),
}


def _compile_param(param: InputParameter) -> OperationParameter:
    template = None
    constant = None
    if isinstance(param.value, str) and ("{{" in param.value or "<<" in param.value):
        template = Template.compile(param.value)
    elif param.value is not None:
        constant = param.value
    required = param.required or param.in_ == "path"
    return OperationParameter(param.name, param.in_, template, constant, param.type, required, param.description)


# --- bodies -------------------------------------------------------------------------------------


class _Data:
    """Structured data whose string leaves are templates; a lone `{{name}}` keeps its type."""

    __slots__ = ("render",)

    def __init__(self, data: Any) -> None:
        self.render = _compile_data(data)


def _compile_data(data: Any) -> Callable[[Scope], Any]:
    if isinstance(data, str):
        template = Template.compile(data)
        if template.is_constant:
            return lambda scope: data
        if template.single_name is not None:
            name = template.single_name
            return lambda scope: None if (value := scope.get(name)) is MISSING else value
        return template.render
    if isinstance(data, dict):
        fields = [(str(k), _compile_data(v)) for k, v in data.items()]
        return lambda scope: {k: render(scope) for k, render in fields}
    if isinstance(data, list):
        items = [_compile_data(v) for v in data]
        return lambda scope: [render(scope) for render in items]
    return lambda scope: data


class _BodyPlan:
    """A declared `body`, compiled: rendered per call into bytes and a content type."""

    __slots__ = ("kind", "content_type", "template", "data", "parts")

    def __init__(self, kind: str, content_type: str, template: Template | None = None, data: _Data | None = None,
                 parts: list[tuple[str, Template, str | None, str | None]] | None = None) -> None:
        self.kind, self.content_type = kind, content_type
        self.template, self.data, self.parts = template, data, parts

    def render(self, scope: Scope) -> tuple[bytes, str]:
        if self.kind == "json":
            assert self.data is not None
            text = json.dumps(self.data.render(scope), separators=(",", ":"), ensure_ascii=False)
            return text.encode(), self.content_type
        if self.kind == "form":
            assert self.data is not None
            return urlencode({k: to_text(v) for k, v in self.data.render(scope).items()}).encode(), self.content_type
        if self.kind == "multipart":
            return _multipart(self.parts or [], scope)
        assert self.template is not None
        return self.template.render(scope).encode(), self.content_type


def _multipart(parts: list[tuple[str, Template, str | None, str | None]], scope: Scope) -> tuple[bytes, str]:
    boundary = "naftiko-" + secrets.token_hex(12)
    chunks: list[bytes] = []
    for name, value, filename, content_type in parts:
        disposition = f'form-data; name="{name}"' + (f'; filename="{filename}"' if filename else "")
        head = f"--{boundary}\r\nContent-Disposition: {disposition}\r\n"
        if content_type:
            head += f"Content-Type: {content_type}\r\n"
        chunks.append(head.encode() + b"\r\n" + value.render(scope).encode() + b"\r\n")
    chunks.append(f"--{boundary}--\r\n".encode())
    return b"".join(chunks), f"multipart/form-data; boundary={boundary}"


_TEXT_TYPES = {"text": "text/plain; charset=utf-8", "xml": "application/xml", "sparql": "application/sparql-query"}


def _compile_body(body: Any) -> _BodyPlan | None:
    """Every RequestBody form of the spec: a raw template, or {type, data}."""
    if body is None:
        return None
    if isinstance(body, str):
        return _BodyPlan("raw", "application/json", template=Template.compile(body))
    if not (isinstance(body, dict) and "type" in body):
        return _BodyPlan("json", "application/json", data=_Data(body))
    kind, data = body.get("type"), body.get("data")
    if kind == "formUrlEncoded":
        if isinstance(data, dict):
            return _BodyPlan("form", "application/x-www-form-urlencoded", data=_Data(data))
        return _BodyPlan("raw", "application/x-www-form-urlencoded", template=Template.compile(str(data or "")))
    if kind == "multipartForm":
        parts = [(str(p.get("name")), Template.compile(str(p.get("value", ""))), p.get("filename"),
                  p.get("contentType"))
                 for p in (data if isinstance(data, list) else ()) if isinstance(p, dict)]
        return _BodyPlan("multipart", "multipart/form-data", parts=parts)
    if kind in _TEXT_TYPES:
        return _BodyPlan("raw", _TEXT_TYPES[kind], template=Template.compile(str(data or "")))
    if isinstance(data, str):
        return _BodyPlan("raw", "application/json", template=Template.compile(data))
    return _BodyPlan("json", "application/json", data=_Data(data))


# --- authentication ---------------------------------------------------------------------------


class _Auth:
    """Client credentials, rendered per call so they may use bindings or call parameters."""

    __slots__ = ("kind", "templates", "placement", "key")

    def __init__(self, auth: Authentication) -> None:
        self.kind = auth.type
        self.placement = auth.placement or "header"
        self.key = auth.key
        raw = {"token": auth.token, "username": auth.username, "password": auth.password, "value": auth.value}
        self.templates = {k: Template.compile(v) for k, v in raw.items() if v is not None}

    def names(self) -> set[str]:
        return {name for t in self.templates.values() for name in t.names}

    def apply(self, scope: Scope, headers: list[tuple[str, str]], query: list[tuple[str, str]]) -> None:
        text = {k: t.render(scope) for k, t in self.templates.items()}
        if self.kind == "bearer":
            headers.append(("Authorization", f"Bearer {text['token']}"))
        elif self.kind == "basic":
            pair = f"{text['username']}:{text['password']}".encode()
            headers.append(("Authorization", "Basic " + base64.b64encode(pair).decode()))
        elif self.kind == "apikey" and self.key:
            if self.placement == "cookie":
                _add_cookie(headers, f"{self.key}={quote(text['value'], safe='')}")
            else:
                (query if self.placement == "query" else headers).append((self.key, text["value"]))


def _add_cookie(headers: list[tuple[str, str]], pair: str) -> None:
    """One Cookie header per request (RFC 6265), so a cookie key joins the parameters' cookies."""
    for index, (name, value) in enumerate(headers):
        if name.lower() == "cookie":
            headers[index] = (name, f"{value}; {pair}")
            return
    headers.append(("Cookie", pair))


def _compile_auth(auth: Authentication | None) -> _Auth | None:
    """Header/query credentials; digest and OAuth2 are handled by the namespace's client."""
    if auth is None or auth.type in ("digest", "oauth2"):
        return None
    return _Auth(auth)


# --- the registry -------------------------------------------------------------------------------


class Registry:
    """All consumed operations of all loaded capabilities, by `namespace.operation`."""

    def __init__(self, consumes: list[Consumes], limits: Limits | None = None) -> None:
        self.operations: dict[str, Operation] = {}
        self.namespaces: dict[str, Consumes] = {}
        problems: list[Problem] = []
        for entry in consumes:
            self.namespaces[entry.namespace] = entry
            for resource in entry.resources:
                for op in resource.operations:
                    try:
                        operation = Operation(entry, resource, op, limits)
                    except CapabilityError as exc:
                        problems.extend(exc.problems)
                        continue
                    except TemplateError as exc:  # the loader finds these first, with the value's position
                        problems.append(Problem(op.where, f"invalid template: {exc}"))
                        continue
                    if operation.key in self.operations:
                        first = self.operations[operation.key].spec.where
                        problems.append(Problem(op.where, f"operation '{op.name}' is already declared in"
                                                          f" namespace '{entry.namespace}' at {first}"))
                        continue
                    self.operations[operation.key] = operation
        if problems:
            raise CapabilityError(problems)

    def forwarder(self, namespace: str) -> Forwarder:
        consumes = self.namespaces.get(namespace)
        if consumes is None:
            known = ", ".join(sorted(self.namespaces)) or "none"
            raise UnknownOperation(f"forward target '{namespace}' is not a consumes namespace (known: {known})")
        return Forwarder(consumes)

    def get(self, key: str) -> Operation:
        operation = self.operations.get(key)
        if operation is None:
            known = ", ".join(sorted(self.operations)) or "none"
            raise UnknownOperation(f"no consumed operation '{key}'; known: {known}")
        return operation

    def __iter__(self) -> Iterator[Operation]:
        return iter(self.operations.values())

    def __len__(self) -> int:
        return len(self.operations)


__all__ = ["Registry", "Operation", "Prepared", "lookup"]
