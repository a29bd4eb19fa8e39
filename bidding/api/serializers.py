"""Bid representations (REST bodies and the objects embedded in socket events)."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from bidding import selectors
from bidding.models import Bid
from biddt.parsers import MAX_INT

BID_STATUS_CHOICES = Bid.Status.choices  # named `BidStatusEnum` in the schema (settings)

# One unbound field: its ISO 8601 rendering (UTC shown as `Z`) is the serializers' own.
_DATETIME = serializers.DateTimeField()


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


def bidder_alias(number: int | None) -> str:
    """"Bidder N": N the order of the bidder's first bid on the listing."""
    return f"Bidder {number}" if number else "Bidder"


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



# --- The bid's hot path ----------------------------------------------------------------------
# Every accepted bid renders its 201 body and the room's `bid_placed` event. Building them
# through the serializers above (fields bound, `to_representation` per field, a ReturnDict)
# cost about as much CPU as the bid's SQL. These plain functions give the same data, key for
# key and value for value (tests/bidding/test_payloads.py renders both, byte for byte); the
# serializers stay the schema's description and serve every other path.

def _bool_or_none(value) -> bool | None:
    return None if value is None else bool(value)


def listing_live_data(listing) -> dict:
    """`ListingLiveSerializer(listing).data`."""
    live = selectors.listing_live(listing)
    ends_at = live["ends_at"]
    return {
        "current_price_cents": int(live["current_price_cents"]),
        "bid_count": int(live["bid_count"]),
        "minimum_next_bid_cents": int(live["minimum_next_bid_cents"]),
        "ends_at": _DATETIME.to_representation(ends_at) if ends_at else None,
        "reserve_met": _bool_or_none(live["reserve_met"]),
        "seq": int(live["seq"]),
    }


def bid_history_data(bid: Bid, *, bidder_name: str | None = None) -> dict:
    """`BidHistorySerializer(bid).data`; `bidder_name` is the bidder's masked name when the
    caller already has it (the bid service reads the leader's with the listing row), so the
    bidder's row is not loaded."""
    return {
        "id": str(bid.pk),
        "amount_cents": int(bid.amount_cents),
        "bidder": {"display_name": str(bidder_name if bidder_name is not None
                                       else bid.bidder.masked_name),
                   "alias": bidder_alias(bid.bidder_number)},
        "is_auto_bid": bool(bid.is_auto_bid),
        "created_at": _DATETIME.to_representation(bid.created_at) if bid.created_at else None,
    }


def bid_placed_data(bid: Bid) -> dict:
    """`BidPlacedSerializer(bid).data`: the 201 body of a bid and the socket `ack.bid`."""
    listing = bid.listing
    return {
        "id": str(bid.pk),
        "listing_id": str(bid.listing_id),
        "amount_cents": int(bid.amount_cents),
        "max_amount_cents": int(bid.max_amount_cents),
        "status": str(bid.status),
        "is_leading": listing.leader_id == bid.bidder_id,
        "listing": listing_live_data(listing),
    }
