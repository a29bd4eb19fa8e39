from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.generics import GenericAPIView
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.permissions import IsAuthenticatedActive
from bidding import payloads, selectors, services
from bidding.api import serializers as s
from bidding.models import Bid
from bidding.throttles import BidThrottle
from biddt.idempotency import idempotent_response
from biddt.pagination import CursorPagination
from biddt.throttles import UserThrottle
from listings.selectors import listing_visible

IDEMPOTENCY_KEY = OpenApiParameter(
    "Idempotency-Key", OpenApiTypes.STR, OpenApiParameter.HEADER, required=False,
    description="Same key from the same user within 24 h: the first (successful) answer is "
                "returned again (header `Idempotent-Replayed: true`) and nothing new is "
                "created. A refused request stores nothing, so its retry is evaluated again. "
                "The same key with another body: 422 `idempotency_key_reused`.",
)


class BidHistoryPagination(CursorPagination):
    """Newest first by the listing's seq (a proxy's automatic answer above the bid it met)."""

    ordering = ("-seq", "-is_auto_bid", "-created_at")


class ListingBidsView(GenericAPIView):
    queryset = Bid.objects.none()  # for the schema; reads go through selectors
    serializer_class = s.BidHistorySerializer
    pagination_class = BidHistoryPagination

    def get_permissions(self):
        if self.request.method == "GET":
            return [AllowAny()]
        return [IsAuthenticatedActive()]

    def get_throttles(self):
        if self.request.method == "POST":
            return [UserThrottle(), BidThrottle()]
        return super().get_throttles()

    @extend_schema(
        tags=["bidding"], summary="Bid history of a listing, newest first",
        responses={200: s.BidHistorySerializer(many=True)},
        description="Public. Bidders' names are masked (`j***n`) and maximums never shown. "
                    "Automatic proxy bids have `is_auto_bid: true`. 404 `not_found` for an "
                    "unknown listing or another seller's draft.",
    )
    def get(self, request, listing_id):
        listing = listing_visible(listing_id=listing_id, user=request.user)
        page = self.paginate_queryset(selectors.bid_history(listing=listing))
        return self.get_paginated_response(self.get_serializer(page, many=True).data)

    @extend_schema(
        tags=["bidding"], summary="Place a bid (proxy bidding)",
        request=s.BidCreateSerializer, responses={201: s.BidPlacedSerializer},
        parameters=[IDEMPOTENCY_KEY],
        description=(
            "`amount_cents` (A) must be ≥ `minimum_next_bid_cents`; `max_amount_cents` (M, "
            "optional) is your proxy maximum, never shown to others. A bid at or below the "
            "leader's maximum is accepted with `is_leading: false` (the leader's proxy "
            "answers). The leader bidding again raises only their own maximum: price, "
            "`bid_count`, the public history and the room stay as they were (unless the new "
            "maximum reaches the reserve: the price then moves to it, a bid everyone sees); "
            "`seq` doesn't move. Refusals (409 unless noted): `listing_not_active` (also "
            "while `scheduled`), `auction_ended`, "
            "`own_listing`, `fixed_price_listing`, `bid_too_low` (its `detail` ends with "
            "`minimum_next_bid_cents=<cents>`, what would have been accepted: for the leader, "
            "above their own maximum; the socket error also carries "
            "`minimumNextBidCents`), 400 `invalid_max` (M < A), 400 `max_value` (A or M above "
            "`BIDDT_MAX_PRICE_CENTS`, the highest price a listing may have), 404 `not_found`, "
            "403 `account_suspended`, 422 `idempotency_key_reused`, 429 past 10 bids a "
            "minute (`Retry-After`)."
        ),
    )
    def post(self, request, listing_id):
        data = s.BidCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)

        def work():
            placed = services.bid_place(listing_id=listing_id, bidder=request.user,
                                        **data.validated_data)
            return status.HTTP_201_CREATED, payloads.bid_placed_data(placed.bid)

        return idempotent_response(request, scope="bid", work=work)


class MyBidsView(GenericAPIView):
    queryset = Bid.objects.none()  # for the schema; reads go through selectors
    serializer_class = s.MyBidSerializer

    @extend_schema(
        tags=["bidding"], summary="My bids", responses={200: s.MyBidSerializer(many=True)},
        description="The caller's bids (all statuses, automatic ones included), newest first, "
                    "each with a listing summary and `is_leading`.",
    )
    def get(self, request):
        page = self.paginate_queryset(selectors.bids_of_user(user=request.user))
        return self.get_paginated_response(self.get_serializer(page, many=True).data)


class BidDetailView(APIView):
    @extend_schema(
        tags=["bidding"], summary="Retract a bid", request=None,
        responses={204: OpenApiResponse(description="Retracted.")},
        description=(
            "eBay's rule: with ≥ 12 h left, all your bids on that listing are retracted; with "
            "< 12 h left, only your latest bid and only within 1 h of placing it; else 409 "
            "`retraction_not_allowed`. Another user's bid: 404 `not_found`. Price, leader and "
            "automatic bids are then recomputed from the remaining bids as if the retracted "
            "ones had never been placed, and the listing's `seq` moves on without a room "
            "event: subscribers see the gap at the next event and re-read over REST."
        ),
    )
    def delete(self, request, bid_id):
        services.bid_retract(bid_id=bid_id, user=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)

