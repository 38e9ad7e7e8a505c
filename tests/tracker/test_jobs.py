"""The deadline jobs as Celery runs them: a real worker consuming from the Redis broker."""

from __future__ import annotations

import datetime

import pytest
from celery.contrib.testing.worker import start_worker
from django.conf import settings
from django.core import mail
from django.core.management import call_command

from config.celery import app
from tests.factories import UserFactory
from tracker.models import Flag
from tracker.services.flags import send_flag_digests, sweep_deadlines
from tracker.tasks import send_flag_digests as send_flag_digests_task
from tracker.tasks import sweep_deadlines as sweep_deadlines_task

DUE = datetime.date(2025, 7, 2)


@pytest.fixture
def redis_worker(transactional_db):
    assert settings.CELERY_BROKER_URL.startswith("redis://"), "the job tests run against the Redis broker"
    app.control.purge()
    with start_worker(app, pool="threads", concurrency=2, perform_ping_check=False, shutdown_timeout=10) as worker:
        yield worker


@pytest.mark.slow
def test_a_real_worker_runs_the_sweep_from_the_broker(redis_worker, make_handed_over_list):
    make_handed_over_list(3)

    outcome = sweep_deadlines_task.delay((DUE + datetime.timedelta(days=15)).isoformat()).get(timeout=60)

    assert outcome == {"flagged": 3, "escalated": 0, "reminded": 0, "resolved": 0}
    assert sorted(Flag.objects.values_list("level", flat=True)) == [2, 2, 2]
    again = sweep_deadlines_task.delay((DUE + datetime.timedelta(days=15)).isoformat()).get(timeout=60)
    assert again["flagged"] == 0 and Flag.objects.count() == 3


@pytest.mark.slow
def test_two_sweeps_queued_at_once_raise_each_flag_once(redis_worker, make_handed_over_list):
    make_handed_over_list(40)
    day = (DUE + datetime.timedelta(days=40)).isoformat()
    results = [r.get(timeout=60) for r in [sweep_deadlines_task.delay(day), sweep_deadlines_task.delay(day)]]
    assert sum(r["flagged"] for r in results) == 40
    assert Flag.objects.count() == 40


@pytest.mark.slow
def test_the_digest_task_emails_through_the_worker(redis_worker, make_handed_over_list):
    make_handed_over_list(2, assignee=UserFactory(username="digest.reader"))
    sweep_deadlines(today=DUE + datetime.timedelta(days=1))
    assert send_flag_digests_task.delay().get(timeout=60) == {"emails": 1, "flags": 2}
    assert mail.outbox[0].to == ["digest.reader@example.org"]


def test_beat_schedule_names_real_tasks():
    schedule = settings.CELERY_BEAT_SCHEDULE
    assert {entry["task"] for entry in schedule.values()} <= set(app.tasks.keys())
    assert schedule["deadline-sweep-hourly"]["schedule"] == 3600


@pytest.mark.django_db
def test_digest_tells_each_assignee_once_and_again_when_escalated(make_handed_over_list):
    anna, bohdan = UserFactory(username="anna"), UserFactory(username="bohdan")
    make_handed_over_list(2, assignee=anna)
    make_handed_over_list(1, assignee=bohdan)
    sweep_deadlines(today=DUE + datetime.timedelta(days=1))

    assert send_flag_digests().emails == 2
    by_person = {m.to[0]: m for m in mail.outbox}
    assert set(by_person) == {"anna@example.org", "bohdan@example.org"}
    # In Ukrainian, then in English: the tracker keeps no language per person.
    assert by_person["anna@example.org"].subject == ("Case tracker: 2 позначки потребують вашої уваги"
                                                     " / 2 flags need your attention")
    assert by_person["anna@example.org"].body.count("Overdue, no reply") == 2
    assert by_person["anna@example.org"].body.count("Прострочено, без відповіді") == 2

    assert send_flag_digests().emails == 0, "nothing new since the last digest"
    sweep_deadlines(today=DUE + datetime.timedelta(days=14))
    assert send_flag_digests().flags == 3, "escalation is news"
    assert "level 2" in mail.outbox[-1].body


@pytest.mark.django_db
def test_unassigned_flags_go_to_the_configured_address(make_handed_over_list, settings):
    from cases.models import Case

    make_handed_over_list(1)
    Case.objects.update(assignee=None)
    sweep_deadlines(today=DUE + datetime.timedelta(days=1))
    assert send_flag_digests().emails == 0
    settings.TRACKER_UNASSIGNED_DIGEST_TO = ["desk@example.org"]
    assert send_flag_digests().emails == 1
    assert mail.outbox[0].to == ["desk@example.org"]


@pytest.mark.django_db
def test_flag_overdue_command_prints_its_counts(make_handed_over_list, capsys):
    make_handed_over_list(2)
    call_command("flag_overdue", "--today", "2025-07-20")
    assert capsys.readouterr().out.strip() == "flagged 2, escalated 0, reminded 0, resolved 0"
    call_command("flag_overdue", "--today", "2025-07-20")
    assert capsys.readouterr().out.strip() == "flagged 0, escalated 0, reminded 0, resolved 0"


def test_flag_overdue_command_names_a_bad_date():
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="--today: '20-07-2025' is not a date"):
        call_command("flag_overdue", "--today", "20-07-2025")
