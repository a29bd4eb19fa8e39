"""What the staff console shows on a dispute's or transaction's page to decide it: the
parties with their history and one timeline of everything that happened to the sale (the
sale, payment, provider events, ledger rows, meetup, QR code, dispute, chat with images).
Read-only; the decisions themselves call the escrow services (escrow/admin.py).

A presentation module of the console, like the admin modules: it reads the chat rows of the
transaction, which sit in a higher layer, only to show them to staff.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.core.cache import cache
from django.db.models import Count, Q
from django.dispatch import Signal
from django.urls import reverse

from accounts.models import Rating
from biddt.money import money_text
from escrow.models import Dispute, LedgerEntry, PaymentEvent, Transaction
from escrow.services.handoff import _qr_guesses_key


@dataclass
class TimelineEvent:
    at: datetime
    kind: str
    label: str
    text: str = ""
    who: Any = None
    money: str = ""
    images: list[str] = field(default_factory=list)


# The buyer-seller chat belongs to the chat app, a higher layer: it connects a receiver
# (chat.apps) that returns the transaction's messages as `(created_at, sender, content,
# image)` rows, oldest first. kwargs: transaction.
transaction_chat_rows = Signal()


def _image_url(f) -> str | None:
    try:
        return f.url if f else None
    except ValueError:
        return None


def party_history(txn: Transaction) -> list[dict]:
    """Buyer and seller, each with their sales, purchases, disputes and recent ratings."""
    out = []
    for role, user in (("buyer", txn.buyer), ("seller", txn.seller)):
        counts = Transaction.objects.aggregate(
            sales=Count("pk", filter=Q(seller=user)),
            purchases=Count("pk", filter=Q(buyer=user)))
        out.append({
            "role": role, "user": user,
            "url": reverse("admin:accounts_user_change", args=[user.pk]),
            "sales": counts["sales"], "purchases": counts["purchases"],
            "disputes_opened": Dispute.objects.filter(opened_by=user).count(),
            "disputes_involved": Dispute.objects.filter(
                Q(transaction__buyer=user) | Q(transaction__seller=user)).count(),
            "ratings": list(Rating.objects.filter(ratee=user).order_by("-created_at")[:3]),
        })
    return out


def transaction_summary(txn: Transaction) -> list[tuple[str, str]]:
    """The money of the sale, in words and currency, for the top of the page."""
    c = txn.currency
    rows = [("Status", txn.get_status_display()),
            ("Listing", txn.listing.title),
            ("Buyer paid", money_text(txn.total_charged_cents, c)),
            ("Platform fees", f"{money_text(txn.fee_cents, c)} commission + "
                              f"{money_text(txn.escrow_fee_cents, c)} escrow fee"),
            ("Seller payout", f"{money_text(txn.seller_payout_cents, c)} "
                              f"({txn.get_payout_status_display().lower()})")]
    if txn.refunded_cents:
        rows.append(("Refunded to the buyer (split)", money_text(txn.refunded_cents, c)))
    if txn.payout_failure_reason:
        rows.append(("Last payout failure", txn.payout_failure_reason))
    return rows


def transaction_timeline(txn: Transaction, *, with_chat: bool) -> list[TimelineEvent]:
    """Everything recorded about the sale, oldest first. The private chat only `with_chat`
    (while a dispute is open: staff read it only when they have to judge one)."""
    c = txn.currency
    listing = txn.listing
    ev: list[TimelineEvent] = [
        TimelineEvent(listing.created_at, "listing", "Listed", who=txn.seller,
                      text=f"“{listing.title}”: {listing.description[:300]}",
                      images=[u for u in (_image_url(i.image) for i in listing.images.all())
                              if u]),
        TimelineEvent(txn.created_at, "sale", "Sold", who=txn.buyer,
                      text=f"{txn.get_source_display()}; buyer {txn.buyer}, seller "
                           f"{txn.seller}", money=money_text(txn.amount_cents, c)),
    ]
    stamps = [
        (txn.paid_at, "payment", "Paid into escrow", txn.buyer,
         money_text(txn.total_charged_cents, c)),
        (txn.verified_at, "handoff", "QR code scanned by the seller (handoff)", txn.seller,
         ""),
        (txn.released_at, "release", "Released", None, money_text(txn.seller_payout_cents, c)),
        (txn.refunded_at, "refund", "Refunded in full", None,
         money_text(txn.total_charged_cents, c)),
        (txn.cancelled_at, "cancel", "Cancelled unpaid", None, ""),
    ]
    ev += [TimelineEvent(at, kind, label, who=who, money=money)
           for at, kind, label, who, money in stamps if at]
    if txn.meetup_at:
        where = txn.meetup_safe_zone
        ev.append(TimelineEvent(
            txn.meetup_at, "meetup", "Meetup (planned time)", who=txn.meetup_proposed_by,
            text=f"at {where.partner_name} {where.name}, {where.address}" if where
            else "place not set"))
    if txn.qr_expires_at:
        wrong, _ = _qr_guesses_key(txn.pk)
        ev.append(TimelineEvent(
            txn.qr_expires_at, "qr", "QR code valid until", who=txn.buyer,
            text=("used" if txn.qr_used_at else "not used")
            + f"; wrong codes in the current window: {cache.get(wrong) or 0}"))
    for d in txn.disputes.select_related("opened_by", "resolved_by"):
        ev.append(TimelineEvent(d.created_at, "dispute", "Dispute opened", who=d.opened_by,
                                text=d.reason))
        if d.resolved_at:
            ev.append(TimelineEvent(d.resolved_at, "dispute", d.get_status_display(),
                                    who=d.resolved_by, text=d.resolution_note))
    if txn.payment_intent_id:
        events = PaymentEvent.objects.filter(
            Q(payload__data__object__id=txn.payment_intent_id)
            | Q(payload__data__object__metadata__transaction_id=str(txn.pk)))
        for e in events:
            ev.append(TimelineEvent(e.created_at, "provider", f"Provider event {e.type}",
                                    text=f"{e.event_id}; "
                                         f"{'handled' if e.processed_at else 'not handled'}"))
    for row in LedgerEntry.objects.filter(transaction=txn).select_related("user"):
        ev.append(TimelineEvent(row.created_at, "ledger", f"Ledger: {row.get_kind_display()}",
                                who=row.user, text=row.get_account_display(),
                                money=money_text(row.amount_cents, row.currency)))
    if not with_chat:
        ev.append(TimelineEvent(txn.created_at, "chat", "Chat",
                                text="(the chat is shown while a dispute is open)"))
        return sorted(ev, key=lambda e: e.at)
    for _receiver, rows in transaction_chat_rows.send(sender=Transaction, transaction=txn):
        for created_at, sender, content, image in rows:
            url = _image_url(image)
            ev.append(TimelineEvent(created_at, "chat", "Chat" if sender else "System",
                                    who=sender, text=content, images=[url] if url else []))
    return sorted(ev, key=lambda e: e.at)


def console_context_for(txn: Transaction) -> dict:
    txn = (Transaction.objects.select_related("listing", "buyer", "seller", "meetup_safe_zone",
                                              "meetup_proposed_by").get(pk=txn.pk))
    return {"summary": transaction_summary(txn), "parties": party_history(txn),
            "timeline": transaction_timeline(
                txn, with_chat=txn.disputes.filter(status=Dispute.Status.OPEN).exists())}

