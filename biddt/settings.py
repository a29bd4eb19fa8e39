"""Biddt settings, read from the environment (django-environ).

Every variable has a safe embedded default for development (SQLite, in-memory channel layer,
local-memory cache, in-process jobs, local media, console SMS, simulated payments), so
`make run` needs nothing but Python. `BIDDT_ENVIRONMENT=production` turns on the checks that
refuse to start without real secrets, real money and real SMS (biddt/checks.py). README.md
lists every variable.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured

from biddt.checks import DEV_SECRET_KEY, dev_handoff_key, dev_pii_keys_b64

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
if (BASE_DIR / ".env").is_file():
    environ.Env.read_env(BASE_DIR / ".env")

BIDDT_ENVIRONMENT = env.str("BIDDT_ENVIRONMENT", default="development")
if BIDDT_ENVIRONMENT not in {"development", "test", "production"}:
    raise ImproperlyConfigured("BIDDT_ENVIRONMENT must be development, test or production")
PRODUCTION = BIDDT_ENVIRONMENT == "production"

# The development key even in production: Django refuses to read an empty SECRET_KEY, and
# biddt.checks refuses this one with a message naming the variable.
SECRET_KEY = env.str("SECRET_KEY", default=DEV_SECRET_KEY)
DEBUG = env.bool("DEBUG", default=not PRODUCTION)
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=[] if PRODUCTION else ["*"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

# --- PII encryption (AES-256-GCM) and blind index (HMAC-SHA256) -------------------------
# BIDDT_PII_KEYS: "kid:base64key,kid2:base64key"; the first encrypts, all decrypt (rotation).
# BIDDT_PII_HMAC_KEY: the blind-index key; changing it needs `manage.py rotate_pii_keys --reindex`.
_dev_key, _dev_hmac_key = dev_pii_keys_b64()
BIDDT_PII_KEYS = env.str("BIDDT_PII_KEYS", default="" if PRODUCTION else f"dev1:{_dev_key}")
BIDDT_PII_HMAC_KEY = env.str("BIDDT_PII_HMAC_KEY", default="" if PRODUCTION else _dev_hmac_key)
# What production requires (real money, SMS, secrets) is checked in one place, biddt/checks.py:
# Django system checks that `manage.py check --deploy` lists and that every process runs at
# start-up (biddt.core's AppConfig.ready), refusing to start when one fails.

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django.contrib.postgres",
    "rest_framework",
    "rest_framework_simplejwt",
    "rest_framework_simplejwt.token_blacklist",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "drf_standardized_errors",
    "django_filters",
    "phonenumber_field",
    "channels",
    "django_celery_beat",
    "simple_history",
    "django_structlog",
    "django_prometheus",
    "biddt.core",
    "accounts",
    "listings",
    "bidding",
    "escrow",
    "djstripe",
    "chat",
    "safezones",
    "notifications",
    "discovery",
    "privacy",
    "project",
    "axes",
]

MIDDLEWARE = [
    "django_prometheus.middleware.PrometheusBeforeMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "biddt.i18n.ApiLanguageMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "simple_history.middleware.HistoryRequestMiddleware",
    "django_structlog.middlewares.RequestMiddleware",
    "django_prometheus.middleware.PrometheusAfterMiddleware",
    # Only turns the staff login's lockout flag into the 429 page (no query of its own).
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "biddt.urls"
ASGI_APPLICATION = "biddt.asgi.application"
# The sockets' authentication, named like REST's DEFAULT_AUTHENTICATION_CLASSES: biddt (the
# lowest layer) wires the apps by name and imports none of them.
BIDDT_WS_AUTH_MIDDLEWARE = "accounts.ws_auth.JWTAuthMiddleware"
WSGI_APPLICATION = None
APPEND_SLASH = False

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# --- Database ---------------------------------------------------------------------------
DATABASES = {
    "default": env.db("DATABASE_URL", default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}"),
}
DATABASES["default"].setdefault("ATOMIC_REQUESTS", False)
if DATABASES["default"]["ENGINE"].endswith("postgresql"):
    DATABASES["default"]["CONN_MAX_AGE"] = env.int("DATABASE_CONN_MAX_AGE", default=60)
    # No `SELECT 1` before each request's first query: a connection that failed during a
    # request (the error answers 503) is closed at the end of that request and the next one
    # opens a new one (Django checks a connection that saw an error; tests/chaos).
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = env.bool("DATABASE_CONN_HEALTH_CHECKS",
                                                          default=False)
    # A lock held longer than this aborts the statement: the request answers 503 and the
    # client (or Stripe) retries, instead of piling up behind a stuck transaction.
    DATABASES["default"].setdefault("OPTIONS", {})["options"] = (
        f"-c lock_timeout={env.int('DATABASE_LOCK_TIMEOUT_MS', default=5000)}"
    )
elif DATABASES["default"]["ENGINE"].endswith("sqlite3"):
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {"transaction_mode": "IMMEDIATE", "timeout": 20, "init_command": "PRAGMA journal_mode=WAL;"}
    )
# A PostgreSQL read replica (hot standby) for browse and search reads, unset by default.
# biddt/db_router.py says which reads go there and how a writer reads its own writes.
DATABASE_REPLICA_URL = env.str("DATABASE_REPLICA_URL", default="")
# Seconds a user's reads stay on the primary after that user wrote (read-your-writes); keep
# it above the replica's worst lag you accept.
BIDDT_REPLICA_PIN_SECONDS = env.int("BIDDT_REPLICA_PIN_SECONDS", default=5)
# URL names of the views whose safe requests read from the replica.
BIDDT_REPLICA_READ_VIEWS = ["listings", "listing-detail", "safe-zones", "users-profile"]
if DATABASE_REPLICA_URL:
    _replica = env.db("DATABASE_REPLICA_URL")
    for _key in ("CONN_MAX_AGE", "CONN_HEALTH_CHECKS", "ATOMIC_REQUESTS"):
        if _key in DATABASES["default"]:
            _replica[_key] = DATABASES["default"][_key]
    # Tests: the replica is the test database itself (no second test database is created).
    _replica["TEST"] = {"MIRROR": "default"}
    DATABASES["replica"] = _replica
    DATABASE_ROUTERS = ["biddt.db_router.ReplicaRouter"]
    MIDDLEWARE.insert(MIDDLEWARE.index("django.contrib.auth.middleware.AuthenticationMiddleware") + 1,
                      "biddt.db_router.ReplicaReadMiddleware")
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
USING_POSTGRES = DATABASES["default"]["ENGINE"].endswith("postgresql")

# --- Redis: cache, throttles, channel layer ----------------------------------------------
REDIS_URL = env.str("REDIS_URL", default="")
REDIS_CACHE_OPTIONS = {
    "CLIENT_CLASS": "django_redis.client.DefaultClient",
    "SOCKET_CONNECT_TIMEOUT": 2,
    "SOCKET_TIMEOUT": 2,
    # Redis down must not take bids down: cache reads miss, writes are dropped, throttles
    # fail open, and /readyz reports the outage instead.
    "IGNORE_EXCEPTIONS": True,
}
# Not one traceback per cache call during an outage: /readyz and the redis logger report it.
DJANGO_REDIS_LOG_IGNORED_EXCEPTIONS = False
if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "django_redis.cache.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": env.str("CACHE_KEY_PREFIX", default="biddt"),
            "OPTIONS": REDIS_CACHE_OPTIONS,
        }
    }
    # The core (list-based) layer, not RedisPubSubChannelLayer, measured with
    # `python -m benchmarks bench_channel_layer` (README, "Benchmarks"): pub/sub fans out
    # 1.7-5x faster (24k-63k vs 12k-15k deliveries/s to 200 consumers) with lower latency
    # (paced p99 4-12 vs 9-18 ms), but it has no capacity and no expiry: a consumer that stops
    # reading keeps every message in an unbounded in-process queue (2,000 of 2,000 in the
    # flood test), so one stuck socket grows daphne's memory without limit. Core holds at most
    # `capacity` per channel (100 of 2,000) and drops the rest, and its p99 is far inside the 250 ms
    # fan-out budget (bench_fanout). A client that misses events sees a `seq` gap and
    # re-reads the listing over REST, so dropping is safe.
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {
                # redis-py 5+ caps an asyncio pool at 100 connections and then *raises*
                # (MaxConnectionsError): with more than ~100 sockets subscribing at once on
                # one daphne, group_add failed and sockets closed (found by bench_fanout).
                "hosts": [{
                    "address": env.str("CHANNEL_LAYER_REDIS_URL", default=REDIS_URL),
                    "max_connections": env.int("CHANNEL_LAYER_MAX_CONNECTIONS", default=2000),
                    # redis-py 8 reads with a 5 s socket timeout by default, the same as
                    # channels_redis's 5 s BZPOPMIN: every idle receive raised TimeoutError,
                    # closing a socket (1011) every few seconds (found by bench_soak).
                    "socket_timeout": env.float("CHANNEL_LAYER_SOCKET_TIMEOUT", default=30.0),
                }],
                "prefix": env.str("CHANNEL_LAYER_PREFIX", default="biddt-ws"),
                # Bounds what a slow consumer can pin: at most `capacity` undelivered
                # messages per channel (~1-2 KB each), in Redis and in daphne's per-socket
                # buffer; older ones are dropped. Note that all sockets of one daphne share one
                # Redis list, so this is also how far a whole process may fall behind before
                # it drops (100 group sends: 2 s of a 50 bids/s hot listing).
                "capacity": env.int("CHANNEL_LAYER_CAPACITY", default=100),
                # A room event older than this is stale (the client resyncs by seq anyway).
                "expiry": env.int("CHANNEL_LAYER_EXPIRY", default=10),
                "group_expiry": env.int("CHANNEL_LAYER_GROUP_EXPIRY", default=86400),
            },
        }
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels.layers.InMemoryChannelLayer",
            "CONFIG": {"capacity": 200, "expiry": 30},
        }
    }

# --- Celery -------------------------------------------------------------------------------
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default=REDIS_URL or "memory://")
CELERY_RESULT_BACKEND = env.str("CELERY_RESULT_BACKEND", default="") or None
# Embedded mode (no broker configured): tasks run in-process, and the server process runs
# the beat schedule itself (biddt.scheduler), so `make run` needs no worker or beat.
BIDDT_EMBEDDED_JOBS = env.bool("BIDDT_EMBEDDED_JOBS", default=CELERY_BROKER_URL == "memory://")
CELERY_TASK_ALWAYS_EAGER = env.bool("CELERY_TASK_ALWAYS_EAGER", default=BIDDT_EMBEDDED_JOBS)
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_TIME_LIMIT = env.int("CELERY_TASK_TIME_LIMIT", default=120)
CELERY_TASK_SOFT_TIME_LIMIT = env.int("CELERY_TASK_SOFT_TIME_LIMIT", default=100)
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 3600}
# Broker connections a process may hold for publishing. Each request thread that queues a
# task after commit takes one; Celery's default (10) made a busy daphne's requests queue
# for a free connection.
CELERY_BROKER_POOL_LIMIT = env.int("CELERY_BROKER_POOL_LIMIT", default=50)
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TIMEZONE = "UTC"
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
# One schedule for both beat and the embedded scheduler. Intervals in seconds.
CELERY_BEAT_SCHEDULE = {
    "flush-expired-otps": {"task": "accounts.tasks.otp_purge_expired", "schedule": 3600.0},
    "flush-expired-tokens": {"task": "accounts.tasks.jwt_flush_expired", "schedule": 86400.0},
    "ending-soon-notifications": {"task": "bidding.tasks.auction_ending_soon_notify",
                                  "schedule": 60.0},
    "auction-close-due": {"task": "bidding.tasks.auction_close_due", "schedule": 5.0},
    # Scheduled listings open within 5 s of `starts_at` (API.md), so every 2 s.
    "listings-open-due": {"task": "listings.tasks.listings_open_due", "schedule": 2.0},
    "auction-ending-soon": {"task": "bidding.tasks.auction_ending_soon", "schedule": 5.0},
    "idempotency-purge": {"task": "biddt.core.tasks.idempotency_purge_expired",
                          "schedule": 3600.0},
    "second-chance-expire": {"task": "escrow.tasks.second_chance_expire_due",
                             "schedule": 60.0},
    "escrow-expire-unpaid": {"task": "escrow.tasks.transactions_expire_unpaid",
                             "schedule": 300.0},
    "escrow-meetup-sweep": {"task": "escrow.tasks.transactions_meetup_sweep",
                            "schedule": 3600.0},
    "escrow-payout-retry": {"task": "escrow.tasks.payouts_retry", "schedule": 900.0},
    "notifications-redeliver": {"task": "notifications.tasks.notifications_redeliver",
                                "schedule": 60.0},
    "listing-videos-requeue": {"task": "listings.tasks.listing_videos_requeue",
                               "schedule": 300.0},
    "saved-searches-match-missed": {"task": "discovery.tasks.saved_searches_match_missed",
                                    "schedule": 60.0},
}

# --- Auth, JWT ----------------------------------------------------------------------------
AUTH_USER_MODEL = "accounts.User"
# The staff console's password login; the API authenticates with JWTs (OTP login), which
# never goes through these backends. Axes first: it refuses a locked-out login before any
# password is checked.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
# Staff login limit (django-axes, see accounts/staff_login.py): after this many wrong
# passwords for one username from one client IP, the login answers 429 for the lockout time,
# right password or not. Unlock: the user's admin action, or `manage.py axes_reset_ip`.
AXES_FAILURE_LIMIT = env.int("BIDDT_ADMIN_LOGIN_FAILURES", default=5)
AXES_COOLOFF_TIME = timedelta(minutes=env.int("BIDDT_ADMIN_LOCKOUT_MINUTES", default=30))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_USERNAME_CALLABLE = "accounts.staff_login.axes_username"
AXES_CLIENT_IP_CALLABLE = "accounts.staff_login.axes_client_ip"
AXES_LOCKOUT_TEMPLATE = "admin/login_locked_out.html"
AXES_HTTP_RESPONSE_CODE = 429
AXES_RESET_ON_SUCCESS = True  # a successful login starts the count again
AXES_ENABLE_ACCESS_FAILURE_LOG = False  # failures are in the audit log
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]
SIMPLE_JWT = {
    "ACCESS_TOKEN_LIFETIME": timedelta(minutes=env.int("BIDDT_ACCESS_TOKEN_MINUTES", default=15)),
    "REFRESH_TOKEN_LIFETIME": timedelta(days=env.int("BIDDT_REFRESH_TOKEN_DAYS", default=7)),
    "ROTATE_REFRESH_TOKENS": True,
    "BLACKLIST_AFTER_ROTATION": True,
    "UPDATE_LAST_LOGIN": False,
    "ALGORITHM": "HS256",
    # Production needs its own key (biddt.checks): development signs with SECRET_KEY.
    "SIGNING_KEY": env.str("JWT_SIGNING_KEY", default="" if PRODUCTION else SECRET_KEY),
    "AUTH_HEADER_TYPES": ("Bearer",),
    "USER_ID_FIELD": "id",
    "USER_ID_CLAIM": "user_id",
}

# --- REST framework -----------------------------------------------------------------------
# The contract's rates (API.md) in test and production. Development (`make run`) defaults to
# rates a person clicking through /v1/docs/ never reaches (five logins or two listings a
# minute would answer 429 there); a BIDDT_THROTTLE_* variable still wins in every environment.
_THROTTLE_DEFAULTS = {
    "auth_phone": ("BIDDT_THROTTLE_AUTH", "5/min"),
    "auth_ip": ("BIDDT_THROTTLE_AUTH_IP", "20/min"),
    "user": ("BIDDT_THROTTLE_USER", "100/min"),
    "anon": ("BIDDT_THROTTLE_ANON", "300/min"),
    "bid": ("BIDDT_THROTTLE_BID", "10/min"),
    "listing_create": ("BIDDT_THROTTLE_LISTING_CREATE", "5/hour"),
}
_DEVELOPMENT_THROTTLE = "10000/min"
THROTTLE_RATES = {
    scope: env.str(variable,
                   default=_DEVELOPMENT_THROTTLE if BIDDT_ENVIRONMENT == "development" else rate)
    for scope, (variable, rate) in _THROTTLE_DEFAULTS.items()
}
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["accounts.authentication.JWTAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["accounts.permissions.IsAuthenticatedActive"],
    "DEFAULT_THROTTLE_CLASSES": [
        "biddt.throttles.UserThrottle",
        "biddt.throttles.AnonThrottle",
    ],
    "DEFAULT_THROTTLE_RATES": THROTTLE_RATES,
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": [
        "biddt.parsers.JSONParser",  # any undecodable body (too deep, bad UTF-8): 400
        "rest_framework.parsers.MultiPartParser",
        "rest_framework.parsers.FormParser",
    ],
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_PAGINATION_CLASS": "biddt.pagination.CreatedCursorPagination",
    "PAGE_SIZE": 20,
    "DEFAULT_SCHEMA_CLASS": "biddt.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "drf_standardized_errors.handler.exception_handler",
    # Trusted reverse proxies in front of daphne (1 behind nginx). 0 ignores X-Forwarded-For,
    # which a client could otherwise forge to dodge the per-IP login throttle.
    "NUM_PROXIES": env.int("BIDDT_NUM_PROXIES", default=0),
    "TEST_REQUEST_DEFAULT_FORMAT": "json",
}
DRF_STANDARDIZED_ERRORS = {
    "ENABLE_IN_DEBUG_FOR_UNHANDLED_EXCEPTIONS": True,
    "EXCEPTION_HANDLER_CLASS": "biddt.errors.ExceptionHandler",  # oversized bodies: 413
    "EXCEPTION_FORMATTER_CLASS": "biddt.errors.ErrorFormatter",  # machine fields of an error
}

SPECTACULAR_SETTINGS = {
    "TITLE": "Biddt API",
    "DESCRIPTION": (
        "Local auction marketplace: listings, live bidding, escrow with QR handoff.\n\n"
        "Conventions: JSON, snake_case, money in integer cents (CAD), UUID ids, ISO 8601 "
        "times. Errors: `{type, errors: [{code, detail, attr}]}`. Lists use cursor "
        "pagination `{next, previous, results}` (DRF convention). Authenticate with "
        "`Authorization: Bearer <access JWT>` from `POST /v1/auth/phone/verify`."
    ),
    "VERSION": "1.0.0",
    # Relative: the document describes the server that serves it (paths start with /v1/).
    "SERVERS": [{"url": "/", "description": "This server"}],
    "SERVE_INCLUDE_SCHEMA": False,
    # The docs page's assets come from this server (drf-spectacular-sidecar, pinned), not a
    # CDN: /v1/docs/ works with no internet and can't change under us.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "SCHEMA_PATH_PREFIX": r"/v1",
    "COMPONENT_SPLIT_REQUEST": True,
    "ENUM_NAME_OVERRIDES": {
        "BidStatusEnum": "bidding.api.serializers.BID_STATUS_CHOICES",
        "ValidationErrorEnum": "drf_standardized_errors.openapi_serializers.ValidationErrorEnum.choices",
        "ClientErrorEnum": "drf_standardized_errors.openapi_serializers.ClientErrorEnum.choices",
        "ServerErrorEnum": "drf_standardized_errors.openapi_serializers.ServerErrorEnum.choices",
        "ErrorCode401Enum": "drf_standardized_errors.openapi_serializers.ErrorCode401Enum.choices",
        "ErrorCode403Enum": "drf_standardized_errors.openapi_serializers.ErrorCode403Enum.choices",
        "ErrorCode404Enum": "drf_standardized_errors.openapi_serializers.ErrorCode404Enum.choices",
        "ErrorCode405Enum": "drf_standardized_errors.openapi_serializers.ErrorCode405Enum.choices",
        "ErrorCode406Enum": "drf_standardized_errors.openapi_serializers.ErrorCode406Enum.choices",
        "ErrorCode415Enum": "drf_standardized_errors.openapi_serializers.ErrorCode415Enum.choices",
        "ErrorCode429Enum": "drf_standardized_errors.openapi_serializers.ErrorCode429Enum.choices",
        "ErrorCode500Enum": "drf_standardized_errors.openapi_serializers.ErrorCode500Enum.choices",
    },
    "POSTPROCESSING_HOOKS": ["drf_standardized_errors.openapi_hooks.postprocess_schema_enums"],
}

# --- Product rules ------------------------------------------------------------------------
BIDDT_TEST_PHONE_NUMBERS = env.str("BIDDT_TEST_PHONE_NUMBERS", default="")
BIDDT_OTP_TTL_SECONDS = env.int("BIDDT_OTP_TTL_SECONDS", default=600)
BIDDT_OTP_MAX_ATTEMPTS = env.int("BIDDT_OTP_MAX_ATTEMPTS", default=5)
BIDDT_OTP_PER_PHONE_PER_HOUR = env.int("BIDDT_OTP_PER_PHONE_PER_HOUR", default=10)
BIDDT_MIN_AUCTION_SECONDS = env.int("BIDDT_MIN_AUCTION_SECONDS", default=3600)
BIDDT_MAX_AUCTION_DAYS = env.int("BIDDT_MAX_AUCTION_DAYS", default=30)
BIDDT_SOFT_CLOSE_SECONDS = env.int("BIDDT_SOFT_CLOSE_SECONDS", default=120)
BIDDT_MIN_PRICE_CENTS = env.int("BIDDT_MIN_PRICE_CENTS", default=500)
# Prices above this are refused as absurd (400 invalid_price); $1,000,000.00 by default.
BIDDT_MAX_PRICE_CENTS = env.int("BIDDT_MAX_PRICE_CENTS", default=100_000_000)
# Connections the closing sweep closes auctions on in parallel (each close waits on the DB).
BIDDT_CLOSE_THREADS = env.int("BIDDT_CLOSE_THREADS", default=4)
# Notifications no delivery task handled within this many seconds are queued again (their
# task was lost with a killed process); older than BIDDT_NOTIFY_REDELIVER_HOURS, given up.
BIDDT_NOTIFY_REDELIVER_AFTER_SECONDS = env.int("BIDDT_NOTIFY_REDELIVER_AFTER_SECONDS",
                                               default=300)
BIDDT_NOTIFY_REDELIVER_HOURS = env.int("BIDDT_NOTIFY_REDELIVER_HOURS", default=24)
BIDDT_PAYMENTS_BACKEND = env.str("BIDDT_PAYMENTS_BACKEND",
                                 default="stripe" if PRODUCTION else "simulated")
BIDDT_QR_TTL_SECONDS = env.int("BIDDT_QR_TTL_SECONDS", default=600)
# Wrong handoff codes allowed per transaction and window before verify answers 429 and the
# current code dies (brute force of the QR code from the seller's account).
BIDDT_QR_MAX_WRONG_CODES = env.int("BIDDT_QR_MAX_WRONG_CODES", default=10)
BIDDT_QR_GUESS_WINDOW_SECONDS = env.int("BIDDT_QR_GUESS_WINDOW_SECONDS", default=600)
# Offline handoff tokens (biddt.handoff_tokens): the Ed25519 key signing new tokens
# ("kid:base64url private key"), the public keys of retired ones ("kid:base64url public key,
# ..."; they still verify), the clock skew allowed for a phone's `scanned_at` in the future,
# and how old a scan may be when the seller sends it.
BIDDT_HANDOFF_SIGNING_KEY = env.str("BIDDT_HANDOFF_SIGNING_KEY",
                                    default="" if PRODUCTION else dev_handoff_key())
BIDDT_HANDOFF_PREVIOUS_KEYS = env.str("BIDDT_HANDOFF_PREVIOUS_KEYS", default="")
BIDDT_HANDOFF_CLOCK_SKEW_SECONDS = env.int("BIDDT_HANDOFF_CLOCK_SKEW_SECONDS", default=5)
BIDDT_HANDOFF_SCAN_MAX_AGE_HOURS = env.int("BIDDT_HANDOFF_SCAN_MAX_AGE_HOURS", default=72)
BIDDT_PAYMENT_WINDOW_HOURS = env.int("BIDDT_PAYMENT_WINDOW_HOURS", default=48)
# How long a second-chance offer to a runner-up stays open (escrow.services.second_chance).
BIDDT_SECOND_CHANCE_HOURS = env.int("BIDDT_SECOND_CHANCE_HOURS", default=48)
BIDDT_MEETUP_WINDOW_DAYS = env.int("BIDDT_MEETUP_WINDOW_DAYS", default=14)
BIDDT_FEE_PERCENT = env.float("BIDDT_FEE_PERCENT", default=6.0)
BIDDT_ESCROW_FEE_CENTS = env.int("BIDDT_ESCROW_FEE_CENTS", default=199)
BIDDT_CURRENCY = "CAD"
# Escrow: meetup reminders (days after payment, comma separated) before the automatic refund
# at BIDDT_MEETUP_WINDOW_DAYS; where Stripe sends a seller back after Express onboarding.
BIDDT_MEETUP_REMINDER_DAYS = env.list("BIDDT_MEETUP_REMINDER_DAYS", cast=int, default=[7, 13])
SPECTACULAR_SETTINGS["ENUM_NAME_OVERRIDES"]["TransactionStatusEnum"] = (
    "escrow.models.TransactionStatus.choices")
SPECTACULAR_SETTINGS["ENUM_NAME_OVERRIDES"]["SecondChanceStatusEnum"] = (
    "escrow.api.second_chance.SECOND_CHANCE_STATUS_CHOICES")
BIDDT_WALLET_RETURN_URL = env.str("BIDDT_WALLET_RETURN_URL",
                                  default="https://biddt.app/wallet/onboarding-complete")
BIDDT_CHAT_MESSAGES_PER_MINUTE = env.int("BIDDT_CHAT_MESSAGES_PER_MINUTE", default=30)

# --- Integrations -------------------------------------------------------------------------
BIDDT_SMS_BACKEND = env.str(
    "BIDDT_SMS_BACKEND",
    default="accounts.sms.TwilioBackend" if PRODUCTION else "accounts.sms.ConsoleBackend",
)
TWILIO_ACCOUNT_SID = env.str("TWILIO_ACCOUNT_SID", default="")
TWILIO_AUTH_TOKEN = env.str("TWILIO_AUTH_TOKEN", default="")
TWILIO_FROM_NUMBER = env.str("TWILIO_FROM_NUMBER", default="")
TWILIO_MESSAGING_SERVICE_SID = env.str("TWILIO_MESSAGING_SERVICE_SID", default="")

STRIPE_SECRET_KEY = env.str("STRIPE_SECRET_KEY", default="")
STRIPE_PUBLISHABLE_KEY = env.str("STRIPE_PUBLISHABLE_KEY", default="")
STRIPE_WEBHOOK_SECRET = env.str("STRIPE_WEBHOOK_SECRET", default="")
STRIPE_API_BASE = env.str("STRIPE_API_BASE", default="")  # e.g. a localstripe server in tests
# Seconds a Stripe API call may take before it is retried (twice, same idempotency key).
STRIPE_TIMEOUT_SECONDS = env.float("STRIPE_TIMEOUT_SECONDS", default=20.0)
# dj-stripe: the webhook Event store and the mirror of the Stripe objects we create
# (escrow/stripe_mirror.py); it reads STRIPE_SECRET_KEY and STRIPE_LIVE_MODE.
STRIPE_LIVE_MODE = env.bool("STRIPE_LIVE_MODE", default=PRODUCTION)
DJSTRIPE_FOREIGN_KEY_TO_FIELD = "id"
DJSTRIPE_WEBHOOK_VALIDATION = "verify_signature"

FIREBASE_CREDENTIALS_FILE = env.str("FIREBASE_CREDENTIALS_FILE", default="")
BIDDT_PUSH_BACKEND = env.str(
    "BIDDT_PUSH_BACKEND",
    default="notifications.push.FCMBackend" if PRODUCTION else "notifications.push.ConsoleBackend",
)

SENDGRID_API_KEY = env.str("SENDGRID_API_KEY", default="")
EMAIL_BACKEND = env.str(
    "EMAIL_BACKEND",
    default="anymail.backends.sendgrid.EmailBackend"
    if SENDGRID_API_KEY
    else "django.core.mail.backends.console.EmailBackend",
)
ANYMAIL = {"SENDGRID_API_KEY": SENDGRID_API_KEY}
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="Biddt <no-reply@biddt.local>")

# Bearer token Prometheus sends to /metrics in production; unset there, /metrics is off (404).
BIDDT_METRICS_TOKEN = env.str("BIDDT_METRICS_TOKEN", default="")

SENTRY_DSN = env.str("SENTRY_DSN", default="")
if SENTRY_DSN:  # pragma: no cover - needs a Sentry project
    import sentry_sdk
    from sentry_sdk.integrations.celery import CeleryIntegration
    from sentry_sdk.integrations.django import DjangoIntegration

    sentry_sdk.init(
        dsn=SENTRY_DSN,
        environment=BIDDT_ENVIRONMENT,
        integrations=[DjangoIntegration(), CeleryIntegration()],
        traces_sample_rate=env.float("SENTRY_TRACES_SAMPLE_RATE", default=0.0),
        send_default_pii=False,
    )

# --- Files ----------------------------------------------------------------------------------
STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
MEDIA_URL = "/media/"
MEDIA_ROOT = env.path("MEDIA_ROOT", default=BASE_DIR / "media")
AWS_STORAGE_BUCKET_NAME = env.str("AWS_STORAGE_BUCKET_NAME", default="")
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"
        if PRODUCTION
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}
if AWS_STORAGE_BUCKET_NAME:
    STORAGES["default"] = {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {
            "bucket_name": AWS_STORAGE_BUCKET_NAME,
            "endpoint_url": env.str("AWS_S3_ENDPOINT_URL", default="") or None,
            "region_name": env.str("AWS_S3_REGION_NAME", default="") or None,
            "access_key": env.str("AWS_ACCESS_KEY_ID", default="") or None,
            "secret_key": env.str("AWS_SECRET_ACCESS_KEY", default="") or None,
            "querystring_auth": True,
            "querystring_expire": env.int("AWS_QUERYSTRING_EXPIRE", default=3600),
            "file_overwrite": False,
            "default_acl": None,
        },
    }
FILE_UPLOAD_MAX_MEMORY_SIZE = 2_621_440
DATA_UPLOAD_MAX_MEMORY_SIZE = 12 * 1024 * 1024
BIDDT_MAX_AVATAR_BYTES = env.int("BIDDT_MAX_AVATAR_BYTES", default=5 * 1024 * 1024)
# Image work (listing images, avatars, chat images; biddt.images): more pixels than this,
# read from the header, is refused before decoding (a 24 Mpx RGBA PNG decodes to 96 MB);
# at most this many decodes at once per process, a caller waiting longer gets a 503.
BIDDT_IMAGE_MAX_PIXELS = env.int("BIDDT_IMAGE_MAX_PIXELS", default=24_000_000)
BIDDT_IMAGE_DECODE_CONCURRENCY = env.int("BIDDT_IMAGE_DECODE_CONCURRENCY", default=2)
BIDDT_IMAGE_DECODE_WAIT_SECONDS = env.float("BIDDT_IMAGE_DECODE_WAIT_SECONDS", default=30.0)
# Listing videos (biddt/videos.py): FFmpeg reads them in a child process with these limits.
BIDDT_VIDEO_MAX_BYTES = env.int("BIDDT_VIDEO_MAX_BYTES", default=100 * 1024 * 1024)
BIDDT_VIDEO_MAX_SECONDS = env.float("BIDDT_VIDEO_MAX_SECONDS", default=60.0)
BIDDT_VIDEO_MAX_PIXELS = env.int("BIDDT_VIDEO_MAX_PIXELS", default=4096 * 2304)
BIDDT_VIDEO_MEMORY_BYTES = env.int("BIDDT_VIDEO_MEMORY_BYTES", default=1024 * 1024 * 1024)
BIDDT_VIDEO_PROBE_TIMEOUT_SECONDS = env.float("BIDDT_VIDEO_PROBE_TIMEOUT_SECONDS", default=10.0)
BIDDT_VIDEO_PROCESS_TIMEOUT_SECONDS = env.float("BIDDT_VIDEO_PROCESS_TIMEOUT_SECONDS",
                                                default=60.0)
BIDDT_VIDEO_CONCURRENCY = env.int("BIDDT_VIDEO_CONCURRENCY", default=2)
BIDDT_VIDEO_WAIT_SECONDS = env.float("BIDDT_VIDEO_WAIT_SECONDS", default=15.0)

# --- I18N -----------------------------------------------------------------------------------
# English and French (issue 20): error `detail`s follow a request's Accept-Language
# (biddt.i18n.ApiLanguageMiddleware); pushes, e-mails, notifications and system chat lines
# the recipient's `language`. `.po` files in locale/, compiled by `make run`/`make test` and
# the image build (docs/decisions/0004-i18n-babel.md).
LANGUAGE_CODE = "en"
LANGUAGES = [("en", "English"), ("fr", "Français")]
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True
PHONENUMBER_DEFAULT_FORMAT = "E164"

# --- Security --------------------------------------------------------------------------------
if PRODUCTION:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=True)
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=3600)
    SECURE_CONTENT_TYPE_NOSNIFF = True

# --- Logging ---------------------------------------------------------------------------------
# structlog (django-structlog binds a request id to every line of a request). JSON lines in
# production, readable lines in development. Phone numbers are hashed before any handler
# sees them: a structlog processor for structured events, a logging filter for the rest.
import structlog  # noqa: E402

from biddt.logging import redact_event  # noqa: E402

LOG_LEVEL = env.str("LOG_LEVEL", default="INFO")
LOG_FORMAT = env.str("LOG_FORMAT", default="json" if PRODUCTION else "console")
DJANGO_STRUCTLOG_CELERY_ENABLED = False
# `ip` is bound by biddt.logging.bind_client_ip (the address the throttles see), cheaper than
# django-structlog's own lookup.
DJANGO_STRUCTLOG_IP_LOGGING_ENABLED = False
# One line per request at INFO: `request_finished` (its code, method and path; INFO for 2xx,
# WARNING for 4xx, ERROR for 5xx). `request_started` goes out at DEBUG only: at INFO it
# doubled the lines and the logging CPU of every bid.
DJANGO_STRUCTLOG_STATUS_START_LOG_LEVEL = logging.DEBUG
_shared_processors = [
    structlog.contextvars.merge_contextvars,
    structlog.stdlib.add_log_level,
    structlog.stdlib.add_logger_name,
    structlog.processors.TimeStamper(fmt="iso", utc=True),
    redact_event,
]
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"redact_phones": {"()": "biddt.logging.PhoneNumberRedactingFilter"}},
    "formatters": {
        "json": {
            "()": structlog.stdlib.ProcessorFormatter,
            "processor": structlog.processors.JSONRenderer(),
            "foreign_pre_chain": _shared_processors,
        },
        "console": {
            "()": structlog.stdlib.ProcessorFormatter,
            # Plain tracebacks: the pretty (rich) ones render locals and take seconds each.
            "processor": structlog.dev.ConsoleRenderer(
                colors=False, exception_formatter=structlog.dev.plain_traceback),
            "foreign_pre_chain": _shared_processors,
        },
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": LOG_FORMAT,
            "filters": ["redact_phones"],
        },
    },
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        "django.db.backends": {"level": "WARNING"},
        "granian": {"level": "WARNING"},
        "django_structlog": {"level": env.str("REQUEST_LOG_LEVEL", default="INFO")},
        # Django's own "Conflict: /v1/..." warning repeated django-structlog's line for every
        # 4xx; server errors (with their traceback) still come through here.
        "django.request": {"level": "ERROR"},
        # One line per task run: useful from a worker, noise when the embedded scheduler
        # runs the sweeps every few seconds inside `make run`.
        "celery.app.trace": {"level": "WARNING" if BIDDT_EMBEDDED_JOBS else "INFO"},
    },
}
structlog.configure(
    processors=[
        structlog.stdlib.filter_by_level,
        structlog.processors.format_exc_info,  # before redaction: tracebacks are redacted too
        *_shared_processors,
        structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
    ],
    logger_factory=structlog.stdlib.LoggerFactory(),
    wrapper_class=structlog.stdlib.BoundLogger,
    cache_logger_on_first_use=True,
)
