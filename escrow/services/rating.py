"""Ratings of the other party after a released sale (the rows and counters are accounts')."""

from __future__ import annotations

from typing import Any

from django.utils.translation import gettext_lazy as _

from accounts.models import Rating
from accounts.policies import ensure_active
from accounts.reputation import rating_record
from biddt.errors import invalid
from escrow.models import Transaction
from escrow.services.common import _invalid_state, _party_or_404

Status = Transaction.Status


def rating_create(*, user, transaction_id: Any, score: int, comment: str = "") -> Rating:
    """Rate the other party once, after `released`; the ratee's counters move with F() in
    the same transaction (accounts.reputation.rating_record). 409 `already_rated`."""
    ensure_active(user)
    txn = _party_or_404(user=user, transaction_id=transaction_id)
    if txn.status != Status.RELEASED:
        raise _invalid_state(txn, "rate")
    if not 1 <= int(score) <= 5:
        raise invalid("invalid_score", _("The score is 1 to 5."), attr="score")
    ratee_id = txn.seller_id if user.pk == txn.buyer_id else txn.buyer_id
    return rating_record(transaction_id=txn.pk, rater=user, ratee_id=ratee_id, score=score,
                         comment=comment)
