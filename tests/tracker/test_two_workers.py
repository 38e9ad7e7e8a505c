"""Past one machine: two real worker processes share the jobs, and nothing is done twice or left undone.

Two `celery -A config worker --pool prefork --concurrency 1` processes, as production starts them, on
the suite's broker but a queue of this module's own (no other test's worker takes its tasks), and on
the test database, so they see what the tests commit. Through them go deadline sweeps sent several at
once, and a burst of webhook deliveries fanned out by two dispatchers at once to a real HTTP receiver.
"""

from __future__ import annotations

import datetime
import json
import os
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import partial
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import quote

import pytest
from django.db import connection
from django.db.models import Count

from cases.models import Case
from config.celery import app
from tests.factories import CaseFactory, OrganisationFactory
from tracker.models import (
    CaseShare,
    Flag,
    HandoverList,
    ListEntry,
    Organisation,
    OutboxEvent,
    WebhookDelivery,
    WebhookEndpoint,
)
from tracker.services.webhooks import record_status_events
from tracker.tasks import dispatch_outbox, sweep_deadlines

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]
QUEUE = f"two-workers-{uuid.uuid4().hex[:8]}"
HANDED_OVER = datetime.date(2025, 6, 2)
TODAY = datetime.date(2025, 8, 11)


@dataclass
class Workers:
    logs: list[Path]

    def records(self) -> list[list[dict[str, str]]]:
        """Each worker's log records (JSON lines; the few lines printed before logging starts are not)."""
        return [[json.loads(line) for line in log.read_text().splitlines() if line.startswith("{")]
                for log in self.logs]

    def spans(self, task: str) -> list[list[tuple[str, str]]]:
        """Each worker's runs of `task` to the end: (when it was received, when it succeeded)."""
        spans = []
        for records in self.records():
            received = {r["task_id"]: r["time"] for r in records if r["message"].startswith(f"Task {task}[")
                        and r["message"].endswith("received")}
            spans.append([(received[r["task_id"]], r["time"]) for r in records
                          if r["message"].startswith(f"Task {task}[") and " succeeded " in r["message"]])
        return spans

    def succeeded(self, task: str) -> list[int]:
        """How many times each worker ran `task` to the end."""
        return [len(spans) for spans in self.spans(task)]

    def overlapping(self, task: str) -> int:
        """How many runs of `task` by the first worker overlapped in time one by the second."""
        first, second = self.spans(task)
        return sum(1 for a in first if any(a[0] < b[1] and b[0] < a[1] for b in second))


def _database_url() -> str:
    database = connection.settings_dict
    password = f":{quote(database['PASSWORD'], safe='')}" if database.get("PASSWORD") else ""
    return (f"postgres://{quote(database['USER'] or '', safe='')}{password}@{database['HOST'] or '127.0.0.1'}:"
            f"{database['PORT'] or 5432}/{database['NAME']}")


def _started(process: subprocess.Popen[bytes], log: Path) -> bool:
    """Ready to take tasks, or gone."""
    return process.poll() is not None or " ready." in log.read_text()


def _wait(condition: Callable[[], bool], timeout: float, what: Callable[[], str]) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, what()
        time.sleep(0.1)


@pytest.fixture(scope="module")
def workers(django_db_setup, tmp_path_factory) -> Iterator[Workers]:
    logs = [tmp_path_factory.mktemp("workers") / f"worker-{n}.log" for n in (1, 2)]
    env = {**os.environ, "DATABASE_URL": _database_url(), "LOG_FORMAT": "json",
           # What the workers queue themselves (each delivery of a fan-out) stays on this queue too.
           "CELERY_TASK_DEFAULT_QUEUE": QUEUE}
    processes: list[subprocess.Popen[bytes]] = []
    outputs = [log.open("wb") for log in logs]
    try:
        for n, output in enumerate(outputs, start=1):
            processes.append(subprocess.Popen(
                [sys.executable, "-m", "celery", "-A", "config", "--quiet", "worker", "--pool", "prefork",
                 "--concurrency", "1", "--queues", QUEUE, "--hostname", f"{QUEUE}-{n}@%h"],
                cwd=ROOT, env=env, stdout=output, stderr=subprocess.STDOUT))
        for process, log in zip(processes, logs, strict=True):
            _wait(partial(_started, process, log), 60, log.read_text)
            assert process.poll() is None, log.read_text()
        yield Workers(logs)
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)
        for output in outputs:
            output.close()
        with app.connection_for_write() as conn:
            conn.SimpleQueue(QUEUE).clear()


@dataclass
class Receiver:
    """A local HTTP server that counts what it is sent, by path and by X-Tracker-Delivery."""

    deliveries: Counter[str] = field(default_factory=Counter)
    events: Counter[tuple[str, int]] = field(default_factory=Counter)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def serve(self) -> ThreadingHTTPServer:
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with outer.lock:
                    outer.deliveries[self.headers["X-Tracker-Delivery"]] += 1
                    outer.events[(self.path, body["id"])] += 1
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        return server


def _entries(*lists: HandoverList) -> set[int]:
    return set(ListEntry.objects.filter(handover_list__in=lists).values_list("pk", flat=True))


@pytest.mark.django_db(transaction=True)
def test_six_sweeps_sent_at_once_to_two_workers_raise_every_flag_once(workers, make_handed_over_list, capsys):
    long_overdue = make_handed_over_list(150, due=TODAY - datetime.timedelta(days=40))
    just_overdue = make_handed_over_list(100, due=TODAY - datetime.timedelta(days=3))
    due_soon = make_handed_over_list(50, due=TODAY + datetime.timedelta(days=3))
    expected = ({(entry, Flag.Kind.OVERDUE.value) for entry in _entries(long_overdue, just_overdue)}
                | {(entry, Flag.Kind.DUE_SOON.value) for entry in _entries(due_soon)})
    started = time.monotonic()

    sent = [sweep_deadlines.apply_async(args=(TODAY.isoformat(),), queue=QUEUE) for _ in range(6)]
    results = [result.get(timeout=60) for result in sent]

    elapsed = time.monotonic() - started
    open_flags = Flag.objects.filter(resolved_at__isnull=True)
    duplicated = list(open_flags.values("entry_id", "kind").annotate(n=Count("id")).filter(n__gt=1))
    found = set(open_flags.values_list("entry_id", "kind"))
    ran = workers.succeeded("tracker.tasks.sweep_deadlines")
    figures = (f"sweeps 6 (worker 1 ran {ran[0]}, worker 2 ran {ran[1]}, "
               f"{workers.overlapping('tracker.tasks.sweep_deadlines')} at the same time), entries {len(expected)}, "
               f"flags {open_flags.count()}, duplicates {len(duplicated)}, missed {len(expected - found)}, "
               f"{elapsed:.1f} s")
    with capsys.disabled():
        print(f"\ntwo workers, deadline sweeps: {figures}")
    assert duplicated == [], figures
    assert found == expected, figures
    assert sum(r["flagged"] for r in results) == 250 and sum(r["reminded"] for r in results) == 50, results
    assert sorted(Counter(open_flags.filter(kind=Flag.Kind.OVERDUE).values_list("level", flat=True)).items()) == [
        (1, 100), (3, 150)]
    assert all(ran), f"both workers took sweeps: {figures}"
    # Each sweep's own line in the workers' logs names the task it ran in.
    swept = [record for records in workers.records() for record in records
             if record["message"].startswith(f"deadline sweep for {TODAY}")]
    assert sorted(record["task_id"] for record in swept) == sorted(result.id for result in sent)
    assert {record["task_name"] for record in swept} == {"tracker.tasks.sweep_deadlines"}


@pytest.mark.django_db(transaction=True)
def test_a_burst_of_webhooks_fanned_out_by_two_dispatchers_is_delivered_once_each(workers, capsys):
    receiver = Receiver()
    server = receiver.serve()
    try:
        url = f"http://127.0.0.1:{server.server_port}"
        partner = OrganisationFactory(name="Tracing partner", kind=Organisation.Kind.PARTNER)
        WebhookEndpoint.objects.create(organisation=partner, url=f"{url}/hook", secret="s" * 32,
                                       events=["case.status_changed"])
        cases: list[Case] = [CaseFactory() for _ in range(130)]
        CaseShare.objects.bulk_create([CaseShare(case=case, organisation=partner) for case in cases])
        # Four status changes of each case shared with the partner: 520 events, more than one fan-out
        # batch (500), so that both dispatchers have rows to claim.
        for from_status, to_status in (("open", "on_list"), ("on_list", "awaiting_reply"),
                                       ("awaiting_reply", "located"), ("located", "returned")):
            record_status_events([(case, from_status, to_status) for case in cases])
        events = list(OutboxEvent.objects.values_list("pk", flat=True))
        expected_events = {("/hook", event) for event in events}
        started = time.monotonic()

        dispatchers = [dispatch_outbox.apply_async(queue=QUEUE) for _ in range(2)]
        made = [result.get(timeout=60) for result in dispatchers]
        _wait(lambda: sum(receiver.deliveries.values()) >= len(expected_events)
              and not WebhookDelivery.objects.filter(state=WebhookDelivery.State.PENDING).exists(), 45,
              lambda: f"{sum(receiver.deliveries.values())} of {len(expected_events)} deliveries arrived")
        elapsed = time.monotonic() - started
        time.sleep(1)  # anything sent twice would arrive now
    finally:
        server.shutdown()

    deliveries = set(map(str, WebhookDelivery.objects.values_list("pk", flat=True)))
    duplicates = {delivery: n for delivery, n in receiver.deliveries.items() if n > 1}
    missed = deliveries - set(receiver.deliveries)
    delivered = workers.succeeded("tracker.tasks.deliver_webhook")
    figures = (f"events {len(events)}, deliveries {len(deliveries)} (fanned out {made[0]} + {made[1]}; worker 1 "
               f"delivered {delivered[0]}, worker 2 {delivered[1]}), received {sum(receiver.deliveries.values())}, "
               f"duplicates {len(duplicates)}, missed {len(missed)}, {elapsed:.1f} s")
    with capsys.disabled():
        print(f"\ntwo workers, webhooks: {figures}")
    assert len(events) == 520
    assert duplicates == {}, figures
    assert missed == set(), figures
    assert len(deliveries) == sum(made) == len(expected_events) == 520, figures
    assert set(receiver.events) == expected_events and max(receiver.events.values()) == 1, figures
    assert set(WebhookDelivery.objects.values_list("state", "attempts").distinct()) == {("delivered", 1)}
    assert all(delivered), f"both workers delivered: {figures}"
