"""`/healthz` (alive) and `/readyz` (database, cache and channel layer answer)."""

from __future__ import annotations

import pytest
from channels.layers import channel_layers
from django.test import override_settings

pytestmark = pytest.mark.django_db(transaction=True)


def checks_by_name(body: dict) -> dict[str, str]:
    """`{"Database": "ok", "Cache": "...", "ChannelLayer": "..."}` from the readyz payload."""
    return {name.partition("(")[0]: result for name, result in body["checks"].items()}


@pytest.fixture
def fresh_layers():
    # Channels caches layer instances; a test that re-points CHANNEL_LAYERS must not leak one.
    channel_layers.backends = {}
    yield
    channel_layers.backends = {}


def redis_settings(url: str) -> dict:
    return {
        "CACHES": {
            "default": {
                "BACKEND": "django_redis.cache.RedisCache",
                "LOCATION": url,
                "KEY_PREFIX": "biddt-readyz-test",
                "OPTIONS": {
                    "CLIENT_CLASS": "django_redis.client.DefaultClient",
                    "SOCKET_CONNECT_TIMEOUT": 1,
                    "SOCKET_TIMEOUT": 1,
                },
            }
        },
        "CHANNEL_LAYERS": {
            "default": {
                "BACKEND": "channels_redis.core.RedisChannelLayer",
                "CONFIG": {"hosts": [url], "prefix": "biddt-readyz-test"},
            }
        },
        "CELERY_BROKER_URL": url,
    }


def test_healthz_is_ok(client):
    # when the process is asked whether it is alive
    response = client.get("/healthz")
    # then it answers 200 without touching any backend
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


@pytest.mark.parametrize(
    ("query", "accept"),
    [("", "*/*"), ("", "text/html"), ("", "text/plain"), ("?format=rss", "*/*"),
     ("?format=openmetrics", "*/*")],
)
def test_readyz_is_ready_with_the_configured_backends(client, fresh_layers, query, accept):
    # given the configured database, cache and channel layer (SQLite/locmem/in-memory, or
    # PostgreSQL/Redis when DATABASE_URL and REDIS_URL are set)
    # when readiness is probed, whatever format the prober asks for
    response = client.get(f"/readyz{query}", HTTP_ACCEPT=accept)
    # then every check passes and the answer is JSON
    assert response.status_code == 200, response.content
    assert response["Content-Type"] == "application/json"
    body = response.json()
    assert body["status"] == "ready"
    assert checks_by_name(body) == {"Database": "ok", "Cache": "ok", "ChannelLayer": "ok",
                                    "CeleryBroker": "ok"}
    assert "no-cache" in response["Cache-Control"]


def test_readyz_reports_a_stopped_redis_as_not_ready(client, redis_server, fresh_layers):
    # given cache and channel layer on a throwaway redis-server that is up
    redis = redis_server()
    with override_settings(**redis_settings(redis.url)):
        channel_layers.backends = {}
        ready = client.get("/readyz")
        assert ready.status_code == 200, ready.content
        assert checks_by_name(ready.json()) == {
            "Database": "ok", "Cache": "ok", "ChannelLayer": "ok", "CeleryBroker": "ok"
        }

        # when that Redis stops
        redis.stop()
        assert not redis.is_up()
        response = client.get("/readyz")
        as_feed = client.get("/readyz?format=rss", HTTP_ACCEPT="application/rss+xml")

        # then the instance is not ready, naming the checks that failed
        assert response.status_code == 503
        body = response.json()
        assert body["status"] == "not_ready"
        checks = checks_by_name(body)
        assert checks["Database"] == "ok"
        assert checks["Cache"] != "ok"
        assert checks["ChannelLayer"] != "ok"
        assert "Channel layer unreachable" in checks["ChannelLayer"]
        assert "Celery broker unreachable" in checks["CeleryBroker"]
        # and no other format of the probe claims otherwise
        assert as_feed.status_code == 503
