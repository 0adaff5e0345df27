"""IMS settings, read from the environment.

Out of the box everything runs on one machine with no servers: SQLite, the in-memory
channel layer and a filesystem Celery broker. DATABASE_URL and REDIS_URL switch to
PostgreSQL and Redis; the code is the same. Every IMS_* setting is listed in README.md.
"""

from __future__ import annotations

import os
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from imsproject.channel_layers import local_channel_layer, redis_channel_layer

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("IMS_VAR_DIR", BASE_DIR / "var"))
# The SQLite file, the filesystem broker and beat's schedule live here.
VAR_DIR.mkdir(parents=True, exist_ok=True)


def env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    try:
        return int(value)
    except ValueError as exc:
        raise ImproperlyConfigured(f"{name} must be an integer, got {value!r}") from exc


def env_float(name: str, default: float) -> float:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    try:
        return float(value)
    except ValueError as exc:
        raise ImproperlyConfigured(f"{name} must be a number, got {value!r}") from exc


def env_list(name: str, default: str) -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


DEBUG = env_bool("DJANGO_DEBUG", False)
SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "")
if not SECRET_KEY:
    if not DEBUG and not env_bool("IMS_ALLOW_INSECURE_SECRET", True):
        raise ImproperlyConfigured("DJANGO_SECRET_KEY must be set in production")
    # Good enough for `make run` and the tests; production sets DJANGO_SECRET_KEY.
    SECRET_KEY = "ims-insecure-development-key-change-me"  # noqa: S105
ALLOWED_HOSTS = env_list("DJANGO_ALLOWED_HOSTS", "127.0.0.1,localhost,[::1]")
CSRF_TRUSTED_ORIGINS = env_list("DJANGO_CSRF_TRUSTED_ORIGINS", "")

# --- HTTPS behind a proxy (deploy/nginx/ims.conf, docs/deploy.md) ----------------------
# Off by default, so `make run` and the tests work over plain http on 127.0.0.1.
IMS_HTTPS = env_bool("IMS_HTTPS", False)
if IMS_HTTPS:
    # The proxy sets X-Forwarded-Proto on every request and the server is reachable only
    # through it (daphne listens on 127.0.0.1 or a private address): then the header tells
    # whether the client came over https. daphne's --proxy-headers reads it too.
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = IMS_HTTPS
# Health checks and Prometheus call each process directly over plain http, not through
# the proxy: never redirected (paths without their leading slash).
SECURE_REDIRECT_EXEMPT = [r"^livez$", r"^readyz$", r"^metrics$"]
SESSION_COOKIE_SECURE = IMS_HTTPS
CSRF_COOKIE_SECURE = IMS_HTTPS
# HSTS is sticky in browsers for its whole lifetime: set by the operator, never by default.
SECURE_HSTS_SECONDS = env_int("DJANGO_SECURE_HSTS_SECONDS", 0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("DJANGO_SECURE_HSTS_INCLUDE_SUBDOMAINS", False)
SECURE_HSTS_PRELOAD = env_bool("DJANGO_SECURE_HSTS_PRELOAD", False)

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    "channels",
    "messaging",
    "notifications",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    # Right after SecurityMiddleware, as WhiteNoise asks: static files skip the rest.
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "imsproject.security.ContentSecurityPolicyMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "imsproject.urls"
ASGI_APPLICATION = "imsproject.asgi.application"
AUTH_USER_MODEL = "messaging.User"
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "chat"
LOGOUT_REDIRECT_URL = "login"
# Django's defaults, stated because the chat UI relies on them: scripts never read the
# session cookie, and cross-site requests never carry it. The CSRF cookie stays readable:
# the UI sends it back as X-CSRFToken on every write.
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_SAMESITE = "Lax"

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

# --- Database -------------------------------------------------------------------------
DATABASE_URL = os.environ.get("DATABASE_URL", f"sqlite:///{VAR_DIR / 'ims.sqlite3'}")
# Persistent connections: Channels closes old ones around every ORM call from async
# code, and opening one per call (plus its PRAGMAs on SQLite) dominated the send path.
DATABASES = {
    "default": dj_database_url.parse(
        DATABASE_URL, conn_max_age=env_int("IMS_DB_CONN_MAX_AGE", 600), conn_health_checks=True
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    DATABASES["default"]["OPTIONS"] = {
        # WAL lets readers run beside the one writer; IMMEDIATE takes the write lock at
        # BEGIN so two writers queue on the busy timeout instead of failing with
        # "database is locked" when a read transaction tries to upgrade.
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        "transaction_mode": "IMMEDIATE",
        "timeout": 20,
    }
    # Live-server tests share the database with a daphne subprocess: never :memory:.
    DATABASES["default"]["TEST"] = {"NAME": str(VAR_DIR / "test_ims.sqlite3")}
elif os.environ.get("IMS_TEST_DATABASE_NAME"):
    # Lets two test runs share one PostgreSQL server without sharing a test database.
    DATABASES["default"]["TEST"] = {"NAME": os.environ["IMS_TEST_DATABASE_NAME"]}
# DATABASE_URL points at PgBouncer (or another pooler) in transaction mode, where one
# client's consecutive transactions may run on different server connections: nothing may
# outlive a transaction, so no server-side cursors (QuerySet.iterator()) and none of
# psycopg's prepared statements (it prepares a query run 5 times on a connection).
IMS_DB_TRANSACTION_POOLER = env_bool("IMS_DB_TRANSACTION_POOLER", False)
if IMS_DB_TRANSACTION_POOLER and DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    DATABASES["default"]["DISABLE_SERVER_SIDE_CURSORS"] = True
    DATABASES["default"].setdefault("OPTIONS", {})["prepare_threshold"] = None

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "static"
# WhiteNoise warns on every start when it is missing; collectstatic fills it for production.
STATIC_ROOT.mkdir(exist_ok=True)
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    # Compressed copies (gzip) at collectstatic. No hashed names: the chat UI's ES modules
    # import each other by relative path, which hashed names would break.
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}
# WhiteNoise also serves straight from the app and project static folders, so a fresh
# checkout with debug off (and the browser tests) works before any collectstatic.
WHITENOISE_USE_FINDERS = True
# Uploaded files: never under STATIC_URL or any public URL; messaging.views.uploads serves
# them to conversation members only.
MEDIA_ROOT = VAR_DIR / "media"
IMS_MAX_UPLOAD_BYTES = env_int("IMS_MAX_UPLOAD_BYTES", 20 * 1024 * 1024)
# Every other request body (imsproject.request_limits): JSON API calls are a few kB.
IMS_MAX_REQUEST_BYTES = env_int("IMS_MAX_REQUEST_BYTES", 1024 * 1024)

# --- Redis, channel layer, Celery ---------------------------------------------------------
REDIS_URL = os.environ.get("REDIS_URL", "")
# redis-py 8.1 caps an async pool at 100 connections; a reconnect storm needs more.
IMS_REDIS_MAX_CONNECTIONS = env_int("IMS_REDIS_MAX_CONNECTIONS", 2000)

CHANNEL_LAYERS = {
    "default": redis_channel_layer(REDIS_URL, max_connections=IMS_REDIS_MAX_CONNECTIONS)
    if REDIS_URL
    else local_channel_layer()
}

CELERY_BROKER_URL = os.environ.get("CELERY_BROKER_URL", "") or REDIS_URL or "filesystem://"
if CELERY_BROKER_URL == "filesystem://":
    _broker_dir = VAR_DIR / "celery-broker"
    # kombu's filesystem transport fails on a missing folder, also for `.delay()` from a shell.
    for _folder in (_broker_dir, VAR_DIR / "celery-control"):
        _folder.mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_broker_dir),
        "data_folder_out": str(_broker_dir),
        "control_folder": str(VAR_DIR / "celery-control"),
        "store_processed": False,
    }
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_IGNORE_RESULT = True
CELERY_BEAT_SCHEDULE_FILENAME = str(VAR_DIR / "celerybeat-schedule")
CELERY_BEAT_SCHEDULE = {
    "purge-expired-stream-items": {"task": "messaging.tasks.purge_expired", "schedule": 3600.0},
    "reap-stale-connections": {"task": "messaging.tasks.reap_stale_connections", "schedule": 60.0},
    "forget-old-signin-failures": {"task": "messaging.tasks.forget_old_signin_failures", "schedule": 3600.0},
    # Pending items past their grace, P0 escalation, deferred pushes, lost tasks.
    "dispatch-push": {
        "task": "notifications.tasks.dispatch_push",
        "schedule": env_float("IMS_DISPATCH_INTERVAL_SECONDS", 5),
    },
}

# --- REST framework ---------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "EXCEPTION_HANDLER": "messaging.errors.rest_exception_handler",
    # JSON in and out, as the OpenAPI document says; only uploads take multipart (their view
    # says so). Form bodies and the browsable API's HTML were answers no schema listed.
    "DEFAULT_PARSER_CLASSES": ["imsproject.rest_json.SafeJSONParser"],
    "DEFAULT_RENDERER_CLASSES": ["imsproject.rest_json.SafeJSONRenderer"],
    "TEST_REQUEST_DEFAULT_FORMAT": "json",
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
}
# The OpenAPI 3 document at /api/schema/ (and `manage.py spectacular`).
SPECTACULAR_SETTINGS = {
    "TITLE": "IMS API",
    "DESCRIPTION": "Instant messaging: the REST side of PROTOCOL.md.",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    # A PATCH body here is what its serializer requires, not "every field optional".
    "COMPONENT_SPLIT_PATCH": False,
    # Enums stay inline where they are used: drf-spectacular's default hook would lift the
    # one-value enums of oneOf branches ("msg_type": ["text"]) into components of their own.
    "POSTPROCESSING_HOOKS": [
        "imsproject.openapi.add_links",
        "imsproject.openapi.require_request_bodies",
        "imsproject.openapi.document_body_limits",
    ],
}

# --- IMS protocol (PROTOCOL.md) ---------------------------------------------------------
IMS_HEARTBEAT_SECONDS = env_float("IMS_HEARTBEAT_SECONDS", 30)
IMS_OFFLINE_TTL_DAYS = env_int("IMS_OFFLINE_TTL_DAYS", 7)
IMS_STREAM_RETENTION_DAYS = env_int("IMS_STREAM_RETENTION_DAYS", 30)
IMS_PUSH_GRACE_SECONDS = env_int("IMS_PUSH_GRACE_SECONDS", 10)
IMS_MAX_FRAME_BYTES = env_int("IMS_MAX_FRAME_BYTES", 64 * 1024)
IMS_SEND_RATE_PER_SECOND = env_float("IMS_SEND_RATE_PER_SECOND", 20)
IMS_SEND_BURST = env_int("IMS_SEND_BURST", 40)
IMS_REST_SENDS_PER_MINUTE = env_int("IMS_REST_SENDS_PER_MINUTE", 1200)
IMS_REPLAY_BATCH_SIZE = env_int("IMS_REPLAY_BATCH_SIZE", 100)
IMS_TICKET_TTL_SECONDS = env_int("IMS_TICKET_TTL_SECONDS", 30)
IMS_MAX_TEXT_LENGTH = env_int("IMS_MAX_TEXT_LENGTH", 10_000)
IMS_MAX_GROUP_MEMBERS = env_int("IMS_MAX_GROUP_MEMBERS", 10_000)
IMS_PRESENCE_MAX_GROUP_SIZE = env_int("IMS_PRESENCE_MAX_GROUP_SIZE", 100)
IMS_STREAM_POLL_SECONDS = env_float("IMS_STREAM_POLL_SECONDS", 1)
# SIGTERM closes every WebSocket with 1001 once the sends and acks taken are stored, then
# exits (imsproject.shutdown); this is the longest it waits for them and for the
# clients' close replies. A process manager's stop timeout must be longer.
IMS_SHUTDOWN_GRACE_SECONDS = env_float("IMS_SHUTDOWN_GRACE_SECONDS", 5)
# Concurrent flushes of the send and ack batches (messaging.batching): on PostgreSQL one
# batch is built while another commits; SQLite has one writer at a time, so one.
IMS_DB_FLUSHES = env_int(
    "IMS_DB_FLUSHES", 1 if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3" else 2
)
# A connection whose unsent output passes this is closed with 4429 (a client that does
# not read must not cost the server unbounded memory). Counted in the server, after the
# kernel's socket buffer (net.ipv4.tcp_wmem) has taken what it can.
IMS_MAX_OUTPUT_BYTES = env_int("IMS_MAX_OUTPUT_BYTES", 1024 * 1024)
# P3 items of one category reach live connections merged: one `batch` frame for those
# that arrive within this window after the first, at most this many.
IMS_MERGE_WINDOW_SECONDS = env_float("IMS_MERGE_WINDOW_SECONDS", 5)
IMS_MERGE_MAX_ITEMS = env_int("IMS_MERGE_MAX_ITEMS", 10)
# Third-party push dispatch (notifications.services.dispatch).
# A P0 item not acked this long after its push is pushed again to every device, then
# after as long again by SMS.
IMS_P0_ESCALATE_SECONDS = env_int("IMS_P0_ESCALATE_SECONDS", 60)
# Temporary provider failures are retried this many times, with exponential backoff and jitter.
IMS_PUSH_MAX_RETRIES = env_int("IMS_PUSH_MAX_RETRIES", 5)
# Pending items a dispatcher run claims at most (one transaction); the next run takes the rest.
IMS_DISPATCH_BATCH_SIZE = env_int("IMS_DISPATCH_BATCH_SIZE", 500)
IMS_DISPATCH_INTERVAL_SECONDS = env_float("IMS_DISPATCH_INTERVAL_SECONDS", 5)
# A push still queued or sending after this long lost its task (a killed worker, a broker
# that dropped the message): the dispatcher enqueues it again. Longer than a push request
# may take (IMS_PUSH_TIMEOUT_SECONDS).
IMS_PUSH_LEASE_SECONDS = env_int("IMS_PUSH_LEASE_SECONDS", 60)

# --- Sign-in (messaging.services.signin) -------------------------------------------------
# Password checks that failed, per account (the username as typed) and per client address,
# over windows of IMS_SIGNIN_LOCKOUT_SECONDS. Once SLOW_AFTER have failed, the next check
# waits IMS_SIGNIN_DELAY_SECONDS after the last failure, the one after twice that, and so
# on; at LOCK_AFTER failures the account or address is refused for IMS_SIGNIN_LOCKOUT_SECONDS.
# An address counts higher: an office signs in through one NAT address.
IMS_SIGNIN_ACCOUNT_SLOW_AFTER = env_int("IMS_SIGNIN_ACCOUNT_SLOW_AFTER", 5)
IMS_SIGNIN_ACCOUNT_LOCK_AFTER = env_int("IMS_SIGNIN_ACCOUNT_LOCK_AFTER", 10)
IMS_SIGNIN_ADDRESS_SLOW_AFTER = env_int("IMS_SIGNIN_ADDRESS_SLOW_AFTER", 25)
IMS_SIGNIN_ADDRESS_LOCK_AFTER = env_int("IMS_SIGNIN_ADDRESS_LOCK_AFTER", 50)
IMS_SIGNIN_DELAY_SECONDS = env_float("IMS_SIGNIN_DELAY_SECONDS", 2)
IMS_SIGNIN_LOCKOUT_SECONDS = env_int("IMS_SIGNIN_LOCKOUT_SECONDS", 900)
# Active push devices one user may register; each costs a push (and maybe an SMS) per item.
IMS_MAX_DEVICES_PER_USER = env_int("IMS_MAX_DEVICES_PER_USER", 20)

# --- Third-party push providers ---------------------------------------------------------
# notifications.providers builds each provider from these on first use. Secrets come from
# the environment or from files it names, never from the repository; a provider whose
# settings are missing is off, and says what is missing (docs/push-providers.md).
IMS_PUSH_TIMEOUT_SECONDS = env_float("IMS_PUSH_TIMEOUT_SECONDS", 10)
# A PEM bundle of CAs to trust for provider endpoints instead of the default ones (a
# TLS-inspecting proxy). Empty: the system's / certifi's.
IMS_PUSH_CA_FILE = os.environ.get("IMS_PUSH_CA_FILE", "")
# Web Push (VAPID). Empty private key: <IMS_VAR_DIR>/vapid_private.pem when it exists
# (`make run` creates it once).
IMS_VAPID_PRIVATE_KEY = os.environ.get("IMS_VAPID_PRIVATE_KEY", "")
IMS_VAPID_PUBLIC_KEY = os.environ.get("IMS_VAPID_PUBLIC_KEY", "")
IMS_VAPID_SUBJECT = os.environ.get("IMS_VAPID_SUBJECT", "") or "mailto:admin@localhost"
# Web Push endpoints are URLs users hand us (notifications.providers.endpoints): only hosts
# ending in one of these, the push services of Chrome and other Chromium browsers (FCM),
# Firefox (Mozilla autopush), Edge (WNS) and Safari (Apple). `*`: any public host (an empty
# variable counts as unset here too, so a blank line in an env file opens nothing).
IMS_WEBPUSH_ALLOWED_HOSTS = env_list("IMS_WEBPUSH_ALLOWED_HOSTS", "") or [
    "fcm.googleapis.com",
    "push.services.mozilla.com",
    "notify.windows.com",
    "push.apple.com",
]
# On: endpoints may be plain http and resolve to private, loopback or link-local addresses
# (local development, tests, a push relay inside the company). `check --deploy` warns.
IMS_WEBPUSH_ALLOW_PRIVATE_ENDPOINTS = env_bool("IMS_WEBPUSH_ALLOW_PRIVATE_ENDPOINTS", False)
# Firebase Cloud Messaging, HTTP v1 API.
IMS_FCM_SERVICE_ACCOUNT_FILE = os.environ.get("IMS_FCM_SERVICE_ACCOUNT_FILE", "")
IMS_FCM_BASE_URL = os.environ.get("IMS_FCM_BASE_URL", "") or "https://fcm.googleapis.com"
# Apple Push Notification service, token (.p8) authentication.
IMS_APNS_KEY_FILE = os.environ.get("IMS_APNS_KEY_FILE", "")
IMS_APNS_KEY_ID = os.environ.get("IMS_APNS_KEY_ID", "")
IMS_APNS_TEAM_ID = os.environ.get("IMS_APNS_TEAM_ID", "")
IMS_APNS_TOPIC = os.environ.get("IMS_APNS_TOPIC", "")
IMS_APNS_BASE_URL = os.environ.get("IMS_APNS_BASE_URL", "") or "https://api.push.apple.com"
# An HTTP SMS gateway (contract in docs/push-providers.md).
IMS_SMS_BASE_URL = os.environ.get("IMS_SMS_BASE_URL", "")
IMS_SMS_API_KEY = os.environ.get("IMS_SMS_API_KEY", "")
IMS_SMS_SENDER = os.environ.get("IMS_SMS_SENDER", "")
# SMS costs money and interrupts: by default only P0 (system alerts, security) uses it.
IMS_SMS_PRIORITIES = env_list("IMS_SMS_PRIORITIES", "P0")
# --- End of third-party push providers --------------------------------------------------

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"redact_secrets": {"()": "imsproject.logging.RedactSecretsFilter"}},
    "handlers": {
        "console": {"class": "logging.StreamHandler", "filters": ["redact_secrets"]},
    },
    "root": {"handlers": ["console"], "level": os.environ.get("IMS_LOG_LEVEL", "INFO")},
    # httpx logs every request URL at INFO: for push providers those carry device tokens.
    "loggers": {"httpx": {"level": "WARNING"}},
}
