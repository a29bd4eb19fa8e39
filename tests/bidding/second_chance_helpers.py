"""An auction whose winner didn't pay, built through the real services."""

from __future__ import annotations

from datetime import timedelta

from django.test import TestCase
from django.utils import timezone

from bidding import services
from escrow import services as escrow_services
from escrow.models import Transaction
from listings.models import Listing
from tests.factories import ListingFactory, UserFactory


def unpaid_auction(bids: list[tuple], *, starting_price_cents: int = 1000):
    """`bids`: `(bidder, amount_cents, max_amount_cents | None)` placed in order. The
    auction is closed (sold to the leader) and the sale cancelled unpaid. Returns
    `(listing, cancelled transaction)`."""
    listing = ListingFactory(seller=UserFactory(), starting_price_cents=starting_price_cents)
    for bidder, amount, maximum in bids:
        services.bid_place(listing_id=listing.pk, bidder=bidder, amount_cents=amount,
                           max_amount_cents=maximum)
    return close_unpaid(listing)


def close_unpaid(listing):
    """Close the auction now (sold to its leader) and cancel the sale unpaid."""
    Listing.objects.filter(pk=listing.pk).update(ends_at=timezone.now() - timedelta(seconds=1))
    with TestCase.captureOnCommitCallbacks(execute=True):
        assert services.auction_close(listing_id=listing.pk)
    txn = Transaction.objects.get(listing=listing)
    Transaction.objects.filter(pk=txn.pk).update(
        payment_due_at=timezone.now() - timedelta(minutes=1))
    with TestCase.captureOnCommitCallbacks(execute=True):
        assert escrow_services.transaction_expire_unpaid(transaction_id=txn.pk)
    listing.refresh_from_db()
    txn.refresh_from_db()
    assert listing.status == "unsold" and txn.status == "cancelled"
    return listing, txn
