"""Saved-search jobs: matching a newly active listing, in the worker after commit."""

from __future__ import annotations

from celery import shared_task

from discovery.services import saved_search_matches_notify


@shared_task(acks_late=True)
def saved_searches_match(listing_id: str) -> int:
    """Notify the saved searches a newly active listing matches; safe to run twice."""
    return saved_search_matches_notify(listing_id=listing_id)
