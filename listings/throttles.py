"""`listing_create` (5/hour by default) applies to new sellers only; others get `user`."""

from __future__ import annotations

from biddt.throttles import ScopedUserThrottle
from listings.selectors import seller_is_new


class ListingCreateThrottle(ScopedUserThrottle):
    """Counts creations, not attempts: a request refused with 400 (a new seller's typo) does
    not use up the hour. The view calls `record()` once the listing is created."""

    scope = "listing_create"
    count_on_success = True

    def get_cache_key(self, request, view):
        user = request.user
        if user is None or not user.is_authenticated or not seller_is_new(user=user):
            return None
        return super().get_cache_key(request, view)
