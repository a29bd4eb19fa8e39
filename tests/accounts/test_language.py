"""The user's `language` (issue 20): en by default, fr on request, nothing else."""

from __future__ import annotations

import pytest

from accounts.models import User

pytestmark = pytest.mark.django_db


def test_language_defaults_to_english(auth_api):
    assert auth_api.get("/v1/users/me").json()["language"] == "en"


def test_patch_language_to_french_is_stored_and_returned(auth_api, user):
    response = auth_api.patch("/v1/users/me", {"language": "fr"}, format="json")
    assert response.status_code == 200
    assert response.json()["language"] == "fr"
    assert User.objects.get(pk=user.pk).language == "fr"
    assert auth_api.get("/v1/users/me").json()["language"] == "fr"


@pytest.mark.parametrize("value", ["de", "FR", "fr-CA", "", None, 3])
def test_other_languages_are_refused(auth_api, user, value):
    response = auth_api.patch("/v1/users/me", {"language": value}, format="json")
    assert response.status_code == 400
    error = response.json()["errors"][0]
    assert error["attr"] == "language"
    assert error["code"] in {"invalid_choice", "null"}
    assert User.objects.get(pk=user.pk).language == "en"


def test_the_deleted_user_name_is_reserved(auth_api):
    response = auth_api.patch("/v1/users/me", {"display_name": "deleted USER"}, format="json")
    assert response.status_code == 400
    assert response.json()["errors"][0]["code"] == "reserved"
