"""Closing an account (`DELETE /v1/users/me`, and staff from the console).

Lock order, shared with every write that could create an obligation for the user:

1. the user's row (`accounts.services.user_lock_for_closure`, `FOR NO KEY UPDATE`);
2. the user's draft/active listings, by id (`listings.services.listings_lock_open_of_seller`);
3. the open second-chance offers to the user or on their listings, ended
   (`escrow.services.second_chance.second_chance_end_for_closed_account`; an accept takes
   the accepting user's row, then the listing, then the offer).

`bid_place` and `listing_buy_now` take the acting user's row (`user_lock_acting`) before the
listing's row, so:
- a bid *by* the user waits for the closure's user lock (or the closure waits for the bid's
  commit and then sees the bid): the user never leads an auction or buys once closed;
- a bid *on* the user's listing waits for the closure's listing lock (then finds the listing
  `cancelled`: 409 `listing_not_active`), or holds it first and the closure sees its
  `bid_count` (409 `account_has_open_obligations`);
- an auction's close creates the winner's transaction in one commit with the listing leaving
  `active`: the closure checks bids on active listings before it checks transactions, each
  statement with a fresh snapshot, so a close committing in between is seen by the second.
No path takes a listing row and then a user row lock, so the order can't deadlock.
"""

from __future__ import annotations

import logging
from typing import Any

from django.db import transaction
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from accounts.models import User
from accounts.services import user_erase, user_lock_for_closure
from bidding.models import Bid
from biddt.audit import audit_record
from biddt.errors import Conflict, NotFound, PermissionDenied
from biddt.events import on_commit, send_to_group_on_commit
from discovery.services import saved_searches_delete_of_user
from escrow.models import Transaction, TransactionStatus
from escrow.services.second_chance import second_chance_end_for_closed_account
from listings.models import Listing, ListingStatus
from listings.services import listings_cancel_for_closed_account, listings_lock_open_of_seller

logger = logging.getLogger(__name__)

# A transaction in one of these is over: it no longer binds its buyer or seller.
SETTLED = (TransactionStatus.RELEASED, TransactionStatus.REFUNDED, TransactionStatus.CANCELLED)


class OpenObligations(Conflict):
    default_code = "account_has_open_obligations"

    def __init__(self, detail) -> None:
        super().__init__(detail, code="account_has_open_obligations")


def _obligations_check(*, user: User, listings: list[Listing]) -> None:
    """409 `account_has_open_obligations` while the user sells an active listing with bids,
    leads or has a bid in an active auction, or is party to an unsettled transaction.
    Caller holds the locks of the module docstring."""
    if any(lst.status == ListingStatus.ACTIVE and lst.bid_count > 0 for lst in listings):
        raise OpenObligations(_("You sell an active listing that has bids. Close your "
                                "account after the auction ends."))
    if (Listing.objects.filter(leader_id=user.pk, status=ListingStatus.ACTIVE).exists()
            or Bid.objects.filter(bidder_id=user.pk, status=Bid.Status.ACTIVE,
                                  listing__status=ListingStatus.ACTIVE).exists()):
        raise OpenObligations(_("You have a bid in an active auction. Close your account "
                                "after the auction ends."))
    if (Transaction.objects.filter(Q(buyer_id=user.pk) | Q(seller_id=user.pk))
            .exclude(status__in=SETTLED).exists()):
        raise OpenObligations(_("You have a sale or purchase that isn't finished. Close your "
                                "account once it is released, refunded or cancelled."))


def account_delete(*, user_id: Any, staff_user=None, reason: str = "") -> bool:
    """Close the account at once; True when this call closed it (False: already closed).

    In one transaction, under the locks of the module docstring: the obligations check (409
    `account_has_open_obligations`, after ending its open second-chance offers), its
    draft/active listings without bids cancelled (the rooms hear `auction_ended`), personal data
    erased and tokens and devices revoked (`accounts.services.user_erase`), saved searches
    deleted where that app is installed, one audit entry (the staff member, or the user
    themself). After commit: the avatar file is deleted and the user's open sockets are closed
    (4403, the suspension path). Transactions, ledger rows, bids and messages stay, shown as
    "Deleted user".
    """
    if staff_user is not None and not staff_user.is_staff:
        raise PermissionDenied(_("Only staff can do this."))
    with transaction.atomic():
        user = user_lock_for_closure(user_id=user_id)
        if user is None:
            raise NotFound(_("User not found."))
        if user.is_deleted:
            return False
        listings = listings_lock_open_of_seller(seller_id=user.pk)
        offers_ended = second_chance_end_for_closed_account(user_id=user.pk)
        _obligations_check(user=user, listings=listings)
        cancelled = listings_cancel_for_closed_account(listings=listings)
        saved_searches = _saved_searches_delete(user_id=user.pk)
        avatar = user.avatar.storage if user.avatar else None
        avatar_name = user_erase(user=user)
        audit_record(actor=staff_user or user, action="user.delete", obj=user,
                     after={"listings_cancelled": cancelled,
                            "second_chance_offers_ended": offers_ended,
                            "saved_searches_deleted": saved_searches,
                            "by": "staff" if staff_user is not None else "self"},
                     reason=reason)
        if avatar is not None and avatar_name:
            on_commit(lambda: avatar.delete(avatar_name))
        send_to_group_on_commit(f"user.{user.pk}", {"type": "ws.close"})
    logger.info("account %s closed (%s)", user.pk, "staff" if staff_user else "self")
    return True


def _saved_searches_delete(*, user_id: Any) -> int:
    """Saved searches go with the account (their owner, discovery, deletes them)."""
    return saved_searches_delete_of_user(user_id=user_id)
