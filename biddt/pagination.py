from rest_framework.pagination import CursorPagination, PageNumberPagination
from rest_framework.response import Response


class CreatedCursorPagination(CursorPagination):
    """Cursor pagination over time-ordered lists, newest first: `{next, previous, results}`."""

    ordering = ("-created_at", "-id")
    page_size = 20
    page_size_query_param = "page_size"
    max_page_size = 100


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
