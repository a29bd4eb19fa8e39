"""Bids. A listing's auction state can always be rebuilt by replaying its active bids."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.db.models import F, Q


class Bid(models.Model):
    class Status(models.TextChoices):
        ACTIVE = "active", "Active"
        RETRACTED = "retracted", "Retracted"
        VOIDED = "voided", "Voided (listing removed)"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    listing = models.ForeignKey("listings.Listing", on_delete=models.CASCADE, related_name="bids")
    bidder = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT,
                               related_name="bids")
    # The amount the bid stands at, as shown in the history.
    amount_cents = models.PositiveBigIntegerField()
    # The bidder's maximum (proxy); never shown to other users.
    max_amount_cents = models.PositiveBigIntegerField()
    # The amount as the bidder submitted it (A); null for automatic proxy bids. Replay uses it.
    requested_amount_cents = models.PositiveBigIntegerField(null=True, blank=True)
    is_auto_bid = models.BooleanField(default=False)
    # The leader raising their own maximum without moving the price: kept so the state can be
    # replayed, but not shown in the history nor counted in the listing's `bid_count` (API.md:
    # "the leader raising their own maximum changes only their maximum"). Replay recomputes it.
    # A database default too, so inserts that don't name it (processes still running the
    # previous release during a deploy, raw SQL) store False.
    is_max_raise = models.BooleanField(default=False, db_default=False)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.ACTIVE)
    # "Bidder N" in the public history: N the order of this bidder's first bid on the listing
    # (Listing.bidder_count then), assigned under the listing's row lock, never reused.
    bidder_number = models.PositiveIntegerField(null=True, blank=True)
    # The listing's `bids_seq` after this bid: orders bids within a listing without clock ties.
    seq = models.PositiveBigIntegerField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.CheckConstraint(condition=Q(amount_cents__gt=0), name="bid_amount_positive"),
            models.CheckConstraint(condition=Q(max_amount_cents__gte=F("amount_cents")),
                                   name="bid_max_gte_amount"),
            models.CheckConstraint(condition=Q(status__in=["active", "retracted", "voided"]),
                                   name="bid_status_valid"),
        ]
        indexes = [
            models.Index(fields=["listing", "seq"], name="bid_listing_seq"),
            models.Index(fields=["listing", "-created_at"], name="bid_listing_recent"),
            models.Index(fields=["bidder", "-created_at"], name="bid_bidder_recent"),
        ]

    def __str__(self) -> str:
        return f"{self.amount_cents}¢ on {self.listing_id}"


class SecondChanceOffer(models.Model):
    """An unpaid sale offered again to a runner-up (eBay's second-chance offer).

    At most one `offered` row per listing (constraint), and one offer per bidder and listing
    ever: a bidder who declined, let it expire or accepted is not offered again, so the next
    offer goes to the next bidder. Written by escrow.services.second_chance only.
    """

    class Status(models.TextChoices):
        OFFERED = "offered", "Offered"
        ACCEPTED = "accepted", "Accepted"
        DECLINED = "declined", "Declined"
        EXPIRED = "expired", "Expired"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    listing = models.ForeignKey("listings.Listing", on_delete=models.CASCADE,
                                related_name="second_chance_offers")
    bidder = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT,
                               related_name="second_chance_offers")
    amount_cents = models.PositiveBigIntegerField()
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.OFFERED)
    expires_at = models.DateTimeField()
    # The transaction the accept created.
    transaction = models.OneToOneField("escrow.Transaction", on_delete=models.PROTECT, null=True,
                                       blank=True, related_name="second_chance_offer")
    created_at = models.DateTimeField(auto_now_add=True)
    decided_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.CheckConstraint(condition=Q(amount_cents__gt=0),
                                   name="second_chance_amount_positive"),
            models.CheckConstraint(
                condition=Q(status__in=["offered", "accepted", "declined", "expired"]),
                name="second_chance_status_valid"),
            models.UniqueConstraint(fields=["listing"], condition=Q(status="offered"),
                                    name="uniq_open_second_chance"),
            models.UniqueConstraint(fields=["listing", "bidder"],
                                    name="uniq_second_chance_per_bidder"),
        ]
        indexes = [
            models.Index(fields=["expires_at"], condition=Q(status="offered"),
                         name="second_chance_open_due"),
        ]

    def __str__(self) -> str:
        return f"second chance {str(self.id)[:8]} ({self.status})"
