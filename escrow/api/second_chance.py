"""Second-chance endpoints: the seller's offer to the runner-up, the bidder's accept and
decline. Views validate input and call escrow.services.second_chance."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from bidding.models import SecondChanceOffer
from biddt.idempotency import idempotent_response
from escrow.api.serializers import TransactionSerializer
from escrow.api.views import IDEMPOTENCY_KEY, _txn_body
from escrow.services import second_chance

TAGS = ["bidding"]
SECOND_CHANCE_STATUS_CHOICES = SecondChanceOffer.Status.choices  # `SecondChanceStatusEnum`


class SecondChanceBidderSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    display_name = serializers.CharField()


class SecondChanceOfferSerializer(serializers.ModelSerializer):
    listing_id = serializers.UUIDField(read_only=True)
    bidder = SecondChanceBidderSerializer(read_only=True)
    status = serializers.ChoiceField(choices=SECOND_CHANCE_STATUS_CHOICES, read_only=True)

    class Meta:
        model = SecondChanceOffer
        fields = ["id", "listing_id", "bidder", "amount_cents", "status", "expires_at"]
        read_only_fields = fields


class SecondChanceCreateView(APIView):
    @extend_schema(
        tags=TAGS, summary="Offer an unpaid item to the runner-up", request=None,
        responses={201: SecondChanceOfferSerializer}, parameters=[IDEMPOTENCY_KEY],
        description="Seller only (403 `permission_denied` for others, 404 `not_found` for a "
                    "listing the caller can't see). When the sale's transaction ended "
                    "`cancelled` (the winner didn't pay) and the listing is `unsold`: the offer "
                    "goes to the runner-up, the highest maximum among the other bidders whose "
                    "bids still stand (not retracted; ties to the earlier bid; bidders already "
                    "offered are skipped), at that maximum capped at the winning price. The "
                    "bidder gets a `second_chance_offer` notification. The offer lives "
                    "BIDDT_SECOND_CHANCE_HOURS (48 h). 409 `no_runner_up`; 409 "
                    "`second_chance_unavailable` (listing not in that state, or an offer "
                    "already open). After a decline or expiry, call again for the next bidder.",
    )
    def post(self, request, listing_id):
        def work():
            offer = second_chance.second_chance_offer_create(user=request.user,
                                                             listing_id=listing_id)
            offer = SecondChanceOffer.objects.select_related("bidder").get(pk=offer.pk)
            return status.HTTP_201_CREATED, SecondChanceOfferSerializer(offer).data

        return idempotent_response(request, scope="second-chance-offer", work=work)


class SecondChanceAcceptView(APIView):
    @extend_schema(
        tags=TAGS, summary="Accept a second-chance offer", request=None,
        responses={201: TransactionSerializer}, parameters=[IDEMPOTENCY_KEY],
        description="The offered bidder only (anyone else 404 `not_found`). Creates the "
                    "transaction in `pending_payment`, fees and payment window as for any "
                    "sale, and the listing is `sold` again. 201 body: that transaction as "
                    "`GET /v1/transactions/{id}` returns it; accepting again returns the same "
                    "transaction. 409 `second_chance_unavailable` when the offer was declined "
                    "or expired or the listing can no longer be sold.",
    )
    def post(self, request, offer_id):
        def work():
            txn = second_chance.second_chance_accept(user=request.user, offer_id=offer_id)
            return status.HTTP_201_CREATED, _txn_body(request, txn)

        return idempotent_response(request, scope="second-chance-accept", work=work)


class SecondChanceDeclineView(APIView):
    @extend_schema(
        tags=TAGS, summary="Decline a second-chance offer", request=None,
        responses={204: OpenApiResponse(description="Declined (declining again: the same).")},
        description="The offered bidder only (anyone else 404 `not_found`); the seller may "
                    "then offer the next bidder. 409 `second_chance_unavailable` when the "
                    "offer was accepted or expired.",
    )
    def post(self, request, offer_id):
        second_chance.second_chance_decline(user=request.user, offer_id=offer_id)
        return Response(status=status.HTTP_204_NO_CONTENT)
