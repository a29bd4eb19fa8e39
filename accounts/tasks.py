"""Account jobs. Each takes ids or sealed values and is safe to run twice."""

from __future__ import annotations

import logging
from datetime import timedelta

from celery import shared_task
from django.core.management import call_command
from django.utils import timezone

from accounts.models import PhoneOTP
from accounts.sms import get_backend
from biddt import crypto

logger = logging.getLogger(__name__)


@shared_task(bind=True, autoretry_for=(ConnectionError, TimeoutError), retry_backoff=True,
             retry_backoff_max=60, max_retries=5, acks_late=True)
def sms_send(self, sealed: str) -> None:
    """Send a login code. `sealed` is "<number>\\n<code>" encrypted with the PII key."""
    number, _, code = crypto.decrypt(sealed).partition("\n")
    get_backend().send(to=number, body=f"Your Biddt code is {code}. It expires in 10 minutes.")


@shared_task(acks_late=True)
def otp_purge_expired() -> int:
    """Delete codes that can no longer be used (idempotent: a second run deletes nothing)."""
    cutoff = timezone.now() - timedelta(days=1)
    deleted, _ = PhoneOTP.objects.filter(expires_at__lt=cutoff).delete()
    return deleted


@shared_task(acks_late=True)
def jwt_flush_expired() -> None:
    """Drop expired refresh tokens from the outstanding/blacklist tables (simplejwt command)."""
    call_command("flushexpiredtokens", verbosity=0)
