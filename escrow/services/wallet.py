"""Sellers' payout accounts (Stripe Express connected accounts) and their status."""

from __future__ import annotations

import logging

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from accounts.models import Wallet
from accounts.policies import ensure_active
from biddt.events import task_on_commit
from escrow.models import Transaction
from escrow.payments import (
    AccountInfo,
    gateway_get,
)

logger = logging.getLogger(__name__)
Status = Transaction.Status


def _wallet_status_for(account: AccountInfo) -> str:
    if account.details_submitted and account.payouts_enabled:
        return Wallet.Status.ACTIVE
    if account.details_submitted:
        return Wallet.Status.RESTRICTED
    return Wallet.Status.PENDING


def wallet_create(*, user) -> tuple[Wallet, str | None, bool]:
    """The seller's payout account (a Stripe Express connected account), created once.

    Returns `(wallet, onboarding_url, created)`; the url is None once the account is active.
    A repeated call returns the same wallet: the row is unique per user and the provider call
    carries an idempotency key derived from the user.
    """
    ensure_active(user)
    with transaction.atomic():
        wallet, created = Wallet.objects.get_or_create(
            user=user, defaults={"currency": settings.BIDDT_CURRENCY})
    gateway = gateway_get()
    if not wallet.stripe_account_id:
        account = gateway.create_connected_account(user)
        Wallet.objects.filter(pk=wallet.pk, stripe_account_id__isnull=True).update(
            stripe_account_id=account.id, updated_at=timezone.now())
        wallet.refresh_from_db()
        if wallet.stripe_account_id == account.id:
            wallet_apply_account(account=account)
            wallet.refresh_from_db()
    url = None
    if wallet.status != Wallet.Status.ACTIVE:
        url = gateway.create_onboarding_link(wallet.stripe_account_id)
    return wallet, url, created


def wallet_apply_account(*, account: AccountInfo) -> Wallet | None:
    """Set the wallet's status from the provider's account (re-read, never the webhook body);
    when it becomes active, queue the payouts that were waiting for it."""
    with transaction.atomic():
        wallet = (Wallet.objects.select_for_update(of=("self",), no_key=True)
                  .filter(stripe_account_id=account.id).first())
        if wallet is None:
            return None
        new_status = _wallet_status_for(account)
        became_active = (new_status == Wallet.Status.ACTIVE
                         and wallet.status != Wallet.Status.ACTIVE)
        Wallet.objects.filter(pk=wallet.pk).update(
            status=new_status, charges_enabled=account.charges_enabled,
            payouts_enabled=account.payouts_enabled,
            details_submitted=account.details_submitted, updated_at=timezone.now())
        wallet.refresh_from_db()
        if new_status == Wallet.Status.ACTIVE:
            _queue_waiting_payouts(seller_id=wallet.user_id)
        if became_active:
            logger.info("wallet %s active", wallet.pk)
    return wallet


def _queue_waiting_payouts(*, seller_id) -> None:
    from escrow.tasks import payout_send

    waiting = Transaction.objects.filter(
        seller_id=seller_id, status=Status.RELEASED,
        payout_status__in=[Transaction.PayoutStatus.WAITING_WALLET,
                           Transaction.PayoutStatus.FAILED],
    ).values_list("pk", flat=True)
    for pk in waiting:
        task_on_commit(payout_send, str(pk))

