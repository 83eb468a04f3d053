"""Exposed invocations: what a REST operation or an MCP tool does when called.

Both adapters share this: apply `with`, prepare and send the consumed operation, map the
JSON answer. Everything here is compiled when the runtime is built.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from engine.errors import CapabilityError, NaftikoError, UnknownOperation
from engine.outputs import compile_outputs, is_passthrough
from engine.params import Scope, WithRules
from engine.spec import Invocation
from engine.errors import Location
from engine.upstream import UpstreamResponse

if TYPE_CHECKING:
    from engine.runtime import Runtime

NO_JSON: Any = object()


class NotSupported(NaftikoError):
    """A feature the file uses that this runtime does not run yet (a 501)."""


@dataclass(slots=True)
class Outcome:
    """The answer of one invocation: mapped JSON, raw bytes, or a response left to stream."""

    status: int
    headers: list[tuple[str, str]] = field(default_factory=list)
    json: Any = NO_JSON
    body: bytes | None = None
    stream: UpstreamResponse | None = None
    content_type: str | None = None


class ExposedCall:
    """One exposed operation or tool, bound to the consumed operation it calls."""

    __slots__ = ("runtime", "operation", "rules", "mapper", "passthrough", "unsupported", "where")

    def __init__(self, runtime: "Runtime", invocation: Invocation, where: Location) -> None:
        self.runtime = runtime
        self.where = where
        self.rules = WithRules(invocation.with_, runtime.prefixes)
        self.mapper = compile_outputs(invocation.output_parameters)
        self.passthrough = self.mapper is None or is_passthrough(invocation.output_parameters)
        self.operation = None
        self.unsupported: str | None = None
        if invocation.call is not None:
            try:
                self.operation = runtime.registry.get(invocation.call)
            except UnknownOperation as exc:
                raise CapabilityError.at(Location(where.file, where.line, where.column, f"{where.path}.call"), str(exc)) from None
        elif invocation.ref is not None:
            self.unsupported = "aggregate 'ref' invocations are not supported by this runtime yet"
        elif invocation.steps:
            self.unsupported = "orchestrated 'steps' are not supported by this runtime yet"
        elif not invocation.output_parameters:
            raise CapabilityError.at(where, "nothing to do: give a 'call', 'steps', 'ref' or mock outputParameters with 'value'")

    def references(self) -> dict[str, str]:
        return self.rules.references()

    async def invoke(self, params: dict[str, Any], *, stream: bool = False) -> Outcome:
        """Run the invocation; with `stream`, a non-JSON answer is left unread for streaming."""
        if self.unsupported:
            raise NotSupported(self.unsupported)
        runtime = self.runtime
        if self.operation is None:  # mock: outputs with constant values
            scope = Scope(runtime.bindings_for(None), params, runtime.prefixes)
            return Outcome(200, json=self.mapper(None, scope) if self.mapper else None)
        operation = self.operation
        bindings = runtime.bindings_for(operation.namespace)
        call_params = self.rules.apply(params, Scope(bindings, params, runtime.prefixes))
        response = await runtime.send(operation, call_params)
        if response.is_json:
            data = await response.json()
            headers = response.headers(keep_length=False)
            if data is not None and response.status < 400 and not self.passthrough:
                data = self.mapper(data, Scope(bindings, call_params, runtime.prefixes))
            return Outcome(response.status, headers, json=data if data is not None else NO_JSON,
                           body=b"" if data is None else None)
        if stream:
            return Outcome(response.status, response.headers(), stream=response, content_type=response.content_type)
        body = await response.read()
        return Outcome(response.status, response.headers(), body=body, content_type=response.content_type)
