"""Builders of what a capability exposes: REST, MCP and skill servers.

A REST server has resources (a path, operations by method, or a `forward` to a consumed
namespace); an MCP server has tools, resources and prompts; a skill server has skills whose tools
point at sibling REST/MCP actions or carry instructions. Each operation, tool and dynamic resource
holds an invocation, read by `invocations` (with tool parameters); inputs and authentication are
read by the `consumed` builders; checks across entries (routes, names, server auth) come from `checks`.
"""

from __future__ import annotations

import re
from dataclasses import replace

from . import model as spec
from .checks import check_call, check_server_auth, check_template, duplicate_routes, duplicates
from .consumed import HTTP_METHODS, authentication, input_parameter
from .fields import Map, file_location, strings
from .invocations import invocation_of, tool_parameter
from .sizes import byte_size
from ..jsonpath import JsonPathError, compile_path


def _exposed_input_parameter(m: Map) -> spec.InputParameter | None:
    """An exposed input: a `body` input whose `value` starts with `$` reads the body by JSONPath."""
    param = input_parameter(m)
    if param is not None and param.in_ == "body" and isinstance(param.value, str) and param.value.startswith("$"):
        try:
            compile_path(param.value)
        except JsonPathError as exc:
            m.bad("value", str(exc))
            return None
    return param


def _exposed_operation(m: Map) -> spec.ExposedOperation | None:
    m.known(
        "name",
        "label",
        "description",
        "method",
        "inputParameters",
        "ref",
        "call",
        "with",
        "outputParameters",
        "steps",
        "mappings",
    )
    method = m.str("method", required=True)
    if method is not None and method.upper() not in HTTP_METHODS:
        m.bad("method", f"'method' must be one of {', '.join(HTTP_METHODS)}; got '{method}'")
        return None
    invocation = invocation_of(m)
    check_call(m, invocation)
    if method is None:
        return None
    data = m.data  # keys read directly where no dialect respells them (fields.IKANOS_SPELLINGS): absent, None
    return spec.ExposedOperation(
        method=method.upper(),
        where=m.where,
        invocation=invocation,
        name=m.str("name") if "name" in data else None,
        label=m.str("label"),
        description=m.str("description") if "description" in data else None,
        input_parameters=m.items("inputParameters", _exposed_input_parameter) if "inputParameters" in data else (),
    )


def _forward(m: Map) -> spec.Forward | None:
    m.known("targetNamespace", "trustedHeaders")
    target = m.str("targetNamespace", required=True)
    headers = strings(m, "trustedHeaders")
    if target is None:
        return None
    return spec.Forward(target_namespace=target, trusted_headers=headers, where=m.where)


def _exposed_resource(m: Map) -> spec.ExposedResource | None:
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
            m.bad(
                "path",
                f"path segment '{segment}' mixes text and braces; routes match whole segments, so a"
                " variable is a segment of its own ('{name}' or '{{name}}', names of letters, digits,"
                " '_', '-', '.')",
            )
            return None
    return spec.ExposedResource(
        path=path,
        where=m.where,
        operations=operations,
        name=m.str("name"),
        label=m.str("label"),
        description=m.str("description"),
        input_parameters=m.items("inputParameters", _exposed_input_parameter),
        forward=_forward(forward) if forward else None,
    )


def _hints(m: Map) -> spec.ToolHints:
    m.known("readOnly", "destructive", "idempotent", "openWorld")
    return spec.ToolHints(
        read_only=m.bool("readOnly"),
        destructive=m.bool("destructive"),
        idempotent=m.bool("idempotent"),
        open_world=m.bool("openWorld"),
    )


def _tool(m: Map) -> spec.Tool | None:
    m.known(
        "name",
        "label",
        "description",
        "inputParameters",
        "ref",
        "call",
        "with",
        "steps",
        "mappings",
        "hints",
        "outputParameters",
    )
    name = m.str("name", required=not m.has("ref"))
    hints = m.map("hints")
    invocation = invocation_of(m)
    check_call(m, invocation)
    if name is None and invocation.ref is None:
        return None
    return spec.Tool(
        name=name or "",
        where=m.where,
        invocation=invocation,
        label=m.str("label"),
        description=m.str("description") if "description" in m.data else None,  # no dialect respells it
        input_parameters=m.items("inputParameters", tool_parameter),
        hints=_hints(hints) if hints else None,
    )


def _mcp_resource(m: Map) -> spec.Resource | None:
    m.known(
        "name",
        "label",
        "uri",
        "description",
        "mimeType",
        "call",
        "with",
        "steps",
        "mappings",
        "outputParameters",
        "location",
    )
    name, uri = m.str("name", required=True), m.str("uri", required=True)
    dynamic = m.has("call") or m.has("steps")
    invocation = invocation_of(m) if dynamic else None
    if uri is not None:
        variables = [v.replace("-", "_") for v in _URI_VARIABLE.findall(uri)]
        if len(set(variables)) != len(variables):
            twice = ", ".join(sorted({v for v in variables if variables.count(v) > 1}))
            m.bad(
                "uri", f"'uri' names a variable twice ({twice}; '-' and '_' count as the same): each needs its own name"
            )
    if name is None or uri is None:
        return None
    return spec.Resource(
        name=name,
        uri=uri,
        where=m.where,
        label=m.str("label"),
        description=m.str("description"),
        mime_type=m.str("mimeType"),
        invocation=invocation,
        location=file_location(m.str("location"), m.ctx.file),
    )


_URI_VARIABLE = re.compile(r"\{([A-Za-z_][\w-]*)\}")


def _prompt_argument(m: Map) -> spec.PromptArgument | None:
    m.known("name", "label", "description", "required")
    name = m.str("name", required=True)
    if name is None:
        return None
    return spec.PromptArgument(
        name=name, description=m.str("description"), required=bool(m.bool("required", True)), label=m.str("label")
    )


def _prompt(m: Map) -> spec.Prompt | None:
    m.known("name", "label", "description", "arguments", "template", "location")
    name = m.str("name", required=True)
    messages: list[tuple[str, str]] = []
    for message in m.items(
        "template",
        lambda mm: (mm.str("role", required=True, choices=("user", "assistant")), mm.str("content", required=True)),
    ):
        if None not in message:
            messages.append(message)  # type: ignore[arg-type]
    if name is None:
        return None
    return spec.Prompt(
        name=name,
        where=m.where,
        label=m.str("label"),
        description=m.str("description"),
        arguments=m.items("arguments", _prompt_argument),
        template=tuple(messages),
        location=file_location(m.str("location"), m.ctx.file),
    )


def exposes(m: Map) -> spec.Exposes | None:
    type_ = m.str("type", required=True, choices=("rest", "mcp", "skill", "control"))
    namespace = m.str("namespace", required=type_ in ("rest", "mcp", "skill"))
    auth_map = m.map("authentication")
    auth = authentication(auth_map) if auth_map else None
    if auth_map is not None and auth is not None:
        if auth.type == "oauth2":
            auth = replace(auth, resource_server=_resource_server(auth_map))
        check_server_auth(auth_map, auth)
    if type_ == "rest":
        m.known(
            "type",
            "address",
            "port",
            "namespace",
            "description",
            "authentication",
            "resources",
            "inputParameters",
            "maxBinarySize",
        )
        port = m.int("port", required=True)
        resources = m.items("resources", _exposed_resource)
        duplicate_routes(m.ctx, resources)
        if namespace is None or port is None:
            return None
        return spec.RestExposes(
            namespace=namespace,
            port=port,
            where=m.where,
            resources=resources,
            address=m.str("address"),
            authentication=auth,
            max_binary_size=byte_size(m, "maxBinarySize"),
        )
    if type_ == "mcp":
        m.known(
            "type",
            "transport",
            "address",
            "port",
            "namespace",
            "description",
            "authentication",
            "tools",
            "resources",
            "prompts",
            "maxBinarySize",
        )
        transport = m.str("transport", choices=("http", "stdio"), default="http") or "http"
        port = m.int("port", required=transport == "http")
        tools = m.items("tools", _tool, required=True)
        mcp_resources = m.items("resources", _mcp_resource)
        prompts = m.items("prompts", _prompt)
        duplicates(m.ctx, "tool", [(tool.name, tool.where) for tool in tools if tool.name], key="name")
        duplicates(m.ctx, "resource URI", [(r.uri, r.where) for r in mcp_resources], key="uri")
        duplicates(m.ctx, "prompt", [(p.name, p.where) for p in prompts], key="name")
        if namespace is None:
            return None
        return spec.McpExposes(
            namespace=namespace,
            where=m.where,
            tools=tools,
            port=port,
            address=m.str("address"),
            transport=transport,
            description=m.str("description"),
            authentication=auth,
            resources=mcp_resources,
            prompts=prompts,
            max_binary_size=byte_size(m, "maxBinarySize"),
        )
    if type_ == "skill":
        m.known("type", "address", "port", "namespace", "description", "authentication", "skills")
        port = m.int("port", required=True)
        skills = m.items("skills", _skill, required=True)
        if namespace is None or port is None:
            return None
        return spec.SkillExposes(
            namespace=namespace,
            port=port,
            where=m.where,
            skills=skills,
            address=m.str("address"),
            description=m.str("description"),
            authentication=auth,
        )
    if type_ == "control":
        return _control(m, auth)
    return None


_UNSERVED_MANAGEMENT = {
    "reload": "nor by the reference engine",
    "validate": "nor by the reference engine; `naftiko validate` checks files",
    "logs": "nor by the reference engine",
    "scripting": "it runs no script steps",
}


def _resource_server(m: Map) -> spec.ResourceServer | None:
    issuer = m.str("authorizationServerUri", required=True)
    resource = m.str("resource", required=True)
    for key in ("authorizationServerUri", "resource", "tokenEndpoint"):
        value = m.str(key)
        if value is not None and not value.startswith(("https://", "http://")):
            m.bad(key, f"'{key}' must be an http(s) URI; got '{value}'")
    if issuer is None or resource is None:
        return None
    return spec.ResourceServer(
        authorization_server=issuer,
        resource=resource,
        where=m.where,
        scopes=strings(m, "scopes"),
        audience=m.str("audience"),
        token_validation=m.str("tokenValidation", choices=("jwks", "introspection"), default="jwks") or "jwks",
    )


def _control(m: Map, auth: spec.Authentication | None) -> spec.ControlExposes | None:
    m.known("type", "address", "port", "authentication", "management", "observability")
    port = m.int("port", required=True)
    management = m.map("management")
    health, info = True, False
    if management is not None:
        management.known("health", "info", "reload", "validate", "logs", "scripting")
        health = bool(management.bool("health", True))
        info = bool(management.bool("info", False))
        for unserved, why in _UNSERVED_MANAGEMENT.items():
            if management.has(unserved):
                m.ctx.warn(management.loc(unserved), f"management.{unserved} is not served by this runtime ({why})")
    if port is None:
        return None
    observed = m.map("observability")
    return spec.ControlExposes(
        port=port,
        where=m.where,
        address=m.str("address"),
        authentication=auth,
        health=health,
        info=info,
        observability=_observability(observed) if observed is not None else spec.Observability(),
    )


def _observability(m: Map) -> spec.Observability:
    m.known("enabled", "metrics", "traces", "exporters")
    metrics = m.map("metrics")
    metrics_local = metrics.map("local") if metrics is not None else None
    if metrics is not None:
        metrics.known("local")
    traces = m.map("traces")
    traces_local = traces.map("local") if traces is not None else None
    exporters = m.map("exporters")
    otlp = exporters.map("otlp") if exporters is not None else None
    if exporters is not None:
        exporters.known("otlp")
    if metrics_local is not None:
        metrics_local.known("enabled")
    if traces_local is not None:
        traces_local.known("enabled", "buffer-size")
    if otlp is not None:
        otlp.known("endpoint")
    sampling, propagation = 1.0, "w3c"
    if traces is not None:
        traces.known("sampling", "propagation", "local")
        sampling = _share(traces, "sampling", 1.0)
        propagation = traces.str("propagation", choices=("w3c", "b3"), default="w3c") or "w3c"
    endpoint = otlp.str("endpoint", required=True) if otlp is not None else None
    if otlp is not None:
        check_template(otlp, "endpoint")
    return spec.Observability(
        enabled=bool(m.bool("enabled", True)),
        metrics=bool(metrics_local.bool("enabled", True)) if metrics_local is not None else True,
        traces=bool(traces_local.bool("enabled", True)) if traces_local is not None else True,
        trace_buffer=(traces_local.int("buffer-size", low=10, high=10000) or 100) if traces_local is not None else 100,
        sampling=sampling,
        propagation=propagation,
        otlp_endpoint=endpoint,
    )


def _share(m: Map, key: str, default: float) -> float:
    """A number from 0 to 1 (a sampling rate)."""
    value = m.plain(key)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1:
        m.bad(key, f"'{key}' must be a number from 0 to 1; got {value!r}")
        return default
    return float(value)


def _skill_tool(m: Map) -> spec.SkillTool | None:
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
    return spec.SkillTool(
        name=name,
        description=description,
        where=m.where,
        source_namespace=namespace,
        action=action,
        instruction=instruction,
    )


def _skill(m: Map) -> spec.Skill | None:
    m.known(
        "name",
        "description",
        "license",
        "compatibility",
        "metadata",
        "allowed-tools",
        "argument-hint",
        "user-invocable",
        "disable-model-invocation",
        "location",
        "tools",
    )
    name, description = m.str("name", required=True), m.str("description", required=True)
    tools = m.items("tools", _skill_tool)
    location = file_location(m.str("location"), m.ctx.file)
    if location is None:
        for tool in tools:
            if tool.instruction is not None:
                m.ctx.problem(
                    tool.where,
                    f"skill tool '{tool.name}' is an instruction, which needs a 'location' on skill '{name}'",
                )
    if description is not None and len(description) > 1024:
        m.bad("description", "a skill 'description' must be at most 1024 characters")
    if name is None or description is None:
        return None
    return spec.Skill(
        name=name,
        description=description,
        where=m.where,
        tools=tools,
        location=location,
        license=m.str("license"),
        compatibility=m.str("compatibility"),
        metadata=m.plain("metadata") or {},
        allowed_tools=m.str("allowed-tools"),
        argument_hint=m.str("argument-hint"),
        user_invocable=bool(m.bool("user-invocable", True)),
        disable_model_invocation=bool(m.bool("disable-model-invocation", False)),
    )
