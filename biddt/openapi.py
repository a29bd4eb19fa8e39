"""The OpenAPI AutoSchema: drf-standardized-errors' error responses, made to match what the
views really answer (schema fuzzing checks every status and body against this document).

- 400 is always `validation_error` *or* a parse error, with any code (the domain codes of
  API.md such as `invalid_price` or `invalid_idempotency_key`) and a nullable `attr`
  (non-field errors). The library's per-field code enums can't list the domain codes.
- 403 has any code (`account_suspended`, `permission_denied`).
- A status an operation's description documents ("409 `listing_has_bids`", "401
  `token_not_valid`", "503 ...") is added to its responses with the standard error shape; an
  operation taking an `Idempotency-Key` documents 422 `idempotency_key_reused`; every
  escrow view may answer 503 (provider down or a lock timeout: the client retries); every
  operation with a body may answer 413 `request_too_large`.
"""

from __future__ import annotations

import re

from drf_spectacular.utils import PolymorphicProxySerializer, extend_schema_field
from drf_standardized_errors.openapi import AutoSchema as StandardizedErrorsAutoSchema
from drf_standardized_errors.openapi_serializers import (
    ClientErrorEnum,
    ParseErrorResponseSerializer,
    ServerErrorEnum,
    ValidationErrorEnum,
)
from inflection import camelize
from rest_framework import serializers

from biddt.error_codes import operation_codes

DOCUMENTED_STATUS = re.compile(r"\b(401|403|404|409|413|422|503)\b")
EXTRA_STATUSES = ("401", "403", "409", "413", "422", "503")


class ErrorItemSerializer(serializers.Serializer):
    code = serializers.CharField()
    detail = serializers.CharField()
    attr = serializers.CharField(allow_null=True)


class BidTooLowErrorItemSerializer(ErrorItemSerializer):
    minimum_next_bid_cents = serializers.IntegerField(
        required=False,
        help_text="With `bid_too_low` only: the lowest amount that would be accepted now.")


class BidConflictResponseSerializer(serializers.Serializer):
    type = serializers.ChoiceField(choices=ClientErrorEnum.choices)
    errors = BidTooLowErrorItemSerializer(many=True)


RETRY_AFTER = {
    "Retry-After": {
        "description": "Seconds to wait before trying again.",
        "schema": {"type": "integer", "minimum": 0},
        "required": True,
    },
}


# Per-operation error response serializers, by component name (see AutoSchema._error_response).
_ERROR_RESPONSES: dict[str, tuple[tuple, type]] = {}


class ValidationErrorResponseSerializer(serializers.Serializer):
    type = serializers.ChoiceField(choices=ValidationErrorEnum.choices)
    errors = ErrorItemSerializer(many=True)


class ClientErrorResponseSerializer(serializers.Serializer):
    type = serializers.ChoiceField(choices=ClientErrorEnum.choices)
    errors = ErrorItemSerializer(many=True)


class ServerErrorResponseSerializer(serializers.Serializer):
    type = serializers.ChoiceField(choices=ServerErrorEnum.choices)
    errors = ErrorItemSerializer(many=True)


class AutoSchema(StandardizedErrorsAutoSchema):
    def get_operation(self, *args, **kwargs):
        operation = super().get_operation(*args, **kwargs)
        if operation is not None and self.method == "DELETE" and "requestBody" not in operation:
            # drf-spectacular documents bodies only for POST/PUT/PATCH; a DELETE that declares
            # one (`DELETE /v1/auth/logout {refresh}`) says so in the schema too.
            serializer = self.get_request_serializer()
            if serializer is not None:
                component = self.resolve_serializer(serializer, "request")
                operation["requestBody"] = {
                    "content": {"application/json": {"schema": component.ref}},
                    "required": True,
                }
        throttled = (operation or {}).get("responses", {}).get("429")
        if throttled is not None:
            throttled["headers"] = RETRY_AFTER  # every 429 says when to come back
        return operation

    def _documented_statuses(self) -> set[str]:
        from drf_spectacular.utils import OpenApiParameter

        found = set(DOCUMENTED_STATUS.findall(self.get_description() or ""))
        if any(isinstance(p, OpenApiParameter) and p.name == "Idempotency-Key"
               for p in self.get_override_parameters()):
            found.add("422")
        if getattr(self.view, "may_answer_503", False):  # escrow.api.views.EscrowViewMixin
            found.add("503")
        if self.method in ("POST", "PUT", "PATCH"):
            found.add("413")  # a body past DATA_UPLOAD_MAX_MEMORY_SIZE (biddt.errors)
        return found

    def _get_error_response_examples(self):
        # The 401 examples are the two the API sends (biddt.errors): no token, a bad token.
        # drf-standardized-errors adds DRF's `authentication_failed`, which the API never sends.
        from drf_spectacular.utils import OpenApiExample

        examples = [e for e in super()._get_error_response_examples()
                    if e.name != "AuthenticationFailed"]
        if any("401" in e.status_codes for e in examples):
            examples.append(OpenApiExample(
                "TokenNotValid", response_only=True, status_codes=["401"],
                value={"type": "client_error", "errors": [
                    {"code": "token_not_valid", "detail": "Token is invalid", "attr": None}]}))
        return examples

    def _get_allowed_error_status_codes(self) -> list[str]:
        return [*super()._get_allowed_error_status_codes(), *EXTRA_STATUSES]

    def _should_add_error_response(self, responses: dict, status_code: str) -> bool:
        if status_code in EXTRA_STATUSES and status_code not in responses \
                and status_code in self._documented_statuses():
            return True
        if status_code in ("409", "413", "422", "503"):
            return False
        if status_code == "400" and status_code not in responses:
            return True  # any operation may get a parse error or a domain validation error
        return super()._should_add_error_response(responses, status_code)

    def _get_error_response_serializer(self, status_code: str):
        """Each error response of an operation gets its own components: the error item's
        `code` is the enum of the codes this operation answers at this status
        (biddt.error_codes)."""
        if status_code == "400":
            return PolymorphicProxySerializer(
                component_name=f"{self._camel_operation_id()}ErrorResponse400",
                serializers={"validation_error": self._error_response(
                    "400", ValidationErrorEnum, ErrorItemSerializer),
                             "client_error": ParseErrorResponseSerializer},
                resource_type_field_name="type",
            )
        if status_code in ("500", "503"):
            return self._error_response(status_code, ServerErrorEnum, ErrorItemSerializer)
        item = ErrorItemSerializer
        if status_code == "409" and "`bid_too_low`" in (self.get_description() or ""):
            item = BidTooLowErrorItemSerializer
        return self._error_response(status_code, ClientErrorEnum, item)

    def _error_response(self, status_code: str, type_enum, item_base):
        """`{type, errors: [item]}` with the item's `code` an enum of this operation's codes."""
        paginated = (self.method == "GET" and self._is_list_view()
                     and getattr(self.view, "pagination_class", None) is not None)
        codes = operation_codes(status_code, self.get_description() or "", paginated=paginated)
        name = f"{self._camel_operation_id()}Error{status_code}"
        cached = _ERROR_RESPONSES.get(name)
        if cached is not None and cached[0] == (codes, item_base):
            return cached[1]  # one class per component name (asked for more than once)
        code = extend_schema_field({"type": "string", "enum": codes})(
            type(f"{name}Code", (serializers.CharField,), {}))()
        # drf-standardized-errors leaves the enums of `...ErrorComponent` components inline,
        # so each operation's codes stay its own (not merged into one shared enum).
        item = type(f"{self._camel_operation_id()}{status_code}ErrorComponent", (item_base,),
                    {"code": code})
        errors = item(many=True)
        response = type(f"{name}Response", (serializers.Serializer,), {
            "type": serializers.ChoiceField(choices=type_enum.choices), "errors": errors})
        _ERROR_RESPONSES[name] = ((codes, item_base), response)
        return response

    def _camel_operation_id(self) -> str:
        return camelize(self.get_operation_id())
