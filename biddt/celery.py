"""The Celery app: JSON only, late acks, time limits; tasks take ids and are idempotent."""

import os

from celery import Celery, signals

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "biddt.settings")

app = Celery("biddt")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@signals.setup_logging.connect
def use_django_logging(**kwargs) -> None:
    """Worker and beat log through the project's LOGGING, not Celery's own root handler.

    Connecting this receiver stops Celery from replacing the root logger's handlers, so
    every line goes through the phone/code redaction filter and, with LOG_FORMAT=json, is
    JSON. It is also the earliest hook whose exceptions Celery re-raises (its Django fixup
    sets Django up inside a signal that only logs errors): a misconfigured production
    worker or beat exits here, naming each failed check.
    """
    from logging.config import dictConfig

    from django.conf import settings

    from biddt.checks import refuse_misconfigured_production

    refuse_misconfigured_production()
    dictConfig(settings.LOGGING)
