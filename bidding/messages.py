"""Socket messages of the live listing rooms and bids, declared once (biddt.socket_messages).

`listing_updated` and `auction_ended` are the listings layer's (listings/messages.py).
"""

from __future__ import annotations

from biddt.socket_messages import (
    DATETIME,
    INT,
    REQUEST_ID,
    STRING,
    UUID,
    declare,
    nullable,
    obj,
)
from listings.messages import SEQ

# `ListingLiveSerializer`: the live auction state beside a bid (no reserve, no maximum).
LIVE = {
    "current_price_cents": INT,
    "bid_count": INT,
    "minimum_next_bid_cents": INT,
    "ends_at": nullable(DATETIME),
    "reserve_met": {"type": ["boolean", "null"]},
    "seq": INT,
}
LISTING_LIVE = obj(LIVE, closed=True, description="The live state after the change.")
LISTING_ROOM = obj({**LIVE, "status": STRING}, closed=True,
                   description="The live state, the status and `seq` when subscribing.")
BID_HISTORY_ITEM = obj({
    "id": UUID,
    "amount_cents": INT,
    "bidder": obj({"display_name": {"type": "string", "description": "Masked, e.g. j***n."},
                   "alias": {"type": "string", "pattern": "^Bidder [1-9][0-9]*$",
                             "description": "`Bidder N`: N the order of the bidder's first "
                                            "bid on this listing, stable."}},
                  closed=True),
    "is_auto_bid": {"type": "boolean"},
    "created_at": nullable(DATETIME),
}, closed=True, description="An item of `GET /v1/listings/{id}/bids`.")

# client -> server
SUBSCRIBE = declare("subscribe", "client", "Join a listing's room; answered `subscribed`.",
                    fields={"listingId": UUID, "requestId": REQUEST_ID},
                    required=("listingId",))
UNSUBSCRIBE = declare("unsubscribe", "client", "Leave a listing's room; answered `ack`.",
                      fields={"listingId": UUID, "requestId": REQUEST_ID},
                      required=("listingId",))
BID = declare("bid", "client",
              "Place a bid (the REST rules and codes); answered `ack` with the bid or `error`.",
              fields={"listingId": UUID, "amount": INT, "maxAmount": nullable(INT),
                      "requestId": REQUEST_ID},
              required=("listingId", "amount"))

# server -> client
SUBSCRIBED = declare("subscribed", "server", "The room's state when joining it.",
                     fields={"listingId": UUID, "listing": LISTING_ROOM},
                     required=("listingId", "listing"))
BID_PLACED = declare(
    "bid_placed", "server", "An accepted bid moved the price, the leader or the bid count.",
    fields={"listingId": UUID, "seq": SEQ, "bid": BID_HISTORY_ITEM, "listing": LISTING_LIVE,
            "autoBid": {**BID_HISTORY_ITEM,
                        "description": "The leader's proxy answer, when it answered."}},
    required=("listingId", "seq", "bid", "listing"))
OUTBID = declare("outbid", "server", "To the bidder who lost the lead (their sockets only).",
                 fields={"listingId": UUID, "yourMaxBid": nullable(INT), "currentBid": INT},
                 required=("listingId", "yourMaxBid", "currentBid"))
AUCTION_EXTENDED = declare(
    "auction_extended", "server", "Soft close moved the end of the auction.",
    fields={"listingId": UUID, "seq": SEQ, "endsAt": DATETIME},
    required=("listingId", "seq", "endsAt"))
ENDING_SOON = declare("ending_soon", "server", "At most 60 s are left (once per listing).",
                      fields={"listingId": UUID, "secondsRemaining": INT},
                      required=("listingId", "secondsRemaining"))
