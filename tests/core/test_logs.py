"""Logs: JSON lines in production and text locally, each record with the request or task it came from."""

from __future__ import annotations

import contextlib
import datetime
import io
import json
import logging
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.test import Client

from core.logs import ContextFilter, JsonFormatter, TextFormatter, logging_config
from tracker.tasks import sweep_deadlines

ROOT = Path(__file__).resolve().parents[2]


@contextlib.contextmanager
def captured(logger_name: str, formatter: logging.Formatter) -> Iterator[io.StringIO]:
    """What `logger_name` logs, through the product's filter and the given formatter."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(ContextFilter())
    handler.setFormatter(formatter)
    logger = logging.getLogger(logger_name)
    logger.addHandler(handler)
    try:
        yield stream
    finally:
        logger.removeHandler(handler)


@pytest.fixture
def request_log() -> Iterator[io.StringIO]:
    with captured("core.requests", JsonFormatter()) as stream:
        yield stream


def lines(stream: io.StringIO) -> list[dict]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_a_record_with_an_exception_is_one_json_line_with_its_fields():
    try:
        raise ZeroDivisionError("division by zero")
    except ZeroDivisionError:
        record = logging.getLogger("tracker.services.flags").makeRecord(
            "tracker.services.flags", logging.ERROR, __file__, 1, "sweep for %s failed", ("2025-08-01",),
            sys.exc_info())
    ContextFilter().filter(record)

    text = JsonFormatter().format(record)

    assert "\n" not in text
    entry = json.loads(text)
    assert set(entry) == {"time", "level", "logger", "message", "exception"}
    assert entry["time"].endswith("Z")
    assert datetime.datetime.fromisoformat(entry["time"]).utcoffset() == datetime.timedelta(0)
    assert (entry["level"], entry["logger"], entry["message"]) == (
        "ERROR", "tracker.services.flags", "sweep for 2025-08-01 failed")
    assert entry["exception"].startswith("Traceback (most recent call last):")
    assert entry["exception"].endswith("ZeroDivisionError: division by zero")


def test_a_request_gives_its_records_an_id_and_is_logged_without_its_query_string(request_log):
    response = Client().get("/api/v1/cases/?q=Шевченко", HTTP_X_REQUEST_ID="lb-7f3a")

    assert response.status_code == 401
    assert response["X-Request-ID"] == "lb-7f3a"
    [entry] = lines(request_log)
    assert entry["request_id"] == "lb-7f3a"
    assert entry["message"].startswith("GET /api/v1/cases/ 401 ")
    assert "Шевченко" not in request_log.getvalue()


def test_a_request_id_that_is_not_one_is_replaced(request_log):
    response = Client().get("/api/v1/cases/", HTTP_X_REQUEST_ID='x" injected=1')

    assert response["X-Request-ID"] != 'x" injected=1'
    assert len(response["X-Request-ID"]) == 32
    assert lines(request_log)[0]["request_id"] == response["X-Request-ID"]


def test_health_probes_are_not_logged_per_request(request_log):
    Client().get("/health/live")
    assert request_log.getvalue() == ""


@pytest.mark.django_db
def test_records_logged_inside_a_task_carry_its_id_and_name():
    with captured("tracker.services.flags", JsonFormatter()) as stream:
        result = sweep_deadlines.apply(args=("2025-08-01",))
        [entry] = lines(stream)
    assert entry["message"] == "deadline sweep for 2025-08-01: flagged 0, escalated 0, reminded 0, resolved 0"
    assert (entry["task_id"], entry["task_name"]) == (result.id, "tracker.tasks.sweep_deadlines")
    assert "request_id" not in entry


def test_the_text_format_puts_the_context_after_the_message():
    record = logging.LogRecord("core.requests", logging.INFO, __file__, 1, "GET /admin/ 200 3 ms", None, None)
    record.request_id = "lb-7f3a"

    assert TextFormatter().format(record).endswith(" INFO core.requests: GET /admin/ 200 3 ms [request_id=lb-7f3a]")


def test_an_unknown_format_is_refused():
    with pytest.raises(ValueError, match="LOG_FORMAT must be one of json, text"):
        logging_config(log_format="xml", level="INFO")


def run_logging(**env: str) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_", "CELERY_", "DJANGO_", "LOG_"))}
    return subprocess.run(
        [sys.executable, "-c", "import django, logging; django.setup(); logging.getLogger('tracker').warning('hi')"],
        cwd=ROOT, capture_output=True, text=True, timeout=60,
        env={**base, "DJANGO_SETTINGS_MODULE": "config.settings", "DATABASE_URL": "sqlite://:memory:",
             "CELERY_BROKER_URL": "memory://", "SECRET_KEY": "not-a-secret", "ALLOWED_HOSTS": "tracker.example.org",
             **env})


@pytest.mark.slow
def test_production_logs_json_lines_to_stdout_unless_told_otherwise():
    production = run_logging(DJANGO_DEBUG="false")
    assert production.stderr == ""
    assert json.loads(production.stdout)["message"] == "hi"

    text = run_logging(DJANGO_DEBUG="false", LOG_FORMAT="text")
    assert text.stdout == ""
    assert text.stderr.rstrip().endswith("WARNING tracker: hi")
