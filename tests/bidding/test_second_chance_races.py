"""Second-chance races on PostgreSQL: real threads, real transactions and row locks."""

from __future__ import annotations

from datetime import timedelta

import pytest
from celery import _state as _celery_state
from django.test import TestCase
from django.utils import timezone

from bidding.models import SecondChanceOffer
from biddt.scheduler import run_due
from escrow import services as escrow_services
from escrow.models import LedgerEntry, Transaction
from escrow.services import second_chance
from listings.models import Listing
from tests.bidding.second_chance_helpers import unpaid_auction
from tests.escrow.helpers import assert_books_balanced
from tests.escrow.test_concurrency import run_together
from tests.escrow.test_late_payment import succeeded
from tests.factories import UserFactory

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


@pytest.fixture(autouse=True)
def _simulated(settings):
    settings.BIDDT_PAYMENTS_BACKEND = "simulated"
    yield
    # Eager tasks run by two threads at once (notifications after each commit) save and
    # restore Celery's process-wide "joining a result would block" flag out of order, which
    # can leave it set, and a later test's `result.get()` would then refuse. Back to default.
    _celery_state._set_task_join_will_block(False)


def _auction():
    a, b, c = UserFactory(), UserFactory(), UserFactory()
    listing, first = unpaid_auction([(a, 1000, 5000), (c, 1100, 2500), (b, 2700, 3000)])
    return listing, first, b, c


def test_two_accepts_make_one_sale():
    # given an open offer to B
    listing, _first, b, _c = _auction()
    offer = second_chance.second_chance_offer_create(user=listing.seller, listing_id=listing.pk)
    # when B's two phones accept at the same time
    results = run_together(2, lambda i: second_chance.second_chance_accept(
        user=b, offer_id=offer.pk))
    # then both get the one transaction; the listing is sold once
    assert all(isinstance(r, Transaction) for r in results), results
    assert results[0].pk == results[1].pk
    assert Transaction.objects.filter(listing=listing, buyer=b).count() == 1
    listing.refresh_from_db()
    assert listing.status == "sold"
    offer.refresh_from_db()
    assert offer.status == "accepted" and offer.transaction_id == results[0].pk


def test_concurrent_offers_make_one_offer():
    listing, _first, b, _c = _auction()
    results = run_together(2, lambda i: second_chance.second_chance_offer_create(
        user=listing.seller, listing_id=listing.pk))
    made = [r for r in results if isinstance(r, SecondChanceOffer)]
    refused = [r for r in results if not isinstance(r, SecondChanceOffer)]
    assert len(made) == 1 and len(refused) == 1, results
    assert refused[0].get_codes() == "second_chance_unavailable"
    assert SecondChanceOffer.objects.filter(listing=listing).count() == 1
    assert made[0].bidder_id == b.pk


@pytest.mark.parametrize("round_", range(4))
def test_accept_against_expiry_one_outcome(round_):
    # given an offer that expires right about now
    listing, _first, b, _c = _auction()
    offer = second_chance.second_chance_offer_create(user=listing.seller, listing_id=listing.pk)
    SecondChanceOffer.objects.filter(pk=offer.pk).update(
        expires_at=timezone.now() + timedelta(milliseconds=40 * round_))

    def body(i):
        if i == 0:
            return second_chance.second_chance_accept(user=b, offer_id=offer.pk)
        return second_chance.second_chance_expire_due()

    # when the bidder accepts while the sweep runs
    results = run_together(2, body)
    # then either the accept won (a sale, listing sold, offer accepted, nothing expired) or it
    # lost (409, no sale, listing unsold, and the offer ends expired): never both
    offer.refresh_from_db()
    listing.refresh_from_db()
    sales = Transaction.objects.filter(listing=listing, buyer=b).count()
    if isinstance(results[0], Transaction):
        assert results[1] == 0
        assert (offer.status, sales, listing.status) == ("accepted", 1, "sold")
    else:
        assert results[0].get_codes() == "second_chance_unavailable"
        assert (sales, listing.status) == (0, "unsold")
        second_chance.second_chance_expire_due()  # a sweep that ran just before expires_at
        offer.refresh_from_db()
        assert offer.status == "expired"


def test_an_offer_against_a_late_payment_of_the_first_sale():
    # given the first sale, cancelled unpaid
    listing, first, b, _c = _auction()

    def body(i):
        if i == 0:
            return second_chance.second_chance_offer_create(user=listing.seller,
                                                            listing_id=listing.pk)
        with TestCase.captureOnCommitCallbacks(execute=True):
            return escrow_services.payment_succeeded_apply(payment_intent=succeeded(first))

    # when the winner's payment lands while the seller makes the offer
    offer, refunded = run_together(2, body)
    # then the offer stands and the late payment is refunded, as for any cancelled sale
    assert isinstance(offer, SecondChanceOffer) and offer.bidder_id == b.pk, offer
    assert refunded is True
    first.refresh_from_db()
    assert first.status == "cancelled" and first.refund_id
    assert sorted(set(LedgerEntry.objects.filter(transaction=first)
                      .values_list("kind", flat=True))) == ["funds_held", "refund"]
    assert Listing.objects.get(pk=listing.pk).status == "unsold"
    # and the runner-up can still buy it
    txn = second_chance.second_chance_accept(user=b, offer_id=offer.pk)
    assert txn.status == "pending_payment"
    assert_books_balanced()


def test_a_late_payment_after_the_second_chance_sale_is_refunded():
    listing, first, b, _c = _auction()
    offer = second_chance.second_chance_offer_create(user=listing.seller, listing_id=listing.pk)
    results = run_together(2, lambda i: (
        second_chance.second_chance_accept(user=b, offer_id=offer.pk) if i == 0
        else escrow_services.payment_succeeded_apply(payment_intent=succeeded(first))))
    assert isinstance(results[0], Transaction) and results[1] is True, results
    first.refresh_from_db()
    assert first.status == "cancelled" and first.refund_id
    assert Listing.objects.get(pk=listing.pk).status == "sold"
    assert Transaction.objects.exclude(status="cancelled").filter(listing=listing).count() == 1
    assert_books_balanced()


def test_the_embedded_scheduler_runs_the_expiry_sweep(settings):
    # given an overdue offer and the one schedule beat and the embedded scheduler share
    # (a transactional test: the scheduler closes the connection around each job)
    listing, _first, _b, _c = _auction()
    offer = second_chance.second_chance_offer_create(user=listing.seller, listing_id=listing.pk)
    SecondChanceOffer.objects.filter(pk=offer.pk).update(
        expires_at=timezone.now() - timedelta(seconds=1))
    entry = settings.CELERY_BEAT_SCHEDULE["second-chance-expire"]
    assert entry == {"task": "escrow.tasks.second_chance_expire_due", "schedule": 60.0}
    # when only that entry is due
    next_run = {name: float("inf") for name in settings.CELERY_BEAT_SCHEDULE}
    next_run["second-chance-expire"] = 0.0
    assert run_due(next_run, 1.0) == ["second-chance-expire"]
    # then the offer expired
    offer.refresh_from_db()
    assert offer.status == "expired"
