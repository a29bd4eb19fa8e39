"""Time-driven moves: unpaid sales cancelled after the payment window, meetup reminders and
the automatic refund when no handoff happens."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone
from django.utils.text import format_lazy
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext_lazy

from accounts.policies import ensure_staff
from biddt.audit import audit_record
from biddt.errors import invalid
from escrow.models import Transaction
from escrow.selectors import transactions_meetup_due_ids, transactions_unpaid_due_ids
from escrow.services.common import _lock, _move, _notify, transaction_announce
from escrow.services.payment import transaction_refund
from listings.lifecycle import listing_transition
from listings.messages import auction_ended_on_commit
from listings.models import Listing, ListingStatus

Status = Transaction.Status


def _cancel_unpaid(txn: Transaction, *, now, body: str, key: str) -> bool:
    """`pending_payment → cancelled` and the listing back to `unsold`; caller holds the
    transaction's row lock (then the listing is updated: transaction, then listing)."""
    if not _move(txn, to=Status.CANCELLED, frm=(Status.PENDING_PAYMENT,), cancelled_at=now):
        return False
    # Everyone sees the listing go back to `unsold`: its `seq` moves and the room hears it.
    if listing_transition(listing_id=txn.listing_id, frm=[ListingStatus.SOLD],
                          to=ListingStatus.UNSOLD, updated_at=now, seq=F("seq") + 1):
        seq = Listing.objects.values_list("seq", flat=True).get(pk=txn.listing_id)
        auction_ended_on_commit(listing_id=txn.listing_id, seq=seq,
                                status=ListingStatus.UNSOLD, final_price=None)
    _notify(txn, user_ids=[txn.buyer_id, txn.seller_id], type="transaction_update",
            title=_("Sale cancelled"), body=body, key=key)
    transaction_announce(txn)
    return True


def transaction_expire_unpaid(*, transaction_id: Any) -> bool:
    """Unpaid past `payment_due_at`: `pending_payment → cancelled`, the listing back to
    `unsold` (conditional `sold → unsold`), both parties told. Locks transaction, then listing.
    """
    with transaction.atomic():
        txn = _lock(transaction_id)
        now = timezone.now()
        if txn.payment_due_at is None or txn.payment_due_at > now:
            return False
        return _cancel_unpaid(
            txn, now=now, key="expired_unpaid",
            body=format_lazy(
                ngettext_lazy("“{title}” wasn't paid within {hours} hour; the sale is "
                              "cancelled.",
                              "“{title}” wasn't paid within {hours} hours; the sale is "
                              "cancelled.", settings.BIDDT_PAYMENT_WINDOW_HOURS),
                title=txn.listing.title, hours=settings.BIDDT_PAYMENT_WINDOW_HOURS))


def transaction_cancel_unpaid(*, transaction_id: Any, staff_user, reason: str) -> bool:
    """Staff: cancel a `pending_payment` sale now, before its payment window ends (no money
    has moved, so no journal). Same effects as the expiry, plus an audit entry. True when
    this call cancelled it; False when it was no longer unpaid."""
    reason = (reason or "").strip()
    ensure_staff(staff_user, detail=_("Only staff can cancel a sale."))
    if not reason:
        raise invalid("required", _("A reason is required."), attr="reason")
    with transaction.atomic():
        txn = _lock(transaction_id)
        before = {"status": txn.status}
        if not _cancel_unpaid(txn, now=timezone.now(), key="cancelled_by_staff",
                              body=format_lazy(_("The sale of “{title}” was cancelled by "
                                                 "our team: {reason}"),
                                               title=txn.listing.title, reason=reason)):
            return False
        audit_record(actor=staff_user, action="transaction.cancel_unpaid", obj=txn,
                     before=before, after={"status": Status.CANCELLED}, reason=reason)
    return True


def transactions_expire_unpaid(*, limit: int = 500) -> int:
    due = transactions_unpaid_due_ids(limit=limit)
    return sum(transaction_expire_unpaid(transaction_id=pk) for pk in due)


def transaction_meetup_check(*, transaction_id: Any) -> str | None:
    """`in_escrow` with no scan: a reminder at each of `BIDDT_MEETUP_REMINDER_DAYS` (once each,
    counted by `reminders_sent`), then past `BIDDT_MEETUP_WINDOW_DAYS` the automatic refund.
    Returns "reminder", "refunded" or None."""
    txn = Transaction.objects.select_related("listing").get(pk=transaction_id)
    if txn.status != Status.IN_ESCROW or txn.paid_at is None:
        return None
    age = timezone.now() - txn.paid_at
    if age >= timedelta(days=settings.BIDDT_MEETUP_WINDOW_DAYS):
        done = transaction_refund(
            transaction_id=txn.pk, frm=(Status.IN_ESCROW,),
            reason=format_lazy(ngettext_lazy("No handoff within {days} day.",
                                             "No handoff within {days} days.",
                                             settings.BIDDT_MEETUP_WINDOW_DAYS),
                               days=settings.BIDDT_MEETUP_WINDOW_DAYS))
        return "refunded" if done else None
    due = sum(1 for d in settings.BIDDT_MEETUP_REMINDER_DAYS if age >= timedelta(days=d))
    if due <= txn.reminders_sent:
        return None
    with transaction.atomic():
        if not Transaction.objects.filter(pk=txn.pk, status=Status.IN_ESCROW,
                                          reminders_sent=txn.reminders_sent).update(
                reminders_sent=due, updated_at=timezone.now()):
            return None
        left = settings.BIDDT_MEETUP_WINDOW_DAYS - age.days
        _notify(txn, user_ids=[txn.buyer_id, txn.seller_id], type="transaction_update",
                title=_("Meet up to complete your sale"),
                body=format_lazy(ngettext_lazy(
                    "Hand over “{title}” within {days} day, or the buyer is refunded "
                    "automatically.",
                    "Hand over “{title}” within {days} days, or the buyer is refunded "
                    "automatically.", left), title=txn.listing.title, days=left),
                key=f"meetup_reminder_{due}")
    return "reminder"


def transactions_meetup_sweep(*, limit: int = 500) -> int:
    pks = transactions_meetup_due_ids(limit=limit)
    return sum(1 for pk in pks if transaction_meetup_check(transaction_id=pk))

