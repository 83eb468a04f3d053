"""The operation registry: every consumed operation, compiled and addressable as `ns.op`.

Compiling does all the per-file work once (templates, the parameter plan here, the body in
`bodies`, the credentials in `credentials`); preparing a request is then a walk over small
tuples. One registry serves every adapter.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any
from collections.abc import Callable, Iterator, Mapping
from urllib.parse import quote, urlencode

from .. import formats
from ..errors import CapabilityError, Problem, RequestError, UnknownOperation
from ..limits import Limits
from ..spec.model import ConsumedOperation, ConsumedResource, Consumes, InputParameter
from ..templates import MISSING, MissingValue, Template, TemplateError, to_text
from ..upstream.request import Prepared
from .bodies import compile_body
from .credentials import compile_auth
from .params import Scope, lookup

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

    __slots__ = (
        "key",
        "namespace",
        "name",
        "method",
        "spec",
        "resource",
        "params",
        "path",
        "path_names",
        "body_plan",
        "auth",
        "output_format",
        "decoder",
        "max_binary",
        "max_buffered_binary",
    )

    def __init__(
        self, consumes: Consumes, resource: ConsumedResource, op: ConsumedOperation, limits: Limits | None = None
    ) -> None:
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
        self.body_plan = compile_body(op.body)
        self.auth = compile_auth(consumes.authentication)
        self.output_format = (op.output_raw_format or "json").lower()
        plain = self.output_format in ("json", "binary")  # binary: the bytes as they are (engine/calls/binary.py)
        self.decoder = None if plain else _decoder(op, limits or Limits())
        # a binary answer streamed past maxBinarySize fails; one read whole (MCP) is also bound by upstream-body
        buffered = (limits or Limits()).upstream_body
        self.max_binary = op.max_binary_size
        self.max_buffered_binary = min(op.max_binary_size or buffered, buffered)

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
        self.auth = compile_auth(consumes.authentication)

    def prepare(
        self,
        method: str,
        path: str,
        query: str,
        headers: list[tuple[str, str]],
        body: bytes | None,
        bindings: Mapping[str, str],
        prefixes: frozenset[str],
    ) -> Prepared:
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
        raise RequestError(
            f"parameter '{param.name}' must be {article} {param.type}; got {value!r}", parameter=param.name
        )


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
                        problems.append(
                            Problem(
                                op.where,
                                f"operation '{op.name}' is already declared in"
                                f" namespace '{entry.namespace}' at {first}",
                            )
                        )
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
