"""The deadline sweep, seen from outside: which entries end up flagged, at what level, and when not."""

from __future__ import annotations

import datetime
import threading

import pytest
from django.db import connection, transaction

from tracker.models import Flag, ListEntry, Outcome
from tracker.services.exchange import OutcomeInput, reply_record
from tracker.services.flags import SweepResult, sweep_deadlines

DUE = datetime.date(2025, 7, 2)
pytestmark = pytest.mark.django_db


def open_flags(kind: str = Flag.Kind.OVERDUE) -> list[Flag]:
    return list(Flag.objects.filter(kind=kind, resolved_at__isnull=True).order_by("entry__position"))


def test_flags_exactly_the_overdue_unanswered_entries(make_handed_over_list, case_worker):
    overdue_list = make_handed_over_list(4)
    not_yet_due = make_handed_over_list(3, due=DUE + datetime.timedelta(days=30))
    answered = overdue_list.entries.get(position=2)
    reply_record(handover_list=overdue_list, received_on=DUE, actor=case_worker,
                 outcomes=[OutcomeInput(entry_id=answered.pk, outcome=Outcome.LOCATED)])

    result = sweep_deadlines(today=DUE + datetime.timedelta(days=1), reminder_days=0)

    assert result == SweepResult(flagged=3, escalated=0, reminded=0, resolved=0)
    flagged = {f.entry_id for f in open_flags()}
    assert flagged == set(overdue_list.entries.exclude(pk=answered.pk).values_list("pk", flat=True))
    assert not Flag.objects.filter(entry__handover_list=not_yet_due).exists()
    assert all(f.level == 1 and f.due_on == DUE and f.case_id for f in open_flags())


def test_due_day_itself_is_not_overdue(make_handed_over_list):
    make_handed_over_list(2)
    assert sweep_deadlines(today=DUE, reminder_days=0).flagged == 0
    assert sweep_deadlines(today=DUE + datetime.timedelta(days=1), reminder_days=0).flagged == 2


def test_running_twice_changes_nothing(make_handed_over_list):
    make_handed_over_list(5)
    today = DUE + datetime.timedelta(days=20)
    first = sweep_deadlines(today=today)
    snapshot = list(Flag.objects.values_list("id", "entry_id", "level", "resolved_at").order_by("id"))

    second = sweep_deadlines(today=today)

    assert first.flagged == 5
    assert second == SweepResult(flagged=0, escalated=0, reminded=0, resolved=0)
    assert list(Flag.objects.values_list("id", "entry_id", "level", "resolved_at").order_by("id")) == snapshot


def test_escalates_at_14_and_30_days_past_due(make_handed_over_list):
    make_handed_over_list(2)
    sweep_deadlines(today=DUE + datetime.timedelta(days=1))
    assert [f.level for f in open_flags()] == [1, 1]

    assert sweep_deadlines(today=DUE + datetime.timedelta(days=13)).escalated == 0
    assert sweep_deadlines(today=DUE + datetime.timedelta(days=14)).escalated == 2
    assert [f.level for f in open_flags()] == [2, 2]
    assert all(f.escalated_at is not None for f in open_flags())

    assert sweep_deadlines(today=DUE + datetime.timedelta(days=29)).escalated == 0
    assert sweep_deadlines(today=DUE + datetime.timedelta(days=30)).escalated == 2
    assert [f.level for f in open_flags()] == [3, 3]
    assert sweep_deadlines(today=DUE + datetime.timedelta(days=90)).escalated == 0
    assert Flag.objects.count() == 2


def test_an_entry_found_long_overdue_starts_at_its_level(make_handed_over_list):
    make_handed_over_list(1)
    result = sweep_deadlines(today=DUE + datetime.timedelta(days=45))
    assert (result.flagged, result.escalated) == (1, 0)
    assert open_flags()[0].level == 3


def test_thresholds_are_configurable(make_handed_over_list):
    make_handed_over_list(1)
    sweep_deadlines(today=DUE + datetime.timedelta(days=3), escalation_days=[3, 5])
    assert open_flags()[0].level == 2


def test_reminds_before_the_due_date_once(make_handed_over_list):
    make_handed_over_list(2)
    make_handed_over_list(1, due=DUE + datetime.timedelta(days=20))

    assert sweep_deadlines(today=DUE - datetime.timedelta(days=8), reminder_days=7).reminded == 0
    assert sweep_deadlines(today=DUE - datetime.timedelta(days=7), reminder_days=7).reminded == 2
    assert sweep_deadlines(today=DUE - datetime.timedelta(days=1), reminder_days=7).reminded == 0
    assert len(open_flags(Flag.Kind.DUE_SOON)) == 2


def test_reminder_gives_way_to_overdue_flag(make_handed_over_list):
    make_handed_over_list(1)
    sweep_deadlines(today=DUE - datetime.timedelta(days=3))
    result = sweep_deadlines(today=DUE + datetime.timedelta(days=1))
    assert (result.flagged, result.resolved) == (1, 1)
    reminder = Flag.objects.get(kind=Flag.Kind.DUE_SOON)
    assert reminder.resolution == Flag.Resolution.SUPERSEDED
    assert len(open_flags()) == 1


def test_reply_resolves_the_flags_and_the_sweep_does_not_raise_them_again(make_handed_over_list, case_worker):
    handover_list = make_handed_over_list(3)
    today = DUE + datetime.timedelta(days=20)
    sweep_deadlines(today=today)
    first, second = handover_list.entries.order_by("position")[:2]

    result = reply_record(handover_list=handover_list, received_on=today, actor=case_worker, outcomes=[
        OutcomeInput(entry_id=first.pk, outcome=Outcome.NOT_FOUND),
        OutcomeInput(entry_id=second.pk, outcome=Outcome.LOCATED),
    ])

    assert result.flags_resolved == 2
    resolved = Flag.objects.filter(entry__in=[first, second])
    assert {(f.resolution, f.resolved_by_id) for f in resolved} == {(Flag.Resolution.ANSWERED, case_worker.pk)}
    assert sweep_deadlines(today=today + datetime.timedelta(days=30)) == SweepResult(0, 1, 0, 0)
    assert len(open_flags()) == 1


def test_entry_answered_by_another_path_is_cleared_by_the_sweep(make_handed_over_list):
    handover_list = make_handed_over_list(2)
    sweep_deadlines(today=DUE + datetime.timedelta(days=1))
    ListEntry.objects.filter(handover_list=handover_list, position=1).update(
        reply_state=ListEntry.ReplyState.ANSWERED, answered_on=DUE
    )
    result = sweep_deadlines(today=DUE + datetime.timedelta(days=2))
    assert result.resolved == 1
    assert len(open_flags()) == 1


def test_extended_deadline_clears_the_flag_and_may_flag_again(make_handed_over_list):
    handover_list = make_handed_over_list(1)
    sweep_deadlines(today=DUE + datetime.timedelta(days=1))
    new_due = DUE + datetime.timedelta(days=10)
    ListEntry.objects.filter(handover_list=handover_list).update(due_on=new_due)

    assert sweep_deadlines(today=DUE + datetime.timedelta(days=2), reminder_days=0).resolved == 1
    assert open_flags() == []
    assert sweep_deadlines(today=new_due + datetime.timedelta(days=1), reminder_days=0).flagged == 1
    assert Flag.objects.filter(kind=Flag.Kind.OVERDUE).count() == 2


def test_dismissed_flag_is_not_raised_again_for_the_same_deadline(make_handed_over_list, case_worker):
    from tracker.services.flags import flag_dismiss

    make_handed_over_list(1)
    sweep_deadlines(today=DUE + datetime.timedelta(days=1))
    flag_dismiss(flag=open_flags()[0], actor=case_worker, note="Chased by phone")
    assert sweep_deadlines(today=DUE + datetime.timedelta(days=2)).flagged == 0


def test_killed_half_way_then_run_again_gives_the_same_flags(make_handed_over_list):
    make_handed_over_list(4)
    today = DUE + datetime.timedelta(days=15)

    class Killed(Exception):
        pass

    with pytest.raises(Killed), transaction.atomic():
        sweep_deadlines(today=today)
        raise Killed  # the process dies before the sweep's transaction commits
    assert Flag.objects.count() == 0

    assert sweep_deadlines(today=today).flagged == 4
    assert [f.level for f in open_flags()] == [2, 2, 2, 2]


@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif("connection.vendor != 'postgresql'", reason="needs concurrent sessions")
def test_two_concurrent_sweeps_raise_each_flag_once(make_handed_over_list):
    make_handed_over_list(60)
    today = DUE + datetime.timedelta(days=31)
    barrier = threading.Barrier(2)
    results: list[SweepResult] = []
    errors: list[BaseException] = []

    def run() -> None:
        try:
            barrier.wait()
            results.append(sweep_deadlines(today=today))
        except BaseException as exc:  # surfaced below: a failed thread must fail the test
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=run) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)

    assert errors == []
    assert sum(r.flagged for r in results) == 60
    assert Flag.objects.filter(kind=Flag.Kind.OVERDUE).count() == 60
    assert Flag.objects.values("entry").distinct().count() == 60
