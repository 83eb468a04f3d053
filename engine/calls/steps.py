"""Orchestrated invocations: `steps` (call, lookup) and `mappings`.

A call step sends a consumed operation with its own `with`; its JSON answer, shaped by the
consumed operation's named `outputParameters`, is stored under the step name and is visible
to later steps and templates (`{{get-ship.name}}`). A lookup step finds entries of an
earlier output by a matching field. `mappings` then build the answer from the outputs, with
dotted target names making nested objects. As in the reference engine, a step's HTTP status
is not checked: an error body is stored like any other.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from collections.abc import Callable, Sequence

from .answers import read_json
from ..errors import CapabilityError, Location, RequestError, UnknownOperation
from .outputs import compile_outputs, mapping_path
from ..registry import Operation, Scope, WithRules
from ..registry.params import walk as _walk
from .seam import Upstreams
from ..spec import OutputParameter, Step, StepMapping
from ..templates import MISSING, Template, TemplateError


@dataclass(slots=True)
class StepsResult:
    """What the steps produced: the mapped answer (or None) and the last call's answer."""

    mapped: Any
    last_status: int
    last_json: Any


def _dollar_path(text: str) -> list[str]:
    """`$.step.a.b` → ["step", "a", "b"] (dot segments only, as the reference engine walks)."""
    return [part for part in text[2:].split(".") if part]


def _projector(outputs: Sequence[OutputParameter]) -> Callable[[Any, Scope], Any]:
    """The consumed operation's outputParameters applied to a step's raw answer."""
    named = [(o.name, mapping_path(o, "value")) for o in outputs if o.name and o.mapping]
    if not named:
        unnamed = compile_outputs([o for o in outputs if not o.name])
        return (lambda data, scope: unnamed(data, scope)) if unnamed else (lambda data, scope: data)

    def project(data: Any, scope: Scope) -> Any:
        if isinstance(data, list):  # each element gets the named fields added
            return [
                {**item, **{name: path(item) for name, path in named}} if isinstance(item, dict) else item
                for item in data
            ]
        return {name: path(data) for name, path in named}

    return project


class _CallStep:
    def __init__(self, upstreams: Upstreams, step: Step) -> None:
        try:
            self.operation: Operation = upstreams.operation(step.call or "")
        except UnknownOperation as exc:
            raise CapabilityError.at(step.where, str(exc)) from None
        self.name = step.name
        self.rules = WithRules(step.with_, upstreams.prefixes, step.where, "with")
        self.project = _projector(self.operation.spec.output_parameters)


class _LookupStep:
    def __init__(self, step: Step) -> None:
        self.name = step.name
        self.index = step.index or ""
        self.match = step.match or ""
        self.value = step.lookup_value or ""
        try:
            self.template = None if self.value.startswith("$.") else Template.compile(self.value)
        except TemplateError as exc:
            raise CapabilityError.at(step.where.key("lookupValue"), f"invalid template: {exc}") from None
        self.fields = step.output_parameters

    def run(self, outputs: dict[str, Any], scope: Scope) -> Any:
        if self.index not in outputs:
            raise RequestError(f"lookup step '{self.name}' references step '{self.index}', which produced no output")
        table = outputs[self.index]
        rows = table if isinstance(table, list) else [table]
        wanted = _walk(outputs, _dollar_path(self.value)) if self.template is None else self.template.render(scope)
        if wanted is MISSING:
            return MISSING
        if isinstance(wanted, list):
            found = [hit for value in wanted if (hit := self._find(rows, value)) is not None]
            return found or MISSING
        hit = self._find(rows, wanted)
        return MISSING if hit is None else hit

    def _find(self, rows: list[Any], value: Any) -> dict[str, Any] | None:
        text = _text(value)
        for row in rows:
            if isinstance(row, dict) and _text(row.get(self.match)) == text:
                return {field: row.get(field) for field in self.fields} if self.fields else row
        return None


def _text(value: Any) -> str:
    if value is True or value is False:
        return "true" if value else "false"
    return "" if value is None else str(value)


class Steps:
    """A compiled list of steps with their mappings."""

    def __init__(
        self, upstreams: Upstreams, steps: Sequence[Step], mappings: Sequence[StepMapping], where: Location
    ) -> None:
        self.upstreams = upstreams
        self.steps: list[_CallStep | _LookupStep] = []
        for step in steps:
            if step.type == "call":
                self.steps.append(_CallStep(upstreams, step))
            elif step.type == "lookup":
                if step.index not in {s.name for s in self.steps}:
                    raise CapabilityError.at(
                        step.where, f"lookup step '{step.name}' uses index '{step.index}', which is not an earlier step"
                    )
                self.steps.append(_LookupStep(step))
            else:
                raise CapabilityError.at(step.where, f"{step.type} steps are not supported by this runtime")
        self.mappings = [(m.target_name.split("."), _dollar_path(m.value)) for m in mappings]

    async def run(self, params: dict[str, Any]) -> StepsResult:
        values = dict(params)
        outputs: dict[str, Any] = {}
        last_status, last_json = 200, None
        upstreams = self.upstreams
        for step in self.steps:
            scope = Scope(upstreams.bindings_for(None), values, upstreams.prefixes)
            if isinstance(step, _LookupStep):
                found = step.run(outputs, scope)
                if found is not MISSING:
                    outputs[step.name] = found
                continue
            operation = step.operation
            bindings = upstreams.bindings_for(operation.namespace)
            call_params = step.rules.apply(values, Scope(bindings, values, upstreams.prefixes))
            response = await upstreams.send(operation, call_params)
            last_status, last_json = response.status, await read_json(operation, response)
            if last_json is not None:
                shaped = step.project(last_json, Scope(bindings, call_params, upstreams.prefixes))
                outputs[step.name] = values[step.name] = shaped
        return StepsResult(self._map(outputs), last_status, last_json)

    def _map(self, outputs: dict[str, Any]) -> Any:
        if not self.mappings:
            return None
        result: dict[str, Any] = {}
        for target, source in self.mappings:
            value = _walk(outputs, source)
            if value is MISSING:
                continue
            node = result
            for key in target[:-1]:
                node = node.setdefault(key, {})
            node[target[-1]] = value
        return result or None
