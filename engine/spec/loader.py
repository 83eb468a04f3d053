"""Read capability files into the spec model, checking them once.

Every problem names the file, line, column and key path (`capability.consumes[0].baseUri`)
and says what would be right. Unknown keys are warnings, as in the reference engine, so
files written for newer spec versions still load.
"""

from __future__ import annotations

import builtins  # the getters of _Map named str, int and bool hide these in its annotations
import os
import re
from dataclasses import dataclass, replace
from pathlib import Path
from urllib.parse import unquote
from typing import Any, TypeVar
from collections.abc import Callable, Iterable

from ruamel.yaml import YAML
from ruamel.yaml.composer import Composer, ComposerError
from ruamel.yaml.constructor import ConstructorError, RoundTripConstructor
from ruamel.yaml.error import MarkedYAMLError, YAMLError
from ruamel.yaml.events import AliasEvent, MappingStartEvent, SequenceStartEvent
from ruamel.yaml.nodes import SequenceNode
from ruamel.yaml.reader import ReaderError

from . import blockyaml
from . import model as spec
from ..errors import CapabilityError, Location, Problem
from ..jsonpath import JsonPathError, compile_path
from ..templates import Template, TemplateError

T = TypeVar("T")

HTTP_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS")
PARAM_LOCATIONS = ("query", "header", "path", "cookie", "body", "environment")
OUTPUT_TYPES = ("string", "number", "integer", "boolean", "object", "array")
AUTH_TYPES = ("basic", "digest", "bearer", "apikey", "oauth2")


class _Context:
    """Collects problems and warnings for one file while it is read."""

    def __init__(self, file: str) -> None:
        self.file = file
        self.problems: list[Problem] = []
        self.warnings: list[str] = []

    def problem(self, where: Location, message: str) -> None:
        self.problems.append(Problem(where, message))

    def warn(self, where: Location, message: str) -> None:
        self.warnings.append(str(Problem(where, message)))


class _Map:
    """A YAML mapping being read: typed getters that record problems instead of raising."""

    def __init__(self, ctx: _Context, data: dict[str, Any], path: str, where: Location) -> None:
        self.ctx, self.data, self.path, self.where = ctx, data, path, where

    def loc(self, key: str, *, value: bool = False) -> Location:
        """Where `key` (or, with `value`, its value) was written."""
        child = f"{self.path}.{key}" if self.path else key
        try:
            # a MarkedMap or ruamel's CommentedMap; a plain dict has no `lc` and falls back below
            marks = self.data.lc  # type: ignore[attr-defined]
            line, col = marks.value(key) if value else marks.key(key)
            return Location(self.ctx.file, line + 1, col + 1, child)
        except (KeyError, AttributeError, TypeError):
            return Location(self.ctx.file, self.where.line, self.where.column, child)

    def bad(self, key: str, message: str) -> None:
        self.ctx.problem(self.loc(key, value=True), message)

    def has(self, key: str) -> bool:
        return key in self.data

    def known(self, *keys: str) -> None:
        """Warn about keys this spec version does not define."""
        for key in self.data:
            if key not in keys:
                self.ctx.warn(self.loc(key), f"unknown key '{key}' is ignored")

    def str(self, key: str, *, required: bool = False, choices: Iterable[str] = (),
            default: str | None = None, hint: str = "") -> str | None:
        if key not in self.data or self.data[key] is None:
            if required:
                self._missing(key, hint or "a string")
            return default
        value = self.data[key]
        if isinstance(value, (dict, list)) or isinstance(value, bool):
            self.bad(key, f"'{key}' must be a string, got {_kind(value)}")
            return default
        text = str(value)
        options = tuple(choices)
        if options and text not in options:
            self.bad(key, f"'{key}' must be one of {', '.join(options)}; got '{text}'")
            return default
        return text

    def int(self, key: builtins.str, *, required: builtins.bool = False, low: int = 1, high: int = 65535) -> int | None:
        value = self.data.get(key)
        if value is None:
            if required:
                self._missing(key, f"an integer from {low} to {high}")
            return None
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            self.bad(key, f"'{key}' must be an integer from {low} to {high}; got {_shown(value)}")
            return None
        return value

    def bool(self, key: builtins.str, default: builtins.bool | None = None) -> bool | None:
        value = self.data.get(key)
        if value is None:
            return default
        if not isinstance(value, bool):
            self.bad(key, f"'{key}' must be true or false; got {_shown(value)}")
            return default
        return value

    def map(self, key: builtins.str, *, required: builtins.bool = False) -> _Map | None:
        value = self.data.get(key)
        if value is None:
            if required:
                self._missing(key, "a mapping")
            return None
        if not isinstance(value, dict):
            self.bad(key, f"'{key}' must be a mapping; got {_kind(value)}")
            return None
        return _Map(self.ctx, value, f"{self.path}.{key}" if self.path else key, self.loc(key))

    def items(self, key: builtins.str, build: Callable[[_Map], T | None], *,
              required: builtins.bool = False) -> tuple[T, ...]:
        """Build each mapping of a list with `build`, skipping entries that had problems."""
        value = self.data.get(key)
        if value is None:
            if required:
                self._missing(key, "a list")
            return ()
        if not isinstance(value, list):
            self.bad(key, f"'{key}' must be a list; got {_kind(value)}")
            return ()
        built: list[T] = []
        base = f"{self.path}.{key}" if self.path else key
        for index, item in enumerate(value):
            where = _item_loc(self.ctx.file, value, index, f"{base}[{index}]", self.loc(key))
            if not isinstance(item, dict):
                self.ctx.problem(where, f"each entry of '{key}' must be a mapping; got {_kind(item)}")
                continue
            result = build(_Map(self.ctx, item, where.path, where))
            if result is not None:
                built.append(result)
        return tuple(built)

    def plain(self, key: builtins.str, default: Any = None) -> Any:
        return _plain(self.data[key]) if key in self.data else default

    def _missing(self, key: builtins.str, what: builtins.str) -> None:
        self.ctx.problem(Location(self.ctx.file, self.where.line, self.where.column,
                                  f"{self.path}.{key}" if self.path else key),
                         f"missing required key '{key}' ({what})")


def _item_loc(file: str, seq: Any, index: int, path: str, fallback: Location) -> Location:
    try:
        line, col = seq.lc.item(index)
        return Location(file, line + 1, col + 1, path)
    except (KeyError, AttributeError, TypeError):
        return Location(file, fallback.line, fallback.column, path)


def file_location(location: str | None, file: str) -> str | None:
    """A `file://` location made absolute: relative paths are read next to the capability file."""
    if location is None or not location.startswith("file://"):
        return location
    raw = unquote(location[len("file://"):])
    if raw.startswith("/./"):
        raw = raw[1:]
    path = Path(raw)
    return "file://" + str(path if path.is_absolute() else (Path(file).parent / path).resolve())


def _kind(value: Any) -> str:
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, bool):
        return f"the boolean {str(value).lower()}"
    return f"{type(value).__name__} {_shown(value)}"


def _shown(value: Any, limit: int = 80) -> str:
    """`repr(value)`, cut short: a problem message quotes the value, not a whole 10 MB string."""
    text = repr(value)
    return text if len(text) <= limit else f"{text[:limit - 5]}...{text[-2:]}"


def _plain(value: Any) -> Any:
    """ruamel's commented containers → plain dicts and lists."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


# --- checks of values the runtime compiles later, so it never meets a broken one -----------------

_SECTION_TAG = re.compile(r"\{\{\s*[#^/]")


def _template_problem(text: str, *, path: bool = False) -> str | None:
    """What is wrong with `text` as a template, if anything (only sections can be wrong)."""
    if "{{" not in text or not _SECTION_TAG.search(text):
        return None
    try:
        Template.compile(text, single_braces=path)
    except TemplateError as exc:
        return f"invalid template: {exc}"
    return None


def _check_template(m: _Map, key: str, *, path: bool = False) -> None:
    value = m.data.get(key)
    if isinstance(value, str) and (problem := _template_problem(value, path=path)) is not None:
        m.bad(key, problem)


def _check_templates_in(ctx: _Context, value: Any, where: Location) -> None:
    """Every string inside `value` (a body, nested data) must be a valid template."""
    if isinstance(value, str):
        if (problem := _template_problem(value)) is not None:
            ctx.problem(where, problem)
    elif isinstance(value, dict):
        for key, item in value.items():
            _check_templates_in(ctx, item, _value_loc(ctx.file, value, key, where))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _check_templates_in(ctx, item, _item_loc(ctx.file, value, index, f"{where.path}[{index}]", where))


def _check_with(m: _Map, key: str = "with") -> None:
    """`with` values that are strings are templates (or caller references, which never fail)."""
    with_ = m.data.get(key)
    if isinstance(with_, dict):
        for name, value in with_.items():
            if isinstance(value, str) and (problem := _template_problem(value)) is not None:
                m.ctx.problem(_value_loc(m.ctx.file, with_, name, m.loc(key)), problem)


def _value_loc(file: str, mapping: Any, key: Any, parent: Location) -> Location:
    path = f"{parent.path}.{key}" if parent.path else str(key)
    try:
        line, col = mapping.lc.value(key)
        return Location(file, line + 1, col + 1, path)
    except (KeyError, AttributeError, TypeError):
        return Location(file, parent.line, parent.column, path)


_JS_ONLY_ESCAPE = re.compile(r"bad escape \\[pPk]|unknown extension \?<[^=!]")


def _check_pattern(m: _Map) -> None:
    """A `pattern` must be a regular expression (ECMAScript's `(?<name>…)`, `\\p{…}` accepted)."""
    pattern = m.data.get("pattern")
    if not isinstance(pattern, str):
        return
    try:
        re.compile(pattern.replace("(?<", "(?P<").replace("(?P<=", "(?<=").replace("(?P<!", "(?<!"))
    except re.error as exc:
        if not _JS_ONLY_ESCAPE.search(str(exc)):
            m.bad("pattern", f"'pattern' is not a valid regular expression: {exc}")
    except (RecursionError, OverflowError, MemoryError):
        m.bad("pattern", "'pattern' is too complex to compile")


def _strings(m: _Map, key: str) -> tuple[str, ...]:
    """A list of strings (a lone string counts as one); anything else is a problem."""
    value = m.data.get(key)
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,)
    if isinstance(value, list) and all(isinstance(item, (str, int, float)) and not isinstance(item, bool)
                                       for item in value):
        return tuple(str(item) for item in value)
    m.bad(key, f"'{key}' must be a list of strings; got {_kind(value)}")
    return ()


# --- building the model ------------------------------------------------------------------


def _input_parameter(m: _Map) -> spec.InputParameter | None:
    m.known("name", "in", "value", "type", "description", "required", "pattern")
    name = m.str("name", required=True)
    in_ = m.str("in", choices=PARAM_LOCATIONS, default="body")
    if m.has("value"):
        _check_templates_in(m.ctx, m.data["value"], m.loc("value", value=True))
    _check_pattern(m)
    if name is None or in_ is None:
        return None
    return spec.InputParameter(
        name=name, in_=in_, where=m.where, value=m.plain("value"), type=m.str("type"),
        description=m.str("description"), required=_required(m, False),
        pattern=m.str("pattern"),
    )


def _required(m: _Map, default: bool) -> bool:
    """`required: true|false`; the reference serializer also writes JSON Schema's list of required
    child properties here, which says nothing about the parameter itself."""
    if isinstance(m.data.get("required"), list):
        return default
    return bool(m.bool("required", default))


def _exposed_input_parameter(m: _Map) -> spec.InputParameter | None:
    """An exposed input: a `body` input whose `value` starts with `$` reads the body by JSONPath."""
    param = _input_parameter(m)
    if param is not None and param.in_ == "body" and isinstance(param.value, str) and param.value.startswith("$"):
        try:
            compile_path(param.value)
        except JsonPathError as exc:
            m.bad("value", str(exc))
            return None
    return param


def _output_parameter(m: _Map) -> spec.OutputParameter | None:
    m.known("name", "type", "mapping", "value", "const", "properties", "items", "description",
            "maxLength", "values")
    type_ = m.str("type", required=True, choices=OUTPUT_TYPES)
    properties = None
    props = m.map("properties")
    if props is not None:
        properties = {}
        for key in props.data:
            sub = props.map(str(key))
            if sub is not None and (built := _output_parameter(sub)) is not None:
                properties[str(key)] = built
    items = _output_items(m) if m.has("items") else None
    if type_ is None:
        return None
    mapping = m.str("mapping")
    value = m.plain("value")
    if isinstance(value, str) and value.startswith("$") and mapping is None and m.has("name"):
        mapping, value = value, None  # consumed outputs write their JSONPath as `value`
    elif m.has("value"):
        _check_templates_in(m.ctx, m.data["value"], m.loc("value", value=True))
    return spec.OutputParameter(
        type=type_, where=m.where, name=m.str("name"), mapping=mapping, value=value,
        const=m.plain("const"), properties=properties, items=items,
    )


def _output_items(m: _Map) -> spec.OutputParameter | None:
    """`items` of an array: a mapping, or a list as the reference engine's own files write it.

    The reference serializer writes the item as a one-entry list (`items: [{type: object, ...}]`),
    and orchestrated outputs list the fields of an object item (`items: [{name: fullName, type:
    string}, {name: role, type: string}]`); the reference keeps only the first entry of either,
    which loses fields. Here a lone unnamed entry is the item, and named entries are the
    properties of an object item, each reading the element's field of its name by default.
    """
    if not isinstance(m.data.get("items"), list):
        items_map = m.map("items")
        return _output_parameter(items_map) if items_map is not None else None
    where = m.loc("items")
    entries = m.data["items"]
    if not entries:
        m.bad("items", "'items' must not be an empty list: give the item, or the fields of an object item")
        return None
    built = m.items("items", _output_parameter)
    if len(built) != len(entries):
        return None  # the entries' own problems are recorded
    named = [entry.name is not None for entry in built]
    if len(built) == 1 and not named[0]:
        return built[0]
    if not all(named):
        m.bad("items", "a list of 'items' gives the fields of an object item, so each entry needs a 'name'")
        return None
    properties: dict[str, spec.OutputParameter] = {}
    for entry in built:
        name = entry.name or ""
        if name in properties:
            m.ctx.problem(entry.where, f"'items' lists the field '{name}' twice")
            continue
        if entry.mapping is None and entry.value is None and entry.const is None and not entry.properties:
            entry = replace(entry, mapping=f"$.{name}" if _PLAIN_NAME.match(name) else f"$['{name}']")
        properties[name] = entry
    return spec.OutputParameter(type="object", where=where, properties=properties)


_PLAIN_NAME = re.compile(r"^[A-Za-z_][\w-]*$")


def _authentication(m: _Map) -> spec.Authentication | None:
    type_ = m.str("type", required=True, choices=AUTH_TYPES)
    fields = ("type", "token", "username", "password", "key", "value", "placement")
    extra = {str(k): _plain(v) for k, v in m.data.items() if k not in fields}
    for key in m.data:
        _check_template(m, key)
    if type_ is None:
        return None
    auth = spec.Authentication(
        type=type_, where=m.where, token=m.str("token"), username=m.str("username"),
        password=m.str("password"), key=m.str("key"), value=m.str("value"),
        placement=m.str("placement", choices=("header", "query", "cookie")), extra=extra,
    )
    needed = {"bearer": ("token",), "basic": ("username", "password"),
              "digest": ("username", "password"), "apikey": ("key", "value")}.get(type_, ())
    for key in needed:
        if getattr(auth, key) is None:
            m._missing(key, f"required by {type_} authentication")
    return auth


def _consumed_operation(m: _Map) -> spec.ConsumedOperation | None:
    m.known("name", "method", "label", "description", "inputParameters", "outputRawFormat",
            "outputSchema", "outputParameters", "body")
    name = m.str("name", required=True)
    method = m.str("method", default="GET")
    if method is not None and method.upper() not in HTTP_METHODS:
        m.bad("method", f"'method' must be one of {', '.join(HTTP_METHODS)}; got '{method}'")
        return None
    if m.has("body"):
        _check_body(m)
    if name is None or method is None:
        return None
    return spec.ConsumedOperation(
        name=name, method=method.upper(), where=m.where, label=m.str("label"),
        description=m.str("description"),
        input_parameters=m.items("inputParameters", _input_parameter),
        output_raw_format=m.str("outputRawFormat"), output_schema=m.str("outputSchema"),
        output_parameters=m.items("outputParameters", _output_parameter), body=m.plain("body"),
    )


BODY_TYPES = ("json", "text", "xml", "sparql", "formUrlEncoded", "multipartForm")


def _check_body(m: _Map) -> None:
    """A `body` is a raw template, JSON data, or `{type, data}`; every string in it is a template."""
    body = m.data["body"]
    where = m.loc("body", value=True)
    _check_templates_in(m.ctx, body, where)
    if not isinstance(body, dict) or "type" not in body:
        return
    typed = _Map(m.ctx, body, where.path, where)
    kind = typed.str("type", choices=BODY_TYPES)
    data = body.get("data")
    if kind == "multipartForm":
        if not isinstance(data, list):
            typed.bad("data", f"a multipartForm body's 'data' must be a list of parts; got {_kind(data)}")
            return
        for _part in typed.items("data", lambda p: p.str("name", required=True)):  # checked as it is read
            pass
    elif kind in ("text", "xml", "sparql") and isinstance(data, (dict, list)):
        typed.bad("data", f"a {kind} body's 'data' must be a string; got {_kind(data)}")


def _consumed_resource(m: _Map) -> spec.ConsumedResource | None:
    m.known("name", "path", "label", "description", "inputParameters", "operations")
    name, path = m.str("name", required=True), m.str("path", required=True)
    operations = m.items("operations", _consumed_operation, required=True)
    _check_template(m, "path", path=True)
    if name is None or path is None:
        return None
    return spec.ConsumedResource(
        name=name, path=path, where=m.where, operations=operations, label=m.str("label"),
        description=m.str("description"), input_parameters=m.items("inputParameters", _input_parameter),
    )


def _consumes(m: _Map) -> spec.Consumes | spec.ConsumesImport | None:
    if m.has("location"):
        m.known("location", "import", "as", "description")
        location, import_ = m.str("location", required=True), m.str("import", required=True)
        if location is None or import_ is None:
            return None
        return spec.ConsumesImport(location=location, import_=import_, where=m.where, as_=m.str("as"))
    m.known("type", "namespace", "baseUri", "description", "inputParameters", "authentication", "resources")
    m.str("type", required=True, choices=("http",))
    namespace = m.str("namespace", required=True)
    base_uri = m.str("baseUri", required=True, hint="a URL such as https://api.example.com, or ''")
    auth = m.map("authentication")
    resources = m.items("resources", _consumed_resource)  # none for a forward-only target
    if base_uri and base_uri.endswith("/"):
        m.bad("baseUri", f"'baseUri' must not end with '/'; write '{base_uri.rstrip('/')}'")
    if base_uri and not base_uri.startswith(("http://", "https://")):
        m.bad("baseUri", f"'baseUri' must start with http:// or https://; got '{base_uri}'")
    if namespace is None or base_uri is None:
        return None
    return spec.Consumes(
        namespace=namespace, base_uri=base_uri, where=m.where, resources=resources,
        description=m.str("description"), input_parameters=m.items("inputParameters", _input_parameter),
        authentication=_authentication(auth) if auth else None,
    )


def _step(m: _Map) -> spec.Step | None:
    m.known("type", "name", "call", "with", "index", "match", "lookupValue", "outputParameters",
            "language", "location", "file", "dependencies")
    type_ = m.str("type", required=True, choices=("call", "lookup", "script"))
    name = m.str("name", required=True)
    if type_ == "call":
        m.str("call", required=True)
    elif type_ == "lookup":
        for key in ("index", "match", "lookupValue"):
            m.str(key, required=True)
    with_ = m.map("with")
    _check_with(m)
    outputs = _strings(m, "outputParameters") if type_ == "lookup" else ()
    lookup_value = m.str("lookupValue")
    if lookup_value is not None and not lookup_value.startswith("$."):
        _check_template(m, "lookupValue")
    if type_ is None or name is None:
        return None
    return spec.Step(
        type=type_, name=name, where=m.where, call=m.str("call"), with_=_plain(with_.data) if with_ else {},
        index=m.str("index"), match=m.str("match"), lookup_value=lookup_value, output_parameters=outputs,
    )


def _mapping(m: _Map) -> spec.StepMapping | None:
    m.known("targetName", "value")
    target, value = m.str("targetName", required=True), m.str("value", required=True)
    if value is not None and not value.startswith("$."):
        m.bad("value", f"a mapping 'value' must start with '$.<step name>'; got '{value}'")
        return None
    if target is None or value is None:
        return None
    return spec.StepMapping(target_name=target, value=value, where=m.where)


def _invocation(m: _Map) -> spec.Invocation:
    with_ = m.map("with")
    _check_with(m)
    mappings = m.items("mappings", _mapping)
    _check_mapping_targets(m, mappings)
    return spec.Invocation(
        call=m.str("call"), with_=_plain(with_.data) if with_ else {},
        steps=m.items("steps", _step), mappings=mappings,
        ref=m.str("ref"), output_parameters=m.items("outputParameters", _output_parameter),
        ref_where=m.loc("ref", value=True) if m.has("ref") else None,
    )


def _check_mapping_targets(m: _Map, mappings: tuple[spec.StepMapping, ...]) -> None:
    """A dotted `targetName` builds objects, so no target may also be a plain value on its path."""
    targets = {mapping.target_name: mapping for mapping in mappings}
    for mapping in mappings:
        parts = mapping.target_name.split(".")
        if "" in parts:
            m.ctx.problem(mapping.where.key("targetName"), f"'targetName' '{mapping.target_name}' has an empty"
                                                           " segment; write names joined by single dots")
            continue
        for end in range(1, len(parts)):
            prefix = ".".join(parts[:end])
            if prefix in targets:
                m.ctx.problem(mapping.where.key("targetName"),
                              f"'targetName' '{mapping.target_name}' puts a field inside '{prefix}', which another"
                              f" mapping sets as a whole value at {targets[prefix].where}")
                break


def _aggregate_function(m: _Map) -> spec.AggregateFunction | None:
    m.known("name", "description", "semantics", "inputParameters", "call", "with", "steps", "mappings",
            "outputParameters", "ref")
    name, description = m.str("name", required=True), m.str("description", required=True)
    semantics = m.map("semantics")
    invocation = _invocation(m)
    _check_call(m, invocation)
    if name is None:
        return None
    if semantics is not None:
        semantics.known("safe", "idempotent", "cacheable")
    return spec.AggregateFunction(
        name=name, description=description, where=m.where, invocation=invocation,
        semantics=spec.Semantics(semantics.bool("safe"), semantics.bool("idempotent"), semantics.bool("cacheable"))
        if semantics else None,
        input_parameters=m.items("inputParameters", _tool_parameter),
    )


def _aggregate(m: _Map) -> spec.Aggregate | None:
    m.known("label", "namespace", "functions")
    label, namespace = m.str("label", required=True), m.str("namespace", required=True)
    functions = m.items("functions", _aggregate_function, required=True)
    if namespace is None:
        return None
    return spec.Aggregate(label=label or namespace, namespace=namespace, where=m.where, functions=functions)


def _check_call(m: _Map, invocation: spec.Invocation) -> None:
    if invocation.call is not None and invocation.call.count(".") != 1:
        m.bad("call", f"'call' must be '<namespace>.<operation>'; got '{invocation.call}'")


def _exposed_operation(m: _Map) -> spec.ExposedOperation | None:
    m.known("name", "label", "description", "method", "inputParameters", "ref", "call", "with",
            "outputParameters", "steps", "mappings")
    method = m.str("method", required=True)
    if method is not None and method.upper() not in HTTP_METHODS:
        m.bad("method", f"'method' must be one of {', '.join(HTTP_METHODS)}; got '{method}'")
        return None
    invocation = _invocation(m)
    _check_call(m, invocation)
    if method is None:
        return None
    return spec.ExposedOperation(
        method=method.upper(), where=m.where, invocation=invocation, name=m.str("name"),
        label=m.str("label"), description=m.str("description"),
        input_parameters=m.items("inputParameters", _exposed_input_parameter),
    )


def _forward(m: _Map) -> spec.Forward | None:
    m.known("targetNamespace", "trustedHeaders")
    target = m.str("targetNamespace", required=True)
    headers = _strings(m, "trustedHeaders")
    if target is None:
        return None
    return spec.Forward(target_namespace=target, trusted_headers=headers, where=m.where)


def _exposed_resource(m: _Map) -> spec.ExposedResource | None:
    m.known("path", "name", "label", "description", "inputParameters", "operations", "forward")
    path = m.str("path", required=True)
    forward = m.map("forward")
    operations = m.items("operations", _exposed_operation)
    if path is None:
        return None
    if not path.startswith("/"):
        m.bad("path", f"'path' must start with '/'; got '{path}'")
        return None
    for segment in spec.path_segments(path):
        if ("{" in segment or "}" in segment) and not spec.PATH_VARIABLE.match(segment):
            m.bad("path", f"path segment '{segment}' mixes text and braces; routes match whole segments, so a"
                          " variable is a segment of its own ('{name}' or '{{name}}', names of letters, digits,"
                          " '_', '-', '.')")
            return None
    return spec.ExposedResource(
        path=path, where=m.where, operations=operations, name=m.str("name"), label=m.str("label"),
        description=m.str("description"), input_parameters=m.items("inputParameters", _exposed_input_parameter),
        forward=_forward(forward) if forward else None,
    )


def _tool_parameter(m: _Map) -> spec.ToolParameter | None:
    m.known("name", "type", "description", "required")
    name = m.str("name", required=True)
    if name is None:
        return None
    return spec.ToolParameter(
        name=name, type=m.str("type", default="string") or "string", description=m.str("description"),
        required=_required(m, True), where=m.where,
    )


def _hints(m: _Map) -> spec.ToolHints:
    m.known("readOnly", "destructive", "idempotent", "openWorld")
    return spec.ToolHints(read_only=m.bool("readOnly"), destructive=m.bool("destructive"),
                          idempotent=m.bool("idempotent"), open_world=m.bool("openWorld"))


def _tool(m: _Map) -> spec.Tool | None:
    m.known("name", "label", "description", "inputParameters", "ref", "call", "with", "steps",
            "mappings", "hints", "outputParameters")
    name = m.str("name", required=not m.has("ref"))
    hints = m.map("hints")
    invocation = _invocation(m)
    _check_call(m, invocation)
    if name is None and invocation.ref is None:
        return None
    return spec.Tool(
        name=name or "", where=m.where, invocation=invocation, label=m.str("label"),
        description=m.str("description"), input_parameters=m.items("inputParameters", _tool_parameter),
        hints=_hints(hints) if hints else None,
    )


def _mcp_resource(m: _Map) -> spec.Resource | None:
    m.known("name", "label", "uri", "description", "mimeType", "call", "with", "steps", "mappings",
            "outputParameters", "location")
    name, uri = m.str("name", required=True), m.str("uri", required=True)
    dynamic = m.has("call") or m.has("steps")
    invocation = _invocation(m) if dynamic else None
    if uri is not None:
        variables = [v.replace("-", "_") for v in _URI_VARIABLE.findall(uri)]
        if len(set(variables)) != len(variables):
            twice = ", ".join(sorted({v for v in variables if variables.count(v) > 1}))
            m.bad("uri", f"'uri' names a variable twice ({twice}; '-' and '_' count as the same):"
                         " each needs its own name")
    if name is None or uri is None:
        return None
    return spec.Resource(
        name=name, uri=uri, where=m.where, label=m.str("label"), description=m.str("description"),
        mime_type=m.str("mimeType"), invocation=invocation, location=file_location(m.str("location"), m.ctx.file),
    )


_URI_VARIABLE = re.compile(r"\{([A-Za-z_][\w-]*)\}")


def _prompt_argument(m: _Map) -> spec.PromptArgument | None:
    m.known("name", "label", "description", "required")
    name = m.str("name", required=True)
    if name is None:
        return None
    return spec.PromptArgument(name=name, description=m.str("description"),
                               required=bool(m.bool("required", True)), label=m.str("label"))


def _prompt(m: _Map) -> spec.Prompt | None:
    m.known("name", "label", "description", "arguments", "template", "location")
    name = m.str("name", required=True)
    messages: list[tuple[str, str]] = []
    for message in m.items("template", lambda mm: (mm.str("role", required=True, choices=("user", "assistant")),
                                                   mm.str("content", required=True))):
        if None not in message:
            messages.append(message)  # type: ignore[arg-type]
    if name is None:
        return None
    return spec.Prompt(
        name=name, where=m.where, label=m.str("label"), description=m.str("description"),
        arguments=m.items("arguments", _prompt_argument), template=tuple(messages),
        location=file_location(m.str("location"), m.ctx.file),
    )


def _exposes(m: _Map) -> spec.Exposes | None:
    type_ = m.str("type", required=True, choices=("rest", "mcp", "skill", "control"))
    namespace = m.str("namespace", required=type_ in ("rest", "mcp", "skill"))
    auth_map = m.map("authentication")
    auth = _authentication(auth_map) if auth_map else None
    if auth_map is not None and auth is not None and type_ in ("rest", "mcp", "skill"):
        _check_server_auth(auth_map, auth)
    if type_ == "rest":
        m.known("type", "address", "port", "namespace", "description", "authentication", "resources",
                "inputParameters")
        port = m.int("port", required=True)
        resources = m.items("resources", _exposed_resource)
        _duplicate_routes(m.ctx, resources)
        if namespace is None or port is None:
            return None
        return spec.RestExposes(namespace=namespace, port=port, where=m.where, resources=resources,
                                address=m.str("address"), authentication=auth)
    if type_ == "mcp":
        m.known("type", "transport", "address", "port", "namespace", "description", "authentication",
                "tools", "resources", "prompts")
        transport = m.str("transport", choices=("http", "stdio"), default="http") or "http"
        port = m.int("port", required=transport == "http")
        tools = m.items("tools", _tool, required=True)
        mcp_resources = m.items("resources", _mcp_resource)
        prompts = m.items("prompts", _prompt)
        _duplicates(m.ctx, "tool", [(tool.name, tool.where.key("name")) for tool in tools if tool.name])
        _duplicates(m.ctx, "resource URI", [(r.uri, r.where.key("uri")) for r in mcp_resources])
        _duplicates(m.ctx, "prompt", [(p.name, p.where.key("name")) for p in prompts])
        if namespace is None:
            return None
        return spec.McpExposes(
            namespace=namespace, where=m.where, tools=tools, port=port, address=m.str("address"),
            transport=transport, description=m.str("description"), authentication=auth,
            resources=mcp_resources, prompts=prompts,
        )
    if type_ == "skill":
        m.known("type", "address", "port", "namespace", "description", "authentication", "skills")
        port = m.int("port", required=True)
        skills = m.items("skills", _skill, required=True)
        if namespace is None or port is None:
            return None
        return spec.SkillExposes(namespace=namespace, port=port, where=m.where, skills=skills,
                                 address=m.str("address"), description=m.str("description"), authentication=auth)
    if type_ is None:
        return None
    fields = {str(k): _plain(v) for k, v in m.data.items() if k not in ("type", "namespace", "port")}
    return spec.OtherExposes(type=type_, where=m.where, namespace=namespace, port=m.int("port"), fields=fields)


SERVER_AUTH_TYPES = ("bearer", "apikey", "basic")


def _check_server_auth(m: _Map, auth: spec.Authentication) -> None:
    """What an exposed server can check; consumed APIs take more (digest, OAuth2, cookies)."""
    if auth.type not in SERVER_AUTH_TYPES:
        m.bad("type", f"{auth.type} authentication of exposed servers is not supported yet; use"
                      f" {', '.join(SERVER_AUTH_TYPES)}")
    elif auth.placement == "cookie":
        m.bad("placement", "an exposed server reads an API key from a header or the query, not a cookie")


def _duplicates(ctx: _Context, what: str, named: list[tuple[str, Location]]) -> None:
    seen: dict[str, Location] = {}
    for name, where in named:
        first = seen.setdefault(name, where)
        if first is not where:
            ctx.problem(where, f"{what} '{name}' is already declared at {first} ({first.path}); {what}s of one"
                               " block must be unique")


def _duplicate_routes(ctx: _Context, resources: tuple[spec.ExposedResource, ...]) -> None:
    """One route per shape and method: `/a/{id}` and `/a/{key}` are the same path to the router."""
    seen: dict[tuple[tuple[str, ...], str], tuple[str, Location]] = {}
    for resource in resources:
        shape = spec.route_shape(resource.path)
        entries = [(op.method, op.where) for op in resource.operations]
        if resource.forward is not None:
            entries.append(("forward", resource.where.key("forward")))
        for method, where in entries:
            first = seen.setdefault((shape, method), (resource.path, where))
            if first[1] is not where:
                what = "a forward" if method == "forward" else f"{method} {resource.path}"
                ctx.problem(where, f"{what} is already declared at {first[1]} ({first[0]}, {first[1].path}); the"
                                   " router cannot tell them apart (variable names do not count)")


def _skill_tool(m: _Map) -> spec.SkillTool | None:
    m.known("name", "description", "from", "instruction")
    name, description = m.str("name", required=True), m.str("description", required=True)
    source = m.map("from")
    instruction = m.str("instruction")
    if (source is None) == (instruction is None):
        m.ctx.problem(m.where, "a skill tool needs exactly one of 'from' (a sibling REST/MCP action) or 'instruction'")
        return None
    if source is not None:
        source.known("sourceNamespace", "action")
        namespace, action = source.str("sourceNamespace", required=True), source.str("action", required=True)
    else:
        namespace = action = None
    if name is None or description is None:
        return None
    return spec.SkillTool(name=name, description=description, where=m.where, source_namespace=namespace,
                          action=action, instruction=instruction)


def _skill(m: _Map) -> spec.Skill | None:
    m.known("name", "description", "license", "compatibility", "metadata", "allowed-tools", "argument-hint",
            "user-invocable", "disable-model-invocation", "location", "tools")
    name, description = m.str("name", required=True), m.str("description", required=True)
    tools = m.items("tools", _skill_tool)
    location = file_location(m.str("location"), m.ctx.file)
    if location is None:
        for tool in tools:
            if tool.instruction is not None:
                m.ctx.problem(tool.where, f"skill tool '{tool.name}' is an instruction, which needs a 'location' on"
                                          f" skill '{name}'")
    if description is not None and len(description) > 1024:
        m.bad("description", "a skill 'description' must be at most 1024 characters")
    if name is None or description is None:
        return None
    return spec.Skill(
        name=name, description=description, where=m.where, tools=tools, location=location,
        license=m.str("license"), compatibility=m.str("compatibility"), metadata=m.plain("metadata") or {},
        allowed_tools=m.str("allowed-tools"), argument_hint=m.str("argument-hint"),
        user_invocable=bool(m.bool("user-invocable", True)),
        disable_model_invocation=bool(m.bool("disable-model-invocation", False)),
    )


def _binding(m: _Map) -> spec.Binding | None:
    m.known("namespace", "description", "location", "keys")
    namespace = m.str("namespace", required=True)
    keys = m.map("keys", required=True)
    location = m.str("location")
    if location is not None and "://" not in location:
        m.bad("location", f"'location' must be a URI such as file:///path/secrets.yaml; got '{location}'")
    if namespace is None or keys is None:
        return None
    values = {str(k): keys.str(k, required=True) for k in keys.data}
    return spec.Binding(namespace=namespace, keys={k: v for k, v in values.items() if v is not None},
                        location=location, description=m.str("description"), where=m.where)


def _info(m: _Map) -> spec.Info | None:
    m.known("label", "description", "tags", "created", "modified", "stakeholders")
    label = m.str("label", required=True)
    if label is None:
        return None
    return spec.Info(label=label, description=m.str("description"), tags=_strings(m, "tags"))


def _capability(root: _Map, path: str) -> spec.Capability:
    if root.has("ikanos") and not root.has("naftiko"):
        root.ctx.problem(root.loc("ikanos"), f"this is an Ikanos {root.data['ikanos']} file, the successor dialect"
                                             " (keyed maps, 'display', 'flows'); naftiko reads Naftiko 1.0.0-alpha"
                                             " files, which start with 'naftiko:'")
        return spec.Capability(path=path, version="", where=root.where)
    root.known("naftiko", "info", "binds", "capability", "consumes")
    version = root.str("naftiko", required=True) or ""
    if version and not version.startswith("1.0.0-alpha"):
        root.ctx.warn(root.loc("naftiko"), f"spec version '{version}' is not 1.0.0-alpha*; reading it as 1.0.0-alpha2")
    info = root.map("info")
    body = root.map("capability")
    consumes_owner = body if body is not None else root
    if body is None and not root.has("consumes"):
        root._missing("capability", "the capability: its consumes and exposes")
    if body is not None:
        body.known("binds", "exposes", "consumes", "aggregates")
    entries = consumes_owner.items("consumes", _consumes)
    binds = root.items("binds", _binding) + (body.items("binds", _binding) if body else ())
    return spec.Capability(
        path=path, version=version, where=root.where, info=_info(info) if info else None, binds=binds,
        consumes=tuple(e for e in entries if isinstance(e, spec.Consumes)),
        imports=tuple(e for e in entries if isinstance(e, spec.ConsumesImport)),
        exposes=body.items("exposes", _exposes) if body else (),
        aggregates=body.items("aggregates", _aggregate) if body else (),
        warnings=tuple(root.ctx.warnings),
    )


# --- files and folders ---------------------------------------------------------------------


_MiB = 1024 * 1024


@dataclass(frozen=True, slots=True)
class ReadLimits:
    """What reading one capability file may cost, whatever the file says.

    Capability files are small (the generated 10,000-operation benchmark file is 11 MB), so these
    only ever stop a wrong path or a hostile file, each with a CapabilityError at the place it
    went too far, before the loader spends unbounded time or memory on it.
    """

    file_bytes: int = 16 * _MiB
    """The largest file read at all, checked before it is read."""
    full_yaml_bytes: int = 1 * _MiB
    """The largest file read with ruamel, which any YAML outside the fast block subset needs (flow
    collections, anchors, tabs...): ruamel reads about 200 KB a second and holds some 60 bytes per
    byte read, so 1 MiB costs it about 5 s and 60 MB. Larger files must keep to block YAML, as
    generated ones do (the fast reader takes 11 MB in about 2 s)."""
    depth: int = blockyaml.DEFAULT_MAX_DEPTH
    """The deepest nesting of mappings and sequences (100), aliases counted where they are used.
    Real files nest about 15 levels; every later walk of the document recurses once per level."""
    alias_nodes: int = 250_000
    """The most nodes that aliases may add to the document, each alias counting the nodes it stands
    for. ruamel shares an aliased node instead of copying it, so eight anchor lines can stand for
    43 million nodes that every walk of the document then visits; 250,000 is about a tenth of what
    the 10,000-operation file holds, and far more than any reuse of shared parameters needs."""
    number_length: int = 1000
    """The longest integer or float literal, in characters: Python refuses to turn an integer of
    more than 4,300 digits into text (and the hexadecimal form packs 1.2 digits per character)."""


READ_LIMITS = ReadLimits()


class _Exceeded(ComposerError):
    """A bound of ReadLimits was passed; the message is the whole explanation (it is not a syntax error)."""

    def __init__(self, message: str, mark: Any, path: str) -> None:
        super().__init__(None, None, message, mark)
        self.path = path


class _BoundedComposer(Composer):
    """ruamel's composer with the document's depth, alias expansion and numbers bounded.

    An alias is composed as the anchored node itself, not a copy, so the cost of the expanded
    document only shows later; here each alias is charged the nodes and the depth it stands for,
    and an alias inside its own anchor (a recursive document) is refused.
    """

    def __init__(self, loader: Any = None) -> None:
        super().__init__(loader)
        self.warn_double_anchors = False  # YAML lets a later anchor of the same name win; no Python warning
        self.limits: ReadLimits = getattr(loader, "naftiko_limits", READ_LIMITS)
        self.nesting = 0  # open mappings and sequences
        self.reach = 0  # the deepest nesting reached, aliases counted at their full depth
        self.nodes = 0  # nodes composed, each alias counted as the nodes it stands for
        self.aliased = 0  # nodes added by aliases
        self.anchored: dict[int, tuple[int, int]] = {}  # id(anchored node) -> (its nodes, its depth)
        self.path: list[Any] = []

    def compose_node(self, parent: Any, index: Any) -> Any:
        self.path.append(index if isinstance(parent, SequenceNode) else getattr(index, "value", None))
        try:
            event = self.parser.peek_event()
            if isinstance(event, AliasEvent):
                return self._alias(parent, index, event)
            return self._node(parent, index, event)
        except YAMLError:
            raise
        except (ValueError, TypeError, IndexError, KeyError, OverflowError, RecursionError) as exc:
            mark = self.loader.reader.get_mark() if getattr(self.loader, "reader", None) else None
            raise ComposerError(None, None, f"cannot read this ({exc})", mark) from None
        finally:
            self.path.pop()

    def _node(self, parent: Any, index: Any, event: Any) -> Any:
        base = self.nesting
        if isinstance(event, (MappingStartEvent, SequenceStartEvent)):
            self.nesting += 1
            if self.nesting > self.limits.depth:
                raise self._exceeded(f"nested deeper than {self.limits.depth} levels of mappings and sequences",
                                     event.start_mark)
        saved_reach, start = self.reach, self.nodes
        self.reach = max(self.reach, self.nesting) if event.anchor is None else self.nesting
        self.nodes += 1
        try:
            node = super().compose_node(parent, index)
        finally:
            self.nesting = base
        if event.anchor is not None:
            self.anchored[id(node)] = (self.nodes - start, self.reach - base)
            self.reach = max(saved_reach, self.reach)
        tag = str(node.tag)
        if (tag.endswith((":int", ":float")) and isinstance(node.value, str)
                and len(node.value) > self.limits.number_length):
            raise self._exceeded(f"a number of {len(node.value):,} characters; numbers may have at most"
                                 f" {self.limits.number_length:,}", node.start_mark)
        return node

    def _alias(self, parent: Any, index: Any, event: Any) -> Any:
        node = super().compose_node(parent, index)  # ruamel reports an undefined alias
        try:
            nodes, height = self.anchored[id(node)]
        except KeyError:
            raise self._exceeded(f"the alias *{event.anchor} is inside the node it refers to; a capability"
                                 " cannot be recursive", event.start_mark) from None
        self.aliased += nodes
        self.nodes += nodes
        if self.aliased > self.limits.alias_nodes:
            raise self._exceeded(f"aliases expand this document by more than {self.limits.alias_nodes:,} nodes"
                                 f" (at *{event.anchor}); write the repeated part out, or repeat it less",
                                 event.start_mark)
        if self.nesting + height > self.limits.depth:
            raise self._exceeded(f"the alias *{event.anchor} nests the document deeper than"
                                 f" {self.limits.depth} levels of mappings and sequences", event.start_mark)
        self.reach = max(self.reach, self.nesting + height)
        return node

    def _exceeded(self, message: str, mark: Any) -> _Exceeded:
        return _Exceeded(message, mark, _key_path(self.path))


class _MarkedConstructor(RoundTripConstructor):
    """ruamel's round-trip constructor; a value it cannot build (`-_`, `2024-13-45`) is an error at that value."""

    def construct_object(self, node: Any, deep: bool = False) -> Any:
        try:
            return super().construct_object(node, deep)
        except YAMLError:
            raise
        except (ValueError, TypeError, IndexError, KeyError, OverflowError, AttributeError) as exc:
            raise ConstructorError(None, None, f"cannot read this value ({exc})", node.start_mark) from None

    def construct_non_recursive_object(self, node: Any, *args: Any, **kwargs: Any) -> Any:
        pending = len(self.state_generators)
        data = super().construct_non_recursive_object(node, *args, **kwargs)
        self.state_generators[pending:] = [_marked(g, node) for g in self.state_generators[pending:]]
        return data


def _marked(generator: Any, node: Any) -> Any:
    """A constructor's deferred work, its builtin errors placed at `node`."""
    try:
        yield from generator
    except YAMLError:
        raise
    except (ValueError, TypeError, IndexError, KeyError, OverflowError, AttributeError) as exc:
        raise ConstructorError(None, None, f"cannot read this value ({exc})", node.start_mark) from None


def _key_path(steps: list[Any]) -> str:
    """`capability.consumes[0].name` from the keys and indexes of the nodes being composed."""
    out = ""
    for step in steps:
        if isinstance(step, int):
            out += f"[{step}]"
        elif step is not None:
            out += f".{step}" if out else str(step)
    return out


def _text_location(file: str, text: str, index: int) -> Location:
    """The 1-based line and column of character `index`."""
    line_start = text.rfind("\n", 0, index) + 1
    return Location(file, text.count("\n", 0, index) + 1, index - line_start + 1)


def _ruamel(text: str, file: str, limits: ReadLimits) -> Any:
    """ruamel's round-trip reading, bounded by `limits`, every error a CapabilityError at its place."""
    yaml = YAML(typ="rt", pure=True)
    yaml.Composer = _BoundedComposer
    yaml.Constructor = _MarkedConstructor
    yaml.naftiko_limits = limits  # type: ignore[attr-defined]
    try:
        return yaml.load(text)
    except ReaderError as exc:
        where = _text_location(file, text, exc.position) if isinstance(exc.position, int) else Location(file)
        char = exc.character if isinstance(exc.character, int) else ord(str(exc.character)[:1] or "\0")
        raise CapabilityError.at(where, f"not valid YAML: the character U+{char:04X} is not allowed in YAML text"
                                 ) from None
    except _Exceeded as exc:
        mark = exc.problem_mark
        where = Location(file, mark.line + 1, mark.column + 1, exc.path) if mark else Location(file, path=exc.path)
        raise CapabilityError.at(where, str(exc.problem)) from None
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = Location(file, mark.line + 1, mark.column + 1) if mark else Location(file)
        raise CapabilityError.at(where, f"not valid YAML: {exc.problem or exc.context}") from None
    except (YAMLError, ValueError, TypeError, IndexError, KeyError, OverflowError, RecursionError) as exc:
        raise CapabilityError.at(Location(file), f"not valid YAML: {exc}") from None  # not seen in fuzzing


def _parse_yaml(text: str, file: str, limits: ReadLimits = READ_LIMITS) -> Any:
    """The fast block-YAML reader when the text allows it, bounded ruamel (and its errors) otherwise."""
    try:
        return blockyaml.load(text, max_depth=limits.depth)
    except blockyaml.Unsupported as exc:
        if len(text.encode("utf-8", "surrogatepass")) > limits.full_yaml_bytes:
            where = Location(file, (exc.line or 0) + 1, (exc.column or 0) + 1)
            raise CapabilityError.at(where, f"a file larger than {limits.full_yaml_bytes:,} bytes must be plain block"
                                            f" YAML, and here it is not ({exc}); write it in block style, or split it"
                                     ) from None
    return _ruamel(text, file, limits)


def _decode(data: bytes, file: str) -> str:
    """UTF-8 text, or a CapabilityError at the line and column of the first byte that is not."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line_start = data.rfind(b"\n", 0, exc.start) + 1
        where = Location(file, data.count(b"\n", 0, exc.start) + 1,
                         len(data[line_start:exc.start].decode("utf-8", "replace")) + 1)
        raise CapabilityError.at(where, f"not UTF-8 text: byte 0x{data[exc.start]:02x} ({exc.reason});"
                                        " capability files are read as UTF-8") from None


def read_document(path: str | Path, limits: ReadLimits = READ_LIMITS) -> Any:
    """Parse one YAML file, turning I/O and syntax errors into a CapabilityError."""
    file = str(path)
    too_large = f"file too large: more than {limits.file_bytes:,} bytes, the limit for a capability file"
    try:
        with open(path, "rb") as handle:
            if os.fstat(handle.fileno()).st_size > limits.file_bytes:
                raise CapabilityError.at(Location(file), too_large)
            data = handle.read(limits.file_bytes + 1)  # not every file knows its size (pipes, /proc)
    except FileNotFoundError:
        raise CapabilityError.at(Location(file), "file not found") from None
    except OSError as exc:
        raise CapabilityError.at(Location(file), f"cannot read file: {exc.strerror or exc}") from None
    if len(data) > limits.file_bytes:
        raise CapabilityError.at(Location(file), too_large)
    return _parse_yaml(_decode(data, file), file, limits)


def load_file(path: str | Path, limits: ReadLimits = READ_LIMITS) -> spec.Capability:
    """Load and check one capability file."""
    file = str(path)
    data = read_document(path, limits)
    if not isinstance(data, dict):
        raise CapabilityError.at(Location(file, 1, 1),
                                 "a capability file must be a YAML mapping that starts with 'naftiko:'")
    ctx = _Context(file)
    capability = _capability(_Map(ctx, data, "", Location(file, 1, 1)), file)
    if ctx.problems:
        raise CapabilityError(ctx.problems)
    _check_skills(capability)
    if capability.imports:
        imported = tuple(_import(entry, Path(file).parent, limits) for entry in capability.imports)
        capability = replace(capability, consumes=capability.consumes + imported)
    return capability


def _check_skills(capability: spec.Capability) -> None:
    """Every derived skill tool must point at an action of a sibling REST or MCP block."""
    actions: dict[str, tuple[str, set[str]]] = {}
    for exposes in capability.exposes:
        if isinstance(exposes, spec.RestExposes):
            names = {op.name for r in exposes.resources for op in r.operations if op.name}
            actions[exposes.namespace] = ("rest", names)
        elif isinstance(exposes, spec.McpExposes):
            actions[exposes.namespace] = ("mcp", {tool.name for tool in exposes.tools})
    problems = []
    for exposes in capability.exposes:
        if not isinstance(exposes, spec.SkillExposes):
            continue
        for skill in exposes.skills:
            for tool in skill.tools:
                if tool.source_namespace is None:
                    continue
                if tool.source_namespace not in actions:
                    known = ", ".join(sorted(actions)) or "none"
                    problems.append(Problem(tool.where, f"skill tool '{tool.name}': sourceNamespace"
                                            f" '{tool.source_namespace}' is not a REST or MCP block of this file"
                                            f" (known: {known})"))
                elif tool.action not in actions[tool.source_namespace][1]:
                    problems.append(Problem(tool.where, f"skill tool '{tool.name}': '{tool.source_namespace}' has no"
                                            f" operation or tool named '{tool.action}'"))
    if problems:
        raise CapabilityError(problems)


def _import(entry: spec.ConsumesImport, base: Path, limits: ReadLimits) -> spec.Consumes:
    """Bring in one namespace of a shared consumes file, renamed to `as` when given."""
    location = entry.location
    if location.startswith("file://"):
        location = location[len("file://"):]
    path = Path(location) if Path(location).is_absolute() else base / location
    where = Location(entry.where.file, entry.where.line, entry.where.column, f"{entry.where.path}.location")
    if not path.is_file():
        raise CapabilityError.at(where, f"imported file not found: {path}")
    data = read_document(path, limits)
    if not isinstance(data, dict) or not isinstance(data.get("consumes"), list):
        raise CapabilityError.at(where, f"{path} is not a shared consumes file (it needs a top-level 'consumes' list)")
    ctx = _Context(str(path))
    entries = _Map(ctx, data, "", Location(str(path), 1, 1)).items("consumes", _consumes)
    if ctx.problems:
        raise CapabilityError(ctx.problems)
    for found in entries:
        if isinstance(found, spec.Consumes) and found.namespace == entry.import_:
            return replace(found, namespace=entry.as_ or found.namespace)
    names = ", ".join(e.namespace for e in entries if isinstance(e, spec.Consumes)) or "none"
    raise CapabilityError.at(
        Location(entry.where.file, entry.where.line, entry.where.column, f"{entry.where.path}.import"),
        f"{path} has no consumes namespace '{entry.import_}' (it has: {names})")


def is_capability_document(path: Path) -> bool:
    """A folder member counts when its first key is `naftiko` and it has a `capability`."""
    try:
        data = read_document(path)
    except CapabilityError:
        return True  # let load_file report the syntax error with its position
    return isinstance(data, dict) and next(iter(data), None) == "naftiko" and "capability" in data


def expand_paths(paths: Iterable[str | Path]) -> list[Path]:
    """Files as given; folders become their `*.yaml`/`*.yml` capability documents, sorted."""
    files: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            candidates = sorted(p for p in path.iterdir() if p.suffix in (".yaml", ".yml") and p.is_file())
            files.extend(p for p in candidates if is_capability_document(p))
        else:
            files.append(path)
    return files


def load(paths: Iterable[str | Path], limits: ReadLimits = READ_LIMITS) -> list[spec.Capability]:
    """Load every capability under `paths`; report all problems of all files together."""
    capabilities: list[spec.Capability] = []
    problems: list[Problem] = []
    files = expand_paths(paths)
    if not files:
        raise CapabilityError.at(Location(", ".join(str(p) for p in paths)),
                                 "no capability files found (looked for *.yaml and *.yml starting with 'naftiko:')")
    for file in files:
        try:
            capabilities.append(load_file(file, limits))
        except CapabilityError as exc:
            problems.extend(exc.problems)
    problems.extend(_duplicate_namespaces(capabilities))
    if problems:
        raise CapabilityError(problems)
    return capabilities


def _duplicate_namespaces(capabilities: list[spec.Capability]) -> list[Problem]:
    seen: dict[str, Location] = {}
    problems: list[Problem] = []
    for capability in capabilities:
        declared = [(c.namespace, c.where) for c in capability.consumes]
        declared += [(e.namespace, e.where) for e in capability.exposes if e.namespace]
        declared += [(a.namespace, a.where) for a in capability.aggregates]
        for namespace, where in declared:
            first = seen.setdefault(namespace, where)
            if first is not where:
                problems.append(Problem(where, f"namespace '{namespace}' is already declared at {first}"
                                               f" ({first.path}); namespaces must be unique across all loaded files"))
    return problems
