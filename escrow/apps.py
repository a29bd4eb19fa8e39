from django.apps import AppConfig


class EscrowConfig(AppConfig):
    name = "escrow"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from bidding.signals import listing_sold
        from escrow.services.sale import listing_sold_apply

        # A sale (auction close or buy now) creates its transaction, in the same transaction.
        listing_sold.connect(listing_sold_apply, dispatch_uid="escrow.listing_sold")
