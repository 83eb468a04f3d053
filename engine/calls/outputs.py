"""Output mapping: turn an upstream JSON body into what an exposed operation returns.

Follows the reference engine's algorithm (objects keep the same root, array items are
re-rooted at each element, the first non-null output is the whole answer), with one
extension the seed file needs: an object or array with a `mapping` but no
`properties`/`items` returns the extracted node as it is. Everything is compiled at load.
"""

from __future__ import annotations

from typing import Any
from collections.abc import Callable, Sequence

from ..errors import CapabilityError
from ..jsonpath import JsonPathError, compile_path
from ..spec.model import OutputParameter
from ..templates import MISSING, Scope, Template, TemplateError

Mapper = Callable[[Any, Scope], Any]


def compile_outputs(outputs: Sequence[OutputParameter]) -> Mapper | None:
    """One function body → answer for a list of outputs; None when there is nothing to map."""
    if not outputs:
        return None
    mappers = [_compile(output) for output in outputs]
    if len(mappers) == 1:
        return mappers[0]

    def first_non_null(body: Any, scope: Scope) -> Any:
        for mapper in mappers:
            value = mapper(body, scope)
            if value is not None:
                return value
        return None

    return first_non_null


def is_passthrough(outputs: Sequence[OutputParameter]) -> bool:
    """True when mapping would return the body unchanged (`$` / `$.` with no shape)."""
    return (
        len(outputs) == 1
        and outputs[0].value is None
        and outputs[0].properties is None
        and outputs[0].items is None
        and (outputs[0].mapping or "").strip() in ("$", "$.")
    )


def mapping_path(output: OutputParameter, key: str = "mapping") -> Callable[[Any], Any]:
    """The output's compiled JSONPath; a bad one is a problem at `key`, where the file wrote it."""
    try:
        return compile_path(output.mapping or "$")
    except JsonPathError as exc:
        raise CapabilityError.at(output.where.key(key), str(exc)) from None


def _compile(output: OutputParameter) -> Mapper:
    if output.value is not None:
        return _constant(output)
    if output.const is not None:
        const = output.const
        return lambda body, scope: const
    if output.type == "array":
        return _array(output)
    if output.type == "object":
        return _object(output)
    extract = mapping_path(output) if output.mapping else (lambda body: None)
    return lambda body, scope: extract(body)


def _constant(output: OutputParameter) -> Mapper:
    value = output.value
    if isinstance(value, str) and ("{{" in value or "<<" in value):
        try:
            template = Template.compile(value)
        except TemplateError as exc:  # the loader finds these first, with the value's own position
            raise CapabilityError.at(output.where.key("value"), f"invalid template: {exc}") from None
        return lambda body, scope: template.render(scope)
    return lambda body, scope: value


def _object(output: OutputParameter) -> Mapper:
    extract = mapping_path(output) if output.mapping else None
    if not output.properties:
        if extract is None:
            return lambda body, scope: {}
        return lambda body, scope: extract(body)
    fields = [(name, _property(prop)) for name, prop in output.properties.items()]

    def build(body: Any, scope: Scope) -> Any:
        root = extract(body) if extract is not None else body
        return {name: mapper(root, scope) for name, mapper in fields}

    return build


def _property(prop: OutputParameter) -> Mapper:
    if prop.type == "object" and prop.properties and not prop.mapping:
        return _object(prop)  # same root, as the reference engine does
    return _compile(prop)


def _array(output: OutputParameter) -> Mapper:
    extract = mapping_path(output)
    items = output.items
    if items is None or (items.type != "object" and not items.mapping and items.value is None):
        element: Mapper | None = None
    elif items.type == "object" and items.properties:
        element = _object(OutputParameter(type="object", where=items.where, properties=items.properties))
    else:
        element = _compile(items)

    def build(body: Any, scope: Scope) -> Any:
        node = extract(body)
        if not isinstance(node, list):
            return None
        if element is None:
            return node
        return [element(item, scope) for item in node]

    return build


__all__ = ["compile_outputs", "is_passthrough", "Mapper", "MISSING"]


def compile_mock(outputs: Sequence[OutputParameter]) -> Callable[[Scope], Any]:
    """Mock mode (no upstream): `{name: value}` from constant and templated `value`s.

    Nested properties recurse, an array gets one item, an unnamed entry is stored under
    "value"; with nothing to build the answer is None (a REST 204).
    """
    entries = [(output.name or "value", _mock(output)) for output in outputs]

    def build(scope: Scope) -> Any:
        result = {name: make(scope) for name, make in entries}
        return result or None

    return build


def _mock(output: OutputParameter) -> Callable[[Scope], Any]:
    if output.value is not None:
        constant = _constant(output)
        return lambda scope: constant(None, scope)
    if output.properties:
        fields = [(name, _mock(prop)) for name, prop in output.properties.items()]
        return lambda scope: {name: make(scope) for name, make in fields}
    if output.items is not None:
        item = _mock(output.items)
        return lambda scope: [item(scope)]
    return lambda scope: None
