"""Adapters: the edges through which a runtime is reached, one per `exposes` type, over the engine.

    rest/, mcp/, skill/   one ASGI adapter per exposes type (mcp/ also speaks stdio)
    control/              the control port: health, readiness, status, metrics, traces, and the observer behind them
    auth.py               the exposes block's own authentication, in front of any of them
    oauth.py              oauth2 blocks as OAuth 2 resource servers (JWT checked against the issuer's JWKS; RFC 9728)
    issuer.py             the authorization server an oauth2 block trusts: metadata discovered, keys fetched
    cors.py               browser pages on the allowed origins: preflights and Access-Control-* headers
    edges.py, lifespan.py what every adapter shares: bounded request bodies, disconnects, start/stop
    apps.py               one exposes block as an ASGI app: `build_app`, `exposes_app`
    server.py             `serve`: every exposes block of a runtime on its own port, until SIGTERM
    reload.py             hot reload: the file watch, the swappable Slot per port, one reload at a time
    workers.py            `serve --workers N`: the supervisor, one socket per worker and port, the worker's side
    cli.py                `naftiko serve | validate | list | call`

They reach the engine only through what `naftiko.engine` exports, and each turns the engine's
typed errors into its own answers with one table (`ERRORS` in rest/app.py and mcp/errors.py,
`EXIT_CODES` in cli.py).
"""

from __future__ import annotations

from typing import Any

from .apps import build_app, exposes_app


def __getattr__(name: str) -> Any:
    if name == "serve":
        from .server import serve

        return serve
    raise AttributeError(name)


__all__ = ["build_app", "exposes_app", "serve"]
