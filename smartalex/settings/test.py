"""The test suite runs on the real PostgreSQL and Redis of the machine (trust auth on 127.0.0.1)."""

import os

os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/smartalex")
os.environ.setdefault("REDIS_URL", "redis://127.0.0.1:6379/15")

from .base import *  # noqa: E402,F403

DEBUG = False
SIP_HOST = "127.0.0.1"
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]  # speed only; never in production
EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
CELERY_TASK_ALWAYS_EAGER = False
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
WHITENOISE_AUTOREFRESH = True  # serve from the finders; the suite never runs collectstatic
# The broker gets its own database: tests clear the cache (db 15) between tests, which must not
# take queued tasks with it.
CELERY_BROKER_URL = "redis://127.0.0.1:6379/13"
CELERY_RESULT_BACKEND = "redis://127.0.0.1:6379/13"
# Several test runs on one machine (developers working side by side) each take their own database.
if os.environ.get("TEST_DB_SUFFIX"):
    DATABASES["default"]["TEST"] = {"NAME": f"test_smartalex_{os.environ['TEST_DB_SUFFIX']}"}  # noqa: F405
SIP_METRICS_PORT = 0  # engines started by tests do not bind the metrics port
AGENT_WS_PORT = None  # nor the external-agent WebSocket, unless a test asks for it
