"""The transaction of a sale: its fees, its creation (by the auction close or buy now), and
the winner's claim of it."""

from __future__ import annotations

from datetime import timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from accounts.policies import ensure_active
from biddt.errors import Conflict, NotFound
from escrow.models import Transaction
from listings.models import Listing

Status = Transaction.Status


def fee_cents_for(amount_cents: int) -> int:
    """The commission: `BIDDT_FEE_PERCENT` of the amount, rounded half up to the cent."""
    fee = Decimal(amount_cents) * Decimal(str(settings.BIDDT_FEE_PERCENT)) / Decimal(100)
    return int(fee.quantize(Decimal(1), rounding=ROUND_HALF_UP))


def transaction_create_for_sale(*, listing, amount_cents: int, source: str, buyer=None,
                                buyer_id=None, winning_bid=None,
                                winning_bid_id=None, decided: bool = False) -> Transaction:
    """Create the one transaction of a sale in `pending_payment`, or return the existing one.

    Idempotent through the unique (listing, buyer): a second call (a retried close, a
    duplicate task, a repeated second-chance accept) returns the first row and creates
    nothing. A listing has at most one transaction that isn't `cancelled` (a second buyer
    only after the first sale was cancelled unpaid: escrow.services.second_chance). Call it inside
    the transaction that marks the listing sold, so the sale and its transaction commit
    together.
    `decided=True`: the caller's own conditional update made it the one seller of this
    listing (an auction's close), so the row is inserted without looking for one first; a row
    that exists anyway fails the insert, and the caller's transaction, on the unique key.
    """
    fee = fee_cents_for(amount_cents)
    escrow_fee = settings.BIDDT_ESCROW_FEE_CENTS
    fields = {
        "buyer_id": buyer.pk if buyer is not None else buyer_id,
        "seller_id": listing.seller_id,
        "winning_bid_id": winning_bid.pk if winning_bid is not None else winning_bid_id,
        "source": source,
        "currency": listing.currency,
        "amount_cents": amount_cents,
        "fee_cents": fee,
        "escrow_fee_cents": escrow_fee,
        "total_charged_cents": amount_cents,
        "seller_payout_cents": amount_cents - fee - escrow_fee,
        "status": Transaction.Status.PENDING_PAYMENT,
        "payment_backend": settings.BIDDT_PAYMENTS_BACKEND,
        "payment_due_at": timezone.now()
        + timedelta(hours=settings.BIDDT_PAYMENT_WINDOW_HOURS),
    }
    if decided:
        return Transaction.objects.create(listing=listing, **fields)
    txn, _ = Transaction.objects.get_or_create(listing=listing, buyer_id=fields.pop("buyer_id"),
                                               defaults=fields)
    return txn


def listing_sold_apply(*, listing, buyer_id: Any, amount_cents: int, source: str,
                       winning_bid_id: Any = None, **_signal: Any) -> Transaction:
    """`bidding.signals.listing_sold` (connected in escrow.apps), in the transaction that sold
    the listing: create the sale's transaction. An auction's close won its conditional
    update, so it inserts without looking (`decided`); buy now holds the row lock."""
    return transaction_create_for_sale(listing=listing, buyer_id=buyer_id,
                                       amount_cents=amount_cents, source=source,
                                       winning_bid_id=winning_bid_id,
                                       decided=source == Transaction.Source.AUCTION)


def transaction_claim(*, user, listing_id: Any) -> tuple[Transaction, bool]:
    """The caller's transaction of a sale, for its winner (or the runner-up who accepted a
    second-chance offer). `(txn, created)`.

    The sale (auction close or buy now) already created it; this returns it. Anyone but the
    buyer: 404. A listing that isn't sold: 409 `listing_not_sold`.
    """
    ensure_active(user)
    try:
        listing = Listing.objects.get(pk=listing_id)
    except (Listing.DoesNotExist, ValueError, DjangoValidationError):
        raise NotFound() from None
    # The caller's own transaction of this listing (a listing sold again by a second-chance
    # offer has one per buyer).
    txn = Transaction.objects.filter(listing=listing, buyer=user).first()
    if txn is not None:
        return txn, False
    if Transaction.objects.filter(listing=listing).exists():
        raise NotFound()
    if listing.status in (Listing.Status.DRAFT, Listing.Status.REMOVED) \
            and listing.seller_id != user.pk:
        raise NotFound()
    if listing.status != Listing.Status.SOLD:
        raise Conflict(_("This listing has not been sold."), code="listing_not_sold")
    if listing.leader_id != user.pk:
        raise NotFound()
    with transaction.atomic():  # a sold auction whose transaction is missing: make it now
        txn = transaction_create_for_sale(listing=listing, buyer=user,
                                          amount_cents=listing.current_price_cents,
                                          source=Transaction.Source.AUCTION)
    return txn, True

