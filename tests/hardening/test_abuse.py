"""Abuse: SMS pumping, code brute force (OTP and handoff QR), oversized bodies, oversized and
flooding socket frames, forged and replayed webhooks. Each is refused cleanly (a status and
the standard error shape, or an error frame) and logged; the server keeps serving.

Throttle tests use the production rates (`biddt.settings.THROTTLE_RATES`), not the generous
test ones.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time
import urllib.request
from datetime import timedelta

import pytest
import time_machine
from django.conf import settings as django_settings
from django.utils import timezone
from rest_framework.test import APIClient
from rest_framework_simplejwt.tokens import RefreshToken

import biddt.settings as production_settings
from accounts.sms import InMemoryBackend
from tests.conftest import bearer, stripe_signed
from tests.factories import UserFactory, sold_transaction


def error_code(response) -> str:
    return response.json()["errors"][0]["code"]


def refused_logged(caplog, status: int, path: str) -> bool:
    """The request's log line (`request_finished`, its one line) recorded the refusal, status
    and path, as a warning."""
    return any(r.name == "django_structlog.middlewares.request"
               and r.levelno >= logging.WARNING and isinstance(r.msg, dict)
               and r.msg.get("code") == status and path in str(r.msg.get("request", ""))
               for r in caplog.records)


@pytest.fixture
def production_rates(settings):
    settings.THROTTLE_RATES = dict(production_settings.THROTTLE_RATES)
    return settings.THROTTLE_RATES


# --- OTP ------------------------------------------------------------------------------------

@pytest.mark.django_db
def test_otp_pumping_across_many_numbers_from_one_ip_is_throttled(
        production_rates, caplog, django_capture_on_commit_callbacks):
    # given the production per-IP login rate (20/min)
    per_ip = int(production_rates["auth_ip"].split("/")[0])
    client = APIClient(REMOTE_ADDR="203.0.113.7")
    numbers = [f"+1416555{n:04d}" for n in range(100, 100 + per_ip + 5)]
    # when one IP asks for codes to many different numbers
    with django_capture_on_commit_callbacks(execute=True):  # the SMS goes after commit
        answers = [client.post("/v1/auth/phone/send-code", {"phone_number": n}, format="json")
                   for n in numbers]
    # then the first `per_ip` are sent and the rest refused with 429 and Retry-After
    statuses = [a.status_code for a in answers]
    assert statuses == [202] * per_ip + [429] * 5, statuses
    refused = answers[per_ip]
    assert error_code(refused) == "throttled"
    assert int(refused["Retry-After"]) > 0
    assert len(InMemoryBackend.outbox) == per_ip  # no SMS for the refused ones
    assert refused_logged(caplog, 429, "/v1/auth/phone/send-code")
    # and another IP is not affected
    other = APIClient(REMOTE_ADDR="198.51.100.9")
    assert other.post("/v1/auth/phone/send-code", {"phone_number": "+14165550999"},
                      format="json").status_code == 202


@pytest.mark.django_db
def test_otp_pumping_one_number_from_many_ips_is_throttled(production_rates):
    per_phone = int(production_rates["auth_phone"].split("/")[0])
    statuses = [APIClient(REMOTE_ADDR=f"203.0.113.{i}").post(
        "/v1/auth/phone/send-code", {"phone_number": "+14165550777"}, format="json").status_code
        for i in range(1, per_phone + 3)]
    assert statuses == [202] * per_phone + [429] * 2


@pytest.mark.django_db
def test_otp_brute_force_kills_the_code_after_five_wrong_tries(
        caplog, django_capture_on_commit_callbacks):
    api = APIClient()
    phone = "+14165550444"
    with django_capture_on_commit_callbacks(execute=True):
        assert api.post("/v1/auth/phone/send-code", {"phone_number": phone},
                        format="json").status_code == 202
    code = re.search(r"\b(\d{6})\b", InMemoryBackend.outbox[-1].body).group(1)
    wrong = [c for c in ("000000", "111111", "222222", "333333", "444444", "555555")
             if c != code][:5]
    # when five wrong codes are tried
    for guess in wrong:
        response = api.post("/v1/auth/phone/verify", {"phone_number": phone, "code": guess},
                            format="json")
        assert response.status_code == 400 and error_code(response) == "invalid_code"
    # then even the right code is refused: the code is dead
    response = api.post("/v1/auth/phone/verify", {"phone_number": phone, "code": code},
                        format="json")
    assert response.status_code == 400, response.content
    assert error_code(response) == "too_many_attempts"
    assert refused_logged(caplog, 400, "/v1/auth/phone/verify")


# --- QR handoff code ----------------------------------------------------------------------------

def _client(user) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=bearer(user))
    return client


@pytest.mark.django_db
def test_qr_brute_force_is_cut_off_and_kills_the_code(settings, caplog):
    from escrow.services import transaction_pay

    limit = settings.BIDDT_QR_MAX_WRONG_CODES
    buyer, seller = UserFactory(), UserFactory()
    txn = sold_transaction(buyer=buyer, seller=seller)
    transaction_pay(user=buyer, transaction_id=txn.pk)
    code = _client(buyer).get(f"/v1/transactions/{txn.pk}/qr").json()["code"]
    verify = f"/v1/transactions/{txn.pk}/verify"
    seller_api = _client(seller)
    caplog.set_level(logging.INFO)
    # when the seller's account tries `limit` wrong codes
    for n in range(limit):
        response = seller_api.post(verify, {"code": f"guess-{n}"}, format="json")
        assert response.status_code == 400 and error_code(response) == "invalid_code"
    # then further tries are refused with 429 and Retry-After, even with the right code
    response = seller_api.post(verify, {"code": code}, format="json")
    assert response.status_code == 429, response.content
    assert error_code(response) == "throttled"
    assert 0 < int(response["Retry-After"]) <= settings.BIDDT_QR_GUESS_WINDOW_SECONDS
    txn.refresh_from_db()
    assert txn.status == "in_escrow"
    assert any("killed after" in r.getMessage() for r in caplog.records)
    assert any("guessing blocked" in r.getMessage() for r in caplog.records)
    assert refused_logged(caplog, 429, verify)
    # and once the window has passed, the old code is dead; a fresh one works
    with time_machine.travel(timezone.now() + timedelta(
            seconds=settings.BIDDT_QR_GUESS_WINDOW_SECONDS + 1), tick=False):
        response = seller_api.post(verify, {"code": code}, format="json")
        assert response.status_code == 400 and error_code(response) == "invalid_code"
        fresh = _client(buyer).get(f"/v1/transactions/{txn.pk}/qr").json()["code"]
        response = seller_api.post(verify, {"code": fresh}, format="json")
        assert response.status_code == 200, response.content
    txn.refresh_from_db()
    assert txn.status == "released"


@pytest.mark.django_db
def test_wrong_qr_codes_below_the_limit_do_not_block(settings):
    from escrow.services import transaction_pay

    buyer, seller = UserFactory(), UserFactory()
    txn = sold_transaction(buyer=buyer, seller=seller)
    transaction_pay(user=buyer, transaction_id=txn.pk)
    code = _client(buyer).get(f"/v1/transactions/{txn.pk}/qr").json()["code"]
    for n in range(settings.BIDDT_QR_MAX_WRONG_CODES - 1):
        assert _client(seller).post(f"/v1/transactions/{txn.pk}/verify", {"code": f"x{n}"},
                                    format="json").status_code == 400
    response = _client(seller).post(f"/v1/transactions/{txn.pk}/verify", {"code": code},
                                    format="json")
    assert response.status_code == 200, response.content


# --- oversized bodies ----------------------------------------------------------------------------

@pytest.mark.django_db
@pytest.mark.parametrize("path", ["/v1/listings", "/v1/auth/phone/send-code"])
def test_json_body_past_the_upload_limit_is_413_in_the_error_shape(path, caplog):
    # given a body one byte past DATA_UPLOAD_MAX_MEMORY_SIZE (the production setting)
    limit = django_settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    assert limit == production_settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    head = b'{"title": "Lamp", "phone_number": "+14165550100", "pad": "'
    body = head + b"x" * (limit + 1 - len(head) - 2) + b'"}'
    assert len(body) == limit + 1
    client = _client(UserFactory())
    # when it is posted
    response = client.generic("POST", path, body, content_type="application/json")
    # then it is refused cleanly: 413 in the standard shape, and logged
    assert response.status_code == 413, response.content[:300]
    assert response.json() == {"type": "client_error", "errors": [{
        "code": "request_too_large", "detail": "The request body is too large.", "attr": None}]}
    assert refused_logged(caplog, 413, path)


@pytest.mark.django_db
def test_multipart_body_past_the_upload_limit_is_413(settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 64 * 1024
    client = _client(UserFactory())
    response = client.patch("/v1/users/me", {"display_name": "x" * (65 * 1024)},
                            format="multipart")
    assert response.status_code == 413, response.content[:300]
    assert error_code(response) == "request_too_large"


# --- webhooks -------------------------------------------------------------------------------------

WEBHOOK_SECRET = "whsec_hardening"


def _event(event_id: str = "evt_hardening_1") -> dict:
    return {"id": event_id, "type": "customer.created", "data": {"object": {"id": "cus_1"}}}


@pytest.mark.django_db
def test_webhook_with_a_bad_signature_is_refused_and_logged(settings, caplog):
    settings.STRIPE_WEBHOOK_SECRET = WEBHOOK_SECRET
    body, _ = stripe_signed(_event(), WEBHOOK_SECRET)
    _, forged = stripe_signed(_event(), "whsec_someone_else")
    for header in (forged, None, "t=1,v1=00", "garbage"):
        extra = {"HTTP_STRIPE_SIGNATURE": header} if header is not None else {}
        response = APIClient().generic("POST", "/v1/webhooks/stripe", body,
                                       content_type="application/json", **extra)
        assert response.status_code == 400, response.content
        assert error_code(response) == "invalid_signature"
    from escrow.models import PaymentEvent

    assert not PaymentEvent.objects.exists()
    refusals = [r for r in caplog.records if "stripe webhook refused" in r.getMessage()]
    assert len(refusals) == 4
    assert refused_logged(caplog, 400, "/v1/webhooks/stripe")


@pytest.mark.django_db
def test_webhook_replayed_with_an_old_timestamp_is_refused(settings, caplog):
    settings.STRIPE_WEBHOOK_SECRET = WEBHOOK_SECRET
    # a genuine delivery captured and replayed 10 minutes later (tolerance: 5 minutes)
    body, header = stripe_signed(_event(), WEBHOOK_SECRET, timestamp=int(time.time()) - 600)
    response = APIClient().generic("POST", "/v1/webhooks/stripe", body,
                                   content_type="application/json",
                                   HTTP_STRIPE_SIGNATURE=header)
    assert response.status_code == 400, response.content
    assert error_code(response) == "invalid_signature"
    assert any("stripe webhook refused" in r.getMessage() and "tolerance" in r.getMessage()
               for r in caplog.records)


@pytest.mark.django_db
def test_webhook_replayed_with_a_fresh_signature_is_handled_once(settings):
    from escrow.models import PaymentEvent

    settings.STRIPE_WEBHOOK_SECRET = WEBHOOK_SECRET
    for _ in range(3):
        body, header = stripe_signed(_event("evt_replayed"), WEBHOOK_SECRET)
        response = APIClient().generic("POST", "/v1/webhooks/stripe", body,
                                       content_type="application/json",
                                       HTTP_STRIPE_SIGNATURE=header)
        assert response.status_code == 200, response.content
    assert PaymentEvent.objects.filter(event_id="evt_replayed").count() == 1


# --- sockets (a real daphne) ----------------------------------------------------------------------

CHAT_LIMIT = 5


def _healthz(server) -> int:
    with urllib.request.urlopen(f"{server.http_url}/healthz", timeout=10) as response:
        return response.status


async def _recv_until(socket, predicate, timeout: float = 10) -> list[dict]:
    """Frames up to and including the first that matches."""
    frames = []
    while True:
        frame = json.loads(await asyncio.wait_for(socket.recv(), timeout=timeout))
        frames.append(frame)
        if predicate(frame):
            return frames


@pytest.mark.integration
@pytest.mark.django_db(transaction=True)
def test_oversized_and_flooding_socket_frames_get_error_frames_and_the_server_stays_up(
        daphne_server):
    from websockets.asyncio.client import connect
    from websockets.exceptions import ConnectionClosed

    from escrow.services import transaction_pay

    buyer, seller = UserFactory(), UserFactory()
    txn = sold_transaction(buyer=buyer, seller=seller)
    transaction_pay(user=buyer, transaction_id=txn.pk)
    token = str(RefreshToken.for_user(buyer).access_token)
    server = daphne_server(env={"BIDDT_CHAT_MESSAGES_PER_MINUTE": str(CHAT_LIMIT)})
    sent = 4 * CHAT_LIMIT

    async def scenario():
        url = f"{server.ws_url}/ws/?token={token}"
        # a frame past the application's 16 KB: an error frame, the socket stays open
        async with connect(url, open_timeout=10, max_size=2 ** 20) as socket:
            await socket.send(json.dumps({"type": "ping", "pad": "x" * 64 * 1024}))
            (too_large,) = await _recv_until(socket, lambda f: True)
            assert too_large["type"] == "error", too_large
            assert too_large["code"] == "message_too_large", too_large
            await socket.send(json.dumps({"type": "ping"}))
            await _recv_until(socket, lambda f: f["type"] == "pong")
            # past daphne's own 1 MB message limit: the connection is dropped, nothing read
            await socket.send("x" * (2 * 1024 * 1024))
            with pytest.raises(ConnectionClosed):
                await _recv_until(socket, lambda f: False)
        async with connect(url, open_timeout=10, max_size=2 ** 20) as socket:
            # a flood of chat messages
            await socket.send(json.dumps({"type": "join_chat", "transactionId": str(txn.pk)}))
            await _recv_until(socket, lambda f: f["type"] == "ack")
            for n in range(sent):
                await socket.send(json.dumps({"type": "message", "transactionId": str(txn.pk),
                                              "content": f"spam {n}", "requestId": f"r{n}"}))
            answers = {}
            while len(answers) < sent:
                frame = json.loads(await asyncio.wait_for(socket.recv(), timeout=20))
                if frame.get("requestId", "").startswith("r"):
                    answers[frame["requestId"]] = frame
            # the socket still answers
            await socket.send(json.dumps({"type": "ping"}))
            await _recv_until(socket, lambda f: f["type"] == "pong")
            return answers

    answers = asyncio.run(scenario())
    errors = [a for a in answers.values() if a["type"] == "error"]
    acks = [a for a in answers.values() if a["type"] == "ack"]
    # at most the limit per minute window (the flood may straddle one window boundary)
    assert len(acks) <= 2 * CHAT_LIMIT
    assert len(errors) == sent - len(acks) >= sent - 2 * CHAT_LIMIT
    assert {e["code"] for e in errors} == {"throttled"}
    from chat.models import Message

    assert Message.objects.filter(transaction=txn, message_type="text").count() == len(acks)
    # the server stays up and logged the refusals
    assert _healthz(server) == 200
    assert server.process.poll() is None
    log = server.log()
    assert "socket frame refused (message_too_large)" in log
    assert "socket frame refused (throttled)" in log
