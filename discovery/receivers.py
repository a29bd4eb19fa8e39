"""Reactions to the listings app's after-commit signals."""

from __future__ import annotations

from typing import Any

from django.dispatch import receiver

from biddt.events import task_on_commit
from discovery.tasks import saved_searches_match
from listings.signals import listing_activated


@receiver(listing_activated, dispatch_uid="discovery.saved_searches_match")
def match_saved_searches(sender: Any, *, listing_id: Any, **kwargs: Any) -> None:
    """A listing became active: match it against the saved searches in the worker (never in
    the request that published it)."""
    task_on_commit(saved_searches_match, str(listing_id))
