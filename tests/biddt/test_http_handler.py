"""biddt/http.py: Django's middleware and views in one pool thread per request.

The handler is driven over ASGI in-process (asgiref's ApplicationCommunicator), as daphne
drives it; tests/biddt/test_daphne.py and the live suites run it under a real daphne.
"""

from __future__ import annotations

import asyncio
import json
import threading
from pathlib import Path

import pytest
from asgiref.testing import ApplicationCommunicator
from django.core import signals
from django.db import connection
from rest_framework_simplejwt.tokens import AccessToken

from biddt.http import ThreadedASGIHandler
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db(transaction=True)


async def call(app, method: str, path: str, *, body: bytes = b"",
               headers: list[tuple[bytes, bytes]] = ()) -> tuple[int, dict, bytes]:
    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": method,
        "scheme": "http", "path": path, "raw_path": path.encode(), "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"testserver"), (b"content-length", str(len(body)).encode()),
                    *headers],
        "client": ("127.0.0.1", 5000), "server": ("testserver", 80),
    }
    communicator = ApplicationCommunicator(app, scope)
    await communicator.send_input({"type": "http.request", "body": body, "more_body": False})
    start = await communicator.receive_output(timeout=30)
    assert start["type"] == "http.response.start"
    content = b""
    while True:
        message = await communicator.receive_output(timeout=30)
        content += message.get("body", b"")
        if not message.get("more_body", False):
            break
    await communicator.wait(timeout=30)
    return start["status"], {k.decode().lower(): v.decode() for k, v in start["headers"]}, content


def shut_down(app: ThreadedASGIHandler) -> None:
    """Close every pool thread's connection (kept or not) before the test database goes."""
    barrier = threading.Barrier(app.threads)

    def close():
        barrier.wait(timeout=10)  # one call per thread: each waits for the others
        connection.close()

    for future in [app.executor.submit(close) for _ in range(app.threads)]:
        future.result()
    app.executor.shutdown(wait=True)


@pytest.fixture
def handler():
    app = ThreadedASGIHandler(threads=1)
    yield app
    shut_down(app)


@pytest.fixture
def threads_seen():
    """The thread each request signal and the view ran on."""
    seen: dict[str, set[int]] = {"started": set(), "finished": set()}

    def started(**_kwargs):
        seen["started"].add(threading.get_ident())

    def finished(**_kwargs):
        seen["finished"].add(threading.get_ident())

    signals.request_started.connect(started)
    signals.request_finished.connect(finished)
    yield seen
    signals.request_started.disconnect(started)
    signals.request_finished.disconnect(finished)


async def test_an_api_request_runs_start_to_finish_on_one_pool_thread(handler, threads_seen):
    status, headers, content = await call(handler, "GET", "/v1/listings")
    assert status == 200
    assert headers["content-type"] == "application/json"
    assert "results" in json.loads(content)
    pool_thread = handler.executor.submit(threading.get_ident).result()
    assert threads_seen["started"] == threads_seen["finished"] == {pool_thread}
    assert pool_thread != threading.get_ident()


@pytest.fixture
def user():
    return UserFactory()


async def test_an_authenticated_post_and_its_errors_keep_the_api_shape(handler, user):
    token = str(AccessToken.for_user(user))
    auth = [(b"authorization", f"Bearer {token}".encode()),
            (b"content-type", b"application/json")]
    status, _, content = await call(
        handler, "POST", "/v1/listings/00000000-0000-0000-0000-000000000000/bids",
        body=b'{"amount_cents": 1000}', headers=auth)
    assert status == 404, content
    assert json.loads(content)["errors"][0]["code"] == "not_found"

    status, _, content = await call(handler, "POST", "/v1/listings/x/bids",
                                    body=b'{"amount_cents": 1000}', headers=auth)
    assert status == 404

    status, _, content = await call(
        handler, "POST", "/v1/listings/00000000-0000-0000-0000-000000000000/bids",
        body=b"{not json", headers=auth)
    assert status == 400
    assert json.loads(content)["errors"][0]["code"] == "parse_error"


async def test_a_streaming_response_is_sent_whole_then_closed(settings, threads_seen):
    # A static file larger than one ASGI body message, served by WhiteNoise as a
    # FileResponse; WhiteNoise indexes STATIC_ROOT when the middleware is built.
    folder = Path(settings.STATIC_ROOT) / "biddt-test"
    folder.mkdir(parents=True, exist_ok=True)
    data = bytes(range(256)) * 1024
    (folder / "big.bin").write_bytes(data)
    app = ThreadedASGIHandler(threads=1)
    try:
        status, headers, content = await call(app, "GET", "/static/biddt-test/big.bin")
    finally:
        shut_down(app)
    assert status == 200
    assert int(headers["content-length"]) == len(content) == len(data) > app.chunk_size
    assert content == data
    assert threads_seen["finished"]  # request_finished ran once the body was sent


async def test_the_pool_thread_keeps_its_connection_when_conn_max_age_allows(handler):
    def backend_pid():
        if connection.connection is None:
            return None
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_backend_pid()" if connection.vendor == "postgresql"
                           else "SELECT 1")
            return cursor.fetchone()[0]

    def set_max_age(seconds):
        connection.close()
        connection.settings_dict["CONN_MAX_AGE"] = seconds

    original = connection.settings_dict["CONN_MAX_AGE"]
    try:
        handler.executor.submit(set_max_age, 60).result()
        assert (await call(handler, "GET", "/v1/listings"))[0] == 200
        first = handler.executor.submit(backend_pid).result()
        assert first is not None  # kept after the request finished
        assert (await call(handler, "GET", "/v1/listings"))[0] == 200
        assert handler.executor.submit(backend_pid).result() == first  # and reused

        handler.executor.submit(set_max_age, 0).result()
        assert (await call(handler, "GET", "/v1/listings"))[0] == 200
        assert handler.executor.submit(lambda: connection.connection).result() is None
    finally:
        handler.executor.submit(set_max_age, original).result()


async def test_requests_beyond_the_pool_wait_for_a_thread_and_all_complete():
    app = ThreadedASGIHandler(threads=2)
    try:
        answers = await asyncio.gather(*(call(app, "GET", "/v1/listings") for _ in range(12)))
        assert [status for status, _, _ in answers] == [200] * 12
    finally:
        shut_down(app)


def test_the_asgi_application_serves_http_through_the_threaded_handler():
    from biddt import asgi

    assert isinstance(asgi.django_asgi_app, ThreadedASGIHandler)
    assert asgi.django_asgi_app.threads >= 1

