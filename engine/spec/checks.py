"""Checks of what the builders read, so the runtime never meets a broken value.

Values the runtime compiles later (templates, `with` values, `pattern` regular expressions,
request bodies) are compiled here once, at their position. Checks across entries (the
authentication an exposed server can do, duplicate names and routes in one block, `call`
references, mapping targets, skill tools pointing at sibling actions) need what was built, so
the builders call them after reading; `check_skills` runs on the whole capability.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit

from . import model as spec
from .fields import Context, Map, item_loc, kind_of, value_loc
from ..errors import CapabilityError, Location, Problem
from ..templates import Template, TemplateError


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


def check_template(m: Map, key: str, *, path: bool = False) -> None:
    """The string at `key`, if any, must be a valid template (`path`: a URL path, `{name}` allowed)."""
    value = m.data.get(key)
    if isinstance(value, str) and (problem := _template_problem(value, path=path)) is not None:
        m.bad(key, problem)


def check_templates_in(ctx: Context, value: Any, where: Location) -> None:
    """Every string inside `value` (a body, nested data) must be a valid template."""
    if isinstance(value, str):
        if (problem := _template_problem(value)) is not None:
            ctx.problem(where, problem)
    elif isinstance(value, dict):
        for key, item in value.items():
            check_templates_in(ctx, item, value_loc(ctx.file, value, key, where))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            check_templates_in(ctx, item, item_loc(ctx.file, value, index, f"{where.path}[{index}]", where))


def check_with(m: Map, key: str = "with") -> None:
    """`with` values that are strings are templates (or caller references, which never fail)."""
    with_ = m.data.get(key)
    if isinstance(with_, dict):
        for name, value in with_.items():
            if isinstance(value, str) and (problem := _template_problem(value)) is not None:
                m.ctx.problem(value_loc(m.ctx.file, with_, name, m.loc(key)), problem)


_JS_ONLY_ESCAPE = re.compile(r"bad escape \\[pPk]|unknown extension \?<[^=!]")


def check_pattern(m: Map) -> None:
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


BODY_TYPES = ("json", "text", "xml", "sparql", "formUrlEncoded", "multipartForm")


def check_body(m: Map) -> None:
    """A `body` is a raw template, JSON data, or `{type, data}`; every string in it is a template."""
    body = m.data["body"]
    where = m.loc("body", value=True)
    check_templates_in(m.ctx, body, where)
    if not isinstance(body, dict) or "type" not in body:
        return
    typed = Map(m.ctx, body, where.path, where)
    kind = typed.str("type", choices=BODY_TYPES)
    data = body.get("data")
    if kind == "multipartForm":
        if not isinstance(data, list):
            typed.bad("data", f"a multipartForm body's 'data' must be a list of parts; got {kind_of(data)}")
            return
        for _part in typed.items("data", lambda p: p.str("name", required=True)):  # checked as it is read
            pass
    elif kind in ("text", "xml", "sparql") and isinstance(data, (dict, list)):
        typed.bad("data", f"a {kind} body's 'data' must be a string; got {kind_of(data)}")


def check_mapping_targets(m: Map, mappings: tuple[spec.StepMapping, ...]) -> None:
    """A dotted `targetName` builds objects, so no target may also be a plain value on its path."""
    targets = {mapping.target_name: mapping for mapping in mappings}
    for mapping in mappings:
        parts = mapping.target_name.split(".")
        if "" in parts:
            m.ctx.problem(
                mapping.where.key("targetName"),
                f"'targetName' '{mapping.target_name}' has an empty segment; write names joined by single dots",
            )
            continue
        for end in range(1, len(parts)):
            prefix = ".".join(parts[:end])
            if prefix in targets:
                m.ctx.problem(
                    mapping.where.key("targetName"),
                    f"'targetName' '{mapping.target_name}' puts a field inside '{prefix}', which another"
                    f" mapping sets as a whole value at {targets[prefix].where}",
                )
                break


def check_call(m: Map, invocation: spec.Invocation) -> None:
    """A `call` names one consumed operation as `<namespace>.<operation>`."""
    if invocation.call is not None and invocation.call.count(".") != 1:
        m.bad("call", f"'call' must be '<namespace>.<operation>'; got '{invocation.call}'")


SERVER_AUTH_TYPES = ("bearer", "apikey", "basic", "oauth2")
OAUTH2_KEYS = ("type", "authorizationServerUri", "resource", "scopes", "audience", "tokenEndpoint", "tokenValidation")
_SCOPE_TOKEN = re.compile(r"[\x21\x23-\x5b\x5d-\x7e]+")  # RFC 6749 §3.3
_LOOPBACK = ("localhost", "127.0.0.1", "::1")


def check_server_auth(m: Map, auth: spec.Authentication) -> None:
    """What an exposed server can check; consumed APIs take more (digest, OAuth2 client credentials, cookies)."""
    if auth.type not in SERVER_AUTH_TYPES:
        m.bad(
            "type",
            f"{auth.type} authentication of exposed servers is not supported yet; use {', '.join(SERVER_AUTH_TYPES)}",
        )
    elif auth.placement == "cookie":
        m.bad("placement", "an exposed server reads an API key from a header or the query, not a cookie")
    elif auth.type == "oauth2":
        _check_resource_server(m, auth.resource_server)


def _check_resource_server(m: Map, server: spec.ResourceServer | None) -> None:
    """An oauth2 block checks JWTs against its issuer's keys; what it declares must let it do so."""
    m.known(*OAUTH2_KEYS)
    if server is None:
        return  # the missing or malformed URIs are problems already
    if server.token_validation != "jwks":
        m.bad(
            "tokenValidation",
            f"tokenValidation '{server.token_validation}' (RFC 7662) is not supported by this runtime;"
            " use jwks, which checks JWT access tokens against the authorization server's keys",
        )
    scopes = m.data.get("scopes")
    if isinstance(scopes, list):
        for index, scope in enumerate(scopes):
            if isinstance(scope, str) and not _SCOPE_TOKEN.fullmatch(scope):
                m.ctx.problem(
                    item_loc(m.ctx.file, scopes, index, f"{m.path}.scopes[{index}]", m.loc("scopes")),
                    f"scope {scope!r} is not one OAuth scope (no spaces, quotes or backslashes; RFC 6749 §3.3)",
                )
    resource = urlsplit(server.resource)
    if resource.fragment or "#" in server.resource:
        m.bad("resource", f"'resource' must not have a fragment (RFC 8707); got '{server.resource}'")
    elif not resource.hostname:
        m.bad("resource", f"'resource' must be an absolute URI with a host; got '{server.resource}'")
    issuer = urlsplit(server.authorization_server)
    if issuer.query or issuer.fragment:
        m.bad("authorizationServerUri", "an issuer identifier has no query or fragment (RFC 8414 §2)")
    elif not issuer.hostname:
        m.bad("authorizationServerUri", f"'authorizationServerUri' needs a host; got '{server.authorization_server}'")
    elif issuer.scheme == "http" and issuer.hostname not in _LOOPBACK:
        m.ctx.warn(
            m.loc("authorizationServerUri", value=True),
            "the authorization server is reached over plain http: whoever can change its answers can mint"
            " tokens this server accepts; use https",
        )


def duplicates(
    ctx: Context, what: str, named: list[tuple[str, Location]], within: str = "of one block", key: str = ""
) -> None:
    """Each name once per block (or file): a later declaration is a problem that points at the first.

    With `key`, each place is an entry's and the problem points at that key of it (made only for a problem).
    """
    seen: dict[str, Location] = {}
    for name, where in named:
        first = seen.setdefault(name, where)
        if first is not where:
            if key:
                where, first = where.key(key), first.key(key)
            ctx.problem(
                where, f"{what} '{name}' is already declared at {first} ({first.path}); {what}s {within} must be unique"
            )


def duplicate_routes(ctx: Context, resources: tuple[spec.ExposedResource, ...]) -> None:
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
                ctx.problem(
                    where,
                    f"{what} is already declared at {first[1]} ({first[0]}, {first[1].path}); the"
                    " router cannot tell them apart (variable names do not count)",
                )


def check_skills(capability: spec.Capability) -> None:
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
                    problems.append(
                        Problem(
                            tool.where,
                            f"skill tool '{tool.name}': sourceNamespace"
                            f" '{tool.source_namespace}' is not a REST or MCP block of this file"
                            f" (known: {known})",
                        )
                    )
                elif tool.action not in actions[tool.source_namespace][1]:
                    problems.append(
                        Problem(
                            tool.where,
                            f"skill tool '{tool.name}': '{tool.source_namespace}' has no"
                            f" operation or tool named '{tool.action}'",
                        )
                    )
    if problems:
        raise CapabilityError(problems)
