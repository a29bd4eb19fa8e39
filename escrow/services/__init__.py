"""Escrow writes, one module per capability:

- `sale`: the transaction of a sale (fees, creation by the close or buy now, the claim);
- `payment`: paying into escrow, the provider's webhooks, refunds;
- `handoff`: the meetup, the buyer's QR code, the seller's scan and the release;
- `payout`: paying released money out to the seller;
- `dispute`: disputes and their resolution by staff;
- `expiry`: unpaid sales cancelled, meetup reminders, the automatic refund;
- `wallet`, `rating`: sellers' payout accounts, ratings after a sale;
- `common`: the transaction lock, the conditional state move and the events they send.

Every money movement writes a balanced ledger journal (escrow/ledger.py); every state change
is a conditional UPDATE on the locked row. The names below are re-exported so callers can
write `escrow.services.<name>`; the code lives in the modules above.
"""

from escrow.services.common import InvalidState, transaction_announce
from escrow.services.dispute import (
    dispute_open,
    dispute_resolve_refund,
    dispute_resolve_release,
    dispute_resolve_split,
)
from escrow.services.expiry import (
    transaction_cancel_unpaid,
    transaction_expire_unpaid,
    transaction_meetup_check,
    transactions_expire_unpaid,
    transactions_meetup_sweep,
)
from escrow.services.handoff import (
    escrow_release,
    handoff_issue,
    meetup_set,
    qr_issue,
    transaction_verify_token,
)
from escrow.services.payment import (
    payment_failed_apply,
    payment_succeeded_apply,
    transaction_pay,
    transaction_refund,
    webhook_receive,
)
from escrow.services.payout import ResendOutcome, payout_resend, payout_send, payouts_retry
from escrow.services.rating import rating_create
from escrow.services.sale import fee_cents_for, transaction_claim, transaction_create_for_sale
from escrow.services.wallet import wallet_apply_account, wallet_create

# The seller's scan releases the money: `escrow_release`. The old name stays for code written
# against it (`POST /v1/transactions/{id}/verify` is unchanged).
transaction_verify = escrow_release

__all__ = [
    "InvalidState", "ResendOutcome", "dispute_open", "dispute_resolve_refund",
    "dispute_resolve_release", "dispute_resolve_split", "fee_cents_for", "handoff_issue",
    "meetup_set", "payment_failed_apply", "payment_succeeded_apply",
    "payout_resend", "payout_send", "payouts_retry", "qr_issue", "rating_create",
    "transaction_announce", "transaction_cancel_unpaid", "transaction_claim",
    "transaction_create_for_sale", "transaction_expire_unpaid", "transaction_meetup_check",
    "transaction_pay", "transaction_refund", "transaction_verify", "transaction_verify_token",
    "transactions_expire_unpaid", "escrow_release",
    "transactions_meetup_sweep", "wallet_apply_account", "wallet_create", "webhook_receive",
]
