"""Second-chance offers: the runner-up by the rules engine, the seller's offer, the bidder's
accept (a new sale through escrow's sale service) and decline, the 48 h expiry sweep."""

from __future__ import annotations

from datetime import timedelta

import pytest
import time_machine
from django.utils import timezone

from bidding import rules, services
from bidding.models import Bid, SecondChanceOffer
from escrow import services as escrow_services
from escrow.models import Transaction
from escrow.services import second_chance
from escrow.tasks import second_chance_expire_due
from notifications.models import Notification
from tests.bidding.second_chance_helpers import close_unpaid, unpaid_auction
from tests.escrow.helpers import assert_books_balanced, client_for, error_code
from tests.factories import ListingFactory, UserFactory, sold_transaction

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _simulated(settings):
    settings.BIDDT_PAYMENTS_BACKEND = "simulated"


def _offer(listing, user=None):
    return client_for(user or listing.seller).post(f"/v1/listings/{listing.pk}/second-chance")


def test_runner_up_is_the_replay_leader_without_the_excluded_bidders():
    initial = rules.AuctionState.initial(starting_price_cents=1000)
    bids = [rules.BidInput("a", 1000, 5000), rules.BidInput("b", 1100, 3000),
            rules.BidInput("c", 3000, None), rules.BidInput("b", 3100, 3200)]
    # b raised their maximum to 3200: b leads without a
    assert rules.runner_up(initial, bids, exclude={"a"}) == ("b", 3200)
    assert rules.runner_up(initial, bids, exclude={"a", "b"}) == ("c", 3000)
    assert rules.runner_up(initial, bids, exclude={"a", "b", "c"}) is None
    # ties go to the earlier bid
    tie = [rules.BidInput("a", 1000, 5000), rules.BidInput("b", 1100, 3000),
           rules.BidInput("c", 1200, 3000)]
    assert rules.runner_up(initial, tie, exclude={"a"}) == ("b", 3000)


def test_the_seller_offers_the_runner_up_at_their_maximum():
    # given A won at B's maximum + one increment and didn't pay; C bid less than B
    a, b, c = UserFactory(), UserFactory(), UserFactory()
    listing, first = unpaid_auction([(a, 1000, 5000), (c, 1100, None), (b, 1200, 3000)])
    assert first.amount_cents == 3100
    # when the seller asks for a second chance
    response = _offer(listing)
    # then B gets the offer at B's maximum, open 48 h, and is notified
    assert response.status_code == 201, response.content
    body = response.json()
    assert set(body) == {"id", "listing_id", "bidder", "amount_cents", "status", "expires_at"}
    assert body["bidder"] == {"id": str(b.pk), "display_name": b.display_name}
    assert (body["listing_id"], body["amount_cents"], body["status"]) == (
        str(listing.pk), 3000, "offered")
    offer = SecondChanceOffer.objects.get(pk=body["id"])
    assert abs((offer.expires_at - timezone.now()) - timedelta(hours=48)) < timedelta(minutes=1)
    note = Notification.objects.get(user=b, type="second_chance_offer")
    assert note.data["offer_id"] == str(offer.pk) and note.data["amount_cents"] == 3000
    # and a second offer while it's open is refused
    again = _offer(listing)
    assert again.status_code == 409 and error_code(again) == "second_chance_unavailable"


def test_retracted_bids_are_not_offered():
    # given D's higher maximum was retracted (a day left: all of D's bids go)
    a, b, d = UserFactory(), UserFactory(), UserFactory()
    listing = ListingFactory(starting_price_cents=1000)
    services.bid_place(listing_id=listing.pk, bidder=a, amount_cents=1000,
                       max_amount_cents=6000)
    retracted = services.bid_place(listing_id=listing.pk, bidder=d, amount_cents=1100,
                                   max_amount_cents=4000)
    services.bid_retract(bid_id=retracted.bid.pk, user=d)
    services.bid_place(listing_id=listing.pk, bidder=b, amount_cents=1100,
                       max_amount_cents=2000)
    listing, _ = close_unpaid(listing)
    assert Bid.objects.filter(listing=listing, bidder=d, status="retracted").exists()
    # when the seller offers a second chance, B (not D) gets it
    response = _offer(listing)
    assert response.status_code == 201
    assert response.json()["bidder"]["id"] == str(b.pk)
    assert response.json()["amount_cents"] == 2000


def test_the_amount_is_capped_at_the_winning_price():
    a, b = UserFactory(), UserFactory()
    listing, first = unpaid_auction([(a, 1000, 5000), (b, 1100, 3000)])
    # the winning price (as the first sale recorded it) below B's maximum
    Transaction.objects.filter(pk=first.pk).update(amount_cents=2500, fee_cents=150,
                                                   seller_payout_cents=2500 - 150 - 199,
                                                   total_charged_cents=2500)
    response = _offer(listing)
    assert response.status_code == 201 and response.json()["amount_cents"] == 2500


def test_refusals():
    a, b = UserFactory(), UserFactory()
    listing, _ = unpaid_auction([(a, 1000, 5000), (b, 1100, 3000)])
    # not the seller: 403; the bidder can't offer it to themself
    assert _offer(listing, user=b).status_code == 403
    # an active listing, a sale still awaiting payment, a sold listing: unavailable
    active = ListingFactory()
    assert error_code(_offer(active)) == "second_chance_unavailable"
    pending = sold_transaction()
    r = _offer(pending.listing)
    assert r.status_code == 409 and error_code(r) == "second_chance_unavailable"
    # a listing that isn't there: 404
    missing = client_for(listing.seller).post(
        "/v1/listings/00000000-0000-0000-0000-000000000000/second-chance")
    assert missing.status_code == 404
    # only the winner bid: no runner-up
    solo, _ = unpaid_auction([(UserFactory(), 1000, 2000)])
    r = _offer(solo)
    assert r.status_code == 409 and error_code(r) == "no_runner_up"


def test_accept_creates_the_sale_and_sells_the_listing_again(sent_events):
    a, b = UserFactory(), UserFactory()
    # given B won (maximum 9999) and didn't pay; A's maximum was 5000
    listing, first = unpaid_auction([(a, 1000, 5000), (b, 1100, 10000 - 1)])
    offer_body = _offer(listing).json()
    assert offer_body["bidder"]["id"] == str(a.pk) and offer_body["amount_cents"] == 5000
    seq_before = listing.seq
    # when A accepts
    response = client_for(a).post(f"/v1/second-chance/{offer_body['id']}/accept")
    # then a new transaction in pending_payment with the usual fees
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["status"] == "pending_payment" and body["buyer"]["id"] == str(a.pk)
    assert (body["amount_cents"], body["fee_cents"], body["escrow_fee_cents"],
            body["seller_payout_cents"]) == (5000, 300, 199, 4501)
    txn = Transaction.objects.get(pk=body["id"])
    assert txn.source == "second_chance" and txn.payment_due_at is not None
    assert Transaction.objects.filter(listing=listing).count() == 2
    listing.refresh_from_db()
    assert listing.status == "sold" and listing.seq == seq_before + 1
    offer = SecondChanceOffer.objects.get(pk=offer_body["id"])
    assert offer.status == "accepted" and offer.transaction_id == txn.pk
    assert Notification.objects.filter(user=listing.seller, type="second_chance_offer",
                                       data__status="accepted").count() == 1
    # accepting again returns the same sale; the seller can't offer again
    again = client_for(a).post(f"/v1/second-chance/{offer_body['id']}/accept")
    assert again.status_code == 201 and again.json()["id"] == body["id"]
    assert error_code(_offer(listing)) == "second_chance_unavailable"
    # the buyer claims and pays it like any sale
    claim = client_for(a).post("/v1/transactions", {"listing_id": str(listing.pk)})
    assert claim.status_code == 200 and claim.json()["id"] == body["id"]
    first_claim = client_for(first.buyer).post("/v1/transactions",
                                               {"listing_id": str(listing.pk)})
    assert first_claim.json()["id"] == str(first.pk)
    assert client_for(a).post(f"/v1/transactions/{txn.pk}/pay").status_code == 200
    txn.refresh_from_db()
    assert txn.status == "in_escrow"
    assert_books_balanced()
    # a stranger and the seller can't accept or decline: 404
    assert client_for(UserFactory()).post(
        f"/v1/second-chance/{offer_body['id']}/accept").status_code == 404
    assert client_for(listing.seller).post(
        f"/v1/second-chance/{offer_body['id']}/decline").status_code == 404


def test_decline_frees_the_seller_to_offer_the_next_bidder():
    a, b, c = UserFactory(), UserFactory(), UserFactory()
    listing, _ = unpaid_auction([(a, 1000, 5000), (c, 1100, 2500), (b, 2700, 3000)])
    first = _offer(listing).json()
    assert first["bidder"]["id"] == str(b.pk)
    assert client_for(b).post(f"/v1/second-chance/{first['id']}/decline").status_code == 204
    assert client_for(b).post(f"/v1/second-chance/{first['id']}/decline").status_code == 204
    accept = client_for(b).post(f"/v1/second-chance/{first['id']}/accept")
    assert accept.status_code == 409 and error_code(accept) == "second_chance_unavailable"
    second = _offer(listing)
    assert second.status_code == 201 and second.json()["bidder"]["id"] == str(c.pk)
    assert second.json()["amount_cents"] == 2500
    assert client_for(c).post(f"/v1/second-chance/{second.json()['id']}/decline"
                              ).status_code == 204
    last = _offer(listing)
    assert last.status_code == 409 and error_code(last) == "no_runner_up"


def test_offers_expire_after_48_hours_by_the_sweep():
    a, b, c = UserFactory(), UserFactory(), UserFactory()
    listing, _ = unpaid_auction([(a, 1000, 5000), (c, 1100, 2500), (b, 2700, 3000)])
    offer = _offer(listing).json()
    later = timezone.now() + timedelta(hours=48, seconds=1)
    with time_machine.travel(later, tick=False):
        # the beat task (and the embedded scheduler, same entry) expires it, once
        assert second_chance_expire_due.apply().get() == 1
        assert second_chance_expire_due.apply().get() == 0
        assert SecondChanceOffer.objects.get(pk=offer["id"]).status == "expired"
        r = client_for(b).post(f"/v1/second-chance/{offer['id']}/accept")
        assert r.status_code == 409 and error_code(r) == "second_chance_unavailable"
        assert Notification.objects.filter(user=listing.seller, type="second_chance_offer",
                                           data__status="expired").count() == 1
        nxt = _offer(listing)
        assert nxt.status_code == 201 and nxt.json()["bidder"]["id"] == str(c.pk)


def test_an_overdue_offer_counts_as_expired_before_the_sweep_runs():
    a, b, c = UserFactory(), UserFactory(), UserFactory()
    listing, _ = unpaid_auction([(a, 1000, 5000), (c, 1100, 2500), (b, 2700, 3000)])
    offer = _offer(listing).json()
    with time_machine.travel(timezone.now() + timedelta(hours=49), tick=False):
        r = client_for(b).post(f"/v1/second-chance/{offer['id']}/accept")
        assert r.status_code == 409
        nxt = _offer(listing)
        assert nxt.status_code == 201 and nxt.json()["bidder"]["id"] == str(c.pk)


def test_an_unpaid_second_chance_sale_lets_the_seller_offer_the_next_bidder():
    a, b, c = UserFactory(), UserFactory(), UserFactory()
    listing, first = unpaid_auction([(a, 1000, 5000), (c, 1100, 2500), (b, 2700, 3000)])
    offer = _offer(listing).json()
    txn_id = client_for(b).post(f"/v1/second-chance/{offer['id']}/accept").json()["id"]
    # B doesn't pay either: the usual unpaid expiry cancels it and the listing is unsold
    Transaction.objects.filter(pk=txn_id).update(
        payment_due_at=timezone.now() - timedelta(minutes=1))
    assert escrow_services.transaction_expire_unpaid(transaction_id=txn_id)
    listing.refresh_from_db()
    assert listing.status == "unsold"
    nxt = _offer(listing)
    assert nxt.status_code == 201 and nxt.json()["bidder"]["id"] == str(c.pk)


def test_a_suspended_bidder_is_skipped():
    a, b, c = UserFactory(), UserFactory(), UserFactory()
    listing, _ = unpaid_auction([(a, 1000, 5000), (c, 1100, 2500), (b, 2700, 3000)])
    type(b).objects.filter(pk=b.pk).update(status="suspended")
    offer = second_chance.second_chance_offer_create(user=listing.seller, listing_id=listing.pk)
    assert offer.bidder_id == c.pk

