"""`manage.py rotate_pii_keys [--reindex] [--dry-run]`: key rotation of personal data.

Runs on SQLite and on PostgreSQL (set DATABASE_URL): the batches lock rows
(select_for_update) and each collision is caught in its own savepoint there.
"""

from __future__ import annotations

import base64
import io
import os

import pytest
from django.core.management import CommandError, call_command
from django.db import connection

from accounts.models import Device, PhoneOTP, User, email_index, phone_index
from accounts.services import device_register, otp_send
from biddt import crypto
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

TEST_CODE = "246810"


def new_key() -> str:
    return base64.b64encode(os.urandom(32)).decode()


def run(*args) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    call_command("rotate_pii_keys", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def stored() -> dict:
    """Every column the command may write, as stored (ciphertexts, not decrypted)."""
    with connection.cursor() as cur:
        cur.execute("SELECT id, phone_number, email, phone_index, email_index FROM accounts_user")
        users = {row[0]: row[1:] for row in cur.fetchall()}
        cur.execute("SELECT id, token_index FROM accounts_device")
        devices = dict(cur.fetchall())
        cur.execute("SELECT id, consumed_at FROM accounts_phoneotp")
        codes = dict(cur.fetchall())
    return {"users": users, "devices": devices, "codes": codes}


def log_in(api, phone: str) -> dict:
    assert api.post("/v1/auth/phone/send-code", {"phone_number": phone},
                    format="json").status_code == 202
    response = api.post("/v1/auth/phone/verify", {"phone_number": phone, "code": TEST_CODE},
                        format="json")
    assert response.status_code == 200, response.content
    return response.json()


@pytest.fixture
def people():
    users = [UserFactory(email=f"U{i}@Example.com") for i in range(5)] + [UserFactory()]
    for i, user in enumerate(users[:3]):
        device_register(user=user, token=f"fcm-token-{i}", platform="android")
    return users


def test_rotation_reencrypts_every_value_under_the_new_key(settings, people):
    # given a new key put first, the old one kept after it
    settings.BIDDT_PII_KEYS = f"k2:{new_key()},{settings.BIDDT_PII_KEYS}"
    # when the command runs in small batches
    out, _ = run("--batch-size", "2")
    # then every stored value is under k2 and reads back once the old key is gone
    assert "6 of 6 users re-encrypted under key 'k2'" in out
    values = [v for row in stored()["users"].values() for v in row[:2] if v]
    assert len(values) == 11 and all(v.startswith("k2:") for v in values)
    settings.BIDDT_PII_KEYS = settings.BIDDT_PII_KEYS.split(",")[0]
    assert sorted(User.objects.exclude(email="").values_list("email", flat=True)) == [
        f"u{i}@example.com" for i in range(5)]
    # and a second run has nothing to do
    assert "0 of 6 users re-encrypted" in run()[0]


def test_reindex_after_an_hmac_key_change_lets_everyone_log_in_again(settings, api, people):
    settings.BIDDT_TEST_PHONE_NUMBERS = f"{people[0].phone_number}:{TEST_CODE}"
    before = log_in(api, people[0].phone_number)
    PhoneOTP.objects.update(consumed_at=None)  # an open code keyed with the old key
    # given a new HMAC key deployed: the stored indexes are stale
    settings.BIDDT_PII_HMAC_KEY = new_key()
    assert not User.objects.filter(phone_index=phone_index(people[0].phone_number)).exists()
    # when the command rebuilds the indexes
    out, _ = run("--reindex", "--batch-size", "4")
    # then every user's phone and e-mail index, and every device's, is under the new key
    assert "6 of 6 users' blind indexes were rebuilt" in out
    assert "3 of 3 device tokens' blind indexes were rebuilt" in out
    for user in people:
        fresh = User.objects.get(phone_index=phone_index(user.phone_number))
        assert fresh.pk == user.pk
        assert fresh.email_index == (email_index(fresh.email) if fresh.email else None)
    assert set(Device.objects.values_list("token_index", flat=True)) == {
        crypto.blind_index(f"fcm-token-{i}", purpose="device") for i in range(3)}
    # and the open code keyed with the old key is ended
    assert not PhoneOTP.objects.filter(consumed_at__isnull=True).exists()
    # and logging in by phone finds the same account, not a new one
    after = log_in(api, people[0].phone_number)
    assert after["is_new_user"] is False
    assert after["user"]["id"] == before["user"]["id"]
    # and it is safe to run again
    assert "0 of 6 users' blind indexes were rebuilt" in run("--reindex")[0]


def test_dry_run_reports_and_writes_nothing(settings, people):
    settings.BIDDT_PII_KEYS = f"k2:{new_key()},{settings.BIDDT_PII_KEYS}"
    settings.BIDDT_PII_HMAC_KEY = new_key()
    otp_send(phone_number=people[5].phone_number)
    before = stored()
    out, _ = run("--reindex", "--dry-run")
    assert stored() == before
    assert "6 of 6 users would be re-encrypted under key 'k2'" in out
    assert "6 of 6 users' blind indexes would be rebuilt" in out
    assert "3 of 3 device tokens' blind indexes would be rebuilt" in out
    assert "1 open login codes would be ended" in out
    assert "nothing was written" in out


def test_wrong_keys_are_refused_before_anything_is_written(settings, people):
    # given an operator who replaced the key instead of putting the new one first
    settings.BIDDT_PII_KEYS = f"dev1:{new_key()}"
    before = stored()
    # when the command runs
    with pytest.raises(CommandError, match="refusing to run") as refused:
        run("--reindex")
    # then it exits with 2, names the problem, and wrote nothing
    assert refused.value.returncode == 2
    assert "can't be decrypted with BIDDT_PII_KEYS" in str(refused.value)
    assert stored() == before


def test_a_collision_under_the_new_key_is_reported_not_a_crash(settings, people):
    # given a user who signed up again with the same number while indexes were stale
    settings.BIDDT_PII_HMAC_KEY = new_key()
    duplicate = UserFactory(phone_number=people[2].phone_number)
    # when the indexes are rebuilt
    with pytest.raises(CommandError, match="1 rows could not be rotated") as failed:
        out, err = io.StringIO(), io.StringIO()
        call_command("rotate_pii_keys", "--reindex", stdout=out, stderr=err)
    # then that user is listed and left as it was, every other user is reindexed
    assert failed.value.returncode == 1
    assert f"user {people[2].pk}" in err.getvalue()
    assert "5 of 7 users' blind indexes were rebuilt" in out.getvalue()  # the new one is current
    assert User.objects.get(phone_index=phone_index(people[2].phone_number)) == duplicate
    for user in people[:2] + people[3:]:
        assert User.objects.get(phone_index=phone_index(user.phone_number)) == user


def test_reindex_rebuilds_the_last_four_digits_index(settings, people):
    from accounts.models import phone_last4_index

    # given a new HMAC key: staff search by the last four digits finds nobody
    settings.BIDDT_PII_HMAC_KEY = new_key()
    last4 = people[0].phone_number[-4:]
    assert not User.objects.filter(phone_last4_index=phone_last4_index(last4)).exists()
    # when the indexes are rebuilt
    run("--reindex")
    # then it finds them again (under the new key)
    for user in people:
        assert User.objects.get(pk=user.pk).phone_last4_index == \
            phone_last4_index(user.phone_number)
    assert people[0].pk in set(User.objects.filter(
        phone_last4_index=phone_last4_index(last4)).values_list("pk", flat=True))


def test_the_migration_backfills_the_last_four_digits_index(people):
    import importlib

    from django.apps import apps

    from accounts.models import phone_last4_index

    migration = importlib.import_module("accounts.migrations.0003_phone_last4_console")
    User.objects.update(phone_last4_index=None)
    migration.backfill_last4(apps, None)
    for user in people:
        assert User.objects.get(pk=user.pk).phone_last4_index == \
            phone_last4_index(user.phone_number)
