"""dj-stripe's mirror of the Stripe objects we create: Stripe's view beside our ledger.

The `stripe` gateway (escrow.payments.StripeGateway) hands every connected account,
PaymentIntent, Transfer and Refund it creates or retrieves to `mirror_record`, which
upserts it into dj-stripe's tables with `sync_from_stripe_data`. The console shows those rows
on a transaction's page ("Stripe's view") and `reconcile_payments` compares the ledger with
them. Our own rows (`Transaction`, the ledger) stay the source of truth: the mirror is what
Stripe last told us, never read to move money.

Mirroring never fails a payment: a mirror write that goes wrong is logged and skipped (the
reconciliation then shows the object as missing on Stripe's side, for a person to look at;
the next read through the gateway syncs it again).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import stripe
from django.conf import settings
from django.db import transaction
from djstripe import models as djstripe_models

from accounts.models import Wallet

logger = logging.getLogger(__name__)

# Stripe's `object` value -> dj-stripe model name.
MIRRORED = {"account": "Account", "payment_intent": "PaymentIntent", "transfer": "Transfer",
            "refund": "Refund"}


def _model(object_name: str):
    return getattr(djstripe_models, MIRRORED[object_name])


@contextmanager
def _stripe_base() -> Iterator[None]:
    """dj-stripe calls Stripe through stripe-python's module-level client: give it our
    timeout and point it at the configured API (a localstripe server in tests) for the
    duration of a sync."""
    previous = stripe.api_base
    if stripe.default_http_client is None:  # stripe-python's own default waits 80 s a try
        stripe.default_http_client = stripe.RequestsClient(
            timeout=settings.STRIPE_TIMEOUT_SECONDS)
    if settings.STRIPE_API_BASE:
        stripe.api_base = settings.STRIPE_API_BASE
    try:
        yield
    finally:
        stripe.api_base = previous


def _as_dict(obj: Any) -> dict[str, Any]:
    return obj.to_dict() if hasattr(obj, "to_dict") else dict(obj)


def mirror_record(obj: Any) -> Any | None:
    """Upsert one Stripe object (a stripe-python object or its dict) into dj-stripe's tables;
    returns the dj-stripe row, or None when it isn't a mirrored kind or the sync failed."""
    data = _as_dict(obj)
    if data.get("object") not in MIRRORED or not data.get("id"):
        return None
    model = _model(data["object"])
    try:
        with _stripe_base(), transaction.atomic():
            # the stripe-python object itself: dj-stripe pages through nested lists
            # (a transfer's `reversals`) with its methods
            return model.sync_from_stripe_data(obj if hasattr(obj, "to_dict") else data,
                                               api_key=settings.STRIPE_SECRET_KEY)
    except Exception:  # noqa: BLE001 - the mirror must never fail a payment
        logger.exception("stripe mirror: could not sync %s %s", data["object"], data["id"])
        return None


def mirror_rows_for(txn) -> dict[str, Any]:
    """The mirror rows of one transaction: its PaymentIntent, Refund, Transfer and the
    seller's connected account (None where we have no id or no row)."""
    def one(model, object_id):
        return model.objects.filter(id=object_id).first() if object_id else None

    account_id = (Wallet.objects.filter(user_id=txn.seller_id)
                  .values_list("stripe_account_id", flat=True).first())
    return {
        "payment_intent": one(djstripe_models.PaymentIntent, txn.payment_intent_id),
        "refund": one(djstripe_models.Refund, txn.refund_id),
        "transfer": one(djstripe_models.Transfer, txn.payout_transfer_id),
        "account": one(djstripe_models.Account, account_id),
    }


def _str(value: Any, limit: int) -> str:
    return value[:limit] if isinstance(value, str) else ""


def event_store(event: dict[str, Any]):
    """dj-stripe's `Event` store: the verified event, stored once by its Stripe id (a
    replayed delivery finds the first row). Returns (row, created).

    The row is written directly rather than through `Event.process`: that would look up the
    platform account through stripe-python's global client and run dj-stripe's own handlers,
    which fetch again through it; neither works with the `simulated` backend, and our
    handler (escrow.services.payment.webhook_receive) already re-reads the object through
    the gateway, which mirrors it (docs/decisions/0002-dj-stripe-webhook-intake.md).
    """
    created = event.get("created")
    request = event.get("request")
    request = request if isinstance(request, dict) else {}
    livemode = event.get("livemode")
    defaults = {
        "type": _str(event.get("type"), 250),
        "data": event.get("data") or {},
        "api_version": _str(event.get("api_version"), 64),
        "livemode": livemode if isinstance(livemode, bool) else None,
        "created": (datetime.fromtimestamp(created, UTC)
                    if isinstance(created, int) and not isinstance(created, bool)
                    and 0 < created < 2**37 else None),
        "request_id": _str(request.get("id"), 50),
        "idempotency_key": _str(request.get("idempotency_key"), 10_000),
        "stripe_data": event,
    }
    return djstripe_models.Event.objects.get_or_create(id=event["id"][:255], defaults=defaults)
