"""The one WebSocket endpoint, `/ws/`: a thin consumer that switches on `type`.

Each app contributes handlers (listing rooms, chat) that validate input and call services
through `database_sync_to_async`; this module owns the envelope, auth and errors. Handlers
are registered in `HANDLERS` below as `type -> coroutine(consumer, content)`.
"""

from __future__ import annotations

import contextlib
import logging
import math
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any

from autobahn.exception import Disconnected
from channels.consumer import get_handler_name
from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from rest_framework.exceptions import APIException

from biddt.metrics import SOCKETS_OPEN
from biddt.parsers import UndecodableJSON, json_loads
from biddt.rooms import hub
from biddt.socket_messages import ERROR, PONG

logger = logging.getLogger(__name__)

CLOSE_BAD_TOKEN = 4401
CLOSE_SUSPENDED = 4403
Handler = Callable[["BiddtConsumer", dict[str, Any]], Awaitable[None]]
# type -> (handler, needs an authenticated user)
HANDLERS: dict[str, tuple[Handler, bool]] = {}
# Checks of the account run before every message of an authenticated socket but `ping`
# (sync, in a database thread; an APIException refuses the message and closes the socket).
# The accounts app connects its suspension policy here (accounts.consumers): the socket's
# user was read when it opened, and a suspension's `ws.close` can be lost in a Redis outage.
AccountGuard = Callable[[Any], None]
ACCOUNT_GUARDS: list[AccountGuard] = []
MAX_FRAME_BYTES = 16 * 1024
# Room events held while a frame is handled (a bid takes milliseconds; this is a bound).
HELD_EVENTS = 100
# Refusals worth a log line (oversized frames, flooding), unlike a client's ordinary mistakes.
ABUSE_CODES = frozenset({"message_too_large", "throttled"})


def ws_handler(message_type: str, *, auth: bool) -> Callable[[Handler], Handler]:
    def register(func: Handler) -> Handler:
        HANDLERS[message_type] = (func, auth)
        return func

    return register


def ws_account_guard(func: AccountGuard) -> AccountGuard:
    if func not in ACCOUNT_GUARDS:
        ACCOUNT_GUARDS.append(func)
    return func


class WSError(Exception):
    """Raised by a handler to answer `{type: 'error', code, detail}`."""

    def __init__(self, code: str, detail: str, **extra: Any) -> None:
        super().__init__(detail)
        self.code, self.detail, self.extra = code, detail, extra

    @classmethod
    def from_api_exception(cls, exc: APIException, **extra: Any) -> WSError:
        """The REST error as a socket error: same code, same detail (the first one); a
        throttled one says when to come back (`retryAfter`, seconds), as REST's Retry-After."""
        wait = getattr(exc, "wait", None)
        if wait is not None and "retryAfter" not in extra:
            extra["retryAfter"] = max(1, math.ceil(wait))
        detail: Any = exc.detail
        while isinstance(detail, dict | list):
            detail = next(iter(detail.values())) if isinstance(detail, dict) else detail[0]
        return cls(str(getattr(detail, "code", None) or exc.default_code), str(detail), **extra)


def db_sync_to_async(func: Callable) -> Callable:
    """`database_sync_to_async` on the event loop's thread pool.

    Channels' default (thread_sensitive) runs every socket's database call on one shared
    thread per process: with many sockets, a subscribe waits behind all the others, and
    daphne drops handshakes that wait too long (found by bench_soak). Each call still opens
    and closes (or takes from the pool and returns) its connection.
    """
    return database_sync_to_async(func, thread_sensitive=False)


@db_sync_to_async
def _account_check(user) -> None:
    try:
        for guard in ACCOUNT_GUARDS:
            guard(user)
    except APIException as exc:
        raise WSError.from_api_exception(exc) from None


class BiddtConsumer(AsyncJsonWebsocketConsumer):
    # A socket has no channel of its own: everything it gets from the layer comes through
    # its process's room hub (biddt/rooms.py). Channels finds no layer under this alias, so
    # it opens none, and a Redis outage doesn't end every socket (the hub reconnects and
    # re-adds its rooms; clients resync by seq).
    channel_layer_alias = "biddt.rooms-only"

    async def dispatch(self, message: dict[str, Any]) -> None:
        # Channels closes stale DB connections before every message, through that one shared
        # thread; our database calls close their own (db_sync_to_async), so skip the hop.
        handler = getattr(self, get_handler_name(message), None)
        if handler is None:
            raise ValueError(f"No handler for message type {message['type']}")
        await handler(message)

    async def connect(self) -> None:
        self.user = self.scope["user"]
        self.groups_joined: set[str] = set()
        self._handling = False
        self._held: deque[str] = deque(maxlen=HELD_EVENTS)
        self.refused = bool(self.scope.get("auth_error"))
        if self.scope.get("auth_error") == "account_suspended":
            # Accepted only to be closed: a close before accept reaches the client as an
            # HTTP 403, while 4403 tells the app that a new token won't help (unlike 4401).
            await self.accept()
            await self.close(code=CLOSE_SUSPENDED)
            return
        if self.refused:
            await self.close(code=CLOSE_BAD_TOKEN)
            return
        await self.accept()
        SOCKETS_OPEN.inc()
        self.counted = True
        if self.user.is_authenticated:
            await self.group_join(f"user.{self.user.pk}")

    async def disconnect(self, code: int) -> None:
        if getattr(self, "counted", False):
            SOCKETS_OPEN.dec()
            self.counted = False
        for group in list(getattr(self, "groups_joined", ())):
            await self.group_leave(group)

    # Groups go through the process's room hub (biddt/rooms.py): one layer subscription per
    # process and group, however many local sockets are in it.
    async def group_join(self, group: str) -> None:
        if group not in self.groups_joined:
            await hub().join(group, self)
            self.groups_joined.add(group)

    async def group_leave(self, group: str) -> None:
        if group in self.groups_joined:
            self.groups_joined.discard(group)
            await hub().leave(group, self)

    async def receive(self, text_data=None, bytes_data=None, **kwargs):
        if self.refused:  # a frame that raced the close of a refused socket
            return
        if bytes_data is not None or text_data is None:
            await self.send_error(None, "invalid_message", "Send JSON text frames.")
            return
        # The limit is in bytes: count characters first (cheap, and a UTF-8 character is at
        # least one byte), then the encoded size (up to 4 bytes a character).
        if len(text_data) > MAX_FRAME_BYTES or len(text_data.encode("utf-8")) > MAX_FRAME_BYTES:
            await self.send_error(None, "message_too_large",
                                  f"Frames are limited to {MAX_FRAME_BYTES} bytes.")
            return
        try:
            content = await self.decode_json(text_data)
        except UndecodableJSON:
            # As a REST body the parser can't take: `parse_error`, and the socket stays open.
            await self.send_error(None, "parse_error", "The frame is not valid JSON.")
            return
        await self.receive_json(content)

    @classmethod
    async def decode_json(cls, text_data):
        return json_loads(text_data)

    async def receive_json(self, content: Any, **kwargs) -> None:
        # Room events that arrive while a frame is handled wait for its answer: a bidder
        # gets the `ack` before the room's `bid_placed`, a subscriber `subscribed` before
        # the events that followed its snapshot (as with one channel per socket).
        self._handling = True
        try:
            await self._handle_json(content)
        finally:
            while self._held:
                await self.send(text_data=self._held.popleft())
            self._handling = False

    async def deliver(self, text: str) -> None:
        """A room event from the hub, encoded: now, or after the frame being handled."""
        if self._handling:
            if len(self._held) == self._held.maxlen:
                logger.warning("socket of user %s: held room events overflowed; oldest "
                               "dropped", getattr(self.user, "pk", None))
            self._held.append(text)
        else:
            await self.send(text_data=text)

    async def _handle_json(self, content: Any) -> None:
        if not isinstance(content, dict):
            await self.send_error(None, "invalid_message", "Send a JSON object with a 'type'.")
            return
        request_id = content.get("requestId")
        message_type = content.get("type")
        if message_type == "ping":
            await self.send_json(PONG.build())
            return
        entry = HANDLERS.get(message_type) if isinstance(message_type, str) else None
        if entry is None:
            await self.send_error(request_id, "unknown_type",
                                  f"Unknown message type {message_type!r}.")
            return
        handler, needs_auth = entry
        if needs_auth and not self.user.is_authenticated:
            await self.send_error(request_id, "not_authenticated",
                                  "Authenticate the socket to send this message.")
            return
        if self.user.is_authenticated and ACCOUNT_GUARDS:
            try:
                await _account_check(self.user)
            except WSError as err:
                await self.send_error(request_id, err.code, err.detail, **err.extra)
                self.refused = True
                await self.close(code=CLOSE_SUSPENDED)
                return
        try:
            await handler(self, content)
        except WSError as err:
            await self.send_error(request_id, err.code, err.detail, **err.extra)
        except Disconnected:
            # The client left while its frame was handled: nobody to answer.
            logger.debug("socket closed before the answer to %s", message_type)
        except Exception:
            logger.exception("socket handler %s failed", message_type)
            with contextlib.suppress(Disconnected):
                await self.send_error(request_id, "server_error", "Something went wrong.")

    async def send_error(self, request_id: Any, code: str, detail: str, **extra: Any) -> None:
        if code in ABUSE_CODES:
            logger.warning("socket frame refused (%s) for user %s", code,
                           getattr(getattr(self, "user", None), "pk", None))
        if request_id is not None:
            extra["requestId"] = request_id
        await self.send_json(ERROR.build(code=code, detail=detail, **extra))

    # Channel-layer events: `{"type": "ws.event", "payload": {...}}` goes to the client as is
    # (the room hub writes room events itself, encoded once; this serves direct sends).
    async def ws_event(self, event: dict[str, Any]) -> None:
        await self.send_json(event["payload"])

    # `{"type": "ws.close"}`: the server ends this user's sockets (e.g. account suspended).
    async def ws_close(self, event: dict[str, Any]) -> None:
        await self.close(code=event.get("code", CLOSE_SUSPENDED))
