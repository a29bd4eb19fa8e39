from django.apps import AppConfig


class ListingsConfig(AppConfig):
    name = "listings"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from accounts.signals import user_active_changed
        from listings.services import listings_set_seller_active

        # A suspension pauses the seller's listings (a reinstatement resumes them).
        user_active_changed.connect(listings_set_seller_active,
                                    dispatch_uid="listings.seller_active")
