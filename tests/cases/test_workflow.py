"""A case's road from open to returned or closed, and the timeline it leaves behind."""

from __future__ import annotations

import itertools

import pytest
from django.db import IntegrityError, transaction

from cases.models import Case, CaseEvent, Child
from cases.services import (
    ALLOWED_TRANSITIONS,
    StatusStep,
    TransitionNotAllowed,
    case_change_status,
    case_close,
    case_open,
    cases_move,
)
from core.models import RecordDeletionRefused
from tests.factories import ChildFactory, UserFactory

pytestmark = pytest.mark.django_db
Status = Case.Status

ALL_PAIRS = [(a, b) for a in Status.values for b in Status.values if a != b]


def case_in(status: str) -> Case:
    """A case put into `status` directly, as the starting point of one transition."""
    case = case_open(child=ChildFactory(), actor=None)
    closed = status == Status.CLOSED
    Case.objects.filter(pk=case.pk).update(
        status=status, closed_on=case.opened_on if closed else None, closing_reason="other" if closed else ""
    )
    case.refresh_from_db()
    return case


@pytest.mark.parametrize(("from_status", "to_status"), ALL_PAIRS)
def test_each_transition_is_allowed_or_refused_as_the_road_says(from_status, to_status):
    case = case_in(from_status)
    worker = UserFactory()
    allowed = to_status in ALLOWED_TRANSITIONS[from_status]

    if allowed:
        case_change_status(case=case, to_status=to_status, actor=worker, closing_reason="other", note="step")
        assert case.status == to_status
        event = case.events.get(kind=CaseEvent.Kind.STATUS_CHANGED)
        assert (event.from_status, event.to_status, event.actor) == (from_status, to_status, worker)
    else:
        with pytest.raises(TransitionNotAllowed, match="cannot move from"):
            case_change_status(case=case, to_status=to_status, actor=worker, closing_reason="other")
        case.refresh_from_db()
        assert case.status == from_status
        assert not case.events.filter(kind=CaseEvent.Kind.STATUS_CHANGED).exists()


def test_the_full_road_leaves_a_timeline_of_who_and_when():
    worker, supervisor = UserFactory(), UserFactory()
    case = case_open(child=ChildFactory(), actor=worker)
    road = [Status.ON_LIST, Status.AWAITING_REPLY, Status.REPLY_RECEIVED, Status.VERIFYING,
            Status.RETURN_IN_PROGRESS, Status.RETURNED]
    for step in road:
        case_change_status(case=case, to_status=step, actor=worker)
    case_close(case=case, actor=supervisor, reason=Case.ClosingReason.REUNIFIED, note="Back with her mother")

    events = list(case.events.order_by("happened_at", "id"))
    assert [e.to_status for e in events] == [Status.OPEN, *road, Status.CLOSED]
    assert [e.actor for e in events] == [worker] * 7 + [supervisor]
    assert all(a.happened_at <= b.happened_at for a, b in itertools.pairwise(events))
    assert (case.closing_reason, case.closing_note, case.closed_on is not None) == ("reunified", "Back with her mother",
                                                                                   True)
    assert case.history.count() >= 8, "every save is kept in the case's history"


def test_closing_needs_a_reason():
    case = case_open(child=ChildFactory(), actor=None)
    with pytest.raises(TransitionNotAllowed, match="reason"):
        case_change_status(case=case, to_status=Status.CLOSED, actor=None)
    case.refresh_from_db()
    assert case.status == Status.OPEN


def test_unknown_status_is_refused_by_name():
    case = case_open(child=ChildFactory(), actor=None)
    with pytest.raises(TransitionNotAllowed, match="“lost” is not a case status"):
        case_change_status(case=case, to_status="lost", actor=None)


def test_reopening_a_closed_case_clears_its_closing():
    case = case_open(child=ChildFactory(), actor=None)
    case_close(case=case, actor=None, reason=Case.ClosingReason.DUPLICATE)
    case_change_status(case=case, to_status=Status.OPEN, actor=None, note="Not a duplicate after all")
    assert (case.status, case.closed_on, case.closing_reason) == (Status.OPEN, None, "")


def test_reopening_is_refused_while_the_child_has_another_live_case():
    child = ChildFactory()
    old = case_open(child=child, actor=None)
    case_close(case=old, actor=None, reason=Case.ClosingReason.OTHER)
    case_open(child=child, actor=None)
    with pytest.raises(TransitionNotAllowed, match="already has a live case"):
        case_change_status(case=old, to_status=Status.OPEN, actor=None)


def test_one_live_case_per_child_is_enforced_by_the_database():
    child = ChildFactory()
    case_open(child=child, actor=None)
    with pytest.raises(IntegrityError), transaction.atomic():
        Case.objects.create(child=child)


def test_database_refuses_a_status_outside_the_choices():
    case = case_open(child=ChildFactory(), actor=None)
    with pytest.raises(IntegrityError), transaction.atomic():
        Case.objects.filter(pk=case.pk).update(status="vanished")


def test_children_and_cases_are_never_deleted():
    case = case_open(child=ChildFactory(), actor=None)
    with pytest.raises(RecordDeletionRefused):
        case.child.delete()
    with pytest.raises(RecordDeletionRefused):
        Child.objects.all().delete()
    with pytest.raises(RecordDeletionRefused):
        case.delete()
    assert Child.objects.count() == 1 and Case.objects.count() == 1


def test_child_history_keeps_every_change():
    child = ChildFactory(given_name="Софія")
    child.given_name = "Софія-Марія"
    child.save()
    assert [h.given_name for h in child.history.order_by("history_date")] == ["Софія", "Софія-Марія"]


def test_age_on_a_date_respects_the_birth_date_precision():
    import datetime

    day = ChildFactory.build(birth_date=datetime.date(2012, 9, 10), birth_date_precision="day")
    year = ChildFactory.build(birth_date=datetime.date(2012, 1, 1), birth_date_precision="year")
    assert day.age_on(datetime.date(2025, 6, 2)) == 12
    assert year.age_on(datetime.date(2025, 6, 2)) == 13
    assert ChildFactory.build(birth_date=None).age_on(datetime.date(2025, 6, 2)) is None


def test_many_cases_move_together_each_along_its_own_steps_from_its_status_under_the_lock():
    worker = UserFactory()
    opened = [case_open(child=ChildFactory(), actor=None) for _ in range(3)]
    further = case_in(Status.VERIFYING)
    # The caller's copy is stale: the road asks the steps with the status read under the lock.
    stale = Case.objects.get(pk=opened[0].pk)
    Case.objects.filter(pk=opened[0].pk).update(status=Status.ON_LIST)

    def steps(case: Case) -> list[StatusStep]:
        if case.status == Status.OPEN:
            return [StatusStep(Status.ON_LIST, CaseEvent.Kind.ADDED_TO_LIST, "on list 7"),
                    StatusStep(Status.AWAITING_REPLY, CaseEvent.Kind.LIST_HANDED_OVER, "handed over")]
        return [StatusStep(case.status, CaseEvent.Kind.NOTE, f"still {case.status}")]

    moved = cases_move(cases=[stale, *opened[1:], further], steps=steps, actor=worker, reason="list 7")
    assert sorted((case.pk, start, end) for case, start, end in moved.changes) == sorted(
        (case.pk, Status.OPEN, Status.AWAITING_REPLY) for case in opened[1:])
    assert stale.status == Status.ON_LIST, "the caller's instance carries what was read under the lock"
    assert list(Case.objects.filter(pk__in=[c.pk for c in opened]).order_by("pk").values_list("status", flat=True)) \
        == [Status.ON_LIST, Status.AWAITING_REPLY, Status.AWAITING_REPLY]
    assert moved.lines == 2 * 2 + 2
    assert CaseEvent.objects.get(case=further, kind=CaseEvent.Kind.NOTE).message == "still verifying"
    assert Case.history.filter(history_change_reason="list 7").count() == 2


def test_one_refused_step_among_many_moves_nothing_and_writes_nothing():
    cases = [case_open(child=ChildFactory(), actor=None) for _ in range(4)]
    returned = case_in(Status.RETURNED)
    before = (CaseEvent.objects.count(), Case.history.count())

    with pytest.raises(TransitionNotAllowed, match=r"cannot move from “Returned \(reunified\)” to “On a list”"):
        cases_move(cases=[*cases, returned], steps=lambda case: [StatusStep(Status.ON_LIST)], actor=None)
    assert set(Case.objects.filter(pk__in=[c.pk for c in cases]).values_list("status", flat=True)) == {Status.OPEN}
    assert (CaseEvent.objects.count(), Case.history.count()) == before


def test_closing_many_needs_a_reason_and_keeps_each_note():
    cases = [case_open(child=ChildFactory(), actor=None) for _ in range(2)]
    with pytest.raises(TransitionNotAllowed, match="needs a reason"):
        cases_move(cases=cases, steps=lambda case: [StatusStep(Status.CLOSED)], actor=None)
    cases_move(cases=cases, steps=lambda case: [StatusStep(Status.CLOSED, message=f"note {case.pk}",
               closing_reason=Case.ClosingReason.OTHER)], actor=None)
    for case in Case.objects.filter(pk__in=[c.pk for c in cases]):
        assert (case.status, case.closing_reason, case.closing_note) == (Status.CLOSED, "other", f"note {case.pk}")
        assert case.closed_on is not None
