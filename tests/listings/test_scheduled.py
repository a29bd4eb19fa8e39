"""`scheduled`: a published listing whose start is ahead; the opening sweep opens it."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from bidding.services import bid_place
from biddt.errors import Conflict
from biddt.scheduler import run_due
from listings import services
from listings.models import Listing
from listings.signals import listing_activated
from tests.factories import UserFactory
from tests.listings.conftest import client_for, error_code

pytestmark = pytest.mark.django_db


@pytest.fixture
def activated():
    seen: list = []

    def receiver(sender, listing_id, **kwargs):
        seen.append(listing_id)

    listing_activated.connect(receiver)
    yield seen
    listing_activated.disconnect(receiver)


@pytest.fixture
def seller():
    return UserFactory()


def draft(seller, *, starts_in: timedelta | None):
    now = timezone.now()
    return services.listing_create(
        seller=seller, title="Teak sideboard", starting_price_cents=20000,
        starts_at=now + starts_in if starts_in else None, ends_at=now + timedelta(days=2))


def publish(seller, listing, capture):
    with capture(execute=True):
        response = client_for(seller).post(f"/v1/listings/{listing.pk}/publish")
    assert response.status_code == 200, response.content
    return response.json()


def test_publishing_with_a_future_start_schedules_and_sends_no_activation(
        seller, activated, django_capture_on_commit_callbacks):
    listing = draft(seller, starts_in=timedelta(hours=1))
    body = publish(seller, listing, django_capture_on_commit_callbacks)
    assert body["status"] == "scheduled" and activated == []


def test_publishing_without_a_future_start_activates_once_after_commit(
        seller, activated, django_capture_on_commit_callbacks):
    listing = draft(seller, starts_in=None)
    body = publish(seller, listing, django_capture_on_commit_callbacks)
    assert body["status"] == "active" and activated == [listing.pk]


def test_a_bid_on_a_scheduled_listing_is_listing_not_active(seller,
                                                            django_capture_on_commit_callbacks):
    listing = draft(seller, starts_in=timedelta(hours=1))
    publish(seller, listing, django_capture_on_commit_callbacks)
    with pytest.raises(Conflict) as refused:
        bid_place(listing_id=listing.pk, bidder=UserFactory(), amount_cents=20000)
    assert refused.value.get_codes() == "listing_not_active"
    response = client_for(UserFactory()).post(f"/v1/listings/{listing.pk}/bids",
                                              {"amount_cents": 20000})
    assert response.status_code == 409 and error_code(response) == "listing_not_active"


def test_browse_lists_scheduled_listings_only_when_asked(seller,
                                                         django_capture_on_commit_callbacks):
    scheduled = draft(seller, starts_in=timedelta(hours=1))
    publish(seller, scheduled, django_capture_on_commit_callbacks)
    active = draft(seller, starts_in=None)
    publish(seller, active, django_capture_on_commit_callbacks)
    client = client_for(UserFactory())
    default = [item["id"] for item in client.get("/v1/listings").json()["results"]]
    asked = [item["id"] for item in client.get("/v1/listings?status=scheduled").json()["results"]]
    assert default == [str(active.pk)] and asked == [str(scheduled.pk)]
    # and the detail shows it, as `scheduled`
    assert client.get(f"/v1/listings/{scheduled.pk}").json()["status"] == "scheduled"


def test_the_sweep_opens_due_listings_once_with_the_opened_event(
        seller, activated, sent_events, django_capture_on_commit_callbacks):
    due = draft(seller, starts_in=timedelta(minutes=1))
    later = draft(seller, starts_in=timedelta(hours=1))
    for listing in (due, later):
        publish(seller, listing, django_capture_on_commit_callbacks)
    Listing.objects.filter(pk=due.pk).update(starts_at=timezone.now() - timedelta(seconds=1))
    # when the sweep runs twice (beat and a duplicate delivery)
    with django_capture_on_commit_callbacks(execute=True):
        assert services.listing_open_sweep() == 1
        assert services.listing_open_sweep() == 0
    due.refresh_from_db()
    later.refresh_from_db()
    assert (due.status, due.seq, later.status) == ("active", 1, "scheduled")
    assert activated == [due.pk]
    (event,) = [p for g, p in sent_events if g == f"listing.{due.pk}"]
    assert (event["type"], event["reason"], event["seq"]) == ("listing_updated", "opened", 1)
    assert event["listing"]["status"] == "active" and event["listing"]["seq"] == 1
    # and the opened listing takes bids
    bid_place(listing_id=due.pk, bidder=UserFactory(), amount_cents=20000)


@pytest.mark.django_db(transaction=True)  # the scheduler closes old connections
def test_the_embedded_scheduler_runs_the_opening_sweep(seller, settings,
                                                       django_capture_on_commit_callbacks):
    listing = draft(seller, starts_in=timedelta(minutes=1))
    publish(seller, listing, django_capture_on_commit_callbacks)
    Listing.objects.filter(pk=listing.pk).update(starts_at=timezone.now() - timedelta(seconds=1))
    settings.CELERY_BEAT_SCHEDULE = {
        "listings-open-due": {"task": "listings.tasks.listings_open_due", "schedule": 2.0}}
    assert run_due({"listings-open-due": 0.0}, 1.0) == ["listings-open-due"]
    listing.refresh_from_db()
    assert listing.status == "active"


def test_a_scheduled_listing_can_be_cancelled_and_its_room_hears_it(
        seller, sent_events, django_capture_on_commit_callbacks):
    listing = draft(seller, starts_in=timedelta(hours=1))
    publish(seller, listing, django_capture_on_commit_callbacks)
    with django_capture_on_commit_callbacks(execute=True):
        services.listing_cancel(listing_id=listing.pk, user=seller)
    (event,) = [p for g, p in sent_events if g == f"listing.{listing.pk}"]
    assert (event["type"], event["status"], event["seq"]) == ("auction_ended", "cancelled", 1)
