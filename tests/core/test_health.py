"""/health/live and /health/ready, asked as a load balancer asks: no login, by the machine's address,
every few seconds; ready against the real database and broker, and against ones that fail."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator

import pytest
from django.conf import settings
from django.test import Client

from config.celery import app

# A load balancer calls a machine by its address, which is not among ALLOWED_HOSTS.
BY_ADDRESS = {"Host": "10.0.0.7:8000"}


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A port that takes connections and never says a word."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        yield int(listener.getsockname()[1])


@pytest.fixture
def broker_at() -> Iterator[object]:
    """Points the connection tasks are sent on at another broker, for one test."""
    before = app.conf["broker_write_url"]

    def point(url: str) -> None:
        app.conf["broker_write_url"] = url

    yield point
    app.conf["broker_write_url"] = before


def ask(client: Client, path: str = "/health/ready") -> tuple[int, dict, float]:
    started = time.monotonic()
    response = client.get(path, headers=BY_ADDRESS)
    assert response["Content-Type"] == "application/json"
    assert response["Cache-Control"] == "no-store"
    return response.status_code, response.json(), time.monotonic() - started


def test_live_answers_with_nothing_asked_of_the_database_or_the_broker(client, broker_at):
    broker_at(f"redis://127.0.0.1:{closed_port()}/0")  # and the database is out of reach without a db mark

    assert ask(client, "/health/live")[:2] == (200, {"status": "ok"})
    assert client.post("/health/live", headers=BY_ADDRESS).status_code == 405


@pytest.mark.django_db
def test_ready_names_each_check_and_its_latency(client):
    status, body, elapsed = ask(client)

    assert status == 200, body
    assert body["status"] == "ok"
    assert set(body["checks"]) == {"database", "broker"}
    for check in body["checks"].values():
        assert check["ok"] is True
        assert 0 < check["latency_ms"] < 1000
    assert elapsed < 1.0


@pytest.mark.django_db
def test_only_the_health_paths_are_answered_for_an_unknown_host(client):
    assert client.get("/health/ready", headers=BY_ADDRESS).status_code == 200
    assert client.get("/admin/login/", headers=BY_ADDRESS).status_code == 400


@pytest.mark.django_db
def test_ready_is_503_naming_the_broker_when_it_refuses_connections(client, broker_at):
    port = closed_port()
    broker_at(f"redis://127.0.0.1:{port}/0")

    status, body, elapsed = ask(client)

    assert status == 503
    assert body["status"] == "unavailable" and body["failed"] == ["broker"]
    assert body["checks"]["broker"]["ok"] is False and body["checks"]["broker"]["error"] == "OperationalError"
    assert body["checks"]["database"]["ok"] is True
    assert str(port) not in str(body), "where the broker is stays in the log"
    assert elapsed < 1.0


@pytest.mark.django_db
def test_ready_gives_up_on_a_broker_that_does_not_answer_within_a_second(client, broker_at, silent_port):
    broker_at(f"redis://127.0.0.1:{silent_port}/0")

    status, body, elapsed = ask(client)

    assert (status, body["failed"], body["checks"]["broker"]["error"]) == (503, ["broker"], "TimeoutError")
    assert 1.0 <= elapsed < 1.5


@pytest.mark.django_db
@pytest.mark.parametrize(("setting", "value", "error"), [
    ("NAME", "tracker_no_such_database", "OperationalError"),
    ("PORT", "closed", "OperationalError"),
    ("PORT", "silent", "TimeoutError"),  # libpq would wait 2 s at the least; the check waits 1 s
])
def test_ready_is_503_naming_the_database_when_it_cannot_be_reached(client, monkeypatch, silent_port, setting,
                                                                    value, error):
    # The database the check connects to; this test's own connection is already open, to the right one.
    wrong = {"closed": closed_port(), "silent": silent_port}.get(value, value)
    monkeypatch.setitem(settings.DATABASES["default"], setting, wrong)

    status, body, elapsed = ask(client)

    assert status == 503
    assert body["failed"] == ["database"]
    assert body["checks"]["database"]["error"] == error
    assert body["checks"]["broker"]["ok"] is True
    assert elapsed < 1.5
