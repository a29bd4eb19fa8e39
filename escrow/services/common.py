"""What every escrow service shares: the transaction lock, the conditional state move,
the parties' access check, and the events, notifications and chat lines a move sends.

Every state change is a conditional UPDATE on the transaction row (the allowed moves are
Transaction.TRANSITIONS) made while holding that row's lock; its row count says whether this
caller won. Ledger journals, notifications, system chat lines and socket events are written
in the same database transaction and sent after commit (biddt.events). Calls to the payment
provider are never made while a row lock is held; they carry idempotency keys derived from
the transaction, so repeating one is harmless."""

from __future__ import annotations

from typing import Any

from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from biddt.errors import Conflict, NotFound
from biddt.events import send_to_group_on_commit
from escrow.messages import TRANSACTION_UPDATE
from escrow.models import Transaction
from escrow.selectors import transaction_for
from escrow.signals import transaction_system_line
from notifications.services import notify


class InvalidState(Conflict):
    default_detail = _("The transaction is not in a state that allows this.")
    default_code = "invalid_state"


# One whole sentence per action, so each language can word it (no English verb spliced in).
_INVALID_STATE = {
    "rate": _("Can't rate a transaction that is %(status)s."),
    "pay": _("Can't pay a transaction that is %(status)s."),
    "show the handoff code of": _("Can't show the handoff code of a transaction that is "
                                  "%(status)s."),
    "release": _("Can't release a transaction that is %(status)s."),
    "plan a meetup for": _("Can't plan a meetup for a transaction that is %(status)s."),
    "dispute": _("Can't dispute a transaction that is %(status)s."),
}


def _invalid_state(txn: Transaction, action: str) -> InvalidState:
    message = _INVALID_STATE.get(action)
    if message is None:
        return InvalidState()
    return InvalidState(message % {"status": txn.status})


def _lock(transaction_id: Any) -> Transaction:
    """Lock the transaction row (callers lock transaction before listing or user rows)."""
    return Transaction.objects.select_for_update(of=("self",), no_key=True).get(pk=transaction_id)


def _move(txn: Transaction, *, to: str, frm: tuple[str, ...], **fields: Any) -> bool:
    """The conditional UPDATE `status IN frm → to`; True for the one caller that moved it."""
    assert all(to in Transaction.TRANSITIONS[s] for s in frm), (frm, to)
    now = timezone.now()
    moved = Transaction.objects.filter(pk=txn.pk, status__in=frm).update(
        status=to, updated_at=now, **fields)
    if moved:
        txn.refresh_from_db()
    return bool(moved)


def _party_or_404(*, user, transaction_id: Any, role: str | None = None) -> Transaction:
    """The transaction if the user is its buyer/seller (role None: either), else 404
    (`escrow.selectors.transaction_for`, the one access rule, as the services' error)."""
    try:
        return transaction_for(user=user, transaction_id=transaction_id, role=role or "party")
    except Transaction.DoesNotExist:
        raise NotFound() from None


def transaction_announce(txn: Transaction, *, user_ids: tuple | None = None) -> None:
    """`{type: 'transaction_update', transactionId, status}` to the parties' `user.<id>` groups
    after commit."""
    for uid in user_ids or (txn.buyer_id, txn.seller_id):
        send_to_group_on_commit(f"user.{uid}", {
            "type": "ws.event",
            "payload": TRANSACTION_UPDATE.build(transactionId=str(txn.pk),
                                                status=str(txn.status)),
        })


def _system_line(txn: Transaction, content: str) -> None:
    """A system line in the parties' chat thread, in this transaction (the chat app, a
    higher layer, writes it: escrow.signals.transaction_system_line)."""
    transaction_system_line.send(sender=Transaction, transaction_id=txn.pk, content=content)


def _notify(txn: Transaction, *, user_ids, type: str, title: str, body: str, key: str) -> None:
    for uid in user_ids:
        notify(user_id=uid, type=type, title=title, body=body,
               data={"transaction_id": str(txn.pk), "status": txn.status},
               dedupe_key=f"{key}:{txn.pk}:{uid}")

