"""Transactions (escrow), disputes, the double-entry ledger and payment-provider events."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.db.models import F, Q
from simple_history.models import HistoricalRecords


class TransactionStatus(models.TextChoices):
    PENDING_PAYMENT = "pending_payment", "Pending payment"
    IN_ESCROW = "in_escrow", "In escrow"
    RELEASED = "released", "Released"
    CANCELLED = "cancelled", "Cancelled"
    DISPUTED = "disputed", "Disputed"
    REFUNDED = "refunded", "Refunded"


class Transaction(models.Model):
    Status = TransactionStatus

    # Allowed transitions, in one place (STYLE.md rule 5).
    TRANSITIONS: dict[str, frozenset[str]] = {
        TransactionStatus.PENDING_PAYMENT: frozenset({TransactionStatus.IN_ESCROW,
                                                      TransactionStatus.CANCELLED}),
        TransactionStatus.IN_ESCROW: frozenset({TransactionStatus.RELEASED,
                                                TransactionStatus.DISPUTED,
                                                TransactionStatus.REFUNDED}),
        TransactionStatus.DISPUTED: frozenset({TransactionStatus.RELEASED,
                                               TransactionStatus.REFUNDED}),
        TransactionStatus.RELEASED: frozenset(),
        TransactionStatus.CANCELLED: frozenset(),
        TransactionStatus.REFUNDED: frozenset(),
    }

    class Source(models.TextChoices):
        AUCTION = "auction", "Auction won"
        BUY_NOW = "buy_now", "Buy now"
        SECOND_CHANCE = "second_chance", "Second-chance offer accepted"

    class PayoutStatus(models.TextChoices):
        NONE = "none", "Not due"
        WAITING_WALLET = "waiting_wallet", "Waiting for the seller's wallet"
        PENDING = "pending", "Pending"
        PAID = "paid", "Paid"
        FAILED = "failed", "Failed"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    # One transaction per listing and buyer: a sale whose winner didn't pay may be sold again
    # to a runner-up (second chance); at most one of them is not `cancelled` (constraint).
    listing = models.ForeignKey("listings.Listing", on_delete=models.PROTECT,
                                related_name="transactions")
    buyer = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT,
                              related_name="purchases")
    seller = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT,
                               related_name="sales")
    winning_bid = models.ForeignKey("bidding.Bid", on_delete=models.PROTECT, null=True,
                                    blank=True, related_name="+")
    source = models.CharField(max_length=16, choices=Source.choices, default=Source.AUCTION)
    currency = models.CharField(max_length=3, default="CAD")
    amount_cents = models.PositiveBigIntegerField()
    fee_cents = models.PositiveBigIntegerField()
    escrow_fee_cents = models.PositiveBigIntegerField()
    total_charged_cents = models.PositiveBigIntegerField()
    seller_payout_cents = models.PositiveBigIntegerField()
    status = models.CharField(max_length=20, choices=TransactionStatus.choices,
                              default=TransactionStatus.PENDING_PAYMENT)
    payment_backend = models.CharField(max_length=16, default="simulated")
    payment_intent_id = models.CharField(max_length=255, unique=True, null=True, blank=True)
    payment_due_at = models.DateTimeField(null=True, blank=True)
    paid_at = models.DateTimeField(null=True, blank=True)
    # QR handoff: only a keyed hash of the current code is stored (a leaked row can't replay it).
    qr_code_hash = models.CharField(max_length=64, unique=True, null=True, blank=True)
    qr_expires_at = models.DateTimeField(null=True, blank=True)
    qr_used_at = models.DateTimeField(null=True, blank=True)
    verified_at = models.DateTimeField(null=True, blank=True)
    released_at = models.DateTimeField(null=True, blank=True)
    refunded_at = models.DateTimeField(null=True, blank=True)
    cancelled_at = models.DateTimeField(null=True, blank=True)
    meetup_safe_zone = models.ForeignKey("safezones.SafeZone", on_delete=models.SET_NULL,
                                         null=True, blank=True, related_name="+")
    meetup_at = models.DateTimeField(null=True, blank=True)
    meetup_proposed_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL,
                                           null=True, blank=True, related_name="+")
    payout_status = models.CharField(max_length=16, choices=PayoutStatus.choices,
                                     default=PayoutStatus.NONE)
    payout_transfer_id = models.CharField(max_length=255, blank=True, default="")
    refund_id = models.CharField(max_length=255, blank=True, default="")
    # A dispute split refunds part of the payment and releases the rest: what went back to
    # the buyer (0 unless split); `seller_payout_cents` is then the rest less the fees.
    refunded_cents = models.PositiveBigIntegerField(default=0)
    # The provider's reason for the last failed payout (cleared when a payout succeeds).
    payout_failure_reason = models.CharField(max_length=500, blank=True, default="")
    reminders_sent = models.PositiveSmallIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    history = HistoricalRecords(excluded_fields=["qr_code_hash"])

    class Meta:
        constraints = [
            models.CheckConstraint(condition=Q(amount_cents__gt=0), name="txn_amount_positive"),
            models.CheckConstraint(
                condition=Q(seller_payout_cents=F("amount_cents") - F("refunded_cents")
                            - F("fee_cents") - F("escrow_fee_cents")),
                name="txn_payout_is_amount_less_fees"),
            models.CheckConstraint(condition=Q(seller_payout_cents__gt=0),
                                   name="txn_payout_positive"),
            models.CheckConstraint(condition=~Q(buyer=F("seller")), name="txn_buyer_not_seller"),
            models.CheckConstraint(condition=Q(status__in=TransactionStatus.values),
                                   name="txn_status_valid"),
            models.UniqueConstraint(fields=["listing", "buyer"], name="uniq_txn_listing_buyer"),
            models.UniqueConstraint(fields=["listing"],
                                    condition=~Q(status=TransactionStatus.CANCELLED),
                                    name="uniq_live_txn_per_listing"),
        ]
        indexes = [
            models.Index(fields=["buyer", "-created_at"], name="txn_buyer_recent"),
            models.Index(fields=["seller", "-created_at"], name="txn_seller_recent"),
            models.Index(fields=["status", "payment_due_at"], name="txn_status_due"),
            models.Index(fields=["status", "paid_at"], name="txn_status_paid"),
            models.Index(fields=["payout_status"], name="txn_payout_status"),
        ]

    def __str__(self) -> str:
        return f"transaction {str(self.id)[:8]} ({self.status})"


class Dispute(models.Model):
    class Status(models.TextChoices):
        OPEN = "open", "Open"
        REFUNDED = "refunded", "Resolved: refunded"
        RELEASED = "released", "Resolved: released"
        SPLIT = "split", "Resolved: split"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    transaction = models.ForeignKey(Transaction, on_delete=models.CASCADE, related_name="disputes")
    opened_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT,
                                  related_name="+")
    reason = models.TextField(max_length=2000)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.OPEN)
    resolution_note = models.TextField(blank=True, default="")
    resolved_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT,
                                    null=True, blank=True, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    resolved_at = models.DateTimeField(null=True, blank=True)

    history = HistoricalRecords()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["transaction"], condition=Q(status="open"),
                                    name="uniq_open_dispute"),
        ]
        indexes = [models.Index(fields=["status", "-created_at"], name="dispute_queue")]

    def __str__(self) -> str:
        return f"dispute on {self.transaction_id} ({self.status})"


class LedgerAccount(models.TextChoices):
    """Accounts of the double-entry ledger. Debits positive, credits negative."""

    PROVIDER_CASH = "provider_cash", "Cash at the payment provider"
    ESCROW = "escrow", "Buyer funds held in escrow"
    SELLER_PAYABLE = "seller_payable", "Owed to the seller"
    COMMISSION = "commission", "Platform commission revenue"
    ESCROW_FEE = "escrow_fee", "Escrow fee revenue"
    PAYOUTS = "payouts", "Paid out to sellers"
    REFUNDS = "refunds", "Refunded to buyers"


class LedgerEntry(models.Model):
    """One line of a balanced journal: the lines of a journal (and of a transaction) sum to 0."""

    class Kind(models.TextChoices):
        FUNDS_HELD = "funds_held", "Buyer funds held"
        RELEASE = "release", "Release to seller"
        PAYOUT = "payout", "Payout"
        REFUND = "refund", "Refund"
        SPLIT = "split", "Partial refund, rest released"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    journal_id = models.UUIDField(db_index=True)
    transaction = models.ForeignKey(Transaction, on_delete=models.PROTECT,
                                    related_name="ledger_entries")
    account = models.CharField(max_length=20, choices=LedgerAccount.choices)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True,
                             blank=True, related_name="+")
    kind = models.CharField(max_length=16, choices=Kind.choices)
    amount_cents = models.BigIntegerField()
    currency = models.CharField(max_length=3, default="CAD")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name_plural = "ledger entries"
        constraints = [
            models.CheckConstraint(condition=~Q(amount_cents=0), name="ledger_amount_nonzero"),
            # One journal of each kind per transaction: a retried release writes nothing new.
            models.UniqueConstraint(fields=["transaction", "kind", "account"],
                                    name="uniq_ledger_line_per_kind"),
        ]
        indexes = [
            models.Index(fields=["account", "user"], name="ledger_account_user"),
            models.Index(fields=["transaction", "created_at"], name="ledger_txn_time"),
        ]

    def __str__(self) -> str:
        return f"{self.account} {self.amount_cents:+d}"


class PaymentEvent(models.Model):
    """A payment-provider webhook event, stored once by its id and handled once."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    provider = models.CharField(max_length=16, default="stripe")
    event_id = models.CharField(max_length=255)
    type = models.CharField(max_length=128)
    payload = models.JSONField()
    processed_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["provider", "event_id"],
                                               name="uniq_payment_event")]

    def __str__(self) -> str:
        return f"{self.provider} {self.type} {self.event_id}"
