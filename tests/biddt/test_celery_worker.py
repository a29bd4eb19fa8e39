"""A real Celery worker process on the Redis broker runs the project's tasks on the test DB."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from datetime import timedelta

import pytest
from celery import Celery
from django.conf import settings
from django.utils import timezone

from accounts.models import PhoneOTP
from tests.biddt.processes import BASE_DIR, _stop, child_database_url

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def worker(tmp_path):
    if not settings.REDIS_URL:
        pytest.skip("needs Redis: set REDIS_URL (CI does)")
    broker = settings.REDIS_URL.rsplit("/", 1)[0] + "/5"
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "biddt.settings_test",
           "DATABASE_URL": child_database_url(), "BIDDT_TEST_BROKER_URL": broker,
           "BIDDT_TEST_PREFIX": settings.BIDDT_TEST_PREFIX}
    queue = f"test-{os.getpid()}"
    log = (tmp_path / "worker.log").open("w")
    process = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "biddt", "worker", "--pool=solo",
         "--concurrency=1", "-Q", queue, "--without-heartbeat", "--without-gossip",
         "--without-mingle", "-l", "INFO"],
        cwd=BASE_DIR, env=env, stdout=log, stderr=subprocess.STDOUT)
    # set_as_current=False: the probe must not become the app every shared_task resolves to.
    client = Celery("probe", broker=broker, set_as_current=False)
    try:
        yield client, queue, tmp_path / "worker.log"
    finally:
        _stop(process)
        log.close()


def test_worker_runs_an_idempotent_task_on_the_real_broker(worker):
    client, queue, log = worker
    # given expired codes in the database
    old = timezone.now() - timedelta(days=2)
    for _ in range(3):
        PhoneOTP.objects.create(phone_index="x" * 64, code_hash="h" * 64, expires_at=old)
    # when the purge task is sent twice through Redis (a duplicate delivery)
    for _ in range(2):
        client.send_task("accounts.tasks.otp_purge_expired", queue=queue)
    # then the worker runs both: the rows are gone and the second run deleted nothing
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and (
            PhoneOTP.objects.exists() or log.read_text().count("succeeded") < 2):
        time.sleep(0.25)
    text = log.read_text()
    assert not PhoneOTP.objects.exists(), text[-3000:]
    assert text.count("otp_purge_expired") >= 2 and text.count("succeeded") >= 2, text[-3000:]
    assert "succeeded in" in text and ": 3" in text and ": 0" in text
