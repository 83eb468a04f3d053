"""DRF-flavoured field validation for request bodies and query strings.

The real server validates with Django REST Framework serializers and reports only
the first error, keyed by field (nested paths joined with ``__``). These helpers
reproduce the messages and codes clients key on, without pulling in Django.
Each reader method returns :data:`MISSING` when the field is absent.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from datetime import datetime, UTC
from typing import Any

from .errors import required, validation_error


class _Missing:
    def __repr__(self) -> str:
        return "MISSING"

    def __bool__(self) -> bool:
        return False


MISSING: Any = _Missing()

DATETIME_FORMAT_HINT = (
    "Datetime has wrong format. Use one of these formats instead: YYYY-MM-DDThh:mm[:ss[.uuuuuu]][+HH:MM|-HH:MM|Z]."
)


def type_name(value: Any) -> str:
    """Python type name as DRF prints it in ``not_a_list``/``not_a_dict`` messages."""
    return type(value).__name__


def as_string(value: Any, attr: str, *, max_length: int | None = None, blank: bool = True) -> str:
    """DRF ``CharField``: numbers are coerced, booleans and containers rejected."""
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise validation_error("Not a valid string.", attr)
    text = str(value)
    if not blank and not text.strip():
        raise validation_error("This field may not be blank.", attr, "blank")
    if max_length is not None and len(text) > max_length:
        raise validation_error(f"Ensure this field has no more than {max_length} characters.", attr, "max_length")
    return text


def as_int(value: Any, attr: str, *, min_value: int | None = None, max_value: int | None = None) -> int:
    """DRF ``IntegerField``: accepts ints and integral strings."""
    number = _integral(value)
    if number is None:
        raise validation_error("A valid integer is required.", attr)
    if min_value is not None and number < min_value:
        raise validation_error(f"Ensure this value is greater than or equal to {min_value}.", attr, "min_value")
    if max_value is not None and number > max_value:
        raise validation_error(f"Ensure this value is less than or equal to {max_value}.", attr, "max_value")
    return number


def _integral(value: Any) -> int | None:
    """The integer a JSON/query value denotes (``3``, ``3.0``, ``"3"``, ``"3.0"``), else ``None``."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return int(value) if value.is_integer() else None
    if isinstance(value, str):
        text = value.strip()
        if text.endswith(".0"):
            text = text.rstrip("0").rstrip(".")
        try:
            return int(text)
        except ValueError:
            return None
    return None


_TRUE = {True, "1", "true", "True", "TRUE", "yes", "on", "y", "t"}
_FALSE = {False, "0", "false", "False", "FALSE", "no", "off", "n", "f"}


def as_bool(value: Any, attr: str) -> bool:
    """DRF ``BooleanField`` accepts the usual truthy/falsy spellings."""
    if isinstance(value, (bool, int, str)) and value in _TRUE:
        return True
    if isinstance(value, (bool, int, str)) and value in _FALSE:
        return False
    raise validation_error("Must be a valid boolean.", attr)


def as_uuid(value: Any, attr: str) -> str:
    """DRF ``UUIDField``; returns the canonical hyphenated form."""
    try:
        return str(uuid.UUID(str(value)))
    except (ValueError, AttributeError, TypeError):
        raise validation_error("Must be a valid UUID.", attr) from None


def as_choice(value: Any, attr: str, choices: Iterable[str]) -> str:
    if not isinstance(value, str) or value not in set(choices):
        raise validation_error(f'"{value}" is not a valid choice.', attr, "invalid_choice")
    return value


def as_list(value: Any, attr: str, *, allow_empty: bool = True, max_items: int | None = None) -> list[Any]:
    if not isinstance(value, list):
        raise validation_error(f'Expected a list of items but got type "{type_name(value)}".', attr, "not_a_list")
    if not allow_empty and not value:
        raise validation_error("This list may not be empty.", attr, "empty")
    if max_items is not None and len(value) > max_items:
        raise validation_error(f"Ensure this field has no more than {max_items} elements.", attr, "max_length")
    return value


def as_dict(value: Any, attr: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise validation_error(f'Expected a dictionary of items but got type "{type_name(value)}".', attr, "not_a_dict")
    return value


def as_datetime(value: Any, attr: str) -> datetime:
    """ISO-8601 timestamp; naive values are taken as UTC (PostHog runs with ``USE_TZ``)."""
    parsed = parse_timestamp(value)
    if parsed is None:
        raise validation_error(DATETIME_FORMAT_HINT, attr)
    return parsed


def parse_timestamp(value: Any) -> datetime | None:
    """Lenient ISO-8601 parse used for log entries; ``None`` when unparseable."""
    if not isinstance(value, str) or not value.strip():
        return None
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


class Reader:
    """Reads typed fields out of a JSON object or a query string, DRF style.

    ``prefix`` builds nested ``attr`` paths such as ``artifacts__0__name``.
    """

    def __init__(self, data: Mapping[str, Any], prefix: str = "") -> None:
        self.data = data
        self.prefix = prefix

    def attr(self, name: str) -> str:
        return f"{self.prefix}{name}"

    def _get(self, name: str, *, is_required: bool, nullable: bool) -> Any:
        if name not in self.data:
            if is_required:
                raise required(self.attr(name))
            return MISSING
        value = self.data[name]
        if value is None and not nullable:
            raise validation_error("This field may not be null.", self.attr(name), "null")
        return value

    def string(
        self,
        name: str,
        *,
        is_required: bool = False,
        nullable: bool = False,
        blank: bool = True,
        max_length: int | None = None,
    ) -> Any:
        value = self._get(name, is_required=is_required, nullable=nullable)
        if value is MISSING or value is None:
            return value
        return as_string(value, self.attr(name), max_length=max_length, blank=blank)

    def integer(
        self,
        name: str,
        *,
        is_required: bool = False,
        nullable: bool = False,
        min_value: int | None = None,
        max_value: int | None = None,
    ) -> Any:
        value = self._get(name, is_required=is_required, nullable=nullable)
        if value is MISSING or value is None:
            return value
        return as_int(value, self.attr(name), min_value=min_value, max_value=max_value)

    def boolean(self, name: str, *, nullable: bool = False) -> Any:
        value = self._get(name, is_required=False, nullable=nullable)
        if value is MISSING or value is None:
            return value
        return as_bool(value, self.attr(name))

    def uuid(self, name: str, *, is_required: bool = False, nullable: bool = False) -> Any:
        value = self._get(name, is_required=is_required, nullable=nullable)
        if value is MISSING or value is None:
            return value
        return as_uuid(value, self.attr(name))

    def choice(self, name: str, choices: Iterable[str], *, is_required: bool = False, nullable: bool = False) -> Any:
        value = self._get(name, is_required=is_required, nullable=nullable)
        if value is MISSING or value is None:
            return value
        return as_choice(value, self.attr(name), choices)

    def mapping(self, name: str, *, is_required: bool = False, nullable: bool = False) -> Any:
        value = self._get(name, is_required=is_required, nullable=nullable)
        if value is MISSING or value is None:
            return value
        return as_dict(value, self.attr(name))

    def items(
        self,
        name: str,
        *,
        is_required: bool = False,
        nullable: bool = False,
        allow_empty: bool = True,
        max_items: int | None = None,
    ) -> Any:
        value = self._get(name, is_required=is_required, nullable=nullable)
        if value is MISSING or value is None:
            return value
        return as_list(value, self.attr(name), allow_empty=allow_empty, max_items=max_items)

    def string_list(self, name: str, *, allow_empty: bool = True, blank: bool = True) -> Any:
        values = self.items(name, allow_empty=allow_empty)
        if values is MISSING:
            return values
        return [as_string(v, f"{self.attr(name)}__{i}", blank=blank) for i, v in enumerate(values)]

    def json(self, name: str, *, is_required: bool = False) -> Any:
        return self._get(name, is_required=is_required, nullable=True)

    def datetime(self, name: str) -> Any:
        value = self._get(name, is_required=False, nullable=False)
        if value is MISSING:
            return value
        return as_datetime(value, self.attr(name))

    def nested(self, name: str, index: int) -> Reader:
        """A reader for ``name[index]``, which must itself be an object."""
        value = as_dict(self.data[name][index], f"{self.attr(name)}__{index}")
        return Reader(value, f"{self.attr(name)}__{index}__")
