"""In-process scheduler for embedded mode: runs CELERY_BEAT_SCHEDULE without beat or a worker.

With no broker configured (`make run`), the server process starts this daemon thread, which
calls each scheduled task in-process at its interval. The same task code runs under Celery
beat in production, so behaviour doesn't depend on the mode.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from datetime import timedelta

from django.conf import settings
from django.db import close_old_connections

logger = logging.getLogger(__name__)
_started = threading.Event()
_discovered = threading.Event()


def _interval(schedule) -> float:
    if isinstance(schedule, timedelta):
        return schedule.total_seconds()
    if isinstance(schedule, (int, float)):
        return float(schedule)
    run_every = getattr(schedule, "run_every", None)
    if run_every is not None:
        return run_every.total_seconds()
    raise ValueError(f"embedded scheduler supports interval schedules only, got {schedule!r}")


def _task(name: str):
    """The registered task `name`, importing the apps' task modules first if need be.

    `app.autodiscover_tasks()` is lazy: a worker imports every `tasks.py` when it starts, but
    this process has only imported the ones some code happened to use.
    """
    from celery import current_app

    if name not in current_app.tasks and not _discovered.is_set():
        current_app.autodiscover_tasks(force=True)  # each installed app's tasks.py, once
        _discovered.set()
    return current_app.tasks[name]


def run_due(next_run: dict[str, float], now: float) -> list[str]:
    """Run each entry whose time has come; return the names run. One failure stops no other."""
    ran = []
    for name, entry in settings.CELERY_BEAT_SCHEDULE.items():
        if next_run.get(name) == math.inf:
            continue
        try:
            interval = _interval(entry["schedule"])
        except ValueError:
            # Reported once, then never due: the other entries keep running.
            logger.exception("scheduled task %s can't run in the embedded scheduler", name)
            next_run[name] = math.inf
            continue
        if next_run.setdefault(name, now + min(interval, 5.0)) > now:
            continue
        next_run[name] = now + interval
        close_old_connections()
        try:
            _task(entry["task"]).apply(args=entry.get("args", ()),
                                       kwargs=entry.get("kwargs", {}))
            ran.append(name)
        except Exception:
            logger.exception("scheduled task %s failed", name)
        finally:
            close_old_connections()
    return ran


def _loop(stop: threading.Event) -> None:
    next_run: dict[str, float] = {}
    while not stop.wait(1.0):
        run_due(next_run, time.monotonic())


def start_embedded_scheduler() -> threading.Event | None:
    """Start the thread once per process; returns its stop event (None when not embedded)."""
    if not settings.BIDDT_EMBEDDED_JOBS or _started.is_set():
        return None
    _started.set()
    stop = threading.Event()
    threading.Thread(target=_loop, args=(stop,), name="biddt-scheduler", daemon=True).start()
    logger.info("embedded scheduler started with %d jobs", len(settings.CELERY_BEAT_SCHEDULE))
    return stop
