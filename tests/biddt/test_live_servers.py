"""The real servers: granian serving `biddt.wsgi:application` (REST) and uvicorn serving
`biddt.asgi:application` (/ws/): HTTP health, bodies, `/ws/` auth, events across processes."""

from __future__ import annotations

import asyncio
import io
import json
import os
import urllib.request

import httpx
import pytest
from django.conf import settings
from PIL import Image
from rest_framework_simplejwt.tokens import RefreshToken
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from biddt.events import group_send_now
from tests.factories import ListingFactory, UserFactory

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def get_json(url: str) -> tuple[int, dict]:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


async def ping(url: str, headers: dict | None = None) -> dict:
    async with connect(url, additional_headers=headers, open_timeout=10) as socket:
        await socket.send(json.dumps({"type": "ping"}))
        return json.loads(await asyncio.wait_for(socket.recv(), timeout=10))


def test_health_endpoints_over_http(live_servers):
    # given the running servers on the test database
    server = live_servers()
    # when a load balancer probes it
    health = get_json(f"{server.http_url}/healthz")
    ready = get_json(f"{server.http_url}/readyz")
    # then it is alive and ready: database, cache, channel layer and Celery broker answer
    assert health == (200, {"status": "ok"})
    status, body = ready
    assert status == 200, body
    assert body["status"] == "ready"
    assert set(body["checks"].values()) == {"ok"}
    assert {name.partition("(")[0] for name in body["checks"]} == {
        "Database", "Cache", "ChannelLayer", "CeleryBroker"}


def test_valid_token_over_header_and_query_gets_pong(live_servers):
    # given a committed user and the running servers
    user = UserFactory()
    token = str(RefreshToken.for_user(user).access_token)
    server = live_servers()

    # when the client connects with the token in the header, then in the query string
    async def scenario():
        by_header = await ping(f"{server.ws_url}/ws/", {"Authorization": f"Bearer {token}"})
        by_query = await ping(f"{server.ws_url}/ws/?token={token}")
        return by_header, by_query

    by_header, by_query = asyncio.run(scenario())
    # then both sockets are accepted and answer the ping
    assert by_header == {"type": "pong"}
    assert by_query == {"type": "pong"}


def test_no_token_gets_pong_as_anonymous(live_servers):
    server = live_servers()

    # when a client connects without a token and tries an auth-only action
    async def scenario():
        async with connect(f"{server.ws_url}/ws/", open_timeout=10) as socket:
            await socket.send(json.dumps({"type": "ping"}))
            pong = json.loads(await asyncio.wait_for(socket.recv(), timeout=10))
            await socket.send(json.dumps({"type": "nonsense", "requestId": "q"}))
            error = json.loads(await asyncio.wait_for(socket.recv(), timeout=10))
            return pong, error

    pong, error = asyncio.run(scenario())
    # then it is connected (anonymous) and the envelope works end to end
    assert pong == {"type": "pong"}
    assert error["type"] == "error"
    assert error["code"] == "unknown_type"
    assert error["requestId"] == "q"


@pytest.mark.parametrize("where", ["header", "query"])
def test_bad_token_handshake_is_rejected(live_servers, where):
    server = live_servers()
    url, headers = f"{server.ws_url}/ws/", None
    if where == "header":
        headers = {"Authorization": "Bearer not-a-valid-token"}
    else:
        url += "?token=not-a-valid-token"

    # when a client connects with an invalid token
    async def scenario():
        try:
            async with connect(url, additional_headers=headers, open_timeout=10) as socket:
                await asyncio.wait_for(socket.recv(), timeout=10)
        except (InvalidStatus, ConnectionClosed) as exc:
            return exc
        return None

    outcome = asyncio.run(scenario())
    # then the handshake fails: the server turns a close before accept into HTTP 403, and if
    # a server accepted first, the close code would be 4401
    assert outcome is not None, "the socket was accepted with a bad token"
    if isinstance(outcome, InvalidStatus):
        assert outcome.response.status_code == 403
    else:
        assert outcome.rcvd is not None and outcome.rcvd.code == 4401


def test_event_sent_by_another_process_reaches_the_socket(live_servers):
    # Instances share events only through Redis; the in-memory layer is per process.
    if not settings.REDIS_URL:
        pytest.skip("needs Redis: set REDIS_URL (CI does)")
    # given a committed user connected to the socket server
    user = UserFactory()
    token = str(RefreshToken.for_user(user).access_token)
    server = live_servers()
    payload = {"type": "notification", "notification": {"id": "n-42"}}

    async def scenario():
        async with connect(f"{server.ws_url}/ws/?token={token}", open_timeout=10) as socket:
            # the pong proves connect() (and its group join) has finished
            await socket.send(json.dumps({"type": "ping"}))
            pong = json.loads(await asyncio.wait_for(socket.recv(), timeout=10))
            # when this test process sends to the user's group through the channel layer
            sent = await asyncio.to_thread(
                group_send_now, f"user.{user.pk}", {"type": "ws.event", "payload": payload}
            )
            event = json.loads(await asyncio.wait_for(socket.recv(), timeout=10))
            return pong, sent, event

    pong, sent, event = asyncio.run(scenario())
    # then the socket served by the socket server receives it
    assert pong == {"type": "pong"}
    assert sent is True
    assert event == payload


@pytest.mark.parametrize("body", [
    b"this is not a multipart body",
    b"------biddt--\r\n",  # a closing boundary and no part at all
    b"------biddt\r\nContent-Disposition: form-data; name=\"image\"\r\n\r\ncut short",
])
def test_a_malformed_multipart_body_gets_the_api_error_not_the_server_page(live_servers, body):
    # The server hands the body to Django untouched; a body the parser can't take is the
    # API's error in the API's shape (daphne's Twisted answered some with its own bare 400).
    # given a seller's draft listing and the running servers
    listing = ListingFactory(status="draft")
    token = str(RefreshToken.for_user(listing.seller).access_token)
    server = live_servers()
    # when the seller posts a body that claims to be multipart but is not
    request = urllib.request.Request(
        f"{server.http_url}/v1/listings/{listing.pk}/images", method="POST",
        data=body,
        headers={"Authorization": f"Bearer {token}",
                 "Content-Type": "multipart/form-data; boundary=----biddt"})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            status, raw = response.status, response.read()
    except urllib.error.HTTPError as err:
        status, raw = err.code, err.read()
    # then the body reaches the API, which answers in its own error shape
    assert status == 400, raw
    answer = json.loads(raw)
    assert answer["type"] in ("validation_error", "client_error"), answer
    assert answer["errors"][0]["code"] in ("invalid_image", "parse_error"), answer


def test_a_refused_body_leaves_the_kept_connection_usable(live_servers):
    # A view that refuses a request before reading its body (here 401: no token) must not
    # leave the body on the connection: the REST server would then drop the kept-alive
    # connection and the client's next request on it would fail (biddt.wsgi).
    server = live_servers()
    url = f"/v1/listings/{ListingFactory().pk}/watch"
    body = b'{"x": "' + b"a" * 300_000 + b'"}'
    dropped = 0
    with httpx.Client(base_url=server.http_url, timeout=30) as client:
        for _ in range(200):
            try:
                response = client.post(url, content=body,
                                       headers={"Content-Type": "application/json"})
            except httpx.TransportError:
                dropped += 1
                continue
            assert response.status_code == 401
        # and the same connection still serves
        assert client.get("/healthz").status_code == 200
    assert dropped == 0


def test_photo_upload_through_the_rest_server(live_servers):
    # given a seller's draft listing, the running servers and a photo of a few megabytes
    # (noise compresses badly, like a real phone photo)
    listing = ListingFactory(status="draft")
    token = str(RefreshToken.for_user(listing.seller).access_token)
    server = live_servers()
    out = io.BytesIO()
    Image.frombytes("RGB", (1600, 1200), os.urandom(1600 * 1200 * 3)).save(
        out, format="JPEG", quality=95)
    assert out.tell() > 2_000_000
    # when the seller uploads it as multipart, as the apps do
    response = httpx.post(
        f"{server.http_url}/v1/listings/{listing.pk}/images",
        headers={"Authorization": f"Bearer {token}"},
        files={"image": ("photo.jpg", out.getvalue(), "image/jpeg")}, timeout=30)
    # then it is stored, whole, as the listing's image
    assert response.status_code == 201, response.text
    listing.refresh_from_db()
    image = listing.images.get()
    assert response.json()["id"] == str(image.pk)


def _database_ports(process_id: int) -> set[int]:
    """Local ports of the TCP connections a server (and its children) holds to PostgreSQL."""
    import psutil
    from django.db import connection

    pg_port = int(connection.settings_dict.get("PORT") or 5432)
    root = psutil.Process(process_id)
    return {c.laddr.port for p in (root, *root.children(recursive=True))
            for c in p.net_connections(kind="tcp") if c.raddr and c.raddr.port == pg_port}


@pytest.mark.postgres
def test_rest_threads_keep_their_database_connections_with_conn_max_age(live_servers):
    # given a REST server whose connections live 60 s, and one that closes them (the default
    # of the test settings)
    keeping = live_servers({"DATABASE_CONN_MAX_AGE": "60"}, fresh=True)
    if not keeping.split:
        pytest.skip("needs REDIS_URL: without it one ASGI server serves REST (make run)")
    closing = live_servers()

    def requests(server, count: int) -> None:
        for _ in range(count):
            with urllib.request.urlopen(f"{server.http_url}/v1/listings", timeout=30) as response:
                assert response.status == 200

    # when each answers requests that query the database (on the request's own thread)
    requests(keeping, 10)
    first = _database_ports(keeping.rest.pid)
    requests(keeping, 20)
    second = _database_ports(keeping.rest.pid)
    requests(closing, 10)
    # then the threads of the first keep their connections between requests: no more than
    # one per thread, the same ones reused
    from tests.biddt.processes import REST_THREADS

    assert first, "no kept connection"
    assert len(second) <= REST_THREADS
    assert first & second
    # and the other's threads closed theirs after each request
    assert _database_ports(closing.rest.pid) == set()
