from biddt.throttles import ScopedUserThrottle


class BidThrottle(ScopedUserThrottle):
    """`BIDDT_THROTTLE_BID` (10/min) per user, shared by REST and socket bids."""

    scope = "bid"
