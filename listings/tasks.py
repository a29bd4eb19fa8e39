"""Listing jobs. Each takes ids (or nothing), wraps one service and is safe to run twice."""

from __future__ import annotations

from celery import shared_task


@shared_task(acks_late=True)
def listings_open_due() -> int:
    """The opening sweep (beat, every 2 s): scheduled listings whose start has come open."""
    from listings.services import listing_open_sweep

    return listing_open_sweep()
