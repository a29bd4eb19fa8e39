"""List pagination. Every cursor-paginated list goes through `CursorPagination` below.

DRF's cursor carries the position (the first ordering field's value) as text and puts it in
the WHERE clause as is: a forged cursor (`p=not-a-date`, `p=abc` on a price ordering, a
number past 64 bits) reached the database and failed there (500). Here the decoded position
is converted by the ordering field's own type (a model field, or an annotation's output
field) first, and any cursor that doesn't decode or convert is a 400 `invalid_cursor`.
"""

from __future__ import annotations

import binascii
import math

from django.core.exceptions import FieldDoesNotExist
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import models
from django.utils.translation import gettext_lazy as _
from rest_framework import pagination
from rest_framework.exceptions import NotFound
from rest_framework.pagination import PageNumberPagination
from rest_framework.response import Response

from biddt.errors import invalid

# The widest integer column we order on (bigint); a larger position can't match a row but
# would overflow the query parameter.
_INT_RANGE = (-(2**63), 2**63 - 1)


class CursorPagination(pagination.CursorPagination):
    """DRF's cursor pagination whose cursor is checked before it reaches the query."""

    page_size = 20
    page_size_query_param = "page_size"
    max_page_size = 100
    invalid_cursor_detail = _("The cursor is not valid for this list (start again without it).")

    def paginate_queryset(self, queryset, request, view=None):
        # decode_cursor has no queryset argument: the position's type comes from this one.
        self._cursor_queryset = queryset
        return super().paginate_queryset(queryset, request, view)

    def decode_cursor(self, request):
        encoded = request.query_params.get(self.cursor_query_param)
        try:
            # DRF's decoder skips characters outside the alphabet (`%%%` is an empty cursor):
            # only cursors it could have written are taken.
            if encoded is not None:
                binascii.a2b_base64(encoded.encode("ascii"), strict_mode=True)
            cursor = super().decode_cursor(request)
        except (NotFound, ValueError):
            raise invalid("invalid_cursor", self.invalid_cursor_detail,
                          attr=self.cursor_query_param) from None
        if cursor is None or cursor.position is None:
            return cursor
        field = self._position_field(self.ordering[0].lstrip("-"))
        try:
            _position_check(field, cursor.position)
        except (DjangoValidationError, ValueError, TypeError, OverflowError):
            raise invalid("invalid_cursor", self.invalid_cursor_detail,
                          attr=self.cursor_query_param) from None
        # The text stays the position: DRF compares it with the text of rows' positions.
        return cursor

    def _position_field(self, name: str) -> models.Field:
        queryset = self._cursor_queryset
        annotation = queryset.query.annotations.get(name)
        if annotation is not None:
            return annotation.output_field
        try:
            return queryset.model._meta.get_field(name)
        except FieldDoesNotExist:
            raise ValueError(f"cursor ordering on unknown field {name!r}") from None


def _position_check(field: models.Field, raw: str) -> None:
    """Raises unless the field's type converts the position to a value its column holds."""
    if "\x00" in raw:
        raise ValueError("NUL in cursor position")
    value = field.to_python(raw)
    if value is None:
        raise ValueError("empty cursor position")
    if isinstance(field, models.IntegerField) and not _INT_RANGE[0] <= value <= _INT_RANGE[1]:
        raise ValueError("cursor position out of range")
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError("cursor position not finite")


class CreatedCursorPagination(CursorPagination):
    """Cursor pagination over time-ordered lists, newest first: `{next, previous, results}`."""

    ordering = ("-created_at", "-id")


class PagePagination(PageNumberPagination):
    """For lists ordered by a computed value (distance): `{next, previous, results}`, no count."""

    page_size = 20
    page_size_query_param = "page_size"
    max_page_size = 100

    def get_paginated_response(self, data):
        return Response({"next": self.get_next_link(), "previous": self.get_previous_link(),
                         "results": data})

    def get_paginated_response_schema(self, schema):
        full = super().get_paginated_response_schema(schema)
        full["properties"].pop("count", None)
        full["required"] = ["results"]
        return full
