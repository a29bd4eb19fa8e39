"""Ratings of the other party after a released sale."""

from __future__ import annotations

from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils.translation import gettext_lazy as _

from accounts.models import Rating, User
from accounts.policies import ensure_active
from biddt.errors import Conflict, invalid
from escrow.models import Transaction
from escrow.services.common import _invalid_state, _party_or_404

Status = Transaction.Status


def rating_create(*, user, transaction_id: Any, score: int, comment: str = "") -> Rating:
    """Rate the other party once, after `released`; the ratee's counters move with F() in
    the same transaction. 409 `already_rated`."""
    ensure_active(user)
    txn = _party_or_404(user=user, transaction_id=transaction_id)
    if txn.status != Status.RELEASED:
        raise _invalid_state(txn, "rate")
    if not 1 <= int(score) <= 5:
        raise invalid("invalid_score", _("The score is 1 to 5."), attr="score")
    ratee_id = txn.seller_id if user.pk == txn.buyer_id else txn.buyer_id
    try:
        with transaction.atomic():
            rating = Rating.objects.create(transaction=txn, rater=user, ratee_id=ratee_id,
                                           score=score, comment=(comment or "")[:1000])
            User.objects.filter(pk=ratee_id).update(rating_count=F("rating_count") + 1,
                                                    rating_total=F("rating_total") + score)
    except IntegrityError:
        raise Conflict(_("You already rated this transaction."), code="already_rated") from None
    return rating

