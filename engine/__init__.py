"""naftiko's engine: capability files → spec model → operation registry → runtime.

The public surface is small on purpose: `Runtime` to load and call, `load_capabilities` to
only read and check files, and the error types an embedding service may want to catch.
"""

from engine.errors import (
    CapabilityError,
    NaftikoError,
    RequestError,
    UnknownOperation,
    UpstreamError,
    UpstreamTimeout,
)
from engine.loader import load as load_capabilities
from engine.runtime import Runtime

__all__ = [
    "Runtime",
    "load_capabilities",
    "NaftikoError",
    "CapabilityError",
    "RequestError",
    "UnknownOperation",
    "UpstreamError",
    "UpstreamTimeout",
]
