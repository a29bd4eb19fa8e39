import pytest

from escrow.services import fee_cents_for
from tests.factories import sold_transaction

pytestmark = pytest.mark.django_db


def test_fees_of_a_100_dollar_sale():
    # given a sale at $100.00 / when the transaction is created
    txn = sold_transaction(amount_cents=10000)
    # then the fees are exactly those of API.md
    assert (txn.fee_cents, txn.escrow_fee_cents, txn.seller_payout_cents,
            txn.total_charged_cents) == (600, 199, 9201, 10000)


@pytest.mark.parametrize(("amount", "fee"), [(1008, 60), (1009, 61), (2525, 152), (525, 32)])
def test_commission_rounds_half_up(amount, fee):
    assert fee_cents_for(amount) == fee


def test_minimum_price_keeps_the_payout_positive(settings):
    # given the smallest amount a listing may have
    amount = settings.BIDDT_MIN_PRICE_CENTS
    # when it sells / then the seller still receives money
    txn = sold_transaction(amount_cents=amount)
    assert txn.seller_payout_cents == amount - fee_cents_for(amount) - 199 > 0
