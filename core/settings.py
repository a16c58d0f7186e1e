"""Settings, all from the environment (every variable is listed in README.md)."""

from __future__ import annotations

import os
from pathlib import Path

import django_stubs_ext
from django.core.exceptions import ImproperlyConfigured

from core.database import conninfo, database_url, django_database
from core.file_limit import default_max_connections

django_stubs_ext.monkeypatch()  # generic classes (ModelAdmin[Post]) subscriptable at run time

BASE_DIR = Path(__file__).resolve().parent.parent


def env_bool(name: str, default: bool = False) -> bool:
    return os.environ.get(name, str(default)).strip().lower() in {"1", "true", "yes", "on"}


def env_list(name: str, default: str) -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


DEBUG = env_bool("DJANGO_DEBUG")
# The default key starts with "django-insecure-", so `manage.py check --deploy` flags it.
SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY") or "django-insecure-dev-key-set-DJANGO_SECRET_KEY"
ALLOWED_HOSTS = env_list("DJANGO_ALLOWED_HOSTS", "localhost,127.0.0.1,[::1]")
# Other origins whose pages may post forms and open websockets here (scheme://host[:port]).
CSRF_TRUSTED_ORIGINS = env_list("DJANGO_CSRF_TRUSTED_ORIGINS", "")

# Served over TLS (docs/operations.md, "Production settings"): secure cookies, HSTS, redirect
# to https. TLS ends at the proxy, which must set X-Forwarded-Proto (it overwrites any the
# client sent); /healthz and /metrics stay reachable over plain http for in-network probes.
HTTPS = env_bool("DJANGO_HTTPS")
if HTTPS:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_SSL_REDIRECT = True
    SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^metrics$"]
    SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = True
    SECURE_HSTS_SECONDS = int(os.environ.get("DJANGO_HSTS_SECONDS", str(365 * 24 * 3600)))
    SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("DJANGO_HSTS_INCLUDE_SUBDOMAINS", True)
    SECURE_HSTS_PRELOAD = env_bool("DJANGO_HSTS_PRELOAD", True)

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "channels",
    "pglayer",
    "core",
    "cdc",
    "consumers",
    "axes",
]

MIDDLEWARE = [
    "core.access.AccessLogMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "axes.middleware.AxesMiddleware",  # last, as django-axes asks
]

# Login throttling by django-axes (docs/operations.md, "Login throttling"): after
# AXES_FAILURE_LIMIT failed logins for one username from one address, that pair is locked out
# for AXES_COOLOFF_HOURS. The address is the trusted proxy's header when configured.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AXES_FAILURE_LIMIT = int(os.environ.get("AXES_FAILURE_LIMIT", "5"))
AXES_COOLOFF_TIME = float(os.environ.get("AXES_COOLOFF_HOURS", "0.25"))  # hours
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_CLIENT_IP_CALLABLE = "core.client_address.request_client_address"

ROOT_URLCONF = "core.urls"
ASGI_APPLICATION = "core.asgi.application"
WSGI_APPLICATION = None

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

DATABASES = {"default": django_database(database_url())}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = False
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "/"
LOGOUT_REDIRECT_URL = "/"

# Change capture and relay (docs/operations.md).
CDC_POLL_INTERVAL = float(os.environ.get("CDC_POLL_INTERVAL", "1.0"))
CDC_BATCH_SIZE = int(os.environ.get("CDC_BATCH_SIZE", "5000"))
CDC_RETENTION_SECONDS = int(os.environ.get("CDC_RETENTION_SECONDS", str(7 * 24 * 3600)))
# The live streams are declared in each app's streams.py (core/streams.py; cdc/declarations.py).

# The delivery edge (docs/protocol.md, "Limits"): what one websocket connection may cost.
LIVE_MAX_FRAME_BYTES = int(os.environ.get("LIVE_MAX_FRAME_BYTES", str(1024 * 1024)))  # sent frames
LIVE_SEND_BUDGET_BYTES = int(os.environ.get("LIVE_SEND_BUDGET_BYTES", str(4 * 1024 * 1024)))  # unacked
LIVE_SEND_WAIT = float(os.environ.get("LIVE_SEND_WAIT", "10"))  # seconds a page waits for acks
LIVE_REPLAY_MAX_BYTES = int(os.environ.get("LIVE_REPLAY_MAX_BYTES", str(64 * 1024 * 1024)))
if LIVE_SEND_BUDGET_BYTES < LIVE_MAX_FRAME_BYTES:
    raise ImproperlyConfigured("LIVE_SEND_BUDGET_BYTES must be at least LIVE_MAX_FRAME_BYTES")

# The channel layer carries relayed changes from cdc_listen to every daphne process.
# `postgres` (default): the project's own layer over the same database (pglayer/).
# `redis`: channels_redis' RedisPubSubChannelLayer as pglayer extends it, for several daphne hosts.
CHANNEL_LAYER = os.environ.get("CHANNEL_LAYER", "postgres")
REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
_LAYERS = {
    "postgres": {"BACKEND": "pglayer.layer.PostgresChannelLayer", "CONFIG": {"conninfo": conninfo}},
    "redis": {"BACKEND": "pglayer.redis_layer.RedisPubSubChannelLayer", "CONFIG": {"hosts": [REDIS_URL]}},
}
if CHANNEL_LAYER not in _LAYERS:
    raise ImproperlyConfigured(f"CHANNEL_LAYER={CHANNEL_LAYER!r}: choose one of {', '.join(_LAYERS)}")
CHANNEL_LAYERS = {"default": _LAYERS[CHANNEL_LAYER]}

# Websocket connection caps and the session re-check (docs/operations.md).
# Per web process; unset: 2000, or fewer when the open-file limit is lower (core/file_limit.py).
WS_MAX_CONNECTIONS = int(os.environ.get("WS_MAX_CONNECTIONS") or default_max_connections())
WS_MAX_CONNECTIONS_PER_ADDRESS = int(os.environ.get("WS_MAX_CONNECTIONS_PER_ADDRESS", "100"))
WS_SESSION_CHECK_SECONDS = float(os.environ.get("WS_SESSION_CHECK_SECONDS", "60"))
# The header a trusted reverse proxy puts the client's address in (e.g. X-Forwarded-For);
# unset: the socket's peer. Set it only behind such a proxy: clients can send any header.
CLIENT_ADDRESS_HEADER = os.environ.get("CLIENT_ADDRESS_HEADER", "")

# Who sees /healthz's details and /metrics (core/ops_access.py): these addresses (networks),
# or a request with `Authorization: Bearer $OPS_TOKEN`. Anyone gets /healthz's status.
OPS_ALLOWED_ADDRESSES = env_list("OPS_ALLOWED_ADDRESSES", "127.0.0.1/32,::1/128")
OPS_TOKEN = os.environ.get("OPS_TOKEN", "")

# Operations (docs/operations.md): health thresholds, the relay's metrics port, logs.
HEALTH_MAX_HEARTBEAT_AGE = float(os.environ.get("HEALTH_MAX_HEARTBEAT_AGE", "10"))  # seconds
HEALTH_MAX_LAG = float(os.environ.get("HEALTH_MAX_LAG", "30"))  # seconds
CDC_METRICS_PORT = int(os.environ.get("CDC_METRICS_PORT") or 0) or None  # None: no metrics server

# Logs: one line per notable event on stderr; LOG_LEVEL picks the threshold, LOG_FORMAT=json
# makes each line one JSON object with the same fields in every process (core/logging.py).
LOG_FORMAT = os.environ.get("LOG_FORMAT", "plain")
_FORMATTERS = {
    "plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"},
    "json": {"()": "core.logging.JsonFormatter"},
}
if LOG_FORMAT not in _FORMATTERS:
    raise ImproperlyConfigured(f"LOG_FORMAT={LOG_FORMAT!r}: choose one of {', '.join(_FORMATTERS)}")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {LOG_FORMAT: _FORMATTERS[LOG_FORMAT]},
    "handlers": {"stderr": {"class": "logging.StreamHandler", "formatter": LOG_FORMAT}},
    "root": {"handlers": ["stderr"], "level": os.environ.get("LOG_LEVEL", "INFO")},
    "loggers": {"daphne": {"level": "WARNING"}},
}
