"""Staff close an account from the console: reason, confirmation page, the same service,
audited; support can't; an account with obligations is refused with the reason."""

from __future__ import annotations

import pytest
from django.urls import reverse

from accounts.models import DELETED_USER_NAME, User
from biddt.core.models import AuditEntry
from tests.admin.conftest import admin_client, admin_user, support_client, support_user  # noqa: F401
from tests.factories import ListingFactory, UserFactory, sold_transaction

pytestmark = pytest.mark.django_db


def post_action(client, pks, reason="", **extra):
    return client.post(reverse("admin:accounts_user_changelist"), {
        "action": "close_accounts", "_selected_action": [str(pk) for pk in pks],
        "reason": reason, "index": 0, **extra})


def test_admin_confirms_then_the_account_is_closed_and_audited(admin_client, admin_user):  # noqa: F811
    target = UserFactory(display_name="Casey")
    listing = ListingFactory(seller=target)
    page = post_action(admin_client, [target.pk], reason="asked by e-mail")
    assert page.status_code == 200
    assert b"Close these accounts?" in page.content and b"Casey" in page.content
    assert User.objects.get(pk=target.pk).deleted_at is None  # nothing happens before yes

    done = post_action(admin_client, [target.pk], reason="asked by e-mail", confirm="yes")
    assert done.status_code == 302
    closed = User.objects.get(pk=target.pk)
    assert closed.deleted_at is not None and closed.display_name == DELETED_USER_NAME
    listing.refresh_from_db()
    assert listing.status == "cancelled"
    entry = AuditEntry.objects.get(action="user.delete", object_id=str(target.pk))
    assert entry.actor_id == admin_user.pk and entry.reason == "asked by e-mail"
    assert entry.after["by"] == "staff"
    # The console lists the closed account as "Deleted user".
    listing_page = admin_client.get(reverse("admin:accounts_user_changelist"))
    assert DELETED_USER_NAME.encode() in listing_page.content


def test_a_reason_is_required(admin_client):  # noqa: F811
    target = UserFactory()
    response = post_action(admin_client, [target.pk], reason="", confirm="yes", follow=True)
    assert User.objects.get(pk=target.pk).deleted_at is None
    assert response.status_code in (200, 302)


def test_obligations_refuse_in_the_console_too(admin_client):  # noqa: F811
    txn = sold_transaction()
    response = post_action(admin_client, [txn.buyer_id], reason="x", confirm="yes")
    assert response.status_code == 302
    assert User.objects.get(pk=txn.buyer_id).deleted_at is None
    assert not AuditEntry.objects.filter(action="user.delete").exists()


def test_support_cannot_close_accounts(support_client):  # noqa: F811
    target = UserFactory()
    response = post_action(support_client, [target.pk], reason="x", confirm="yes")
    assert User.objects.get(pk=target.pk).deleted_at is None
    assert response.status_code in (200, 302, 403)
