"""One channel-layer subscription per process and group, fanned out to local sockets.

With one channel per socket, a room event to 2,000 sockets on one daphne is 2,000 messages
pushed to Redis and 2,000 round trips to pop them again, all on daphne's one event loop
(about 1 ms each: bench_fanout measured p99 ~5 s). Here each process (each event loop, in
fact) has one hub channel; the first local socket that joins a group adds the hub to the
group in the layer, the last one to leave removes it. An event arrives once per process and
is encoded once, then written to every local socket in the group.

What the layer still bounds: `capacity` and `expiry` apply to the hub's channel, so a process
that falls behind drops old room events (clients resync by `seq`). The hub re-adds its
groups after a layer error (a restarted Redis has forgotten them) and before
`group_expiry` runs out, so a long-lived room isn't silently dropped.
"""

from __future__ import annotations

import asyncio
import json
import logging
import weakref
from typing import TYPE_CHECKING, Any

from channels.layers import get_channel_layer

if TYPE_CHECKING:
    from biddt.consumers import BiddtConsumer

logger = logging.getLogger(__name__)

RETRY_SECONDS = (0.2, 0.5, 1.0, 2.0, 5.0)
FLUSH_EVERY = 100


class RoomHub:
    def __init__(self, layer: Any) -> None:
        self.layer = layer
        self.channel: str | None = None
        self.members: dict[str, set[BiddtConsumer]] = {}
        self._listener: asyncio.Task | None = None
        self._refresher: asyncio.Task | None = None
        self._lock = asyncio.Lock()

    async def _start(self) -> None:
        if self.channel is None:
            # The default prefix: channels_redis reads a process's local channels from one
            # Redis key named by the prefix (`specific.<client>!`) and only its consumers pop
            # it; a `rooms.` channel was read only when the hub won the receive lock, so room
            # events expired unread under sockets (found by bench_soak).
            self.channel = await self.layer.new_channel()
        if self._listener is None or self._listener.done():
            self._listener = asyncio.create_task(self._listen(), name="biddt-room-hub")
        expiry = getattr(self.layer, "group_expiry", None)
        if expiry and (self._refresher is None or self._refresher.done()):
            self._refresher = asyncio.create_task(self._refresh(max(1.0, expiry / 2)))

    def stop(self) -> None:
        for task in (self._listener, self._refresher):
            if task is not None:
                task.cancel()
        self._listener = self._refresher = None

    async def join(self, group: str, consumer: BiddtConsumer) -> None:
        async with self._lock:
            await self._start()
            # Added to the layer before the socket counts as a member: an event sent right
            # after `subscribed` must not be missed. Even when local sockets are already in
            # the group: a restarted Redis has forgotten it, and waiting for the listener's
            # re-add lost the first events after the recovery (tests/chaos). Idempotent.
            await self.layer.group_add(group, self.channel)
            local = self.members.setdefault(group, set())
            local.add(consumer)

    async def leave(self, group: str, consumer: BiddtConsumer) -> None:
        async with self._lock:
            local = self.members.get(group)
            if local is None:
                return
            local.discard(consumer)
            if not local:
                del self.members[group]
                try:
                    await self.layer.group_discard(group, self.channel)
                except Exception:  # noqa: BLE001 - membership expires on its own
                    logger.warning("room hub: group_discard %s failed", group, exc_info=True)
            if not self.members:
                # No local socket left in any group: nothing to listen for.
                self.stop()

    async def _rejoin_all(self) -> None:
        for group in list(self.members):
            await self.layer.group_add(group, self.channel)

    async def _refresh(self, every: float) -> None:
        while True:
            await asyncio.sleep(every)
            try:
                await self._rejoin_all()
            except Exception:  # noqa: BLE001 - the listener's recovery re-adds them too
                logger.warning("room hub: refreshing memberships failed", exc_info=True)

    async def _listen(self) -> None:
        failures = 0
        while True:
            try:
                message = await self.layer.receive(self.channel)
            except Exception:  # noqa: BLE001 - Redis down: wait, then re-add the groups
                # redis-py may turn a cancelled read into a ConnectionError: a cancelled
                # listener must stop, not retry.
                if asyncio.current_task().cancelling():
                    raise asyncio.CancelledError from None
                logger.warning("room hub: channel layer receive failed", exc_info=True)
                await asyncio.sleep(RETRY_SECONDS[min(failures, len(RETRY_SECONDS) - 1)])
                failures += 1
                try:
                    await self._rejoin_all()
                except Exception:  # noqa: BLE001 - still down; the next round retries
                    if asyncio.current_task().cancelling():
                        raise asyncio.CancelledError from None
                continue
            failures = 0
            await self.deliver(message)

    async def deliver(self, message: dict[str, Any]) -> None:
        local = self.members.get(message.get("group", ""))
        if not local:
            return
        text = None
        if message.get("type") == "ws.event":
            text = json.dumps(message["payload"])
        for n, consumer in enumerate(list(local), 1):
            try:
                if text is not None:
                    await consumer.deliver(text)
                else:
                    await consumer.dispatch(message)
            except Exception:  # noqa: BLE001 - one closed socket must not stop the room
                logger.debug("room hub: delivery to a socket failed", exc_info=True)
            if n % FLUSH_EVERY == 0:
                # Let the reactor write what is queued: the first sockets get the event
                # while the rest are still being served (writes leave when the loop turns).
                await asyncio.sleep(0)


_hubs: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, RoomHub] = (
    weakref.WeakKeyDictionary())


def hub() -> RoomHub:
    """This event loop's hub (daphne has one loop per process; tests have one per test)."""
    loop = asyncio.get_running_loop()
    layer = get_channel_layer()
    current = _hubs.get(loop)
    if current is None or current.layer is not layer:
        if current is not None:
            current.stop()
        current = _hubs[loop] = RoomHub(layer)
    return current
