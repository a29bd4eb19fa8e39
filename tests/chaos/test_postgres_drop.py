"""PostgreSQL connections dropped under a real daphne, in the middle of a bid.

The test holds a lock the bid needs (from its own psycopg connection), waits until daphne's
backend is blocked on it, kills that backend with `pg_terminate_backend()`, then lets go.
Two moments are covered: waiting for the listing row lock (before anything is written), and
at the very end of the bid's transaction (bid rows and the new listing state written, the
idempotency record being filled in), held there by a trigger that takes an advisory lock.

Either way the client must get a clean 503 in the standard error shape, nothing may be
written (no bid, the listing unchanged, no idempotency record that would replay the
failure), no socket event may go out for the lost write, the retry with the same
Idempotency-Key must succeed exactly once, and the same daphne must go on serving.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from concurrent.futures import ThreadPoolExecutor

import httpx
import psycopg
import pytest
from django.conf import settings
from django.db import connection
from websockets.asyncio.client import connect

from bidding.models import Bid
from biddt.core.models import IdempotencyRecord
from listings.models import Listing
from tests.biddt.processes import recv_type
from tests.chaos.support import wait_until
from tests.conftest import bearer
from tests.factories import ListingFactory, UserFactory

pytestmark = [pytest.mark.integration, pytest.mark.postgres,
              pytest.mark.django_db(transaction=True)]

TIMEOUT = 30
GATE_KEY = 8_8080_8080  # the advisory lock the trigger waits for


def pg_connect(*, autocommit: bool) -> psycopg.Connection:
    """A psycopg connection of the test's own to the test database (not Django's)."""
    s = connection.settings_dict
    return psycopg.connect(dbname=s["NAME"], user=s["USER"] or None,
                           password=s["PASSWORD"] or None, host=s["HOST"] or None,
                           port=s["PORT"] or None, autocommit=autocommit,
                           application_name="biddt-chaos-test")


def blocked_backend(admin: psycopg.Connection, *, exclude: set[int]) -> int | None:
    """The pid of the one backend of this database waiting for a lock, if any."""
    rows = admin.execute(
        "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
        "AND wait_event_type = 'Lock' AND pid <> ALL(%s)", [list(exclude)]).fetchall()
    assert len(rows) <= 1, rows
    return rows[0][0] if rows else None


@pytest.fixture
def pg_daphne(daphne_server):
    """A fresh daphne on the test database whose lock waits outlast the test's fault."""
    if not settings.USING_POSTGRES:
        pytest.skip("needs PostgreSQL: set DATABASE_URL")
    # Kept connections, as in production: a killed one must not fail the next request.
    server = daphne_server({"DATABASE_LOCK_TIMEOUT_MS": "60000", "DATABASE_CONN_MAX_AGE": "60"},
                           fresh=True)
    yield server
    server.stop()


@contextlib.contextmanager
def hold_listing_row(listing_id):
    """Lock the listing row as another transaction would (the bid's FOR NO KEY UPDATE
    waits for it)."""
    holder = pg_connect(autocommit=False)
    try:
        holder.execute(f"SELECT id FROM {Listing._meta.db_table} WHERE id = %s FOR UPDATE",
                       [listing_id])
        yield holder
    finally:
        holder.rollback()
        holder.close()


@contextlib.contextmanager
def hold_before_commit():
    """Make the bid's transaction wait at its last statement (the idempotency record's
    answer is written after the bid rows and the listing row): a trigger on that UPDATE
    takes an advisory lock that this connection holds."""
    table = IdempotencyRecord._meta.db_table
    admin = pg_connect(autocommit=True)
    admin.execute(
        "CREATE OR REPLACE FUNCTION biddt_chaos_gate() RETURNS trigger LANGUAGE plpgsql AS "
        f"$$ BEGIN PERFORM pg_advisory_xact_lock({GATE_KEY}); RETURN NEW; END $$")
    admin.execute(f"CREATE TRIGGER biddt_chaos_gate BEFORE UPDATE ON {table} "
                  "FOR EACH ROW EXECUTE FUNCTION biddt_chaos_gate()")
    holder = pg_connect(autocommit=True)
    holder.execute("SELECT pg_advisory_lock(%s)", [GATE_KEY])
    try:
        yield holder
    finally:
        with contextlib.suppress(psycopg.Error):
            holder.execute("SELECT pg_advisory_unlock_all()")
        holder.close()
        admin.execute(f"DROP TRIGGER IF EXISTS biddt_chaos_gate ON {table}")
        admin.execute("DROP FUNCTION IF EXISTS biddt_chaos_gate()")
        admin.close()


async def next_event(socket, wanted: str) -> dict:
    return await recv_type(socket, wanted, timeout=TIMEOUT)


@pytest.mark.parametrize("moment", ["waiting_for_the_row_lock", "before_commit"])
def test_connection_killed_mid_bid_answers_503_writes_nothing_and_the_retry_succeeds(
        pg_daphne, moment):
    # given a live auction, a bidder and a second one, and a subscriber to the room
    listing = ListingFactory(starting_price_cents=1000)
    bidder, other = UserFactory(), UserFactory()
    auth, other_auth = bearer(bidder), bearer(other)
    listing_id, key = str(listing.pk), f"chaos-{uuid.uuid4()}"
    before = Listing.objects.get(pk=listing.pk)
    admin = pg_connect(autocommit=True)
    me = admin.execute("SELECT pg_backend_pid()").fetchone()[0]
    hold = (hold_listing_row(listing.pk) if moment == "waiting_for_the_row_lock"
            else hold_before_commit())

    def post_bid(http: httpx.Client, headers: dict, amount: int) -> httpx.Response:
        return http.post(f"/v1/listings/{listing_id}/bids", json={"amount_cents": amount},
                         headers=headers)

    headers = {"Authorization": auth, "Idempotency-Key": key}

    async def scenario():
        async with connect(f"{pg_daphne.ws_url}/ws/", open_timeout=TIMEOUT) as socket:
            await socket.send(json.dumps({"type": "subscribe", "listingId": listing_id}))
            subscribed = await next_event(socket, "subscribed")

            def fault() -> tuple[httpx.Response, int]:
                with hold as holder, httpx.Client(base_url=pg_daphne.http_url,
                                                  timeout=TIMEOUT) as http:
                    holder_pid = holder.info.backend_pid
                    with ThreadPoolExecutor(1) as pool:
                        in_flight = pool.submit(post_bid, http, headers, 1000)
                        # when daphne's backend is blocked inside the bid ...
                        victim = wait_until(
                            lambda: blocked_backend(admin, exclude={me, holder_pid}),
                            what="the bid to block on the held lock")
                        # ... its connection is killed, and then the lock is let go
                        killed = admin.execute("SELECT pg_terminate_backend(%s)",
                                               [victim]).fetchone()[0]
                        assert killed is True
                        return in_flight.result(timeout=TIMEOUT), victim

            failed, victim = await asyncio.to_thread(fault)
            # the killed backend was daphne's (the one waiting on our lock): it is gone
            await asyncio.to_thread(wait_until, lambda: not admin.execute(
                "SELECT 1 FROM pg_stat_activity WHERE pid = %s", [victim]).fetchone(),
                what="the killed backend to exit")

            def after() -> tuple[httpx.Response, httpx.Response, httpx.Response]:
                with httpx.Client(base_url=pg_daphne.http_url, timeout=TIMEOUT) as http:
                    retry = post_bid(http, headers, 1000)
                    replay = post_bid(http, headers, 1000)
                    next_bid = post_bid(http, {"Authorization": other_auth,
                                               "Idempotency-Key": str(uuid.uuid4())}, 1050)
                    return retry, replay, next_bid

            retry, replay, next_bid = await asyncio.to_thread(after)
            events = [await next_event(socket, "bid_placed"),
                      await next_event(socket, "bid_placed")]
            return subscribed, failed, victim, retry, replay, next_bid, events

    try:
        subscribed, failed, victim, retry, replay, next_bid, events = asyncio.run(scenario())
    finally:
        admin.close()
    log = pg_daphne.log()

    # then the client got a clean 503 in the standard error shape (not a 500, not HTML)
    assert failed.status_code == 503, (failed.status_code, failed.text, log[-3000:])
    assert failed.headers["content-type"].startswith("application/json")
    assert failed.json() == {"type": "server_error", "errors": [{
        "code": "service_unavailable", "detail": "Temporarily unavailable, try again.",
        "attr": None}]}
    assert "Idempotent-Replayed" not in failed.headers
    # the retry with the same key did the work once; a second retry replays it
    assert retry.status_code == 201, retry.text
    assert "Idempotent-Replayed" not in retry.headers
    assert replay.status_code == 201 and replay.headers["Idempotent-Replayed"] == "true"
    assert replay.json() == retry.json()
    assert retry.json()["is_leading"] is True and retry.json()["amount_cents"] == 1000
    # the same daphne went on serving: another user's bid after it
    assert next_bid.status_code == 201, next_bid.text
    assert pg_daphne.process.poll() is None
    # nobody was told about the lost write: the room saw seq 1 (the retry) then seq 2
    assert subscribed["listing"]["seq"] == before.seq == 0
    assert [e["seq"] for e in events] == [1, 2]
    assert events[0]["bid"]["id"] == retry.json()["id"]
    assert events[1]["bid"]["id"] == next_bid.json()["id"]
    # and the database holds exactly the retry and the next bid, nothing of the failure
    row = Listing.objects.get(pk=listing.pk)
    bids = list(Bid.objects.filter(listing=row).order_by("seq"))
    assert [(b.bidder_id, b.amount_cents, b.seq) for b in bids] == [
        (bidder.pk, 1000, 1), (other.pk, 1050, 2)]
    assert (row.seq, row.bid_count, row.current_price_cents, row.leader_id) == (
        2, 2, 1050, other.pk)
    records = IdempotencyRecord.objects.filter(user=bidder, scope="bid", key=key)
    assert records.count() == 1
    assert records.get().response_status == 201
    assert records.get().response_body["id"] == retry.json()["id"]


def test_a_lock_held_past_the_lock_timeout_answers_503_and_writes_nothing(daphne_server):
    # given a daphne whose lock waits give up after 300 ms, and a listing row held elsewhere
    if not settings.USING_POSTGRES:
        pytest.skip("needs PostgreSQL: set DATABASE_URL")
    server = daphne_server({"DATABASE_LOCK_TIMEOUT_MS": "300"}, fresh=True)
    listing = ListingFactory(starting_price_cents=1000)
    bidder = UserFactory()
    headers = {"Authorization": bearer(bidder), "Idempotency-Key": f"chaos-{uuid.uuid4()}"}
    url = f"{server.http_url}/v1/listings/{listing.pk}/bids"
    try:
        # when a bid arrives while the row stays locked past lock_timeout
        with hold_listing_row(listing.pk):
            blocked = httpx.post(url, json={"amount_cents": 1000}, headers=headers,
                                 timeout=TIMEOUT)
        # ... and is retried once the lock is free
        retry = httpx.post(url, json={"amount_cents": 1000}, headers=headers, timeout=TIMEOUT)
    finally:
        server.stop()
    # then the first answer is the 503 the client retries on, and nothing was written
    assert blocked.status_code == 503, blocked.text
    assert blocked.json()["errors"][0]["code"] == "service_unavailable"
    assert retry.status_code == 201, retry.text
    assert Bid.objects.filter(listing=listing).count() == 1
    assert Listing.objects.get(pk=listing.pk).seq == 1
    assert IdempotencyRecord.objects.filter(user=bidder).count() == 1
