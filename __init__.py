"""naftiko: a Python runtime for Naftiko capability files.

What a library user imports. `Runtime` loads capability files and calls their operations;
`build_app(runtime, namespace)` is the ASGI app of one exposes block, to mount in your own server;
`serve(runtime)` runs every exposes block on its own port. `load_capabilities` only reads and
checks files. The error types are what an embedding service may want to catch.

In the repository this file is the package root: `engine/` is installed as `naftiko.engine`
and `adapters/` as `naftiko.adapters` (pyproject.toml maps them).
"""

from typing import Any

from .adapters import build_app
from .engine import (
    CapabilityError,
    Limits,
    NaftikoError,
    ReadLimits,
    RequestError,
    Runtime,
    UnknownOperation,
    UpstreamError,
    UpstreamTimeout,
    load_capabilities,
)


def __getattr__(name: str) -> Any:
    if name == "serve":  # imported on use: the HTTP server is not needed to load or call
        from .adapters.server import serve

        return serve
    raise AttributeError(f"module 'naftiko' has no attribute '{name}'")


__all__ = [
    "Runtime",
    "build_app",
    "serve",
    "load_capabilities",
    "ReadLimits",
    "Limits",
    "NaftikoError",
    "CapabilityError",
    "RequestError",
    "UnknownOperation",
    "UpstreamError",
    "UpstreamTimeout",
]
