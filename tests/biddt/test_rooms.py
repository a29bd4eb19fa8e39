"""The room hub: one layer membership per process and group, fanned out to local sockets."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import time

import pytest
import redis
import redis.exceptions
from channels.layers import channel_layers, get_channel_layer
from channels.testing import WebsocketCommunicator
from django.test import override_settings

from biddt import consumers, rooms
from biddt.asgi import application
from biddt.consumers import ws_handler
from tests.biddt.processes import RedisServer, _stop

# Synthetic `tick` payloads through the room hub: the transport, not the contract.
pytestmark = pytest.mark.synthetic_socket_messages


@pytest.fixture
def join_handler():
    """A throwaway `test_join` handler: joins the group named in the frame, then acks."""

    @ws_handler("test_join", auth=False)
    async def join(consumer, content):
        await consumer.group_join(content["group"])
        await consumer.send_json({"type": "ack", "group": content["group"]})

    @ws_handler("test_leave", auth=False)
    async def leave(consumer, content):
        await consumer.group_leave(content["group"])
        await consumer.send_json({"type": "ack", "group": content["group"]})

    yield
    consumers.HANDLERS.pop("test_join", None)
    consumers.HANDLERS.pop("test_leave", None)


async def _socket(group: str) -> WebsocketCommunicator:
    socket = WebsocketCommunicator(application, "/ws/")
    connected, _ = await socket.connect()
    assert connected
    await socket.send_json_to({"type": "test_join", "group": group})
    assert await socket.receive_json_from(timeout=5) == {"type": "ack", "group": group}
    return socket


def _event(n: int) -> dict:
    return {"type": "ws.event", "group": "room.t", "payload": {"type": "tick", "seq": n}}


@pytest.fixture
def in_memory_layer():
    """The in-memory layer, whose group table the test reads (with REDIS_URL set, the
    suite's layer is Redis)."""
    layers = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    channel_layers.backends = {}
    with override_settings(CHANNEL_LAYERS=layers):
        yield get_channel_layer()
    channel_layers.backends = {}


@pytest.mark.django_db(transaction=True)
async def test_sockets_of_one_process_share_one_membership_and_each_get_the_event(
        join_handler, in_memory_layer):
    layer = in_memory_layer
    # given three sockets of this process in one room
    sockets = [await _socket("room.t") for _ in range(3)]
    hub = rooms.hub()
    # then the layer knows one member for the room, the hub's channel
    assert list(layer.groups["room.t"]) == [hub.channel]
    # when one event is sent to the room
    await layer.group_send("room.t", _event(1))
    # then every socket gets it once
    for socket in sockets:
        assert await socket.receive_json_from(timeout=5) == {"type": "tick", "seq": 1}
        assert await socket.receive_nothing(timeout=0.1)
    # when two leave (one by unsubscribing, one by disconnecting)
    await sockets[0].send_json_to({"type": "test_leave", "group": "room.t"})
    assert (await sockets[0].receive_json_from(timeout=5))["type"] == "ack"
    await sockets[1].disconnect()
    await layer.group_send("room.t", _event(2))
    # then only the remaining one gets the next event
    assert await sockets[2].receive_json_from(timeout=5) == {"type": "tick", "seq": 2}
    assert await sockets[0].receive_nothing(timeout=0.2)
    # and when the last one leaves, the hub leaves the room and stops listening
    await sockets[2].disconnect()
    assert not layer.groups.get("room.t")
    assert hub.members == {} and hub._listener is None
    await sockets[0].disconnect()


@pytest.mark.django_db(transaction=True)
async def test_room_events_wait_for_the_answer_to_the_frame_being_handled(join_handler):
    layer = get_channel_layer()
    release = asyncio.Event()

    @ws_handler("test_slow", auth=False)
    async def slow(consumer, content):
        await release.wait()
        await consumer.send_json({"type": "ack", "slow": True})

    try:
        socket = await _socket("room.t")
        # given a frame being handled
        await socket.send_json_to({"type": "test_slow"})
        await asyncio.sleep(0.05)
        # when room events arrive meanwhile
        await layer.group_send("room.t", _event(1))
        await layer.group_send("room.t", _event(2))
        assert await socket.receive_nothing(timeout=0.2)
        release.set()
        # then the answer comes first, then the events in order
        assert await socket.receive_json_from(timeout=5) == {"type": "ack", "slow": True}
        assert (await socket.receive_json_from(timeout=5))["seq"] == 1
        assert (await socket.receive_json_from(timeout=5))["seq"] == 2
        await socket.disconnect()
    finally:
        consumers.HANDLERS.pop("test_slow", None)


def _redis_on(port: int, work_dir) -> RedisServer:
    process = subprocess.Popen(
        [shutil.which("redis-server"), "--port", str(port), "--bind", "127.0.0.1",
         "--save", "", "--appendonly", "no", "--dir", str(work_dir)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    server = RedisServer(port=port, process=process)
    deadline = time.monotonic() + 10
    while not server.is_up():
        assert time.monotonic() < deadline, "redis-server did not come back"
        time.sleep(0.05)
    return server


@pytest.mark.integration
@pytest.mark.django_db(transaction=True)
async def test_hub_rejoins_its_rooms_after_redis_restarts(join_handler, redis_server, tmp_path):
    # given a socket in a room, over a Redis layer on a throwaway redis-server
    server = redis_server()
    layers = {"default": {"BACKEND": "channels_redis.core.RedisChannelLayer",
                          "CONFIG": {"hosts": [server.url], "expiry": 10}}}
    with override_settings(CHANNEL_LAYERS=layers):
        channel_layers.backends = {}
        restarted = None
        try:
            layer = get_channel_layer()
            socket = await _socket("room.t")
            await layer.group_send("room.t", _event(1))
            assert (await socket.receive_json_from(timeout=5))["seq"] == 1
            # when Redis restarts empty (it keeps nothing on disk: the membership is gone)
            await asyncio.to_thread(server.stop)
            await asyncio.sleep(0.5)
            restarted = await asyncio.to_thread(_redis_on, server.port, tmp_path)
            # then the hub re-adds its room (the layer's group key is back) ...
            client = redis.Redis(port=server.port)
            deadline = time.monotonic() + 20
            while not await asyncio.to_thread(client.zrange, "asgi:group:room.t", 0, -1):
                assert time.monotonic() < deadline, "the hub did not rejoin its room"
                await asyncio.sleep(0.1)
            client.close()
            # ... and a later event reaches the socket that stayed open
            for _attempt in range(3):
                try:  # the sender's pooled connection may still be the dead one
                    await layer.group_send("room.t", _event(2))
                    break
                except redis.exceptions.ConnectionError:
                    continue
            received = await socket.receive_json_from(timeout=10)
            assert received == {"type": "tick", "seq": 2}
            await socket.disconnect()
        finally:
            if restarted is not None:
                await asyncio.to_thread(_stop, restarted.process)
            await asyncio.to_thread(server.stop)
            channel_layers.backends = {}
