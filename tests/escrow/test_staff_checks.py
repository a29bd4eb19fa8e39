"""The staff-only escrow services refuse anyone but staff, before touching anything
(`accounts.policies.ensure_staff`, the one staff check of the services)."""

from __future__ import annotations

import uuid

import pytest
from rest_framework.exceptions import PermissionDenied

from escrow import services
from escrow.models import Dispute, Transaction
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

STAFF_ONLY = [
    (services.payout_resend, "transaction_id", "Only staff can resend a payout."),
    (services.dispute_resolve_refund, "dispute_id", "Only staff can resolve a dispute."),
    (services.dispute_resolve_release, "dispute_id", "Only staff can resolve a dispute."),
    (services.transaction_cancel_unpaid, "transaction_id", "Only staff can cancel a sale."),
]


@pytest.mark.parametrize(("service", "id_name", "detail"), STAFF_ONLY)
@pytest.mark.parametrize("who", ["user", "nobody"])
def test_a_non_staff_caller_gets_403(service, id_name, detail, who):
    caller = UserFactory() if who == "user" else None
    kwargs = {id_name: uuid.uuid4(), "staff_user": caller}
    if service is services.transaction_cancel_unpaid:
        kwargs["reason"] = "because"
    with pytest.raises(PermissionDenied) as exc:
        service(**kwargs)
    assert str(exc.value.detail) == detail
    assert exc.value.get_codes() == "permission_denied"


@pytest.mark.parametrize(("service", "id_name", "detail"), STAFF_ONLY[:3])
def test_staff_gets_past_the_check(service, id_name, detail):
    """For staff the service goes on to its object (here: none, so it's not found)."""
    with pytest.raises((Transaction.DoesNotExist, Dispute.DoesNotExist)):
        service(**{id_name: uuid.uuid4(), "staff_user": UserFactory(is_staff=True)})
