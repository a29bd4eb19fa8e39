"""Test settings: the real settings, with fast hashing, in-memory SMS and mail, eager tasks.

`DATABASE_URL` and `REDIS_URL` come from the environment as usual: CI points them at
PostgreSQL and Redis on 127.0.0.1; without them the suite runs on SQLite and local memory,
and the tests that need PostgreSQL or Redis skip with a reason.
"""

import os
import tempfile

os.environ.setdefault("BIDDT_ENVIRONMENT", "test")

from biddt.settings import *  # noqa: E402,F403
from biddt.settings import CACHES, CHANNEL_LAYERS, REDIS_URL  # noqa: E402

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
BIDDT_SMS_BACKEND = "accounts.sms.InMemoryBackend"
EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
CELERY_TASK_ALWAYS_EAGER = True
CELERY_BROKER_URL = "memory://"
BIDDT_EMBEDDED_JOBS = False
MEDIA_ROOT = tempfile.mkdtemp(prefix="biddt-test-media-")
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
if REDIS_URL:
    CACHES["default"]["KEY_PREFIX"] = f"biddt-test-{os.getpid()}"
    CHANNEL_LAYERS["default"]["CONFIG"]["prefix"] = f"biddt-test-{os.getpid()}"
