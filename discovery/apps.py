from django.apps import AppConfig


class DiscoveryConfig(AppConfig):
    """Saved searches and their alerts: above listings and notifications in the layer order
    (it reads listings and sends notifications), so nothing below imports it."""

    name = "discovery"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from discovery import receivers  # noqa: F401 - connects to listings.signals
