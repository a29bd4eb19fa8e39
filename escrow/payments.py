"""The payments gateway: one interface, two backends (`BIDDT_PAYMENTS_BACKEND`).

- `simulated` (the embedded default): the same state machine with no network. Ids look like
  `pi_sim_...`, `acct_sim_...`, `tr_sim_...`, `re_sim_...`; the money is test money. A
  PaymentIntent is confirmed at once, as a test card would be, and a connected account is
  active at once (no onboarding to complete).
- `stripe`: stripe-python against Stripe (or a localstripe server: `STRIPE_API_BASE`),
  separate charges and transfers with `transfer_group` = the transaction id, so the buyer's
  funds can be held past a card authorisation's 7 days.

Every call that moves money or creates an object carries an idempotency key derived from the
transaction (or the user), so a retried task or request can never charge, pay out or refund
twice: the provider answers a repeated key with the first result.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any, Protocol

import stripe
from django.conf import settings

from escrow.stripe_mirror import mirror_record

# The webhook events acted on (escrow.services.webhook_receive), by the object they name.
PAYMENT_INTENT_EVENTS = ("payment_intent.succeeded", "payment_intent.payment_failed")
ACCOUNT_EVENTS = ("account.updated",)


class GatewayError(Exception):
    """The provider could not be reached or refused the call; retry later."""


class UnknownObject(GatewayError):
    """The provider has no such object (Stripe's 404 `resource_missing`): asking again
    won't find it, so a webhook about it is acknowledged, not retried."""


class WebhookSignatureInvalid(Exception):
    """The webhook's signature (or its timestamp) does not check out."""


class MalformedEvent(ValueError):
    """A correctly signed event without the shape of a Stripe event (`data.object` not an
    object, no object id): a 400, and nothing is stored."""


@dataclass(frozen=True, slots=True)
class PaymentIntentInfo:
    id: str
    client_secret: str
    status: str  # Stripe's: requires_payment_method, processing, succeeded, canceled, ...
    amount: int
    currency: str
    metadata: dict[str, str] = field(default_factory=dict)
    last_error: str = ""


@dataclass(frozen=True, slots=True)
class AccountInfo:
    id: str
    charges_enabled: bool
    payouts_enabled: bool
    details_submitted: bool


def idempotency_key(kind: str, object_id: Any) -> str:
    """The provider idempotency key of one operation on one object (`biddt-pi-<txn id>`)."""
    return f"biddt-{kind}-{object_id}"


class PaymentGateway(Protocol):
    name: str

    def create_payment_intent(self, txn) -> PaymentIntentInfo: ...
    def retrieve_payment_intent(self, payment_intent_id: str) -> PaymentIntentInfo: ...
    def create_connected_account(self, user) -> AccountInfo: ...
    def create_onboarding_link(self, account_id: str) -> str: ...
    def retrieve_account(self, account_id: str) -> AccountInfo: ...
    def create_transfer(self, txn, *, destination: str) -> str: ...
    def create_refund(self, txn) -> str: ...
    def create_partial_refund(self, txn, *, amount_cents: int) -> str: ...
    def verify_webhook(self, payload: bytes, sig_header: str | None) -> dict[str, Any]: ...


def _verify_signed(payload: bytes, sig_header: str | None, secret: str) -> dict[str, Any]:
    """Stripe's scheme (`t=<ts>,v1=<hmac>` over `<ts>.<body>`, 5 minutes' tolerance)."""
    if not secret:
        raise WebhookSignatureInvalid("no webhook secret is configured")
    try:
        stripe.WebhookSignature.verify_header(payload, sig_header, secret,
                                              tolerance=stripe.Webhook.DEFAULT_TOLERANCE)
        event = json.loads(payload)
    except (stripe.SignatureVerificationError, ValueError) as exc:
        raise WebhookSignatureInvalid(str(exc)) from None
    if not isinstance(event, dict) or not event.get("id") or not event.get("type"):
        raise WebhookSignatureInvalid("not an event")
    return event


class SimulatedGateway:
    """No network: deterministic ids from the transaction, everything succeeds at once."""

    name = "simulated"

    @staticmethod
    def _sim_id(prefix: str, object_id: Any) -> str:
        return f"{prefix}_sim_{hashlib.sha256(str(object_id).encode()).hexdigest()[:24]}"

    def create_payment_intent(self, txn) -> PaymentIntentInfo:
        pi_id = self._sim_id("pi", txn.pk)
        return PaymentIntentInfo(id=pi_id, client_secret=f"{pi_id}_secret_test_money",
                                 status="succeeded", amount=txn.total_charged_cents,
                                 currency=txn.currency.lower(),
                                 metadata={"transaction_id": str(txn.pk), "test_money": "true"})

    def retrieve_payment_intent(self, payment_intent_id: str) -> PaymentIntentInfo:
        from escrow.models import Transaction

        txn = Transaction.objects.filter(payment_intent_id=payment_intent_id).first()
        if txn is None:
            raise UnknownObject(f"no such payment intent {payment_intent_id}")
        return self.create_payment_intent(txn)

    def create_connected_account(self, user) -> AccountInfo:
        return self.retrieve_account(self._sim_id("acct", user.pk))

    def create_onboarding_link(self, account_id: str) -> str:
        return f"https://connect.simulated.biddt.invalid/onboarding/{account_id}"

    def retrieve_account(self, account_id: str) -> AccountInfo:
        return AccountInfo(id=account_id, charges_enabled=True, payouts_enabled=True,
                           details_submitted=True)

    def create_transfer(self, txn, *, destination: str) -> str:
        return self._sim_id("tr", txn.pk)

    def create_refund(self, txn) -> str:
        return self._sim_id("re", txn.pk)

    def create_partial_refund(self, txn, *, amount_cents: int) -> str:
        return self._sim_id("re_part", txn.pk)

    def verify_webhook(self, payload: bytes, sig_header: str | None) -> dict[str, Any]:
        return _verify_signed(payload, sig_header, settings.STRIPE_WEBHOOK_SECRET)


class StripeGateway:
    """stripe-python's `StripeClient`; `STRIPE_API_BASE` points it at localstripe in tests.
    Every object created or retrieved is mirrored into dj-stripe's tables (stripe_mirror)."""

    name = "stripe"

    def __init__(self) -> None:
        base = settings.STRIPE_API_BASE or None
        # stripe-python's own timeout is 80 s a try (3 tries): a slow provider would hold a
        # request thread for minutes. Timeouts and 5xx are retried with the same idempotency
        # key, so a slow answer that did land is replayed, not repeated (tests/chaos).
        kwargs: dict[str, Any] = {
            "max_network_retries": 2,
            "http_client": stripe.RequestsClient(timeout=settings.STRIPE_TIMEOUT_SECONDS),
        }
        if base:
            kwargs["base_addresses"] = {"api": base, "connect": base}
        self.client = stripe.StripeClient(settings.STRIPE_SECRET_KEY or "sk_test_unset",
                                          **kwargs)

    @staticmethod
    def _pi(obj) -> PaymentIntentInfo:
        obj = obj.to_dict()
        error = obj.get("last_payment_error") or {}
        return PaymentIntentInfo(
            id=obj["id"], client_secret=obj.get("client_secret") or "", status=obj["status"],
            amount=int(obj["amount"]), currency=obj["currency"],
            metadata=dict(obj.get("metadata") or {}),
            last_error=(error.get("message") or "") if isinstance(error, dict) else "")

    @staticmethod
    def _account(obj) -> AccountInfo:
        obj = obj.to_dict()
        return AccountInfo(id=obj["id"], charges_enabled=bool(obj.get("charges_enabled")),
                           payouts_enabled=bool(obj.get("payouts_enabled")),
                           details_submitted=bool(obj.get("details_submitted")))

    def _call(self, func, *args, **kwargs):
        try:
            return func(*args, **kwargs)
        except stripe.InvalidRequestError as exc:
            if exc.http_status == 404 or exc.code == "resource_missing":
                raise UnknownObject(str(exc)) from exc
            raise GatewayError(str(exc)) from exc
        except stripe.StripeError as exc:
            raise GatewayError(str(exc)) from exc

    def create_payment_intent(self, txn) -> PaymentIntentInfo:
        obj = self._call(
            self.client.v1.payment_intents.create,
            {"amount": txn.total_charged_cents, "currency": txn.currency.lower(),
             "transfer_group": str(txn.pk),
             "metadata": {"transaction_id": str(txn.pk), "listing_id": str(txn.listing_id)}},
            options={"idempotency_key": idempotency_key("pi", txn.pk)})
        mirror_record(obj)
        return self._pi(obj)

    def retrieve_payment_intent(self, payment_intent_id: str) -> PaymentIntentInfo:
        obj = self._call(self.client.v1.payment_intents.retrieve, payment_intent_id)
        mirror_record(obj)
        return self._pi(obj)

    def create_connected_account(self, user) -> AccountInfo:
        obj = self._call(
            self.client.v1.accounts.create,
            {"type": "express", "country": "CA", "default_currency": "cad",
             "capabilities": {"transfers": {"requested": True}},
             "metadata": {"user_id": str(user.pk)}},
            options={"idempotency_key": idempotency_key("account", user.pk)})
        mirror_record(obj)
        return self._account(obj)

    def create_onboarding_link(self, account_id: str) -> str:
        base = settings.BIDDT_WALLET_RETURN_URL
        obj = self._call(self.client.v1.account_links.create,
                         {"account": account_id, "type": "account_onboarding",
                          "refresh_url": f"{base}?refresh=1", "return_url": base})
        return obj["url"]

    def retrieve_account(self, account_id: str) -> AccountInfo:
        obj = self._call(self.client.v1.accounts.retrieve, account_id)
        mirror_record(obj)
        return self._account(obj)

    def create_transfer(self, txn, *, destination: str) -> str:
        obj = self._call(
            self.client.v1.transfers.create,
            {"amount": txn.seller_payout_cents, "currency": txn.currency.lower(),
             "destination": destination, "transfer_group": str(txn.pk),
             "metadata": {"transaction_id": str(txn.pk)}},
            options={"idempotency_key": idempotency_key("transfer", txn.pk)})
        mirror_record(obj)
        return obj["id"]

    def create_refund(self, txn) -> str:
        obj = self._call(
            self.client.v1.refunds.create,
            {"payment_intent": txn.payment_intent_id,
             "metadata": {"transaction_id": str(txn.pk)}},
            options={"idempotency_key": idempotency_key("refund", txn.pk)})
        mirror_record(obj)
        return obj["id"]

    def create_partial_refund(self, txn, *, amount_cents: int) -> str:
        """Refund part of the payment (a dispute split). One per transaction: a retry with
        the same key returns the same Refund; a retry with another amount is refused by the
        provider (idempotency keys are tied to their parameters), so it can't refund twice."""
        obj = self._call(
            self.client.v1.refunds.create,
            {"payment_intent": txn.payment_intent_id, "amount": amount_cents,
             "metadata": {"transaction_id": str(txn.pk), "kind": "dispute_split"}},
            options={"idempotency_key": idempotency_key("refund-split", txn.pk)})
        return obj["id"]

    def verify_webhook(self, payload: bytes, sig_header: str | None) -> dict[str, Any]:
        return _verify_signed(payload, sig_header, settings.STRIPE_WEBHOOK_SECRET)


def gateway_get(name: str | None = None) -> PaymentGateway:
    """The gateway of `name` (a transaction's `payment_backend`) or of the settings."""
    name = name or settings.BIDDT_PAYMENTS_BACKEND
    if name == "stripe":
        return StripeGateway()
    if name == "simulated":
        return SimulatedGateway()
    raise ValueError(f"unknown payments backend {name!r}")
