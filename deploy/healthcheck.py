"""Container health checks (Dockerfile HEALTHCHECK, docker-compose.yml).

    python deploy/healthcheck.py http [PORT]   # the REST or socket server answers /healthz
    python deploy/healthcheck.py beat          # beat has run the closing sweep lately

`http` uses only the standard library (it runs every few seconds): production settings
reject a Host outside ALLOWED_HOSTS and redirect plain HTTP to HTTPS, so the probe sends the
first allowed host and the header a TLS-terminating proxy would add. The worker's check is
`celery inspect ping` (docker-compose.yml).
"""

from __future__ import annotations

import os
import sys
import urllib.request
from datetime import timedelta

BEAT_STALE_AFTER = timedelta(minutes=10)  # beat writes its runs to the database every 3 min


def http(port: str = "8000") -> bool:
    hosts = os.environ.get("ALLOWED_HOSTS", "").split(",")
    host = hosts[0].strip().lstrip(".").replace("*", "") or "localhost"
    request = urllib.request.Request(f"http://127.0.0.1:{port}/healthz",
                                     headers={"Host": host, "X-Forwarded-Proto": "https"})
    with urllib.request.urlopen(request, timeout=4) as response:  # noqa: S310 - loopback
        return response.status == 200


def beat() -> bool:
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "biddt.settings")
    import django

    django.setup()
    from django.utils import timezone
    from django_celery_beat.models import PeriodicTask

    last = (PeriodicTask.objects.filter(name="auction-close-due")
            .values_list("last_run_at", flat=True).first())
    return last is not None and timezone.now() - last < BEAT_STALE_AFTER


if __name__ == "__main__":
    kind, *args = sys.argv[1:] or ["http"]
    try:
        healthy = {"http": http, "beat": beat}[kind](*args)
    except Exception as exc:  # noqa: BLE001 - any failure is "unhealthy", said on stderr
        print(f"unhealthy: {exc!r}", file=sys.stderr)
        healthy = False
    sys.exit(0 if healthy else 1)
