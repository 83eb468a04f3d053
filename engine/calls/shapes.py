"""What an exposed call answers, known at load time: the JSON Schema of its mapped result.

`answer_shape(call, invocation)` follows the same rules the call follows when it runs (output
mapping in `outputs`, delegation through `ref`, `steps` with `mappings`, mocks), so the schema
describes what the mapper can build and nothing else: an object with `properties` is always an
object with all its keys; a value extracted by a JSONPath may be missing (null); a constant is its
value. Where the answer is the upstream's own body (no outputs, `$` passthrough, a binary answer)
nothing is known and the shape is None: the MCP adapter then lists no `outputSchema`.

A `Shape` also checks a value against itself (`check`), walking only what the mapper could not
guarantee by construction (the types of extracted values), so a call pays for the leaves it
extracted and nothing else. `blank()` is the answer an empty upstream body stands for.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from collections.abc import Callable, Sequence

from ..spec.model import Invocation, OutputParameter
from .invocation import ExposedCall
from .outputs import is_passthrough
from .steps import Steps

_SCALARS = ("string", "integer", "number", "boolean", "object", "array")


@dataclass(frozen=True, slots=True)
class Shape:
    """One value of an answer: `kind` is object, array, type (a JSON type only), const, any, null or anyOf."""

    kind: str
    nullable: bool = False
    type: str | None = None
    properties: tuple[tuple[str, Shape], ...] = ()
    required: bool = True  # object: every property is always there (mapped objects); steps mappings: not
    items: Shape | None = None  # array: the element's shape; None: any element
    value: Any = None  # const
    options: tuple[Shape, ...] = ()  # anyOf
    description: str | None = None

    @property
    def is_object(self) -> bool:
        """Whether every value of this shape is a JSON object (so it needs no wrapping where one is required)."""
        if self.kind == "anyOf":
            return all(option.is_object for option in self.options)
        return not self.nullable and (self.kind == "object" or (self.kind == "const" and isinstance(self.value, dict)))

    def schema(self) -> dict[str, Any]:
        """This shape as JSON Schema (2020-12)."""
        schema: dict[str, Any]
        if self.kind == "object":
            schema = {
                "type": _typed("object", self.nullable),
                "properties": {k: s.schema() for k, s in self.properties},
            }
            if self.required and self.properties:
                schema["required"] = [name for name, _ in self.properties]
        elif self.kind == "array":
            schema = {"type": _typed("array", self.nullable)}
            if self.items is not None:
                schema["items"] = self.items.schema()
        elif self.kind == "type":
            schema = {"type": _typed(self.type or "string", self.nullable)}
        elif self.kind == "const":
            schema = {"const": self.value}
            if type(self.value) in _JSON_NAMES:
                schema = {"type": _JSON_NAMES[type(self.value)], "const": self.value}
        elif self.kind == "null":
            schema = {"type": "null"}
        elif self.kind == "anyOf":
            schema = {"anyOf": [option.schema() for option in self.options]}
        else:
            schema = {}
        if self.description:
            schema["description"] = self.description
        return schema

    def check(self, value: Any, path: str = "") -> str | None:
        """The first way `value` differs from this shape (`at 'a.b[2]': expected integer, got string`), or None."""
        if value is None:
            return None if self.nullable or self.kind in ("any", "null") or self._anyof_null() else _differs(path, self)
        kind = self.kind
        if kind == "object":
            if not isinstance(value, dict):
                return _differs(path, self, value)
            for name, shape in self.properties:
                where = f"{path}.{name}" if path else name
                if name in value:
                    problem = shape.check(value[name], where)
                    if problem is not None:
                        return problem
                elif self.required:
                    return f"at '{where}': missing"
            return None
        if kind == "array":
            if not isinstance(value, list):
                return _differs(path, self, value)
            if self.items is not None and self.items.kind != "any":
                for index, item in enumerate(value):
                    problem = self.items.check(item, f"{path}[{index}]")
                    if problem is not None:
                        return problem
            return None
        if kind == "type":
            return None if _is(self.type or "string", value) else _differs(path, self, value)
        if kind == "anyOf":
            return None if any(option.check(value, path) is None for option in self.options) else _differs(path, self)
        if kind == "null":
            return _differs(path, self, value)
        if kind == "const" and not _same(value, self.value):
            return f"at '{path or '$'}': expected {self.value!r}"
        return None

    def blank(self) -> Any:
        """What an empty upstream answer stands for: null where allowed, else the object with its keys null."""
        if self.nullable or self.kind in ("any", "null", "type", "array"):
            return None
        if self.kind == "const":
            return self.value
        if self.kind == "object":
            return {name: shape.blank() for name, shape in self.properties} if self.required else {}
        if self.kind == "anyOf" and self.options:
            return self.options[0].blank()
        return None

    def _anyof_null(self) -> bool:
        return self.kind == "anyOf" and any(option.check(None) is None for option in self.options)

    def expected(self) -> str:
        names = {"object": "object", "array": "array", "type": self.type or "string", "null": "null"}
        text = names.get(self.kind, "a value of the declared output")
        return f"{text} or null" if self.nullable else text


def _same(a: Any, b: Any) -> bool:
    """JSON equality: `1 == 1.0`, but `true` is not `1`."""
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    return bool(a == b)


def _typed(name: str, nullable: bool) -> str | list[str]:
    return [name, "null"] if nullable else name


def _is(type_: str, value: Any) -> bool:
    if type_ == "string":
        return isinstance(value, str)
    if type_ == "boolean":
        return isinstance(value, bool)
    if isinstance(value, bool):
        return False
    if type_ == "integer":
        return isinstance(value, int) or (isinstance(value, float) and value.is_integer())
    if type_ == "number":
        return isinstance(value, (int, float))
    if type_ == "object":
        return isinstance(value, dict)
    if type_ == "array":
        return isinstance(value, list)
    return True


_JSON_NAMES = {bool: "boolean", int: "integer", float: "number", str: "string", list: "array", dict: "object"}


def _differs(path: str, shape: Shape, value: Any = None) -> str:
    got = "null" if value is None else _JSON_NAMES.get(type(value), type(value).__name__)
    return f"at '{path or '$'}': expected {shape.expected()}, got {got}"


ANY = Shape("any")

Fits = Callable[[Any], bool]


def compile_fits(shape: Shape) -> Fits:
    """`shape.check(value) is None`, compiled once into closures: no paths are built unless a value fails."""
    nullable = shape.nullable or shape.kind in ("any", "null")
    kind = shape.kind
    if kind == "any":
        return lambda value: True
    if kind == "const":
        constant = shape.value
        return lambda value: _same(value, constant)
    if kind == "null":
        return lambda value: value is None
    if kind == "anyOf":
        options = [compile_fits(option) for option in shape.options]
        return lambda value: any(fits(value) for fits in options)
    if kind == "object":
        fields = [(name, compile_fits(sub)) for name, sub in shape.properties if sub.kind != "any"]
        required = [name for name, _ in shape.properties] if shape.required else []

        def fits_object(value: Any) -> bool:
            if value is None:
                return nullable
            if not isinstance(value, dict):
                return False
            for name in required:
                if name not in value:
                    return False
            for name, fits in fields:
                if name in value and not fits(value[name]):
                    return False
            return True

        return fits_object
    if kind == "array":
        item = shape.items
        element = compile_fits(item) if item is not None and item.kind != "any" else None

        def fits_array(value: Any) -> bool:
            if value is None:
                return nullable
            if not isinstance(value, list):
                return False
            return element is None or all(element(entry) for entry in value)

        return fits_array
    type_ = shape.type or "string"
    return lambda value: nullable if value is None else _is(type_, value)


# --------------------------------------------------------------------------- from output parameters


def outputs_shape(outputs: Sequence[OutputParameter]) -> Shape | None:
    """The shape `compile_outputs(outputs)` builds; None when it returns the body as it is."""
    if not outputs or is_passthrough(outputs):
        return None
    shapes: list[Shape] = []
    for output in outputs:  # the first non-null output is the answer
        shape = _output(output)
        shapes.append(shape)
        if not shape.nullable and shape.kind not in ("null", "any"):
            break
    if len(shapes) == 1:
        return shapes[0]
    return Shape("anyOf", options=tuple(shapes), nullable=all(s.nullable for s in shapes))


def _output(output: OutputParameter) -> Shape:
    described = output.description
    if output.value is not None:
        value = output.value
        if isinstance(value, str) and ("{{" in value or "<<" in value):
            return Shape("type", type="string", description=described)
        return Shape("const", value=value, description=described)
    if output.const is not None:
        return Shape("const", value=output.const, description=described)
    if output.type == "array":
        return _array(output)
    if output.type == "object":
        return _object(output)
    if not output.mapping:
        return Shape("null", description=described)
    return Shape(
        "type", type=output.type if output.type in _SCALARS else "string", nullable=True, description=described
    )


def _object(output: OutputParameter) -> Shape:
    if not output.properties:
        if output.mapping is None:
            return Shape("object", description=output.description)  # always {}
        return Shape("type", type="object", nullable=True, description=output.description)  # the node as it is
    properties = tuple((name, _output(prop)) for name, prop in output.properties.items())
    return Shape("object", properties=properties, description=output.description)


def _array(output: OutputParameter) -> Shape:
    items = output.items
    element: Shape | None
    if items is None:
        element = None
    elif items.type != "object" and not items.mapping and items.value is None:
        element = Shape("type", type=items.type, nullable=True) if items.type in _SCALARS else None
    elif items.type == "object" and items.properties:
        element = _object(OutputParameter(type="object", where=items.where, properties=items.properties))
    else:
        element = _output(items)
    return Shape("array", items=element, nullable=True, description=output.description)


# --------------------------------------------------------------------------- from a compiled call


def answer_shape(call: ExposedCall, invocation: Invocation) -> Shape | None:
    """The shape of what `call` (compiled from `invocation`) answers when it succeeds; None when unknown."""
    own = None if call.passthrough else outputs_shape(invocation.output_parameters)
    if call.delegate is not None:
        if call.delegate.passthrough and own is not None:
            return own  # the tool maps what the function answers as it is
        function = call.function
        return answer_shape(call.delegate, function.invocation) if function is not None else None
    if call.steps is not None:
        mapped = _mappings_shape(call.steps)
        return mapped if mapped is not None else own
    if call.mock is not None:
        return Shape("object", properties=tuple((o.name or "value", _mock(o)) for o in invocation.output_parameters))
    if call.operation is not None and call.operation.output_format == "binary":
        return None
    return own


def _mock(output: OutputParameter) -> Shape:
    if output.value is not None:
        return _output(output)
    if output.properties:
        return Shape("object", properties=tuple((name, _mock(p)) for name, p in output.properties.items()))
    if output.items is not None:
        return Shape("array", items=_mock(output.items))
    return Shape("null")


def _mappings_shape(steps: Steps) -> Shape | None:
    """`mappings` build an object from dotted target names; a value found nowhere leaves its key out."""
    if not steps.mappings:
        return None
    tree: dict[str, Any] = {}
    for target, _ in steps.mappings:
        node = tree
        for key in target[:-1]:
            child = node.get(key)
            node = node.setdefault(key, {}) if child is None or isinstance(child, dict) else {}
        node.setdefault(target[-1], None)
    return _tree_shape(tree)


def _tree_shape(tree: dict[str, Any]) -> Shape:
    properties = tuple((key, ANY if sub is None else _tree_shape(sub)) for key, sub in tree.items())
    return Shape("object", properties=properties, required=False)


__all__ = ["ANY", "Fits", "Shape", "answer_shape", "compile_fits", "outputs_shape"]
