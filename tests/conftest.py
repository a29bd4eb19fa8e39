"""Shared fixtures: API clients, users, tokens; isolation of cache, SMS outbox and throttles."""

from __future__ import annotations

import pytest
from django.conf import settings
from django.core.cache import cache
from django.db import connection
from rest_framework.test import APIClient
from rest_framework_simplejwt.tokens import RefreshToken

from biddt.locale_build import compile_all
from tests.factories import UserFactory

compile_all(only_stale=True)  # the French and English .mo files (as `make test` does)


def pytest_collection_modifyitems(config, items):
    """`postgres` tests skip with a reason on SQLite (locking and full-text search need PG)."""
    if settings.USING_POSTGRES:
        return
    skip = pytest.mark.skip(reason="needs PostgreSQL: set DATABASE_URL (CI does)")
    for item in items:
        if "postgres" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(autouse=True)
def _isolation():
    from accounts.services import _parse_test_numbers
    from accounts.sms import InMemoryBackend

    cache.clear()
    InMemoryBackend.outbox.clear()
    _parse_test_numbers.cache_clear()
    yield
    _parse_test_numbers.cache_clear()


@pytest.fixture
def api() -> APIClient:
    return APIClient()


@pytest.fixture
def user(db):
    return UserFactory()


def bearer(user) -> str:
    return f"Bearer {RefreshToken.for_user(user).access_token}"


@pytest.fixture
def auth_api(user) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=bearer(user))
    return client


@pytest.fixture
def pg():
    """Skip unless the database is PostgreSQL."""
    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL: set DATABASE_URL (CI does)")


@pytest.fixture(scope="session")
def live_servers(django_db_setup, tmp_path_factory):
    """Factory: `live_servers(env=None, fresh=False)` starts the real servers on the test
    database: REST on granian (WSGI) and sockets on uvicorn (ASGI), as deployed.

    Returns a `tests.biddt.processes.LiveServers` (`.http_url` the REST server, `.ws_url` the
    socket server, `.process.poll()`, `.log()` of both, `.stop()`) once both answer `/healthz`.
    Without REDIS_URL one ASGI server serves both (the in-memory channel layer can't cross
    processes). The servers run `biddt.settings_test` with `DATABASE_URL` pointing at
    pytest-django's test database and this run's Redis prefix, so tests that commit rows
    (`django_db(transaction=True)`) and send channel-layer events see them served. Calls with
    the same extra `env` share one pair unless `fresh=True`; all stop at the end of the
    session, before the test database is dropped.
    """
    from tests.biddt.processes import ServerLauncher

    launcher = ServerLauncher(tmp_path_factory.mktemp("servers"))
    try:
        yield launcher.start
    finally:
        launcher.stop_all()


@pytest.fixture(scope="session")
def daphne_server(live_servers):
    """The daphne era's name of `live_servers` (same factory, same processes)."""
    return live_servers


@pytest.fixture
def redis_server(tmp_path):
    """Factory: `redis_server()` starts a throwaway `redis-server` (no persistence) on a free port.

    Returns a `tests.biddt.processes.RedisServer` (`.url`, `.stop()`); skips when the binary is
    missing. Every server started is stopped after the test.
    """
    from tests.biddt.processes import start_redis

    started = []

    def start():
        try:
            server = start_redis(work_dir=tmp_path)
        except FileNotFoundError as exc:
            pytest.skip(str(exc))
        started.append(server)
        return server

    try:
        yield start
    finally:
        for server in started:
            server.stop()


# --- bidding ---------------------------------------------------------------------------------

@pytest.fixture
def sent_events(monkeypatch):
    """Channel-layer sends made through biddt.events, as (group, payload) pairs. Every
    socket payload among them must validate against the AsyncAPI document (checked at the
    end of the test: the sends run in after-commit hooks, which swallow errors)."""
    from biddt import events
    from tests.socket_contract import server_message_errors

    sent: list[tuple[str, dict]] = []
    invalid: list[str] = []

    def capture(group, event):
        if event.get("type") == "ws.event":
            invalid.extend(server_message_errors(event["payload"]))
        sent.append((group, event.get("payload", event)))
        return True

    monkeypatch.setattr(events, "group_send_now", capture)
    monkeypatch.setattr(events, "_group_send_many",
                        lambda sends: [capture(group, event) for group, event in sends])
    yield sent
    assert not invalid, f"socket messages that don't match /v1/asyncapi.json: {invalid}"


@pytest.fixture(autouse=True)
def _socket_contract(request, monkeypatch):
    """Every frame a socket of this process sends (consumer tests, `WebsocketCommunicator`)
    must validate against the AsyncAPI document. Tests of the transport itself, with
    synthetic payloads, opt out with the `synthetic_socket_messages` marker."""
    if request.node.get_closest_marker("synthetic_socket_messages"):
        yield
        return
    import json

    from biddt.consumers import BiddtConsumer
    from tests.socket_contract import server_message_errors

    invalid: list[str] = []
    send = BiddtConsumer.send

    async def checked_send(self, text_data=None, bytes_data=None, close=False):
        if text_data is not None:
            invalid.extend(server_message_errors(json.loads(text_data)))
        await send(self, text_data=text_data, bytes_data=bytes_data, close=close)

    monkeypatch.setattr(BiddtConsumer, "send", checked_send)
    yield
    assert not invalid, f"socket messages that don't match /v1/asyncapi.json: {invalid}"


# --- escrow ----------------------------------------------------------------------------------

class StripeTestServer:
    """localstripe (+ Connect stubs) on 127.0.0.1: see tests/escrow/stripe_server.py."""

    secret_key = "sk_test_biddtlocalstripe0000000000"
    webhook_secret = "whsec_biddt_test"

    def __init__(self, port: int, process) -> None:
        self.port = port
        self.process = process
        self.url = f"http://127.0.0.1:{port}"

    def _call(self, method: str, path: str, body: dict | None = None):
        import json
        import urllib.request

        request = urllib.request.Request(
            self.url + path, method=method,
            data=json.dumps(body).encode() if body is not None else None,
            headers={"Content-Type": "application/json",
                     "Authorization": f"Bearer {self.secret_key}"})
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
            raw = response.read()
        return json.loads(raw) if raw else None

    def connect_requests(self) -> list[dict]:
        return self._call("GET", "/_config/stub/requests")

    def reset(self) -> None:
        self._call("DELETE", "/_config/stub/requests")
        # No webhooks unless the test registers its server again: a live server another test
        # registered would otherwise get this test's events and commit rows after its flush.
        self.webhook_register("http://127.0.0.1:9/")

    def account_set(self, account_id: str, **flags) -> None:
        self._call("POST", f"/_config/stub/accounts/{account_id}", flags)

    def webhook_register(self, url: str) -> None:
        import urllib.parse
        import urllib.request

        body = urllib.parse.urlencode({"url": url, "secret": self.webhook_secret}).encode()
        urllib.request.urlopen(  # noqa: S310 - our own server
            urllib.request.Request(f"{self.url}/_config/webhooks/biddt", data=body,
                                   method="POST"), timeout=10).read()

    def env(self) -> dict[str, str]:
        return {"BIDDT_PAYMENTS_BACKEND": "stripe", "STRIPE_SECRET_KEY": self.secret_key,
                "STRIPE_WEBHOOK_SECRET": self.webhook_secret, "STRIPE_API_BASE": self.url}

    def client(self):
        import stripe

        return stripe.StripeClient(self.secret_key, base_addresses={"api": self.url},
                                   max_network_retries=0)


@pytest.fixture(scope="session")
def stripe_server(tmp_path_factory):
    """A real localstripe server (PaymentIntents, refunds, signed webhooks) with stubs for the
    Connect calls it lacks, on a free 127.0.0.1 port, for the whole session."""
    import subprocess
    import sys
    import time
    from pathlib import Path

    from tests.biddt.processes import _stop, free_port

    pytest.importorskip("localstripe")
    port = free_port()
    log = (tmp_path_factory.mktemp("localstripe") / "localstripe.log").open("wb")
    script = Path(__file__).parent / "escrow" / "stripe_server.py"
    process = subprocess.Popen([sys.executable, str(script), str(port)], stdout=log,
                               stderr=subprocess.STDOUT, cwd=str(script.parent))
    server = StripeTestServer(port, process)
    deadline = time.monotonic() + 30
    while True:
        try:
            server.connect_requests()
            break
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                _stop(process)
                raise RuntimeError("localstripe did not come up") from None
            time.sleep(0.1)
    try:
        yield server
    finally:
        _stop(process)
        log.close()


@pytest.fixture
def stripe_backend(settings, stripe_server):
    """This process's settings pointed at the localstripe server (`stripe` backend)."""
    settings.BIDDT_PAYMENTS_BACKEND = "stripe"
    settings.STRIPE_SECRET_KEY = stripe_server.secret_key
    settings.STRIPE_WEBHOOK_SECRET = stripe_server.webhook_secret
    settings.STRIPE_API_BASE = stripe_server.url
    stripe_server.reset()
    return stripe_server


def stripe_signed(payload: dict | str, secret: str, *, timestamp: int | None = None
                  ) -> tuple[bytes, str]:
    """A webhook body and its `Stripe-Signature` header (Stripe's v1 scheme)."""
    import json

    import stripe

    body = payload if isinstance(payload, str) else json.dumps(payload)
    header = stripe.WebhookSignature.generate_signature_header(body, secret,
                                                              timestamp=timestamp)
    return body.encode(), header
