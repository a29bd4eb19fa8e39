"""Phone OTP login: send-code, verify, expiry, lockout, hashing, send limits, test numbers."""

from __future__ import annotations

import re

import pytest
import time_machine
from django.db import connection
from django.test import TestCase, override_settings
from django.utils import timezone

from accounts.models import PhoneOTP, User, phone_index
from accounts.sms import InMemoryBackend

PHONE = "+14165550123"
SEND = "/v1/auth/phone/send-code"
VERIFY = "/v1/auth/phone/verify"

pytestmark = pytest.mark.django_db


def sent_code() -> str:
    """The code in the last SMS of the in-memory backend."""
    return re.search(r"\b(\d{6})\b", InMemoryBackend.outbox[-1].body).group(1)


def send(api, phone=PHONE, **extra):
    # The SMS goes out on commit: run the callbacks the test transaction holds back.
    with TestCase.captureOnCommitCallbacks(execute=True):
        return api.post(SEND, {"phone_number": phone}, format="json", **extra)


def verify(api, code, phone=PHONE):
    return api.post(VERIFY, {"phone_number": phone, "code": code}, format="json")


def error_code(response) -> str:
    return response.json()["errors"][0]["code"]


def test_send_code_texts_a_six_digit_code(api):
    # when
    response = send(api)
    # then
    assert response.status_code == 202
    assert response.json() == {"expires_in": 600}
    assert len(InMemoryBackend.outbox) == 1
    assert InMemoryBackend.outbox[0].to == PHONE
    assert re.fullmatch(r"\d{6}", sent_code())


def test_send_code_accepts_spaced_international_numbers(api):
    response = send(api, "+44 20 7946 0958")
    assert response.status_code == 202
    assert InMemoryBackend.outbox[-1].to == "+442079460958"


@pytest.mark.parametrize("bad", ["12345", "not a phone", "+1", "+999123456789", "", "4165550123"])
def test_send_code_refuses_invalid_numbers(api, bad):
    response = send(api, bad)
    assert response.status_code == 400
    body = response.json()
    assert body["type"] == "validation_error"
    assert body["errors"][0]["attr"] == "phone_number"
    assert error_code(response) in {"invalid_phone_number", "blank"}
    assert InMemoryBackend.outbox == []


def test_send_code_requires_the_field(api):
    response = api.post(SEND, {}, format="json")
    assert response.status_code == 400
    assert response.json()["errors"][0] == {
        "code": "required", "detail": "This field is required.", "attr": "phone_number"}


def test_database_never_holds_the_plain_code(api):
    # given
    send(api)
    code = sent_code()
    # then: neither the code nor the number is stored in clear
    otp = PhoneOTP.objects.get()
    assert code not in otp.code_hash
    assert PHONE not in otp.phone_index
    with connection.cursor() as cur:
        cur.execute("SELECT * FROM accounts_phoneotp")
        row = " ".join(str(v) for v in cur.fetchone())
    assert code not in row
    assert "4165550123" not in row


def test_verify_logs_a_new_user_in(api):
    # given
    send(api)
    # when
    response = verify(api, sent_code())
    # then
    assert response.status_code == 200
    body = response.json()
    assert body["is_new_user"] is True
    assert body["user"]["phone_number"] == PHONE
    assert set(body) == {"access", "refresh", "user", "is_new_user"}
    assert set(body["user"]) == {"id", "phone_number", "email", "display_name", "avatar_url",
                                 "status", "created_at", "rating_avg", "rating_count",
                                 "language"}
    me = api.get("/v1/users/me", HTTP_AUTHORIZATION=f"Bearer {body['access']}")
    assert me.status_code == 200
    assert me.json()["id"] == body["user"]["id"]


def test_verify_second_login_is_not_new(api):
    send(api)
    verify(api, sent_code())
    send(api)
    response = verify(api, sent_code())
    assert response.status_code == 200
    assert response.json()["is_new_user"] is False
    assert User.objects.count() == 1


def test_code_is_single_use(api):
    send(api)
    code = sent_code()
    assert verify(api, code).status_code == 200
    again = verify(api, code)
    assert again.status_code == 400
    assert error_code(again) == "invalid_code"


def test_a_new_code_kills_the_previous_one(api):
    send(api)
    first = sent_code()
    send(api)
    second = sent_code()
    if first != second:
        assert error_code(verify(api, first)) == "invalid_code"
    assert verify(api, second).status_code == 200


def test_code_expires_after_ten_minutes(api):
    # given a code sent now
    send(api)
    code = sent_code()
    # when ten minutes and a second pass
    with time_machine.travel(timezone.now() + timezone.timedelta(seconds=601)):
        response = verify(api, code)
    # then
    assert response.status_code == 400
    assert error_code(response) == "code_expired"


def test_code_still_valid_just_before_expiry(api):
    send(api)
    code = sent_code()
    with time_machine.travel(timezone.now() + timezone.timedelta(seconds=590)):
        assert verify(api, code).status_code == 200


def test_five_wrong_tries_kill_the_code(api):
    # given
    send(api)
    code = sent_code()
    wrong = "000000" if code != "000000" else "111111"
    # when five wrong tries are made
    answers = [error_code(verify(api, wrong)) for _ in range(5)]
    # then each is refused, and afterwards even the right code is dead
    assert answers == ["invalid_code"] * 5
    final = verify(api, code)
    assert final.status_code == 400
    assert error_code(final) == "too_many_attempts"
    assert PhoneOTP.objects.get().attempts == 5


@pytest.mark.parametrize("code", ["12345", "abcdef", "1234567", ""])
def test_malformed_codes_are_invalid(api, code):
    send(api)
    response = verify(api, code)
    assert response.status_code == 400
    assert error_code(response) in {"invalid_code", "blank"}


def test_verify_without_a_code_sent(api):
    response = verify(api, "123456")
    assert response.status_code == 400
    assert error_code(response) == "invalid_code"


@override_settings(BIDDT_TEST_PHONE_NUMBERS="+15555550100:123456,+15555550101:654321")
def test_test_numbers_use_their_fixed_code_and_send_no_sms(api):
    # when a listed test number asks for a code
    response = send(api, "+15555550100")
    # then no SMS goes out, and the fixed code logs in
    assert response.status_code == 202
    assert InMemoryBackend.outbox == []
    assert verify(api, "123456", "+15555550100").status_code == 200
    assert error_code(verify(api, "123456", "+15555550101")) == "invalid_code"
    assert verify(api, "654321", "+15555550101").status_code == 200


def test_fictional_numbers_are_refused_when_not_listed(api):
    assert error_code(send(api, "+15555550100")) == "invalid_phone_number"


@override_settings(THROTTLE_RATES={"auth_phone": "5/min", "auth_ip": "1000/min",
                                   "anon": "1000/min", "user": "1000/min"})
def test_send_limit_per_phone_number(api):
    # when one number asks six times in a minute
    statuses = [send(api).status_code for _ in range(6)]
    # then the sixth is throttled with Retry-After, and another number is unaffected
    assert statuses == [202] * 5 + [429]
    throttled = send(api)
    assert throttled.status_code == 429
    assert int(throttled["Retry-After"]) > 0
    assert throttled.json()["errors"][0]["code"] == "throttled"
    assert send(api, "+14165550199").status_code == 202


@override_settings(THROTTLE_RATES={"auth_phone": "1000/min", "auth_ip": "20/min",
                                   "anon": "1000/min", "user": "1000/min"})
def test_send_limit_per_ip_against_sms_pumping(api):
    # when one IP asks for codes for many different numbers
    statuses = [send(api, f"+1416555{n:04d}", REMOTE_ADDR="203.0.113.9").status_code
                for n in range(1000, 1021)]
    # then the 21st is throttled, and another IP is not
    assert statuses == [202] * 20 + [429]
    assert send(api, "+14165559999", REMOTE_ADDR="203.0.113.10").status_code == 202


@override_settings(BIDDT_OTP_PER_PHONE_PER_HOUR=3,
                   THROTTLE_RATES={"auth_phone": "1000/min", "auth_ip": "1000/min",
                                   "anon": "1000/min", "user": "1000/min"})
def test_hourly_cap_per_phone(api):
    statuses = [send(api).status_code for _ in range(4)]
    assert statuses == [202, 202, 202, 429]
    assert PhoneOTP.objects.filter(phone_index=phone_index(PHONE)).count() == 3


@override_settings(THROTTLE_RATES={"auth_phone": "5/min", "auth_ip": "1000/min",
                                   "anon": "1000/min", "user": "1000/min"})
def test_verify_is_throttled_per_phone_against_guessing(api):
    send(api)
    statuses = [verify(api, "999999").status_code for _ in range(5)]
    assert statuses[-1] == 429
