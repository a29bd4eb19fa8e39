"""The `/ws/` endpoint: token auth, the envelope, errors and channel-layer events."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from asgiref.sync import sync_to_async
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.db import connections
from django.utils import timezone
from rest_framework_simplejwt.tokens import AccessToken, RefreshToken

from biddt import consumers
from biddt.asgi import application
from biddt.consumers import CLOSE_BAD_TOKEN, MAX_FRAME_BYTES, WSError, ws_handler
from biddt.events import group_send_now
from tests.factories import UserFactory

db = pytest.mark.django_db(transaction=True)
# A test handler answers an `ack` with fields of its own: transport tests, not the contract.
pytestmark = pytest.mark.synthetic_socket_messages


@pytest.fixture(autouse=True)
async def _close_thread_connections():
    # The communicator never closes the connections its DB thread opened; close them so the
    # test database can be flushed and dropped (PostgreSQL refuses while they are open).
    yield
    await sync_to_async(connections.close_all)()


@pytest.fixture
def secret_handler():
    """A throwaway `auth=True` handler `test_secret` that acks with the user's id."""

    calls = []

    @ws_handler("test_secret", auth=True)
    async def handle(consumer, content):
        calls.append(content)
        await consumer.send_json({"type": "ack", "requestId": content.get("requestId"),
                                  "userId": str(consumer.user.pk)})

    try:
        yield calls
    finally:
        consumers.HANDLERS.pop("test_secret", None)


@pytest.fixture
def failing_handlers():
    @ws_handler("test_domain_error", auth=False)
    async def domain_error(consumer, content):
        raise WSError("listing_not_active", "The auction is over.", listingId="L1")

    @ws_handler("test_crash", auth=False)
    async def crash(consumer, content):
        raise RuntimeError("boom")

    try:
        yield
    finally:
        consumers.HANDLERS.pop("test_domain_error", None)
        consumers.HANDLERS.pop("test_crash", None)


async def make_user(**kwargs):
    return await database_sync_to_async(UserFactory)(**kwargs)


@database_sync_to_async
def access_for(user) -> str:
    # for_user records an OutstandingToken row (blacklist app), hence the DB thread.
    return str(RefreshToken.for_user(user).access_token)


async def finish_refused(communicator) -> None:
    # As a server would after the refusal: tell the app the socket is gone, let it end.
    await communicator.send_input({"type": "websocket.disconnect", "code": CLOSE_BAD_TOKEN})
    await communicator.wait()


async def open_socket(path="/ws/", headers=None):
    communicator = WebsocketCommunicator(application, path, headers=headers or [])
    connected, detail = await communicator.connect()
    return communicator, connected, detail


# --- Authentication ----------------------------------------------------------------------


@db
async def test_bearer_header_connects_and_ping_pongs(secret_handler):
    # given a user and a socket authenticated with an Authorization header
    user = await make_user()
    communicator, connected, _ = await open_socket(
        headers=[(b"authorization", f"Bearer {await access_for(user)}".encode())]
    )
    assert connected
    # when the client pings and then sends an auth-only message
    await communicator.send_json_to({"type": "ping"})
    pong = await communicator.receive_json_from()
    await communicator.send_json_to({"type": "test_secret", "requestId": "r1"})
    ack = await communicator.receive_json_from()
    # then it gets a pong and the handler ran as that user
    assert pong == {"type": "pong"}
    assert ack == {"type": "ack", "requestId": "r1", "userId": str(user.pk)}
    assert len(secret_handler) == 1
    await communicator.disconnect()


@db
async def test_query_string_token_connects_and_ping_pongs(secret_handler):
    # given a socket authenticated with ?token=
    user = await make_user()
    communicator, connected, _ = await open_socket(f"/ws/?token={await access_for(user)}")
    assert connected
    # when the client pings and sends an auth-only message
    await communicator.send_json_to({"type": "ping"})
    pong = await communicator.receive_json_from()
    await communicator.send_json_to({"type": "test_secret"})
    ack = await communicator.receive_json_from()
    # then both are answered for that user
    assert pong == {"type": "pong"}
    assert ack["type"] == "ack"
    assert ack["userId"] == str(user.pk)
    await communicator.disconnect()


async def test_no_token_connects_as_anonymous(secret_handler):
    # given a socket without any token
    communicator, connected, _ = await open_socket()
    assert connected
    # when it pings, then sends a message that needs a user
    await communicator.send_json_to({"type": "ping"})
    pong = await communicator.receive_json_from()
    await communicator.send_json_to({"type": "test_secret", "requestId": "abc"})
    error = await communicator.receive_json_from()
    # then ping works, the auth-only message is refused and its handler never ran
    assert pong == {"type": "pong"}
    assert error["type"] == "error"
    assert error["code"] == "not_authenticated"
    assert error["requestId"] == "abc"
    assert error["detail"]
    assert secret_handler == []
    await communicator.disconnect()


def _expired_token(user) -> str:
    token = RefreshToken.for_user(user).access_token
    token.set_exp(from_time=timezone.now() - timedelta(hours=1))
    return str(token)


def _foreign_signed_token(user) -> str:
    token = AccessToken.for_user(user)
    header, payload, signature = str(token).split(".")
    return f"{header}.{payload}.{signature[::-1]}"


@db
@pytest.mark.parametrize(
    "make_token",
    [
        pytest.param(lambda user: "not-a-jwt", id="garbage"),
        pytest.param(_expired_token, id="expired"),
        pytest.param(_foreign_signed_token, id="bad-signature"),
        pytest.param(lambda user: str(RefreshToken.for_user(user)), id="refresh-not-access"),
    ],
)
@pytest.mark.parametrize("where", ["header", "query"])
async def test_bad_token_is_refused_with_4401(make_token, where):
    # given a token that must not authenticate
    user = await make_user()
    token = await database_sync_to_async(make_token)(user)
    # when the client opens the socket with it
    if where == "header":
        result = await open_socket(headers=[(b"authorization", f"Bearer {token}".encode())])
    else:
        result = await open_socket(f"/ws/?token={token}")
    communicator, connected, code = result
    # then the handshake is refused with 4401
    assert connected is False
    assert code == CLOSE_BAD_TOKEN == 4401
    await finish_refused(communicator)


@db
async def test_token_of_inactive_user_is_refused():
    # given a valid token whose user has since been deactivated
    user = await make_user()
    token = await access_for(user)
    user.is_active = False
    await database_sync_to_async(user.save)(update_fields=["is_active"])
    # when the client connects with it
    communicator, connected, code = await open_socket(f"/ws/?token={token}")
    # then the handshake is refused
    assert (connected, code) == (False, 4401)
    await finish_refused(communicator)


@pytest.mark.parametrize("value", [b"Basic dXNlcjpwdw==", b"Bearer ", b"Bearer"])
async def test_malformed_authorization_header_is_refused(value):
    # given an Authorization header that is present but carries no bearer token
    # when the client connects
    communicator, connected, code = await open_socket(headers=[(b"authorization", value)])
    # then it is refused rather than silently treated as anonymous
    assert (connected, code) == (False, 4401)
    await finish_refused(communicator)


# --- Envelope and errors -----------------------------------------------------------------


async def test_unknown_type_echoes_request_id():
    # given an anonymous socket
    communicator, connected, _ = await open_socket()
    assert connected
    # when it sends a type nobody handles, with a requestId
    await communicator.send_json_to({"type": "teleport", "requestId": "req-7"})
    error = await communicator.receive_json_from()
    # then it gets unknown_type with that requestId
    assert error["type"] == "error"
    assert error["code"] == "unknown_type"
    assert error["requestId"] == "req-7"
    assert "teleport" in error["detail"]
    await communicator.disconnect()


@pytest.mark.parametrize("content", [{"requestId": "x"}, {"type": 5}, {"type": None}])
async def test_missing_or_non_string_type_is_unknown(content):
    communicator, _, _ = await open_socket()
    # when the object has no usable type
    await communicator.send_json_to(content)
    error = await communicator.receive_json_from()
    # then it is unknown_type
    assert error["code"] == "unknown_type"
    await communicator.disconnect()


UNDECODABLE_FRAMES = [
    "{not json", "", '{"type": "ping"', "[" * 5000 + "]" * 5000,
    '{"type": "ping", "x": ' + "[" * 990 + "]" * 990 + "}", '{"type": "ping", "n": 1e999}',
    '{"type": "ping", "n": NaN}', '{"type": "ping", "n": ' + "9" * 5000 + "}",
]


async def test_frames_that_cannot_be_decoded_are_parse_error():
    # given an open socket (one for all frames: it must stay usable after each)
    communicator, _, _ = await open_socket()
    for frame in UNDECODABLE_FRAMES:
        # when the client sends text the decoder can't take (malformed, nested past the
        # decoder's recursion limit, a non-finite or oversized number)
        await communicator.send_input({"type": "websocket.receive", "text": frame})
        error = await communicator.receive_json_from()
        # then it gets parse_error and the socket stays usable
        assert (error["type"], error["code"]) == ("error", "parse_error"), frame[:40]
        assert "requestId" not in error
        await communicator.send_json_to({"type": "ping"})
        assert await communicator.receive_json_from() == {"type": "pong"}
    await communicator.disconnect()


async def test_frames_that_are_not_json_objects_are_invalid_message():
    communicator, _, _ = await open_socket()
    for frame in ["[1, 2]", '"ping"', "42", "[" * 500 + "]" * 500]:
        # when the client sends JSON that is not an object
        await communicator.send_input({"type": "websocket.receive", "text": frame})
        error = await communicator.receive_json_from()
        # then it gets invalid_message and the socket stays usable
        assert error["type"] == "error"
        assert error["code"] == "invalid_message"
        assert "requestId" not in error
        await communicator.send_json_to({"type": "ping"})
        assert await communicator.receive_json_from() == {"type": "pong"}
    await communicator.disconnect()


async def test_binary_frame_is_invalid_message():
    communicator, _, _ = await open_socket()
    # when the client sends a binary frame, even one holding JSON
    await communicator.send_to(bytes_data=b'{"type": "ping"}')
    error = await communicator.receive_json_from()
    # then it is refused as invalid_message
    assert error["code"] == "invalid_message"
    await communicator.disconnect()


def _ping_frame(size: int, pad_char: str = "x") -> str:
    """A `ping` frame of exactly `size` bytes in UTF-8."""
    empty = json.dumps({"type": "ping", "pad": ""}, ensure_ascii=False)
    char_bytes = len(pad_char.encode())
    room = size - len(empty.encode())
    assert room % char_bytes == 0
    frame = json.dumps({"type": "ping", "pad": pad_char * (room // char_bytes)},
                       ensure_ascii=False)
    assert len(frame.encode()) == size
    return frame


async def test_frame_at_the_limit_is_processed():
    communicator, _, _ = await open_socket()
    # when a frame of exactly MAX_FRAME_BYTES arrives
    await communicator.send_to(text_data=_ping_frame(MAX_FRAME_BYTES))
    # then it is handled normally
    assert await communicator.receive_json_from() == {"type": "pong"}
    await communicator.disconnect()


@pytest.mark.parametrize(
    "frame",
    [
        pytest.param(_ping_frame(MAX_FRAME_BYTES + 1), id="ascii"),
        pytest.param("x" * (MAX_FRAME_BYTES * 4), id="huge-not-json"),
        # 6,000 characters but 18,000+ bytes: the limit is in bytes, as documented.
        pytest.param(json.dumps({"type": "ping", "pad": "\u20ac" * 6000}, ensure_ascii=False),
                     id="multibyte"),
    ],
)
async def test_oversize_frame_is_message_too_large(frame):
    assert len(frame.encode()) > MAX_FRAME_BYTES
    communicator, _, _ = await open_socket()
    # when the client sends a frame over the limit
    await communicator.send_to(text_data=frame)
    error = await communicator.receive_json_from()
    # then it gets message_too_large, nothing else, and the socket stays open
    assert error["type"] == "error"
    assert error["code"] == "message_too_large"
    assert await communicator.receive_nothing()
    await communicator.send_json_to({"type": "ping"})
    assert await communicator.receive_json_from() == {"type": "pong"}
    await communicator.disconnect()


async def test_handler_errors_become_error_frames(failing_handlers, caplog):
    communicator, _, _ = await open_socket()
    # when a handler raises a domain error, then another one crashes
    await communicator.send_json_to({"type": "test_domain_error", "requestId": 1})
    domain = await communicator.receive_json_from()
    await communicator.send_json_to({"type": "test_crash", "requestId": 2})
    crash = await communicator.receive_json_from()
    # then the domain error keeps its code and extras; the crash is a generic server_error
    assert domain == {"type": "error", "code": "listing_not_active",
                      "detail": "The auction is over.", "listingId": "L1", "requestId": 1}
    assert crash["code"] == "server_error"
    assert crash["requestId"] == 2
    assert "boom" not in crash["detail"]
    assert any("test_crash" in r.getMessage() for r in caplog.records)
    # and the socket still answers
    await communicator.send_json_to({"type": "ping"})
    assert await communicator.receive_json_from() == {"type": "pong"}
    await communicator.disconnect()


# --- Channel-layer events ----------------------------------------------------------------


@db
async def test_authenticated_socket_receives_its_user_group_events():
    # given two users, each with a socket, and an anonymous socket
    user, other = await make_user(), await make_user()
    mine, _, _ = await open_socket(f"/ws/?token={await access_for(user)}")
    theirs, _, _ = await open_socket(f"/ws/?token={await access_for(other)}")
    anonymous, _, _ = await open_socket()
    payload = {"type": "notification", "notification": {"id": "n1", "kind": "outbid"}}
    # when an event is sent to the first user's group
    sent = await sync_to_async(group_send_now)(f"user.{user.pk}",
                                               {"type": "ws.event", "payload": payload})
    # then exactly that user's socket gets the payload as is
    assert sent is True
    assert await mine.receive_json_from() == payload
    assert await mine.receive_nothing()
    assert await theirs.receive_nothing()
    assert await anonymous.receive_nothing()
    for communicator in (mine, theirs, anonymous):
        await communicator.disconnect()


@db
async def test_ws_close_event_ends_the_users_sockets():
    # given an authenticated socket
    user = await make_user()
    communicator, _, _ = await open_socket(f"/ws/?token={await access_for(user)}")
    # when the server asks the user's group to close (e.g. account suspended)
    await sync_to_async(group_send_now)(f"user.{user.pk}", {"type": "ws.close"})
    output = await communicator.receive_output(timeout=5)
    # then the socket is closed with 4403
    assert output == {"type": "websocket.close", "code": 4403}
    await communicator.disconnect()


def test_a_throttled_refusal_on_the_socket_carries_retry_after():
    # given a REST throttle refusal (the chat flood limit raises DRF's Throttled)
    from rest_framework.exceptions import Throttled

    # when it becomes a socket error
    error = WSError.from_api_exception(Throttled(wait=37))
    # then the frame says when to come back, as the bid throttle's does (AsyncAPI `retryAfter`)
    assert (error.code, error.extra) == ("throttled", {"retryAfter": 37})
