"""Reputation writes: ratings and the user's counters (`rating_count`, `rating_total`,
`completed_sales`). The accounts app owns these columns; escrow calls these when a sale is
released or rated, inside its own transaction."""

from __future__ import annotations

from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils.translation import gettext_lazy as _

from accounts.models import Rating, User
from biddt.errors import Conflict


def user_sale_completed(*, seller_id: Any) -> None:
    """One more completed sale for the seller (an F() increment; run it in the transaction
    that released the sale)."""
    User.objects.filter(pk=seller_id).update(completed_sales=F("completed_sales") + 1)


def rating_record(*, transaction_id: Any, rater, ratee_id: Any, score: int,
                  comment: str = "") -> Rating:
    """The rater's one rating of the other party of a sale; the ratee's counters move with
    F() in the same transaction. 409 `already_rated` on a second one (unique per rater and
    transaction). The caller checked that the sale may be rated and the score's range."""
    try:
        with transaction.atomic():
            rating = Rating.objects.create(transaction_id=transaction_id, rater=rater,
                                           ratee_id=ratee_id, score=score,
                                           comment=(comment or "")[:1000])
            User.objects.filter(pk=ratee_id).update(rating_count=F("rating_count") + 1,
                                                    rating_total=F("rating_total") + score)
    except IntegrityError:
        raise Conflict(_("You already rated this transaction."), code="already_rated") from None
    return rating
