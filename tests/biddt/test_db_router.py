"""The read replica for browse (biddt/db_router.py).

The unit tests check the router's decisions and the pins; the integration test runs a real
daphne against the test database with `DATABASE_REPLICA_URL` pointing at a real streaming
replica of it, pauses the replica's replay so that it lags, and shows from the answers which
server each request read: a row written while the replica is paused exists only on the
primary.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import warnings

import httpx
import pytest
from asgiref.sync import sync_to_async
from django.db import connection, connections, transaction
from rest_framework.test import APIRequestFactory
from rest_framework_simplejwt.tokens import AccessToken, RefreshToken

from biddt import db_router
from biddt.db_router import (
    PRIMARY,
    REPLICA,
    ReplicaReadMiddleware,
    ReplicaRouter,
    replica_pin_user,
    replica_user_pinned,
    use_primary,
    use_replica_for_reads,
)
from listings.models import Listing
from tests.bidding.helpers import connect, make
from tests.biddt.processes import BASE_DIR
from tests.factories import ListingFactory, UserFactory
from tests.listings.conftest import draft_body

router = ReplicaRouter()


@pytest.fixture
def replica_configured(settings):
    """The router's view of a configured replica, without a second connection.

    The tests using it take no database: the test transaction of `django_db` would send
    every read to the primary (reads inside a transaction always do).
    """
    with warnings.catch_warnings():  # "Overriding setting DATABASES": only the router reads it
        warnings.simplefilter("ignore")
        settings.DATABASES = {**settings.DATABASES,
                              REPLICA: dict(settings.DATABASES["default"])}
    settings.BIDDT_REPLICA_PIN_SECONDS = 60
    return settings


# --- the router's decisions ------------------------------------------------------------------

def test_migrations_and_writes_only_on_the_primary():
    assert router.allow_migrate(PRIMARY, "listings") is True
    assert router.allow_migrate(REPLICA, "listings") is False
    with use_replica_for_reads():
        assert router.db_for_write(Listing) == PRIMARY


@pytest.mark.django_db(transaction=True)  # no test transaction around it
def test_reads_go_to_the_replica_only_inside_a_browse_read(replica_configured):
    # outside a browse view: the primary (never None, so no fallback to an instance's db)
    assert router.db_for_read(Listing) == PRIMARY
    with use_replica_for_reads():
        assert router.db_for_read(Listing) == REPLICA
        # a transaction (locks, read-then-write) reads the primary
        with transaction.atomic():
            assert router.db_for_read(Listing) == PRIMARY
        # and so does code that asks for it (authentication)
        with use_primary():
            assert router.db_for_read(Listing) == PRIMARY
        assert router.db_for_read(Listing) == REPLICA
    assert router.db_for_read(Listing) == PRIMARY


def test_without_a_replica_nothing_is_marked(settings):
    assert REPLICA not in settings.DATABASES
    with use_replica_for_reads():
        assert router.db_for_read(Listing) == PRIMARY


def test_a_pin_is_per_user_and_only_with_a_replica(replica_configured):
    a, b = UserFactory.build(), UserFactory.build()
    replica_pin_user(user_id=a.pk)
    assert replica_user_pinned(user_id=a.pk)
    assert not replica_user_pinned(user_id=b.pk)
    assert not replica_user_pinned(user_id=None)


def test_no_pin_is_written_without_a_replica():
    a = UserFactory.build()
    replica_pin_user(user_id=a.pk)
    assert not replica_user_pinned(user_id=a.pk)


# --- the middleware ---------------------------------------------------------------------------

class _Match:
    def __init__(self, url_name):
        self.url_name = url_name


def _through_middleware(request, url_name, *, user=None):
    """Run `request` through the middleware; the 'view' reports the router's read alias."""
    seen = {}
    middleware = ReplicaReadMiddleware(lambda req: view(req))

    def view(req):
        req.resolver_match = _Match(url_name)
        middleware.process_view(req, None, (), {})
        seen["read"] = router.db_for_read(Listing)
        if user is not None:
            req.user = user  # as DRF's authentication does on the Django request
        return "response"

    assert middleware(request) == "response"
    seen["after"] = router.db_for_read(Listing)
    return seen


def test_browse_views_read_the_replica_and_others_the_primary(replica_configured):
    factory = APIRequestFactory()
    assert _through_middleware(factory.get("/v1/listings"), "listings") == {
        "read": REPLICA, "after": PRIMARY}
    assert _through_middleware(factory.get("/v1/safe-zones"), "safe-zones")["read"] == REPLICA
    # not a browse view: the primary
    assert _through_middleware(factory.get("/v1/users/me"), "users-me")["read"] == PRIMARY
    # an unsafe method on a browse URL: the primary
    assert _through_middleware(factory.post("/v1/listings"), "listings")["read"] == PRIMARY


def test_a_write_pins_its_author_to_the_primary(replica_configured):
    factory = APIRequestFactory()
    writer, other = UserFactory.build(), UserFactory.build()

    def get_as(user):
        token = AccessToken.for_user(user)  # no database row, unlike a refresh token
        return factory.get("/v1/listings", HTTP_AUTHORIZATION=f"Bearer {token}")

    assert _through_middleware(get_as(writer), "listings")["read"] == REPLICA
    # when the writer writes (any unsafe request once authenticated)
    _through_middleware(factory.post("/v1/listings"), "listings", user=writer)
    # then the writer's browse reads use the primary; another user's still the replica
    assert _through_middleware(get_as(writer), "listings")["read"] == PRIMARY
    assert _through_middleware(get_as(other), "listings")["read"] == REPLICA
    # a token that doesn't verify reads as anonymous (the view answers 401 anyway)
    bad = factory.get("/v1/listings", HTTP_AUTHORIZATION="Bearer not-a-token")
    assert _through_middleware(bad, "listings")["read"] == REPLICA


@pytest.mark.django_db(transaction=True)
async def test_a_socket_bid_pins_the_bidder(replica_configured):
    listing = await make(ListingFactory, starting_price_cents=1000)
    bidder, other = await make(UserFactory), await make(UserFactory)
    comm = await connect(bidder)
    try:
        # when the bidder bids over the socket
        await comm.send_json_to({"type": "bid", "listingId": str(listing.pk), "amount": 1000})
        assert (await comm.receive_json_from(timeout=10))["type"] == "ack"
        # then their next REST reads use the primary; nobody else's
        assert replica_user_pinned(user_id=bidder.pk)
        assert not replica_user_pinned(user_id=other.pk)
    finally:
        await comm.disconnect()
        await sync_to_async(connections.close_all)()  # so the test database can be dropped


# --- settings -----------------------------------------------------------------------------------

PROBE = ("import json, django; django.setup(); from django.conf import settings; "
         "print(json.dumps({'aliases': sorted(settings.DATABASES), "
         "'routers': list(getattr(settings, 'DATABASE_ROUTERS', [])), "
         "'middleware': 'biddt.db_router.ReplicaReadMiddleware' in settings.MIDDLEWARE, "
         "'mirror': settings.DATABASES.get('replica', {}).get('TEST', {}).get('MIRROR')}))")


def _probe(**env_overrides) -> dict:
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_REPLICA_URL"}
    env.update(DJANGO_SETTINGS_MODULE="biddt.settings", BIDDT_ENVIRONMENT="test",
               PYTHONPATH=str(BASE_DIR), **env_overrides)
    result = subprocess.run([sys.executable, "-c", PROBE], cwd=BASE_DIR, env=env,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_settings_add_the_replica_only_when_configured():
    assert _probe() == {"aliases": ["default"], "routers": [], "middleware": False,
                        "mirror": None}
    configured = _probe(DATABASE_URL="postgres://postgres@127.0.0.1:5432/biddt",
                        DATABASE_REPLICA_URL="postgres://postgres@127.0.0.1:5433/biddt")
    assert configured == {"aliases": ["default", "replica"],
                          "routers": ["biddt.db_router.ReplicaRouter"], "middleware": True,
                          "mirror": "default"}


# --- a real streaming replica --------------------------------------------------------------------

@pytest.fixture
def standby(pg):
    from tests.biddt.replica import ReplicaUnavailable, start_standby

    s = connection.settings_dict
    try:
        server = start_standby(host=s.get("HOST") or "127.0.0.1", port=int(s.get("PORT") or 5432),
                               user=s.get("USER") or "postgres")
    except ReplicaUnavailable as exc:
        pytest.skip(f"no streaming replica: {exc}")
    try:
        yield server
    finally:
        server.stop()


def _primary_lsn() -> str:
    with connection.cursor() as cursor:
        cursor.execute("select pg_current_wal_lsn()::text")
        return cursor.fetchone()[0]


@pytest.mark.postgres
@pytest.mark.integration
@pytest.mark.django_db(transaction=True)
def test_browse_reads_the_replica_and_writers_read_their_writes(standby, daphne_server):
    s = connection.settings_dict
    replica_url = (f"postgres://{s.get('USER') or 'postgres'}@127.0.0.1:{standby.port}/"
                   f"{s['NAME']}")
    # given users and a listing that reached the replica
    writer, reader, seller = UserFactory(), UserFactory(), UserFactory()
    seen_everywhere = ListingFactory(seller=seller)
    standby.wait_replayed(_primary_lsn())
    server = daphne_server(env={"DATABASE_REPLICA_URL": replica_url,
                                "BIDDT_REPLICA_PIN_SECONDS": "600"}, fresh=True)
    http = httpx.Client(base_url=server.http_url, timeout=30)

    def as_user(user):
        return {"Authorization": f"Bearer {RefreshToken.for_user(user).access_token}"}

    def detail(listing_id, headers=None):
        return http.get(f"/v1/listings/{listing_id}", headers=headers or {}).status_code

    def by_seller(headers=None):
        response = http.get("/v1/listings", params={"seller": str(seller.pk)},
                            headers=headers or {})
        assert response.status_code == 200, response.text
        return {row["id"] for row in response.json()["results"]}

    try:
        assert detail(seen_everywhere.pk) == 200
        # when the replica lags (replay paused) and a listing is published on the primary
        standby.pause_replay()
        only_on_primary = ListingFactory(seller=seller)
        # then anonymous and authenticated readers browse the replica: not there yet
        assert detail(only_on_primary.pk) == 404
        assert detail(only_on_primary.pk, as_user(reader)) == 404
        assert by_seller() == {str(seen_everywhere.pk)}
        assert by_seller(as_user(reader)) == {str(seen_everywhere.pk)}
        # and the replica's sessions are those of daphne's browse reads
        assert standby.query("select count(*) from pg_stat_activity where datname = %s",
                             s["NAME"]) >= 1

        # when a user writes (a draft, then a watch): the writes reach the primary although
        # the replica (read-only, paused) could take none
        created = http.post("/v1/listings", json=draft_body(), headers=as_user(writer))
        assert created.status_code == 201, created.text
        draft_id = created.json()["id"]
        watch = http.post(f"/v1/listings/{only_on_primary.pk}/watch", headers=as_user(writer))
        assert watch.status_code == 201, watch.text
        assert Listing.objects.filter(pk=draft_id, seller=writer).exists()
        # then the writer reads the primary: their own draft and the newest listing
        assert detail(draft_id, as_user(writer)) == 200
        assert detail(only_on_primary.pk, as_user(writer)) == 200
        assert by_seller(as_user(writer)) == {str(seen_everywhere.pk), str(only_on_primary.pk)}
        # while everyone else still reads the lagging replica
        assert detail(only_on_primary.pk, as_user(reader)) == 404
        assert detail(only_on_primary.pk) == 404

        # when the replica catches up, everyone sees it (eventual consistency)
        standby.resume_replay()
        standby.wait_replayed(_primary_lsn())
        assert detail(only_on_primary.pk, as_user(reader)) == 200
        assert by_seller() == {str(seen_everywhere.pk), str(only_on_primary.pk)}
        # the replica never took a write: it is still a standby, and the draft is there
        # only through replication
        assert standby.query("select pg_is_in_recovery()") is True
        assert standby.query("select count(*) from listings_listing where id = %s",
                             draft_id, dbname=s["NAME"]) == 1
    finally:
        http.close()
        server.stop()
        if standby.query("select pg_get_wal_replay_pause_state()") != "not paused":
            standby.resume_replay()


def test_module_documents_the_browse_views(settings):
    # the views named in the settings exist (a renamed URL would silently read the primary)
    from django.urls import reverse

    for name in settings.BIDDT_REPLICA_READ_VIEWS:
        kwargs = {"listing_id": "00000000-0000-0000-0000-000000000000"} \
            if name == "listing-detail" else \
            {"user_id": "00000000-0000-0000-0000-000000000000"} if name == "users-profile" else {}
        assert reverse(name, kwargs=kwargs).startswith("/v1/")
    assert db_router.REPLICA == "replica"
