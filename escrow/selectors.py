"""Escrow reads. Every object read checks the caller: not a party → DoesNotExist → 404."""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db.models import Q, QuerySet, Sum
from django.utils import timezone

from escrow.ledger import HELD_STATUSES, account_balance
from escrow.models import LedgerAccount, Transaction

ROLES = ("buyer", "seller", "party", "viewer")


def transaction_for(*, user, transaction_id, role: str = "party",
                    related: tuple[str, ...] = ("listing",)) -> Transaction:
    """The one access rule for one transaction. `role`: `buyer` or `seller` (that party only),
    `party` (either), `viewer` (either, or staff). Anyone else, or a malformed id:
    `Transaction.DoesNotExist`, which the APIs answer 404 (another user's transaction is
    indistinguishable from none). `related`: the rows to join."""
    if role not in ROLES:
        raise ValueError(f"role must be one of {ROLES}")
    qs = Transaction.objects.select_related(*related)
    if role == "buyer":
        qs = qs.filter(buyer=user)
    elif role == "seller":
        qs = qs.filter(seller=user)
    elif not (role == "viewer" and user.is_staff):
        qs = qs.filter(Q(buyer=user) | Q(seller=user))
    try:
        return qs.get(pk=transaction_id)
    except (ValueError, DjangoValidationError):
        raise Transaction.DoesNotExist from None


def transaction_visible_to(*, user) -> QuerySet[Transaction]:
    """Transactions the user may see: as buyer or seller; staff see all."""
    qs = Transaction.objects.select_related("listing", "buyer", "seller")
    if user.is_staff:
        return qs
    return qs.filter(Q(buyer=user) | Q(seller=user))


def transactions_of_user(*, user) -> QuerySet[Transaction]:
    """The user's transactions as buyer or seller (for `GET /users/me/transactions`)."""
    return (Transaction.objects.select_related("listing", "buyer", "seller",
                                               "meetup_safe_zone", "meetup_proposed_by")
            .filter(Q(buyer=user) | Q(seller=user)))


def wallet_balance(*, user) -> dict:
    """`pending_cents`: payouts of the seller's transactions whose money is held in escrow
    (`in_escrow`, `disputed`); `available_cents`: released and not yet paid out (the ledger's
    seller_payable); `paid_out_cents`: transferred to the seller (the ledger's payouts)."""
    pending = (Transaction.objects.filter(seller=user, status__in=HELD_STATUSES)
               .aggregate(total=Sum("seller_payout_cents"))["total"] or 0)
    return {
        "currency": settings.BIDDT_CURRENCY,
        "pending_cents": pending,
        "available_cents": -account_balance(account=LedgerAccount.SELLER_PAYABLE,
                                             user_id=user.pk),
        "paid_out_cents": -account_balance(account=LedgerAccount.PAYOUTS, user_id=user.pk),
    }


# --- what the expiry jobs have to do (the beat tasks and `manage.py expire_transactions`) --

def transactions_unpaid_due_ids(*, limit: int | None = None) -> list:
    """Sales still unpaid past their payment window (`transaction_expire_unpaid` cancels)."""
    due = Transaction.objects.filter(status=Transaction.Status.PENDING_PAYMENT,
                                     payment_due_at__lte=timezone.now()
                                     ).values_list("pk", flat=True)
    return list(due if limit is None else due[:limit])


def transactions_meetup_due_ids(*, limit: int | None = None) -> list:
    """Paid sales without a handoff old enough for their first meetup reminder (or, with no
    reminders configured, the refund): `transaction_meetup_check` decides what each needs."""
    first = min(settings.BIDDT_MEETUP_REMINDER_DAYS or [settings.BIDDT_MEETUP_WINDOW_DAYS])
    due = Transaction.objects.filter(
        status=Transaction.Status.IN_ESCROW, paid_at__lte=timezone.now() - timedelta(days=first),
    ).values_list("pk", flat=True)
    return list(due if limit is None else due[:limit])
