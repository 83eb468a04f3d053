"""Builders of what a capability consumes: the upstream APIs, their resources and operations.

Each builder reads one mapping through a `fields.Map` and returns its `model` dataclass, or None
when a problem (already recorded) leaves nothing to build. Parameters, output parameters and
authentication are read the same way on the exposed side, which builds on these.
"""

from __future__ import annotations

import re
from dataclasses import replace

from . import model as spec
from .checks import check_body, check_pattern, check_template, check_templates_in
from .fields import Map, is_required, plain
from .paging import checked as checked_paging, pagination
from .resilience import KEYS as RESILIENCE_KEYS, resilience
from .caching import KEY as CACHE_KEY, cache
from .sizes import byte_size

HTTP_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS")
PARAM_LOCATIONS = ("query", "header", "path", "cookie", "body", "environment")
OUTPUT_TYPES = ("string", "number", "integer", "boolean", "object", "array")
AUTH_TYPES = ("basic", "digest", "bearer", "apikey", "oauth2")


def input_parameter(m: Map) -> spec.InputParameter | None:
    m.known("name", "in", "value", "type", "description", "required", "pattern")
    name = m.str("name", required=True)
    in_ = m.str("in", choices=PARAM_LOCATIONS, default="body")
    if m.has("value"):
        check_templates_in(m.ctx, m.data["value"], m.loc("value", value=True))
    check_pattern(m)
    if name is None or in_ is None:
        return None
    data = m.data  # keys read directly where no dialect respells them (fields.IKANOS_SPELLINGS): absent, None
    return spec.InputParameter(
        name=name,
        in_=in_,
        where=m.where,
        value=m.plain("value") if "value" in data else None,
        type=m.str("type"),
        description=m.str("description") if "description" in data else None,
        required=is_required(m, False),
        pattern=m.str("pattern") if "pattern" in data else None,
    )


def output_parameter(m: Map) -> spec.OutputParameter | None:
    m.known("name", "type", "mapping", "value", "const", "properties", "items", "description", "maxLength", "values")
    data = m.data  # read directly where no dialect spells a key its own way (fields.IKANOS_SPELLINGS)
    type_ = m.str("type", required=True, choices=OUTPUT_TYPES)
    properties = None
    props = m.map("properties") if "properties" in data else None
    if props is not None:
        properties = {}
        for key in props.data:
            sub = props.map(str(key))
            if sub is not None and (built := output_parameter(sub)) is not None:
                properties[str(key)] = built
    items = _output_items(m) if "items" in data else None
    if type_ is None:
        return None
    mapping = m.str("mapping") if "mapping" in data else None
    value = m.plain("value")
    if isinstance(value, str) and value.startswith("$") and mapping is None and "name" in data:
        mapping, value = value, None  # consumed outputs write their JSONPath as `value`
    elif "value" in data:
        check_templates_in(m.ctx, data["value"], m.loc("value", value=True))
    return spec.OutputParameter(
        type=type_,
        where=m.where,
        name=m.str("name"),
        mapping=mapping,
        value=value,
        const=m.plain("const") if "const" in data else None,
        properties=properties,
        items=items,
        description=m.str("description") if "description" in data else None,
    )


def _output_items(m: Map) -> spec.OutputParameter | None:
    """`items` of an array: a mapping, or a list as the reference engine's own files write it.

    The reference serializer writes the item as a one-entry list (`items: [{type: object, ...}]`),
    and orchestrated outputs list the fields of an object item (`items: [{name: fullName, type:
    string}, {name: role, type: string}]`); the reference keeps only the first entry of either,
    which loses fields. Here a lone unnamed entry is the item, and named entries are the
    properties of an object item, each reading the element's field of its name by default.
    """
    if not isinstance(m.data.get("items"), list):
        items_map = m.map("items")
        return output_parameter(items_map) if items_map is not None else None
    where = m.loc("items")
    entries = m.data["items"]
    if not entries:
        m.bad("items", "'items' must not be an empty list: give the item, or the fields of an object item")
        return None
    built = m.items("items", output_parameter)
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


def authentication(m: Map) -> spec.Authentication | None:
    type_ = m.str("type", required=True, choices=AUTH_TYPES)
    fields = ("type", "token", "username", "password", "key", "value", "placement")
    extra = {str(k): plain(v) for k, v in m.data.items() if k not in fields}
    for key in m.data:
        check_template(m, key)
    if type_ is None:
        return None
    auth = spec.Authentication(
        type=type_,
        where=m.where,
        token=m.str("token"),
        username=m.str("username"),
        password=m.str("password"),
        key=m.str("key"),
        value=m.str("value"),
        placement=m.str("placement", choices=("header", "query", "cookie")),
        extra=extra,
    )
    needed = {
        "bearer": ("token",),
        "basic": ("username", "password"),
        "digest": ("username", "password"),
        "apikey": ("key", "value"),
    }.get(type_, ())
    for key in needed:
        if getattr(auth, key) is None:
            m.missing(key, f"required by {type_} authentication")
    return auth


def _consumed_operation(m: Map) -> spec.ConsumedOperation | None:
    m.known(
        "name",
        "method",
        "label",
        "description",
        "inputParameters",
        "outputRawFormat",
        "outputSchema",
        "outputParameters",
        "body",
        "outputMediaType",  # Ikanos binary outputs, accepted in naftiko files too
        "maxBinarySize",
        "pagination",  # engine/spec/paging.py
        *RESILIENCE_KEYS,  # engine/spec/resilience.py
        CACHE_KEY,  # engine/spec/caching.py
    )
    name = m.str("name", required=True)
    method = m.str("method", default="GET")
    if method is not None and method.upper() not in HTTP_METHODS:
        m.bad("method", f"'method' must be one of {', '.join(HTTP_METHODS)}; got '{method}'")
        return None
    if m.has("body"):
        check_body(m)
    if name is None or method is None:
        return None
    data = m.data  # keys read directly where no dialect respells them (fields.IKANOS_SPELLINGS): absent, None
    return spec.ConsumedOperation(
        name=name,
        method=method.upper(),
        where=m.where,
        label=m.str("label"),
        description=m.str("description") if "description" in data else None,
        input_parameters=m.items("inputParameters", input_parameter),
        output_raw_format=m.str("outputRawFormat") if "outputRawFormat" in data else None,
        output_schema=m.str("outputSchema") if "outputSchema" in data else None,
        output_parameters=m.items("outputParameters", output_parameter),
        body=m.plain("body") if "body" in data else None,
        output_media_type=m.str("outputMediaType") if "outputMediaType" in data else None,
        max_binary_size=byte_size(m, "maxBinarySize") if "maxBinarySize" in data else None,
        pagination=pagination(m) if "pagination" in data else None,
        resilience=resilience(m, operation=True) if not data.keys().isdisjoint(RESILIENCE_KEYS) else None,
        cache=cache(m, operation=True) if CACHE_KEY in data else None,
    )


def _consumed_resource(m: Map) -> spec.ConsumedResource | None:
    m.known("name", "path", "label", "description", "inputParameters", "operations")
    name, path = m.str("name", required=True), m.str("path", required=True)
    operations = m.items("operations", _consumed_operation, required=True)
    check_template(m, "path", path=True)
    if name is None or path is None:
        return None
    return spec.ConsumedResource(
        name=name,
        path=path,
        where=m.where,
        operations=operations,
        label=m.str("label"),
        description=m.str("description"),
        input_parameters=m.items("inputParameters", input_parameter),
    )


def consumes(m: Map) -> spec.Consumes | None:
    """An inline entry; import entries (`{from, import, as}`) are read by engine/spec/imports.py."""
    known = ("type", "namespace", "baseUri", "description", "inputParameters", "authentication", "resources")
    m.known(*known, *RESILIENCE_KEYS, CACHE_KEY)  # engine/spec/resilience.py, engine/spec/caching.py
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
    built = spec.Consumes(
        namespace=namespace,
        base_uri=base_uri,
        where=m.where,
        resources=resources,
        description=m.str("description"),
        input_parameters=m.items("inputParameters", input_parameter),
        authentication=authentication(auth) if auth else None,
        resilience=resilience(m, operation=False),
        cache=cache(m, operation=False),
    )
    return checked_paging(m.ctx, built)  # pagination parameters declared (engine/spec/paging.py)
