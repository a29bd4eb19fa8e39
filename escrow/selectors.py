"""Escrow reads. Every object read checks the caller: not a party → DoesNotExist → 404."""

from __future__ import annotations

from django.db.models import Q, QuerySet

from escrow.models import Transaction


def transaction_visible_to(*, user) -> QuerySet[Transaction]:
    """Transactions the user may see: as buyer or seller; staff see all."""
    qs = Transaction.objects.select_related("listing", "buyer", "seller")
    if user.is_staff:
        return qs
    return qs.filter(Q(buyer=user) | Q(seller=user))


def transaction_for_party(*, user, transaction_id) -> Transaction:
    """The transaction if the user is its buyer or seller (staff excluded: parties only)."""
    return Transaction.objects.select_related("listing").get(
        Q(buyer=user) | Q(seller=user), pk=transaction_id)


def transactions_of_user(*, user) -> QuerySet[Transaction]:
    """The user's transactions as buyer or seller (for `GET /users/me/transactions`)."""
    return (Transaction.objects.select_related("listing", "buyer", "seller",
                                               "meetup_safe_zone", "meetup_proposed_by")
            .filter(Q(buyer=user) | Q(seller=user)))


def transaction_detail_for(*, user, transaction_id) -> Transaction:
    """Buyer, seller or staff; anyone else DoesNotExist (404)."""
    return transaction_visible_to(user=user).select_related(
        "meetup_safe_zone", "meetup_proposed_by").get(pk=transaction_id)


def wallet_of(*, user):
    from accounts.models import Wallet

    return Wallet.objects.filter(user=user).first()


def wallet_balance(*, user) -> dict:
    """`pending_cents`: payouts of the seller's transactions whose money is held in escrow
    (`in_escrow`, `disputed`); `available_cents`: released and not yet paid out (the ledger's
    seller_payable); `paid_out_cents`: transferred to the seller (the ledger's payouts)."""
    from django.conf import settings
    from django.db.models import Sum

    from escrow.ledger import HELD_STATUSES, account_balance
    from escrow.models import LedgerAccount

    pending = (Transaction.objects.filter(seller=user, status__in=HELD_STATUSES)
               .aggregate(total=Sum("seller_payout_cents"))["total"] or 0)
    return {
        "currency": settings.BIDDT_CURRENCY,
        "pending_cents": pending,
        "available_cents": -account_balance(account=LedgerAccount.SELLER_PAYABLE,
                                             user_id=user.pk),
        "paid_out_cents": -account_balance(account=LedgerAccount.PAYOUTS, user_id=user.pk),
    }
