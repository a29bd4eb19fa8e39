"""Escrow jobs. Each takes ids, wraps one service and is safe to run twice (STYLE.md rule 6)."""

from __future__ import annotations

from celery import shared_task

from escrow import services
from escrow.payments import GatewayError
from escrow.services import second_chance


@shared_task(autoretry_for=(GatewayError,), retry_backoff=30, retry_backoff_max=3600,
             max_retries=12)
def payout_send(transaction_id: str) -> str:
    return services.payout_send(transaction_id=transaction_id)


@shared_task
def payouts_retry() -> int:
    return services.payouts_retry()


@shared_task
def transactions_expire_unpaid() -> int:
    return services.transactions_expire_unpaid()


@shared_task
def transactions_meetup_sweep() -> int:
    return services.transactions_meetup_sweep()


@shared_task(acks_late=True)
def second_chance_expire_due() -> int:
    """The sweep (beat, every minute): open second-chance offers past their 48 h expire."""
    return second_chance.second_chance_expire_due()
