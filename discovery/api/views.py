"""Saved-search REST views: validate input, call a service or selector, render."""

from __future__ import annotations

from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.generics import GenericAPIView
from rest_framework.response import Response

from accounts.permissions import IsAuthenticatedActive
from biddt.errors import invalid
from biddt.pagination import CursorPagination
from discovery import selectors, services
from discovery.api import serializers as s
from discovery.models import SavedSearch
from listings.api.listing_rows import listing_rows, represent_rows
from listings.api.serializers import ListingSerializer
from listings.api.views import ListingCursorPagination

TAG = ["discovery"]
NOT_FOUND = "404 `not_found` for an unknown id or another user's search."
FILTERS_DOC = (
    "Filters mean what they mean on `GET /v1/listings` and are checked the same way (400 "
    "with the field as `attr`: `invalid_choice`, `min_value`/`max_value`, "
    "`location_required` for a place without both `lat` and `lng` or a `radius_km` without "
    "them, `invalid_price_range` for `min_price` above `max_price`, `blank` name). Prices are "
    "in cents; `radius_km` defaults to 500 with a place.")


class SavedSearchPagination(CursorPagination):
    ordering = ("-created_at", "-id")


class SavedSearchListView(GenericAPIView):
    permission_classes = [IsAuthenticatedActive]
    queryset = SavedSearch.objects.none()  # for the schema; reads go through selectors
    serializer_class = s.SavedSearchSerializer
    pagination_class = SavedSearchPagination

    @extend_schema(tags=TAG, summary="My saved searches",
                   responses={200: s.SavedSearchSerializer(many=True)},
                   description="The caller's saved searches, newest first (at most 20).")
    def get(self, request):
        page = self.paginate_queryset(selectors.saved_searches_of(user=request.user))
        return self.get_paginated_response(s.SavedSearchSerializer(page, many=True).data)

    @extend_schema(
        tags=TAG, summary="Save a search", request=s.SavedSearchInSerializer,
        responses={201: s.SavedSearchSerializer},
        description=(
            "`notify: true`: a `saved_search_match` notification (`data: {saved_search_id, "
            "listing_id}`) for each listing that becomes active and matches, once per search "
            "and listing, never for the caller's own listings. At most 20 per account: 409 "
            "`too_many_saved_searches`. " + FILTERS_DOC),
    )
    def post(self, request):
        data = s.SavedSearchInSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        search = services.saved_search_create(user=request.user, data=data.validated_data)
        return Response(s.SavedSearchSerializer(search).data, status=status.HTTP_201_CREATED)


class SavedSearchDetailView(GenericAPIView):
    permission_classes = [IsAuthenticatedActive]
    queryset = SavedSearch.objects.none()
    serializer_class = s.SavedSearchSerializer

    @extend_schema(tags=TAG, summary="A saved search", responses={200: s.SavedSearchSerializer},
                   description=NOT_FOUND)
    def get(self, request, saved_search_id):
        search = selectors.saved_search_get(user=request.user, saved_search_id=saved_search_id)
        return Response(s.SavedSearchSerializer(search).data)

    @extend_schema(
        tags=TAG, summary="Change a saved search", request=s.SavedSearchInSerializer(partial=True),
        responses={200: s.SavedSearchSerializer},
        description=("Any subset of the fields; a filter set to null is dropped. The search "
                     "it leaves is checked as on create. " + FILTERS_DOC + " " + NOT_FOUND),
    )
    def patch(self, request, saved_search_id):
        search = selectors.saved_search_get(user=request.user, saved_search_id=saved_search_id)
        given = s.SavedSearchInSerializer(data=request.data, partial=True)
        given.is_valid(raise_exception=True)
        current = {key: getattr(search, key) for key in (*selectors.FILTERS, "name", "notify")}
        merged = s.SavedSearchInSerializer(data={**current, **request.data})
        merged.is_valid(raise_exception=True)
        changes = {key: merged.validated_data.get(key) for key in given.validated_data}
        search = services.saved_search_update(user=request.user,
                                              saved_search_id=saved_search_id, data=changes)
        return Response(s.SavedSearchSerializer(search).data)

    @extend_schema(tags=TAG, summary="Delete a saved search", request=None,
                   responses={204: OpenApiResponse(description="Deleted.")},
                   description=NOT_FOUND)
    def delete(self, request, saved_search_id):
        services.saved_search_delete(user=request.user, saved_search_id=saved_search_id)
        return Response(status=status.HTTP_204_NO_CONTENT)


class SavedSearchListingsView(GenericAPIView):
    permission_classes = [IsAuthenticatedActive]
    queryset = SavedSearch.objects.none()
    serializer_class = ListingSerializer
    pagination_class = ListingCursorPagination

    @extend_schema(
        tags=TAG, summary="The active listings a saved search matches",
        parameters=[s.SavedSearchListingsParams], responses={200: ListingSerializer(many=True)},
        description=("Exactly `GET /v1/listings` with the search's filters (`status=active`): "
                     "the same representation and cursor pagination (`page_size`, `cursor`). "
                     "400 `location_required` for `ordering=distance` on a search without a "
                     "place. " + NOT_FOUND),
    )
    def get(self, request, saved_search_id):
        search = selectors.saved_search_get(user=request.user, saved_search_id=saved_search_id)
        params = s.SavedSearchListingsParams(data=request.query_params)
        params.is_valid(raise_exception=True)
        ordering = params.validated_data.get("ordering")
        if ordering == "distance" and search.lat is None:
            raise invalid("location_required", _("`ordering=distance` needs a search with a "
                                                  "place."), attr="ordering")
        browse = selectors.saved_search_browse(search=search, user=request.user,
                                               ordering=ordering)
        self.browse_ordering = browse.ordering
        page = self.paginate_queryset(listing_rows(browse.queryset))
        return self.get_paginated_response(represent_rows(page, request))
