from django.apps import AppConfig


class CoreConfig(AppConfig):
    """Shared plumbing that needs tables: idempotency records."""

    name = "biddt.core"
    label = "core"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from django_structlog.signals import bind_extra_request_metadata

        from biddt.logging import bind_client_ip
        from biddt.metrics import register_collectors

        register_collectors()
        bind_extra_request_metadata.connect(bind_client_ip, dispatch_uid="biddt.client_ip")
