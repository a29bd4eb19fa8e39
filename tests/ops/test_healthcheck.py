"""deploy/healthcheck.py, the containers' health checks, run as the containers run it."""

from __future__ import annotations

import subprocess
import sys
from datetime import timedelta

import pytest
from django.utils import timezone
from django_celery_beat.models import IntervalSchedule, PeriodicTask

from tests.biddt.processes import BASE_DIR, child_database_url, free_port

SCRIPT = str(BASE_DIR / "deploy" / "healthcheck.py")


def _check(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    import os

    return subprocess.run([sys.executable, SCRIPT, *args], capture_output=True, text=True,
                          timeout=120, env={**os.environ, **(env or {})}, cwd=BASE_DIR,
                          check=False)


@pytest.mark.integration
@pytest.mark.django_db(transaction=True)
def test_http_check_passes_on_a_live_server_and_fails_on_a_dead_port(live_servers):
    server = live_servers()
    assert _check("http", str(server.rest_port)).returncode == 0
    dead = _check("http", str(free_port()))
    assert dead.returncode == 1 and "unhealthy" in dead.stderr


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(("ago", "healthy"), [(None, False), (timedelta(minutes=2), True),
                                              (timedelta(minutes=30), False)])
def test_beat_check_follows_the_closing_sweeps_last_run(ago, healthy):
    every, _ = IntervalSchedule.objects.get_or_create(every=5, period=IntervalSchedule.SECONDS)
    PeriodicTask.objects.update_or_create(
        name="auction-close-due",
        defaults={"task": "bidding.tasks.auction_close_due", "interval": every,
                  "last_run_at": None if ago is None else timezone.now() - ago})
    env = {"DATABASE_URL": child_database_url(), "DJANGO_SETTINGS_MODULE": "biddt.settings_test"}
    assert (_check("beat", env=env).returncode == 0) is healthy
