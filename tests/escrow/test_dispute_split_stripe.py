"""A dispute split against a real localstripe server: one partial refund of the right
amount on the PaymentIntent, the rest released, the books balanced."""

from __future__ import annotations

import pytest

from escrow import services
from escrow.models import Dispute, Transaction
from tests.escrow.helpers import assert_books_balanced, client_for, journal_kinds
from tests.escrow.test_stripe_flow import paid_through_localstripe
from tests.factories import UserFactory

pytestmark = [pytest.mark.integration]


@pytest.mark.django_db(transaction=True)
def test_dispute_split_through_localstripe(stripe_backend):
    # given a paid transaction (localstripe charge + its signed webhook) that was disputed
    stripe = stripe_backend.client()
    txn, pi_id = paid_through_localstripe(stripe_backend, event_id="evt_split_flow")
    r = client_for(txn.buyer).post(f"/v1/transactions/{txn.pk}/dispute", {"reason": "scratched"})
    assert r.status_code == 201
    dispute = Dispute.objects.get(transaction=txn)
    staff = UserFactory(is_staff=True)

    # when staff split it (twice: a double click)
    services.dispute_resolve_split(dispute_id=dispute.pk, staff_user=staff, refund_cents=750,
                                   note="30% back for the scratch")
    services.dispute_resolve_split(dispute_id=dispute.pk, staff_user=staff, refund_cents=750,
                                   note="again")

    # then localstripe holds one refund of $7.50 on the PaymentIntent
    txn.refresh_from_db()
    refund = stripe.v1.refunds.retrieve(txn.refund_id)
    assert refund["amount"] == 750
    charge = stripe.v1.payment_intents.retrieve(pi_id)["latest_charge"]
    assert charge
    refunds = stripe.v1.refunds.list({"charge": charge})["data"]
    assert [r["amount"] for r in refunds] == [750]
    assert txn.status == Transaction.Status.RELEASED and txn.refunded_cents == 750
    assert Dispute.objects.get(pk=dispute.pk).status == Dispute.Status.SPLIT
    assert journal_kinds(txn) == ["funds_held", "split"]
    assert_books_balanced()
