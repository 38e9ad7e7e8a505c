"""Real worker processes: one killed with SIGKILL in the middle of an import loses and doubles nothing,
and a worker keeps its database sessions across tasks and through the database dropping them.

Each test starts `celery -A config worker` as a process of its own, on a Redis database of its own
and the test database (committed data: `transaction=True`).
"""

from __future__ import annotations

import datetime
import os
import re
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis
from django.db import connection

from tests.brokers import point_broker_at
from tests.factories import OrganisationFactory
from tests.waiting import wait_for
from tracker import tasks
from tracker.models import HandoverList, ImportBatch
from tracker.services.imports import (
    import_batch_create,
    import_batch_start,
    import_batch_validate,
    stale_import_batches,
)

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]
ROOT = Path(__file__).resolve().parent.parent
# Database 7 of the suite's own Redis server: the same server as its broker, so that suites run side by
# side against servers of their own keep apart.
BROKER = re.sub(r"/\d*$", "", os.environ.get("CELERY_BROKER_URL", "redis://127.0.0.1:6379/15")) + "/7"
ROWS = 3000



@pytest.fixture
def worker_logs(tmp_path) -> Path:
    return tmp_path


@pytest.fixture
def worker_factory(worker_logs) -> Iterator[Callable[[], subprocess.Popen[bytes]]]:
    database = connection.settings_dict
    env = {**os.environ, "CELERY_BROKER_URL": BROKER, "CELERY_RESULT_BACKEND": "",
           "DATABASE_URL": f"postgres://{database['USER']}@{database['HOST'] or '127.0.0.1'}:"
                           f"{database['PORT'] or 5432}/{database['NAME']}"}
    redis.Redis.from_url(BROKER).flushdb()
    started: list[subprocess.Popen[bytes]] = []
    point_broker_at(BROKER)

    def start() -> subprocess.Popen[bytes]:
        log = (worker_logs / f"worker-{len(started)}.log").open("wb")
        worker = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "config", "worker", "--pool", "prefork", "--concurrency", "1",
             "--loglevel", "INFO", "--without-gossip", "--without-mingle", "--without-heartbeat"],
            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        started.append(worker)
        return worker

    try:
        yield start
    finally:
        point_broker_at(None)
        for worker in started:
            if worker.poll() is None:
                os.killpg(worker.pid, signal.SIGTERM)
                worker.wait(20)
        redis.Redis.from_url(BROKER).flushdb()


def sessions() -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT sessions FROM pg_stat_database WHERE datname = current_database()")
        return int(cursor.fetchone()[0])


def test_a_worker_killed_in_the_middle_of_an_import_loses_nothing_and_the_import_is_written_once(worker_factory):
    sender, recipient = OrganisationFactory(name="Ukrainian delegation"), OrganisationFactory(name="Russian delegation")
    # Made-up children far enough apart that the engine takes none of them for another: a family name
    # and a given name of their own for each row, and a birth date of its own.
    stems = ["Бойч", "Гнат", "Дорош", "Жовт", "Зінч", "Карп", "Лавр", "Мирон", "Нестер", "Охрім", "Панч", "Рибал",
             "Сокол", "Тимч", "Устим", "Федор", "Харч", "Цвіт", "Шевч", "Юрч", "Явор", "Вакул", "Остап", "Кушн"]
    endings = ["енко", "ук", "ишин", "ець", "ак"]
    givens = ["Тарас", "Остап", "Богдан", "Ілля", "Марко", "Назар", "Роман", "Ярема", "Данило", "Орест",
              "Софія", "Марта", "Дарина", "Олеся", "Ганна", "Зоряна", "Леся", "Уляна", "Вікторія", "Ірина",
              "Аліна", "Єва", "Злата", "Христина", "Мирослава"]
    rows = [f"{n + 1};{stems[n % 24]}{endings[n // 24 % 5]};{givens[n // 120 % 25]};"
            f"{13 + n % 16}.{1 + n // 16 % 12:02d}.{2006 + n // 192}" for n in range(ROWS)]
    content = ("№;Прізвище;Ім'я;Дата народження\r\n" + "\r\n".join(rows) + "\r\n").encode()
    batch = import_batch_create(kind="list", content=content, file_name="long.csv", actor=None, sender=sender,
                                recipient=recipient, reference="UA-RU/killed", handed_over_on=datetime.date(2025, 6, 2))
    checked = import_batch_validate(batch_id=batch.pk)
    assert checked.status == ImportBatch.Status.VALIDATED, checked.errors[:3]
    import_batch_start(batch=ImportBatch.objects.get(pk=batch.pk), actor=None)

    first = worker_factory()
    tasks.run_import.delay(batch.pk, None)
    # Killed while it writes: its transaction holds the batch's row lock, which the database shows.
    # Killed as soon as that is seen (a pause here let a quick import commit first).
    assert wait_for(lambda: _batch_locked(batch.pk), 60, every=0.02), "the import never started"
    os.killpg(first.pid, signal.SIGKILL)
    first.wait(10)

    assert not HandoverList.objects.filter(reference="UA-RU/killed").exists(), "the half-written import rolled back"
    assert ImportBatch.objects.get(pk=batch.pk).status == ImportBatch.Status.IMPORTING
    # The safety net (beat, every few minutes) finds it; run now, as if the minutes had passed.
    stale = stale_import_batches(older_than=datetime.timedelta(0))
    assert stale.to_run == [(batch.pk, None)]
    worker_factory()
    for batch_id, actor_id in stale.to_run:
        tasks.run_import.delay(batch_id, actor_id)
    assert wait_for(lambda: ImportBatch.objects.get(pk=batch.pk).status != ImportBatch.Status.IMPORTING, 120)

    done = ImportBatch.objects.get(pk=batch.pk)
    assert done.status == ImportBatch.Status.DONE, done.errors
    written = HandoverList.objects.get(reference="UA-RU/killed")
    assert written.entries.count() == ROWS, "nothing lost"
    assert written.entries.values("position").distinct().count() == ROWS, "nothing doubled"


def _batch_locked(batch_id: int) -> bool:
    with connection.cursor() as cursor:
        cursor.execute("""
            SELECT count(*) FROM pg_locks l JOIN pg_class c ON c.oid = l.relation
            WHERE c.relname = 'tracker_importbatch' AND l.mode = 'RowShareLock' AND l.pid <> pg_backend_pid()
        """)
        return bool(cursor.fetchone()[0])


def _log(logs: Path) -> str:
    return "".join(path.read_text(errors="replace") for path in sorted(logs.glob("worker-*.log")))


def test_a_worker_keeps_its_database_sessions_and_survives_the_database_dropping_them(worker_factory, worker_logs):
    worker_factory()
    tasks.resume_stale_imports.delay()
    assert wait_for(lambda: _log(worker_logs).count("succeeded") == 1, 60), _log(worker_logs)
    before = sessions()
    for _ in range(30):
        tasks.resume_stale_imports.delay()
    assert wait_for(lambda: _log(worker_logs).count("succeeded") == 31, 60), _log(worker_logs)
    opened = sessions() - before
    assert opened <= 2, f"30 tasks opened {opened} database sessions"

    try:
        with connection.cursor() as cursor:  # as a database restart does: every other session is dropped
            cursor.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                           "WHERE datname = current_database() AND pid <> pg_backend_pid()")
        for _ in range(3):
            tasks.resume_stale_imports.delay()
        assert wait_for(lambda: _log(worker_logs).count("succeeded") == 34, 60), _log(worker_logs)
        assert "raised unexpected" not in _log(worker_logs), "no task failed for the dropped sessions"
    finally:
        # The sessions dropped include this test process's own idle pooled ones: the tests after this
        # one start on a new pool rather than on one whose connections the database has ended.
        connection.close()
        connection.close_pool()  # type: ignore[attr-defined]  # PostgreSQL's wrapper has it
