"""Throttles whose rates are read from settings at request time (`BIDDT_THROTTLE_*`)."""

from __future__ import annotations

from django.conf import settings
from rest_framework.throttling import AnonRateThrottle, SimpleRateThrottle, UserRateThrottle


def client_ip(request) -> str | None:
    """The client IP every per-IP limit keys on (DRF's rule: `BIDDT_NUM_PROXIES`), also for
    django-axes' staff login limit and the request logs."""
    return IPThrottle().get_ident(request)


class SettingsRateMixin:
    scope: str

    def get_rate(self):
        return settings.THROTTLE_RATES.get(self.scope)


class UserThrottle(SettingsRateMixin, UserRateThrottle):
    scope = "user"


class AnonThrottle(SettingsRateMixin, AnonRateThrottle):
    scope = "anon"


class ScopedUserThrottle(SettingsRateMixin, SimpleRateThrottle):
    """Per-user throttle for one action (`bid`, `listing_create`); anonymous falls back to IP."""

    def get_cache_key(self, request, view):
        ident = request.user.pk if request.user and request.user.is_authenticated else \
            self.get_ident(request)
        return self.cache_format % {"scope": self.scope, "ident": ident}


class IPThrottle(SettingsRateMixin, SimpleRateThrottle):
    def get_cache_key(self, request, view):
        return self.cache_format % {"scope": self.scope, "ident": self.get_ident(request)}
