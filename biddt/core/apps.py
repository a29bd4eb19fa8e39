from django.apps import AppConfig


class CoreConfig(AppConfig):
    """Shared plumbing that needs tables: idempotency records."""

    name = "biddt.core"
    label = "core"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from biddt.metrics import register_collectors

        register_collectors()
