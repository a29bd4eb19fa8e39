"""JWT: lifetimes, rotation (raced), logout blacklist, suspended and banned users."""

from __future__ import annotations

import threading

import pytest
import time_machine
from django.db import close_old_connections
from django.utils import timezone
from rest_framework.test import APIClient
from rest_framework_simplejwt.tokens import AccessToken, RefreshToken

import biddt.settings as base_settings
from accounts.models import User
from tests.factories import UserFactory

REFRESH = "/v1/auth/refresh"
LOGOUT = "/v1/auth/logout"


def code_of(response) -> str:
    return response.json()["errors"][0]["code"]


def test_default_rates_and_lifetimes_match_the_contract():
    assert base_settings.THROTTLE_RATES["auth_phone"] == "5/min"
    assert base_settings.THROTTLE_RATES["auth_ip"] == "20/min"
    assert base_settings.THROTTLE_RATES["user"] == "100/min"
    assert base_settings.THROTTLE_RATES["bid"] == "10/min"
    assert base_settings.THROTTLE_RATES["listing_create"] == "5/hour"
    jwt = base_settings.SIMPLE_JWT
    assert jwt["ACCESS_TOKEN_LIFETIME"] == timezone.timedelta(minutes=15)
    assert jwt["REFRESH_TOKEN_LIFETIME"] == timezone.timedelta(days=7)


@pytest.mark.django_db
def test_access_token_lives_fifteen_minutes(api, user):
    token = str(RefreshToken.for_user(user).access_token)
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    with time_machine.travel(timezone.now() + timezone.timedelta(minutes=14)):
        assert api.get("/v1/users/me").status_code == 200
    with time_machine.travel(timezone.now() + timezone.timedelta(minutes=16)):
        response = api.get("/v1/users/me")
    assert response.status_code == 401
    assert code_of(response) == "token_not_valid"


@pytest.mark.django_db
def test_requests_without_or_with_a_garbage_token_are_401(api):
    assert code_of(api.get("/v1/users/me")) == "not_authenticated"
    api.credentials(HTTP_AUTHORIZATION="Bearer nonsense")
    response = api.get("/v1/users/me")
    assert response.status_code == 401
    assert code_of(response) == "token_not_valid"


@pytest.mark.django_db
def test_refresh_rotates_and_kills_the_old_token(api, user):
    # given
    old = str(RefreshToken.for_user(user))
    # when
    response = api.post(REFRESH, {"refresh": old}, format="json")
    # then a new pair is issued and the old refresh is dead
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"access", "refresh"}
    assert body["refresh"] != old
    assert AccessToken(body["access"])["user_id"] == str(user.id)
    again = api.post(REFRESH, {"refresh": old}, format="json")
    assert again.status_code == 401
    assert code_of(again) == "token_not_valid"
    assert api.post(REFRESH, {"refresh": body["refresh"]}, format="json").status_code == 200


@pytest.mark.django_db
def test_refresh_token_expires_after_seven_days(api, user):
    token = str(RefreshToken.for_user(user))
    with time_machine.travel(timezone.now() + timezone.timedelta(days=7, minutes=1)):
        response = api.post(REFRESH, {"refresh": token}, format="json")
    assert response.status_code == 401


@pytest.mark.django_db
def test_access_token_is_not_a_refresh_token(api, user):
    access = str(RefreshToken.for_user(user).access_token)
    assert api.post(REFRESH, {"refresh": access}, format="json").status_code == 401


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_concurrent_refreshes_of_one_token_exactly_one_succeeds():
    # given one refresh token, used by many clients at the same instant, several rounds
    user = UserFactory()
    for _round in range(5):
        token = str(RefreshToken.for_user(user))
        barrier = threading.Barrier(4)
        statuses: list[int] = []
        lock = threading.Lock()

        def refresh(token=token, barrier=barrier, statuses=statuses, lock=lock):
            client = APIClient()
            barrier.wait()
            try:
                status = client.post(REFRESH, {"refresh": token}, format="json").status_code
            finally:
                close_old_connections()
            with lock:
                statuses.append(status)

        threads = [threading.Thread(target=refresh) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        # then exactly one rotation wins
        assert sorted(statuses) == [200, 401, 401, 401], statuses


@pytest.mark.django_db
def test_logout_blacklists_the_refresh_token(api, user):
    token = str(RefreshToken.for_user(user))
    response = api.delete(LOGOUT, {"refresh": token}, format="json")
    assert response.status_code == 204
    assert api.post(REFRESH, {"refresh": token}, format="json").status_code == 401
    assert api.delete(LOGOUT, {"refresh": token}, format="json").status_code == 401


@pytest.mark.django_db
def test_logout_needs_a_token(api):
    response = api.delete(LOGOUT, {}, format="json")
    assert response.status_code == 400
    assert response.json()["errors"][0]["attr"] == "refresh"


@pytest.mark.django_db
def test_suspended_user_can_read_but_every_write_is_403(auth_api, user):
    # given
    user.status = User.Status.SUSPENDED
    user.save()
    # then reads work, writes are refused with account_suspended
    assert auth_api.get("/v1/users/me").status_code == 200
    response = auth_api.patch("/v1/users/me", {"display_name": "x"}, format="json")
    assert response.status_code == 403
    assert code_of(response) == "account_suspended"
    response = auth_api.post("/v1/users/me/devices", {"token": "t", "platform": "ios"},
                             format="json")
    assert code_of(response) == "account_suspended"


@pytest.mark.django_db
def test_suspended_user_cannot_refresh_or_log_in(api, user, settings):
    settings.BIDDT_TEST_PHONE_NUMBERS = "+15555550100:123456"
    token = str(RefreshToken.for_user(user))
    user.status = User.Status.SUSPENDED
    user.save()
    response = api.post(REFRESH, {"refresh": token}, format="json")
    assert response.status_code == 403
    assert code_of(response) == "account_suspended"
    suspended = UserFactory(phone_number="+15555550100", status=User.Status.SUSPENDED)
    assert suspended.is_suspended
    login = api.post("/v1/auth/phone/verify", {"phone_number": "+15555550100", "code": "123456"},
                     format="json")
    assert login.status_code == 403
    assert code_of(login) == "account_suspended"


@pytest.mark.django_db
def test_banned_user_token_stops_working_at_once(auth_api, user):
    user.is_active = False
    user.save()
    response = auth_api.get("/v1/users/me")
    assert response.status_code == 401
