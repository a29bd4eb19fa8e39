"""Signals the bidding app sends; higher layers connect to them in their AppConfig.ready()."""

from django.dispatch import Signal

# How a listing was sold (the values of escrow's Transaction.Source).
SOURCE_AUCTION = "auction"
SOURCE_BUY_NOW = "buy_now"

# Sent inside the transaction that sold a listing, by the one caller that won its transition
# to `sold` (the auction close, or buy now under the row lock). Receivers write in that
# transaction: escrow creates the sale's transaction and returns it (escrow.apps), and
# `bidding.services.listing_buy_now` returns what the receivers returned. kwargs: listing,
# buyer_id, amount_cents, source (SOURCE_*), winning_bid_id (None for buy now).
listing_sold = Signal()
