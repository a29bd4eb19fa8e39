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


def start_worker(log_path, env: dict[str, str], queue: str) -> subprocess.Popen:
    """A real `celery worker` consuming `queue`, once it is ready: a task sent to a queue
    no worker has declared yet may be dropped by the broker (kombu's Redis transport routes
    by the queue's binding)."""
    with log_path.open("w") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "biddt", "worker", "--pool=solo",
             "--concurrency=1", "-Q", queue, "--without-heartbeat", "--without-gossip",
             "--without-mingle", "-l", "INFO"],
            cwd=BASE_DIR, env=env, stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 120
    while " ready." not in log_path.read_text():
        if process.poll() is not None or time.monotonic() > deadline:
            _stop(process)
            raise RuntimeError(f"the worker did not start:\n{log_path.read_text()[-3000:]}")
        time.sleep(0.25)
    return process


@pytest.fixture
def worker(tmp_path):
    if not settings.REDIS_URL:
        pytest.skip("needs Redis: set REDIS_URL (CI does)")
    broker = settings.REDIS_URL.rsplit("/", 1)[0] + "/5"
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "biddt.settings_test",
           "DATABASE_URL": child_database_url(), "BIDDT_TEST_BROKER_URL": broker,
           "BIDDT_TEST_PREFIX": settings.BIDDT_TEST_PREFIX}
    queue = f"test-{os.getpid()}"
    process = start_worker(tmp_path / "worker.log", env, queue)
    # set_as_current=False: the probe must not become the app every shared_task resolves to.
    client = Celery("probe", broker=broker, set_as_current=False)
    try:
        yield client, queue, tmp_path / "worker.log"
    finally:
        _stop(process)


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


E164 = "+14165550142"


def _recover_code(otp: PhoneOTP) -> str:
    """The 6-digit code behind a stored OTP (its keyed hash), by trying all of them."""
    from biddt.crypto import blind_index

    for n in range(10**6):
        code = f"{n:06d}"
        if blind_index(f"{otp.id}:{otp.phone_index}:{code}", purpose="otp") == otp.code_hash:
            return code
    raise AssertionError("no code matches the stored hash")


def test_a_send_code_through_a_real_worker_logs_no_phone_number_and_no_code(
        daphne_server, tmp_path):
    import json
    import urllib.request

    from accounts.models import phone_index

    if not settings.REDIS_URL:
        pytest.skip("needs Redis: set REDIS_URL (CI does)")
    # given a server and a real worker sharing a broker and a queue of their own, both
    # logging JSON, the worker sending SMS with the console backend
    broker = settings.REDIS_URL.rsplit("/", 1)[0] + "/5"
    queue = f"test-sms-{os.getpid()}"
    extra = {"BIDDT_TEST_BROKER_URL": broker, "BIDDT_TEST_QUEUE": queue, "LOG_FORMAT": "json",
             "BIDDT_TEST_SMS_BACKEND": "accounts.sms.ConsoleBackend", "LOG_LEVEL": "DEBUG"}
    server = daphne_server(env=extra, fresh=True)
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "biddt.settings_test",
           "DATABASE_URL": child_database_url(), "BIDDT_TEST_PREFIX": settings.BIDDT_TEST_PREFIX,
           # Celery warns on stderr before any logging is set up when it runs as root, as
           # test machines do; the image runs the worker as an unprivileged user.
           "PYTHONWARNINGS": "ignore:You're running the worker with superuser privileges",
           **extra}
    log_path = tmp_path / "worker.log"
    process = start_worker(log_path, env, queue)
    try:
        # when a client asks for a login code
        request = urllib.request.Request(
            f"{server.http_url}/v1/auth/phone/send-code", method="POST",
            data=json.dumps({"phone_number": E164}).encode(),
            headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
            assert response.status == 202
        # then the worker sends it (the console backend's line) ...
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not (
                "console backend" in log_path.read_text()
                and "succeeded" in log_path.read_text()):
            assert process.poll() is None, log_path.read_text()[-3000:]
            time.sleep(0.25)
    finally:
        _stop(process)
    worker_log, server_log = log_path.read_text(), server.log()
    assert "console backend" in worker_log, worker_log[-3000:]
    assert "sms_send" in worker_log and "succeeded" in worker_log, worker_log[-3000:]
    code = _recover_code(PhoneOTP.objects.get(phone_index=phone_index(E164)))
    # ... and no line of the worker's or the server's output holds the number or the code
    assert "send-code" in server_log  # the server logged the request itself
    for name, text in (("worker", worker_log), ("server", server_log)):
        for secret in (E164, E164[2:], E164[-7:], code):
            assert secret not in text, (name, secret, text[-3000:])
    # and every line the worker wrote is a JSON object (the project's logging, not Celery's),
    # except the one its SIGTERM handler writes straight to the terminal, no log involved
    lines = [line for line in worker_log.splitlines()
             if line.strip() and line != "worker: Warm shutdown (MainProcess)"]
    assert lines
    for line in lines:
        assert isinstance(json.loads(line), dict), line
    assert any(json.loads(line).get("logger") == "accounts.sms" for line in lines)
