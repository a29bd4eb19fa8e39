"""Signals the listings app sends; higher layers connect to them."""

from django.dispatch import Signal

# Sent after commit, once, when a listing becomes `active` (published without a future
# `starts_at`, or opened at `starts_at`). kwargs: listing_id.
listing_activated = Signal()
