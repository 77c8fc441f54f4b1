"""The Celery app shared by the worker, beat and anything that sends tasks."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "smartalex.settings.dev")

app = Celery("smartalex")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
