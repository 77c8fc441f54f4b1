"""Settings shared by every environment; everything deployment-specific comes from the environment.

With neither DATABASE_URL nor REDIS_URL set, the system runs on a bare machine: SQLite (WAL) and
a file-system Celery broker under VAR_DIR. With them set, PostgreSQL and Redis.
"""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent.parent
VAR_DIR = Path(os.environ.get("SMARTALEX_VAR_DIR", BASE_DIR / "var"))


def env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    return default if value is None else value.strip().lower() in {"1", "true", "yes", "on"}


def env_int(name: str, default: int) -> int:
    return int(os.environ.get(name, default))


def env_list(name: str, default: str) -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


SECRET_KEY = os.environ.get("SECRET_KEY", "dev-only-insecure-key-change-me-" + "x" * 32)
DEBUG = env_bool("DEBUG", False)
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "127.0.0.1,localhost")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", "")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_htmx",
    "template_partials",
    "axes",
    "smartalex.tenancy",
    "smartalex.agents",
    "trunks",
    "extensions",
    "telephony",
    "support",
    "calls",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "smartalex.tenancy.middleware.TenantMiddleware",
    # Last, so that a lockout is decided after authentication has run.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "smartalex.urls"
WSGI_APPLICATION = "smartalex.wsgi.application"
AUTH_USER_MODEL = "tenancy.User"
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"

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
                "smartalex.tenancy.context_processors.workspace",
            ],
        },
    },
]

# --- Database: PostgreSQL when DATABASE_URL is set, else the embedded SQLite in WAL mode.
DATABASE_URL = os.environ.get("DATABASE_URL", "")
if DATABASE_URL:
    DATABASES = {"default": dj_database_url.parse(DATABASE_URL, conn_max_age=60, conn_health_checks=True)}
else:
    VAR_DIR.mkdir(parents=True, exist_ok=True)
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": VAR_DIR / "smartalex.sqlite3",
            "OPTIONS": {
                # WAL lets the web, worker and engine processes read while one writes;
                # IMMEDIATE avoids "database is locked" on read-then-write transactions.
                "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA busy_timeout=5000;",
                "transaction_mode": "IMMEDIATE",
                "timeout": 20,
            },
        }
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Redis (cache, Celery broker, engine state) or the embedded replacements.
REDIS_URL = os.environ.get("REDIS_URL", "")
if REDIS_URL:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}}
    CELERY_BROKER_URL = REDIS_URL
    CELERY_RESULT_BACKEND = REDIS_URL
else:
    CACHES = {
        "default": {
            # Shared between processes on one machine, which locmem is not.
            "BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
            "LOCATION": str(VAR_DIR / "cache"),
        }
    }
    CELERY_BROKER_URL = "filesystem://"
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(VAR_DIR / "celery" / "queue"),
        "data_folder_out": str(VAR_DIR / "celery" / "queue"),
        "processed_folder": str(VAR_DIR / "celery" / "processed"),
        "control_folder": str(VAR_DIR / "celery" / "control"),
        "store_processed": False,
        # The default 1 s poll alone would break the "Registered within a second" promise.
        "polling_interval": 0.1,
    }
    CELERY_RESULT_BACKEND = f"file://{VAR_DIR / 'celery' / 'results'}"
    # The embedded stores are plain folders; they must exist before any process uses them.
    for folder in ("cache", "celery/queue", "celery/processed", "celery/results", "celery/control"):
        (VAR_DIR / folder).mkdir(parents=True, exist_ok=True)

CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BEAT_SCHEDULE_FILENAME = str(VAR_DIR / "celerybeat-schedule")
CELERY_BEAT_SCHEDULE: dict = {
    "support-traces-prune": {"task": "support.tasks.traces_prune", "schedule": 3600.0},
    "support-alerts-sweep": {"task": "support.tasks.alerts_sweep", "schedule": 60.0},
    "extensions-directory-imports-prune": {
        "task": "extensions.tasks.directory_imports_prune",
        "schedule": 3600.0,
    },
}

# --- Auth
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 8}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]
AXES_FAILURE_LIMIT = env_int("AXES_FAILURE_LIMIT", 5)
AXES_COOLOFF_TIME = timedelta(minutes=env_int("AXES_COOLOFF_MINUTES", 15))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_USERNAME_FORM_FIELD = "username"
AXES_LOCKOUT_TEMPLATE = "registration/locked_out.html"
AXES_HTTP_RESPONSE_CODE = 429
AXES_RESET_ON_SUCCESS = True
AXES_VERBOSE = False

# --- API
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "smartalex.tenancy.authentication.ApiKeyAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_PAGINATION_CLASS": "smartalex.api_pagination.Pages",
    "PAGE_SIZE": 50,
    "EXCEPTION_HANDLER": "smartalex.api_errors.api_exception_handler",
    "DEFAULT_THROTTLE_RATES": {"workspace": os.environ.get("API_RATE_LIMIT", "60/s")},
}
SPECTACULAR_SETTINGS = {
    "TITLE": "SmartAlex Voice API",
    "DESCRIPTION": "Workspace-scoped API: SIP trunks, DIDs, agents, extensions. "
    "Authenticate with `Authorization: Bearer <API key>`.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,
    # Serve Swagger UI from our own static files: the docs page works without a CDN.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
}

# --- i18n / static
LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True
STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}

EMAIL_BACKEND = os.environ.get("EMAIL_BACKEND", "django.core.mail.backends.console.EmailBackend")
DEFAULT_FROM_EMAIL = os.environ.get("DEFAULT_FROM_EMAIL", "SmartAlex Voice <noreply@getsmartalex.com>")

# --- Telephony: what the connection details show and where the engine binds.
SIP_DOMAIN = os.environ.get("SIP_DOMAIN", "sip.voice.getsmartalex.com")
SIP_HOST = os.environ.get("SIP_HOST", "0.0.0.0")
SIP_PORT = env_int("SIP_PORT", 5060)
SIP_TLS_PORT = env_int("SIP_TLS_PORT", 5061)
SIP_TLS_CERT = os.environ.get("SIP_TLS_CERT", "")
SIP_TLS_KEY = os.environ.get("SIP_TLS_KEY", "")
# Engine processes behind the SIP port (`sipserver --workers`); production defaults to one per CPU.
SIP_WORKERS = env_int("SIP_WORKERS", 1)
# The digest challenges the registrar offers, in this order (RFC 8760 lets the server order them;
# most PBXs answer the first). Peers known to break on SHA-256 get MD5 alone whatever this says
# (USER_AGENT_QUIRKS in telephony/registrar.py).
SIP_DIGEST_ALGORITHMS = tuple(a.upper() for a in env_list("SIP_DIGEST_ALGORITHMS", "MD5,SHA-256"))
if (
    not SIP_DIGEST_ALGORITHMS
    or not set(SIP_DIGEST_ALGORITHMS) <= {"MD5", "SHA-256"}
    or len(set(SIP_DIGEST_ALGORITHMS)) != len(SIP_DIGEST_ALGORITHMS)
):
    raise ImproperlyConfigured(
        f"SIP_DIGEST_ALGORITHMS must list MD5 and/or SHA-256, each once: {SIP_DIGEST_ALGORITHMS!r}"
    )
RTP_PORT_MIN = env_int("RTP_PORT_MIN", 10000)
RTP_PORT_MAX = env_int("RTP_PORT_MAX", 60000)
# An engine that has not beaten for this long is reported as down by /healthz.
SIPSERVER_HEARTBEAT_SECONDS = 5

# --- Support and trunk health (support/)
SIP_TRACE_RETENTION_DAYS = env_int("SIP_TRACE_RETENTION_DAYS", 7)
TRUNK_ALERT_DOWN_MINUTES = env_int("TRUNK_ALERT_DOWN_MINUTES", 10)
# /metrics on the web app answers only with `Authorization: Bearer <token>`; empty = disabled (404).
METRICS_TOKEN = os.environ.get("METRICS_TOKEN", "")
# The engine's Prometheus endpoint, always on 127.0.0.1 (scraped by a local agent); 0 = off.
SIP_METRICS_PORT = env_int("SIP_METRICS_PORT", 9102)
# External agent runtimes connect here (docs/external-agents.md).
AGENT_WS_PORT = env_int("AGENT_WS_PORT", 8765)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
    "loggers": {"axes": {"level": "WARNING"}},
}
