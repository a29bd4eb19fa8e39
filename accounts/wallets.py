"""Wallet writes: a seller's payout account (a Stripe Express connected account) as a row.

The accounts app owns the `Wallet` table; escrow talks to the payment provider (creates the
account, re-reads it on a webhook) and calls these with what the provider said. When a wallet
is active, `wallet_payouts_ready` (accounts.signals) tells escrow to queue the payouts that
were waiting for it.
"""

from __future__ import annotations

import logging

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from accounts.models import Wallet
from accounts.signals import wallet_payouts_ready

logger = logging.getLogger(__name__)


def wallet_status_for(*, details_submitted: bool, payouts_enabled: bool) -> str:
    if details_submitted and payouts_enabled:
        return Wallet.Status.ACTIVE
    if details_submitted:
        return Wallet.Status.RESTRICTED
    return Wallet.Status.PENDING


def wallet_get_or_create(*, user) -> tuple[Wallet, bool]:
    """The user's wallet row, created once (unique per user) in the default currency."""
    with transaction.atomic():
        return Wallet.objects.get_or_create(user=user,
                                            defaults={"currency": settings.BIDDT_CURRENCY})


def wallet_set_account_id(*, wallet: Wallet, account_id: str) -> bool:
    """Record the provider's account id once (a conditional UPDATE on a missing id); True
    when this call's id is the one kept. `wallet` is re-read."""
    Wallet.objects.filter(pk=wallet.pk, stripe_account_id__isnull=True).update(
        stripe_account_id=account_id, updated_at=timezone.now())
    wallet.refresh_from_db()
    return wallet.stripe_account_id == account_id


def wallet_apply_account_state(*, account_id: str, charges_enabled: bool,
                               payouts_enabled: bool, details_submitted: bool) -> Wallet | None:
    """Set the wallet's status from the provider's account (re-read by the caller, never a
    webhook body); None when no wallet has that account. Locks the wallet row. While active,
    sends `wallet_payouts_ready` in the transaction (escrow queues the waiting payouts after
    commit)."""
    with transaction.atomic():
        wallet = (Wallet.objects.select_for_update(of=("self",), no_key=True)
                  .filter(stripe_account_id=account_id).first())
        if wallet is None:
            return None
        new_status = wallet_status_for(details_submitted=details_submitted,
                                       payouts_enabled=payouts_enabled)
        became_active = (new_status == Wallet.Status.ACTIVE
                         and wallet.status != Wallet.Status.ACTIVE)
        Wallet.objects.filter(pk=wallet.pk).update(
            status=new_status, charges_enabled=charges_enabled,
            payouts_enabled=payouts_enabled, details_submitted=details_submitted,
            updated_at=timezone.now())
        wallet.refresh_from_db()
        if new_status == Wallet.Status.ACTIVE:
            wallet_payouts_ready.send(sender=Wallet, user_id=wallet.user_id)
        if became_active:
            logger.info("wallet %s active", wallet.pk)
    return wallet

