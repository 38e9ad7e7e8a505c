"""Beat: the schedule edited in the admin survives a restart, and of two beats only one sends."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.db import connection
from django_celery_beat.models import IntervalSchedule, PeriodicTask

from config.celery import app
from core.beat import LeaderLock, SingleLeaderScheduler
from tests.waiting import wait_for

ROOT = Path(__file__).resolve().parents[2]


# Committed for real: the scheduler closes stale connections as a running beat does.
@pytest.mark.django_db(transaction=True)
def test_the_settings_install_missing_entries_and_leave_the_admins_edits_alone(settings):
    daily, _ = IntervalSchedule.objects.get_or_create(every=1, period=IntervalSchedule.DAYS)
    # An administrator made the sweep daily and paused the digest.
    PeriodicTask.objects.create(name="deadline-sweep-hourly", task="tracker.tasks.sweep_deadlines", interval=daily)
    hourly, _ = IntervalSchedule.objects.get_or_create(every=3600, period=IntervalSchedule.SECONDS)
    PeriodicTask.objects.create(name="flag-digest-daily", task="tracker.tasks.send_flag_digests", interval=hourly,
                                enabled=False)

    for _ in range(2):  # two starts
        scheduler = SingleLeaderScheduler(app=app, lazy=True)
        scheduler.setup_schedule()
        scheduler.leader.release()

    sweep = PeriodicTask.objects.get(name="deadline-sweep-hourly")
    assert sweep.interval is not None
    assert (sweep.interval.every, sweep.interval.period) == (1, IntervalSchedule.DAYS)
    assert not PeriodicTask.objects.get(name="flag-digest-daily").enabled
    installed = set(PeriodicTask.objects.values_list("name", flat=True))
    assert set(settings.CELERY_BEAT_SCHEDULE) <= installed


@pytest.mark.django_db
def test_the_leader_lock_is_held_by_one_at_a_time_and_passes_on_when_released():
    assert connection.vendor == "postgresql"
    first, second = LeaderLock(key=7_000_001), LeaderLock(key=7_000_001)
    try:
        assert first.held()
        assert not second.held()
        first.release()
        second._checked_at = 0.0  # asks at once instead of at its next check
        assert second.held()
    finally:
        first.release()
        second.release()


def _start_beat(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "config", "beat", "--loglevel", "INFO", "--max-interval", "1",
         "--pidfile", ""], cwd=ROOT, env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT)



@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_of_two_beat_processes_one_leads_and_the_other_takes_over_when_it_is_killed(tmp_path):
    database = connection.settings_dict
    env = {**os.environ, "DATABASE_URL": f"postgres://{database['USER']}@{database['HOST'] or '127.0.0.1'}:"
                                         f"{database['PORT'] or 5432}/{database['NAME']}",
           # What the leader sends goes nowhere: no other test's worker may run it.
           "DATABASE_POOL": "false", "CELERY_BROKER_URL": "memory://"}
    logs = [tmp_path / "beat-1.log", tmp_path / "beat-2.log"]
    beats = [_start_beat(env, logs[0])]
    try:
        assert wait_for(lambda: "leading" in logs[0].read_text(), 60), logs[0].read_text()
        beats.append(_start_beat(env, logs[1]))
        assert wait_for(lambda: "idle: another beat is the leader" in logs[1].read_text(), 60), logs[1].read_text()
        time.sleep(2)
        assert "leading" not in logs[1].read_text()

        beats[0].send_signal(signal.SIGKILL)
        beats[0].wait(10)
        # The dead beat's connection closes with it, and the lock with it: the other takes over.
        assert wait_for(lambda: "leading" in logs[1].read_text(), 40), logs[1].read_text()
    finally:
        for beat in beats:
            if beat.poll() is None:
                beat.terminate()
                beat.wait(10)
