"""The engine's small set of typed errors.

The engine raises these; adapters turn them into HTTP statuses or JSON-RPC answers at their
edge. Messages are written for the person reading them and never carry secret values.
"""

from __future__ import annotations

from dataclasses import dataclass


class NaftikoError(Exception):
    """Base of every error the engine raises on purpose."""


@dataclass(frozen=True, slots=True)
class Location:
    """Where something was written: file, 1-based line and column, and its key path."""

    file: str
    line: int = 0
    column: int = 0
    path: str = ""

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column}" if self.line else self.file


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong with a capability file."""

    location: Location
    message: str

    def __str__(self) -> str:
        where = f" (at {self.location.path})" if self.location.path else ""
        return f"{self.location}: {self.message}{where}"


class CapabilityError(NaftikoError):
    """A capability file (or the set of them) cannot be used as written.

    Carries every problem found, so `naftiko validate` can list them all at once.
    """

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))

    @classmethod
    def at(cls, location: Location, message: str) -> "CapabilityError":
        return cls([Problem(location, message)])


class RequestError(NaftikoError):
    """The caller's input is wrong (a missing or malformed parameter): a 400, never upstream."""

    def __init__(self, message: str, *, parameter: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.parameter = parameter


class UnknownOperation(NaftikoError):
    """No consumed operation has that `<namespace>.<operation>` name."""


class UpstreamError(NaftikoError):
    """The upstream could not be reached or answered something unusable: a 502."""

    def __init__(self, namespace: str, operation: str, reason: str) -> None:
        super().__init__(f"upstream {namespace} ({operation}): {reason}")
        self.namespace = namespace
        self.operation = operation
        self.reason = reason


class UpstreamTimeout(UpstreamError):
    """The upstream did not answer in time: a 504."""
