"""The embedded scheduler: CELERY_BEAT_SCHEDULE run in-process at its intervals."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from datetime import timedelta

import pytest
from celery import shared_task
from celery.schedules import crontab, schedule
from django.test import override_settings

from biddt import scheduler
from biddt.scheduler import run_due

CALLS: list[tuple[str, tuple, dict]] = []


@shared_task(name="tests.biddt.scheduled_record")
def scheduled_record(label: str, **kwargs) -> None:
    CALLS.append(("record", (label,), kwargs))


@shared_task(name="tests.biddt.scheduled_boom")
def scheduled_boom() -> None:
    CALLS.append(("boom", (), {}))
    raise RuntimeError("scheduled task exploded")


@pytest.fixture(autouse=True)
def _calls():
    CALLS.clear()
    yield
    CALLS.clear()


def ran_labels() -> list[str]:
    return [args[0] if args else name for name, args, _ in CALLS]


SCHEDULE = {
    "fast": {"task": "tests.biddt.scheduled_record", "schedule": 10.0, "args": ("fast",)},
    "slow": {"task": "tests.biddt.scheduled_record", "schedule": timedelta(minutes=1),
             "args": ("slow",), "kwargs": {"flag": True}},
    "broken": {"task": "tests.biddt.scheduled_boom", "schedule": 10},
}


@override_settings(CELERY_BEAT_SCHEDULE=SCHEDULE)
def test_runs_due_entries_at_their_intervals():
    next_run: dict[str, float] = {}
    # when the scheduler ticks for the first time
    first = run_due(next_run, 1000.0)
    # then nothing runs yet: each entry is due within its interval, at most 5 s away
    assert first == []
    assert next_run == {"fast": 1005.0, "slow": 1005.0, "broken": 1005.0}

    # when the first due time comes
    due = run_due(next_run, 1005.0)
    # then every entry runs once, with its args and kwargs
    assert due == ["fast", "slow"]
    assert CALLS == [("record", ("fast",), {}), ("record", ("slow",), {"flag": True}),
                     ("boom", (), {})]
    assert next_run == {"fast": 1015.0, "slow": 1065.0, "broken": 1015.0}

    # when ticks arrive before the next due time, nothing runs
    CALLS.clear()
    assert run_due(next_run, 1010.0) == []
    assert run_due(next_run, 1014.9) == []
    assert CALLS == []

    # when the 10 s entries come due again, only they run
    assert run_due(next_run, 1015.0) == ["fast"]
    assert ran_labels() == ["fast", "boom"]

    # when the scheduler was stalled past several intervals, each entry runs once (no burst)
    CALLS.clear()
    assert run_due(next_run, 1100.0) == ["fast", "slow"]
    assert ran_labels() == ["fast", "slow", "boom"]
    assert next_run == {"fast": 1110.0, "slow": 1160.0, "broken": 1110.0}


@override_settings(CELERY_BEAT_SCHEDULE=SCHEDULE)
def test_a_failing_task_does_not_stop_the_others(caplog):
    next_run = {"fast": 0.0, "broken": 0.0, "slow": 0.0}
    # when all entries are due and one of them raises
    with caplog.at_level(logging.ERROR, logger="biddt.scheduler"):
        ran = run_due(next_run, 50.0)
    # then the others ran, the failure is logged with its name, and it is rescheduled
    assert ran == ["fast", "slow"]
    assert ("boom", (), {}) in CALLS
    failures = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(failures) == 1
    assert "broken" in failures[0].getMessage()
    assert failures[0].exc_info is not None
    assert next_run["broken"] == 60.0


@override_settings(CELERY_BEAT_SCHEDULE={
    "ghost": {"task": "tests.biddt.no_such_task", "schedule": 10.0},
    "fast": SCHEDULE["fast"],
})
def test_an_unknown_task_name_does_not_stop_the_others(caplog):
    next_run = {"ghost": 0.0, "fast": 0.0}
    with caplog.at_level(logging.ERROR, logger="biddt.scheduler"):
        ran = run_due(next_run, 1.0)
    assert ran == ["fast"]
    assert ran_labels() == ["fast"]
    assert any("ghost" in r.getMessage() for r in caplog.records)


@override_settings(CELERY_BEAT_SCHEDULE={
    "nightly": {"task": "tests.biddt.scheduled_record", "schedule": crontab(hour=3),
                "args": ("nightly",)},
    "fast": SCHEDULE["fast"],
})
def test_an_unsupported_schedule_does_not_stop_the_others(caplog):
    # given a crontab entry, which the embedded scheduler can't run, next to an interval one
    next_run = {"fast": 0.0}
    # when the scheduler ticks
    with caplog.at_level(logging.ERROR, logger="biddt.scheduler"):
        ran = run_due(next_run, 1.0)
        ran_again = run_due(next_run, 100.0)
    # then the interval entry still runs, and the crontab one is reported once and skipped
    assert ran == ["fast"]
    assert ran_again == ["fast"]
    assert ran_labels() == ["fast", "fast"]
    reports = [r for r in caplog.records if "nightly" in r.getMessage()]
    assert len(reports) == 1


@override_settings(CELERY_BEAT_SCHEDULE={
    "celery-interval": {"task": "tests.biddt.scheduled_record",
                        "schedule": schedule(run_every=timedelta(seconds=30)),
                        "args": ("celery-interval",)},
})
def test_celery_interval_schedule_objects_are_supported():
    next_run = {"celery-interval": 0.0}
    assert run_due(next_run, 0.0) == ["celery-interval"]
    assert next_run["celery-interval"] == 30.0


RUN_PROJECT_SCHEDULE = """
import json, logging, django
django.setup()
from django.conf import settings
from biddt.scheduler import run_due
failures = []
class Collect(logging.Handler):
    def emit(self, record):
        failures.append(record.getMessage())
logging.getLogger("biddt.scheduler").addHandler(Collect(level=logging.ERROR))
ran = run_due({name: 0.0 for name in settings.CELERY_BEAT_SCHEDULE}, 1.0)
print(json.dumps({"ran": ran, "failures": failures}))
"""


@pytest.mark.django_db(transaction=True)
def test_the_project_schedule_runs_in_a_fresh_process():
    # given a fresh process, as `make run` starts one: nothing has imported the apps' tasks yet
    from django.conf import settings

    from tests.biddt.processes import BASE_DIR, child_database_url

    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "biddt.settings_test",
           "DATABASE_URL": child_database_url(), "PYTHONPATH": str(BASE_DIR)}
    # when every entry of the real schedule is due
    result = subprocess.run([sys.executable, "-c", RUN_PROJECT_SCHEDULE], cwd=BASE_DIR,
                            env=env, capture_output=True, text=True, timeout=120)
    # then each one ran: its task was found and succeeded on the test database
    assert result.returncode == 0, result.stderr
    outcome = json.loads(result.stdout.strip().splitlines()[-1])
    assert outcome == {"ran": list(settings.CELERY_BEAT_SCHEDULE), "failures": []}


def test_embedded_scheduler_starts_only_in_embedded_mode():
    # given test settings (a broker-less but not embedded configuration)
    # then no scheduler thread is started
    assert scheduler.start_embedded_scheduler() is None
