"""OpenAPI 3.1 for one REST exposes block, built from the spec model once, when the block is loaded.

What a caller can send comes from the same places the REST adapter reads at run time: path
variables of the declared path, declared `inputParameters` (query, header, cookie, path, body),
and the consumed operation's own inputs a caller can reach (through `with: {x: rest.y}` or by
name), typed as the consumed file types them. What a call answers is `answer_shape` (the mapped
result's JSON Schema, as for MCP `outputSchema`); a passthrough answer is an open schema. Every
operation lists the JSON error bodies the adapter answers with, and the block's authentication
becomes the document's security scheme. Nothing bound from `binds` (a secret, a constant) is ever
written into the document.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..calls.shapes import answer_shape
from ..spec.model import (
    GREEDY_VARIABLE,
    PATH_VARIABLE,
    Authentication,
    Capability,
    ExposedOperation,
    ExposedResource,
    Forward,
    InputParameter,
    RestExposes,
    path_segments,
)

if TYPE_CHECKING:
    from ..calls.invocation import ExposedCall
    from ..runtime import Runtime

OPENAPI_VERSION = "3.1.0"
_FORWARDED = ("get", "post", "put", "patch", "delete")
_BODY_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
_PARAMETER_PLACES = frozenset({"query", "header", "cookie", "path"})
_PLAIN_KEY = re.compile(r"[A-Za-z_][\w-]*")
_JSON_TYPES = frozenset({"string", "integer", "number", "boolean", "object", "array", "null"})
_ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["type", "message"],
            "properties": {
                "type": {"type": "string", "description": "what went wrong, e.g. bad_request, upstream_timeout"},
                "message": {"type": "string"},
            },
            "additionalProperties": True,
        }
    },
}
_ERRORS = {
    "400": ("BadRequest", "The request is missing a required value or has one that cannot be used."),
    "401": ("Unauthorized", "Credentials are missing or wrong (a WWW-Authenticate challenge says which)."),
    "403": ("Forbidden", "The access token lacks a required scope."),
    "413": ("PayloadTooLarge", "The request body is larger than the request-body limit."),
    "502": ("BadGateway", "The upstream could not be reached or answered something unusable."),
    "504": ("GatewayTimeout", "The upstream did not answer within the timeout."),
}


def export_openapi(runtime: Runtime, exposes: RestExposes, server_url: str | None = None) -> dict[str, Any]:
    """The OpenAPI 3.1 document of `exposes`; `server_url` defaults to the block's own address and port."""
    capability = _capability_of(runtime, exposes)
    info: dict[str, Any] = {"title": exposes.namespace, "version": "1.0.0"}
    if capability is not None and capability.info is not None:
        info["title"] = capability.info.label or exposes.namespace
        if capability.info.description:
            info["description"] = capability.info.description
    url = server_url if server_url is not None else f"http://{_host(exposes.address)}:{exposes.port}"
    document: dict[str, Any] = {
        "openapi": OPENAPI_VERSION,
        "info": info,
        "servers": [{"url": url}],
        "paths": {},
        "components": {"schemas": {"Error": _ERROR_SCHEMA}, "responses": {}},
    }
    builder = _Builder(runtime, exposes, document)
    for resource in exposes.resources:
        builder.add_resource(resource)
    if builder.tags:
        document["tags"] = builder.tags
    used = builder.error_codes
    document["components"]["responses"] = {_ERRORS[code][0]: _error_response(_ERRORS[code][1]) for code in sorted(used)}
    if exposes.authentication is not None:
        name, scheme, scopes = _security(exposes.authentication)
        document["components"]["securitySchemes"] = {name: scheme}
        document["security"] = [{name: scopes}]
    return document


def rest_blocks(capabilities: list[Capability]) -> list[RestExposes]:
    """Every REST exposes block of these capabilities, in file order."""
    return [e for c in capabilities for e in c.exposes if isinstance(e, RestExposes)]


def _capability_of(runtime: Runtime, exposes: RestExposes) -> Capability | None:
    return next((c for c in runtime.capabilities if any(e is exposes for e in c.exposes)), None)


def _host(address: str | None) -> str:
    if address in (None, "", "0.0.0.0", "::"):
        return "localhost"
    return f"[{address}]" if ":" in str(address) else str(address)


@dataclass(slots=True)
class _Builder:
    """Fills `document["paths"]` one resource at a time, keeping operation ids unique in declaration order."""

    runtime: Runtime
    exposes: RestExposes
    document: dict[str, Any]
    tags: list[dict[str, Any]] = field(default_factory=list)
    operation_ids: set[str] = field(default_factory=set)
    error_codes: set[str] = field(default_factory=set)

    def add_resource(self, resource: ExposedResource) -> None:
        if not resource.operations and resource.forward is None:
            return
        path, variables = _openapi_path(resource.path)
        tag = resource.name or resource.label or path
        entry: dict[str, Any] = {"name": tag}
        if resource.description:
            entry["description"] = resource.description
        self.tags.append(entry)
        item = self.document["paths"].setdefault(path, {})
        for operation in resource.operations:
            method = operation.method.lower()
            if method in item:
                continue  # the router keeps the first of two equal routes; so does the document
            item[method] = self._operation(resource, operation, path, variables, tag)
        if resource.forward is not None:
            for method in _FORWARDED:
                if method not in item:
                    item[method] = self._forwarded(resource.forward, method, path, variables, tag)

    def _forwarded(self, forward: Forward, method: str, path: str, variables: list[str], tag: str) -> dict[str, Any]:
        """A forward route's method: the rest of the path, the query and the body go on; the answer passes back."""
        parameters = [
            {
                "name": name,
                "in": "path",
                "required": True,
                "schema": {"type": "string"},
                **({"description": "The rest of the path (it may hold `/`)."} if name == GREEDY_VARIABLE else {}),
            }
            for name in variables
        ]
        result: dict[str, Any] = {
            "operationId": self._unique(f"forward_{method}_{_slug(path)}"),
            "tags": [tag],
            "summary": f"Forwarded to {forward.target_namespace}",
            "description": (
                f"The rest of the path, the query and the body go to `{forward.target_namespace}`, with its own "
                "credentials; only its trusted headers pass. Its answer passes through."
            ),
            "parameters": parameters,
            "responses": {"2XX": {"description": "The target's answer, passed through.", "content": {"*/*": {}}}},
        }
        if not parameters:
            del result["parameters"]
        codes = ["502", "504"]
        if method.upper() in _BODY_METHODS:
            result["requestBody"] = {"required": False, "content": {"*/*": {}}}
            codes.append("413")
        self._errors(result["responses"], codes)
        return result

    def _operation(
        self, resource: ExposedResource, operation: ExposedOperation, path: str, variables: list[str], tag: str
    ) -> dict[str, Any]:
        call = self.runtime.exposed_call(operation.invocation, operation.where)
        inputs = _Inputs(variables)
        for param in resource.input_parameters + operation.input_parameters:
            inputs.declared(param)
        inputs.consumed(call)
        result: dict[str, Any] = {"operationId": self._operation_id(operation, path), "tags": [tag]}
        if operation.label:
            result["summary"] = operation.label
        description = operation.description or (call.function.description if call.function is not None else None)
        if description:  # a `ref` inherits its function's description, as MCP tools do
            result["description"] = description
            result.setdefault("summary", description.split(". ")[0][:120])
        result["parameters"] = inputs.parameters()
        body = inputs.request_body()
        if body is not None:
            result["requestBody"] = body
        result["responses"] = self._responses(call, operation, body is not None)
        if not result["parameters"]:
            del result["parameters"]
        return result

    def _operation_id(self, operation: ExposedOperation, path: str) -> str:
        return self._unique(operation.name or f"{operation.method.lower()}_{_slug(path)}")

    def _unique(self, base: str) -> str:
        """`base`, or `base_2`, `base_3`...: operation ids unique in declaration order, so stable across exports."""
        candidate, n = base, 2
        while candidate in self.operation_ids:
            candidate, n = f"{base}_{n}", n + 1
        self.operation_ids.add(candidate)
        return candidate

    def _responses(self, call: ExposedCall, operation: ExposedOperation, has_body: bool) -> dict[str, Any]:
        success: dict[str, Any] = {"description": "The upstream's success status, passed through, with the answer."}
        content = _answer_content(call, operation)
        if content:
            success["content"] = content
        responses: dict[str, Any] = {"2XX": success}
        codes = ["400", "502", "504"]
        if has_body:
            codes.append("413")
        self._errors(responses, codes)
        return responses

    def _errors(self, responses: dict[str, Any], codes: list[str]) -> None:
        """The JSON error answers an operation may get, plus the block's 401/403, as references."""
        auth = self.exposes.authentication
        if auth is not None:
            codes = [*codes, "401", *(["403"] if auth.type == "oauth2" else [])]
        for code in sorted(codes):
            self.error_codes.add(code)
            responses[code] = {"$ref": f"#/components/responses/{_ERRORS[code][0]}"}


class _Inputs:
    """The parameters and body fields of one operation, each documented once (`-` and `_` are one name)."""

    def __init__(self, variables: list[str]) -> None:
        self.params: dict[tuple[str, str], dict[str, Any]] = {}
        self.body_fields: dict[tuple[str, ...], tuple[dict[str, Any], bool]] = {}  # a path into the body
        self.whole_body: tuple[dict[str, Any], bool] | None = None
        self.names: set[str] = set()
        for name in variables:
            self._add("path", name, {"type": "string"}, None, True)

    def declared(self, param: InputParameter) -> None:
        """A declared exposed input; one with a constant `value` is not the caller's to send."""
        value = param.value
        if value is not None and not (isinstance(value, str) and value.startswith("$")):
            return
        schema = _schema(param)
        if param.in_ == "body":
            self._body(_body_path(param), schema, param.required, param.description)
        elif param.in_ in _PARAMETER_PLACES:
            self._add(param.in_, param.name, schema, param.description, param.required or param.in_ == "path")

    def consumed(self, call: ExposedCall) -> None:
        """What the consumed operation takes from the caller: through a `with` reference or by its own name.

        A `ref` to an aggregate function takes the function's declared inputs, then what its own call takes."""
        if call.delegate is not None:
            if call.function is not None:
                for tool_param in call.function.input_parameters:
                    schema = {"type": tool_param.type if tool_param.type in _JSON_TYPES else "string"}
                    self._add("query", tool_param.name, schema, tool_param.description, tool_param.required)
            self.consumed(call.delegate)
            return
        operation = call.operation
        if operation is None:
            return
        sources = dict(call.rules.refs)
        bound = {key for key, _ in call.rules.templates} | {key for key, _ in call.rules.literals}
        for param in operation.resource.input_parameters + operation.spec.input_parameters:
            if param.value is not None or param.name in bound:
                continue  # a constant or a template over the binds: nothing the caller sends
            name = sources.get(param.name, param.name)
            if _norm(name) in self.names:
                continue
            schema = _schema(param)
            if param.in_ == "body" or name == "body":
                self._body((name,), schema, param.required, param.description)
            elif param.in_ in ("query", "path", "header", "cookie"):
                # the REST adapter hands every query variable to the call, so an undeclared input arrives there
                self._add("query", name, schema, param.description, param.required)

    def _add(self, where: str, name: str, schema: dict[str, Any], description: str | None, required: bool) -> None:
        key = (where, _norm(name))
        if where == "path" and key in self.params:  # a declared path input types the path variable
            entry = self.params[key]
            entry["schema"] = schema
            if description:
                entry["description"] = description
            return
        if _norm(name) in self.names:
            return
        self.names.add(_norm(name))
        entry = {"name": name, "in": where, "required": required, "schema": schema}
        if description:
            entry["description"] = description
        self.params[key] = entry

    def _body(self, path: tuple[str, ...], schema: dict[str, Any], required: bool, description: str | None) -> None:
        """A value read from the body: `body` itself is all of it, `$.user.id` a nested field, `()` unknown."""
        if description:
            schema = {**schema, "description": description}
        if path:
            self.names.add(_norm(path[0]))
        if path == ("body",):
            self.whole_body = (schema, required)
        elif not path:
            self.whole_body = self.whole_body or ({"type": "object"}, required)
        else:
            self.body_fields[path] = (schema, required)

    def parameters(self) -> list[dict[str, Any]]:
        return list(self.params.values())

    def request_body(self) -> dict[str, Any] | None:
        if self.whole_body is None and not self.body_fields:
            return None
        if self.whole_body is not None and not self.body_fields:
            schema, required = self.whole_body
        else:
            schema = {"type": "object", "properties": {}}
            for path, (field_schema, needed) in self.body_fields.items():
                _place(schema, path, field_schema, needed)
            required = "required" in schema
        return {"required": required, "content": {"application/json": {"schema": schema}}}


def _body_path(param: InputParameter) -> tuple[str, ...]:
    """Where a body input is read: its own name, or a plain `$.a.b` JSONPath; `()` for any other JSONPath."""
    value = param.value
    if not isinstance(value, str):
        return (param.name,)
    parts = value[2:].split(".") if value.startswith("$.") else []
    return tuple(parts) if parts and all(_PLAIN_KEY.fullmatch(p) for p in parts) else ()


def _place(schema: dict[str, Any], path: tuple[str, ...], leaf: dict[str, Any], required: bool) -> None:
    """Put `leaf` at `path` inside an object schema, creating the objects on the way."""
    node = schema
    for index, key in enumerate(path):
        if required and key not in node.get("required", []):
            node.setdefault("required", []).append(key)
        if index == len(path) - 1:
            node["properties"][key] = leaf
        else:
            node = node["properties"].setdefault(key, {"type": "object", "properties": {}})


def _answer_content(call: ExposedCall, operation: ExposedOperation) -> dict[str, Any]:
    """The success body: the mapped answer's JSON Schema, or an open schema where the upstream's body passes."""
    shape = answer_shape(call, operation.invocation)
    if shape is not None:
        return {"application/json": {"schema": shape.schema()}}
    consumed = call.operation
    if consumed is not None and consumed.output_format == "binary":
        media = consumed.spec.output_media_type or "application/octet-stream"
        return {media: {"schema": {"type": "string", "contentMediaType": media}}}
    if consumed is None or consumed.output_format in (None, "json"):
        return {"application/json": {"schema": {}}}
    return {"*/*": {"schema": {}}}


def _openapi_path(path: str) -> tuple[str, list[str]]:
    """`/a/{{id}}/b` → (`/a/{id}/b`, [`id`]); empty segments dropped, as the router drops them."""
    segments: list[str] = []
    variables: list[str] = []
    for segment in path_segments(path):
        match = PATH_VARIABLE.match(segment) if "{" in segment else None
        if match is None:
            segments.append(segment)
        else:
            name = match.group(1)
            variables.append(name)
            segments.append("{" + name + "}")
    return "/" + "/".join(segments), variables


def _schema(param: InputParameter) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": param.type if param.type in _JSON_TYPES else "string"}
    if param.pattern and schema["type"] == "string":
        schema["pattern"] = param.pattern
    return schema


def _norm(name: str) -> str:
    return name.replace("-", "_")


def _slug(path: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "_", path).strip("_") or "root"


def _security(auth: Authentication) -> tuple[str, dict[str, Any], list[str]]:
    """The block's authentication as an OpenAPI security scheme, with the scopes a request needs."""
    if auth.type == "apikey":
        return "apiKey", {"type": "apiKey", "name": auth.key or "X-API-Key", "in": auth.placement or "header"}, []
    if auth.type in ("basic", "digest", "bearer"):
        return auth.type, {"type": "http", "scheme": auth.type}, []
    if auth.type == "oauth2" and auth.resource_server is not None:
        server = auth.resource_server
        scheme = {
            "type": "http",
            "scheme": "bearer",
            "bearerFormat": "JWT",
            "description": (
                f"An OAuth 2 access token (a JWT) issued by {server.authorization_server} for {server.resource}; "
                "RFC 9728 metadata at /.well-known/oauth-protected-resource."
            ),
        }
        return "oauth2", scheme, list(server.scopes)
    return auth.type, {"type": "http", "scheme": auth.type}, []


def _error_response(description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
    }
