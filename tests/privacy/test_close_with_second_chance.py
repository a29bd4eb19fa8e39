"""An account closing with an open second-chance offer: the offer ends with it, so a closed
bidder can't hold a seller up for 48 hours and a closed seller can't be bought from."""

from __future__ import annotations

import pytest
from celery import _state as _celery_state

from biddt.errors import APIException
from escrow.models import Transaction
from escrow.services import second_chance
from notifications.models import Notification
from privacy.services import account_delete
from tests.bidding.second_chance_helpers import unpaid_auction
from tests.factories import UserFactory
from tests.privacy.test_delete_races import race

ROUNDS = 8


@pytest.fixture(autouse=True)
def _simulated(settings):
    settings.BIDDT_PAYMENTS_BACKEND = "simulated"
    yield
    _celery_state._set_task_join_will_block(False)  # see tests/bidding/test_second_chance_races


def _offered():
    """An unpaid auction (A won, didn't pay) offered to the runner-up B; C bid lower."""
    a, b, c = UserFactory(), UserFactory(), UserFactory()
    listing, _first = unpaid_auction([(a, 1000, 5000), (c, 1100, 2500), (b, 2700, 3000)])
    offer = second_chance.second_chance_offer_create(user=listing.seller, listing_id=listing.pk)
    assert offer.bidder_id == b.pk
    return listing, offer, b, c


@pytest.mark.django_db
def test_a_runner_up_who_closes_their_account_declines_the_offer():
    listing, offer, b, c = _offered()
    # when B closes their account
    assert account_delete(user_id=b.pk) is True
    # then the offer is declined, the seller is told, and may offer the next bidder at once
    offer.refresh_from_db()
    assert offer.status == "declined" and offer.decided_at is not None
    assert Notification.objects.filter(user=listing.seller,
                                       title="Second-chance offer declined").exists()
    following = second_chance.second_chance_offer_create(user=listing.seller,
                                                         listing_id=listing.pk)
    assert following.bidder_id == c.pk


@pytest.mark.django_db
def test_a_seller_who_closes_their_account_ends_the_offer_on_their_listing():
    listing, offer, b, _c = _offered()
    # when the seller closes their account (the unpaid sale is settled: cancelled)
    assert account_delete(user_id=listing.seller_id) is True
    # then the offer is over: the runner-up can't buy from a closed account
    offer.refresh_from_db()
    assert offer.status == "expired"
    with pytest.raises(APIException) as refused:
        second_chance.second_chance_accept(user=b, offer_id=offer.pk)
    assert refused.value.get_codes() == "second_chance_unavailable"
    assert not Transaction.objects.filter(listing=listing, buyer=b).exists()


@pytest.mark.django_db
def test_a_refused_closure_leaves_the_offer_open():
    listing, offer, b, _c = _offered()
    # given B also leads another auction (an open obligation)
    from bidding.services import bid_place
    from tests.factories import ListingFactory

    other = ListingFactory()
    bid_place(listing_id=other.pk, bidder=b, amount_cents=other.starting_price_cents)
    with pytest.raises(APIException) as refused:
        account_delete(user_id=b.pk)
    assert refused.value.get_codes() == "account_has_open_obligations"
    offer.refresh_from_db()
    assert offer.status == "offered"


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("round_", range(ROUNDS))
@pytest.mark.parametrize(("closing", "ended"), [("seller", "expired"), ("runner_up", "declined")])
def test_a_closure_against_the_runner_up_accepting(round_, closing, ended):
    listing, offer, b, _c = _offered()
    closer = listing.seller_id if closing == "seller" else b.pk
    closed, accepted = race(lambda: account_delete(user_id=closer),
                            lambda: second_chance.second_chance_accept(user=b,
                                                                       offer_id=offer.pk))
    offer.refresh_from_db()
    sale = Transaction.objects.filter(listing=listing, buyer=b).first()
    if closed is True:  # the closure won: the offer ended, nothing was sold
        assert isinstance(accepted, APIException), accepted
        if closing == "seller":  # the runner-up is active, the offer no longer open
            assert accepted.get_codes() == "second_chance_unavailable", accepted
        assert offer.status == ended and sale is None
    else:  # the accept won: the sale must finish before either party can close
        assert isinstance(accepted, Transaction), accepted
        assert closed.get_codes() == "account_has_open_obligations", closed
        assert offer.status == "accepted" and sale is not None
