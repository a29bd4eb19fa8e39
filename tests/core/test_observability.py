"""Observability: /metrics for Prometheus, JSON logs with a request id and no phone number."""

from __future__ import annotations

import io
import json
import logging
import logging.config

import pytest
import structlog
from django.conf import settings

from biddt.logging import PhoneNumberRedactingFilter
from biddt.metrics import BIDS_PLACED


@pytest.fixture
def json_log():
    """The project's console handler, formatted as JSON, writing into a buffer."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    formatter_conf = dict(settings.LOGGING["formatters"]["json"])
    factory = formatter_conf.pop("()")
    handler.setFormatter(factory(**formatter_conf))
    handler.addFilter(PhoneNumberRedactingFilter())
    root = logging.getLogger()
    root.addHandler(handler)
    old_level = root.level
    root.setLevel(logging.INFO)
    yield lambda: [json.loads(line) for line in stream.getvalue().splitlines() if line]
    root.removeHandler(handler)
    root.setLevel(old_level)


def test_structlog_and_stdlib_lines_are_json_without_phone_numbers(json_log):
    structlog.get_logger("biddt.test").info("otp_requested", phone="+14165550123",
                                            note="call +1 416 555 0123")
    logging.getLogger("biddt.test").warning("lookup for %s failed", "+14165550123")
    lines = json_log()
    assert len(lines) == 2
    event, plain = lines
    assert event["event"] == "otp_requested" and event["level"] == "info"
    assert event["phone"].startswith("phone#") and "timestamp" in event
    assert plain["level"] == "warning" and plain["logger"] == "biddt.test"
    assert "4165550123" not in json.dumps(lines)


@pytest.mark.django_db
def test_each_request_is_logged_with_a_request_id(json_log, auth_api):
    auth_api.get("/v1/users/me", HTTP_X_REQUEST_ID="abc")
    lines = [line for line in json_log()
             if line.get("logger") == "django_structlog.middlewares.request"]
    # one line per request at INFO: its `request_finished` (`request_started` is DEBUG)
    assert [line["event"] for line in lines] == ["request_finished"]
    assert lines[0]["code"] == 200 and lines[0]["user_id"]
    ids = {line["request_id"] for line in lines}
    assert len(ids) == 1 and ids != {None}
    assert "4165550" not in json.dumps(lines)


@pytest.mark.django_db
def test_metrics_endpoint_exposes_request_and_domain_metrics(client):
    BIDS_PLACED.inc()
    client.get("/healthz")
    response = client.get("/metrics")
    assert response.status_code == 200
    text = response.content.decode()
    assert "django_http_requests_latency_seconds_by_view_method" in text
    assert "biddt_bids_placed_total " in text
    assert "biddt_sockets_open" in text
    assert "biddt_celery_queue_depth" in text


TOKEN = "m3tr1cs-" * 5


@pytest.fixture
def production_metrics(settings):
    settings.PRODUCTION = True
    settings.BIDDT_METRICS_TOKEN = TOKEN
    return settings


@pytest.mark.django_db
@pytest.mark.parametrize("authorization", [
    pytest.param(None, id="no-header"),
    pytest.param(f"Bearer {TOKEN[:-1]}", id="wrong-token"),
    pytest.param(f"Bearer {TOKEN}x", id="longer-token"),
    pytest.param(f"Basic {TOKEN}", id="other-scheme"),
    pytest.param("Bearer ", id="empty-token"),
])
def test_production_metrics_without_the_token_look_like_no_page(client, production_metrics,
                                                                 authorization):
    headers = {"HTTP_AUTHORIZATION": authorization} if authorization else {}
    response = client.get("/metrics", **headers)
    # the API's answer to an unknown path: nothing says the endpoint exists
    assert response.status_code == 404
    assert response.json()["errors"][0]["code"] == "not_found"
    assert b"biddt_bids_placed_total" not in response.content


@pytest.mark.django_db
def test_production_metrics_with_the_token(client, production_metrics):
    BIDS_PLACED.inc()
    response = client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}")
    assert response.status_code == 200
    assert "biddt_bids_placed_total " in response.content.decode()


@pytest.mark.django_db
def test_production_metrics_are_off_without_a_configured_token(client, production_metrics):
    production_metrics.BIDDT_METRICS_TOKEN = ""
    # not even an empty bearer token matches an unset one
    for headers in ({}, {"HTTP_AUTHORIZATION": "Bearer "}):
        assert client.get("/metrics", **headers).status_code == 404
