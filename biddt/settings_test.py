"""Test settings: the real settings, with fast hashing, in-memory SMS and mail, eager tasks.

`DATABASE_URL` and `REDIS_URL` come from the environment as usual: CI points them at
PostgreSQL and Redis on 127.0.0.1; without them the suite runs on SQLite and local memory,
and the tests that need PostgreSQL or Redis skip with a reason.
"""

import atexit
import os
import shutil
import tempfile

os.environ.setdefault("BIDDT_ENVIRONMENT", "test")

from biddt.settings import *  # noqa: E402,F403
from biddt.settings import CACHES, CHANNEL_LAYERS, DATABASES, REDIS_URL  # noqa: E402

# Every file a test run writes (media, static, the SQLite database) lives under one folder
# that is removed when the process exits.
_TMP = tempfile.mkdtemp(prefix="biddt-test-")
atexit.register(shutil.rmtree, _TMP, ignore_errors=True)

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
# A worker or server a test starts may use another backend (the console one, to read its logs).
BIDDT_SMS_BACKEND = os.environ.get("BIDDT_TEST_SMS_BACKEND") or "accounts.sms.InMemoryBackend"
BIDDT_PUSH_BACKEND = "notifications.push.InMemoryBackend"
EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
# Tasks run eagerly in unit tests. A real worker started by an integration test gets a real
# broker through BIDDT_TEST_BROKER_URL (and runs nothing eagerly).
CELERY_BROKER_URL = os.environ.get("BIDDT_TEST_BROKER_URL") or "memory://"
CELERY_TASK_ALWAYS_EAGER = CELERY_BROKER_URL == "memory://"
# A queue of the test's own, so workers of concurrent runs on one broker don't take its tasks.
CELERY_TASK_DEFAULT_QUEUE = os.environ.get("BIDDT_TEST_QUEUE") or "celery"
BIDDT_EMBEDDED_JOBS = False
# Sweep threads have their own connections: they can't see a test's uncommitted rows. The
# threaded sweep has its own PostgreSQL test (tests/bidding/test_close.py).
BIDDT_CLOSE_THREADS = 1
# A server and a worker that a test starts share the media folder the test gives them (the
# way they share a bucket in production).
MEDIA_ROOT = os.environ.get("BIDDT_TEST_MEDIA_ROOT") or os.path.join(_TMP, "media")
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
# Test databases on SQLite are files, not memory: a server (or celery) process that a test
# starts must see the rows the test committed.
if DATABASES["default"]["ENGINE"].endswith("sqlite3"):
    DATABASES["default"].setdefault("TEST", {})["NAME"] = os.path.join(_TMP, "test.sqlite3")
else:
    # Threads the tests start (races, socket handlers on the loop's pool) close their
    # connections after each call, so the test database can be dropped at the end. Kept
    # connections are tested on their own (tests/biddt/test_live_servers.py), and a server
    # process a test starts may ask for them (DATABASE_CONN_MAX_AGE in its environment).
    DATABASES["default"]["CONN_MAX_AGE"] = int(os.environ.get("DATABASE_CONN_MAX_AGE", "0"))
# One prefix per test run, so concurrent runs sharing a Redis don't see each other's keys.
# A process the tests start (a server) gets the runner's prefix through BIDDT_TEST_PREFIX, so
# both sides share the channel layer (events sent by the test reach its sockets) and cache.
BIDDT_TEST_PREFIX = os.environ.get("BIDDT_TEST_PREFIX") or f"biddt-test-{os.getpid()}"
if REDIS_URL:
    CACHES["default"]["KEY_PREFIX"] = BIDDT_TEST_PREFIX
    CHANNEL_LAYERS["default"]["CONFIG"]["prefix"] = BIDDT_TEST_PREFIX

# Generous rates so tests can log in repeatedly; throttle tests set the real rates explicitly
# (the production defaults stay in biddt.settings.THROTTLE_RATES and are tested there).
# A server process a test starts may ask for a scope's real rate through its variable
# (BIDDT_THROTTLE_AUTH_IP=20/min: tests/ops/test_nginx_live.py).
THROTTLE_RATES = {  # noqa: F405
    scope: rate if os.environ.get(f"BIDDT_THROTTLE_{scope.upper()}") else "100000/min"
    for scope, rate in THROTTLE_RATES.items()  # noqa: F405
}
REST_FRAMEWORK = {**REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": THROTTLE_RATES}  # noqa: F405
STATIC_ROOT = os.path.join(_TMP, "static")
os.makedirs(STATIC_ROOT, exist_ok=True)
