"""Users: me, profile update with avatar, public profile, devices, PII encrypted at rest."""

from __future__ import annotations

import io
import logging

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from PIL import Image

from accounts.models import Device, User
from biddt.logging import PhoneNumberRedactingFilter
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def png_bytes(size=(64, 48), fmt="PNG", exif: bytes | None = None) -> bytes:
    out = io.BytesIO()
    image = Image.new("RGB", size, (200, 30, 30))
    kwargs = {"exif": exif} if exif else {}
    image.save(out, format=fmt, **kwargs)
    return out.getvalue()


def test_me_returns_the_contract_fields(auth_api, user):
    body = auth_api.get("/v1/users/me").json()
    assert body == {
        "id": str(user.id), "phone_number": user.phone_number, "email": None,
        "display_name": user.display_name, "avatar_url": None, "status": "active",
        "created_at": body["created_at"], "rating_avg": None, "rating_count": 0,
        "language": "en",
    }


def test_patch_me_updates_name_and_email(auth_api, user):
    response = auth_api.patch("/v1/users/me", {"display_name": "  Jordan ",
                                               "email": "Jordan@Example.com"}, format="json")
    assert response.status_code == 200
    assert response.json()["display_name"] == "Jordan"
    assert response.json()["email"] == "jordan@example.com"
    user.refresh_from_db()
    assert user.email == "jordan@example.com"


def test_email_is_unique_across_accounts(auth_api):
    UserFactory(email="taken@example.com")
    response = auth_api.patch("/v1/users/me", {"email": "TAKEN@example.com"}, format="json")
    assert response.status_code == 400
    assert response.json()["errors"][0] == {
        "code": "email_taken", "detail": "This e-mail address is used by another account.",
        "attr": "email"}


@pytest.mark.parametrize("payload,attr", [
    ({"email": "not-an-email"}, "email"),
    ({"display_name": ""}, "display_name"),
    ({"display_name": "x" * 51}, "display_name"),
    ({"display_name": "\x00\x01"}, "display_name"),
])
def test_patch_me_validation(auth_api, payload, attr):
    response = auth_api.patch("/v1/users/me", payload, format="json")
    assert response.status_code == 400
    assert response.json()["errors"][0]["attr"] == attr


def test_email_can_be_cleared(auth_api, user):
    user.set_email("a@example.com")
    user.save()
    response = auth_api.patch("/v1/users/me", {"email": None}, format="json")
    assert response.status_code == 200
    assert response.json()["email"] is None
    user.refresh_from_db()
    assert user.email_index is None


def test_avatar_upload_is_reencoded_without_exif(auth_api, user):
    # given a JPEG carrying EXIF (GPS location would live there)
    exif = Image.Exif()
    exif[0x010F] = "SecretCamera"  # Make
    upload = SimpleUploadedFile("me.jpg", png_bytes((1200, 900), "JPEG", exif.tobytes()),
                                content_type="image/jpeg")
    # when
    response = auth_api.patch("/v1/users/me", {"avatar": upload}, format="multipart")
    # then the stored copy is resized and carries no metadata
    assert response.status_code == 200
    assert response.json()["avatar_url"].startswith("http://testserver/media/avatars/")
    user.refresh_from_db()
    with user.avatar.open("rb") as fh:
        data = fh.read()
    stored = Image.open(io.BytesIO(data))
    assert max(stored.size) == 512
    assert b"SecretCamera" not in data
    assert not stored.getexif()


def test_avatar_must_be_an_image_by_content(auth_api):
    fake = SimpleUploadedFile("photo.jpg", b"MZ\x90\x00 not an image at all",
                              content_type="image/jpeg")
    response = auth_api.patch("/v1/users/me", {"avatar": fake}, format="multipart")
    assert response.status_code == 400
    assert response.json()["errors"][0]["code"] == "invalid_image"


def test_avatar_refuses_other_formats(auth_api):
    gif = SimpleUploadedFile("a.gif", png_bytes(fmt="GIF"), content_type="image/gif")
    response = auth_api.patch("/v1/users/me", {"avatar": gif}, format="multipart")
    assert response.json()["errors"][0]["code"] == "invalid_image"


def test_avatar_size_limit(auth_api, settings):
    settings.BIDDT_MAX_AVATAR_BYTES = 1000
    big = SimpleUploadedFile("a.png", png_bytes((400, 400)) + b"\0" * 2000,
                             content_type="image/png")
    response = auth_api.patch("/v1/users/me", {"avatar": big}, format="multipart")
    assert response.json()["errors"][0]["code"] == "invalid_image"


def test_public_profile_never_shows_phone_or_email(api):
    seller = UserFactory(display_name="Sam", email="sam@example.com")
    response = api.get(f"/v1/users/{seller.id}/profile")
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"id", "display_name", "avatar_url", "member_since", "rating_avg",
                         "rating_count", "completed_sales"}
    assert seller.phone_number not in str(body)
    assert "sam@example.com" not in str(body)


def test_profile_of_unknown_user_is_404(api):
    response = api.get("/v1/users/00000000-0000-0000-0000-000000000000/profile")
    assert response.status_code == 404
    assert response.json()["type"] == "client_error"


def test_device_registration_and_move(auth_api, user):
    response = auth_api.post("/v1/users/me/devices", {"token": "fcm-abc", "platform": "ios"},
                             format="json")
    assert response.status_code == 201
    assert response.json()["platform"] == "ios"
    again = auth_api.post("/v1/users/me/devices", {"token": "fcm-abc", "platform": "ios"},
                          format="json")
    assert again.status_code == 200
    other = UserFactory()
    from tests.conftest import bearer

    auth_api.credentials(HTTP_AUTHORIZATION=bearer(other))
    auth_api.post("/v1/users/me/devices", {"token": "fcm-abc", "platform": "android"},
                  format="json")
    device = Device.objects.get()
    assert device.user == other and device.platform == "android"


def test_device_platform_is_validated(auth_api):
    response = auth_api.post("/v1/users/me/devices", {"token": "t", "platform": "windows"},
                             format="json")
    assert response.status_code == 400
    assert response.json()["errors"][0]["attr"] == "platform"


def test_database_rows_hold_no_plain_phone_or_email():
    # given
    user = UserFactory(phone_number="+14165550777", email="private@example.com")
    # when reading the raw row
    with connection.cursor() as cur:
        cur.execute("SELECT * FROM accounts_user WHERE id = %s",
                    [user.id.hex if connection.vendor == "sqlite" else user.id])
        raw = " ".join(str(v) for v in cur.fetchone())
    # then neither value appears, but the model decrypts them
    assert "4165550777" not in raw
    assert "private@example.com" not in raw
    fresh = User.objects.get(pk=user.pk)
    assert fresh.phone_number == "+14165550777"
    assert fresh.email == "private@example.com"
    assert User.objects.get_by_natural_key("+1 416 555 0777") == fresh


def test_a_log_record_with_a_phone_number_shows_only_its_hash(caplog):
    # given a handler carrying the project's redacting filter
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(PhoneNumberRedactingFilter())
    logger = logging.getLogger("biddt.test.phones")
    logger.addHandler(handler)
    try:
        # when an OTP send is logged
        from accounts.services import otp_send

        logging.getLogger("accounts.services").addHandler(handler)
        otp_send(phone_number="+14165550123")
        logger.warning("lookup for %s failed", "+14165550123")
    finally:
        logger.removeHandler(handler)
        logging.getLogger("accounts.services").removeHandler(handler)
    # then
    output = stream.getvalue()
    assert "4165550123" not in output
    assert output.count("phone#") == 2
