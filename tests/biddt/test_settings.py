"""Production settings refuse to start without real secrets; each variable is named."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys

import pytest

from tests.biddt.processes import BASE_DIR

SETUP = "import django; django.setup(); print('started')"
SECRETS = ("SECRET_KEY", "ALLOWED_HOSTS", "BIDDT_PII_KEYS", "BIDDT_PII_HMAC_KEY")
GOOD = {
    "SECRET_KEY": "x7!q" * 16,
    "ALLOWED_HOSTS": "api.biddt.example",
    "BIDDT_PII_KEYS": "k1:" + base64.b64encode(b"k" * 32).decode(),
    "BIDDT_PII_HMAC_KEY": base64.b64encode(b"h" * 32).decode(),
}

pytestmark = pytest.mark.skipif(
    (BASE_DIR / ".env").is_file(),
    reason="a local .env supplies missing variables to the settings",
)


def start_production(**overrides: str | None) -> subprocess.CompletedProcess:
    """`django.setup()` in a fresh process with production settings and the given env."""
    env = {k: v for k, v in os.environ.items()
           if k not in (*SECRETS, "DEBUG", "DJANGO_SETTINGS_MODULE", "BIDDT_ENVIRONMENT")}
    env.update(GOOD)
    env.update(BIDDT_ENVIRONMENT="production", DJANGO_SETTINGS_MODULE="biddt.settings",
               PYTHONPATH=str(BASE_DIR))
    for name, value in overrides.items():
        if value is None:
            env.pop(name, None)
        else:
            env[name] = value
    return subprocess.run([sys.executable, "-c", SETUP], cwd=BASE_DIR, env=env,
                          capture_output=True, text=True, timeout=120)


def test_production_starts_with_every_secret_set():
    # given every required variable
    # when the production settings load
    result = start_production()
    # then Django starts
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().endswith("started")


def test_production_refuses_to_start_without_secrets():
    # given none of the required variables
    result = start_production(**dict.fromkeys(SECRETS))
    # then the process fails and names every missing variable
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr
    for name in SECRETS:
        assert name in result.stderr, name
    assert "started" not in result.stdout


@pytest.mark.parametrize("missing", SECRETS)
def test_each_missing_secret_is_named(missing):
    # given all variables but one
    result = start_production(**{missing: None})
    # then the start fails naming that one, and only that one
    assert result.returncode != 0
    message = result.stderr.strip().splitlines()[-1]
    listed = [item.split()[0] for item in message.partition("without: ")[2].split(", ")]
    assert listed == [missing], message


@pytest.mark.parametrize(
    ("overrides", "named"),
    [
        pytest.param({"SECRET_KEY": "biddt-development-only-secret-key-never-use-in-production"},
                     "SECRET_KEY", id="development-secret"),
        pytest.param({"SECRET_KEY": "short-secret"}, "SECRET_KEY", id="short-secret"),
        pytest.param({"ALLOWED_HOSTS": "*"}, "ALLOWED_HOSTS", id="wildcard-host"),
        pytest.param({"DEBUG": "1"}, "DEBUG", id="debug-on"),
    ],
)
def test_weak_production_values_are_refused(overrides, named):
    result = start_production(**overrides)
    assert result.returncode != 0
    assert named in result.stderr.strip().splitlines()[-1]


def test_development_starts_without_any_secret():
    # The embedded defaults: `make run` needs no variables.
    env = {k: v for k, v in os.environ.items() if k not in (*SECRETS, "BIDDT_ENVIRONMENT")}
    env.update(DJANGO_SETTINGS_MODULE="biddt.settings", PYTHONPATH=str(BASE_DIR))
    result = subprocess.run([sys.executable, "-c", SETUP], cwd=BASE_DIR, env=env,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize(("overrides", "expected"), [
    ({}, "60 8 300 24"),
    ({"DATABASE_CONN_MAX_AGE": "0", "BIDDT_HTTP_THREADS": "4",
      "BIDDT_NOTIFY_REDELIVER_AFTER_SECONDS": "30", "BIDDT_NOTIFY_REDELIVER_HOURS": "2"},
     "0 4 30 2"),
])
def test_connection_and_thread_defaults_and_their_overrides(overrides, expected):
    # given production settings on PostgreSQL (nothing connects while settings load)
    env = {k: v for k, v in os.environ.items()
           if k not in ("DATABASE_CONN_MAX_AGE", "BIDDT_HTTP_THREADS",
                        "BIDDT_NOTIFY_REDELIVER_AFTER_SECONDS", "BIDDT_NOTIFY_REDELIVER_HOURS")}
    env.update(GOOD, BIDDT_ENVIRONMENT="production", DJANGO_SETTINGS_MODULE="biddt.settings",
               PYTHONPATH=str(BASE_DIR), DATABASE_URL="postgres://u@db.internal:5432/biddt",
               **overrides)
    show = ("from django.conf import settings as s; print(s.DATABASES['default']['CONN_MAX_AGE'],"
            " s.BIDDT_HTTP_THREADS, s.BIDDT_NOTIFY_REDELIVER_AFTER_SECONDS,"
            " s.BIDDT_NOTIFY_REDELIVER_HOURS)")
    result = subprocess.run([sys.executable, "-c", show], cwd=BASE_DIR, env=env,
                            capture_output=True, text=True, timeout=120)
    # then kept connections and the HTTP pool have their defaults, and each variable wins
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == expected


RATES = ("import json, django; django.setup(); from django.conf import settings; "
         "print(json.dumps(settings.THROTTLE_RATES))")


def throttle_rates(environment: str) -> dict[str, str]:
    """THROTTLE_RATES as a fresh process loads them for `environment` (no override set)."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("BIDDT_THROTTLE_")
           and k not in (*SECRETS, "DEBUG", "DJANGO_SETTINGS_MODULE", "BIDDT_ENVIRONMENT")}
    env.update(GOOD)
    env.update(BIDDT_ENVIRONMENT=environment, DJANGO_SETTINGS_MODULE="biddt.settings",
               PYTHONPATH=str(BASE_DIR))
    result = subprocess.run([sys.executable, "-c", RATES], cwd=BASE_DIR, env=env,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


CONTRACT_RATES = {"auth_phone": "5/min", "auth_ip": "20/min", "user": "100/min",
                  "anon": "300/min", "bid": "10/min", "listing_create": "5/hour"}


def test_production_throttles_are_the_contract_rates():
    assert throttle_rates("production") == CONTRACT_RATES


def test_development_throttles_let_a_person_try_the_api_without_429():
    # `make run`: every scope allows far more than a person clicks in a minute
    rates = throttle_rates("development")
    assert set(rates) == set(CONTRACT_RATES)
    for scope, rate in rates.items():
        count, period = rate.split("/")
        per_minute = int(count) * {"s": 60, "m": 1, "h": 1 / 60, "d": 1 / 1440}[period[0]]
        assert per_minute >= 1000, (scope, rate)
