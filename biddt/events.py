"""The one way to send side effects: after the surrounding transaction commits.

A rolled-back change tells no one: socket events, Celery tasks, pushes and e-mails all go
through `on_commit` here (STYLE.md rule 3). Outside a transaction Django runs the callback
at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

from asgiref.sync import SyncToAsync, async_to_sync
from channels.layers import InMemoryChannelLayer, get_channel_layer
from django.db import transaction
from redis.exceptions import ConnectionError as RedisConnectionError

logger = logging.getLogger(__name__)

SEND_TIMEOUT_SECONDS = 5.0


class _SenderLoop:
    """One event loop thread per process for channel-layer sends from plain sync code.

    `async_to_sync` from a thread without an ASGI loop above it (a Celery worker, a
    management command, a REST view on a thread of the WSGI server) starts a new event loop,
    and channels-redis a new Redis connection pool for it, on every call: about 8 ms a send,
    most of a closing sweep's time. This loop lives as long as the process (a forked child
    starts its own), so its pool is reused: from a WSGI thread a send costs 0.6 ms of the
    process's CPU against 3.9 ms with a new loop per call (measured on the loaded 2-core
    machine of the server switch, Redis local).
    """

    def __init__(self) -> None:
        self.pid = os.getpid()
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="biddt-events",
                                       daemon=True)
        self.thread.start()

    def run(self, coroutine: Awaitable[Any]) -> Any:
        future = asyncio.run_coroutine_threadsafe(coroutine, self.loop)
        try:
            return future.result(timeout=SEND_TIMEOUT_SECONDS)
        except TimeoutError:
            future.cancel()
            raise


_sender: _SenderLoop | None = None
_sender_lock = threading.Lock()


def _sender_loop() -> _SenderLoop:
    global _sender
    with _sender_lock:
        if _sender is None or _sender.pid != os.getpid():
            _sender = _SenderLoop()
        return _sender


def _in_asgi_thread() -> bool:
    """True in a sync thread that an ASGI event loop started (a view under the ASGI server of
    `make run`, a consumer's `database_sync_to_async` call): there `async_to_sync` runs on
    that loop, which is cheap."""
    loop = getattr(SyncToAsync.threadlocal, "main_event_loop", None)
    return (loop is not None and loop.is_running()
            and getattr(SyncToAsync.threadlocal, "main_event_loop_pid", None) == os.getpid())


def run_async(func: Callable[..., Awaitable[Any]], *args: Any) -> Any:
    """Run a channel-layer coroutine from sync code, on the cheapest loop available.

    The in-memory layer (tests, `make run` without Redis) keeps asyncio queues bound to the
    loop that uses them, so it never goes to the sender loop.
    """
    layer = get_channel_layer()
    if _in_asgi_thread() or isinstance(layer, InMemoryChannelLayer):
        return async_to_sync(func)(*args)
    return _sender_loop().run(func(*args))


def on_commit(func: Callable[[], Any]) -> None:
    transaction.on_commit(func, robust=True)


def group_send_now(group: str, event: dict[str, Any]) -> bool:
    """Send to a channel-layer group; a layer outage is logged, never raised to the caller.

    The row is the truth and clients resync by `seq`, so a lost socket event must not fail
    the request that already committed.
    """
    layer = get_channel_layer()
    if layer is None:
        return False
    for attempt in (1, 2):
        try:
            # The group travels with the event: a process's room hub fans it out to its sockets.
            run_async(layer.group_send, group, {**event, "group": group})
        except RedisConnectionError:
            # After a Redis restart the pool's idle connections are dead and the first use of
            # each fails ("Connection closed by server"); the pool reconnects, so try once
            # more, or the first room event after the recovery is lost (tests/chaos).
            if attempt == 1:
                continue
            logger.warning("channel layer send to %s failed", group, exc_info=True)
            return False
        except Exception:  # noqa: BLE001 - Redis down must not break a committed write
            logger.warning("channel layer send to %s failed", group, exc_info=True)
            return False
        return True
    return False


def send_to_group_on_commit(group: str,
                            event: dict[str, Any] | Callable[[], dict[str, Any]]) -> None:
    """Send `event` to the group after commit; a callable is rendered then, not now (keeps
    serializers out of a transaction that holds a hot row's lock)."""
    on_commit(lambda: _send_or_hold(group, event() if callable(event) else event))


def task_on_commit(task: Any, *args: Any, **kwargs: Any) -> None:
    """Queue a Celery task once the transaction commits (ids only, never model objects).

    Tasks are never held in a batch: a process killed after a commit loses at most the
    tasks of that one commit (tests/chaos/test_worker_kill.py)."""
    on_commit(lambda: task.apply_async(args=args, kwargs=kwargs))


def ids_task_on_commit(task: Any, ids: list[str]) -> None:
    """Queue `task(ids)` once the transaction commits. Inside `batched()`, the ids of many
    commits go out together, one task per flush.

    Only for a task whose lost ids a sweep finds again (notification delivery: rows without
    `delivery_handled_at` are re-queued by `notifications_redeliver`), since a process killed
    before the flush loses the hand-off of the whole batch; the rows, and the work, stay.
    """
    if not ids:
        return

    def hand_off() -> None:
        batch = getattr(_local, "batch", None)
        if batch is None:
            task.apply_async(args=(ids,))
        else:
            batch.hold_ids(task, ids)

    on_commit(hand_off)


# --- Batches: many small transactions, their side effects sent together -----------------

class _Batch:
    def __init__(self, max_items: int, max_delay: float) -> None:
        self.max_items, self.max_delay = max_items, max_delay
        self.sends: list[tuple[str, dict[str, Any]]] = []
        self.tasks: dict[str, tuple[Any, list[str]]] = {}  # name → (task, ids)
        self.since = time.monotonic()

    def hold_send(self, group: str, event: dict[str, Any]) -> None:
        self.sends.append((group, event))
        self._flush_if_full()

    def hold_ids(self, task: Any, ids: list[str]) -> None:
        self.tasks.setdefault(task.name, (task, []))[1].extend(ids)
        self._flush_if_full()

    def _flush_if_full(self) -> None:
        if self.full():
            self.flush()

    def full(self) -> bool:
        held = len(self.sends) + sum(len(ids) for _task, ids in self.tasks.values())
        return held >= self.max_items or time.monotonic() - self.since >= self.max_delay

    def flush(self) -> None:
        sends, self.sends, self.since = self.sends, [], time.monotonic()
        tasks, self.tasks = self.tasks, {}
        if sends:
            _group_send_many(sends)
        for task, ids in tasks.values():
            task.apply_async(args=(ids,))


_local = threading.local()


@contextlib.contextmanager
def batched(*, max_items: int = 200, max_delay: float = 0.25) -> Iterator[None]:
    """Hold the after-commit socket events of the transactions run inside, and the ids of
    `ids_task_on_commit` tasks, and send them together: every `max_items`, every `max_delay`
    seconds and at the end.

    For loops of small transactions (the closing sweep): the events of many commits go out
    concurrently on one loop instead of one round trip after another, and one delivery
    task carries the notifications of many closes. Only committed work is held (the holding
    happens in the commit hooks). A crash loses at most one batch: events are best effort
    (the rows are the truth; clients resync by seq), and lost delivery ids are found again
    by their sweep. Other Celery tasks are not held (see task_on_commit).
    """
    outer = getattr(_local, "batch", None)
    if outer is not None:  # nested: the outer batch sends
        yield
        return
    batch = _local.batch = _Batch(max_items, max_delay)
    try:
        yield
    finally:
        _local.batch = None
        batch.flush()


def _send_or_hold(group: str, event: dict[str, Any]) -> None:
    batch = getattr(_local, "batch", None)
    if batch is None:
        group_send_now(group, event)
    else:
        batch.hold_send(group, event)


SEND_CONCURRENCY = 32


def _group_send_many(sends: list[tuple[str, dict[str, Any]]]) -> None:
    layer = get_channel_layer()
    if layer is None:
        return

    async def send_all() -> list:
        gate = asyncio.Semaphore(SEND_CONCURRENCY)

        async def one(group: str, event: dict[str, Any]) -> None:
            async with gate:
                await layer.group_send(group, {**event, "group": group})

        return await asyncio.gather(*(one(g, e) for g, e in sends), return_exceptions=True)

    try:
        results = run_async(send_all)
    except Exception:  # noqa: BLE001 - as group_send_now: logged, never raised
        logger.warning("channel layer batch of %d sends failed", len(sends), exc_info=True)
        return
    failed = [(g, e) for (g, e), r in zip(sends, results, strict=True)
              if isinstance(r, BaseException)]
    # A dead pooled connection after a Redis restart fails once: one more try each.
    for group, event in failed:
        group_send_now(group, event)
