from __future__ import annotations

from django.db.models import QuerySet

from chat.models import Message
from escrow.selectors import transaction_for


def message_list(*, user, transaction_id) -> QuerySet[Message]:
    """The thread of a transaction the user is a party of (else Transaction.DoesNotExist)."""
    txn = transaction_for(user=user, transaction_id=transaction_id)
    return Message.objects.filter(transaction=txn).select_related("sender")
