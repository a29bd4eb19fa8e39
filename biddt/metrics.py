"""Prometheus metrics beyond django-prometheus's request metrics (served at /metrics).

Counters are per process; Prometheus scrapes each daphne and worker instance. The Celery
queue depth is read from the broker at scrape time.
"""

from __future__ import annotations

from django.conf import settings
from prometheus_client import REGISTRY, Counter, Gauge
from prometheus_client.core import GaugeMetricFamily

BIDS_PLACED = Counter("biddt_bids_placed_total", "Bids accepted by the engine (REST and socket)")
AUCTIONS_CLOSED = Counter("biddt_auctions_closed_total", "Auctions closed", ["outcome"])
PAYOUTS = Counter("biddt_payouts_total", "Seller payouts", ["result"])
SOCKETS_OPEN = Gauge("biddt_sockets_open", "WebSocket connections open on this instance",
                     multiprocess_mode="livesum")


class CeleryQueueDepth:
    """`biddt_celery_queue_depth{queue}`: messages waiting in the Redis broker's queues."""

    def describe(self):
        return [GaugeMetricFamily("biddt_celery_queue_depth", "Messages waiting", labels=["queue"])]

    def collect(self):
        family = GaugeMetricFamily("biddt_celery_queue_depth", "Messages waiting",
                                   labels=["queue"])
        url = settings.CELERY_BROKER_URL
        if url.startswith(("redis://", "rediss://")):
            try:
                import redis

                client = redis.Redis.from_url(url, socket_timeout=1, socket_connect_timeout=1)
                family.add_metric(["celery"], client.llen("celery"))
            except Exception:  # noqa: BLE001 - a scrape must not fail on a broker hiccup
                family.add_metric(["celery"], float("nan"))
        yield family


_registered = False


def register_collectors() -> None:
    global _registered
    if not _registered:
        REGISTRY.register(CeleryQueueDepth())
        _registered = True


def metrics_view(request):
    """/metrics (django-prometheus), open in development; in production only with
    `Authorization: Bearer <BIDDT_METRICS_TOKEN>`, and off when no token is set.

    Anything else answers the API's 404, as for a path that doesn't exist: the endpoint's
    existence isn't revealed. The token is compared in constant time.
    """
    import hmac

    from django_prometheus.exports import ExportToDjangoView

    from biddt.urls import handler404

    if settings.PRODUCTION:
        token = settings.BIDDT_METRICS_TOKEN
        scheme, _, given = request.headers.get("Authorization", "").partition(" ")
        if not token or scheme.lower() != "bearer" or not hmac.compare_digest(
                given.strip().encode(), token.encode()):
            return handler404(request)
    return ExportToDjangoView(request)
