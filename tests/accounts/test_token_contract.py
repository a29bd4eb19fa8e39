"""API.md additions (2026-12), "The contract as documents": `POST /v1/auth/logout`, one-item
401s, and the `roles` claim of access tokens."""

from __future__ import annotations

import pytest
from drf_spectacular.generators import SchemaGenerator
from rest_framework_simplejwt.tokens import AccessToken

from accounts import services
from accounts.roles import ADMIN, SUPPORT, user_set_role
from tests.factories import UserFactory

LOGOUT = "/v1/auth/logout"
REFRESH = "/v1/auth/refresh"


def _login(user) -> tuple[str, str]:
    from accounts.tokens import UserRefreshToken

    refresh = UserRefreshToken.for_user(user)
    return str(refresh.access_token), str(refresh)


@pytest.mark.django_db
@pytest.mark.parametrize("method", ["post", "delete"])
def test_logout_by_post_or_delete_kills_the_refresh_token(api, user, method):
    # given a logged-in user
    _access, refresh = _login(user)
    # when the app logs out with either method
    response = getattr(api, method)(LOGOUT, {"refresh": refresh}, format="json")
    # then 204, and the refresh token is dead
    assert response.status_code == 204
    again = api.post(REFRESH, {"refresh": refresh}, format="json")
    assert again.status_code == 401
    assert again.json()["errors"] == [
        {"code": "token_not_valid", "detail": again.json()["errors"][0]["detail"], "attr": None}]


@pytest.mark.django_db
def test_logout_twice_by_post_is_401(api, user):
    _access, refresh = _login(user)
    assert api.post(LOGOUT, {"refresh": refresh}, format="json").status_code == 204
    response = api.post(LOGOUT, {"refresh": refresh}, format="json")
    assert response.status_code == 401
    assert [e["code"] for e in response.json()["errors"]] == ["token_not_valid"]


def test_both_logouts_are_in_the_schema_with_their_body():
    schema = SchemaGenerator().get_schema(request=None, public=True)
    operations = schema["paths"][LOGOUT]
    assert set(operations) >= {"post", "delete"}
    refs = {method: operations[method]["requestBody"]["content"]["application/json"]["schema"]
            for method in ("post", "delete")}
    assert refs["post"] == refs["delete"]
    name = refs["post"]["$ref"].rsplit("/", 1)[1]
    assert schema["components"]["schemas"][name]["required"] == ["refresh"]
    assert "204" in operations["post"]["responses"]


@pytest.mark.django_db
@pytest.mark.parametrize("header", [
    "Bearer nonsense",
    "Bearer eyJhbGciOiJIUzI1NiJ9.eyJ0b2tlbl90eXBlIjoiYWNjZXNzIn0.bad-signature",
])
def test_a_bad_token_is_one_401_item(api, header):
    # when a request carries a token that is not valid
    api.credentials(HTTP_AUTHORIZATION=header)
    response = api.get("/v1/users/me")
    # then one error item, token_not_valid, no attr
    assert response.status_code == 401
    body = response.json()
    assert body["type"] == "client_error"
    assert len(body["errors"]) == 1
    assert body["errors"][0]["code"] == "token_not_valid"
    assert body["errors"][0]["attr"] is None
    assert body["errors"][0]["detail"]


@pytest.mark.django_db
@pytest.mark.parametrize("header", ["Bearer", "Bearer two words"])
def test_a_malformed_bearer_header_is_one_token_not_valid_item(api, header):
    # when the Authorization header names the Bearer scheme without exactly one token
    api.credentials(HTTP_AUTHORIZATION=header)
    response = api.get("/v1/users/me")
    # then the one 401 item of the contract, not simplejwt's detail split in two items
    assert response.status_code == 401
    assert [(e["code"], e["attr"]) for e in response.json()["errors"]] == [
        ("token_not_valid", None)]


@pytest.mark.django_db
@pytest.mark.parametrize("gone", ["inactive", "missing"])
def test_a_token_of_a_closed_or_missing_account_is_one_token_not_valid_item(api, gone):
    # given a valid access token whose user was closed (deleted account) or no longer exists
    user = UserFactory()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {_login(user)[0]}")
    if gone == "inactive":
        type(user).objects.filter(pk=user.pk).update(is_active=False)
    else:
        user.delete()
    # when it is used
    response = api.get("/v1/users/me")
    # then one item, token_not_valid, no attr
    assert response.status_code == 401
    assert [(e["code"], e["attr"]) for e in response.json()["errors"]] == [
        ("token_not_valid", None)]
    assert response.json()["errors"][0]["detail"]


@pytest.mark.django_db
def test_no_token_is_one_401_item(api):
    body = api.get("/v1/users/me").json()
    assert [(e["code"], e["attr"]) for e in body["errors"]] == [("not_authenticated", None)]


@pytest.mark.django_db
@pytest.mark.parametrize(("role", "roles"), [
    (None, ["user"]),
    (SUPPORT, ["user", "support"]),
    (ADMIN, ["user", "admin"]),
])
def test_access_tokens_carry_the_roles_claim(role, roles):
    # given a user with a staff role (or none)
    user = UserFactory()
    if role:
        user_set_role(user=user, role=role)
    # when they log in and when they rotate their refresh token
    access, refresh = _login(user)
    rotated_access, _ = services.token_refresh(refresh=refresh)
    # then both access tokens name their roles
    assert AccessToken(access)["roles"] == roles
    assert AccessToken(rotated_access)["roles"] == roles


@pytest.mark.django_db
def test_a_phone_login_issues_tokens_with_roles(settings):
    settings.BIDDT_TEST_PHONE_NUMBERS = "+15555550199:424242"
    result = services.otp_verify(phone_number="+15555550199", code="424242")
    assert AccessToken(result.access)["roles"] == ["user"]


def test_the_schema_declares_only_the_two_401_codes():
    schema = SchemaGenerator().get_schema(request=None, public=True)
    response = schema["paths"]["/v1/users/me"]["get"]["responses"]["401"]
    ref = response["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[1]
    item = schema["components"]["schemas"][ref]["properties"]["errors"]["items"]["$ref"]
    enum = schema["components"]["schemas"][item.rsplit("/", 1)[1]]["properties"]["code"]["enum"]
    assert set(enum) == {"not_authenticated", "token_not_valid"}
    examples = response["content"]["application/json"]["examples"].values()
    assert {e["value"]["errors"][0]["code"] for e in examples} == set(enum)


@pytest.mark.django_db
def test_a_dead_refresh_token_detail_goes_through_translation(api, user, monkeypatch):
    # given a refresh token that was already used, and a translation marking what it renders
    from django.utils import translation

    _access, refresh = _login(user)
    assert api.post(LOGOUT, {"refresh": refresh}, format="json").status_code == 204
    monkeypatch.setattr(translation._trans, "gettext", lambda message: f"«{message}»")
    # when it is used again
    response = api.post(REFRESH, {"refresh": refresh}, format="json")
    # then the one 401 item's detail is a translated text (Accept-Language: fr gets French)
    (error,) = response.json()["errors"]
    assert error["code"] == "token_not_valid"
    assert error["detail"] == "«Token is blacklisted»"
