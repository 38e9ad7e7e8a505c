"""Structured logs: one JSON object a line in production, and the request or task each record came from.

`LOG_FORMAT=json|text` chooses the formatter (settings). Both carry the same context: the request id
set by `RequestContextMiddleware` and the Celery task a record was logged in. Nothing here reads a
record's arguments or extras: a task's arguments and an exception's details stay out of the fields
unless the message itself carries them, and no message of the product names a child.

This module must import without Django settings: gunicorn's master loads it (gunicorn.conf.py)
before any application code.
"""

from __future__ import annotations

import contextvars
import datetime
import json
import logging
import re
import time
import uuid
from collections.abc import Callable, Mapping
from typing import Any

from celery import current_task
from django.core.signals import request_finished
from django.http import HttpRequest, HttpResponse

FORMATS = ("json", "text")
REQUEST_ID_HEADER = "X-Request-ID"
# A request id from the proxy is taken as it is only when it looks like one: it is written into every
# record of the request and into the response, so it must not carry anything else.
_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,100}")
_request_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("request_id", default=None)
# Paths not logged per request: a load balancer calls them every few seconds.
QUIET_PATHS = ("/health/",)
request_log = logging.getLogger("core.requests")


class ContextFilter(logging.Filter):
    """Puts the request id, and the id and name of the Celery task running, on every record it passes
    (None where there is none), for the formatters to show."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = _request_id.get()
        task_id: object = None
        task_name: object = None
        if current_task and current_task.request.id:
            task_id, task_name = current_task.request.id, current_task.name
        elif record.name.startswith("celery.") and isinstance(record.args, Mapping):
            # The worker's own lines about a task ("received", "succeeded in 0.1s") are logged outside
            # it, with the task's id and name among their format arguments.
            task_id, task_name = record.args.get("id"), record.args.get("name")
        record.task_id, record.task_name = task_id, task_name
        return True


def _context(record: logging.LogRecord) -> dict[str, str]:
    return {key: str(value) for key in ("request_id", "task_id", "task_name")
            if (value := getattr(record, key, None))}


class JsonFormatter(logging.Formatter):
    """One JSON object per record, on one line: time (ISO 8601, UTC), level, logger, message, the
    request or task context where there is one, and the traceback of an exception as a field."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.datetime.fromtimestamp(record.created, tz=datetime.UTC).isoformat(
                timespec="milliseconds").replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            **_context(record),
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        elif record.exc_text:
            entry["exception"] = record.exc_text
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        # Non-ASCII as it is (names of places, Ukrainian messages); json.dumps escapes newlines, so a
        # traceback stays on the record's one line.
        return json.dumps(entry, ensure_ascii=False, default=str)


class TextFormatter(logging.Formatter):
    """For a person at a terminal: time, level, logger and message, then the context in brackets."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        context = _context(record)
        if not context:
            return text
        first, newline, rest = text.partition("\n")
        return f"{first} [{' '.join(f'{key}={value}' for key, value in context.items())}]{newline}{rest}"


def logging_config(*, log_format: str, level: str) -> dict[str, Any]:
    """The dictConfig of every process: the web (Django's LOGGING, and gunicorn's own lines), the
    workers and beat. JSON goes to stdout, where a container's or the journal's collector reads it;
    text goes to stderr, so that a command's output on stdout stays apart from its log."""
    if log_format not in FORMATS:
        raise ValueError(f"LOG_FORMAT must be one of {', '.join(FORMATS)}, not {log_format!r}")
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"context": {"()": "core.logs.ContextFilter"}},
        "formatters": {"json": {"()": "core.logs.JsonFormatter"}, "text": {"()": "core.logs.TextFormatter"}},
        "handlers": {
            "console": {
                "class": "logging.StreamHandler",
                "stream": "ext://sys.stdout" if log_format == "json" else "ext://sys.stderr",
                "formatter": log_format,
                "filters": ["context"],
            },
        },
        "root": {"handlers": ["console"], "level": level},
    }


class RequestContextMiddleware:
    """Gives each request an id (the proxy's `X-Request-ID` when it sends one, a new one otherwise),
    carried by every record logged while the request is handled and returned in the response; and logs
    one line per request: method, path, status and the time to the response. The query string is left
    out: a name searched for is in it."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response
        # Django logs a 4xx or 5xx response after the middleware has returned it: the id is kept until
        # the response is closed.
        request_finished.connect(_forget_request_id, dispatch_uid="core.logs.forget_request_id")

    def __call__(self, request: HttpRequest) -> HttpResponse:
        given = request.headers.get(REQUEST_ID_HEADER, "")
        request_id = given if _REQUEST_ID.fullmatch(given) else uuid.uuid4().hex
        _request_id.set(request_id)
        started = time.perf_counter()
        response = self.get_response(request)
        response[REQUEST_ID_HEADER] = request_id
        if not request.path_info.startswith(QUIET_PATHS):
            request_log.info("%s %s %s %.0f ms", request.method, request.path, response.status_code,
                             (time.perf_counter() - started) * 1000)
        return response


def _forget_request_id(**kwargs: Any) -> None:
    _request_id.set(None)
