"""Jobs of the core app. Each is safe to run twice."""

from __future__ import annotations

from celery import shared_task

from biddt.idempotency import purge_expired


@shared_task(acks_late=True)
def idempotency_purge_expired() -> int:
    """Drop `Idempotency-Key` records older than 24 h (beat, hourly)."""
    return purge_expired()
