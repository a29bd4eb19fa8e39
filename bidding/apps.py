from django.apps import AppConfig


class BiddingConfig(AppConfig):
    name = "bidding"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Registers the `subscribe`, `unsubscribe` and `bid` socket handlers.
        from bidding import consumers  # noqa: F401
