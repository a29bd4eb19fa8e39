"""Redis stopped while requests arrive: REST writes still succeed; readiness reports it."""

from __future__ import annotations

import pytest
from channels.layers import channel_layers
from django.conf import settings
from django.test import override_settings

from tests.conftest import bearer
from tests.factories import ListingFactory, UserFactory


def redis_settings(url: str):
    return {
        "CACHES": {"default": {
            "BACKEND": "django_redis.cache.RedisCache", "LOCATION": url,
            # The options production ships, with short timeouts to keep the test quick.
            "OPTIONS": {**settings.REDIS_CACHE_OPTIONS, "SOCKET_CONNECT_TIMEOUT": 0.5,
                        "SOCKET_TIMEOUT": 0.5}}},
        "CHANNEL_LAYERS": {"default": {"BACKEND": "channels_redis.core.RedisChannelLayer",
                                       "CONFIG": {"hosts": [url]}}},
    }


@pytest.fixture
def dead_redis(redis_server):
    """Settings pointing cache and channel layer at a Redis that was started, then stopped."""
    server = redis_server()
    url = server.url
    server.stop()
    # override_settings resets Django's cache handler; Channels caches layers itself.
    with override_settings(**redis_settings(url)):
        channel_layers.backends = {}
        yield url
    channel_layers.backends = {}


@pytest.mark.django_db
def test_bids_and_reads_still_work_with_redis_stopped(dead_redis, api):
    # given a live auction and a bidder, with Redis (cache, throttles, channel layer) down
    listing = ListingFactory(starting_price_cents=1000)
    bidder = UserFactory()
    api.credentials(HTTP_AUTHORIZATION=bearer(bidder))
    # when the bidder bids and browses
    bid = api.post(f"/v1/listings/{listing.pk}/bids", {"amount_cents": 1000}, format="json")
    detail = api.get(f"/v1/listings/{listing.pk}")
    # then the bid is accepted and the row is the truth
    assert bid.status_code == 201, bid.content
    assert bid.json()["is_leading"] is True
    assert detail.status_code == 200
    assert detail.json()["bid_count"] == 1
    # and readiness says this instance is degraded
    ready = api.get("/readyz")
    assert ready.status_code == 503
