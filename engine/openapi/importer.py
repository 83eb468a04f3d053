"""An OpenAPI document (Swagger 2.0, OpenAPI 3.0 or 3.1) turned into a Naftiko 1.0.0-alpha2 capability file.

`import_openapi(spec)` reads the document (`source`), then writes one capability: a `consumes`
block with every operation and parameter, a REST exposes block serving the same paths, an MCP
exposes block with one tool per operation, and the first security scheme as `binds` plus the
consumes `authentication`, naming environment variables (`API_KEY`, `BEARER_TOKEN`, `USERNAME`,
`PASSWORD`) and never a value. What cannot be carried over (a parameter whose name is not an
identifier, a form body) is left out and said in `Imported.notes`.
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass, field
from typing import Any

from ruamel.yaml import YAML

from ..errors import OpenApiError
from .source import ImportLimits, Refs, parse_document, read_source

METHODS = ("get", "put", "post", "delete", "patch", "head", "options")
TYPES = frozenset({"string", "number", "integer", "boolean", "array", "object"})
PLACEHOLDER_BASE_URI = "https://api.example.com"
_IDENTIFIER = re.compile(r"^[A-Za-z0-9_-]+$")
_IGNORED_HEADERS = frozenset({"accept", "content-type", "authorization"})  # OpenAPI says these are ignored
REST_PORT, MCP_PORT = 8080, 9090
MAX_NAME = 64
"""The longest operation and tool name written (before a `-2` that keeps it unique): MCP allows 128 characters
and clients show far fewer."""


@dataclass
class Imported:
    """The capability written from one document, and what could not be carried over."""

    capability: dict[str, Any]
    namespace: str
    source: str
    notes: list[str] = field(default_factory=list)

    def yaml(self) -> str:
        """The capability file's text: a comment naming the source, then block YAML (ruamel.yaml)."""
        writer = YAML()
        writer.default_flow_style = False
        writer.width = 4096
        writer.indent(mapping=2, sequence=4, offset=2)
        out = io.StringIO()
        out.write(f"# Imported by `naftiko import openapi` from {self.source}\n")
        writer.dump(self.capability, out)
        return out.getvalue()


def import_openapi(spec: str, namespace: str | None = None, limits: ImportLimits | None = None) -> Imported:
    """Read the document at `spec` (a file or an http(s) URL) and write its capability."""
    limits = limits or ImportLimits()
    text, name = read_source(spec, limits)
    return convert(parse_document(text, name, limits), name, namespace, limits)


def convert(
    document: dict[str, Any], source: str, namespace: str | None = None, limits: ImportLimits | None = None
) -> Imported:
    """The capability for one parsed OpenAPI document."""
    limits = limits or ImportLimits()
    return _Converter(document, source, namespace, limits).run()


def kebab(text: str, split_words: bool = True) -> str:
    """`listPets`, `List Pets`, `list_pets` → `list-pets`: the identifiers a capability file uses.
    Titles keep their words whole (`ShopFront Orders` → `shopfront-orders`): `split_words=False`."""
    if split_words:
        text = re.sub(r"([a-z0-9])([A-Z])", r"\1-\2", text)
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


class _Converter:
    """One document's walk: operations first, then the blocks that serve them."""

    def __init__(self, document: dict[str, Any], source: str, namespace: str | None, limits: ImportLimits) -> None:
        self.doc = document
        self.source = source
        self.refs = Refs(document, limits.ref_depth)
        self.swagger2 = str(document.get("swagger", "")).startswith("2")
        info = document.get("info") if isinstance(document.get("info"), dict) else {}
        self.info: dict[str, Any] = info or {}
        self.namespace = (
            kebab(namespace) if namespace else kebab(str(self.info.get("title") or ""), split_words=False) or "api"
        )
        if namespace and self.namespace != namespace:
            raise OpenApiError(
                f"--namespace {namespace!r}: a namespace is letters, digits and '-' (e.g. {kebab(namespace)!r})"
            )
        self.notes: list[str] = []
        self.names: set[str] = set()

    def run(self) -> Imported:
        resources, rest, tools = self._operations()
        if not resources:
            raise OpenApiError(f"{self.source}: the document declares no operation to import")
        consumes: dict[str, Any] = {"type": "http", "namespace": self.namespace, "baseUri": self._base_uri()}
        if self.info.get("description") or self.info.get("title"):
            consumes["description"] = _text(self.info.get("description") or self.info.get("title"))
        capability: dict[str, Any] = {"naftiko": "1.0.0-alpha2", "info": self._info()}
        auth, keys = self._authentication()
        if auth is not None:
            capability["binds"] = [{"namespace": "env", "keys": {key: key for key in keys}}]
            consumes["authentication"] = auth
        consumes["resources"] = resources
        capability["capability"] = {
            "consumes": [consumes],
            "exposes": [
                {"type": "rest", "namespace": f"{self.namespace}-rest", "port": REST_PORT, "resources": rest},
                {
                    "type": "mcp",
                    "namespace": f"{self.namespace}-mcp",
                    "port": MCP_PORT,
                    "transport": "http",
                    "description": f"MCP tools for {self.info.get('title') or self.namespace}, imported from OpenAPI.",
                    "tools": tools,
                },
            ],
        }
        return Imported(capability, self.namespace, self.source, self.notes)

    def _info(self) -> dict[str, Any]:
        info: dict[str, Any] = {"label": _text(self.info.get("title") or self.namespace)}
        if self.info.get("description"):
            info["description"] = _text(self.info["description"])
        return info

    # --- where the API lives

    def _base_uri(self) -> str:
        if self.swagger2:
            host = self.doc.get("host")
            base_path = str(self.doc.get("basePath") or "")
            schemes = self.doc.get("schemes") or ["https"]
            scheme = "https" if "https" in schemes else str(schemes[0])
            uri = f"{scheme}://{host}{base_path}" if host else PLACEHOLDER_BASE_URI + base_path
        else:
            servers = self.doc.get("servers")
            server = servers[0] if isinstance(servers, list) and servers and isinstance(servers[0], dict) else {}
            uri = str(server.get("url") or "")
            for name, variable in (server.get("variables") or {}).items():
                if isinstance(variable, dict) and "default" in variable:
                    uri = uri.replace("{" + str(name) + "}", str(variable["default"]))
            if not uri.startswith(("http://", "https://")):
                uri = PLACEHOLDER_BASE_URI + (uri if uri.startswith("/") else "")
        if "{" in uri:
            self.notes.append(f"the server URL {uri!r} keeps a variable without a default: set --base-uri")
        return uri.rstrip("/") or PLACEHOLDER_BASE_URI

    # --- operations

    def _operations(self) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[dict[str, Any]]]:
        resources: list[dict[str, Any]] = []
        rest: list[dict[str, Any]] = []
        tools: list[dict[str, Any]] = []
        resource_names: set[str] = set()
        rest_paths: set[str] = set()
        paths = self.doc.get("paths") if isinstance(self.doc.get("paths"), dict) else {}
        for path, raw_item in (paths or {}).items():
            item, _ = self.refs.follow(raw_item)
            if not isinstance(item, dict) or not str(path).startswith("/"):
                continue
            consumed_ops: list[dict[str, Any]] = []
            rest_ops: list[dict[str, Any]] = []
            for method in METHODS:
                operation, _ = self.refs.follow(item.get(method))
                if not isinstance(operation, dict) or not operation and method not in item:
                    continue
                built = self._operation(str(path), method, item, operation)
                if built is None:
                    continue
                consumed, exposed, tool = built
                consumed_ops.append(consumed)
                rest_ops.append(exposed)
                tools.append(tool)
            if not consumed_ops:
                continue
            name = _unique(kebab(path) or "root", resource_names)
            resources.append({"name": name, "path": _template_path(str(path)), "operations": consumed_ops})
            exposed_path = str(path).rstrip("/") or "/"
            exposed_path = exposed_path if exposed_path not in rest_paths else str(path)  # `/a` and `/a/` both
            rest_paths.add(exposed_path)
            rest.append({"path": exposed_path, "name": name, "operations": rest_ops})
        return resources, rest, tools

    def _operation(
        self, path: str, method: str, item: dict[str, Any], operation: dict[str, Any]
    ) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]] | None:
        where = f"{method.upper()} {path}"
        params = self._parameters(where, item, operation)
        if params is None:
            return None
        params += self._body(where, operation, {p["name"] for p in params})
        op_id = operation.get("operationId")
        base = kebab(str(op_id)) if op_id else ""
        name = _unique((base or kebab(f"{method}-{path}") or method)[:MAX_NAME].strip("-"), self.names)
        description = _text(operation.get("summary") or operation.get("description") or where)
        consumed: dict[str, Any] = {"name": name, "method": method.upper(), "description": description}
        output = self._output(operation)
        if output is not None:
            consumed["outputRawFormat"] = "json"
            consumed["outputParameters"] = [{"name": "result", "type": output, "value": "$."}]
        if params:
            consumed["inputParameters"] = params
        call = f"{self.namespace}.{name}"
        exposed: dict[str, Any] = {"method": method.upper(), "name": name, "description": description}
        tool: dict[str, Any] = {"name": name, "description": _tool_description(operation, where)}
        tool["hints"] = _hints(method)
        if params:
            exposed["inputParameters"] = [_exposed_input(p) for p in params]
            tool["inputParameters"] = [_tool_input(p) for p in params]
        exposed["call"] = tool["call"] = call
        if params:
            exposed["with"] = {p["name"]: f"rest.{p['name']}" for p in params}
            tool["with"] = {p["name"]: f"tools.{p['name']}" for p in params}
        if output is not None:
            exposed["outputParameters"] = [{"type": output, "mapping": "$."}]
            tool["outputParameters"] = [{"type": output, "mapping": "$."}]
        return consumed, exposed, tool

    def _parameters(self, where: str, item: dict[str, Any], operation: dict[str, Any]) -> list[dict[str, Any]] | None:
        """Path-level parameters overridden by the operation's, by (name, in); None if the path cannot be kept."""
        merged: dict[tuple[str, str], dict[str, Any]] = {}
        for raw in [*(item.get("parameters") or []), *(operation.get("parameters") or [])]:
            param, _ = self.refs.follow(raw)
            if isinstance(param, dict) and param.get("name") and param.get("in"):
                merged[(str(param["name"]), str(param["in"]))] = param
        params: list[dict[str, Any]] = []
        for (name, where_in), param in merged.items():
            if where_in in ("body", "formData"):
                continue  # Swagger 2.0 bodies, read by _body
            if where_in == "header" and name.lower() in _IGNORED_HEADERS:
                continue
            if where_in not in ("path", "query", "header", "cookie"):
                continue
            if not _IDENTIFIER.match(name):
                if where_in == "path":
                    self.notes.append(f"{where}: path parameter {name!r} is not an identifier; operation left out")
                    return None
                self.notes.append(f"{where}: {where_in} parameter {name!r} is not an identifier; left out")
                continue
            schema = param if self.swagger2 else param.get("schema")
            entry: dict[str, Any] = {"name": name, "in": where_in, "type": self._type(schema, "string")}
            if param.get("description"):
                entry["description"] = _text(param["description"])
            if where_in == "path" or param.get("required"):
                entry["required"] = True
            params.append(entry)
        return params

    def _body(self, where: str, operation: dict[str, Any], taken: set[str]) -> list[dict[str, Any]]:
        """A JSON body: one `in: body` parameter per property of an object, else one `body` parameter."""
        schema, required, description, found = self._body_schema(where, operation)
        if not found:
            return []
        schema, _ = self.refs.follow(schema)
        properties = self._properties(schema)
        names = list(properties)
        per_property = (
            len(names) >= 2
            and "body" not in names
            and not taken.intersection(names)
            and all(_IDENTIFIER.match(n) for n in names)
        )
        if not per_property:
            entry: dict[str, Any] = {"name": "body", "in": "body", "type": self._type(schema, "object")}
            entry["description"] = description or "Request body (JSON)."
            if required:
                entry["required"] = True
            return [entry]
        needed = set(schema.get("required") or []) if isinstance(schema, dict) and required else set()
        params = []
        for name, raw in properties.items():
            prop, _ = self.refs.follow(raw)
            entry = {"name": name, "in": "body", "type": self._type(prop, "string")}
            if isinstance(prop, dict) and prop.get("description"):
                entry["description"] = _text(prop["description"])
            if name in needed:
                entry["required"] = True
            params.append(entry)
        return params

    def _body_schema(self, where: str, operation: dict[str, Any]) -> tuple[Any, bool, str, bool]:
        if self.swagger2:
            for raw in operation.get("parameters") or []:
                param, _ = self.refs.follow(raw)
                if isinstance(param, dict) and param.get("in") == "body":
                    return param.get("schema"), bool(param.get("required")), _text(param.get("description") or ""), True
                if isinstance(param, dict) and param.get("in") == "formData":
                    self.notes.append(f"{where}: form parameters are not imported (the runtime sends JSON)")
                    return None, False, "", False
            return None, False, "", False
        body, _ = self.refs.follow(operation.get("requestBody"))
        if not isinstance(body, dict) or not isinstance(body.get("content"), dict):
            return None, False, "", False
        media = _json_media(body["content"])
        if media is None:
            self.notes.append(f"{where}: a {', '.join(body['content'])} body is not imported (the runtime sends JSON)")
            return None, False, "", False
        content, _ = self.refs.follow(body["content"][media])
        schema = content.get("schema") if isinstance(content, dict) else None
        return schema, bool(body.get("required")), _text(body.get("description") or ""), True

    def _properties(self, schema: Any, seen: tuple[str, ...] = ()) -> dict[str, Any]:
        """An object schema's properties, those of its `allOf` members included."""
        if not isinstance(schema, dict):
            return {}
        properties = dict(schema.get("properties") or {}) if isinstance(schema.get("properties"), dict) else {}
        for member in schema.get("allOf") or []:
            resolved, passed = self.refs.follow(member, seen)
            if len(passed) < self.refs.depth:
                properties.update(self._properties(resolved, passed))
        return properties

    def _output(self, operation: dict[str, Any]) -> str | None:
        """The type of the first 2xx JSON answer's schema; None for passthrough."""
        responses = operation.get("responses") if isinstance(operation.get("responses"), dict) else {}
        for code, raw in sorted((responses or {}).items(), key=lambda pair: str(pair[0])):
            if not str(code).startswith("2"):
                continue
            response, _ = self.refs.follow(raw)
            if not isinstance(response, dict):
                continue
            if self.swagger2:
                produces = operation.get("produces") or self.doc.get("produces") or ["application/json"]
                schema = response.get("schema")
                if schema is not None and any("json" in str(p) for p in produces):
                    return self._type(schema, "object")
                continue
            content = response.get("content")
            media = _json_media(content) if isinstance(content, dict) else None
            if media is not None:
                entry, _ = self.refs.follow(content[media])  # type: ignore[index]
                if isinstance(entry, dict) and entry.get("schema") is not None:
                    return self._type(entry["schema"], "object")
        return None

    def _type(self, schema: Any, default: str) -> str:
        schema, _ = self.refs.follow(schema)
        if not isinstance(schema, dict):
            return default
        kind = schema.get("type")
        if isinstance(kind, list):  # 3.1: ["string", "null"]
            kind = next((k for k in kind if k != "null"), None)
        if kind == "file":
            return "string"
        if kind in TYPES:
            return str(kind)
        if "properties" in schema or "allOf" in schema:
            return "object"
        if "items" in schema:
            return "array"
        return default

    # --- credentials

    def _authentication(self) -> tuple[dict[str, Any] | None, list[str]]:
        """The first security scheme the document requires (else the first declared), as env-bound auth."""
        if self.swagger2:
            schemes = self.doc.get("securityDefinitions") or {}
        else:
            components = self.doc.get("components") if isinstance(self.doc.get("components"), dict) else {}
            schemes = (components or {}).get("securitySchemes") or {}
        if not isinstance(schemes, dict) or not schemes:
            return None, []
        order = [n for req in self.doc.get("security") or [] if isinstance(req, dict) for n in req]
        for name in [*order, *schemes]:
            scheme, _ = self.refs.follow(schemes.get(name))
            if isinstance(scheme, dict):
                found = _auth_for(scheme)
                if found is not None:
                    return found
        self.notes.append(
            "no security scheme could be carried over (only header/query API keys, basic, bearer, oauth2)"
        )
        return None, []


def _auth_for(scheme: dict[str, Any]) -> tuple[dict[str, Any], list[str]] | None:
    kind = str(scheme.get("type", "")).lower()
    http_scheme = str(scheme.get("scheme", "")).lower()
    if kind == "basic" or (kind == "http" and http_scheme == "basic"):
        auth = {"type": "basic", "username": "{{env.USERNAME}}", "password": "{{env.PASSWORD}}"}
        return auth, ["USERNAME", "PASSWORD"]
    if kind == "http" and http_scheme == "bearer" or kind in ("oauth2", "openidconnect"):
        return {"type": "bearer", "token": "{{env.BEARER_TOKEN}}"}, ["BEARER_TOKEN"]
    if kind == "apikey" and scheme.get("in") in ("header", "query") and scheme.get("name"):
        auth = {"type": "apikey", "key": str(scheme["name"]), "value": "{{env.API_KEY}}", "placement": scheme["in"]}
        return auth, ["API_KEY"]
    return None


def _json_media(content: dict[str, Any]) -> str | None:
    for media in content:
        if str(media).split(";")[0].strip() in ("application/json", "*/*"):
            return str(media)
    return next((str(m) for m in content if "json" in str(m)), None)


def _template_path(path: str) -> str:
    return re.sub(r"\{([^{}]+)\}", r"{{\1}}", path)


def _unique(name: str, taken: set[str]) -> str:
    candidate, n = name, 2
    while candidate in taken:
        candidate, n = f"{name}-{n}", n + 1
    taken.add(candidate)
    return candidate


def _text(value: Any) -> str:
    return " ".join(str(value).split())


def _tool_description(operation: dict[str, Any], where: str) -> str:
    summary, description = operation.get("summary"), operation.get("description")
    if summary and description and _text(summary) != _text(description):
        return f"{_text(summary)}. {_text(description)}"
    return _text(summary or description or where)


def _hints(method: str) -> dict[str, bool]:
    read_only = method in ("get", "head", "options")
    return {"readOnly": read_only, "destructive": method == "delete", "idempotent": method not in ("post", "patch")}


def _exposed_input(param: dict[str, Any]) -> dict[str, Any]:
    entry = {"name": param["name"], "in": param["in"], "type": param["type"]}
    entry["description"] = param.get("description") or f"The {param['name']} {param['in']} parameter."
    return entry


def _tool_input(param: dict[str, Any]) -> dict[str, Any]:
    entry: dict[str, Any] = {"name": param["name"], "type": param["type"]}
    entry["description"] = param.get("description") or f"The {param['name']} {param['in']} parameter."
    entry["required"] = bool(param.get("required"))
    return entry
