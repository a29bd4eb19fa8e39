import sys

from django.apps import AppConfig

# `check` lists the failed checks itself (as system checks, all at once); `collectstatic`
# is the image build step, which copies files and has none of the runtime secrets.
_EXEMPT_COMMANDS = {"check", "collectstatic"}


def _is_exempt_command() -> bool:
    return (len(sys.argv) > 1 and sys.argv[1] in _EXEMPT_COMMANDS
            and sys.argv[0].endswith(("manage.py", "django-admin")))


class CoreConfig(AppConfig):
    """Shared plumbing that needs tables: idempotency records; production start-up checks."""

    name = "biddt.core"
    label = "core"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from django_structlog.signals import bind_extra_request_metadata

        from biddt import checks  # registers the production checks with Django
        from biddt.logging import bind_client_ip
        from biddt.metrics import register_collectors

        # Every process sets Django up (ASGI/WSGI servers, Celery worker and beat through
        # biddt.celery, management commands), so this is the one place that refuses to run
        # production misconfigured. `check` reports the same failures as system checks.
        if not _is_exempt_command():
            checks.refuse_misconfigured_production()
        register_collectors()
        bind_extra_request_metadata.connect(bind_client_ip, dispatch_uid="biddt.client_ip")
