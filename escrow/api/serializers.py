from __future__ import annotations

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from accounts.models import Rating
from escrow.models import Dispute, Transaction


class PartySerializer(serializers.Serializer):
    """A buyer's or seller's public summary (never the phone or e-mail)."""

    id = serializers.UUIDField()
    display_name = serializers.CharField()
    rating_avg = serializers.FloatField(allow_null=True)
    rating_count = serializers.IntegerField()
    completed_sales = serializers.IntegerField()


class TransactionListingSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    title = serializers.CharField()
    status = serializers.CharField()
    location_name = serializers.CharField()
    image_url = serializers.SerializerMethodField()

    @extend_schema_field(serializers.URLField(allow_null=True))
    def get_image_url(self, listing) -> str | None:
        image = listing.images.first()
        if image is None:
            return None
        request = self.context.get("request")
        url = image.image.url
        return request.build_absolute_uri(url) if request else url


class SafeZoneSummarySerializer(serializers.Serializer):
    id = serializers.UUIDField()
    partner_name = serializers.CharField()
    address = serializers.CharField()
    lat = serializers.FloatField()
    lng = serializers.FloatField()


class MeetupSerializer(serializers.Serializer):
    safe_zone = SafeZoneSummarySerializer(source="meetup_safe_zone")
    meetup_at = serializers.DateTimeField()
    proposed_by = serializers.UUIDField(source="meetup_proposed_by_id", allow_null=True)


class TransactionSerializer(serializers.ModelSerializer):
    listing = TransactionListingSerializer()
    buyer = PartySerializer()
    seller = PartySerializer()
    meetup = serializers.SerializerMethodField()

    class Meta:
        model = Transaction
        fields = ["id", "listing", "buyer", "seller", "amount_cents", "fee_cents",
                  "escrow_fee_cents", "total_charged_cents", "seller_payout_cents", "status",
                  "meetup", "verified_at", "released_at", "created_at", "updated_at"]
        read_only_fields = fields

    @extend_schema_field(MeetupSerializer(allow_null=True))
    def get_meetup(self, txn: Transaction) -> dict | None:
        if txn.meetup_safe_zone_id is None or txn.meetup_at is None:
            return None
        return MeetupSerializer(txn).data


class TransactionClaimSerializer(serializers.Serializer):
    listing_id = serializers.UUIDField()


class PaymentIntentSerializer(serializers.Serializer):
    payment_intent_id = serializers.CharField(source="id")
    client_secret = serializers.CharField()
    status = serializers.CharField(help_text="The provider's PaymentIntent status "
                                             "(`requires_payment_method`, `succeeded`, ...).")


class QrSerializer(serializers.Serializer):
    code = serializers.CharField()
    expires_at = serializers.DateTimeField()
    token = serializers.CharField(
        help_text="Compact JWS (`alg: EdDSA`, Ed25519; header `kid`, `typ: biddt-handoff+jwt`) "
                  "with claims `transaction_id`, `seller_id`, `amount_cents`, `currency`, `exp` "
                  "(= `expires_at`), `iat`, `jti`, `iss: biddt`, `aud: biddt-handoff`. The PNG "
                  "(`?format=png`) encodes this token. Check it offline with "
                  "`GET /v1/handoff-keys`.")


class HandoffVerifySerializer(serializers.Serializer):
    code = serializers.CharField(max_length=200, required=False,
                                 help_text="The code, typed or scanned online. Or send "
                                           "`token` and `scanned_at`.")
    token = serializers.CharField(max_length=4000, required=False,
                                  help_text="The signed token the QR code carries, scanned "
                                            "(possibly offline) by the seller's app.")
    scanned_at = serializers.DateTimeField(
        required=False, help_text="With `token`: when the seller's app scanned it.")

    def validate(self, attrs):
        if "code" in attrs and "token" in attrs:
            raise serializers.ValidationError({"token": serializers.ErrorDetail(
                "Send either `code` or `token`, not both.", code="invalid")})
        if "code" not in attrs and "token" not in attrs:
            raise serializers.ValidationError({"code": serializers.ErrorDetail(
                "Send `code`, or `token` with `scanned_at`.", code="required")})
        if "token" in attrs and "scanned_at" not in attrs:
            raise serializers.ValidationError({"scanned_at": serializers.ErrorDetail(
                "Required with `token`.", code="required")})
        return attrs


class JwkSerializer(serializers.Serializer):
    kty = serializers.CharField(help_text="`OKP`")
    crv = serializers.CharField(help_text="`Ed25519`")
    x = serializers.CharField(help_text="The public key, base64url without padding.")
    kid = serializers.CharField()
    alg = serializers.CharField(help_text="`EdDSA`")
    use = serializers.CharField(help_text="`sig`")


class JwksSerializer(serializers.Serializer):
    keys = JwkSerializer(many=True)


class DisputeCreateSerializer(serializers.Serializer):
    reason = serializers.CharField(max_length=2000)


class DisputeSerializer(serializers.ModelSerializer):
    transaction_id = serializers.UUIDField(read_only=True)
    transaction_status = serializers.CharField(source="transaction.status", read_only=True)

    class Meta:
        model = Dispute
        fields = ["id", "transaction_id", "transaction_status", "status", "reason",
                  "created_at"]
        read_only_fields = fields


class MeetupUpdateSerializer(serializers.Serializer):
    safe_zone_id = serializers.UUIDField()
    meetup_at = serializers.DateTimeField()


class RatingCreateSerializer(serializers.Serializer):
    score = serializers.IntegerField(min_value=1, max_value=5)
    comment = serializers.CharField(max_length=1000, required=False, allow_blank=True,
                                    default="")


class RatingSerializer(serializers.ModelSerializer):
    transaction_id = serializers.UUIDField(read_only=True)
    ratee_id = serializers.UUIDField(read_only=True)

    class Meta:
        model = Rating
        fields = ["id", "transaction_id", "ratee_id", "score", "comment", "created_at"]
        read_only_fields = fields


class WalletSerializer(serializers.Serializer):
    status = serializers.CharField(
        help_text="`pending` (onboarding to complete), `active`, `restricted`, `disabled`.")
    onboarding_url = serializers.URLField(
        allow_null=True, help_text="Stripe Express onboarding link (single use, short lived); "
                                   "null once the account is active.")


class WalletBalanceSerializer(serializers.Serializer):
    currency = serializers.CharField()
    pending_cents = serializers.IntegerField()
    available_cents = serializers.IntegerField()
    paid_out_cents = serializers.IntegerField()
