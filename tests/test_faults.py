"""Faults survived: a Redis of the test's own is stopped and started under the product's feet.

The broker and the shared cache are pointed at a redis-server this module starts on a free port,
so stopping it is a real outage (connections refused) that leaves the suite's own Redis alone.
"""

from __future__ import annotations

import datetime
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pytest
import redis
from django.core.cache import cache
from django.db import connections, transaction
from rest_framework.test import APIClient

import core.cache
from cases.models import Case
from core.tasks import enqueue
from tests.brokers import point_broker_at
from tests.factories import CaseFactory, HandoverListFactory, OrganisationFactory
from tracker import tasks
from tracker.models import CaseShare, HandoverList, ImportBatch, Organisation, OutboxEvent, Reply, WebhookEndpoint
from tracker.services.exchange import list_add_cases, list_hand_over
from tracker.services.imports import (
    import_batch_create,
    import_batch_run,
    import_batch_start,
    import_batch_validate,
    stale_import_batches,
)
from tracker.services.partners import api_key_issue

pytestmark = [pytest.mark.django_db, pytest.mark.slow,
              pytest.mark.skipif(shutil.which("redis-server") is None, reason="needs redis-server")]
QUEUE = "tracker"


@dataclass
class OwnRedis:
    port: int
    start: Callable[[], None]
    stop: Callable[[], None]

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def queued(self) -> int:
        return int(redis.Redis(port=self.port).llen(QUEUE))


@pytest.fixture
def own_redis(settings) -> Iterator[OwnRedis]:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    process: list[subprocess.Popen[bytes]] = []

    def start() -> None:
        process.append(subprocess.Popen(["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                                         "--appendonly", "no"], stdout=subprocess.DEVNULL))
        for _ in range(100):
            try:
                redis.Redis(port=port).ping()
                return
            except redis.ConnectionError:
                time.sleep(0.05)
        raise RuntimeError("the test's redis-server did not start")

    def stop() -> None:
        running = process.pop()
        running.terminate()
        running.wait(timeout=10)

    start()
    own = OwnRedis(port, start, stop)
    settings.CACHES = {"default": {"BACKEND": "core.cache.ResilientRedisCache", "LOCATION": own.url}}
    point_broker_at(own.url)
    try:
        yield own
    finally:
        point_broker_at(None)
        if process:
            stop()


@pytest.fixture
def partner_reply() -> tuple[APIClient, Organisation, list[Case]]:
    partner = OrganisationFactory(name="Tracing partner", kind=Organisation.Kind.PARTNER)
    _, key = api_key_issue(organisation=partner, name="sync", scopes=["read", "contribute"], actor=None)
    cases = [CaseFactory() for _ in range(3)]
    for case in cases:
        CaseShare.objects.create(case=case, organisation=partner, can_contribute=True)
    handover_list = HandoverListFactory(recipient=partner)
    list_add_cases(handover_list=handover_list, cases=cases, actor=None)
    list_hand_over(handover_list=handover_list, handed_over_on=datetime.date(2025, 6, 2),
                   response_due_on=datetime.date(2025, 7, 2), actor=None)
    WebhookEndpoint.objects.create(organisation=partner, url="https://partner.example.org/hook", secret="s" * 32)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    client.handover_list = handover_list  # type: ignore[attr-defined]
    return client, partner, cases


def test_with_redis_down_a_reply_is_recorded_reads_answer_and_the_events_wait_for_its_return(
        own_redis, partner_reply, django_capture_on_commit_callbacks, caplog, monkeypatch):
    monkeypatch.setattr(core.cache, "RETRY_AFTER_SECONDS", 0.5)
    client, _, cases = partner_reply
    handover_list = client.handover_list
    assert client.get("/api/v1/cases/").status_code == 200  # counted in Redis, its script loaded there
    own_redis.stop()

    with django_capture_on_commit_callbacks(execute=True):
        answered = client.post(f"/api/v1/lists/{handover_list.pk}/replies/", {
            "received_on": "2025-07-28", "outcomes": [{"position": 1, "outcome": "located"}]}, format="json")
    assert answered.status_code == 201, answered.content
    assert Reply.objects.filter(handover_list=handover_list).count() == 1
    assert "could not queue tracker.tasks.dispatch_outbox" in caplog.text
    # What a partner must hear of waits in the outbox, not lost with the queue.
    assert OutboxEvent.objects.filter(fanned_out_at__isnull=True, event="reply.recorded").count() == 1

    for _ in range(3):  # reads go through the rate limiter, whose counters live in Redis
        listed = client.get("/api/v1/cases/")
        assert listed.status_code == 200
        assert {row["id"] for row in listed.json()["results"]} == {case.pk for case in cases}

    own_redis.start()
    # The safety net, as beat runs it every few minutes: the outbox's dispatcher is queued again.
    assert enqueue(tasks.redeliver_stale_webhooks)
    assert own_redis.queued() == 1
    time.sleep(0.6)  # the cache asks Redis again once its pause after a failure is over
    cache.set("after-the-outage", 1)
    assert redis.Redis(port=own_redis.port).exists(cache.make_key("after-the-outage"))
    # The rate limit's script, which the restarted server no longer holds, is sent to it again.
    assert client.get("/api/v1/cases/").status_code == 200
    assert redis.Redis(port=own_redis.port).keys(cache.make_key("ratelimit:*"))


def test_with_redis_down_a_large_upload_waits_and_its_check_is_queued_once_redis_returns(own_redis):
    sender, recipient = OrganisationFactory(name="Ukrainian delegation"), OrganisationFactory(name="Russian delegation")
    batch = import_batch_create(kind="list", content=b"\xe2\x84\x96;Surname;Given name\r\n1;Tkachenko;Maria\r\n",
                                file_name="large.csv", actor=None, sender=sender, recipient=recipient,
                                reference="UA-RU/outage")
    own_redis.stop()
    assert not enqueue(tasks.validate_import, batch.pk), "the broker is down: nothing queued, nothing raised"
    ImportBatch.objects.filter(pk=batch.pk).update(updated_at=batch.updated_at - datetime.timedelta(hours=1))

    own_redis.start()
    result = tasks.resume_stale_imports.apply().get()
    assert result == {"validate": 1, "run": 0}
    assert own_redis.queued() == 1
    assert stale_import_batches(older_than=datetime.timedelta(minutes=10)).to_validate == [batch.pk]


@pytest.mark.django_db(transaction=True)
def test_an_import_still_being_written_elsewhere_is_left_alone_then_written_once():
    """A run holds the batch's row for its whole transaction: a second run of the same batch (a job
    delivered twice, the periodic resume) finds it held and leaves it, writing nothing."""
    sender, recipient = OrganisationFactory(name="Ukrainian delegation"), OrganisationFactory(name="Russian delegation")
    batch = import_batch_create(kind="list", content="№;Прізвище;Ім'я\r\n1;Ткаченко;Марія\r\n".encode(),
                                file_name="list.csv", actor=None, sender=sender, recipient=recipient,
                                reference="UA-RU/twice")
    import_batch_validate(batch_id=batch.pk)
    import_batch_start(batch=ImportBatch.objects.get(pk=batch.pk), actor=None)
    holding, release = threading.Event(), threading.Event()

    def first_run_still_writing() -> None:
        try:
            with transaction.atomic():
                ImportBatch.objects.select_for_update().get(pk=batch.pk)
                holding.set()
                release.wait(30)
        finally:
            connections.close_all()

    worker = threading.Thread(target=first_run_still_writing)
    worker.start()
    try:
        assert holding.wait(30)
        second = import_batch_run(batch_id=batch.pk, actor=None)
        assert second.status == ImportBatch.Status.IMPORTING
        assert not HandoverList.objects.filter(reference="UA-RU/twice").exists()
    finally:
        release.set()
        worker.join(30)
    assert import_batch_run(batch_id=batch.pk, actor=None).status == ImportBatch.Status.DONE
    assert HandoverList.objects.get(reference="UA-RU/twice").entries.count() == 1
