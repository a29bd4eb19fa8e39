"""The `ending_soon` notifications to watchers and bidders (bidding.tasks)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.cache import cache
from django.test import TestCase
from django.utils import timezone

from bidding import tasks
from bidding.models import Bid
from listings.models import Watch
from notifications.models import Notification
from tests.factories import ListingFactory, UserFactory

pytestmark = pytest.mark.django_db


def test_ending_soon_once_each_mark_for_watchers_and_bidders():
    listing = ListingFactory(ends_at=timezone.now() + timedelta(minutes=50))
    watcher, bidder = UserFactory(), UserFactory()
    Watch.objects.create(user=watcher, listing=listing)
    Bid.objects.create(listing=listing, bidder=bidder, amount_cents=1000,
                       max_amount_cents=1000, seq=1)
    with TestCase.captureOnCommitCallbacks(execute=True):
        assert tasks.auction_ending_soon_notify() == 2
    with TestCase.captureOnCommitCallbacks(execute=True):
        assert tasks.auction_ending_soon_notify() == 0
    cache.clear()  # even without the cache marker, the dedupe key holds
    with TestCase.captureOnCommitCallbacks(execute=True):
        assert tasks.auction_ending_soon_notify() == 0
    assert Notification.objects.filter(type="ending_soon").count() == 2
