"""Listings REST views: validate input, call a service or selector, render."""

from __future__ import annotations

import hashlib

from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.exceptions import NotAuthenticated
from rest_framework.generics import GenericAPIView
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.throttling import BaseThrottle
from rest_framework.views import APIView

from accounts.permissions import IsAuthenticatedActive
from biddt.errors import invalid
from biddt.pagination import CursorPagination
from biddt.throttles import UserThrottle
from listings import selectors, services, videos
from listings.api import serializers as s
from listings.api.listing_rows import listing_rows, represent_rows
from listings.filters import ListingBrowseParams, ListingBrowseQuery
from listings.models import Listing
from listings.throttles import ListingCreateThrottle

TAG = ["listings"]
NOT_FOUND = "404 `not_found` for an unknown listing or another user's draft."


class ListingCursorPagination(CursorPagination):
    """Cursor pagination whose ordering the view picks (`ordering=`, relevance for `q`)."""

    ordering = ("-created_at", "-id")

    def get_ordering(self, request, queryset, view):
        return getattr(view, "browse_ordering", None) or self.ordering


class _ReadOpenView(GenericAPIView):
    """Reads are public (browse without an account); writes need an active account."""

    queryset = Listing.objects.none()  # for the schema; reads go through selectors
    serializer_class = s.ListingSerializer

    def get_permissions(self):
        if self.request.method == "GET":
            return [AllowAny()]
        return [IsAuthenticatedActive()]

    def represent(self, request, listing_id, *, status_code=status.HTTP_200_OK) -> Response:
        listing = selectors.listing_get_visible(listing_id=listing_id, user=request.user)
        return Response(self.get_serializer(listing).data, status=status_code)


class ListingListView(_ReadOpenView):
    pagination_class = ListingCursorPagination

    def get_throttles(self):
        if self.request.method == "POST":
            return [UserThrottle(), ListingCreateThrottle()]
        return super().get_throttles()

    @extend_schema(
        tags=TAG, summary="Browse and search listings", parameters=[ListingBrowseParams],
        responses={200: s.ListingSerializer(many=True)},
        description=(
            "Cursor-paginated `{next, previous, results}`. `q` is full text (title ranked "
            "above description); `min_price`/`max_price` are on the current price; `status` "
            "defaults to `active`; `lat`+`lng` (+ `radius_km`, default and maximum 500) "
            "limit results to that circle and add `distance_km`; `watching=true` needs "
            "authentication. 400 with the parameter as `attr` for bad values "
            "(`invalid_choice`, `max_value`, `location_required`, ...)."
        ),
    )
    def get(self, request):
        params = ListingBrowseQuery(data=request.query_params)
        params.is_valid(raise_exception=True)
        p = params.validated_data
        if p.get("watching") and not request.user.is_authenticated:
            raise NotAuthenticated()
        browse = selectors.listing_browse(
            user=request.user, q=p.get("q"), category=p.get("category"),
            condition=p.get("condition"), min_price=p.get("min_price"),
            max_price=p.get("max_price"), status=p["status"], seller_id=p.get("seller"),
            lat=p.get("lat"), lng=p.get("lng"), radius_km=p.get("radius_km"),
            watching=p.get("watching", False), ordering=p.get("ordering"),
        )
        self.browse_ordering = browse.ordering
        # The page as plain values, represented without a serializer per listing (what
        # ListingSerializer would render, byte for byte; see listing_rows).
        page = self.paginate_queryset(listing_rows(browse.queryset))
        return self.get_paginated_response(represent_rows(page, request))

    @extend_schema(
        tags=TAG, summary="Create a draft listing", request=s.ListingWriteSerializer,
        responses={201: s.ListingSerializer},
        description=(
            "Creates a `draft` (publish it with `POST /v1/listings/{id}/publish`). 400 "
            "`invalid_price` (starting price below BIDDT_MIN_PRICE_CENTS or absurd, reserve "
            "or buy-now below the starting price, buy-now missing for `both`), "
            "`invalid_duration` (end too soon, past, or beyond 30 days), field errors "
            "(`max_length`, `invalid_choice`, `min_value`/`max_value`, `invalid_location`). "
            "403 `account_suspended`; 429 past 5 an hour for new sellers (account younger "
            "than 7 days or no completed sale)."
        ),
    )
    def post(self, request):
        data = s.ListingWriteSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        listing = services.listing_create(seller=request.user, **data.validated_data)
        ListingCreateThrottle().record(request, self)  # creations count, refusals don't
        return self.represent(request, listing.pk, status_code=status.HTTP_201_CREATED)


def _viewer_key(request) -> str:
    if request.user.is_authenticated:
        return f"user:{request.user.pk}"
    ident = BaseThrottle().get_ident(request) or "unknown"
    return "ip:" + hashlib.sha256(ident.encode()).hexdigest()[:32]


class ListingDetailView(_ReadOpenView):
    @extend_schema(tags=TAG, summary="A listing", responses={200: s.ListingSerializer},
                   description="Counts a view once per viewer per hour (not the seller's). "
                               + NOT_FOUND)
    def get(self, request, listing_id):
        listing = selectors.listing_get_visible(listing_id=listing_id, user=request.user)
        services.listing_view_record(listing=listing, viewer_key=_viewer_key(request))
        return Response(self.get_serializer(listing).data)

    @extend_schema(
        tags=TAG, summary="Edit a listing (seller)", request=s.ListingUpdateSerializer,
        responses={200: s.ListingSerializer},
        description=(
            "Seller only (403 `permission_denied` for another user's published listing). "
            "Once a bid exists, prices, `auction_type`, `starts_at` and `ends_at` are frozen: "
            "409 `listing_has_bids`. 409 `listing_not_editable` unless `draft`, `scheduled` or "
            "`active`. "
            "400 as on create (`invalid_price`, `invalid_duration`, `invalid_location`). "
            + NOT_FOUND
        ),
    )
    def patch(self, request, listing_id):
        data = s.ListingUpdateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        services.listing_update(listing_id=listing_id, user=request.user,
                                data=dict(data.validated_data))
        return self.represent(request, listing_id)

    @extend_schema(
        tags=TAG, summary="Cancel a listing (seller, no bids)",
        responses={204: OpenApiResponse(description="Now `cancelled`.")},
        description="409 `listing_has_bids` once a bid exists; 409 `listing_not_editable` "
                    "unless `draft`, `scheduled` or `active`; 403 for another user's listing. "
                    + NOT_FOUND,
    )
    def delete(self, request, listing_id):
        services.listing_cancel(listing_id=listing_id, user=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)


class ListingPublishView(_ReadOpenView):
    @extend_schema(
        tags=TAG, summary="Publish a draft (seller)", request=None,
        responses={200: s.ListingSerializer},
        description="`draft` → `active`, or `scheduled` while `starts_at` is in the future (it "
                    "opens at `starts_at`); `starts_at` = now if unset. The terms are checked "
                    "again against now (400 `invalid_duration` for an end too soon). 409 "
                    "`listing_not_draft`; 403 for another user's listing. " + NOT_FOUND,
    )
    def post(self, request, listing_id):
        services.listing_publish(listing_id=listing_id, user=request.user)
        return self.represent(request, listing_id)


class ListingImagesView(APIView):
    @extend_schema(
        tags=TAG, summary="Add an image (seller)",
        request={"multipart/form-data": s.ListingImageUploadSerializer},
        responses={201: s.ListingImageSerializer},
        description=(
            "Multipart field `image`: JPEG, PNG or WebP by content, at most 10 MB and 10 per "
            "listing. Metadata (EXIF, GPS) is stripped; a display version (≤ 1600 px) and a "
            "thumbnail (≤ 400 px) are stored; URLs are signed when media is on S3. 400 "
            "`invalid_image`; 409 `listing_not_editable`; 403 for another user's listing. "
            + NOT_FOUND
        ),
    )
    def post(self, request, listing_id):
        data = s.ListingImageUploadSerializer(data=request.data)
        if not data.is_valid():
            raise invalid("invalid_image", _("Send the image as the multipart field "
                                   "`image`."), attr="image")
        image = services.listing_image_add(listing_id=listing_id, user=request.user,
                                           upload=data.validated_data["image"])
        return Response(s.ListingImageSerializer(image, context={"request": request}).data,
                        status=status.HTTP_201_CREATED)


VIDEO_STATES = (
    "The upload is checked on the request, by content: the container (MP4 or QuickTime) and "
    "codec (H.264 or HEVC) read from the file's header, never its name, the frame size and "
    "the declared duration. The worker then remuxes it without metadata (GPS position, "
    "creation time, maker tags and data tracks are dropped), checks the packets' real "
    "duration and extracts a poster frame (JPEG). Until then the video's `status` is "
    "`processing` and `url`/`poster_url` are null; once `ready` it appears in the listing's "
    "`videos` (poll `GET /v1/listings/{id}/videos/{video_id}`). A file the worker refuses "
    "ends `failed` with an `error` and doesn't count against the limit. URLs are signed when "
    "media is on S3."
)


class ListingVideosView(APIView):
    @extend_schema(
        tags=TAG, summary="Add a video (seller)",
        request={"multipart/form-data": s.ListingVideoUploadSerializer},
        responses={201: s.ListingVideoSerializer},
        description=(
            "Multipart field `video`: MP4 or QuickTime, H.264 or HEVC, at most 100 MB "
            "(BIDDT_VIDEO_MAX_BYTES; a larger body is refused before it is read) and 60 s "
            "(BIDDT_VIDEO_MAX_SECONDS), at most one video per listing (a second one is 400 "
            "`invalid_video`, as an eleventh image is `invalid_image`; delete the first). "
            "201 `{id, status, url, poster_url, duration_seconds, error}`: `status` is "
            "`processing` until the worker is done (`ready` at once where tasks run "
            "in-process). " + VIDEO_STATES + " 400 `invalid_video` (attr `video`); 409 "
            "`listing_not_editable`; 403 for another user's listing; 503 "
            "`service_unavailable` when too many videos are being checked (retry). "
            + NOT_FOUND
        ),
    )
    def post(self, request, listing_id):
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0) or None
        except ValueError:
            length = None
        videos.listing_video_check_size(content_length=length)
        data = s.ListingVideoUploadSerializer(data=request.data)
        if not data.is_valid():
            raise invalid("invalid_video", _("Send the video as the multipart field `video`."),
                          attr="video")
        video = videos.listing_video_add(listing_id=listing_id, user=request.user,
                                         upload=data.validated_data["video"])
        return Response(s.ListingVideoSerializer(video, context={"request": request}).data,
                        status=status.HTTP_201_CREATED)


class ListingVideoDetailView(APIView):
    @extend_schema(
        tags=TAG, summary="A video of the caller's listing (seller)",
        responses={200: s.ListingVideoSerializer},
        description=VIDEO_STATES + " 404 `not_found` unless the caller is the seller.",
    )
    def get(self, request, listing_id, video_id):
        video = videos.listing_video_get(listing_id=listing_id, video_id=video_id,
                                         user=request.user)
        return Response(s.ListingVideoSerializer(video, context={"request": request}).data)

    @extend_schema(
        tags=TAG, summary="Remove a video (seller, no bids)", request=None,
        responses={204: OpenApiResponse(description="Removed, with its files.")},
        description="409 `listing_has_bids` once a bid exists; 409 `listing_not_editable` "
                    "unless `draft` or `active`; 403 for another user's listing; 404 "
                    "`not_found` for a video not on this listing. " + NOT_FOUND,
    )
    def delete(self, request, listing_id, video_id):
        videos.listing_video_delete(listing_id=listing_id, video_id=video_id, user=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)


class ListingWatchView(APIView):
    @extend_schema(
        tags=TAG, summary="Watch a listing", request=None,
        responses={201: s.WatchSerializer, 200: s.WatchSerializer},
        description="201 when newly watched, 200 when already watched. " + NOT_FOUND,
    )
    def post(self, request, listing_id):
        created = services.listing_watch(listing_id=listing_id, user=request.user)
        return Response({"is_watching": True},
                        status=status.HTTP_201_CREATED if created else status.HTTP_200_OK)

    @extend_schema(tags=TAG, summary="Stop watching a listing", request=None,
                   responses={204: OpenApiResponse(description="Not watched (idempotent).")})
    def delete(self, request, listing_id):
        services.listing_unwatch(listing_id=listing_id, user=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)


class ListingReportView(APIView):
    permission_classes = [IsAuthenticatedActive]

    @extend_schema(
        tags=TAG, summary="Report a listing to the moderators",
        request=s.ListingReportInSerializer, responses={201: s.ListingReportSerializer},
        description=("`reason` from the fixed list; `details` optional (≤ 2000 chars). Once "
                     "per user per listing: 409 `already_reported`; 409 `own_listing` for "
                     "the seller. " + NOT_FOUND),
    )
    def post(self, request, listing_id):
        data = s.ListingReportInSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        report = services.listing_report(listing_id=listing_id, user=request.user,
                                         **data.validated_data)
        return Response(s.ListingReportSerializer(report).data, status=status.HTTP_201_CREATED)
