"""The staff console's login limit (django-axes): lockout, audit, unlock, and no API cost."""

from __future__ import annotations

import pytest
from axes.models import AccessAttempt
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from accounts.roles import ADMIN, SUPPORT, user_set_role
from biddt.core.models import AuditEntry
from tests.conftest import bearer
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

PHONE, PASSWORD = "+14165550177", "right-password-1"
LOGIN = "/admin/login/?next=/admin/"


@pytest.fixture
def staff_member():
    user = UserFactory(phone_number=PHONE, display_name="Support Sam")
    user.set_password(PASSWORD)
    user.save()
    user_set_role(user=user, role=SUPPORT)
    return user


def login(client: Client, password: str, *, username: str = PHONE, ip: str = "198.51.100.7"):
    return client.post(LOGIN, {"username": username, "password": password},
                       REMOTE_ADDR=ip)


def test_lockout_after_the_limit_even_with_the_right_password(settings, staff_member):
    # given the limit (BIDDT_ADMIN_LOGIN_FAILURES, 5 by default)
    limit = settings.AXES_FAILURE_LIMIT
    assert limit == 5
    client = Client()
    # when someone tries wrong passwords up to the limit
    answers = [login(client, f"wrong-{i}") for i in range(limit)]
    # then the tries before the limit get the login form again (200), the last the lockout
    assert [a.status_code for a in answers[:-1]] == [200] * (limit - 1)
    assert answers[-1].status_code == 429
    # and the right password is refused too, with the lockout page, not a redirect
    right = login(client, PASSWORD)
    assert right.status_code == 429
    assert b"Too many failed logins" in right.content
    assert "_auth_user_id" not in client.session
    # the same password typed with spaces is the same username (the blind index of the number)
    assert login(Client(), PASSWORD, username="+1 416 555 0177").status_code == 429
    # and nobody else is affected: the same account from another address logs in
    other = login(Client(), PASSWORD, ip="203.0.113.9")
    assert other.status_code == 302 and other["Location"] == "/admin/"


def test_a_right_password_below_the_limit_logs_in_and_starts_the_count_again(settings,
                                                                            staff_member):
    client = Client()
    for i in range(settings.AXES_FAILURE_LIMIT - 1):
        assert login(client, f"wrong-{i}").status_code == 200
    assert login(client, PASSWORD).status_code == 302
    assert not AccessAttempt.objects.exists()


def test_limit_and_lockout_time_come_from_the_environment():
    # read by a fresh process, as a deployment would (settings are read once, at start)
    import os
    import subprocess
    import sys

    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "biddt.settings_test",
           "BIDDT_ADMIN_LOGIN_FAILURES": "3", "BIDDT_ADMIN_LOCKOUT_MINUTES": "10"}
    out = subprocess.run(
        [sys.executable, "-c", "import django; django.setup(); from django.conf import settings;"
         " print(settings.AXES_FAILURE_LIMIT, int(settings.AXES_COOLOFF_TIME.total_seconds()))"],
        env=env, capture_output=True, text=True, check=True, cwd=settings_dir())
    assert out.stdout.split()[-2:] == ["3", "600"]


def settings_dir() -> str:
    from pathlib import Path

    from django.conf import settings

    return str(Path(settings.BASE_DIR))


def test_attempts_store_no_phone_number(settings, staff_member):
    for i in range(2):
        login(Client(), f"wrong-{i}")
    attempt = AccessAttempt.objects.get()
    assert PHONE not in attempt.username and "4165550177" not in attempt.post_data
    assert attempt.username == staff_member.phone_index
    assert attempt.ip_address == "198.51.100.7"


def test_client_ip_is_the_one_the_throttles_see(settings, staff_member):
    # behind one proxy (BIDDT_NUM_PROXIES=1) the client is the proxy's entry in XFF
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "NUM_PROXIES": 1}
    from rest_framework import settings as drf_settings

    drf_settings.api_settings.reload()
    try:
        Client().post(LOGIN, {"username": PHONE, "password": "wrong"}, REMOTE_ADDR="10.0.0.2",
                      HTTP_X_FORWARDED_FOR="192.0.2.44")
    finally:
        settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "NUM_PROXIES": 0}
        drf_settings.api_settings.reload()
    assert AccessAttempt.objects.get().ip_address == "192.0.2.44"
    # with no proxy trusted, a forged header is ignored
    Client().post(LOGIN, {"username": PHONE, "password": "wrong"}, REMOTE_ADDR="10.0.0.3",
                  HTTP_X_FORWARDED_FOR="192.0.2.45")
    assert set(AccessAttempt.objects.values_list("ip_address", flat=True)) == {
        "192.0.2.44", "10.0.0.3"}


def test_every_failure_and_the_lockout_are_audited(settings, staff_member):
    client = Client()
    for i in range(settings.AXES_FAILURE_LIMIT):
        login(client, f"wrong-{i}")
    login(client, PASSWORD)  # refused while locked out: a failure again
    failed = AuditEntry.objects.filter(action="staff.login_failed")
    locked = AuditEntry.objects.filter(action="staff.login_locked_out")
    assert failed.count() == settings.AXES_FAILURE_LIMIT + 1
    assert locked.count() >= 1
    entry = locked.order_by("created_at").first()
    assert entry.object_id == str(staff_member.pk)
    assert entry.after["ip_address"] == "198.51.100.7"
    assert entry.actor is None
    # a failure for a number with no account is audited too, without naming anyone
    login(Client(), "whatever", username="+14165550999")
    unknown = AuditEntry.objects.filter(action="staff.login_failed", object_id="")
    assert unknown.count() == 1 and unknown.get().after["known_user"] is False


def test_an_admin_unlocks_the_login_from_the_user_page(settings, staff_member):
    client = Client()
    for i in range(settings.AXES_FAILURE_LIMIT):
        login(client, f"wrong-{i}")
    assert login(client, PASSWORD).status_code == 429
    # given an admin and a support user in the console
    admin_user = UserFactory(display_name="Admin Ada")
    user_set_role(user=admin_user, role=ADMIN)
    support = UserFactory(display_name="Support Sue")
    user_set_role(user=support, role=SUPPORT)
    changelist = reverse("admin:accounts_user_changelist")
    action = {"action": "unlock_staff_login", "_selected_action": [str(staff_member.pk)],
              "reason": "locked himself out"}
    # support can't: the action isn't offered to them
    support_client = Client()
    support_client.force_login(support)
    page = support_client.get(changelist)
    assert b"unlock_staff_login" not in page.content
    support_client.post(changelist, action)
    assert login(Client(), PASSWORD).status_code == 429
    assert not support_client.get(reverse("admin:axes_accessattempt_changelist")).status_code \
        == 200
    # when the admin runs the action
    admin_client = Client()
    admin_client.force_login(admin_user)
    assert b"unlock_staff_login" in admin_client.get(changelist).content
    response = admin_client.post(changelist, action, follow=True)
    assert b"1 login(s) unlocked." in response.content
    # then the right password works again, and the unlock is in the audit log
    assert login(Client(), PASSWORD).status_code == 302
    entry = AuditEntry.objects.get(action="staff.login_unlock")
    assert (entry.actor, entry.object_id, entry.reason) == (
        admin_user, str(staff_member.pk), "locked himself out")
    # and admins see axes' pages
    assert admin_client.get(reverse("admin:axes_accessattempt_changelist")).status_code == 200


def test_the_api_pays_nothing_for_the_login_limit(auth_api, user):
    # the JWT-authenticated API makes the same queries with or without axes in the chain
    with CaptureQueriesContext(connection) as queries:
        response = auth_api.get("/v1/users/me")
    assert response.status_code == 200
    assert not [q for q in queries.captured_queries if "axes_" in q["sql"]]
    # and an API token never meets axes' backend (no attempt stored for a bad one either)
    client = Client()
    bad = client.get("/v1/users/me", HTTP_AUTHORIZATION=bearer(user) + "x")
    assert bad.status_code == 401
    assert not AccessAttempt.objects.exists()
