"""Escrow endpoints: transactions, payment, QR handoff, disputes, meetup, ratings, wallet,
and the Stripe webhook. Views validate input and call escrow.services / escrow.selectors."""

from __future__ import annotations

import io
import json
import logging

import qrcode
from django.db import OperationalError
from django.utils.translation import gettext_lazy as _
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.generics import GenericAPIView
from rest_framework.permissions import AllowAny
from rest_framework.renderers import BaseRenderer, JSONRenderer
from rest_framework.response import Response
from rest_framework.views import APIView

from bidding import services as bidding_services
from biddt import handoff_tokens
from biddt.errors import NotFound, ServiceUnavailable, ValidationError
from biddt.idempotency import idempotent_response
from escrow import selectors, services
from escrow.api import serializers as s
from escrow.models import Transaction
from escrow.payments import GatewayError, MalformedEvent, WebhookSignatureInvalid

logger = logging.getLogger(__name__)
TAGS = ["escrow"]
IDEMPOTENCY_KEY = OpenApiParameter(
    "Idempotency-Key", OpenApiTypes.STR, OpenApiParameter.HEADER, required=False,
    description="Same key from the same user within 24 h: the first (successful) answer is "
                "returned again (header `Idempotent-Replayed: true`) and nothing new happens. "
                "The same key with another body: 422 `idempotency_key_reused`.",
)
# What a transaction body reads, joined (the detail, the claim, buy now).
DETAIL = ("listing", "buyer", "seller", "meetup_safe_zone", "meetup_proposed_by")
WRONG_USER = "404 `not_found` for anyone but the parties (another user's transaction)."


class EscrowViewMixin:
    """Map provider outages and database lock timeouts to 503 (the client retries)."""

    # Read by the schema generator (biddt.openapi): these endpoints document their 503.
    may_answer_503 = True

    def handle_exception(self, exc):
        if isinstance(exc, GatewayError):
            exc = ServiceUnavailable(_("The payment provider is unavailable; try again."))
        elif isinstance(exc, OperationalError):
            exc = ServiceUnavailable()
        elif isinstance(exc, Transaction.DoesNotExist):
            exc = NotFound()
        return super().handle_exception(exc)


def _txn_body(request, txn: Transaction) -> dict:
    txn = selectors.transaction_for(user=request.user, transaction_id=txn.pk,
                                    role="viewer", related=DETAIL)
    return s.TransactionSerializer(txn, context={"request": request}).data


class TransactionsView(EscrowViewMixin, APIView):
    @extend_schema(
        tags=TAGS, summary="The transaction of a sale I won",
        request=s.TransactionClaimSerializer,
        responses={200: s.TransactionSerializer, 201: s.TransactionSerializer},
        parameters=[IDEMPOTENCY_KEY],
        description="Idempotent: returns the one transaction of that sale (200; the sale "
                    "already created it). 201 only if this call had to create it. Anyone but "
                    "the winner: 404 `not_found`; a listing that isn't sold: 409 "
                    "`listing_not_sold`.",
    )
    def post(self, request):
        data = s.TransactionClaimSerializer(data=request.data)
        data.is_valid(raise_exception=True)

        def work():
            txn, created = services.transaction_claim(
                user=request.user, listing_id=data.validated_data["listing_id"])
            return (status.HTTP_201_CREATED if created else status.HTTP_200_OK,
                    _txn_body(request, txn))

        return idempotent_response(request, scope="transaction-claim", work=work)


class TransactionDetailView(EscrowViewMixin, APIView):
    @extend_schema(tags=TAGS, summary="A transaction", responses={200: s.TransactionSerializer},
                   description="Buyer, seller or staff; anyone else 404 `not_found`.")
    def get(self, request, transaction_id):
        try:
            txn = selectors.transaction_for(user=request.user, transaction_id=transaction_id,
                                            role="viewer", related=DETAIL)
        except Transaction.DoesNotExist:
            raise NotFound() from None
        return Response(s.TransactionSerializer(txn, context={"request": request}).data)


class PayView(EscrowViewMixin, APIView):
    @extend_schema(
        tags=TAGS, summary="Pay (create the PaymentIntent)", request=None,
        responses={200: s.PaymentIntentSerializer}, parameters=[IDEMPOTENCY_KEY],
        description="Buyer only (" + WRONG_USER + "), `pending_payment` only (409 "
                    "`invalid_state`). Creates the PaymentIntent for `total_charged_cents` once "
                    "(a repeated call returns the same one); confirm it with the client secret. "
                    "The transaction moves to `in_escrow` when the provider confirms the "
                    "payment (webhook). With the `simulated` backend the payment is confirmed "
                    "at once (test money): `status` is `succeeded` and the transaction is "
                    "already `in_escrow`. 503 `service_unavailable` if the provider is down.",
    )
    def post(self, request, transaction_id):
        def work():
            pi = services.transaction_pay(user=request.user, transaction_id=transaction_id)
            return status.HTTP_200_OK, s.PaymentIntentSerializer(pi).data

        return idempotent_response(request, scope="transaction-pay", work=work)


class PNGRenderer(BaseRenderer):
    media_type = "image/png"
    format = "png"
    charset = None
    render_style = "binary"

    def render(self, data, accepted_media_type=None, renderer_context=None):
        if isinstance(data, bytes):
            return data
        # An error answer asked for as PNG is still the JSON error shape.
        response = (renderer_context or {}).get("response")
        if response is not None:
            response["Content-Type"] = "application/json"
        return json.dumps(data).encode()


class QrView(EscrowViewMixin, APIView):
    renderer_classes = [JSONRenderer, PNGRenderer]

    @extend_schema(
        tags=TAGS, summary="The buyer's handoff QR code",
        parameters=[OpenApiParameter("format", OpenApiTypes.STR, enum=["json", "png"],
                                     description="`png` returns the QR code as image/png.")],
        responses={200: s.QrSerializer,
                   (200, "image/png"): OpenApiResponse(OpenApiTypes.BINARY,
                                                       description="The QR code image.")},
        description="Buyer only (anyone else 404 `not_found`), `in_escrow` only (409 "
                    "`invalid_state`). Every call returns a new code and the previous one "
                    "stops working; a code is valid `BIDDT_QR_TTL_SECONDS` (600) and once. "
                    "`token` is the same handoff signed with Ed25519 for a seller without "
                    "signal (see `GET /v1/handoff-keys` and the verify call); the PNG encodes "
                    "the token.",
    )
    def get(self, request, transaction_id):
        issued = services.handoff_issue(user=request.user, transaction_id=transaction_id)
        if getattr(request.accepted_renderer, "format", "") == "png":
            buffer = io.BytesIO()
            qrcode.make(issued.token).save(buffer, format="PNG")
            response = Response(buffer.getvalue(), content_type="image/png")
            response["Cache-Control"] = "no-store"
            return response
        response = Response(s.QrSerializer(issued).data)
        response["Cache-Control"] = "no-store"
        return response


class VerifyView(EscrowViewMixin, APIView):
    @extend_schema(
        tags=TAGS, summary="Scan the buyer's code: release the money",
        request=s.HandoffVerifySerializer, responses={200: s.TransactionSerializer},
        parameters=[IDEMPOTENCY_KEY],
        description="Seller only (anyone else 404 `not_found`). `in_escrow` → `released`, "
                    "exactly once even if scanned twice at the same time; the payout to the "
                    "seller's wallet follows. Body `{code}`, or `{token, scanned_at}` (the "
                    "signed token of the QR code, scanned offline, sent once online). 400 "
                    "`invalid_code` / `code_expired`; 409 `code_already_used`, 409 "
                    "`invalid_state`; 429 (`Retry-After`) after BIDDT_QR_MAX_WRONG_CODES (10) "
                    "wrong codes for the transaction in BIDDT_QR_GUESS_WINDOW_SECONDS (600), "
                    "when the current code also dies. With a token: `invalid_code` when it "
                    "isn't signed by a key of `GET /v1/handoff-keys`, names another "
                    "transaction, seller or amount, or `scanned_at` is later than now + "
                    "BIDDT_HANDOFF_CLOCK_SKEW_SECONDS (120 s of phone clock skew) or before "
                    "the token was issued; `code_expired` when `scanned_at` is after the "
                    "token's `exp` or more than BIDDT_HANDOFF_SCAN_MAX_AGE_HOURS (72) ago; "
                    "`code_already_used` once the transaction is released.",
    )
    def post(self, request, transaction_id):
        data = s.HandoffVerifySerializer(data=request.data)
        data.is_valid(raise_exception=True)
        body = data.validated_data

        def work():
            if "token" in body:
                txn = services.transaction_verify_token(
                    user=request.user, transaction_id=transaction_id, token=body["token"],
                    scanned_at=body["scanned_at"])
                return status.HTTP_200_OK, _txn_body(request, txn)
            txn = services.escrow_release(user=request.user, transaction_id=transaction_id,
                                          code=body["code"])
            return status.HTTP_200_OK, _txn_body(request, txn)

        return idempotent_response(request, scope="transaction-verify", work=work)


class HandoffKeysView(APIView):
    permission_classes = [AllowAny]
    authentication_classes = []

    @extend_schema(
        tags=TAGS, summary="Public keys of the handoff tokens (JWKS)", auth=[],
        responses={200: s.JwksSerializer},
        description="Public, no token needed. The Ed25519 public keys (RFC 8037 `OKP` JWKs) "
                    "that sign the `token` of `GET /v1/transactions/{id}/qr`: the current "
                    "signing key first, then keys retired by a rotation, which still verify "
                    "the tokens they signed until those expire. The seller's app caches this "
                    "and checks a scanned token's signature with no network (match the "
                    "token's `kid`; `alg` is `EdDSA`).",
    )
    def get(self, request):
        response = Response(handoff_tokens.jwks())
        response["Cache-Control"] = "public, max-age=3600"
        return response


class DisputeView(EscrowViewMixin, APIView):
    @extend_schema(
        tags=TAGS, summary="Open a dispute", request=s.DisputeCreateSerializer,
        responses={201: s.DisputeSerializer},
        description="Buyer or seller (anyone else 404 `not_found`) while `in_escrow` (else "
                    "409 `invalid_state`): the transaction becomes `disputed` and staff "
                    "resolve it (refund or release). Answers the dispute.",
    )
    def post(self, request, transaction_id):
        data = s.DisputeCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        dispute = services.dispute_open(user=request.user, transaction_id=transaction_id,
                                        reason=data.validated_data["reason"])
        return Response(s.DisputeSerializer(dispute).data, status=status.HTTP_201_CREATED)


class MeetupView(EscrowViewMixin, APIView):
    @extend_schema(
        tags=TAGS, summary="Propose the meetup", request=s.MeetupUpdateSerializer,
        responses={200: s.TransactionSerializer},
        description="Buyer or seller (anyone else 404 `not_found`) while `pending_payment` or "
                    "`in_escrow` (else 409 `invalid_state`). 400 `invalid_safe_zone` (unknown "
                    "or inactive), 400 `invalid_meetup_time` (not in the future). The other "
                    "party gets a `transaction_update` socket event.",
    )
    def patch(self, request, transaction_id):
        data = s.MeetupUpdateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        txn = services.meetup_set(user=request.user, transaction_id=transaction_id,
                                  **data.validated_data)
        return Response(_txn_body(request, txn))


class RatingView(EscrowViewMixin, APIView):
    @extend_schema(
        tags=TAGS, summary="Rate the other party", request=s.RatingCreateSerializer,
        responses={201: s.RatingSerializer},
        description="Buyer or seller (anyone else 404 `not_found`), once each, after "
                    "`released` (else 409 `invalid_state`); 409 `already_rated`.",
    )
    def post(self, request, transaction_id):
        data = s.RatingCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        rating = services.rating_create(user=request.user, transaction_id=transaction_id,
                                        **data.validated_data)
        return Response(s.RatingSerializer(rating).data, status=status.HTTP_201_CREATED)


class WalletView(EscrowViewMixin, APIView):
    @extend_schema(
        tags=["users"], summary="Create my payout wallet", request=None,
        responses={201: s.WalletSerializer, 200: s.WalletSerializer},
        description="Creates the seller's payout account (a Stripe Express connected "
                    "account) and returns an onboarding link: 201 the first time, 200 with the "
                    "same wallet (and a fresh link while onboarding is pending) afterwards. "
                    "`status`: `pending` → `active` (or `restricted` / `disabled`), kept "
                    "current by Stripe's `account.updated`. `onboarding_url` is null once the "
                    "account is active (always with the `simulated` backend). 503 if the "
                    "provider is down.",
    )
    def post(self, request):
        wallet, url, created = services.wallet_create(user=request.user)
        return Response(s.WalletSerializer({"status": wallet.status, "onboarding_url": url}).data,
                        status=status.HTTP_201_CREATED if created else status.HTTP_200_OK)


class WalletBalanceView(APIView):
    @extend_schema(
        tags=["users"], summary="My wallet balance", responses={200: s.WalletBalanceSerializer},
        description="From the ledger, in cents: `pending_cents` (your payouts of sales whose "
                    "money is held in escrow), `available_cents` (released to you, not yet "
                    "transferred: waiting for your wallet or in transit), `paid_out_cents` "
                    "(transferred to your account).",
    )
    def get(self, request):
        return Response(s.WalletBalanceSerializer(
            selectors.wallet_balance(user=request.user)).data)


class MyTransactionsView(GenericAPIView):
    queryset = Transaction.objects.none()  # for the schema; reads go through selectors
    serializer_class = s.TransactionSerializer

    @extend_schema(tags=["users"], summary="My transactions",
                   responses={200: s.TransactionSerializer(many=True)},
                   description="As buyer or seller, newest first (cursor pagination).")
    def get(self, request):
        page = self.paginate_queryset(selectors.transactions_of_user(user=request.user))
        return self.get_paginated_response(self.get_serializer(page, many=True).data)


class StripeWebhookView(APIView):
    authentication_classes: list = []
    permission_classes = [AllowAny]
    throttle_classes: list = []

    @extend_schema(
        tags=["webhooks"], summary="Stripe webhook", request=OpenApiTypes.OBJECT,
        responses={200: OpenApiResponse(description="Received (or a duplicate: no-op)."),
                   400: OpenApiResponse(description="`invalid_signature`: bad signature or "
                                                    "a timestamp older than 5 minutes; "
                                                    "`invalid_event`: signed, but not the "
                                                    "shape of an event (nothing stored)."),
                   503: OpenApiResponse(description="Busy or provider unreachable: retry.")},
        description="Called by Stripe. The `Stripe-Signature` header is checked on the raw "
                    "body; each event is stored once by its id and handled once. "
                    "`payment_intent.succeeded` → `in_escrow`, `payment_intent.payment_failed` "
                    "→ the buyer is told, `account.updated` → the wallet status (and waiting "
                    "payouts). The object is re-read from Stripe before acting. An event about "
                    "an object Stripe or we don't know is stored and acknowledged (200); "
                    "`reconcile_payments` lists it.",
    )
    def post(self, request):
        payload = request.body
        try:
            services.webhook_receive(payload=payload,
                                     sig_header=request.headers.get("Stripe-Signature"))
        except WebhookSignatureInvalid as exc:
            # A forged, replayed (old timestamp) or corrupted delivery: refused and logged.
            logger.warning("stripe webhook refused: %s", exc)
            raise ValidationError("The webhook signature is not valid.",
                                  code="invalid_signature") from None
        except MalformedEvent as exc:
            logger.warning("stripe webhook malformed: %s", exc)
            raise ValidationError(f"The event is malformed: {exc}.",
                                  code="invalid_event") from None
        except (GatewayError, OperationalError):
            raise ServiceUnavailable() from None
        return Response({"received": True})


# Buy now's own wording: a refused purchase stores nothing (bidding's idempotency rule).
BUY_NOW_IDEMPOTENCY_KEY = OpenApiParameter(
    "Idempotency-Key", OpenApiTypes.STR, OpenApiParameter.HEADER, required=False,
    description="Same key from the same user within 24 h: the first (successful) answer is "
                "returned again (header `Idempotent-Replayed: true`) and nothing new is "
                "created. A refused request stores nothing, so its retry is evaluated again. "
                "The same key with another body: 422 `idempotency_key_reused`.",
)


class BuyNowView(APIView):
    """`POST /v1/listings/{id}/buy-now`: bidding sells the listing (`listing_buy_now`), escrow
    creates the transaction in the same database transaction; the body is that transaction."""

    @extend_schema(
        tags=["bidding"], summary="Buy now", request=None,
        responses={201: s.TransactionSerializer}, parameters=[BUY_NOW_IDEMPOTENCY_KEY],
        description=(
            "Buys the listing at its buy-now price (a `fixed` listing at its price): the "
            "listing is `sold` and the transaction is created in `pending_payment`. 201 body: "
            "that transaction, exactly as `GET /v1/transactions/{id}` returns it to the buyer. "
            "A retry with the same `Idempotency-Key` returns that same body again (header "
            "`Idempotent-Replayed: true`) and buys nothing. 409 `buy_now_unavailable` "
            "(auction-only listing, not active, ended, or a bid exists and the reserve is met "
            "or absent), 409 `own_listing`, 404 `not_found`, 403 `account_suspended`, 422 "
            "`idempotency_key_reused`."
        ),
    )
    def post(self, request, listing_id):
        def work():
            txn = bidding_services.listing_buy_now(listing_id=listing_id, buyer=request.user)
            # Read it back as the transaction detail does (one query, parties and meetup
            # joined) so the body is the same as `GET /v1/transactions/{id}`.
            txn = selectors.transaction_for(user=request.user, transaction_id=txn.pk,
                                            role="viewer", related=DETAIL)
            return (status.HTTP_201_CREATED,
                    s.TransactionSerializer(txn, context={"request": request}).data)

        return idempotent_response(request, scope="buy-now", work=work)
