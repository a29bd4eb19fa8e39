"""Side effects leave only after commit; a channel-layer outage never fails the caller."""

from __future__ import annotations

import asyncio
import logging

import pytest
from asgiref.sync import async_to_sync, sync_to_async
from celery import shared_task
from channels import DEFAULT_CHANNEL_LAYER
from channels.layers import InMemoryChannelLayer, channel_layers, get_channel_layer
from django.db import connections, transaction
from django.test import override_settings

from biddt.events import (
    batched,
    group_send_now,
    ids_task_on_commit,
    send_to_group_on_commit,
    task_on_commit,
)
from tests.biddt.processes import free_port

TASK_CALLS: list[tuple] = []


@shared_task(name="tests.biddt.events_record")
def events_record(*args, **kwargs) -> None:
    TASK_CALLS.append((args, kwargs))


@pytest.fixture
async def listener():
    """A channel in group `g.test`; returns a coroutine function draining what has arrived.

    Everything runs on the test's event loop (channels-redis binds its buffers to a loop);
    sync code reaches it with async_to_sync from a sync_to_async thread.
    """
    layer = get_channel_layer()
    if not isinstance(layer, InMemoryChannelLayer):
        # A Redis layer of its own for receiving: channels-redis keeps one receive lock per
        # process-wide channel key, bound to the loop of its first use, and the shared
        # instance's was bound by an earlier test's loop (tests/biddt/test_consumers.py).
        # Sends still go through the shared instance, as in the code under test.
        layer = channel_layers.make_backend(DEFAULT_CHANNEL_LAYER)
    channel = await layer.new_channel()
    await layer.group_add("g.test", channel)

    async def drain() -> list[dict]:
        received = []
        while True:
            try:
                received.append(await asyncio.wait_for(layer.receive(channel), timeout=0.2))
            except TimeoutError:
                return received

    yield drain
    await layer.group_discard("g.test", channel)
    # Close the DB connection the sync_to_async thread opened, or PostgreSQL can't drop the
    # test database at the end of the run.
    await sync_to_async(connections.close_all)()


@pytest.mark.django_db(transaction=True)
async def test_group_event_is_sent_once_after_commit(listener):
    event = {"type": "ws.event", "payload": {"type": "bid_placed", "seq": 1}}

    # when a change commits
    def change():
        with transaction.atomic():
            send_to_group_on_commit("g.test", event)
            return async_to_sync(listener)()

    during = await sync_to_async(change)()
    # then nothing left while the transaction was open, and the event arrives once after,
    # naming its group (a process's room hub fans it out by group)
    assert during == []
    assert await listener() == [{**event, "group": "g.test"}]


@pytest.mark.django_db(transaction=True)
async def test_rolled_back_change_tells_no_one(listener):
    TASK_CALLS.clear()

    # when the transaction rolls back
    def change():
        with transaction.atomic():
            send_to_group_on_commit("g.test", {"type": "ws.event", "payload": {}})
            task_on_commit(events_record, "never")
            raise RuntimeError("rollback")

    with pytest.raises(RuntimeError):
        await sync_to_async(change)()
    # then no event and no task left
    assert await listener() == []
    assert TASK_CALLS == []


@pytest.mark.django_db(transaction=True)
def test_task_is_queued_after_commit_with_its_ids():
    TASK_CALLS.clear()
    with transaction.atomic():
        task_on_commit(events_record, "listing-1", attempt=2)
        assert TASK_CALLS == []
    assert TASK_CALLS == [(("listing-1",), {"attempt": 2})]


@pytest.fixture
def layer_down():
    """A Redis channel layer whose server is not running."""
    down = {"default": {"BACKEND": "channels_redis.core.RedisChannelLayer",
                        "CONFIG": {"hosts": [f"redis://127.0.0.1:{free_port()}/0"]}}}
    channel_layers.backends = {}
    try:
        with override_settings(CHANNEL_LAYERS=down):
            yield
    finally:
        channel_layers.backends = {}


def test_layer_outage_is_logged_not_raised(caplog, layer_down):
    # given a Redis channel layer whose server is not running, when an event is sent
    with caplog.at_level(logging.WARNING, logger="biddt.events"):
        sent = group_send_now("user.x", {"type": "ws.event", "payload": {}})
    # then the caller gets False and a warning is logged instead of an exception
    assert sent is False
    assert any("user.x" in r.getMessage() for r in caplog.records)


def test_no_layer_configured_sends_nothing():
    channel_layers.backends = {}
    try:
        with override_settings(CHANNEL_LAYERS={}):
            assert group_send_now("user.x", {"type": "ws.event", "payload": {}}) is False
    finally:
        channel_layers.backends = {}


@pytest.mark.django_db(transaction=True)
async def test_batched_holds_committed_events_and_sends_them_together(listener):
    TASK_CALLS.clear()

    # when a loop of small transactions runs inside a batch, one of them rolling back
    def sweep() -> tuple[list, list]:
        with batched(max_items=1000, max_delay=60):
            for n in range(5):
                try:
                    with transaction.atomic():
                        send_to_group_on_commit("g.test", {"type": "ws.event",
                                                           "payload": {"n": n}})
                        task_on_commit(events_record, n)
                        if n == 2:
                            raise RuntimeError("rollback")
                except RuntimeError:
                    pass
            held = async_to_sync(listener)(), list(TASK_CALLS)
        return held

    during_events, during_tasks = await sync_to_async(sweep)()
    # then no event left before the batch ended (tasks are never held: each commit's are
    # queued at once), and afterwards every committed event once
    assert during_events == [] and sorted(a[0] for a, _ in during_tasks) == [0, 1, 3, 4]
    received = await listener()
    assert sorted(e["payload"]["n"] for e in received) == [0, 1, 3, 4]
    assert all(e["group"] == "g.test" for e in received)
    assert sorted(args[0] for args, _ in TASK_CALLS) == [0, 1, 3, 4]


@pytest.mark.django_db(transaction=True)
async def test_batched_sends_when_full(listener):
    def sweep() -> list:
        with batched(max_items=2, max_delay=60):
            for n in range(3):
                with transaction.atomic():
                    send_to_group_on_commit("g.test", {"type": "ws.event", "payload": {"n": n}})
            # the first two filled the batch and went out; the third waits for the end
            return async_to_sync(listener)()

    during = await sync_to_async(sweep)()
    # (sent concurrently: in either order)
    assert sorted(e["payload"]["n"] for e in during) == [0, 1]
    assert [e["payload"]["n"] for e in await listener()] == [2]


@pytest.mark.django_db(transaction=True)
def test_ids_tasks_carry_the_ids_of_many_commits_in_one_task_per_flush():
    TASK_CALLS.clear()
    # outside a batch: one task per commit, after the commit
    with transaction.atomic():
        ids_task_on_commit(events_record, ["a"])
        assert TASK_CALLS == []
    assert TASK_CALLS == [((["a"],), {})]

    # inside a batch: the committed ids wait for the flush and go out in one task; a
    # rolled-back transaction's ids never do
    TASK_CALLS.clear()
    with batched(max_items=1000, max_delay=60):
        for n in range(4):
            try:
                with transaction.atomic():
                    ids_task_on_commit(events_record, [f"{n}.1", f"{n}.2"])
                    if n == 1:
                        raise RuntimeError("rollback")
            except RuntimeError:
                pass
        assert TASK_CALLS == []
    assert TASK_CALLS == [((["0.1", "0.2", "2.1", "2.2", "3.1", "3.2"],), {})]

    # a full batch flushes at once (ids count toward max_items)
    TASK_CALLS.clear()
    with batched(max_items=3, max_delay=60):
        for n in range(3):
            with transaction.atomic():
                ids_task_on_commit(events_record, [str(n), f"{n}b"])
        assert [args[0] for args, _ in TASK_CALLS] == [["0", "0b", "1", "1b"]]
    assert [args[0] for args, _ in TASK_CALLS] == [["0", "0b", "1", "1b"], ["2", "2b"]]


@pytest.mark.django_db(transaction=True)
def test_batched_layer_outage_is_logged_not_raised(caplog, layer_down):
    with caplog.at_level(logging.WARNING, logger="biddt.events"):
        with batched():
            send_to_group_on_commit("user.y", {"type": "ws.event", "payload": {}})
    assert any("user.y" in r.getMessage() for r in caplog.records)
