"""Saved-search jobs: matching a newly active listing, in the worker after commit, and the
sweep that queues it again when that hand-off was lost."""

from __future__ import annotations

import logging

from celery import shared_task

from discovery.selectors import listings_never_matched
from discovery.services import saved_search_matches_notify

logger = logging.getLogger(__name__)


@shared_task(acks_late=True)
def saved_searches_match(listing_id: str) -> int:
    """Notify the saved searches a newly active listing matches; safe to run twice."""
    return saved_search_matches_notify(listing_id=listing_id)


@shared_task(acks_late=True)
def saved_searches_match_missed() -> int:
    """Beat, every minute: queue the matching again for recent listings whose task was lost
    (the job is safe to run twice, so an overlap costs nothing). Returns how many."""
    ids = listings_never_matched()
    for listing_id in ids:
        saved_searches_match.delay(str(listing_id))
    if ids:
        logger.warning("queued saved-search matching again for %d listings", len(ids))
    return len(ids)
