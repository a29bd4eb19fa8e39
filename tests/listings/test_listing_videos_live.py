"""A video end to end over the live servers: the REST server (granian) checks and stores the
upload, a real Celery worker on the Redis broker remuxes it and marks it ready, the listing
shows it, the seller deletes it."""

from __future__ import annotations

import os
import time
from pathlib import Path

import httpx
import pytest
from django.conf import settings

from listings.models import ListingVideo
from tests.biddt.processes import _stop, child_database_url
from tests.biddt.test_celery_worker import start_worker
from tests.conftest import bearer
from tests.factories import ListingFactory, UserFactory
from tests.listings.videos import PHONE_METADATA, make_video, read_metadata

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def worker_env(tmp_path):
    """The environment a real worker and the servers share: the Redis broker, a queue of this
    run's own, one media folder."""
    if not settings.REDIS_URL:
        pytest.skip("needs Redis: set REDIS_URL (CI does)")
    media = tmp_path / "media"
    media.mkdir()
    env = {"BIDDT_TEST_BROKER_URL": settings.REDIS_URL.rsplit("/", 1)[0] + "/5",
           "BIDDT_TEST_QUEUE": f"test-video-{os.getpid()}",
           "BIDDT_TEST_MEDIA_ROOT": str(media)}
    worker = start_worker(tmp_path / "worker.log", {
        **os.environ, **env, "DJANGO_SETTINGS_MODULE": "biddt.settings_test",
        "DATABASE_URL": child_database_url(), "BIDDT_TEST_PREFIX": settings.BIDDT_TEST_PREFIX,
    }, env["BIDDT_TEST_QUEUE"])
    try:
        yield env, media, tmp_path / "worker.log"
    finally:
        _stop(worker)


def test_a_video_travels_from_upload_to_the_listing_and_away(live_servers, worker_env):
    env, media, worker_log = worker_env
    server = live_servers(env=env)
    listing = ListingFactory()
    seller = {"Authorization": bearer(listing.seller)}
    viewer = {"Authorization": bearer(UserFactory())}
    base = f"{server.http_url}/v1/listings/{listing.pk}"
    with httpx.Client(timeout=60) as http:
        # when the seller uploads a clip shot at home
        created = http.post(f"{base}/videos", headers=seller, files={
            "video": ("IMG_0042.MOV", make_video(metadata=PHONE_METADATA, audio=True),
                      "video/quicktime")})
        # then 201 processing: the request thread only checked the header
        assert created.status_code == 201, created.text
        video = created.json()
        assert video["status"] == "processing" and video["url"] is None
        # and the worker makes it ready
        deadline = time.monotonic() + 90
        while video["status"] == "processing" and time.monotonic() < deadline:
            time.sleep(0.2)
            video = http.get(f"{base}/videos/{video['id']}", headers=seller).json()
        assert video["status"] == "ready", (video, worker_log.read_text()[-3000:])
        assert "listing_video_process" in worker_log.read_text()
        # the listing shows it to everyone, in the detail and in browse
        shown = {"url": video["url"], "poster_url": video["poster_url"],
                 "duration_seconds": video["duration_seconds"]}
        assert http.get(base, headers=viewer).json()["videos"] == [shown]
        page = http.get(f"{server.http_url}/v1/listings", headers=viewer).json()["results"]
        assert [r["videos"] for r in page if r["id"] == str(listing.pk)] == [[shown]]
        # the stored copy has no position or date; only it and the poster are on disk
        row = ListingVideo.objects.get(pk=video["id"])
        files = sorted(p for p in Path(media).rglob("*") if p.is_file())
        assert files == sorted([media / row.file.name, media / row.poster.name])
        meta = read_metadata(str(media / row.file.name))
        assert "location" not in meta["container"]
        assert "creation_time" not in meta["container"]
        assert meta["codecs"] == ["h264", "aac"]
        # a second video is refused like an eleventh image
        again = http.post(f"{base}/videos", headers=seller,
                          files={"video": ("b.mp4", make_video(), "video/mp4")})
        assert again.status_code == 400 and again.json()["errors"][0]["code"] == "invalid_video"
        # a renamed non-video too
        fake = http.post(f"{base}/videos", headers=seller,
                         files={"video": ("c.mp4", b"not a video" * 100, "video/mp4")})
        assert fake.status_code == 400 and fake.json()["errors"][0]["code"] == "invalid_video"
        # when the seller deletes it, it leaves the listing and the disk
        deleted = http.delete(f"{base}/videos/{video['id']}", headers=seller)
        assert deleted.status_code == 204, deleted.text
        assert http.get(base, headers=viewer).json()["videos"] == []
        assert not [p for p in Path(media).rglob("*") if p.is_file()]
