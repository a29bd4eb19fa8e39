from __future__ import annotations

import uuid

from django.db import models
from django.db.models import Q


class SafeZone(models.Model):
    """A partner meetup location (police station, store) where handoffs are safer."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    partner_name = models.CharField(max_length=255)
    name = models.CharField(max_length=255, blank=True, default="")
    address = models.CharField(max_length=500)
    lat = models.FloatField()
    lng = models.FloatField()
    # {"mon": "09:00-17:00", ...}; free text per day.
    hours = models.JSONField(default=dict, blank=True)
    phone = models.CharField(max_length=32, blank=True, default="")
    is_active = models.BooleanField(default=True)
    # Natural key for idempotent CSV imports.
    external_ref = models.CharField(max_length=128, unique=True, null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.CheckConstraint(condition=Q(lat__gte=-90) & Q(lat__lte=90),
                                   name="safezone_lat_range"),
            models.CheckConstraint(condition=Q(lng__gte=-180) & Q(lng__lte=180),
                                   name="safezone_lng_range"),
        ]
        indexes = [models.Index(fields=["is_active", "lat", "lng"], name="safezone_active_coords")]

    def __str__(self) -> str:
        return f"{self.partner_name} — {self.address}"
