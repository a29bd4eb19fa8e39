"""Shared helpers for bidding tests."""

from __future__ import annotations

from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator

from bidding.models import Bid
from listings import rules
from listings.models import Listing


def replayed_state(listing: Listing) -> rules.AuctionState:
    """The state `rules.replay` rebuilds from the listing's active user bids."""
    bids = (Bid.objects.filter(listing=listing, status=Bid.Status.ACTIVE, is_auto_bid=False)
            .order_by("seq"))
    return rules.replay(
        rules.AuctionState.initial(starting_price_cents=listing.starting_price_cents,
                                   reserve_price_cents=listing.reserve_price_cents),
        [rules.BidInput(b.bidder_id, b.requested_amount_cents, b.max_amount_cents) for b in bids],
    )


def row_state(listing: Listing) -> tuple:
    listing.refresh_from_db()
    return (listing.current_price_cents, listing.bid_count, listing.leader_id,
            listing.leader_max_cents)


def as_tuple(state: rules.AuctionState) -> tuple:
    return (state.current_price_cents, state.bid_count, state.leader_id, state.leader_max_cents)


# --- sockets (WebsocketCommunicator on the real ASGI socket app) ----------------------------

async def connect(user=None) -> WebsocketCommunicator:
    """A connected `/ws/` socket, authenticated as `user` (a bearer header) or anonymous."""
    from biddt.asgi import websocket_app
    from tests.conftest import bearer

    token = await database_sync_to_async(bearer)(user) if user else None
    headers = [(b"authorization", token.encode())] if token else []
    comm = WebsocketCommunicator(websocket_app, "/ws/", headers=headers)
    connected, _ = await comm.connect()
    assert connected
    return comm


@database_sync_to_async
def make(factory, **kwargs):
    return factory(**kwargs)


@database_sync_to_async
def bid_count(listing) -> int:
    """Bid rows of the listing, whatever their kind."""
    return Bid.objects.filter(listing=listing).count()
