"""Bidding jobs. Each takes ids (or nothing), wraps one service and is safe to run twice."""

from __future__ import annotations

from celery import shared_task

from bidding import services


@shared_task(acks_late=True)
def auction_close_due() -> int:
    """The sweep (beat, every 5 s): close every due auction; returns how many this run closed."""
    return services.auction_sweep()


@shared_task(acks_late=True)
def auction_ending_soon() -> int:
    """Send `ending_soon` to rooms of auctions with ≤ 60 s left (once per listing)."""
    return services.auction_ending_soon_announce()


@shared_task(acks_late=True)
def auction_ending_soon_notify() -> int:
    """The `ending_soon` notifications, 1 hour and 5 minutes before an auction ends."""
    return services.auction_ending_soon_notify()


@shared_task(acks_late=True)
def bid_outbid_notify(*, listing_id: str, user_id: str, seq: int) -> None:
    """The `outbid` notification; deduplicated per listing and seq."""
    services.bid_outbid_notify(listing_id=listing_id, user_id=user_id, seq=seq)
