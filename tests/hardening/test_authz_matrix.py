"""Authorization matrix: every /v1/ endpoint × every kind of caller, from ONE table.

Callers (`ROLES`): the object's `owner`, its `counterparty` (the other side: the leading bidder
on the owner's listing, the seller of the owner's bid's listing or of the transaction the
owner bought), an `unrelated` user, `anonymous`, the owner `suspended`, `support` staff and
`admin` staff. Expected statuses follow API.md's conventions: 401 without a token (public
reads excepted), 404 for objects the caller may not know exist (another user's transaction,
draft, bid or notification), 403 authenticated but not allowed (a suspended account's write:
`account_suspended`; another seller's visible listing), 409 for a state conflict.

`test_every_v1_route_is_in_the_table` walks the URL resolver: a new route (or a new method
on a route) that is not in `MATRIX` and not in `NOT_IN_MATRIX` fails the suite.

The mass-assignment tests below send read-only fields with writes and assert nothing moved.
"""

from __future__ import annotations

import dataclasses
import io
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from django.urls import URLPattern, URLResolver, get_resolver, reverse
from django.utils import timezone
from PIL import Image
from rest_framework.test import APIClient

from tests.conftest import bearer
from tests.factories import ListingFactory, SafeZoneFactory, UserFactory, sold_transaction

pytestmark = pytest.mark.django_db

ROLES = ("owner", "counterparty", "unrelated", "anonymous", "suspended", "support", "admin")


# --- the world every cell runs against (fresh per test) --------------------------------------

@dataclasses.dataclass
class World:
    users: dict[str, Any]
    listing: Any  # active auction of owner, counterparty leads it
    draft: Any  # owner's draft
    fixed: Any  # owner's fixed-price listing, no bid
    owner_bid: Any  # owner's bid on counterparty's listing
    txn_pending: Any  # owner bought from counterparty, unpaid
    txn_escrow: Any  # paid: in escrow
    txn_released: Any
    notification: Any
    safe_zone: Any
    extra: dict = dataclasses.field(default_factory=dict)


def build_world() -> World:
    from accounts.roles import user_set_role
    from bidding.services import bid_place
    from escrow.services import transaction_pay
    from notifications.models import Notification
    from notifications.services import notify

    owner, cp, unrelated = (UserFactory(display_name=n) for n in ("owner", "cpty", "other"))
    support, admin = UserFactory(display_name="support"), UserFactory(display_name="admin")
    user_set_role(user=support, role="support")
    user_set_role(user=admin, role="admin")

    listing = ListingFactory(seller=owner)
    bid_place(listing_id=listing.pk, bidder=cp, amount_cents=1000)
    draft = ListingFactory(seller=owner, status="draft", starts_at=None)
    fixed = ListingFactory(seller=owner, auction_type="fixed")
    cp_listing = ListingFactory(seller=cp)
    owner_bid = bid_place(listing_id=cp_listing.pk, bidder=owner, amount_cents=1000).bid

    txn_pending = sold_transaction(buyer=owner, seller=cp)
    txn_escrow = sold_transaction(buyer=owner, seller=cp)
    transaction_pay(user=owner, transaction_id=txn_escrow.pk)  # simulated: in escrow at once
    txn_released = sold_transaction(buyer=owner, seller=cp)
    transaction_pay(user=owner, transaction_id=txn_released.pk)
    type(txn_released).objects.filter(pk=txn_released.pk).update(
        status="released", released_at=timezone.now())

    notify(user_id=owner.pk, type="outbid", title="Outbid", body="You were outbid.", data={},
           dedupe_key="matrix")
    users = {"owner": owner, "counterparty": cp, "unrelated": unrelated, "support": support,
             "admin": admin}
    for obj in (listing, txn_escrow):
        obj.refresh_from_db()
    return World(users=users, listing=listing, draft=draft, fixed=fixed, owner_bid=owner_bid,
                 txn_pending=txn_pending, txn_escrow=txn_escrow, txn_released=txn_released,
                 notification=Notification.objects.get(user=owner), safe_zone=SafeZoneFactory())


def client_as(world: World, role: str) -> APIClient:
    client = APIClient()
    if role == "anonymous":
        return client
    if role == "suspended":
        user = world.users["owner"]
        type(user).objects.filter(pk=user.pk).update(status="suspended")
    else:
        user = world.users[role]
    client.credentials(HTTP_AUTHORIZATION=bearer(user))
    return client


def png_upload():
    out = io.BytesIO()
    Image.new("RGB", (64, 48), (10, 120, 200)).save(out, format="PNG")
    out.seek(0)
    out.name = "photo.png"
    return out


def video_upload():
    from tests.listings.videos import make_video

    out = io.BytesIO(make_video())
    out.name = "clip.mp4"
    return out


def video_of(world: World):
    """A ready video on the owner's listing (created on first use)."""
    from listings.models import ListingVideo

    if "video" not in world.extra:
        world.extra["video"] = ListingVideo.objects.create(
            listing=world.listing, status="ready", file="listings/v.mp4",
            poster="listings/v.jpg", duration_seconds=3.0)
    return world.extra["video"].pk


def qr_code_for(world: World) -> dict:
    from escrow.services import qr_issue

    code, _ = qr_issue(user=world.users["owner"], transaction_id=world.txn_escrow.pk)
    return {"code": code}


def handoff_token_for(world: World) -> dict:
    from escrow.services import handoff_issue

    issued = handoff_issue(user=world.users["owner"], transaction_id=world.txn_escrow.pk)
    return {"token": issued.token, "scanned_at": timezone.now().isoformat()}


# --- the table ------------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class Row:
    url_name: str
    method: str
    kwargs: Callable[[World], dict]
    expect: dict[str, int]
    body: Callable[[World], Any] | None = None
    fmt: str = "json"


def expect(owner, counterparty, unrelated, anonymous, suspended, support, admin) -> dict:
    return dict(zip(ROLES, (owner, counterparty, unrelated, anonymous, suspended, support,
                            admin), strict=True))


def me_read() -> dict:
    """A read of the caller's own data: every account (suspended ones read), 401 anonymous."""
    return expect(200, 200, 200, 401, 200, 200, 200)


def me_write(ok: int) -> dict:
    return expect(ok, ok, ok, 401, 403, ok, ok)


PUBLIC = expect(200, 200, 200, 200, 200, 200, 200)
# Only a party of the transaction; staff included in "may not know it exists" for writes.
PARTY_WRITE = {"buyer_and_seller": expect(201, 201, 404, 401, 403, 404, 404)}

LISTING = {"listing_id": lambda w: w.listing.pk}
DRAFT = {"listing_id": lambda w: w.draft.pk}
FIXED = {"listing_id": lambda w: w.fixed.pk}


def kw(**getters) -> Callable[[World], dict]:
    return lambda w: {name: get(w) for name, get in getters.items()}


NONE = kw()


def _saved_search_id(w: World):
    """The owner's saved search (made once per world, through its service)."""
    from discovery.services import saved_search_create

    if "saved_search" not in w.extra:
        w.extra["saved_search"] = saved_search_create(
            user=w.users["owner"], data={"name": "bikes", "q": "bike", "notify": True})
    return w.extra["saved_search"].pk


SAVED_SEARCH = kw(saved_search_id=_saved_search_id)
TXN_PENDING = kw(transaction_id=lambda w: w.txn_pending.pk)
TXN_ESCROW = kw(transaction_id=lambda w: w.txn_escrow.pk)
TXN_RELEASED = kw(transaction_id=lambda w: w.txn_released.pk)


def _second_chance(w: World, *, seller_role: str, runner_up_role: str):
    """A listing of `seller_role` whose winner (another user) didn't pay, `runner_up_role`
    the next bidder. Built when the row's URL is (after the caller may have been suspended,
    so the owner is active while the bids are placed)."""
    from bidding.services import bid_place
    from tests.bidding.second_chance_helpers import close_unpaid

    key = (seller_role, runner_up_role)
    if key not in w.extra:
        owner = w.users["owner"]
        status = type(owner).objects.filter(pk=owner.pk).values_list("status", flat=True)[0]
        type(owner).objects.filter(pk=owner.pk).update(status="active")
        listing = ListingFactory(seller=w.users[seller_role])
        bid_place(listing_id=listing.pk, bidder=UserFactory(), amount_cents=1000,
                  max_amount_cents=5000)
        bid_place(listing_id=listing.pk, bidder=w.users[runner_up_role], amount_cents=1100,
                  max_amount_cents=3000)
        w.extra[key], _ = close_unpaid(listing)
        type(owner).objects.filter(pk=owner.pk).update(status=status)
    return w.extra[key]


def _second_chance_offer(w: World):
    """An open offer to the owner on the counterparty's listing."""
    from escrow.services.second_chance import second_chance_offer_create

    if "offer" not in w.extra:
        listing = _second_chance(w, seller_role="counterparty", runner_up_role="owner")
        owner = w.users["owner"]
        status = type(owner).objects.filter(pk=owner.pk).values_list("status", flat=True)[0]
        type(owner).objects.filter(pk=owner.pk).update(status="active")
        w.extra["offer"] = second_chance_offer_create(user=w.users["counterparty"],
                                                      listing_id=listing.pk)
        type(owner).objects.filter(pk=owner.pk).update(status=status)
    return w.extra["offer"]


SECOND_CHANCE_LISTING = kw(listing_id=lambda w: _second_chance(
    w, seller_role="owner", runner_up_role="counterparty").pk)
SECOND_CHANCE_OFFER = kw(offer_id=lambda w: _second_chance_offer(w).pk)

MATRIX: list[Row] = [
    # listings: owner = seller, counterparty = the leading bidder
    Row("listings", "GET", NONE, PUBLIC),
    Row("listings", "POST", NONE, me_write(201), body=lambda w: {
        "title": "Lamp", "starting_price_cents": 1000,
        "ends_at": (timezone.now() + timedelta(days=2)).isoformat()}),
    Row("listing-detail", "GET", kw(**LISTING), PUBLIC),
    Row("listing-detail", "PATCH", kw(**LISTING), expect(200, 403, 403, 401, 403, 403, 403),
        body=lambda w: {"title": "Renamed"}),
    # owner: 409 `listing_has_bids` (the counterparty's bid)
    Row("listing-detail", "DELETE", kw(**LISTING), expect(409, 403, 403, 401, 403, 403, 403)),
    # a draft: nobody but its seller may know it exists (staff don't see drafts either)
    Row("listing-publish", "POST", kw(**DRAFT), expect(200, 404, 404, 401, 403, 404, 404)),
    Row("listing-images", "POST", kw(**LISTING), expect(201, 403, 403, 401, 403, 403, 403),
        body=lambda w: {"image": png_upload()}, fmt="multipart"),
    Row("listing-videos", "POST", kw(**LISTING), expect(201, 403, 403, 401, 403, 403, 403),
        body=lambda w: {"video": video_upload()}, fmt="multipart"),
    Row("listing-video", "GET", kw(**LISTING, video_id=lambda w: video_of(w)),
        expect(200, 404, 404, 401, 200, 404, 404)),
    # owner: 409 `listing_has_bids` (the counterparty's bid)
    Row("listing-video", "DELETE", kw(**LISTING, video_id=lambda w: video_of(w)),
        expect(409, 403, 403, 401, 403, 403, 403)),
    Row("listing-watch", "POST", kw(**LISTING), me_write(201)),
    Row("listing-watch", "DELETE", kw(**LISTING), me_write(204)),
    Row("listing-bids", "GET", kw(**LISTING), PUBLIC),
    # owner: 409 `own_listing`; the leader raising their maximum is accepted
    Row("listing-bids", "POST", kw(**LISTING), expect(409, 201, 201, 401, 403, 201, 201),
        body=lambda w: {"amount_cents": 1100}),
    Row("listing-buy-now", "POST", kw(**FIXED), expect(409, 201, 201, 401, 403, 201, 201)),
    Row("listing-report", "POST", kw(**LISTING), expect(409, 201, 201, 401, 403, 201, 201),
        body=lambda w: {"reason": "scam", "details": "Too good to be true."}),
    # bids: owner = bidder, counterparty = the listing's seller
    # second chance: the owner sells (offer) / is the runner-up (accept, decline)
    Row("listing-second-chance", "POST", SECOND_CHANCE_LISTING,
        expect(201, 403, 403, 401, 403, 403, 403)),
    Row("second-chance-accept", "POST", SECOND_CHANCE_OFFER,
        expect(201, 404, 404, 401, 403, 404, 404)),
    Row("second-chance-decline", "POST", SECOND_CHANCE_OFFER,
        expect(204, 404, 404, 401, 403, 404, 404)),
    Row("bid-detail", "DELETE", kw(bid_id=lambda w: w.owner_bid.pk),
        expect(204, 404, 404, 401, 403, 404, 404)),
    Row("bids-me", "GET", NONE, me_read()),
    # saved searches: only their owner knows they exist (404 for everyone else, staff too)
    Row("saved-searches", "GET", NONE, me_read()),
    Row("saved-searches", "POST", NONE, me_write(201),
        body=lambda w: {"name": "lamps", "q": "lamp", "notify": True}),
    Row("saved-search-detail", "GET", SAVED_SEARCH, expect(200, 404, 404, 401, 200, 404, 404)),
    Row("saved-search-detail", "PATCH", SAVED_SEARCH, expect(200, 404, 404, 401, 403, 404, 404),
        body=lambda w: {"name": "old bikes"}),
    Row("saved-search-detail", "DELETE", SAVED_SEARCH,
        expect(204, 404, 404, 401, 403, 404, 404)),
    Row("saved-search-listings", "GET", SAVED_SEARCH,
        expect(200, 404, 404, 401, 200, 404, 404)),
    # transactions: owner = buyer, counterparty = seller
    Row("transactions", "POST", NONE, expect(200, 404, 404, 401, 403, 404, 404),
        body=lambda w: {"listing_id": str(w.txn_pending.listing_id)}),
    Row("transaction-detail", "GET", TXN_ESCROW, expect(200, 200, 404, 401, 200, 200, 200)),
    Row("transaction-pay", "POST", TXN_PENDING, expect(200, 404, 404, 401, 403, 404, 404)),
    Row("transaction-qr", "GET", TXN_ESCROW, expect(200, 404, 404, 401, 200, 404, 404)),
    # the seller scans the buyer's code
    Row("transaction-verify", "POST", TXN_ESCROW, expect(404, 200, 404, 401, 403, 404, 404),
        body=qr_code_for),
    # the token and scan time instead of the code (the seller's phone was offline)
    Row("transaction-verify", "POST", TXN_ESCROW, expect(404, 200, 404, 401, 403, 404, 404),
        body=handoff_token_for),
    Row("handoff-keys", "GET", NONE, PUBLIC),
    Row("transaction-dispute", "POST", TXN_ESCROW, PARTY_WRITE["buyer_and_seller"],
        body=lambda w: {"reason": "Not as described."}),
    Row("transaction-meetup", "PATCH", TXN_ESCROW, expect(200, 200, 404, 401, 403, 404, 404),
        body=lambda w: {"safe_zone_id": str(w.safe_zone.pk),
                        "meetup_at": (timezone.now() + timedelta(days=1)).isoformat()}),
    Row("transaction-rating", "POST", TXN_RELEASED, PARTY_WRITE["buyer_and_seller"],
        body=lambda w: {"score": 5, "comment": "Smooth."}),
    Row("transaction-messages", "GET", TXN_ESCROW, expect(200, 200, 404, 401, 200, 404, 404)),
    Row("transaction-messages", "POST", TXN_ESCROW, PARTY_WRITE["buyer_and_seller"],
        body=lambda w: {"content": "See you at noon."}),
    Row("transaction-messages-read", "POST", TXN_ESCROW,
        expect(200, 200, 404, 401, 403, 404, 404)),
    Row("my-transactions", "GET", NONE, me_read()),
    # the caller's own resources
    Row("wallet", "POST", NONE, me_write(201)),
    Row("wallet-balance", "GET", NONE, me_read()),
    Row("users-me", "GET", NONE, me_read()),
    Row("users-me", "PATCH", NONE, me_write(200), body=lambda w: {"display_name": "Renamed"}),
    # closes the caller's own account; owner and counterparty have open obligations (409)
    Row("users-me", "DELETE", NONE, expect(409, 409, 204, 401, 403, 204, 204)),
    Row("users-me-export", "GET", NONE, me_read()),
    Row("users-devices", "POST", NONE, me_write(201),
        body=lambda w: {"token": "fcm-token-matrix", "platform": "ios"}),
    Row("users-profile", "GET", kw(user_id=lambda w: w.users["owner"].pk), PUBLIC),
    Row("notifications", "GET", NONE, me_read()),
    Row("notifications-read", "PATCH", kw(notification_id=lambda w: w.notification.pk),
        expect(200, 404, 404, 401, 403, 404, 404)),
    Row("notifications-read-all", "PATCH", NONE, me_write(200)),
    Row("notifications-unread-count", "GET", NONE, me_read()),
    Row("notification-settings", "GET", NONE, me_read()),
    Row("notification-settings", "PATCH", NONE, me_write(200), body=lambda w: {}),
    Row("safe-zones", "GET", NONE, me_read()),
]

# Routes with no object and no account behind them, tested where they live.
NOT_IN_MATRIX = {
    "auth-send-code": "login (public, throttled): tests/accounts, tests/hardening/test_abuse.py",
    "auth-verify": "login (public): tests/accounts/test_otp.py",
    "auth-refresh": "token rotation (the token is the credential): tests/accounts",
    "auth-logout": "token blacklist (the token is the credential): tests/accounts",
    "stripe-webhook": "signed by Stripe, no user: tests/escrow, tests/hardening/test_abuse.py",
    "schema": "the public OpenAPI document",
    "asyncapi": "the public AsyncAPI document of /ws/ (tests/biddt/test_asyncapi.py)",
    "docs": "the public API docs page",
    "v1-not-found": "the JSON 404 for anything else under /v1/",
}


def _cell_id(row: Row, role: str) -> str:
    return f"{row.method} {row.url_name} as {role}"


CELLS = [(row, role) for row in MATRIX for role in ROLES]


@pytest.mark.parametrize(("row", "role"), CELLS, ids=[_cell_id(r, c) for r, c in CELLS])
def test_matrix(row: Row, role: str):
    # given the world and a caller
    world = build_world()
    body = row.body(world) if row.body else None
    client = client_as(world, role)
    url = reverse(row.url_name, kwargs=row.kwargs(world))
    # when the caller calls the endpoint
    response = getattr(client, row.method.lower())(url, body, format=row.fmt)
    # then the status is the table's
    expected = row.expect[role]
    assert response.status_code == expected, (
        f"{row.method} {url} as {role}: {response.status_code} != {expected}: "
        f"{response.content[:300]!r}")
    if expected >= 400:
        payload = response.json()
        assert payload["type"] in ("client_error", "validation_error"), payload
        if role == "suspended" and expected == 403:
            assert payload["errors"][0]["code"] == "account_suspended", payload
        if expected == 401:
            assert payload["errors"][0]["code"] in ("not_authenticated",
                                                    "token_not_valid"), payload


def _v1_routes() -> set[tuple[str, str]]:
    """(url name, METHOD) of every route under /v1/, from the resolver."""
    found: set[tuple[str, str]] = set()

    def walk(patterns, prefix: str):
        for pattern in patterns:
            route = prefix + str(pattern.pattern)
            if isinstance(pattern, URLResolver):
                walk(pattern.url_patterns, route)
            elif isinstance(pattern, URLPattern) and route.startswith("v1/"):
                view_class = getattr(pattern.callback, "view_class", None)
                methods = ({m.upper() for m in view_class.http_method_names
                            if m not in ("options", "head") and hasattr(view_class, m)}
                           if view_class else {"*"})
                for method in methods:
                    found.add((pattern.name or route, method))

    walk(get_resolver().url_patterns, "")
    return found


def test_every_v1_route_is_in_the_table():
    in_table = {(row.url_name, row.method) for row in MATRIX}
    routes = {(name, method) for name, method in _v1_routes() if name not in NOT_IN_MATRIX}
    missing = routes - in_table
    assert not missing, f"routes with no row in MATRIX (add them): {sorted(missing)}"
    stale = in_table - routes
    assert not stale, f"MATRIX rows for routes that don't exist: {sorted(stale)}"
    assert set(NOT_IN_MATRIX) <= {name for name, _ in _v1_routes()}


# --- mass assignment --------------------------------------------------------------------------

def _client(user) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=bearer(user))
    return client


def test_listing_patch_ignores_read_only_fields_and_freezes_prices_after_bids():
    world = build_world()
    listing, owner, other = world.listing, world.users["owner"], world.users["unrelated"]
    before, seq = _listing_state(listing), listing.seq
    # when the seller sends the auction state and bookkeeping along with a title
    response = _client(owner).patch(reverse("listing-detail", kwargs={"listing_id": listing.pk}), {
        "title": "Still a lamp", "status": "sold", "current_price_cents": 1, "bid_count": 0,
        "seller": str(other.pk), "leader": str(owner.pk), "leader_max_cents": 1,
        "view_count": 100000, "seq": 999, "minimum_next_bid_cents": 1, "reserve_met": True,
        "created_at": "2000-01-01T00:00:00Z", "id": str(other.pk)}, format="json")
    # then only the title changed (and seq, as for any change of a published listing)
    assert response.status_code == 200, response.content
    listing.refresh_from_db()
    assert listing.title == "Still a lamp"
    assert _listing_state(listing) == before
    assert listing.seq == seq + 1
    # and a price is frozen once a bid exists
    for field, value in (("starting_price_cents", 600), ("reserve_price_cents", 5000),
                         ("buy_now_price_cents", 9000)):
        response = _client(owner).patch(
            reverse("listing-detail", kwargs={"listing_id": listing.pk}), {field: value},
            format="json")
        assert response.status_code == 409, (field, response.content)
        assert response.json()["errors"][0]["code"] == "listing_has_bids"
    listing.refresh_from_db()
    assert _listing_state(listing) == before
    assert listing.seq == seq + 1


def _listing_state(listing) -> tuple:
    """What a PATCH must never set (`seq` is checked apart: a real change moves it)."""
    return (listing.status, listing.seller_id, listing.current_price_cents, listing.bid_count,
            listing.leader_id, listing.leader_max_cents, listing.view_count,
            listing.starting_price_cents, listing.reserve_price_cents,
            listing.buy_now_price_cents, listing.created_at)


def test_listing_create_ignores_read_only_fields():
    user, other = UserFactory(), UserFactory()
    response = _client(user).post(reverse("listings"), {
        "title": "Chair", "starting_price_cents": 1500,
        "ends_at": (timezone.now() + timedelta(days=3)).isoformat(),
        "status": "active", "seller": str(other.pk), "current_price_cents": 1,
        "bid_count": 7, "leader": str(other.pk), "view_count": 50, "seq": 9}, format="json")
    assert response.status_code == 201, response.content
    from listings.models import Listing

    listing = Listing.objects.get(pk=response.json()["id"])
    assert (listing.status, listing.seller_id, listing.current_price_cents, listing.bid_count,
            listing.leader_id, listing.view_count) == ("draft", user.pk, 1500, 0, None, 0)


def test_users_me_patch_ignores_staff_status_phone_and_counters():
    user = UserFactory(display_name="plain")
    phone = user.phone_number
    response = _client(user).patch(reverse("users-me"), {
        "display_name": "still plain", "is_staff": True, "is_superuser": True,
        "status": "banned", "phone_number": "+14165550199", "rating_count": 50,
        "rating_total": 250, "completed_sales": 12, "id": "00000000-0000-0000-0000-000000000000",
        "groups": [1]}, format="json")
    assert response.status_code == 200, response.content
    user.refresh_from_db()
    assert user.display_name == "still plain"
    assert (user.is_staff, user.is_superuser, user.status, user.phone_number, user.rating_count,
            user.rating_total, user.completed_sales) == (False, False, "active", phone, 0, 0, 0)
    assert not user.groups.exists()


def test_bid_post_ignores_bidder_status_and_listing_state():
    listing = ListingFactory()
    bidder, other = UserFactory(), UserFactory()
    response = _client(bidder).post(
        reverse("listing-bids", kwargs={"listing_id": listing.pk}),
        {"amount_cents": 1000, "bidder": str(other.pk), "status": "won", "is_leading": False,
         "is_auto_bid": True, "listing_id": str(ListingFactory().pk), "seq": 77,
         "current_price_cents": 1}, format="json")
    assert response.status_code == 201, response.content
    from bidding.models import Bid

    bid = Bid.objects.get(pk=response.json()["id"])
    assert (bid.bidder_id, bid.listing_id, bid.status, bid.is_auto_bid) == (
        bidder.pk, listing.pk, "active", False)
    listing.refresh_from_db()
    assert (listing.current_price_cents, listing.leader_id) == (1000, bidder.pk)


def _txn_money(txn) -> tuple:
    txn.refresh_from_db()
    return (txn.status, txn.buyer_id, txn.seller_id, txn.amount_cents, txn.fee_cents,
            txn.escrow_fee_cents, txn.total_charged_cents, txn.seller_payout_cents)


def test_transaction_writes_ignore_money_and_parties():
    world = build_world()
    owner, other = world.users["owner"], world.users["unrelated"]
    forged = {"amount_cents": 1, "fee_cents": 0, "escrow_fee_cents": 0,
              "total_charged_cents": 1, "seller_payout_cents": 999999, "status": "released",
              "buyer": str(other.pk), "seller": str(other.pk), "buyer_id": str(other.pk)}
    before = _txn_money(world.txn_pending)
    response = _client(owner).post(reverse("transactions"),
                                   {"listing_id": str(world.txn_pending.listing_id), **forged},
                                   format="json")
    assert response.status_code == 200, response.content
    assert _txn_money(world.txn_pending) == before
    before = _txn_money(world.txn_escrow)
    response = _client(owner).patch(
        reverse("transaction-meetup", kwargs={"transaction_id": world.txn_escrow.pk}),
        {"safe_zone_id": str(world.safe_zone.pk),
         "meetup_at": (timezone.now() + timedelta(days=1)).isoformat(), **forged},
        format="json")
    assert response.status_code == 200, response.content
    assert _txn_money(world.txn_escrow) == before
    response = _client(owner).post(
        reverse("transaction-dispute", kwargs={"transaction_id": world.txn_escrow.pk}),
        {"reason": "Broken.", **forged}, format="json")
    assert response.status_code == 201, response.content
    status, *money = _txn_money(world.txn_escrow)
    assert status == "disputed" and tuple(money) == before[1:]


def test_message_and_rating_ignore_sender_and_target():
    world = build_world()
    owner, cp, other = (world.users[r] for r in ("owner", "counterparty", "unrelated"))
    response = _client(owner).post(
        reverse("transaction-messages", kwargs={"transaction_id": world.txn_escrow.pk}),
        {"content": "hello", "sender": str(other.pk), "sender_id": str(other.pk),
         "message_type": "system", "transaction": str(world.txn_pending.pk)}, format="json")
    assert response.status_code == 201, response.content
    from chat.models import Message

    message = Message.objects.get(pk=response.json()["id"])
    assert (message.sender_id, message.transaction_id, message.message_type) == (
        owner.pk, world.txn_escrow.pk, "text")
    response = _client(owner).post(
        reverse("transaction-rating", kwargs={"transaction_id": world.txn_released.pk}),
        {"score": 4, "ratee": str(other.pk), "rater": str(other.pk),
         "ratee_id": str(other.pk)}, format="json")
    assert response.status_code == 201, response.content
    from accounts.models import Rating

    rating = Rating.objects.get(transaction_id=world.txn_released.pk)
    other.refresh_from_db()
    cp.refresh_from_db()
    assert other.rating_count == 0 and cp.rating_count == 1
    assert rating.score == 4
