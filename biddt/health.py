"""`/healthz`: the process is alive. `/readyz`: database, cache and channel layer answer.

Readiness uses django-health-check; the channel layer check round-trips a message through
the layer (Redis in production), so a stopped Redis makes the instance not ready (503).
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime
import uuid

from django.http import JsonResponse
from health_check.base import HealthCheck
from health_check.exceptions import ServiceUnavailable
from health_check.views import HealthCheckView


def healthz(request):
    return JsonResponse({"status": "ok"})


@dataclasses.dataclass
class ChannelLayer(HealthCheck):
    """Send a message to a fresh channel and read it back."""

    alias: str = "default"
    timeout: datetime.timedelta = dataclasses.field(default=datetime.timedelta(seconds=3),
                                                    repr=False)

    async def run(self) -> None:
        from channels.layers import get_channel_layer

        layer = get_channel_layer(self.alias)
        if layer is None:
            raise ServiceUnavailable("No channel layer configured")
        try:
            channel = await layer.new_channel()
            token = uuid.uuid4().hex
            await layer.send(channel, {"type": "health.check", "token": token})
            message = await layer.receive(channel)
        except Exception as exc:  # noqa: BLE001 - any layer failure means not ready
            raise ServiceUnavailable("Channel layer unreachable") from exc
        if message.get("token") != token:
            raise ServiceUnavailable("Channel layer returned another message")


@dataclasses.dataclass
class CeleryBroker(HealthCheck):
    """Open a connection to the Celery broker (skipped in embedded mode: no broker)."""

    timeout: datetime.timedelta = dataclasses.field(default=datetime.timedelta(seconds=3),
                                                    repr=False)

    def run(self) -> None:
        from django.conf import settings
        from kombu import Connection

        url = settings.CELERY_BROKER_URL
        if url.startswith("memory://"):
            return
        try:
            with Connection(url, connect_timeout=2) as connection:
                connection.ensure_connection(max_retries=1, timeout=2)
        except Exception as exc:  # noqa: BLE001 - any broker failure means not ready
            raise ServiceUnavailable("Celery broker unreachable") from exc


class ReadyView(HealthCheckView):
    checks = (
        "health_check.checks.Database",
        "health_check.checks.Cache",
        ChannelLayer,
        CeleryBroker,
    )

    def render_to_response_json(self, status):
        payload = {
            "status": "ready" if status == 200 else "not_ready",
            "checks": {
                repr(result.check): "ok" if result.error is None else str(result.error)
                for result in self.results
            },
        }
        return JsonResponse(payload, status=200 if status == 200 else 503)

    def render_to_response_text(self, status):
        return self.render_to_response_json(status)

    async def get(self, request, *args, **kwargs):
        # Always JSON, whatever the Accept header or ?format= says: probes parse one format,
        # and the library's feeds answer 200 even when a check fails. (Rewriting
        # META["HTTP_ACCEPT"] is not enough: a middleware may already have read
        # request.headers, which Django caches.)
        with self.get_executor() as executor:
            self.results = await asyncio.gather(
                *(check.get_result(executor) for check in self.get_checks())
            )
        failed = any(result.error is not None for result in self.results)
        return self.render_to_response_json(500 if failed else 200)
