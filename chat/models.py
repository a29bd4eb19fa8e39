from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q


class Message(models.Model):
    """A buyer-seller message on a transaction; system messages have no sender."""

    class Type(models.TextChoices):
        TEXT = "text", "Text"
        IMAGE = "image", "Image"
        SYSTEM = "system", "System"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    transaction = models.ForeignKey("escrow.Transaction", on_delete=models.CASCADE,
                                    related_name="messages")
    sender = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True,
                               blank=True, related_name="messages_sent")
    message_type = models.CharField(max_length=8, choices=Type.choices, default=Type.TEXT)
    content = models.TextField(max_length=2000, blank=True, default="")
    image = models.ImageField(upload_to="chat/%Y/%m/", blank=True, default="")
    read_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=Q(message_type="system", sender__isnull=True)
                | (~Q(message_type="system") & Q(sender__isnull=False)),
                name="message_system_has_no_sender"),
        ]
        indexes = [models.Index(fields=["transaction", "created_at"], name="message_thread")]

    def __str__(self) -> str:
        return f"{self.message_type} message on {self.transaction_id}"
