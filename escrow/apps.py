from django.apps import AppConfig


class EscrowConfig(AppConfig):
    name = "escrow"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from accounts.signals import wallet_payouts_ready
        from bidding.signals import listing_sold
        from escrow.services.sale import listing_sold_apply
        from escrow.services.wallet import payouts_queue_waiting

        # A sale (auction close or buy now) creates its transaction, in the same transaction.
        listing_sold.connect(listing_sold_apply, dispatch_uid="escrow.listing_sold")
        # A wallet found active: the payouts that waited for it go.
        wallet_payouts_ready.connect(payouts_queue_waiting, dispatch_uid="escrow.wallet_ready")
