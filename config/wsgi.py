"""WSGI entry point for the case tracker."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

application = get_wsgi_application()

# Loaded in each web worker (gunicorn loads the application after forking): ready the process and
# keep its start-up objects out of the collector's walks (core.warmup says why).
from core.warmup import warm_and_freeze  # noqa: E402

warm_and_freeze()
