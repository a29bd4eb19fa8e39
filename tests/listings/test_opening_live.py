"""A scheduled listing opens at `starts_at` on a real Celery beat and worker (Redis broker),
and a subscriber on the real socket server hears `listing_updated` (`opened`)."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from datetime import timedelta

import pytest
from django.conf import settings
from django.utils import timezone
from websockets.asyncio.client import connect

from listings import services
from listings.models import Listing
from tests.biddt import processes
from tests.biddt.processes import BASE_DIR, _stop, child_database_url
from tests.biddt.test_celery_worker import start_worker
from tests.factories import UserFactory

pytestmark = [pytest.mark.integration, pytest.mark.postgres,
              pytest.mark.django_db(transaction=True)]

OPEN_WITHIN = timedelta(seconds=5)  # API.md: a scheduled listing opens within 5 s
STARTUP = 120  # seconds a worker or beat may take to come up on a loaded machine


def start_beat(log_path, env: dict[str, str]) -> subprocess.Popen:
    with log_path.open("w") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "biddt", "beat", "-l", "INFO",
             "--max-interval", "1"],
            cwd=BASE_DIR, env=env, stdout=log, stderr=subprocess.STDOUT)


@pytest.fixture
def worker_and_beat(tmp_path, live_servers):
    if not settings.REDIS_URL:
        pytest.skip("needs Redis: set REDIS_URL (CI does)")
    broker = settings.REDIS_URL.rsplit("/", 1)[0] + "/5"
    queue = f"test-open-{os.getpid()}"
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "biddt.settings_test",
           "DATABASE_URL": child_database_url(), "BIDDT_TEST_BROKER_URL": broker,
           "BIDDT_TEST_QUEUE": queue, "BIDDT_TEST_PREFIX": settings.BIDDT_TEST_PREFIX}
    worker_log = tmp_path / "worker.log"
    worker = start_worker(worker_log, env, queue)
    beat = start_beat(tmp_path / "beat.log", env)
    try:
        # ready when the worker has run an opening sweep that beat sent
        deadline = time.monotonic() + STARTUP
        while "listings_open_due" not in worker_log.read_text() or "succeeded" not in (
                worker_log.read_text()):
            if beat.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError((tmp_path / "beat.log").read_text()[-3000:]
                                   + worker_log.read_text()[-3000:])
            time.sleep(0.25)
        yield live_servers()
    finally:
        _stop(beat)
        _stop(worker)


def test_a_scheduled_listing_opens_within_5_s_with_the_opened_event(worker_and_beat):
    server = worker_and_beat
    seller = UserFactory()
    now = timezone.now()
    listing = services.listing_create(seller=seller, title="Opening soon",
                                      starting_price_cents=2500, starts_at=now,
                                      ends_at=now + timedelta(days=1))
    Listing.objects.filter(pk=listing.pk).update(starts_at=now + timedelta(seconds=4))
    services.listing_publish(listing_id=listing.pk, user=seller)
    listing.refresh_from_db()
    assert listing.status == "scheduled"
    listing_id = str(listing.pk)

    async def scenario():
        async with connect(f"{server.ws_url}/ws/", open_timeout=30) as socket:
            await socket.send(json.dumps({"type": "subscribe", "listingId": listing_id}))
            subscribed = await processes.recv_type(socket, "subscribed", timeout=30)
            opened = await processes.recv_type(socket, "listing_updated", timeout=60)
            return subscribed, opened

    subscribed, opened = asyncio.run(scenario())
    listing.refresh_from_db()
    assert subscribed["listing"]["status"] == "scheduled"
    assert (opened["reason"], opened["seq"], opened["listing"]["status"]) == (
        "opened", subscribed["listing"]["seq"] + 1, "active")
    assert listing.status == "active" and listing.seq == opened["seq"]
    # opened (the row's last write) within 5 s of its start
    assert listing.starts_at <= listing.updated_at <= listing.starts_at + OPEN_WITHIN
