"""Operator commands: seed_demo, create_staff, rotate_pii_keys."""

from __future__ import annotations

import base64
import io
import os

import pytest
from django.contrib.auth.models import Group
from django.core.management import CommandError, call_command
from django.db import connection

from accounts.models import User, phone_index
from listings.models import Listing
from safezones.models import SafeZone
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def run(*args) -> str:
    out = io.StringIO()
    call_command(*args, stdout=out, stderr=io.StringIO())
    return out.getvalue()


def test_seed_demo_is_idempotent_and_prints_logins(settings):
    settings.BIDDT_TEST_PHONE_NUMBERS = "+15555550100:123456,+15555550101:654321"
    first = run("seed_demo", "--listings", "5")
    run("seed_demo", "--listings", "5")
    assert "+15555550100  code 123456" in first
    assert "+15555550199" in first
    assert Listing.objects.count() == 5
    assert Listing.objects.filter(status="active").count() == 5
    assert User.objects.count() == 3  # admin + two demo users
    assert SafeZone.objects.count() == 4
    admin = User.objects.get(phone_index=phone_index("+15555550199"))
    assert admin.is_staff and admin.is_superuser
    assert admin.check_password("biddt-demo-admin")


def test_seed_demo_lists_only_the_demo_users_it_seeded(settings):
    # given a database that already has other users, and two demo numbers
    others = [UserFactory(display_name=f"Someone {i}") for i in range(3)]
    settings.BIDDT_TEST_PHONE_NUMBERS = "+15555550100:123456,+15555550101:654321"
    # when the demo data is loaded
    out = run("seed_demo", "--listings", "2")
    # then the logins printed are the admin and the two demo sellers, no one else
    lines = [line.strip() for line in out.splitlines() if "  code " in line]
    assert lines == ["+15555550100  code 123456  Jordan", "+15555550101  code 654321  Priya"]
    sellers = set(Listing.objects.values_list("seller__display_name", flat=True))
    assert sellers == {"Jordan", "Priya"}
    for user in others:
        assert user.display_name not in out
        assert user.phone_number not in out


def test_seed_demo_without_test_numbers_prints_no_logins(settings):
    # given no test numbers (the sellers can't log in: no code exists for them)
    settings.BIDDT_TEST_PHONE_NUMBERS = ""
    UserFactory(display_name="Someone")
    out = run("seed_demo", "--listings", "1")
    # then no user is listed, only how to get demo logins
    assert "  code " not in out
    assert "Set BIDDT_TEST_PHONE_NUMBERS" in out
    assert "Someone" not in out


def test_seed_demo_refuses_production(settings):
    settings.PRODUCTION = True
    with pytest.raises(CommandError, match="production"):
        run("seed_demo")


def test_create_staff_sets_role_groups_and_flags():
    out = run("create_staff", "--phone", "+14165550142", "--role", "support",
              "--password", "s3cret-pass")
    user = User.objects.get(phone_index=phone_index("+14165550142"))
    assert "created" in out
    assert user.is_staff and not user.is_superuser
    assert list(user.groups.values_list("name", flat=True)) == ["support"]
    run("create_staff", "--phone", "+14165550142", "--role", "admin", "--password",
        "an0ther-pass")
    user.refresh_from_db()
    assert user.is_superuser
    assert list(user.groups.values_list("name", flat=True)) == ["admin"]
    assert user.check_password("an0ther-pass")


@pytest.mark.parametrize("args,match", [
    (["--phone", "nope", "--role", "admin", "--password", "longenough"], "not a phone"),
    (["--phone", "+14165550142", "--role", "admin", "--password", "short"], "8 characters"),
])
def test_create_staff_refuses_bad_input(args, match):
    with pytest.raises(CommandError, match=match):
        run("create_staff", *args)


def test_support_role_moderates_but_cannot_manage_staff_or_groups():
    support = Group.objects.get(name="support")
    perms = set(support.permissions.values_list("codename", flat=True))
    assert {"change_listing", "change_dispute", "view_transaction", "change_user"} <= perms
    assert "change_group" not in perms
    assert "delete_transaction" not in perms
    assert "change_ledgerentry" not in perms


def test_rotate_pii_keys_reencrypts_under_the_new_key(settings):
    # given users encrypted under the old key
    users = [UserFactory(email=f"u{i}@example.com") for i in range(3)]
    old = settings.BIDDT_PII_KEYS
    new_key = base64.b64encode(os.urandom(32)).decode()
    # when a new key is put first and the command runs
    settings.BIDDT_PII_KEYS = f"k2:{new_key},{old}"
    out = run("rotate_pii_keys", "--batch-size", "2")
    # then every stored value is under k2 and still decrypts
    assert "3 of 3 users re-encrypted under key 'k2'" in out
    with connection.cursor() as cur:
        cur.execute("SELECT phone_number, email FROM accounts_user")
        rows = cur.fetchall()
    assert all(v.startswith("k2:") for row in rows for v in row)
    settings.BIDDT_PII_KEYS = f"k2:{new_key}"
    assert {User.objects.get(pk=u.pk).email for u in users} == {
        "u0@example.com", "u1@example.com", "u2@example.com"}
    assert "0 of 3" in run("rotate_pii_keys")
