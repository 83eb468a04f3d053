"""The Runtime: owns what was loaded, the registry, bindings and upstream clients.

No global state: tests and embedding services build their own. Start-up problems (an
unresolved binding, a namespace with no base URI) are raised when the runtime is built,
before anything listens. Exposed calls are compiled against the narrow `calls.CallContext`
seam (operations by key, bindings, caller prefixes, `send`, functions by `ref`), which the
Runtime satisfies and passes as itself: calls never see the Runtime's type.
"""

from __future__ import annotations

import contextlib
import gc
import logging
import os
from pathlib import Path
from typing import Any
from collections.abc import Coroutine, Iterable, Iterator, Mapping

from . import bindings as binding_values
from .calls import ExposedCall
from .calls.pages import follow_link
from .errors import CapabilityError, Location, Problem
from .limits import Limits
from .observe import Observer
from .registry import CALLER_PREFIXES, Forwarder, Operation, Registry, Scope, with_aliases
from .spec import AggregateFunction, Capability, Consumes, Exposes, Invocation, McpExposes, RestExposes
from .spec import load_capabilities
from .templates import Template
from .upstream import OAuth2ClientCredentials, Upstream, UpstreamResponse
from .upstream.resilience import Resilient
from .upstream.cache import CachedOperation, SharedStore, shared_store
from .spec.caching import implied as implied_caches

log = logging.getLogger("naftiko")

DEFAULT_TIMEOUT = 30.0
BASE_URI_ENV = "NAFTIKO_BASE_URI_"


def base_uri_variable(namespace: str) -> str:
    """The environment variable that overrides a namespace's base URI."""
    return BASE_URI_ENV + namespace.upper().replace("-", "_").replace(".", "_")


class Runtime:
    """Loaded capabilities, ready to call and to serve."""

    def __init__(
        self,
        capabilities: list[Capability],
        *,
        base_uris: Mapping[str, str] | None = None,
        environ: Mapping[str, str] | None = None,
        timeout: float | None = None,
        limits: Limits | None = None,
        resolve_environment: bool = True,
        observer: Observer | None = None,
    ) -> None:
        """Compile everything; with `resolve_environment=False` only check (no bindings, no upstreams).

        `limits` defaults to `Limits.from_env(environ)`; `environ` also gives the proxy variables.
        `observer` is told of every inbound and upstream call (see `observe`); None costs nothing.
        """
        env = os.environ if environ is None else environ
        self.environ = env
        self.observer = observer
        self.capabilities = capabilities
        self.limits = limits if limits is not None else Limits.from_env(env)
        for capability in capabilities:
            for warning in capability.warnings:
                log.warning("%s", warning)
        self.timeout = timeout if timeout is not None else float(env.get("NAFTIKO_UPSTREAM_TIMEOUT", DEFAULT_TIMEOUT))
        consumes = [c for cap in capabilities for c in cap.consumes]
        self.registry = Registry(consumes, self.limits)
        self.exposes: list[Exposes] = [e for cap in capabilities for e in cap.exposes]
        aggregates = [a for cap in capabilities for a in cap.aggregates]
        self.functions = {f"{a.namespace}.{f.name}": f for a in aggregates for f in a.functions}
        self.prefixes = (
            CALLER_PREFIXES
            | frozenset(e.namespace for e in self.exposes if e.namespace)
            | frozenset(a.namespace for a in aggregates)
        )
        self._calls: dict[int, ExposedCall] = {}
        self._started = 0
        self._compile_invocations()
        self._bindings: dict[str | None, dict[str, str]] = {None: {}}
        self.upstreams: dict[str, Upstream] = {}
        if resolve_environment:
            for capability in capabilities:
                values = binding_values.resolve(capability, env)
                self._bindings[None].update(values)
                for entry in capability.consumes:
                    self._bindings[entry.namespace] = values
            self.upstreams = {c.namespace: self._upstream(c, _base_uri(c, base_uris or {}, env)) for c in consumes}
            _check_unknown_namespaces(base_uris or {}, self.upstreams)
        self.shared_cache = shared_store(env) if resolve_environment else None  # NAFTIKO_CACHE_REDIS_URL
        implied = implied_caches(capabilities)  # GET/HEAD calls of functions declared `cacheable`
        self.caches = {  # engine/upstream/cache.py
            key: op for c in consumes for key, op in _caches(c, implied, self.shared_cache).items()
        }

    def _upstream(self, consumes: Consumes, base_uri: str) -> Upstream:
        """The namespace's client, with digest or OAuth2 credentials rendered from bindings."""
        auth = consumes.authentication
        options: dict[str, Any] = {"limits": self.limits, "environ": self.environ, "observer": self.observer}
        options["resilience"] = _resilience(consumes)  # engine/upstream/resilience.py; None: plain calls
        if auth is None or auth.type not in ("digest", "oauth2"):
            return Upstream(consumes.namespace, base_uri, self.timeout, **options)
        scope = Scope(self.bindings_for(consumes.namespace), {}, self.prefixes)

        def field(name: str, value: Any) -> str:
            if not value:
                raise CapabilityError.at(
                    auth.where, f"{auth.type} authentication of '{consumes.namespace}' needs '{name}'"
                )
            return Template.compile(str(value)).render(scope)

        if auth.type == "digest":
            return Upstream(
                consumes.namespace,
                base_uri,
                self.timeout,
                digest=(field("username", auth.username), field("password", auth.password)),
                **options,
            )
        scopes = auth.extra.get("scopes") or []
        oauth2 = OAuth2ClientCredentials(
            field("tokenEndpoint", auth.extra.get("tokenEndpoint")),
            field("clientId", auth.extra.get("clientId")),
            field("clientSecret", auth.extra.get("clientSecret")),
            [str(s) for s in (scopes if isinstance(scopes, list) else str(scopes).split())],
            auth.extra.get("audience") or auth.extra.get("resource"),
            consumes.namespace,
        )
        return Upstream(consumes.namespace, base_uri, self.timeout, oauth2=oauth2, **options)

    @classmethod
    def load(cls, *paths: str | Path, **options: Any) -> Runtime:
        """Load capability files or folders (see `spec.load_capabilities`) into a runtime."""
        with gc_paused():
            return cls(load_capabilities(paths), **options)

    def observe(self, observer: Observer | None) -> None:
        """Report every call to `observer` from now on (None: stop). Adapters read it when they are
        built, so attach it before building them: `naftiko serve` does, for a control block."""
        self.observer = observer
        for upstream in self.upstreams.values():
            upstream.observer = observer

    # --- lifecycle ---------------------------------------------------------------------------

    async def start(self) -> None:
        """Open the upstream clients; nested starts are counted so adapters can share one."""
        self._started += 1
        if self._started == 1:
            for upstream in self.upstreams.values():
                await upstream.start()

    async def stop(self) -> None:
        self._started = max(0, self._started - 1)
        if self._started == 0:
            for upstream in self.upstreams.values():
                await upstream.close()
            if self.shared_cache is not None:
                await self.shared_cache.close()

    async def __aenter__(self) -> Runtime:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # --- calling: the seam exposed calls are built on (this satisfies `calls.CallContext`) -----------

    def operation(self, key: str) -> Operation:
        """The consumed operation `namespace.name`; `UnknownOperation` when there is none."""
        return self.registry.get(key)

    def bindings_for(self, namespace: str | None) -> dict[str, str]:
        return self._bindings.get(namespace, self._bindings[None])

    def _compile_invocations(self) -> None:
        """Compile every exposed invocation now, so a bad `call`, `ref` or forward fails at load.

        `ref` chains are checked first (cycles, length), so compiling them cannot recurse without end.
        """
        problems = _ref_problems(self.functions)
        if problems:
            raise CapabilityError(problems)
        for exposes in self.exposes:
            limit = exposes.max_binary_size if isinstance(exposes, (RestExposes, McpExposes)) else None
            for invocation, where in _invocations(exposes):
                try:
                    self.exposed_call(invocation, where, limit)
                except CapabilityError as exc:
                    problems.extend(exc.problems)
            if isinstance(exposes, McpExposes):
                problems.extend(_duplicate_tools(exposes, self.functions))
            elif isinstance(exposes, RestExposes):
                for resource in exposes.resources:
                    forward = resource.forward
                    if forward is not None and forward.target_namespace not in self.registry.namespaces:
                        known = ", ".join(sorted(self.registry.namespaces)) or "none"
                        where = forward.where
                        problems.append(
                            Problem(
                                Location(where.file, where.line, where.column, f"{where.path}.targetNamespace"),
                                f"forward target '{forward.target_namespace}' is not a"
                                f" consumes namespace (known: {known})",
                            )
                        )
        if problems:
            raise CapabilityError(problems)

    def function_call(self, ref: str, where: Location) -> ExposedCall:
        """The compiled aggregate function that `ref: "<aggregate>.<function>"` names."""
        function = self.functions.get(ref)
        if function is None:
            known = ", ".join(sorted(self.functions)) or "none"
            raise CapabilityError.at(where, f"ref '{ref}' names no aggregate function (known: {known})")
        return self.exposed_call(function.invocation, function.where)

    def exposed_call(self, invocation: Invocation, where: Location, max_binary: int | None = None) -> ExposedCall:
        """The compiled invocation of an exposed operation or tool (built once, then reused).

        Every exposed one is built at load, with its block's `maxBinarySize`; later lookups get that one.
        """
        key = id(invocation)
        call = self._calls.get(key)
        if call is None:
            call = self._calls[key] = ExposedCall(self, invocation, where, max_binary)  # self is a CallContext
        return call

    def send(self, operation: Operation, params: Mapping[str, Any]) -> Coroutine[Any, Any, UpstreamResponse]:
        """Prepare and send one consumed operation; the body is left unread.

        Returns the upstream's own coroutine (awaited by the caller): one frame less for every
        wait on the upstream to resume through.
        """
        if operation.namespace not in self.upstreams:
            raise RuntimeError("this runtime was built with resolve_environment=False and cannot call upstreams")
        prepared = operation.prepare(params, self.bindings_for(operation.namespace), self.prefixes)
        cached = self.caches.get(operation.key) if self.caches else None
        if cached is not None:  # a `cache` block: looked up, revalidated or stored (engine/upstream/cache.py)
            return cached.send(self.upstreams[operation.namespace], operation.key, prepared)
        return self.upstreams[operation.namespace].send(operation.key, prepared)

    def send_url(self, operation: Operation, params: Mapping[str, Any], url: str) -> Any:
        """`send` to a next-page URL an upstream gave (`Link: rel=next`), only under the base URI (calls/pages.py)."""
        prepared = operation.prepare(params, self.bindings_for(operation.namespace), self.prefixes)
        return follow_link(self.upstreams[operation.namespace], operation, prepared, url)

    def page_url(self, operation: Operation, params: Mapping[str, Any]) -> str:
        """The absolute URL `send` requests: a relative `Link` resolves against it (calls/pages.py)."""
        prepared = operation.prepare(params, self.bindings_for(operation.namespace), self.prefixes)
        return self.upstreams[operation.namespace].base_uri + prepared.target

    async def forward(
        self,
        forwarder: Forwarder,
        method: str,
        path: str,
        query: str,
        headers: list[tuple[str, str]],
        body: bytes | None,
    ) -> UpstreamResponse:
        """Send a request as it came (trusted headers only) to a forward target namespace."""
        bindings = self.bindings_for(forwarder.namespace)
        prepared = forwarder.prepare(method, path, query, headers, body, bindings, self.prefixes)
        return await self.upstreams[forwarder.namespace].send(f"forward {method}", prepared)

    async def call(self, key: str, params: Mapping[str, Any] | None = None) -> tuple[int, Any]:
        """Call `namespace.operation` with `params`; returns (status, JSON body or text)."""
        operation = self.registry.get(key)
        response = await self.send(operation, with_aliases(params or {}))
        if response.is_json:
            return response.status, await response.json()
        return response.status, (await response.read()).decode("utf-8", "replace")

    def exposes_named(self, namespace: str) -> Exposes:
        for exposes in self.exposes:
            if exposes.namespace == namespace:
                return exposes
        known = ", ".join(e.namespace for e in self.exposes if e.namespace) or "none"
        raise KeyError(f"no exposes block with namespace '{namespace}' (known: {known})")


def _invocations(exposes: Exposes) -> Iterator[tuple[Invocation, Location]]:
    if isinstance(exposes, RestExposes):
        for resource in exposes.resources:
            for operation in resource.operations:
                yield operation.invocation, operation.where
    elif isinstance(exposes, McpExposes):
        for tool in exposes.tools:
            yield tool.invocation, tool.where
        for mcp_resource in exposes.resources:  # not `resource`: that names a REST one above
            if mcp_resource.invocation is not None:
                yield mcp_resource.invocation, mcp_resource.where


MAX_REF_DEPTH = 16
"""The longest chain of aggregate functions reached through `ref` from one another."""


def _ref_problems(functions: Mapping[str, AggregateFunction]) -> list[Problem]:
    """`ref` cycles (named, at the ref that closes them) and chains longer than MAX_REF_DEPTH.

    Each function refs at most one other, so one walk per function, memoised, is linear.
    """
    problems: list[Problem] = []
    depth: dict[str, int] = {}  # functions reached through ref from here, itself included; -1: leads into a cycle
    for start in functions:
        path: list[str] = []
        key: str | None = start
        while key is not None and key in functions and key not in depth and key not in path:
            path.append(key)
            key = functions[key].invocation.ref
        if key is not None and key in path:
            cycle = path[path.index(key) :]
            problems.append(
                Problem(
                    _ref_location(functions[cycle[-1]]),
                    "ref cycle: " + " → ".join(cycle + [key]) + "; a function cannot reach itself through ref",
                )
            )
            below = -1
        else:
            below = depth.get(key, 0) if key is not None else 0
        for name in reversed(path):
            below = -1 if below < 0 else below + 1
            depth[name] = below
    referenced = {f.invocation.ref for f in functions.values() if f.invocation.ref}
    for key, function in functions.items():
        if depth[key] > MAX_REF_DEPTH and key not in referenced:
            chain, ref = [key], function.invocation.ref
            while ref is not None and len(chain) < 3:
                chain.append(ref)
                ref = functions[ref].invocation.ref
            problems.append(
                Problem(
                    _ref_location(function),
                    f"ref chain {' → '.join(chain)} → … reaches {depth[key]} functions; at most {MAX_REF_DEPTH}",
                )
            )
    return problems


def _ref_location(function: AggregateFunction) -> Location:
    where = function.invocation.ref_where
    if where is not None:
        return where
    return Location(function.where.file, function.where.line, function.where.column, f"{function.where.path}.ref")


def _duplicate_tools(exposes: McpExposes, functions: Mapping[str, AggregateFunction]) -> list[Problem]:
    """Tool names as served: a `ref` tool with no name of its own takes its function's."""
    seen: dict[str, Location] = {}
    problems: list[Problem] = []
    for tool in exposes.tools:
        function = functions.get(tool.invocation.ref or "")
        name = tool.name or (function.name if function else "")
        first = seen.setdefault(name, tool.where)
        if first is not tool.where:
            how = "" if tool.name else f" (its name comes from ref '{tool.invocation.ref}')"
            problems.append(
                Problem(
                    tool.where,
                    f"tool '{name}'{how} is already declared at {first} ({first.path});"
                    " tool names of one MCP block must be unique",
                )
            )
    return problems


def _base_uri(consumes: Consumes, overrides: Mapping[str, str], env: Mapping[str, str]) -> str:
    variable = base_uri_variable(consumes.namespace)
    uri = overrides.get(consumes.namespace) or env.get(variable) or consumes.base_uri
    if not uri:
        raise CapabilityError.at(
            Location(consumes.where.file, consumes.where.line, consumes.where.column, f"{consumes.where.path}.baseUri"),
            f"consumes namespace '{consumes.namespace}' has an empty baseUri: pass"
            f" --base-uri {consumes.namespace}=URL or set {variable}",
        )
    if not uri.startswith(("http://", "https://")):
        raise CapabilityError.at(
            consumes.where, f"base URI for '{consumes.namespace}' must start with http:// or https://; got '{uri}'"
        )
    return uri


def _resilience(consumes: Consumes) -> Resilient | None:
    """The namespace's resilience policy, its operations' blocks over its own; None when nothing asks for one."""
    written = {  # keys made only for the operations that have a block (most have none)
        f"{consumes.namespace}.{o.name}": o.resilience
        for r in consumes.resources
        for o in r.operations
        if o.resilience is not None
    }
    if consumes.resilience is None and not written:
        return None
    return Resilient.build(consumes.namespace, consumes.resilience, written)


def _caches(consumes: Consumes, implied: frozenset[str], shared: SharedStore | None) -> dict[str, CachedOperation]:
    """The namespace's cached operations (one store for the namespace), its operations' blocks over its own."""
    if (
        consumes.cache is None
        and not implied
        and all(o.cache is None for r in consumes.resources for o in r.operations)
    ):
        return {}  # nothing asks for a cache: no keys to make for 10,000 operations
    ops = {f"{consumes.namespace}.{o.name}": o.cache for r in consumes.resources for o in r.operations}
    return CachedOperation.build(consumes.cache, dict(ops), implied, shared)


def _check_unknown_namespaces(overrides: Mapping[str, str], upstreams: Mapping[str, Upstream]) -> None:
    unknown = [ns for ns in overrides if ns not in upstreams]
    if unknown:
        known = ", ".join(sorted(upstreams)) or "none"
        raise CapabilityError(
            [Problem(Location("--base-uri"), f"no consumes namespace '{ns}' (known: {known})") for ns in unknown]
        )


def load(paths: Iterable[str | Path], **options: Any) -> Runtime:
    return Runtime.load(*paths, **options)


@contextlib.contextmanager
def gc_paused() -> Iterator[None]:
    """No garbage collection while loading: nearly all it allocates lives on, so collecting
    meanwhile only repeats work (10,000 operations: 4.0 s to load with it, 2.7 s without)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()
