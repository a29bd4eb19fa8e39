"""Redis stopped while bids arrive, on a real daphne with real sockets.

A daphne whose cache, throttles and channel layer use a private redis-server; an app-like
socket client (tests.chaos.support.LiveRoomClient) watches a listing. Redis is stopped while
three users bid over REST, then restarted (empty, as after a crash: no persistence) on the
same port. The bids must all be accepted, readiness must report the instance degraded and
then recovered, and the client must notice (its socket closed or stuck: it reconnects; or,
the socket kept, its periodic room check answers a newer seq), see the seq gap, resync over
REST to exactly the server's state, and then receive the next bid live with the next seq.
"""

from __future__ import annotations

import asyncio
import uuid

import httpx
import pytest
from django.conf import settings

from bidding.models import Bid
from listings.models import Listing
from tests.chaos.support import LIVE_FIELDS, LiveRoomClient, async_wait_until, start_redis_on
from tests.conftest import bearer
from tests.factories import ListingFactory, UserFactory

pytestmark = [pytest.mark.integration, pytest.mark.postgres,
              pytest.mark.django_db(transaction=True)]


@pytest.fixture
def redis_and_daphne(redis_server, daphne_server, tmp_path):
    """(redis, daphne, restart): a private redis-server, a fresh daphne whose cache and
    channel layer use it, and `restart()` to bring an empty redis-server back on its port."""
    if not settings.USING_POSTGRES:
        pytest.skip("needs PostgreSQL: set DATABASE_URL")
    redis = redis_server()
    daphne = daphne_server({"REDIS_URL": redis.url}, fresh=True)
    restarted = []

    def restart():
        server = start_redis_on(redis.port, work_dir=tmp_path)
        restarted.append(server)
        return server

    try:
        yield redis, daphne, restart
    finally:
        daphne.stop()
        for server in restarted:
            server.stop()


def server_view(listing_id) -> tuple[Listing, dict[str, dict]]:
    """The truth: the listing row and its bid rows."""
    row = Listing.objects.get(pk=listing_id)
    bids = {str(b.pk): {"amount_cents": b.amount_cents, "is_auto_bid": b.is_auto_bid}
            for b in Bid.objects.filter(listing=row)}
    return row, bids


def assert_client_matches_server(watcher: LiveRoomClient, rest_detail: dict, listing_id) -> None:
    row, bids = server_view(listing_id)
    assert watcher.seq == row.seq
    assert watcher.status == row.status == rest_detail["status"]
    assert watcher.live == {k: rest_detail[k] for k in LIVE_FIELDS}
    assert watcher.live["current_price_cents"] == row.current_price_cents
    assert watcher.live["bid_count"] == row.bid_count
    assert {bid_id: {"amount_cents": b["amount_cents"], "is_auto_bid": b["is_auto_bid"]}
            for bid_id, b in watcher.bids.items()} == bids


def test_bids_survive_a_redis_outage_and_the_socket_client_resyncs(redis_and_daphne):
    # given a live auction on a daphne backed by a private Redis, and three bidders
    redis, daphne, restart_redis = redis_and_daphne
    listing = ListingFactory(starting_price_cents=1000)
    alice, bob, carol = UserFactory(), UserFactory(), UserFactory()
    auth = {u.pk: bearer(u) for u in (alice, bob, carol)}  # tokens touch the ORM: not async
    listing_id = str(listing.pk)

    async def bid(http: httpx.AsyncClient, user, amount: int, maximum: int | None = None):
        body = {"amount_cents": amount}
        if maximum is not None:
            body["max_amount_cents"] = maximum
        return await http.post(f"/v1/listings/{listing_id}/bids", json=body,
                               headers={"Authorization": auth[user.pk],
                                        "Idempotency-Key": str(uuid.uuid4())})

    async def scenario():
        http = httpx.AsyncClient(base_url=daphne.http_url, timeout=30)
        watcher = LiveRoomClient(ws_url=daphne.ws_url, http_url=daphne.http_url,
                                 listing_id=listing_id)
        watcher.start()
        try:
            # ... a socket client that subscribed and saw a first bid live
            await async_wait_until(lambda: watcher.connections == 1,
                                   what="the socket client to subscribe")
            assert watcher.seq == 0
            assert (await http.get("/readyz")).status_code == 200
            first = await bid(http, alice, 1000)
            assert first.status_code == 201, first.text
            await async_wait_until(lambda: watcher.seq == 1, what="the first bid_placed")
            assert watcher.resyncs == 0 and len(watcher.live_events) == 1

            # when Redis stops
            redis.stop()
            assert not redis.is_up()
            ready_down = await http.get("/readyz")
            # ... and three users bid over REST (bob's proxy maximum answers the others)
            during = [await bid(http, bob, 1050, 3000), await bid(http, carol, 1500),
                      await bid(http, alice, 2000)]
            ready_still_down = await http.get("/readyz")

            # when Redis comes back, empty, on the same port
            restart_redis()
            await async_wait_until(lambda: ready_status(http, 200),
                                   what="/readyz to answer 200 again")
            # then the client (reconnected, or its room check answered) holds seq 4 from a
            # `subscribed` snapshot, saw the gap after seq 1 and resynced over REST
            await async_wait_until(
                lambda: watcher.seq == 4 and watcher.resyncs and watcher.snapshots[-1]["seq"] == 4,
                what="the client to re-subscribe and resync")
            detail_after_resync = (await http.get(f"/v1/listings/{listing_id}")).json()
            state_after_resync = (watcher.seq, dict(watcher.live), dict(watcher.bids))
            received_before = len(watcher.received)

            # ... and a new bid is placed after the recovery: it arrives live
            after = await bid(http, carol, 4000)
            await async_wait_until(
                lambda: any(m["type"] == "bid_placed"
                            for m in watcher.received[received_before:]),
                what="the post-recovery bid_placed on the socket")
            await async_wait_until(lambda: watcher.seq == 5, what="the client at seq 5")
            detail_final = (await http.get(f"/v1/listings/{listing_id}")).json()
            return (ready_down, during, ready_still_down, detail_after_resync,
                    state_after_resync, received_before, after, detail_final, watcher)
        except AssertionError:
            print("client: seq", watcher.seq, "gaps", watcher.gaps, "connections",
                  watcher.connections, "disconnects", watcher.disconnects)
            print("client received:", [m for m in watcher.received if m["type"] != "pong"][-12:])
            raise
        finally:
            await watcher.stop()
            await http.aclose()

    try:
        (ready_down, during, ready_still_down, detail_after_resync, state_after_resync,
         received_before, after, detail_final, watcher) = asyncio.run(scenario())
    except AssertionError:
        print("daphne log (tail):\n", daphne.log()[-8000:])  # shown by pytest on failure
        raise
    log = daphne.log()
    assert daphne.process.poll() is None, log

    # then every bid during the outage was accepted, and the auction moved on in the database
    assert [r.status_code for r in during] == [201, 201, 201], [r.text for r in during]
    assert [r.json()["is_leading"] for r in during] == [True, False, False]
    assert during[-1].json()["listing"]["current_price_cents"] == 2050
    assert '" 500 ' not in log and "request_failed" not in log
    # and readiness said the instance was degraded, the channel layer being down
    for ready in (ready_down, ready_still_down):
        assert ready.status_code == 503, ready.text
        checks = ready.json()["checks"]
        assert ready.json()["status"] == "not_ready"
        assert any("ChannelLayer" in name and result != "ok" for name, result in checks.items())
    # the client saw the gap (it held seq 1, the server was at 4) and resynced over REST
    assert any(held == 1 and seen > 2 for held, seen in watcher.gaps), watcher.gaps
    assert state_after_resync[0] == 4
    assert set(state_after_resync[2]) == set(server_view(listing_id)[1]) - {after.json()["id"]}
    assert state_after_resync[1] == {k: detail_after_resync[k] for k in LIVE_FIELDS}
    # the post-recovery bid came over the socket as bid_placed with seq = last + 1
    assert after.status_code == 201, after.text
    live = [m for m in watcher.received[received_before:] if m["type"] == "bid_placed"]
    assert [(m["seq"], m["bid"]["id"]) for m in live] == [(5, after.json()["id"])]
    assert live[0]["listing"]["current_price_cents"] == 3100
    # and the client ends with exactly the server's state
    assert_client_matches_server(watcher, detail_final, listing_id)


async def ready_status(http: httpx.AsyncClient, expected: int) -> bool:
    return (await http.get("/readyz")).status_code == expected
