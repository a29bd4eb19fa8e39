"""Second-chance offers: when the winner didn't pay (the sale's transaction ended
`cancelled`), the seller offers the item to the runner-up.

- The runner-up is chosen by the rules engine's replay (`rules.runner_up`): the highest
  maximum among the bidders whose bids still stand (retracted and voided bids are not
  replayed), leaving out the buyers of earlier transactions, every bidder already offered
  (declined, expired or accepted) and accounts that aren't active. The amount is that
  bidder's maximum capped at the winning price.
- One open offer per listing (a partial unique constraint); it lives
  BIDDT_SECOND_CHANCE_HOURS (48); the sweep `second_chance_expire_due` (beat and the embedded
  scheduler) closes overdue ones, and an overdue offer counts as expired at once for a new
  offer and an accept, whenever the sweep runs.
- Accepting creates the new transaction in `pending_payment` through escrow's sale service
  (the one the close uses: fees, payment window, idempotent per listing and buyer), and the
  listing goes `unsold → sold` by a conditional UPDATE in the same database transaction.

Lock order: the accepting user's row, the listing row, then the offer row (accept; the
expiry takes the offer row only), like the rest of bidding. An account closing ends its open
offers (`second_chance_end_for_closed_account`) before it checks its obligations.
A late payment of the first sale locks only that (cancelled) transaction and is refunded by
escrow as for any cancelled sale; it touches neither the listing nor the offers.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import transaction
from django.db.models import F
from django.utils import timezone
from django.utils.text import format_lazy
from django.utils.translation import gettext_lazy as _

from accounts.models import User
from accounts.policies import ensure_active
from accounts.services import user_lock_acting
from bidding import rules
from bidding.models import Bid, SecondChanceOffer
from biddt.errors import Conflict, NotFound, PermissionDenied
from biddt.i18n import Money
from escrow.models import Transaction
from escrow.services.common import transaction_announce
from escrow.services.sale import transaction_create_for_sale
from listings.lifecycle import listing_lock, listing_transition
from listings.messages import auction_ended_on_commit
from listings.models import Listing, ListingStatus
from notifications.models import NotificationType
from notifications.services import notify

Offer = SecondChanceOffer
OfferStatus = SecondChanceOffer.Status


def _unavailable(detail: str) -> Conflict:
    return Conflict(detail, code="second_chance_unavailable")


def _lock_listing(listing_id: Any) -> Listing:
    return listing_lock(listing_id)



def _expire_overdue(*, listing_id: Any, now) -> list[Offer]:
    """Mark the listing's open offers past `expires_at` expired (conditional UPDATE, so the
    sweep and this never both do it); returns the ones this call expired."""
    due = list(Offer.objects.filter(listing_id=listing_id, status=OfferStatus.OFFERED,
                                    expires_at__lte=now))
    expired = []
    for offer in due:
        if Offer.objects.filter(pk=offer.pk, status=OfferStatus.OFFERED,
                                expires_at__lte=now).update(status=OfferStatus.EXPIRED,
                                                            decided_at=now):
            offer.status = OfferStatus.EXPIRED
            expired.append(offer)
    return expired


def _tell_seller(offer: Offer, listing: Listing, *, title: Any, body: Any) -> None:
    notify(user_id=listing.seller_id, type=NotificationType.SECOND_CHANCE_OFFER, title=title,
           body=body, data={"offer_id": str(offer.pk), "listing_id": str(listing.pk),
                            "status": offer.status},
           dedupe_key=f"second_chance_{offer.status}:{offer.pk}")


def _tell_seller_declined(offer: Offer) -> None:
    _tell_seller(offer, offer.listing, title=_("Second-chance offer declined"),
                 body=format_lazy(_("The offer for “{title}” was declined; you may offer "
                                    "it to the next bidder."), title=offer.listing.title))


def _candidate_bids(listing: Listing) -> list[rules.BidInput]:
    """The listing's standing user bids, as the retraction replay reads them."""
    rows = (Bid.objects.filter(listing=listing, status=Bid.Status.ACTIVE, is_auto_bid=False)
            .order_by("seq")
            .values_list("bidder_id", "requested_amount_cents", "amount_cents",
                         "max_amount_cents"))
    return [rules.BidInput(bidder, requested or amount, maximum)
            for bidder, requested, amount, maximum in rows]


def second_chance_offer_create(*, user, listing_id: Any) -> Offer:
    """The seller offers the unpaid item to the runner-up (see the module docstring).

    404 for a listing the caller may not know; 403 `permission_denied` for anyone but the
    seller; 409 `second_chance_unavailable` unless the listing is `unsold` after a sale whose
    every transaction ended `cancelled` and no offer is open; 409 `no_runner_up` when no
    bidder is left. Locks the listing row, so two concurrent calls make one offer.
    """
    ensure_active(user)
    try:
        listing = Listing.objects.filter(pk=listing_id).first()
    except (ValueError, DjangoValidationError):
        listing = None
    if listing is None or (listing.status == ListingStatus.DRAFT
                           and listing.seller_id != user.pk):
        raise NotFound(_("Listing not found."))
    if listing.seller_id != user.pk:
        raise PermissionDenied(_("Only the seller can make a second-chance offer."))
    with transaction.atomic():
        listing = _lock_listing(listing.pk)
        now = timezone.now()
        for offer in _expire_overdue(listing_id=listing.pk, now=now):
            _tell_seller(offer, listing, title=_("Second-chance offer expired"),
                         body=format_lazy(_("The offer for “{title}” expired."),
                                          title=listing.title))
        sales = list(Transaction.objects.filter(listing=listing).order_by("created_at")
                     .values_list("buyer_id", "status", "amount_cents"))
        if (listing.status != ListingStatus.UNSOLD or not sales
                or any(status != Transaction.Status.CANCELLED for _b, status, _a in sales)):
            raise _unavailable(_("A second-chance offer needs a sale whose buyer didn't pay."))
        offered = set(Offer.objects.filter(listing=listing).values_list("bidder_id", flat=True))
        if Offer.objects.filter(listing=listing, status=OfferStatus.OFFERED).exists():
            raise _unavailable(_("An offer for this listing is already open."))
        bids = _candidate_bids(listing)
        inactive = set(User.objects.filter(pk__in={b.bidder_id for b in bids})
                       .exclude(status=User.Status.ACTIVE).values_list("pk", flat=True))
        excluded = {buyer for buyer, _s, _a in sales} | offered | inactive | {listing.seller_id}
        pick = rules.runner_up(
            rules.AuctionState.initial(starting_price_cents=listing.starting_price_cents,
                                       reserve_price_cents=listing.reserve_price_cents),
            bids, exclude=excluded)
        if pick is None:
            raise Conflict(_("No other bidder is left to make an offer to."),
                           code="no_runner_up")
        bidder_id, maximum = pick
        winning_price = sales[0][2]
        offer = Offer.objects.create(
            listing=listing, bidder_id=bidder_id, amount_cents=min(maximum, winning_price),
            expires_at=now + timedelta(hours=settings.BIDDT_SECOND_CHANCE_HOURS))
        notify(user_id=bidder_id, type=NotificationType.SECOND_CHANCE_OFFER,
               title=_("A second chance to buy"),
               body=format_lazy(_("“{title}” is yours for {price} if you accept within "
                                  "{hours} h."),
                                title=listing.title, hours=settings.BIDDT_SECOND_CHANCE_HOURS,
                                price=Money(offer.amount_cents, listing.currency)),
               data={"offer_id": str(offer.pk), "listing_id": str(listing.pk),
                     "amount_cents": offer.amount_cents,
                     "expires_at": offer.expires_at.isoformat()},
               dedupe_key=f"second_chance_offer:{offer.pk}")
    return offer


def _own_offer(*, user, offer_id: Any) -> Offer:
    try:
        return Offer.objects.get(pk=offer_id, bidder=user)
    except (Offer.DoesNotExist, ValueError, DjangoValidationError):
        raise NotFound(_("Offer not found.")) from None


def second_chance_accept(*, user, offer_id: Any) -> Transaction:
    """The offered bidder accepts: the new transaction (`pending_payment`), created through
    escrow's sale service, and the listing `unsold → sold`.

    Locks the listing row, then the offer row: of two accepts the second finds the offer
    accepted and gets the same transaction; an accept racing the expiry either wins before
    `expires_at` or finds the offer expired (409 `second_chance_unavailable`). Anyone but
    the offered bidder: 404.
    """
    ensure_active(user)
    offer = _own_offer(user=user, offer_id=offer_id)
    with transaction.atomic():
        user_lock_acting(user)  # user row before listing row: see privacy.account_delete
        listing = _lock_listing(offer.listing_id)
        offer = Offer.objects.select_for_update(of=("self",), no_key=True).get(pk=offer.pk)
        now = timezone.now()
        if offer.status == OfferStatus.ACCEPTED:  # a repeated accept: the same sale
            return Transaction.objects.get(pk=offer.transaction_id)
        if offer.status != OfferStatus.OFFERED or offer.expires_at <= now:
            raise _unavailable(_("This offer is no longer open."))
        if not listing_transition(listing_id=listing.pk, frm=[ListingStatus.UNSOLD],
                                  to=ListingStatus.SOLD, closed_at=now, updated_at=now,
                                  seq=F("seq") + 1):
            raise _unavailable(_("This listing can't be sold any more."))
        listing.refresh_from_db()
        winning_bid_id = (Bid.objects.filter(listing=listing, bidder=user,
                                             status=Bid.Status.ACTIVE)
                          .order_by("-max_amount_cents", "seq").values_list("pk", flat=True)
                          .first())
        txn = transaction_create_for_sale(
            listing=listing, buyer=user, amount_cents=offer.amount_cents,
            source=Transaction.Source.SECOND_CHANCE, winning_bid_id=winning_bid_id)
        Offer.objects.filter(pk=offer.pk, status=OfferStatus.OFFERED).update(
            status=OfferStatus.ACCEPTED, decided_at=now, transaction=txn)
        offer.status = OfferStatus.ACCEPTED
        notify(user_id=user.pk, type=NotificationType.TRANSACTION_UPDATE,
               title=_("Offer accepted: pay to complete"),
               body=format_lazy(_("“{title}” is yours for {price}. Pay within {hours} h."),
                                title=listing.title, hours=settings.BIDDT_PAYMENT_WINDOW_HOURS,
                                price=Money(txn.amount_cents, txn.currency)),
               data={"transaction_id": str(txn.pk), "status": txn.status},
               dedupe_key=f"second_chance_accepted:{txn.pk}:{user.pk}")
        _tell_seller(offer, listing, title=_("Second-chance offer accepted"),
                     body=format_lazy(_("“{title}” sold for {price}."), title=listing.title,
                                      price=Money(txn.amount_cents, txn.currency)))
        transaction_announce(txn)
        auction_ended_on_commit(listing_id=listing.pk, seq=listing.seq, status=listing.status,
                                final_price=txn.amount_cents)
    return txn


def second_chance_decline(*, user, offer_id: Any) -> None:
    """The offered bidder declines (again: nothing more); the seller may offer the next
    bidder. An offer no longer open: 409 `second_chance_unavailable`."""
    ensure_active(user)
    offer = _own_offer(user=user, offer_id=offer_id)
    with transaction.atomic():
        now = timezone.now()
        if not Offer.objects.filter(pk=offer.pk, status=OfferStatus.OFFERED).update(
                status=OfferStatus.DECLINED, decided_at=now):
            offer.refresh_from_db()
            if offer.status == OfferStatus.DECLINED:
                return
            raise _unavailable(_("This offer is no longer open."))
        offer.status = OfferStatus.DECLINED
        _tell_seller_declined(offer)


def second_chance_expire(*, offer_id: Any) -> bool:
    """An open offer past `expires_at` → `expired`, once (conditional UPDATE; an accept
    holding the row lock makes it wait and then find the offer accepted)."""
    with transaction.atomic():
        now = timezone.now()
        if not Offer.objects.filter(pk=offer_id, status=OfferStatus.OFFERED,
                                    expires_at__lte=now).update(status=OfferStatus.EXPIRED,
                                                                decided_at=now):
            return False
        offer = Offer.objects.select_related("listing").get(pk=offer_id)
        _tell_seller(offer, offer.listing, title=_("Second-chance offer expired"),
                     body=format_lazy(_("The offer for “{title}” expired; you may offer it "
                                        "to the next bidder."), title=offer.listing.title))
    return True


def second_chance_expire_due(*, limit: int = 500) -> int:
    """The sweep: expire every open offer past its time; returns how many this run did."""
    due = list(Offer.objects.filter(status=OfferStatus.OFFERED, expires_at__lte=timezone.now())
               .values_list("pk", flat=True)[:limit])
    return sum(second_chance_expire(offer_id=pk) for pk in due)


def second_chance_end_for_closed_account(*, user_id: Any) -> int:
    """An account closing ends its open offers; returns how many.

    Offered *to* it: declined (its seller is told and may offer the next bidder). Offered *on*
    its listings: expired (a runner-up can't buy from a closed account; their accept is 409
    `second_chance_unavailable`). Runs in the closure's transaction, holding the user's row
    and before the obligations check: an accept committing first has made a transaction the
    check then sees (409 `account_has_open_obligations`); one waiting on the offer row finds
    it no longer open.
    """
    now = timezone.now()
    open_offers = Offer.objects.filter(status=OfferStatus.OFFERED)
    declined = 0
    for offer in open_offers.filter(bidder_id=user_id).select_related("listing"):
        if Offer.objects.filter(pk=offer.pk, status=OfferStatus.OFFERED).update(
                status=OfferStatus.DECLINED, decided_at=now):
            declined += 1
            _tell_seller_declined(offer)
    expired = open_offers.filter(listing__seller_id=user_id).update(
        status=OfferStatus.EXPIRED, decided_at=now)
    return declined + expired
