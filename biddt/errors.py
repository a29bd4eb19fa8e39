"""Domain errors with stable codes, rendered by drf-standardized-errors.

`ValidationError` (400) carries the code of API.md; `Conflict` is the 409 for state
conflicts; `NotFound` is used for objects the caller may not know exist.
"""

from __future__ import annotations

from django.core.exceptions import RequestDataTooBig, TooManyFieldsSent, TooManyFilesSent
from django.db import InterfaceError, OperationalError
from django.utils.translation import gettext_lazy as _
from drf_standardized_errors.formatter import ExceptionFormatter
from drf_standardized_errors.handler import ExceptionHandler as StandardizedExceptionHandler
from rest_framework import status
from rest_framework.exceptions import (
    APIException,
    AuthenticationFailed,
    NotFound,
    PermissionDenied,
    ValidationError,
)
from rest_framework_simplejwt.exceptions import AuthenticationFailed as JWTAuthenticationFailed
from rest_framework_simplejwt.exceptions import InvalidToken

__all__ = ["APIException", "Conflict", "ErrorFormatter", "ExceptionHandler", "NotFound",
           "PermissionDenied", "RequestTooLarge", "ServiceUnavailable", "ValidationError",
           "invalid"]


class Conflict(APIException):
    status_code = status.HTTP_409_CONFLICT
    default_detail = _("The request conflicts with the current state of the resource.")
    default_code = "conflict"


class ErrorFormatter(ExceptionFormatter):
    """The standard error shape, plus the machine fields a domain error carries.

    API.md: a domain error item may carry extra fields beside `code`, `detail`, `attr` (e.g.
    `bid_too_low` carries `minimum_next_bid_cents`), so a client reads the number instead of
    parsing the text. An exception declares them as `error_fields`; they go on its one item.
    """

    def format_error_response(self, error_response):
        body = super().format_error_response(error_response)
        fields = getattr(self.exc, "error_fields", None)
        if fields and body["errors"]:
            body["errors"][0].update(fields)
        return body


class ServiceUnavailable(APIException):
    status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    default_detail = _("Temporarily unavailable, try again.")
    default_code = "service_unavailable"


class RequestTooLarge(APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_detail = _("The request body is too large.")
    default_code = "request_too_large"


class ExceptionHandler(StandardizedExceptionHandler):
    """drf-standardized-errors' handler, plus: a body past DATA_UPLOAD_MAX_MEMORY_SIZE (or
    too many form fields or files) is a 413 in the error shape, not a 500. Django raises these
    while DRF parses `request.data`, inside the view, where Django's own 400 never applies.
    A database that is unreachable, dropped the connection or gave up on a lock
    (`lock_timeout`, deadlock) is a 503 `service_unavailable`: the transaction rolled back,
    so the client may retry (with the same Idempotency-Key). A bad token is one 401 item
    `token_not_valid`: so is a malformed `Bearer` header and the token of a closed (inactive)
    or missing account, which simplejwt reports with codes of its own."""

    def convert_known_exceptions(self, exc: Exception) -> Exception:
        if isinstance(exc, RequestDataTooBig | TooManyFieldsSent | TooManyFilesSent):
            return RequestTooLarge()
        if isinstance(exc, OperationalError | InterfaceError):
            return ServiceUnavailable()
        if isinstance(exc, JWTAuthenticationFailed):  # InvalidToken and simplejwt's others
            # simplejwt's detail lists one message per token class it tried (or a dict of
            # detail and code), which the standard shape would turn into several error items:
            # a 401 is one item, and API.md names only `token_not_valid` for a bad token.
            detail = exc.detail.get("detail") if isinstance(exc.detail, dict) else exc.detail
            if isinstance(detail, list):
                detail = detail[0] if detail else None
            return AuthenticationFailed(str(detail or InvalidToken.default_detail),
                                        code="token_not_valid")
        return super().convert_known_exceptions(exc)


def invalid(code: str, detail: str, *, attr: str | None = None) -> ValidationError:
    """A 400 with one error `{code, detail, attr}`."""
    if attr:
        return ValidationError({attr: [ValidationError(detail, code=code).detail[0]]})
    return ValidationError(detail, code=code)
