"""``set_output/`` validation against a task's ``json_schema``.

Uses the ``jsonschema`` package when it is installed (as the real server does);
otherwise falls back to a small subset (type, required, properties, items, enum)
so the stand-in keeps working with only the project's declared dependencies.
"""

from __future__ import annotations

from typing import Any

try:  # pragma: no cover - depends on the environment
    import jsonschema
except ImportError:  # pragma: no cover
    jsonschema = None

_TYPES: dict[str, tuple[type, ...]] = {
    "object": (dict,),
    "array": (list,),
    "string": (str,),
    "integer": (int,),
    "number": (int, float),
    "boolean": (bool,),
    "null": (type(None),),
}


def output_error(schema: Any, value: Any) -> str | None:
    """The validation message, or ``None`` when ``value`` conforms (or there is no schema)."""
    if schema is None or schema == {}:
        return None
    if jsonschema is not None:
        try:
            jsonschema.validate(value, schema)
        except jsonschema.ValidationError as exc:
            return exc.message
        except jsonschema.SchemaError as exc:
            return f"invalid schema: {exc.message}"
        return None
    return _subset_error(schema, value)


def _type_ok(expected: Any, value: Any) -> bool:
    names = expected if isinstance(expected, list) else [expected]
    for name in names:
        kinds = _TYPES.get(name, (object,))
        if isinstance(value, bool) and bool not in kinds and name != "boolean":
            continue
        if isinstance(value, kinds):
            return True
    return False


def _subset_error(schema: Any, value: Any) -> str | None:
    if not isinstance(schema, dict):
        return None
    if "type" in schema and not _type_ok(schema["type"], value):
        return f"{value!r} is not of type {schema['type']!r}"
    if "enum" in schema and value not in schema["enum"]:
        return f"{value!r} is not one of {schema['enum']!r}"
    if isinstance(value, dict):
        for name in schema.get("required", []):
            if name not in value:
                return f"{name!r} is a required property"
        for name, sub in schema.get("properties", {}).items():
            if name in value and (problem := _subset_error(sub, value[name])):
                return problem
    if isinstance(value, list) and isinstance(schema.get("items"), dict):
        for item in value:
            if problem := _subset_error(schema["items"], item):
                return problem
    return None
