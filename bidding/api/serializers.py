"""Bid representations (REST bodies and the objects embedded in socket events)."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from bidding import selectors
from bidding.models import Bid

# The bid's hot path renders the same data without serializers (bidding/payloads.py, called by
# the service and the consumer); re-exported for code that imports it from here.
from bidding.payloads import (  # noqa: F401
    bid_history_data,
    bid_placed_data,
    bidder_alias,
    listing_live_data,
)
from biddt.parsers import MAX_INT

BID_STATUS_CHOICES = Bid.Status.choices  # named `BidStatusEnum` in the schema (settings)


class BidCreateSerializer(serializers.Serializer):
    amount_cents = serializers.IntegerField(min_value=1, max_value=MAX_INT)
    max_amount_cents = serializers.IntegerField(min_value=1, max_value=MAX_INT, required=False,
                                                allow_null=True)


class ListingLiveSerializer(serializers.Serializer):
    """The live auction state shown beside a bid: no reserve, no maximum."""

    current_price_cents = serializers.IntegerField()
    bid_count = serializers.IntegerField()
    minimum_next_bid_cents = serializers.IntegerField()
    ends_at = serializers.DateTimeField(allow_null=True)
    reserve_met = serializers.BooleanField(allow_null=True)
    seq = serializers.IntegerField()

    def to_representation(self, instance):
        return super().to_representation(selectors.listing_live(instance))


class ListingRoomSerializer(ListingLiveSerializer):
    """`subscribed.listing`: the live state plus status."""

    status = serializers.CharField()


class BidderPublicSerializer(serializers.Serializer):
    display_name = serializers.CharField(source="bidder.masked_name")
    alias = serializers.SerializerMethodField(
        help_text="`Bidder N`, N the order of this bidder's first bid on the listing; stable "
                  "for the listing's life, so two bidders with the same masked name differ.")

    def get_alias(self, bid: Bid) -> str:
        return bidder_alias(bid.bidder_number)


class BidHistorySerializer(serializers.ModelSerializer):
    """A public history item: never the maximum, the bidder's name masked ("j***n") and
    their alias on this listing ("Bidder 2")."""

    bidder = BidderPublicSerializer(source="*")

    class Meta:
        model = Bid
        fields = ["id", "amount_cents", "bidder", "is_auto_bid", "created_at"]


class BidPlacedSerializer(serializers.ModelSerializer):
    """201 body of a bid (and the socket `ack.bid`)."""

    listing_id = serializers.UUIDField(read_only=True)
    is_leading = serializers.SerializerMethodField()
    listing = serializers.SerializerMethodField()

    class Meta:
        model = Bid
        fields = ["id", "listing_id", "amount_cents", "max_amount_cents", "status",
                  "is_leading", "listing"]

    def get_is_leading(self, bid: Bid) -> bool:
        return bid.listing.leader_id == bid.bidder_id

    @extend_schema_field(ListingLiveSerializer)
    def get_listing(self, bid: Bid) -> dict:
        return ListingLiveSerializer(bid.listing).data


class ListingSummarySerializer(serializers.Serializer):
    id = serializers.UUIDField()
    title = serializers.CharField()
    status = serializers.CharField()
    current_price_cents = serializers.IntegerField()
    ends_at = serializers.DateTimeField(allow_null=True)


class MyBidSerializer(serializers.ModelSerializer):
    """The caller's own bid (their maximum included) with a listing summary."""

    listing = ListingSummarySerializer()
    is_leading = serializers.SerializerMethodField()

    class Meta:
        model = Bid
        fields = ["id", "listing", "amount_cents", "max_amount_cents", "is_auto_bid", "status",
                  "is_leading", "created_at"]

    def get_is_leading(self, bid: Bid) -> bool:
        return bid.listing.status == "active" and bid.listing.leader_id == bid.bidder_id
