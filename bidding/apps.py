from django.apps import AppConfig


class BiddingConfig(AppConfig):
    name = "bidding"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Registers the `subscribe`, `unsubscribe` and `bid` socket handlers.
        from bidding import consumers  # noqa: F401
        from bidding.services import listing_ended_apply
        from listings.lifecycle import listing_ended

        # A seller's cancellation or a staff removal ends the auction (bids voided, room told).
        listing_ended.connect(listing_ended_apply, dispatch_uid="bidding.listing_ended")
