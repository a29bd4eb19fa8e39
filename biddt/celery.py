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
    import logging
    from logging.config import dictConfig

    from django.conf import settings

    from biddt.checks import refuse_misconfigured_production

    refuse_misconfigured_production()
    dictConfig(settings.LOGGING)
    # Python warnings (Celery's own start-up warnings among them) as log lines, not raw
    # stderr text between the JSON lines.
    logging.captureWarnings(True)


@signals.celeryd_after_setup.connect
def keep_worker_output_in_the_logs(instance, conf, **kwargs) -> None:
    """What Celery does for its own logging, kept with ours: a task's stray `print` becomes a
    log line (through the redaction filter) instead of raw stdout. With LOG_FORMAT=json the
    start-up banner (plain text on stdout) is left out, as `--quiet` would, so every line of
    the worker's output is one JSON object."""
    from django.conf import settings

    if conf.worker_redirect_stdouts:
        app.log.redirect_stdouts(conf.worker_redirect_stdouts_level)
    if settings.LOG_FORMAT == "json":
        instance.quiet = True
