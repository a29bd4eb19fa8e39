"""`listing_create` (5/hour by default) applies to new sellers only; others get `user`."""

from __future__ import annotations

from biddt.throttles import ScopedUserThrottle
from listings.selectors import seller_is_new


class ListingCreateThrottle(ScopedUserThrottle):
    scope = "listing_create"

    def allow_request(self, request, view):
        user = request.user
        if user is None or not user.is_authenticated or not seller_is_new(user=user):
            return True
        return super().allow_request(request, view)
