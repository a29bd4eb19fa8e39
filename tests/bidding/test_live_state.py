"""`seq` and the room events (API.md "Live state you can trust"), in process: every change others
can see moves `seq` by one and sends exactly one room event carrying it; a change nobody
else sees moves nothing."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from accounts.services import user_reinstate, user_suspend
from bidding.services import auction_close, bid_place, bid_retract
from listings.models import Listing
from listings.services import listing_cancel, listing_remove, listing_update
from tests.factories import ListingFactory, UserFactory

pytestmark = pytest.mark.django_db


def room_events(sent_events, listing):
    return [p for g, p in sent_events if g == f"listing.{listing.pk}"]


def seq_of(listing) -> int:
    return Listing.objects.values_list("seq", flat=True).get(pk=listing.pk)


@pytest.fixture
def run(django_capture_on_commit_callbacks):
    def call(func, **kwargs):
        with django_capture_on_commit_callbacks(execute=True):
            return func(**kwargs)
    return call


def test_a_raise_by_the_leader_moves_no_seq_so_the_next_event_follows_without_a_gap(
        run, sent_events):
    listing = ListingFactory(starting_price_cents=1000)
    alice, bob = UserFactory(), UserFactory()
    run(bid_place, listing_id=listing.pk, bidder=alice, amount_cents=1000, max_amount_cents=2000)
    run(bid_place, listing_id=listing.pk, bidder=bob, amount_cents=1100)
    # when the leader raises her own maximum, then bob bids again
    run(bid_place, listing_id=listing.pk, bidder=alice, amount_cents=1500, max_amount_cents=9000)
    assert seq_of(listing) == 2
    run(bid_place, listing_id=listing.pk, bidder=bob, amount_cents=2500)
    # then the room saw seq 1, 2, 3: no gap, and nothing for the raise
    events = room_events(sent_events, listing)
    assert [(e["type"], e["seq"]) for e in events] == [
        ("bid_placed", 1), ("bid_placed", 2), ("bid_placed", 3)]
    assert events[-1]["listing"]["seq"] == seq_of(listing) == 3


def test_a_retraction_sends_listing_updated_with_the_replayed_price(run, sent_events):
    listing = ListingFactory(starting_price_cents=1000)
    alice, bob = UserFactory(), UserFactory()
    run(bid_place, listing_id=listing.pk, bidder=alice, amount_cents=1000, max_amount_cents=2000)
    placed = run(bid_place, listing_id=listing.pk, bidder=bob, amount_cents=3000)
    assert placed.listing.current_price_cents == 2050
    sent_events.clear()
    # when bob retracts (more than 12 h left)
    run(bid_retract, bid_id=placed.bid.pk, user=bob)
    # then one event at the next seq, the listing as if bob had never bid
    (event,) = room_events(sent_events, listing)
    assert (event["type"], event["reason"], event["seq"]) == ("listing_updated", "retraction", 3)
    assert event["listingId"] == str(listing.pk)
    assert (event["listing"]["current_price_cents"], event["listing"]["bid_count"],
            event["listing"]["minimum_next_bid_cents"], event["listing"]["seq"]) == (
        1000, 1, 1050, 3)


def test_a_retraction_nobody_can_see_moves_no_seq(run, sent_events):
    # given alice leads and then silently raised her own maximum (her latest bid)
    listing = ListingFactory(starting_price_cents=1000)
    alice, bob = UserFactory(), UserFactory()
    run(bid_place, listing_id=listing.pk, bidder=alice, amount_cents=1000, max_amount_cents=2000)
    run(bid_place, listing_id=listing.pk, bidder=bob, amount_cents=1100)
    raise_ = run(bid_place, listing_id=listing.pk, bidder=alice, amount_cents=1500,
                 max_amount_cents=9000)
    # with less than 12 h left only that latest bid goes, and only her maximum changes back
    Listing.objects.filter(pk=listing.pk).update(ends_at=timezone.now() + timedelta(hours=2))
    sent_events.clear()
    run(bid_retract, bid_id=raise_.bid.pk, user=alice)
    assert room_events(sent_events, listing) == []
    assert seq_of(listing) == 2


def test_an_edit_of_a_published_listing_sends_listing_updated(run, sent_events):
    seller = UserFactory()
    listing = ListingFactory(seller=seller)
    run(listing_update, listing_id=listing.pk, user=seller, data={"title": "A better title"})
    (event,) = room_events(sent_events, listing)
    assert (event["type"], event["reason"], event["seq"]) == ("listing_updated", "edit", 1)
    assert event["listing"]["title"] == "A better title"
    assert event["listing"]["seq"] == 1
    assert "reserve_price_cents" not in event["listing"]  # the public representation


def test_an_edit_changing_nothing_sends_nothing(run, sent_events):
    seller = UserFactory()
    listing = ListingFactory(seller=seller)
    run(listing_update, listing_id=listing.pk, user=seller, data={"title": listing.title})
    assert room_events(sent_events, listing) == [] and seq_of(listing) == 0


def test_suspending_the_seller_pauses_and_reinstating_reopens_with_events(run, sent_events):
    seller, staff = UserFactory(), UserFactory(is_staff=True)
    open_listing = ListingFactory(seller=seller)
    ended = ListingFactory(seller=seller, status="sold")
    run(user_suspend, user_id=seller.pk, staff_user=staff, reason="fraud check")
    (paused,) = room_events(sent_events, open_listing)
    assert (paused["type"], paused["reason"], paused["seq"]) == ("listing_updated", "paused", 1)
    run(user_reinstate, user_id=seller.pk, staff_user=staff)
    reinstated = room_events(sent_events, open_listing)[-1]
    assert (reinstated["reason"], reinstated["seq"]) == ("reinstated", 2)
    # an ended listing is not paused: no event, no seq
    assert room_events(sent_events, ended) == [] and seq_of(ended) == 0


def test_every_ending_sends_auction_ended_with_the_new_seq(run, sent_events):
    seller, staff, bidder = UserFactory(), UserFactory(is_staff=True), UserFactory()
    cancelled = ListingFactory(seller=seller)
    run(listing_cancel, listing_id=cancelled.pk, user=seller)
    removed = ListingFactory(seller=seller)
    run(bid_place, listing_id=removed.pk, bidder=bidder, amount_cents=removed.starting_price_cents)
    run(listing_remove, listing_id=removed.pk, staff_user=staff, reason="counterfeit")
    sold = ListingFactory(seller=seller)
    run(bid_place, listing_id=sold.pk, bidder=bidder, amount_cents=sold.starting_price_cents)
    Listing.objects.filter(pk=sold.pk).update(ends_at=timezone.now() - timedelta(seconds=1))
    run(auction_close, listing_id=sold.pk)
    for listing, status, final, seq in ((cancelled, "cancelled", None, 1),
                                        (removed, "removed", None, 2),
                                        (sold, "sold", sold.starting_price_cents, 2)):
        last = room_events(sent_events, listing)[-1]
        assert last == {"type": "auction_ended", "listingId": str(listing.pk), "seq": seq,
                        "status": status, "finalPrice": final}
        assert seq_of(listing) == seq


def test_an_image_added_to_a_published_listing_moves_seq_and_tells_the_room(
        run, sent_events, settings, tmp_path):
    from django.core.files.uploadedfile import SimpleUploadedFile

    from listings.services import listing_image_add
    from tests.listings.conftest import image_bytes

    settings.MEDIA_ROOT = str(tmp_path / "media")
    listing = ListingFactory()
    draft = ListingFactory(seller=listing.seller, status="draft", starts_at=None)
    before = seq_of(listing)
    # when the seller adds a photo to the active listing and to a draft
    for target in (listing, draft):
        run(listing_image_add, listing_id=target.pk, user=listing.seller,
            upload=SimpleUploadedFile("p.jpg", image_bytes(), content_type="image/jpeg"))
    # then only the published one moved, with one `listing_updated` (edit) showing the image
    (event,) = room_events(sent_events, listing)
    assert (event["type"], event["reason"], event["seq"]) == ("listing_updated", "edit",
                                                              before + 1)
    assert len(event["listing"]["images"]) == 1
    assert room_events(sent_events, draft) == []
    assert seq_of(draft) == 0
