"""The Celery app: JSON only, late acks, time limits; tasks take ids and are idempotent."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "biddt.settings")

app = Celery("biddt")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
