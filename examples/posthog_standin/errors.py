"""Error shapes of the PostHog API, raised as exceptions and rendered once.

PostHog answers framework errors with the flat drf-exceptions-hog envelope
``{"type", "code", "detail", "attr"}`` and some Tasks endpoints with hand-built
bodies (``{"error": ...}``, ``{"detail": ...}``). Handlers raise :class:`ApiError`
with the exact body so clients see the same variety they see in production.
"""

from __future__ import annotations

from typing import Any

from starlette.responses import JSONResponse


class ApiError(Exception):
    """An HTTP error response carried as an exception."""

    def __init__(self, status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> None:
        super().__init__(f"{status}: {body}")
        self.status = status
        self.body = body
        self.headers = headers or {}

    def response(self) -> JSONResponse:
        return JSONResponse(self.body, status_code=self.status, headers=self.headers)


def envelope(type_: str, code: str, detail: str, attr: str | None = None) -> dict[str, Any]:
    """The drf-exceptions-hog body."""
    return {"type": type_, "code": code, "detail": detail, "attr": attr}


def validation_error(detail: str, attr: str | None = None, code: str = "invalid_input") -> ApiError:
    """400 for the first failing field; DRF's generic ``invalid`` is reported as ``invalid_input``."""
    return ApiError(400, envelope("validation_error", code, detail, attr))


def required(attr: str) -> ApiError:
    return validation_error("This field is required.", attr, "required")


def not_found(detail: str = "Not found.") -> ApiError:
    return ApiError(404, envelope("invalid_request", "not_found", detail))


def endpoint_not_found() -> ApiError:
    return not_found("Endpoint not found.")


def method_not_allowed(method: str, allowed: list[str]) -> ApiError:
    return ApiError(
        405,
        envelope("invalid_request", "method_not_allowed", f'Method "{method}" not allowed.'),
        {"Allow": ", ".join(allowed)},
    )


def parse_error(detail: str) -> ApiError:
    return ApiError(400, envelope("invalid_request", "parse_error", f"JSON parse error - {detail}"))


def unsupported_media_type(content_type: str) -> ApiError:
    return ApiError(
        415,
        envelope("invalid_request", "unsupported_media_type", f'Unsupported media type "{content_type}" in request.'),
    )


def not_authenticated() -> ApiError:
    return ApiError(
        401,
        envelope("authentication_error", "not_authenticated", "Authentication credentials were not provided."),
    )


def authentication_failed() -> ApiError:
    return ApiError(
        401,
        envelope(
            "authentication_error",
            "authentication_failed",
            "Personal API key found in request Authorization header is invalid.",
        ),
    )


def permission_denied(detail: str) -> ApiError:
    return ApiError(403, envelope("authentication_error", "permission_denied", detail))


def throttled(wait_seconds: int) -> ApiError:
    detail = f"Request was throttled. Expected available in {wait_seconds} second{'s' if wait_seconds != 1 else ''}."
    return ApiError(429, envelope("throttled_error", "throttled", detail), {"Retry-After": str(wait_seconds)})


def run_error(status: int, message: str, **extra: Any) -> ApiError:
    """The Tasks ``TaskRunErrorResponse`` shape: ``{"error": message, ...}``."""
    return ApiError(status, {"error": message, **extra})


def detail_error(status: int, detail: str, **extra: Any) -> ApiError:
    """The bare ``{"detail": message, ...}`` shape some Tasks views build by hand."""
    return ApiError(status, {"detail": detail, **extra})
