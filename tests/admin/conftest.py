"""Staff fixtures: a support and an admin user logged in to the console, and escrow helpers."""

from __future__ import annotations

import pytest
from django.test import Client

from accounts.roles import ADMIN, SUPPORT, user_set_role
from tests.factories import UserFactory, sold_transaction


def staff(role: str, name: str):
    user = UserFactory(display_name=name)
    user_set_role(user=user, role=role)
    return user


@pytest.fixture
def support_user(db):
    return staff(SUPPORT, "Support Sue")


@pytest.fixture
def admin_user(db):
    return staff(ADMIN, "Admin Ada")


@pytest.fixture
def support_client(support_user) -> Client:
    client = Client()
    client.force_login(support_user)
    return client


@pytest.fixture
def admin_client(admin_user) -> Client:
    client = Client()
    client.force_login(admin_user)
    return client


def disputed_transaction(settings, *, with_messages: bool = True):
    """A paid transaction the buyer disputed (simulated payments), with a short thread."""
    from chat.models import Message
    from escrow import services

    settings.BIDDT_PAYMENTS_BACKEND = "simulated"
    txn = sold_transaction(amount_cents=10000)
    services.transaction_pay(user=txn.buyer, transaction_id=txn.pk)
    if with_messages:
        Message.objects.create(transaction=txn, sender=txn.buyer,
                               content="The bike has a cracked frame.")
        Message.objects.create(transaction=txn, sender=txn.seller,
                               content="It was fine when I listed it.")
    dispute = services.dispute_open(user=txn.buyer, transaction_id=txn.pk,
                                    reason="Item not as described")
    return dispute


def released_transaction(settings):
    from escrow import services

    settings.BIDDT_PAYMENTS_BACKEND = "simulated"
    txn = sold_transaction(amount_cents=10000)
    services.transaction_pay(user=txn.buyer, transaction_id=txn.pk)
    code, _ = services.qr_issue(user=txn.buyer, transaction_id=txn.pk)
    return services.escrow_release(user=txn.seller, transaction_id=txn.pk, code=code)
