"""Domain errors with stable codes, rendered by drf-standardized-errors.

`ValidationError` (400) carries the code of API.md; `Conflict` is the 409 for state
conflicts; `NotFound` is used for objects the caller may not know exist.
"""

from __future__ import annotations

from rest_framework import status
from rest_framework.exceptions import APIException, NotFound, PermissionDenied, ValidationError

__all__ = ["APIException", "Conflict", "NotFound", "PermissionDenied", "ServiceUnavailable",
           "ValidationError", "invalid"]


class Conflict(APIException):
    status_code = status.HTTP_409_CONFLICT
    default_detail = "The request conflicts with the current state of the resource."
    default_code = "conflict"


class ServiceUnavailable(APIException):
    status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    default_detail = "Temporarily unavailable, try again."
    default_code = "service_unavailable"


def invalid(code: str, detail: str, *, attr: str | None = None) -> ValidationError:
    """A 400 with one error `{code, detail, attr}`."""
    if attr:
        return ValidationError({attr: [ValidationError(detail, code=code).detail[0]]})
    return ValidationError(detail, code=code)
