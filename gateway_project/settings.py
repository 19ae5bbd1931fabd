"""Settings for the gateway: every knob comes from the environment through django-environ.

Each variable is documented in README.md. Defaults give a working single-process gateway on SQLite.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import NoReturn

import environ

BASE_DIR = Path(__file__).resolve().parent.parent
DATA_DIR = Path(os.environ.get("GATEWAY_DATA_DIR", BASE_DIR / "data"))


def refuse_to_start(problem: str) -> NoReturn:
    """Stop the process over a missing or wrong setting with one line on stderr, not a 40-line traceback:
    the interpreter prints a SystemExit's message and exits with status 1 (manage.py and uvicorn alike)."""
    raise SystemExit(f"Configuration error: {problem}")


env = environ.Env()
if (BASE_DIR / ".env").exists():
    environ.Env.read_env(BASE_DIR / ".env", overwrite=False)

DEBUG = env.bool("DJANGO_DEBUG", default=False)

SECRET_KEY = env.str("DJANGO_SECRET_KEY", default="")
if not SECRET_KEY:
    if not DEBUG:
        refuse_to_start(
            "DJANGO_SECRET_KEY is not set. Put it in the environment or in .env "
            "(scripts/start.sh writes one with fresh random values), or set DJANGO_DEBUG=true for local hacking."
        )
    SECRET_KEY = "insecure-debug-only-key"

ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]", "testserver"])
# Called by load balancers and scrapers by IP address, often over plain HTTP: no Host check (gateway/hosts.py)
# and no HTTPS redirect.
GATEWAY_HOST_CHECK_EXEMPT_PATHS = ("/health", "/ready", "/metrics")
SECURE_REDIRECT_EXEMPT = [rf"^{path.lstrip('/')}$" for path in GATEWAY_HOST_CHECK_EXEMPT_PATHS]
CSRF_TRUSTED_ORIGINS = env.list("DJANGO_CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "gateway.admin_site.GatewayAdminConfig",  # django.contrib.admin with the gateway's index
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "channels",
    "gateway.apps.GatewayConfig",
    "guardrails.apps.GuardrailsConfig",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "gateway_project.static_files.AsgiWhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "gateway_project.urls"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
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

ASGI_APPLICATION = "gateway_project.asgi.application"

DATA_DIR.mkdir(parents=True, exist_ok=True)
DATABASES = {"default": env.db("DATABASE_URL", default=f"sqlite:///{DATA_DIR / 'gateway.sqlite3'}")}
DATABASES["default"]["CONN_MAX_AGE"] = 0
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    DATABASES["default"].setdefault("OPTIONS", {})
    DATABASES["default"]["OPTIONS"].setdefault("timeout", 20)
    DATABASES["default"]["OPTIONS"].setdefault(
        "init_command", "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;"
    )
    DATABASES["default"]["OPTIONS"].setdefault("transaction_mode", "IMMEDIATE")
elif DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    DATABASES["default"].setdefault("OPTIONS", {})
    # psycopg 3's pool; work runs in a few worker threads (gateway/db.py), each returning its connection.
    if env.bool("GATEWAY_PG_POOL", default=True):
        DATABASES["default"]["OPTIONS"].setdefault(
            "pool", {"min_size": 1, "max_size": env.int("GATEWAY_PG_POOL_MAX_SIZE", default=10), "timeout": 10})

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = DATA_DIR / "static"
STATIC_ROOT.mkdir(parents=True, exist_ok=True)
# The admin's CSS and JS are served by WhiteNoise straight from the installed apps: no collectstatic step.
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = DEBUG

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [],
    "DEFAULT_PERMISSION_CLASSES": [],
    "UNAUTHENTICATED_USER": None,
    "DEFAULT_RENDERER_CLASSES": ["gateway.views.renderers.OrjsonRenderer"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
}
# The management API's OpenAPI schema and reference page (gateway/adminapi/), with Swagger UI served locally.
SPECTACULAR_SETTINGS = {
    "TITLE": "AI Gateway management API",
    "DESCRIPTION": "Configuration objects by name, as in `gateway_apply` files.",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,
    "SCHEMA_PATH_PREFIX": "/gateway/admin/v1",
    "PREPROCESSING_HOOKS": ["gateway.adminapi.schema.management_paths_only"],
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
}

LOG_LEVEL = env.str("GATEWAY_LOG_LEVEL", default="INFO")
# `plain` lines, or `json`: one JSON object per line (gateway/observability/logs.py). Both name the request.
GATEWAY_LOG_FORMAT = env.str("GATEWAY_LOG_FORMAT", default="plain")
if GATEWAY_LOG_FORMAT not in ("plain", "json"):
    raise ImproperlyConfigured("GATEWAY_LOG_FORMAT must be 'plain' or 'json'.")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"request_id": {"()": "gateway.observability.logs.RequestIdFilter"}},
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"},
        "json": {"()": "gateway.observability.logs.JsonFormatter"},
    },
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": GATEWAY_LOG_FORMAT,
                             "filters": ["request_id"]}},
    "root": {"handlers": ["console"], "level": "WARNING"},
    "loggers": {
        "gateway": {"level": LOG_LEVEL},
        "providers": {"level": LOG_LEVEL},
        "guardrails": {"level": LOG_LEVEL},
    },
}

# --- Gateway ---------------------------------------------------------------------------
# Key-encryption-key passphrases: the current one, plus older ones accepted during rotation.
GATEWAY_KEK_PASSPHRASE = env.str("GATEWAY_KEK_PASSPHRASE", default="")
GATEWAY_KEK_OLD_PASSPHRASES = env.list("GATEWAY_KEK_OLD_PASSPHRASES", default=[])
GATEWAY_MAX_REQUEST_BYTES = env.int("GATEWAY_MAX_REQUEST_BYTES", default=10 * 1024 * 1024)
GATEWAY_CONFIG_POLL_SECONDS = env.float("GATEWAY_CONFIG_POLL_SECONDS", default=1.0)
GATEWAY_DEFAULT_READ_TIMEOUT = env.float("GATEWAY_DEFAULT_READ_TIMEOUT", default=300.0)
GATEWAY_DEFAULT_CONNECT_TIMEOUT = env.float("GATEWAY_DEFAULT_CONNECT_TIMEOUT", default=10.0)
GATEWAY_HTTP_TRANSPORT = env.str("GATEWAY_HTTP_TRANSPORT", default="aiohttp")
# Outbound policy: which schemes and which address classes an api_base may point at.
GATEWAY_ALLOWED_SCHEMES = env.list("GATEWAY_ALLOWED_SCHEMES", default=["https", "http"])
GATEWAY_ALLOW_PRIVATE_UPSTREAMS = env.bool("GATEWAY_ALLOW_PRIVATE_UPSTREAMS", default=True)
GATEWAY_ALLOW_LINK_LOCAL_UPSTREAMS = env.bool("GATEWAY_ALLOW_LINK_LOCAL_UPSTREAMS", default=False)
GATEWAY_ALLOWED_PROVIDERS = env.list("GATEWAY_ALLOWED_PROVIDERS", default=[])
# Raw proxy and realtime routes (README: "Raw proxy route", "Realtime").
GATEWAY_PROXY_ALLOWED_PATHS = env.json("GATEWAY_PROXY_ALLOWED_PATHS", default={})
if not isinstance(GATEWAY_PROXY_ALLOWED_PATHS, dict) or not all(
        isinstance(v, list) and all(isinstance(p, str) for p in v) for v in GATEWAY_PROXY_ALLOWED_PATHS.values()):
    raise ImproperlyConfigured('GATEWAY_PROXY_ALLOWED_PATHS must be a JSON object of provider -> list of path '
                               'prefixes, e.g. {"openai": ["models", "files"]}.')
GATEWAY_PROXY_MAX_REQUEST_BYTES = env.int("GATEWAY_PROXY_MAX_REQUEST_BYTES", default=100 * 1024 * 1024)
GATEWAY_REALTIME_DRAIN_SECONDS = env.float("GATEWAY_REALTIME_DRAIN_SECONDS", default=30.0)
REDIS_URL = env.str("REDIS_URL", default="")
# Budgets and usage accounting (README: "Budgets", "Usage records").
GATEWAY_BUDGET_BACKEND = env.str("GATEWAY_BUDGET_BACKEND", default="")
if GATEWAY_BUDGET_BACKEND not in ("", "memory", "database", "redis"):
    refuse_to_start("GATEWAY_BUDGET_BACKEND must be 'memory', 'database' or 'redis'.")
if GATEWAY_BUDGET_BACKEND == "redis" and not REDIS_URL:
    refuse_to_start("GATEWAY_BUDGET_BACKEND=redis needs REDIS_URL.")
GATEWAY_BUDGET_DEFAULT_OUTPUT_TOKENS = env.int("GATEWAY_BUDGET_DEFAULT_OUTPUT_TOKENS", default=4096)
GATEWAY_BUDGET_RESERVATION_TTL_SECONDS = env.int("GATEWAY_BUDGET_RESERVATION_TTL_SECONDS", default=900)
# How long a request waits for the budget store before the policy's failure mode applies.
GATEWAY_BUDGET_TIMEOUT_SECONDS = env.float("GATEWAY_BUDGET_TIMEOUT_SECONDS", default=5.0)
# Rate limits (README: "Rate limits"): what happens when Redis cannot be reached.
GATEWAY_RATE_LIMIT_FAILURE = env.str("GATEWAY_RATE_LIMIT_FAILURE", default="open")
if GATEWAY_RATE_LIMIT_FAILURE not in ("open", "closed"):
    raise ImproperlyConfigured("GATEWAY_RATE_LIMIT_FAILURE must be 'open' or 'closed'.")
GATEWAY_USAGE_RETENTION_DAYS = env.int("GATEWAY_USAGE_RETENTION_DAYS", default=0)
# Observability (README: "Observability"): a bearer token for GET /metrics (empty: open).
GATEWAY_METRICS_TOKEN = env.str("GATEWAY_METRICS_TOKEN", default="")
# Request logs of endpoints with `log_payloads`: each body capped at this size, kept this many days (0: forever).
GATEWAY_REQUEST_LOG_MAX_BYTES = env.int("GATEWAY_REQUEST_LOG_MAX_BYTES", default=64 * 1024)
GATEWAY_REQUEST_LOG_RETENTION_DAYS = env.int("GATEWAY_REQUEST_LOG_RETENTION_DAYS", default=30)

# --- Production security (README: "Running in production") -----------------------------------------------
# Off by default so a plain-HTTP local run works; behind TLS, set them and `manage.py check --deploy` is clean.
SECURE_SSL_REDIRECT = env.bool("DJANGO_SECURE_SSL_REDIRECT", default=False)
# Load balancers and scrapers call these by IP address over plain HTTP: never redirect them.
SECURE_REDIRECT_EXEMPT = [r"^(health|ready|metrics)/?$"]
SECURE_HSTS_SECONDS = env.int("DJANGO_SECURE_HSTS_SECONDS", default=0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("DJANGO_SECURE_HSTS_INCLUDE_SUBDOMAINS", default=False)
SECURE_HSTS_PRELOAD = env.bool("DJANGO_SECURE_HSTS_PRELOAD", default=False)
SESSION_COOKIE_SECURE = env.bool("DJANGO_SESSION_COOKIE_SECURE", default=False)
CSRF_COOKIE_SECURE = env.bool("DJANGO_CSRF_COOKIE_SECURE", default=False)
# Only behind a proxy that sets X-Forwarded-Proto itself (and strips the client's): otherwise clients could
# claim HTTPS.
if env.bool("DJANGO_SECURE_PROXY_SSL_HEADER", default=False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
