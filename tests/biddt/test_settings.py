"""Production refuses to start on fake money, fake SMS or weak secrets; each variable is named.

The requirements are Django system checks (biddt/checks.py). One test per refusal calls the
check functions on production settings; real processes prove that every kind of process
(Django setup, a WSGI server's entry point, `manage.py check --deploy`, a Celery worker and
beat) refuses to start, and that a complete production environment starts.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys

import pytest

from biddt import checks
from tests.biddt.processes import BASE_DIR

SETUP = "import django; django.setup(); print('started')"
GOOD = {
    "SECRET_KEY": "x7!q" * 16,
    "JWT_SIGNING_KEY": "j9#w" * 16,
    "ALLOWED_HOSTS": "api.biddt.example",
    "BIDDT_PII_KEYS": "k1:" + base64.b64encode(b"k" * 32).decode(),
    "BIDDT_PII_HMAC_KEY": base64.b64encode(b"h" * 32).decode(),
    "STRIPE_SECRET_KEY": "sk_live_" + "a" * 24,
    "STRIPE_WEBHOOK_SECRET": "whsec_" + "b" * 24,
    "TWILIO_ACCOUNT_SID": "AC" + "c" * 32,
    "TWILIO_AUTH_TOKEN": "d" * 32,
    "TWILIO_MESSAGING_SERVICE_SID": "MG" + "e" * 32,
    "BIDDT_HANDOFF_SIGNING_KEY": "h1:" + base64.urlsafe_b64encode(b"f" * 32).decode(),
}
# Every variable a production check reads: removed from the inherited environment first.
CHECKED = (*GOOD, "DEBUG", "BIDDT_PAYMENTS_BACKEND", "BIDDT_TEST_PHONE_NUMBERS",
           "BIDDT_SMS_BACKEND", "TWILIO_FROM_NUMBER", "BIDDT_PUSH_BACKEND",
           "FIREBASE_CREDENTIALS_FILE", "BIDDT_METRICS_TOKEN", "BIDDT_HANDOFF_PREVIOUS_KEYS")

pytestmark = pytest.mark.skipif(
    (BASE_DIR / ".env").is_file(),
    reason="a local .env supplies missing variables to the settings",
)


def production_env(**overrides: str | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if k not in (*CHECKED, "DJANGO_SETTINGS_MODULE", "BIDDT_ENVIRONMENT",
                        "DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL")}
    env.update(GOOD)
    env.update(BIDDT_ENVIRONMENT="production", DJANGO_SETTINGS_MODULE="biddt.settings",
               PYTHONPATH=str(BASE_DIR))
    for name, value in overrides.items():
        if value is None:
            env.pop(name, None)
        else:
            env[name] = value
    return env


def run(args: list[str], **overrides: str | None) -> subprocess.CompletedProcess:
    return subprocess.run(args, cwd=BASE_DIR, env=production_env(**overrides),
                          capture_output=True, text=True, timeout=120)


def start_production(**overrides: str | None) -> subprocess.CompletedProcess:
    """`django.setup()` in a fresh process with production settings and the given env."""
    return run([sys.executable, "-c", SETUP], **overrides)


# --- the checks, one refusal each (production settings in this process) -------------------

@pytest.fixture
def production(settings):
    """This process's settings made a complete, valid production configuration."""
    settings.PRODUCTION = True
    settings.DEBUG = False
    settings.SECRET_KEY = GOOD["SECRET_KEY"]
    settings.SIMPLE_JWT = {**settings.SIMPLE_JWT, "SIGNING_KEY": GOOD["JWT_SIGNING_KEY"]}
    settings.ALLOWED_HOSTS = [GOOD["ALLOWED_HOSTS"]]
    settings.BIDDT_PII_KEYS = GOOD["BIDDT_PII_KEYS"]
    settings.BIDDT_PII_HMAC_KEY = GOOD["BIDDT_PII_HMAC_KEY"]
    settings.BIDDT_PAYMENTS_BACKEND = "stripe"
    settings.STRIPE_SECRET_KEY = GOOD["STRIPE_SECRET_KEY"]
    settings.STRIPE_WEBHOOK_SECRET = GOOD["STRIPE_WEBHOOK_SECRET"]
    settings.BIDDT_TEST_PHONE_NUMBERS = ""
    settings.BIDDT_SMS_BACKEND = "accounts.sms.TwilioBackend"
    settings.TWILIO_ACCOUNT_SID = GOOD["TWILIO_ACCOUNT_SID"]
    settings.TWILIO_AUTH_TOKEN = GOOD["TWILIO_AUTH_TOKEN"]
    settings.TWILIO_MESSAGING_SERVICE_SID = GOOD["TWILIO_MESSAGING_SERVICE_SID"]
    settings.TWILIO_FROM_NUMBER = ""
    settings.BIDDT_PUSH_BACKEND = "notifications.push.FCMBackend"
    settings.FIREBASE_CREDENTIALS_FILE = ""
    settings.BIDDT_METRICS_TOKEN = ""
    settings.BIDDT_HANDOFF_SIGNING_KEY = GOOD["BIDDT_HANDOFF_SIGNING_KEY"]
    settings.BIDDT_HANDOFF_PREVIOUS_KEYS = ""
    return settings


def test_a_complete_production_configuration_passes_every_check(production):
    assert checks.production_errors() == []
    assert checks.production_requirements() == []
    checks.refuse_misconfigured_production()  # does not raise


_DEV_PII = checks.dev_pii_keys_b64()


@pytest.mark.parametrize(("changes", "check_id", "variable"), [
    pytest.param({"BIDDT_PAYMENTS_BACKEND": "simulated"}, "E001", "BIDDT_PAYMENTS_BACKEND",
                 id="simulated-payments"),
    pytest.param({"STRIPE_SECRET_KEY": ""}, "E002", "STRIPE_SECRET_KEY", id="no-stripe-key"),
    pytest.param({"STRIPE_SECRET_KEY": "sk_test_" + "a" * 24}, "E002", "STRIPE_SECRET_KEY",
                 id="stripe-test-key"),
    pytest.param({"STRIPE_WEBHOOK_SECRET": ""}, "E003", "STRIPE_WEBHOOK_SECRET",
                 id="no-webhook-secret"),
    pytest.param({"STRIPE_WEBHOOK_SECRET": "not-a-signing-secret"}, "E003",
                 "STRIPE_WEBHOOK_SECRET", id="webhook-secret-shape"),
    pytest.param({"BIDDT_TEST_PHONE_NUMBERS": "+15555550100:123456"}, "E004",
                 "BIDDT_TEST_PHONE_NUMBERS", id="test-numbers"),
    pytest.param({"SECRET_KEY": checks.DEV_SECRET_KEY}, "E005", "SECRET_KEY",
                 id="development-secret"),
    pytest.param({"SECRET_KEY": "short-secret"}, "E005", "SECRET_KEY", id="short-secret"),
    pytest.param({"JWT_SIGNING_KEY": ""}, "E006", "JWT_SIGNING_KEY", id="no-jwt-key"),
    pytest.param({"JWT_SIGNING_KEY": "abc"}, "E006", "JWT_SIGNING_KEY", id="short-jwt-key"),
    pytest.param({"JWT_SIGNING_KEY": checks.DEV_SECRET_KEY}, "E006", "JWT_SIGNING_KEY",
                 id="development-jwt-key"),
    pytest.param({"JWT_SIGNING_KEY": GOOD["SECRET_KEY"]}, "E006", "JWT_SIGNING_KEY",
                 id="jwt-key-is-secret-key"),
    pytest.param({"ALLOWED_HOSTS": ["api.example.com", "*"]}, "E007", "ALLOWED_HOSTS",
                 id="wildcard-among-hosts"),
    pytest.param({"ALLOWED_HOSTS": []}, "E007", "ALLOWED_HOSTS", id="no-hosts"),
    pytest.param({"DEBUG": True}, "E008", "DEBUG", id="debug-on"),
    pytest.param({"BIDDT_PII_KEYS": ""}, "E009", "BIDDT_PII_KEYS", id="no-pii-keys"),
    pytest.param({"BIDDT_PII_KEYS": "k1:not-base64!"}, "E009", "BIDDT_PII_KEYS",
                 id="malformed-pii-keys"),
    pytest.param({"BIDDT_PII_KEYS": f"{GOOD['BIDDT_PII_KEYS']},dev1:{_DEV_PII[0]}"}, "E009",
                 "BIDDT_PII_KEYS", id="development-pii-key"),
    pytest.param({"BIDDT_PII_HMAC_KEY": ""}, "E010", "BIDDT_PII_HMAC_KEY", id="no-hmac-key"),
    pytest.param({"BIDDT_PII_HMAC_KEY": base64.b64encode(b"short").decode()}, "E010",
                 "BIDDT_PII_HMAC_KEY", id="short-hmac-key"),
    pytest.param({"BIDDT_PII_HMAC_KEY": _DEV_PII[1]}, "E010", "BIDDT_PII_HMAC_KEY",
                 id="development-hmac-key"),
    pytest.param({"BIDDT_PII_HMAC_KEY": GOOD["BIDDT_PII_KEYS"][3:]}, "E010",
                 "BIDDT_PII_HMAC_KEY", id="hmac-key-reuses-pii-key"),
    pytest.param({"BIDDT_SMS_BACKEND": "accounts.sms.ConsoleBackend"}, "E011",
                 "BIDDT_SMS_BACKEND", id="console-sms"),
    pytest.param({"BIDDT_SMS_BACKEND": "accounts.sms.InMemoryBackend"}, "E011",
                 "BIDDT_SMS_BACKEND", id="in-memory-sms"),
    pytest.param({"TWILIO_ACCOUNT_SID": ""}, "E012", "TWILIO_ACCOUNT_SID", id="no-twilio-sid"),
    pytest.param({"TWILIO_AUTH_TOKEN": ""}, "E012", "TWILIO_AUTH_TOKEN", id="no-twilio-token"),
    pytest.param({"TWILIO_MESSAGING_SERVICE_SID": ""}, "E012", "TWILIO_MESSAGING_SERVICE_SID",
                 id="no-twilio-sender"),
    pytest.param({"BIDDT_PUSH_BACKEND": "notifications.push.ConsoleBackend"}, "E013",
                 "BIDDT_PUSH_BACKEND", id="console-push"),
    pytest.param({"FIREBASE_CREDENTIALS_FILE": "/nonexistent/firebase.json"}, "E013",
                 "FIREBASE_CREDENTIALS_FILE", id="missing-firebase-file"),
    pytest.param({"BIDDT_METRICS_TOKEN": "short"}, "E014", "BIDDT_METRICS_TOKEN",
                 id="short-metrics-token"),
    pytest.param({"BIDDT_HANDOFF_SIGNING_KEY": ""}, "E015", "BIDDT_HANDOFF_SIGNING_KEY",
                 id="no-handoff-key"),
    pytest.param({"BIDDT_HANDOFF_SIGNING_KEY": checks.dev_handoff_key()}, "E015",
                 "BIDDT_HANDOFF_SIGNING_KEY", id="development-handoff-key"),
    pytest.param({"BIDDT_HANDOFF_SIGNING_KEY": "h1:c2hvcnQ"}, "E015",
                 "BIDDT_HANDOFF_SIGNING_KEY", id="short-handoff-key"),
    pytest.param({"BIDDT_HANDOFF_PREVIOUS_KEYS": "old:not base64!"}, "E015",
                 "BIDDT_HANDOFF_PREVIOUS_KEYS", id="malformed-previous-handoff-key"),
])
def test_each_production_requirement_refuses_and_names_its_variable(
        production, changes, check_id, variable):
    # given a valid production configuration with one thing wrong
    for name, value in changes.items():
        if name == "JWT_SIGNING_KEY":
            production.SIMPLE_JWT = {**production.SIMPLE_JWT, "SIGNING_KEY": value}
        else:
            setattr(production, name, value)
    # when the checks run
    errors = checks.production_errors()
    # then exactly that requirement fails, and its message starts with the variable
    assert [e.id for e in errors] == [f"biddt.{check_id}"], errors
    assert errors[0].msg.startswith(f"{variable}:"), errors[0].msg
    # and the start-up refusal lists it
    with pytest.raises(Exception, match=variable) as raised:
        checks.refuse_misconfigured_production()
    assert type(raised.value).__name__ == "ImproperlyConfigured"


def test_a_from_number_replaces_the_messaging_service(production):
    production.TWILIO_MESSAGING_SERVICE_SID = ""
    production.TWILIO_FROM_NUMBER = "+14165550100"
    assert checks.production_errors() == []


def test_checks_are_silent_outside_production(settings):
    # development and test keep their embedded defaults (simulated payments, console SMS)
    settings.PRODUCTION = False
    assert checks.production_requirements() == []
    checks.refuse_misconfigured_production()


# --- real processes -------------------------------------------------------------------------

def test_production_starts_with_every_requirement_met():
    result = start_production()
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().endswith("started")


def test_production_refuses_to_start_listing_every_missing_variable():
    # given none of the required variables (payments default to stripe in production)
    result = start_production(**dict.fromkeys(GOOD))
    # then the process fails and names every one
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr
    for name in GOOD:
        assert name in result.stderr, name
    assert "started" not in result.stdout


def test_simulated_payments_refused_at_start():
    result = start_production(BIDDT_PAYMENTS_BACKEND="simulated")
    assert result.returncode != 0
    assert "biddt.E001 BIDDT_PAYMENTS_BACKEND" in result.stderr
    assert "started" not in result.stdout


def test_a_wsgi_server_entry_point_refuses_to_start():
    # any WSGI/ASGI server builds its application through django.setup()
    code = ("from django.core.wsgi import get_wsgi_application; get_wsgi_application();"
            " print('started')")
    result = run([sys.executable, "-c", code], JWT_SIGNING_KEY="abc")
    assert result.returncode != 0
    assert "JWT_SIGNING_KEY" in result.stderr
    assert "started" not in result.stdout


def test_check_deploy_lists_every_failure_and_exits_non_zero():
    result = run([sys.executable, "manage.py", "check", "--deploy"],
                 ALLOWED_HOSTS="api.example.com,*", BIDDT_TEST_PHONE_NUMBERS="+15555550100:123456",
                 TWILIO_AUTH_TOKEN=None)
    assert result.returncode == 1, result.stdout + result.stderr
    output = result.stdout + result.stderr
    for line in ("(biddt.E004) BIDDT_TEST_PHONE_NUMBERS", "(biddt.E007) ALLOWED_HOSTS",
                 "(biddt.E012) TWILIO_AUTH_TOKEN"):
        assert line in output, output


def test_check_deploy_passes_a_complete_production_environment():
    result = run([sys.executable, "manage.py", "check", "--deploy"])
    assert result.returncode == 0, result.stdout + result.stderr
    assert "biddt.E" not in result.stdout + result.stderr


def test_other_management_commands_refuse_to_run():
    result = run([sys.executable, "manage.py", "showmigrations", "accounts"],
                 BIDDT_SMS_BACKEND="accounts.sms.ConsoleBackend")
    assert result.returncode != 0
    assert "BIDDT_SMS_BACKEND" in result.stderr


def test_collectstatic_builds_the_image_without_runtime_secrets():
    # the Dockerfile's build step: no secret exists at build time, and it touches nothing
    result = run([sys.executable, "manage.py", "collectstatic", "--noinput", "--dry-run",
                  "-v0"], **dict.fromkeys(GOOD))
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("command", [
    ["worker", "--pool=solo", "-Q", "h14a-never-used", "--without-heartbeat",
     "--without-gossip", "--without-mingle"],
    ["beat", "--schedule", os.devnull],
], ids=["worker", "beat"])
def test_celery_refuses_to_start(command):
    # given production with the development PII key and no broker to reach (it never gets
    # that far: the refusal comes first)
    result = run([sys.executable, "-m", "celery", "-A", "biddt", *command],
                 BIDDT_PII_HMAC_KEY=checks.dev_pii_keys_b64()[1],
                 CELERY_BROKER_URL="redis://127.0.0.1:1/0")
    assert result.returncode != 0
    assert "biddt.E010 BIDDT_PII_HMAC_KEY" in result.stdout + result.stderr


def test_development_starts_without_any_secret():
    # The embedded defaults: `make run` needs no variables.
    env = {k: v for k, v in os.environ.items() if k not in (*CHECKED, "BIDDT_ENVIRONMENT")}
    env.update(DJANGO_SETTINGS_MODULE="biddt.settings", PYTHONPATH=str(BASE_DIR))
    result = subprocess.run([sys.executable, "-c", SETUP], cwd=BASE_DIR, env=env,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize(("overrides", "expected"), [
    ({}, "60 300 24"),
    ({"DATABASE_CONN_MAX_AGE": "0",
      "BIDDT_NOTIFY_REDELIVER_AFTER_SECONDS": "30", "BIDDT_NOTIFY_REDELIVER_HOURS": "2"},
     "0 30 2"),
])
def test_connection_and_sweep_defaults_and_their_overrides(overrides, expected):
    # given production settings on PostgreSQL (nothing connects while settings load)
    env = {k: v for k, v in os.environ.items()
           if k not in ("DATABASE_CONN_MAX_AGE",
                        "BIDDT_NOTIFY_REDELIVER_AFTER_SECONDS", "BIDDT_NOTIFY_REDELIVER_HOURS")}
    env.update(GOOD, BIDDT_ENVIRONMENT="production", DJANGO_SETTINGS_MODULE="biddt.settings",
               PYTHONPATH=str(BASE_DIR), DATABASE_URL="postgres://u@db.internal:5432/biddt",
               **overrides)
    show = ("from django.conf import settings as s; print(s.DATABASES['default']['CONN_MAX_AGE'],"
            " s.BIDDT_NOTIFY_REDELIVER_AFTER_SECONDS,"
            " s.BIDDT_NOTIFY_REDELIVER_HOURS)")
    result = subprocess.run([sys.executable, "-c", show], cwd=BASE_DIR, env=env,
                            capture_output=True, text=True, timeout=120)
    # then kept connections and the redelivery sweep have their defaults, and each variable wins
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == expected


RATES = ("import json, django; django.setup(); from django.conf import settings; "
         "print(json.dumps(settings.THROTTLE_RATES))")


def throttle_rates(environment: str) -> dict[str, str]:
    """THROTTLE_RATES as a fresh process loads them for `environment` (no override set)."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("BIDDT_THROTTLE_")
           and k not in (*CHECKED, "DJANGO_SETTINGS_MODULE", "BIDDT_ENVIRONMENT")}
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
