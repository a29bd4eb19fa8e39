"""One suspension policy on every write path (`accounts.policies.ensure_active`).

The walks enumerate what they cover, so a new entry point can't be missed:
- REST: every non-GET method of every `/v1/` route, from the URL resolver, called as a
  suspended user with the test client: 403 `account_suspended`, and the database (every row
  of every table) is exactly as before. Bodies and URLs come from the authorization matrix
  (`MATRIX`); the few routes that are not an account's write say why in `REST_NOT_A_WRITE`.
- Socket: every type in the consumer's dispatch table (`biddt.consumers.HANDLERS`), sent by
  a real client to a real server process on a socket that opened while the account was
  active: accepted while active (the message is valid), refused once suspended (error frame
  `account_suspended`, then close 4403) with nothing stored. A suspended account's socket is
  closed with 4403 as it opens; anonymous sockets work as before.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from django.apps import apps
from django.conf import settings
from django.db import connections
from django.urls import reverse
from rest_framework_simplejwt.token_blacklist.models import BlacklistedToken
from rest_framework_simplejwt.tokens import RefreshToken
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from accounts.models import User
from accounts.policies import AccountSuspended, ensure_active
from biddt import consumers
from tests.factories import UserFactory
from tests.hardening.test_authz_matrix import MATRIX, World, _v1_routes, build_world, client_as

# Routes under /v1/ that take a non-GET method but are not a write on behalf of an account.
REST_NOT_A_WRITE = {
    "auth-send-code": "anonymous: asks for a code for a phone number; the answer must not tell "
                      "whether that number's account is suspended (verify refuses it)",
    "auth-logout": "revokes the caller's own refresh token: allowed to a suspended account "
                   "(tested below)",
    "stripe-webhook": "signed by Stripe, no user",
    "v1-not-found": "404 for any method on an unknown path",
    "asyncapi": "the public AsyncAPI document: GET only (405 otherwise), no account",
}
# Routes whose write is not in MATRIX (the token or phone number is the credential).
REST_CREDENTIAL_WRITES = {"auth-verify", "auth-refresh"}


def database_rows() -> dict[str, list[str]]:
    """Every row of every table, as text: what "nothing stored" is compared against."""
    rows = {}
    for model in apps.get_models():
        if model._meta.proxy or not model._meta.managed:
            continue
        rows[model._meta.label] = sorted(
            repr(row) for row in model._default_manager.all().values_list())
    return rows


def changed_tables(before: dict[str, list[str]], after: dict[str, list[str]]) -> list[str]:
    return sorted(label for label in before if before[label] != after[label])


# --- the policy itself ------------------------------------------------------------------------

@pytest.mark.django_db
def test_fresh_check_sees_a_suspension_the_object_does_not():
    # given a user object read while the account was active
    user = UserFactory()
    User.objects.filter(pk=user.pk).update(status=User.Status.SUSPENDED)
    ensure_active(user)  # the stale object still says active
    # when the policy re-reads it
    with pytest.raises(AccountSuspended):
        ensure_active(user, fresh=True)
    # then the object is updated too (services called after it refuse as well)
    assert user.status == User.Status.SUSPENDED
    with pytest.raises(AccountSuspended):
        ensure_active(user)


def test_the_socket_envelope_runs_the_policy():
    # accounts connects the suspension policy to every socket message but ping
    from accounts.consumers import account_active

    assert account_active in consumers.ACCOUNT_GUARDS


# --- REST: every non-GET route ----------------------------------------------------------------

def _rest_writes() -> list[tuple[str, str]]:
    return sorted((name, method) for name, method in _v1_routes()
                  if method != "GET" and name not in REST_NOT_A_WRITE)


MATRIX_ROWS = {(row.url_name, row.method): row for row in MATRIX}


@pytest.mark.django_db
@pytest.mark.parametrize(("url_name", "method"),
                         [w for w in _rest_writes() if w[0] not in REST_CREDENTIAL_WRITES],
                         ids=lambda value: value)
def test_every_rest_write_refuses_a_suspended_user(url_name, method):
    row = MATRIX_ROWS.get((url_name, method))
    assert row is not None, (f"{method} {url_name}: a write with no row in the authorization "
                             "matrix (add one there, with a body that works)")
    # given the world and its owner suspended (the body is built first: a QR is issued)
    world = build_world()
    body = row.body(world) if row.body else None
    client = client_as(world, "suspended")
    url = reverse(url_name, kwargs=row.kwargs(world))
    before = database_rows()
    # when the suspended user writes
    response = getattr(client, method.lower())(url, body, format=row.fmt)
    # then 403 account_suspended, and nothing in the database moved
    assert response.status_code == 403, (method, url, response.content[:300])
    assert response.json()["errors"][0]["code"] == "account_suspended"
    assert changed_tables(before, database_rows()) == []


def test_the_walk_covers_every_non_get_route():
    # every non-GET /v1/ route is walked, or stated as not an account's write
    names = {name for name, method in _v1_routes() if method != "GET"}
    walked = {name for name, _ in _rest_writes()}
    assert names - walked == set(REST_NOT_A_WRITE) & names
    assert set(REST_NOT_A_WRITE) <= names
    assert REST_CREDENTIAL_WRITES <= walked


@pytest.mark.django_db
def test_login_and_token_refresh_refuse_a_suspended_user(settings, api):
    # given a suspended account with a refresh token and a fixed login code
    user = UserFactory()
    refresh = str(RefreshToken.for_user(user))
    settings.BIDDT_TEST_PHONE_NUMBERS = f"{user.phone_number}:246810"
    User.objects.filter(pk=user.pk).update(status=User.Status.SUSPENDED)
    before = database_rows()
    # when it logs in with the right code, or refreshes its token
    verify = api.post(reverse("auth-verify"), {"phone_number": user.phone_number,
                                               "code": "246810"})
    refreshed = api.post(reverse("auth-refresh"), {"refresh": refresh})
    # then both are 403 account_suspended, no token is issued and the old one isn't spent
    for response in (verify, refreshed):
        assert response.status_code == 403, response.content
        assert response.json()["errors"][0]["code"] == "account_suspended"
    assert changed_tables(before, database_rows()) == []


@pytest.mark.django_db
def test_a_suspended_user_may_still_log_out(api):
    user = UserFactory(status=User.Status.SUSPENDED)
    methods = sorted(m for name, m in _v1_routes() if name == "auth-logout")
    assert methods
    for method in methods:
        refresh = RefreshToken.for_user(user)
        response = getattr(api, method.lower())(reverse("auth-logout"),
                                                {"refresh": str(refresh)})
        assert response.status_code == 204, (method, response.content)
        assert BlacklistedToken.objects.filter(token__jti=refresh["jti"]).exists()


# --- Socket: every message type, over a real server process -----------------------------------

def socket_messages(world: World) -> dict[str, tuple[dict[str, Any], str]]:
    """type -> (a valid message from the world's owner, the answer's type while active)."""
    listing, bid_listing = str(world.listing.pk), str(world.owner_bid.listing_id)
    txn = str(world.txn_escrow.pk)
    return {
        "subscribe": ({"type": "subscribe", "listingId": listing}, "subscribed"),
        "unsubscribe": ({"type": "unsubscribe", "listingId": listing, "requestId": "u"}, "ack"),
        # the owner leads this listing: a new bid raises their maximum
        "bid": ({"type": "bid", "listingId": bid_listing, "amount": 1100, "maxAmount": 5000},
                "ack"),
        "join_chat": ({"type": "join_chat", "transactionId": txn, "requestId": "j"}, "ack"),
        "message": ({"type": "message", "transactionId": txn, "content": "See you there."},
                    "ack"),
    }


async def _next(socket, timeout: float = 15.0) -> dict:
    return json.loads(await asyncio.wait_for(socket.recv(), timeout=timeout))


async def _close_code(socket, timeout: float = 15.0) -> int | None:
    """Read until the server closes the socket; its close code."""
    try:
        async with asyncio.timeout(timeout):
            while True:
                await socket.recv()
    except ConnectionClosed as exc:
        return exc.rcvd.code if exc.rcvd else None


def _set_status(user, status: str) -> None:
    User.objects.filter(pk=user.pk).update(status=status)


@pytest.mark.integration
@pytest.mark.django_db(transaction=True)
def test_every_socket_message_type_refuses_a_suspended_user(daphne_server):
    # given the world, its owner's token, and a real server process on the test database
    world = build_world()
    owner = world.users["owner"]
    token = str(RefreshToken.for_user(owner).access_token)
    messages = socket_messages(world)
    handled = set(consumers.HANDLERS) - {t for t in consumers.HANDLERS if t.startswith("test_")}
    assert set(messages) == handled, "a socket message type with no entry in socket_messages"
    server = daphne_server()
    url = f"{server.ws_url}/ws/?token={token}"

    async def send_on_fresh_socket(message: dict, *, suspend: bool) -> tuple[dict, Any]:
        async with connect(url, open_timeout=10) as socket:
            await socket.send(json.dumps({"type": "ping"}))
            assert await _next(socket) == {"type": "pong"}  # open, as an active account
            if suspend:  # suspended meanwhile, without the `ws.close` reaching this socket
                await sync_to_async(_set_status)(owner, User.Status.SUSPENDED)
                before = await sync_to_async(database_rows)()
                await socket.send(json.dumps({**message, "requestId": "suspended"}))
                answer = await _next(socket)
                code = await _close_code(socket)
                after = await sync_to_async(database_rows)()
                await sync_to_async(_set_status)(owner, User.Status.ACTIVE)
                return answer, (code, changed_tables(before, after))
            await socket.send(json.dumps(message))
            return await _next(socket), None

    async def walk():
        results = {}
        for message_type, (message, accepted) in sorted(messages.items()):
            active_answer, _ = await send_on_fresh_socket(message, suspend=False)
            assert active_answer["type"] == accepted, (message_type, active_answer)
            results[message_type] = await send_on_fresh_socket(message, suspend=True)
        return results

    try:
        results = asyncio.run(walk())
    finally:
        connections.close_all()
    # then every type was refused with account_suspended, the socket closed with 4403, and
    # not a row of any table changed
    for message_type, (answer, (code, changed)) in results.items():
        assert answer["type"] == "error", (message_type, answer)
        assert answer["code"] == "account_suspended", (message_type, answer)
        assert answer["requestId"] == "suspended"
        assert code == consumers.CLOSE_SUSPENDED, (message_type, code)
        assert changed == [], (message_type, changed)


@pytest.mark.integration
@pytest.mark.django_db(transaction=True)
def test_a_suspended_account_cannot_open_a_socket(daphne_server):
    # given a suspended account's still-valid access token, and an active one's
    suspended, active = UserFactory(status=User.Status.SUSPENDED), UserFactory()
    suspended_token, active_token = (str(RefreshToken.for_user(u).access_token)
                                     for u in (suspended, active))
    server = daphne_server()

    async def scenario():
        async with connect(f"{server.ws_url}/ws/",
                           additional_headers={"Authorization": f"Bearer {suspended_token}"},
                           open_timeout=10) as socket:
            refused = await _close_code(socket)
        async with connect(f"{server.ws_url}/ws/?token={active_token}",
                           open_timeout=10) as socket:
            await socket.send(json.dumps({"type": "ping"}))
            active_pong = await _next(socket)
        async with connect(f"{server.ws_url}/ws/", open_timeout=10) as socket:
            await socket.send(json.dumps({"type": "subscribe",
                                          "listingId": "00000000-0000-0000-0000-000000000000"}))
            anonymous = await _next(socket)
        return refused, active_pong, anonymous

    try:
        refused, active_pong, anonymous = asyncio.run(scenario())
    finally:
        connections.close_all()
    # then the suspended one is closed with 4403 as it opens; the others work as before
    assert refused == consumers.CLOSE_SUSPENDED
    assert active_pong == {"type": "pong"}
    assert (anonymous["type"], anonymous["code"]) == ("error", "not_found")


@pytest.mark.integration
@pytest.mark.django_db(transaction=True)
def test_suspending_closes_the_open_socket(daphne_server):
    # The `ws.close` of a suspension reaches another process only through Redis.
    if not settings.REDIS_URL:
        pytest.skip("needs Redis: set REDIS_URL (CI does)")
    from accounts.roles import user_set_role
    from accounts.services import user_suspend

    user, staff = UserFactory(), UserFactory()
    user_set_role(user=staff, role="support")
    server = daphne_server()

    token = str(RefreshToken.for_user(user).access_token)

    async def scenario():
        async with connect(f"{server.ws_url}/ws/?token={token}", open_timeout=10) as socket:
            await socket.send(json.dumps({"type": "ping"}))
            assert await _next(socket) == {"type": "pong"}
            # when staff suspend the account (the service, as the console's action does)
            await sync_to_async(user_suspend)(user_id=user.pk, staff_user=staff,
                                              reason="fraud")
            return await _close_code(socket)

    try:
        code = asyncio.run(scenario())
    finally:
        connections.close_all()
    assert code == consumers.CLOSE_SUSPENDED


# --- Socket, in process: the same refusal with the communicator --------------------------------

@pytest.mark.django_db(transaction=True)
async def test_a_suspended_account_socket_is_closed_at_open_in_process():
    from biddt.asgi import websocket_app

    user = await sync_to_async(UserFactory)(status=User.Status.SUSPENDED)
    token = await sync_to_async(lambda: str(RefreshToken.for_user(user).access_token))()
    communicator = WebsocketCommunicator(websocket_app, f"/ws/?token={token}")
    connected, _ = await communicator.connect()
    # accepted only to be closed, so the client reads 4403 rather than an HTTP 403
    assert connected
    assert await communicator.receive_output(timeout=5) == {
        "type": "websocket.close", "code": consumers.CLOSE_SUSPENDED}
    await communicator.disconnect()
    await sync_to_async(connections.close_all)()
