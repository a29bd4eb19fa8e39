from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q


class NotificationType(models.TextChoices):
    OUTBID = "outbid", "Outbid"
    WON = "won", "Won"
    LOST = "lost", "Lost"
    ENDING_SOON = "ending_soon", "Ending soon"
    AUCTION_ENDED = "auction_ended", "Auction ended"
    PAYMENT_RECEIVED = "payment_received", "Payment received"
    ESCROW_RELEASED = "escrow_released", "Escrow released"
    NEW_MESSAGE = "new_message", "New message"
    TRANSACTION_UPDATE = "transaction_update", "Transaction update"
    DISPUTE_UPDATE = "dispute_update", "Dispute update"
    SAVED_SEARCH_MATCH = "saved_search_match", "Saved search match"
    SECOND_CHANCE_OFFER = "second_chance_offer", "Second-chance offer"


class Notification(models.Model):
    Type = NotificationType

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE,
                             related_name="notifications")
    type = models.CharField(max_length=32, choices=NotificationType.choices)
    title = models.CharField(max_length=255)
    body = models.TextField(blank=True, default="")
    data = models.JSONField(default=dict, blank=True)
    # Makes one event notify once even when the task that sends it runs twice.
    dedupe_key = models.CharField(max_length=255, null=True, blank=True)
    read_at = models.DateTimeField(null=True, blank=True)
    # Delivery is claimed with a conditional update on these columns, so a task that runs
    # twice pushes or mails once.
    push_claimed_at = models.DateTimeField(null=True, blank=True)
    email_claimed_at = models.DateTimeField(null=True, blank=True)
    # Set once a delivery task has handled the row (sent, unwanted or handed to a retrying
    # task). A row left without it (its task was lost with a killed process) is handed to
    # delivery again by `notifications_redeliver`.
    delivery_handled_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "dedupe_key"],
                                    condition=Q(dedupe_key__isnull=False),
                                    name="uniq_notification_event"),
        ]
        indexes = [
            models.Index(fields=["user", "-created_at"], name="notification_user_recent"),
            models.Index(fields=["user"], condition=Q(read_at__isnull=True),
                         name="notification_user_unread"),
            models.Index(fields=["created_at"],
                         condition=Q(delivery_handled_at__isnull=True),
                         name="notification_unhandled"),
        ]

    def __str__(self) -> str:
        return f"{self.type} for {self.user_id}"


# Types a user may want by e-mail (the others are push and in-app only).
EMAIL_TYPES = (NotificationType.WON, NotificationType.PAYMENT_RECEIVED,
               NotificationType.ESCROW_RELEASED)


class NotificationPreference(models.Model):
    """Per-user channel choices. Missing keys mean the default: push on, e-mail on."""

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE,
                                primary_key=True, related_name="notification_preference")
    push = models.JSONField(default=dict, blank=True)   # {type: bool}
    email = models.JSONField(default=dict, blank=True)  # {type: bool}, EMAIL_TYPES only
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"notification settings of {self.user_id}"

    def wants_push(self, type_: str) -> bool:
        return bool(self.push.get(type_, True))

    def wants_email(self, type_: str) -> bool:
        return type_ in EMAIL_TYPES and bool(self.email.get(type_, True))
