"""A small JSON Schema validator for tool arguments.

Tools must reject bad arguments *before* an upstream call, with a message a model can act on
(MCP 2025-11-25, SEP-1303: input validation errors are tool results with `isError: true`). The
schemas we check are the ones our engine generates, so only a subset of JSON Schema is
understood:

- `type` (a name or a list of names): string, integer, number, boolean, object, array, null;
- `enum`, `const`;
- `properties`, `required`, `additionalProperties` (false or a schema);
- `items` (one schema for every element);
- `minimum`/`maximum`/`exclusiveMinimum`/`exclusiveMaximum`, `minLength`/`maxLength`,
  `minItems`/`maxItems`.

Any other keyword (`anyOf`, `$ref`, `format`, `pattern`...) is ignored, i.e. accepted.

A schema is compiled once into nested closures, so checking a call is a handful of `isinstance`
tests. An `integer` accepts `3` and `3.0` (JSON does not tell them apart) and hands `3` to the
backend, but rejects `"3"` and `true`.
"""

from __future__ import annotations

from typing import Any, TypeGuard
from collections.abc import Callable

__all__ = ["ArgumentValidator", "compile_schema", "json_type_name"]

#: Checks `value` found at `path`, appends problems to `errors`, returns the (possibly coerced)
#: value: an integral float becomes an int where the schema asks for an integer.
_Check = Callable[[Any, str, list[str]], Any]

_TYPE_NAMES: dict[type, str] = {
    bool: "boolean",
    int: "integer",
    float: "number",
    str: "string",
    list: "array",
    dict: "object",
    type(None): "null",
}


def json_type_name(value: Any) -> str:
    """The JSON name of a decoded JSON value's type, for error messages."""
    return _TYPE_NAMES.get(type(value), type(value).__name__)


def _is_integer(value: Any) -> bool:
    if isinstance(value, bool):
        return False
    return isinstance(value, int) or (isinstance(value, float) and value.is_integer())


def _is_number(value: Any) -> TypeGuard[float]:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


_TYPE_TESTS: dict[str, Callable[[Any], bool]] = {
    "string": lambda v: isinstance(v, str),
    "integer": _is_integer,
    "number": _is_number,
    "boolean": lambda v: isinstance(v, bool),
    "object": lambda v: isinstance(v, dict),
    "array": lambda v: isinstance(v, list),
    "null": lambda v: v is None,
}


def _where(path: str) -> str:
    return f"argument '{path}'" if path else "arguments"


def _json_equal(a: Any, b: Any) -> bool:
    """JSON equality: `1 == 1.0`, but `true` is not `1`."""
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    return a == b


def _accept(value: Any, path: str, errors: list[str]) -> Any:
    return value


class ArgumentValidator:
    """A compiled schema: `validator(arguments)` returns `(arguments, problems)`.

    `arguments` may be a coerced copy (integral floats made ints); `problems` is empty when the
    arguments are valid.
    """

    __slots__ = ("_check",)

    def __init__(self, schema: Any) -> None:
        self._check = _compile(schema)

    def __call__(self, value: Any) -> tuple[Any, list[str]]:
        errors: list[str] = []
        value = self._check(value, "", errors)
        return value, errors


def compile_schema(schema: Any) -> ArgumentValidator:
    """Compile `schema` once; call the result for every value to check."""
    return ArgumentValidator(schema)


def _compile(schema: Any) -> _Check:
    if schema is False:
        return _reject_all
    if not isinstance(schema, dict) or not schema:
        return _accept
    type_check = _compile_type(schema.get("type"))
    checks: list[_Check] = []
    if "enum" in schema and isinstance(schema["enum"], list):
        checks.append(_compile_enum(schema["enum"]))
    if "const" in schema:
        checks.append(_compile_enum([schema["const"]]))
    if any(k in schema for k in ("properties", "required", "additionalProperties")):
        checks.append(_compile_object(schema))
    if "items" in schema or "minItems" in schema or "maxItems" in schema:
        checks.append(_compile_array(schema))
    if any(k in schema for k in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum")):
        checks.append(_compile_bounds(schema))
    if "minLength" in schema or "maxLength" in schema:
        checks.append(_compile_length(schema))

    if not checks:
        return type_check or _accept

    def check(value: Any, path: str, errors: list[str]) -> Any:
        if type_check is not None:
            before = len(errors)
            value = type_check(value, path, errors)
            if len(errors) > before:  # the other keywords would only add noise
                return value
        for sub in checks:
            value = sub(value, path, errors)
        return value

    return check


def _reject_all(value: Any, path: str, errors: list[str]) -> Any:
    errors.append(f"{_where(path)}: no value is allowed here")
    return value


def _compile_type(spec: Any) -> _Check | None:
    if spec is None:
        return None
    names = [spec] if isinstance(spec, str) else [n for n in spec if isinstance(n, str)]
    tests = [_TYPE_TESTS[n] for n in names if n in _TYPE_TESTS]
    if not tests:
        return None
    wants_integer = "integer" in names and "number" not in names
    expected = " or ".join(names)

    if len(tests) == 1:
        test = tests[0]

        def check_one(value: Any, path: str, errors: list[str]) -> Any:
            if not test(value):
                errors.append(f"{_where(path)}: expected {expected}, got {json_type_name(value)}")
            elif wants_integer and type(value) is float:
                return int(value)
            return value

        return check_one

    def check_any(value: Any, path: str, errors: list[str]) -> Any:
        if not any(test(value) for test in tests):
            errors.append(f"{_where(path)}: expected {expected}, got {json_type_name(value)}")
        elif wants_integer and type(value) is float and value.is_integer():
            return int(value)
        return value

    return check_any


def _compile_enum(allowed: list[Any]) -> _Check:
    shown = ", ".join(_short(v) for v in allowed)

    def check(value: Any, path: str, errors: list[str]) -> Any:
        if not any(_json_equal(value, option) for option in allowed):
            errors.append(f"{_where(path)}: {_short(value)} is not one of {shown}")
        return value

    return check


def _short(value: Any) -> str:
    """A compact JSON-ish rendering of a value for messages."""
    if isinstance(value, str):
        text = repr(value) if len(value) <= 40 else repr(value[:37] + "...")
        return text
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)[:40]


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _compile_object(schema: dict[str, Any]) -> _Check:
    properties = schema.get("properties")
    props: dict[str, _Check] = {}
    if isinstance(properties, dict):
        props = {name: _compile(sub) for name, sub in properties.items()}
    required = [r for r in schema.get("required", ()) if isinstance(r, str)]
    extra = schema.get("additionalProperties", True)
    extra_check: _Check | None = None if extra is False else _compile(extra)
    closed = extra is False

    def check(value: Any, path: str, errors: list[str]) -> Any:
        if not isinstance(value, dict):
            return value
        for name in required:
            if name not in value:
                errors.append(f"missing required argument '{_join(path, name)}'")
        coerced: dict[str, Any] | None = None
        for name, item in value.items():
            sub = props.get(name)
            if sub is None:
                if closed:
                    errors.append(f"unexpected argument '{_join(path, name)}'")
                    continue
                sub = extra_check
                if sub is None or sub is _accept:
                    continue
            new = sub(item, _join(path, name), errors)
            if new is not item:
                if coerced is None:
                    coerced = dict(value)
                coerced[name] = new
        return value if coerced is None else coerced

    return check


def _compile_array(schema: dict[str, Any]) -> _Check:
    items = _compile(schema.get("items", True))
    min_items = schema.get("minItems")
    max_items = schema.get("maxItems")

    def check(value: Any, path: str, errors: list[str]) -> Any:
        if not isinstance(value, list):
            return value
        if isinstance(min_items, int) and len(value) < min_items:
            errors.append(f"{_where(path)}: expected at least {min_items} items, got {len(value)}")
        if isinstance(max_items, int) and len(value) > max_items:
            errors.append(f"{_where(path)}: expected at most {max_items} items, got {len(value)}")
        if items is _accept:
            return value
        coerced: list[Any] | None = None
        for index, item in enumerate(value):
            new = items(item, f"{path}[{index}]", errors)
            if new is not item:
                if coerced is None:
                    coerced = list(value)
                coerced[index] = new
        return value if coerced is None else coerced

    return check


_BOUNDS: tuple[tuple[str, Callable[[float, float], bool], str], ...] = (
    ("minimum", lambda v, b: v < b, "at least"),
    ("maximum", lambda v, b: v > b, "at most"),
    ("exclusiveMinimum", lambda v, b: v <= b, "greater than"),
    ("exclusiveMaximum", lambda v, b: v >= b, "less than"),
)
"""Each bound keyword: when a value fails it, and how the error says what was wanted."""


def _compile_bounds(schema: dict[str, Any]) -> _Check:
    bounds: list[tuple[Callable[[float, float], bool], float, str]] = []
    for key, fails, words in _BOUNDS:
        bound = schema.get(key)
        if _is_number(bound):
            bounds.append((fails, bound, words))

    def check(value: Any, path: str, errors: list[str]) -> Any:
        if _is_number(value):
            for fails, bound, words in bounds:
                if fails(value, bound):
                    errors.append(f"{_where(path)}: must be {words} {bound}, got {value}")
        return value

    return check


def _compile_length(schema: dict[str, Any]) -> _Check:
    low = schema.get("minLength")
    high = schema.get("maxLength")

    def check(value: Any, path: str, errors: list[str]) -> Any:
        if isinstance(value, str):
            if isinstance(low, int) and len(value) < low:
                errors.append(f"{_where(path)}: must be at least {low} characters long")
            if isinstance(high, int) and len(value) > high:
                errors.append(f"{_where(path)}: must be at most {high} characters long")
        return value

    return check
