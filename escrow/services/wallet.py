"""Sellers' payout accounts (Stripe Express connected accounts): the provider's side.

The wallet rows are the accounts app's (accounts/wallets.py); this module makes the provider
calls and hands their results to it. A wallet found active sends
`accounts.signals.wallet_payouts_ready`, which queues the payouts waiting for it
(`payouts_queue_waiting`, connected in escrow.apps).
"""

from __future__ import annotations

from typing import Any

from accounts.models import Wallet
from accounts.policies import ensure_active
from accounts.wallets import wallet_apply_account_state, wallet_get_or_create, wallet_set_account_id
from biddt.events import task_on_commit
from escrow import tasks
from escrow.models import Transaction
from escrow.payments import AccountInfo, gateway_get

Status = Transaction.Status


def wallet_create(*, user) -> tuple[Wallet, str | None, bool]:
    """The seller's payout account (a Stripe Express connected account), created once.

    Returns `(wallet, onboarding_url, created)`; the url is None once the account is active.
    A repeated call returns the same wallet: the row is unique per user and the provider call
    carries an idempotency key derived from the user.
    """
    ensure_active(user)
    wallet, created = wallet_get_or_create(user=user)
    gateway = gateway_get()
    if not wallet.stripe_account_id:
        account = gateway.create_connected_account(user)
        if wallet_set_account_id(wallet=wallet, account_id=account.id):
            wallet_apply_account(account=account)
            wallet.refresh_from_db()
    url = None
    if wallet.status != Wallet.Status.ACTIVE:
        url = gateway.create_onboarding_link(wallet.stripe_account_id)
    return wallet, url, created


def wallet_apply_account(*, account: AccountInfo) -> Wallet | None:
    """Set the wallet's status from the provider's account (re-read, never the webhook body);
    when it is active, the payouts that were waiting for it are queued."""
    return wallet_apply_account_state(
        account_id=account.id, charges_enabled=account.charges_enabled,
        payouts_enabled=account.payouts_enabled, details_submitted=account.details_submitted)


def payouts_queue_waiting(*, user_id: Any, **_signal: Any) -> None:
    """`accounts.signals.wallet_payouts_ready`: after commit, a payout task for each released
    sale of the seller whose payout waited for a wallet (or failed)."""
    waiting = Transaction.objects.filter(
        seller_id=user_id, status=Status.RELEASED,
        payout_status__in=[Transaction.PayoutStatus.WAITING_WALLET,
                           Transaction.PayoutStatus.FAILED],
    ).values_list("pk", flat=True)
    for pk in waiting:
        task_on_commit(tasks.payout_send, str(pk))
