"""One exposes block as an ASGI app: the adapter its type names, behind its authentication."""

from __future__ import annotations

from typing import Any

from .lifespan import RuntimeLifespan
from ..engine import ControlExposes, Exposes, McpExposes, RestExposes, Runtime, SkillExposes


def build_app(runtime: Runtime, namespace: str, **options: Any) -> Any:
    """The ASGI app serving the exposes block named `namespace`, behind its authentication.

    Its lifespan starts and stops the runtime.
    """
    return RuntimeLifespan(exposes_app(runtime, namespace, **options), runtime)


def exposes_app(runtime: Runtime, namespace: str, *, cors_origins: list[str] | None = None, **options: Any) -> Any:
    """`build_app` without the lifespan, for a server that starts and stops the runtime itself.

    `cors_origins` lets browser pages on those origins call the block (CORS); it wraps everything
    else, so a preflight never meets the block's authentication and its 401 still reads in a page.
    """
    return block_app(runtime, runtime.exposes_named(namespace), cors_origins=cors_origins, **options)


def block_app(runtime: Runtime, exposes: Exposes, *, cors_origins: list[str] | None = None, **options: Any) -> Any:
    """`exposes_app` for the block itself (`naftiko serve --control-port` serves one no file declares).

    With an observer on the runtime (a control block's metrics or traces), MCP tool calls and skill
    views are reported to it; REST routes report from inside `RestApp`.
    """
    observer = runtime.observer
    if isinstance(exposes, RestExposes):
        from .rest.app import RestApp

        app: Any = RestApp(runtime, exposes)
    elif isinstance(exposes, McpExposes):
        from .mcp.capability import mcp_http_app

        if observer is None:
            app = mcp_http_app(runtime, exposes, **options)
        else:
            from .control.wrappers import ObservedBackend, TraceHeaders, trace_context

            namespace = exposes.namespace
            app = mcp_http_app(
                runtime, exposes, wrap=lambda backend: ObservedBackend(backend, observer, namespace), **options
            )
            if trace_context(observer) is not None:
                app = TraceHeaders(app, observer)
    elif isinstance(exposes, SkillExposes):
        from .skill.app import skill_app

        app = skill_app(runtime, exposes)
        if observer is not None:
            from .control.wrappers import ObservedSkills

            app = ObservedSkills(app, observer, exposes.namespace)
    elif isinstance(exposes, ControlExposes):
        from .control.app import ControlApp

        app = ControlApp(runtime, exposes)
    else:
        raise ValueError(
            f"exposes '{exposes.namespace}' is of type {exposes.type}, which this runtime cannot serve yet"
        )
    if exposes.authentication is not None:
        from .auth import server_auth

        app = server_auth(app, exposes.authentication, runtime)
    if cors_origins:
        from .cors import Cors

        app = Cors(app, cors_origins)
    if observer is not None:  # outermost: a request refused by CORS or authentication is logged too
        from .control.accesslog import access_logged

        app = access_logged(runtime, exposes, app)
    return app
