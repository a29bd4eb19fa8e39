"""The one way to send side effects: after the surrounding transaction commits.

A rolled-back change tells no one: socket events, Celery tasks, pushes and e-mails all go
through `on_commit` here (STYLE.md rule 3). Outside a transaction Django runs the callback
at once.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import transaction

logger = logging.getLogger(__name__)


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
        async_to_sync(layer.group_send)(group, event)
    except Exception:  # noqa: BLE001 - Redis down must not break a committed write
        logger.warning("channel layer send to %s failed", group, exc_info=True)
        return False
    return True


def send_to_group_on_commit(group: str, event: dict[str, Any]) -> None:
    on_commit(lambda: group_send_now(group, event))


def task_on_commit(task: Any, *args: Any, **kwargs: Any) -> None:
    """Queue a Celery task once the transaction commits (ids only, never model objects)."""
    on_commit(lambda: task.apply_async(args=args, kwargs=kwargs))
