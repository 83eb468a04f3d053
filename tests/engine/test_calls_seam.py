"""Exposed calls need nothing but their seam (`calls.CallContext`): driven here by a hand-written fake
of it, with no Runtime, no upstream client and no socket. The operations are real (compiled from a
small capability file); the fake prepares each request as the Runtime would and answers canned JSON."""

from __future__ import annotations

import ast
import json
from collections.abc import Coroutine, Mapping
from pathlib import Path
from typing import Any

import pytest

from naftiko.engine import calls
from naftiko.engine.calls import CallContext, ExposedCall
from naftiko.engine.errors import CapabilityError, Location
from naftiko.engine.limits import Limits
from naftiko.engine.registry import CALLER_PREFIXES, Operation, Registry
from naftiko.engine.spec import AggregateFunction, Capability, Invocation, RestExposes, load_capabilities
from naftiko.engine.upstream import Prepared, UpstreamResponse

pytestmark = pytest.mark.anyio

CAPABILITY = """\
naftiko: 1.0.0-alpha1
capability:
  consumes:
    - type: http
      namespace: fleet
      baseUri: http://fleet.invalid
      resources:
        - name: ship
          path: /ships/{{imo}}
          operations:
            - name: get-ship
              method: GET
              outputParameters:
                - {name: vessel, type: string, mapping: $.vessel_name}
                - {name: crewId, type: string, mapping: $.captain}
        - name: crew
          path: /crew/{{id}}
          operations:
            - {name: get-crew, method: GET}
  aggregates:
    - namespace: lookups
      label: Lookups
      functions:
        - name: ship-by-imo
          description: A ship by its IMO number
          call: fleet.get-ship
          with: {imo: lookups.number}
  exposes:
    - type: rest
      port: 9400
      namespace: api
      resources:
        - path: /ships/{{imo}}
          operations:
            - method: GET
              call: fleet.get-ship
              with: {imo: api.imo}
              outputParameters:
                - type: object
                  properties:
                    name: {type: string, mapping: $.vessel_name}
                    flag: {type: string, value: "{{FLAG}}"}
        - path: /captains/{{imo}}
          operations:
            - method: GET
              steps:
                - {name: ship, type: call, call: fleet.get-ship, with: {imo: api.imo}}
                - {name: captain, type: call, call: fleet.get-crew, with: {id: "{{ship.crewId}}"}}
              mappings:
                - {targetName: vessel, value: $.ship.vessel}
                - {targetName: captain.name, value: $.captain.fullName}
        - path: /by-function/{{imo}}
          operations:
            - method: GET
              ref: lookups.ship-by-imo
              with: {number: api.imo}
"""

ANSWERS = {"/ships/IMO-1": {"vessel_name": "Star", "captain": "C7"}, "/crew/C7": {"fullName": "Ann Lee"}}


class CannedAnswer:
    """What the seam's `send` gives back: an upstream answer with a JSON body (the part calls read)."""

    content_type, charset, is_json = "application/json", None, True

    def __init__(self, status: int, data: Any) -> None:
        self.status, self.raw = status, json.dumps(data).encode()

    def headers(self, *, keep_length: bool = True) -> list[tuple[str, str]]:
        return [("content-type", self.content_type)]

    async def read(self) -> bytes:
        return self.raw

    async def json(self) -> Any:
        return json.loads(self.raw)


class FakeSeam:
    """Everything an exposed call reaches outside itself, written out by hand."""

    def __init__(self, capability: Capability) -> None:
        self._registry = Registry(list(capability.consumes), Limits())
        self.prefixes = CALLER_PREFIXES | {"api", "lookups"}
        self.functions = {f"{a.namespace}.{f.name}": f for a in capability.aggregates for f in a.functions}
        self.sent: list[Prepared] = []
        self._compiled: dict[str, ExposedCall] = {}

    def operation(self, key: str) -> Operation:
        return self._registry.get(key)

    def bindings_for(self, namespace: str | None) -> Mapping[str, str]:
        return {"FLAG": "MT"}

    def send(self, operation: Operation, params: Mapping[str, Any]) -> Coroutine[Any, Any, UpstreamResponse]:
        prepared = operation.prepare(params, self.bindings_for(operation.namespace), self.prefixes)
        self.sent.append(prepared)
        found = ANSWERS.get(prepared.target)
        return self._answer(CannedAnswer(200, found) if found else CannedAnswer(404, {"error": "not found"}))

    async def _answer(self, answer: CannedAnswer) -> UpstreamResponse:
        return answer  # type: ignore[return-value]  # the same reading surface, nothing more

    def function_call(self, ref: str, where: Location) -> ExposedCall:
        function: AggregateFunction | None = self.functions.get(ref)
        if function is None:
            raise CapabilityError.at(where, f"no function {ref}")
        if ref not in self._compiled:
            self._compiled[ref] = ExposedCall(self, function.invocation, function.where)
        return self._compiled[ref]


@pytest.fixture
def capability(tmp_path: Path) -> Capability:
    path = tmp_path / "fleet.yaml"
    path.write_text(CAPABILITY)
    return load_capabilities([path])[0]


@pytest.fixture
def seam(capability: Capability) -> FakeSeam:
    return FakeSeam(capability)


def exposed(capability: Capability, seam: FakeSeam, path: str) -> ExposedCall:
    """The compiled call of the REST operation at `path`, built on the fake seam."""
    context: CallContext = seam  # what mypy checks of the Runtime, spelled out for the fake
    exposes = capability.exposes[0]
    assert isinstance(exposes, RestExposes)
    operation = next(r for r in exposes.resources if r.path == path).operations[0]
    return ExposedCall(context, operation.invocation, operation.where)


async def test_a_call_maps_its_answer_through_outputs(capability: Capability, seam: FakeSeam) -> None:
    call = exposed(capability, seam, "/ships/{{imo}}")
    outcome = await call.invoke({"imo": "IMO-1"})
    assert (outcome.status, outcome.json) == (200, {"name": "Star", "flag": "MT"})
    assert [p.target for p in seam.sent] == ["/ships/IMO-1"]


async def test_an_error_answer_is_passed_on_unmapped(capability: Capability, seam: FakeSeam) -> None:
    outcome = await exposed(capability, seam, "/ships/{{imo}}").invoke({"imo": "IMO-2"})
    assert (outcome.status, outcome.json) == (404, {"error": "not found"})


async def test_two_steps_feed_each_other_and_are_mapped(capability: Capability, seam: FakeSeam) -> None:
    call = exposed(capability, seam, "/captains/{{imo}}")
    outcome = await call.invoke({"imo": "IMO-1"})
    assert (outcome.status, outcome.json) == (200, {"vessel": "Star", "captain": {"name": "Ann Lee"}})
    assert [p.target for p in seam.sent] == ["/ships/IMO-1", "/crew/C7"]  # the second step used the first's output


async def test_a_ref_delegates_through_the_seam(capability: Capability, seam: FakeSeam) -> None:
    call = exposed(capability, seam, "/by-function/{{imo}}")
    assert call.function is seam.functions["lookups.ship-by-imo"] and call.delegate is not None
    outcome = await call.invoke({"imo": "IMO-1"})
    assert (outcome.status, outcome.json) == (200, {"vessel_name": "Star", "captain": "C7"})
    assert [p.target for p in seam.sent] == ["/ships/IMO-1"]


def test_an_unknown_call_is_a_problem_at_its_place(capability: Capability, seam: FakeSeam) -> None:
    exposes = capability.exposes[0]
    assert isinstance(exposes, RestExposes)
    operation = exposes.resources[0].operations[0]
    with pytest.raises(CapabilityError, match="fleet.nothing"):
        ExposedCall(seam, Invocation(call="fleet.nothing"), operation.where)


def test_calls_know_only_their_seam() -> None:
    """No module of engine/calls imports or names the runtime, not even for type checking."""
    package = Path(calls.__file__).parent
    for module in sorted(package.glob("*.py")):
        tree = ast.parse(module.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom):
                assert "runtime" not in (node.module or ""), f"{module.name} imports {node.module}"
                assert all("runtime" not in alias.name.lower() for alias in node.names), module.name
            elif isinstance(node, ast.Import):
                assert all("runtime" not in alias.name for alias in node.names), module.name
            elif isinstance(node, ast.Name | ast.Attribute):
                name = node.id if isinstance(node, ast.Name) else node.attr
                assert name.lower() != "runtime", f"{module.name}:{node.lineno} names {name}"
