"""Every model is in the staff console, and its pages render for an admin."""

from __future__ import annotations

import pytest
from django.apps import apps
from django.contrib import admin
from django.http import HttpRequest
from django.test import Client
from django.urls import reverse

from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

PROJECT_APPS = {"accounts", "listings", "bidding", "escrow", "chat", "safezones",
                "notifications", "core"}


def project_models():
    return [m for m in apps.get_models()
            if m._meta.app_label in PROJECT_APPS and not m.__name__.startswith("Historical")]


def test_every_project_model_is_registered():
    missing = [m.__name__ for m in project_models() if not admin.site.is_registered(m)]
    assert missing == []


@pytest.fixture
def admin_client() -> Client:
    user = UserFactory(phone_number="+14165550188", is_staff=True, is_superuser=True)
    user.set_password("pw-for-admin-1")
    user.save()
    client = Client()
    # django-axes (the login limit) needs the request that logs in
    request = HttpRequest()
    request.META["REMOTE_ADDR"] = "127.0.0.1"
    assert client.login(request=request, username="+1 416 555 0188", password="pw-for-admin-1")
    return client


@pytest.mark.parametrize("model", project_models(), ids=lambda m: m.__name__)
def test_changelist_and_add_pages_render(admin_client, model):
    opts = model._meta
    changelist = admin_client.get(reverse(f"admin:{opts.app_label}_{opts.model_name}_changelist"))
    assert changelist.status_code == 200
    add = admin_client.get(reverse(f"admin:{opts.app_label}_{opts.model_name}_add"))
    assert add.status_code in (200, 403)  # 403 where adding by hand is disabled on purpose


def test_user_search_finds_an_exact_phone_number(admin_client):
    target = UserFactory(phone_number="+14165550166", display_name="Findme")
    page = admin_client.get(reverse("admin:accounts_user_changelist"), {"q": "+14165550166"})
    assert page.status_code == 200
    assert str(target.id)[:8] in page.content.decode()


def test_admin_adds_a_staff_user_by_phone_number(admin_client):
    from accounts.models import User, phone_index

    response = admin_client.post(reverse("admin:accounts_user_add"), {
        "phone_number": "+1 416 555 0177", "display_name": "Support Sue",
        "password1": "a-long-enough-pw-1", "password2": "a-long-enough-pw-1",
    })
    assert response.status_code == 302, response.content.decode()[:2000]
    user = User.objects.get(phone_index=phone_index("+14165550177"))
    assert user.phone_number == "+14165550177"
    assert user.check_password("a-long-enough-pw-1")


def test_admin_add_user_refuses_a_bad_number(admin_client):
    response = admin_client.post(reverse("admin:accounts_user_add"), {
        "phone_number": "banana", "password1": "a-long-enough-pw-1",
        "password2": "a-long-enough-pw-1"})
    assert response.status_code == 200
    assert response.context["adminform"].form.errors["phone_number"] == [
        "Enter a phone number in E.164 form."]
