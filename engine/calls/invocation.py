"""Exposed invocations: what a REST operation, an MCP tool or an aggregate function does.

Both adapters share this. An invocation is compiled once into one of four modes: `call` a
consumed operation, run `steps`, delegate through `ref` to an aggregate function, or answer
a mock from constant outputs. The JSON answer is then mapped by the invocation's outputs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from collections.abc import Callable, Coroutine, Mapping
from typing import Any, Protocol

from .answers import decodes, parse_json, read_json
from .binary import binary_headers, read_binary
from ..errors import CapabilityError, Location, UnknownOperation
from ..errors import NotSupported as NotSupported  # raised here, defined in errors.py
from .outputs import compile_mock, compile_outputs, is_passthrough
from .pages import PageWalk, Pager, compile_pager
from ..registry import Operation, Scope, WithRules
from .seam import Upstreams
from ..spec import AggregateFunction, Invocation, OutputParameter
from .steps import Steps
from ..upstream import UpstreamResponse

NO_JSON: Any = object()


def _plain_root(outputs: tuple[OutputParameter, ...]) -> bool:
    """Whether the one output's mapping is written exactly `$` or `$.` (whose compiled paths cannot fail);
    an empty list compiles to no mapper either."""
    return not outputs or len(outputs) == 1 and outputs[0].mapping in ("$", "$.")


@dataclass(slots=True)
class Outcome:
    """The answer of one invocation: mapped JSON, raw bytes, or a response left to stream."""

    status: int
    headers: list[tuple[str, str]] = field(default_factory=list)
    json: Any = NO_JSON
    body: bytes | None = None
    stream: UpstreamResponse | None = None
    content_type: str | None = None
    binary: bool = False  # outputRawFormat binary: bytes to pass on as they are (engine/calls/binary.py)
    pages: PageWalk | None = None  # every page asked for, first one fetched: items to stream (engine/calls/pages.py)


class CallContext(Upstreams, Protocol):
    """The upstream seam, and the aggregate functions a `ref` delegates to (each compiled once, shared)."""

    @property
    def functions(self) -> Mapping[str, AggregateFunction]:
        """Every aggregate function, by `<aggregate namespace>.<function name>`."""
        ...

    def function_call(self, ref: str, where: Location) -> ExposedCall:
        """The compiled function `ref` names; a `CapabilityError` at `where` when it names none."""
        ...


class ExposedCall:
    """One compiled invocation."""

    __slots__ = (
        "upstreams",
        "operation",
        "rules",
        "mapper",
        "passthrough",
        "steps",
        "delegate",
        "function",
        "mock",
        "where",
        "pager",
        "max_binary",
    )

    def __init__(
        self, context: CallContext, invocation: Invocation, where: Location, max_binary: int | None = None
    ) -> None:
        self.upstreams: Upstreams = context  # all a call needs once built
        self.where = where
        self.max_binary = max_binary  # the exposes block's maxBinarySize (engine/calls/binary.py)
        self.rules = WithRules(invocation.with_, context.prefixes, where, "with")  # its place made for a problem only
        outputs = invocation.output_parameters
        # a plain `$` / `$.` output passes the body on as it is: nothing to compile for it
        self.passthrough = not outputs or is_passthrough(outputs)
        self.mapper = None if self.passthrough and _plain_root(outputs) else compile_outputs(outputs)
        self.operation: Operation | None = None
        self.steps: Steps | None = None
        self.delegate: ExposedCall | None = None
        self.mock: Callable[[Scope], Any] | None = None
        self.function = context.functions.get(invocation.ref or "")
        if invocation.ref is not None:
            self.delegate = context.function_call(invocation.ref, where.key("ref"))
        elif invocation.call is not None:
            try:
                self.operation = context.operation(invocation.call)
            except UnknownOperation as exc:
                raise CapabilityError.at(where.key("call"), str(exc)) from None
        elif invocation.steps:
            self.steps = Steps(context, invocation.steps, invocation.mappings, where)
        elif invocation.output_parameters:
            self.mock = compile_mock(invocation.output_parameters)
        else:
            raise CapabilityError.at(
                where, "nothing to do: give a 'call', 'steps', 'ref' or mock outputParameters with 'value'"
            )
        self.pager: Pager | None = compile_pager(self.operation, context, invocation.output_parameters, where)
        if self.delegate is not None and self.delegate.pager is not None:  # paging through `ref`
            self.pager = self.delegate.pager.through(invocation.output_parameters)

    def references(self) -> dict[str, str]:
        return self.rules.references()

    def _map(self, data: Any, scope: Scope) -> Any:
        # passthrough is true whenever mapper is None (set in __init__), so mapper is callable here
        return data if self.passthrough or data is None else self.mapper(data, scope)  # type: ignore[misc]

    def invoke(
        self, params: dict[str, Any], *, stream: bool = False, parse: bool = True, max_binary: int | None = None
    ) -> Coroutine[Any, Any, Outcome]:
        """Run the invocation (await the result).

        With `stream`, a raw (non-data) answer is left unread for streaming. Without `parse`, an
        unmapped JSON answer is returned as its bytes only (`json` stays NO_JSON). What comes
        back is the coroutine of the mode that runs, not one wrapping it: a frame less for every
        wait on the upstream to resume through. `max_binary` is a delegating call's own block limit.
        """
        limit = self.max_binary if max_binary is None else max_binary
        call_params, scope = self._scoped(params)
        if self.pager is not None and (pages := self.pager.asked(call_params)) is not None:
            return self._all_pages(self._walk(self.pager, call_params, scope, pages), stream)
        if self.delegate is not None:
            return self._delegated(self.delegate, call_params, scope, stream, parse, limit)
        if self.steps is not None:
            return self._run_steps(self.steps, call_params, scope)
        if self.mock is not None:
            return self._answer_mock(self.mock, scope)
        assert self.operation is not None
        return self._call(self.operation, call_params, scope, stream, parse, limit)

    def _scoped(self, params: dict[str, Any]) -> tuple[dict[str, Any], Scope]:
        """The parameters after the `with` rules, and the scope outputs are mapped in."""
        upstreams = self.upstreams
        bindings = upstreams.bindings_for(self.operation.namespace if self.operation else None)
        call_params = self.rules.apply(params, Scope(bindings, params, upstreams.prefixes))
        return call_params, Scope(bindings, call_params, upstreams.prefixes)

    def _walk(self, pager: Pager, params: dict[str, Any], scope: Scope, pages: int, outer: _Maps = ()) -> PageWalk:
        """The walk over the operation's pages, each page mapped by every call on the way down a `ref` chain."""
        maps = ((self._map, scope), *outer)
        if self.delegate is None:
            return pager.walk(params, scope, maps[0][0] if len(maps) == 1 else _chained(maps), pages)
        inner_params, inner_scope = self.delegate._scoped(params)
        return self.delegate._walk(pager, inner_params, inner_scope, pages, maps)

    async def _delegated(
        self, delegate: ExposedCall, params: dict[str, Any], scope: Scope, stream: bool, parse: bool, limit: int | None
    ) -> Outcome:
        outcome = await delegate.invoke(params, stream=stream, parse=parse or not self.passthrough, max_binary=limit)
        if delegate.passthrough and not self.passthrough and outcome.json is not NO_JSON and outcome.status < 400:
            outcome.json, outcome.body = self._map(outcome.json, scope), None
        return outcome

    async def _run_steps(self, steps: Steps, params: dict[str, Any], scope: Scope) -> Outcome:
        result = await steps.run(params)
        if result.mapped is not None:
            return Outcome(200, json=result.mapped)
        data = self._map(result.last_json, scope) if result.last_status < 400 else result.last_json
        return Outcome(result.last_status, json=data) if data is not None else Outcome(result.last_status, body=b"")

    async def _all_pages(self, walk: PageWalk, stream: bool) -> Outcome:
        """The pages asked for: left to stream, or every item in one answer (engine/calls/pages.py)."""
        failed = await walk.first()
        if failed is not None:  # the first page's error status, answered as one call's would be
            status, headers, body, media = failed
            return Outcome(status, headers, body=body, content_type=media)
        if stream:
            return Outcome(200, pages=walk, content_type="application/x-ndjson")
        return Outcome(200, json=[item async for items in walk for item in items])

    async def _answer_mock(self, mock: Callable[[Scope], Any], scope: Scope) -> Outcome:
        data = mock(scope)
        return Outcome(200, json=data) if data is not None else Outcome(204, body=b"")

    async def _call(
        self, operation: Operation, params: dict[str, Any], scope: Scope, stream: bool, parse: bool, limit: int | None
    ) -> Outcome:
        response = await self.upstreams.send(operation, params)
        if operation.output_format == "binary" and response.status < 400:
            media, headers = binary_headers(operation, response, stream, limit)
            if stream:
                return Outcome(response.status, headers, stream=response, content_type=media, binary=True)
            body = await read_binary(operation, response)
            return Outcome(response.status, headers, body=body, content_type=media, binary=True)
        if operation.decoder is None and response.is_json and (self.passthrough or response.status >= 400):
            # Nothing to map: keep the upstream's bytes (parsing and re-encoding 1 MB costs ~30 ms).
            raw = await response.read()
            data = parse_json(raw, operation) if parse and raw.strip() else NO_JSON
            return Outcome(
                response.status,
                response.headers(keep_length=False),
                json=data,
                body=raw,
                content_type="application/json",
            )
        if decodes(operation, response):
            data = await read_json(operation, response)
            if response.status < 400:
                data = self._map(data, scope)
            headers = response.headers(keep_length=False)
            if data is None:
                return Outcome(response.status, headers, body=b"")
            return Outcome(response.status, headers, json=data)
        if stream:
            return Outcome(response.status, response.headers(), stream=response, content_type=response.content_type)
        body = await response.read()
        return Outcome(response.status, response.headers(), body=body, content_type=response.content_type)


_Maps = tuple[tuple[Callable[[Any, Scope], Any], Scope], ...]
"""A page's mappings, innermost call first, each with the scope of its own call."""


def _chained(maps: _Maps) -> Callable[[Any, Scope], Any]:
    def map_page(data: Any, _: Scope) -> Any:
        for map_, scope in maps:
            data = map_(data, scope)
        return data

    return map_page


__all__ = ["ExposedCall", "CallContext", "Outcome", "NO_JSON", "NotSupported", "read_json"]
