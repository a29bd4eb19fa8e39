"""Login throttles against SMS pumping and code guessing: per phone number and per IP."""

from __future__ import annotations

from accounts.models import InvalidPhoneNumber, format_e164, phone_index
from biddt.crypto import blind_index
from biddt.throttles import IPThrottle, RateThrottle


class AuthPhoneThrottle(RateThrottle):
    """`BIDDT_THROTTLE_AUTH` (5/min) per phone number, keyed by its blind index."""

    scope = "auth_phone"

    def get_cache_key(self, request, view):
        raw = request.data.get("phone_number") if hasattr(request.data, "get") else None
        if not isinstance(raw, str) or not raw:
            return None  # the serializer answers 400; the IP throttle still counts it
        try:
            ident = phone_index(format_e164(raw))
        except InvalidPhoneNumber:
            ident = blind_index(raw.strip(), purpose="phone-raw")
        return self.cache_format % {"scope": self.scope, "ident": ident}


class AuthIPThrottle(IPThrottle):
    """`BIDDT_THROTTLE_AUTH_IP` (20/min) per client IP."""

    scope = "auth_ip"
