"""Settings for sipserver/worker child processes of the fault tests.

The test settings send Celery traffic to the shared broker (Redis db 13); a fault test's children
must touch only the private Redis and PostgreSQL the test started, so the broker follows REDIS_URL.
"""

from smartalex.settings.test import *  # noqa: F403
from smartalex.settings.test import REDIS_URL

CELERY_BROKER_URL = REDIS_URL
CELERY_RESULT_BACKEND = REDIS_URL
