"""The one way to send side effects: after the surrounding transaction commits.

A rolled-back change tells no one: socket events, Celery tasks, pushes and e-mails all go
through `on_commit` here (STYLE.md rule 3). Outside a transaction Django runs the callback
at once.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
from collections.abc import Callable
from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import InMemoryChannelLayer, get_channel_layer
from django.db import transaction

logger = logging.getLogger(__name__)
SEND_TIMEOUT_SECONDS = 5.0

_loop: asyncio.AbstractEventLoop | None = None
_loop_pid: int | None = None
_loop_lock = threading.Lock()


def _background_loop() -> asyncio.AbstractEventLoop:
    """One event loop per process, on a daemon thread, for channel-layer sends from sync code.

    `async_to_sync` from a thread with no event loop (a Celery worker, the sweep) starts a new
    loop per call, and channels-redis keeps its connection pool per loop: every send would
    open a Redis connection. Sending on one long-lived loop reuses the pool. Made lazily and
    again after a fork (Celery's prefork pool).
    """
    global _loop, _loop_pid
    with _loop_lock:
        if _loop is None or _loop_pid != os.getpid() or _loop.is_closed():
            loop = asyncio.new_event_loop()
            threading.Thread(target=loop.run_forever, name="biddt-channel-layer",
                             daemon=True).start()
            _loop, _loop_pid = loop, os.getpid()
        return _loop


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
    try:
        if isinstance(layer, InMemoryChannelLayer):
            # Its queues belong to the caller's loop (tests, `make run`): stay on it.
            async_to_sync(layer.group_send)(group, event)
        else:
            future = asyncio.run_coroutine_threadsafe(layer.group_send(group, event),
                                                      _background_loop())
            try:
                future.result(timeout=SEND_TIMEOUT_SECONDS)
            except TimeoutError:
                future.cancel()
                raise
    except Exception:  # noqa: BLE001 - Redis down must not break a committed write
        logger.warning("channel layer send to %s failed", group, exc_info=True)
        return False
    return True


def send_to_group_on_commit(group: str, event: dict[str, Any]) -> None:
    on_commit(lambda: group_send_now(group, event))


def task_on_commit(task: Any, *args: Any, **kwargs: Any) -> None:
    """Queue a Celery task once the transaction commits (ids only, never model objects)."""
    on_commit(lambda: task.apply_async(args=args, kwargs=kwargs))
