"""The listing's lifecycle has one owner (listings/lifecycle.py): its transition table, its
lock, and the only writes of `Listing.status`."""

from __future__ import annotations

import ast
import re
from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone

from listings import rules
from listings.lifecycle import (
    TRANSITIONS,
    IllegalTransition,
    listing_close_due,
    listing_lock,
    listing_transition,
    sources_of,
)
from listings.models import Listing, ListingStatus
from listings.selectors import auction_state
from tests.factories import ListingFactory, UserFactory

ROOT = Path(__file__).resolve().parents[2]
APPS = ("accounts", "biddt", "bidding", "chat", "escrow", "listings", "notifications",
        "project", "safezones")
OWNER = ROOT / "listings" / "lifecycle.py"


def status_writes(source: str) -> list[str]:
    """The places in `source` that write a listing's status: `<Listing queryset>.update(
    status=...)`, `<listing>.status = ...`, `<listing>.save(update_fields=[..."status"...])`
    and raw SQL that updates the listing table's status."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            receiver = ast.unparse(node.func.value)
            keywords = {k.arg: k.value for k in node.keywords}
            if (node.func.attr == "update" and "status" in keywords
                    and re.search(r"\bListing\.objects\b", receiver)):
                found.append(ast.unparse(node))
            if (node.func.attr == "save" and "listing" in receiver.lower()
                    and "status" in ast.unparse(keywords.get("update_fields", ast.List([])))):
                found.append(ast.unparse(node))
        elif isinstance(node, ast.Assign | ast.AugAssign | ast.AnnAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for target in targets:
                if (isinstance(target, ast.Attribute) and target.attr == "status"
                        and "listing" in ast.unparse(target.value).lower()):
                    found.append(ast.unparse(node))
        elif isinstance(node, ast.Constant | ast.JoinedStr):
            text = ast.unparse(node)
            if ("UPDATE" in text and "status" in text
                    and ("Listing._meta.db_table" in text or "listings_listing" in text)):
                found.append(text[:80])
    return found


def test_the_checker_finds_each_kind_of_write():
    source = '''
Listing.objects.filter(pk=1).update(status="sold")
listing.status = "sold"
listing.save(update_fields=["status", "updated_at"])
sql = f"UPDATE {Listing._meta.db_table} SET status = 'sold'"
Bid.objects.filter(pk=1).update(status="voided")
txn.status = "paid"
'''
    assert len(status_writes(source)) == 4


def test_only_the_lifecycle_module_writes_a_listings_status():
    offenders = {}
    for app in APPS:
        for path in (ROOT / app).rglob("*.py"):
            if path == OWNER or "migrations" in path.parts:
                continue
            writes = status_writes(path.read_text())
            if writes:
                offenders[str(path.relative_to(ROOT))] = writes
    assert offenders == {}, "write `status` through listings.lifecycle.listing_transition"
    assert status_writes(OWNER.read_text())  # and the owner does


def test_transitions_name_every_status_and_removed_is_final():
    assert set(TRANSITIONS) == set(ListingStatus.values)
    assert TRANSITIONS[ListingStatus.REMOVED] == frozenset()
    assert sources_of(ListingStatus.REMOVED) == frozenset(ListingStatus.values) - {
        ListingStatus.REMOVED}


def test_an_illegal_transition_is_refused_before_any_write():
    with pytest.raises(IllegalTransition):
        listing_transition(listing_id=None, frm=[ListingStatus.SOLD], to=ListingStatus.ACTIVE)
    with pytest.raises(IllegalTransition):
        listing_transition(listing_id=None, frm=[], to=ListingStatus.SOLD)


@pytest.mark.django_db
def test_a_transition_has_one_winner():
    listing = ListingFactory()
    assert listing.status == ListingStatus.ACTIVE
    assert listing_transition(listing_id=listing.pk, frm=[ListingStatus.ACTIVE],
                              to=ListingStatus.CANCELLED)
    assert not listing_transition(listing_id=listing.pk, frm=[ListingStatus.ACTIVE],
                                  to=ListingStatus.CANCELLED)
    listing.refresh_from_db()
    assert listing.status == ListingStatus.CANCELLED


@pytest.mark.django_db(transaction=True)
def test_the_lock_returns_the_row_or_404():
    from django.db import transaction

    from biddt.errors import NotFound

    listing = ListingFactory()
    with transaction.atomic():
        locked = listing_lock(listing.pk)
        assert locked.pk == listing.pk and locked.seller_paused is False
    with pytest.raises(NotFound), transaction.atomic():
        listing_lock("not-a-uuid")


@pytest.mark.django_db
@pytest.mark.parametrize(("reserve", "price", "leader"), [
    (None, 1000, True), (None, 1000, False), (1500, 1000, True), (1500, 1500, True),
    (1500, 2000, True), (1500, 1500, False),
])
def test_the_close_statement_agrees_with_the_rules(reserve, price, leader):
    """The close decides sold/unsold in SQL; it must say what `rules.reserve_met` says."""
    bidder = UserFactory() if leader else None
    listing = ListingFactory(reserve_price_cents=reserve, starting_price_cents=500,
                             current_price_cents=price, bid_count=1 if leader else 0,
                             leader=bidder, leader_max_cents=price if leader else None,
                             ends_at=timezone.now() - timedelta(seconds=1))
    state = auction_state(listing)
    expected = (ListingStatus.SOLD if state.has_bid and rules.reserve_met(state) is not False
                else ListingStatus.UNSOLD)
    closed = listing_close_due(listing_id=listing.pk)
    assert closed is not None and closed.status == expected
    assert listing_close_due(listing_id=listing.pk) is None  # closed once
    assert Listing.objects.get(pk=listing.pk).status == expected
