"""gunicorn's settings for the web processes, read from the working directory by `gunicorn config.wsgi`.

Anything here can be changed on the command line or in GUNICORN_CMD_ARGS; the number of worker
processes is gunicorn's own WEB_CONCURRENCY (default 1). gunicorn's own lines (start, workers booted
or killed) are logged as the product logs (LOG_FORMAT, LOG_LEVEL). Its access log stays off: the
product logs each request itself, with its request id and without the query string (core.logs).
"""

import os
import sys

# gunicorn reads this file before it loads the application, and before the project is on sys.path.
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

from django.conf import settings

logconfig_dict = {
    **settings.LOGGING,
    "loggers": {
        "gunicorn.error": {"level": "INFO", "handlers": [], "propagate": True},
        # Given a logging configuration, gunicorn turns its access log on: only its warnings pass.
        "gunicorn.access": {"level": "WARNING", "handlers": [], "propagate": True},
    },
}
# The workers' heartbeat files in memory: a container's /tmp may be on a slow overlay file system.
worker_tmp_dir = "/dev/shm"  # noqa: S108 gunicorn's heartbeat files, nothing else; in memory on purpose
# A request may run an inline import (up to TRACKER_IMPORT_INLINE_ROWS rows) or build a list's PDF.
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "120"))
# On a restart or a scale-down, requests under way are given this long to finish.
graceful_timeout = 30
# Docker or systemd starts, reloads and stops gunicorn; no control socket in the service user's home.
control_socket_disable = True
